#pragma once
// The simulated carrier: the embedded default for demos, tests and benchmarks.
//
// Each call's fate is a pure function of (seed, idempotency key) - see call_plan.hpp - so runs replay
// exactly, and lookup() can reconcile an attempt after a crash by recomputing it.
//
// Modes and threading:
// - timed (default): one worker thread owns a timer heap. originate() and cancel() only queue work
//   and return; every event (on_accepted, on_refused, on_outcome) is delivered from the worker, in
//   order per attempt. Real delays are the simulated ones divided by time_acceleration.
// - instant: no worker thread. originate() decides and delivers on_accepted + on_outcome (or
//   on_refused) synchronously on the caller's thread before it returns; cancel() has nothing to do.
//   The sink must therefore not hold a lock that originate()'s caller also holds.
// Events are never delivered while the carrier holds its own lock, so a sink may call back into it.
//
// Duplicates: an idempotency key seen in flight or among the last `dedup_window` placed keys is not
// placed again. The same attempt sent twice is ignored (its first request still reports exactly one
// outcome) and counted in stats().duplicates_ignored. The key under a *different* attempt id is refused
// as `not_placed` with detail "duplicate idempotency key ...", so that attempt still ends in one event.
// An empty key stands for "attempt-<id>".

#include <atomic>
#include <random>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "adapters/carriers/simulated/call_plan.hpp"
#include "adapters/carriers/simulated/settings.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"
#include "engine/telephony.hpp"

namespace dialer::carriers {

class simulated_carrier final : public carrier {
 public:
  struct stats {
    std::uint64_t accepted = 0;
    std::uint64_t refused = 0;
    std::uint64_t duplicates_ignored = 0;
    std::uint64_t outcomes = 0;
  };

  // Throws dialer_exception (invalid_input) when the settings do not validate: a start-up error.
  // The clock must outlive the carrier. Starts the worker thread unless settings.instant.
  simulated_carrier(simulated_carrier_settings settings, dialer::clock& clock);
  // Stops the worker and joins it. Calls still in flight report nothing, like a crashed carrier
  // connection: call drain() first for a clean shutdown, or reconcile them with lookup().
  ~simulated_carrier() override;

  simulated_carrier(const simulated_carrier&) = delete;
  simulated_carrier& operator=(const simulated_carrier&) = delete;

  [[nodiscard]] std::string_view name() const noexcept override { return "simulated"; }
  // settings.account_cps, else settings.throttle_cps, else unlimited_cps. Thread-safe, no allocation.
  [[nodiscard]] double account_cps() const noexcept override;
  void set_events(carrier_events* sink) noexcept override;

  // Thread-safe. Timed mode: copies a small record per request into the worker's queue (amortised
  // allocation free) and returns. Instant mode: delivers every event before returning; one lock per
  // 64 requests; allocates only the carrier_call_id string of each call_event.
  void originate(std::span<const origination_request> requests) noexcept override;

  // Thread-safe, returns at once. Ringing calls end `canceled`; answered calls end early with their
  // outcome (completed or voicemail) and the talk time so far. Unknown or finished attempts: no-op.
  void cancel(attempt_id attempt) noexcept override;

  // Recomputes the call from the id given in on_accepted (which encodes the key hash and start time).
  // Ended: the event it reported (or would have, had nobody canceled it). Still in progress:
  // errc::unavailable - ask again later. Empty id (never accepted, or accepted by a process that died
  // before reporting it): nullopt. Malformed id: errc::invalid_input. Thread-safe; allocates.
  [[nodiscard]] result<std::optional<call_event>> lookup(attempt_id attempt,
                                                         std::string_view carrier_call_id) override;

  // Refuses new work (not_placed, "draining") and waits on a condition variable until every queued
  // or in-flight request has reported, or the deadline passes. Thread-safe.
  void drain(std::chrono::milliseconds deadline) noexcept override;

  // Re-checks the timer heap now (the worker waits through the clock port, so a manual clock that moves
  // wakes it anyway; this only shortens the wait). Thread-safe.
  void wake() noexcept;

  [[nodiscard]] stats statistics() const noexcept;
  [[nodiscard]] const simulated_carrier_settings& settings() const noexcept { return settings_; }

