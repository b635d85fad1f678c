// Twilio's REST shapes as the adapter builds and reads them: the create form, the hand-off TwiML, what an error
// answer means, what a final status means.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "adapters/carriers/rest/credentials.hpp"
#include "adapters/carriers/rest/http_pool.hpp"
#include "adapters/carriers/twilio/twilio_carrier.hpp"
#include "adapters/carriers/twilio/twilio_protocol.hpp"
#include "adapters/http/url.hpp"

namespace dialer::carriers::twilio {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

origination_request request_to(std::string handoff, std::string variables = "{}") {
  origination_request r;
  r.attempt = attempt_id(4242);
  r.campaign = campaign_id(7);
  r.contact = contact_id(99);
  r.from_e164 = "+14155550100";
  r.to_e164 = "+14155550123";
  r.handoff = std::move(handoff);
  r.variables_json = std::move(variables);
  return r;
}

TEST(TwilioProtocol, FormEncodesRepeatedFieldsAndReservedCharacters) {
  const auto body = encode_form({{"To", "+14155550123"}, {"StatusCallbackEvent", "ringing"},
                                 {"StatusCallbackEvent", "completed"}, {"Twiml", "<Response a=\"b&c\"/>"}});
  EXPECT_EQ(body, "To=%2B14155550123&StatusCallbackEvent=ringing&StatusCallbackEvent=completed&"
                  "Twiml=%3CResponse%20a%3D%22b%26c%22%2F%3E");
  const auto back = http::parse_form(body);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 4u);
  EXPECT_EQ((*back)[0].second, "+14155550123");
  EXPECT_EQ((*back)[3].second, "<Response a=\"b&c\"/>");
}

TEST(TwilioProtocol, MediaStreamHandOffCarriesTheAttemptAndEscapedVariables) {
  const auto twiml = handoff_twiml(request_to("wss://agents.example.com/s?x=1&y=2", R"({"name": "Ann <\"&'>"})"));
  ASSERT_TRUE(twiml) << twiml.error().message;
  EXPECT_THAT(*twiml, HasSubstr("<Connect><Stream url=\"wss://agents.example.com/s?x=1&amp;y=2\">"));
  EXPECT_THAT(*twiml, HasSubstr("<Parameter name=\"attempt_id\" value=\"4242\"/>"));
  EXPECT_THAT(*twiml, HasSubstr("<Parameter name=\"campaign_id\" value=\"7\"/>"));
  EXPECT_THAT(*twiml, HasSubstr("<Parameter name=\"contact_id\" value=\"99\"/>"));
  EXPECT_THAT(*twiml, HasSubstr("<Parameter name=\"name\" value=\"Ann &lt;&quot;&amp;&apos;&gt;\"/>"));
  EXPECT_TRUE(twiml->starts_with("<Response>"));
  EXPECT_TRUE(twiml->ends_with("</Stream></Connect></Response>"));
}

TEST(TwilioProtocol, SipHandOffPutsTheAttemptInXHeaders) {
  const auto twiml = handoff_twiml(request_to("sip:agent@sip.example.com", R"({"account_tier": "gold"})"));
  ASSERT_TRUE(twiml) << twiml.error().message;
  EXPECT_EQ(*twiml,
            "<Response><Dial><Sip>sip:agent@sip.example.com?X-Attempt-Id=4242&amp;X-Campaign-Id=7&amp;"
            "X-Contact-Id=99&amp;X-Account-Tier=gold</Sip></Dial></Response>");
}

TEST(TwilioProtocol, VariablesThatDoNotFitAreLeftOutAndCounted) {
  nlohmann::json vars = nlohmann::json::object();
  for (int i = 0; i < 100; ++i) vars["v" + std::to_string(i)] = std::string(60, 'x');
  int dropped = 0;
  const auto twiml = handoff_twiml(request_to("wss://a.example.com/s", vars.dump()), &dropped);
  ASSERT_TRUE(twiml);
  EXPECT_LE(twiml->size(), kMaxTwiml);
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, 100);
  EXPECT_THAT(*twiml, HasSubstr("attempt_id"));
}

TEST(TwilioProtocol, AnHttpsHandOffIsRefused) {
  const auto twiml = handoff_twiml(request_to("https://agents.example.com/twiml"));
  ASSERT_FALSE(twiml);
  EXPECT_THAT(twiml.error().message, HasSubstr("neither a media stream"));
}

std::string error_body(int code, int status) {
  return nlohmann::json{{"code", code}, {"message", "m"}, {"more_info", "https://www.twilio.com/docs/errors/" +
                                                                           std::to_string(code)},
                        {"status", status}}
      .dump();
}

