#include "adapters/carriers/simulated/simulated_number_provider.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <tuple>
#include <unordered_map>

namespace dialer::carriers {
namespace {

constexpr std::string_view provider_name = "simulated";
constexpr int max_limit = 1000;

struct area {
  std::string_view code;
  std::string_view region;
};

// Eastern, Central, Mountain, Arizona (no DST), Pacific, Alaska and Hawaii: enough spread to exercise
// calling windows and local-presence caller-ID selection.
constexpr area us_areas[] = {
    {"202", "DC"}, {"212", "NY"}, {"305", "FL"}, {"404", "GA"}, {"617", "MA"}, {"646", "NY"},
    {"718", "NY"}, {"214", "TX"}, {"312", "IL"}, {"512", "TX"}, {"615", "TN"}, {"303", "CO"},
    {"801", "UT"}, {"602", "AZ"}, {"206", "WA"}, {"213", "CA"}, {"310", "CA"}, {"415", "CA"},
    {"503", "OR"}, {"702", "NV"}, {"907", "AK"}, {"808", "HI"},
};
constexpr std::string_view us_toll_free[] = {"800", "833", "844", "855", "866", "877", "888"};
constexpr area ca_areas[] = {{"416", "ON"}, {"514", "QC"}, {"604", "BC"}};
// ACMA's list of fictitious mobile numbers (national significant numbers, without the leading 0).
constexpr std::string_view au_mobiles[] = {
    "491570006", "491570156", "491570157", "491570158", "491570159", "491570110", "491570313", "491570737",
    "491571266", "491571491", "491571804", "491572549", "491572665", "491572983", "491573770", "491573087",
    "491574118", "491574632", "491575254", "491575789", "491576398", "491576801", "491577426", "491577644",
    "491578957", "491578148", "491578888", "491579212", "491579760", "491579455",
};

std::vector<inventory_entry> build_inventory() {
  std::vector<inventory_entry> all;
  auto add_block = [&](std::string_view country, number_type type, std::string_view cc,
                       std::string_view area_code, std::string_view prefix, int first, int count, int width,
                       std::string_view region) {
    for (int i = first; i < first + count; ++i) {
      all.push_back(inventory_entry{fmt::format("+{}{}{}{:0{}}", cc, area_code, prefix, i, width),
                                    std::string(country), type, std::string(area_code), std::string(region)});
    }
  };
  for (const auto& a : us_areas)
    add_block("US", number_type::local, "1", a.code, "55501", 0, 100, 2, a.region);
  for (auto code : us_toll_free) add_block("US", number_type::toll_free, "1", code, "55501", 0, 100, 2, "");
  for (const auto& a : ca_areas)
    add_block("CA", number_type::local, "1", a.code, "55501", 0, 100, 2, a.region);
  add_block("GB", number_type::local, "44", "20", "79460", 0, 1000, 3, "London");
  add_block("GB", number_type::local, "44", "113", "4960", 0, 1000, 3, "Leeds");
  add_block("GB", number_type::toll_free, "44", "808", "1570", 0, 1000, 3, "");
  std::vector<std::string_view> au(std::begin(au_mobiles), std::end(au_mobiles));
  std::sort(au.begin(), au.end());
  for (auto nsn : au) {
    all.push_back(inventory_entry{fmt::format("+61{}", nsn), "AU", number_type::mobile, "491", ""});
  }
  auto order = [](const inventory_entry& a, const inventory_entry& b) {
    return std::tie(a.country, a.type, a.area_code, a.e164) <
           std::tie(b.country, b.type, b.area_code, b.e164);
  };
  std::sort(all.begin(), all.end(), order);
  return all;
}

struct inventory {
  std::vector<inventory_entry> entries = build_inventory();
  std::unordered_map<std::string_view, const inventory_entry*> by_e164 = [this] {
    std::unordered_map<std::string_view, const inventory_entry*> index;
    for (const auto& e : entries) index.emplace(e.e164, &e);
    return index;
  }();
};

const inventory& the_inventory() {
  static const inventory instance;
  return instance;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

const inventory_entry* find(std::string_view e164) {
  const auto& index = the_inventory().by_e164;
  auto it = index.find(e164);
  return it == index.end() ? nullptr : it->second;
}

}  // namespace

std::span<const inventory_entry> simulated_inventory() {
  return the_inventory().entries;
}

result<std::vector<available_number>> simulated_number_provider::search(const number_search& query) {
  std::string country = query.country;
  std::transform(country.begin(), country.end(), country.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  if (country.size() != 2 || !std::isalpha(static_cast<unsigned char>(country[0])) ||
      !std::isalpha(static_cast<unsigned char>(country[1]))) {
    return make_error(errc::invalid_input,
                      "country must be an ISO 3166 alpha-2 code such as \"US\", got \"{}\"", query.country);
  }
  if (query.area_code && !all_digits(*query.area_code)) {
    return make_error(errc::invalid_input, "area code must be digits such as \"415\", got \"{}\"",
                      *query.area_code);
  }
  std::string_view contains = query.contains ? std::string_view(*query.contains) : std::string_view{};
  if (contains.starts_with('+')) contains.remove_prefix(1);
  if (query.contains && !all_digits(contains)) {
    return make_error(errc::invalid_input, "'contains' must be digits such as \"0142\", got \"{}\"",
                      *query.contains);
  }
  if (query.limit < 1 || query.limit > max_limit) {
    return make_error(errc::invalid_input, "limit must be between 1 and {}, got {}", max_limit, query.limit);
  }
  std::vector<available_number> found;
  for (const auto& e : simulated_inventory()) {
    if (e.country != country) continue;
    if (query.type && e.type != *query.type) continue;
    if (query.area_code && e.area_code != *query.area_code) continue;
    if (!contains.empty() && std::string_view(e.e164).substr(1).find(contains) == std::string_view::npos)
      continue;
    found.push_back(available_number{e.e164, e.country, e.type, e.region, std::string(provider_name)});
    if (found.size() == static_cast<std::size_t>(query.limit)) break;
  }
  return found;
}

result<purchased_number> simulated_number_provider::buy(const std::string& e164) {
  const auto* entry = find(e164);
  if (entry == nullptr)
    return make_error(errc::not_found, "number {} is not in the simulated inventory", e164);
  return purchased_number{entry->e164, entry->country, entry->type, std::string(provider_name),
                          fmt::format("SIMPN{}", std::string_view(entry->e164).substr(1))};
}

result<void> simulated_number_provider::release(const purchased_number& number) {
  if (find(number.e164) == nullptr) {
    return make_error(errc::not_found, "number {} is not in the simulated inventory", number.e164);
  }
  return ok();
}

}  // namespace dialer::carriers
