// The hopper's water marks and claim sizes (engine/dialing/engine_options.hpp) and the contact block layout
// (engine/campaign_record.hpp): pure functions of the slots, the options and the campaign's size.
#include <gtest/gtest.h>

#include "engine/campaign_record.hpp"
#include "engine/dialing/block_tracker.hpp"
#include "engine/dialing/engine_options.hpp"

namespace dialer {
namespace {

TEST(HopperMarks, HighWaterIsFourContactsPerUsableSlotWithinTheHopper) {
  const engine_options o;  // 20 000 contacts at most, 4 per slot
  EXPECT_EQ(high_water_mark(100, o, 256), 400u);
  EXPECT_EQ(high_water_mark(5000, o, 1024), 20000u);
  EXPECT_EQ(high_water_mark(50000, o, 1024), 20000u);  // never above the hopper's bound
}

TEST(HopperMarks, AtLeastOneBlockEvenWithoutSlots) {
  const engine_options o;
  EXPECT_EQ(high_water_mark(0, o, 1024), 1024u);  // slots lost (database away): a block still fits
  EXPECT_EQ(high_water_mark(10, o, 256), 256u);
}

TEST(HopperMarks, NoClaimWhileAboveTheLowWaterMark) {
  const engine_options o;
  EXPECT_EQ(claim_size(201, 400, o, 64), 0);
  EXPECT_EQ(claim_size(400, 400, o, 64), 0);
  EXPECT_EQ(claim_size(500, 400, o, 64), 0);  // above the mark after a drop in capacity
}

TEST(HopperMarks, ClaimFillsUpToTheHighWaterMarkInBatches) {
  engine_options o;
  o.claim_batch = 4096;
  EXPECT_EQ(claim_size(200, 400, o, 64), 200);
  EXPECT_EQ(claim_size(0, 400, o, 64), 400);
  EXPECT_EQ(claim_size(0, 20000, o, 1024), 4096);
  o.claim_batch = 100;
  EXPECT_EQ(claim_size(0, 20000, o, 1024), 1024);  // a whole block when the batch is smaller
}

// Blocks are the unit of claiming, and every block costs a few row writes and locks per claim, record and
// release: small campaigns get blocks of 256 (a thousand campaigns of a thousand contacts with blocks of 16
// ran at half the rate of one campaign, with blocks of 64 at 0.6 of it), large ones up to 1024; a large
// campaign still spreads over about sixteen engines.
TEST(ContactBlocks, SizeIsAboutASixteenthOfTheCampaignBetweenTwoHundredFiftySixAndOneThousandTwentyFour) {
  EXPECT_EQ(block_size_for(1), 256);
  EXPECT_EQ(block_size_for(1000), 256);
  EXPECT_EQ(block_size_for(4096), 256);
  EXPECT_EQ(block_size_for(4097), 512);
  EXPECT_EQ(block_size_for(10000), 1024);
  EXPECT_EQ(block_size_for(65536), 1024);
  EXPECT_EQ(block_size_for(10'000'000), 1024);
}

TEST(ContactBlocks, AContactBelongsToTheBlockThatStartsAtOrBeforeIt) {
  const contact_blocks b{1001, 1100, 16};
  EXPECT_EQ(b.block_of(contact_id{1001}), 1001);
  EXPECT_EQ(b.block_of(contact_id{1016}), 1001);
  EXPECT_EQ(b.block_of(contact_id{1017}), 1017);
  EXPECT_EQ(b.block_of(contact_id{1100}), 1097);
}

TEST(AttemptIds, AnAttemptsIdIsItsContactAndNumber) {
  EXPECT_EQ(attempt_of(contact_id{10}, 1), attempt_id{1281});
  EXPECT_NE(attempt_of(contact_id{10}, 2), attempt_of(contact_id{11}, 1));
  EXPECT_LT(attempt_of(contact_id{10}, kMaxAttemptNo), attempt_of(contact_id{11}, 1));
}

TEST(BlockTracker, ABlockIsReleasedWithItsLastUnit) {
  block_tracker t;
  ASSERT_TRUE(t.add(100, 2));
  std::vector<std::int64_t> releasing;
  const std::int64_t first[] = {100};
  t.settle(first, releasing);
  EXPECT_TRUE(releasing.empty());
  t.settle(first, releasing);
  EXPECT_EQ(releasing, std::vector<std::int64_t>{100});
}

// The database let this engine claim a block again the moment its release committed, before the writer marked
// it released here: the new claim's units are kept (not dropped, which left the block claimed, untracked and
// stalled for a lease), and the block opens again with them when the release is marked.
TEST(BlockTracker, ABlockClaimedAgainAsItsReleaseIsMarkedOpensAgainWithTheNewUnits) {
  block_tracker t;
  ASSERT_TRUE(t.add(100, 1, 10));
  std::vector<std::int64_t> releasing;
  const std::int64_t unit[] = {100};
  t.settle(unit, releasing);
  ASSERT_EQ(releasing.size(), 1u);
  EXPECT_TRUE(t.add(100, 2, 20)) << "claimed again after the release committed";
  EXPECT_EQ(t.units(), 2);
  EXPECT_EQ(t.held(), std::vector<std::int64_t>{100}) << "its lease is renewed meanwhile";
  t.released(releasing);
  EXPECT_EQ(t.held(), std::vector<std::int64_t>{100}) << "open again, with the new claim's units";
  EXPECT_EQ(t.bytes(), 20u);
  EXPECT_FALSE(t.empty());
  std::vector<std::int64_t> again;
  const std::int64_t units[] = {100, 100};
  t.settle(units, again);
  EXPECT_EQ(again, std::vector<std::int64_t>{100}) << "released with the last unit of the new claim";
  t.released(again);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.units(), 0);
}

TEST(BlockTracker, ABlocksBytesCountUntilItsReleaseIsCommitted) {
  block_tracker t;
  ASSERT_TRUE(t.add(100, 1, 4000));
  ASSERT_TRUE(t.add(200, 1, 1000));
  EXPECT_FALSE(t.add(200, 1, 7000)) << "tracked already";
  EXPECT_EQ(t.bytes(), 5000u);
  std::vector<std::int64_t> releasing;
  const std::int64_t unit[] = {100};
  t.settle(unit, releasing);
  EXPECT_EQ(t.bytes(), 5000u) << "settled, but the release is not written yet";
  t.released(releasing);
  EXPECT_EQ(t.bytes(), 1000u);
  const std::int64_t lost[] = {200};
  t.released(lost);  // released at once (it brought nothing, or it was lost)
  EXPECT_EQ(t.bytes(), 0u);
}

TEST(BlockTracker, UnitsOfABlockNotTrackedAreIgnored) {
  block_tracker t;
  ASSERT_TRUE(t.add(100, 1));
  EXPECT_FALSE(t.add(100, 1)) << "a block is tracked once";
  std::vector<std::int64_t> releasing;
  const std::int64_t units[] = {200, 200};
  t.settle(units, releasing);
  EXPECT_TRUE(releasing.empty());
  EXPECT_EQ(t.held(), std::vector<std::int64_t>{100});
}

}  // namespace
}  // namespace dialer
