// The command line as users type it, through the real `dialer` binary on a fresh database per test: options
// after the command, --version, what `campaigns show` and the summary report, exit 3 for everything not
// found, and the README's inventory walkthrough run exactly as written.
#include <nlohmann/json.hpp>
#include <numeric>
#include <regex>
#include <sstream>

#include "tests/integration/e2e_fixture.hpp"

namespace dialer::testing::e2e {
namespace {

using nlohmann::json;

class CommandLine : public campaign_test {
 protected:
  // Runs a finished small campaign (tests/data/e2e/small.yaml, one caller ID limited to 4 calls at once).
  void run_small_campaign() {
    auto r = dialer_json({"run", campaign_file("small.yaml", {{"MAX_CPS", "100"}}).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
};

TEST_F(CommandLine, GlobalOptionsWorkAfterTheCommand) {
  const auto file = campaign_file("small.yaml", {{"MAX_CPS", "100"}});
  auto run = dialer({"run", file.string(), "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  json report;
  ASSERT_NO_THROW(report = json::parse(run.out)) << run.out;
  EXPECT_EQ(report["campaign"]["state"], "completed");

  auto list = dialer({"numbers", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json numbers;
  ASSERT_NO_THROW(numbers = json::parse(list.out)) << list.out;
  ASSERT_EQ(numbers.size(), 1u);
  EXPECT_EQ(numbers[0]["e164"], "+14155550100");

  // Every global option after the command, none before it.
  auto after = run_dialer({"campaigns", "show", "e2e-small", "--json", "--database-url", url_});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(json::parse(after.out)["campaign"]["name"], "e2e-small");
}

TEST_F(CommandLine, VersionPrintsTheProjectVersion) {
  auto r = run_dialer({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(DIALER_EXPECTED_VERSION), std::string::npos) << r.out << r.err;
}

TEST_F(CommandLine, ShowReportsTheRunsRealDurationAndEachNumbersPeak) {
  run_small_campaign();
  auto r = dialer_json({"campaigns", "show", "e2e-small"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = json::parse(r.out);
  const double duration = report["duration_s"].get<double>();
  const auto span = query("SELECT extract(epoch FROM finished_at - started_at)::float8 FROM campaigns");
  ASSERT_EQ(span.size(), 1u);
  EXPECT_GT(duration, 0.0);
  EXPECT_NEAR(duration, span[0][0].as<double>(), 0.01);

  // The peak by a different method than a sweep: at each call's start, count the calls of its number running
  // then. small.yaml plays calls at time_acceleration 500: the simulated carrier writes ended_at on its
  // simulated timeline, so a call's wall-clock end is started_at + (ended_at - started_at) / 500.
  const std::string intervals =
      "SELECT number_id, started_at AS s, started_at + (ended_at - started_at) / 500.0 AS e FROM "
      "call_attempts";
  const auto peak = scalar("WITH iv AS (" + intervals +
                           ") SELECT max((SELECT count(*) FROM iv j WHERE "
                           "j.number_id = i.number_id AND j.s <= i.s AND j.e > i.s)) FROM iv i");
  ASSERT_EQ(report["numbers"].size(), 1u);
  const auto& number = report["numbers"][0];
  EXPECT_EQ(number["e164"], "+14155550100");
  EXPECT_GE(number["peak_in_flight"].get<std::int64_t>(), 1);
  EXPECT_LE(number["peak_in_flight"].get<std::int64_t>(), number["max_concurrent_calls"].get<std::int64_t>());
  EXPECT_EQ(number["peak_in_flight"].get<std::int64_t>(), peak);

  auto text = dialer({"campaigns", "show", "e2e-small"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find(fmt::format("+14155550100  {}", number["calls"].get<std::int64_t>())),
            std::string::npos)
      << text.out;
  EXPECT_EQ(text.out.find("duration: 0.0s"), std::string::npos) << text.out;
}

TEST_F(CommandLine, TheSummaryListsRejectedRowsWithTheirRowNumbers) {
  // 25 bad rows (rows 2..26) between two good ones: the table shows the first 20 and how many more; JSON all.
  const auto contacts = dir_ / "contacts.csv";
  {
    std::ofstream out(contacts);
    out << "phone,name\n+12025550143,first\n";
    for (int i = 0; i < 25; ++i) out << "not-a-number-" << i << ",bad\n";
    out << "+13125550144,last\n";
  }
  std::string text = read_text(campaign_file("small.yaml", {{"MAX_CPS", "100"}}));
  const std::string from = "file: " + (data_dir / "few-contacts.csv").string();
  ASSERT_NE(text.find(from), std::string::npos) << text;
  text.replace(text.find(from), from.size(), "file: " + contacts.string());
  const auto file = dir_ / "rejects.yaml";
  std::ofstream(file) << text;

  auto table_run = dialer({"run", file.string()});
  ASSERT_EQ(table_run.exit_code, 0) << table_run.err;
  for (int row = 2; row <= 21; ++row)
    EXPECT_NE(table_run.out.find(fmt::format("row {}: invalid_number", row)), std::string::npos)
        << row << "\n"
        << table_run.out;
  EXPECT_EQ(table_run.out.find("row 22: invalid_number"), std::string::npos) << table_run.out;
  EXPECT_NE(table_run.out.find("and 5 more"), std::string::npos) << table_run.out;

  auto shown = dialer_json({"campaigns", "show", "e2e-small"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const auto import = json::parse(shown.out)["import"];
  EXPECT_EQ(import["rejected_total"], 25);
  EXPECT_EQ(import["rejected_by_reason"], json::parse(R"({"invalid_number": 25})"));
  const auto rejected = import["rejected"];
  ASSERT_EQ(rejected.size(), 25u) << rejected.dump();
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(rejected[static_cast<std::size_t>(i)]["row"], i + 2);
    EXPECT_EQ(rejected[static_cast<std::size_t>(i)]["reason"], "invalid_number");
    EXPECT_EQ(rejected[static_cast<std::size_t>(i)]["input"], fmt::format("not-a-number-{}", i));
  }

  // `campaigns rejected` pages through them all, each row once, in order.
  std::vector<int> paged;
  std::string after = "0";
  for (int page = 0; page < 10; ++page) {
    auto r = dialer_json({"campaigns", "rejected", "e2e-small", "--limit", "10", "--after", after});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = json::parse(r.out);
    for (const auto& row : j["rejected"]) paged.push_back(row["row"].get<int>());
    if (j["next_after"].is_null()) break;
    after = std::to_string(j["next_after"].get<int>());
  }
  std::vector<int> expected(25);
  std::iota(expected.begin(), expected.end(), 2);
  EXPECT_EQ(paged, expected);
  EXPECT_EQ(dialer({"campaigns", "rejected", "nobody"}).exit_code, 3);
}

TEST_F(CommandLine, EveryCommandThatNamesSomethingUnknownExitsThree) {
  ASSERT_EQ(dialer({"agents", "create", "known"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "buy", "+14155550100"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550100", "--agent", "known"}).exit_code, 0);
  const auto unknown_agent = dir_ / "unknown-agent.yaml";
  std::ofstream(unknown_agent)
      << "name: e2e-ghost\nagent: nobody\n"
      << "window: {start: \"00:00\", end: \"24:00\", days: every day, holidays: none}\n"
      << "contacts: {file: " << (data_dir / "few-contacts.csv").string() << "}\n";
  const auto never_ran = campaign_file("small.yaml", {{"MAX_CPS", "100"}});

  const std::vector<std::vector<std::string>> commands{
      {"numbers", "assign", "+14155550101", "--agent", "known"},
      {"numbers", "assign", "+14155550100", "--agent", "nobody"},
      {"numbers", "assign", "+14155550100", "--agent", "424242"},
      {"numbers", "unassign", "+14155550188"},
      {"numbers", "release", "+14155550188"},
      {"numbers", "release", "424242"},
      {"numbers", "list", "--agent", "nobody"},
      {"call", "--agent", "nobody", "--to", "+12025550143"},
      {"call", "--agent", "known", "--to", "+12025550143", "--from", "+13125550100"},
      {"campaigns", "show", "nobody"},
      {"campaigns", "show", "424242"},
      {"campaigns", "pause", "nobody"},
      {"campaigns", "resume", "nobody"},
      {"campaigns", "cancel", "nobody"},
      {"run", unknown_agent.string()},
      {"run", never_ran.string(), "--resume"},
  };
  for (const auto& command : commands) {
    std::string shown;
    for (const auto& a : command) shown += a + " ";
    auto r = dialer(command);
    EXPECT_EQ(r.exit_code, 3) << shown << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << shown;
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM agents"), 1);
  EXPECT_EQ(attempts(), 0);
}

// The block under "### A session with the inventory" in README.md, one command a line; "# exit N" states the
// exit code (0 otherwise) and a quoted text after it, when there is one, must appear in the error.
struct walkthrough_step {
  std::vector<std::string> args;
  int exit_code = 0;
  std::string says;
  std::string line;
};

std::vector<walkthrough_step> readme_walkthrough() {
  const auto readme = fs::path(DIALER_TEST_DATA_DIR).parent_path().parent_path() / "README.md";
  const std::string text = read_text(readme);
  const auto section = text.find("### A session with the inventory");
  EXPECT_NE(section, std::string::npos) << readme << " has no inventory walkthrough";
  if (section == std::string::npos) return {};
  const auto open = text.find("```sh\n", section);
  const auto close = text.find("```\n", open + 6);
  EXPECT_TRUE(open != std::string::npos && close != std::string::npos);
  if (open == std::string::npos || close == std::string::npos) return {};
  std::vector<walkthrough_step> steps;
  std::istringstream lines(text.substr(open + 6, close - open - 6));
  const std::regex exit_comment(R"re(exit ([0-9]+)(?::\s*"([^"]*)")?)re");
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    walkthrough_step step;
    step.line = line;
    const auto hash = line.find('#');
    const std::string command = line.substr(0, hash);
    if (hash != std::string::npos) {
      std::smatch m;
      const std::string comment = line.substr(hash);
      if (std::regex_search(comment, m, exit_comment)) {
        step.exit_code = std::stoi(m[1]);
        step.says = m[2];
      }
    }
    std::istringstream words(command);
    for (std::string w; words >> w;) step.args.push_back(w);
    EXPECT_FALSE(step.args.empty()) << line;
    if (step.args.empty()) continue;
    EXPECT_EQ(step.args.front(), "dialer") << line;
    step.args.erase(step.args.begin());
    steps.push_back(std::move(step));
  }
  return steps;
}

TEST_F(CommandLine, TheReadmeInventoryWalkthroughRunsAsWritten) {
  const auto steps = readme_walkthrough();
  ASSERT_GE(steps.size(), 5u);
  for (const auto& step : steps) {
    auto r = dialer(step.args);
    EXPECT_EQ(r.exit_code, step.exit_code) << step.line << "\n" << r.out << r.err;
    if (!step.says.empty()) {
      EXPECT_NE(r.err.find(step.says), std::string::npos) << step.line << "\n" << r.err;
    }
  }
  // Where the walkthrough leaves the inventory: the bought number released, the BYOC one kept.
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers WHERE e164 = '+14155550123' AND status = 'released'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers WHERE e164 = '+13125550177' AND status = 'active'"), 1);
}

}  // namespace
}  // namespace dialer::testing::e2e
