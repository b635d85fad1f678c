#include <gtest/gtest.h>

#include "engine/billing.hpp"

namespace dialer {
namespace {

using namespace date::literals;

phone_number managed(micros fee, timestamp bought, std::optional<timestamp> released = std::nullopt) {
  phone_number n;
  n.id = number_id{1};
  n.e164 = "+14155550101";
  n.country = "US";
  n.kind = number_kind::managed;
  n.monthly_fee = fee;
  n.purchased_at = bought;
  n.released_at = released;
  return n;
}

timestamp at(date::sys_days day, int hour) { return day + std::chrono::hours(hour); }

TEST(Billing, AFullMonthCostsTheMonthlyFee) {
  const auto lines = number_fee_lines({managed(1'150'000, at(2026_y / 10 / 20, 9))}, {2026_y / 11 / 1, 2026_y / 11 / 30});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].quantity, 30);
  EXPECT_EQ(lines[0].amount, 1'150'000);
}

TEST(Billing, PartialMonthIsProratedPerDayIncludingThePurchaseDay) {
  const auto lines = number_fee_lines({managed(3'100'000, at(2026_y / 10 / 22, 23))}, {2026_y / 10 / 1, 2026_y / 10 / 31});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].quantity, 10);  // 22nd through 31st
  EXPECT_EQ(lines[0].amount, 1'000'000);
}

TEST(Billing, ReleaseStopsAccrualAfterTheReleaseDay) {
  const auto lines = number_fee_lines({managed(3'000'000, at(2026_y / 11 / 1, 1), at(2026_y / 11 / 3, 2))},
                                      {2026_y / 11 / 1, 2026_y / 11 / 30});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].quantity, 3);
  EXPECT_EQ(lines[0].amount, 300'000);
  EXPECT_EQ(lines[0].to, date::sys_days{2026_y / 11 / 3});
}

TEST(Billing, PeriodsSpanningMonthsProrateEachMonthByItsOwnLength) {
  const auto lines = number_fee_lines({managed(2'800'000, at(2026_y / 1 / 1, 0))}, {2026_y / 1 / 31, 2026_y / 2 / 2});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].amount, 2'800'000 / 31 + 1);  // 1 of 31 days, rounded half up
  EXPECT_EQ(lines[1].amount, 200'000);             // 2 of 28 days
}

TEST(Billing, ByocNumbersAndNumbersOutsideThePeriodCostNothing) {
  auto byoc = managed(1'000'000, at(2026_y / 11 / 1, 0));
  byoc.kind = number_kind::byoc;
  const auto released_before = managed(1'000'000, at(2026_y / 9 / 1, 0), at(2026_y / 9 / 30, 0));
  const auto bought_after = managed(1'000'000, at(2026_y / 12 / 5, 0));
  EXPECT_TRUE(number_fee_lines({byoc, released_before, bought_after}, {2026_y / 11 / 1, 2026_y / 11 / 30}).empty());
}

TEST(Billing, FormatsMoneyToFourDecimals) {
  EXPECT_EQ(format_money(1'150'000), "1.1500");
  EXPECT_EQ(format_money(38'333), "0.0383");
  EXPECT_EQ(format_money(-50), "-0.0001");
}

}  // namespace
}  // namespace dialer

namespace dialer {
namespace {

using namespace date::literals;

TEST(Billing, ManagedNumbersPayCarrierAndAgentMinutesByocOnlyAgentMinutes) {
  call_usage managed_use{number_id{1}, "+14155550100", number_kind::managed, 3, 5, 70'000};
  call_usage byoc_use{number_id{2}, "+13125550177", number_kind::byoc, 2, 4, 0};
  const auto lines = call_usage_lines({managed_use, byoc_use}, {2026_y / 11 / 1, 2026_y / 11 / 30}, 70'000);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].item, "call_minutes");
  EXPECT_EQ(lines[0].amount, 70'000);
  EXPECT_EQ(lines[1].item, "ai_minutes");
  EXPECT_EQ(lines[1].amount, 5 * 70'000);
  EXPECT_EQ(lines[2].item, "ai_minutes");
  EXPECT_EQ(lines[2].e164, "+13125550177");
  EXPECT_EQ(lines[2].amount, 4 * 70'000);
}

}  // namespace
}  // namespace dialer
