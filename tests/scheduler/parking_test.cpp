// Parking and wake-up: contacts wait when every number is saturated and go as soon as a slot frees; a blocked
// dispatcher wakes on every event that can make work ready; campaigns share fairly.

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "tests/scheduler/fixture.hpp"

namespace dialer::sched::testing {
namespace {

using parking_test = scheduler_test;
using ::testing::ElementsAre;

// Generous real-time bound for tests that block: a lost wake-up fails the test instead of hanging it.
constexpr auto real_time_bound = std::chrono::seconds(30);

TEST_F(parking_test, ContactsWaitWhenEveryNumberIsSaturatedAndGoWhenASlotFrees) {
  add_number(1, 1);
  add_number(2, 1);
  add_campaign(1);
  enqueue_range(1, 4);
  const auto first = dispatch();
  ASSERT_THAT(contacts_of(first), ElementsAre(1, 2));
  EXPECT_TRUE(dispatch().empty());
  EXPECT_EQ(stats_of_campaign(1).queued, 2u);
  sched_.complete(first[1].slot);
  const auto next = dispatch();
  ASSERT_THAT(contacts_of(next), ElementsAre(3));
  EXPECT_EQ(next[0].number, number_id{2});
}

TEST_F(parking_test, BlockedDispatcherWakesWhenASlotFrees) {
  add_number(1, 1);
  add_campaign(1);
  enqueue_range(1, 2);
  const auto first = dispatch();
  ASSERT_EQ(first.size(), 1u);
  auto waiter = std::async(std::launch::async, [&] {
    std::vector<decision> out(4);
    out.resize(sched_.dispatch_wait(out));
    return out;
  });
  sched_.complete(first[0].slot);
  ASSERT_EQ(waiter.wait_for(real_time_bound), std::future_status::ready);
  EXPECT_THAT(contacts_of(waiter.get()), ElementsAre(2));
}

TEST_F(parking_test, BlockedDispatcherWakesWhenContactsArrive) {
  add_number(1, 1);
  add_campaign(1);
  auto waiter = std::async(std::launch::async, [&] {
    std::vector<decision> out(4);
    out.resize(sched_.dispatch_wait(out));
    return out;
  });
  enqueue_range(1, 1);
  ASSERT_EQ(waiter.wait_for(real_time_bound), std::future_status::ready);
  EXPECT_THAT(contacts_of(waiter.get()), ElementsAre(1));
}

TEST_F(parking_test, BlockedDispatcherWakesWhenACampaignResumes) {
  add_number(1, 1);
  add_campaign(1);
  ASSERT_TRUE(sched_.pause_campaign(campaign_id{1}));
  enqueue_range(1, 1);
  EXPECT_TRUE(dispatch().empty());
  auto waiter = std::async(std::launch::async, [&] {
    std::vector<decision> out(4);
    out.resize(sched_.dispatch_wait(out));
    return out;
  });
  ASSERT_TRUE(sched_.resume_campaign(campaign_id{1}));
  ASSERT_EQ(waiter.wait_for(real_time_bound), std::future_status::ready);
  EXPECT_THAT(contacts_of(waiter.get()), ElementsAre(1));
}

TEST_F(parking_test, CloseWakesABlockedDispatcherEmptyHanded) {
  add_number(1, 1);
  add_campaign(1);
  auto waiter = std::async(std::launch::async, [&] {
    std::vector<decision> out(4);
    return sched_.dispatch_wait(out);
  });
  sched_.close();
  ASSERT_EQ(waiter.wait_for(real_time_bound), std::future_status::ready);
  EXPECT_EQ(waiter.get(), 0u);
}

// One slot, many contacts: the dispatcher blocks for every hand-out until the completer frees the slot. A
// lost wake-up stalls it; the completer then gives up after the bound and closes the scheduler.
int ping_pong(scheduler& sched, int rounds, int hold_yields, bool& failed) {
  std::atomic<std::uint64_t> handed{0};  // slot handle of the latest decision, 0 when taken
  std::atomic<bool> gave_up{false};
  std::thread completer([&] {
    const auto deadline = std::chrono::steady_clock::now() + real_time_bound;
    for (int i = 0; i < rounds; ++i) {
      std::uint64_t slot = 0;
      while ((slot = handed.exchange(0)) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          gave_up = true;
          sched.close();
          return;
        }
        std::this_thread::yield();
      }
      for (int y = 0; y < hold_yields; ++y) std::this_thread::yield();  // let the dispatcher fall asleep
      sched.complete(slot_handle{slot});
    }
  });
  int received = 0;
  std::vector<decision> out(1);
  while (received < rounds && !gave_up) {
    if (sched.dispatch_wait(out) == 0) break;
    ++received;
    handed.store(out[0].slot.value());
  }
  completer.join();
  failed = gave_up;
  return received;
}

TEST_F(parking_test, NoWakeUpIsLostOverManyHandOffs) {
  add_number(1, 1);
  add_campaign(1);
  constexpr int rounds = 1000;  // within the test hopper's capacity
  enqueue_range(1, rounds);
  bool failed = false;
  const int received = ping_pong(sched_, rounds, 0, failed);
  EXPECT_FALSE(failed) << "dispatcher stalled after " << received << " hand-outs";
  EXPECT_EQ(received, rounds);
}

class sleepy_parking_test : public scheduler_test {
 protected:
  sleepy_parking_test() : scheduler_test(sleepy_options()) {}
  static scheduler_options sleepy_options() {
    scheduler_options options = test_options();
    options.spin_before_sleep = 0;  // every wait goes to the condition variable
    return options;
  }
};

TEST_F(sleepy_parking_test, NoWakeUpIsLostWhenTheDispatcherSleepsForEveryHandOff) {
  add_number(1, 1);
  add_campaign(1);
  constexpr int rounds = 1000;
  enqueue_range(1, rounds);
  bool failed = false;
  const int received = ping_pong(sched_, rounds, 20, failed);
  EXPECT_FALSE(failed) << "dispatcher stalled after " << received << " hand-outs";
  EXPECT_EQ(received, rounds);
}

TEST_F(parking_test, DispatchWaitWakesForACpsRefill) {
  system_clock real;
  scheduler sched(real, test_options());
  number_config n;
  n.id = number_id{1};
  n.agent = sales_bot;
  n.max_concurrent_calls = 10;
  n.max_cps = 50.0;  // one call every 20 ms
  ASSERT_TRUE(sched.add_number(n));
  campaign_config c;
  c.id = campaign_id{1};
  c.agent = sales_bot;
  c.max_in_flight = 10;
  ASSERT_TRUE(sched.add_campaign(c));
  const contact_item items[] = {contact(1), contact(2)};
  ASSERT_EQ(sched.enqueue(items), 2u);
  std::vector<decision> out(4);
  ASSERT_EQ(sched.dispatch(out), 1u);
  // Nothing wakes this wait except the refill deadline (the bound only turns a hang into a failure).
  EXPECT_EQ(sched.dispatch_wait(out, real.monotonic() + real_time_bound), 1u);
  EXPECT_EQ(out[0].contact, contact_id{2});
}

TEST_F(parking_test, FloodedCampaignDoesNotStarveASmallOne) {
  add_number(1, 1000);
  add_campaign(1);
  add_campaign(2);
  enqueue_range(1, 500, 1);
  enqueue_range(1001, 1005, 2);
  const auto first = dispatch(64);
  ASSERT_EQ(first.size(), 64u);
  int from_small = 0;
  for (const auto& d : first) from_small += d.campaign == campaign_id{2} ? 1 : 0;
  EXPECT_EQ(from_small, 5);
}

TEST_F(parking_test, CampaignsSharingASaturatedNumberTakeTurns) {
  add_number(1, 1);
  add_campaign(1);
  add_campaign(2);
  enqueue_range(1, 50, 1);
  enqueue_range(101, 150, 2);
  int per_campaign[3] = {0, 0, 0};
  for (int i = 0; i < 40; ++i) {
    const auto d = dispatch(1);
    ASSERT_EQ(d.size(), 1u) << "round " << i;
    ++per_campaign[d[0].campaign.value()];
    sched_.complete(d[0].slot);
  }
  EXPECT_EQ(per_campaign[1], 20);
  EXPECT_EQ(per_campaign[2], 20);
}

TEST_F(parking_test, PausedCampaignKeepsItsContactsQueued) {
  add_number(1, 10);
  add_campaign(1);
  ASSERT_TRUE(sched_.pause_campaign(campaign_id{1}));
  enqueue_range(1, 3);
  EXPECT_TRUE(dispatch().empty());
  EXPECT_EQ(stats_of_campaign(1).queued, 3u);
  EXPECT_TRUE(stats_of_campaign(1).paused);
  ASSERT_TRUE(sched_.resume_campaign(campaign_id{1}));
  EXPECT_EQ(dispatch().size(), 3u);
}

}  // namespace
}  // namespace dialer::sched::testing
