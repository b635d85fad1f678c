#pragma once
// The origination stage: records every decision queued since its last pass in one transaction (group commit,
// the attempt journal), then lets each recorded call through the last gate at the moment it leaves, and hands
// it to its campaign's carrier.
//
// The last gate, just before carrier::originate: the engine still runs and the campaign still dials (no
// pause, cancel or stop since), the callee's calling window is open, the engine renewed its slot leases
// within half a lease, it still has slots on the number (a number released, unassigned or reassigned has none
// from the next renewal), and the call is spaced from this engine's earlier originations of the same caller
// ID (and of the same carrier account) so that no one-second window holds more than the CPS cap (with a 1%
// guard for the jitter between leaving here and the carrier counting it). A decision that waited (a database
// stall, a slow commit) is thereby checked again, and a backlog leaves at the paced rate, not in a burst. A
// call that fails the gate is handed back: its attempt row deleted, its slot freed. The queue is bounded by
// the slots: a queued or paced decision holds one.
//
// Thread: the origination thread alone runs it (run() until the dispatch stage is done and nothing is left).

#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/dialing/carrier_link.hpp"
#include "engine/dialing/engine_context.hpp"
#include "engine/ports/attempt_journal.hpp"

namespace dialer::dialing {

// Originations of one caller ID (or one carrier account) this engine placed lately. Not thread-safe.
class cps_spacing {
 public:
  // The earliest time the next origination may leave at `cps` per second (`now` when it may leave now). The
  // window is widened by `guard`: the carrier counts arrivals, which reach it a little later or sooner than
  // they leave here (a thread wake-up, the network), and two of those offsets must never add up to an extra
  // call inside its second.
  [[nodiscard]] std::chrono::nanoseconds next_allowed(double cps, std::chrono::nanoseconds now,
                                                      std::chrono::nanoseconds guard) const;
  void note(std::chrono::nanoseconds at, double cps);
  // The originations let through at `noted` (or later) really left at `left`. Idempotent.
  void restamp(std::chrono::nanoseconds noted, std::chrono::nanoseconds left);

 private:
  std::deque<std::chrono::nanoseconds> sent_;
};

class origination_stage {
 public:
  origination_stage(engine_context& ctx, std::function<result<std::unique_ptr<attempt_journal>>()> open);
  // Origination thread: until the dials queue is closed and everything queued or paced has left or gone back.
  void run();

 private:
  struct paced_call {
    dial_item item;
    attempt_id attempt;
  };
  void record(std::deque<std::vector<dial_item>>& queued);
  [[nodiscard]] const char* gate(const paced_call& c, std::chrono::nanoseconds now, timestamp wall);
  void hand_back(paced_call& c, const char* why, timestamp now);

  engine_context& ctx_;
  std::function<result<std::unique_ptr<attempt_journal>>()> open_;
  std::unique_ptr<attempt_journal> journal_;
  window_checkers checkers_;
  std::unordered_map<std::int64_t, std::deque<paced_call>> paced_;  // by caller ID, in decision order
  std::size_t paced_count_ = 0;
  std::unordered_map<std::int64_t, cps_spacing> by_number_;
  std::unordered_map<std::string, cps_spacing> by_account_;  // by account identity (or link key)
  std::vector<attempt_to_record> attempts_;
  std::vector<dial_item> taken_;
};

}  // namespace dialer::dialing
