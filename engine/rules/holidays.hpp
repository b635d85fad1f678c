#pragma once
// US federal holidays (5 U.S.C. 6103), computed per year, for calling-window holiday calendars.

#include <array>
#include <chrono>
#include <cstddef>
#include <string_view>

namespace dialer::rules {

struct holiday {
  std::string_view name;
  std::chrono::year_month_day date;      // the legal date
  std::chrono::year_month_day observed;  // Saturday -> the Friday before, Sunday -> the Monday after
};

// The eleven federal holidays of a year (ten before 2021, when Juneteenth was added), in calendar order.
// The current rules are applied to every year; dialing history before 1986 is not a use case.
// Thread-safe, never allocates.
struct federal_holidays {
  std::array<holiday, 11> items{};
  std::size_t count = 0;
  [[nodiscard]] const holiday* begin() const noexcept { return items.data(); }
  [[nodiscard]] const holiday* end() const noexcept { return items.data() + count; }
};
[[nodiscard]] federal_holidays us_federal_holidays(std::chrono::year year) noexcept;

// True when the date is a federal holiday or the weekday it is observed on. Both count: calling on
// Saturday July 4 is no better than on the observed Friday. Note that the observed day can fall in
// the previous year (New Year's Day on a Saturday is observed on December 31).
// Thread-safe, never allocates.
[[nodiscard]] bool is_us_federal_holiday(std::chrono::year_month_day date) noexcept;

}  // namespace dialer::rules
