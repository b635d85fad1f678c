// The SIP trunk carrier against real SIP on the wire: a SIPp process plays the trunk (the callee's side) and a
// second one plays the agent, each checking what it receives (tests/data/sip/scenarios). The outside checks are
// SIPp's own: its exit code (0 only when every check of every call held), its statistics, and its log of every
// message it received, which is where "an INVITE without SDP", "the agent's answer in the trunk's ACK", "one
// INVITE per attempt" are read. The carrier runs in this process (one call, one outcome) or behind `dialer run`
// (a campaign on a fresh database).
#include <condition_variable>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include "adapters/carriers/sip/sip_carrier.hpp"
#include "adapters/carriers/sip/sip_endpoint.hpp"
#include "tests/integration/e2e_fixture.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/sipp.hpp"

namespace dialer::testing {
namespace {

using namespace std::chrono_literals;
using carriers::sip::sip_carrier;

// What the engine would be told, kept for the test.
class recording_sink final : public carrier_events {
 public:
  struct refusal {
    origination_refusal why;
    std::optional<std::chrono::milliseconds> retry_after;
    std::string detail;
  };
  void on_accepted(attempt_id attempt, std::string_view id) noexcept override {
    std::lock_guard lock(mutex_);
    accepted_[attempt.value()] = std::string(id);
    cv_.notify_all();
  }
  void on_refused(attempt_id attempt, origination_refusal why, std::optional<std::chrono::milliseconds> retry_after,
                  std::string_view detail) noexcept override {
    std::lock_guard lock(mutex_);
    refused_[attempt.value()] = refusal{why, retry_after, std::string(detail)};
    cv_.notify_all();
  }
  void on_outcome(const call_event& e) noexcept override {
    std::lock_guard lock(mutex_);
    ++outcome_count_[e.attempt.value()];
    outcomes_[e.attempt.value()] = e;
    cv_.notify_all();
  }
  // Waits until the carrier accepted the attempt (gave its call id).
  bool wait_for_accepted(std::int64_t attempt, std::chrono::seconds deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, deadline, [&] { return accepted_.contains(attempt); });
  }
  // Waits for the attempt's end (an outcome or a refusal).
  bool wait_for_end(std::int64_t attempt, std::chrono::seconds deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, deadline,
                        [&] { return outcomes_.contains(attempt) || refused_.contains(attempt); });
  }
  std::optional<call_event> outcome(std::int64_t attempt) {
    std::lock_guard lock(mutex_);
    auto it = outcomes_.find(attempt);
    return it == outcomes_.end() ? std::nullopt : std::optional<call_event>(it->second);
  }
  std::optional<refusal> refused(std::int64_t attempt) {
    std::lock_guard lock(mutex_);
    auto it = refused_.find(attempt);
    return it == refused_.end() ? std::nullopt : std::optional<refusal>(it->second);
  }
  std::string accepted(std::int64_t attempt) {
    std::lock_guard lock(mutex_);
    return accepted_.contains(attempt) ? accepted_[attempt] : std::string();
  }
  int outcome_count(std::int64_t attempt) {
    std::lock_guard lock(mutex_);
    return outcome_count_[attempt];
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::int64_t, std::string> accepted_;
  std::map<std::int64_t, refusal> refused_;
  std::map<std::int64_t, call_event> outcomes_;
  std::map<std::int64_t, int> outcome_count_;
};

// Polls `condition` (a counter read) every 10 ms until it holds, 10 s at most.
bool eventually_true(const std::function<bool()>& condition) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the polling interval, not a wait for time to pass
  }
  return condition();
}

// A SIPp UAS playing `scenario` (tests/data/sip/scenarios) for `calls` calls.
sipp_options uas(const std::string& scenario, std::vector<std::string> extra = {}, int calls = 1) {
  sipp_options o;
  o.scenario = sip_scenario(scenario);
  o.extra = std::move(extra);
  o.max_calls = calls;
  return o;
}

class SipCarrier : public ::testing::Test {
 protected:
  std::unique_ptr<sip_carrier> make_carrier(const sipp_process& trunk, nlohmann::json extra = {},
                                            carriers::carrier_environment env = {}) {
    return carrier_to(trunk.address(), std::move(extra), std::move(env));
  }

  // A carrier whose trunk is at `address`, with short ring and agent-answer timeouts.
  std::unique_ptr<sip_carrier> carrier_to(const std::string& address, nlohmann::json extra,
                                          carriers::carrier_environment env = {}) {
    nlohmann::json s = {{"trunk", address},
                        {"local_host", "127.0.0.1"},
                        {"ring_timeout", "1500ms"},
                        {"agent_answer_timeout", "3s"}};
    for (auto& [k, v] : extra.items()) s[k] = v;
    auto parsed = carriers::sip::parse_sip_settings(s, env);
    EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error().message);
    if (!parsed) return nullptr;
    auto made = sip_carrier::make(std::move(*parsed), clock_);
    EXPECT_TRUE(made) << (made ? "" : made.error().message);
    if (!made) return nullptr;
    (*made)->set_events(&sink_);
    return std::move(*made);
  }

  static origination_request request(std::int64_t attempt, const std::string& to, const std::string& agent) {
    origination_request r;
    r.attempt = attempt_id{attempt};
    r.campaign = campaign_id{7};
    r.contact = contact_id{attempt / 10};
    r.from_e164 = "+14155550100";
    r.to_e164 = to;
    r.handoff = agent;
    r.variables_json = R"({"first_name":"Ada","note":"line one\r\nX-Injected: no"})";
    r.idempotency_key = "k" + std::to_string(attempt);
    return r;
  }

  static std::string agent_uri(const sipp_process& agent) { return "sip:agent@" + agent.address(); }

  // The messages SIPp received whose start line begins with `method` ("INVITE", "ACK", "BYE", "CANCEL").
  static std::vector<sipp_process::received_message> received(const sipp_process& p, const std::string& method) {
    std::vector<sipp_process::received_message> out;
    for (auto& m : p.received())
      if (m.method() == method) out.push_back(m);
    return out;
  }

  system_clock clock_;
  recording_sink sink_;
};

