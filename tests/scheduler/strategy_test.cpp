// Caller-ID strategies: round robin, least loaded, local presence, and sticky retries.

#include <chrono>

#include "tests/scheduler/fixture.hpp"

namespace dialer::sched::testing {
namespace {

using strategy_test = scheduler_test;
using ::testing::ElementsAre;

TEST_F(strategy_test, RoundRobinCyclesThroughTheNumbersInListOrder) {
  for (int id = 1; id <= 3; ++id) add_number(id, 10);
  add_campaign(1, caller_id_strategy::round_robin);
  enqueue_range(1, 7);
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1, 2, 3, 1, 2, 3, 1));
}

TEST_F(strategy_test, RoundRobinFollowsAnExplicitList) {
  for (int id = 1; id <= 3; ++id) add_number(id, 10);
  add_campaign(1, caller_id_strategy::round_robin, 1000, {number_id{3}, number_id{1}});
  enqueue_range(1, 4);
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(3, 1, 3, 1));
}

TEST_F(strategy_test, RoundRobinSkipsSaturatedNumbers) {
  add_number(1, 1);
  add_number(2, 3);
  add_campaign(1, caller_id_strategy::round_robin);
  enqueue_range(1, 4);
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1, 2, 2, 2));
}

TEST_F(strategy_test, LeastLoadedPicksTheNumberWithMostFreeSlots) {
  add_number(1, 1);
  add_number(2, 3);
  add_number(3, 2);
  add_campaign(1, caller_id_strategy::least_loaded);
  enqueue_range(1, 3);
  // Free slots 1/3/2: number 2 first (3 free); then 2 and 3 tie at 2 free and take turns: 3, then 2.
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(2, 3, 2));
}

TEST_F(strategy_test, LeastLoadedPrefersTheNumberWhoseCallsEnded) {
  add_number(1, 2);
  add_number(2, 2);
  add_campaign(1, caller_id_strategy::least_loaded);
  enqueue_range(1, 3);
  const auto first = dispatch(3);
  ASSERT_THAT(numbers_of(first), ElementsAre(1, 2, 1));
  sched_.complete(first[1].slot);  // number 2 now has 2 free, number 1 has 0
  enqueue_range(4, 4);
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(2));
}

TEST_F(strategy_test, LocalPresencePrefersTheCalleesAreaCode) {
  add_number(1, 5, unlimited_cps, 212, "NY");
  add_number(2, 5, unlimited_cps, 415, "CA");
  add_campaign(1, caller_id_strategy::local_presence);
  enqueue_one(contact(1, 1, 415, "CA"));
  enqueue_one(contact(2, 1, 212, "NY"));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(2, 1));
}

TEST_F(strategy_test, LocalPresenceFallsBackToTheSameRegion) {
  add_number(1, 5, unlimited_cps, 212, "NY");
  add_number(2, 5, unlimited_cps, 415, "CA");
  add_campaign(1, caller_id_strategy::local_presence);
  enqueue_one(contact(1, 1, 650, "ca"));  // no 650 number; same state as 415
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(2));
}

TEST_F(strategy_test, LocalPresenceFallsBackToTheRegionWhenTheAreaCodeIsSaturated) {
  add_number(1, 1, unlimited_cps, 415, "CA");
  add_number(2, 1, unlimited_cps, 650, "CA");
  add_number(3, 1, unlimited_cps, 212, "NY");
  add_campaign(1, caller_id_strategy::local_presence);
  enqueue_one(contact(1, 1, 415, "CA"));
  enqueue_one(contact(2, 1, 415, "CA"));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1, 2));
}

TEST_F(strategy_test, LocalPresenceFallsBackToAnyNumber) {
  add_number(1, 5, unlimited_cps, 212, "NY");
  add_campaign(1, caller_id_strategy::local_presence);
  enqueue_one(contact(1, 1, 0, "GB"));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1));
}

TEST_F(strategy_test, LocalPresenceBreaksTiesByFewestHandoutsToday) {
  add_number(1, 10, unlimited_cps, 415, "CA");
  add_number(2, 10, unlimited_cps, 415, "CA");
  add_campaign(1, caller_id_strategy::local_presence);
  for (int id = 1; id <= 4; ++id) enqueue_one(contact(id, 1, 415, "CA"));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1, 2, 1, 2));
  EXPECT_EQ(stats_of(1).handouts_today, 2u);
}

