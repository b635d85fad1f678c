// The runner's zone cache: one zone computation per distinct key, and keys that cannot mix up two countries.
#include <gtest/gtest.h>

#include "engine/rules/zones.hpp"

namespace dialer::rules {
namespace {

bool has(const zone_set& zones, std::string_view name) {
  for (const auto* z : zones)
    if (zone_name(z) == name) return true;
  return false;
}

std::vector<std::string> names(const zone_set& zones) {
  std::vector<std::string> out;
  for (const auto* z : zones) out.emplace_back(zone_name(z));
  return out;
}

// Reunion (+262 262) and Mayotte (+262 269) share a calling code and the first digits of their numbers: the same
// six-character prefix once served both from one cache entry, so whichever came first decided the other's zone.
TEST(ZoneCache, ReunionAndMayotteNumbersGetTheirOwnZones) {
  zone_cache cache("US");
  auto reunion = cache.zones_for("", "+262262161234");
  auto mayotte = cache.zones_for("", "+262269601234");
  ASSERT_TRUE(reunion) << reunion.error().message;
  ASSERT_TRUE(mayotte) << mayotte.error().message;
  // (The OS tz database may list a country's zone with the zone it links to: Asia/Dubai for Reunion, UTC+4;
  // Africa/Nairobi for Mayotte, UTC+3.)
  EXPECT_TRUE(has(**reunion, "Indian/Reunion") && !has(**reunion, "Indian/Mayotte")) << testing::PrintToString(names(**reunion));
  EXPECT_TRUE(has(**mayotte, "Indian/Mayotte") && !has(**mayotte, "Indian/Reunion")) << testing::PrintToString(names(**mayotte));
  // And in the other order, in a fresh cache.
  zone_cache other("US");
  auto mayotte_first = other.zones_for("", "+262269601234");
  auto reunion_second = other.zones_for("", "+262262161234");
  ASSERT_TRUE(mayotte_first && reunion_second);
  EXPECT_TRUE(has(**reunion_second, "Indian/Reunion") && !has(**reunion_second, "Indian/Mayotte"))
      << testing::PrintToString(names(**reunion_second));
}

TEST(ZoneCache, KeysFollowWhatTheZonesDependOn) {
  EXPECT_EQ(zone_key("Europe/Paris", "+14155550100"), "tz:Europe/Paris");  // the contact's own zone wins
  EXPECT_EQ(zone_key("", "+14155550100"), zone_key("", "+14155559999"));  // one NANP area code, one entry
  EXPECT_NE(zone_key("", "+14155550100"), zone_key("", "+12125550100"));
  EXPECT_EQ(zone_key("", "+33142685300"), zone_key("", "+33612345678"));  // one country, one entry
  EXPECT_NE(zone_key("", "+262262161234"), zone_key("", "+262269601234"));
}

TEST(ZoneCache, AnEntryIsComputedOnceAndKeepsItsAddress) {
  zone_cache cache("US");
  auto a = cache.zones_for("", "+14155550100");
  auto b = cache.zones_for("", "+14155550199");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  auto bad = cache.zones_for("Mars/Olympus", "+14155550100");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("Mars/Olympus"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace dialer::rules
