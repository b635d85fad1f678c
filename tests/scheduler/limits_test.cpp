// Per-number concurrency slots, per-number and per-account CPS (on a manual clock), campaign caps,
// throttling.

#include <chrono>

#include "tests/scheduler/fixture.hpp"

namespace dialer::sched::testing {
namespace {

using limits_test = scheduler_test;
using ::testing::ElementsAre;

TEST_F(limits_test, NumberNeverHasMoreCallsInFlightThanItsLimit) {
  add_number(1, 2);
  add_campaign(1);
  enqueue_range(1, 5);
  const auto first = dispatch();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(dispatch().empty());
  EXPECT_EQ(stats_of(1).in_flight, 2);
  sched_.complete(first[0].slot);
  EXPECT_EQ(dispatch().size(), 1u);
  EXPECT_EQ(stats_of(1).peak_in_flight, 2);
}

TEST_F(limits_test, NumberCpsSpacesHandOutsOnTheClock) {
  add_number(1, 100, /*cps=*/2.0);
  add_campaign(1);
  enqueue_range(1, 3);
  ASSERT_EQ(dispatch().size(), 1u);
  EXPECT_TRUE(dispatch().empty());
  ASSERT_TRUE(sched_.next_refill().has_value());
  EXPECT_EQ(*sched_.next_refill(), clock_.monotonic() + 500ms);
  clock_.advance(499ms);
  EXPECT_TRUE(dispatch().empty());
  clock_.advance(1ms);
  EXPECT_EQ(dispatch().size(), 1u);
}

TEST_F(limits_test, FractionalCpsAllowsOneCallEveryTwoSeconds) {
  add_number(1, 100, /*cps=*/0.5);
  add_campaign(1);
  enqueue_range(1, 3);
  ASSERT_EQ(dispatch().size(), 1u);
  clock_.advance(1999ms);
  EXPECT_TRUE(dispatch().empty());
  clock_.advance(1ms);
  EXPECT_EQ(dispatch().size(), 1u);
}

TEST_F(limits_test, OtherNumbersServeWhileOneWaitsForItsToken) {
  add_number(1, 100, /*cps=*/1.0);
  add_number(2, 100, /*cps=*/1.0);
  add_campaign(1);
  enqueue_range(1, 3);
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(1, 2));
}

TEST_F(limits_test, CarrierAccountCpsCapsAllItsNumbersTogether) {
  ASSERT_TRUE(sched_.add_carrier_account({carrier_account_id{7}, "twilio-main", /*max_cps=*/1.0, 1}));
  add_number(1, 100, unlimited_cps, 0, "", sales_bot, carrier_account_id{7});
  add_number(2, 100, unlimited_cps, 0, "", sales_bot, carrier_account_id{7});
  add_campaign(1);
  enqueue_range(1, 4);
  const auto first = dispatch();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].carrier_account, carrier_account_id{7});
  clock_.advance(999ms);
  EXPECT_TRUE(dispatch().empty());
  clock_.advance(1ms);
  EXPECT_EQ(dispatch().size(), 1u);
}

TEST_F(limits_test, ThrottledCarrierAccountHandsOutNothingUntilItsTime) {
  ASSERT_TRUE(sched_.add_carrier_account({carrier_account_id{7}, "telnyx", unlimited_cps, 1}));
  add_number(1, 100, unlimited_cps, 0, "", sales_bot, carrier_account_id{7});
  add_campaign(1);
  enqueue_range(1, 2);
  const auto until = clock_.monotonic() + 3s;
  ASSERT_TRUE(sched_.throttle_carrier_account(carrier_account_id{7}, until));
  EXPECT_TRUE(dispatch().empty());
  EXPECT_EQ(sched_.next_refill(), until);
  clock_.advance(3s);
  EXPECT_EQ(dispatch().size(), 2u);
}

TEST_F(limits_test, CampaignNeverHasMoreCallsInFlightThanItsCap) {
  add_number(1, 100);
  add_campaign(1, caller_id_strategy::round_robin, /*max_in_flight=*/3);
  enqueue_range(1, 10);
  const auto first = dispatch();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_TRUE(dispatch().empty());
  sched_.complete(first[2].slot);
  EXPECT_EQ(dispatch().size(), 1u);
  EXPECT_EQ(stats_of_campaign(1).in_flight, 3);
}

// An engine holding no share of a campaign cap shared with other engines: nothing until the share comes back.
TEST_F(limits_test, ACampaignCapOfZeroHandsOutNothingUntilRaised) {
  add_number(1, 10);
  add_campaign(1, caller_id_strategy::round_robin, /*max_in_flight=*/3);
  enqueue_range(1, 5);
  ASSERT_TRUE(sched_.set_campaign_max_in_flight(campaign_id{1}, 0));
  EXPECT_TRUE(dispatch().empty());
  EXPECT_FALSE(sched_.set_campaign_max_in_flight(campaign_id{1}, -1));
  ASSERT_TRUE(sched_.set_campaign_max_in_flight(campaign_id{1}, 2));
  EXPECT_EQ(dispatch().size(), 2u);
  EXPECT_TRUE(dispatch().empty());
}

TEST_F(limits_test, CampaignCapDoesNotHoldBackAnotherCampaign) {
  add_number(1, 100);
  add_campaign(1, caller_id_strategy::round_robin, 1);
  add_campaign(2, caller_id_strategy::round_robin, 100);
  enqueue_range(1, 5, 1);
  enqueue_range(6, 10, 2);
  EXPECT_EQ(dispatch().size(), 6u);
}

TEST_F(limits_test, LoweringTheLimitKeepsCallsInFlightAndWaitsUntilUnderIt) {
  add_number(1, 3);
  add_campaign(1);
  enqueue_range(1, 5);
  const auto first = dispatch();
  ASSERT_EQ(first.size(), 3u);
  ASSERT_TRUE(sched_.set_number_limits(number_id{1}, 1, unlimited_cps));
  EXPECT_EQ(stats_of(1).in_flight, 3);
  sched_.complete(first[0].slot);
  EXPECT_TRUE(dispatch().empty());  // 2 in flight, limit 1
  sched_.complete(first[1].slot);
  EXPECT_TRUE(dispatch().empty());  // 1 in flight, limit 1
  sched_.complete(first[2].slot);
  EXPECT_EQ(dispatch().size(), 1u);
}

TEST_F(limits_test, RaisingTheLimitReleasesWaitingContacts) {
  add_number(1, 1);
  add_campaign(1);
  enqueue_range(1, 3);
  ASSERT_EQ(dispatch().size(), 1u);
  ASSERT_TRUE(sched_.set_number_limits(number_id{1}, 3, unlimited_cps));
  EXPECT_EQ(dispatch().size(), 2u);
}

TEST_F(limits_test, ZeroShareParksTheNumber) {
  add_number(1, 0);
  add_campaign(1);
  enqueue_range(1, 1);
  EXPECT_TRUE(dispatch().empty());
  ASSERT_TRUE(sched_.set_number_limits(number_id{1}, 1, unlimited_cps));
  EXPECT_EQ(dispatch().size(), 1u);
}

}  // namespace
}  // namespace dialer::sched::testing
