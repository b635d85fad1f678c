// Calling windows in the callee's local time: parsing, holidays, zones of a contact, open/next_open
// across DST and weekends, multi-zone countries, and the cached dial-time checker.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <random>
#include <string>

#include <unistd.h>

#include <date/date.h>

#include "engine/rules/calling_window.hpp"
#include "engine/rules/country_zones.hpp"
#include "engine/rules/holidays.hpp"

namespace dialer::rules {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

// "2026-07-03T15:00:00Z" -> time_point. Test input is trusted.
time_point utc(const std::string& iso) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  EXPECT_EQ(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s), 6) << iso;
  const sys_days day{year{y} / month{static_cast<unsigned>(mo)} / static_cast<unsigned>(d)};
  return time_point{day + hours{h} + minutes{mi} + seconds{s}};
}

std::string iso(time_point t) { return date::format("%FT%TZ", floor<seconds>(t)); }

const date::time_zone* zone(std::string_view name) { return find_zone(name).value(); }

calling_window window(std::string_view start, std::string_view end, std::string_view days,
                      holiday_calendar holidays = {}) {
  return calling_window::make(parse_time_of_day(start).value(), parse_time_of_day(end).value(),
                              parse_weekdays(days).value(), std::move(holidays))
      .value();
}

zone_set zones(std::initializer_list<std::string_view> names) {
  zone_set out;
  for (auto n : names) out.push_back(zone(n));
  return out;
}

// ---------------------------------------------------------------- parsing

TEST(rules_parse, time_of_day_accepts_hh_mm_up_to_24_00) {
  EXPECT_EQ(parse_time_of_day("08:00").value(), 8h);
  EXPECT_EQ(parse_time_of_day("8:30").value(), 8h + 30min);
  EXPECT_EQ(parse_time_of_day("21:00").value(), 21h);
  EXPECT_EQ(parse_time_of_day("24:00").value(), 24h);
  EXPECT_EQ(format_time_of_day(8h + 5min), "08:05");
}

TEST(rules_parse, time_of_day_rejects_malformed_input_with_a_clear_error) {
  for (auto bad : {"25:00", "24:30", "8", "08:0", "ab:cd", "", "08:60", "-1:00", "008:00"}) {
    const auto r = parse_time_of_day(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_input);
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos) << r.error().message;
  }
}

TEST(rules_parse, weekdays_accept_names_lists_and_ranges) {
  EXPECT_EQ(parse_weekdays("mon-fri").value(), weekdays::mon_fri);
  EXPECT_EQ(parse_weekdays("sat, sun").value(), weekdays::saturday | weekdays::sunday);
  EXPECT_EQ(parse_weekdays("Fri-Mon").value(),
            weekdays::friday | weekdays::saturday | weekdays::sunday | weekdays::monday);
  EXPECT_EQ(parse_weekdays("monday,WED").value(), weekdays::monday | weekdays::wednesday);
  EXPECT_EQ(parse_weekdays("mon-sun").value(), weekdays::every_day);
  EXPECT_EQ(weekday_bit(Sunday), weekdays::sunday);
  EXPECT_EQ(weekday_bit(Monday), weekdays::monday);
}

TEST(rules_parse, weekdays_reject_unknown_names_and_empty_lists) {
  for (auto bad : {"", "mon-xyz", "mon,", "funday", "mon--fri"}) {
    const auto r = parse_weekdays(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_input);
  }
  EXPECT_NE(parse_weekdays("mon,funday").error().message.find("funday"), std::string::npos);
}

TEST(rules_parse, weekdays_format_canonically) {
  EXPECT_EQ(format_weekdays(weekdays::mon_fri), "mon-fri");
  EXPECT_EQ(format_weekdays(weekdays::saturday | weekdays::sunday), "sat,sun");
  EXPECT_EQ(format_weekdays(weekdays::monday | weekdays::wednesday | weekdays::friday), "mon,wed,fri");
  EXPECT_EQ(format_weekdays(0), "");
  EXPECT_EQ(parse_weekdays(format_weekdays(0x55)).value(), 0x55);
}

