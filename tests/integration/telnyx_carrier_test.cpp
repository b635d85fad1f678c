// The Telnyx carrier end to end: real `dialer serve` processes on a fresh PostgreSQL database place calls through
// the fake Telnyx of tests/fakes (real HTTP on loopback, Call Control's published request, answer, webhook and error
// shapes, ed25519-signed webhooks), which posts each call's webhooks back to an engine's HTTP server. The fake's own
// record of the calls it created is the outside check: no attempt placed twice (counted by the attempt each call
// carries, not by the command_id that would hide a second dial), and every contact's outcome is what the fake did
// with its call, whatever REST and webhook faults it met on the way.
#include <set>

#include "tests/fakes/fake_telnyx.hpp"
#include "tests/integration/e2e_fixture.hpp"

namespace dialer::testing::e2e {
namespace {

using fakes::fake_telnyx;
using fakes::fake_telnyx_options;
using fakes::telnyx_rest_fault;
using fakes::telnyx_webhook_fault;

bool has(const std::vector<telnyx_webhook_fault>& faults, telnyx_webhook_fault f) {
  return std::find(faults.begin(), faults.end(), f) != faults.end();
}

bool unheard(const fakes::telnyx_call_snapshot& c) {
  return has(c.webhook_faults, telnyx_webhook_fault::never) || has(c.webhook_faults, telnyx_webhook_fault::bad_signature);
}

// What the fake did with a call, as the engine must have recorded it. A call none of whose webhooks came (or came
// rightly signed) is known only from its status, which says it ended, not whether it was answered: `unknown`.
std::string expected_outcome(const fakes::telnyx_call_snapshot& c) {
  const bool talked = c.duration.value_or(0) > 0;
  if (unheard(c)) return "unknown";
  if (talked) return c.amd_result == "machine" ? "voicemail" : "completed";
  if (c.hangup_cause == "user_busy") return "busy";
  if (c.hangup_cause == "timeout" || c.hangup_cause == "no_answer") return "no_answer";
  if (c.hangup_cause == "originator_cancel") return "canceled";
  return "failed";
}

class TelnyxCarrier : public campaign_test {
 protected:
  static constexpr const char* kPublicBase = "http://dialer-lb.test";

  // An engine (or `dialer campaigns launch`) holding the fake account's key and its webhook public key.
  static std::map<std::string, std::string> env_for(const fake_telnyx& fake) {
    return {{"DIALER_TELNYX_API_KEY", fake.api_key()},
            {"DIALER_TELNYX_CONNECTION_ID", fake.connection_id()},
            {"DIALER_TELNYX_PUBLIC_KEY", fake.public_key_base64()},
            {"DIALER_PUBLIC_BASE_URL", kPublicBase},
            {"DIALER_CAMPAIGN_POLL_MS", "200"}};
  }

  serving_dialer serve(const std::string& tag, const std::map<std::string, std::string>& env) {
    return serve_on_any_port(tag, {}, env);
  }

  fs::path telnyx_campaign(const fake_telnyx& fake, int contacts) {
    static constexpr const char* area_codes[] = {"415", "212", "312", "646", "213", "305", "404", "617", "206",
                                                 "512", "303", "702", "214", "503", "615", "202"};
    const auto csv = dir_ / "contacts.csv";
    std::ofstream out(csv);
    out << "phone,first_name\n";
    for (int i = 0; i < contacts; ++i)
      out << fmt::format("+1{}55501{:02d},caller{}\n", area_codes[(i / 100) % std::size(area_codes)], i % 100, i);
    out.close();
    return campaign_file("telnyx.yaml", {{"BASE_URL", fake.base_url()}, {"CONTACTS", csv.string()}});
  }