TEST_F(SipCarrier, TheCalleeIsConnectedToTheAgentByThirdPartyCallControlAndTheAgentHangsUp) {
  sipp_process trunk(uas("trunk_answer.xml"));
  sipp_process agent(uas("agent_bye.xml", {"-set", "hold", "300"}));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(41, "+12025550101", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(41, 20s));
  const auto e = sink_.outcome(41);
  ASSERT_TRUE(e) << "refused: " << (sink_.refused(41) ? sink_.refused(41)->detail : "");
  EXPECT_EQ(e->outcome, call_outcome::completed) << e->detail;
  EXPECT_EQ(e->detail, "the agent hung up");
  EXPECT_TRUE(e->answered_at.has_value());
  EXPECT_GE(e->billable, 250ms);
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();

  // Read from the two SIPps' own logs: the trunk's INVITE had no SDP and the Call-ID the engine was given; the
  // agent's INVITE carried the trunk's offer and the attempt; the trunk's ACK carried the agent's answer.
  const auto invites = received(trunk, "INVITE");
  ASSERT_EQ(invites.size(), 1u);
  EXPECT_EQ(invites[0].body, "");
  EXPECT_EQ(invites[0].header("call-id"), sink_.accepted(41));
  const auto agent_invites = received(agent, "INVITE");
  ASSERT_EQ(agent_invites.size(), 1u);
  EXPECT_EQ(agent_invites[0].header("x-attempt-id"), "41");
  EXPECT_EQ(agent_invites[0].header("x-first-name"), "Ada");
  EXPECT_EQ(agent_invites[0].header("x-injected"), "") << "a contact's variable forged a header";
  EXPECT_NE(agent_invites[0].body.find("m=audio"), std::string::npos);
  const auto trunk_acks = received(trunk, "ACK");
  ASSERT_FALSE(trunk_acks.empty());
  EXPECT_NE(trunk_acks[0].body.find("m=audio"), std::string::npos);
  // The answer in the trunk's ACK is the agent's: agent_bye.xml's origin line, not the trunk's own offer echoed.
  EXPECT_NE(trunk_acks[0].body.find("o=agent 2000 2000"), std::string::npos) << trunk_acks[0].body;
  EXPECT_EQ(trunk_acks[0].body.find("o=trunk"), std::string::npos) << trunk_acks[0].body;
  EXPECT_EQ(received(trunk, "BYE").size(), 1u) << "the agent's BYE was not relayed to the trunk";
  EXPECT_EQ(sink_.outcome_count(41), 1);
}

TEST_F(SipCarrier, TheCalleeHangsUpAndTheAgentIsToldSo) {
  sipp_process trunk(uas("trunk_callee_bye.xml", {"-set", "hold", "300"}));
  sipp_process agent(uas("agent_answer.xml"));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(51, "+12025550102", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(51, 20s));
  const auto e = sink_.outcome(51);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->outcome, call_outcome::completed);
  EXPECT_EQ(e->detail, "the callee hung up");
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
  EXPECT_EQ(received(agent, "BYE").size(), 1u);
}

TEST_F(SipCarrier, ABusyCalleeIsBusyAndTheAgentIsNeverCalled) {
  sipp_process trunk(uas("trunk_busy.xml"));
  sipp_process agent(uas("agent_answer.xml"));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(61, "+12025550106", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(61, 20s));
  ASSERT_TRUE(sink_.outcome(61));
  EXPECT_EQ(sink_.outcome(61)->outcome, call_outcome::busy) << sink_.outcome(61)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  agent.stop();
  EXPECT_TRUE(received(agent, "INVITE").empty());
}

// A 403 naming the trunk's channel limit is back-pressure, not the callee's answer: refused `throttled` (the engine
// slows the account and dials the contact again), the agent never called.
TEST_F(SipCarrier, ATrunksChannelLimit403IsThrottledNotAnOutcome) {
  sipp_process trunk(uas("trunk_channel_limit.xml"));
  sipp_process agent(uas("agent_answer.xml"));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(62, "+12025550107", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(62, 20s));
  ASSERT_FALSE(sink_.outcome(62)) << sink_.outcome(62)->detail;
  ASSERT_TRUE(sink_.refused(62));
  EXPECT_EQ(sink_.refused(62)->why, origination_refusal::throttled) << sink_.refused(62)->detail;
  EXPECT_EQ(sink_.refused(62)->retry_after, std::chrono::milliseconds(1000));
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  agent.stop();
  EXPECT_TRUE(received(agent, "INVITE").empty());
}

// drain() waits for the calls up to its deadline, then ends what is left: nobody would relay a BYE once we are
// gone, so both legs of a connected call get ours and the call is reported.
TEST_F(SipCarrier, DrainPastItsDeadlineHangsUpBothLegsOfACallStillUp) {
  sipp_process trunk(uas("trunk_answer.xml"));   // waits for our BYE
  sipp_process agent(uas("agent_answer.xml"));   // waits for our BYE
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(63, "+12025550108", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(eventually_true([&] { return carrier->statistics().connected == 1; }));
  carrier->drain(std::chrono::milliseconds(200));
  ASSERT_TRUE(sink_.outcome(63)) << "drain returned with the call unreported";
  EXPECT_EQ(sink_.outcome(63)->outcome, call_outcome::completed);
  EXPECT_EQ(sink_.outcome(63)->detail, "ended as the engine stopped");
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();  // its BYE came
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
}

TEST_F(SipCarrier, ACalleeWhoDoesNotAnswerIsCancelledAtTheRingTimeout) {
  sipp_process trunk(uas("trunk_no_answer.xml"));
  auto carrier = make_carrier(trunk, {{"ring_timeout", "1s"}});
  ASSERT_TRUE(carrier);
  const auto r = request(71, "+12025550107", "sip:agent@127.0.0.1:9");
  const auto started = std::chrono::steady_clock::now();
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(71, 20s));
  ASSERT_TRUE(sink_.outcome(71));
  EXPECT_EQ(sink_.outcome(71)->outcome, call_outcome::no_answer) << sink_.outcome(71)->detail;
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s) << "cancelled before the ring timeout";
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(received(trunk, "CANCEL").size(), 1u);
}

TEST_F(SipCarrier, A503WithRetryAfterBacksTheTrunkOffAndNothingIsSentMeanwhile) {
  sipp_process trunk(uas("trunk_unavailable.xml", {}, 2));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(81, "+12025550109", "sip:agent@127.0.0.1:9");
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(81, 20s));
  auto refused = sink_.refused(81);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, origination_refusal::not_placed) << refused->detail;
  ASSERT_TRUE(refused->retry_after);
  EXPECT_EQ(*refused->retry_after, 30s);
  // While backed off, the next dial is refused at once: the trunk sees no second INVITE.
  const auto second = request(82, "+12025550108", "sip:agent@127.0.0.1:9");
  carrier->originate({&second, 1});
  ASSERT_TRUE(sink_.wait_for_end(82, 5s));
  refused = sink_.refused(82);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, origination_refusal::not_placed);
  ASSERT_TRUE(refused->retry_after);
  EXPECT_GT(*refused->retry_after, 25s);
  EXPECT_LE(*refused->retry_after, 30s);
  trunk.stop();
  trunk.wait(10s);
  EXPECT_EQ(received(trunk, "INVITE").size(), 1u);
}