TEST(rules_parse, durations_accept_seconds_minutes_hours_days_and_combinations) {
  EXPECT_EQ(parse_duration("90s").value(), 90s);
  EXPECT_EQ(parse_duration("10m").value(), 10min);
  EXPECT_EQ(parse_duration("4h").value(), 4h);
  EXPECT_EQ(parse_duration("1d").value(), 24h);
  EXPECT_EQ(parse_duration("1h30m").value(), 90min);
  EXPECT_EQ(parse_duration("0s").value(), 0s);
}

TEST(rules_parse, durations_reject_missing_units_and_garbage) {
  for (auto bad : {"", "10", "m", "10x", "-5m", "400d", "1.5h", "10 m", "9999999999s"}) {
    const auto r = parse_duration(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_input);
    EXPECT_NE(r.error().message.find("expected a number and a unit"), std::string::npos);
  }
}

TEST(rules_parse, dates_must_exist) {
  EXPECT_EQ(parse_date("2026-12-24").value(), 2026y / December / 24);
  EXPECT_FALSE(parse_date("2026-02-30").has_value());
  EXPECT_FALSE(parse_date("2026-2-3").has_value());
  EXPECT_EQ(parse_date("24/12/2026").error().code, errc::invalid_input);
}

// ---------------------------------------------------------------- holidays

TEST(us_holidays, independence_day_on_a_saturday_is_observed_on_friday) {
  EXPECT_TRUE(is_us_federal_holiday(2026y / July / 3));
  EXPECT_TRUE(is_us_federal_holiday(2026y / July / 4));
  EXPECT_FALSE(is_us_federal_holiday(2026y / July / 6));
}

TEST(us_holidays, thanksgiving_is_the_fourth_thursday_of_november) {
  EXPECT_TRUE(is_us_federal_holiday(2026y / November / 26));
  EXPECT_FALSE(is_us_federal_holiday(2026y / November / 19));
  EXPECT_TRUE(is_us_federal_holiday(2025y / November / 27));
}

TEST(us_holidays, new_years_day_on_a_saturday_is_observed_in_the_previous_year) {
  EXPECT_TRUE(is_us_federal_holiday(2021y / December / 31));  // for Saturday 2022-01-01
  EXPECT_FALSE(is_us_federal_holiday(2026y / December / 31));
}

TEST(us_holidays, sunday_holidays_move_to_monday_and_floating_ones_are_computed) {
  EXPECT_FALSE(is_us_federal_holiday(2023y / December / 26));  // Christmas 2023 was a Monday
  EXPECT_TRUE(is_us_federal_holiday(2022y / December / 26));  // Christmas 2022 was a Sunday
  EXPECT_TRUE(is_us_federal_holiday(2026y / January / 19));   // MLK: third Monday
  EXPECT_TRUE(is_us_federal_holiday(2026y / May / 25));       // Memorial Day: last Monday
  EXPECT_TRUE(is_us_federal_holiday(2026y / September / 7));  // Labor Day
}

TEST(us_holidays, juneteenth_counts_from_2021) {
  EXPECT_FALSE(is_us_federal_holiday(2020y / June / 19));
  EXPECT_TRUE(is_us_federal_holiday(2026y / June / 19));
  EXPECT_EQ(us_federal_holidays(2020y).count, 10U);
  EXPECT_EQ(us_federal_holidays(2026y).count, 11U);
}

// ---------------------------------------------------------------- windows

TEST(calling_window, rejects_inverted_or_out_of_range_hours) {
  EXPECT_EQ(calling_window::make(21h, 8h, weekdays::mon_fri).error().code, errc::invalid_input);
  EXPECT_EQ(calling_window::make(8h, 8h, weekdays::mon_fri).error().code, errc::invalid_input);
  EXPECT_EQ(calling_window::make(8h, 25h, weekdays::mon_fri).error().code, errc::invalid_input);
  EXPECT_EQ(calling_window::make(8h, 21h, 0x80).error().code, errc::invalid_input);
  EXPECT_TRUE(calling_window::make(0h, 24h, weekdays::every_day).has_value());
  EXPECT_NE(calling_window::make(21h, 8h, weekdays::mon_fri).error().message.find("21:00-08:00"), std::string::npos);
}

