#pragma once
// What an engine tells whoever watches one of its campaigns (`dialer run`, the tests): live counts while it
// runs, and, once the campaign has left the engine (completed, cancelled, paused and drained, or unable to
// start), how.

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/campaign_record.hpp"
#include "engine/dialing/number_table.hpp"
#include "engine/result.hpp"

namespace dialer {

struct run_status {
  campaign_state state = campaign_state::running;
  std::int64_t total = 0;
  std::int64_t finished = 0;  // contacts in a terminal state
  std::int64_t dialed = 0;    // attempts originated by this engine
  std::int64_t answered = 0;
  std::int64_t in_flight = 0;
  double calls_per_second = 0;
  std::optional<std::chrono::seconds> eta;
  std::optional<timestamp> waiting_until;  // nothing due before this (retries, calling window)
  std::vector<dialing::number_usage> numbers;
  std::int64_t reconciled = 0;  // attempts of a crashed engine resolved here
  std::int64_t unknown = 0;     // of which the carrier could not tell (marked unknown, not redialed)
};

// A watched campaign as the engine last saw it.
struct campaign_watch {
  run_status status;
  // Set when the campaign has left this engine: its state then (completed, cancelled, paused), or the error
  // that kept it from starting (launch_failed: no outbound number, a number of another agent...). Cleared
  // when the engine takes it on again (resumed).
  std::optional<result<campaign_state>> settled;
  bool running_here = false;  // the engine runs it now
};

}  // namespace dialer