TEST_F(SipCarrier, ADigestChallengeIsAnsweredWithANewCSeqAndTheCallGoesOn) {
  sipp_process trunk(uas("trunk_digest.xml"));
  sipp_process agent(uas("agent_bye.xml", {"-set", "hold", "200"}));
  carriers::carrier_environment env;
  env.credentials.values["sip.username"] = carriers::secret("dialer");
  env.credentials.values["sip.password"] = carriers::secret("s3cret");
  auto carrier = make_carrier(trunk, {}, env);
  ASSERT_TRUE(carrier);
  const auto r = request(91, "+12025550103", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(91, 20s));
  ASSERT_TRUE(sink_.outcome(91));
  EXPECT_EQ(sink_.outcome(91)->outcome, call_outcome::completed) << sink_.outcome(91)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();  // its verifyauth held
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
  const auto invites = received(trunk, "INVITE");
  ASSERT_EQ(invites.size(), 2u);
  EXPECT_EQ(invites[0].header("call-id"), invites[1].header("call-id"));
  EXPECT_NE(invites[1].header("authorization").find("qop=auth"), std::string::npos);
}

TEST_F(SipCarrier, WrongDigestCredentialsFailTheCall) {
  sipp_process trunk(uas("trunk_digest.xml"));
  carriers::carrier_environment env;
  env.credentials.values["sip.username"] = carriers::secret("dialer");
  env.credentials.values["sip.password"] = carriers::secret("not-the-password");
  auto carrier = make_carrier(trunk, {}, env);
  ASSERT_TRUE(carrier);
  const auto r = request(95, "+12025550104", "sip:agent@127.0.0.1:9");
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(95, 20s));
  // The trunk refuses the second INVITE with 403: the credentials were refused, the call fails (it is not a
  // channel limit to wait out and redial), and no third INVITE is sent.
  ASSERT_TRUE(sink_.outcome(95)) << "refused: " << (sink_.refused(95) ? sink_.refused(95)->detail : "");
  EXPECT_EQ(sink_.outcome(95)->outcome, call_outcome::failed);
  EXPECT_NE(sink_.outcome(95)->detail.find("credentials"), std::string::npos) << sink_.outcome(95)->detail;
  trunk.wait(20s);
  EXPECT_EQ(received(trunk, "INVITE").size(), 2u);
}

TEST_F(SipCarrier, AnAgentThatRefusesLeavesTheCalleeWithARefusedAnswerAndABye) {
  sipp_process trunk(uas("trunk_refused_agent.xml"));
  sipp_process agent(uas("agent_refuses.xml"));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(101, "+12025550105", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(101, 20s));
  ASSERT_TRUE(sink_.outcome(101));
  EXPECT_EQ(sink_.outcome(101)->outcome, call_outcome::failed);
  EXPECT_NE(sink_.outcome(101)->detail.find("603"), std::string::npos) << sink_.outcome(101)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();  // its ACK carried m=audio 0, then our BYE came
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
}

// Two phones answer a forked INVITE: the call goes on with the first 200; the second fork's dialog is ACKed with
// every stream refused and hung up at once (RFC 3261 §13.2.2.4), as the trunk's scenario checks.
TEST_F(SipCarrier, ASecondForksAnswerIsAckedAndHungUpWhileTheCallGoesOn) {
  sipp_process trunk(uas("trunk_forked.xml", {"-set", "hold", "200"}));
  sipp_process agent(uas("agent_answer.xml"));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(185, "+12025550105", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(185, 20s));
  ASSERT_TRUE(sink_.outcome(185));
  EXPECT_EQ(sink_.outcome(185)->outcome, call_outcome::completed) << sink_.outcome(185)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
  EXPECT_EQ(carrier->statistics().stray_answers, 1u);
  EXPECT_EQ(received(agent, "INVITE").size(), 1u) << "the second fork reached the agent";
}

// delayed_offer: false (a trunk that refuses an INVITE without SDP): flow I with the legs swapped. The agent is
// called first without SDP, its offer goes to the trunk, the trunk's answer back to the agent in its ACK; the
// scenarios check each body by its origin line.
TEST_F(SipCarrier, WithoutDelayedOfferTheAgentsOfferReachesTheTrunkAndTheAnswerComesBack) {
  sipp_process trunk(uas("trunk_offer_answer.xml", {"-set", "hold", "200"}));
  sipp_process agent(uas("agent_offer.xml"));
  auto carrier = make_carrier(trunk, {{"delayed_offer", false}});
  ASSERT_TRUE(carrier);
  const auto r = request(181, "+12025550101", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(181, 20s));
  ASSERT_TRUE(sink_.outcome(181)) << sink_.refused(181)->detail;
  EXPECT_EQ(sink_.outcome(181)->outcome, call_outcome::completed) << sink_.outcome(181)->detail;
  EXPECT_TRUE(sink_.outcome(181)->answered_at);
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();  // the INVITE had the agent's offer; its ACK no SDP
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();  // the INVITE had no SDP; the ACK the trunk's answer; our BYE
  // The trunk was dialed only once the agent had answered: its INVITE carries the agent's own offer.
  const auto invites = received(trunk, "INVITE");
  ASSERT_EQ(invites.size(), 1u);
  EXPECT_NE(invites[0].body.find("o=agent 2000 2000"), std::string::npos) << invites[0].body;
  EXPECT_EQ(sink_.accepted(181), invites[0].header("call-id"));
}

TEST_F(SipCarrier, WithoutDelayedOfferABusyCalleeLeavesTheAgentWithARefusedAnswerAndABye) {
  sipp_process trunk(uas("trunk_offer_busy.xml"));
  sipp_process agent(uas("agent_offer_released.xml"));
  auto carrier = make_carrier(trunk, {{"delayed_offer", false}});
  ASSERT_TRUE(carrier);
  const auto r = request(182, "+12025550102", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(182, 20s));
  ASSERT_TRUE(sink_.outcome(182));
  EXPECT_EQ(sink_.outcome(182)->outcome, call_outcome::busy) << sink_.outcome(182)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();  // its ACK refused the stream (m=audio 0), then our BYE
}

TEST_F(SipCarrier, WithoutDelayedOfferAnAgentThatDeclinesIsFailedAndTheCalleeNeverDialed) {
  sipp_process trunk(uas("trunk_offer_answer.xml"));
  sipp_process agent(uas("agent_offer_declines.xml"));
  auto carrier = make_carrier(trunk, {{"delayed_offer", false}});
  ASSERT_TRUE(carrier);
  const auto r = request(183, "+12025550103", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(183, 20s));
  ASSERT_TRUE(sink_.outcome(183));
  EXPECT_EQ(sink_.outcome(183)->outcome, call_outcome::failed);
  EXPECT_NE(sink_.outcome(183)->detail.find("603"), std::string::npos) << sink_.outcome(183)->detail;
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
  trunk.stop();
  trunk.wait(10s);
  EXPECT_TRUE(received(trunk, "INVITE").empty()) << "the callee was dialed for an agent that declined";
}

