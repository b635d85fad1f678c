#include "engine/contacts/synthetic.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "engine/contacts/phone_fast_path.hpp"
#include "engine/phone.hpp"

namespace dialer::contacts {
namespace {

constexpr std::string_view first_names[] = {
    "Ana", "Bo",  "Chen", "Dara",  "José", "Eve", "Finn", "Hana", "Ivan",   "Kai",   "Lea",   "Mo",
    "Nia", "Oli", "Pat",  "Quinn", "Rolf", "Sam", "Tia",  "Zoë",  "Łukasz", "Søren", "Aoife", "Mei"};
constexpr std::string_view last_names[] = {"Smith",   "García", "Nguyen", "Müller", "O'Brien", "Kowalski",
                                           "Johnson", "Okafor", "Tanaka", "Silva",  "Dubois",  "Cohen"};
constexpr std::string_view companies[] = {
    "Acme",       "Globex",      "Initech", "Umbrella",    "Hooli", "Vandelay Industries",
    "Stark Labs", "Wayne Foods", "Soylent", "Café Central"};
constexpr std::string_view quoted_companies[] = {"Acme, Inc.", "Smith & Sons, LLC", "The \"Best\" Bakery",
                                                 "Line One\nLine Two"};
constexpr std::string_view zones[] = {"America/New_York",    "America/Chicago", "America/Denver",
                                      "America/Los_Angeles", "America/Phoenix", "America/Anchorage",
                                      "Pacific/Honolulu",    "America/Toronto"};
constexpr std::string_view bad_zones[] = {"Mars/Olympus_Mons", "EST-ish", "America/Atlantis"};
constexpr std::string_view invalid_numbers[] = {"12345",           "n/a",           "call me",
                                                "+1 555 555 5555", "555-0100",      "+1 415 123 4567",
                                                "000-000-0000",    "+999 1234 5678"};

// A NANP number in one of the shapes people type.
std::string format_nanp(std::uint32_t npa, std::uint32_t nxx, std::uint32_t line, unsigned style) {
  switch (style % 7) {
    case 0:
      return fmt::format("+1 ({:03}) {:03}-{:04}", npa, nxx, line);
    case 1:
      return fmt::format("{:03}.{:03}.{:04}", npa, nxx, line);
    case 2:
      return fmt::format("{:03}{:03}{:04}", npa, nxx, line);
    case 3:
      return fmt::format("1-{:03}-{:03}-{:04}", npa, nxx, line);
    case 4:
      return fmt::format("({:03}) {:03}-{:04}", npa, nxx, line);
    case 5:
      return fmt::format("+1{:03}{:03}{:04}", npa, nxx, line);
    default:
      return fmt::format("{:03}-{:03}-{:04}", npa, nxx, line);
  }
}

void append_csv_field(std::string& out, std::string_view value) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += value;
    return;
  }
  out.push_back('"');
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

struct nanp_plan {
  std::vector<std::uint32_t> area_codes;  // local (geographic) area codes of the region
};

// Area codes whose 555-0100 libphonenumber accepts as a local number of `region`.
nanp_plan plan_for(std::string_view region) {
  nanp_plan plan;
  const auto& phones = phone_fast_path::instance();
  parsed_phone p;
  for (std::uint32_t npa = 201; npa <= 989; ++npa) {
    const std::string e164 = fmt::format("+1{:03}5550100", npa);
    if (phones.parse(e164, "US", p) == phone_status::ok && p.country == region &&
        p.type != number_type::toll_free &&
        phones.parse(fmt::format("+1{:03}5559999", npa), "US", p) == phone_status::ok) {
      plan.area_codes.push_back(npa);
    }
  }
  return plan;
}

struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

result<synthetic_summary> write_synthetic_contacts(const std::string& path, std::uint64_t count,
                                                   std::uint64_t seed, std::string_view region,
                                                   const synthetic_options& options) {
  const std::string home = normalize_region(region);
  const nanp_plan plan = plan_for(home);
  if (plan.area_codes.empty()) {
    return make_error(errc::invalid_input,
                      "synthetic contacts need a NANP region (US, CA, PR, ...), not '{}'", region);
  }
  std::unique_ptr<std::FILE, file_closer> file(std::fopen(path.c_str(), "wb"));
  if (!file) {
    return make_error(errc::unavailable, "cannot write synthetic contacts to '{}': {}", path,
                      std::strerror(errno));
  }

  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  auto pick = [&](const auto& list) { return list[rng() % std::size(list)]; };
  const std::string_view eol = options.crlf ? "\r\n" : "\n";

  const auto& phones = phone_fast_path::instance();
  parsed_phone checked;
  auto passes = [&](const std::string& text) {
    return phones.parse(text, home, checked) == phone_status::ok;
  };

  // Unique NANP numbers: area codes round-robin; 555-0100..0199 first, then the other 555 lines.
  const std::uint64_t per_line_pass = plan.area_codes.size();
  std::uint64_t next_nanp = 0;
  auto next_unique_nanp = [&](std::uint32_t& npa, std::uint32_t& line) {
    while (true) {
      const std::uint64_t n = next_nanp++;
      const std::uint64_t slot = n / per_line_pass;  // 0..9999 over 0100-0199 first, then the rest
      if (slot >= 10000) return false;
      npa = plan.area_codes[n % per_line_pass];
      line = static_cast<std::uint32_t>(slot < 100 ? 100 + slot : (slot < 200 ? slot - 100 : slot));
      if (passes(format_nanp(npa, 555, line, 5))) return true;
    }
  };
  // Ofcom's drama ranges that libphonenumber accepts: 1000 numbers each.
  constexpr std::string_view gb_blocks[] = {"20 7946 0", "113 496 0", "114 496 0", "116 496 0", "117 496 0",
                                            "118 496 0", "121 496 0", "131 496 0", "141 496 0", "151 496 0",
                                            "161 496 0", "191 498 0", "29 2018 0"};
  std::uint64_t next_gb = 0;
  auto next_unique_gb = [&](std::string& phone) {
    while (next_gb < std::size(gb_blocks) * 1000) {
      const std::uint64_t n = next_gb++;
      phone = fmt::format("+44 {}{:03}", gb_blocks[n % std::size(gb_blocks)], n / std::size(gb_blocks));
      if (passes(phone)) return true;
    }
    return false;
  };
  struct issued {
    std::uint32_t npa, line;
  };
  std::vector<issued> recent;  // duplicates repeat accepted numbers from a bounded window: flat memory
  constexpr std::size_t recent_window = 4096;

  synthetic_summary summary;
  std::string out;
  out.reserve(1 << 20);
  out += "phone,first_name,last_name,company,timezone,notes";
  out += eol;
  for (std::uint64_t row = 1; row <= count; ++row) {
    enum class kind { missing, invalid, duplicate, unique } k = kind::unique;
    std::string phone;
    std::optional<issued> fresh;
    const double roll = coin(rng);
    double edge = options.missing_fraction;
    if (roll < edge) {
      k = kind::missing;
    } else if (roll < (edge += options.invalid_fraction)) {
      k = kind::invalid;
      phone = pick(invalid_numbers);
    } else if (roll < (edge += options.duplicate_fraction) && !recent.empty()) {
      k = kind::duplicate;
      const issued& earlier = recent[rng() % recent.size()];
      phone = format_nanp(earlier.npa, 555, earlier.line, static_cast<unsigned>(rng()));
    } else if (roll < (edge += options.international_fraction) && next_unique_gb(phone)) {
      k = kind::unique;
    } else {
      issued n{};
      if (!next_unique_nanp(n.npa, n.line)) {
        return make_error(errc::invalid_input, "{} rows exceed the fictional numbers of region {}", count,
                          home);
      }
      phone = format_nanp(n.npa, 555, n.line, static_cast<unsigned>(rng()));
      fresh = n;
    }
    std::string_view tz;
    if (coin(rng) < options.timezone_fraction) tz = pick(zones);
    const bool number_ok = k == kind::duplicate || k == kind::unique;
    if (number_ok && coin(rng) < options.bad_timezone_fraction) tz = pick(bad_zones);

    // The outcome import must report, in its precedence order.
    if (k == kind::missing) {
      ++summary.missing_phones;
    } else if (k == kind::invalid) {
      ++summary.invalid_numbers;
    } else if (tz.size() > 0 &&
               std::find(std::begin(bad_zones), std::end(bad_zones), tz) != std::end(bad_zones)) {
      ++summary.invalid_timezones;  // a fresh number rejected here is never claimed: not a duplicate source
    } else if (k == kind::duplicate) {
      ++summary.duplicates;
    } else {
      ++summary.valid;
      if (fresh) {
        if (recent.size() < recent_window) {
          recent.push_back(*fresh);
        } else {
          recent[rng() % recent_window] = *fresh;
        }
      }
    }

    append_csv_field(out, phone);
    out.push_back(',');
    append_csv_field(out, pick(first_names));
    out.push_back(',');
    append_csv_field(out, pick(last_names));
    out.push_back(',');
    append_csv_field(out, coin(rng) < options.quoted_fraction ? pick(quoted_companies) : pick(companies));
    out.push_back(',');
    out += tz;
    out.push_back(',');
    out += fmt::format("lead {}", row);
    out += eol;
    if (out.size() >= (1 << 20) - 512) {
      if (std::fwrite(out.data(), 1, out.size(), file.get()) != out.size()) {
        return make_error(errc::unavailable, "writing '{}' failed: {}", path, std::strerror(errno));
      }
      out.clear();
    }
  }
  summary.rows = count;
  if (std::fwrite(out.data(), 1, out.size(), file.get()) != out.size() || std::fflush(file.get()) != 0) {
    return make_error(errc::unavailable, "writing '{}' failed: {}", path, std::strerror(errno));
  }
  return summary;
}

}  // namespace dialer::contacts