TEST(calling_window, opens_at_start_and_closes_at_end_in_local_time) {
  const auto w = calling_window::us_default();
  const auto ny = zones({"America/New_York"});
  // Wednesday 2026-01-14, EST (UTC-5).
  EXPECT_FALSE(open_at(w, ny, utc("2026-01-14T12:59:59Z")));
  EXPECT_TRUE(open_at(w, ny, utc("2026-01-14T13:00:00Z")));
  EXPECT_TRUE(open_at(w, ny, utc("2026-01-15T01:59:59Z")));
  EXPECT_FALSE(open_at(w, ny, utc("2026-01-15T02:00:00Z")));
}

TEST(calling_window, window_ending_at_24_00_stays_open_until_midnight) {
  const auto w = window("20:00", "24:00", "mon-sun", {false, {}});
  const auto london = zones({"Europe/London"});
  EXPECT_TRUE(open_at(w, london, utc("2026-01-14T23:59:59Z")));
  EXPECT_FALSE(open_at(w, london, utc("2026-01-15T00:00:00Z")));
}

TEST(calling_window, observed_holiday_is_closed_and_next_open_skips_to_the_next_business_day) {
  const auto w = calling_window::us_default();
  const auto ny = zones({"America/New_York"});
  EXPECT_FALSE(open_at(w, ny, utc("2026-07-03T15:00:00Z")));  // Friday, observed Independence Day
  EXPECT_EQ(iso(next_open(w, ny, utc("2026-07-03T15:00:00Z")).value()), "2026-07-06T12:00:00Z");
  EXPECT_FALSE(open_at(w, ny, utc("2026-11-26T15:00:00Z")));  // Thanksgiving
}

TEST(calling_window, holiday_calendar_can_be_disabled_or_extended) {
  const auto ny = zones({"America/New_York"});
  const auto no_holidays = window("08:00", "21:00", "mon-fri", {false, {}});
  EXPECT_TRUE(open_at(no_holidays, ny, utc("2026-07-03T15:00:00Z")));
  const auto extra = window("08:00", "21:00", "mon-fri", {false, {2026y / December / 24}});
  EXPECT_FALSE(open_at(extra, ny, utc("2026-12-24T15:00:00Z")));
  EXPECT_TRUE(open_at(extra, ny, utc("2026-12-23T15:00:00Z")));
  // Dates outside the precomputed range are still checked.
  const auto far = window("08:00", "21:00", "mon-sun", {true, {2150y / March / 3}});
  EXPECT_FALSE(far.day_allowed(sys_days{2150y / March / 3}));
  EXPECT_FALSE(far.day_allowed(sys_days{2150y / July / 4}));
  EXPECT_TRUE(far.day_allowed(sys_days{2150y / July / 7}));
}

TEST(calling_window, next_open_waits_over_the_weekend) {
  const auto w = calling_window::us_default();
  const auto ny = zones({"America/New_York"});
  // Friday 2026-02-06 21:00 EST has just closed; Monday 2026-02-09 08:00 EST is 13:00Z.
  EXPECT_EQ(iso(next_open(w, ny, utc("2026-02-07T02:00:00Z")).value()), "2026-02-09T13:00:00Z");
  // Friday 2026-01-16 after close: Monday the 19th is Martin Luther King Jr. Day, so Tuesday.
  EXPECT_EQ(iso(next_open(w, ny, utc("2026-01-17T02:00:00Z")).value()), "2026-01-20T13:00:00Z");
}

TEST(calling_window, next_open_returns_from_itself_when_already_open) {
  const auto w = calling_window::us_default();
  const auto from = utc("2026-02-09T15:00:00Z") + 250ms;
  EXPECT_EQ(next_open(w, zones({"America/New_York"}), from).value(), from);
}

TEST(calling_window, next_open_is_nullopt_without_weekdays_or_overlap) {
  const auto never = calling_window::make(8h, 21h, 0).value();
  EXPECT_FALSE(next_open(never, zones({"America/New_York"}), utc("2026-02-09T15:00:00Z")).has_value());
  // 08:00-09:00 in UTC and in Tokyo (UTC+9) never coincide.
  const auto w = window("08:00", "09:00", "mon-sun", {false, {}});
  EXPECT_FALSE(next_open(w, zones({"Etc/UTC", "Asia/Tokyo"}), utc("2026-02-09T00:00:00Z")).has_value());
}

