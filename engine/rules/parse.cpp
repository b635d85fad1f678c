#include "engine/rules/parse.hpp"

#include <array>
#include <charconv>

namespace dialer::rules {
namespace {

constexpr std::array<std::string_view, 7> short_names{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr std::array<std::string_view, 7> long_names{"monday", "tuesday", "wednesday", "thursday",
                                                     "friday", "saturday", "sunday"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int to_int(std::string_view digits) {
  int value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return value;
}

// Day index (Monday = 0) of a name, or -1.
int day_index(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (int i = 0; i < 7; ++i) {
    if (lower == short_names[static_cast<std::size_t>(i)] || lower == long_names[static_cast<std::size_t>(i)]) {
      return i;
    }
  }
  return -1;
}

}  // namespace

result<std::chrono::seconds> parse_time_of_day(std::string_view text) {
  const auto bad = [&] {
    return make_error(errc::invalid_input, "invalid time of day '{}': expected HH:MM between 00:00 and 24:00",
                      text);
  };
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return bad();
  const auto hours = text.substr(0, colon);
  const auto minutes = text.substr(colon + 1);
  if (hours.empty() || hours.size() > 2 || !all_digits(hours) || minutes.size() != 2 || !all_digits(minutes)) {
    return bad();
  }
  const int h = to_int(hours);
  const int m = to_int(minutes);
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return bad();
  return std::chrono::seconds{h * 3600 + m * 60};
}

std::string format_time_of_day(std::chrono::seconds since_midnight) {
  const auto total = since_midnight.count();
  return fmt::format("{:02}:{:02}", total / 3600, (total % 3600) / 60);
}

result<weekday_mask> parse_weekdays(std::string_view text) {
  weekday_mask mask = 0;
  std::size_t start = 0;
  if (trim(text).empty()) {
    return make_error(errc::invalid_input, "empty weekday list: expected days such as 'mon-fri' or 'mon,wed,sat'");
  }
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const auto item = trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    const auto dash = item.find('-');
    const int first = day_index(trim(item.substr(0, dash)));
    const int last = dash == std::string_view::npos ? first : day_index(trim(item.substr(dash + 1)));
    if (first < 0 || last < 0) {
      return make_error(errc::invalid_input,
                        "invalid weekday '{}' in '{}': expected mon, tue, wed, thu, fri, sat, sun or a range "
                        "such as mon-fri",
                        item, text);
    }
    for (int d = first;; d = (d + 1) % 7) {
      mask = static_cast<weekday_mask>(mask | (1U << d));
      if (d == last) break;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return mask;
}

std::string format_weekdays(weekday_mask days) {
  std::string out;
  int d = 0;
  while (d < 7) {
    if (!(days & (1U << d))) {
      ++d;
      continue;
    }
    int end = d;
    while (end + 1 < 7 && (days & (1U << (end + 1)))) ++end;
    if (!out.empty()) out += ',';
    out += short_names[static_cast<std::size_t>(d)];
    if (end > d) {
      out += end == d + 1 ? ',' : '-';
      out += short_names[static_cast<std::size_t>(end)];
    }
    d = end + 1;
  }
  return out;
}

result<std::chrono::seconds> parse_duration(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error(errc::invalid_input,
                      "invalid duration '{}': {}; expected a number and a unit (s, m, h, d) such as 90s, 10m, "
                      "4h, 1d or 1h30m",
                      text, why);
  };
  constexpr std::int64_t max_seconds = 366LL * 24 * 3600;
  if (text.empty()) return bad("empty");
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j == i) return bad("missing number");
    if (j - i > 9) return bad("number too large");
    if (j == text.size()) return bad("missing unit");
    const std::int64_t value = to_int(text.substr(i, j - i));
    std::int64_t unit = 0;
    switch (text[j]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: return bad(fmt::format("unknown unit '{}'", text[j]));
    }
    total += value * unit;
    if (total > max_seconds) return bad("longer than 366 days");
    i = j + 1;
  }
  return std::chrono::seconds{total};
}

result<std::chrono::year_month_day> parse_date(std::string_view text) {
  const auto bad = [&] {
    return make_error(errc::invalid_input, "invalid date '{}': expected an existing date as YYYY-MM-DD", text);
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !all_digits(text.substr(0, 4)) ||
      !all_digits(text.substr(5, 2)) || !all_digits(text.substr(8, 2))) {
    return bad();
  }
  const std::chrono::year_month_day date{std::chrono::year{to_int(text.substr(0, 4))},
                                         std::chrono::month{static_cast<unsigned>(to_int(text.substr(5, 2)))},
                                         std::chrono::day{static_cast<unsigned>(to_int(text.substr(8, 2)))}};
  if (!date.ok()) return bad();
  return date;
}

}  // namespace dialer::rules
