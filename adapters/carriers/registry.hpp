#pragma once
// The carrier registry: maps the `carrier:` name of a campaign file (and the provider name of
// `dialer numbers search/buy`) to a factory, Envoy style. The composition root builds one registry
// at start-up with make_default_registry() and passes the settings object of the campaign.
//
// Not thread-safe for registration (start-up only); make_* are safe to call concurrently afterwards.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "adapters/carriers/rest/credentials.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"
#include "engine/ports/number_provider.hpp"
#include "engine/result.hpp"

namespace dialer::carriers {

// settings: the JSON object under the campaign's carrier settings (null when absent). The clock must
// outlive what the factory builds. Invalid settings: errc::invalid_input naming the field.
using carrier_factory =
    std::function<result<std::unique_ptr<carrier>>(const nlohmann::json& settings, dialer::clock& clock)>;
using number_provider_factory = std::function<result<std::unique_ptr<number_provider>>(
    const nlohmann::json& settings, dialer::clock& clock)>;

class registry {
 public:
  // errc::conflict when the name is taken, errc::invalid_input when it is not [a-z0-9_-]+.
  [[nodiscard]] result<void> add_carrier(std::string name, carrier_factory factory);
  [[nodiscard]] result<void> add_number_provider(std::string name, number_provider_factory factory);

  // errc::invalid_input for an unknown name, listing the known ones; otherwise the factory's result.
  [[nodiscard]] result<std::unique_ptr<carrier>> make_carrier(std::string_view name,
                                                              const nlohmann::json& settings,
                                                              dialer::clock& clock) const;
  [[nodiscard]] result<std::unique_ptr<number_provider>> make_number_provider(std::string_view name,
                                                                              const nlohmann::json& settings,
                                                                              dialer::clock& clock) const;

  [[nodiscard]] std::vector<std::string> carrier_names() const;  // sorted
  [[nodiscard]] std::vector<std::string> number_provider_names() const;
  [[nodiscard]] bool has_carrier(std::string_view name) const { return carriers_.contains(name); }
  [[nodiscard]] bool has_number_provider(std::string_view name) const { return providers_.contains(name); }

 private:
  std::map<std::string, carrier_factory, std::less<>> carriers_;
  std::map<std::string, number_provider_factory, std::less<>> providers_;
};

// Registers "simulated" as a carrier and as a number provider.
[[nodiscard]] result<void> register_simulated(registry& r);

// Registers "twilio" as a carrier; its instances use `env` (credentials, public base URL, callback inbox).
[[nodiscard]] result<void> register_twilio(registry& r, std::shared_ptr<const carrier_environment> env);
// Registers "telnyx" as a carrier, the same way.
[[nodiscard]] result<void> register_telnyx(registry& r, std::shared_ptr<const carrier_environment> env);

// Registers "sip": a SIP trunk driven by third-party call control (adapters/carriers/sip); `env` gives the trunk's
// digest credentials.
[[nodiscard]] result<void> register_sip(registry& r, std::shared_ptr<const carrier_environment> env);

// A registry holding every built-in carrier and number provider. Throws dialer_exception when two
// registrations collide: a programming error that must stop start-up. The REST carriers get `env`; without one
// (the default) they are registered all the same and refuse to start, saying what is missing.
[[nodiscard]] registry make_default_registry(std::shared_ptr<const carrier_environment> env = nullptr);

}  // namespace dialer::carriers
