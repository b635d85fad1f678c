// A database restart in the middle of a campaign: the engine keeps what it holds, reconnects, and finishes
// with every contact in exactly one terminal state and no attempt placed twice.
#include <fmt/format.h>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <regex>
#include <thread>

#include "tests/integration/e2e_fixture.hpp"
#include "tests/integration/support.hpp"

namespace dialer::testing {
namespace {

namespace fs = std::filesystem;

std::string campaign_yaml(const fs::path& dir) {
  std::ifstream in(std::string(DIALER_TEST_DATA_DIR) + "/../../config/demo.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string yaml = ss.str();
  yaml = std::regex_replace(yaml, std::regex("time_acceleration: [0-9]+"),
                            "time_acceleration: 100\n    call_log: " + (dir / "carrier.log").string());
  yaml = std::regex_replace(yaml, std::regex("generate: [0-9]+"), "generate: 2000");
  yaml = std::regex_replace(yaml, std::regex("file: demo-contacts.csv"), "file: " + (dir / "contacts.csv").string());
  return yaml;
}

TEST(DatabaseRestart, RunSurvivesARestartAndLosesNothing) {
  const auto dir = make_temp_dir("db_restart");
  const auto state = dir / "state";
  { std::ofstream(dir / "c.yaml") << campaign_yaml(dir); }
  const std::map<std::string, std::string> env{{"DIALER_DATABASE_URL", ""}, {"DIALER_PG_UNSAFE_FAST", "1"}};
  ASSERT_EQ(run_dialer({"--state-dir", state.string(), "db", "start"}, env).exit_code, 0);
  const auto status = nlohmann::json::parse(run_dialer({"--state-dir", state.string(), "--json", "db", "status"}, env).out);
  const std::string url = status["connection"];

  const int pid = spawn_dialer({"--state-dir", state.string(), "--json", "run", (dir / "c.yaml").string()},
                               dir / "run.out", dir / "run.err", env);
  // Wait (bounded) until the campaign is well under way.
  bool underway = false;
  for (int i = 0; i < 600 && !underway; ++i) {
    try {
      pqxx::connection c(url);
      pqxx::nontransaction tx(c);
      underway = tx.exec1("SELECT count(*) FROM call_attempts")[0].as<long>() >= 300;
    } catch (const std::exception&) {
    }
    if (!underway) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling a condition
  }
  ASSERT_TRUE(underway) << "the campaign never got going: " << read_text(dir / "run.err");

  auto stop = run_dialer({"--state-dir", state.string(), "db", "stop"}, env);
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  auto start = run_dialer({"--state-dir", state.string(), "db", "start"}, env);
  ASSERT_EQ(start.exit_code, 0) << start.err;

  const int code = wait_for(pid);
  ASSERT_EQ(code, 0) << read_text(dir / "run.err");
  const auto report = nlohmann::json::parse(read_text(dir / "run.out"));
  EXPECT_EQ(report["campaign"]["state"], "completed");

  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM contacts WHERE state = 'pending'")[0].as<long>(), 0);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL")[0].as<long>(), 0);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM contacts")[0].as<long>(), report["contacts"]["total"].get<long>());
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM call_attempts WHERE outcome IS NULL")[0].as<long>(), 0);
  // Never dialed twice across the restart: from the carrier's own log, not the attempts' primary key.
  const auto calls = e2e::read_carrier_log(dir / "carrier.log");
  ASSERT_FALSE(calls.empty());
  std::map<std::string, int> keys;
  for (const auto& call : calls) EXPECT_EQ(++keys[call.key], 1) << "attempt " << call.attempt << " was placed twice";
  EXPECT_EQ(static_cast<long>(calls.size()), tx.exec1("SELECT count(*) FROM call_attempts")[0].as<long>());
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM contacts WHERE attempts > 2")[0].as<long>(), 0);

  EXPECT_EQ(run_dialer({"--state-dir", state.string(), "db", "stop"}, env).exit_code, 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace dialer::testing
