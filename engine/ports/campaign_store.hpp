#pragma once
// The campaign persistence port: claims of contact blocks with leases, durable attempts (group commit),
// batched outcome write-back, slot leases across processes, and crash reconciliation.
// Implemented by adapters/postgres. Threading: one instance per thread (each owns a connection);
// the campaign runner opens one per worker thread through a factory.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/campaign.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/result.hpp"
#include "engine/rules/retry_policy.hpp"
#include "engine/telephony.hpp"

namespace dialer {

enum class campaign_state : std::uint8_t { draft, running, paused, completed, cancelled };
[[nodiscard]] std::string_view to_string(campaign_state s) noexcept;
[[nodiscard]] std::optional<campaign_state> parse_campaign_state(std::string_view text) noexcept;

// A campaign's contacts have consecutive ids (one range, allocated at import), cut into blocks of `size`:
// the unit an engine claims, under a lease. Memory: a block is only a range; nothing per contact.
struct contact_blocks {
  std::int64_t first = 0;  // first contact id of the campaign (0: no contacts)
  std::int64_t last = 0;   // last contact id
  std::int32_t size = 1024;

  [[nodiscard]] bool empty() const noexcept { return first <= 0; }  // not imported yet (or no contact accepted)
  // The first contact id of the block that holds `c`: its key. Pure, thread-safe.
  [[nodiscard]] std::int64_t block_of(contact_id c) const noexcept {
    return first + (c.value() - first) / size * size;
  }
};

// Blocks of about 1/64 of the campaign, 16 to 1024 contacts: small campaigns still spread over several engines,
// large ones claim in big steps.
[[nodiscard]] std::int32_t block_size_for(std::int64_t contacts) noexcept;

struct campaign_record {
  campaign_id id;
  std::string name;
  agent_id agent;
  std::string agent_name;
  std::string agent_handoff;
  campaign_state state = campaign_state::draft;
  std::string carrier;
  campaign_spec spec;
  bool imported = false;
  int import_accepted = 0;
  std::vector<std::pair<int, std::string>> import_rejected;  // {row, reason}
  std::vector<number_id> numbers;                            // explicit caller IDs (empty: all of the agent's)
  contact_blocks blocks;                                     // its contacts' id range (set by the import)
  timestamp created_at{};
  std::optional<timestamp> started_at;
  std::optional<timestamp> finished_at;
};

struct claimed_contact {
  contact_id id;
  int row = 0;
  std::string e164;
  std::string timezone;
  std::string variables;  // JSON text
  int attempts = 0;       // attempts placed so far
  number_id sticky;       // caller ID of the first attempt, if any
  bool do_not_call = false;  // on the account's do-not-call list now (suppressed at dial time)
};

// An attempt found without its contact's write-back in a block whose previous holder lost its lease (a crash,
// an outage): the contact is not dialed again; the attempt is reconciled (asked of the carrier, or settled from
// the outcome already stored).
struct open_attempt {
  attempt_id attempt;
  contact_id contact;
  int attempt_no = 1;
  number_id number;
  std::string carrier_call_id;
  std::optional<call_event> stored;  // the outcome was written but the contact was not: settle from it
};

struct claimed_block {
  std::int64_t first = 0;  // contact_blocks::block_of key
  std::int64_t last = 0;
  bool recovered = false;  // it was claimed by an engine whose lease lapsed
};

struct claim_batch {
  std::vector<claimed_block> blocks;     // every block claimed; each must be released by write_back
  std::vector<claimed_contact> contacts;  // due contacts of those blocks, at most the requested number
  std::vector<open_attempt> open;        // recovered blocks only; their contacts are not in `contacts`
};

struct attempt_to_record {
  contact_id contact;
  int attempt_no = 1;
  number_id number;
  std::string caller_id;
  std::string callee;      // the contact's number, checked against the do-not-call list as it is recorded
  attempt_id id;           // set by record_attempts when recorded now: dial it
  bool recorded_before = false;  // set by record_attempts: this attempt exists already (reconcile, never dial)
  bool do_not_call = false;      // set by record_attempts: the callee is on the do-not-call list now (not recorded)
};

struct attempt_outcome {
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
  contact_id contact;
  int attempts = 0;                // the contact's attempt counter as claimed (a stale return changes nothing)
  timestamp next_attempt_at{};
  std::string reason;              // "outside_window", "paused", "throttled", "number_unusable", "hopper_full"
  attempt_id refused_attempt;      // a recorded attempt the carrier refused: deleted, it never happened
};

// The carrier took an origination and named the call: kept with the attempt at once (not only with its outcome),
// so that after a crash the carrier can be asked what became of it.
struct accepted_call {
  attempt_id attempt;
  std::string carrier_call_id;
};

struct contact_final {
  contact_id contact;
  int attempts = 0;  // the contact's attempt counter as claimed
  rules::contact_state state = rules::contact_state::done;  // do_not_call, invalid, cancelled
  std::string reason;
};

// One write-back transaction: the outcomes of attempts, contacts handed back without an attempt, contacts ended
// without one, carrier call ids of calls still running, and the blocks to release after all of these.
struct write_batch {
  std::span<const attempt_outcome> outcomes = {};
  std::span<const contact_return> returns = {};
  std::span<const contact_final> finals = {};
  std::span<const accepted_call> accepted = {};
  std::span<const std::int64_t> release = {};  // blocks whose every claimed contact is written back with this batch
};

struct campaign_progress {
  std::int64_t total = 0;
  std::int64_t pending = 0;      // waiting in blocks nobody holds
  std::int64_t in_progress = 0;  // not yet terminal, in blocks an engine holds (or held until its lease lapsed)
  std::int64_t done = 0;
  std::int64_t cancelled = 0;
  std::int64_t do_not_call = 0;
  std::int64_t invalid = 0;
  std::int64_t attempts = 0;
  std::int64_t answered = 0;  // attempts with outcome completed
  std::optional<timestamp> next_due;  // earliest next attempt of a pending contact in a block nobody holds
  [[nodiscard]] std::int64_t terminal() const noexcept { return done + cancelled + do_not_call + invalid; }
};

struct slot_lease {
  number_id number;
  int held = 0;    // slots this engine leases now
  int target = 0;  // its fair share
  int max = 0;     // the number's max_concurrent_calls
  // Held slots that another holder (or this engine, before it let them go) freed less than `quiet` ago: the calls
  // placed on them then still count in the number's CPS window at the carrier, so they take no call yet.
  int cooling = 0;
  std::chrono::milliseconds cooled_in{0};  // until the first of them may take calls (0: none is cooling)
};

class campaign_store {
 public:
  virtual ~campaign_store() = default;

