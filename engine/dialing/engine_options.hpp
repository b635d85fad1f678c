#pragma once
// What the dialing engine is given: its tuning, the database ports it opens one per stage, the carriers it
// places calls through, and which campaigns it runs.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/campaign_record.hpp"
#include "engine/ports/attempt_journal.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/contact_claims.hpp"
#include "engine/ports/engine_metrics.hpp"
#include "engine/ports/engine_registry.hpp"
#include "engine/ports/slot_leases.hpp"
#include "engine/result.hpp"

namespace dialer {

struct engine_options {
  engine_metrics* metrics = nullptr;  // where the engine reports what it does (none: nowhere); outlives the engine
  int claim_batch = 4096;  // contacts asked for per claim of one campaign (whole blocks when there is room)
  std::size_t hopper_capacity = 20000;  // contacts waiting at most, across campaigns: in the hopper and in
                                        // the writer's backlog
  // Bytes the claimed contacts may occupy at most, wherever they are (hopper, paced, on a call, writer's
  // backlog), counted per claimed block until its release is written. The claim stage claims no more past it.
  std::size_t memory_budget = 64u << 20;
  std::size_t hopper_per_slot = 4;  // high-water mark: this many queued contacts per usable slot
  std::size_t dispatch_batch = 1024;
  std::size_t write_batch = 4096;  // outcomes (and returns, and finals) per write-back transaction, at most
  std::chrono::milliseconds lease{15000};  // contact and slot leases; renewed every `heartbeat`
  std::chrono::milliseconds heartbeat{1000};
  // How often every campaign's state is read in full (the fallback of the change feed; a change announced on
  // it is seen within a control tick).
  std::chrono::milliseconds campaign_poll{1000};
  // How often the status of each campaign (counts from the database) is refreshed for watchers.
  std::chrono::milliseconds status_poll{250};
  // An origination whose answer was lost (indeterminate) is asked of the carrier this long after, then every
  // beat.
  std::chrono::milliseconds indeterminate_grace{2000};
  // A call placed this long ago whose outcome never came (a lost status callback) is asked of the carrier
  // too, then every beat: longer than any call rings and talks (carriers cap a call at hours).
  std::chrono::milliseconds outcome_overdue{std::chrono::hours(4)};
  // A caller ID a carrier refused (number_unusable) leaves rotation for this long, then is tried again.
  std::chrono::milliseconds unusable_cooloff{std::chrono::minutes(5)};
  // Carrier lookups (reconciliation, lost answers) per control pass at most: the rest wait for the next one.
  std::size_t lookups_per_pass = 256;
  // CPS windows are kept this much wider than a second (1%): room for the jitter between a call leaving here
  // and the carrier counting it.
  std::chrono::milliseconds cps_guard{10};
  // Cadences of threads that have nothing to do. Events (a report, a decision, a free slot, a stop) wake them
  // at once; these bound how long an idle thread goes without looking again. Tests that simulate days set
  // them long.
  std::chrono::milliseconds tick{50};  // the control stage: reconciliation, call ids, the change feed
  std::chrono::milliseconds idle_poll{
      100};                                 // a campaign with nothing claimable (another engine, a retry due)
  std::chrono::milliseconds idle_wait{20};  // claim stage (hopper full), dispatcher and writer: a safety net
  micros call_minute_rate = 14'000;         // carrier minutes on managed numbers
  // A graceful stop waits this long for the calls in flight to end before it stops at once.
  std::chrono::milliseconds drain_deadline{30000};
};

// The hopper's water marks, sized from the slots a campaign may use: it is refilled when fewer than half of
// `high_water_mark` contacts wait, up to the mark. Enough to keep every slot busy across a few claims, and no
// more: contacts held here are out of other engines' reach.
[[nodiscard]] std::size_t high_water_mark(std::size_t usable_slots, const engine_options& options,
                                          std::int32_t block_size) noexcept;
// How many contacts to ask for with `queued` waiting (0: not yet): up to the high-water mark, in whole blocks
// of `block_size` when it can.
[[nodiscard]] int claim_size(std::size_t queued, std::size_t high_water, const engine_options& options,
                             std::int32_t block_size) noexcept;

// Opens the engine's database ports: each call opens a new one (a connection of its own). A stage opens the
// ports it uses once, on its own thread, and retries with back-off while the database is away.
struct engine_ports {
  std::function<result<std::unique_ptr<contact_claims>>()> claims;
  std::function<result<std::unique_ptr<attempt_journal>>()> journal;
  std::function<result<std::unique_ptr<slot_leases>>()> leases;
  std::function<result<std::unique_ptr<engine_registry>>()> registry;
};

// Which carrier places a campaign's calls. Campaigns whose account_key is the same share one carrier instance
// (one carrier account: its CPS, its throttling); the engine makes it on first use and owns it until it
// stops. Called by the engine's control thread only.
class carrier_source {
 public:
  virtual ~carrier_source() = default;
  [[nodiscard]] virtual std::string account_key(const campaign_record& campaign) const = 0;
  [[nodiscard]] virtual result<std::unique_ptr<carrier>> make(const campaign_record& campaign) = 0;
};

// The campaigns an engine runs: every running campaign of its database, or only the listed ones (`dialer run`
// runs an engine for its own campaign).
struct engine_scope {
  std::vector<campaign_id> only;  // empty: all
};

}  // namespace dialer
