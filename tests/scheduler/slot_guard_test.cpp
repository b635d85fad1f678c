// The slot guard: a handed-out slot goes back exactly once, whichever way its decision ends.

#include <utility>
#include <vector>

#include "scheduler/slot_guard.hpp"
#include "tests/scheduler/fixture.hpp"

namespace dialer::sched::testing {
namespace {

class slot_guard_test : public scheduler_test {
 protected:
  // One number with `slots` slots, one campaign, `contacts` contacts queued; returns the guarded decisions.
  std::vector<slot_guard> handed_out(int slots, int contacts) {
    add_number(1, slots);
    add_campaign(1);
    enqueue_range(1, contacts);
    std::vector<slot_guard> out;
    for (const auto& d : dispatch()) out.emplace_back(sched_, d.slot);
    return out;
  }
};

TEST_F(slot_guard_test, ADroppedGuardGivesItsSlotBackAsNotAttempted) {
  auto guards = handed_out(1, 2);
  ASSERT_EQ(guards.size(), 1u);
  EXPECT_TRUE(dispatch().empty()) << "the only slot is held";
  guards.clear();
  const auto stats = sched_.stats();
  EXPECT_EQ(stats.not_attempted, 1u);
  EXPECT_EQ(stats.slots_in_use, 0u);
  EXPECT_EQ(dispatch().size(), 1u) << "the slot is free again for the next contact";
}

TEST_F(slot_guard_test, CompleteFreesTheSlotOnceAndTheDestructorThenDoesNothing) {
  auto guards = handed_out(1, 1);
  ASSERT_EQ(guards.size(), 1u);
  guards[0].complete();
  EXPECT_FALSE(guards[0].held());
  guards[0].complete();
  guards[0].give_back(release_reason::not_attempted);
  guards.clear();
  const auto stats = sched_.stats();
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(stats.not_attempted, 0u);
  EXPECT_EQ(stats.double_releases, 0u);
}

TEST_F(slot_guard_test, AMovedGuardReleasesOnlyFromItsNewOwner) {
  auto guards = handed_out(2, 2);
  ASSERT_EQ(guards.size(), 2u);
  slot_guard moved = std::move(guards[0]);
  EXPECT_FALSE(guards[0].held());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_TRUE(moved.held());
  guards.clear();  // one guard empty, one still holding: one give-back
  EXPECT_EQ(sched_.stats().not_attempted, 1u);
  moved.give_back(release_reason::throttled);
  const auto stats = sched_.stats();
  EXPECT_EQ(stats.throttled, 1u);
  EXPECT_EQ(stats.double_releases, 0u);
  EXPECT_EQ(stats.slots_in_use, 0u);
}

TEST_F(slot_guard_test, MoveAssignmentGivesBackWhatTheTargetHeldFirst) {
  auto guards = handed_out(2, 2);
  ASSERT_EQ(guards.size(), 2u);
  guards[0] = std::move(guards[1]);
  EXPECT_EQ(sched_.stats().not_attempted, 1u) << "the overwritten slot went back";
  guards[0].complete();
  const auto stats = sched_.stats();
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(stats.slots_in_use, 0u);
  EXPECT_EQ(stats.double_releases, 0u);
}

}  // namespace
}  // namespace dialer::sched::testing
