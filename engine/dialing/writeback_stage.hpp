#pragma once
// The write-back stage: applies each campaign's retry policy and calling window to the carrier's reports, and
// writes outcomes, hand-backs, contacts ended without an attempt and carrier call ids back in batches (one
// transaction per batch, campaigns mixed), releasing each claimed block with the write-back of its last
// contact. Nothing it holds is dropped while the database is away: a batch is retried with back-off until it
// is written (or, when the engine stops at once, given up: what it held is reconciled by the next engine).
//
// Thread: the write-back thread alone runs it (run() until the write-back queue is closed and empty).

#include <deque>
#include <memory>
#include <vector>

#include "engine/dialing/engine_context.hpp"
#include "engine/ports/attempt_journal.hpp"

namespace dialer::dialing {

class writeback_stage {
 public:
  writeback_stage(engine_context& ctx, std::function<result<std::unique_ptr<attempt_journal>>()> open);
  // Write-back thread: until ctx.writes is closed and everything in it is written (or given up).
  void run();

 private:
  // Moves items from pending_ into the batch under construction: at most write_batch of each kind.
  void fill_batch();
  [[nodiscard]] attempt_outcome outcome_for(const live_campaign& c, const carrier_report& r,
                                            timestamp now) const;

  engine_context& ctx_;
  std::function<result<std::unique_ptr<attempt_journal>>()> open_;
  std::unique_ptr<attempt_journal> journal_;
  std::deque<writeback_item> pending_;

  // The batch under construction.
  std::vector<attempt_outcome> outcomes_;
  std::vector<contact_return> returns_;
  std::vector<contact_final> finals_;
  std::vector<accepted_call> accepted_;
  std::vector<block_ref> release_;
  std::vector<std::pair<campaign_ptr, std::vector<std::int64_t>>> settled_;  // per campaign: blocks released
};

}  // namespace dialer::dialing
