#pragma once
// Parsing helpers for rule configuration (campaign YAML and API): times of day, weekday sets, durations,
// dates. Each returns errc::invalid_input with a message that quotes the input and says what was expected.
// All are thread-safe; they allocate only to build an error message.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/result.hpp"

namespace dialer::rules {

// Weekday set: bit 0 = Monday ... bit 6 = Sunday.
using weekday_mask = std::uint8_t;
namespace weekdays {
inline constexpr weekday_mask monday = 1U << 0;
inline constexpr weekday_mask tuesday = 1U << 1;
inline constexpr weekday_mask wednesday = 1U << 2;
inline constexpr weekday_mask thursday = 1U << 3;
inline constexpr weekday_mask friday = 1U << 4;
inline constexpr weekday_mask saturday = 1U << 5;
inline constexpr weekday_mask sunday = 1U << 6;
inline constexpr weekday_mask mon_fri = 0x1F;
inline constexpr weekday_mask every_day = 0x7F;
}  // namespace weekdays

[[nodiscard]] constexpr weekday_mask weekday_bit(std::chrono::weekday wd) noexcept {
  return static_cast<weekday_mask>(1U << wd.iso_encoding() >> 1);  // iso: Monday = 1 ... Sunday = 7
}

// "HH:MM" (one or two hour digits), 00:00 to 24:00 inclusive, as seconds since local midnight.
[[nodiscard]] result<std::chrono::seconds> parse_time_of_day(std::string_view text);
// "08:00"; 24:00 for a full day.
[[nodiscard]] std::string format_time_of_day(std::chrono::seconds since_midnight);

// A comma-separated list of days ("mon", "monday", case-insensitive) and ranges ("mon-fri"; a range may
// wrap: "fri-mon" is Fri, Sat, Sun, Mon). Empty input is an error.
[[nodiscard]] result<weekday_mask> parse_weekdays(std::string_view text);
// Canonical short form: "mon-fri", "mon,wed,fri", "sat-sun", "" for none.
[[nodiscard]] std::string format_weekdays(weekday_mask days);

// One or more <digits><unit> groups, unit in s, m, h, d: "90s", "10m", "4h", "1d", "1h30m". At most 366 days.
[[nodiscard]] result<std::chrono::seconds> parse_duration(std::string_view text);

// An ISO calendar date "YYYY-MM-DD" that exists (2026-02-30 is an error).
[[nodiscard]] result<std::chrono::year_month_day> parse_date(std::string_view text);

}  // namespace dialer::rules
