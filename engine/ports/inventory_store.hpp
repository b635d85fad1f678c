#pragma once
// The persistence port for the telephony model: agents, numbers and their assignment.
// Implemented by adapters/postgres; every call is scoped to the store's account.
// Rules that must hold across processes (one agent per number, released is final, no duplicate active
// E.164) are enforced by the database; the store maps violations to errc::conflict with a clear message.
// Threading: one instance per thread (it owns a connection).

#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/result.hpp"
#include "engine/telephony.hpp"

namespace dialer {

// Calls placed from one number in a period, for per-minute billing.
struct call_usage {
  number_id number;
  std::string e164;
  number_kind kind = number_kind::managed;
  std::int64_t calls = 0;
  std::int64_t billed_minutes = 0;  // per call, started minutes of talk time
  micros carrier_cost = 0;          // sum of the attempts' per-minute charges (managed numbers only)
};

// A page of a listing in id order: the rows after `after` (exclusive), at most `limit`.
struct page_request {
  std::int64_t after = 0;
  int limit = 50;
};

struct number_filter {
  std::optional<agent_id> agent;
  std::optional<number_status> status;  // none: both
  std::optional<number_type> type;
  std::optional<std::string> country;
};

class inventory_store {
 public:
  virtual ~inventory_store() = default;

  [[nodiscard]] virtual account_id account() const noexcept = 0;

  [[nodiscard]] virtual result<agent> create_agent(const std::string& name, const std::string& handoff) = 0;
  [[nodiscard]] virtual result<std::vector<agent>> list_agents() = 0;
  [[nodiscard]] virtual result<agent> find_agent(agent_id id) = 0;
  [[nodiscard]] virtual result<agent> find_agent(const std::string& name) = 0;
  [[nodiscard]] virtual result<std::vector<agent>> page_agents(page_request page) = 0;
  // Renames and/or retargets; conflict when the new name is taken.
  [[nodiscard]] virtual result<agent> update_agent(agent_id id, const std::optional<std::string>& name,
                                                   const std::optional<std::string>& handoff) = 0;
  // conflict while the agent holds a number or has a campaign that is not finished (draft, running,
  // paused): its numbers and campaigns would point at nothing.
  [[nodiscard]] virtual result<void> delete_agent(agent_id id) = 0;

  // Inserts an active number (managed or BYOC); the id, timestamps and account are set by the store.
  [[nodiscard]] virtual result<phone_number> add_number(const phone_number& number, const std::string& provider_ref) = 0;
  [[nodiscard]] virtual result<phone_number> find_number(number_id id) = 0;
  // The active number with this E.164, else the most recently released one.
  [[nodiscard]] virtual result<phone_number> find_number(const std::string& e164) = 0;
  [[nodiscard]] virtual result<std::vector<phone_number>> list_numbers(std::optional<agent_id> agent,
                                                                       bool include_released) = 0;
  [[nodiscard]] virtual result<std::vector<phone_number>> page_numbers(const number_filter& filter,
                                                                       page_request page) = 0;
  // Sets the limits given (an active number only: conflict when released).
  [[nodiscard]] virtual result<phone_number> update_limits(number_id number, std::optional<int> max_concurrent_calls,
                                                           std::optional<double> max_cps) = 0;

  // Atomic: at most one caller wins when two assign the same free number at the same moment.
  [[nodiscard]] virtual result<phone_number> assign(number_id number, agent_id agent, bool reassign) = 0;
  [[nodiscard]] virtual result<phone_number> unassign(number_id number) = 0;
  [[nodiscard]] virtual result<phone_number> release(number_id number) = 0;
  [[nodiscard]] virtual result<std::string> provider_ref(number_id number) = 0;

  // Which of these E.164 numbers are active managed numbers anywhere on the platform (bought already).
  [[nodiscard]] virtual result<std::unordered_set<std::string>> owned_managed(std::span<const std::string> e164s) = 0;
  [[nodiscard]] virtual result<micros> monthly_fee(const std::string& country, number_type type) = 0;
  // Every number of the account that was active at some point in [from, to).
  [[nodiscard]] virtual result<std::vector<phone_number>> numbers_active_between(timestamp from, timestamp to) = 0;
  // Per-number call usage for calls that started in [from, to).
  [[nodiscard]] virtual result<std::vector<call_usage>> call_usage_between(timestamp from, timestamp to) = 0;
  // Price per minute of "call_minutes" or "ai_minutes".
  [[nodiscard]] virtual result<micros> per_minute_rate(const std::string& item) = 0;
};

}  // namespace dialer
