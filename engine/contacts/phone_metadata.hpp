#pragma once
// libphonenumber's own metadata, decoded from the bytes compiled into the library (the same bytes
// PhoneNumberUtil loads at start-up). The fast phone path evaluates these patterns with its own
// matcher; it never adds numbering rules of its own.

#include <string>
#include <vector>

#include "engine/result.hpp"

namespace dialer::contacts {

// One PhoneNumberDesc: a national-number pattern and the lengths it allows.
struct number_desc {
  std::string national_number_pattern;  // empty: no number of this type exists
  std::vector<int> possible_lengths;    // empty: inherits the general description's lengths
  std::vector<int> possible_lengths_local_only;
};

// The subset of PhoneMetadata that parsing and validation read.
struct region_metadata {
  std::string id;  // ISO 3166-1 region ("US"), or "001" for non-geographic entities
  int country_code = 0;
  std::string international_prefix;
  std::string national_prefix;
  std::string national_prefix_for_parsing;
  std::string national_prefix_transform_rule;
  std::string leading_digits;
  bool same_mobile_and_fixed_line_pattern = false;
  bool main_country_for_code = false;
  number_desc general_desc, fixed_line, mobile, toll_free, premium_rate, shared_cost, personal_number, voip,
      pager, uan, voicemail;
};

// Decodes libphonenumber's compiled-in PhoneMetadataCollection, in collection order.
// Thread-safe (pure function); allocates the whole table (about 250 regions). Call once.
[[nodiscard]] result<std::vector<region_metadata>> load_compiled_metadata();

}  // namespace dialer::contacts
