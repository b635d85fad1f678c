#include "engine/rules/country_zones.hpp"

#include <algorithm>
#include <fstream>

namespace dialer::rules {
namespace {

bool valid_country_code(std::string_view code) {
  return code.size() == 2 && code[0] >= 'A' && code[0] <= 'Z' && code[1] >= 'A' && code[1] <= 'Z';
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const auto pos = text.find(separator, start);
    parts.push_back(text.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return parts;
    start = pos + 1;
  }
}

// Both files share the layout "codes<TAB>coordinates<TAB>zone[<TAB>comment]"; zone.tab has one code per
// line, zone1970.tab a comma-separated list.
result<bool> read_tab(const std::filesystem::path& path,
                      std::map<std::string, std::vector<std::string>, std::less<>>& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const auto columns = split(line, '\t');
    if (columns.size() < 3 || columns[2].empty()) {
      return make_error(errc::internal, "{}:{}: expected 'codes<TAB>coordinates<TAB>zone', got '{}'",
                        path.string(), line_no, line);
    }
    for (auto code : split(columns[0], ',')) {
      if (!valid_country_code(code)) {
        return make_error(errc::internal, "{}:{}: '{}' is not an ISO 3166 alpha-2 code", path.string(), line_no,
                          code);
      }
      out[std::string(code)].emplace_back(columns[2]);
    }
  }
  return true;
}

}  // namespace

result<country_zone_table> country_zone_table::load(const std::filesystem::path& dir) {
  country_zone_table table;
  bool any = false;
  for (const char* file : {"zone1970.tab", "zone.tab"}) {
    auto read = read_tab(dir / file, table.by_country_);
    if (!read) return std::move(read).error();
    any = any || *read;
  }
  if (!any) {
    return make_error(errc::unavailable,
                      "cannot read {0}/zone1970.tab or {0}/zone.tab: the OS time zone database is missing "
                      "(install the tzdata package); zones of a country cannot be determined",
                      dir.string());
  }
  for (auto& [country, zones] : table.by_country_) {
    std::sort(zones.begin(), zones.end());
    zones.erase(std::unique(zones.begin(), zones.end()), zones.end());
  }
  return table;
}

std::span<const std::string> country_zone_table::zones_of(std::string_view country) const noexcept {
  const auto it = by_country_.find(country);
  if (it == by_country_.end()) return {};
  return it->second;
}

result<std::span<const std::string>> country_zones(std::string_view country) {
  static const result<country_zone_table> table =
      country_zone_table::load(std::filesystem::path(default_zoneinfo_dir));
  if (!table) return table.error();
  auto zones = table->zones_of(country);
  if (zones.empty()) {
    return make_error(errc::not_found, "country '{}' is not in the OS time zone database (expected an ISO 3166 "
                                       "alpha-2 code such as US or GB)",
                      country);
  }
  return zones;
}

}  // namespace dialer::rules
