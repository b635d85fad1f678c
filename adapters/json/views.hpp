#pragma once
// The public JSON shapes of the domain types: one shape for a number, an agent, an offered number and a billing
// line, whether `dialer ... --json` prints it or the HTTP API returns it (its OpenAPI description documents
// them). Money is a decimal string of the account currency ("1.1500"), times are RFC 3339 in UTC.
// Threading: pure functions.

#include <nlohmann/json.hpp>
#include <string>

#include "engine/billing.hpp"
#include "engine/ports/campaign_repository.hpp"
#include "engine/ports/number_provider.hpp"
#include "engine/telephony.hpp"

namespace dialer::views {

[[nodiscard]] std::string iso8601(timestamp t);
[[nodiscard]] nlohmann::json to_json(const phone_number& n);
[[nodiscard]] nlohmann::json to_json(const agent& a);
[[nodiscard]] nlohmann::json to_json(const available_number& n);
[[nodiscard]] nlohmann::json to_json(const billing_line& line);
[[nodiscard]] nlohmann::json to_json(const rejected_row& r);
[[nodiscard]] nlohmann::json to_json(const contact_result& c);
// A campaign with its live progress: contacts by state, attempts by outcome, each caller ID's calls, calls in
// flight now and peak against its limit, the import's verdict (the first 1000 rejected rows), cost.
[[nodiscard]] nlohmann::json to_json(const campaign_summary& s);

}  // namespace dialer::views
