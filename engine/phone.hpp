#pragma once
// E.164 phone numbers for the whole engine, parsed and validated by libphonenumber.
//
//   auto p = dialer::parse_phone("(415) 555-0123", "US");   // p->e164 == "+14155550123"
//
// This is the reference path: one libphonenumber Parse + validation per call (tens of
// microseconds). Bulk import uses contacts::phone_fast_path, which is proven equal to this.

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/result.hpp"
#include "engine/telephony.hpp"

namespace dialer {

struct parsed_phone {
  std::string e164;     // "+14155550123"; an extension is never part of it
  std::string country;  // ISO 3166-1 region libphonenumber assigns ("US", "CA", "GB"); "001" = non-geographic
  number_type type = number_type::local;  // FIXED_LINE(_OR_MOBILE) -> local; other special types -> local
  std::uint16_t area_code = 0;            // NANP area code (NPA, e.g. 415); 0 outside country code 1
  std::string
      national_destination_code;  // leading digits of the national number that form the NDC; may be empty
  bool had_extension = false;     // the input carried an extension ("ext 12"), never part of e164
  std::string extension;          // its digits ("12"), empty when there is none
};

// Parses `text` with `default_region` (ISO 3166-1 alpha-2, any case; used when the number has no
// "+<country code>") and accepts it only if libphonenumber says it is a valid number.
// Errors: errc::invalid_input, with a message that quotes `text` and says why.
// Thread-safe (libphonenumber's process-wide PhoneNumberUtil). Allocates.
[[nodiscard]] result<parsed_phone> parse_phone(std::string_view text, std::string_view default_region);

// True when `text` has the shape of an E.164 number: '+', a non-zero digit, then 1 to 14 more
// digits, nothing else. Shape only: "+19999999999" passes; use parse_phone to validate.
// Thread-safe, never allocates.
[[nodiscard]] bool is_e164_form(std::string_view text) noexcept;

// True when libphonenumber knows `region` (ISO 3166-1 alpha-2, any case) as a default region.
// Thread-safe. Allocates a small string.
[[nodiscard]] bool is_supported_region(std::string_view region);

// Upper-cases an ISO region code ("us" -> "US"), as libphonenumber expects. Never allocates
// beyond the small-string buffer.
[[nodiscard]] std::string normalize_region(std::string_view region);

}  // namespace dialer
