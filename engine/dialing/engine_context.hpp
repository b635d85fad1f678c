#pragma once
// What the stages of one dialing engine share: the clock, the options, the scheduler, the tables of
// campaigns, numbers, queued contacts and calls in flight, the queues between stages, and the wake-ups. Each
// member says who may touch it; the stages themselves (one class each) say which thread runs them.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/dialing/call_table.hpp"
#include "engine/dialing/contact_arena.hpp"
#include "engine/dialing/engine_options.hpp"
#include "engine/dialing/live_campaign.hpp"
#include "engine/dialing/number_table.hpp"
#include "engine/dialing/pipeline_items.hpp"
#include "engine/dialing/stage_queue.hpp"
#include "engine/ports/clock.hpp"
#include "engine/rules/calling_window.hpp"
#include "scheduler/scheduler.hpp"

namespace dialer::dialing {

// A wake-up a thread waits for through the clock port: set by anyone, consumed by the waiter. Thread-safe.
class wake_event {
 public:
  void set() {
    {
      std::lock_guard lock(mutex_);
      set_ = true;
    }
    cv_.notify_all();
  }
  // Waits until set() (consuming it), `stop` holds, or the monotonic `deadline` of `clk` passes. Returns
  // whether it was set.
  template <class Stop>
  bool wait_until(const clock& clk, std::chrono::nanoseconds deadline, Stop stop) {
    std::unique_lock lock(mutex_);
    (void)clk.wait_until(cv_, lock, deadline, [&] { return set_ || stop(); });
    return std::exchange(set_, false);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool set_ = false;
};

// Attempts found open in recovered blocks (claim stage), or that exist already when recorded (origination
// stage), waiting for the control stage to reconcile them. Thread-safe.
class reconcile_inbox {
 public:
  struct item {
    campaign_ptr campaign;
    open_attempt attempt;
    bool holds_slot = false;  // it holds a slot of its number and of its campaign's cap until it is settled
  };
  void push(item i) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(i));
  }
  [[nodiscard]] std::vector<item> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(items_, {});
  }
  [[nodiscard]] bool empty() const {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<item> items_;
};

// One window_checker per distinct calling window, for one thread (a checker is not thread-safe, and its zone
// cache costs ~14 KB: a thousand campaigns on the default window share one). Owned by one stage.
class window_checkers {
 public:
  rules::window_checker& for_window(const rules::calling_window& w);

 private:
  std::unordered_map<std::string, std::unique_ptr<rules::window_checker>> by_key_;
};

// What went wrong lately, stage by stage: a failed database call (retried), a campaign that could not start.
// The stages note; whoever runs the engine reads what is new (the command line logs it; the service will
// export it). Thread-safe; keeps the latest `kept` entries.
class error_journal {
 public:
  struct entry {
    std::uint64_t seq = 0;  // 1, 2, ...: the count of errors noted so far, this one included
    std::string stage;
    error what;
  };
  void note(const char* stage, const error& e) {
    std::lock_guard lock(mutex_);
    entries_.push_back({++seq_, stage, e});
    if (entries_.size() > kept) entries_.pop_front();
  }
  // Entries noted after `seq` that are still kept (older ones were dropped: the seq numbers show the gap).
  [[nodiscard]] std::vector<entry> since(std::uint64_t seq) const {
    std::lock_guard lock(mutex_);
    std::vector<entry> out;
    for (const auto& e : entries_)
      if (e.seq > seq) out.push_back(e);
    return out;
  }
  static constexpr std::size_t kept = 64;

 private:
  mutable std::mutex mutex_;
  std::deque<entry> entries_;
  std::uint64_t seq_ = 0;
};

struct engine_context {
  engine_context(const clock& clk, const engine_options& opts);
  engine_context(const engine_context&) = delete;
  engine_context& operator=(const engine_context&) = delete;

