#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "adapters/carriers/registry.hpp"
#include "adapters/carriers/simulated/simulated_carrier.hpp"

namespace dialer::carriers {
namespace {

TEST(CarrierRegistry, DefaultRegistryKnowsTheSimulatedCarrierAndProvider) {
  auto r = make_default_registry();
  EXPECT_EQ(r.carrier_names(), (std::vector<std::string>{"simulated", "sip", "telnyx", "twilio"}));
  EXPECT_EQ(r.number_provider_names(), std::vector<std::string>{"simulated"});
}

TEST(CarrierRegistry, BuildsTheSimulatedCarrierFromSettings) {
  auto r = make_default_registry();
  manual_clock clock;
  auto built = r.make_carrier("simulated", nlohmann::json{{"seed", 9}, {"mode", "instant"}}, clock);
  ASSERT_TRUE(built) << built.error().message;
  EXPECT_EQ((*built)->name(), "simulated");
  auto* sim = dynamic_cast<simulated_carrier*>(built->get());
  ASSERT_NE(sim, nullptr);
  EXPECT_EQ(sim->settings().seed, 9u);
  EXPECT_TRUE(sim->settings().instant);
}

TEST(CarrierRegistry, InvalidSettingsAreAConfigurationError) {
  auto r = make_default_registry();
  manual_clock clock;
  auto built = r.make_carrier("simulated", nlohmann::json{{"rates", {{"busy", 2}}}}, clock);
  ASSERT_FALSE(built);
  EXPECT_EQ(built.error().code, errc::invalid_input);
  EXPECT_NE(built.error().message.find("rates.busy"), std::string::npos);
}

TEST(CarrierRegistry, UnknownCarrierNameListsTheKnownOnes) {
  auto r = make_default_registry();
  ASSERT_TRUE(
      r.add_carrier("vonage", [](const nlohmann::json&, dialer::clock&) -> result<std::unique_ptr<carrier>> {
        return make_error(errc::unavailable, "not built in this test");
      }));
  manual_clock clock;
  auto built = r.make_carrier("twillio", nullptr, clock);
  ASSERT_FALSE(built);
  EXPECT_EQ(built.error().code, errc::invalid_input);
  EXPECT_EQ(built.error().message, "unknown carrier 'twillio'; known carriers: simulated, sip, telnyx, twilio, vonage");
}

TEST(CarrierRegistry, UnknownNumberProviderNameListsTheKnownOnes) {
  auto r = make_default_registry();
  manual_clock clock;
  auto built = r.make_number_provider("telnyx", nullptr, clock);
  ASSERT_FALSE(built);
  EXPECT_EQ(built.error().code, errc::invalid_input);
  EXPECT_EQ(built.error().message, "unknown number provider 'telnyx'; known number providers: simulated");
}

TEST(CarrierRegistry, DuplicateNameIsRejected) {
  auto r = make_default_registry();
  auto again = register_simulated(r);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::conflict);
  EXPECT_EQ(again.error().message, "carrier 'simulated' is already registered");

  auto provider_again = r.add_number_provider(
      "simulated", [](const nlohmann::json&, dialer::clock&) -> result<std::unique_ptr<number_provider>> {
        return make_error(errc::internal, "unused");
      });
  ASSERT_FALSE(provider_again);
  EXPECT_EQ(provider_again.error().message, "number provider 'simulated' is already registered");
}

TEST(CarrierRegistry, MalformedNameIsRejected) {
  registry r;
  auto added = r.add_carrier("Twilio Prod",
                             [](const nlohmann::json&, dialer::clock&) -> result<std::unique_ptr<carrier>> {
                               return make_error(errc::internal, "unused");
                             });
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().code, errc::invalid_input);
}

TEST(CarrierRegistry, SimulatedNumberProviderTakesNoSettings) {
  auto r = make_default_registry();
  manual_clock clock;
  auto provider = r.make_number_provider("simulated", nlohmann::json::object(), clock);
  ASSERT_TRUE(provider);
  EXPECT_EQ((*provider)->name(), "simulated");
  auto with_settings = r.make_number_provider("simulated", nlohmann::json{{"seed", 1}}, clock);
  ASSERT_FALSE(with_settings);
  EXPECT_EQ(with_settings.error().code, errc::invalid_input);
}

}  // namespace
}  // namespace dialer::carriers
