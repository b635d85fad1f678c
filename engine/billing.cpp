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

}  // namespace dialer
