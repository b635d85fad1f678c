#pragma once
// The dialing engine: one process's share of the dialing of every running campaign of its database (or of the
// campaigns in its scope), through one scheduler and one set of pipeline stages.
//
//   claim thread        claim_stage        blocks of due contacts -> window, do-not-call -> scheduler's
//   hopper dispatch thread     dispatch_stage     scheduler decisions -> window again -> origination
//   (stage_queue) origination thread  origination_stage  attempt journal (group commit) -> last gate, CPS
//   pacing -> carrier carrier threads     call_table         outcomes: the slot frees at once -> write-back
//   (stage_queue) write-back thread   writeback_stage    retry policy, window -> outcomes written in batches,
//   blocks released lease thread        lease_stage        registration, block leases, number and campaign
//   slot shares control thread      control_stage      discovery, pause/resume/cancel, completion,
//   reconciliation, call ids,
//                                          watchers; and, at the end, the shutdown of all the others
//
// Every thread moves in the clock's time (a clock::participant) and waits only through the clock port, so a
// whole engine runs under a manual clock in tests. Each stage opens its own database ports (connections); a
// database outage stops dispatching (slot leases lapse, capacities drop to zero), every write is retried with
// back-off, and nothing held in memory is dropped; the engine resumes when the database is back.
//
// Several engines on one database are one service: claims, attempt records and slot leases live in the
// database.

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "engine/dialing/campaign_status.hpp"
#include "engine/dialing/engine_options.hpp"
#include "engine/ports/clock.hpp"

namespace dialer {

namespace dialing {
struct engine_context;
class wake_event;
class carrier_table;
class claim_stage;
class dispatch_stage;
class origination_stage;
class writeback_stage;
class lease_stage;
class control_stage;
}  // namespace dialing

enum class stop_mode : std::uint8_t {
  drain,  // queued contacts go back, calls in flight finish (up to engine_options::drain_deadline), leases go
  now,    // at once: calls in flight are left open, their attempts reconciled by the next engine
};

class dialing_engine {
 public:
  // The ports, the carrier source and the clock outlive the engine.
  dialing_engine(engine_ports ports, carrier_source& carriers, const clock& clk, engine_options options = {},
                 engine_scope scope = {});
  // Stops at once if still running, and joins.
  ~dialing_engine();
  dialing_engine(const dialing_engine&) = delete;
  dialing_engine& operator=(const dialing_engine&) = delete;

  // Starts every thread. Call once.
  void start();

  // Thread-safe. Keeps the campaign's status (and how it left the engine) for watched().
  void watch(campaign_id id);
  [[nodiscard]] std::optional<campaign_watch> watched(campaign_id id) const;
  // Thread-safe: look at the campaigns' states now (after a local pause, resume or cancel).
  void wake();

  // What went wrong lately (a database call that failed and is retried, a campaign that cannot start), after
  // the entry numbered `seq` (0: from the first kept). Thread-safe.
  struct stage_error {
    std::uint64_t seq = 0;
    std::string stage;
    error what;
  };
  [[nodiscard]] std::vector<stage_error> errors_since(std::uint64_t seq) const;

  // Monitoring, thread-safe: each number's calls in flight (this engine's) against its limit, and the hopper.
  struct gauges_now {
    std::size_t hopper = 0;
    std::vector<dialing::number_usage> numbers;
  };
  [[nodiscard]] gauges_now gauges() const;
  // Thread-safe: the engine is at capacity (its last write-back carried at least a quarter of write_batch, so
  // outcomes pile up faster than it writes them). Work that can wait (webhook delivery) yields to it meanwhile.
  [[nodiscard]] bool saturated() const;

  // Thread-safe. A second call may turn a drain into a stop now.
  void request_stop(stop_mode mode);
  // The shutdown has finished: every stage thread has ended, and join() returns as soon as the control thread
  // has left the clock.
  [[nodiscard]] bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  // Waits until the engine has stopped (after request_stop). Not through the clock: under a manual clock,
  // drive time until stopped() before calling it (the shutdown runs in the clock's time, on the control thread).
  void join();

 private:
  void control_thread();
  // The control thread's join of a stage thread: it waits in the clock's time until the thread's body has ended
  // (`ended` set; so that a manual clock moves for the threads still at work, and stands still while the shutdown
  // itself works), then joins it.
  void join_stage(std::thread& t, dialing::wake_event& ended);

  engine_ports ports_;
  carrier_source& carriers_;
  std::unique_ptr<dialing::carrier_table> links_;  // before ctx_: the campaigns in ctx_ point at its links
  std::unique_ptr<dialing::engine_context> ctx_;
  std::unique_ptr<dialing::claim_stage> claim_;
  std::unique_ptr<dialing::dispatch_stage> dispatch_;
  std::unique_ptr<dialing::origination_stage> origination_;
  std::unique_ptr<dialing::writeback_stage> writeback_;
  std::unique_ptr<dialing::lease_stage> lease_;
  std::unique_ptr<dialing::control_stage> control_;
  std::thread claim_thread_, dispatch_thread_, origination_thread_, writeback_thread_, lease_thread_,
      control_thread_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace dialer
