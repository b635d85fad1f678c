#pragma once
// Country -> every IANA time zone it spans, from the OS tz database's zone1970.tab and zone.tab.
// Used when a contact has no time zone and its number does not pin one (non-NANP numbers): the calling
// window must then hold in every zone of the country.

#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/result.hpp"

namespace dialer::rules {

// Where the OS keeps the tz database; the same directory date/tz (USE_OS_TZDB) reads.
inline constexpr std::string_view default_zoneinfo_dir = "/usr/share/zoneinfo";

class country_zone_table {
 public:
  // Reads <dir>/zone1970.tab and <dir>/zone.tab and takes the union per country (zone1970.tab lists a
  // zone once under every country it covers; zone.tab lists the per-country link names). Either file
  // alone is enough; errc::unavailable when neither can be read, errc::internal when one is malformed.
  [[nodiscard]] static result<country_zone_table> load(const std::filesystem::path& dir);

  // Zone names of an ISO 3166-1 alpha-2 country (upper case), sorted; empty when the country is unknown.
  // Thread-safe (the table is immutable after load), never allocates.
  [[nodiscard]] std::span<const std::string> zones_of(std::string_view country) const noexcept;
  [[nodiscard]] std::size_t country_count() const noexcept { return by_country_.size(); }

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> by_country_;
};

// The zones of a country from the process-wide table, loaded from default_zoneinfo_dir at first use
// (thread-safe: a function-local static). errc::unavailable when the tab files are missing (the error
// repeats on every call), errc::not_found for a country the tz database does not know.
// Thread-safe; allocates only on the first call and when returning an error.
[[nodiscard]] result<std::span<const std::string>> country_zones(std::string_view country);

}  // namespace dialer::rules