TEST(TwilioProtocol, ErrorAnswersMapToTheEnginesRefusals) {
  using std::chrono::milliseconds;
  auto d = classify_error(429, error_body(20429, 429), std::chrono::seconds(3));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->why, origination_refusal::throttled);
  EXPECT_EQ(d->retry_after, milliseconds(3000));

  d = classify_error(400, error_body(21210, 400), std::nullopt);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->why, origination_refusal::number_unusable);
  EXPECT_THAT(d->detail, HasSubstr("21210"));
  d = classify_error(400, error_body(21212, 400), std::nullopt);
  EXPECT_EQ(d->why, origination_refusal::number_unusable);

  for (int code : {21211, 21217, 13224}) {
    d = classify_error(400, error_body(code, 400), std::nullopt);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->why, origination_refusal::invalid_destination) << code;
  }
  for (int code : {10004, 32001}) {
    d = classify_error(400, error_body(code, 400), std::nullopt);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->why, origination_refusal::throttled) << code;
    EXPECT_TRUE(d->retry_after);
  }
  d = classify_error(503, error_body(20503, 503), std::nullopt);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->why, origination_refusal::not_placed);
  EXPECT_THAT(d->detail, HasSubstr("20503"));
  // A 500, 502 or 504, or a 503 from a proxy in front of Twilio, may come after the call was created: the answer
  // does not tell.
  EXPECT_FALSE(classify_error(500, error_body(20500, 500), std::nullopt));
  EXPECT_FALSE(classify_error(502, "<html>Bad Gateway</html>", std::nullopt));
  EXPECT_FALSE(classify_error(503, "<html>Service Unavailable</html>", std::nullopt));
  EXPECT_FALSE(classify_error(504, "", std::nullopt));
  d = classify_error(401, error_body(20003, 401), std::nullopt);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->why, origination_refusal::not_placed);
  EXPECT_GE(*d->retry_after, milliseconds(30'000));
}

TEST(TwilioProtocol, FinalStatusesMapToOutcomes) {
  call_status s;
  s.status = "completed";
  EXPECT_EQ(outcome_of(s, false), call_outcome::completed);
  EXPECT_EQ(outcome_of(s, true), call_outcome::voicemail);
  s.answered_by = "machine_end_beep";
  EXPECT_EQ(outcome_of(s, false), call_outcome::voicemail);
  s.answered_by = "human";
  EXPECT_EQ(outcome_of(s, false), call_outcome::completed);
  s = {};
  s.status = "busy";
  EXPECT_EQ(outcome_of(s, false), call_outcome::busy);
  s.status = "no-answer";
  EXPECT_EQ(outcome_of(s, false), call_outcome::no_answer);
  s.status = "canceled";
  EXPECT_EQ(outcome_of(s, false), call_outcome::canceled);
  s.status = "failed";
  EXPECT_EQ(outcome_of(s, false), call_outcome::failed);
  s.sip_response = "486";
  EXPECT_EQ(outcome_of(s, false), call_outcome::busy);
  s.sip_response = "480";
  EXPECT_EQ(outcome_of(s, false), call_outcome::no_answer);
  EXPECT_TRUE(is_final("no-answer"));
  EXPECT_FALSE(is_final("in-progress"));
}

TEST(TwilioProtocol, CallbackFieldsAndCallResourcesAreRead) {
  const auto st = status_of_callback(nlohmann::json{{"CallStatus", "completed"},
                                                    {"CallDuration", "42"},
                                                    {"SipResponseCode", "200"},
                                                    {"AnsweredBy", "human"},
                                                    {"Timestamp", "Tue, 31 Aug 2010 20:36:28 +0000"}});
  EXPECT_EQ(st.status, "completed");
  EXPECT_EQ(st.duration_s, 42);
  EXPECT_EQ(st.sip_response, "200");
  ASSERT_TRUE(st.at);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*st.at), 1283286988);
  const auto r = status_of_resource(nlohmann::json{{"status", "busy"}, {"duration", nullptr}, {"end_time", nullptr}});
  EXPECT_EQ(r.status, "busy");
  EXPECT_EQ(r.duration_s, -1);
  EXPECT_FALSE(r.at);
  const auto shifted = parse_rfc2822("Tue, 31 Aug 2010 22:36:28 +0200");
  ASSERT_TRUE(shifted);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*shifted), 1283286988);
  EXPECT_FALSE(parse_rfc2822("yesterday"));
}

