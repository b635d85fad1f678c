// Scheduler benchmarks, each beside its baseline from the same run:
// - BM_dispatch: origination decisions per second with 1, 10 and 1000 numbers, every limit checked
// (per-number
//   slots and CPS, carrier-account CPS, campaign caps), three caller-ID strategies, one or two dispatcher
//   threads, and a carrier thread that completes each call on its own (random order) and refills the hopper,
//   so slots cycle.
// - BM_handout_latency: from a completion freeing the only slot to the next parked contact being handed out.
// - BM_queued_contact_memory: heap bytes per queued contact with the hopper full.
// The baseline (`*_mutex_baseline`) is the same interface built the way a careful engineer would with
// std::mutex + std::deque + std::condition_variable, driven by the same harness and workload.
//
// Quick mode: `bench_scheduler --quick` (smaller runs, --benchmark_min_time=0.01). `--spin_before_sleep=N`
// overrides our dispatchers' spin (scheduler_options::spin_before_sleep). A summary with the ratios is
// printed to stderr after the run, so --benchmark_format=json on stdout stays valid JSON.

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#include <concurrentqueue/concurrentqueue.h>
#pragma GCC diagnostic pop

#include "engine/ports/clock.hpp"
#include "scheduler/scheduler.hpp"

namespace {

using namespace dialer;
using namespace dialer::sched;
using steady = std::chrono::steady_clock;

bool quick = false;
std::optional<std::uint32_t> spin_before_sleep;  // --spin_before_sleep=N overrides our default

// -----------------------------------------------------------------------------------------------------------
// The baseline: one mutex around everything, a std::deque per campaign, a condition variable for dispatchers.
// Same semantics as ours for this workload: per-number slots, per-number and per-account token buckets,
// campaign caps, round robin / least loaded / local presence, fair turns between campaigns, batch dispatch
// under one lock acquisition, bulk enqueue under one lock acquisition, notify only when a dispatcher waits.
// -----------------------------------------------------------------------------------------------------------
class mutex_baseline {
 public:
  mutex_baseline(const dialer::clock& clock, std::size_t capacity) : clock_(clock), capacity_(capacity) {}

  void add_carrier_account(const carrier_account_config& cfg) {
    std::lock_guard lock(mutex_);
    account_index_[cfg.id.value()] = static_cast<std::uint32_t>(accounts_.size());
    accounts_.push_back(
        bucket{static_cast<double>(cfg.cps_burst), cfg.max_cps, static_cast<double>(cfg.cps_burst), 0});
    account_ids_.push_back(cfg.id);
  }

  void add_number(const number_config& cfg) {
    std::lock_guard lock(mutex_);
    number n;
    n.id = cfg.id;
    n.max = cfg.max_concurrent_calls;
    n.cps = bucket{static_cast<double>(cfg.cps_burst), cfg.max_cps, static_cast<double>(cfg.cps_burst), 0};
    const auto found = account_index_.find(cfg.carrier_account.value());
    n.account = found == account_index_.end() ? none : found->second;
    n.area = cfg.area_code;
    n.region = region_code::from(cfg.region).packed();
    n.agent = cfg.agent;
    numbers_.push_back(n);
  }

  void add_campaign(const campaign_config& cfg) {
    std::lock_guard lock(mutex_);
    campaign c;
    c.id = cfg.id;
    c.strategy = cfg.strategy;
    c.max = cfg.max_in_flight;
    for (std::uint32_t i = 0; i < numbers_.size(); ++i) {
      if (numbers_[i].agent == cfg.agent) c.numbers.push_back(i);
    }
    campaign_index_[cfg.id.value()] = static_cast<std::uint32_t>(campaigns_.size());
    campaigns_.push_back(std::move(c));
  }

