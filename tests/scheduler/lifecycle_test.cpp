// Slots coming back (complete, give_back and its reasons, double release), the hopper's bound, campaign
// removal, rejected contacts, number rotation and reassignment, and the stats that show all of it.

#include "tests/scheduler/fixture.hpp"

namespace dialer::sched::testing {
namespace {

using lifecycle_test = scheduler_test;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

TEST_F(lifecycle_test, DecisionCarriesTheContactCampaignNumberAndPayload) {
  add_number(1, 1);
  add_campaign(9);
  enqueue_one(contact(42, 9));
  const auto d = dispatch();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].contact, contact_id{42});
  EXPECT_EQ(d[0].campaign, campaign_id{9});
  EXPECT_EQ(d[0].number, number_id{1});
  EXPECT_EQ(d[0].payload.value(), 420u);
  EXPECT_TRUE(d[0].slot.valid());
  EXPECT_FALSE(d[0].carrier_account.valid());
}

TEST_F(lifecycle_test, NotAttemptedFreesTheSlotAndDropsTheContact) {
  add_number(1, 1);
  add_campaign(1);
  enqueue_range(1, 1);
  const auto d = dispatch();
  ASSERT_EQ(d.size(), 1u);
  sched_.give_back(d[0].slot, release_reason::not_attempted);
  EXPECT_TRUE(dispatch().empty());
  const auto stats = sched_.stats();
  EXPECT_EQ(stats.not_attempted, 1u);
  EXPECT_EQ(stats.hopper_size, 0u);
  EXPECT_EQ(stats_of(1).in_flight, 0);
}

TEST_F(lifecycle_test, UnusableNumberLeavesRotationAndItsContactGoesBackToTheHopper) {
  add_number(1, 5);
  add_number(2, 5);
  add_campaign(1);
  enqueue_range(1, 1);
  const auto first = dispatch();
  ASSERT_THAT(numbers_of(first), ElementsAre(1));
  sched_.give_back(first[0].slot, release_reason::number_unusable);
  const auto again = dispatch();
  ASSERT_THAT(contacts_of(again), ElementsAre(1));
  EXPECT_EQ(again[0].number, number_id{2});
  EXPECT_FALSE(stats_of(1).in_rotation);
  EXPECT_EQ(stats_of(1).in_flight, 0);
  EXPECT_EQ(sched_.stats().number_unusable, 1u);
}

TEST_F(lifecycle_test, UnusableNumberComesBackWhenPutBackInRotation) {
  add_number(1, 5);
  add_campaign(1);
  enqueue_range(1, 1);
  sched_.give_back(dispatch()[0].slot, release_reason::number_unusable);
  EXPECT_TRUE(dispatch().empty());
  EXPECT_EQ(stats_of_campaign(1).numbers_in_rotation, 0u);
  ASSERT_TRUE(sched_.set_number_rotation(number_id{1}, true));
  EXPECT_THAT(contacts_of(dispatch()), ElementsAre(1));
}

TEST_F(lifecycle_test, ThrottledContactGoesBackToTheFrontOfTheQueue) {
  add_number(1, 1);
  add_campaign(1);
  enqueue_range(1, 3);
  const auto first = dispatch();
  ASSERT_THAT(contacts_of(first), ElementsAre(1));
  sched_.give_back(first[0].slot, release_reason::throttled);
  EXPECT_THAT(contacts_of(dispatch()), ElementsAre(1));
  EXPECT_EQ(sched_.stats().throttled, 1u);
}

TEST_F(lifecycle_test, SecondReleaseOfAHandleIsCountedAndIgnored) {
  add_number(1, 2);
  add_campaign(1);
  enqueue_range(1, 3);
  const auto first = dispatch();
  ASSERT_EQ(first.size(), 2u);
  sched_.complete(first[0].slot);
  sched_.complete(first[0].slot);
  const auto next = dispatch();  // the freed slot is reused by contact 3
  ASSERT_EQ(next.size(), 1u);
  sched_.complete(first[0].slot);  // stale: the slot now belongs to contact 3
  const auto stats = sched_.stats();
  EXPECT_EQ(stats.double_releases, 2u);
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(stats_of(1).in_flight, 2);
}

TEST_F(lifecycle_test, ForgedHandleIsCountedAsABadRelease) {
  add_number(1, 1);
  add_campaign(1);
  sched_.complete(slot_handle{});
  sched_.complete(slot_handle{0x7777'0000'0042ull});
  EXPECT_EQ(sched_.stats().double_releases, 2u);
}

TEST(lifecycle_abort, DoubleReleaseAbortsWhenAskedTo) {
  manual_clock clock;
  scheduler_options options;
  options.abort_on_double_release = true;
  scheduler sched(clock, options);
  EXPECT_DEATH(
      {
        sched.complete(slot_handle{});
        (void)sched.stats();
      },
      "released twice or never issued");
}

TEST_F(lifecycle_test, EnqueueNeverAcceptsMoreThanTheRoom) {
  scheduler_options options = test_options();
  options.hopper_capacity = 10;
  scheduler sched(clock_, options);
  std::vector<contact_item> items;
  for (int i = 1; i <= 15; ++i) items.push_back(contact(i));
  EXPECT_EQ(sched.room(), 10u);
  EXPECT_EQ(sched.enqueue(items), 10u);
  EXPECT_EQ(sched.room(), 0u);
  EXPECT_EQ(sched.enqueue(items), 0u);
  EXPECT_EQ(sched.hopper_size(), 10u);
}

