#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>

#include <unistd.h>

#include <date/tz.h>
#include <phonenumbers/phonenumberutil.h>

#include "engine/contacts/csv_reader.hpp"
#include "engine/contacts/digit_pattern.hpp"
#include "engine/contacts/phone_fast_path.hpp"
#include "engine/contacts/phone_metadata.hpp"
#include "engine/contacts/synthetic.hpp"
#include "engine/contacts/time_zone_names.hpp"
#include "engine/phone.hpp"

namespace dialer {
namespace {

using contacts::digit_pattern;
using contacts::phone_fast_path;

TEST(ParsePhone, NanpFormatsGiveTheSameE164) {
  for (const char* text : {"+1 (415) 555-0123", "415.555.0123", "4155550123", "1-415-555-0123",
                           "(415) 555-0123", "+14155550123", "  415 555 0123  "}) {
    auto p = parse_phone(text, "US");
    ASSERT_TRUE(p) << text << ": " << p.error().message;
    EXPECT_EQ(p->e164, "+14155550123") << text;
    EXPECT_EQ(p->country, "US");
    EXPECT_EQ(p->area_code, 415);
    EXPECT_EQ(p->national_destination_code, "415");
  }
}

TEST(ParsePhone, ExtensionIsKeptApartFromE164) {
  auto p = parse_phone("+1 (312) 555-0177 ext 12", "US");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->e164, "+13125550177");
  EXPECT_TRUE(p->had_extension);
  EXPECT_EQ(p->extension, "12");
  EXPECT_FALSE(parse_phone("+1 312 555 0177", "US")->had_extension);
  EXPECT_EQ(parse_phone("+1 312 555 0177", "US")->extension, "");
}

TEST(ParsePhone, ReportsCountryAndTypeOutsideNanp) {
  auto uk = parse_phone("+44 20 7946 0958", "US");
  ASSERT_TRUE(uk);
  EXPECT_EQ(uk->country, "GB");
  EXPECT_EQ(uk->type, number_type::local);
  EXPECT_EQ(uk->area_code, 0);
  EXPECT_EQ(uk->national_destination_code, "20");
  auto au = parse_phone("+61 491 570 156", "US");
  ASSERT_TRUE(au);
  EXPECT_EQ(au->type, number_type::mobile);
  EXPECT_EQ(parse_phone("800-555-0100", "US")->type, number_type::toll_free);
}

TEST(ParsePhone, InvalidNumberIsInvalidInputNamingTheText) {
  for (const char* text : {"+1 415 123 4567", "12345", "abc", "", "+999 123 456"}) {
    auto p = parse_phone(text, "US");
    ASSERT_FALSE(p) << text;
    EXPECT_EQ(p.error().code, errc::invalid_input);
    EXPECT_NE(p.error().message.find(fmt::format("'{}'", text)), std::string::npos) << p.error().message;
  }
}

TEST(ParsePhone, DefaultRegionIsCaseInsensitive) {
  auto p = parse_phone("020 7946 0958", "gb");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->e164, "+442079460958");
  EXPECT_TRUE(is_supported_region("us"));
  EXPECT_FALSE(is_supported_region("XX"));
}

TEST(IsE164Form, ChecksShapeOnly) {
  EXPECT_TRUE(is_e164_form("+14155550123"));
  EXPECT_TRUE(is_e164_form("+19999999999"));  // shape, not validity
  EXPECT_TRUE(is_e164_form("+123456789012345"));
  EXPECT_FALSE(is_e164_form("+1234567890123456"));  // 16 digits
  EXPECT_FALSE(is_e164_form("14155550123"));
  EXPECT_FALSE(is_e164_form("+04155550123"));
  EXPECT_FALSE(is_e164_form("+1 415 555 0123"));
  EXPECT_FALSE(is_e164_form("+1"));
}

TEST(DigitPattern, FullMatchFollowsTheRegexLanguage) {
  auto p = digit_pattern::compile("8(?:00|33|44)[2-9]\\d{6}|9\\d{2,3}|5?7");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(p->full_match("8002345678"));
  EXPECT_FALSE(p->full_match("8001345678"));  // [2-9]
  EXPECT_FALSE(p->full_match("800234567"));   // \d{6} is exact
  EXPECT_TRUE(p->full_match("912"));
  EXPECT_TRUE(p->full_match("9123"));
  EXPECT_FALSE(p->full_match("91234"));
  EXPECT_TRUE(p->full_match("7"));
  EXPECT_TRUE(p->full_match("57"));
  EXPECT_FALSE(p->full_match(""));
}

