// Contact import throughput: CSV -> validated contacts, the parse + validate step that feeds COPY.
//
//   bench_import [--rows N] [--baseline-rows N] [--dir DIR] [--keep]
//
// Writes a realistic synthetic file (mixed formats, ~1% invalid, ~2% duplicates, some quoted fields,
// some international numbers) and imports it into a sink that only counts. Every figure is printed
// next to the baseline measured in the same run: the straightforward single-threaded path, one
// libphonenumber Parse + IsValidNumber + GetNumberType + region + format per row, a
// std::unordered_set<std::string> for duplicates, date::locate_zone and nlohmann::json for variables.
// The baseline runs on the first --baseline-rows rows of the same file (it is ~60x slower).

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unordered_set>

#include <date/tz.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/contacts/contact_import.hpp"
#include "engine/contacts/phone_fast_path.hpp"
#include "engine/contacts/synthetic.hpp"
#include "engine/phone.hpp"

namespace {

using namespace dialer;
using namespace dialer::contacts;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return fmt::format("{} {} {}", one, five, fifteen);
}

long peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

class counting_sink final : public contact_sink {
 public:
  result<void> write(const contact_batch& batch) override {
    for (const auto& a : batch.accepted) bytes += a.e164.size() + a.variables_json.size() + a.timezone.size();
    accepted += batch.accepted.size();
    rejected += batch.rejected.size();
    return ok();
  }
  std::uint64_t accepted = 0, rejected = 0, bytes = 0;
};

struct baseline_result {
  std::uint64_t rows = 0, accepted = 0;
  double seconds = 0;
};