 private:
  enum class verdict : std::uint8_t {
    place,
    refuse_unusable,
    refuse_invalid,
    refuse_throttled,
    refuse_duplicate,
    refuse_draining,
    refuse_not_placed,     // fault injection: nothing placed
    refuse_indeterminate,  // fault injection: answer lost, nothing placed
    place_indeterminate,   // fault injection: answer lost, the call placed all the same
    ignore_duplicate
  };
  struct intake {
    attempt_id attempt;
    std::uint64_t key_hash = 0;
    verdict precheck = verdict::place;  // faults that depend only on the request
    std::string detail;                 // only filled for refusals
    std::int64_t contact = 0;           // for the call log
    std::string from, to;
    std::chrono::nanoseconds received{0};  // when originate() handed it over: the carrier's arrival time
  };
  struct live_call {
    attempt_id attempt;
    call_plan plan;
    std::chrono::nanoseconds started_mono{0};
    timestamp started_wall{};
    std::string call_id;
    std::uint32_t generation = 0;  // bumped by cancel(): stale heap entries are skipped
    std::optional<std::chrono::nanoseconds> canceled_at;
  };
  struct timer {
    std::chrono::nanoseconds due;
    std::uint64_t key_hash;
    std::uint32_t generation;
    bool operator>(const timer& other) const noexcept { return due > other.due; }
  };
  struct pending_event {
    enum class kind : std::uint8_t { accepted, refused, outcome } what;
    origination_refusal why = origination_refusal::not_placed;
    std::optional<std::chrono::milliseconds> retry_after;
    call_event event;  // attempt, carrier_call_id, detail used by all kinds
  };
  // A set-associative table of recently placed keys: O(1), no allocation after construction,
  // bounded memory. A key may leave early when its set fills with newer keys; in-flight keys of the
  // timed mode are also held in calls_, so only finished calls can age out.
  struct recent_entry {
    std::uint64_t key_hash = 0;
    std::uint64_t stamp = 0;  // 0: empty
    attempt_id attempt;
  };

  [[nodiscard]] static origination_refusal refusal_of(verdict v) noexcept;
  [[nodiscard]] verdict precheck(const origination_request& request, std::string& detail) const;
  [[nodiscard]] verdict admit_locked(const intake& in, std::chrono::nanoseconds now,
                                     std::optional<std::chrono::milliseconds>& retry_after,
                                     std::string& detail);
  [[nodiscard]] const recent_entry* find_recent_locked(std::uint64_t key_hash) const noexcept;
  void remember_locked(std::uint64_t key_hash, attempt_id attempt) noexcept;
  [[nodiscard]] std::string make_call_id(std::uint64_t key_hash, timestamp started) const;
  [[nodiscard]] std::chrono::nanoseconds real_delay(std::chrono::milliseconds simulated) const noexcept;
  [[nodiscard]] call_event outcome_event(const live_call& call) const;
  void deliver(pending_event& e) noexcept;
  void originate_instant(std::span<const origination_request> requests) noexcept;
  void run();

  const simulated_carrier_settings settings_;
  dialer::clock& clock_;
  carrier_events* sink_ = nullptr;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable drained_cv_;
  bool stop_ = false;
  bool poked_ = false;
  bool draining_ = false;
  std::uint64_t outstanding_ = 0;  // requests queued or in flight that have not reported yet
  std::vector<intake> incoming_;
  std::vector<attempt_id> cancels_;
  std::unordered_map<std::uint64_t, live_call> calls_;  // by key hash
  std::unordered_map<std::int64_t, std::uint64_t> key_of_attempt_;
  std::unordered_map<std::int64_t, std::string> uncertain_ids_;  // placed under a lost answer: attempt -> call id
  std::uint64_t fault_state_ = 0;                                  // splitmix64 state for fault rolls
  int call_log_fd_ = -1;                                           // settings.call_log, O_APPEND
  void log_line(const std::string& line) noexcept;
  std::priority_queue<timer, std::vector<timer>, std::greater<>> timers_;
  std::vector<recent_entry> recent_;
  std::uint64_t recent_stamp_ = 0;
  double tokens_ = 0;  // throttle bucket
  std::chrono::nanoseconds tokens_at_{0};

  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> duplicates_ignored_{0};
  std::atomic<std::uint64_t> outcomes_{0};

  std::thread worker_;  // last: starts after every other member is ready
};

}  // namespace dialer::carriers
