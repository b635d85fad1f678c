#pragma once
// What a dialing engine reports as it works, for monitoring (`/metrics`): calls ended by outcome, contacts
// claimed, and how long carriers take to answer an origination. The gauges (calls in flight per number against
// its limit, the hopper's depth) are read from the engine when scraped (dialing_engine::gauges()).
//
// Threading: implementations are thread-safe and never block (called from the engine's stage threads and the
// carriers' callback threads).

#include <chrono>
#include <cstdint>

#include "engine/ports/carrier.hpp"

namespace dialer {

class engine_metrics {
 public:
  virtual ~engine_metrics() = default;
  virtual void call_ended(call_outcome outcome) noexcept = 0;
  virtual void contacts_claimed(std::int64_t count) noexcept = 0;
  // From handing an origination to the carrier to its first answer (accepted, refused, or the outcome itself).
  virtual void carrier_answered(std::chrono::nanoseconds latency) noexcept = 0;
};

}  // namespace dialer