  std::size_t enqueue(std::span<const contact_item> items) {
    std::size_t accepted;
    bool wake;
    {
      std::lock_guard lock(mutex_);
      accepted = std::min(items.size(), capacity_ - queued_);
      std::int64_t last_id = 0;
      campaign* last = nullptr;
      for (std::size_t i = 0; i < accepted; ++i) {
        const contact_item& item = items[i];
        if (item.campaign.value() != last_id) {
          last_id = item.campaign.value();
          last = &campaigns_[campaign_index_.at(last_id)];
        }
        last->queue.push_back(
            contact{item.contact.value(), item.payload.value(), item.region.packed(), item.area_code});
      }
      queued_ += accepted;
      wake = waiters_ > 0 && accepted > 0;
    }
    if (wake) cv_.notify_all();
    return accepted;
  }

  std::size_t room() {
    std::lock_guard lock(mutex_);
    return capacity_ - queued_;
  }

  std::size_t dispatch_wait(std::span<decision> out, std::chrono::nanoseconds /*until: forever here*/) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (const std::size_t count = dispatch_locked(out); count != 0) return count;
      if (closed_) return 0;
      ++waiters_;
      if (next_refill_ == never) {
        cv_.wait(lock);
      } else {
        cv_.wait_for(lock, std::chrono::nanoseconds(std::max<std::int64_t>(0, next_refill_ - now_)));
      }
      --waiters_;
    }
  }

  void complete(slot_handle handle) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      release(handle);
      wake = waiters_ > 0;
    }
    if (wake) cv_.notify_all();
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  // For the harness's post-run check.
  bool limits_held() {
    std::lock_guard lock(mutex_);
    return std::all_of(numbers_.begin(), numbers_.end(), [](const number& n) { return n.peak <= n.max; }) &&
           double_releases_ == 0;
  }

 private:
  static constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

  struct bucket {
    double tokens;
    double rate;
    double burst;
    std::int64_t last;
    bool has_token(std::int64_t now) {
      tokens = std::min(burst, tokens + static_cast<double>(now - last) * rate * 1e-9);
      last = now;
      return tokens >= 1.0;
    }
    std::int64_t ready_at() const {
      return last + static_cast<std::int64_t>((1.0 - tokens) / rate * 1e9) + 1;
    }
  };
  struct number {
    number_id id;
    agent_id agent;
    std::int32_t in_flight = 0;
    std::int32_t max = 0;
    std::int32_t peak = 0;
    bucket cps{};
    std::uint32_t account = none;
    std::uint16_t area = 0;
    std::uint64_t region = 0;
    std::int64_t used_today = 0;
  };
  struct contact {
    std::int64_t id;
    std::uint64_t cookie;
    std::uint64_t region;
    std::uint16_t area;
  };
  struct campaign {
    campaign_id id;
    caller_id_strategy strategy = caller_id_strategy::round_robin;
    std::int32_t in_flight = 0;
    std::int32_t max = 0;
    std::deque<contact> queue;
    std::vector<std::uint32_t> numbers;
    std::size_t cursor = 0;
  };
  struct slot {
    std::uint32_t number = 0;
    std::uint32_t campaign = 0;
    std::uint32_t generation = 1;
    bool live = false;
  };

  bool usable(std::uint32_t index) {
    number& n = numbers_[index];
    if (n.in_flight >= n.max) return false;
    if (!n.cps.has_token(now_)) {
      next_refill_ = std::min(next_refill_, n.cps.ready_at());
      return false;
    }
    if (n.account != none && !accounts_[n.account].has_token(now_)) {
      next_refill_ = std::min(next_refill_, accounts_[n.account].ready_at());
      return false;
    }
    return true;
  }

  std::uint32_t pick(campaign& c, const contact& who) {
    const std::size_t count = c.numbers.size();
    switch (c.strategy) {
      case caller_id_strategy::round_robin:
        for (std::size_t i = 0; i < count; ++i) {
          const std::size_t at = (c.cursor + i) % count;
          if (usable(c.numbers[at])) {
            c.cursor = at + 1;
            return c.numbers[at];
          }
        }
        return none;
      case caller_id_strategy::least_loaded: {
        std::uint32_t best = none;
        std::int32_t best_free = 0;
        for (const std::uint32_t index : c.numbers) {
          const std::int32_t free = numbers_[index].max - numbers_[index].in_flight;
          if (free > best_free && usable(index)) {
            best = index;
            best_free = free;
          }
        }
        return best;
      }
      case caller_id_strategy::local_presence: {
        std::uint32_t best = none;
        int best_tier = 3;
        std::int64_t best_used = 0;
        for (const std::uint32_t index : c.numbers) {
          const number& n = numbers_[index];
          const int tier = who.area != 0 && n.area == who.area         ? 0
                           : who.region != 0 && n.region == who.region ? 1
                                                                       : 2;
          if ((tier < best_tier || (tier == best_tier && n.used_today < best_used)) && usable(index)) {
            best = index;
            best_tier = tier;
            best_used = n.used_today;
          }
        }
        return best;
      }
    }
    return none;
  }

  std::size_t dispatch_locked(std::span<decision> out) {
    now_ = clock_.monotonic().count();
    next_refill_ = never;
    std::size_t k = 0;
    const std::size_t count = campaigns_.size();
    const std::size_t start = next_campaign_++ % count;
    for (bool progress = true; progress && k < out.size();) {
      progress = false;
      for (std::size_t j = 0; j < count && k < out.size(); ++j) {
        const auto ci = static_cast<std::uint32_t>((start + j) % count);
        campaign& c = campaigns_[ci];
        for (std::size_t quota = 32; quota > 0 && k < out.size() && !c.queue.empty() && c.in_flight < c.max;
             --quota) {
          const contact who = c.queue.front();
          const std::uint32_t index = pick(c, who);
          if (index == none) break;
          c.queue.pop_front();
          progress = true;
          out[k++] = handout(ci, index, who);
        }
      }
    }
    queued_ -= k;
    return k;
  }

  decision handout(std::uint32_t ci, std::uint32_t index, const contact& who) {
    number& n = numbers_[index];
    n.cps.tokens -= 1.0;
    if (n.account != none) accounts_[n.account].tokens -= 1.0;
    ++n.in_flight;
    n.peak = std::max(n.peak, n.in_flight);
    ++n.used_today;
    campaign& c = campaigns_[ci];
    ++c.in_flight;
    std::uint32_t s;
    if (free_slots_.empty()) {
      s = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      s = free_slots_.back();
      free_slots_.pop_back();
    }
    slot& record = slots_[s];
    record.number = index;
    record.campaign = ci;
    record.live = true;
    return decision{contact_id{who.id},
                    c.id,
                    n.id,
                    n.account == none ? carrier_account_id{} : account_ids_[n.account],
                    payload_ref{who.cookie},
                    slot_handle{(static_cast<std::uint64_t>(record.generation) << 32) | (s + 1)}};
  }

  void release(slot_handle handle) {
    const std::uint64_t index = handle.value() & 0xffffffffu;
    const auto generation = static_cast<std::uint32_t>(handle.value() >> 32);
    if (index == 0 || index > slots_.size() || !slots_[index - 1].live ||
        slots_[index - 1].generation != generation) {
      ++double_releases_;
      return;
    }
    slot& record = slots_[index - 1];
    record.live = false;
    ++record.generation;
    free_slots_.push_back(static_cast<std::uint32_t>(index - 1));
    --numbers_[record.number].in_flight;
    --campaigns_[record.campaign].in_flight;
  }

  const dialer::clock& clock_;
  const std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int waiters_ = 0;
  bool closed_ = false;
  std::size_t queued_ = 0;
  std::int64_t now_ = 0;
  std::int64_t next_refill_ = never;
  std::size_t next_campaign_ = 0;
  std::vector<bucket> accounts_;
  std::vector<carrier_account_id> account_ids_;
  std::unordered_map<std::int64_t, std::uint32_t> account_index_;
  std::vector<number> numbers_;
  std::vector<campaign> campaigns_;
  std::unordered_map<std::int64_t, std::uint32_t> campaign_index_;
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t double_releases_ = 0;
};

