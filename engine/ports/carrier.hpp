#pragma once
// The carrier port: how the engine places calls. Adapters live in adapters/carriers/<name>/.
//
// Threading: originate() and cancel() may be called from any engine thread and must not block on
// the network (queue the work and return). Events are delivered to the carrier_events sink from the
// adapter's own threads; the sink is thread-safe and never blocks for long.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/ids.hpp"
#include "engine/result.hpp"

namespace dialer {

enum class call_outcome : std::uint8_t {
  completed,  // answered and finished normally
  busy,
  no_answer,
  failed,
  voicemail,  // answered by a machine
  canceled,   // canceled by us before answer
  unknown,    // recorded but never resolved (crash reconciliation with a carrier that cannot tell)
};

[[nodiscard]] std::string_view to_string(call_outcome o) noexcept;
[[nodiscard]] std::optional<call_outcome> parse_call_outcome(std::string_view text) noexcept;

struct origination_request {
  attempt_id attempt;
  campaign_id campaign;
  contact_id contact;
  number_id caller_number;
  std::string from_e164;
  std::string to_e164;
  std::string handoff;         // the agent's media-stream URL or SIP URI
  std::string variables_json;  // the contact's variables, passed to the agent
  // Derived from the attempt id; a carrier that deduplicates never places the same key twice.
  std::string idempotency_key;
};

// Why a carrier refused to place a call. None of these is a call outcome: the attempt was not placed.
enum class origination_refusal : std::uint8_t {
  throttled,        // HTTP 429 / SIP 503 with Retry-After: back off, the call goes back to the hopper
  number_unusable,  // the caller ID cannot be used (unverified, suspended): take it out of rotation
  invalid_destination,  // the callee cannot be dialed at all: terminal for the contact
  not_placed,       // the carrier says it placed nothing (5xx before processing, draining): retry, not an attempt
  // The answer was lost after the request left (a timeout, a reset): the call may exist. Not a refusal of the
  // call but of certainty: the engine keeps the attempt and its slot, takes the outcome if the carrier reports
  // one, and asks lookup(); only when the carrier says there is no such call is the contact dialed again.
  indeterminate,
};

[[nodiscard]] std::string_view to_string(origination_refusal r) noexcept;
[[nodiscard]] std::optional<origination_refusal> parse_origination_refusal(std::string_view text) noexcept;

// What account_cps() returns when the carrier account has no origination-rate limit of its own.
inline constexpr double unlimited_cps = 0.0;

struct call_event {
  attempt_id attempt;
  std::string carrier_call_id;
  call_outcome outcome = call_outcome::failed;
  std::chrono::system_clock::time_point started_at{};
  std::optional<std::chrono::system_clock::time_point> answered_at;
  std::chrono::system_clock::time_point ended_at{};
  std::chrono::milliseconds billable{0};  // talk time, from answer to hang-up
  std::string detail;                     // carrier's status text or SIP reason, for the record
};

class carrier_events {
 public:
  virtual ~carrier_events() = default;
  // The carrier accepted the request and gave it an id (a call SID, a call control id, a Call-ID).
  virtual void on_accepted(attempt_id attempt, std::string_view carrier_call_id) noexcept = 0;
  // The carrier refused to place the call; retry_after is set for throttling.
  virtual void on_refused(attempt_id attempt, origination_refusal why,
                          std::optional<std::chrono::milliseconds> retry_after, std::string_view detail) noexcept = 0;
  // The call ended (or never connected). Exactly one per accepted attempt.
  virtual void on_outcome(const call_event& event) noexcept = 0;
};

class carrier {
 public:
  virtual ~carrier() = default;

  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  // Originations per second this carrier account allows (Twilio: 1 by default; Telnyx: 30).
  [[nodiscard]] virtual double account_cps() const noexcept = 0;
  // Whose limit account_cps() is, the same in every process ("twilio:AC..."): every engine and every instance
  // with this identity shares it. Empty: this instance's own (nothing to share).
  [[nodiscard]] virtual std::string account_identity() const { return {}; }

  // A trunk's channel limit: calls up at once on the account (placed and not yet ended), shared like account_cps
  // by every engine with this account_identity (the engine leases its share). 0: no such limit.
  [[nodiscard]] virtual int max_channels() const noexcept { return 0; }
  // Calls holding one of the account's channels now, this instance's.
  [[nodiscard]] virtual int channels_in_use() const noexcept { return 0; }
  // How many channels this instance may hold from now on (its engine's share of the account's): a call that
  // would need one more is refused `throttled`. Until it is first called: max_channels(). Any thread.
  virtual void allow_channels(int /*channels*/) noexcept {}

  // Set once, before the first originate(). The sink outlives the carrier's use of it.
  virtual void set_events(carrier_events* sink) noexcept = 0;

  // Queues the requests; returns at once. Every request ends in on_refused or on_accepted + on_outcome.
  virtual void originate(std::span<const origination_request> requests) noexcept = 0;

  // Asks the carrier to hang up or abandon the call. The outcome still arrives through the sink.
  virtual void cancel(attempt_id attempt) noexcept = 0;

  // Crash reconciliation: what became of a call placed by an earlier process. nullopt when the
  // carrier cannot tell (the attempt is then marked `unknown` and not redialed).
  [[nodiscard]] virtual result<std::optional<call_event>> lookup(attempt_id attempt,
                                                                 std::string_view carrier_call_id) = 0;

  // Stops accepting work and waits for in-flight calls to report (or until the deadline).
  virtual void drain(std::chrono::milliseconds deadline) noexcept = 0;
};

}  // namespace dialer
