// Two real `dialer` processes at the same moment.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "tests/integration/support.hpp"

namespace dialer::testing {
namespace {

TEST(Concurrency, TwoProcessesAssigningOneNumberToDifferentAgentsExactlyOneWins) {
  const auto url = fresh_database("assign_race");
  ASSERT_EQ(run_dialer({"--database-url", url, "agents", "create", "left"}).exit_code, 0);
  ASSERT_EQ(run_dialer({"--database-url", url, "agents", "create", "right"}).exit_code, 0);
  const auto dir = make_temp_dir("assign_race");
  constexpr int kRounds = 8;
  for (int i = 0; i < kRounds; ++i) {
    const std::string e164 = fmt::format("+1415555011{}", i);
    ASSERT_EQ(run_dialer({"--database-url", url, "numbers", "buy", e164}).exit_code, 0);
    const int a = spawn_dialer({"--database-url", url, "numbers", "assign", e164, "--agent", "left"}, dir / "a.out",
                               dir / "a.err");
    const int b = spawn_dialer({"--database-url", url, "numbers", "assign", e164, "--agent", "right"}, dir / "b.out",
                               dir / "b.err");
    const int ca = wait_for(a);
    const int cb = wait_for(b);
    EXPECT_TRUE((ca == 0 && cb == 4) || (ca == 4 && cb == 0))
        << "round " << i << ": exit codes " << ca << " and " << cb << "\n"
        << read_text(dir / "a.err") << read_text(dir / "b.err");
    const std::string loser_err = read_text(ca == 0 ? dir / "b.err" : dir / "a.err");
    EXPECT_NE(loser_err.find(ca == 0 ? "left" : "right"), std::string::npos) << loser_err;
  }
  auto c = connect_to(url);
  pqxx::nontransaction tx(*c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM numbers WHERE agent_id IS NOT NULL")[0].as<int>(), kRounds);
  std::filesystem::remove_all(dir);
}

TEST(EmbeddedCluster, TwoProcessesStartingAFreshStateDirectoryShareOneServer) {
  const auto state = make_temp_dir("embedded_two");
  const std::map<std::string, std::string> env{{"DIALER_DATABASE_URL", ""}};
  const int a = spawn_dialer({"--state-dir", state.string(), "--json", "agents", "list"}, state / "a.out",
                             state / "a.err", env);
  const int b = spawn_dialer({"--state-dir", state.string(), "--json", "agents", "list"}, state / "b.out",
                             state / "b.err", env);
  EXPECT_EQ(wait_for(a), 0) << read_text(state / "a.err");
  EXPECT_EQ(wait_for(b), 0) << read_text(state / "b.err");

  auto status = run_dialer({"--state-dir", state.string(), "--json", "db", "status"}, env);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto s = nlohmann::json::parse(status.out);
  EXPECT_TRUE(s["running"].get<bool>());

  // Reused next time: data written by one command is seen by the next.
  ASSERT_EQ(run_dialer({"--state-dir", state.string(), "agents", "create", "kept"}, env).exit_code, 0);
  auto stop = run_dialer({"--state-dir", state.string(), "db", "stop"}, env);
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  auto stopped = nlohmann::json::parse(run_dialer({"--state-dir", state.string(), "--json", "db", "status"}, env).out);
  EXPECT_FALSE(stopped["running"].get<bool>());
  auto list = run_dialer({"--state-dir", state.string(), "--json", "agents", "list"}, env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(nlohmann::json::parse(list.out).size(), 1u);
  EXPECT_EQ(run_dialer({"--state-dir", state.string(), "db", "stop"}, env).exit_code, 0);
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace dialer::testing