  const clock& clk;
  const engine_options options;
  sched::scheduler scheduler;                 // thread-safe (see scheduler.hpp)
  number_table numbers;                       // thread-safe
  campaign_table campaigns;                   // thread-safe; the control stage adds and removes
  contact_arena arena;                        // thread-safe
  stage_queue<writeback_item> writes;         // any stage -> write-back stage
  // How many outcomes the write-back's last transaction carried (the write-back thread sets it; 0 once it has
  // waited a whole idle_wait for work): a large one means outcomes arrive faster than one transaction's round
  // trip, i.e. the engine is at capacity.
  std::atomic<std::size_t> last_write_back{0};
  stage_queue<std::vector<dial_item>> dials;  // dispatch stage -> origination stage
  call_table calls;                           // thread-safe; the carriers' event sink
  reconcile_inbox reconcile;                  // claim and origination stages -> control stage

  std::atomic<bool> stopping{false};  // the pipeline stages end their loops
  std::atomic<bool> stop_now{false};  // ... without waiting for anything (calls in flight are left open)
  // When the lease stage last renewed every lease (monotonic ns); the origination stage's gate reads it.
  std::atomic<std::int64_t> last_lease_ok{0};
  wake_event lease_now;    // renew at once (a campaign started, a slot cools down)
  wake_event claim_now;    // look for work at once (a campaign started or resumed, a slot freed)
  wake_event control_now;  // look at the campaigns at once (a local pause, a stop)
  // Set by each stage thread when its body has ended, still in the clock's time: the shutdown (on the control
  // thread) waits for them through the clock before it joins the threads.
  struct {
    wake_event writeback, lease, origination, dispatch, claim;
  } ended;
  error_journal errors;

  // Hands a contact back to the database without an attempt, or ends it; both settle one unit of its
  // campaign.
  void hand_back(const campaign_ptr& c, contact_return r) {
    r.campaign = c->record.id;
    (void)writes.push(writeback_item{c, std::move(r)});
  }
  void end_contact(const campaign_ptr& c, contact_final f) {
    f.campaign = c->record.id;
    (void)writes.push(writeback_item{c, std::move(f)});
  }
  // The earliest time a contact may be called at or after `at` (now + 1 day if the window does not open
  // within its search horizon: the contact waits, it is not dropped).
  [[nodiscard]] static timestamp window_time(const live_campaign& c, const rules::zone_set* zones,
                                             timestamp at);
};

// Opens a stage's database port, retrying with back-off (through the clock) while the database is away.
// nullptr when the engine stops first. The calling stage's thread.
template <class Port>
std::unique_ptr<Port> open_port(engine_context& ctx,
                                const std::function<result<std::unique_ptr<Port>>()>& open,
                                const char* stage) {
  std::chrono::milliseconds backoff{50};
  while (!ctx.stopping.load(std::memory_order_acquire)) {
    auto port = open();
    if (port) return std::move(*port);
    ctx.errors.note(stage, port.error());
    ctx.clk.sleep_for(backoff);  // a back-off between connection attempts, not a wait for an event
    backoff = std::min(backoff * 2, std::chrono::milliseconds{2000});
  }
  return nullptr;
}

// Runs `write` until it succeeds; between failures (each noted in the journal as the stage's) backs off
// through the clock. Gives up, returning false, when the engine stops at once. The calling stage's thread.
template <class Fn>
bool retry_write(engine_context& ctx, const char* stage, Fn&& write) {
  const auto& give_up = ctx.stop_now;
  const auto& clk = ctx.clk;
  std::chrono::milliseconds backoff{50};
  while (true) {
    auto r = write();
    if (r) return true;
    ctx.errors.note(stage, r.error());
    if (give_up.load(std::memory_order_acquire)) return false;
    clk.sleep_for(backoff);  // back-off between reconnection attempts, not waiting for an event
    backoff = std::min(backoff * 2, std::chrono::milliseconds{2000});
  }
}

}  // namespace dialer::dialing
