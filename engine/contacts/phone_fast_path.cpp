#include "engine/contacts/phone_fast_path.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include <phonenumbers/phonenumberutil.h>

#include "engine/phone_type.hpp"

#include "engine/contacts/digit_pattern.hpp"
#include "engine/contacts/phone_metadata.hpp"

namespace dialer::contacts {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;
using lpn_type = PhoneNumberUtil::PhoneNumberType;

constexpr int max_country_code = 999;

struct compiled_desc {
  const digit_pattern* pattern = nullptr;  // null: empty pattern, which libphonenumber never matches
  std::vector<int> lengths;                // empty: no length filter (inherits the general description)
};

struct compiled_region {
  std::string id;
  int country_code = 0;
  const digit_pattern* leading_digits = nullptr;
  bool same_mobile_and_fixed_line_pattern = false;
  // Whether NANP digits written without '+' may skip Parse for this default region.
  bool national_shapes_ok = false;
  bool national_prefix_is_one = false;  // national_prefix_for_parsing is exactly "1"
  // national_prefix_for_parsing as an automaton; null when it is empty (nothing to strip).
  const digit_pattern* national_prefix = nullptr;
  bool national_prefix_compiled = true;  // false: cannot tell what it strips, so never skip Parse
  compiled_desc general, fixed_line, mobile, toll_free, premium_rate, shared_cost, personal_number, voip,
      pager, uan, voicemail;
};

struct country_entry {
  std::vector<const compiled_region*> regions;  // libphonenumber's order: main country first
  bool compiled = false;                        // every pattern of every region compiled: validation is ours
};

// A parse result: country code and national significant number.
struct parsed_digits {
  int country_code = 0;
  std::string_view nsn;  // points into fast_parse's `digits` buffer
};

// RegexBasedMatcher::MatchNationalNumber behind PhoneNumberUtil::IsNumberMatchingDesc.
bool matches(std::string_view nsn, const compiled_desc& desc) noexcept {
  if (!desc.lengths.empty() && std::find(desc.lengths.begin(), desc.lengths.end(),
                                         static_cast<int>(nsn.size())) == desc.lengths.end()) {
    return false;
  }
  return desc.pattern != nullptr && desc.pattern->full_match(nsn);
}

// PhoneNumberUtil::GetNumberTypeHelper, step for step.
lpn_type number_type_of(std::string_view nsn, const compiled_region& r) noexcept {
  if (!matches(nsn, r.general)) return PhoneNumberUtil::UNKNOWN;
  if (matches(nsn, r.premium_rate)) return PhoneNumberUtil::PREMIUM_RATE;
  if (matches(nsn, r.toll_free)) return PhoneNumberUtil::TOLL_FREE;
  if (matches(nsn, r.shared_cost)) return PhoneNumberUtil::SHARED_COST;
  if (matches(nsn, r.voip)) return PhoneNumberUtil::VOIP;
  if (matches(nsn, r.personal_number)) return PhoneNumberUtil::PERSONAL_NUMBER;
  if (matches(nsn, r.pager)) return PhoneNumberUtil::PAGER;
  if (matches(nsn, r.uan)) return PhoneNumberUtil::UAN;
  if (matches(nsn, r.voicemail)) return PhoneNumberUtil::VOICEMAIL;
  if (matches(nsn, r.fixed_line)) {
    if (r.same_mobile_and_fixed_line_pattern) return PhoneNumberUtil::FIXED_LINE_OR_MOBILE;
    if (matches(nsn, r.mobile)) return PhoneNumberUtil::FIXED_LINE_OR_MOBILE;
    return PhoneNumberUtil::FIXED_LINE;
  }
  if (!r.same_mobile_and_fixed_line_pattern && matches(nsn, r.mobile)) return PhoneNumberUtil::MOBILE;
  return PhoneNumberUtil::UNKNOWN;
}


phone_status to_status(PhoneNumberUtil::ErrorType e) noexcept {
  switch (e) {
    case PhoneNumberUtil::NO_PARSING_ERROR:
      return phone_status::ok;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
      return phone_status::invalid_country_code;
    case PhoneNumberUtil::TOO_SHORT_NSN:
      return phone_status::too_short;
    case PhoneNumberUtil::TOO_LONG_NSN:
      return phone_status::too_long;
    default:
      return phone_status::not_a_number;
  }
}

void set_extension(const PhoneNumber& number, parsed_phone& out) {
  out.had_extension = number.has_extension() && !number.extension().empty();
  if (out.had_extension) out.extension = number.extension();
  else out.extension.clear();
}

// "1" or "1|(<digit or [class]>\d{6})$": national prefixes that cannot consume anything from a
// ten-digit number starting 2-9 (the second branch must end the input after seven digits).
bool national_prefix_is_harmless(std::string_view npfp) {
  if (npfp == "1") return true;
  constexpr std::string_view head = "1|(", tail = "\\d{6})$";
  if (npfp.size() <= head.size() + tail.size() || !npfp.starts_with(head) || !npfp.ends_with(tail))
    return false;
  const std::string_view lead = npfp.substr(head.size(), npfp.size() - head.size() - tail.size());
  if (lead.size() == 1) return lead[0] >= '0' && lead[0] <= '9';
  if (lead.size() < 3 || lead.front() != '[' || lead.back() != ']') return false;
  return std::all_of(lead.begin() + 1, lead.end() - 1,
                     [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
}

}  // namespace

struct phone_fast_path::tables {
  std::deque<digit_pattern> patterns;  // deque: stable addresses for compiled_desc::pattern
  std::deque<compiled_region> regions;
  std::array<country_entry, max_country_code + 1> countries;
  const compiled_region* nanp_main = nullptr;  // the region ParseHelper uses after "+1" ("US")
  bool all_compiled = true;

  // PhoneNumberUtil::GetRegionCodeForNumber (+ GetRegionCodeForNumberFromRegionList).
  [[nodiscard]] const compiled_region* region_for(const country_entry& c,
                                                  std::string_view nsn) const noexcept {
    if (c.regions.size() == 1) return c.regions.front();
    for (const compiled_region* r : c.regions) {
      if (r->leading_digits != nullptr) {
        if (r->leading_digits->prefix_match(nsn)) return r;
      } else if (number_type_of(nsn, *r) != PhoneNumberUtil::UNKNOWN) {
        return r;
      }
    }
    return nullptr;
  }

  // The fast parse (see parse() for why each accepted shape equals libphonenumber's Parse).
  // `digits` receives the input's digits; the result's nsn points into it. nullopt: call Parse.
  [[nodiscard]] std::optional<parsed_digits> fast_parse(std::string_view text, std::string_view region,
                                                        std::array<char, 20>& digits) const noexcept {
    std::size_t count = 0;
    bool plus = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c >= '0' && c <= '9') {
        if (count == digits.size()) return std::nullopt;
        digits[count++] = c;
      } else if (c == '+' && i == 0) {
        plus = true;
      } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
        return std::nullopt;
      }
    }
    if (count < 3) return std::nullopt;  // IsViablePhoneNumber and the IDD length checks differ there
    const std::string_view all(digits.data(), count);
    if (plus) return after_plus(all);
    return national(all, region);
  }

  // "+" then digits: ExtractCountryCode takes the shortest known calling code; ParseHelper then
  // strips the national prefix of that code's main region, if its pattern matches a prefix.
  [[nodiscard]] std::optional<parsed_digits> after_plus(std::string_view all) const noexcept {
    if (all[0] == '0') return std::nullopt;
    int code = 0;
    for (std::size_t length = 1; length <= 3; ++length) {
      code = code * 10 + (all[length - 1] - '0');
      const country_entry& c = countries[static_cast<std::size_t>(code)];
      if (c.regions.empty()) continue;
      const std::string_view nsn = all.substr(length);
      const compiled_region& main = *c.regions.front();
      if (!c.compiled || nsn.size() < 2 || nsn.size() > 17 || nsn[0] == '0' ||
          !main.national_prefix_compiled ||
          (main.national_prefix != nullptr && main.national_prefix->prefix_match(nsn))) {
        return std::nullopt;
      }
      return parsed_digits{code, nsn};
    }
    return std::nullopt;
  }

  // Digits without '+', for a NANP default region: "1" + ten digits, or digits starting 2-9.
  [[nodiscard]] std::optional<parsed_digits> national(std::string_view all,
                                                      std::string_view region) const noexcept {
    // After a stripped "1", ParseHelper switches to the main NANP region's prefix rules.
    if (nanp_main == nullptr || !nanp_main->national_shapes_ok) return std::nullopt;
    const compiled_region* home = nanp_region(region);
    if (home == nullptr || !home->national_shapes_ok) return std::nullopt;
    if (all.size() == 11 && all[0] == '1' && all[1] >= '2') return parsed_digits{1, all.substr(1)};
    // "1|([2-9]\d{6})$" style prefixes turn seven digits into a full number; plain "1" does not.
    if (all[0] >= '2' && all.size() <= 17 && (all.size() != 7 || home->national_prefix_is_one)) {
      return parsed_digits{1, all};
    }
    return std::nullopt;
  }

  [[nodiscard]] const compiled_region* nanp_region(std::string_view region) const noexcept {
    // 25 NANP regions, compared two bytes at a time: cheap next to everything else per row.
    if (region.size() != 2) return nullptr;
    for (const compiled_region* r : countries[1].regions) {
      if (r->id == region) return r;
    }
    return nullptr;
  }

  // Validation and result for a parsed (country code, national significant number).
  [[nodiscard]] phone_status classify(int country_code, std::string_view nsn, parsed_phone& out) const {
    if (country_code <= 0 || country_code > max_country_code) return phone_status::not_assigned;
    const country_entry& c = countries[static_cast<std::size_t>(country_code)];
    const compiled_region* r = region_for(c, nsn);
    if (r == nullptr) return phone_status::not_assigned;
    const lpn_type type = number_type_of(nsn, *r);
    if (type == PhoneNumberUtil::UNKNOWN) return phone_status::not_assigned;
    out.e164.assign(1, '+');
    out.e164 += std::to_string(country_code);
    out.e164.append(nsn);
    out.country = r->id;
    out.type = to_number_type(type);
    out.area_code = 0;
    out.national_destination_code.clear();
    if (country_code == 1 && nsn.size() == 10) {
      out.area_code = static_cast<std::uint16_t>((nsn[0] - '0') * 100 + (nsn[1] - '0') * 10 + (nsn[2] - '0'));
      out.national_destination_code.assign(nsn.substr(0, 3));
    }
    return phone_status::ok;
  }
};

