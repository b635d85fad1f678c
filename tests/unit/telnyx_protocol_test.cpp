// Telnyx Call Control shapes as the adapter builds and reads them: the dial's JSON and its hand-off, the
// client_state that names who placed a call, what an error answer means, what a hangup means; and the settings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "adapters/carriers/rest/credentials.hpp"
#include "adapters/carriers/telnyx/telnyx_carrier.hpp"
#include "adapters/carriers/telnyx/telnyx_protocol.hpp"
#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"

namespace dialer::carriers::telnyx {
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
  r.idempotency_key = "att-4242";
  return r;
}

dial_options options() {
  dial_options o;
  o.connection_id = "1494404757140276705";
  o.webhook_url = "https://dialer.example.com/v1/carriers/telnyx/events";
  o.timeout_secs = 25;
  return o;
}

TEST(TelnyxProtocol, ClientStateNamesTheInstanceAttemptAndPlacementAndRejectsAnythingElse) {
  const auto state = encode_client_state({"0123abcd4567ef89", 4242, "9f8e7d6c", ""});
  const auto back = decode_client_state(state);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->instance, "0123abcd4567ef89");
  EXPECT_EQ(back->attempt, 4242);
  EXPECT_EQ(back->placement, "9f8e7d6c");
  EXPECT_EQ(back->leg, "");
  EXPECT_EQ(decode_client_state(encode_client_state({"0123abcd4567ef89", 4242, "9f8e7d6c", "agent"}))->leg, "agent");
  EXPECT_FALSE(decode_client_state(""));
  EXPECT_FALSE(decode_client_state("not base64!"));
  EXPECT_FALSE(decode_client_state(http::base64(R"({"instance":"x","attempt":0})")));    // no attempt
  EXPECT_FALSE(decode_client_state(http::base64(R"({"attempt":5})")));                    // no instance
  EXPECT_FALSE(decode_client_state(http::base64("[1,2,3]")));                             // not an object
  EXPECT_FALSE(decode_client_state(http::base64(R"({"instance":"x","attempt":"5"})")));  // attempt not a number
}

TEST(TelnyxProtocol, AStreamHandOffRidesOnTheDialWithTheIdsAndVariablesInItsUrl) {
  auto r = request_to("wss://agent.example.com/media?token=abc", R"({"first_name":"Ada & Bob","age":36})");
  int dropped = -1;
  auto body = dial_body(r, options(), "STATE", &dropped);
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(dropped, 0);
  EXPECT_EQ((*body)["connection_id"], "1494404757140276705");
  EXPECT_EQ((*body)["to"], "+14155550123");
  EXPECT_EQ((*body)["from"], "+14155550100");
  EXPECT_EQ((*body)["webhook_url"], "https://dialer.example.com/v1/carriers/telnyx/events");
  EXPECT_EQ((*body)["timeout_secs"], 25);
  EXPECT_EQ((*body)["client_state"], "STATE");
  EXPECT_EQ((*body)["command_id"], "att-4242");
  EXPECT_FALSE(body->contains("answering_machine_detection"));
  EXPECT_EQ((*body)["stream_track"], "both_tracks");
  EXPECT_EQ((*body)["stream_bidirectional_mode"], "rtp");
  const auto url = (*body)["stream_url"].get<std::string>();
  EXPECT_EQ(url.rfind("wss://agent.example.com/media?token=abc&attempt_id=4242&campaign_id=7&contact_id=99", 0), 0u)
      << url;
  EXPECT_THAT(url, HasSubstr("&first_name=Ada%20%26%20Bob"));
  EXPECT_THAT(url, HasSubstr("&age=36"));

  // Variables that would pass the URL limit are left out and counted; the ids stay.
  auto many = nlohmann::json::object();
  for (int i = 0; i < 40; ++i) many[fmt::format("v{:02}", i)] = std::string(100, 'x');
  auto big = dial_body(request_to("wss://a.example/s", many.dump()), options(), "S", &dropped);
  ASSERT_TRUE(big);
  EXPECT_LE((*big)["stream_url"].get<std::string>().size(), kMaxStreamUrl);
  EXPECT_THAT((*big)["stream_url"].get<std::string>(), HasSubstr("attempt_id=4242"));
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, 40);

  auto amd = options();
  amd.machine_detection = "detect_beep";
  EXPECT_EQ((*dial_body(r, amd, "S"))["answering_machine_detection"], "detect_beep");
}