  [[nodiscard]] virtual result<campaign_record> load_campaign(campaign_id id) = 0;
  [[nodiscard]] virtual result<campaign_state> state(campaign_id id) = 0;
  // Moves the state only from one of `from`; conflict otherwise (says the current state).
  [[nodiscard]] virtual result<campaign_state> transition(campaign_id id, std::span<const campaign_state> from,
                                                          campaign_state to) = 0;

  // Claims blocks of due contacts (FOR UPDATE SKIP LOCKED, oldest due first, including blocks whose holder's
  // lease lapsed) and returns at most `max` of their due pending contacts. Contacts of a claimed block that are
  // not returned stay pending for a later claim. Every claimed block is this engine's until write_back releases it.
  [[nodiscard]] virtual result<claim_batch> claim(campaign_id id, int max, std::chrono::milliseconds lease) = 0;
  // Renews this engine's heartbeat and the leases of `blocks` (those it tracks) that are past half their life. A
  // block this engine holds in the database but does not track (a claim whose answer was lost) is left to lapse,
  // and is then recovered like any other.
  [[nodiscard]] virtual result<void> heartbeat(campaign_id id, std::chrono::milliseconds lease,
                                               std::span<const std::int64_t> blocks) = 0;

  // Durable before return: one transaction for the whole batch. Fills in each attempt's id; an attempt whose
  // block is no longer this engine's (its lease lapsed and another engine took it) is not recorded and keeps an
  // invalid id: it must not be dialed. A callee on the account's do-not-call list now is not recorded either:
  // do_not_call is set. An attempt that exists already is not recorded again: recorded_before is set, and it is
  // to be reconciled, never dialed; except one this same engine recorded that has neither outcome nor carrier
  // call id: a retry after a lost commit acknowledgement (the engine never placed it), which counts as recorded
  // now.
  [[nodiscard]] virtual result<void> record_attempts(campaign_id id, std::span<attempt_to_record> attempts,
                                                     const std::string& carrier) = 0;
  // One transaction: attempt rows, contact rows, returns, finals, carrier call ids, then the release of the
  // batch's blocks, with their counters recomputed. Contacts in blocks this engine no longer holds are left to
  // their new holder; an attempt's outcome is written only once; a contact is written only while it is pending
  // with the attempt counter it had when claimed (a stale write changes nothing).
  [[nodiscard]] virtual result<void> write_back(campaign_id id, const write_batch& batch) = 0;

  [[nodiscard]] virtual result<campaign_progress> progress(campaign_id id) = 0;

  // Cross-process slot leases for the campaign's numbers: renews what is held, converges to a fair share
  // among live engines, never releasing a slot that is in use (in_use[i] for numbers[i]). A number that is no
  // longer active and assigned to `agent` (released, unassigned, reassigned) has no slots to give: max 0.
  // A slot remembers when its last holder let it go (released it, or its lease ran out); for `quiet` after that
  // it is reported as cooling (a number's CPS is counted per second across engines, and the engine that
  // let it go may have placed calls on it an instant before).
  [[nodiscard]] virtual result<std::vector<slot_lease>> lease_slots(agent_id agent, std::span<const number_id> numbers,
                                                                    std::span<const int> in_use,
                                                                    std::chrono::milliseconds lease,
                                                                    std::chrono::milliseconds quiet) = 0;
  // The campaign's `concurrency` across engines, leased like a number's slots: one slot per unit of the cap as
  // the database stores it (`max` when it stores none), shared among the live engines that run it (held, target
  // and max in the answer), never releasing one of the `in_use`.
  [[nodiscard]] virtual result<slot_lease> lease_campaign_slots(campaign_id id, int max, int in_use,
                                                                std::chrono::milliseconds lease) = 0;
  [[nodiscard]] virtual result<void> release_engine() = 0;  // on clean exit: slots and heartbeat row go

  // Cancel: every pending contact in a block no engine holds becomes cancelled (a held block's contacts are its
  // engine's; contacts with an attempt awaiting reconciliation stay pending). Returns how many.
  [[nodiscard]] virtual result<std::int64_t> cancel_pending(campaign_id id) = 0;
};

using campaign_store_factory = std::function<result<std::unique_ptr<campaign_store>>()>;

}  // namespace dialer