result<std::unique_ptr<phone_fast_path::tables>> phone_fast_path::build_tables() {
  auto metadata = load_compiled_metadata();
  if (!metadata) return std::move(metadata).error();
  auto t = std::make_unique<phone_fast_path::tables>();

  auto compile = [&](const std::string& pattern, bool& ok) -> const digit_pattern* {
    if (pattern.empty()) return nullptr;
    auto p = digit_pattern::compile(pattern);
    if (!p) {
      ok = false;
      return nullptr;
    }
    t->patterns.push_back(std::move(*p));
    return &t->patterns.back();
  };
  auto desc = [&](const number_desc& d, bool& ok) {
    return compiled_desc{compile(d.national_number_pattern, ok), d.possible_lengths};
  };

  // PhoneNumberUtil's constructor: per calling code, regions in metadata order, main country first.
  std::array<std::list<compiled_region*>, max_country_code + 1> order;
  std::array<bool, max_country_code + 1> ok_by_code;
  ok_by_code.fill(true);
  for (const region_metadata& m : *metadata) {
    if (m.id == "ZZ" || m.country_code <= 0 || m.country_code > max_country_code) continue;
    bool ok = true;
    compiled_region r;
    r.id = m.id;
    r.country_code = m.country_code;
    r.same_mobile_and_fixed_line_pattern = m.same_mobile_and_fixed_line_pattern;
    r.leading_digits = compile(m.leading_digits, ok);
    r.general = desc(m.general_desc, ok);
    r.fixed_line = desc(m.fixed_line, ok);
    r.mobile = desc(m.mobile, ok);
    r.toll_free = desc(m.toll_free, ok);
    r.premium_rate = desc(m.premium_rate, ok);
    r.shared_cost = desc(m.shared_cost, ok);
    r.personal_number = desc(m.personal_number, ok);
    r.voip = desc(m.voip, ok);
    r.pager = desc(m.pager, ok);
    r.uan = desc(m.uan, ok);
    r.voicemail = desc(m.voicemail, ok);
    // An eleven-digit national input must test TOO_LONG against the general lengths (see the
    // argument in parse()).
    const auto& lengths = m.general_desc.possible_lengths;
    const bool eleven_too_long = !lengths.empty() && lengths.front() != -1 &&
                                 *std::max_element(lengths.begin(), lengths.end()) < 11 &&
                                 std::find(m.general_desc.possible_lengths_local_only.begin(),
                                           m.general_desc.possible_lengths_local_only.end(),
                                           11) == m.general_desc.possible_lengths_local_only.end();
    r.national_shapes_ok = m.country_code == 1 && m.international_prefix == "011" &&
                           national_prefix_is_harmless(m.national_prefix_for_parsing) && eleven_too_long;
    r.national_prefix_is_one = m.national_prefix_for_parsing == "1";
    if (!m.national_prefix_for_parsing.empty()) {
      // Only "does it match a prefix at all" is asked of it, so capturing groups and the transform
      // rule do not matter; '$' and other syntax make it fail to compile, which disables the shortcut.
      auto prefix = digit_pattern::compile(m.national_prefix_for_parsing);
      if (prefix) {
        t->patterns.push_back(std::move(*prefix));
        r.national_prefix = &t->patterns.back();
      } else {
        r.national_prefix_compiled = false;
      }
    }
    if (!ok) ok_by_code[static_cast<std::size_t>(m.country_code)] = false;
    t->regions.push_back(std::move(r));
    auto& list = order[static_cast<std::size_t>(m.country_code)];
    if (m.main_country_for_code) {
      list.push_front(&t->regions.back());
    } else {
      list.push_back(&t->regions.back());
    }
  }
  for (std::size_t code = 0; code < order.size(); ++code) {
    auto& entry = t->countries[code];
    entry.compiled = ok_by_code[code] && !order[code].empty();
    if (!ok_by_code[code]) t->all_compiled = false;
    entry.regions.assign(order[code].begin(), order[code].end());
  }
  const auto& nanp = t->countries[1];
  if (nanp.compiled && !nanp.regions.empty()) t->nanp_main = nanp.regions.front();
  return t;
}