TEST(TelnyxProtocol, ASipHandOffIsATransferOnAnswerWithXHeaders) {
  auto r = request_to("sip:agent@voice.example.com", R"({"first_name":"Ada"})");
  auto body = dial_body(r, options(), "S");
  ASSERT_TRUE(body);
  EXPECT_FALSE(body->contains("stream_url"));
  auto scoped = options();
  scoped.command_scope = "9b2f0c1e-5d4a-4c3b-8e7f-0a1b2c3d4e5f";
  const auto t = transfer_body(r, scoped, "S2", "S3");
  EXPECT_EQ(t["to"], "sip:agent@voice.example.com");
  EXPECT_EQ(t["client_state"], "S2");
  EXPECT_EQ(t["target_leg_client_state"], "S3");
  // Command ids are scoped by the database's installation id: two databases on one account never share one.
  EXPECT_EQ(t["command_id"], "9b2f0c1e-5d4a-4c3b-8e7f-0a1b2c3d4e5f:att-4242:transfer");
  EXPECT_EQ((*dial_body(r, scoped, "S"))["command_id"], "9b2f0c1e-5d4a-4c3b-8e7f-0a1b2c3d4e5f:att-4242");
  std::map<std::string, std::string> headers;
  for (const auto& h : t["custom_headers"]) headers[h["name"]] = h["value"];
  EXPECT_EQ(headers["X-Attempt-Id"], "4242");
  EXPECT_EQ(headers["X-Campaign-Id"], "7");
  EXPECT_EQ(headers["X-Contact-Id"], "99");
  EXPECT_EQ(headers["X-First-Name"], "Ada");

  auto bad = dial_body(request_to("https://agent.example.com/twiml"), options(), "S");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("neither a media stream"));
}

std::string errors(std::string code, std::string title, std::string pointer = "") {
  nlohmann::json e{{"code", code}, {"title", title}, {"detail", title + " (detail)"}};
  if (!pointer.empty()) e["source"] = {{"pointer", pointer}};
  return nlohmann::json{{"errors", nlohmann::json::array({e})}}.dump();
}