TEST_F(SipCarrier, ATrunkThatNeverAnswersLeavesTheAttemptIndeterminate) {
  // A UDP port nobody reads: the INVITE leaves and nothing comes back until timer B (32 s with oSIP's T1).
  sipp_process silent(uas("trunk_answer.xml"));
  const auto address = silent.address();
  silent.stop();
  silent.wait(10s);
  auto made = carrier_to(address, {});
  ASSERT_TRUE(made);
  const auto r = request(111, "+12025550100", "sip:agent@127.0.0.1:9");
  made->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(111, 60s));
  const auto refused = sink_.refused(111);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, origination_refusal::indeterminate) << refused->detail;
  auto looked = made->lookup(attempt_id{111}, "");
  ASSERT_TRUE(looked);
  EXPECT_FALSE(looked->has_value()) << "a SIP trunk cannot tell what became of the call";
}

TEST_F(SipCarrier, PastMaxChannelsADialIsThrottledAndNeverReachesTheTrunk) {
  sipp_process trunk(uas("trunk_answer.xml"));
  sipp_process agent(uas("agent_bye.xml", {"-set", "hold", "300"}));
  auto carrier = make_carrier(trunk, {{"max_channels", 1}});
  ASSERT_TRUE(carrier);
  const std::vector<origination_request> both = {request(121, "+12025550101", agent_uri(agent)),
                                                 request(122, "+12025550102", agent_uri(agent))};
  carrier->originate(both);
  ASSERT_TRUE(sink_.wait_for_end(121, 20s));
  ASSERT_TRUE(sink_.wait_for_end(122, 20s));
  // One of the two (the carrier's workers take them at the same time) had the channel; the other was throttled.
  const std::int64_t refused_one = sink_.refused(121) ? 121 : 122;
  const std::int64_t placed_one = refused_one == 121 ? 122 : 121;
  const auto refused = sink_.refused(refused_one);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, origination_refusal::throttled) << refused->detail;
  EXPECT_FALSE(sink_.refused(placed_one));
  ASSERT_TRUE(sink_.outcome(placed_one));
  EXPECT_EQ(sink_.outcome(placed_one)->outcome, call_outcome::completed);
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(received(trunk, "INVITE").size(), 1u);
  // The channel is free again once the call ended: the same carrier places the next call.
  EXPECT_EQ(carrier->statistics().invites, 1u);
}

TEST_F(SipCarrier, AChannelIsFreeAgainOnceItsCallEnded) {
  sipp_process trunk(uas("trunk_answer.xml", {}, 2));
  sipp_process agent(uas("agent_bye.xml", {"-set", "hold", "100"}, 2));
  auto carrier = make_carrier(trunk, {{"max_channels", 1}});
  ASSERT_TRUE(carrier);
  for (std::int64_t attempt : {124, 125}) {
    const auto r = request(attempt, "+12025550103", agent_uri(agent));
    carrier->originate({&r, 1});
    ASSERT_TRUE(sink_.wait_for_end(attempt, 20s));
    ASSERT_TRUE(sink_.outcome(attempt)) << sink_.refused(attempt)->detail;
    EXPECT_EQ(sink_.outcome(attempt)->outcome, call_outcome::completed);
  }
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
}

TEST_F(SipCarrier, ATcpTrunkCarriesTheWholeCall) {
  auto o = uas("trunk_answer.xml");
  o.transport = "t1";
  sipp_process trunk(o);
  sipp_process agent(uas("agent_bye.xml", {"-set", "hold", "200"}));
  auto carrier = make_carrier(trunk, {{"transport", "tcp"}});
  ASSERT_TRUE(carrier);
  const auto r = request(131, "+12025550101", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(131, 20s));
  ASSERT_TRUE(sink_.outcome(131));
  EXPECT_EQ(sink_.outcome(131)->outcome, call_outcome::completed) << sink_.outcome(131)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
  const auto invites = received(trunk, "INVITE");
  ASSERT_EQ(invites.size(), 1u);
  EXPECT_NE(invites[0].header("via").find("SIP/2.0/TCP"), std::string::npos) << invites[0].header("via");
  EXPECT_NE(trunk.messages().find("TCP message received"), std::string::npos);
}

TEST_F(SipCarrier, OverTcpTheCalleesHangUpReachesUsAndTheAgent) {
  auto o = uas("trunk_callee_bye.xml", {"-set", "hold", "200"});
  o.transport = "t1";
  sipp_process trunk(o);
  sipp_process agent(uas("agent_answer.xml"));
  auto carrier = make_carrier(trunk, {{"transport", "tcp"}});
  ASSERT_TRUE(carrier);
  const auto r = request(141, "+12025550101", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(141, 20s));
  ASSERT_TRUE(sink_.outcome(141));
  EXPECT_EQ(sink_.outcome(141)->detail, "the callee hung up");
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();
}

TEST_F(SipCarrier, ARefusedTcpConnectionIsNotPlacedAndNotIndeterminate) {
  // A TCP port nobody listens on: the INVITE never leaves, so the contact may be dialed again later.
  sipp_process gone(uas("trunk_answer.xml"));
  const auto address = gone.address();
  gone.stop();
  gone.wait(10s);
  auto made = carrier_to(address, {{"transport", "tcp"}});
  ASSERT_TRUE(made);
  const auto r = request(151, "+12025550100", "sip:agent@127.0.0.1:9");
  made->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(151, 20s));
  const auto refused = sink_.refused(151);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->why, origination_refusal::not_placed) << refused->detail;
}

TEST_F(SipCarrier, AnAgentThatOnlyRingsIsCancelledAndTheCalleeHungUp) {
  sipp_process trunk(uas("trunk_refused_agent.xml"));
  sipp_process agent(uas("trunk_no_answer.xml"));  // rings until a CANCEL (its no-SDP check fails: not asserted)
  auto carrier = make_carrier(trunk, {{"agent_answer_timeout", "1s"}});
  ASSERT_TRUE(carrier);
  const auto r = request(161, "+12025550105", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(161, 20s));
  ASSERT_TRUE(sink_.outcome(161));
  EXPECT_EQ(sink_.outcome(161)->outcome, call_outcome::failed);
  EXPECT_EQ(sink_.outcome(161)->detail, "the agent did not answer in time");
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();  // refused answer in its ACK, then our BYE
  agent.wait(20s);
  EXPECT_EQ(received(agent, "CANCEL").size(), 1u);
  EXPECT_EQ(carrier->statistics().live_calls, 0u);
}

TEST_F(SipCarrier, AReInviteFromTheCalleeIsRelayedToTheAgentAndItsAnswerBack) {
  sipp_process trunk(uas("trunk_reinvite.xml"));
  sipp_process agent(uas("agent_reinvite.xml", {"-set", "hold", "300"}));
  auto carrier = make_carrier(trunk);
  ASSERT_TRUE(carrier);
  const auto r = request(181, "+12025550101", agent_uri(agent));
  carrier->originate({&r, 1});
  ASSERT_TRUE(sink_.wait_for_end(181, 20s));
  ASSERT_TRUE(sink_.outcome(181));
  EXPECT_EQ(sink_.outcome(181)->outcome, call_outcome::completed) << sink_.outcome(181)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();  // its re-INVITE's 200 carried the agent's a=recvonly
  EXPECT_EQ(agent.wait(20s), 0) << agent.report();  // the re-INVITE it got carried the callee's a=sendonly
  EXPECT_EQ(carrier->statistics().relayed_reinvites, 1u);
  const auto agent_invites = received(agent, "INVITE");
  ASSERT_EQ(agent_invites.size(), 2u);
  EXPECT_EQ(agent_invites[0].header("call-id"), agent_invites[1].header("call-id"));
  EXPECT_NE(agent_invites[1].header("to").find("tag="), std::string::npos) << "the relayed re-INVITE is in-dialog";
}

