// Contact import throughput: CSV -> validated contacts -> PostgreSQL.
//
//   bench_import [--rows N] [--baseline-rows N] [--dir DIR] [--keep] [--no-db]
//
// Writes a realistic synthetic file (mixed formats, ~1% invalid, ~2% duplicates, some quoted fields,
// some international numbers), then measures, each figure beside its baseline from the same run:
//
//   parse + validate   import_contacts into a sink that only counts, with 0, 1 and 2 validator threads;
//                      baseline: the straightforward single-threaded path, one libphonenumber Parse +
//                      IsValidNumber + GetNumberType + region + format per row, a std::unordered_set<std::string>
//                      for duplicates, date::locate_zone and nlohmann::json for variables, on the first
//                      --baseline-rows rows of the same file (it is ~60x slower).
//   whole import       pg_campaign_repository::create_with_contacts, the path `dialer run` takes: parse, validate, COPY into
//                      `contacts` in one transaction with the campaign's id range and blocks (target >= 300 k
//                      rows/s of the file). Baselines: COPY alone of the same accepted rows, formatted
//                      beforehand (the database's own ceiling for this table), and the same COPY into a table
//                      of the schema-2 shape (bigserial key, foreign key, unique (campaign_id, e164), two partial
//                      indexes, json), the import's table before this design.
//
// Starts a throwaway PostgreSQL cluster unless DIALER_DATABASE_URL is set (--no-db skips the database).
// The last line of stdout is: import_rows_per_s=X copy_alone_rows_per_s=Y schema2_copy_rows_per_s=Z

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

#include "adapters/postgres/campaign_rows.hpp"
#include "adapters/postgres/pg_campaign_repository.hpp"
#include "adapters/postgres/raw_connection.hpp"
#include "bench/bench_support.hpp"
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

// The accepted rows as COPY text, twice: with the ids the import gives them (for `contacts`), and without (for the
// schema-2 table, whose ids come from a sequence).
class copy_text_sink final : public contact_sink {
 public:
  copy_text_sink(std::int64_t campaign, std::int64_t first_id) : campaign_(campaign), next_id_(first_id) {}
  result<void> write(const contact_batch& batch) override {
    for (const auto& a : batch.accepted) {
      fmt::format_to(std::back_inserter(with_id), "{}\t", next_id_++);
      const auto start = without_id.size();
      fmt::format_to(std::back_inserter(without_id), "{}\t{}\t", campaign_, a.row);
      dialer::pg::append_copy_field(without_id, a.e164);
      without_id += '\t';
      dialer::pg::append_copy_field(without_id, a.timezone);
      without_id += '\t';
      dialer::pg::append_copy_field(without_id, a.variables_json);
      without_id += '\n';
      with_id.append(without_id, start, std::string::npos);
      ++rows;
    }
    return ok();
  }
  std::string with_id, without_id;
  std::uint64_t rows = 0;

 private:
  std::int64_t campaign_;
  std::int64_t next_id_;
};

// One timed COPY of `text` into `target` in its own transaction; seconds.
double timed_copy(dialer::pg::raw_connection& raw, const std::string& target, const std::string& text) {
  using dialer::bench::need;
  need(raw.exec("CHECKPOINT"), "checkpoint");
  const auto start = clock_type::now();
  need(raw.exec("BEGIN"), "BEGIN");
  need(raw.exec("COPY " + target + " FROM STDIN", PGRES_COPY_IN), "COPY");
  constexpr std::size_t chunk = 1 << 20;
  for (std::size_t at = 0; at < text.size(); at += chunk)
    need(raw.put(std::string_view(text).substr(at, chunk)), "COPY data");
  need(raw.end_copy(), "COPY");
  need(raw.exec("COMMIT"), "COMMIT");
  return seconds_since(start);
}

struct database_figures {
  double import_rate = 0, copy_rate = 0, schema2_rate = 0;
};

