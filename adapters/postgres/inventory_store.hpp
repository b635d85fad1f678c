#pragma once
// PostgreSQL implementation of the inventory_store port. Every statement is scoped by account_id.
// Threading: one instance per thread; it uses the connection it is given and nothing else.

#include <pqxx/connection>

#include "engine/ports/inventory_store.hpp"

namespace dialer::pg {

// Looks up (or, for "default", finds the seeded) account by name.
[[nodiscard]] result<account_id> find_account(pqxx::connection& connection, const std::string& name);

class pg_inventory_store final : public inventory_store {
 public:
  pg_inventory_store(pqxx::connection& connection, account_id account) noexcept
      : connection_(connection), account_(account) {}

  [[nodiscard]] account_id account() const noexcept override { return account_; }
  result<agent> create_agent(const std::string& name, const std::string& handoff) override;
  result<std::vector<agent>> list_agents() override;
  result<agent> find_agent(agent_id id) override;
  result<agent> find_agent(const std::string& name) override;
  result<std::vector<agent>> page_agents(page_request page) override;
  result<agent> update_agent(agent_id id, const std::optional<std::string>& name,
                             const std::optional<std::string>& handoff) override;
  result<void> delete_agent(agent_id id) override;
  result<phone_number> add_number(const phone_number& number, const std::string& provider_ref) override;
  result<phone_number> find_number(number_id id) override;
  result<phone_number> find_number(const std::string& e164) override;
  result<std::vector<phone_number>> list_numbers(std::optional<agent_id> agent, bool include_released) override;
  result<std::vector<phone_number>> page_numbers(const number_filter& filter, page_request page) override;
  result<phone_number> update_limits(number_id number, std::optional<int> max_concurrent_calls,
                                     std::optional<double> max_cps) override;
  result<phone_number> assign(number_id number, agent_id agent, bool reassign) override;
  result<phone_number> unassign(number_id number) override;
  result<phone_number> release(number_id number) override;
  result<std::string> provider_ref(number_id number) override;
  result<std::unordered_set<std::string>> owned_managed(std::span<const std::string> e164s) override;
  result<micros> monthly_fee(const std::string& country, number_type type) override;
  result<std::vector<phone_number>> numbers_active_between(timestamp from, timestamp to) override;
  result<std::vector<call_usage>> call_usage_between(timestamp from, timestamp to) override;
  result<micros> per_minute_rate(const std::string& item) override;

 private:
  // Applies `set_clause` (over $3... = extra) to the number if it is active: the number as it is now, conflict
  // "number X <refused>" when it is released, not_found when the account has no such number.
  template <class... Extra>
  result<phone_number> change_active(number_id number, const char* set_clause, const char* refused, const char* what,
                                     Extra&&... extra);

  pqxx::connection& connection_;
  account_id account_;
};

}  // namespace dialer::pg
