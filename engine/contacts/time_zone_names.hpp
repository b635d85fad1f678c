#pragma once
// IANA time-zone names known to the OS tzdb, as date::locate_zone sees them.

#include <string_view>

namespace dialer::contacts {

// True when date::locate_zone(name) would succeed ("America/New_York", "UTC", "US/Eastern").
// Case-sensitive, like the tzdb. The first call loads the tzdb (a few ms); later calls are a binary
// search over ~600 names. Thread-safe, never allocates after the first call, never throws.
[[nodiscard]] bool is_known_time_zone(std::string_view name) noexcept;

}  // namespace dialer::contacts
