#pragma once
// Telnyx Call Control v2 shapes (as team-telnyx/telnyx-python describes them), as pure functions the adapter, the
// HTTP server's webhook route and the tests share: the dial's JSON, the client_state that names who placed a call,
// what an error answer means for the engine, and what a call.hangup means.
// Threading: pure functions.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "adapters/carriers/rest/refusal.hpp"
#include "engine/ports/carrier.hpp"

namespace dialer::carriers::telnyx {

// Who placed a call, carried in the dial's client_state (base64 JSON, echoed in every webhook of the call, and
// covered by the webhook's signature, unlike the URL): the adapter instance, the attempt, the placement nonce.
struct call_tag {
  std::string instance;
  std::int64_t attempt = 0;
  std::string placement;
  std::string leg;  // "" for the call we dial; "agent" for the leg a SIP hand-off's transfer creates
};
[[nodiscard]] std::string encode_client_state(const call_tag& tag);
// nullopt when it is not ours (not base64 JSON with a non-empty instance and a positive attempt).
[[nodiscard]] std::optional<call_tag> decode_client_state(std::string_view client_state);

// A stream URL is at most this long: variables that would pass it are left out (the ids always stay).
inline constexpr std::size_t kMaxStreamUrl = 2048;

struct dial_options {
  std::string connection_id;
  std::string command_scope;  // the database's installation id: command ids are unique across databases
  std::string webhook_url;
  int timeout_secs = 30;
  std::string machine_detection = "disabled";  // premium | detect | detect_beep | detect_words | greeting_end
  std::string stream_track = "both_tracks";
  std::string stream_bidirectional_mode = "rtp";
  std::string stream_codec;  // stream_bidirectional_codec, empty: Telnyx's default
};

// The body of POST /v2/calls. A wss:// hand-off rides on the dial (stream_url with the ids and variables as query
// parameters, stream_track, stream_bidirectional_mode); a SIP hand-off is a transfer once the callee answers
// (transfer_body). `command_id` is the attempt's idempotency key: Telnyx ignores a repeated one, which makes a dial
// whose answer was lost safe to send again. invalid_input for a hand-off that is neither.
[[nodiscard]] result<nlohmann::json> dial_body(const origination_request& r, const dial_options& o,
                                               const std::string& client_state, int* dropped = nullptr);
// The body of POST /v2/calls/{id}/actions/transfer to the agent's SIP URI, the ids and variables as X- headers;
// the agent's leg carries `agent_state` (so its end is seen).
[[nodiscard]] nlohmann::json transfer_body(const origination_request& r, const dial_options& o,
                                           const std::string& client_state, const std::string& agent_state);
// The attempt's command_id: "<scope>:<idempotency key>" (the key alone without a scope).
[[nodiscard]] std::string command_id_of(const origination_request& r, const dial_options& o);

using rest::refusal_decision;
// status: the HTTP status; body: {"errors": [{code, title, detail, source}]} or anything else; retry_after from
// Retry-After or x-ratelimit-reset. nullopt: a 5xx, which does not say whether the call was created (the adapter
// sends the same dial again: its command_id makes that safe).
[[nodiscard]] std::optional<refusal_decision> classify_error(unsigned status, std::string_view body,
                                                             std::optional<std::chrono::seconds> retry_after);

// A call's end, from a call.hangup payload or a call's status (GET /v2/calls/{id}).
struct hangup {
  std::string cause;      // hangup_cause: normal_clearing, user_busy, timeout, no_answer, call_rejected, ...
  std::string sip_cause;  // sip_hangup_cause: "486", ...
  std::string source;     // caller | callee | unknown
  std::optional<std::chrono::system_clock::time_point> started, ended;
  std::int64_t duration_s = -1;  // call_duration of a status; -1 when not given
};
[[nodiscard]] hangup hangup_of(const nlohmann::json& payload);

// A string member of a JSON object, "" when absent, null or not an object (Telnyx marks most fields optional).
[[nodiscard]] std::string text_of(const nlohmann::json& j, const char* key);

// The outcome of a hangup. `answered`: a call.answered came (or the status shows talk time); `machine`: answering
// machine detection found one; `canceled`: we hung up before the answer.
[[nodiscard]] call_outcome outcome_of(const hangup& h, bool answered, bool machine, bool canceled) noexcept;
// call.machine.detection.ended / call.machine.premium.detection.ended `result` that means a machine, or a
// greeting.ended `result` (a beep: a machine's greeting).
[[nodiscard]] bool is_machine(std::string_view result) noexcept;
// Whether the call was answered, from its end alone (talk time, or a normal clearing with SIP 200): for a
// call.hangup that came before call.answered.
[[nodiscard]] bool was_answered(const hangup& h) noexcept;
// SIP 403 before an answer, not from the callee: taken as the connection's channel limit (Telnyx documents the
// limit's SIP 403, not how its hangup reads: an assumption, see adapters/carriers/README.md).
[[nodiscard]] bool is_channel_limit(const hangup& h, bool answered) noexcept;

// ISO 8601 ("2026-12-07T10:00:00.123Z", "+00:00" offsets); nullopt when malformed.
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

// The webhook step a Call Control event is stored under ("initiated", "answered", "amd", "greeting", "final"), or
// "" for an event that changes nothing the adapter keeps.
[[nodiscard]] std::string_view step_of(std::string_view event_type) noexcept;

}  // namespace dialer::carriers::telnyx
