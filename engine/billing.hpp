#pragma once
// Billing rules. A managed number accrues its monthly fee from purchase until release, prorated per
// day: each UTC calendar day on which the number was active for any part of the day costs
// monthly_fee / (days in that month). Release stops accrual at once: no day after the release day is
// charged. BYOC numbers accrue no number fee (the customer's carrier bills them).
// Per-minute call charges are added by the campaign pipeline from call attempts.

#include <date/date.h>
#include <string>
#include <vector>

#include "engine/ports/inventory_store.hpp"
#include "engine/telephony.hpp"

namespace dialer {

struct billing_period {
  date::sys_days from;  // inclusive
  date::sys_days to;    // inclusive
};

struct billing_line {
  std::string item;  // "number_fee", "call_minutes", "ai_minutes"
  number_id number;
  std::string e164;
  std::string description;
  date::sys_days from{};  // first day charged in the period
  date::sys_days to{};    // last day charged in the period
  double quantity = 0;    // days for number fees, minutes for calls
  micros amount = 0;
};

// One line per managed number and calendar month with at least one charged day in the period.
[[nodiscard]] std::vector<billing_line> number_fee_lines(const std::vector<phone_number>& numbers,
                                                         const billing_period& period);

// Per-minute lines: managed numbers pay the carrier minutes recorded on their calls ("call_minutes");
// every number pays AI usage ("ai_minutes"): for BYOC numbers that is all we bill, the customer's carrier
// bills their minutes.
[[nodiscard]] std::vector<billing_line> call_usage_lines(const std::vector<call_usage>& usage,
                                                         const billing_period& period, micros ai_rate_per_minute);

[[nodiscard]] micros total(const std::vector<billing_line>& lines) noexcept;

// A strict YYYY-MM-DD day; invalid_input ("'...' is not a date like 2026-11-01") otherwise.
[[nodiscard]] result<date::sys_days> parse_calendar_day(std::string_view text);

// "12.3400" style rendering of micros, rounded to 4 decimals.
[[nodiscard]] std::string format_money(micros amount);

}  // namespace dialer
