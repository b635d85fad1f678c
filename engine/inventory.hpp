#pragma once
// Use cases of the phone-number inventory: agents, search, buy, BYOC import, assignment, release, billing.
// Validates input (E.164 via libphonenumber, limits, names, hand-off targets) before anything is stored,
// so bad input changes nothing. Threading: one instance per thread, like the store it uses.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/billing.hpp"
#include "engine/ports/clock.hpp"
#include "engine/ports/inventory_store.hpp"
#include "engine/ports/number_provider.hpp"

namespace dialer {

struct number_limits {
  std::optional<int> max_concurrent_calls;
  std::optional<double> max_cps;
};

inline constexpr std::string_view kByocProviders[] = {"twilio", "telnyx", "sip"};

class inventory_service {
 public:
  inventory_service(inventory_store& store, number_provider& provider, const clock& clk) noexcept
      : store_(store), provider_(provider), clock_(clk) {}

  // The carriers' own providers, by name ("twilio", "telnyx"), for BYOC imports and for releasing numbers bought
  // from a provider other than `provider`; null for a carrier this process holds no credentials for.
  using provider_lookup = std::function<number_provider*(std::string_view)>;
  void set_carrier_providers(provider_lookup lookup) { carrier_providers_ = std::move(lookup); }

  [[nodiscard]] result<agent> create_agent(const std::string& name, const std::string& handoff);
  [[nodiscard]] result<std::vector<agent>> list_agents() { return store_.list_agents(); }
  [[nodiscard]] result<std::vector<agent>> page_agents(page_request page);
  [[nodiscard]] result<agent> find_agent(agent_id id) { return store_.find_agent(id); }
  // Each given field is validated as at creation; nothing changes unless all are valid.
  [[nodiscard]] result<agent> update_agent(agent_id id, const std::optional<std::string>& name,
                                           const std::optional<std::string>& handoff);
  // Refused (conflict) while the agent holds numbers or has unfinished campaigns.
  [[nodiscard]] result<void> delete_agent(agent_id id) { return store_.delete_agent(id); }
  // AGENT on the command line: an id (digits) or a name.
  [[nodiscard]] result<agent> resolve_agent(const std::string& id_or_name);
  // NUMBER on the command line: an id (digits) or an E.164 number (formatting tolerated).
  [[nodiscard]] result<phone_number> resolve_number(const std::string& id_or_e164);

  // Numbers the provider offers that nobody on the platform owns yet.
  [[nodiscard]] result<std::vector<available_number>> search(number_search query);
  [[nodiscard]] result<phone_number> buy(const std::string& e164, const number_limits& limits);
  // A number the customer holds at `provider`. For twilio and telnyx, the number is looked up in the account and its
  // inbound calls are pointed at this platform (number_provider::claim) before it is recorded; `record_only` skips
  // that (the operator points it by hand), and is the only way without the carrier's credentials. sip: recorded.
  [[nodiscard]] result<phone_number> import_byoc(const std::string& e164, const std::string& provider,
                                                 const number_limits& limits, bool record_only = false);
  [[nodiscard]] result<phone_number> assign(const std::string& number, const std::string& agent, bool reassign);
  [[nodiscard]] result<phone_number> unassign(const std::string& number);
  [[nodiscard]] result<phone_number> release(const std::string& number);
  [[nodiscard]] result<std::vector<phone_number>> list(const std::optional<std::string>& agent, bool include_released);
  [[nodiscard]] result<std::vector<phone_number>> page_numbers(const number_filter& filter, page_request page);
  [[nodiscard]] result<phone_number> find_number(number_id id) { return store_.find_number(id); }
  // Changes the limits given; invalid_input when none is given or one is out of range.
  [[nodiscard]] result<phone_number> update_limits(number_id id, const number_limits& limits);
  [[nodiscard]] result<std::vector<billing_line>> billing(const billing_period& period);

 private:
  result<phone_number> new_number(const std::string& e164_text, number_kind kind, const std::string& provider,
                                  const number_limits& limits);

  inventory_store& store_;
  [[nodiscard]] number_provider* carrier_provider(std::string_view name) const;

  number_provider& provider_;
  const clock& clock_;
  provider_lookup carrier_providers_;
};

// Checks shared with the CLI and the campaign loader.
[[nodiscard]] result<void> validate_agent_name(const std::string& name);
[[nodiscard]] result<void> validate_handoff(const std::string& handoff);
[[nodiscard]] result<void> validate_limits(const number_limits& limits);

}  // namespace dialer
