// The SIPp scenarios of tests/data/sip/scenarios, proved without the adapter: each trunk or agent (UAS) scenario is
// played against a small SIPp UAC of tests/data/sip/drivers that imitates the controller, and passes with the right
// one; the checks are shown to fail on a wrong message (an ACK without the answer, an accepted answer where a rejected
// one is due, a wrong password, a non-numeric attempt id, an INVITE with SDP). No database. Also the message-log
// parser of sipp.hpp, on SIPp's real log format.

#include <algorithm>
#include <chrono>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <vector>

#include "tests/integration/sipp.hpp"

namespace dialer::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr auto kDeadline = 20s;

// One UAS scenario against one driver; both run to the end.
struct played {
  std::unique_ptr<sipp_process> uas;
  std::unique_ptr<sipp_process> driver;
  int uas_exit = -1;
  int driver_exit = -1;
  sipp_process::statistics uas_stats;
  sipp_process::statistics driver_stats;
};

played play(sipp_options uas_options, const std::string& driver_name, std::vector<std::string> driver_extra = {},
            int calls = 1) {
  played p;
  uas_options.max_calls = calls;
  uas_options.timeout = 30s;
  p.uas = std::make_unique<sipp_process>(uas_options);
  sipp_options d;
  if (!driver_name.empty()) d.scenario = sip_driver(driver_name);
  d.remote = p.uas->address();
  d.transport = uas_options.transport;
  d.max_calls = calls;
  d.timeout = 30s;
  d.extra = {"-cid_str", "d%u-%p@dialer"};  // Call-IDs like the controller's: d<attempt>-<hex>@dialer
  d.extra.insert(d.extra.end(), driver_extra.begin(), driver_extra.end());
  p.driver = std::make_unique<sipp_process>(d);
  p.driver_exit = p.driver->wait(kDeadline);
  p.uas_exit = p.uas->wait(kDeadline);
  p.uas_stats = p.uas->final_statistics();
  p.driver_stats = p.driver->final_statistics();
  return p;
}

sipp_options uas(const std::string& scenario_name, std::vector<std::string> extra = {},
                 const std::string& transport = "u1") {
  sipp_options o;
  o.scenario = sip_scenario(scenario_name);
  o.extra = std::move(extra);
  o.transport = transport;
  return o;
}

played play(const std::string& scenario_name, const std::string& driver_name,
            std::vector<std::string> driver_extra = {}, std::vector<std::string> uas_extra = {}) {
  return play(uas(scenario_name, std::move(uas_extra)), driver_name, std::move(driver_extra));
}

// Both sides exited 0 and counted `calls` successful calls and no failed one.
void expect_both_passed(const played& p, long long calls = 1) {
  EXPECT_EQ(p.uas_exit, 0) << p.uas->report();
  EXPECT_EQ(p.driver_exit, 0) << p.driver->report();
  EXPECT_EQ(p.uas_stats.incoming, calls) << p.uas->report();
  EXPECT_EQ(p.uas_stats.successful, calls) << p.uas->report();
  EXPECT_EQ(p.uas_stats.failed, 0) << p.uas->report();
  EXPECT_EQ(p.driver_stats.outgoing, calls) << p.driver->report();
  EXPECT_EQ(p.driver_stats.successful, calls) << p.driver->report();
}

// The UAS failed its one call on the check counted in `counter` (a "(C)" column of the statistics).
void expect_uas_failed_on(const played& p, const std::string& counter) {
  EXPECT_EQ(p.uas_exit, 1) << p.uas->report();
  EXPECT_EQ(p.uas_stats.successful, 0) << p.uas->report();
  EXPECT_EQ(p.uas_stats.failed, 1) << p.uas->report();
  EXPECT_EQ(p.uas_stats.last_row.at(counter), "1") << p.uas->report();
}

std::vector<sipp_process::received_message> with_method(const std::vector<sipp_process::received_message>& all,
                                                         const std::string& method) {
  std::vector<sipp_process::received_message> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out), [&](const auto& m) { return m.method() == method; });
  return out;
}

std::vector<int> statuses(const std::vector<sipp_process::received_message>& all) {
  std::vector<int> out;
  for (const auto& m : all)
    if (m.status() != 0) out.push_back(m.status());
  return out;
}

// ---- trunk scenarios -----------------------------------------------------------------------------------------------