TEST_F(lifecycle_test, HandOutsMakeRoom) {
  add_number(1, 3);
  add_campaign(1);
  enqueue_range(1, 10);
  EXPECT_EQ(sched_.room(), 1024u - 10u);
  ASSERT_EQ(dispatch().size(), 3u);
  EXPECT_EQ(sched_.hopper_size(), 7u);
  EXPECT_EQ(sched_.room(), 1024u - 7u);
}

TEST_F(lifecycle_test, RemovingACampaignReturnsEveryContactStillQueued) {
  add_number(1, 1);
  add_campaign(1);
  add_campaign(2);
  enqueue_range(1, 1, 1);
  enqueue_one(contact(4, 1, 0, "", /*sticky=*/1));  // parks on number 1, busy with contact 1
  enqueue_range(2, 3, 1);
  enqueue_range(10, 10, 2);
  ASSERT_THAT(contacts_of(dispatch()), ElementsAre(1));
  ASSERT_EQ(stats_of(1).parked, 1u);
  enqueue_range(5, 5, 1);  // not yet seen by a dispatcher
  const auto removed = sched_.remove_campaign(campaign_id{1});
  ASSERT_TRUE(removed);
  std::vector<std::int64_t> ids;
  for (const auto& item : *removed) ids.push_back(item.contact.value());
  EXPECT_THAT(ids, UnorderedElementsAre(2, 3, 4, 5));
  for (const auto& item : *removed) {
    if (item.contact == contact_id{4}) {
      EXPECT_EQ(item.sticky_number, number_id{1});
    }
  }
  EXPECT_EQ(sched_.hopper_size(), 1u);  // campaign 2's contact
}

TEST_F(lifecycle_test, CallsOfARemovedCampaignStillReleaseTheirSlots) {
  add_number(1, 1);
  add_campaign(1);
  add_campaign(2);
  enqueue_range(1, 1, 1);
  const auto d = dispatch();
  ASSERT_EQ(d.size(), 1u);
  ASSERT_TRUE(sched_.remove_campaign(campaign_id{1}));
  enqueue_range(2, 2, 2);
  EXPECT_TRUE(dispatch().empty());
  sched_.complete(d[0].slot);
  EXPECT_THAT(contacts_of(dispatch()), ElementsAre(2));
}

TEST_F(lifecycle_test, ContactsForAnUnknownCampaignAreRejectedNotLost) {
  add_number(1, 1);
  add_campaign(1);
  enqueue_one(contact(1, 99));
  EXPECT_TRUE(dispatch().empty());
  std::vector<contact_item> rejected;
  EXPECT_EQ(sched_.take_rejected(rejected), 1u);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].contact, contact_id{1});
  EXPECT_EQ(sched_.stats().rejected, 1u);
  EXPECT_EQ(sched_.hopper_size(), 0u);
}

TEST_F(lifecycle_test, ThrottledContactOfARemovedCampaignIsRejectedNotLost) {
  add_number(1, 1);
  add_campaign(1);
  enqueue_range(1, 1);
  const auto d = dispatch();
  ASSERT_TRUE(sched_.remove_campaign(campaign_id{1}));
  sched_.give_back(d[0].slot, release_reason::throttled);
  std::vector<contact_item> rejected;
  EXPECT_EQ(sched_.take_rejected(rejected), 1u);
}

TEST_F(lifecycle_test, ReassignedNumberStopsServingTheOldAgentsCampaigns) {
  add_number(1, 5);
  add_number(2, 5);
  add_campaign(1);
  ASSERT_TRUE(sched_.assign_number(number_id{1}, other_bot, "other-bot"));
  enqueue_range(1, 3);
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(2, 2, 2));
  EXPECT_EQ(stats_of_campaign(1).numbers, 1u);
}

TEST_F(lifecycle_test, NumberAddedLaterJoinsCampaignsThatUseAllOfTheAgentsNumbers) {
  add_number(1, 1);
  add_campaign(1);
  enqueue_range(1, 2);
  ASSERT_EQ(dispatch().size(), 1u);
  add_number(2, 1);
  EXPECT_THAT(numbers_of(dispatch()), ElementsAre(2));
}

TEST_F(lifecycle_test, StatsShowHopperNumbersAndCampaigns) {
  add_number(1, 2);
  add_campaign(1, caller_id_strategy::round_robin, 5);
  enqueue_range(1, 4);
  const auto d = dispatch();
  ASSERT_EQ(d.size(), 2u);
  const auto stats = sched_.stats();
  EXPECT_EQ(stats.hopper_size, 2u);
  EXPECT_EQ(stats.hopper_capacity, 1024u);
  EXPECT_EQ(stats.hopper_room, 1022u);
  EXPECT_EQ(stats.handouts, 2u);
  EXPECT_EQ(stats.slots_in_use, 2u);
  ASSERT_EQ(stats.numbers.size(), 1u);
  EXPECT_EQ(stats.numbers[0].in_flight, 2);
  EXPECT_EQ(stats.numbers[0].max_concurrent_calls, 2);
  ASSERT_EQ(stats.campaigns.size(), 1u);
  EXPECT_EQ(stats.campaigns[0].queued, 2u);
  EXPECT_EQ(stats.campaigns[0].in_flight, 2);
  EXPECT_EQ(stats.campaigns[0].max_in_flight, 5);
}

}  // namespace
}  // namespace dialer::sched::testing
