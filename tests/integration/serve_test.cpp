// `dialer serve`: long-running engines that dial every running campaign of their database, through the real
// binary on a fresh PostgreSQL database per test. A campaign launched by another process (`dialer campaigns
// launch`) is taken on from the change feed (LISTEN/NOTIFY): the engines here read every campaign in full
// only once an hour, so the feed is the only way they can learn of it.
#include <set>

#include "tests/integration/e2e_fixture.hpp"

namespace dialer::testing::e2e {
namespace {

class Serve : public campaign_test {
 protected:
  // steady.yaml: 1 000 generated contacts over two caller IDs of 20 slots each, at 250x (a few seconds).
  fs::path steady() {
    return campaign_file("steady.yaml", {{"CONTACTS", (dir_ / "contacts.csv").string()},
                                         {"GENERATE", "1000"},
                                         {"ACCEL", "250"},
                                         {"MAX_CONCURRENT", "20"},
                                         {"MAX_CPS", "500"}});
  }
  // The change feed alone: a full read once an hour.
  const std::map<std::string, std::string> feed_only{{"DIALER_CAMPAIGN_POLL_MS", "3600000"}};
};

TEST_F(Serve, TwoServingEnginesDialALaunchedCampaignToCompletionWithinEveryCap) {
  auto a = start({"serve", "--listen", "127.0.0.1:0"}, "serve-a", feed_only);
  auto b = start({"serve", "--listen", "127.0.0.1:0"}, "serve-b", feed_only);
  // Both engines are registered (they heartbeat) before the launch, so both hear of it.
  ASSERT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= 2; }, a.get()))
      << "the engines never registered: " << a->err() << b->err();
  const auto launched = dialer_json({"campaigns", "launch", steady().string()});
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  EXPECT_EQ(nlohmann::json::parse(launched.out)["campaign"]["state"], "running");
  ASSERT_TRUE(eventually([&] { return campaign_state("e2e-steady") == "completed"; }, a.get(), 120s))
      << "state " << campaign_state("e2e-steady") << "; " << a->err() << b->err();
  a->signal(SIGTERM);
  b->signal(SIGTERM);
  EXPECT_EQ(a->wait(), 0) << a->err();
  EXPECT_EQ(b->wait(), 0) << b->err();
  expect_settled(2);
  std::set<int> placers;
  for (const auto& call : carrier_calls()) placers.insert(call.pid);
  EXPECT_EQ(placers.size(), 2u) << "both engines placed calls of the campaign";
  EXPECT_EQ(scalar("SELECT count(*) FROM engines"), 0) << "a drained engine leaves no registration";
  EXPECT_EQ(scalar("SELECT count(*) FROM number_slots WHERE engine_id IS NOT NULL"), 0);
}

// A pause from the command line stops every serving engine's originations (queued contacts go back as
// 'paused'), and a resume lets them finish: both announced on the change feed.
TEST_F(Serve, PauseAndResumeFromTheCommandLineReachEveryServingEngine) {
  auto a = start({"serve", "--listen", "127.0.0.1:0"}, "serve-a", feed_only);
  ASSERT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= 1; }, a.get())) << a->err();
  ASSERT_EQ(dialer({"campaigns", "launch", steady().string()}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return attempts() >= 100; }, a.get())) << a->err();
  ASSERT_EQ(dialer({"campaigns", "pause", "e2e-steady"}).exit_code, 0);
  // Drained: every block given back, every attempt settled, and no new attempt while paused.
  ASSERT_TRUE(eventually([&] { return held_blocks() == 0 && open_attempts() == 0; }, a.get())) << a->err();
  const auto paused_at = attempts();
  EXPECT_GT(scalar("SELECT count(*) FROM contacts WHERE pending_reason = 'paused'"), 0);
  EXPECT_LT(paused_at, 2000);
  ASSERT_EQ(dialer({"campaigns", "resume", "e2e-steady"}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return campaign_state("e2e-steady") == "completed"; }, a.get(), 120s))
      << a->err();
  EXPECT_GT(attempts(), paused_at);
  a->signal(SIGTERM);
  EXPECT_EQ(a->wait(), 0) << a->err();
  expect_settled(2);
}

// `dialer run FILE` next to a serving engine: the run launches its campaign and dials it with its own engine, the
// serving engine hears of the launch and shares the work, the run ends when the campaign completes, and the
// serving engine goes on serving. The carrier's log shows both processes placing calls within every cap.
TEST_F(Serve, ARunNextToAServingEngineSharesItsCampaignWithIt) {
  auto a = start({"serve", "--listen", "127.0.0.1:0"}, "serve-a", feed_only);
  ASSERT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= 1; }, a.get())) << a->err();
  const auto run = dialer_json({"run", steady().string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["campaign"]["state"], "completed");
  EXPECT_FALSE(a->exited().has_value()) << "the serving engine stopped with the run: " << a->err();
  expect_settled(2);
  std::set<int> placers;
  for (const auto& call : carrier_calls()) placers.insert(call.pid);
  EXPECT_EQ(placers.size(), 2u) << "the run and the serving engine both placed calls";
  a->signal(SIGTERM);
  EXPECT_EQ(a->wait(), 0) << a->err();
}

// `dialer campaigns cancel` while two engines dial: once it has returned no engine records another attempt, so
// every call the carrier ever saw has an attempt recorded before the cancel; the engines drain, every contact
// ends terminal (no contact is left pending), and the cancel is not undone by a completion.
TEST_F(Serve, ACancelFromTheCommandLineIsFinalForEveryServingEngine) {
  auto a = start({"serve", "--listen", "127.0.0.1:0"}, "serve-a", feed_only);
  auto b = start({"serve", "--listen", "127.0.0.1:0"}, "serve-b", feed_only);
  ASSERT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= 2; }, a.get()))
      << a->err() << b->err();
  ASSERT_EQ(dialer({"campaigns", "launch", steady().string()}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return attempts() >= 100; }, a.get())) << a->err();
  const auto cancelled = dialer({"campaigns", "cancel", "e2e-steady"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  std::set<std::int64_t> recorded;
  for (const auto& r : query("SELECT id FROM call_attempts")) recorded.insert(r[0].as<std::int64_t>());
  ASSERT_TRUE(eventually([&] { return held_blocks() == 0 && open_attempts() == 0; }, a.get())) << a->err();
  EXPECT_EQ(campaign_state("e2e-steady"), "cancelled");
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'pending'"), 0)
      << table("SELECT state, pending_reason, count(*) FROM contacts GROUP BY 1, 2");
  EXPECT_GT(scalar("SELECT count(*) FROM contacts WHERE state = 'cancelled'"), 0);
  for (const auto& r : query("SELECT id FROM call_attempts"))
    EXPECT_TRUE(recorded.contains(r[0].as<std::int64_t>())) << "attempt " << r[0] << " recorded after the cancel";
  for (const auto& call : carrier_calls())
    EXPECT_TRUE(recorded.contains(call.attempt)) << "attempt " << call.attempt << " placed, recorded after the cancel";
  expect_carrier_kept_the_limits();
  a->signal(SIGTERM);
  b->signal(SIGTERM);
  EXPECT_EQ(a->wait(), 0) << a->err();
  EXPECT_EQ(b->wait(), 0) << b->err();
  EXPECT_EQ(campaign_state("e2e-steady"), "cancelled");
}

}  // namespace
}  // namespace dialer::testing::e2e
