#pragma once
// The clock port. All time in the engine and the scheduler comes through here, waits included, so tests can
// drive CPS buckets, retries, leases and calling windows deterministically: under a manual_clock the whole
// runner (every thread of it) runs in simulated time, and a 30-second call takes no real time at all.
//
// Waiting: every timed wait in engine code is clock::wait_until (an event on a condition variable, or a
// deadline in this clock's time, whichever comes first) or clock::sleep_until (a deadline only). Nothing in the
// engine calls std::this_thread::sleep_for or a condition variable's own timed wait.
//
// Header-only: the scheduler, built alone under ThreadSanitizer, includes it.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <vector>

namespace dialer {

class clock {
 public:
  // A deadline that never comes.
  static constexpr std::chrono::nanoseconds never = std::chrono::nanoseconds::max();

  virtual ~clock() = default;
  // Monotonic time for rates, timeouts and latencies. Thread-safe, never allocates.
  [[nodiscard]] virtual std::chrono::nanoseconds monotonic() const noexcept = 0;
  // Wall time for calling windows, timestamps and billing. Thread-safe, never allocates.
  [[nodiscard]] virtual std::chrono::system_clock::time_point wall() const noexcept = 0;

  // Waits with `lock` (on `cv`'s mutex) held on entry and on return, until `ready()` holds or the monotonic
  // `deadline` of this clock has passed. Returns ready(). Whoever makes ready() true notifies `cv`, as with any
  // condition variable. Any thread.
  template <class Ready>
  bool wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, std::chrono::nanoseconds deadline,
                  Ready ready) const {
    while (!ready()) {
      const auto now = monotonic();
      if (now >= deadline) return ready();
      block(cv, lock, deadline == never ? never : deadline - now);
    }
    return true;
  }
  template <class Ready>
  bool wait_for(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, std::chrono::nanoseconds timeout,
                Ready ready) const {
    return wait_until(cv, lock, timeout == never ? never : monotonic() + timeout, std::move(ready));
  }
  // Sleeps until the monotonic `deadline` of this clock (a back-off, a cadence: no event to wait for). Any thread.
  void sleep_until(std::chrono::nanoseconds deadline) const {
    std::mutex m;
    std::condition_variable cv;
    std::unique_lock lock(m);
    (void)wait_until(cv, lock, deadline, [] { return false; });
  }
  void sleep_for(std::chrono::nanoseconds d) const { sleep_until(monotonic() + d); }

  // The calling thread is about to start a thread that will join as participant(clk, how::announced).
  virtual void expect_participant() const noexcept {}

  // Marks the calling thread, for its lifetime, as one that moves in this clock's time. A manual_clock advances
  // only when every such thread waits on it (see manual_clock::run_until). Costs nothing on the system clock.
  //
  // A thread started for the clock's time is announced by its parent first (expect_participant(), before
  // std::thread starts it) and joins with `announced`, so that no instant passes between the two in which a
  // manual clock could see everyone waiting and move on without it.
  class participant {
   public:
    enum class how : std::uint8_t { unannounced, announced };
    explicit participant(const clock& c, how h = how::unannounced) : clock_(c) { clock_.join(h == how::announced); }
    ~participant() { clock_.leave(); }
    participant(const participant&) = delete;
    participant& operator=(const participant&) = delete;

   private:
    const clock& clock_;
  };

 protected:
  // One wait on `cv` of at most `at_most` of this clock's time; it may return early (a notify, a spurious wake).
  virtual void block(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                     std::chrono::nanoseconds at_most) const = 0;
  virtual void join(bool /*announced*/) const noexcept {}
  virtual void leave() const noexcept {}
};

class system_clock final : public clock {
 public:
  [[nodiscard]] std::chrono::nanoseconds monotonic() const noexcept override {
    return std::chrono::steady_clock::now().time_since_epoch();
  }
  [[nodiscard]] std::chrono::system_clock::time_point wall() const noexcept override {
    return std::chrono::system_clock::now();
  }

 protected:
  void block(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
             std::chrono::nanoseconds at_most) const override {
    // An hour at most per wait: the caller's loop re-checks its deadline, and no duration overflows.
    cv.wait_for(lock, std::min<std::chrono::nanoseconds>(at_most, std::chrono::hours(1)));
  }
};

