#include "app/campaign_session.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>

#include <pqxx/pqxx>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/pg_carrier_callbacks.hpp"
#include "app/commands.hpp"

namespace dialer::app {

campaign_session::campaign_session(context c, std::unique_ptr<number_providers> p)
    : ctx(std::move(c)),
      inventory(ctx.db(), ctx.account()),
      campaigns(ctx.db(), ctx.account(), ctx.database_url()),
      dnc(ctx.db(), ctx.account()),
      providers(std::move(p)),
      service(campaigns, dnc, inventory, providers->buying(), clk) {}

result<std::unique_ptr<campaign_session>> open_campaign_session(const global_options& options) {
  auto p = number_providers::from_environment();
  if (!p) return std::move(p).error();
  auto c = context::open(options);
  if (!c) return std::move(c).error();
  return std::make_unique<campaign_session>(std::move(*c), std::move(*p));
}

namespace {

// A whole number of milliseconds in [lo, hi] from the environment variable `name`; nullopt when it is not
// set.
result<std::optional<std::chrono::milliseconds>> millis_from_environment(const char* name, std::int64_t lo,
                                                                         std::int64_t hi) {
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') return std::optional<std::chrono::milliseconds>{};
  std::int64_t ms = 0;
  const char* end = env + std::strlen(env);
  const auto [stop, ec] = std::from_chars(env, end, ms);
  if (ec != std::errc{} || stop != end || ms < lo || ms > hi)
    return make_error(errc::invalid_input, "{}: expected whole milliseconds from {} to {}, got \"{}\"", name,
                      lo, hi, env);
  return std::optional<std::chrono::milliseconds>{std::chrono::milliseconds(ms)};
}

}  // namespace

result<std::shared_ptr<const carriers::carrier_environment>> carrier_environment_for(std::string database_url) {
  auto env = std::make_shared<carriers::carrier_environment>();
  auto credentials = carriers::credentials_from_environment();
  if (!credentials) return std::move(credentials).error();
  env->credentials = std::move(*credentials);
  if (const char* base = std::getenv("DIALER_PUBLIC_BASE_URL")) env->public_base_url = base;
  if (!database_url.empty()) {
    auto c = pg::connect(database_url, pg::connect_options{std::chrono::milliseconds(10'000)});
    if (!c) return std::move(c).error();
    try {
      pqxx::nontransaction tx(**c);
      env->installation = tx.exec1("SELECT id::text FROM installation")[0].as<std::string>();
    } catch (...) {
      return pg::current_exception_error("reading the installation id");
    }
  }
  env->open_inbox = [url = std::move(database_url)]() -> result<std::unique_ptr<carrier_callback_inbox>> {
    if (url.empty())
      return make_error(errc::internal, "this command checks carrier settings only; it has no callback inbox");
    return std::unique_ptr<carrier_callback_inbox>(std::make_unique<pg::pg_carrier_callbacks>(pg::pg_link(url)));
  };
  return std::shared_ptr<const carriers::carrier_environment>(std::move(env));
}

result<engine_options> engine_options_from_environment() {
  engine_options o;
  auto lease = millis_from_environment("DIALER_LEASE_MS", 400, 3'600'000);
  if (!lease) return std::move(lease).error();
  if (*lease) {
    o.lease = **lease;
    o.heartbeat = std::min(o.heartbeat, **lease / 4);
  }
  // How often every campaign's state is read in full besides the change feed (tests set it long, to show that
  // the feed alone picks a launch up).
  auto poll = millis_from_environment("DIALER_CAMPAIGN_POLL_MS", 50, 86'400'000);
  if (!poll) return std::move(poll).error();
  if (*poll) o.campaign_poll = **poll;
  return o;
}

std::pair<std::string, nlohmann::json> registry_carrier_source::carrier_of(
    const campaign_record& campaign) const {
  if (override_ && override_->id == campaign.id) return {override_->carrier, override_->settings};
  return {campaign.spec.carrier, campaign.spec.carrier_settings};
}

std::string registry_carrier_source::account_key(const campaign_record& campaign) const {
  const auto [name, settings] = carrier_of(campaign);
  return name + " " + settings.dump();  // dump() sorts object keys: equal settings give equal keys
}

result<std::unique_ptr<carrier>> registry_carrier_source::make(const campaign_record& campaign) {
  const auto [name, settings] = carrier_of(campaign);
  return registry_.make_carrier(name, settings, clock_);
}

}  // namespace dialer::app