  void expect_every_call_once_and_as_the_carrier_ended_it(const fake_telnyx& fake) {
    const auto placed = fake.placed();
    ASSERT_FALSE(placed.empty());
    std::map<std::int64_t, int> per_attempt;
    for (const auto& p : placed) {
      ASSERT_GT(p.attempt, 0) << "call " << p.call_control_id << " carries no attempt in its client_state";
      EXPECT_EQ(++per_attempt[p.attempt], 1) << "attempt " << p.attempt << " placed twice";
    }
    std::map<std::int64_t, std::string> recorded;
    std::map<std::int64_t, std::string> call_ids;  // attempt -> the carrier call id the engine kept
    for (const auto& row : query("SELECT id, coalesce(outcome, '<open>'), coalesce(carrier_call_id, '') FROM call_attempts")) {
      recorded[row[0].as<std::int64_t>()] = row[1].as<std::string>();
      if (!row[2].as<std::string>().empty()) call_ids[row[0].as<std::int64_t>()] = row[2].as<std::string>();
    }
    // Both ways: every call the fake created is its attempt's, and every attempt the engine tied to a call is one
    // the fake created (no outcome made up for a call that does not exist, no attempt bound to another's call).
    std::map<std::int64_t, std::string> placed_ids;
    for (const auto& p : placed) placed_ids[p.attempt] = p.call_control_id;
    EXPECT_EQ(call_ids, placed_ids);
    std::int64_t unknown_expected = 0;
    for (const auto& p : placed) {
      const auto now = fake.call(p.call_control_id);
      ASSERT_TRUE(now);
      ASSERT_TRUE(recorded.contains(p.attempt)) << "call " << p.call_control_id << " of attempt " << p.attempt
                                                << " is not in the database";
      std::string faults;
      for (auto f : now->webhook_faults) faults += std::string(fakes::to_string(f)) + " ";
      if (unheard(*now)) ++unknown_expected;
      EXPECT_EQ(recorded[p.attempt], expected_outcome(*now))
          << "attempt " << p.attempt << " (" << p.call_control_id << ", dial fault " << fakes::to_string(p.fault)
          << ", webhook faults " << faults << ", cause " << now->hangup_cause << ", amd " << now->amd_result << ")";
    }
    EXPECT_EQ(open_attempts(), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'unknown'"), unknown_expected)
        << table("SELECT id, detail FROM call_attempts WHERE outcome = 'unknown'");
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state IN ('pending', 'in_progress')"), 0);
  }
};

TEST_F(TelnyxCarrier, ACampaignEndsRightThroughEveryRestAndWebhookFault) {
  fake_telnyx_options o;
  o.api_key = "KEY-" + std::string(40, 'z');  // a value no log line could hold by chance
  o.seed = 11;
  // A machine stays on 5 s unless hung up: the engine's hang-up (on detection, 3 ms after the answer) never races
  // the machine's own end, which at the default 50 ms it could lose under a sanitizer's load.
  o.machine_talk = std::chrono::milliseconds(5000);
  o.rates.throttle = 0.05;
  o.rates.error_unprocessed = 0.05;
  o.rates.timeout_created = 0.04;
  o.rates.timeout_not_created = 0.04;
  o.rates.reset_created = 0.04;
  o.rates.reset_not_created = 0.04;
  o.rates.late = 0.1;
  o.rates.twice = 0.1;
  o.rates.out_of_order = 0.1;
  o.rates.never = 0.05;
  o.rates.bad_signature = 0.05;
  fake_telnyx fake(o);
  auto debug = env_for(fake);
  debug["DIALER_LOG_LEVEL"] = "debug";
  auto s = serve("serve-a", debug);
  fake.set_callback_authority("127.0.0.1:" + std::to_string(s.port));
  // At first every dial's answer is lost (the call is created, the connection stays silent), its resends' too:
  // those attempts run out of resends and become indeterminate, holding their slots, and lookup() later settles
  // each by sending the same command once more (Telnyx answers with the call the first send created).
  fake.set_rate(telnyx_rest_fault::timeout_created, 1.0);
  fake.start();

  const auto launched = dialer({"campaigns", "launch", telnyx_campaign(fake, 150).string()}, env_for(fake));
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  ASSERT_TRUE(fake.wait_for([](const fakes::fake_telnyx_counters& c) { return c.silent >= 60; }, 60s))
      << s.process->err();
  fake.set_rates(o.rates);
  ASSERT_TRUE(eventually([&] { return campaign_state("e2e-telnyx") == "completed"; }, s.process.get(), 180s))
      << "state " << campaign_state("e2e-telnyx") << "\n"
      << table("SELECT state, count(*) FROM contacts GROUP BY 1") << s.process->err();
  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait(), 0) << s.process->err();

