#pragma once
// How a number row is read, shared by the adapters that read numbers (the inventory store, the engine
// registry).

#include <chrono>
#include <cstdint>
#include <pqxx/row>

#include "engine/telephony.hpp"

namespace dialer::pg {

// SELECT kNumberColumns kNumberFrom WHERE ... (alias n for numbers, a for its agent).
inline constexpr const char* kNumberColumns =
    "n.id, n.account_id, n.e164, n.country, n.type, n.kind, n.provider, n.max_concurrent_calls, n.max_cps, "
    "n.status, (n.monthly_fee * 1000000)::bigint, (extract(epoch FROM n.purchased_at) * 1000000)::bigint, "
    "(extract(epoch FROM n.released_at) * 1000000)::bigint, n.agent_id, a.name";
inline constexpr const char* kNumberFrom = " FROM numbers n LEFT JOIN agents a ON a.id = n.agent_id ";

inline timestamp from_micros(std::int64_t us) {
  return timestamp{std::chrono::microseconds(us)};
}
inline std::int64_t to_micros(timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
// Unix seconds with a fraction, for to_timestamp($n).
inline double epoch_seconds(timestamp t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

// A row of kNumberColumns.
inline phone_number read_number(const pqxx::row& r) {
  phone_number n;
  n.id = number_id{r[0].as<std::int64_t>()};
  n.account = account_id{r[1].as<std::int64_t>()};
  n.e164 = r[2].as<std::string>();
  n.country = r[3].as<std::string>();
  n.type = parse_number_type(r[4].as<std::string>()).value_or(number_type::local);
  n.kind = parse_number_kind(r[5].as<std::string>()).value_or(number_kind::managed);
  n.provider = r[6].as<std::string>();
  n.max_concurrent_calls = r[7].as<std::int32_t>();
  n.max_cps = r[8].as<double>();
  n.status = parse_number_status(r[9].as<std::string>()).value_or(number_status::active);
  n.monthly_fee = r[10].as<std::int64_t>();
  n.purchased_at = from_micros(r[11].as<std::int64_t>());
  if (!r[12].is_null()) n.released_at = from_micros(r[12].as<std::int64_t>());
  if (!r[13].is_null()) n.agent = agent_id{r[13].as<std::int64_t>()};
  if (!r[14].is_null()) n.agent_name = r[14].as<std::string>();
  return n;
}

}  // namespace dialer::pg