// -----------------------------------------------------------------------------------------------------------
// Workload and harness, shared by both contenders.
// -----------------------------------------------------------------------------------------------------------
struct workload {
  int numbers = 10;
  caller_id_strategy strategy = caller_id_strategy::round_robin;
  std::int32_t per_number_slots = 4;
  double cps = 1e9;  // enforced on every hand-out, set high enough not to be the bottleneck
  std::uint32_t burst = 1'000'000;
  int campaigns = 2;
  std::int32_t campaign_cap = 1 << 20;
  bool paused = false;
};

constexpr std::uint16_t area_codes[] = {212, 213, 305, 312, 415, 512, 617, 702, 713, 917};
constexpr const char* regions[] = {"NY", "CA", "FL", "IL", "CA", "TX", "MA", "NV", "TX", "NY"};

template <class S>
void configure(S& s, const workload& w) {
  s.add_carrier_account(carrier_account_config{carrier_account_id{1}, "bench-carrier", w.cps * 4, w.burst});
  for (int i = 1; i <= w.numbers; ++i) {
    number_config n;
    n.id = number_id{i};
    n.agent = agent_id{1};
    n.agent_name = "bench-bot";
    n.carrier_account = carrier_account_id{1};
    n.max_concurrent_calls = w.per_number_slots;
    n.max_cps = w.cps;
    n.cps_burst = w.burst;
    n.area_code = area_codes[i % 10];
    n.region = regions[i % 10];
    s.add_number(n);
  }
  for (int c = 1; c <= w.campaigns; ++c) {
    campaign_config cfg;
    cfg.id = campaign_id{c};
    cfg.agent = agent_id{1};
    cfg.agent_name = "bench-bot";
    cfg.strategy = w.strategy;
    cfg.max_in_flight = w.campaign_cap;
    cfg.paused = w.paused;
    s.add_campaign(cfg);
  }
}