TEST(TwilioSettings, CredentialsComeFromTheProcessAndAreNeverQuoted) {
  carrier_environment env;
  env.public_base_url = "https://dialer.example.com/";
  env.credentials.values["twilio.account_sid"] = secret("AC" + std::string(32, 'a'));
  env.credentials.values["twilio.auth_token"] = secret("tok-very-secret-123");
  // The campaign names another account than the process's credentials: an error now, not a 401 at every call.
  auto other = parse_twilio_settings(nlohmann::json{{"account_sid", "AC" + std::string(32, 'b')}}, env);
  ASSERT_FALSE(other);
  EXPECT_THAT(other.error().message, HasSubstr("names account AC" + std::string(32, 'b')));
  // An API key alone cannot verify Twilio's callbacks: the auth token is required.
  carrier_environment key_only;
  key_only.public_base_url = "https://dialer.example.com";
  key_only.credentials.values["twilio.account_sid"] = secret("AC" + std::string(32, 'a'));
  key_only.credentials.values["twilio.api_key_sid"] = secret("SK" + std::string(32, 'c'));
  key_only.credentials.values["twilio.api_key_secret"] = secret("key-secret");
  auto no_token = parse_twilio_settings(nlohmann::json::object(), key_only);
  ASSERT_FALSE(no_token);
  EXPECT_THAT(no_token.error().message, HasSubstr("DIALER_TWILIO_AUTH_TOKEN"));
  // A stored campaign's settings hold "<redacted>": the process's token applies.
  auto s = parse_twilio_settings(nlohmann::json{{"auth_token", "<redacted>"}, {"account_cps", 5}}, env);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->auth_token.reveal(), "tok-very-secret-123");
  EXPECT_EQ(s->account_cps, 5);
  EXPECT_EQ(s->public_base_url, "https://dialer.example.com");
  EXPECT_EQ(fmt::format("{}", s->auth_token), "<redacted>");

  // A bad value of a secret field is reported without its value.
  auto bad = parse_twilio_settings(nlohmann::json{{"auth_token", 12345678}}, env);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, Not(HasSubstr("12345678")));

  carrier_environment none;
  none.public_base_url = "https://dialer.example.com";
  auto missing = parse_twilio_settings(nlohmann::json::object(), none);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("DIALER_TWILIO_ACCOUNT_SID"));

  auto unknown = parse_twilio_settings(nlohmann::json{{"acount_cps", 1}}, env);
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("unknown setting 'acount_cps'"));

  auto md = parse_twilio_settings(nlohmann::json{{"machine_detection", {{"mode", "sometimes"}}}}, env);
  ASSERT_FALSE(md);
  EXPECT_THAT(md.error().message, HasSubstr("off, enable, detect_message_end"));

  carrier_environment no_base = env;
  no_base.public_base_url.clear();
  auto unreachable = parse_twilio_settings(nlohmann::json::object(), no_base);
  ASSERT_FALSE(unreachable);
  EXPECT_THAT(unreachable.error().message, HasSubstr("DIALER_PUBLIC_BASE_URL"));
}

TEST(CarrierCredentials, TheSecretsFileAndTheEnvironmentMayNotBothSetOneValue) {
  const std::string path = ::testing::TempDir() + "carrier-secrets.json";
  {
    std::ofstream f(path);
    f << R"({"twilio": {"account_sid": "AC00000000000000000000000000000000", "auth_token": "from-file"}})";
  }
  ::setenv("DIALER_CARRIER_SECRETS_FILE", path.c_str(), 1);
  ::unsetenv("DIALER_TWILIO_AUTH_TOKEN");
  auto c = credentials_from_environment();
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_NE(c->find("twilio.auth_token"), nullptr);
  EXPECT_EQ(c->find("twilio.auth_token")->reveal(), "from-file");
  ::setenv("DIALER_TWILIO_AUTH_TOKEN", "from-env", 1);
  auto both = credentials_from_environment();
  ASSERT_FALSE(both);
  EXPECT_THAT(both.error().message, HasSubstr("DIALER_TWILIO_AUTH_TOKEN"));
  EXPECT_THAT(both.error().message, Not(HasSubstr("from-file")));
  EXPECT_THAT(both.error().message, Not(HasSubstr("from-env")));
  {
    std::ofstream f(path);
    f << R"({"twilio": {"auth_tokn": "x"}})";
  }
  ::unsetenv("DIALER_TWILIO_AUTH_TOKEN");
  auto typo = credentials_from_environment();
  ASSERT_FALSE(typo);
  EXPECT_THAT(typo.error().message, HasSubstr("unknown field 'twilio.auth_tokn'"));
  ::unsetenv("DIALER_CARRIER_SECRETS_FILE");
}

TEST(RestClient, RetryAfterIsReadAsSecondsOrAnHttpDate) {
  EXPECT_EQ(http::parse_retry_after("7"), std::chrono::seconds(7));
  EXPECT_EQ(http::parse_retry_after(" 0 "), std::chrono::seconds(0));
  EXPECT_EQ(http::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::chrono::seconds(0));  // past
  EXPECT_FALSE(http::parse_retry_after("soon"));
  EXPECT_EQ(rest::basic_authorization("AC1", "tok"), "Basic QUMxOnRvaw==");
}

}  // namespace
}  // namespace dialer::carriers::twilio
