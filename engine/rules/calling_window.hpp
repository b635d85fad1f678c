#pragma once
// Calling windows: when a contact may be dialed, in the callee's local time.
//
// A window is a local time-of-day range [start, end), a set of allowed weekdays and a holiday calendar.
// It is open at an instant for a set of zones when, in every zone, the local date is an allowed weekday
// that is not a holiday and the local time of day lies in [start, end). A contact outside its window
// waits (next_open says until when); it is never dropped and the wait is not an attempt.
//
// DST is handled by evaluating the zone's real UTC offset at each instant: on a spring-forward day a
// window opening at 02:30 opens at 03:00 (the first local time that exists after 02:30); on a fall-back
// day the repeated hour is inside or outside the window twice.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/result.hpp"
#include "engine/rules/parse.hpp"
#include "engine/rules/zones.hpp"

namespace dialer::rules {

using time_point = std::chrono::system_clock::time_point;

struct holiday_calendar {
  bool us_federal = true;  // US federal holidays and their observed days (see holidays.hpp)
  std::vector<std::chrono::year_month_day> extra_dates;  // more closed dates from configuration
};

class calling_window {
 public:
  // start < end, both within [00:00, 24:00]; errc::invalid_input otherwise. An empty weekday set is
  // accepted (the window never opens; next_open returns nullopt) so that configuration can pause dialing.
  [[nodiscard]] static result<calling_window> make(std::chrono::seconds start, std::chrono::seconds end,
                                                   weekday_mask days, holiday_calendar holidays = {});
  // The US rule (TCPA, 47 CFR 64.1200(c)(1)): 08:00 to 21:00 local; we also skip weekends and US federal
  // holidays by default, which most consumer campaigns want.
  [[nodiscard]] static calling_window us_default();

  [[nodiscard]] std::chrono::seconds start() const noexcept { return start_; }
  [[nodiscard]] std::chrono::seconds end() const noexcept { return end_; }
  [[nodiscard]] weekday_mask days() const noexcept { return days_; }
  [[nodiscard]] const holiday_calendar& holidays() const noexcept { return holidays_; }

  // Whether the window can open on a local calendar date (allowed weekday and not a holiday).
  // Thread-safe, never allocates (dates in 2000-2100 are precomputed; others are computed on the spot).
  [[nodiscard]] bool day_allowed(std::chrono::sys_days local_date) const noexcept;
  // Whether a local wall time, as seconds since 1970-01-01T00:00 local, is inside the window.
  // Thread-safe, never allocates.
  [[nodiscard]] bool open_at_local(std::int64_t local_seconds) const noexcept;

 private:
  calling_window() = default;
  std::chrono::seconds start_{0};
  std::chrono::seconds end_{0};
  weekday_mask days_ = 0;
  holiday_calendar holidays_;
  // One bit per day from holiday_bits_first_day; shared by copies (immutable).
  std::shared_ptr<const std::vector<std::uint64_t>> holiday_bits_;
};

// How far next_open looks ahead. Two weeks covers any weekday set plus the longest holiday run; a window
// that cannot open within it (no weekdays, zones whose local windows never overlap) reports nullopt.
inline constexpr std::chrono::seconds default_search_horizon{std::chrono::days{14}};

// Reference evaluation: for each zone, one date::zoned_time conversion. Thread-safe, does not allocate.
// An empty zone set is never open (an unknown place gets no calls).
[[nodiscard]] bool open_at(const calling_window& window, std::span<const date::time_zone* const> zones,
                           time_point at) noexcept;

// The earliest instant >= from at which the window is open in every zone, or nullopt if there is none
// within `horizon` of `from`. Thread-safe; not a hot path (walks the window's boundaries and the zones'
// offset changes, typically a few dozen steps).
[[nodiscard]] std::optional<time_point> next_open(const calling_window& window,
                                                  std::span<const date::time_zone* const> zones, time_point from,
                                                  std::chrono::seconds horizon = default_search_horizon);

struct open_interval {
  time_point open;
  time_point close;  // the first instant after `open` at which some zone closes; at most open + horizon
};
// The next time the window is open in every zone and until when it stays so. Thread-safe.
[[nodiscard]] std::optional<open_interval> next_open_interval(const calling_window& window,
                                                              std::span<const date::time_zone* const> zones,
                                                              time_point from,
                                                              std::chrono::seconds horizon = default_search_horizon);

// The dial-time check, for the dispatcher to run on every contact. It caches, per zone, whether the
// window is open there and until when that answer holds (the next window edge, local midnight or UTC
// offset change, whichever comes first). While time moves forward a check costs one range test per
// zone; a zone's entry is recomputed (one date::time_zone::get_info) only when time crosses that instant
// or goes backwards.
//
// Threading: NOT thread-safe. Use one checker per thread (each dispatcher thread owns its own; copies are
// independent). The calling_window inside is immutable and shared between copies.
class window_checker {
 public:
  // Allocates the per-zone cache (one slot per zone in the OS tz database, about 600 x 24 bytes). Throws
  // std::runtime_error if the tz database cannot be read (construct it at start-up).
  explicit window_checker(calling_window window);

  [[nodiscard]] const calling_window& window() const noexcept { return window_; }

  // Same answer as rules::open_at. Never allocates, never throws; a zone whose data cannot be read
  // counts as closed.
  [[nodiscard]] bool open_at(std::span<const date::time_zone* const> zones, time_point at) noexcept;

  // Same as rules::next_open (the slow path; does not use the cache).
  [[nodiscard]] std::optional<time_point> next_open(std::span<const date::time_zone* const> zones, time_point from,
                                                    std::chrono::seconds horizon = default_search_horizon) const;

 private:
  struct cached_state {
    std::int64_t from = 1;  // the answer holds for UTC seconds in [from, until); empty until first use
    std::int64_t until = 0;
    bool open = false;
  };
  bool zone_open(const date::time_zone* zone, std::int64_t utc_seconds) noexcept;

  calling_window window_;
  const date::time_zone* zones_base_ = nullptr;  // the tz database's zone array; cache_ is indexed like it
  std::vector<cached_state> cache_;
};

}  // namespace dialer::rules