std::vector<contact_item> make_contacts(std::size_t count, int campaigns) {
  std::vector<contact_item> out(count);
  std::uint64_t x = 88172645463325252ull;
  for (std::size_t i = 0; i < count; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i].contact = contact_id{static_cast<std::int64_t>(i + 1)};
    out[i].campaign = campaign_id{static_cast<std::int64_t>(1 + i % static_cast<std::size_t>(campaigns))};
    out[i].payload = payload_ref{i};
    out[i].area_code =
        x % 8 == 0 ? 0 : static_cast<std::uint16_t>(area_codes[x % 10] + (x % 16 == 1 ? 1 : 0));
    out[i].region = region_code::from(regions[(x >> 8) % 10]);
  }
  return out;
}

struct result_row {
  double items_per_second = 0;
  double cpu_ns_per_decision = 0;  // dispatcher(s) + carrier
  double p50_us = 0;
  double p99_us = 0;
  double bytes_per_contact = 0;
};
std::map<std::string, result_row> results;  // written by the benchmark functions, read by the summary

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Our scheduler's registration returns result<void>; the harness treats a failure as a bug in the harness.
struct ours {
  explicit ours(std::size_t capacity) : s(clock, options(capacity)) {}
  static scheduler_options options(std::size_t capacity) {
    scheduler_options o;
    o.hopper_capacity = capacity;
    if (spin_before_sleep) o.spin_before_sleep = *spin_before_sleep;
    return o;
  }
  void add_carrier_account(const carrier_account_config& cfg) { s.add_carrier_account(cfg).value(); }
  void add_number(const number_config& cfg) { s.add_number(cfg).value(); }
  void add_campaign(const campaign_config& cfg) { s.add_campaign(cfg).value(); }
  std::size_t enqueue(std::span<const contact_item> items) { return s.enqueue(items); }
  std::size_t room() { return s.room(); }
  std::size_t dispatch_wait(std::span<decision> out, std::chrono::nanoseconds until) {
    return s.dispatch_wait(out, until);
  }
  void complete(slot_handle h) { s.complete(h); }
  void close() { s.close(); }
  bool limits_held() {
    const auto stats = s.stats();
    return stats.double_releases == 0 &&
           std::all_of(stats.numbers.begin(), stats.numbers.end(),
                       [](const number_stats& n) { return n.peak_in_flight <= n.max_concurrent_calls; });
  }
  dialer::system_clock clock;
  scheduler s;
};

