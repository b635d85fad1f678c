#pragma once
// The claim stage: keeps the hopper filled for every campaign the engine runs, in turns, within the hopper's
// capacity and the memory budget.
//
// Each round it asks, for every dialing campaign whose queued contacts fell below half its high-water mark (4
// per slot it may use), for blocks of due contacts, all campaigns in one claim (one transaction). Of what
// comes back it ends do-not-call and invalid contacts, hands back those outside their calling window, holds a
// slot for every recovered attempt (a dead engine's call may still be talking) and queues it for
// reconciliation, and enqueues the rest into the scheduler, their data in the contact arena.
//
// Thread: the claim thread alone runs it (run() until the engine stops). It owns its database port and its
// zone caches (which outlive every contact the arena holds: the engine destroys stages after the arena is
// drained).

#include <memory>
#include <string>
#include <unordered_map>

#include "engine/dialing/engine_context.hpp"
#include "engine/ports/contact_claims.hpp"
#include "engine/rules/zones.hpp"

namespace dialer::dialing {

class claim_stage {
 public:
  claim_stage(engine_context& ctx, std::function<result<std::unique_ptr<contact_claims>>()> open);
  // Claim thread: until ctx.stopping.
  void run();

  // What one claimed contact costs in memory on its way through the pipeline, counted against the memory
  // budget: its entry, and its strings twice (the entry's, and the origination request's or the report's
  // copy). Pure.
  [[nodiscard]] static std::size_t footprint(const claimed_contact& c) noexcept;

 private:
  struct plan {
    std::vector<claim_request> requests;
    std::vector<campaign_ptr> campaigns;              // same order
    std::chrono::nanoseconds wake_at = clock::never;  // when a campaign that waits may be asked again
  };
  plan plan_round();
  void take(const campaign_ptr& c, claim_batch&& batch, std::vector<sched::contact_item>& items,
            std::vector<contact_entry>& entries);
  rules::zone_cache& zones_for(const std::string& region);

  engine_context& ctx_;
  std::function<result<std::unique_ptr<contact_claims>>()> open_;
  std::unique_ptr<contact_claims> claims_;
  std::unordered_map<std::string, std::unique_ptr<rules::zone_cache>> zones_;  // by default region
  window_checkers checkers_;
  std::size_t rotation_ = 0;  // which campaign goes first: turns between campaigns
};

}  // namespace dialer::dialing