TEST(SippScenarios, TrunkAnswerTakesTheAnswerInTheAckThenTheBye) {
  const auto p = play("trunk_answer.xml", "driver_trunk_answer.xml");
  expect_both_passed(p);
  EXPECT_EQ(p.uas_stats.regexp_failed, 0);
  EXPECT_EQ(p.uas_stats.unexpected, 0);

  // What the trunk received, from its message log.
  const auto got = p.uas->received();
  ASSERT_EQ(with_method(got, "INVITE").size(), 1u) << p.uas->messages();
  const auto invite = with_method(got, "INVITE").front();
  EXPECT_EQ(invite.start_line, "INVITE sip:+15551230001@" + p.uas->address() + " SIP/2.0");
  EXPECT_THAT(invite.header("call-id"), MatchesRegex("d1-[0-9]+@dialer"));
  EXPECT_THAT(invite.header("via"), HasSubstr(";rport"));
  EXPECT_EQ(invite.header("max-forwards"), "70");
  EXPECT_EQ(invite.header("content-length"), "0");
  EXPECT_EQ(invite.body, "");
  const auto acks = with_method(got, "ACK");
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].header("content-type"), "application/sdp");
  EXPECT_THAT(acks[0].body, HasSubstr("m=audio 40000 RTP/AVP 0 101\r\n"));
  EXPECT_EQ(acks[0].header("call-id"), invite.header("call-id"));
  EXPECT_EQ(with_method(got, "BYE").size(), 1u);
  EXPECT_EQ(got.size(), 3u);  // INVITE, ACK, BYE: no retransmission on loopback
  // And what the driver (the controller's place) received.
  EXPECT_THAT(statuses(p.driver->received()), ::testing::ElementsAre(100, 180, 200, 200));
}

TEST(SippScenarios, TrunkAnswerFailsAnAckWithoutTheAnswer) {
  const auto p = play("trunk_answer.xml", "driver_trunk_ack_without_sdp.xml");
  expect_uas_failed_on(p, "FailedRegexpDoesntMatch(C)");
  EXPECT_EQ(p.uas_stats.regexp_failed, 1);
  EXPECT_THAT(p.uas->errors(), HasSubstr("Failed regexp match"));
  EXPECT_THAT(p.uas->errors(), HasSubstr("m=audio [1-9][0-9]* "));
  EXPECT_EQ(p.driver_exit, 0) << p.driver->report();  // the call itself went to its end
}

TEST(SippScenarios, TrunkAnswerFailsAnInviteWithSdpWhichTrunkBenchTakes) {
  // SIPp's built-in UAC offers SDP in its INVITE (and sends its ACK without a body): trunk_answer refuses both,
  // trunk_bench (the benchmark baseline) takes it.
  const auto strict = play("trunk_answer.xml", "", {"-sn", "uac"});
  EXPECT_EQ(strict.uas_exit, 1) << strict.uas->report();
  EXPECT_EQ(strict.uas_stats.failed, 1) << strict.uas->report();
  EXPECT_THAT(strict.uas->errors(), HasSubstr("Regexp matched but should not"));  // v=0 in the INVITE
  EXPECT_THAT(strict.uas->errors(), HasSubstr("with regexp 'v=0'"));

  const auto bench = play("trunk_bench.xml", "", {"-sn", "uac"});
  expect_both_passed(bench);
  // The controller's way (no SDP in the INVITE, the answer in the ACK) passes there too.
  expect_both_passed(play("trunk_bench.xml", "driver_trunk_answer.xml"));
}

// The scenarios of delayed_offer: false check the opposite bodies: an INVITE without the agent's offer fails the
// trunk, an INVITE with an offer fails the agent called first (their passing side is the adapter's, in
// sip_carrier_test.cpp).
TEST(SippScenarios, WithoutDelayedOfferTheTrunkFailsAnInviteWithoutOfferAndTheAgentOneWithAnOffer) {
  const auto trunk = play("trunk_offer_answer.xml", "driver_trunk_callee_bye.xml", {}, {"-set", "hold", "100"});
  EXPECT_EQ(trunk.uas_exit, 1) << trunk.uas->report();
  EXPECT_EQ(trunk.uas_stats.failed, 1) << trunk.uas->report();
  EXPECT_THAT(trunk.uas->errors(), HasSubstr("header Content-Type: not found")) << trunk.uas->report();
  const auto busy = play("trunk_offer_busy.xml", "driver_trunk_busy.xml");
  EXPECT_EQ(busy.uas_exit, 1) << busy.uas->report();
  EXPECT_THAT(busy.uas->errors(), HasSubstr("o=agent")) << busy.uas->report();

  const auto agent = play("agent_offer.xml", "driver_agent.xml", {"-key", "attempt", "42"});
  EXPECT_EQ(agent.uas_exit, 1) << agent.uas->report();
  EXPECT_EQ(agent.uas_stats.failed, 1) << agent.uas->report();
  EXPECT_THAT(agent.uas->errors(), HasSubstr("with regexp 'v=0'")) << agent.uas->report();
}

