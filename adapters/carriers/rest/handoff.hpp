#pragma once
// What a REST carrier passes to the agent with the call (both Twilio and Telnyx): the attempt, campaign and
// contact ids, then the contact's variables, as name/value pairs; and how such a name becomes a SIP header.
// Threading: pure functions.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/ports/carrier.hpp"

namespace dialer::carriers::rest {

using name_values = std::vector<std::pair<std::string, std::string>>;

struct handoff_fields {
  name_values ids;        // attempt_id, campaign_id, contact_id: always sent
  name_values variables;  // the contact's variables (strings; other JSON values as JSON text), in order
};
[[nodiscard]] handoff_fields handoff_fields_of(const origination_request& r);

// "first_name" -> "X-First-Name": letters and digits kept, '_' and '-' separate capitalised words.
[[nodiscard]] std::string x_header(std::string_view name);

[[nodiscard]] inline bool is_sip_uri(std::string_view s) noexcept {
  return s.substr(0, 4) == "sip:" || s.substr(0, 5) == "sips:";
}
[[nodiscard]] inline bool is_media_stream(std::string_view s) noexcept { return s.substr(0, 6) == "wss://"; }

}  // namespace dialer::carriers::rest