TEST(calling_window, empty_zone_set_is_never_open) {
  const auto w = window("00:00", "24:00", "mon-sun", {false, {}});
  EXPECT_FALSE(open_at(w, zone_set{}, utc("2026-02-09T15:00:00Z")));
  EXPECT_FALSE(next_open(w, zone_set{}, utc("2026-02-09T15:00:00Z")).has_value());
}

// ---------------------------------------------------------------- DST

TEST(calling_window_dst, new_york_spring_forward_opens_an_hour_earlier_in_utc) {
  const auto w = window("08:00", "21:00", "mon-sun", {false, {}});
  const auto ny = zones({"America/New_York"});
  // Saturday 2026-03-07 is EST; Sunday 2026-03-08 is EDT from 02:00 local.
  EXPECT_EQ(iso(next_open(w, ny, utc("2026-03-07T05:00:00Z")).value()), "2026-03-07T13:00:00Z");
  EXPECT_EQ(iso(next_open(w, ny, utc("2026-03-08T02:00:00Z")).value()), "2026-03-08T12:00:00Z");
}

TEST(calling_window_dst, new_york_window_inside_the_skipped_hour_is_one_hour_long) {
  // 01:00-03:00 local on 2026-03-08: 01:00 EST is 06:00Z; at 07:00Z the clock jumps to 03:00 EDT.
  const auto w = window("01:00", "03:00", "mon-sun", {false, {}});
  const auto interval = next_open_interval(w, zones({"America/New_York"}), utc("2026-03-08T00:00:00Z")).value();
  EXPECT_EQ(iso(interval.open), "2026-03-08T06:00:00Z");
  EXPECT_EQ(iso(interval.close), "2026-03-08T07:00:00Z");
}

TEST(calling_window_dst, new_york_fall_back_repeats_the_hour_inside_the_window) {
  // 01:00-02:00 local on 2026-11-01 happens twice: 05:00Z-06:00Z (EDT) and 06:00Z-07:00Z (EST).
  const auto w = window("01:00", "02:00", "mon-sun", {false, {}});
  const auto interval = next_open_interval(w, zones({"America/New_York"}), utc("2026-11-01T00:00:00Z")).value();
  EXPECT_EQ(iso(interval.open), "2026-11-01T05:00:00Z");
  EXPECT_EQ(iso(interval.close), "2026-11-01T07:00:00Z");
  const auto day = window("08:00", "21:00", "mon-sun", {false, {}});
  EXPECT_EQ(iso(next_open(day, zones({"America/New_York"}), utc("2026-11-01T02:00:00Z")).value()),
            "2026-11-01T13:00:00Z");
}

TEST(calling_window_dst, london_transitions_move_the_opening_in_utc) {
  const auto w = window("08:00", "21:00", "mon-sun", {false, {}});
  const auto london = zones({"Europe/London"});
  EXPECT_EQ(iso(next_open(w, london, utc("2026-03-28T00:00:00Z")).value()), "2026-03-28T08:00:00Z");  // GMT
  EXPECT_EQ(iso(next_open(w, london, utc("2026-03-29T00:00:00Z")).value()), "2026-03-29T07:00:00Z");  // BST
  EXPECT_EQ(iso(next_open(w, london, utc("2026-10-24T00:00:00Z")).value()), "2026-10-24T07:00:00Z");  // BST
  EXPECT_EQ(iso(next_open(w, london, utc("2026-10-25T00:00:00Z")).value()), "2026-10-25T08:00:00Z");  // GMT
  EXPECT_FALSE(open_at(w, london, utc("2026-10-25T07:30:00Z")));
}

// ---------------------------------------------------------------- zones of a contact

TEST(contact_zones, the_contacts_own_zone_wins) {
  const auto z = zones_for_contact("Europe/Paris", "+14155550100").value();
  ASSERT_EQ(z.size(), 1U);
  EXPECT_EQ(zone_name(z[0]), "Europe/Paris");
}

TEST(contact_zones, an_unknown_zone_string_is_an_error_that_names_it) {
  const auto r = zones_for_contact("Mars/Olympus_Mons", "+14155550100");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::invalid_input);
  EXPECT_NE(r.error().message.find("Mars/Olympus_Mons"), std::string::npos);
}

