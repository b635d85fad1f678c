#pragma once
// The caller IDs this engine dials on, across all its campaigns, and what it may use of each: the slots it
// leases (its share among the engines that use the number), the CPS share that goes with them, and the slots
// taken by calls of a dead engine that may still be talking. The scheduler's limit for a number is always
// usable - recovered, set here and nowhere else.
//
// Thread-safety: one mutex. The control stage adds and refreshes numbers, the lease stage applies leases, the
// claim and control stages hold and release recovered calls, the origination stage reads usability and CPS
// shares. A call takes the lock once; none of them does I/O.

#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/ports/slot_leases.hpp"
#include "engine/telephony.hpp"
#include "scheduler/scheduler.hpp"

namespace dialer::dialing {

struct number_usage {
  number_id id;
  std::string e164;
  std::int32_t max_concurrent_calls = 0;
  std::int32_t in_flight = 0;
  std::int32_t peak_in_flight = 0;
  std::int32_t leased = 0;  // slots this engine holds
  std::uint64_t calls = 0;
};

class number_table {
 public:
  explicit number_table(sched::scheduler& s) : scheduler_(s) {}

  // A campaign starts using `n` (control stage): registered with the scheduler on first use (with no slots
  // until the lease stage leases some), its agent kept current. `account`: the carrier account of the
  // campaign that registers it first (the scheduler paces a number through one account).
  [[nodiscard]] result<void> use(const phone_number& n, carrier_account_id account);
  // A campaign stops using `n` (control stage). A number nobody uses is leased with `wanted = false` until
  // its calls end, then left.
  void unuse(number_id n);
  // The number's agent as the database says now (control stage): the scheduler moves it, so that the old
  // agent's campaigns stop using it at once and the new agent's may.
  void refresh(const phone_number& n);

  // What the lease stage asks for: every number in use or still holding slots, with the slots it must keep
  // (calls in flight and recovered calls, or the scheduler's current limit when more: a share that shrinks is
  // released in two renewals, the first lowering the limit, the next reading what is in flight under it).
  [[nodiscard]] std::vector<number_lease_request> lease_requests(const sched::scheduler_stats& stats);
  // Applies the answers of lease_numbers (same order as lease_requests' answer). Returns the earliest time a
  // cooling slot becomes usable (nullopt: none cools).
  std::optional<std::chrono::milliseconds> apply(std::span<const slot_lease> leases);
  // The lease is lost (the database is away past half a lease): nothing is usable until the next renewal.
  void drop_capacity();

  // A recovered attempt on `n` starts (+1) or stops (-1) holding a slot. Returns false when the engine does
  // not dial on `n` (nothing of its share to hold).
  bool hold_recovered(number_id n, int delta);

  // A carrier refused `n` as a caller ID: out of rotation for `cooloff`, then back (restore_rotation). Any
  // thread.
  void out_of_rotation(number_id n);
  // Puts back the numbers whose cool-off has passed by `now` (control stage).
  void restore_rotation(std::chrono::nanoseconds now, std::chrono::nanoseconds cooloff);

  [[nodiscard]] bool usable(number_id n) const;
  // Usable, and assigned to `agent` as this engine last read it (a number moved to another agent of a
  // campaign this engine also runs is usable again, but not for the old agent's calls still queued).
  [[nodiscard]] bool usable_for(number_id n, agent_id agent) const;
  [[nodiscard]] double cps(number_id n) const;
  [[nodiscard]] int usable_slots(std::span<const number_id> numbers) const;  // sum over the listed numbers
  [[nodiscard]] std::optional<phone_number> info(number_id n) const;
  [[nodiscard]] std::vector<number_usage> usage(std::span<const number_id> numbers,
                                                const sched::scheduler_stats& stats) const;
  // Every number the engine dials on now.
  [[nodiscard]] std::vector<number_id> known() const;

 private:
  struct entry {
    phone_number info;
    int users = 0;      // live campaigns that use it
    int usable = 0;     // slots this engine may dial on (held, not cooling, within the share)
    int held = 0;       // slots this engine leases
    double cps = 0;     // this engine's share of the number's max_cps
    int recovered = 0;  // dead engines' calls that may still be talking on it
  };
  void apply_locked(number_id id, entry& e);

  sched::scheduler& scheduler_;
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, entry> numbers_;
  std::unordered_map<std::int64_t, std::optional<std::chrono::nanoseconds>>
      out_of_rotation_;  // -> since (set later)
};

}  // namespace dialer::dialing
