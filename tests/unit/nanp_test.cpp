// The NANP area-code table: spot checks, split areas, and consistency with the OS tz database and
// libphonenumber (an independent source for which country each code belongs to).

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include <phonenumbers/phonenumberutil.h>

#include "engine/rules/country_zones.hpp"
#include "engine/rules/nanp.hpp"
#include "engine/rules/zones.hpp"

namespace dialer::rules {
namespace {

struct spot_check {
  int npa;
  std::string_view region;
  std::string_view country;
  std::string_view zone;
};

TEST(nanp, spot_checks_map_area_codes_to_region_country_and_primary_zone) {
  const spot_check checks[] = {
      {212, "NY", "US", "America/New_York"},   {415, "CA", "US", "America/Los_Angeles"},
      {907, "AK", "US", "America/Anchorage"},  {808, "HI", "US", "Pacific/Honolulu"},
      {312, "IL", "US", "America/Chicago"},    {602, "AZ", "US", "America/Phoenix"},
      {416, "ON", "CA", "America/Toronto"},    {604, "BC", "CA", "America/Vancouver"},
      {514, "QC", "CA", "America/Toronto"},    {709, "NL", "CA", "America/St_Johns"},
      {303, "CO", "US", "America/Denver"},     {313, "MI", "US", "America/Detroit"},
      {317, "IN", "US", "America/Indiana/Indianapolis"},
      {915, "TX", "US", "America/Denver"},     {202, "DC", "US", "America/New_York"},
      {787, "PR", "PR", "America/Puerto_Rico"}, {671, "GU", "GU", "Pacific/Guam"},
      {876, "JM", "JM", "America/Jamaica"},    {809, "DO", "DO", "America/Santo_Domingo"},
      {441, "BM", "BM", "Atlantic/Bermuda"},   {306, "SK", "CA", "America/Regina"},
  };
  for (const auto& c : checks) {
    const auto* area = find_nanp_area(c.npa);
    ASSERT_NE(area, nullptr) << c.npa;
    EXPECT_EQ(area->region, c.region) << c.npa;
    EXPECT_EQ(area->country, c.country) << c.npa;
    EXPECT_EQ(area->primary_zone(), c.zone) << c.npa;
  }
}

bool lists_zone(const nanp_area& area, std::string_view zone) {
  const auto zones = area.all_zones();
  return std::find(zones.begin(), zones.end(), zone) != zones.end();
}

TEST(nanp, split_areas_list_every_zone_they_span) {
  EXPECT_TRUE(lists_zone(*find_nanp_area(850), "America/Chicago"));   // Pensacola
  EXPECT_TRUE(lists_zone(*find_nanp_area(850), "America/New_York"));  // Tallahassee
  EXPECT_TRUE(lists_zone(*find_nanp_area(928), "America/Denver"));    // Navajo Nation observes DST
  EXPECT_TRUE(lists_zone(*find_nanp_area(907), "America/Adak"));
  EXPECT_TRUE(lists_zone(*find_nanp_area(208), "America/Los_Angeles"));  // Idaho panhandle
  EXPECT_TRUE(lists_zone(*find_nanp_area(812), "America/Chicago"));      // Evansville
  EXPECT_TRUE(lists_zone(*find_nanp_area(701), "America/Denver"));
  EXPECT_TRUE(lists_zone(*find_nanp_area(418), "America/Blanc-Sablon"));
  EXPECT_EQ(find_nanp_area(212)->zone_count, 1);
}

TEST(nanp, non_geographic_and_unassigned_codes_are_absent) {
  for (int npa : {800, 833, 844, 855, 866, 877, 888, 900, 500, 533, 600, 622, 700, 710, 211, 911, 999}) {
    EXPECT_EQ(find_nanp_area(npa), nullptr) << npa;
  }
  EXPECT_EQ(find_nanp_area(-1), nullptr);
  EXPECT_EQ(find_nanp_area(1000), nullptr);
  EXPECT_EQ(find_nanp_area(0), nullptr);
}

TEST(nanp, npa_is_read_from_e164_nanp_numbers_only) {
  EXPECT_EQ(nanp_npa_of("+14155550100"), 415);
  EXPECT_EQ(nanp_npa_of("+18765550100"), 876);
  EXPECT_EQ(nanp_npa_of("+442071838750"), -1);
  EXPECT_EQ(nanp_npa_of("+1415555010"), -1);    // too short
  EXPECT_EQ(nanp_npa_of("+141555501000"), -1);  // too long
  EXPECT_EQ(nanp_npa_of("+1415555010x"), -1);
  EXPECT_EQ(nanp_npa_of("+11155550100"), -1);  // NPAs never start with 1
  EXPECT_EQ(nanp_npa_of("14155550100"), -1);
}

TEST(nanp, table_is_sorted_unique_and_well_formed) {
  const auto areas = all_nanp_areas();
  ASSERT_GT(areas.size(), 400U);
  for (std::size_t i = 0; i < areas.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(areas[i - 1].npa, areas[i].npa);
    }
    EXPECT_EQ(find_nanp_area(areas[i].npa), &areas[i]);
    EXPECT_GE(areas[i].zone_count, 1);
    std::set<std::string_view> distinct(areas[i].all_zones().begin(), areas[i].all_zones().end());
    EXPECT_EQ(distinct.size(), areas[i].zone_count) << "duplicate zone for " << areas[i].npa;
  }
}

TEST(nanp, every_zone_in_the_table_exists_in_the_os_tz_database) {
  for (const auto& area : all_nanp_areas()) {
    for (auto zone : area.all_zones()) {
      EXPECT_TRUE(find_zone(zone).has_value()) << area.npa << " -> " << zone;
    }
  }
}

TEST(nanp, every_zone_belongs_to_the_country_of_its_area_code) {
  for (const auto& area : all_nanp_areas()) {
    const auto zones = country_zones(area.country);
    ASSERT_TRUE(zones.has_value()) << area.country << ": " << zones.error().message;
    for (auto zone : area.all_zones()) {
      EXPECT_NE(std::find(zones->begin(), zones->end(), zone), zones->end())
          << area.npa << ": " << zone << " is not a zone of " << area.country;
    }
  }
}

TEST(nanp, covers_every_us_state_dc_and_canadian_province) {
  std::set<std::string_view> us, ca;
  for (const auto& area : all_nanp_areas()) {
    if (area.country == "US") us.insert(area.region);
    if (area.country == "CA") ca.insert(area.region);
  }
  EXPECT_EQ(us.size(), 51U);  // 50 states + DC
  // PE shares 902/782 with NS (region NS); YT and NU share 867 with NT (region NT).
  EXPECT_EQ(ca, (std::set<std::string_view>{"AB", "BC", "MB", "NB", "NL", "NS", "NT", "ON", "QC", "SK"}));
}

TEST(nanp, countries_agree_with_libphonenumber_where_it_knows_the_code) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const auto* util = PhoneNumberUtil::GetInstance();
  int compared = 0;
  for (const auto& area : all_nanp_areas()) {
    // Find an exchange libphonenumber accepts; codes newer than its metadata have none and are skipped.
    for (int nxx = 201; nxx < 1000; nxx += 37) {
      PhoneNumber number;
      const auto e164 = "+1" + std::to_string(area.npa) + std::to_string(nxx) + "4567";
      if (util->Parse(e164, "ZZ", &number) != PhoneNumberUtil::NO_PARSING_ERROR || !util->IsValidNumber(number)) {
        continue;
      }
      std::string region;
      util->GetRegionCodeForNumber(number, &region);
      EXPECT_EQ(region, area.country) << area.npa;
      ++compared;
      break;
    }
  }
  EXPECT_GT(compared, 350);
}

}  // namespace
}  // namespace dialer::rules
