#pragma once
// The contact-claims port: blocks of a campaign's due contacts, claimed by one engine under a lease, renewed
// while the engine works on them, and the campaign's progress as the blocks' counters say. Released by the
// attempt journal's write-back (the write of a block's last contact releases it).
//
// Implemented by adapters/postgres (pg_contact_claims) and, for tests, in memory. Threading: one instance per
// thread (each owns its connection); the engine opens one for its claim stage, one for its lease stage and
// one for its control stage.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/campaign_record.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/result.hpp"

namespace dialer {

struct claimed_contact {
  contact_id id;
  int row = 0;
  std::string e164;
  std::string timezone;
  std::string variables;     // JSON text
  int attempts = 0;          // attempts placed so far
  number_id sticky;          // caller ID of the first attempt, if any
  bool do_not_call = false;  // on the account's do-not-call list now (suppressed at dial time)
};

// An attempt found without its contact's write-back in a block whose previous holder lost its lease (a crash,
// an outage): the contact is not dialed again; the attempt is reconciled (asked of the carrier, or settled
// from the outcome already stored).
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

struct claim_request {
  campaign_id campaign;
  // Contacts at most (whole blocks: the first block claimed may bring more than fit, it is not taken).
  int max = 0;
};

struct claim_batch {
  campaign_id campaign;
  std::vector<claimed_block> blocks;      // every block claimed; each must be released by a write-back
  std::vector<claimed_contact> contacts;  // due contacts of those blocks, at most the requested number
  std::vector<open_attempt> open;         // recovered blocks only; their contacts are not in `contacts`
  // When nothing was claimable: the earliest time a block nobody holds has a contact due (nullopt: none
  // left).
  std::optional<timestamp> next_due;
};

// The blocks of one campaign an engine holds (contact_blocks::block_of keys).
struct held_blocks {
  campaign_id campaign;
  std::span<const std::int64_t> blocks;
};

class contact_claims {
 public:
  virtual ~contact_claims() = default;

  // Claims, for each request, blocks of due contacts (FOR UPDATE SKIP LOCKED, oldest due first, including
  // blocks whose holder's lease lapsed) and returns at most `max` of their due pending contacts, one answer
  // per request in the same order; one transaction for all of them. Contacts of a claimed block that are not
  // returned stay pending for a later claim. Every claimed block is this engine's until a write-back releases
  // it.
  [[nodiscard]] virtual result<std::vector<claim_batch>> claim(std::span<const claim_request> requests,
                                                               std::chrono::milliseconds lease) = 0;
  // Renews the leases of the listed blocks (those the engine tracks) that are past half their life. A block
  // this engine holds in the database but does not track (a claim whose answer was lost) is left to lapse,
  // and is then recovered like any other.
  [[nodiscard]] virtual result<void> renew(std::span<const held_blocks> held,
                                           std::chrono::milliseconds lease) = 0;

  // From the blocks' counters (cheap: a row per block, not per contact).
  [[nodiscard]] virtual result<campaign_progress> progress(campaign_id id) = 0;

  // Cancel: every pending contact in a block no live engine holds becomes cancelled (a held block's contacts
  // are its engine's), and so does one with an attempt awaiting reconciliation in a dead engine's block (that
  // attempt settled as it stands: its stored outcome, else unknown). Returns how many.
  [[nodiscard]] virtual result<std::int64_t> cancel_pending(campaign_id id) = 0;
  // cancel_pending for every campaign cancelled lately (the last hour) that still has waiting contacts in
  // blocks no live engine holds: the blocks of an engine that died, or was cut off, around the cancel, whose
  // lease lapsed since. Nobody else would end them: no engine runs a cancelled campaign. Any engine may call
  // it; returns how many contacts it cancelled.
  [[nodiscard]] virtual result<std::int64_t> cancel_orphaned() = 0;
};

}  // namespace dialer
