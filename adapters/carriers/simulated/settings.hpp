#pragma once
// Settings of the simulated carrier: outcome rates, ring and talk time distributions, time
// acceleration, instant mode and fault injection. Plain data; parse_simulated_carrier_settings()
// reads them from the JSON object under a campaign's `carrier_settings:` (YAML is converted first).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/result.hpp"

namespace dialer::carriers {

enum class ring_distribution : std::uint8_t {
  uniform,  // mean +- spread
  normal,   // mean with standard deviation `spread`, clamped to [0, mean + 3 spread]
};

enum class talk_distribution : std::uint8_t {
  exponential,  // memoryless: many short calls, a long tail
  lognormal,    // closer to measured call-centre talk times; shape set by talk_sigma
};

struct simulated_carrier_settings {
  // Outcomes depend only on (seed, idempotency key): the same seed replays the same campaign.
  std::uint64_t seed = 1;

  // Probabilities of each outcome; the remainder (1 - sum) is answered and completed. Default: 0.55 answered.
  double busy_rate = 0.10;
  double no_answer_rate = 0.20;
  double failed_rate = 0.05;
  double voicemail_rate = 0.10;

  // Ring time of calls that get answered (by a person or a machine).
  ring_distribution ring = ring_distribution::uniform;
  std::chrono::milliseconds ring_mean{8'000};
  std::chrono::milliseconds ring_spread{4'000};
  // A call nobody answers rings this long, then ends as no_answer (Twilio's `Timeout`). Also caps ring time.
  std::chrono::milliseconds no_answer_after{30'000};
  // Busy and failed calls end after about this long (uniform in [0.5x, 1.5x]).
  std::chrono::milliseconds busy_after{3'000};

  // Talk time from answer to hang-up; voicemail_mean is the length of a message left on a machine.
  talk_distribution talk = talk_distribution::lognormal;
  std::chrono::milliseconds talk_mean{45'000};
  double talk_sigma = 0.8;  // lognormal shape; ignored for exponential
  std::chrono::milliseconds talk_max{600'000};
  std::chrono::milliseconds voicemail_mean{20'000};

  // 60 means a 60 s call takes 1 s of real time. Reported durations and timestamps stay simulated.
  double time_acceleration = 1.0;
  // Outcomes are delivered synchronously on the originate() caller's thread, with no timer or worker.
  bool instant = false;

  // Fault injection.
  std::vector<std::string> unverified_caller_ids;         // refused as number_unusable
  std::vector<std::string> invalid_destination_prefixes;  // E.164 prefixes refused as invalid_destination
  double throttle_cps = 0.0;  // > 0: refuse as throttled (with retry_after) above this many originations/s
  // Fractions of originations (timed mode only) refused not_placed ("503 before the request was processed"),
  // and answered indeterminate (the answer was lost): of those, the half chosen by the idempotency key are
  // placed anyway (the call runs and reports its outcome; lookup() finds it), the other half are not
  // (lookup() says so).
  double not_placed_rate = 0.0;
  double indeterminate_rate = 0.0;

  // Reported by account_cps(); 0 means "same as throttle_cps" (unlimited_cps when throttling is off).
  double account_cps = 0.0;

  // The carrier's own record (timed mode): one JSON line per call placed and per call ended, appended to this
  // file with one write each (several processes may share it; a killed process keeps what it wrote). Tests
  // check the invariants from it, as from a real carrier's call log: times are CLOCK_MONOTONIC nanoseconds
  // (the same clock in every process of the machine), not simulated time; a call's placement is stamped when
  // the request reached the carrier (originate() was called), as a carrier counts arrivals; each line names
  // its process. A placed line also says when the call's plan ends (`ends_ns`): a call whose process died has
  // no ended line, and goes on at the carrier until then, as lookup() reports it (a real carrier's calls
  // outlive the engine that placed them). Empty: no log.
  std::string call_log;
  // How many recently placed idempotency keys are remembered to catch duplicates (0: in-flight only).
  std::size_t dedup_window = 65'536;
};

// Checks every field; the error names the field and the expected form. Never throws.
[[nodiscard]] result<void> validate(const simulated_carrier_settings& settings);

// Reads settings from a JSON object (null or missing keys keep the defaults), then validates them.
// Durations are numbers of seconds or strings with a unit ("8s", "500ms", "2m", "1h"); numbers may
// also arrive as strings (YAML scalars). Unknown keys are errors that list the known ones.
[[nodiscard]] result<simulated_carrier_settings> parse_simulated_carrier_settings(const nlohmann::json& json);

}  // namespace dialer::carriers
