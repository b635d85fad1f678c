#pragma once
// The dispatch stage: takes the scheduler's decisions in batches as fast as it paces them, checks each
// contact's calling window again (a contact can wait in the hopper across the window's edge) and that its
// campaign still dials, and hands the batch to the origination stage. It never waits on the database:
// recording in the same thread left the CPS buckets (burst 1) idle during every commit.
//
// Thread: the dispatch thread alone runs it (run() until the engine stops).

#include <unordered_map>

#include "engine/dialing/engine_context.hpp"

namespace dialer::dialing {

class dispatch_stage {
 public:
  explicit dispatch_stage(engine_context& ctx) : ctx_(ctx) {}
  // Dispatch thread: until ctx.stopping.
  void run();

 private:
  const std::string& caller_id(number_id n);

  engine_context& ctx_;
  window_checkers checkers_;
  std::unordered_map<std::int64_t, std::string>
      caller_ids_;  // number -> E.164 (a number's E.164 never changes)
};

}  // namespace dialer::dialing