// The whole import into PostgreSQL, and the two COPY baselines, on a throwaway cluster (or DIALER_DATABASE_URL).
database_figures run_database(const std::string& path, std::uint64_t rows, std::uint64_t expected_valid) {
  using namespace dialer::bench;
  database_figures out;
  bench_database db;
  const std::string url = db.database_for("import");
  pqxx::connection c(url);
  fmt::print("\npostgresql: {} ({})\n", server_settings(url),
             db.embedded() ? "throwaway cluster, Unix socket" : "DIALER_DATABASE_URL");
  const std::string tag = fmt::format("bench-import-{}", ::getpid());
  agent_id agent;
  {
    pqxx::work tx(c);
    agent = agent_id{tx.exec_params1("INSERT INTO agents (account_id, name) VALUES (1, $1) RETURNING id", tag)[0]
                         .as<std::int64_t>()};
    tx.commit();
  }
  dialer::pg::pg_campaign_repository repository(c, account_id{1}, url);
  campaign_spec spec;
  spec.agent = tag;
  spec.name = tag + "-import";
  dialer::pg::raw_connection raw(url);
  if (!raw.ok()) die("connecting: " + raw.message());
  need(raw.exec("CHECKPOINT"), "checkpoint");

  const auto cpu0 = cpu_sample::now();
  auto start = clock_type::now();
  // The campaign row and its contacts in one transaction, as `dialer run` creates them (the row is one INSERT).
  const auto created = need(repository.create_with_contacts(spec, agent, {}, contacts_source{path, std::nullopt, "US"}),
                            "importing");
  const auto campaign = created.id;
  const auto& report = created.import;
  const double import_s = seconds_since(start);
  const auto cpu1 = cpu_sample::now();
  if (report.summary.rows != rows || report.summary.accepted != expected_valid)
    die(fmt::format("the import read {} rows and accepted {}; the file has {} rows, {} valid", report.summary.rows,
                    report.summary.accepted, rows, expected_valid));
  const auto range = need(dialer::pg::load_campaign_record(c, account_id{1}, campaign), "loading the campaign").blocks;
  if (range.last - range.first + 1 != static_cast<std::int64_t>(expected_valid))
    die("the campaign's id range does not match its accepted rows");
  out.import_rate = static_cast<double>(rows) / import_s;
  fmt::print("whole import (create_with_contacts): {} rows in {:.2f} s, {} accepted, {} blocks of {}\n", rows,
             import_s, report.summary.accepted, (expected_valid + static_cast<std::uint64_t>(range.size) - 1) /
                                                     static_cast<std::uint64_t>(range.size),
             range.size);
  fmt::print("  {}\n", cpu_split(cpu0, cpu1, import_s));

  // The same accepted rows, formatted beforehand (not timed), for the two COPY baselines.
  spec.name = tag + "-copy";
  const auto second = need(repository.create_with_contacts(spec, agent, {}, contacts_source{{}, "phone\n", "US"}),
                           "creating the second campaign")
                          .id;
  copy_text_sink text(second.value(), range.last + 1);
  import_options options;
  need(import_contacts_file(path, options, text), "formatting the rows");
  const double copy_s =
      timed_copy(raw, "contacts (id, campaign_id, row_number, e164, timezone, variables)", text.with_id);
  out.copy_rate = static_cast<double>(text.rows) / copy_s;
  fmt::print("COPY alone of the same {} accepted rows into contacts: {:.2f} s\n", text.rows, copy_s);

  need(raw.exec(R"SQL(
    CREATE TABLE contacts_schema2 (
      id bigserial PRIMARY KEY,
      campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
      row_number integer NOT NULL, e164 text NOT NULL, timezone text NOT NULL DEFAULT '',
      variables json NOT NULL DEFAULT '{}',
      state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'in_progress', 'done', 'cancelled', 'do_not_call', 'invalid')),
      pending_reason text NOT NULL DEFAULT 'new', attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      next_attempt_at timestamptz NOT NULL DEFAULT '-infinity', outcome text, sticky_number_id bigint,
      claimed_by text, lease_until timestamptz, updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((state = 'in_progress') = (claimed_by IS NOT NULL)),
      UNIQUE (campaign_id, e164));
    CREATE INDEX ON contacts_schema2 (campaign_id, next_attempt_at) WHERE state = 'pending';
    CREATE INDEX ON contacts_schema2 (campaign_id, lease_until) WHERE state = 'in_progress';)SQL"),
       "creating the schema-2 table");
  const double schema2_s =
      timed_copy(raw, "contacts_schema2 (campaign_id, row_number, e164, timezone, variables)", text.without_id);
  out.schema2_rate = static_cast<double>(text.rows) / schema2_s;
  fmt::print("COPY alone of the same rows into the schema-2 table: {:.2f} s\n", schema2_s);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  dialer::bench::program_name = "bench_import";
  std::uint64_t rows = 1'000'000, baseline_rows = 100'000;
  std::string dir = std::filesystem::temp_directory_path().string();
  bool keep = false, with_db = true;
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
    } else if (arg == "--no-db") {
      with_db = false;
    } else {
      std::fprintf(stderr, "usage: %s [--rows N] [--baseline-rows N] [--dir DIR] [--keep] [--no-db]\n", argv[0]);
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
  database_figures db;
  if (with_db) {
    db = run_database(path, rows, expected->valid);
    fmt::print("\n{:<58} {:>12} {:>9}\n", "into PostgreSQL", "rows/s", "import vs");
    fmt::print("{:<58} {:>12.0f} {:>9}   target >= 300000: {}\n", "whole import: parse, validate, COPY (rows of the file)",
               db.import_rate, "", db.import_rate >= 300'000 ? "MET" : "NOT MET");
    fmt::print("{:<58} {:>12.0f} {:>8.2f}x\n", "baseline: COPY alone, same rows, already formatted", db.copy_rate,
               db.import_rate / db.copy_rate);
    fmt::print("{:<58} {:>12.0f} {:>8.2f}x\n", "baseline: COPY alone into the schema-2 table", db.schema2_rate,
               db.import_rate / db.schema2_rate);
  }
  fmt::print("peak RSS {} MB; load average now {}\n", peak_rss_mb(), load_average());
  if (!keep) std::filesystem::remove(path);
  fmt::print("import_rows_per_s={:.0f} copy_alone_rows_per_s={:.0f} schema2_copy_rows_per_s={:.0f}\n", db.import_rate,
             db.copy_rate, db.schema2_rate);
  return all_ok ? 0 : 1;
}
