#pragma once
// Which time zones a contact's calling window must hold in: its own zone if it has one, else the zones of
// its number's NANP area code, else every zone of its number's country. Never a guess: when none of these
// is known the contact is refused with an error.
//
// Zones are date/tz objects from the OS tz database (/usr/share/zoneinfo). They live for the whole process,
// so a zone_set is a plain vector of pointers; the header only forward-declares date::time_zone.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/result.hpp"

namespace date {
class time_zone;
}

namespace dialer::rules {

// Sorted by address and free of duplicates (zones_for_contact guarantees it).
using zone_set = std::vector<const date::time_zone*>;

// The zone of an IANA name ("America/New_York"). errc::invalid_input names the unknown zone.
// Thread-safe; the first call in a process reads the tz database directory (a few ms).
[[nodiscard]] result<const date::time_zone*> find_zone(std::string_view name);

[[nodiscard]] std::string_view zone_name(const date::time_zone* zone) noexcept;

// contact_timezone: the contact's IANA zone, may be empty. e164: the contact's number ("+14155550100").
// country_hint: the contact's ISO country if the importer knows it, may be empty; used only when the
// number itself does not tell (non-geographic NANP codes such as 800, or numbers libphonenumber cannot
// place). errc::invalid_input for an unknown zone, a malformed number or an undeterminable country;
// errc::unavailable when the OS tz database cannot be read.
// Thread-safe. Not for the hot path (allocates, may parse with libphonenumber): call it when a contact
// is imported or enqueued and keep the zone_set with the contact.
[[nodiscard]] result<zone_set> zones_for_contact(std::string_view contact_timezone, std::string_view e164,
                                                 std::string_view country_hint = {});

// What zones_for_contact's answer depends on, as a cache key: the contact's zone name, else the NANP area code,
// else the country libphonenumber places the number in (Reunion +262 262 and Mayotte +262 269 share a calling
// code and a prefix, not a country). Thread-safe.
[[nodiscard]] std::string zone_key(std::string_view contact_timezone, std::string_view e164);

// Zone sets by zone_key: a contact's zones are computed once per distinct key, not once per contact. One thread
// (the runner's feeder); the pointers it returns stay valid for the cache's life.
class zone_cache {
 public:
  explicit zone_cache(std::string country_hint) : country_hint_(std::move(country_hint)) {}
  [[nodiscard]] result<const zone_set*> zones_for(std::string_view contact_timezone, std::string_view e164);

 private:
  std::unordered_map<std::string, std::unique_ptr<zone_set>> cache_;
  std::string country_hint_;
};

// All zones of an ISO country (see country_zones.hpp), resolved to zone objects.
[[nodiscard]] result<zone_set> zones_of_country(std::string_view country);

// Start-up check that the OS tz database gives correct DST rules for the year of `now`: date/tz 3.0 does
// not extend 'slim' TZif files (nor any file past its last transition, 2037 for 'fat' files) with their
// POSIX rule, and would silently use standard time all summer. errc::unavailable says what to fix.
[[nodiscard]] result<void> verify_os_tzdb(std::chrono::system_clock::time_point now);

}  // namespace dialer::rules
