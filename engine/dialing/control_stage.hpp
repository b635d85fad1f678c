#pragma once
// The control stage: which campaigns this engine runs, and everything about them that is not a contact on its
// way through the pipeline.
//
//   discovery    every running campaign of the database in the engine's scope is taken on: its record, its
//   caller
//                IDs (registered with the scheduler), its carrier; within a control tick of the change feed
//                announcing it, within `campaign_poll` otherwise
//   lifecycle    a campaign paused, cancelled or completed elsewhere stops taking new work at once: its
//   queued
//                contacts go back, its calls finish, and it leaves the engine once nothing of it is left in
//                the pipeline (a cancelled one's waiting contacts are then cancelled)
//   completion   a campaign with nothing left to claim and nothing in the pipeline is completed when the
//   database
//                confirms that no contact waits anywhere
//   reconciling  attempts found open in recovered blocks are settled from their stored outcome or by asking
//   the
//                carrier (what it cannot tell becomes `unknown`, never redialed); calls whose origination
//                answer was lost are asked about after `indeterminate_grace`
//   call ids     the carrier ids of calls still running go to the writer within a tick
//   watchers     the status of the campaigns someone watches
//
// Thread: the control thread runs it (run()); watch() and watched() are thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "engine/dialing/campaign_status.hpp"
#include "engine/dialing/carrier_link.hpp"
#include "engine/dialing/engine_context.hpp"

namespace dialer::dialing {

class control_stage {
 public:
  control_stage(engine_context& ctx, const engine_ports& ports, carrier_source& carriers,
                carrier_table& links, engine_scope scope);

  // Control thread: until the engine stops at once, or a graceful stop has drained every campaign (or its
  // deadline passed: then it stops at once).
  void run();

  // Any thread.
  void watch(campaign_id id);
  [[nodiscard]] std::optional<campaign_watch> watched(campaign_id id) const;
  // Recovered attempts of a dead engine that may still be talking (and hold their slots). Control thread
  // (also at the shutdown it runs).
  [[nodiscard]] bool holds_recovered() const {
    for (const auto& i : unresolved_)
      if (i.holds_slot) return true;
    return false;
  }
  // Graceful stop: every campaign drains (its queued contacts go back, its calls finish), none is taken on.
  void drain_all() noexcept { draining_all_.store(true, std::memory_order_release); }
  // Read the campaigns' states at the next tick, whether or not the change feed announced anything.
  void look_now() noexcept { look_now_.store(true, std::memory_order_release); }

 private:
  void discover(bool full);
  // The caller IDs of each agent read during one discovery: a thousand campaigns of one agent taken on at once
  // read its numbers once, not a thousand times.
  using numbers_by_agent = std::unordered_map<std::int64_t, result<std::vector<phone_number>>>;
  void start_campaign(campaign_id id, numbers_by_agent& numbers_seen);
  void begin_drain(const campaign_ptr& c, drain_reason why);
  void finish(const campaign_ptr& c, campaign_state state);
  void check_campaigns();
  void reconcile(bool all);
  void settle_uncertain();
  void refresh_numbers();
  void refresh_status(bool force);
  void settle_watch(campaign_id id, result<campaign_state> how);
  [[nodiscard]] bool reconciling(const live_campaign& c) const;
  [[nodiscard]] bool in_scope(campaign_id id) const;
  [[nodiscard]] std::vector<campaign_id> watched_ids() const;

  engine_context& ctx_;
  const engine_ports& ports_;
  carrier_source& carrier_source_;
  carrier_table& links_;
  const engine_scope scope_;
  std::unique_ptr<engine_registry> registry_;
  std::unique_ptr<contact_claims> claims_;
  std::atomic<bool> draining_all_{false};
  std::atomic<bool> look_now_{false};
  std::int64_t next_account_ = 1;

  // Control thread only.
  std::vector<reconcile_inbox::item> unresolved_;
  std::map<std::int64_t, std::chrono::nanoseconds>
      failed_until_;                                             // campaigns that could not start: retry then
  std::map<std::int64_t, std::chrono::nanoseconds> next_check_;  // completion checks, backed off
  std::map<std::int64_t, std::chrono::nanoseconds> check_backoff_;
  std::map<std::int64_t, std::pair<std::chrono::nanoseconds, std::int64_t>> rate_;  // cps: since, dialed then
  std::set<std::int64_t>
      cancel_left_;  // cancelled campaigns whose waiting contacts are still to be cancelled
  std::chrono::nanoseconds last_poll_{0};
  std::chrono::nanoseconds last_beat_{0};
  std::chrono::nanoseconds last_status_{0};
  std::chrono::nanoseconds last_numbers_{0};
  std::chrono::nanoseconds last_sweep_{0};  // cancelled campaigns' orphaned contacts (cancel_orphaned)

  mutable std::mutex watch_mutex_;
  std::map<std::int64_t, campaign_watch> watches_;  // guarded by watch_mutex_
};

}  // namespace dialer::dialing