TEST(contact_zones, nanp_numbers_use_their_area_code_zones) {
  const auto ny = zones_for_contact("", "+12125550100").value();
  ASSERT_EQ(ny.size(), 1U);
  EXPECT_EQ(zone_name(ny[0]), "America/New_York");
  const auto panhandle = zones_for_contact("", "+18505550100").value();
  EXPECT_EQ(panhandle.size(), 2U);
}

TEST(contact_zones, other_numbers_use_every_zone_of_their_country) {
  const auto gb = zones_for_contact("", "+442071838750").value();
  ASSERT_EQ(gb.size(), 1U);
  EXPECT_EQ(zone_name(gb[0]), "Europe/London");
  const auto au = zones_for_contact("", "+61291234567").value();  // Sydney landline: Australia has many zones
  EXPECT_GT(au.size(), 5U);
}

TEST(contact_zones, non_geographic_nanp_numbers_need_a_country) {
  const auto r = zones_for_contact("", "+18005550100");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::invalid_input);
  EXPECT_NE(r.error().message.find("timezone or a country"), std::string::npos);
  const auto us = zones_for_contact("", "+18005550100", "us").value();
  EXPECT_EQ(us, zones_of_country("US").value());
}

TEST(contact_zones, malformed_numbers_and_unknown_countries_are_refused) {
  EXPECT_EQ(zones_for_contact("", "4155550100").error().code, errc::invalid_input);
  EXPECT_EQ(zones_for_contact("", "+1 415 555 0100").error().code, errc::invalid_input);
  EXPECT_EQ(zones_for_contact("", "+18005550100", "XX").error().code, errc::invalid_input);
  EXPECT_EQ(zones_for_contact("", "+18005550100", "USA").error().code, errc::invalid_input);
  // A +1 number of the wrong length is refused even with a country to fall back on.
  EXPECT_EQ(zones_for_contact("", "+1415555010", "US").error().code, errc::invalid_input);
  EXPECT_EQ(zones_for_contact("", "+10155550100", "US").error().code, errc::invalid_input);
}

TEST(country_zones, us_spans_new_york_to_honolulu_and_adak) {
  const auto us = country_zones("US").value();
  for (auto name : {"America/New_York", "America/Chicago", "America/Phoenix", "Pacific/Honolulu", "America/Adak"}) {
    EXPECT_NE(std::find(us.begin(), us.end(), name), us.end()) << name;
  }
  EXPECT_EQ(country_zones("XX").error().code, errc::not_found);
}

TEST(country_zones, missing_tab_files_give_a_clear_unavailable_error) {
  const auto r = country_zone_table::load("/nonexistent/zoneinfo");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::unavailable);
  EXPECT_NE(r.error().message.find("/nonexistent/zoneinfo/zone1970.tab"), std::string::npos);
}

