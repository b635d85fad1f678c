#include <gtest/gtest.h>

#include <phonenumbers/phonenumberutil.h>

#include <set>

#include "adapters/carriers/simulated/simulated_number_provider.hpp"

namespace dialer::carriers {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

number_search query(std::string country) {
  number_search q;
  q.country = std::move(country);
  return q;
}

TEST(SimulatedInventory, EveryNumberIsValidForLibphonenumberWithTheRightCountryAndType) {
  const auto& util = *PhoneNumberUtil::GetInstance();
  ASSERT_GT(simulated_inventory().size(), 3'000u);
  for (const auto& entry : simulated_inventory()) {
    PhoneNumber parsed;
    ASSERT_EQ(util.Parse(entry.e164, "ZZ", &parsed), PhoneNumberUtil::NO_PARSING_ERROR) << entry.e164;
    ASSERT_TRUE(util.IsValidNumber(parsed)) << entry.e164;
    std::string region;
    util.GetRegionCodeForNumber(parsed, &region);
    EXPECT_EQ(region, entry.country) << entry.e164;
    std::string formatted;
    util.Format(parsed, PhoneNumberUtil::E164, &formatted);
    EXPECT_EQ(formatted, entry.e164);

    const auto type = util.GetNumberType(parsed);
    switch (entry.type) {
      case number_type::local:
        EXPECT_TRUE(type == PhoneNumberUtil::FIXED_LINE || type == PhoneNumberUtil::FIXED_LINE_OR_MOBILE)
            << entry.e164 << " has type " << type;
        break;
      case number_type::toll_free:
        EXPECT_EQ(type, PhoneNumberUtil::TOLL_FREE) << entry.e164;
        break;
      case number_type::mobile:
        EXPECT_EQ(type, PhoneNumberUtil::MOBILE) << entry.e164;
        break;
    }
  }
}

TEST(SimulatedInventory, NumbersAreUniqueAndInFictionalRanges) {
  std::set<std::string> seen;
  for (const auto& entry : simulated_inventory()) {
    EXPECT_TRUE(seen.insert(entry.e164).second) << entry.e164;
    if (entry.country == "US" || entry.country == "CA") {
      EXPECT_EQ(entry.e164.substr(5, 5), "55501") << entry.e164;  // NXX-555-01XX
    }
  }
}

TEST(SimulatedInventory, UsLocalNumbersSpanEveryUsTimeZone) {
  std::set<std::string> areas;
  for (const auto& entry : simulated_inventory()) {
    if (entry.country == "US" && entry.type == number_type::local) areas.insert(entry.area_code);
  }
  // Eastern, Central, Mountain, Arizona, Pacific, Alaska, Hawaii.
  for (const char* code : {"212", "312", "303", "602", "415", "907", "808"})
    EXPECT_TRUE(areas.contains(code)) << code;
  EXPECT_GE(areas.size(), 19u);
}

TEST(SimulatedNumberProvider, SearchFiltersByTypeAreaCodeAndDigits) {
  simulated_number_provider provider;
  auto q = query("US");
  q.type = number_type::toll_free;
  auto toll_free = provider.search(q);
  ASSERT_TRUE(toll_free);
  ASSERT_EQ(toll_free->size(), 20u);  // the default limit
  for (const auto& n : *toll_free) EXPECT_EQ(n.type, number_type::toll_free);

  q = query("US");
  q.area_code = "415";
  q.contains = "0142";
  q.limit = 100;
  auto local = provider.search(q);
  ASSERT_TRUE(local);
  ASSERT_EQ(local->size(), 1u);
  EXPECT_EQ((*local)[0].e164, "+14155550142");
  EXPECT_EQ((*local)[0].region, "CA");
  EXPECT_EQ((*local)[0].country, "US");
  EXPECT_EQ((*local)[0].provider, "simulated");
}

TEST(SimulatedNumberProvider, SearchIsDeterministicAndHonoursTheLimit) {
  simulated_number_provider provider;
  auto q = query("gb");  // case does not matter
  q.limit = 7;
  auto first = provider.search(q);
  auto second = provider.search(q);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  ASSERT_EQ(first->size(), 7u);
  for (std::size_t i = 0; i < first->size(); ++i) EXPECT_EQ((*first)[i].e164, (*second)[i].e164);
  EXPECT_EQ((*first)[0].country, "GB");
}

TEST(SimulatedNumberProvider, SearchCoversCanadaAndAustralianMobiles) {
  simulated_number_provider provider;
  auto ca = query("CA");
  ca.area_code = "604";
  auto vancouver = provider.search(ca);
  ASSERT_TRUE(vancouver);
  ASSERT_FALSE(vancouver->empty());
  EXPECT_EQ((*vancouver)[0].region, "BC");

  auto au = query("AU");
  au.type = number_type::mobile;
  au.limit = 1000;
  auto mobiles = provider.search(au);
  ASSERT_TRUE(mobiles);
  EXPECT_EQ(mobiles->size(), 30u);
}

TEST(SimulatedNumberProvider, CountryWithoutSimulatedNumbersGivesAnEmptyList) {
  simulated_number_provider provider;
  auto found = provider.search(query("FR"));
  ASSERT_TRUE(found);
  EXPECT_TRUE(found->empty());
}

TEST(SimulatedNumberProvider, MalformedQueriesAreInvalidInput) {
  simulated_number_provider provider;
  auto bad_country = provider.search(query("USA"));
  ASSERT_FALSE(bad_country);
  EXPECT_EQ(bad_country.error().code, errc::invalid_input);
  EXPECT_EQ(bad_country.error().message,
            "country must be an ISO 3166 alpha-2 code such as \"US\", got \"USA\"");

  auto q = query("US");
  q.area_code = "41a";
  EXPECT_FALSE(provider.search(q));
  q = query("US");
  q.contains = "55x";
  EXPECT_FALSE(provider.search(q));
  q = query("US");
  q.limit = 0;
  auto zero = provider.search(q);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().message, "limit must be between 1 and 1000, got 0");
}

TEST(SimulatedNumberProvider, BuyReturnsTheNumberAndReleaseSucceeds) {
  simulated_number_provider provider;
  auto bought = provider.buy("+442079460123");
  ASSERT_TRUE(bought);
  EXPECT_EQ(bought->country, "GB");
  EXPECT_EQ(bought->type, number_type::local);
  EXPECT_EQ(bought->provider, "simulated");
  EXPECT_EQ(bought->provider_ref, "SIMPN442079460123");
  EXPECT_TRUE(provider.release(*bought));
}

TEST(SimulatedNumberProvider, BuyOfANumberOutsideTheInventoryIsNotFound) {
  simulated_number_provider provider;
  auto bought = provider.buy("+12125550200");
  ASSERT_FALSE(bought);
  EXPECT_EQ(bought.error().code, errc::not_found);
  EXPECT_EQ(bought.error().message, "number +12125550200 is not in the simulated inventory");

  purchased_number foreign;
  foreign.e164 = "+12125550200";
  auto released = provider.release(foreign);
  ASSERT_FALSE(released);
  EXPECT_EQ(released.error().code, errc::not_found);
}

}  // namespace
}  // namespace dialer::carriers