TEST_F(strategy_test, HandoutsTodayStartAgainAtMidnight) {
  add_number(1, 10, unlimited_cps, 415, "CA");
  add_campaign(1, caller_id_strategy::local_presence);
  enqueue_one(contact(1, 1, 415, "CA"));
  ASSERT_EQ(dispatch().size(), 1u);
  EXPECT_EQ(stats_of(1).handouts_today, 1u);
  clock_.advance(std::chrono::hours(24));
  EXPECT_EQ(stats_of(1).handouts_today, 0u);
  EXPECT_EQ(stats_of(1).handouts, 1u);
}

TEST_F(strategy_test, StickyRetryKeepsTheCallerIdOfItsFirstAttempt) {
  for (int id = 1; id <= 3; ++id) add_number(id, 10);
  add_campaign(1, caller_id_strategy::round_robin);
  enqueue_one(contact(1, 1, 0, "", /*sticky=*/3));
  enqueue_one(contact(2, 1, 0, "", /*sticky=*/3));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(3, 3));
}

TEST_F(strategy_test, StickyRetryWaitsForItsBusyNumberWithoutBlockingOthers) {
  add_number(1, 1);
  add_number(2, 5);
  add_campaign(1, caller_id_strategy::round_robin, 1000, {number_id{1}, number_id{2}});
  enqueue_one(contact(1, 1));  // takes number 1 (round robin starts there)
  enqueue_one(contact(2, 1, 0, "", /*sticky=*/1));
  enqueue_one(contact(3, 1));
  const auto first = dispatch();
  ASSERT_THAT(contacts_of(first), ElementsAre(1, 3));
  EXPECT_EQ(stats_of(1).parked, 1u);
  sched_.complete(first[0].slot);
  const auto second = dispatch();
  ASSERT_THAT(contacts_of(second), ElementsAre(2));
  EXPECT_EQ(second[0].number, number_id{1});
}

TEST_F(strategy_test, StickyRetryMovesOnWhenItsNumberLeavesRotation) {
  add_number(1, 5);
  add_number(2, 5);
  add_campaign(1);
  ASSERT_TRUE(sched_.set_number_rotation(number_id{1}, false));
  enqueue_one(contact(1, 1, 0, "", /*sticky=*/1));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(2));
}

TEST_F(strategy_test, ParkedStickyRetryReturnsToTheQueueWhenItsNumberLeavesRotation) {
  add_number(1, 1);
  add_number(2, 5);
  add_campaign(1);
  enqueue_one(contact(1, 1, 0, "", /*sticky=*/1));
  enqueue_one(contact(2, 1, 0, "", /*sticky=*/1));
  ASSERT_EQ(dispatch().size(), 1u);  // contact 2 parks on number 1
  ASSERT_EQ(stats_of(1).parked, 1u);
  ASSERT_TRUE(sched_.set_number_rotation(number_id{1}, false));
  const auto next = dispatch();
  ASSERT_THAT(contacts_of(next), ElementsAre(2));
  EXPECT_EQ(next[0].number, number_id{2});
}

TEST_F(strategy_test, StickyIsIgnoredWhenTheCampaignTurnsItOff) {
  add_number(1, 5);
  add_number(2, 5);
  campaign_config c;
  c.id = campaign_id{1};
  c.agent = sales_bot;
  c.agent_name = "sales-bot";
  c.max_in_flight = 10;
  c.sticky_retries = false;
  ASSERT_TRUE(sched_.add_campaign(c));
  enqueue_one(contact(1, 1, 0, "", /*sticky=*/2));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1));
}

TEST_F(strategy_test, StickyIsIgnoredForANumberNoLongerInTheCampaign) {
  add_number(1, 5);
  add_number(2, 5, unlimited_cps, 0, "", other_bot);
  add_campaign(1);
  enqueue_one(contact(1, 1, 0, "", /*sticky=*/2));
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1));
}

}  // namespace
}  // namespace dialer::sched::testing
