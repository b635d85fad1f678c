// Concurrent stress: producers, dispatchers, completers and a control thread hammer one scheduler while an
// independent observer, which only sees decisions and releases, checks the invariants:
// - no number ever has more calls in flight than its limit, no campaign more than its cap;
// - every contact is handed out exactly once per attempt and ends exactly once;
// - every slot is released exactly once (the scheduler sees no double release and ends with no slot in use);
// - no campaign starves: when the first campaign finishes, every other one has done a fair share of its work.
// Built and run under ThreadSanitizer in CI; sized to finish in seconds there.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/ports/clock.hpp"
#include "scheduler/scheduler.hpp"

namespace dialer::sched {
namespace {

constexpr int number_count = 8;
constexpr int campaign_count = 3;
constexpr int contacts_per_campaign = 4000;
constexpr int contact_count = campaign_count * contacts_per_campaign;
constexpr std::int32_t campaign_cap = 6;
constexpr auto give_up_after = std::chrono::seconds(60);

std::int32_t limit_of(int number) {
  return 1 + number % 3;
}  // 1..3 slots: 16 in all, below the caps' 18
std::uint16_t area_of(int number) {
  return static_cast<std::uint16_t>(number % 2 == 0 ? 415 : 212);
}

struct observer {
  std::atomic<int> number_in_flight[number_count + 1] = {};
  std::atomic<int> campaign_in_flight[campaign_count + 1] = {};
  std::vector<std::atomic<int>> contact_in_flight = std::vector<std::atomic<int>>(contact_count + 1);
  std::vector<std::atomic<int>> contact_finished = std::vector<std::atomic<int>>(contact_count + 1);
  std::atomic<int> finished_per_campaign[campaign_count + 1] = {};
  std::atomic<std::uint64_t> handouts{0};
  std::atomic<std::uint64_t> requeued{0};
  std::atomic<int> finished{0};
  std::atomic<int> violations{0};
  std::mutex log_mutex;
  std::vector<std::string> log;  // first few violations, for the failure message
  std::atomic<bool> first_done_recorded{false};
  int share_when_first_done[campaign_count + 1] = {};

  void violation(std::string what) {
    if (violations.fetch_add(1) < 10) {
      std::lock_guard lock(log_mutex);
      log.push_back(std::move(what));
    }
  }

  void on_handout(const decision& d) {
    handouts.fetch_add(1);
    const auto n = static_cast<int>(d.number.value());
    const auto c = static_cast<int>(d.campaign.value());
    const auto id = static_cast<std::size_t>(d.contact.value());
    if (const int now = number_in_flight[n].fetch_add(1) + 1; now > limit_of(n)) {
      violation("number " + std::to_string(n) + " has " + std::to_string(now) + " in flight");
    }
    if (const int now = campaign_in_flight[c].fetch_add(1) + 1; now > campaign_cap) {
      violation("campaign " + std::to_string(c) + " has " + std::to_string(now) + " in flight");
    }
    if (contact_in_flight[id].exchange(1) != 0)
      violation("contact " + std::to_string(id) + " handed out twice");
    if (contact_finished[id].load() != 0)
      violation("contact " + std::to_string(id) + " handed out after it ended");
    if (static_cast<std::int64_t>(d.payload.value()) != d.contact.value() * 3) violation("cookie mismatch");
  }