TEST(country_zones, tab_files_are_merged_per_country) {
  const auto dir = std::filesystem::temp_directory_path() / ("rules_tab_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "zone1970.tab") << "# comment\nCH,DE,LI\t+4723+00832\tEurope/Zurich\tSwiss time\n"
                                         "DE\t+5230+01322\tEurope/Berlin\tmost of Germany\n";
  std::ofstream(dir / "zone.tab") << "DE\t+4742+00841\tEurope/Busingen\tBusingen\n";
  const auto table = country_zone_table::load(dir).value();
  const auto de = table.zones_of("DE");
  ASSERT_EQ(de.size(), 3U);
  EXPECT_EQ(de[0], "Europe/Berlin");
  EXPECT_EQ(table.zones_of("LI").size(), 1U);
  std::ofstream(dir / "zone.tab") << "not a tab line\n";
  EXPECT_EQ(country_zone_table::load(dir).error().code, errc::internal);
  std::filesystem::remove_all(dir);
}

TEST(multi_zone_country, us_window_without_a_zone_holds_from_honolulu_to_new_york) {
  const auto w = window("08:00", "21:00", "mon-sun", {false, {}});
  const auto us = zones_of_country("US").value();
  // Winter: Honolulu (and Adak, HST) opens at 18:00Z; New York (EST) closes at 02:00Z.
  const auto winter = next_open_interval(w, us, utc("2026-01-14T03:00:00Z")).value();
  EXPECT_EQ(iso(winter.open), "2026-01-14T18:00:00Z");
  EXPECT_EQ(iso(winter.close), "2026-01-15T02:00:00Z");
  // Summer: New York (EDT) closes an hour earlier; Adak (HDT) opens before Honolulu, which has no DST.
  const auto summer = next_open_interval(w, us, utc("2026-07-15T03:00:00Z")).value();
  EXPECT_EQ(iso(summer.open), "2026-07-15T18:00:00Z");
  EXPECT_EQ(iso(summer.close), "2026-07-16T01:00:00Z");
}

TEST(tz_database, gives_daylight_saving_time_for_this_year) {
  EXPECT_TRUE(verify_os_tzdb(utc("2026-05-01T00:00:00Z")).has_value());
}

// ---------------------------------------------------------------- the cached checker

TEST(window_checker, agrees_with_the_reference_at_random_instants_in_many_zones) {
  const auto w = calling_window::us_default();
  window_checker checker(w);
  const zone_set all = zones({"America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata",
                              "America/St_Johns", "Pacific/Chatham", "Pacific/Kiritimati", "America/Phoenix",
                              "Pacific/Honolulu", "America/Adak", "Africa/Casablanca", "America/Santiago"});
  std::mt19937_64 rng(20260101);
  const auto begin = utc("2025-01-01T00:00:00Z").time_since_epoch().count();
  const auto end = utc("2028-01-01T00:00:00Z").time_since_epoch().count();
  std::uniform_int_distribution<std::int64_t> instant(begin, end);
  std::uniform_int_distribution<std::size_t> pick(0, all.size() - 1);
  for (int i = 0; i < 20000; ++i) {
    const time_point t{time_point::duration{instant(rng)}};
    const zone_set one{all[pick(rng)]};
    ASSERT_EQ(checker.open_at(one, t), open_at(w, one, t)) << zone_name(one[0]) << " " << iso(t);
  }
}

TEST(window_checker, agrees_with_the_reference_while_time_moves_across_dst_changes) {
  const auto w = window("08:00", "21:00", "mon-sun", {false, {}});
  window_checker checker(w);
  const auto ny = zones({"America/New_York"});
  const auto london = zones({"Europe/London"});
  for (auto t = utc("2026-03-01T00:00:00Z"); t < utc("2026-11-15T00:00:00Z"); t += 17min) {
    ASSERT_EQ(checker.open_at(ny, t), open_at(w, ny, t)) << iso(t);
    ASSERT_EQ(checker.open_at(london, t), open_at(w, london, t)) << iso(t);
  }
}

TEST(window_checker, cached_answers_flip_exactly_at_window_edges_and_offset_changes) {
  // Second by second through both 2026 New York transition nights, with windows whose edges fall inside
  // the skipped and the repeated hour.
  for (auto [start, end] : {std::pair{"01:00", "03:00"}, std::pair{"01:30", "02:30"}, std::pair{"00:00", "08:00"}}) {
    const auto w = window(start, end, "mon-sun", {false, {}});
    window_checker checker(w);
    const auto ny = zones({"America/New_York"});
    for (auto night : {utc("2026-03-08T04:00:00Z"), utc("2026-11-01T04:00:00Z")}) {
      for (auto t = night; t < night + 6h; t += 1s) {
        ASSERT_EQ(checker.open_at(ny, t), open_at(w, ny, t)) << start << "-" << end << " " << iso(t);
      }
    }
  }
}

TEST(window_checker, requires_every_zone_of_the_set) {
  window_checker checker(calling_window::us_default());
  const auto us = zones_of_country("US").value();
  EXPECT_FALSE(checker.open_at(us, utc("2026-01-14T14:00:00Z")));  // New York open, Honolulu not yet
  EXPECT_TRUE(checker.open_at(us, utc("2026-01-14T19:00:00Z")));
  EXPECT_FALSE(checker.open_at(zone_set{}, utc("2026-01-14T19:00:00Z")));
  EXPECT_EQ(iso(checker.next_open(us, utc("2026-01-14T14:00:00Z")).value()), "2026-01-14T18:00:00Z");
}

}  // namespace
}  // namespace dialer::rules