  expect_every_call_once_and_as_the_carrier_ended_it(fake);
  std::set<telnyx_rest_fault> met;
  for (const auto& p : fake.placed()) met.insert(p.fault);
  EXPECT_TRUE(met.contains(telnyx_rest_fault::timeout_created) || met.contains(telnyx_rest_fault::reset_created))
      << "the run should include calls whose dial answer was lost";
  const auto counters = fake.counters();
  EXPECT_GT(counters.duplicate_commands, 0) << "lost dials were sent again with their command_id";
  const auto all_placed = fake.placed();
  EXPECT_GE(std::count_if(all_placed.begin(), all_placed.end(),
                          [](const auto& p) { return p.fault == telnyx_rest_fault::timeout_created; }),
            20)
      << "many calls were created while every answer was lost; each was still placed once (checked above)";
  EXPECT_GT(counters.answers.count(429) ? counters.answers.at(429) : 0, 0) << "the run met throttling";
  EXPECT_GT(counters.webhooks_bad_signed, 0);
  EXPECT_GT(counters.requests.count("get_call") ? counters.requests.at("get_call") : 0, 0)
      << "calls without their webhooks were settled from their status";
  EXPECT_GT(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'voicemail'"), 0);
  EXPECT_GT(counters.hangups, 0) << "machines were hung up at once";
  for (const auto& text : {s.process->err(), s.process->out(), launched.out, launched.err})
    EXPECT_EQ(text.find(o.api_key), std::string::npos) << "the API key leaked into the output";
  for (const auto& sql : {"SELECT coalesce(string_agg(settings::text, ''), '') FROM campaigns",
                          "SELECT coalesce(string_agg(params::text, ''), '') FROM carrier_callbacks",
                          "SELECT coalesce(string_agg(coalesce(detail, ''), ''), '') FROM call_attempts",
                          "SELECT coalesce(string_agg(identity, ''), '') FROM carrier_account_engines"})
    EXPECT_EQ(query(sql)[0][0].as<std::string>().find(o.api_key), std::string::npos) << sql;
  EXPECT_EQ(scalar("SELECT count(*) FROM (SELECT call_id FROM carrier_callbacks WHERE event = 'final' "
                   "GROUP BY call_id HAVING count(*) > 1) d"),
            0);
}

// Two engines behind one load balancer: every webhook reaches engine B; each is applied once by the engine that
// placed the call.
TEST_F(TelnyxCarrier, WebhooksThatReachTheOtherEngineAreAppliedOnceByThePlacingEngine) {
  fake_telnyx_options o;
  o.seed = 13;
  o.rates.twice = 0.3;
  o.rates.out_of_order = 0.2;
  o.talk = std::chrono::milliseconds(100);
  fake_telnyx fake(o);
  const auto env = env_for(fake);
  auto a = serve("serve-a", env);
  auto b = serve("serve-b", env);
  ASSERT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= 2; }, a.process.get()));
  fake.set_callback_authority("127.0.0.1:" + std::to_string(b.port));
  fake.start();

  const auto launched = dialer({"campaigns", "launch", telnyx_campaign(fake, 1000).string()}, env);
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  ASSERT_TRUE(eventually([&] { return campaign_state("e2e-telnyx") == "completed"; }, a.process.get(), 180s))
      << "state " << campaign_state("e2e-telnyx") << "\n" << a.process->err() << b.process->err();
  a.process->signal(SIGTERM);
  b.process->signal(SIGTERM);
  EXPECT_EQ(a.process->wait(), 0) << a.process->err();
  EXPECT_EQ(b.process->wait(), 0) << b.process->err();

