#pragma once
// The telephony model: numbers and agents, as the platform's documentation describes them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/ids.hpp"

namespace dialer {

enum class number_type { local, toll_free, mobile };
enum class number_kind { managed, byoc };
enum class number_status { active, released };

[[nodiscard]] std::string_view to_string(number_type t) noexcept;
[[nodiscard]] std::string_view to_string(number_kind k) noexcept;
[[nodiscard]] std::string_view to_string(number_status s) noexcept;
[[nodiscard]] std::optional<number_type> parse_number_type(std::string_view text) noexcept;
[[nodiscard]] std::optional<number_kind> parse_number_kind(std::string_view text) noexcept;
[[nodiscard]] std::optional<number_status> parse_number_status(std::string_view text) noexcept;

// Money in micro-units of the account currency (USD): exact sums, no floating point drift.
using micros = std::int64_t;

using timestamp = std::chrono::system_clock::time_point;

struct phone_number {
  number_id id;
  account_id account;
  std::string e164;
  std::string country;  // ISO 3166-1 alpha-2, upper case
  number_type type = number_type::local;
  number_kind kind = number_kind::managed;
  std::string provider;  // "simulated", "twilio", "telnyx", "sip"
  std::int32_t max_concurrent_calls = 1;
  double max_cps = 1.0;
  number_status status = number_status::active;
  micros monthly_fee = 0;  // locked at purchase; 0 for BYOC
  timestamp purchased_at{};
  std::optional<timestamp> released_at;
  agent_id agent;                 // invalid when unassigned
  std::string agent_name;         // filled by listings for display
};

struct agent {
  agent_id id;
  account_id account;
  std::string name;
  std::string handoff;  // media-stream URL (wss://, https://) or SIP URI (sip:, sips:)
  timestamp created_at{};
};

}  // namespace dialer