TEST_F(SipCarrier, TheEngineCancelsARingingCall) {
  sipp_process trunk(uas("trunk_no_answer.xml"));
  auto carrier = make_carrier(trunk, {{"ring_timeout", "30s"}});
  ASSERT_TRUE(carrier);
  const auto r = request(171, "+12025550107", "sip:agent@127.0.0.1:9");
  carrier->originate({&r, 1});
  // Cancelled once it rings (the trunk's 180 made the call accepted).
  ASSERT_TRUE(sink_.wait_for_accepted(171, 10s));
  carrier->cancel(attempt_id{171});
  ASSERT_TRUE(sink_.wait_for_end(171, 20s));
  ASSERT_TRUE(sink_.outcome(171));
  EXPECT_EQ(sink_.outcome(171)->outcome, call_outcome::canceled) << sink_.outcome(171)->detail;
  EXPECT_EQ(trunk.wait(20s), 0) << trunk.report();
}

// Connections others open to the endpoint are bounded: past max_accepted_connections, or past a quarter of it from
// one address, one is closed at once; one without a byte either way for tcp_idle_timeout is closed. The client sees
// each as the end of its stream.
TEST(SipEndpoint, AcceptedTcpConnectionsAreCappedAndClosedWhenIdle) {
  struct idle_user final : carriers::sip::sip_user {
    void on_response(carriers::sip::client_tag, const osip_message_t&) override {}
    void on_client_failed(carriers::sip::client_tag, carriers::sip::client_failure) override {}
    void on_request(carriers::sip::server_handle, const osip_message_t&, const carriers::sip::peer&) override {}
    void on_stray_response(const osip_message_t&, const carriers::sip::peer&) override {}
    void on_tick(std::chrono::steady_clock::time_point) override {}
  } user;
  namespace asio = boost::asio;
  asio::io_context io;
  const auto open = [&](std::size_t cap, std::chrono::milliseconds idle) {
    carriers::sip::endpoint_options o;
    o.listen_tcp = true;
    o.max_accepted_connections = cap;
    o.tcp_idle_timeout = idle;
    auto endpoint = carriers::sip::sip_endpoint::open(o);
    EXPECT_TRUE(endpoint) << endpoint.error().message;
    if (endpoint) (*endpoint)->start(&user);
    return endpoint ? std::move(*endpoint) : nullptr;
  };
  const auto connect = [&](const carriers::sip::sip_endpoint& e) {
    asio::ip::tcp::socket s(io);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(e.local_port())));
    return s;
  };
  // True once the peer closed the connection (a read returns end of stream), within 10 s.
  const auto closed_by_peer = [](asio::ip::tcp::socket& s) {
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte = 0;
    return ::recv(s.native_handle(), &byte, 1, 0) == 0;
  };

  // 8 in all, so 2 from 127.0.0.1: the third is closed at once, the first two stay (idle after 5 minutes only).
  auto capped = open(8, std::chrono::milliseconds(300'000));
  ASSERT_TRUE(capped);
  std::vector<asio::ip::tcp::socket> clients;
  for (unsigned i = 0; i < 3; ++i) {
    clients.push_back(connect(*capped));
    if (i < 2) {  // accepted before the next one connects
      ASSERT_TRUE(eventually_true([&] { return capped->counters().tcp_connections.load() == i + 1; }));
    }
  }
  EXPECT_TRUE(closed_by_peer(clients[2])) << "the third connection from one address stayed open";
  EXPECT_EQ(capped->counters().tcp_refused.load(), 1u);
  EXPECT_EQ(capped->counters().tcp_connections.load(), 2u);
  EXPECT_EQ(capped->counters().tcp_idle_closed.load(), 0u);
  capped->stop();

  // Idle after 200 ms: the endpoint closes it.
  auto idle = open(1024, std::chrono::milliseconds(200));
  ASSERT_TRUE(idle);
  auto quiet = connect(*idle);
  EXPECT_TRUE(closed_by_peer(quiet)) << "an idle connection stayed open";
  EXPECT_EQ(idle->counters().tcp_idle_closed.load(), 1u);
  idle->stop();
}

TEST(SipSettings, BadSettingsAreRefusedWithTheFieldNamed) {
  const auto refused = [](nlohmann::json s) {
    auto r = carriers::sip::parse_sip_settings(s, {});
    return r ? std::string() : r.error().message;
  };
  EXPECT_NE(refused(nlohmann::json::object()).find("'trunk'"), std::string::npos);
  EXPECT_NE(refused({{"trunk", "trunk.example.com:5060"}}).find("numeric"), std::string::npos);
  EXPECT_NE(refused({{"trunk", "127.0.0.1:5060"}, {"transport", "sctp"}}).find("transport"), std::string::npos);
  EXPECT_NE(refused({{"trunk", "127.0.0.1:5060"}, {"bogus", 1}}).find("bogus"), std::string::npos);
  EXPECT_NE(refused({{"trunk", "127.0.0.1:5060"}, {"username", "u"}}).find("password"), std::string::npos);
  // Without delayed offer the agent's 200 waits un-ACKed while the callee rings: 32 s at most.
  EXPECT_NE(refused({{"trunk", "127.0.0.1:5060"}, {"delayed_offer", false}, {"ring_timeout", "30s"}})
                .find("ring_timeout must be at most 25s"),
            std::string::npos);
  EXPECT_EQ(refused({{"trunk", "127.0.0.1:5060"}, {"delayed_offer", false}}), "");
  auto agent_first = carriers::sip::parse_sip_settings({{"trunk", "127.0.0.1:5060"}, {"delayed_offer", false}}, {});
  ASSERT_TRUE(agent_first);
  EXPECT_EQ(agent_first->ring_timeout, std::chrono::milliseconds(25'000)) << "the default ring, shortened";
  EXPECT_EQ(refused({{"trunk", "127.0.0.1:5060"}, {"transport", "tcp"}, {"max_channels", 10}}), "");
}

}  // namespace
}  // namespace dialer::testing

namespace dialer::testing::e2e {
namespace {

using namespace std::chrono_literals;

class SipCampaign : public campaign_test {};

// What trunk_mixed.xml does with a call to a number ending in `digit`, as the engine must record it.
std::string expected_outcome(char digit) {
  switch (digit) {
    case '6': return "busy";
    case '7': return "no_answer";  // rings until our CANCEL at the ring timeout (487)
    case '9': return "no_answer";  // 480 Temporarily Unavailable
    default: return "completed";   // 0-5: the agent hangs up; 8: the callee does
  }
}

TEST_F(SipCampaign, EveryContactEndsAsTheTrunkAnsweredAndNoAttemptIsDialedTwice) {
  constexpr int kContacts = 40;
  sipp_options trunk_options;
  trunk_options.scenario = sip_scenario("trunk_mixed.xml");
  trunk_options.max_calls = kContacts;
  trunk_options.timeout = std::chrono::seconds(120);
  sipp_process trunk(trunk_options);
  sipp_options agent_options;
  agent_options.scenario = sip_scenario("agent_bye.xml");
  agent_options.max_calls = 1000;  // stopped by the test
  agent_options.extra = {"-set", "hold", "400"};
  agent_options.timeout = std::chrono::seconds(120);
  sipp_process agent(agent_options);

  const auto csv = dir_ / "contacts.csv";
  {
    std::ofstream out(csv);
    out << "phone,first_name\n";
    for (int i = 0; i < kContacts; ++i) out << fmt::format("+120255501{:02d},caller{}\n", i, i);
  }
  const auto file = campaign_file("sip.yaml", {{"TRUNK", trunk.address()},
                                               {"AGENT", "sip:" + agent.address()},
                                               {"CONTACTS", csv.string()}});
  const auto run = dialer({"run", file.string()});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(trunk.wait(60s), 0) << trunk.report();  // every call's checks held (no SDP in INVITEs, ACK answers...)
  agent.stop();
  agent.wait(20s);

  // Each contact as the trunk ended its call.
  for (const auto& row : query("SELECT e164, state, coalesce(outcome, '') FROM contacts")) {
    const auto e164 = row[0].as<std::string>();
    EXPECT_EQ(row[1].as<std::string>(), "done") << e164;
    EXPECT_EQ(row[2].as<std::string>(), expected_outcome(e164.back())) << e164;
  }
  EXPECT_EQ(open_attempts(), 0);

  // From the trunk's own log: one Call-ID per attempt (retransmissions repeat it; a second dial of an attempt would
  // bring a second), and each the one the engine recorded.
  std::map<std::int64_t, std::set<std::string>> call_ids;  // attempt -> Call-IDs of the INVITEs the trunk received
  for (const auto& m : trunk.received()) {
    if (m.method() != "INVITE") continue;
    const auto id = m.header("call-id");
    ASSERT_TRUE(id.size() > 1 && id[0] == 'd') << id;
    call_ids[std::stoll(id.substr(1, id.find('-') - 1))].insert(id);
  }
  std::map<std::int64_t, std::string> recorded;
  for (const auto& row : query("SELECT id, coalesce(carrier_call_id, '') FROM call_attempts"))
    recorded[row[0].as<std::int64_t>()] = row[1].as<std::string>();
  EXPECT_EQ(recorded.size(), static_cast<std::size_t>(kContacts));
  EXPECT_EQ(call_ids.size(), recorded.size());
  for (const auto& [attempt, ids] : call_ids) {
    EXPECT_EQ(ids.size(), 1u) << "attempt " << attempt << " was dialed " << ids.size() << " times";
    ASSERT_TRUE(recorded.contains(attempt)) << "the trunk got an INVITE of attempt " << attempt
                                            << " that the database does not hold";
    EXPECT_EQ(recorded[attempt], *ids.begin());
  }
  // The agent was called once for each answered call, with that call's attempt.
  std::map<std::string, int> agent_calls;
  for (const auto& m : agent.received())
    if (m.method() == "INVITE") ++agent_calls[m.header("x-attempt-id")];
  EXPECT_EQ(static_cast<std::int64_t>(agent_calls.size()),
            scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'completed'"));
  for (const auto& [attempt, n] : agent_calls) EXPECT_EQ(n, 1) << "attempt " << attempt;
  for (const auto& row : query("SELECT id FROM call_attempts WHERE outcome = 'completed'"))
    EXPECT_TRUE(agent_calls.contains(std::to_string(row[0].as<std::int64_t>())));
}

// A trunk's max_channels is the trunk's, whoever dials on it. `engines` serving engines run `campaigns` campaigns on
// one SIPp trunk (each campaign with its own ring_timeout: its own carrier instance in each engine) until 60 calls
// were placed; then, from the trunk's own message log, a call holds a channel from the INVITE it received to the
// first BYE of its dialog (the callee's, or ours). Returns the most calls up at once, and fails the test if the
// dialers never wanted more than the trunk allows or never dialed side by side.
class SipTrunkChannels : public campaign_test {
 protected:
  static constexpr int kChannels = 3;

  struct channel {
    double from = 0, to = std::numeric_limits<double>::infinity();
    std::string engine;    // the INVITE's Via port: its carrier instance (one endpoint thread each)
    std::int64_t attempt;  // from its Call-ID, d<attempt>-...
  };

  int most_calls_up(int engines, int campaigns) {
    sipp_options trunk_options;
    trunk_options.scenario = sip_scenario("trunk_callee_bye.xml");
    trunk_options.max_calls = 100'000;  // stopped by the test
    trunk_options.extra = {"-set", "hold", "300"};
    trunk_options.timeout = std::chrono::seconds(180);
    sipp_process trunk(trunk_options);
    sipp_options agent_options;
    agent_options.scenario = sip_scenario("agent_answer.xml");
    agent_options.max_calls = 100'000;
    agent_options.timeout = std::chrono::seconds(180);
    sipp_process agent(agent_options);

    const std::map<std::string, std::string> env = {{"DIALER_CAMPAIGN_POLL_MS", "200"}};
    std::vector<serving_dialer> serving;
    for (int e = 0; e < engines; ++e) serving.push_back(serve_on_any_port("serve-" + std::to_string(e), {}, env));
    EXPECT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= engines; },
                           serving.front().process.get()));
    for (int k = 0; k < campaigns; ++k) {
      const auto csv = dir_ / fmt::format("contacts-{}.csv", k);
      {
        std::ofstream out(csv);
        out << "phone,first_name\n";
        for (int i = 0; i < 800; ++i)  // several contact blocks: every engine gets work
          out << fmt::format("+1{}55501{:02d},caller{}\n", 202 + i / 100, i % 100, i);
      }
      auto file = campaign_file("sip.yaml", {{"TRUNK", trunk.address()},
                                             {"AGENT", "sip:" + agent.address()},
                                             {"CONTACTS", csv.string()}});
      auto text = read_text(file);
      const auto replace = [&](const std::string& from, const std::string& to) {
        const auto at = text.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        if (at != std::string::npos) text.replace(at, from.size(), to);
      };
      replace("max_channels: 12", fmt::format("max_channels: {}\n    threads: 1", kChannels));
      // Settings of its own per campaign (one carrier instance each); long, as the trunk answers at once and a
      // ring timeout that fired under load would leave a cancelled dialog the sweep counts as holding a channel.
      replace("ring_timeout: 1s", fmt::format("ring_timeout: {}s", 10 + k));
      replace("name: e2e-sip\n", fmt::format("name: e2e-sip-{}\n", k));
      std::ofstream(file) << text;
      const auto launched = dialer({"campaigns", "launch", file.string()}, env);
      EXPECT_EQ(launched.exit_code, 0) << launched.err;
    }

    const auto channels = [&] {
      std::map<std::string, channel> by_call;
      for (const auto& m : trunk.exchanged()) {
        const auto id = m.header("call-id");
        if (!m.sent && m.method() == "INVITE" && !by_call.contains(id)) {
          const auto via = m.header("via");
          const auto sent_by = via.substr(0, via.find(';'));
          by_call[id] = {m.at, std::numeric_limits<double>::infinity(), sent_by.substr(sent_by.rfind(':') + 1),
                         std::stoll(id.substr(1, id.find('-') - 1))};
        } else if (m.method() == "BYE" && by_call.contains(id)) {
          auto& c = by_call[id];
          c.to = std::min(c.to, m.at);
        }
      }
      return by_call;
    };
    const auto engines_seen = [&] {
      std::set<std::string> ports;
      for (const auto& [id, c] : channels()) ports.insert(c.engine);
      return static_cast<int>(ports.size());
    };
    EXPECT_TRUE(eventually([&] { return channels().size() >= 60 && engines_seen() >= engines; },
                           serving.front().process.get(), 120s))
        << channels().size() << " calls from " << engines_seen() << " engines";
    for (int k = 0; k < campaigns; ++k)
      EXPECT_EQ(dialer({"campaigns", "cancel", fmt::format("e2e-sip-{}", k)}).exit_code, 0);
    for (auto& s : serving) s.process->signal(SIGTERM);
    for (auto& s : serving) EXPECT_EQ(s.process->wait(), 0) << s.process->err();
    trunk.stop();
    agent.stop();
    trunk.wait(30s);
    agent.wait(30s);

    // Which campaign each attempt was, and the sweep over the calls' starts and ends (an end before a start at the
    // same instant).
    std::map<std::int64_t, std::int64_t> campaign_of;
    for (const auto& row : query("SELECT id, campaign_id FROM call_attempts"))
      campaign_of[row[0].as<std::int64_t>()] = row[1].as<std::int64_t>();
    const auto all = channels();
    std::vector<std::pair<double, int>> edges;
    std::map<std::string, int> per_engine;
    std::map<std::int64_t, int> per_campaign;
    for (const auto& [id, c] : all) {
      edges.emplace_back(c.from, +1);
      edges.emplace_back(c.to, -1);
      ++per_engine[c.engine];
      ++per_campaign[campaign_of[c.attempt]];
    }
    std::sort(edges.begin(), edges.end());
    int up = 0, worst = 0;
    for (const auto& [at, change] : edges) worst = std::max(worst, up += change);
    std::string seen = "calls per carrier instance (Via port):";
    for (const auto& [port, n] : per_engine) seen += fmt::format(" {}:{}", port, n);
    seen += "; per campaign:";
    for (const auto& [id, n] : per_campaign) seen += fmt::format(" {}:{}", id, n);
    EXPECT_EQ(static_cast<int>(per_engine.size()), engines * campaigns) << seen;  // a carrier instance each
    EXPECT_EQ(static_cast<int>(per_campaign.size()), campaigns) << seen;
    // The check means something only if the dialers wanted more than the trunk allows and used all of it...
    EXPECT_GE(worst, kChannels) << "the trunk was never full; " << seen;
    // ... and if two carrier instances (engines, or campaigns) had calls up at the same time.
    bool side_by_side = false;
    for (const auto& [i, x] : all)
      for (const auto& [j, y] : all) side_by_side = side_by_side || (x.engine != y.engine && x.from < y.to && y.from < x.to);
    EXPECT_TRUE(side_by_side) << "never two carrier instances' calls up at once; " << seen;
    last_seen_ = seen;
    return worst;
  }
  std::string last_seen_;
};

TEST_F(SipTrunkChannels, TwoEnginesNeverHoldMoreThanTheTrunksChannels) {
  EXPECT_LE(most_calls_up(2, 1), kChannels) << "calls up at once at the trunk; " << last_seen_;
}

// Two campaigns on one trunk with settings of their own: two carrier instances in one engine, which share the
// engine's channels between them.
TEST_F(SipTrunkChannels, TwoCampaignsOfOneEngineNeverHoldMoreThanTheTrunksChannels) {
  EXPECT_LE(most_calls_up(1, 2), kChannels) << "calls up at once at the trunk; " << last_seen_;
}

TEST_F(SipCampaign, AnAgentReachedOnlyByAMediaStreamCannotLaunchOnASipTrunk) {
  const auto csv = dir_ / "contacts.csv";
  std::ofstream(csv) << "phone,first_name\n+12025550101,Ada\n";
  const auto file = campaign_file("sip.yaml", {{"TRUNK", "127.0.0.1:9"},
                                               {"AGENT", "wss://agents.example.com/stream"},
                                               {"CONTACTS", csv.string()}});
  const auto run = dialer({"run", file.string()});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("no SIP hand-off"), std::string::npos) << run.err;
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 0) << "nothing is created before the checks pass";
  EXPECT_EQ(scalar("SELECT count(*) FROM agents"), 0);
}