// A clock that moves only when told. Readers and waiters may be on any thread.
//
// Single-threaded tests call advance(). Multi-threaded tests (a whole runner) call run_until(t): it advances
// time only while every participant thread waits on this clock, each time to the earliest deadline any of them
// waits for, so that simulated time passes as fast as the threads can keep up and never while one of them still
// has work to do at the current instant. A waiter here blocks for at most `poll` of real time per round, so a
// notify from a thread that is not a participant (a test's own thread) is never lost.
class manual_clock final : public clock {
 public:
  explicit manual_clock(std::chrono::system_clock::time_point wall_start = {}) noexcept : wall_start_(wall_start) {}

  [[nodiscard]] std::chrono::nanoseconds monotonic() const noexcept override {
    return std::chrono::nanoseconds(now_ns_.load(std::memory_order_acquire));
  }
  [[nodiscard]] std::chrono::system_clock::time_point wall() const noexcept override {
    return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(monotonic());
  }
  void advance(std::chrono::nanoseconds by) noexcept { now_ns_.fetch_add(by.count(), std::memory_order_acq_rel); }

  // Test thread (not a participant). Advances simulated time to `target` (absolute, monotonic), moving only when
  // every participant waits and has looked at its condition since time last moved. Returns false when
  // `real_timeout` of real time passes without the threads going idle (a thread is stuck outside the clock).
  bool run_until(std::chrono::nanoseconds target,
                 std::chrono::milliseconds real_timeout = std::chrono::milliseconds(30000)) {
    while (monotonic() < target) {
      auto next = wait_idle(real_timeout);
      if (!next) return false;
      const auto to = std::min(*next, target);
      set(std::max(to, monotonic() + std::chrono::nanoseconds(1)));
    }
    return wait_idle(real_timeout).has_value();
  }
  // Test thread. Advances time until `done()` holds (checked whenever all participants are idle) or `limit` of
  // simulated time has passed. Returns done(); false also when the threads stay busy for `real_timeout` of real
  // time at one instant (one is stuck outside the clock). There is no limit on the real time the whole run
  // takes: a loaded machine slows every step, and a bound on the total made such runs fail for nothing.
  template <class Done>
  bool run_while_not(Done done, std::chrono::nanoseconds limit,
                     std::chrono::milliseconds real_timeout = std::chrono::milliseconds(60000)) {
    const auto until = monotonic() + limit;
    while (true) {
      auto next = wait_idle(real_timeout);
      if (done()) return true;
      if (!next || monotonic() >= until) return false;
      set(std::max(std::min(*next, until), monotonic() + std::chrono::nanoseconds(1)));
    }
  }
  // How many threads are participants now, counting those announced that have not joined yet. Any thread.
  [[nodiscard]] int participants() const {
    std::lock_guard g(registry_);
    return static_cast<int>(slots_.size()) + announced_;
  }

  // Real time a waiter blocks per round at most.
  static constexpr std::chrono::microseconds poll{200};

 protected:
  void block(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
             std::chrono::nanoseconds at_most) const override {
    slot* s = mine();
    if (s) {
      const auto now = monotonic().count();
      const auto deadline = at_most == never ? std::numeric_limits<std::int64_t>::max() : now + at_most.count();
      {
        std::lock_guard g(registry_);
        s->cv = &cv;  // set() wakes it when time moves, instead of leaving it to its next poll
      }
      s->deadline.store(deadline, std::memory_order_release);
      s->seen.store(now_ns_.load(std::memory_order_acquire), std::memory_order_release);
      s->rounds.fetch_add(1, std::memory_order_acq_rel);
      s->waiting.store(true, std::memory_order_release);
      idle_cv_.notify_all();  // the test thread may be waiting for this wait to begin
    }
    cv.wait_for(lock, poll);
    if (s) {
      s->waiting.store(false, std::memory_order_release);
      std::lock_guard g(registry_);
      s->cv = nullptr;  // cleared under registry_: set() never notifies a condition variable that is gone
    }
  }
  void expect_participant() const noexcept override {
    std::lock_guard g(registry_);
    ++announced_;
  }
  void join(bool announced) const noexcept override {
    std::lock_guard g(registry_);
    if (announced && announced_ > 0) --announced_;
    auto* s = new slot{};
    s->thread = this;
    slots_.push_back(s);
    ++generation_;
    current() = s;
  }
  void leave() const noexcept override {
    std::lock_guard g(registry_);
    slot* s = current();
    std::erase(slots_, s);
    ++generation_;
    delete s;
    current() = nullptr;
  }

