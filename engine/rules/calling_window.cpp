#include "engine/rules/calling_window.hpp"

#include <algorithm>
#include <cstdint>

#include <date/tz.h>

#include "engine/rules/holidays.hpp"

namespace dialer::rules {
namespace {

using namespace std::chrono;

constexpr std::int64_t seconds_per_day = 86400;
// The precomputed holiday bitset covers these years; other dates are computed on demand.
constexpr year holiday_bits_first_year{2000};
constexpr year holiday_bits_last_year{2100};
const std::int64_t holiday_bits_first_day = sys_days{holiday_bits_first_year / January / 1}.time_since_epoch().count();
const std::int64_t holiday_bits_day_count =
    sys_days{(holiday_bits_last_year + years{1}) / January / 1}.time_since_epoch().count() - holiday_bits_first_day;

constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

struct zone_offset {
  std::int64_t begin;  // UTC seconds, [begin, end)
  std::int64_t end;
  std::int64_t offset;  // local = UTC + offset
};

zone_offset offset_at(const date::time_zone* zone, std::int64_t utc) {
  const auto info = zone->get_info(date::sys_seconds{seconds{utc}});
  return {info.begin.time_since_epoch().count(), info.end.time_since_epoch().count(), info.offset.count()};
}

// The first instant after `utc` at which the zone's open/closed state can change: a window edge or a local
// midnight (the date changes), in the current offset, or the end of the offset's validity.
std::int64_t next_change(const calling_window& w, const zone_offset& o, std::int64_t utc) {
  const std::int64_t local = utc + o.offset;
  const std::int64_t day = floor_div(local, seconds_per_day);
  const std::int64_t tod = local - day * seconds_per_day;
  const std::int64_t start = w.start().count();
  const std::int64_t end = w.end().count();
  const std::int64_t next_tod = tod < start ? start : (tod < end ? end : seconds_per_day);
  return std::min(day * seconds_per_day + next_tod - o.offset, o.end);
}

// First instant in [utc, limit] at which the zone is open.
std::optional<std::int64_t> zone_next_open(const calling_window& w, const date::time_zone* zone, std::int64_t utc,
                                           std::int64_t limit) {
  while (utc <= limit) {
    const auto o = offset_at(zone, utc);
    if (w.open_at_local(utc + o.offset)) return utc;
    utc = next_change(w, o, utc);
  }
  return std::nullopt;
}

// First instant in [utc, limit] at which the zone is closed, or limit.
std::int64_t zone_next_close(const calling_window& w, const date::time_zone* zone, std::int64_t utc,
                             std::int64_t limit) {
  while (utc < limit) {
    const auto o = offset_at(zone, utc);
    if (!w.open_at_local(utc + o.offset)) return utc;
    utc = next_change(w, o, utc);
  }
  return limit;
}

std::int64_t to_seconds(time_point t) { return floor<seconds>(t).time_since_epoch().count(); }
time_point from_seconds(std::int64_t s) { return time_point{seconds{s}}; }

std::optional<std::int64_t> next_open_seconds(const calling_window& w, std::span<const date::time_zone* const> zones,
                                              std::int64_t from, std::int64_t limit) {
  if (zones.empty()) return std::nullopt;
  std::int64_t t = from;
  while (t <= limit) {
    std::int64_t latest = t;
    for (const auto* zone : zones) {
      const auto open = zone_next_open(w, zone, t, limit);
      if (!open) return std::nullopt;
      latest = std::max(latest, *open);
    }
    // Every zone is open at t: done. Otherwise no instant before `latest` can be open in all of them.
    if (latest == t) return t;
    t = latest;
  }
  return std::nullopt;
}

}  // namespace

result<calling_window> calling_window::make(seconds start, seconds end, weekday_mask days, holiday_calendar holidays) {
  if (start < seconds{0} || end > seconds{seconds_per_day} || start >= end) {
    return make_error(errc::invalid_input,
                      "invalid calling window {}-{}: start must be before end, both between 00:00 and 24:00 "
                      "(windows across midnight are not supported; use 00:00-24:00 or split the campaign)",
                      format_time_of_day(start), format_time_of_day(end));
  }
  if (days & ~weekdays::every_day) {
    return make_error(errc::invalid_input, "invalid weekday set {:#x}: only bits 0 (Monday) to 6 (Sunday) exist",
                      days);
  }
  for (const auto& date : holidays.extra_dates) {
    if (!date.ok()) return make_error(errc::invalid_input, "invalid holiday date in the calling window calendar");
  }
  calling_window w;
  w.start_ = start;
  w.end_ = end;
  w.days_ = days;
  w.holidays_ = std::move(holidays);
  if (w.holidays_.us_federal || !w.holidays_.extra_dates.empty()) {
    auto bits = std::make_shared<std::vector<std::uint64_t>>(static_cast<std::size_t>(holiday_bits_day_count + 63) / 64);
    const auto mark = [&](year_month_day date) {
      const std::int64_t i = sys_days{date}.time_since_epoch().count() - holiday_bits_first_day;
      if (i >= 0 && i < holiday_bits_day_count) (*bits)[static_cast<std::size_t>(i / 64)] |= std::uint64_t{1} << (i % 64);
    };
    if (w.holidays_.us_federal) {
      // One year either side: observed days spill across New Year.
      for (year y = holiday_bits_first_year - years{1}; y <= holiday_bits_last_year + years{1}; y += years{1}) {
        for (const auto& h : us_federal_holidays(y)) {
          mark(h.date);
          mark(h.observed);
        }
      }
    }
    for (const auto& date : w.holidays_.extra_dates) mark(date);
    w.holiday_bits_ = std::move(bits);
  }
  return w;
}

calling_window calling_window::us_default() {
  return make(hours{8}, hours{21}, weekdays::mon_fri, holiday_calendar{}).value();
}

bool calling_window::day_allowed(sys_days local_date) const noexcept {
  const std::int64_t day = local_date.time_since_epoch().count();
  // 1970-01-01 was a Thursday: index 3 with Monday = 0.
  const auto weekday_index = static_cast<unsigned>(((day + 3) % 7 + 7) % 7);
  if (!(days_ & (1U << weekday_index))) return false;
  if (!holiday_bits_) return true;
  const std::int64_t i = day - holiday_bits_first_day;
  if (i >= 0 && i < holiday_bits_day_count) {
    return !(((*holiday_bits_)[static_cast<std::size_t>(i / 64)] >> (i % 64)) & 1U);
  }
  const year_month_day date{local_date};
  if (holidays_.us_federal && is_us_federal_holiday(date)) return false;
  return std::find(holidays_.extra_dates.begin(), holidays_.extra_dates.end(), date) == holidays_.extra_dates.end();
}

bool calling_window::open_at_local(std::int64_t local_seconds) const noexcept {
  const std::int64_t day = floor_div(local_seconds, seconds_per_day);
  const std::int64_t tod = local_seconds - day * seconds_per_day;
  return tod >= start_.count() && tod < end_.count() && day_allowed(sys_days{std::chrono::days{day}});
}

bool open_at(const calling_window& window, std::span<const date::time_zone* const> zones, time_point at) noexcept {
  if (zones.empty()) return false;
  try {
    const auto t = floor<seconds>(at);
    for (const auto* zone : zones) {
      const date::zoned_time<seconds> local{zone, t};
      if (!window.open_at_local(local.get_local_time().time_since_epoch().count())) return false;
    }
    return true;
  } catch (...) {
    return false;  // a zone whose data cannot be read is closed
  }
}

std::optional<time_point> next_open(const calling_window& window, std::span<const date::time_zone* const> zones,
                                    time_point from, seconds horizon) {
  const std::int64_t start = to_seconds(from);
  const auto open = next_open_seconds(window, zones, start, start + horizon.count());
  if (!open) return std::nullopt;
  return *open == start ? from : from_seconds(*open);
}

std::optional<open_interval> next_open_interval(const calling_window& window,
                                                std::span<const date::time_zone* const> zones, time_point from,
                                                seconds horizon) {
  const std::int64_t start = to_seconds(from);
  const auto open = next_open_seconds(window, zones, start, start + horizon.count());
  if (!open) return std::nullopt;
  std::int64_t close = *open + horizon.count();
  for (const auto* zone : zones) close = std::min(close, zone_next_close(window, zone, *open, close));
  return open_interval{*open == start ? from : from_seconds(*open), from_seconds(close)};
}

window_checker::window_checker(calling_window window) : window_(std::move(window)) {
  const auto& zones = date::get_tzdb().zones;
  zones_base_ = zones.data();
  cache_.resize(zones.size());
}

bool window_checker::zone_open(const date::time_zone* zone, std::int64_t utc) noexcept {
  const auto index = (reinterpret_cast<std::uintptr_t>(zone) - reinterpret_cast<std::uintptr_t>(zones_base_)) /
                     sizeof(date::time_zone);
  try {
    if (index >= cache_.size()) {  // not from the tz database we index (cannot happen via find_zone)
      return window_.open_at_local(utc + offset_at(zone, utc).offset);
    }
    auto& slot = cache_[index];
    if (utc < slot.from || utc >= slot.until) {
      const auto o = offset_at(zone, utc);
      slot = {utc, next_change(window_, o, utc), window_.open_at_local(utc + o.offset)};
    }
    return slot.open;
  } catch (...) {
    return false;
  }
}

bool window_checker::open_at(std::span<const date::time_zone* const> zones, time_point at) noexcept {
  if (zones.empty()) return false;
  const std::int64_t utc = to_seconds(at);
  for (const auto* zone : zones) {
    if (!zone_open(zone, utc)) return false;
  }
  return true;
}

std::optional<time_point> window_checker::next_open(std::span<const date::time_zone* const> zones, time_point from,
                                                    seconds horizon) const {
  return rules::next_open(window_, zones, from, horizon);
}

}  // namespace dialer::rules