  expect_every_call_once_and_as_the_carrier_ended_it(fake);
  EXPECT_EQ(scalar("SELECT count(DISTINCT instance) FROM carrier_callbacks WHERE carrier = 'telnyx'"), 2)
      << "both engines placed calls";
  EXPECT_EQ(scalar("SELECT count(*) FROM carrier_callbacks WHERE taken_at IS NULL"), 0)
      << "every stored webhook was taken by its engine";
  EXPECT_GT(fake.counters().webhooks_sent, static_cast<std::int64_t>(fake.placed().size()) * 3)
      << "duplicates were sent (and changed nothing: the outcomes above are the fake's)";
}

// A SIP agent gets the answered callee by a transfer that carries the attempt; when the agent's leg never answers,
// Telnyx leaves the callee's leg up: the adapter hangs it up and records the attempt `failed`, saying why.
class TelnyxSipHandOff : public TelnyxCarrier, public ::testing::WithParamInterface<bool> {};

TEST_P(TelnyxSipHandOff, TheAgentGetsTheCallByTransferAndOneThatNeverAnswersEndsItFailed) {
  const bool agent_answers = GetParam();
  fake_telnyx_options o;
  o.agent_answers = agent_answers;
  // The callee would stay on for a minute, so the engine's transfer never races the callee's own hang-up (under a
  // sanitizer's load it lost that race at 50 ms). An agent that answers ends the call after 50 ms; when the agent
  // never answers, the hang-up must be the adapter's.
  o.talk = std::chrono::milliseconds(60'000);
  o.agent_talk = std::chrono::milliseconds(50);
  fake_telnyx fake(o);
  auto s = serve("serve-a", env_for(fake));
  fake.set_callback_authority("127.0.0.1:" + std::to_string(s.port));
  fake.start();
  // Ten callees who all answer (last digits 0-5), no machine detection, a SIP agent.
  const auto csv = dir_ / "contacts.csv";
  {
    std::ofstream out(csv);
    out << "phone,first_name\n";
    for (int i = 0; i < 10; ++i) out << fmt::format("+1{}555010{},caller{}\n", i < 6 ? "646" : "305", i % 6, i);
  }
  auto file = campaign_file("telnyx.yaml", {{"BASE_URL", fake.base_url()}, {"CONTACTS", csv.string()}});
  {
    auto text = read_text(file);
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"wss://agents.example.com/e2e", "sip:agent@pbx.example.com"},
                                   {"machine_detection: {mode: detect, on_machine: hangup}", "machine_detection: {mode: off}"}})
      text.replace(text.find(from), from.size(), to);
    std::ofstream(file) << text;
  }
  const auto launched = dialer({"campaigns", "launch", file.string()}, env_for(fake));
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  ASSERT_TRUE(eventually([&] { return campaign_state("e2e-telnyx") == "completed"; }, s.process.get(), 120s))
      << table("SELECT state, count(*) FROM contacts GROUP BY 1") << s.process->err();
  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait(), 0) << s.process->err();

  const auto placed = fake.placed();
  ASSERT_FALSE(placed.empty());
  std::map<std::int64_t, std::string> outcome, detail;
  for (const auto& row : query("SELECT id, coalesce(outcome, ''), coalesce(detail, '') FROM call_attempts")) {
    outcome[row[0].as<std::int64_t>()] = row[1].as<std::string>();
    detail[row[0].as<std::int64_t>()] = row[2].as<std::string>();
  }
  for (const auto& p : placed) {
    const auto call = fake.call(p.call_control_id);
    ASSERT_TRUE(call);
    // Every answered call was transferred to the agent's URI, with the attempt in an X- header.
    EXPECT_EQ(call->transfer_to, "sip:agent@pbx.example.com");
    std::map<std::string, std::string> headers(call->transfer_custom_headers.begin(), call->transfer_custom_headers.end());
    EXPECT_EQ(headers["X-Attempt-Id"], std::to_string(p.attempt));
    if (agent_answers) {
      EXPECT_EQ(outcome[p.attempt], "completed") << detail[p.attempt];
      const auto agent = fake.call(call->agent_leg_id);  // the agent talked and ended the call
      ASSERT_TRUE(agent) << p.call_control_id;
      EXPECT_EQ(agent->hangup_source, "callee") << p.call_control_id;
    } else {
      EXPECT_EQ(outcome[p.attempt], "failed") << detail[p.attempt];
      EXPECT_NE(detail[p.attempt].find("refused the transfer"), std::string::npos) << detail[p.attempt];
      // Hung up by us (the caller), not left up until the callee's own end.
      EXPECT_EQ(call->hangup_source, "caller") << p.call_control_id;
    }
  }
  EXPECT_EQ(fake.agent_legs().size(), placed.size());
}

