#include "engine/ports/carrier.hpp"

namespace dialer {

std::string_view to_string(call_outcome o) noexcept {
  switch (o) {
    case call_outcome::completed:
      return "completed";
    case call_outcome::busy:
      return "busy";
    case call_outcome::no_answer:
      return "no_answer";
    case call_outcome::failed:
      return "failed";
    case call_outcome::voicemail:
      return "voicemail";
    case call_outcome::canceled:
      return "canceled";
    case call_outcome::unknown:
      return "unknown";
  }
  return "unknown";
}

// Accepts the spellings carriers use in their status callbacks (Twilio: "no-answer", "canceled";
// the product docs: "answered"), so adapters and stored rows can share one parser.
std::optional<call_outcome> parse_call_outcome(std::string_view text) noexcept {
  if (text == "completed" || text == "answered") return call_outcome::completed;
  if (text == "busy") return call_outcome::busy;
  if (text == "no_answer" || text == "no-answer" || text == "noanswer") return call_outcome::no_answer;
  if (text == "failed") return call_outcome::failed;
  if (text == "voicemail") return call_outcome::voicemail;
  if (text == "canceled" || text == "cancelled") return call_outcome::canceled;
  if (text == "unknown") return call_outcome::unknown;
  return std::nullopt;
}

std::string_view to_string(origination_refusal r) noexcept {
  switch (r) {
    case origination_refusal::throttled:
      return "throttled";
    case origination_refusal::number_unusable:
      return "number_unusable";
    case origination_refusal::invalid_destination:
      return "invalid_destination";
    case origination_refusal::not_placed:
      return "not_placed";
    case origination_refusal::indeterminate:
      return "indeterminate";
  }
  return "not_placed";
}

std::optional<origination_refusal> parse_origination_refusal(std::string_view text) noexcept {
  if (text == "throttled") return origination_refusal::throttled;
  if (text == "number_unusable") return origination_refusal::number_unusable;
  if (text == "invalid_destination") return origination_refusal::invalid_destination;
  if (text == "not_placed") return origination_refusal::not_placed;
  if (text == "indeterminate") return origination_refusal::indeterminate;
  return std::nullopt;
}

}  // namespace dialer
