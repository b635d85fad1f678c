#include "engine/billing.hpp"

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>

namespace dialer {
namespace {

unsigned days_in_month(date::year_month ym) {
  return static_cast<unsigned>((date::year_month_day_last{ym / date::last}).day());
}

}  // namespace

std::vector<billing_line> number_fee_lines(const std::vector<phone_number>& numbers, const billing_period& period) {
  std::vector<billing_line> lines;
  for (const auto& n : numbers) {
    if (n.kind != number_kind::managed || n.monthly_fee <= 0) continue;
    // Charged days: from the purchase day through the release day (or the period's end).
    const auto first_day = date::floor<date::days>(n.purchased_at);
    date::sys_days last_day = period.to;
    if (n.released_at) last_day = std::min(last_day, date::floor<date::days>(*n.released_at));
    const date::sys_days begin = std::max(first_day, period.from);
    if (begin > last_day) continue;

    // One line per calendar month so each month's proration uses its own length.
    date::sys_days day = begin;
    while (day <= last_day) {
      const date::year_month_day ymd{day};
      const date::year_month ym{ymd.year(), ymd.month()};
      const date::sys_days month_last{date::year_month_day_last{ym / date::last}};
      const date::sys_days chunk_end = std::min(month_last, last_day);
      const auto days = static_cast<std::int64_t>((chunk_end - day).count() + 1);
      const unsigned dim = days_in_month(ym);
      billing_line line;
      line.item = "number_fee";
      line.number = n.id;
      line.e164 = n.e164;
      line.description = fmt::format("{} {} number, {} of {} days", n.country, to_string(n.type), days, dim);
      line.from = day;
      line.to = chunk_end;
      line.quantity = static_cast<double>(days);
      // Round half up to whole micros.
      line.amount = (n.monthly_fee * days * 2 + static_cast<std::int64_t>(dim)) / (2 * static_cast<std::int64_t>(dim));
      lines.push_back(std::move(line));
      day = chunk_end + date::days{1};
    }
  }
  return lines;
}

std::vector<billing_line> call_usage_lines(const std::vector<call_usage>& usage, const billing_period& period,
                                           micros ai_rate_per_minute) {
  std::vector<billing_line> lines;
  for (const auto& u : usage) {
    if (u.calls == 0) continue;
    billing_line base;
    base.number = u.number;
    base.e164 = u.e164;
    base.from = period.from;
    base.to = period.to;
    base.quantity = static_cast<double>(u.billed_minutes);
    if (u.kind == number_kind::managed) {
      billing_line line = base;
      line.item = "call_minutes";
      line.description = fmt::format("{} calls, {} carrier minutes", u.calls, u.billed_minutes);
      line.amount = u.carrier_cost;
      lines.push_back(std::move(line));
    }
    billing_line ai = base;
    ai.item = "ai_minutes";
    ai.description = fmt::format("{} calls, {} agent minutes", u.calls, u.billed_minutes);
    ai.amount = u.billed_minutes * ai_rate_per_minute;
    lines.push_back(std::move(ai));
  }
  return lines;
}

micros total(const std::vector<billing_line>& lines) noexcept {
  micros sum = 0;
  for (const auto& l : lines) sum += l.amount;
  return sum;
}

std::string format_money(micros amount) {
  const bool negative = amount < 0;
  const std::int64_t abs = std::llabs(amount);
  const std::int64_t ten_thousandths = (abs + 50) / 100;
  return fmt::format("{}{}.{:04d}", negative ? "-" : "", ten_thousandths / 10000, ten_thousandths % 10000);
}

result<date::sys_days> parse_calendar_day(std::string_view text) {
  // By hand: date::parse trips a false -Wmaybe-uninitialized in g++ 12.
  const auto bad = [&] {
    return make_error(errc::invalid_input, "'{}' is not a date like 2026-11-01", std::string(text.substr(0, 40)));
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return bad();
  int parts[3] = {0, 0, 0};
  const std::size_t starts[3] = {0, 5, 8};
  const std::size_t lengths[3] = {4, 2, 2};
  for (int i = 0; i < 3; ++i) {
    for (std::size_t k = starts[i]; k < starts[i] + lengths[i]; ++k) {
      if (text[k] < '0' || text[k] > '9') return bad();
      parts[i] = parts[i] * 10 + (text[k] - '0');
    }
  }
  const date::year_month_day ymd{date::year{parts[0]}, date::month{static_cast<unsigned>(parts[1])},
                                 date::day{static_cast<unsigned>(parts[2])}};
  if (!ymd.ok()) return bad();
  return date::sys_days{ymd};
}

}  // namespace dialer