std::string_view to_string(phone_status s) noexcept {
  switch (s) {
    case phone_status::ok:
      return "ok";
    case phone_status::not_a_number:
      return "not a phone number";
    case phone_status::invalid_country_code:
      return "unknown country code or default region";
    case phone_status::too_short:
      return "too short";
    case phone_status::too_long:
      return "too long";
    case phone_status::not_assigned:
      return "no such number is assigned";
  }
  return "invalid";
}

phone_fast_path::phone_fast_path(std::unique_ptr<tables> t) : tables_(std::move(t)) {}
phone_fast_path::~phone_fast_path() = default;

const phone_fast_path& phone_fast_path::instance() {
  static const phone_fast_path* const shared = [] {
    auto built = build_tables();
    // Without tables every input takes libphonenumber's own path: slower, never wrong.
    return new phone_fast_path(built ? std::move(*built) : std::make_unique<tables>());
  }();
  return *shared;
}

bool phone_fast_path::all_patterns_compiled() const noexcept {
  return tables_->all_compiled && tables_->nanp_main != nullptr;
}

bool phone_fast_path::takes_fast_parse(std::string_view text, std::string_view region) const noexcept {
  std::array<char, 20> digits{};
  return tables_->fast_parse(text, region, digits).has_value();
}

phone_status phone_fast_path::parse(std::string_view text, std::string_view region, parsed_phone& out) const {
  // Fast shapes. The input holds only ASCII digits, the separators " -.()" and at most a leading
  // '+', with at least three digits. For such text ParseHelper reduces as follows:
  //  - ExtractPossibleNumber and TrimUnwantedEndChars only drop separators, all of which are in
  //    VALID_PUNCTUATION, so IsViablePhoneNumber holds; no extension pattern can match (each needs
  //    a letter, '#', '~', ',' or ';'); there is no ";phone-context=".
  //  - '+': MaybeExtractCountryCode consumes it and ExtractCountryCode takes the shortest known
  //    calling code (a leading 0 is refused). ParseHelper then uses that code's main region, whose
  //    national_prefix_for_parsing strips nothing unless its pattern matches a prefix of the rest
  //    (we fall back if it does). A leading 0 (Italian leading zero) and lengths outside 2-17 fall
  //    back too.
  //  - No '+', NANP default region: the IDD "011" cannot match digits starting 1-9. Digits starting
  //    2-9 do not start with the calling code "1", and the region's prefix pattern ("1", or
  //    "1|(<class>\d{6})$", which only ever matches exactly seven digits) strips nothing, so the
  //    result is (1, digits). "1" + ten digits starting 2-9 is eleven digits, which TestNumberLength
  //    calls TOO_LONG for the region, so MaybeExtractCountryCode strips the "1" as the calling code;
  //    the main NANP region's prefix "1" then strips nothing.
  std::array<char, 20> digits{};
  if (const auto fast = tables_->fast_parse(text, region, digits)) {
    out.had_extension = false;
    out.extension.clear();
    return tables_->classify(fast->country_code, fast->nsn, out);
  }

  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  const auto parse_error = util.Parse(std::string(text), std::string(region), &number);
  if (parse_error != PhoneNumberUtil::NO_PARSING_ERROR) return to_status(parse_error);
  std::string nsn;
  util.GetNationalSignificantNumber(number, &nsn);
  const int code = number.country_code();
  if (code > 0 && code <= max_country_code && tables_->countries[static_cast<std::size_t>(code)].compiled) {
    const phone_status s = tables_->classify(code, nsn, out);
    if (s == phone_status::ok) set_extension(number, out);
    return s;
  }
  if (!util.IsValidNumber(number)) return phone_status::not_assigned;
  util.Format(number, PhoneNumberUtil::E164, &out.e164);
  util.GetRegionCodeForNumber(number, &out.country);
  out.type = to_number_type(util.GetNumberType(number));
  set_extension(number, out);
  out.area_code = 0;
  out.national_destination_code.clear();
  if (code == 1 && nsn.size() == 10) {
    out.area_code = static_cast<std::uint16_t>((nsn[0] - '0') * 100 + (nsn[1] - '0') * 10 + (nsn[2] - '0'));
    out.national_destination_code = nsn.substr(0, 3);
  }
  return phone_status::ok;
}

result<parsed_phone> phone_fast_path::parse_phone(std::string_view text,
                                                  std::string_view default_region) const {
  const std::string region = normalize_region(default_region);
  parsed_phone out;
  const phone_status s = parse(text, region, out);
  if (s != phone_status::ok) {
    return make_error(errc::invalid_input, "'{}' is not a valid phone number (default region '{}'): {}", text,
                      region, to_string(s));
  }
  return out;
}

}  // namespace dialer::contacts