 private:
  struct slot {
    const manual_clock* thread = nullptr;  // the clock this slot belongs to
    std::atomic<bool> waiting{false};
    std::atomic<std::int64_t> deadline{0};  // absolute, ns
    std::atomic<std::int64_t> seen{0};      // the time it last looked at its condition
    std::atomic<std::uint64_t> rounds{0};   // waits entered
    std::condition_variable* cv = nullptr;  // guarded by registry_: what it waits on now, if it waits
  };
  static slot*& current() {
    thread_local slot* s = nullptr;
    return s;
  }
  slot* mine() const {
    slot* s = current();
    return s && s->thread == this ? s : nullptr;
  }
  // Moves time and wakes every participant that waits, so each looks at its deadline at once (a waiter that
  // is between two waits reads the new time when it enters the next one).
  void set(std::chrono::nanoseconds t) {
    now_ns_.store(t.count(), std::memory_order_release);
    std::lock_guard g(registry_);
    for (auto* s : slots_)
      if (s->cv) s->cv->notify_all();
  }

  // Waits (real time) until the participants are at a fixpoint: every one waits, and every one has returned from
  // a wait and gone back into one (so it looked at its condition again, and found it false) since all were first
  // seen waiting at the current time. Any notify before that point has been seen by its waiter by then. This
  // holds as long as only participants change what the participants wait for. Returns the earliest deadline.
  std::optional<std::chrono::nanoseconds> wait_idle(std::chrono::milliseconds real_timeout) const {
    const auto until = std::chrono::steady_clock::now() + real_timeout;
    std::vector<std::pair<const slot*, std::uint64_t>> snapshot;
    std::uint64_t snapshot_generation = 0;
    while (std::chrono::steady_clock::now() < until) {
      {
        std::lock_guard g(registry_);
        const auto now = now_ns_.load(std::memory_order_acquire);
        const auto all_waiting = [&] {
          for (const auto* s : slots_)
            if (!s->waiting.load(std::memory_order_acquire) || s->seen.load(std::memory_order_acquire) != now)
              return false;
          return true;
        };
        if (announced_ > 0 || !all_waiting()) {
          snapshot.clear();
        } else if (snapshot.empty() || snapshot_generation != generation_) {
          snapshot.clear();
          snapshot_generation = generation_;
          for (const auto* s : slots_) snapshot.emplace_back(s, s->rounds.load(std::memory_order_acquire));
          if (slots_.empty()) return std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max());
        } else {
          bool moved_on = true;
          for (const auto& [s, rounds] : snapshot)
            if (s->rounds.load(std::memory_order_acquire) <= rounds) moved_on = false;
          if (moved_on) {
            std::int64_t earliest = std::numeric_limits<std::int64_t>::max();
            for (const auto* s : slots_) earliest = std::min(earliest, s->deadline.load(std::memory_order_acquire));
            return std::chrono::nanoseconds(earliest);
          }
        }
      }
      std::unique_lock lock(idle_mutex_);
      idle_cv_.wait_for(lock, poll / 4);
    }
    return std::nullopt;
  }

  std::chrono::system_clock::time_point wall_start_;
  std::atomic<std::int64_t> now_ns_{1'000'000'000};  // start at 1 s so "time zero" is never a valid stamp
  mutable std::mutex registry_;
  mutable std::vector<slot*> slots_;  // guarded by registry_
  mutable std::uint64_t generation_ = 0;  // guarded by registry_: bumped when a participant joins or leaves
  mutable int announced_ = 0;             // guarded by registry_: threads started that have not joined yet
  mutable std::mutex idle_mutex_;
  mutable std::condition_variable idle_cv_;
};

}  // namespace dialer
