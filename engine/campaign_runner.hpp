#pragma once
// The Engine: runs one campaign from PostgreSQL to the carrier and back.
//
//   feeder thread      claims blocks of due contacts (with leases) when the hopper falls below its low-water
//                      mark, drops do-not-call ones, checks the calling window, and bulk-enqueues the rest into
//                      the scheduler; attempts found open in recovered blocks go to the control thread
//   dispatcher thread  takes decisions in batches as the scheduler paces them, re-checks the window, and
//                      queues them for the originator (it never waits on the database)
//   originator thread  records every queued decision durably in one transaction (group commit), then passes
//                      each through the last gate as it leaves (still dispatching, window, live slot lease,
//                      slots on the number, CPS pacing per caller ID and account) and hands it to the carrier
//   carrier threads    report outcomes: the slot frees at once, the outcome queues for the writer
//   writer thread      applies the retry policy and the window, writes outcomes back in batches, and releases
//                      each block with the write-back of its last contact (block_tracker)
//   control (run())    heartbeats (block and slot leases), lifecycle (pause/resume/cancel from any process),
//                      carrier call ids of calls still running, reconciliation of recovered attempts,
//                      completion, progress
//
// Every thread, the control thread included, is a clock::participant and waits only through the clock port.
// Each worker thread owns its own campaign_store (its own database connection). A database outage stops
// dispatching (slot leases lapse, capacities drop to zero), every write is retried with backoff, and nothing
// held in memory is dropped; the run resumes when the database is back.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/campaign.hpp"
#include "engine/ports/campaign_store.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"
#include "engine/telephony.hpp"

namespace dialer {

struct runner_options {
  int claim_batch = 4096;  // contacts asked for per claim (whole blocks when the hopper has room for them)
  std::size_t hopper_capacity = 20000;  // contacts waiting at most: in the hopper and in the writer's backlog
  // Bytes the claimed contacts may occupy at most, wherever they are (hopper, paced, on a call, writer's backlog),
  // counted per claimed block until its release is written. The feeder claims no more past it.
  std::size_t memory_budget = 64u << 20;
  std::size_t hopper_per_slot = 4;      // high-water mark: this many queued contacts per usable slot
  std::size_t dispatch_batch = 1024;
  std::size_t write_batch = 4096;  // outcomes (and returns, and finals) per write-back transaction, at most
  std::chrono::milliseconds lease{15000};      // contact and slot leases; renewed every `heartbeat`
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds state_poll{250};   // how soon a pause or cancel from another process is seen
  // An origination whose answer was lost (indeterminate) is asked of the carrier this long after, then every beat.
  std::chrono::milliseconds indeterminate_grace{2000};
  // CPS windows are kept this much wider than a second (1%): room for the jitter between a call leaving here and
  // the carrier counting it.
  std::chrono::milliseconds cps_guard{10};
  // Cadences of threads that have nothing to do. Events (a report, a decision, a free slot, a stop) wake them at
  // once; these bound how long an idle thread goes without looking again. Tests that simulate days set them long.
  std::chrono::milliseconds tick{50};        // the control loop: heartbeats, polls, carrier call ids
  std::chrono::milliseconds idle_poll{100};  // the feeder, when no block is claimable (another engine, a retry due)
  std::chrono::milliseconds idle_wait{20};   // the feeder (hopper full), dispatcher and writer: a safety net
  micros call_minute_rate = 14'000;            // carrier minutes on managed numbers
  bool return_on_pause = false;  // false: a pause by another process waits here for resume (a local pause request always returns)
};

// The hopper's water marks, sized from the slots this process holds: it is refilled when fewer than half of
// `high_water_mark` contacts wait, up to the mark. Enough to keep every slot busy across a few claims, and no more:
// contacts held here are out of other engines' reach.
[[nodiscard]] std::size_t high_water_mark(std::size_t usable_slots, const runner_options& options,
                                          std::int32_t block_size) noexcept;
// How many contacts the feeder asks for with `queued` waiting in the hopper (0: not yet): up to the high-water
// mark, in whole blocks of `block_size` when it can.
[[nodiscard]] int claim_size(std::size_t queued, std::size_t high_water, const runner_options& options,
                             std::int32_t block_size) noexcept;

struct number_usage {
  number_id id;
  std::string e164;
  std::int32_t max_concurrent_calls = 0;
  std::int32_t in_flight = 0;
  std::int32_t peak_in_flight = 0;
  std::int32_t leased = 0;  // slots this process holds
  std::uint64_t calls = 0;
};

struct run_status {
  campaign_state state = campaign_state::running;
  std::int64_t total = 0;
  std::int64_t finished = 0;   // contacts in a terminal state
  std::int64_t dialed = 0;     // attempts originated by this process
  std::int64_t answered = 0;
  std::int64_t in_flight = 0;
  double calls_per_second = 0;
  std::optional<std::chrono::seconds> eta;
  std::optional<timestamp> waiting_until;  // nothing due before this (retries, calling window)
  std::vector<number_usage> numbers;
  std::int64_t reconciled = 0;  // attempts of a crashed run resolved at start
  std::int64_t unknown = 0;     // of which the carrier could not tell (marked unknown, not redialed)
};

class campaign_runner {
 public:
  // `numbers`: the caller IDs the campaign uses (already checked to belong to its agent; the scheduler
  // checks again). The carrier and clock outlive the runner.
  campaign_runner(campaign_record campaign, std::vector<phone_number> numbers, carrier& carrier, const clock& clk,
                  campaign_store_factory stores, runner_options options = {});
  ~campaign_runner();
  campaign_runner(const campaign_runner&) = delete;
  campaign_runner& operator=(const campaign_runner&) = delete;

  // Runs until the campaign completes, is cancelled, or is paused (here or by another process).
  // errc::launch_failed when the campaign cannot start (no outbound number, foreign number).
  [[nodiscard]] result<run_status> run(const std::function<void(const run_status&)>& on_progress = {});

  // Thread-safe, async-signal-safe: stop originating, let in-flight calls finish, save, return.
  void request_pause() noexcept { pause_requested_.store(true, std::memory_order_release); }
  // Thread-safe, async-signal-safe: return at once; attempts in flight are reconciled on the next run.
  void request_stop_now() noexcept { stop_now_.store(true, std::memory_order_release); }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::atomic<bool> pause_requested_{false};
  std::atomic<bool> stop_now_{false};
};

}  // namespace dialer