struct baseline {
  explicit baseline(std::size_t capacity) : s(clock, capacity) {}
  void add_carrier_account(const carrier_account_config& cfg) { s.add_carrier_account(cfg); }
  void add_number(const number_config& cfg) { s.add_number(cfg); }
  void add_campaign(const campaign_config& cfg) { s.add_campaign(cfg); }
  std::size_t enqueue(std::span<const contact_item> items) { return s.enqueue(items); }
  std::size_t room() { return s.room(); }
  std::size_t dispatch_wait(std::span<decision> out, std::chrono::nanoseconds until) {
    return s.dispatch_wait(out, until);
  }
  void complete(slot_handle h) { s.complete(h); }
  void close() { s.close(); }
  bool limits_held() { return s.limits_held(); }
  dialer::system_clock clock;
  mutex_baseline s;
};

constexpr std::size_t hopper = 65536;
constexpr std::size_t batch = 256;

struct handle_traits : moodycamel::ConcurrentQueueDefaultTraits {
  static constexpr std::size_t BLOCK_SIZE = 256;
};

struct run_figures {
  double seconds = 0;
  std::int64_t dispatcher_cpu_ns = 0;  // all dispatcher threads, spinning and sleeping included
  std::int64_t carrier_cpu_ns = 0;
  bool limits_ok = false;
};

// One timed run: `dispatchers` threads dispatch until `decisions` are handed out; one carrier thread
// completes every call individually, in shuffled order, and tops the hopper up whenever there is room for a
// batch.
template <class S>
run_figures run_dispatch(const workload& w, int dispatchers, std::uint64_t decisions,
                         const std::vector<contact_item>& feed) {
  run_figures figures;
  std::atomic<std::int64_t> dispatcher_cpu{0};
  std::atomic<std::int64_t> carrier_cpu{0};
  S s(hopper);
  configure(s, w);
  std::size_t fed = 0;
  const auto top_up = [&] {
    for (std::size_t room = s.room(); room >= batch;) {
      const std::size_t offset = fed % feed.size();
      const std::size_t want = std::min({room, std::size_t{1024}, feed.size() - offset});
      const std::size_t took = s.enqueue(std::span(feed).subspan(offset, want));
      fed += took;
      room -= took;
      if (took == 0) break;
    }
  };
  top_up();

  moodycamel::ConcurrentQueue<slot_handle, handle_traits> to_carrier;
  std::atomic<std::uint64_t> handed{0};
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  steady::time_point start, end;

  std::thread carrier([&] {
    moodycamel::ConsumerToken token(to_carrier);
    slot_handle calls[batch];
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    std::uint64_t idle = 0;
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) cpu_relax();
    const std::int64_t cpu_start = thread_cpu_ns();
    while (!stop.load(std::memory_order_relaxed)) {
      const std::size_t count = to_carrier.try_dequeue_bulk(token, calls, batch);
      if (count == 0) {
        if (++idle % 64 == 0) std::this_thread::yield();
        cpu_relax();
        continue;
      }
      for (std::size_t i = count; i > 1; --i) {  // calls end in random order
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::swap(calls[i - 1], calls[x % i]);
      }
      for (std::size_t i = 0; i < count; ++i) s.complete(calls[i]);
      top_up();
    }
    carrier_cpu.fetch_add(thread_cpu_ns() - cpu_start);
  });
  std::vector<std::thread> threads;
  for (int d = 0; d < dispatchers; ++d) {
    threads.emplace_back([&] {
      moodycamel::ProducerToken token(to_carrier);
      std::vector<decision> out(batch);
      slot_handle calls[batch];
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) cpu_relax();
      const std::int64_t cpu_start = thread_cpu_ns();
      while (!stop.load(std::memory_order_relaxed)) {
        const std::size_t count = s.dispatch_wait(out, forever);
        if (count == 0) continue;
        for (std::size_t i = 0; i < count; ++i) calls[i] = out[i].slot;
        to_carrier.enqueue_bulk(token, calls, count);
        if (handed.fetch_add(count) + count >= decisions && !stop.exchange(true)) {
          end = steady::now();
          s.close();
        }
      }
      dispatcher_cpu.fetch_add(thread_cpu_ns() - cpu_start);
    });
  }
  while (ready.load() != dispatchers + 1) std::this_thread::yield();
  start = steady::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  carrier.join();
  figures.limits_ok = s.limits_held();
  figures.seconds = std::chrono::duration<double>(end - start).count();
  figures.dispatcher_cpu_ns = dispatcher_cpu.load();
  figures.carrier_cpu_ns = carrier_cpu.load();
  return figures;
}