class SipInbound : public campaign_test {
 protected:
  // `dialer serve` with inbound SIP on a free port; sets sip_port_.
  serving_dialer serve_sip(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--sip-listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = serve_on_any_port("serve-sip", args);
    static const std::regex listening(R"(listening for SIP on 127\.0\.0\.1:([0-9]+))");
    std::smatch m;
    const auto out = s.process->out();
    EXPECT_TRUE(std::regex_search(out, m, listening)) << out;
    if (!m.empty()) sip_port_ = std::stoi(m[1]);
    return s;
  }

  sipp_process call(const std::string& driver, const std::string& number) {
    sipp_options o;
    o.scenario = sip_driver(driver);
    o.remote = "127.0.0.1:" + std::to_string(sip_port_);
    o.extra = {"-s", number};
    o.timeout = std::chrono::seconds(30);
    return sipp_process(o);
  }

  // One datagram to the proxy and its first answer past 100 Trying (empty when none came within 3 s).
  std::string exchange(const std::string& datagram) const {
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ip::udp::socket sock(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    sock.send_to(asio::buffer(datagram),
                 asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(sip_port_)));
    timeval tv{3, 0};
    ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::array<char, 65536> buf{};
    for (;;) {  // the first answer that is not a 100 Trying
      const auto n = ::recv(sock.native_handle(), buf.data(), buf.size(), 0);
      if (n <= 0) return {};
      std::string answer(buf.data(), static_cast<std::size_t>(n));
      if (!answer.starts_with("SIP/2.0 100 ")) return answer;
    }
  }

