#include "engine/rules/nanp.hpp"

#include <algorithm>
#include <initializer_list>

namespace dialer::rules {
namespace {

// Short names for the zones the data file uses repeatedly.
namespace zone_names {
constexpr std::string_view ny = "America/New_York";
constexpr std::string_view det = "America/Detroit";
constexpr std::string_view louisville = "America/Kentucky/Louisville";
constexpr std::string_view monticello = "America/Kentucky/Monticello";
constexpr std::string_view indy = "America/Indiana/Indianapolis";
constexpr std::string_view vincennes = "America/Indiana/Vincennes";
constexpr std::string_view winamac = "America/Indiana/Winamac";
constexpr std::string_view marengo = "America/Indiana/Marengo";
constexpr std::string_view petersburg = "America/Indiana/Petersburg";
constexpr std::string_view vevay = "America/Indiana/Vevay";
constexpr std::string_view chi = "America/Chicago";
constexpr std::string_view tell_city = "America/Indiana/Tell_City";
constexpr std::string_view knox = "America/Indiana/Knox";
constexpr std::string_view menominee = "America/Menominee";
constexpr std::string_view nd_center = "America/North_Dakota/Center";
constexpr std::string_view nd_new_salem = "America/North_Dakota/New_Salem";
constexpr std::string_view nd_beulah = "America/North_Dakota/Beulah";
constexpr std::string_view den = "America/Denver";
constexpr std::string_view boise = "America/Boise";
constexpr std::string_view phx = "America/Phoenix";
constexpr std::string_view la = "America/Los_Angeles";
constexpr std::string_view anc = "America/Anchorage";
constexpr std::string_view juneau = "America/Juneau";
constexpr std::string_view sitka = "America/Sitka";
constexpr std::string_view metlakatla = "America/Metlakatla";
constexpr std::string_view yakutat = "America/Yakutat";
constexpr std::string_view nome = "America/Nome";
constexpr std::string_view adak = "America/Adak";
constexpr std::string_view hnl = "Pacific/Honolulu";
constexpr std::string_view st_johns = "America/St_Johns";
constexpr std::string_view goose_bay = "America/Goose_Bay";
constexpr std::string_view halifax = "America/Halifax";
constexpr std::string_view glace_bay = "America/Glace_Bay";
constexpr std::string_view moncton = "America/Moncton";
constexpr std::string_view blanc_sablon = "America/Blanc-Sablon";
constexpr std::string_view toronto = "America/Toronto";
constexpr std::string_view atikokan = "America/Atikokan";
constexpr std::string_view iqaluit = "America/Iqaluit";
constexpr std::string_view winnipeg = "America/Winnipeg";
constexpr std::string_view rankin_inlet = "America/Rankin_Inlet";
constexpr std::string_view resolute = "America/Resolute";
constexpr std::string_view regina = "America/Regina";
constexpr std::string_view swift_current = "America/Swift_Current";
constexpr std::string_view edmonton = "America/Edmonton";
constexpr std::string_view cambridge_bay = "America/Cambridge_Bay";
constexpr std::string_view inuvik = "America/Inuvik";
constexpr std::string_view creston = "America/Creston";
constexpr std::string_view dawson_creek = "America/Dawson_Creek";
constexpr std::string_view fort_nelson = "America/Fort_Nelson";
constexpr std::string_view vancouver = "America/Vancouver";
constexpr std::string_view whitehorse = "America/Whitehorse";
constexpr std::string_view dawson = "America/Dawson";
}  // namespace zone_names

consteval nanp_area area(int npa, std::string_view region, std::string_view country,
                         std::initializer_list<std::string_view> zones) {
  // A throw in a consteval function is a compile error: bad rows in the data file cannot build.
  if (npa < 200 || npa > 999) throw "NPA out of range";
  if (zones.size() == 0 || zones.size() > nanp_area::max_zones) throw "bad zone count";
  if (region.size() != 2 || country.size() != 2) throw "region and country are two-letter codes";
  nanp_area a;
  a.npa = static_cast<std::uint16_t>(npa);
  a.region = region;
  a.country = country;
  std::size_t i = 0;
  for (auto z : zones) a.zones[i++] = z;
  a.zone_count = static_cast<std::uint8_t>(zones.size());
  return a;
}

using namespace zone_names;

constexpr nanp_area unsorted_areas[] = {
#include "engine/rules/data/nanp_areas.inc"
};

constexpr auto sorted_areas = [] {
  std::array<nanp_area, std::size(unsorted_areas)> sorted{};
  std::copy(std::begin(unsorted_areas), std::end(unsorted_areas), sorted.begin());
  std::sort(sorted.begin(), sorted.end(), [](const nanp_area& a, const nanp_area& b) { return a.npa < b.npa; });
  return sorted;
}();

constexpr auto npa_index = [] {
  std::array<std::int16_t, 1000> index{};
  index.fill(-1);
  for (std::size_t i = 0; i < sorted_areas.size(); ++i) {
    if (index[sorted_areas[i].npa] != -1) throw "duplicate NPA in nanp_areas.inc";
    index[sorted_areas[i].npa] = static_cast<std::int16_t>(i);
  }
  return index;
}();

}  // namespace

const nanp_area* find_nanp_area(int npa) noexcept {
  if (npa < 0 || npa >= static_cast<int>(npa_index.size())) return nullptr;
  const auto slot = npa_index[static_cast<std::size_t>(npa)];
  return slot < 0 ? nullptr : &sorted_areas[static_cast<std::size_t>(slot)];
}

int nanp_npa_of(std::string_view e164) noexcept {
  if (e164.size() != 12 || e164[0] != '+' || e164[1] != '1') return -1;
  for (std::size_t i = 2; i < e164.size(); ++i) {
    if (e164[i] < '0' || e164[i] > '9') return -1;
  }
  if (e164[2] < '2') return -1;  // NPAs never start with 0 or 1
  return (e164[2] - '0') * 100 + (e164[3] - '0') * 10 + (e164[4] - '0');
}

std::span<const nanp_area> all_nanp_areas() noexcept { return {sorted_areas.data(), sorted_areas.size()}; }

}  // namespace dialer::rules