template <class S>
void bm_dispatch(benchmark::State& state, std::string name, workload w, int dispatchers) {
  const std::uint64_t decisions = quick ? (1u << 18) : (1u << 21);
  const auto feed = make_contacts(1u << 17, w.campaigns);
  double seconds = 0;
  std::uint64_t total = 0;
  std::int64_t dispatcher_cpu = 0;
  std::int64_t carrier_cpu = 0;
  for (auto _ : state) {
    const run_figures run = run_dispatch<S>(w, dispatchers, decisions, feed);
    if (!run.limits_ok) {
      state.SkipWithError("a number exceeded its limit or a slot was released twice");
      return;
    }
    state.SetIterationTime(run.seconds);
    seconds += run.seconds;
    total += decisions;
    dispatcher_cpu += run.dispatcher_cpu_ns;
    carrier_cpu += run.carrier_cpu_ns;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  // CPU time per decision (thread clocks) is less sensitive than wall time to a machine shared with other
  // work.
  state.counters["dispatcher_cpu_ns"] = static_cast<double>(dispatcher_cpu) / static_cast<double>(total);
  state.counters["carrier_cpu_ns"] = static_cast<double>(carrier_cpu) / static_cast<double>(total);
  results[name].items_per_second = static_cast<double>(total) / seconds;
  results[name].cpu_ns_per_decision =
      static_cast<double>(dispatcher_cpu + carrier_cpu) / static_cast<double>(total);
}

// Latency: one number with one slot and a full hopper; the carrier holds each call for a random time in
// [hold_min, hold_max) us, stamps the time, and completes it; the dispatcher stamps the next hand-out. Short
// holds land inside our dispatcher's spin window; 200 us holds outlast it, so every hand-out pays a futex
// wake-up.
template <class S>
void bm_latency(benchmark::State& state, std::string name, std::int64_t hold_min_us,
                std::int64_t hold_max_us) {
  // About 0.2 s (quick) or 2 s of holding per contender when nothing else competes for the cores.
  const int samples = static_cast<int>((quick ? 400'000 : 4'000'000) / (hold_min_us + hold_max_us + 10));
  std::vector<std::int64_t> latencies;
  for (auto _ : state) {
    workload w;
    w.numbers = 1;
    w.per_number_slots = 1;
    w.campaigns = 1;
    S s(static_cast<std::size_t>(samples) + 16);
    configure(s, w);
    const auto feed = make_contacts(static_cast<std::size_t>(samples) + 1, 1);
    s.enqueue(feed);
    std::atomic<std::uint64_t> handed{0};
    std::atomic<std::int64_t> freed_at{0};
    latencies.assign(static_cast<std::size_t>(samples), 0);
    const auto now_ns = [] { return steady::now().time_since_epoch().count(); };
    const auto started = steady::now();
    std::thread carrier([&] {
      std::uint64_t x = 0x2545F4914F6CDD1Dull;
      for (int i = 0; i < samples; ++i) {
        std::uint64_t h;
        while ((h = handed.exchange(0, std::memory_order_acq_rel)) == 0) cpu_relax();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const std::int64_t span = (hold_max_us - hold_min_us) * 1000;
        const auto hold_until =
            now_ns() + hold_min_us * 1000 +
            (span > 0 ? static_cast<std::int64_t>(x % static_cast<std::uint64_t>(span)) : 0);
        while (now_ns() < hold_until) cpu_relax();
        freed_at.store(now_ns(), std::memory_order_release);
        s.complete(slot_handle{h});
      }
    });
    std::vector<decision> out(1);
    for (int i = 0; i <= samples; ++i) {
      if (s.dispatch_wait(out, forever) != 1) break;
      const std::int64_t t = now_ns();
      if (i > 0) latencies[static_cast<std::size_t>(i - 1)] = t - freed_at.load(std::memory_order_acquire);
      if (i < samples) handed.store(out[0].slot.value(), std::memory_order_release);
    }
    carrier.join();
    state.SetIterationTime(std::chrono::duration<double>(steady::now() - started).count());
  }
  std::sort(latencies.begin(), latencies.end());
  const auto at = [&](double q) {
    return static_cast<double>(latencies[static_cast<std::size_t>(q * (latencies.size() - 1))]) / 1000.0;
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["p999_us"] = at(0.999);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * samples);
  results[name].p50_us = at(0.50);
  results[name].p99_us = at(0.99);
}

std::size_t live_heap_bytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Heap bytes per queued contact with the hopper full and every contact in its campaign queue (after a
// dispatcher pass; the campaign is paused so nothing leaves). Includes queue blocks the scheduler keeps.
template <class S, bool ours_kind>
void bm_memory(benchmark::State& state, std::string name) {
  const std::size_t count = quick ? (1u << 18) : (1u << 20);
  const auto feed = make_contacts(count, 1);
  double per_contact = 0;
  for (auto _ : state) {
    {
      workload w;
      w.numbers = 1;
      w.campaigns = 1;
      w.paused = true;
      auto s = std::make_unique<S>(count);
      configure(*s, w);
      const std::size_t configured = live_heap_bytes();
      for (std::size_t offset = 0; offset < count; offset += 4096) {
        s->enqueue(std::span(feed).subspan(offset, std::min<std::size_t>(4096, count - offset)));
      }
      if constexpr (ours_kind)
        (void)s->s.stats();  // moves every contact from the inbound queue to its campaign
      per_contact = static_cast<double>(live_heap_bytes() - configured) / static_cast<double>(count);
      state.SetIterationTime(1e-3);
    }
  }
  state.counters["bytes_per_queued_contact"] = per_contact;
  results[name].bytes_per_contact = per_contact;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

void register_all() {
  const std::pair<const char*, caller_id_strategy> strategies[] = {
      {"round_robin", caller_id_strategy::round_robin},
      {"least_loaded", caller_id_strategy::least_loaded},
      {"local_presence", caller_id_strategy::local_presence}};
  for (const auto& [strategy_name, strategy] : strategies) {
    for (const int numbers : {1, 10, 1000}) {
      for (const int dispatchers : {1, 2}) {
        workload w;
        w.numbers = numbers;
        w.strategy = strategy;
        w.per_number_slots = std::max(4, 4096 / numbers);  // about 4096 calls in flight in every case
        const std::string suffix = std::string("/") + strategy_name + "/numbers:" + std::to_string(numbers) +
                                   "/dispatchers:" + std::to_string(dispatchers);
        for (const bool base : {false, true}) {
          const std::string name = std::string(base ? "BM_dispatch_mutex_baseline" : "BM_dispatch") + suffix;
          auto* b =
              base ? benchmark::RegisterBenchmark(name.c_str(), bm_dispatch<baseline>, name, w, dispatchers)
                   : benchmark::RegisterBenchmark(name.c_str(), bm_dispatch<ours>, name, w, dispatchers);
          b->UseManualTime()->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
  const std::tuple<const char*, std::int64_t, std::int64_t> holds[] = {{"/hold:0-50us", 0, 50},
                                                                       {"/hold:200us", 200, 200}};
  for (const auto& [suffix, low, high] : holds) {
    for (const bool base : {false, true}) {
      const std::string name =
          std::string(base ? "BM_handout_latency_mutex_baseline" : "BM_handout_latency") + suffix;
      auto* b = base ? benchmark::RegisterBenchmark(name.c_str(), bm_latency<baseline>, name, low, high)
                     : benchmark::RegisterBenchmark(name.c_str(), bm_latency<ours>, name, low, high);
      b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RegisterBenchmark("BM_queued_contact_memory", bm_memory<ours, true>,
                               std::string("BM_queued_contact_memory"))
      ->UseManualTime()
      ->Iterations(1);
  benchmark::RegisterBenchmark("BM_queued_contact_memory_mutex_baseline", bm_memory<baseline, false>,
                               std::string("BM_queued_contact_memory_mutex_baseline"))
      ->UseManualTime()
      ->Iterations(1);
}

void print_summary() {
  std::fprintf(stderr, "\nscheduler vs mutex baseline (same run; load average now %s)\n",
               load_average().c_str());
  std::fprintf(stderr, "%-58s %14s %14s %7s   %s\n", "benchmark", "ours", "baseline", "ratio",
               "cpu ns/decision ours | baseline");
  for (const auto& [name, row] : results) {
    if (name.find("_mutex_baseline") != std::string::npos) continue;
    std::string base_name = name;
    base_name.insert(name.find('/') == std::string::npos ? name.size() : name.find('/'), "_mutex_baseline");
    const auto base = results.find(base_name);
    if (base == results.end()) continue;
    const result_row& b = base->second;
    if (row.items_per_second > 0 && row.p99_us == 0 && row.bytes_per_contact == 0) {
      std::fprintf(stderr, "%-58s %12.2fM/s %12.2fM/s %6.2fx   %6.0f | %6.0f\n", name.c_str(),
                   row.items_per_second / 1e6, b.items_per_second / 1e6,
                   row.items_per_second / b.items_per_second, row.cpu_ns_per_decision, b.cpu_ns_per_decision);
    } else if (row.p99_us > 0) {
      std::fprintf(stderr, "%-58s p50 %7.2f us  p50 %7.2f us\n", name.c_str(), row.p50_us, b.p50_us);
      std::fprintf(stderr, "%-58s p99 %7.2f us  p99 %7.2f us\n", "", row.p99_us, b.p99_us);
    } else if (row.bytes_per_contact > 0) {
      std::fprintf(stderr, "%-58s %10.1f B/c %10.1f B/c\n", name.c_str(), row.bytes_per_contact,
                   b.bytes_per_contact);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  static char quick_min_time[] = "--benchmark_min_time=0.01";
  bool has_min_time = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
      continue;
    }
    if (std::strncmp(argv[i], "--spin_before_sleep=", 20) == 0) {
      spin_before_sleep = static_cast<std::uint32_t>(std::strtoul(argv[i] + 20, nullptr, 10));
      continue;
    }
    if (std::strncmp(argv[i], "--benchmark_min_time", 20) == 0) has_min_time = true;
    args.push_back(argv[i]);
  }
  if (quick && !has_min_time) args.push_back(quick_min_time);
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::AddCustomContext("load_average", load_average());
  benchmark::AddCustomContext("mode", quick ? "quick" : "full");
  benchmark::AddCustomContext(
      "spin_before_sleep", std::to_string(spin_before_sleep.value_or(scheduler_options{}.spin_before_sleep)));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary();
  return 0;
}
