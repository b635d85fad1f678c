#include "app/campaign_session.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "app/commands.hpp"

namespace dialer::app {

campaign_session::campaign_session(context c)
    : ctx(std::move(c)),
      inventory(ctx.db(), ctx.account()),
      campaigns(ctx.db(), ctx.account(), ctx.database_url()),
      dnc(ctx.db(), ctx.account()),
      provider(make_default_number_provider()),
      service(campaigns, dnc, inventory, *provider, clk) {}

result<std::unique_ptr<campaign_session>> open_campaign_session(const global_options& options) {
  auto c = context::open(options);
  if (!c) return std::move(c).error();
  return std::make_unique<campaign_session>(std::move(*c));
}

result<engine_options> engine_options_from_environment() {
  engine_options o;
  const char* env = std::getenv("DIALER_LEASE_MS");
  if (env == nullptr || *env == '\0') return o;
  std::int64_t ms = 0;
  const char* end = env + std::strlen(env);
  const auto [stop, ec] = std::from_chars(env, end, ms);
  if (ec != std::errc{} || stop != end || ms < 400 || ms > 3'600'000)
    return make_error(errc::invalid_input,
                      "DIALER_LEASE_MS: expected whole milliseconds from 400 to 3600000, got \"{}\"", env);
  o.lease = std::chrono::milliseconds(ms);
  o.heartbeat = std::min(o.heartbeat, std::chrono::milliseconds(ms / 4));
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
