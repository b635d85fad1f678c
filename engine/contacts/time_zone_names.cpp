#include "engine/contacts/time_zone_names.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <date/tz.h>

namespace dialer::contacts {
namespace {

// The names date::locate_zone searches, sorted once. With USE_OS_TZDB the zone list already holds
// every name, links included, so this set equals what locate_zone accepts (tested).
std::vector<std::string> load_names() {
  std::vector<std::string> names;
  try {
    const auto& db = date::get_tzdb();
    names.reserve(db.zones.size());
    for (const auto& zone : db.zones) names.emplace_back(zone.name());
  } catch (const std::exception&) {
    // No tzdb on this machine: every non-empty zone is then unknown, which is the honest answer.
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

bool is_known_time_zone(std::string_view name) noexcept {
  static const std::vector<std::string> names = load_names();
  return std::binary_search(names.begin(), names.end(), name, [](const auto& a, const auto& b) {
    return std::string_view(a) < std::string_view(b);
  });
}

}  // namespace dialer::contacts
