#include "engine/rules/zones.hpp"

#include <algorithm>
#include <string>

#include <date/tz.h>
#include <phonenumbers/phonenumberutil.h>

#include "engine/rules/country_zones.hpp"
#include "engine/rules/nanp.hpp"

namespace dialer::rules {
namespace {

bool is_e164(std::string_view text) {
  // E.164: '+', a country code that does not start with 0, at most 15 digits in all.
  if (text.size() < 8 || text.size() > 16 || text[0] != '+' || text[1] == '0') return false;
  return std::all_of(text.begin() + 1, text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

result<std::string> normalized_country(std::string_view country) {
  std::string upper(country);
  for (auto& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  if (upper.size() != 2 || !std::all_of(upper.begin(), upper.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return make_error(errc::invalid_input, "invalid country '{}': expected an ISO 3166 alpha-2 code such as US",
                      country);
  }
  return upper;
}

// The country libphonenumber places the number in, or empty when it cannot (shared or non-geographic codes).
std::string country_of_number(std::string_view e164) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const auto* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(std::string(e164), "ZZ", &number) != PhoneNumberUtil::NO_PARSING_ERROR) return {};
  std::string region;
  util->GetRegionCodeForNumber(number, &region);
  if (region.size() != 2 || region == "ZZ") return {};
  return region;
}

void sort_unique(zone_set& zones) {
  std::sort(zones.begin(), zones.end());
  zones.erase(std::unique(zones.begin(), zones.end()), zones.end());
}

}  // namespace

result<const date::time_zone*> find_zone(std::string_view name) {
  if (name.empty()) return make_error(errc::invalid_input, "empty time zone name: expected an IANA name such as America/New_York");
  try {
    return date::locate_zone(name);
  } catch (const std::runtime_error&) {
    return make_error(errc::invalid_input,
                      "unknown time zone '{}': not in the OS tz database (expected an IANA name such as "
                      "America/New_York)",
                      name);
  }
}

std::string_view zone_name(const date::time_zone* zone) noexcept { return zone ? zone->name() : std::string_view{}; }

result<zone_set> zones_of_country(std::string_view country) {
  auto names = country_zones(country);
  if (!names) return std::move(names).error();
  zone_set zones;
  zones.reserve(names->size());
  for (const auto& name : *names) {
    auto zone = find_zone(name);
    if (!zone) {
      return make_error(errc::unavailable, "the OS tz database lists zone '{}' for {} but has no such zone file",
                        name, country);
    }
    zones.push_back(*zone);
  }
  sort_unique(zones);
  return zones;
}

result<zone_set> zones_for_contact(std::string_view contact_timezone, std::string_view e164,
                                   std::string_view country_hint) {
  if (!contact_timezone.empty()) {
    auto zone = find_zone(contact_timezone);
    if (!zone) return std::move(zone).error();
    return zone_set{*zone};
  }
  if (!is_e164(e164)) {
    return make_error(errc::invalid_input, "'{}' is not an E.164 number ('+' and 7 to 15 digits)", e164);
  }

  std::string country;
  const int npa = nanp_npa_of(e164);
  if (npa < 0 && e164[1] == '1') {
    return make_error(errc::invalid_input, "'{}' is not a valid NANP number (+1 and ten digits, area code 200-999)",
                      e164);
  }
  if (npa >= 0) {
    if (const auto* area = find_nanp_area(npa)) {
      zone_set zones;
      for (auto name : area->all_zones()) {
        auto zone = find_zone(name);
        if (!zone) {
          return make_error(errc::unavailable, "area code {} maps to zone '{}', which the OS tz database lacks",
                            npa, name);
        }
        zones.push_back(*zone);
      }
      sort_unique(zones);
      return zones;
    }
    // A non-geographic NANP code (toll-free, 5XX...) can ring anywhere in 25 countries: only the hint can tell.
  } else {
    country = country_of_number(e164);
  }
  if (country.empty() && !country_hint.empty()) {
    auto hint = normalized_country(country_hint);
    if (!hint) return std::move(hint).error();
    country = *hint;
  }
  if (country.empty()) {
    return make_error(errc::invalid_input,
                      "cannot tell where {} rings (non-geographic or unknown number): give the contact a "
                      "timezone or a country",
                      e164);
  }
  auto zones = zones_of_country(country);
  if (!zones && zones.error().code == errc::not_found) {
    return make_error(errc::invalid_input, "cannot place {}: {}", e164, zones.error().message);
  }
  return zones;
}

result<void> verify_os_tzdb(std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  auto zone = find_zone("America/New_York");
  if (!zone) return make_error(errc::unavailable, "the OS tz database has no America/New_York: install tzdata");
  const auto year = year_month_day{floor<days>(now)}.year();
  const auto offset_on = [&](month m) {
    return (*zone)->get_info(date::sys_seconds{sys_days{year / m / 15}.time_since_epoch()}).offset;
  };
  if (offset_on(January) != hours{-5} || offset_on(July) != hours{-4}) {
    return make_error(errc::unavailable,
                      "the OS tz database gives no daylight saving time for America/New_York in {}: its zone "
                      "files are 'slim' or end before that year, and date/tz cannot extend them; install "
                      "'fat' zone files (Debian's tzdata) so calling windows use the right offsets",
                      static_cast<int>(year));
  }
  return ok();
}

std::string zone_key(std::string_view contact_timezone, std::string_view e164) {
  if (!contact_timezone.empty()) return "tz:" + std::string(contact_timezone);
  if (e164.size() > 4 && e164.compare(0, 2, "+1") == 0) return std::string(e164.substr(0, 5));
  const auto country = country_of_number(e164);
  // A number libphonenumber cannot place is decided by the hint alone (or is invalid): one key per number, so
  // that its error (which names the number) is its own.
  return country.empty() ? "n:" + std::string(e164) : "cc:" + country;
}

result<const zone_set*> zone_cache::zones_for(std::string_view contact_timezone, std::string_view e164) {
  auto key = zone_key(contact_timezone, e164);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second.get();
  // The campaign's default region is where numbers without a place (non-geographic codes) are taken to ring.
  auto zones = zones_for_contact(contact_timezone, e164, country_hint_);
  if (!zones) return std::move(zones).error();
  auto owned = std::make_unique<zone_set>(std::move(*zones));
  auto* ptr = owned.get();
  cache_.emplace(std::move(key), std::move(owned));
  return ptr;
}

}  // namespace dialer::rules
