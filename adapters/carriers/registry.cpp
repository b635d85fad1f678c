#include "adapters/carriers/registry.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "adapters/carriers/simulated/simulated_carrier.hpp"
#include "adapters/carriers/simulated/simulated_number_provider.hpp"
#include "adapters/carriers/sip/sip_carrier.hpp"
#include "adapters/carriers/telnyx/telnyx_carrier.hpp"
#include "adapters/carriers/twilio/twilio_carrier.hpp"

namespace dialer::carriers {
namespace {

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

template <class Map>
std::vector<std::string> names_of(const Map& map) {
  std::vector<std::string> names;
  for (const auto& [name, factory] : map) names.push_back(name);
  return names;  // std::map keeps them sorted
}

template <class Map, class Factory>
result<void> add(Map& map, std::string_view what, std::string name, Factory factory) {
  if (!valid_name(name)) {
    return make_error(errc::invalid_input, "{} name '{}' must be lower-case letters, digits, '_' or '-'",
                      what, name);
  }
  if (!factory) return make_error(errc::invalid_input, "{} '{}' has no factory", what, name);
  if (map.contains(name)) return make_error(errc::conflict, "{} '{}' is already registered", what, name);
  map.emplace(std::move(name), std::move(factory));
  return ok();
}

template <class Map>
auto make(const Map& map, std::string_view what, std::string_view name, const nlohmann::json& settings,
          dialer::clock& clock) -> decltype(map.begin()->second(settings, clock)) {
  auto it = map.find(name);
  if (it == map.end()) {
    std::string known;
    for (const auto& [known_name, factory] : map)
      known += fmt::format("{}{}", known.empty() ? "" : ", ", known_name);
    return make_error(errc::invalid_input, "unknown {} '{}'; known {}s: {}", what, name, what,
                      known.empty() ? "(none)" : known);
  }
  return it->second(settings, clock);
}

}  // namespace

result<void> registry::add_carrier(std::string name, carrier_factory factory) {
  return add(carriers_, "carrier", std::move(name), std::move(factory));
}

result<void> registry::add_number_provider(std::string name, number_provider_factory factory) {
  return add(providers_, "number provider", std::move(name), std::move(factory));
}

result<std::unique_ptr<carrier>> registry::make_carrier(std::string_view name, const nlohmann::json& settings,
                                                        dialer::clock& clock) const {
  return make(carriers_, "carrier", name, settings, clock);
}

result<std::unique_ptr<number_provider>> registry::make_number_provider(std::string_view name,
                                                                        const nlohmann::json& settings,
                                                                        dialer::clock& clock) const {
  return make(providers_, "number provider", name, settings, clock);
}

std::vector<std::string> registry::carrier_names() const {
  return names_of(carriers_);
}
std::vector<std::string> registry::number_provider_names() const {
  return names_of(providers_);
}

result<void> register_simulated(registry& r) {
  auto carrier_added = r.add_carrier(
      "simulated",
      [](const nlohmann::json& settings, dialer::clock& clock) -> result<std::unique_ptr<carrier>> {
        auto parsed = parse_simulated_carrier_settings(settings);
        if (!parsed) return std::move(parsed).error();
        return std::unique_ptr<carrier>(std::make_unique<simulated_carrier>(std::move(*parsed), clock));
      });
  if (!carrier_added) return carrier_added;
  return r.add_number_provider(
      "simulated",
      [](const nlohmann::json& settings, dialer::clock&) -> result<std::unique_ptr<number_provider>> {
        if (!settings.is_null() && !(settings.is_object() && settings.empty())) {
          return make_error(errc::invalid_input, "number provider 'simulated' takes no settings, got {}",
                            settings.dump());
        }
        return std::unique_ptr<number_provider>(std::make_unique<simulated_number_provider>());
      });
}

result<void> register_twilio(registry& r, std::shared_ptr<const carrier_environment> env) {
  if (!env) env = std::make_shared<const carrier_environment>();
  return r.add_carrier("twilio", [env](const nlohmann::json& settings, dialer::clock& clock)
                                     -> result<std::unique_ptr<carrier>> {
    auto parsed = twilio::parse_twilio_settings(settings, *env);
    if (!parsed) return std::move(parsed).error();
    auto made = twilio::twilio_carrier::make(std::move(*parsed), *env, clock);
    if (!made) return std::move(made).error();
    return std::unique_ptr<carrier>(std::move(*made));
  });
}

result<void> register_telnyx(registry& r, std::shared_ptr<const carrier_environment> env) {
  if (!env) env = std::make_shared<const carrier_environment>();
  return r.add_carrier("telnyx", [env](const nlohmann::json& settings, dialer::clock& clock)
                                     -> result<std::unique_ptr<carrier>> {
    auto parsed = telnyx::parse_telnyx_settings(settings, *env);
    if (!parsed) return std::move(parsed).error();
    auto made = telnyx::telnyx_carrier::make(std::move(*parsed), *env, clock);
    if (!made) return std::move(made).error();
    return std::unique_ptr<carrier>(std::move(*made));
  });
}

result<void> register_sip(registry& r, std::shared_ptr<const carrier_environment> env) {
  if (!env) env = std::make_shared<const carrier_environment>();
  return r.add_carrier("sip", [env](const nlohmann::json& settings, dialer::clock& clock)
                                  -> result<std::unique_ptr<carrier>> {
    auto parsed = sip::parse_sip_settings(settings, *env);
    if (!parsed) return std::move(parsed).error();
    auto made = sip::sip_carrier::make(std::move(*parsed), clock);
    if (!made) return std::move(made).error();
    return std::unique_ptr<carrier>(std::move(*made));
  });
}

registry make_default_registry(std::shared_ptr<const carrier_environment> env) {
  registry r;
  if (auto added = register_sip(r, env); !added) throw dialer_exception(std::move(added).error());
  if (auto added = register_simulated(r); !added) throw dialer_exception(std::move(added).error());
  if (auto added = register_twilio(r, env); !added) throw dialer_exception(std::move(added).error());
  if (auto added = register_telnyx(r, std::move(env)); !added) throw dialer_exception(std::move(added).error());
  return r;
}

}  // namespace dialer::carriers
