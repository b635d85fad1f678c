// The carriers' number providers through the real `dialer` binary: search, buy, release and BYOC import against the
// fake Twilio and the fake Telnyx of tests/fakes (their published number resources), checked from the fakes' own
// state of the account: what the carrier holds, and where each number's calls go.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/fakes/fake_telnyx.hpp"
#include "tests/fakes/fake_twilio.hpp"
#include "tests/integration/e2e_fixture.hpp"

namespace dialer::testing::e2e {
namespace {

using nlohmann::json;

constexpr const char* kPublicBase = "https://dialer.example.com";

class NumberProviders : public campaign_test {
 protected:
  json ok_json(std::vector<std::string> args, const std::map<std::string, std::string>& env) {
    auto r = dialer_json(std::move(args), env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json();
  }
  static std::map<std::string, std::string> twilio_env(const fakes::fake_twilio& f, bool buys) {
    std::map<std::string, std::string> env{{"DIALER_TWILIO_ACCOUNT_SID", f.account_sid()},
                                           {"DIALER_TWILIO_AUTH_TOKEN", f.auth_token()},
                                           {"DIALER_TWILIO_BASE_URL", f.base_url()},
                                           {"DIALER_PUBLIC_BASE_URL", kPublicBase}};
    if (buys) env["DIALER_NUMBER_PROVIDER"] = "twilio";
    return env;
  }
  static std::map<std::string, std::string> telnyx_env(const fakes::fake_telnyx& f, bool buys) {
    std::map<std::string, std::string> env{{"DIALER_TELNYX_API_KEY", f.api_key()},
                                           {"DIALER_TELNYX_CONNECTION_ID", f.connection_id()},
                                           {"DIALER_TELNYX_BASE_URL", f.base_url()},
                                           {"DIALER_PUBLIC_BASE_URL", kPublicBase}};
    if (buys) env["DIALER_NUMBER_PROVIDER"] = "telnyx";
    return env;
  }
};

TEST_F(NumberProviders, TwilioSearchesBuysAndReleasesInTheAccountAndPointsBoughtNumbersHere) {
  fakes::fake_twilio fake;
  fake.start();
  const auto env = twilio_env(fake, true);
  const auto found = ok_json({"numbers", "search", "--country", "US", "--area-code", "415", "--limit", "3"}, env);
  ASSERT_EQ(found.size(), 3u) << found.dump();
  for (const auto& n : found) {
    EXPECT_EQ(n["e164"].get<std::string>().substr(0, 5), "+1415");
    EXPECT_EQ(n["provider"], "twilio");
  }
  const std::string e164 = found[0]["e164"];
  const auto bought = ok_json({"numbers", "buy", e164}, env);
  EXPECT_EQ(bought["provider"], "twilio");
  EXPECT_EQ(bought["kind"], "managed");
  // Twilio holds it now, with its calls sent to this platform; the row keeps Twilio's PN sid.
  const auto held = fake.incoming_numbers();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].phone_number, e164);
  EXPECT_EQ(held[0].voice_url, std::string(kPublicBase) + "/v1/inbound/twilio");
  EXPECT_EQ(query("SELECT provider_ref FROM numbers WHERE e164 = '" + e164 + "'")[0][0].as<std::string>(),
            held[0].sid);
  // A number Twilio does not offer is refused (not found), and nothing is recorded.
  const auto unavailable = dialer({"numbers", "buy", "+14155550250"}, env);
  EXPECT_EQ(unavailable.exit_code, 3) << unavailable.err;
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), 1);
  EXPECT_EQ(fake.incoming_numbers().size(), 1u);

  ASSERT_EQ(dialer({"numbers", "release", e164}, env).exit_code, 0);
  EXPECT_TRUE(fake.incoming_numbers().empty()) << "released at Twilio too";
  EXPECT_EQ(query("SELECT status FROM numbers WHERE e164 = '" + e164 + "'")[0][0].as<std::string>(), "released");
}

