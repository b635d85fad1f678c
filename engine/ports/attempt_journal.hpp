#pragma once
// The attempt-journal port: every call attempt is recorded durably before the carrier hears of it (group
// commit), and outcomes, hand-backs and final states are written back in batches, with the release of the
// contact blocks whose last contact they settle. Batches mix campaigns: one engine runs many, and one
// transaction serves them all.
//
// Implemented by adapters/postgres (pg_attempt_journal) and, for tests, in memory. Threading: one instance
// per thread (each owns its connection); the engine opens one for its origination stage and one for its
// write-back stage.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "engine/ids.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/result.hpp"
#include "engine/rules/retry_policy.hpp"
#include "engine/telephony.hpp"

namespace dialer {

struct attempt_to_record {
  campaign_id campaign;
  contact_id contact;
  int attempt_no = 1;
  number_id number;
  std::string caller_id;
  std::string callee;   // the contact's number, checked against the do-not-call list as it is recorded
  std::string carrier;  // the carrier's name, for the record
  attempt_id id;        // set by record(): recorded now, dial it
  bool recorded_before = false;  // set by record(): this attempt exists already (reconcile, never dial)
  bool do_not_call = false;      // set by record(): the callee is on the do-not-call list now (not recorded)
};

struct attempt_outcome {
  campaign_id campaign;
  attempt_id attempt;
  contact_id contact;
  int attempt_no = 1;
  number_id number;
  call_event event;
  micros cost = 0;
  // The contact after this attempt (from the retry policy and the calling window).
  rules::contact_state next_state = rules::contact_state::done;
  std::optional<timestamp> next_attempt_at;
  std::string pending_reason;  // when next_state is pending
};

// A contact handed back without an attempt (outside its window, paused, cancelled, carrier refusal).
struct contact_return {
  campaign_id campaign;
  contact_id contact;
  int attempts = 0;  // the contact's attempt counter as claimed (a stale return changes nothing)
  timestamp next_attempt_at{};
  std::string reason;  // "outside_window", "paused", "throttled", "number_unusable", "engine_stopped"...
  attempt_id refused_attempt;  // a recorded attempt the carrier refused: deleted, it never happened
};

// The carrier took an origination and named the call: kept with the attempt at once (not only with its
// outcome), so that after a crash the carrier can be asked what became of it.
struct accepted_call {
  attempt_id attempt;
  std::string carrier_call_id;
};

// A contact ended without an attempt: do_not_call, invalid, cancelled.
struct contact_final {
  campaign_id campaign;
  contact_id contact;
  int attempts = 0;  // the contact's attempt counter as claimed
  rules::contact_state state = rules::contact_state::done;
  std::string reason;
};

struct block_ref {
  campaign_id campaign;
  std::int64_t first = 0;  // contact_blocks::block_of key
  friend bool operator==(const block_ref&, const block_ref&) = default;
};

// One write-back transaction: outcomes, hand-backs, contacts ended without an attempt, carrier call ids of
// calls still running, and the blocks to release after all of these (each one's contacts are then all
// written).
struct write_batch {
  std::span<const attempt_outcome> outcomes = {};
  std::span<const contact_return> returns = {};
  std::span<const contact_final> finals = {};
  std::span<const accepted_call> accepted = {};
  std::span<const block_ref> release = {};
  [[nodiscard]] bool empty() const noexcept {
    return outcomes.empty() && returns.empty() && finals.empty() && accepted.empty() && release.empty();
  }
};

class attempt_journal {
 public:
  virtual ~attempt_journal() = default;

  // Durable before return: one transaction for the whole batch. Fills in each attempt's id. Not recorded (id
  // left invalid: it must not be dialed): an attempt of a campaign that is no longer running (a committed
  // pause or cancel stops every engine, even one that has not seen it yet); of a block that is no longer this
  // engine's (its lease lapsed and another engine took it); on a caller ID this engine holds no live slot
  // lease on; to a callee on the account's do-not-call list now (do_not_call set). An attempt that exists
  // already is not recorded again: recorded_before is set, and it is to be reconciled, never dialed; except
  // one this same engine recorded that has neither outcome nor carrier call id: a retry after a lost commit
  // acknowledgement (the engine never placed it), which counts as recorded now.
  [[nodiscard]] virtual result<void> record(std::span<attempt_to_record> attempts) = 0;

  // One transaction: attempt rows, contact rows, returns, finals, carrier call ids, then the release of the
  // batch's blocks, with their counters recomputed. Contacts in blocks this engine no longer holds are left
  // to their new holder; an attempt's outcome is written only once; a contact is written only while it is
  // pending with the attempt counter it had when claimed (a stale write changes nothing).
  [[nodiscard]] virtual result<void> write_back(const write_batch& batch) = 0;
};

}  // namespace dialer