TEST(SippScenarios, TrunkCalleeByeHangsUpAfterTheHold) {
  const auto p = play("trunk_callee_bye.xml", "driver_trunk_callee_bye.xml", {}, {"-set", "hold", "200"});
  expect_both_passed(p);
  const auto byes = with_method(p.driver->received(), "BYE");
  ASSERT_EQ(byes.size(), 1u) << p.driver->messages();
  // Sent to the INVITE's Contact, inside the dialog: From is the trunk's side (with its tag), To the controller's.
  EXPECT_EQ(byes[0].start_line, "BYE sip:dialer@" + p.driver->address() + " SIP/2.0");
  EXPECT_THAT(byes[0].header("from"), MatchesRegex("<sip:\\+15551230001@.*>;tag=.*SIPpTag01.*"));
  EXPECT_THAT(byes[0].header("to"), MatchesRegex("<sip:\\+15550009999@.*>;tag=[0-9]+Drv1"));
  EXPECT_EQ(byes[0].header("call-id"), with_method(p.uas->received(), "INVITE").at(0).header("call-id"));
  // The trunk got the 200 to its BYE.
  EXPECT_THAT(statuses(p.uas->received()), ::testing::ElementsAre(200));
}

TEST(SippScenarios, TrunkBusyAnswers486) {
  const auto p = play("trunk_busy.xml", "driver_trunk_busy.xml");
  expect_both_passed(p);
  EXPECT_THAT(statuses(p.driver->received()), ::testing::ElementsAre(100, 486));
  EXPECT_THAT(p.driver->received().back().header("to"), HasSubstr(";tag="));
}

TEST(SippScenarios, TrunkNoAnswerRingsUntilTheCancel) {
  const auto p = play("trunk_no_answer.xml", "driver_trunk_cancel.xml");
  expect_both_passed(p);
  EXPECT_THAT(statuses(p.driver->received()), ::testing::ElementsAre(100, 180, 200, 487));
  const auto got = p.driver->received();
  EXPECT_EQ(got[2].header("cseq"), "1 CANCEL");
  EXPECT_EQ(got[3].header("cseq"), "1 INVITE");
  // The 487 carries the INVITE's Via.
  EXPECT_EQ(got[3].header("via"), with_method(p.uas->received(), "INVITE").at(0).header("via"));
}

TEST(SippScenarios, TrunkUnavailableAnswers503WithRetryAfter) {
  const auto p = play("trunk_unavailable.xml", "driver_trunk_unavailable.xml");
  expect_both_passed(p);  // the driver checks Retry-After: 30 itself
  ASSERT_THAT(statuses(p.driver->received()), ::testing::ElementsAre(503));
  EXPECT_EQ(p.driver->received().at(0).header("retry-after"), "30");
}

TEST(SippScenarios, TrunkDigestChallengesThenVerifiesTheCredentials) {
  const auto p = play("trunk_digest.xml", "driver_trunk_digest.xml", {"-au", "dialer", "-ap", "s3cret"});
  expect_both_passed(p);
  EXPECT_THAT(statuses(p.driver->received()), ::testing::ElementsAre(401, 100, 180, 200, 200));
  const auto invites = with_method(p.uas->received(), "INVITE");
  ASSERT_EQ(invites.size(), 2u);
  EXPECT_EQ(invites[1].header("call-id"), invites[0].header("call-id"));
  EXPECT_EQ(invites[1].header("cseq"), "2 INVITE");
  EXPECT_THAT(invites[1].header("authorization"), HasSubstr("nonce=\"4f9d1c2a7b3e8d60a1b2c3d4e5f60718\""));
  EXPECT_THAT(invites[1].header("authorization"), HasSubstr("qop=auth"));
}

TEST(SippScenarios, TrunkDigestFailsTheCallOnAWrongPassword) {
  const auto p = play("trunk_digest.xml", "driver_trunk_digest.xml", {"-au", "dialer", "-ap", "not-the-password"});
  expect_uas_failed_on(p, "FailedTestDoesntMatch(C)");
  EXPECT_THAT(p.uas->errors(), HasSubstr("auth_verified"));
  EXPECT_THAT(statuses(p.driver->received()), ::testing::ElementsAre(401, 403));
}

