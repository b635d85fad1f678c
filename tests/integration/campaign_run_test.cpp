// Campaigns end to end through the real `dialer` binary on a fresh PostgreSQL database per test: file
// validation, launch failures, a demo-like campaign to completion, single calls and the do-not-call list.
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/e2e_fixture.hpp"

namespace dialer::testing::e2e {
namespace {

using nlohmann::json;

class CampaignRun : public campaign_test {};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

TEST_F(CampaignRun, FileWithErrorsOnSeveralLinesIsRejectedWholeWithPositionsAndWritesNothing) {
  const auto file = data_dir / "broken.yaml";
  auto r = dialer({"run", file.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // One error per line, each "<file>:<line>:<column>: <field>: ...", for every broken line of the file.
  const std::regex positioned("^.*broken\\.yaml:([0-9]+):([0-9]+): .+$");
  std::set<int> lines;
  for (const auto& line : lines_of(r.err)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, positioned)) << "not a positioned error: " << line << "\n" << r.err;
    lines.insert(std::stoi(m[1]));
  }
  for (auto [line, what] : {std::pair{1, "name"},
                            {3, "concurency"},
                            {5, "numbers[0]"},
                            {7, "retry.max_attempts"},
                            {8, "retry.busy.delay"},
                            {10, "contacts.file"}}) {
    EXPECT_TRUE(lines.contains(line)) << "no error reported on line " << line << " (" << what << "):\n"
                                      << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << what << " not named:\n" << r.err;
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM agents"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts"), 0);
}

TEST_F(CampaignRun, ACarrierThatThrottlesAndRefusesDestinationsStillLetsTheRunFinish) {
  // Throttled originations go back to the hopper (not attempts); refused destinations end their contacts as
  // invalid, their attempt rows removed. Each refusal is one report for the writer: the run must notice when
  // all of them are written and end.
  const auto file = campaign_file("refusing.yaml", {{"CONTACTS", (dir_ / "contacts.csv").string()},
                                                    {"GENERATE", "400"},
                                                    {"ACCEL", "500"},
                                                    {"MAX_CONCURRENT", "20"},
                                                    {"MAX_CPS", "500"},
                                                    {"THROTTLE", "100"},
                                                    {"INVALID_PREFIX", "+12"}});
  auto run = start({"run", file.string()}, "refusing");
  ASSERT_TRUE(eventually([&] { return run->exited().has_value(); }, nullptr, 120s))
      << "the run did not end:\n"
      << table("SELECT state, pending_reason, count(*) FROM contacts GROUP BY 1, 2") << run->err();
  ASSERT_EQ(run->wait(), 0) << run->err();
  const auto report = json::parse(run->out());
  EXPECT_EQ(report["campaign"]["state"], "completed");
  EXPECT_GT(scalar("SELECT count(*) FROM contacts WHERE state = 'invalid' AND pending_reason LIKE "
                   "'invalid_destination%'"),
            0);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'invalid' AND e164 NOT LIKE '+12%'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE caller_id <> '' AND contact_id IN "
                   "(SELECT id FROM contacts WHERE state = 'invalid')"),
            0);
  expect_settled(2);
}