TEST(DigitPattern, PrefixMatchIsLookingAt) {
  auto p = digit_pattern::compile("8001|8[024]9");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->prefix_match("8095550123"));
  EXPECT_TRUE(p->prefix_match("8001234567"));
  EXPECT_FALSE(p->prefix_match("8005550123"));
  EXPECT_FALSE(p->prefix_match("80"));
  EXPECT_TRUE(digit_pattern::compile("\\d*")->prefix_match(""));  // the empty prefix matches
}

TEST(DigitPattern, NegatedClassesAndUnboundedRepeats) {
  auto p = digit_pattern::compile("[^0-3]+0*");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->full_match("4500"));
  EXPECT_FALSE(p->full_match("3"));
  EXPECT_FALSE(p->full_match("0"));
}

TEST(DigitPattern, RejectsSyntaxItDoesNotImplement) {
  for (const char* bad : {"^1", "1$", "(?=1)2", "\\w", "a", "1{2", "(1", "1)", "[a-z]", "1*?", "1{3,2}"}) {
    auto p = digit_pattern::compile(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().code, errc::invalid_input);
  }
}

TEST(PhoneMetadata, DecodesEveryRegionLibphonenumberKnows) {
  auto metadata = contacts::load_compiled_metadata();
  ASSERT_TRUE(metadata) << metadata.error().message;
  std::set<std::string> decoded;
  for (const auto& m : *metadata) {
    if (m.id != "001") decoded.insert(m.id);
  }
  std::set<std::string> supported;
  i18n::phonenumbers::PhoneNumberUtil::GetInstance()->GetSupportedRegions(&supported);
  EXPECT_EQ(decoded, supported);
  const auto us =
      std::find_if(metadata->begin(), metadata->end(), [](const auto& m) { return m.id == "US"; });
  ASSERT_NE(us, metadata->end());
  EXPECT_EQ(us->country_code, 1);
  EXPECT_TRUE(us->main_country_for_code);
  EXPECT_EQ(us->international_prefix, "011");
}

TEST(PhoneFastPath, EveryMetadataPatternCompiles) {
  EXPECT_TRUE(phone_fast_path::instance().all_patterns_compiled());
}

TEST(PhoneFastPath, CommonShapesSkipLibphonenumberParse) {
  const auto& fast = phone_fast_path::instance();
  for (const char* text : {"+1 (415) 555-0123", "415.555.0134", "4155550145", "1-415-555-0156",
                           "+14155550123", "+44 20 7946 0958", "+61 491 570 156", "555-0100"}) {
    EXPECT_TRUE(fast.takes_fast_parse(text, "US")) << text;
  }
  for (const char* text : {"+1 (312) 555-0177 ext 12", "abc", "415/555/0123", "011 44 20 7946 0958",
                           "+44 020 7946 0958", "12345", "+999 1234", "41"}) {
    EXPECT_FALSE(fast.takes_fast_parse(text, "US")) << text;
  }
  EXPECT_FALSE(fast.takes_fast_parse("4155550123", "GB"));  // another country's prefix rules apply
  EXPECT_TRUE(fast.takes_fast_parse("+14155550123", "GB"));
}

// The proof obligation of the fast path: identical answers to the reference on the same inputs.
void expect_same_as_reference(const std::vector<std::string>& inputs,
                              const std::vector<std::string>& regions) {
  const auto& fast = phone_fast_path::instance();
  std::size_t compared = 0, valid = 0;
  for (const auto& region : regions) {
    for (const auto& text : inputs) {
      auto want = parse_phone(text, region);
      auto got = fast.parse_phone(text, region);
      ++compared;
      ASSERT_EQ(want.has_value(), got.has_value())
          << "'" << text << "' in " << region << ": " << (want ? want->e164 : want.error().message) << " vs "
          << (got ? got->e164 : got.error().message);
      if (!want) continue;
      ++valid;
      EXPECT_EQ(want->e164, got->e164) << text;
      EXPECT_EQ(want->country, got->country) << text;
      EXPECT_EQ(want->type, got->type) << text;
      EXPECT_EQ(want->area_code, got->area_code) << text;
      EXPECT_EQ(want->had_extension, got->had_extension) << text;
      EXPECT_EQ(want->extension, got->extension) << text;
      if (want->e164.size() == 12 && want->e164.starts_with("+1")) {
        EXPECT_EQ(want->national_destination_code, got->national_destination_code) << text;
      }
    }
  }
  EXPECT_GT(valid, compared / 20) << "the sample should hold valid numbers too";
}

