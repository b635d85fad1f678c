#pragma once
// The NANP area-code table: which state/province, country and time zones an area code (NPA) covers.
// Used for calling windows (the callee's local time when a contact has no time zone) and for
// local-presence caller-ID selection (same area code, else same region).
//
// The data is compiled in (engine/rules/data/nanp_areas.inc); the binary never reads the repository.
// Only geographic codes are listed. Non-geographic NPAs (toll-free 8XX, 5XX personal numbers, 600/622/633,
// 700, 710, 900) have no location and are deliberately absent: find_nanp_area() returns nullptr for them.

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace dialer::rules {

struct nanp_area {
  static constexpr std::size_t max_zones = 8;

  std::uint16_t npa = 0;
  std::string_view region;   // state, province or territory code: "CA", "ON", "DC"; the ISO country for Caribbean nations
  std::string_view country;  // ISO 3166-1 alpha-2: "US", "CA", "PR", "JM"...
  // zones[0] is the zone covering most of the area; the others are every other zone some part of the area
  // observes (officially or by local custom). A calling window must hold in all of them.
  std::array<std::string_view, max_zones> zones{};
  std::uint8_t zone_count = 0;

  [[nodiscard]] constexpr std::string_view primary_zone() const noexcept { return zones[0]; }
  [[nodiscard]] constexpr std::span<const std::string_view> all_zones() const noexcept {
    return {zones.data(), zone_count};
  }
};

// The entry for a three-digit NPA, or nullptr when it is not an assigned geographic NANP area code.
// O(1) (an index of 1000 slots built at compile time). Thread-safe, never allocates.
[[nodiscard]] const nanp_area* find_nanp_area(int npa) noexcept;

// The NPA of a NANP number in E.164 form ("+1NPANXXXXXX"), or -1 when it is not one.
// Thread-safe, never allocates.
[[nodiscard]] int nanp_npa_of(std::string_view e164) noexcept;

// Every entry, ordered by NPA. Thread-safe, never allocates.
[[nodiscard]] std::span<const nanp_area> all_nanp_areas() noexcept;

}  // namespace dialer::rules