TEST_F(CampaignRun, DemoCampaignCompletesAndItsJsonReportMatchesTheDatabase) {
  // config/demo.yaml as shipped, but with 1 000 contacts generated into the test's folder.
  const auto demo = fs::path(DIALER_TEST_DATA_DIR).parent_path().parent_path() / "config" / "demo.yaml";
  std::string text = read_text(demo);
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"file: demo-contacts.csv",
                                            "file: " + (dir_ / "contacts.csv").string()},
        {"generate: 10000", "generate: 1000"},
        {"time_acceleration: 500", "time_acceleration: 500\n    call_log: " + carrier_log().string()}}) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << demo << " no longer has '" << from << "': update this test";
    text.replace(at, from.size(), to);
  }
  const auto file = dir_ / "demo.yaml";
  std::ofstream(file) << text;

  auto r = dialer_json({"run", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json report;
  ASSERT_NO_THROW(report = json::parse(r.out)) << r.out;
  EXPECT_EQ(report["campaign"]["state"], "completed");

  std::map<std::string, std::int64_t> by_state;
  for (const auto& row : query("SELECT state, count(*) FROM contacts GROUP BY 1"))
    by_state[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  for (const auto& [state, n] : report["contacts"]["by_state"].items())
    EXPECT_EQ(n.get<std::int64_t>(), by_state[state]) << state;
  for (const auto& [state, n] : by_state)
    EXPECT_TRUE(report["contacts"]["by_state"].contains(state)) << state;
  EXPECT_EQ(report["contacts"]["total"], scalar("SELECT count(*) FROM contacts"));
  EXPECT_EQ(report["attempts"], attempts());
  EXPECT_GT(attempts(), 0);

  std::map<std::string, std::int64_t> outcomes;
  for (const auto& row : query("SELECT coalesce(outcome, 'none'), count(*) FROM call_attempts GROUP BY 1"))
    outcomes[row[0].as<std::string>()] = row[1].as<std::int64_t>();
  EXPECT_EQ(report["outcomes"].get<decltype(outcomes)>(), outcomes);

  std::int64_t calls = 0;
  ASSERT_FALSE(report["numbers"].empty());
  for (const auto& n : report["numbers"]) {
    const std::string e164 = n["e164"];
    EXPECT_EQ(n["calls"], scalar("SELECT count(*) FROM call_attempts WHERE caller_id = '" + e164 + "'"))
        << e164;
    EXPECT_EQ(n["max_concurrent_calls"],
              scalar("SELECT max_concurrent_calls FROM numbers WHERE e164 = '" + e164 + "'"));
    EXPECT_GE(n["peak_in_flight"].get<int>(), 1) << e164;
    EXPECT_LE(n["peak_in_flight"].get<int>(), n["max_concurrent_calls"].get<int>()) << e164;
    calls += n["calls"].get<std::int64_t>();
  }
  EXPECT_EQ(calls, attempts());

  EXPECT_EQ(report["import"]["accepted"], scalar("SELECT count(*) FROM contacts"));
  EXPECT_EQ(report["import"]["accepted"].get<std::size_t>() + report["import"]["rejected"].size(), 1000u);
  expect_settled(2);
}

TEST_F(CampaignRun, AgentWithoutNumbersFailsToLaunchNamingTheAgentAndDialsNothing) {
  auto r = dialer({"run", (data_dir / "no-numbers.yaml").string()});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("has no outbound number"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("e2e-lonely-agent"), std::string::npos) << r.err;
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 0);
  EXPECT_EQ(attempts(), 0);
}

TEST_F(CampaignRun, ListedNumberOfAnotherAgentFailsToLaunchNamingTheNumberAndItsAgent) {
  ASSERT_EQ(dialer({"agents", "create", "e2e-other-agent"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "buy", "+14155550100"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550100", "--agent", "e2e-other-agent"}).exit_code, 0);
  auto r = dialer({"run", (data_dir / "foreign-number.yaml").string()});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("+14155550100"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("e2e-other-agent"), std::string::npos) << r.err;
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 0);
  EXPECT_EQ(attempts(), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers n JOIN agents a ON a.id = n.agent_id WHERE a.name = "
                   "'e2e-other-agent'"),
            1);
}

class SingleCall : public campaign_test {
 protected:
  void SetUp() override {
    campaign_test::SetUp();
    ASSERT_EQ(dialer({"agents", "create", "caller"}).exit_code, 0);
    ASSERT_EQ(dialer({"numbers", "buy", "+14155550100"}).exit_code, 0);
    ASSERT_EQ(dialer({"numbers", "assign", "+14155550100", "--agent", "caller"}).exit_code, 0);
  }
};

TEST_F(SingleCall, AgentWithANumberPlacesTheCallAndPrintsItsOutcome) {
  // `dialer call` plays the simulated carrier in real time, and a call's fate depends only on its attempt id
  // (seed 1, key "attempt-<id>", id = contact id * 128 + 1): the first attempt of contact 10 is busy after
  // about 1.8 s, that of contact 107 fails after about 1.7 s. Other contacts would test the same, only slower
  // (answered calls last a minute or more); the contact id sequence picks them.
  scalar("SELECT setval('contacts_id_seq', 9)");
  auto r = dialer_json({"call", "--agent", "caller", "--to", "+12025550143"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json call;
  ASSERT_NO_THROW(call = json::parse(r.out)) << r.out;
  EXPECT_EQ(call["from"], "+14155550100");
  EXPECT_EQ(call["to"], "+12025550143");
  const std::set<std::string> outcomes{"completed", "busy", "no_answer", "failed", "voicemail"};
  EXPECT_TRUE(outcomes.contains(call["outcome"].get<std::string>())) << call.dump();
  EXPECT_EQ(
      scalar("SELECT count(*) FROM call_attempts WHERE outcome IS NOT NULL AND caller_id = '+14155550100'"),
      1);

  scalar("SELECT setval('contacts_id_seq', 106)");
  auto text = dialer({"call", "--agent", "caller", "--to", "+12025550144"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("+14155550100 -> +12025550144: "), std::string::npos) << text.out;
}

TEST_F(SingleCall, AgentWithoutANumberFailsToLaunchAndSaysSo) {
  ASSERT_EQ(dialer({"agents", "create", "mute"}).exit_code, 0);
  auto r = dialer({"call", "--agent", "mute", "--to", "+12025550143"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("'mute' has no outbound number"), std::string::npos) << r.err;
  EXPECT_EQ(attempts(), 0);
}

TEST_F(SingleCall, FromANumberThatIsNotTheAgentsFailsToLaunch) {
  ASSERT_EQ(dialer({"agents", "create", "rival"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "buy", "+12125550100"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+12125550100", "--agent", "rival"}).exit_code, 0);
  auto held = dialer({"call", "--agent", "caller", "--to", "+12025550143", "--from", "+12125550100"});
  EXPECT_EQ(held.exit_code, 6) << held.err;
  EXPECT_NE(held.err.find("+12125550100"), std::string::npos) << held.err;
  EXPECT_NE(held.err.find("rival"), std::string::npos) << held.err;
  // A number the account does not have is not found (exit 3, as for every command), not a launch failure.
  auto unknown = dialer({"call", "--agent", "caller", "--to", "+12025550143", "--from", "+13125550100"});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.err;
  EXPECT_NE(unknown.err.find("+13125550100"), std::string::npos) << unknown.err;
  EXPECT_EQ(attempts(), 0);
}

class DoNotCall : public campaign_test {};

TEST_F(DoNotCall, ListedNumberIsRejectedAtImportAndNeverDialed) {
  ASSERT_EQ(dialer({"dnc", "add", "(202) 555-0143"}).exit_code, 0);
  auto r = dialer_json({"run", campaign_file("small.yaml", {{"MAX_CPS", "100"}}).string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json report;
  ASSERT_NO_THROW(report = json::parse(r.out)) << r.out;
  // few-contacts.csv: +12025550143 is data row 1 of 12.
  EXPECT_EQ(report["import"]["rejected"],
            json::parse(R"([{"row": 1, "reason": "do_not_call", "input": "+12025550143"}])"));
  EXPECT_EQ(report["import"]["rejected_total"], 1);
  EXPECT_EQ(report["import"]["rejected_by_reason"], json::parse(R"({"do_not_call": 1})"));
  EXPECT_EQ(report["import"]["accepted"], 11);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE e164 = '+12025550143'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts"), 11);
  expect_settled(2);
}

TEST_F(DoNotCall, ImportingAFileAddsItsNumbersOnceAndReportsTheLinesItSkipped) {
  const auto file = dir_ / "dnc.csv";
  std::ofstream(file) << "phone,reason\n(202) 555-0143,asked\n# a comment\n+13125550144\nnot a number\n";
  auto r = dialer_json({"dnc", "import", file.string()});
  EXPECT_EQ(r.exit_code, 2) << "a skipped line makes the import exit 2:\n" << r.err;
  const auto report = json::parse(r.out);
  EXPECT_EQ(report["added"], 2);
  ASSERT_EQ(report["skipped"].size(), 1u) << report.dump();
  EXPECT_NE(report["skipped"][0].get<std::string>().find(":5: 'not a number'"), std::string::npos)
      << report.dump();
  EXPECT_EQ(scalar("SELECT count(*) FROM do_not_call WHERE e164 IN ('+12025550143', '+13125550144')"), 2);
  auto again = dialer_json({"dnc", "import", file.string()});
  EXPECT_EQ(json::parse(again.out)["added"], 0) << "numbers already listed are not added twice";
  EXPECT_EQ(scalar("SELECT count(*) FROM do_not_call"), 2);
}

TEST_F(DoNotCall, NumberListedAfterImportEndsDoNotCallAndIsNeverDialed) {
  // A slow first run (4 calls/s) is interrupted after its first call; one of the contacts it has not called
  // yet then goes on the list, and the resumed run must end it do_not_call instead of dialing it.
  const auto file = campaign_file("small.yaml", {{"MAX_CPS", "4"}});
  auto first = start({"run", file.string()}, "first");
  ASSERT_TRUE(eventually([&] { return attempts() >= 1; }, first.get()))
      << "no call was placed; exit " << first->exited().value_or(-1) << ": " << first->err();
  first->signal(SIGINT);
  ASSERT_EQ(first->wait(), 130) << first->err();
  ASSERT_EQ(campaign_state("e2e-small"), "paused");

  auto waiting = query(
      "SELECT id, e164 FROM contacts WHERE state = 'pending' AND attempts = 0 "
      "ORDER BY row_number DESC LIMIT 1");
  ASSERT_EQ(waiting.size(), 1u) << table("SELECT e164, state, attempts FROM contacts");
  const auto id = waiting[0][0].as<std::int64_t>();
  const auto e164 = waiting[0][1].as<std::string>();
  ASSERT_EQ(dialer({"dnc", "add", e164}).exit_code, 0);

  auto r = dialer_json({"run", file.string(), "--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json report;
  ASSERT_NO_THROW(report = json::parse(r.out)) << r.out;
  EXPECT_EQ(report["contacts"]["by_state"]["do_not_call"], 1);
  EXPECT_EQ(scalar(fmt::format("SELECT count(*) FROM contacts WHERE id = {} AND state = 'do_not_call'", id)),
            1)
      << e164;
  EXPECT_EQ(scalar(fmt::format("SELECT count(*) FROM call_attempts WHERE contact_id = {}", id)), 0) << e164;
  expect_settled(2);
}

}  // namespace
}  // namespace dialer::testing::e2e