TEST(TelnyxProtocol, ErrorsSayWhetherToSlowDownDropTheNumberOrTheContact) {
  using std::chrono::milliseconds;
  auto throttled = classify_error(429, errors("10011", "Too many requests"), std::chrono::seconds(3));
  ASSERT_TRUE(throttled);
  EXPECT_EQ(throttled->why, origination_refusal::throttled);
  EXPECT_EQ(throttled->retry_after, milliseconds(3000));
  EXPECT_THAT(throttled->detail, HasSubstr("telnyx 10011: Too many requests"));
  EXPECT_EQ(classify_error(429, "", std::nullopt)->retry_after, milliseconds(1000));

  auto channels = classify_error(403, errors("90041", "Channel limit exceeded"), std::nullopt);
  ASSERT_TRUE(channels);
  EXPECT_EQ(channels->why, origination_refusal::throttled);

  EXPECT_EQ(classify_error(422, errors("10016", "Phone number must be +E.164", "/to"), std::nullopt)->why,
            origination_refusal::invalid_destination);
  EXPECT_EQ(classify_error(422, errors("10002", "Invalid phone number", "/to"), std::nullopt)->why,
            origination_refusal::invalid_destination);
  EXPECT_EQ(classify_error(422, errors("10016", "Phone number must be +E.164", "/from"), std::nullopt)->why,
            origination_refusal::number_unusable);
  EXPECT_EQ(classify_error(422, errors("10001", "Inactive phone number", "/from"), std::nullopt)->why,
            origination_refusal::number_unusable);
  // The field named wins over the code.
  EXPECT_EQ(classify_error(422, errors("10001", "Inactive phone number", "/to"), std::nullopt)->why,
            origination_refusal::invalid_destination);

  auto auth = classify_error(401, errors("10009", "Authentication failed"), std::nullopt);
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->why, origination_refusal::not_placed);
  EXPECT_EQ(auth->retry_after, milliseconds(30'000));

  // A 5xx does not say whether the call was created: the adapter sends the same command again.
  EXPECT_FALSE(classify_error(500, errors("10007", "Unexpected error"), std::nullopt));
  EXPECT_FALSE(classify_error(503, "<html>bad gateway</html>", std::nullopt));
}

TEST(TelnyxProtocol, AHangupMapsToTheOutcome) {
  const auto h = [](std::string cause, std::string sip) {
    return hangup_of(nlohmann::json{{"hangup_cause", cause}, {"sip_hangup_cause", sip}});
  };
  EXPECT_EQ(outcome_of(h("normal_clearing", "200"), true, false, false), call_outcome::completed);
  EXPECT_EQ(outcome_of(h("normal_clearing", "200"), true, true, false), call_outcome::voicemail);
  EXPECT_EQ(outcome_of(h("user_busy", "486"), false, false, false), call_outcome::busy);
  EXPECT_EQ(outcome_of(h("call_rejected", "600"), false, false, false), call_outcome::busy);
  EXPECT_EQ(outcome_of(h("timeout", "487"), false, false, false), call_outcome::no_answer);
  EXPECT_EQ(outcome_of(h("no_answer", "unspecified"), false, false, false), call_outcome::no_answer);
  EXPECT_EQ(outcome_of(h("originator_cancel", "487"), false, false, true), call_outcome::canceled);
  EXPECT_EQ(outcome_of(h("call_rejected", "503"), false, false, false), call_outcome::failed);
  EXPECT_EQ(outcome_of(h("not_found", "404"), false, false, false), call_outcome::failed);
  EXPECT_TRUE(is_channel_limit(h("call_rejected", "403"), false));
  EXPECT_FALSE(is_channel_limit(h("call_rejected", "403"), true));
  auto callee = hangup_of(nlohmann::json{{"hangup_cause", "call_rejected"}, {"sip_hangup_cause", "403"},
                                         {"hangup_source", "callee"}});
  EXPECT_FALSE(is_channel_limit(callee, false)) << "a callee's own 403 is not our channel limit";
  EXPECT_TRUE(was_answered(h("normal_clearing", "200")));
  EXPECT_FALSE(was_answered(h("normal_clearing", "487")));
  EXPECT_TRUE(is_machine("beep_detected"));
  EXPECT_TRUE(is_machine("machine"));
  EXPECT_TRUE(is_machine("fax_detected"));
  EXPECT_FALSE(is_machine("human"));
  EXPECT_FALSE(is_machine("not_sure"));
  EXPECT_EQ(step_of("call.hangup"), "final");
  EXPECT_EQ(step_of("call.answered"), "answered");
  EXPECT_EQ(step_of("call.initiated"), "initiated");
  EXPECT_EQ(step_of("call.machine.premium.detection.ended"), "amd");
  EXPECT_EQ(step_of("call.machine.premium.greeting.ended"), "greeting");
  EXPECT_EQ(step_of("call.bridged"), "");

  const auto status = hangup_of(nlohmann::json{{"call_duration", 42},
                                               {"start_time", "2026-12-07T10:00:00.250Z"},
                                               {"end_time", "2026-12-07T10:00:42+00:00"}});
  EXPECT_EQ(status.duration_s, 42);
  ASSERT_TRUE(status.started && status.ended);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*status.ended - *status.started).count(), 41'750);
}

