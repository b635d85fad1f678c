#include "engine/phone.hpp"

#include <phonenumbers/phonenumberutil.h>

#include "engine/phone_type.hpp"

namespace dialer {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

std::string_view parse_error_reason(PhoneNumberUtil::ErrorType e) {
  switch (e) {
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
      return "unknown country code or default region";
    case PhoneNumberUtil::NOT_A_NUMBER:
      return "not a phone number";
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
      return "too short after the international prefix";
    case PhoneNumberUtil::TOO_SHORT_NSN:
      return "too short";
    case PhoneNumberUtil::TOO_LONG_NSN:
      return "too long";
    default:
      return "unparseable";
  }
}

}  // namespace

std::string normalize_region(std::string_view region) {
  std::string out(region);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool is_supported_region(std::string_view region) {
  return PhoneNumberUtil::GetInstance()->GetCountryCodeForRegion(normalize_region(region)) != 0;
}

result<parsed_phone> parse_phone(std::string_view text, std::string_view default_region) {
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  const std::string region = normalize_region(default_region);
  PhoneNumber number;
  const auto parse_error = util.Parse(std::string(text), region, &number);
  if (parse_error != PhoneNumberUtil::NO_PARSING_ERROR) {
    return make_error(errc::invalid_input, "'{}' is not a valid phone number (default region '{}'): {}", text,
                      region, parse_error_reason(parse_error));
  }
  if (!util.IsValidNumber(number)) {
    return make_error(errc::invalid_input,
                      "'{}' is not a valid phone number (default region '{}'): no such number is assigned",
                      text, region);
  }
  parsed_phone out;
  util.Format(number, PhoneNumberUtil::E164, &out.e164);
  util.GetRegionCodeForNumber(number, &out.country);
  out.type = to_number_type(util.GetNumberType(number));
  out.had_extension = number.has_extension() && !number.extension().empty();
  if (out.had_extension) out.extension = number.extension();
  std::string national;
  util.GetNationalSignificantNumber(number, &national);
  const int ndc_length = util.GetLengthOfNationalDestinationCode(number);
  if (ndc_length > 0)
    out.national_destination_code = national.substr(0, static_cast<std::size_t>(ndc_length));
  if (number.country_code() == 1 && national.size() == 10) {
    out.area_code = static_cast<std::uint16_t>((national[0] - '0') * 100 + (national[1] - '0') * 10 +
                                               (national[2] - '0'));
  }
  return out;
}

bool is_e164_form(std::string_view text) noexcept {
  if (text.size() < 3 || text.size() > 16 || text[0] != '+' || text[1] < '1' || text[1] > '9') return false;
  for (std::size_t i = 2; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

}  // namespace dialer