// The obvious implementation, for comparison: everything per row, on one thread.
baseline_result run_baseline(const std::string& path, std::uint64_t max_rows) {
  baseline_result out;
  auto reader = csv_reader::open(path);
  if (!reader) return out;
  csv_record record;
  (void)reader->next(record);  // header
  const std::vector<std::string> header(record.fields.begin(), record.fields.end());
  std::unordered_set<std::string> seen;
  const auto start = clock_type::now();
  while (out.rows < max_rows) {
    auto more = reader->next(record);
    if (!more || !*more) break;
    ++out.rows;
    std::string_view phone = record.fields.empty() ? std::string_view() : record.fields[0];
    while (!phone.empty() && phone.front() == ' ') phone.remove_prefix(1);
    while (!phone.empty() && phone.back() == ' ') phone.remove_suffix(1);
    if (phone.empty()) continue;
    auto parsed = parse_phone(phone, "US");
    if (!parsed) continue;
    const std::string tz = record.fields.size() > 4 ? std::string(record.fields[4]) : std::string();
    if (!tz.empty()) {
      try {
        (void)date::locate_zone(tz);
      } catch (const std::exception&) {
        continue;
      }
    }
    if (!seen.insert(parsed->e164).second) continue;
    nlohmann::json variables = nlohmann::json::object();
    for (std::size_t i = 1; i < header.size() && i < record.fields.size(); ++i) {
      if (i != 4) variables[header[i]] = std::string(record.fields[i]);
    }
    const std::string json = variables.dump();
    out.accepted += json.empty() ? 0 : 1;
  }
  out.seconds = seconds_since(start);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t rows = 1'000'000, baseline_rows = 100'000;
  std::string dir = std::filesystem::temp_directory_path().string();
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rows" && i + 1 < argc) {
      rows = std::stoull(argv[++i]);
    } else if (arg == "--baseline-rows" && i + 1 < argc) {
      baseline_rows = std::stoull(argv[++i]);
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr, "usage: %s [--rows N] [--baseline-rows N] [--dir DIR] [--keep]\n", argv[0]);
      return 2;
    }
  }
  const std::string path = fmt::format("{}/bench-import-{}-{}.csv", dir, rows, ::getpid());

  fmt::print("contact import benchmark: {} rows, load average {} (cores: {})\n", rows, load_average(),
             sysconf(_SC_NPROCESSORS_ONLN));
  auto start = clock_type::now();
  (void)phone_fast_path::instance();  // metadata decode + pattern compile, once per process
  fmt::print("fast-path tables built in {:.1f} ms\n", seconds_since(start) * 1e3);
  start = clock_type::now();
  auto expected = write_synthetic_contacts(path, rows, 2024, "US");
  if (!expected) {
    fmt::print(stderr, "cannot generate: {}\n", expected.error().message);
    return 1;
  }
  fmt::print(
      "generated {} ({:.1f} MB) in {:.2f} s: {} valid, {} duplicates, {} invalid, {} missing, {} bad tz\n",
      path, static_cast<double>(std::filesystem::file_size(path)) / 1e6, seconds_since(start),
      expected->valid, expected->duplicates, expected->invalid_numbers, expected->missing_phones,
      expected->invalid_timezones);

  // Warm the baseline too (tzdb load, libphonenumber's regex cache).
  (void)run_baseline(path, 2000);

  const baseline_result base = run_baseline(path, baseline_rows);
  const double base_rate = static_cast<double>(base.rows) / base.seconds;
  fmt::print("\n{:<44} {:>12} {:>10} {:>9}\n", "path", "rows/s", "seconds", "vs base");
  fmt::print("{:<44} {:>12.0f} {:>10.2f} {:>8.1f}x   (first {} rows, {} accepted)\n",
             "baseline: libphonenumber per row, 1 thread", base_rate, base.seconds, 1.0, base.rows,
             base.accepted);

  bool all_ok = true;
  for (unsigned threads : {0u, 1u, 2u}) {
    counting_sink sink;
    import_options options;
    options.validator_threads = threads;
    start = clock_type::now();
    auto summary = import_contacts_file(path, options, sink);
    const double secs = seconds_since(start);
    if (!summary) {
      fmt::print(stderr, "import failed: {}\n", summary.error().message);
      return 1;
    }
    const double rate = static_cast<double>(summary->rows) / secs;
    const bool matches = summary->accepted == expected->valid && summary->rows == rows;
    all_ok = all_ok && matches;
    fmt::print("{:<44} {:>12.0f} {:>10.2f} {:>8.1f}x   ({} accepted{})\n",
               fmt::format("import_contacts, {} validator thread(s)", threads), rate, secs, rate / base_rate,
               summary->accepted, matches ? "" : ", MISMATCH with the generator");
  }

  // The phone step alone, per call, on the same inputs.
  {
    auto reader = csv_reader::open(path);
    std::vector<std::string> phones;
    csv_record record;
    (void)reader->next(record);
    while (phones.size() < 200'000 && *reader->next(record)) phones.emplace_back(record.fields[0]);
    const auto& fast = phone_fast_path::instance();
    parsed_phone out;
    std::uint64_t ok_count = 0, fast_shapes = 0;
    start = clock_type::now();
    for (const auto& p : phones) ok_count += fast.parse(p, "US", out) == phone_status::ok ? 1 : 0;
    const double fast_ns = seconds_since(start) * 1e9 / static_cast<double>(phones.size());
    std::vector<std::string> shaped, other;
    for (const auto& p : phones) (fast.takes_fast_parse(p, "US") ? shaped : other).push_back(p);
    fast_shapes = shaped.size();
    auto per_call_ns = [&](const std::vector<std::string>& list) {
      const auto t0 = clock_type::now();
      for (const auto& p : list) ok_count += fast.parse(p, "US", out) == phone_status::ok ? 1 : 0;
      return list.empty() ? 0.0 : seconds_since(t0) * 1e9 / static_cast<double>(list.size());
    };
    const double shaped_ns = per_call_ns(shaped), other_ns = per_call_ns(other);
    const std::size_t sample = std::min<std::size_t>(phones.size(), 20'000);
    start = clock_type::now();
    for (std::size_t i = 0; i < sample; ++i) ok_count += parse_phone(phones[i], "US") ? 1 : 0;
    const double ref_ns = seconds_since(start) * 1e9 / static_cast<double>(sample);
    fmt::print("\nphone step per row: fast path {:.0f} ns vs libphonenumber {:.0f} ns ({:.0f}x)\n", fast_ns,
               ref_ns, ref_ns / fast_ns);
    fmt::print(
        "  {:.1f}% of rows take the fast parse ({:.0f} ns each); the rest call Parse ({:.0f} ns each)\n",
        100.0 * static_cast<double>(fast_shapes) / static_cast<double>(phones.size()), shaped_ns, other_ns);
  }
  fmt::print("peak RSS {} MB; load average now {}\n", peak_rss_mb(), load_average());
  if (!keep) std::filesystem::remove(path);
  return all_ok ? 0 : 1;
}