  static long long metric(const std::string& text, const std::string& result) {
    const auto key = "dialer_sip_inbound_calls_total{result=\"" + result + "\"} ";
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::stoll(text.substr(at + key.size()));
  }

  int sip_port_ = 0;
};

TEST_F(SipInbound, AnAssignedNumbersCallReachesItsAgentAndOthersGet404Counted) {
  sipp_process agent(uas("agent_inbound.xml"));
  ASSERT_EQ(dialer({"agents", "create", "inbound-agent", "--handoff", "sip:" + agent.address()}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "import", "+14155550177", "--provider", "sip"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550177", "--agent", "inbound-agent"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "import", "+14155550178", "--provider", "sip"}).exit_code, 0);  // not assigned
  ASSERT_EQ(dialer({"numbers", "import", "+14155550179", "--provider", "sip"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550179", "--agent", "inbound-agent"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "release", "+14155550179"}).exit_code, 0);
  auto s = serve_sip();
  ASSERT_GT(sip_port_, 0);

  auto routed = call("caller_inbound.xml", "+14155550177");
  EXPECT_EQ(routed.wait(30s), 0) << routed.report();
  EXPECT_EQ(agent.wait(30s), 0) << agent.report();  // its checks: our Record-Route, Max-Forwards 69, two Vias
  // The dialog's ACK and BYE came through the proxy (our Record-Route), the caller's offer reached the agent.
  const auto at_agent = agent.received();
  ASSERT_GE(at_agent.size(), 3u);
  EXPECT_EQ(at_agent[0].method(), "INVITE");
  EXPECT_EQ(at_agent[0].start_line, "INVITE sip:" + agent.address() + " SIP/2.0");

  for (const auto& number : {"+14155550178", "+14155550179", "+14155550999"}) {
    auto refused = call("caller_unrouted.xml", number);
    EXPECT_EQ(refused.wait(30s), 0) << number << ": " << refused.report();
  }
  EXPECT_EQ(agent.received().size(), at_agent.size()) << "an unrouted call reached the agent";

  const auto metrics = http_client(s.port).get("/metrics").body;
  EXPECT_EQ(metric(metrics, "routed"), 1) << metrics;
  EXPECT_EQ(metric(metrics, "rejected"), 3) << metrics;
}

// With --sip-redirect the proxy answers an assigned number's INVITE 302 with the agent's SIP URI as Contact (for a
// trunk that follows redirects) and forwards nothing.
TEST_F(SipInbound, WithRedirectAnAssignedNumberIsAnswered302ToItsAgent) {
  sipp_process agent(uas("agent_inbound.xml"));
  ASSERT_EQ(dialer({"agents", "create", "redirect-agent", "--handoff", "sip:" + agent.address()}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "import", "+14155550180", "--provider", "sip"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550180", "--agent", "redirect-agent"}).exit_code, 0);
  auto s = serve_sip({"--sip-redirect"});
  ASSERT_GT(sip_port_, 0);
  auto caller = call("caller_redirected.xml", "+14155550180");
  EXPECT_EQ(caller.wait(30s), 0) << caller.report();
  std::string contact;
  for (const auto& m : caller.received())
    if (m.status() == 302) contact = m.header("contact");
  EXPECT_NE(contact.find("sip:" + agent.address()), std::string::npos) << contact;
  agent.stop();
  EXPECT_TRUE(agent.received().empty()) << "a redirected call was forwarded too";
  EXPECT_EQ(metric(http_client(s.port).get("/metrics").body, "redirected"), 1);
}

// A caller that gives up while the agent rings: the proxy answers the CANCEL itself and cancels its own branch
// toward the agent (whose scenario checks that the CANCEL and the ACK of its 487 carry the forwarded INVITE's
// branch), and the agent's 487 reaches the caller.
TEST_F(SipInbound, ACallerThatGivesUpIsCancelledThroughToTheRingingAgent) {
  sipp_process agent(uas("agent_rings.xml"));  // 100, 180, then waits for the CANCEL: 200, 487, ACK
  ASSERT_EQ(dialer({"agents", "create", "ringing-agent", "--handoff", "sip:" + agent.address()}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "import", "+14155550181", "--provider", "sip"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550181", "--agent", "ringing-agent"}).exit_code, 0);
  auto s = serve_sip();
  ASSERT_GT(sip_port_, 0);
  auto caller = call("caller_cancels.xml", "+14155550181");
  EXPECT_EQ(caller.wait(30s), 0) << caller.report();  // 180 passed back, 200 to its CANCEL, 487 to its INVITE
  EXPECT_EQ(agent.wait(30s), 0) << agent.report();
  const auto got = agent.received();
  EXPECT_EQ(std::count_if(got.begin(), got.end(), [](const auto& m) { return m.method() == "CANCEL"; }), 1);
}

// A wildcard bind cannot go in our Via and Record-Route: refused at start unless the advertised address is given.
TEST_F(SipInbound, AWildcardListenAddressNeedsTheAdvertisedHost) {
  const auto refused = dialer({"serve", "--listen", "127.0.0.1:0", "--sip-listen", "0.0.0.0:0"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("DIALER_SIP_ADVERTISED_HOST"), std::string::npos) << refused.err;
  auto s = serve_on_any_port("serve-wildcard", {"--sip-listen", "0.0.0.0:0"},
                             {{"DIALER_SIP_ADVERTISED_HOST", "127.0.0.1"}});
  EXPECT_NE(s.process->out().find("listening for SIP on"), std::string::npos) << s.process->out() << s.process->err();
}

TEST_F(SipInbound, AMalformedRequestGets400AndTheEndpointCarriesOn) {
  auto s = serve_sip();
  ASSERT_GT(sip_port_, 0);
  const std::string head =
      "INVITE sip:+14155550100@127.0.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKbad1;rport\r\n"
      "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:+14155550100@127.0.0.1>\r\n"
      "Call-ID: bad-1@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n";
  // A body shorter than its Content-Length (RFC 3261 §18.3: 400).
  auto answer = exchange(head + "Content-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\n");
  EXPECT_EQ(answer.substr(0, 15), "SIP/2.0 400 Bad") << answer;
  EXPECT_NE(answer.find("Call-ID: bad-1@test"), std::string::npos) << answer;
  // A CSeq whose method is not the request's, too many headers, garbage: 400 / 513, or nothing for garbage.
  EXPECT_EQ(exchange(head.substr(0, head.find("CSeq")) + "CSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
                .substr(0, 11),
            "SIP/2.0 400");
  std::string many = head;
  for (int i = 0; i < 200; ++i) many += "X-Filler-" + std::to_string(i) + ": x\r\n";
  EXPECT_EQ(exchange(many + "Content-Length: 0\r\n\r\n").substr(0, 11), "SIP/2.0 513");
  EXPECT_EQ(exchange(std::string("\x00\xff garbage \r\n\r\n", 16)), "");
  // Still serving: a well-formed request is answered (no number: 404).
  const auto fine = exchange(head + "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(fine.find("SIP/2.0 404"), 0u) << fine;
  EXPECT_FALSE(s.process->exited().has_value());
}

}  // namespace
}  // namespace dialer::testing::e2e
