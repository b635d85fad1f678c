#include "engine/rules/holidays.hpp"

namespace dialer::rules {
namespace {

using namespace std::chrono;

year_month_day observed_day(year_month_day date) noexcept {
  const sys_days day{date};
  const weekday wd{day};
  if (wd == Saturday) return year_month_day{day - days{1}};
  if (wd == Sunday) return year_month_day{day + days{1}};
  return date;
}

year_month_day nth(year y, month m, weekday wd, unsigned index) noexcept {
  return year_month_day{sys_days{year_month_weekday{y, m, wd[index]}}};
}

year_month_day last(year y, month m, weekday wd) noexcept {
  return year_month_day{sys_days{year_month_weekday_last{y, m, weekday_last{wd}}}};
}

}  // namespace

federal_holidays us_federal_holidays(year y) noexcept {
  federal_holidays out;
  auto fixed = [&](std::string_view name, month m, day d) {
    const year_month_day date{y, m, d};
    out.items[out.count++] = holiday{name, date, observed_day(date)};
  };
  auto floating = [&](std::string_view name, year_month_day date) { out.items[out.count++] = holiday{name, date, date}; };

  fixed("New Year's Day", January, day{1});
  floating("Birthday of Martin Luther King, Jr.", nth(y, January, Monday, 3));
  floating("Washington's Birthday", nth(y, February, Monday, 3));
  floating("Memorial Day", last(y, May, Monday));
  if (y >= year{2021}) fixed("Juneteenth National Independence Day", June, day{19});
  fixed("Independence Day", July, day{4});
  floating("Labor Day", nth(y, September, Monday, 1));
  floating("Columbus Day", nth(y, October, Monday, 2));
  fixed("Veterans Day", November, day{11});
  floating("Thanksgiving Day", nth(y, November, Thursday, 4));
  fixed("Christmas Day", December, day{25});
  return out;
}

bool is_us_federal_holiday(year_month_day date) noexcept {
  // December 31 can be the observed New Year's Day of the next year.
  for (const year y : {date.year(), date.year() + years{1}}) {
    for (const auto& h : us_federal_holidays(y)) {
      if (h.date == date || h.observed == date) return true;
    }
  }
  return false;
}

}  // namespace dialer::rules