INSTANTIATE_TEST_SUITE_P(AgentAnswersOrNot, TelnyxSipHandOff, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "AgentAnswers" : "AgentNeverAnswers"; });

// An inbound call to a number on the platform's Telnyx application: the engine decides on call.initiated and
// issues the command through Call Control's REST API (Telnyx ignores a webhook's answer).
TEST_F(TelnyxCarrier, AnInboundCallIsAnsweredThroughCallControlAndAnUnknownNumberRejected) {
  fake_telnyx_options o;
  o.webhook_event_url = std::string(kPublicBase) + "/v1/inbound/telnyx";
  fake_telnyx fake(o);
  fake.start();  // its port first (the server sends commands there); it rings nobody until inbound_call()
  auto env = env_for(fake);
  env["DIALER_TELNYX_BASE_URL"] = fake.base_url();
  auto s = serve("serve-a", env);
  fake.set_callback_authority("127.0.0.1:" + std::to_string(s.port));
  ASSERT_EQ(dialer({"agents", "create", "greeter", "--handoff", "wss://agents.example.com/in"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "buy", "+14155550123"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550123", "--agent", "greeter"}).exit_code, 0);

  // Until the server's number table has the assignment (it answers 503 while loading; the fake retries a while).
  // The first command for one call, whatever else came meanwhile (a late answer to an earlier try, say).
  const auto command_for = [&](const std::string& id, std::chrono::seconds patience) {
    std::optional<fakes::telnyx_command> found;
    (void)eventually(
        [&] {
          for (const auto& c : fake.commands())
            if (c.call_control_id == id) {
              found = c;
              break;
            }
          return found.has_value();
        },
        s.process.get(), patience);
    return found;
  };
  std::string answered;
  ASSERT_TRUE(eventually(
      [&] {
        const auto id = fake.inbound_call("+12125550199", "+14155550123");
        const auto command = command_for(id, 3s);
        if (!command || command->action != "answer") return false;
        answered = id;
        return true;
      },
      s.process.get(), 60s))
      << s.process->err();
  const auto call = fake.call(answered);
  ASSERT_TRUE(call && call->answer);
  EXPECT_EQ(call->answer->stream_url, "wss://agents.example.com/in");
  EXPECT_EQ(call->answer->stream_track, "both_tracks");
  EXPECT_EQ(call->state == "answered" || call->state == "hangup", true) << call->state;

  const auto stranger = fake.inbound_call("+12125550199", "+14155550999");
  const auto last = command_for(stranger, 10s);
  ASSERT_TRUE(last) << s.process->err();
  EXPECT_EQ(last->action, "reject");
  EXPECT_EQ(last->status, 200u);
  EXPECT_EQ(fake.call(stranger)->reject_cause, "CALL_REJECTED");
  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait(), 0) << s.process->err();
}

}  // namespace
}  // namespace dialer::testing::e2e
