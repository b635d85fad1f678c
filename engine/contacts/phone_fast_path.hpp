#pragma once
// Bulk phone parsing with exactly libphonenumber's answers, about a hundred times faster.
//
// Two parts, each exact by construction and checked against dialer::parse_phone in
// tests/unit/phone_test.cpp over generated samples:
//  1. Parsing. Inputs made only of ASCII digits and the separators " -.()", with an optional
//     leading '+', are parsed directly when every step of libphonenumber's ParseHelper is provably
//     an identity or a fixed strip for them (the argument is in phone_fast_path.cpp): "+<calling
//     code><digits>" when the code's national prefix cannot match, and, for a NANP default region,
//     digits starting 2-9 or "1" + ten digits. Every other input (extensions, letters, IDD
//     prefixes, leading zeros, ...) goes through PhoneNumberUtil::Parse.
//  2. Validation. Region selection and GetNumberTypeHelper are replayed step by step, with each
//     metadata pattern evaluated by a digit_pattern automaton instead of ICU regex. The patterns
//     come from libphonenumber's own compiled-in metadata; no numbering rule is written here.

#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/phone.hpp"
#include "engine/result.hpp"

namespace dialer::contacts {

enum class phone_status : std::uint8_t {
  ok,
  not_a_number,          // libphonenumber NOT_A_NUMBER / TOO_SHORT_AFTER_IDD
  invalid_country_code,  // unknown "+<code>", or no usable default region
  too_short,
  too_long,
  not_assigned,  // parses, but IsValidNumber says no such number
};

[[nodiscard]] std::string_view to_string(phone_status s) noexcept;

class phone_fast_path {
 public:
  // The process-wide instance. The first call decodes libphonenumber's metadata and compiles its
  // patterns (about 35 ms, 1 MB). Thread-safe.
  [[nodiscard]] static const phone_fast_path& instance();

  ~phone_fast_path();
  phone_fast_path(const phone_fast_path&) = delete;
  phone_fast_path& operator=(const phone_fast_path&) = delete;

  // Same result as dialer::parse_phone(text, region), except that national_destination_code is
  // filled only for ten-digit NANP numbers (the area code); elsewhere it needs libphonenumber's
  // formatter, and import does not use it. `region` must be upper case (dialer::normalize_region).
  // `out` is meaningful only when ok is returned.
  // Thread-safe. Allocates nothing on the fast shapes (all strings fit the small-string buffer);
  // falls back to libphonenumber, which allocates, for the rest.
  [[nodiscard]] phone_status parse(std::string_view text, std::string_view region, parsed_phone& out) const;

  // parse() with the error message dialer::parse_phone would give; `default_region` in any case.
  // Thread-safe. Allocates.
  [[nodiscard]] result<parsed_phone> parse_phone(std::string_view text,
                                                 std::string_view default_region) const;

  // True when parse() would answer `text` without calling libphonenumber's Parse (for tests and
  // benchmarks). Thread-safe, never allocates.
  [[nodiscard]] bool takes_fast_parse(std::string_view text, std::string_view region) const noexcept;

  // False if some country code's patterns did not compile (then that code is validated by
  // libphonenumber itself). Informational; results are exact either way.
  [[nodiscard]] bool all_patterns_compiled() const noexcept;

 private:
  struct tables;
  static result<std::unique_ptr<tables>> build_tables();
  explicit phone_fast_path(std::unique_ptr<tables> t);
  std::unique_ptr<tables> tables_;
};

}  // namespace dialer::contacts
