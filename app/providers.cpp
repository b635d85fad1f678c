// Wiring of the number inventory: the simulated provider (the embedded default), Twilio's and Telnyx's.
#include <cstdlib>

#include "adapters/carriers/rest/credentials.hpp"
#include "adapters/carriers/simulated/simulated_number_provider.hpp"
#include "adapters/carriers/telnyx/telnyx_number_provider.hpp"
#include "adapters/carriers/twilio/twilio_number_provider.hpp"
#include "app/commands.hpp"

namespace dialer::app {

namespace {

// A carrier whose credentials the process holds but whose provider is missing something else (the public base URL,
// the connection id): every use says what.
class unconfigured_provider final : public number_provider {
 public:
  unconfigured_provider(std::string name, error why) : name_(std::move(name)), why_(std::move(why)) {}
  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] result<std::vector<available_number>> search(const number_search&) override { return why_; }
  [[nodiscard]] result<purchased_number> buy(const std::string&) override { return why_; }
  [[nodiscard]] result<void> release(const purchased_number&) override { return why_; }
  [[nodiscard]] result<purchased_number> claim(const std::string&) override { return why_; }

 private:
  std::string name_;
  error why_;
};

std::string env_text(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}
}  // namespace

result<std::unique_ptr<number_providers>> number_providers::from_environment() {
  std::unique_ptr<number_providers> p(new number_providers());
  p->all_["simulated"] = std::make_unique<carriers::simulated_number_provider>();
  auto credentials = carriers::credentials_from_environment();
  if (!credentials) return std::move(credentials).error();
  carriers::carrier_environment env;
  env.credentials = std::move(*credentials);
  env.public_base_url = env_text("DIALER_PUBLIC_BASE_URL");
  // A carrier's provider exists when the process holds its credentials; what else it needs is checked here, so a
  // half-configured carrier is an error at once rather than at the first import.
  std::map<std::string, error, std::less<>> missing;
  if (env.credentials.find("twilio.account_sid")) {
    auto s = carriers::twilio::twilio_numbers_settings_from(env, env_text("DIALER_TWILIO_BASE_URL"));
    if (s) p->all_["twilio"] = std::make_unique<carriers::twilio::twilio_number_provider>(std::move(*s));
    else missing.emplace("twilio", s.error());
  }
  if (env.credentials.find("telnyx.api_key")) {
    auto s = carriers::telnyx::telnyx_numbers_settings_from(env, env_text("DIALER_TELNYX_BASE_URL"));
    if (s) p->all_["telnyx"] = std::make_unique<carriers::telnyx::telnyx_number_provider>(std::move(*s), p->clock_);
    else missing.emplace("telnyx", s.error());
  }
  auto chosen = env_text("DIALER_NUMBER_PROVIDER");
  if (chosen.empty()) chosen = "simulated";
  if (chosen != "simulated" && chosen != "twilio" && chosen != "telnyx")
    return make_error(errc::invalid_input, "DIALER_NUMBER_PROVIDER must be simulated, twilio or telnyx, got \"{}\"",
                      chosen.substr(0, 60));
  if (auto it = missing.find(chosen); it != missing.end())
    return make_error(errc::invalid_input, "DIALER_NUMBER_PROVIDER={}: {}", chosen, it->second.message);
  for (auto& [name, why] : missing) p->all_[name] = std::make_unique<unconfigured_provider>(name, why);
  if (!p->all_.contains(chosen))
    return make_error(errc::invalid_input, "DIALER_NUMBER_PROVIDER={}: this process holds no {} credentials", chosen,
                      chosen);
  p->buying_ = p->all_[chosen].get();
  return p;
}

number_provider* number_providers::find(std::string_view name) noexcept {
  auto it = all_.find(name);
  return it == all_.end() ? nullptr : it->second.get();
}

void number_providers::wire(inventory_service& inventory) {
  inventory.set_carrier_providers([this](std::string_view name) { return find(name); });
}

}  // namespace dialer::app