  // Called before the release reaches the scheduler, which may hand the slot out again right after.
  void on_release(const decision& d, release_reason reason) {
    const auto id = static_cast<std::size_t>(d.contact.value());
    const auto c = static_cast<int>(d.campaign.value());
    number_in_flight[d.number.value()].fetch_sub(1);
    campaign_in_flight[c].fetch_sub(1);
    if (contact_in_flight[id].exchange(0) != 1)
      violation("contact " + std::to_string(id) + " released twice");
    if (reason == release_reason::throttled || reason == release_reason::number_unusable) {
      requeued.fetch_add(1);
      return;
    }
    if (contact_finished[id].fetch_add(1) != 0) violation("contact " + std::to_string(id) + " ended twice");
    const int done_here = finished_per_campaign[c].fetch_add(1) + 1;
    finished.fetch_add(1);
    if (done_here == contacts_per_campaign && !first_done_recorded.exchange(true)) {
      for (int other = 1; other <= campaign_count; ++other)
        share_when_first_done[other] = finished_per_campaign[other];
    }
  }
};

TEST(SchedulerStress, InvariantsHoldUnderConcurrentProducersDispatchersAndCompleters) {
  system_clock clock;
  scheduler_options options;
  options.hopper_capacity = 512;
  options.abort_on_double_release = false;
  scheduler sched(clock, options);

  ASSERT_TRUE(sched.add_carrier_account({carrier_account_id{1}, "busy-account", 20000.0, 16}));
  for (int n = 1; n <= number_count; ++n) {
    number_config cfg;
    cfg.id = number_id{n};
    cfg.e164 = "+1415555" + std::to_string(1000 + n);
    cfg.agent = agent_id{1};
    cfg.agent_name = "stress-bot";
    cfg.carrier_account = n % 2 == 0 ? carrier_account_id{1} : carrier_account_id{};
    cfg.max_concurrent_calls = limit_of(n);
    cfg.max_cps = std::numeric_limits<double>::infinity();
    cfg.area_code = area_of(n);
    cfg.region = n % 2 == 0 ? "CA" : "NY";
    ASSERT_TRUE(sched.add_number(cfg));
  }
  const caller_id_strategy strategies[] = {caller_id_strategy::round_robin, caller_id_strategy::least_loaded,
                                           caller_id_strategy::local_presence};
  for (int c = 1; c <= campaign_count; ++c) {
    campaign_config cfg;
    cfg.id = campaign_id{c};
    cfg.agent = agent_id{1};
    cfg.agent_name = "stress-bot";
    cfg.strategy = strategies[c - 1];
    cfg.max_in_flight = campaign_cap;
    ASSERT_TRUE(sched.add_campaign(cfg));
  }

  observer obs;
  std::atomic<bool> stop{false};
  const auto deadline = std::chrono::steady_clock::now() + give_up_after;
  const auto timed_out = [&] { return std::chrono::steady_clock::now() > deadline; };

  // Decisions travel from dispatchers to completers through this pool (test plumbing, not under test).
  std::mutex pool_mutex;
  std::vector<decision> pool;

  std::vector<std::thread> threads;
  // Producers: each feeds half the contacts, campaigns interleaved, never more than the room.
  for (int p = 0; p < 2; ++p) {
    threads.emplace_back([&, p] {
      std::vector<contact_item> batch;
      int next = 1 + p;
      while (next <= contact_count && !stop) {
        batch.clear();
        for (int id = next; id <= contact_count && batch.size() < 24; id += 2) {
          contact_item item;
          item.contact = contact_id{id};
          item.campaign = campaign_id{1 + id % campaign_count};
          item.payload = sched::payload_ref{static_cast<std::uint64_t>(id) * 3};
          item.area_code = id % 5 == 0 ? 212 : 415;
          item.region = region_code::from(id % 2 == 0 ? "CA" : "NY");
          if (id % 7 == 0) item.sticky_number = number_id{1 + id % number_count};
          batch.push_back(item);
        }
        const std::size_t accepted = sched.enqueue(batch);
        next += static_cast<int>(2 * accepted);
        if (accepted < batch.size()) std::this_thread::yield();
      }
    });
  }
  // Dispatchers.
  for (int d = 0; d < 2; ++d) {
    threads.emplace_back([&] {
      std::vector<decision> out(16);
      while (!stop) {
        const std::size_t count = sched.dispatch_wait(out);
        for (std::size_t i = 0; i < count; ++i) obs.on_handout(out[i]);
        std::lock_guard lock(pool_mutex);
        pool.insert(pool.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(count));
      }
    });
  }
  // Completers: hold a few calls, release them in random order with random outcomes.
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(1234 + w);
      std::vector<decision> held;
      while (!stop) {
        {
          std::lock_guard lock(pool_mutex);
          const std::size_t take = std::min<std::size_t>(pool.size(), 4);
          held.insert(held.end(), pool.end() - static_cast<std::ptrdiff_t>(take), pool.end());
          pool.resize(pool.size() - take);
        }
        if (held.empty() || (held.size() < 3 && rng() % 4 != 0)) {
          std::this_thread::yield();
          if (held.empty()) continue;
        }
        const std::size_t pick = rng() % held.size();
        const decision d = held[pick];
        held[pick] = held.back();
        held.pop_back();
        const unsigned roll = rng() % 100;
        const release_reason reason = roll < 84   ? release_reason::completed
                                      : roll < 90 ? release_reason::not_attempted
                                      : roll < 99 ? release_reason::throttled
                                                  : release_reason::number_unusable;
        obs.on_release(d, reason);
        if (reason == release_reason::completed) {
          sched.complete(d.slot);
        } else {
          sched.give_back(d.slot, reason);
        }
      }
    });
  }
  // Control: polls stats like a progress printer and puts numbers the carrier refused back into rotation.
  threads.emplace_back([&] {
    while (!stop) {
      const scheduler_stats stats = sched.stats();
      for (const auto& n : stats.numbers) {
        if (n.in_flight > n.max_concurrent_calls) obs.violation("stats show a number over its limit");
        if (!n.in_rotation) (void)sched.set_number_rotation(n.id, true);
      }
      std::this_thread::yield();
    }
  });

  while (obs.finished.load() < contact_count && obs.violations.load() == 0 && !timed_out()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the main thread only watches
  }
  if (obs.finished.load() < contact_count) {  // stalled: show where the work is stuck before shutting down
    std::size_t pooled;
    {
      std::lock_guard lock(pool_mutex);
      pooled = pool.size();
    }
    const scheduler_stats stats = sched.stats();
    std::string state = "hopper " + std::to_string(stats.hopper_size) + ", pool " + std::to_string(pooled) +
                        ", slots in use " + std::to_string(stats.slots_in_use) + "; numbers:";
    for (const auto& n : stats.numbers) {
      state += " #" + std::to_string(n.id.value()) + " " + std::to_string(n.in_flight) + "/" +
               std::to_string(n.max_concurrent_calls) + (n.in_rotation ? "" : " out") + " parked " +
               std::to_string(n.parked) + ";";
    }
    for (const auto& c : stats.campaigns) {
      state += " campaign " + std::to_string(c.id.value()) + " in flight " + std::to_string(c.in_flight) +
               " queued " + std::to_string(c.queued) + ";";
    }
    std::vector<decision> probe(16);
    state += " a dispatch now hands out " + std::to_string(sched.dispatch(probe));
    ADD_FAILURE() << "stalled: " << state;
  }
  stop = true;
  sched.close();
  for (auto& t : threads) t.join();

  {
    std::lock_guard lock(obs.log_mutex);
    for (const auto& line : obs.log) ADD_FAILURE() << line;
  }
  ASSERT_EQ(obs.violations.load(), 0);
  ASSERT_EQ(obs.finished.load(), contact_count) << "stalled: a lost wake-up or a lost contact";
  for (int id = 1; id <= contact_count; ++id) {
    ASSERT_EQ(obs.contact_finished[static_cast<std::size_t>(id)].load(), 1) << "contact " << id;
  }
  EXPECT_EQ(obs.handouts.load(), static_cast<std::uint64_t>(contact_count) + obs.requeued.load());

  const scheduler_stats stats = sched.stats();
  EXPECT_EQ(stats.double_releases, 0u);
  EXPECT_EQ(stats.slots_in_use, 0u);
  EXPECT_EQ(stats.hopper_size, 0u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(stats.handouts, obs.handouts.load());
  EXPECT_EQ(stats.completed + stats.not_attempted + stats.throttled + stats.number_unusable, stats.handouts);
  for (const auto& n : stats.numbers) {
    EXPECT_EQ(n.in_flight, 0) << "number " << n.id.value();
    EXPECT_LE(n.peak_in_flight, n.max_concurrent_calls) << "number " << n.id.value();
  }
  for (const auto& c : stats.campaigns) EXPECT_EQ(c.in_flight, 0) << "campaign " << c.id.value();
  // Fairness: the feed is balanced, so when one campaign has finished, the others are well on their way.
  for (int c = 1; c <= campaign_count; ++c) {
    EXPECT_GE(obs.share_when_first_done[c], contacts_per_campaign / 3) << "campaign " << c << " starved";
  }
}

}  // namespace
}  // namespace dialer::sched