TEST(SippScenarios, TrunkRefusedAgentWantsTheRejectedAnswerThenTheBye) {
  expect_both_passed(play("trunk_refused_agent.xml", "driver_trunk_rejected_answer.xml"));

  // An accepted answer (m=audio 40000) is wrong here...
  const auto accepted = play("trunk_refused_agent.xml", "driver_trunk_answer.xml");
  expect_uas_failed_on(accepted, "FailedRegexpDoesntMatch(C)");
  EXPECT_THAT(accepted.uas->errors(), HasSubstr("m=audio 0 "));
  // ...and a rejected one is wrong for trunk_answer.
  expect_uas_failed_on(play("trunk_answer.xml", "driver_trunk_rejected_answer.xml"), "FailedRegexpDoesntMatch(C)");
}

TEST(SippScenarios, TrunkMixedPlaysEachCallByTheLastDigitOfTheNumber) {
  const auto p = play(uas("trunk_mixed.xml"), "driver_trunk_mixed.xml",
                      {"-inf", sip_driver("mixed_numbers.csv").string(), "-r", "50"}, 10);
  expect_both_passed(p, 10);

  const auto trunk_got = p.uas->received();
  EXPECT_EQ(with_method(trunk_got, "INVITE").size(), 10u);
  EXPECT_EQ(with_method(trunk_got, "CANCEL").size(), 1u);
  EXPECT_EQ(with_method(trunk_got, "ACK").size(), 10u);  // 7 answered, busy, 480, 487
  EXPECT_EQ(with_method(trunk_got, "BYE").size(), 6u);   // 0-5 hung up by the controller; 8 by the trunk

  // Each final answer by the number it was for (the driver's Call-ID -> its INVITE's number).
  std::map<std::string, char> digit_of_call;
  for (const auto& invite : with_method(trunk_got, "INVITE")) {
    const auto at = invite.start_line.find('@');
    digit_of_call[invite.header("call-id")] = invite.start_line[at - 1];
  }
  std::map<char, std::vector<std::string>> seen;  // digit -> the final responses and requests the driver received
  for (const auto& m : p.driver->received()) {
    const bool final_response = m.status() >= 200;
    if (!final_response && m.method() != "BYE") continue;
    const auto cseq = m.header("cseq");
    seen[digit_of_call.at(m.header("call-id"))].push_back(
        final_response ? std::to_string(m.status()) + " " + cseq.substr(cseq.find(' ') + 1) : m.method());
  }
  for (char d = '0'; d <= '5'; ++d)
    EXPECT_THAT(seen[d], ::testing::ElementsAre("200 INVITE", "200 BYE")) << "number ending in " << d;
  EXPECT_THAT(seen['6'], ::testing::ElementsAre("486 INVITE"));
  EXPECT_THAT(seen['7'], ::testing::ElementsAre("200 CANCEL", "487 INVITE"));
  EXPECT_THAT(seen['8'], ::testing::ElementsAre("200 INVITE", "BYE"));
  EXPECT_THAT(seen['9'], ::testing::ElementsAre("480 INVITE"));
}

TEST(SippScenarios, TrunkAnswerOverTcp) {
  const auto p = play(uas("trunk_answer.xml", {}, "t1"), "driver_trunk_answer.xml");
  expect_both_passed(p);
  EXPECT_THAT(p.uas->messages(), HasSubstr("TCP message received ["));
  EXPECT_EQ(p.uas->received().size(), 3u);
}

// ---- agent scenarios -----------------------------------------------------------------------------------------------

TEST(SippScenarios, AgentAnswerAnswersTheOfferThenTakesTheBye) {
  const auto p = play("agent_answer.xml", "driver_agent.xml", {"-key", "attempt", "42"});
  expect_both_passed(p);
  const auto invite = with_method(p.uas->received(), "INVITE").at(0);
  EXPECT_EQ(invite.header("x-attempt-id"), "42");
  EXPECT_EQ(invite.header("x-first-name"), "Ann");
  EXPECT_THAT(invite.body, HasSubstr("m=audio 30000 RTP/AVP 0 8 101"));
  const auto ok = p.driver->received();
  ASSERT_THAT(statuses(ok), ::testing::ElementsAre(100, 200, 200));
  EXPECT_THAT(ok[1].body, MatchesRegex("(.|\r|\n)*m=audio [1-9][0-9]* RTP/AVP 0 101\r\n(.|\r|\n)*"));
}

