#pragma once
// The calls this engine has placed and not yet settled, and the sink every carrier reports them to.
//
// The origination stage adds a call just before its carrier hears of it. A carrier thread's report takes it
// out: the slot frees at once (the call_slot), and the report goes to the write-back stage. A call whose
// origination answer was lost (indeterminate) stays, holding its slot, until the carrier reports it or the
// control stage's lookup settles it.
//
// Thread-safety: one mutex, never held while calling out (a carrier in instant mode reports on the
// originating thread, inside originate()). Carrier callbacks are noexcept and never block for long (a push
// onto the write-back queue, which admission control keeps below its bound).

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/ports/engine_metrics.hpp"
#include "engine/dialing/number_table.hpp"
#include "engine/dialing/pipeline_items.hpp"
#include "engine/dialing/stage_queue.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"
#include "scheduler/scheduler.hpp"

namespace dialer::dialing {

class carrier_link;

struct placed_call {
  campaign_ptr campaign;
  call_slot slot;
  contact_id contact;
  number_id number;
  int attempt_no = 1;
  const rules::zone_set* zones = nullptr;
};

class call_table final : public carrier_events {
 public:
  call_table(const clock& clk, sched::scheduler& s, number_table& numbers,
             stage_queue<writeback_item>& writes, engine_metrics* metrics = nullptr)
      : clock_(clk), scheduler_(s), numbers_(numbers), writes_(writes), metrics_(metrics) {}

  // Origination stage: the call is about to leave.
  void add(attempt_id attempt, placed_call call);

  // ---- carrier_events: carrier threads ----
  void on_accepted(attempt_id attempt, std::string_view carrier_call_id) noexcept override;
  void on_refused(attempt_id attempt, origination_refusal why,
                  std::optional<std::chrono::milliseconds> retry_after,
                  std::string_view detail) noexcept override;
  void on_outcome(const call_event& event) noexcept override;

  // ---- control stage ----
  // The carrier ids of calls in flight not yet handed to the writer (written within a control tick, so that
  // after a crash the next engine can ask the carrier about them).
  [[nodiscard]] std::vector<accepted_call> unkept_ids();
  struct uncertain {
    attempt_id attempt;
    std::string carrier_call_id;
    carrier_link* carrier = nullptr;
  };
  // Calls whose origination answer was lost `grace` ago or more, and calls placed `overdue` ago or more whose
  // outcome never came (a lost status callback): both are asked of the carrier.
  [[nodiscard]] std::vector<uncertain> uncertain_since(std::chrono::nanoseconds grace,
                                                       std::chrono::nanoseconds overdue);
  // The carrier says there is no such call: it was never placed; the slot goes back and the contact is
  // retried.
  void never_placed(attempt_id attempt, std::string_view detail);

  [[nodiscard]] std::size_t size() const;
  // Stopping at once: every call still here is dropped (slots back to the scheduler; the attempts stay open
  // in the database, for the next engine to reconcile). Returns how many.
  std::size_t abandon();

 private:
  struct live {
    placed_call call;
    std::string carrier_call_id;
    bool kept = false;
    std::optional<std::chrono::nanoseconds> uncertain_since;
    std::chrono::nanoseconds placed_at{0};
    bool answered = false;  // the carrier has answered the origination (its latency is counted)
  };
  std::optional<placed_call> take(attempt_id attempt);
  // The carrier's first answer about this call: its latency to the metrics, once. Under mutex_.
  void answered_locked(live& call) noexcept;
  void report(placed_call call, carrier_report r);

  const clock& clock_;
  sched::scheduler& scheduler_;
  number_table& numbers_;
  stage_queue<writeback_item>& writes_;
  engine_metrics* metrics_;
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, live> calls_;
};

}  // namespace dialer::dialing