TEST(PhoneFastPath, EqualsLibphonenumberOnRandomNanpNumbersInEveryShape) {
  std::mt19937_64 rng(20240601);
  constexpr const char* shapes[] = {
      "+1 ({:03}) {:03}-{:04}",  "{:03}.{:03}.{:04}", "{:03}{:03}{:04}",     "1-{:03}-{:03}-{:04}",
      "({:03}) {:03}-{:04}",     "+1{:03}{:03}{:04}", "-{:03} {:03} {:04})", "1{:03}{:03}{:04}",
      "+1 {:03} {:03} {:04} x9", "{:03}-{:03}{:01}",  "+{:03} {:03} {:04}",  "+4{:03}{:03}{:03}"};
  std::vector<std::string> inputs;
  for (int i = 0; i < 12000; ++i) {
    // Area codes and exchanges drawn from all of 000-999 so invalid ones are exercised too.
    const auto npa = static_cast<unsigned>(rng() % 1000), nxx = static_cast<unsigned>(rng() % 1000);
    const auto line = static_cast<unsigned>(rng() % 10000);
    inputs.push_back(
        fmt::format(fmt::runtime(shapes[static_cast<std::size_t>(i) % std::size(shapes)]), npa, nxx, line));
  }
  expect_same_as_reference(inputs, {"US", "CA", "JM", "GB"});
}

TEST(PhoneFastPath, EqualsLibphonenumberOnEveryRegionsExampleNumbers) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const auto& util = *PhoneNumberUtil::GetInstance();
  std::set<std::string> regions;
  util.GetSupportedRegions(&regions);
  std::vector<std::string> inputs;
  for (const auto& region : regions) {
    for (int type = 0; type <= PhoneNumberUtil::VOICEMAIL; ++type) {
      PhoneNumber n;
      if (!util.GetExampleNumberForType(region, static_cast<PhoneNumberUtil::PhoneNumberType>(type), &n))
        continue;
      std::string intl, national;
      util.Format(n, PhoneNumberUtil::INTERNATIONAL, &intl);
      util.Format(n, PhoneNumberUtil::NATIONAL, &national);
      inputs.push_back(intl);
      inputs.push_back(national);
      std::string changed = intl;  // a neighbour: often invalid, sometimes another type
      changed.back() = static_cast<char>('0' + (changed.back() - '0' + 3) % 10);
      inputs.push_back(changed);
      inputs.push_back(intl.substr(0, intl.size() - 1));
    }
  }
  expect_same_as_reference(inputs, {"US", "DE"});
}

TEST(PhoneFastPath, EqualsLibphonenumberOnEveryRowOfASyntheticFile) {
  const auto path = std::filesystem::temp_directory_path() / fmt::format("phone-eq-{}.csv", ::getpid());
  ASSERT_TRUE(contacts::write_synthetic_contacts(path.string(), 20000, 7, "US"));
  auto reader = contacts::csv_reader::open(path.string());
  ASSERT_TRUE(reader);
  std::vector<std::string> phones;
  contacts::csv_record record;
  while (*reader->next(record)) {
    if (record.index > 0) phones.emplace_back(record.fields[0]);
  }
  std::filesystem::remove(path);
  ASSERT_EQ(phones.size(), 20000u);
  expect_same_as_reference(phones, {"US"});
}

TEST(TimeZoneNames, AcceptExactlyWhatLocateZoneAccepts) {
  for (const auto& zone : date::get_tzdb().zones)
    EXPECT_TRUE(contacts::is_known_time_zone(zone.name())) << zone.name();
  for (const char* bad : {"Mars/Olympus_Mons", "america/new_york", "", "America/New_York ", "posixrules"}) {
    EXPECT_FALSE(contacts::is_known_time_zone(bad)) << bad;
    EXPECT_THROW((void)date::locate_zone(bad), std::runtime_error) << bad;
  }
}

}  // namespace
}  // namespace dialer
