#pragma once
// What travels between the pipeline's stages: a decision on its way to the carrier (dispatch -> origination),
// and what is left to write back (carrier sink, claim, dispatch, origination and control stages ->
// write-back).

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "engine/dialing/contact_arena.hpp"
#include "engine/dialing/live_campaign.hpp"
#include "engine/ports/attempt_journal.hpp"
#include "engine/ports/carrier.hpp"

namespace dialer::dialing {

// A decision the dispatcher took: the contact, the caller ID, and the slot it holds until the call ends or
// the decision is handed back.
struct dial_item {
  contact_entry entry;
  number_id number;
  std::string caller_id;
  call_slot slot;
  timestamp decided_at{};
};

// The carrier's answer about one attempt: its outcome, or a refusal to place it.
struct carrier_report {
  enum class kind : std::uint8_t { outcome, refused } what = kind::outcome;
  attempt_id attempt;
  contact_id contact;
  number_id number;
  int attempt_no = 1;
  const rules::zone_set* zones = nullptr;
  call_event event;
  origination_refusal refusal = origination_refusal::not_placed;
  std::optional<std::chrono::milliseconds> retry_after;
  std::string detail;
};

// A claimed block that brought nothing to dial (every contact of it waits or is being reconciled elsewhere):
// it is released at once.
struct empty_block {
  std::int64_t first = 0;
};

// One unit of a campaign's claimed contacts leaving the pipeline (a report, a hand-back, an end without an
// attempt), a claimed block with no unit to release, or a carrier call id to keep (not a unit: `campaign` may
// be empty).
struct writeback_item {
  campaign_ptr campaign;
  std::variant<carrier_report, contact_return, contact_final, accepted_call, empty_block> what;
};

}  // namespace dialer::dialing