TEST(TelnyxProtocol, Iso8601TimesWithOffsetsAndFractions) {
  const auto t = parse_iso8601("2026-12-07T10:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1796637600);
  EXPECT_EQ(*parse_iso8601("2026-12-07T12:00:00+02:00"), *t);
  EXPECT_EQ(*parse_iso8601("2026-12-07T05:00:00-05:00"), *t);
  EXPECT_EQ(*parse_iso8601("2026-12-07T15:30:00+0530"), *t);
  EXPECT_EQ(*parse_iso8601("2026-12-07T10:00:00.5Z") - *t, std::chrono::milliseconds(500));
  EXPECT_FALSE(parse_iso8601("yesterday"));
  EXPECT_FALSE(parse_iso8601("2026-12-07T10:00:00 junk"));
}

TEST(TelnyxSettings, CredentialsComeFromTheProcessAndAreNeverQuoted) {
  carrier_environment env;
  env.public_base_url = "https://dialer.example.com/";
  env.credentials.values["telnyx.api_key"] = secret("KEY-very-secret-123");
  env.credentials.values["telnyx.connection_id"] = secret("1494404757140276705");
  auto s = parse_telnyx_settings(nlohmann::json{{"api_key", "<redacted>"},
                                                {"machine_detection", {{"mode", "detect"}, {"on_machine", "leave_message"}}},
                                                {"stream", {{"codec", "PCMU"}}}},
                                 env);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->api_key.reveal(), "KEY-very-secret-123");
  EXPECT_EQ(s->connection_id, "1494404757140276705");
  EXPECT_EQ(s->account_cps, 30);
  EXPECT_EQ(s->machine_detection, "detect");
  EXPECT_FALSE(s->hang_up_on_machine);
  EXPECT_EQ(s->stream_codec, "PCMU");
  EXPECT_EQ(s->public_base_url, "https://dialer.example.com");
  EXPECT_EQ(fmt::format("{}", s->api_key), "<redacted>");
  // One account, one identity, whichever campaign uses it; the key itself is not in it.
  EXPECT_EQ(telnyx_account_identity(s->api_key), telnyx_account_identity(secret("KEY-very-secret-123")));
  EXPECT_NE(telnyx_account_identity(s->api_key), telnyx_account_identity(secret("another key")));
  EXPECT_THAT(telnyx_account_identity(s->api_key), Not(HasSubstr("secret")));

  auto bad = parse_telnyx_settings(nlohmann::json{{"api_key", 12345678}}, env);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, Not(HasSubstr("12345678")));

  carrier_environment none;
  none.public_base_url = "https://dialer.example.com";
  auto missing = parse_telnyx_settings(nlohmann::json::object(), none);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("DIALER_TELNYX_API_KEY"));
  none.credentials.values["telnyx.api_key"] = secret("k");
  auto no_connection = parse_telnyx_settings(nlohmann::json::object(), none);
  ASSERT_FALSE(no_connection);
  EXPECT_THAT(no_connection.error().message, HasSubstr("DIALER_TELNYX_CONNECTION_ID"));

  auto unknown = parse_telnyx_settings(nlohmann::json{{"conection_id", "1"}}, env);
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("unknown setting 'conection_id'"));
  auto mode = parse_telnyx_settings(nlohmann::json{{"machine_detection", {{"mode", "sometimes"}}}}, env);
  ASSERT_FALSE(mode);
  EXPECT_THAT(mode.error().message, HasSubstr("machine_detection.mode"));
  auto nested = parse_telnyx_settings(nlohmann::json{{"stream", {{"trak", "x"}}}}, env);
  ASSERT_FALSE(nested);
  EXPECT_THAT(nested.error().message, HasSubstr("unknown setting 'stream.trak'"));

  carrier_environment no_base = env;
  no_base.public_base_url.clear();
  auto unreachable = parse_telnyx_settings(nlohmann::json::object(), no_base);
  ASSERT_FALSE(unreachable);
  EXPECT_THAT(unreachable.error().message, HasSubstr("DIALER_PUBLIC_BASE_URL"));
}

}  // namespace
}  // namespace dialer::carriers::telnyx
