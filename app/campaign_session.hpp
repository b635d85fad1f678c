#pragma once
// What the campaign commands need, wired: the database context, the PostgreSQL ports of the campaign service,
// the number provider, and the service over them. And what `dialer run`, `dialer call` and `dialer serve`
// need to run a dialing engine: its ports, its options from the environment, and a carrier source over the
// carrier registry.

#include <memory>
#include <optional>
#include <string>

#include "adapters/carriers/registry.hpp"
#include "adapters/postgres/inventory_store.hpp"
#include "adapters/postgres/pg_campaign_repository.hpp"
#include "app/context.hpp"
#include "app/providers.hpp"
#include "engine/campaign_service.hpp"
#include "engine/dialing/engine_options.hpp"

namespace dialer::app {

struct campaign_session {
  campaign_session(context c, std::unique_ptr<number_providers> p);
  context ctx;
  pg::pg_inventory_store inventory;
  pg::pg_campaign_repository campaigns;
  pg::pg_do_not_call_list dnc;
  std::unique_ptr<number_providers> providers;
  system_clock clk;
  campaign_service service;
};

[[nodiscard]] result<std::unique_ptr<campaign_session>> open_campaign_session(const global_options& options);

// What the REST carriers need from this process: DIALER_PUBLIC_BASE_URL, the carrier credentials
// (credentials_from_environment), and the callback inbox on `database_url` (opened by each carrier instance when it
// starts; empty: a process that only checks settings, whose carriers never start). invalid_input for bad secrets.
[[nodiscard]] result<std::shared_ptr<const carriers::carrier_environment>> carrier_environment_for(
    std::string database_url);

// DIALER_LEASE_MS shortens the contact and slot leases (default 15 s) so that the claims of a killed run
// lapse soon, e.g. in crash-recovery tests; the heartbeat stays well below a third of the lease so that a
// live engine never loses its own claims to a late renewal. invalid_input for a malformed value.
[[nodiscard]] result<engine_options> engine_options_from_environment();

// Carriers from the registry, one instance per carrier account: the campaign's carrier name and its stored
// settings. The stored settings hold no secrets (they are redacted), so the campaign an operator runs from a
// file gets the file's settings instead (`override_for`), with its secrets resolved from the environment.
class registry_carrier_source final : public carrier_source {
 public:
  registry_carrier_source(carriers::registry& registry, clock& clk) : registry_(registry), clock_(clk) {}
  void override_for(campaign_id id, std::string carrier, nlohmann::json settings) {
    override_ = {id, std::move(carrier), std::move(settings)};
  }
  [[nodiscard]] std::string account_key(const campaign_record& campaign) const override;
  [[nodiscard]] result<std::unique_ptr<carrier>> make(const campaign_record& campaign) override;

 private:
  struct override_settings {
    campaign_id id;
    std::string carrier;
    nlohmann::json settings;
  };
  [[nodiscard]] std::pair<std::string, nlohmann::json> carrier_of(const campaign_record& campaign) const;
  carriers::registry& registry_;
  clock& clock_;
  std::optional<override_settings> override_;
};

}  // namespace dialer::app
