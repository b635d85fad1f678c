// The scheduler's internal building blocks on their own: the CPS bucket and the selector tree.

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <limits>
#include <vector>

#include "scheduler/detail/bitset_index.hpp"
#include "scheduler/detail/bucket_queue.hpp"
#include "scheduler/detail/gcra.hpp"
#include "scheduler/detail/ring.hpp"
#include "scheduler/detail/selector_tree.hpp"

namespace dialer::sched::detail {
namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t second = 1'000'000'000;

TEST(CpsBucket, StrictBucketSpacesTakesByTheInterval) {
  gcra bucket;
  bucket.configure(2.0, 1);
  ASSERT_TRUE(bucket.ready(5 * second));
  bucket.take(5 * second);
  EXPECT_FALSE(bucket.ready(5 * second + 499 * ms));
  EXPECT_EQ(bucket.ready_at(), 5 * second + 500 * ms);
  EXPECT_TRUE(bucket.ready(5 * second + 500 * ms));
}

TEST(CpsBucket, RateBelowOneSpacesTakesByMoreThanASecond) {
  gcra bucket;
  bucket.configure(0.5, 1);
  bucket.take(second);
  EXPECT_FALSE(bucket.ready(2 * second));
  EXPECT_TRUE(bucket.ready(3 * second));
}

TEST(CpsBucket, BurstAllowsBackToBackTakesThenSpacing) {
  gcra bucket;
  bucket.configure(10.0, 3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(bucket.ready(second)) << i;
    bucket.take(second);
  }
  EXPECT_FALSE(bucket.ready(second));
  EXPECT_TRUE(bucket.ready(second + 100 * ms));
}

TEST(CpsBucket, GreedyTakerNeverExceedsTheCapInAnyOneSecondWindow) {
  gcra bucket;
  bucket.configure(30.0, 1);
  std::deque<std::int64_t> window;
  for (std::int64_t now = second; now < 6 * second; now += 100'000) {  // every 0.1 ms, take if allowed
    if (!bucket.ready(now)) continue;
    bucket.take(now);
    window.push_back(now);
    while (window.front() <= now - second) window.pop_front();
    ASSERT_LE(window.size(), 30u) << "at " << now;
  }
}

TEST(CpsBucket, InfiniteRateNeverBlocks) {
  gcra bucket;
  bucket.configure(std::numeric_limits<double>::infinity(), 1);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(bucket.ready(second));
    bucket.take(second);
  }
}

TEST(CpsBucket, LoweringTheRateLengthensTheCurrentSpacing) {
  gcra bucket;
  bucket.configure(10.0, 1);
  bucket.take(second);
  bucket.configure(1.0, 1);
  EXPECT_FALSE(bucket.ready(second + 500 * ms));
  EXPECT_TRUE(bucket.ready(2 * second));
}

TEST(SelectorTree, BestIsTheLeftmostHighestScore) {
  selector_tree tree;
  tree.reset(5);
  EXPECT_EQ(tree.best(), -1);
  tree.set(1, 3);
  tree.set(3, 7);
  tree.set(4, 7);
  EXPECT_EQ(tree.best(), 3);
  tree.set(3, selector_tree::unavailable);
  EXPECT_EQ(tree.best(), 4);
}

TEST(SelectorTree, NextAvailableWrapsAroundFromTheCursor) {
  selector_tree tree;
  tree.reset(6);
  tree.set(1, 0);
  tree.set(4, 0);
  EXPECT_EQ(tree.next_available(0), 1);
  EXPECT_EQ(tree.next_available(2), 4);
  EXPECT_EQ(tree.next_available(5), 1);
  EXPECT_EQ(tree.next_available(6), 1);
  tree.set(1, selector_tree::unavailable);
  tree.set(4, selector_tree::unavailable);
  EXPECT_EQ(tree.next_available(0), -1);
}

TEST(BitsetIndex, NextWrapsAcrossWordsAndLevels) {
  bitset_index bits;
  bits.reset(100'000);
  EXPECT_EQ(bits.next(0), -1);
  bits.set(5);
  bits.set(70'000);
  EXPECT_EQ(bits.next(0), 5);
  EXPECT_EQ(bits.next(6), 70'000);
  EXPECT_EQ(bits.next(70'001), 5);
  EXPECT_EQ(bits.last(), 70'000);
  bits.clear(70'000);
  EXPECT_EQ(bits.next(6), 5);
  EXPECT_EQ(bits.last(), 5);
  bits.clear(5);
  EXPECT_FALSE(bits.any());
}

TEST(BitsetIndex, AgreesWithAPlainScan) {
  bitset_index bits;
  std::vector<bool> plain(5000, false);
  bits.reset(5000);
  std::uint64_t x = 12345;
  for (int round = 0; round < 20000; ++round) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const auto i = static_cast<std::uint32_t>((x >> 33) % 5000);
    if ((x >> 20) & 1) {
      bits.set(i);
      plain[i] = true;
    } else {
      bits.clear(i);
      plain[i] = false;
    }
    const auto from = static_cast<std::uint32_t>((x >> 40) % 5000);
    std::int32_t expected = -1;
    for (std::uint32_t k = 0; k < 5000 && expected < 0; ++k) {
      if (plain[(from + k) % 5000]) expected = static_cast<std::int32_t>((from + k) % 5000);
    }
    ASSERT_EQ(bits.next(from), expected) << "round " << round;
  }
}

TEST(BucketQueue, BestIsTheFullestBucketAndEqualsTakeTurns) {
  bucket_queue q;
  q.reset(3, 4);
  EXPECT_EQ(q.best(), -1);
  q.set(0, 2);
  q.set(1, 3);
  q.set(2, 3);
  EXPECT_EQ(q.best(), 1);
  q.set(1, 2);  // joins the tail of bucket 2, behind leaf 0
  EXPECT_EQ(q.best(), 2);
  q.set(2, 0);
  EXPECT_EQ(q.best(), 0);
  q.set(0, 0);
  q.set(1, 0);
  EXPECT_EQ(q.best(), -1);
}

TEST(Ring, KeepsFifoOrderAcrossGrowthAndPushFront) {
  ring<int> r;
  for (int i = 0; i < 40; ++i) r.push_back(i);
  r.pop_front();
  r.push_front(-1);
  ASSERT_EQ(r.size(), 40u);
  EXPECT_EQ(r[0], -1);
  for (int i = 1; i < 40; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i);
}

}  // namespace
}  // namespace dialer::sched::detail
