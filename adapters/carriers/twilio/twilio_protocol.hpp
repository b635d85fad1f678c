#pragma once
// Twilio's Programmable Voice REST shapes (2010-04-01 API, as twilio/twilio-oai spec/json/twilio_api_v2010.json
// describes them), as pure functions the adapter and its tests share: the create-call form, the TwiML that hands
// the callee to the agent, what an error answer means for the engine, and what a call's final status means.
// Threading: pure functions.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "adapters/carriers/rest/refusal.hpp"
#include "engine/ports/carrier.hpp"

namespace dialer::carriers::twilio {

using form = std::vector<std::pair<std::string, std::string>>;

// Text for an XML attribute or element (TwiML): the five entities escaped, control characters other than tab, line
// feed and carriage return dropped (XML 1.0 cannot carry them).
[[nodiscard]] std::string xml_escape(std::string_view s);

// application/x-www-form-urlencoded (a repeated name for a repeated field, as StatusCallbackEvent wants).
[[nodiscard]] std::string encode_form(const form& fields);

// TwiML is at most 4000 characters (the API refuses more).
inline constexpr std::size_t kMaxTwiml = 4000;

// The TwiML that connects the answered callee to the agent: <Connect><Stream> with the attempt, campaign,
// contact and the contact's variables as <Parameter>s for a wss:// hand-off, <Dial><Sip> with the same as X-
// headers for a sip:/sips: one. Variables that would take the document past 4000 characters are left out (the
// ids always fit; the agent can read the rest through the API); `dropped` counts them.
// invalid_input for a hand-off that is neither.
[[nodiscard]] result<std::string> handoff_twiml(const origination_request& r, int* dropped = nullptr);

// What an error answer of Calls.json means for the engine.
using rest::refusal_decision;
// status: the HTTP status; body: Twilio's JSON error ({code, message, more_info, status}) or anything else.
// nullopt: the answer does not tell (a 500 or 504 may have been processed): the caller treats it as lost.
[[nodiscard]] std::optional<refusal_decision> classify_error(unsigned status, std::string_view body,
                                                             std::optional<std::chrono::seconds> retry_after);

// A call's status, final or not, as callbacks and the REST API tell it.
struct call_status {
  std::string status;        // queued, initiated, ringing, in-progress, completed, busy, failed, no-answer, canceled
  std::int64_t duration_s = -1;  // talk time in seconds (CallDuration / duration), -1 when not given
  std::string answered_by;   // human, machine_start, machine_end_beep, ..., fax, unknown
  std::string sip_response;  // SipResponseCode
  std::optional<std::chrono::system_clock::time_point> at;      // Timestamp of a callback / end_time of a call
  std::optional<std::chrono::system_clock::time_point> started;  // start_time of a call
};
[[nodiscard]] bool is_final(std::string_view status) noexcept;

// The outcome of a final status. `machine` says an earlier AMD callback found a machine.
[[nodiscard]] call_outcome outcome_of(const call_status& s, bool machine) noexcept;
[[nodiscard]] bool is_machine(std::string_view answered_by) noexcept;

// A status callback's form fields, or a call resource's JSON.
[[nodiscard]] call_status status_of_callback(const nlohmann::json& params);
[[nodiscard]] call_status status_of_resource(const nlohmann::json& call);

// "Tue, 31 Aug 2010 20:36:28 +0000"; nullopt when malformed.
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_rfc2822(std::string_view text);

}  // namespace dialer::carriers::twilio