TEST_F(NumberProviders, TwilioByocImportFindsTheNumberInTheAccountAndPointsItsCallsHere) {
  fakes::fake_twilio_options o;
  o.owned_numbers = {"+13125550177"};
  o.auth_token = "tok-" + std::string(28, 'q');  // not a substring of the account SID, as the default is
  fakes::fake_twilio fake(o);
  fake.start();
  const auto env = twilio_env(fake, false);  // buys from the simulated inventory; imports through Twilio
  const auto imported = ok_json({"numbers", "import", "+1 (312) 555-0177", "--provider", "twilio"}, env);
  EXPECT_EQ(imported["kind"], "byoc");
  EXPECT_EQ(imported["provider"], "twilio");
  const auto held = fake.incoming_numbers();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].voice_url, std::string(kPublicBase) + "/v1/inbound/twilio");
  EXPECT_EQ(held[0].voice_method, "POST");
  // Already on the platform: refused (exit 4) before Twilio is asked anything that changes the number.
  const auto updates = fake.counters().requests.at("update_number");
  const auto again = dialer({"numbers", "import", "+13125550177", "--provider", "twilio"}, env);
  EXPECT_EQ(again.exit_code, 4) << again.err;
  EXPECT_EQ(fake.counters().requests.at("update_number"), updates);
  // A number the account does not hold: not found (exit 3), nothing recorded, nothing changed at Twilio.
  const auto missing = dialer({"numbers", "import", "+13125550178", "--provider", "twilio"}, env);
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find("not a number of account"), std::string::npos) << missing.err;
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), 1);
  // Twilio unreachable: nothing recorded, and the error says so.
  const auto port = fake.port();
  fake.stop();
  auto down = env;
  down["DIALER_TWILIO_BASE_URL"] = "http://127.0.0.1:" + std::to_string(port);
  const auto unreachable = dialer({"numbers", "import", "+13125550179", "--provider", "twilio"}, down);
  EXPECT_NE(unreachable.exit_code, 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), 1);
  // No credential in any output.
  for (const auto& text : {missing.err, missing.out, unreachable.err, unreachable.out})
    EXPECT_EQ(text.find(fake.auth_token()), std::string::npos);
}

TEST_F(NumberProviders, TelnyxOrdersFollowsAndReleasesNumbersOnThePlatformsConnection) {
  fakes::fake_telnyx fake;
  fake.start();
  const auto env = telnyx_env(fake, true);
  const auto found = ok_json({"numbers", "search", "--country", "US", "--area-code", "312", "--limit", "2"}, env);
  ASSERT_EQ(found.size(), 2u) << found.dump();
  for (const auto& n : found) EXPECT_EQ(n["e164"].get<std::string>().substr(0, 5), "+1312");
  const std::string e164 = found[1]["e164"];
  const auto bought = ok_json({"numbers", "buy", e164}, env);
  EXPECT_EQ(bought["provider"], "telnyx");
  // The order completed, the number is in the account on this platform's connection, and the connection's
  // webhook (where Telnyx sends inbound calls) is this platform's.
  const auto owned = fake.owned_numbers();
  ASSERT_EQ(owned.size(), 1u);
  EXPECT_EQ(owned[0].phone_number, e164);
  EXPECT_EQ(owned[0].status, "active");
  EXPECT_EQ(owned[0].connection_id, fake.connection_id());
  EXPECT_EQ(fake.application_webhook_url(), std::string(kPublicBase) + "/v1/inbound/telnyx");
  EXPECT_EQ(query("SELECT provider_ref FROM numbers WHERE e164 = '" + e164 + "'")[0][0].as<std::string>(),
            owned[0].id);
  EXPECT_EQ(fake.counters().orders_completed, 1);

  ASSERT_EQ(dialer({"numbers", "release", e164}, env).exit_code, 0);
  EXPECT_TRUE(fake.owned_numbers().empty()) << "released at Telnyx too";
}

TEST_F(NumberProviders, TelnyxByocImportRoutesTheNumberToThePlatformsConnection) {
  fakes::fake_telnyx_options o;
  o.owned_numbers = {"+16175550142"};
  fakes::fake_telnyx fake(o);
  fake.start();
  const auto env = telnyx_env(fake, false);
  const auto imported = ok_json({"numbers", "import", "+16175550142", "--provider", "telnyx"}, env);
  EXPECT_EQ(imported["kind"], "byoc");
  const auto owned = fake.owned_numbers();
  ASSERT_EQ(owned.size(), 1u);
  EXPECT_EQ(owned[0].connection_id, fake.connection_id());
  EXPECT_EQ(fake.application_webhook_url(), std::string(kPublicBase) + "/v1/inbound/telnyx");
  const auto missing = dialer({"numbers", "import", "+16175550143", "--provider", "telnyx"}, env);
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), 1);
  // A Telnyx number cannot be imported through Twilio's account (no credentials here): refused, nothing recorded.
  const auto other = dialer({"numbers", "import", "+16175550144", "--provider", "twilio"}, env);
  EXPECT_EQ(other.exit_code, 2) << other.err;
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), 1);
  for (const auto& text : {missing.err, other.err}) EXPECT_EQ(text.find(fake.api_key()), std::string::npos);
}

TEST_F(NumberProviders, AHalfConfiguredProviderIsAClearErrorAtOnce) {
  const auto r = dialer({"numbers", "search", "--country", "US"},
                        {{"DIALER_NUMBER_PROVIDER", "telnyx"}, {"DIALER_TELNYX_API_KEY", "KEY-abc"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("DIALER_TELNYX_CONNECTION_ID"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("KEY-abc"), std::string::npos);
  const auto unknown = dialer({"numbers", "search", "--country", "US"}, {{"DIALER_NUMBER_PROVIDER", "acme"}});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("simulated, twilio or telnyx"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace dialer::testing::e2e