TEST(SippScenarios, AgentAnswerFailsANonNumericAttemptId) {
  const auto p = play("agent_answer.xml", "driver_agent.xml", {"-key", "attempt", "42x"});
  expect_uas_failed_on(p, "FailedRegexpDoesntMatch(C)");
  EXPECT_THAT(p.uas->errors(), HasSubstr("looking in ' 42x'"));
}

TEST(SippScenarios, AgentByeHangsUpAfterHalfASecond) {
  const auto started = std::chrono::steady_clock::now();
  const auto p = play("agent_bye.xml", "driver_agent_bye.xml", {"-key", "attempt", "7"});
  expect_both_passed(p);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 500ms);
  const auto byes = with_method(p.driver->received(), "BYE");
  ASSERT_EQ(byes.size(), 1u);
  EXPECT_EQ(byes[0].start_line, "BYE sip:dialer@" + p.driver->address() + " SIP/2.0");
}

TEST(SippScenarios, AgentRefusesDeclines) {
  const auto p = play("agent_refuses.xml", "driver_agent_refused.xml", {"-key", "attempt", "7"});
  expect_both_passed(p);
  EXPECT_THAT(statuses(p.driver->received()), ::testing::ElementsAre(100, 603));
}

// ---- the helper itself ---------------------------------------------------------------------------------------------

TEST(SippScenarios, UasPortIsBoundOnReturnAndStopEndsAnIdleUas) {
  sipp_process trunk(uas("trunk_answer.xml"));
  ASSERT_GT(trunk.port(), 0);
  EXPECT_EQ(trunk.address(), "127.0.0.1:" + std::to_string(trunk.port()));
  EXPECT_TRUE(trunk.running());
  // Taken: a second SIPp on the same port cannot start.
  auto same_port = uas("trunk_answer.xml");
  same_port.port = trunk.port();
  EXPECT_THROW(sipp_process{same_port}, std::runtime_error);
  trunk.stop();
  EXPECT_EQ(trunk.wait(10s), 0) << trunk.report();  // SIGUSR1 with no call: 0 (not 99)
  EXPECT_FALSE(trunk.running());
  EXPECT_EQ(trunk.final_statistics().incoming, 0);
}

TEST(SippScenarios, MessageLogParser) {
  // SIPp 3.6.1's format, as written by socket.cpp and call.cpp (a sent message, a received one whose body holds a
  // line of dashes, an unexpected one, a received TCP one with compact and folded headers).
  const std::string dashes(47, '-');
  const std::string sdp = "v=0\r\n" + dashes + "\r\nm=audio 0 RTP/AVP 0\r\n";
  const std::string invite =
      "INVITE sip:+15551230001@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK1\r\n"
      "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\ni: d12-ab@dialer\r\nContent-Type: application/sdp\r\n"
      "Content-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
  const std::string trying = "SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n";
  const std::string bye =
      "BYE sip:trunk@127.0.0.1:5070 SIP/2.0\r\nf: <sip:a@b>;tag=1\r\nX-Long: one\r\n two\r\nContent-Length: 0\r\n\r\n";
  const auto entry = [&](const std::string& title, const std::string& message) {
    return dashes + " 2026-12-07 14:58:53.910318\n" + title + "\n\n" + message + "\n";
  };
  const std::string log =
      entry("UDP message sent (" + std::to_string(trying.size()) + " bytes):", trying) +
      entry("UDP message received [" + std::to_string(invite.size()) + "] bytes :", invite) +
      dashes + "\nUnexpected UDP message received:\n\n" + bye + "\n" +
      entry("TCP message received [" + std::to_string(bye.size()) + "] bytes :", bye);
  const auto got = sipp_process::parse_message_log(log);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].method(), "INVITE");
  EXPECT_EQ(got[0].headers.count("via"), 2u);
  EXPECT_EQ(got[0].header("call-id"), "d12-ab@dialer");
  EXPECT_EQ(got[0].body, sdp);
  EXPECT_EQ(got[1].start_line, "BYE sip:trunk@127.0.0.1:5070 SIP/2.0");
  EXPECT_EQ(got[1].header("from"), "<sip:a@b>;tag=1");
  EXPECT_EQ(got[1].header("x-long"), "one two");
  EXPECT_EQ(got[1].body, "");
  EXPECT_EQ(sipp_process::parse_sip_message("SIP/2.0 486 Busy Here\r\nCSeq: 1 INVITE\r\n\r\n").status(), 486);
}

}  // namespace
}  // namespace dialer::testing
