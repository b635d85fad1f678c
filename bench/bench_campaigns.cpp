// One engine, many campaigns: the dialing engine's throughput with many campaigns at once against one
// campaign of the same size, and two engines on one database against one, all in the same run.
//
//   bench_campaigns [--campaigns N] [--contacts M] [--quick] [--only one|many|two] [--keep]
//
// Starts a throwaway PostgreSQL cluster (or uses DIALER_DATABASE_URL). Every phase gets its own database
// holding an agent with 100 numbers (50 concurrent calls, 1000 CPS each) and N x M synthetic contacts; the
// simulated carrier runs in instant mode, windows are open all day, max_attempts is 1, every campaign's
// concurrency is 5000 (the numbers' total, so that no campaign cap binds). Setup (imports, VACUUM ANALYZE,
// CHECKPOINT) is not timed. The engines serve every campaign of the database (`dialer serve`'s scope); the
// clock starts when one UPDATE sets the campaigns running (the engines learn of it from the change feed) and
// stops when the database says every one is completed:
//
//   one     one campaign of N x M contacts, one engine (the baseline)
//   many    N campaigns of M contacts each, all launched at once, one engine; also the spread of their
//   completion
//           times (each campaign's finished_at from the launch): fair turns show as an even spread, not as a
//           few campaigns done first while the rest wait
//   two     the one-campaign phase with two engines in this process (separate engine ids, connections and
//           threads: the same as two processes, on the same two cores)
//
// The last line of stdout is: one_campaign_per_s=X many_campaigns_per_s=Y two_engines_per_s=Z

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "adapters/carriers/registry.hpp"
#include "adapters/postgres/campaign_rows.hpp"
#include "adapters/postgres/engine_ports.hpp"
#include "adapters/postgres/pg_campaign_repository.hpp"
#include "bench/bench_support.hpp"
#include "bench/timed_ports.hpp"
#include "engine/contacts/synthetic.hpp"
#include "engine/dialing/dialing_engine.hpp"

namespace {

using namespace dialer;
using namespace dialer::bench;
using std::chrono::milliseconds;

constexpr int kNumbers = 100;
constexpr int kSlotsPerNumber = 50;
constexpr double kCpsPerNumber = 1000;
constexpr double kTargetOfOne = 0.8;
constexpr int kCallerAreaCodes[] = {212, 312, 415, 617, 713, 206, 305, 404, 602, 303};

struct bench_options {
  std::uint64_t campaigns = 1000;
  std::uint64_t contacts = 1000;  // per campaign in the many phase
  bool keep = false;
  std::string only;
};

// The simulated carrier, instant mode, for every campaign (one carrier account).
class simulated_source final : public carrier_source {
 public:
  simulated_source(carriers::registry& r, dialer::clock& clk) : registry_(r), clock_(clk) {}
  std::string account_key(const campaign_record&) const override { return "simulated"; }
  result<std::unique_ptr<carrier>> make(const campaign_record&) override {
    return registry_.make_carrier("simulated", nlohmann::json{{"mode", "instant"}}, clock_);
  }

 private:
  carriers::registry& registry_;
  dialer::clock& clock_;
};

struct phase_setup {
  std::string url;
  std::vector<std::int64_t> campaigns;
  std::uint64_t contacts = 0;  // in all
};

// The agent, its numbers and `count` campaigns, each importing `csv` (the same file: a campaign's contacts
// are its own rows). Left in state draft.
phase_setup prepare(bench_database& db, const std::string& phase, const fs::path& csv, std::uint64_t count,
                    std::uint64_t per_campaign) {
  const auto started = steady::now();
  phase_setup p;
  p.url = db.database_for(phase);
  pqxx::connection c(p.url);
  const std::string tag = fmt::format("bench-{}-{}", phase, ::getpid());
  agent_id agent;
  std::vector<number_id> numbers;
  {
    pqxx::work tx(c);
    agent = agent_id{
        tx.exec_params1("INSERT INTO agents (account_id, name, handoff) VALUES (1, $1, $2) RETURNING id", tag,
                        "wss://agents.example/bench")[0]
            .as<std::int64_t>()};
    for (int i = 0; i < kNumbers; ++i)
      numbers.emplace_back(
          tx.exec_params1("INSERT INTO numbers (account_id, e164, country, type, kind, provider, "
                          "max_concurrent_calls, max_cps, agent_id, assigned_at) VALUES (1, $1, "
                          "'US', 'local', 'managed', 'simulated', $2, $3, $4, now()) RETURNING id",
                          fmt::format("+1{}55501{:02}", kCallerAreaCodes[i % 10], i), kSlotsPerNumber,
                          kCpsPerNumber, agent.value())[0]
              .as<std::int64_t>());
    tx.commit();
  }
  campaign_spec s;
  s.agent = tag;
  s.carrier = "simulated";
  s.carrier_settings = nlohmann::json{{"mode", "instant"}};
  s.max_concurrency = kNumbers * kSlotsPerNumber;
  s.window.start = std::chrono::seconds{0};
  s.window.end = std::chrono::hours{24};
  s.window.days = rules::weekdays::every_day;
  s.window.us_holidays = false;
  need(s.retry.set_max_attempts(1), "max_attempts");
  pg::pg_campaign_repository repository(c, account_id{1}, p.url);
  for (std::uint64_t i = 0; i < count; ++i) {
    s.name = fmt::format("{}-{}", tag, i);
    auto created =
        need(repository.create_with_contacts(s, agent, {}, contacts_source{csv, std::nullopt, "US"}),
             "creating a campaign");
    if (created.import.summary.accepted != per_campaign)
      die(fmt::format("imported {} of {} contacts", created.import.summary.accepted, per_campaign));
    p.campaigns.push_back(created.id.value());
  }
  p.contacts = count * per_campaign;
  {
    pqxx::nontransaction tx(c);
    tx.exec0("VACUUM ANALYZE");
    try {
      tx.exec0("CHECKPOINT");
    } catch (const std::exception&) {
      // not a superuser on an external database
    }
  }
  fmt::print("  setup [{}]: {} campaign(s) of {} contacts, {} numbers, {:.1f} s (not timed)\n", phase, count,
             per_campaign, kNumbers, seconds_since(started));
  std::fflush(stdout);
  return p;
}

struct phase_result {
  std::uint64_t contacts = 0;
  double seconds = 0;
  std::vector<double> finished_s;  // each campaign's completion, from the launch
  [[nodiscard]] double rate() const { return seconds > 0 ? static_cast<double>(contacts) / seconds : 0; }
};

// Runs `engines` engines serving the database until every campaign of the phase is completed.
phase_result run(const phase_setup& p, int engines) {
  carriers::registry registry = carriers::make_default_registry();
  system_clock clk;
  simulated_source carriers(registry, clk);
  std::vector<std::unique_ptr<dialing_engine>> running;
  store_timings timings;  // every engine's port calls together
  for (int i = 0; i < engines; ++i) {
    running.push_back(std::make_unique<dialing_engine>(timed_ports(p.url, pg::make_engine_id(), timings),
                                                       carriers, clk, engine_options{}));
    running.back()->start();
  }
  pqxx::connection c(p.url);
  {
    // Registered (heartbeat) before the launch, so that every engine counts in the shares from the start.
    const auto until = steady::now() + std::chrono::seconds(30);
    while (true) {
      pqxx::nontransaction tx(c);
      if (tx.exec1("SELECT count(*) FROM engines")[0].as<int>() >= engines) break;
      if (steady::now() > until) die("the engines did not register");
      clk.sleep_for(milliseconds{10});  // polling the database for a condition
    }
  }
  // Completion is awaited on the change feed (every state change of a campaign is announced), not by polling: a
  // count over a thousand campaign rows every few milliseconds took ~4 % of the server's CPU from the engine.
  struct announcements final : pqxx::notification_receiver {
    explicit announcements(pqxx::connection_base& conn) : pqxx::notification_receiver(conn, "dialer_campaigns") {}
    void operator()(const std::string&, int) override { ++heard; }
    int heard = 0;
  } feed(c);
  const auto cpu0 = cpu_sample::now();
  const auto started = steady::now();
  {
    pqxx::work tx(c);
    tx.exec0("UPDATE campaigns SET state = 'running', started_at = now()");  // announced to the engines
    tx.commit();
  }
  const auto deadline = std::chrono::seconds(300 + static_cast<std::int64_t>(p.contacts / 2000));
  bool done = false;
  while (steady::now() - started < deadline) {
    {
      pqxx::nontransaction tx(c);
      if (tx.exec1("SELECT count(*) FILTER (WHERE state <> 'completed') FROM campaigns")[0].as<int>() == 0) {
        done = true;
        break;
      }
    }
    (void)c.await_notification(1, 0);  // the next announcement (or a second at most)
  }
  const double wall = seconds_since(started);
  const auto cpu1 = cpu_sample::now();
  for (auto& e : running) e->request_stop(stop_mode::drain);
  for (auto& e : running) e->join();
  if (!done) die(fmt::format("the campaigns did not complete within {} s", deadline.count()));
  for (auto& e : running)
    for (const auto& err : e->errors_since(0))
      fmt::print("  engine error: {}: {}\n", err.stage, err.what.message);
  pqxx::nontransaction tx(c);
  const auto counts = tx.exec1(
      "SELECT count(*) FILTER (WHERE state = 'done'), (SELECT count(*) FROM call_attempts), "
      "(SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL) FROM contacts");
  if (counts[0].as<std::uint64_t>() != p.contacts || counts[1].as<std::uint64_t>() != p.contacts ||
      counts[2].as<int>() != 0)
    die(fmt::format(
        "expected {} contacts done with one attempt each and no block held; found {} done, {} attempts, "
        "{} blocks held",
        p.contacts, counts[0].as<std::int64_t>(), counts[1].as<std::int64_t>(), counts[2].as<int>()));
  phase_result r{p.contacts, wall, {}};
  for (const auto& row :
       tx.exec("SELECT extract(epoch FROM finished_at - started_at)::float8 FROM campaigns"))
    r.finished_s.push_back(row[0].as<double>());
  std::sort(r.finished_s.begin(), r.finished_s.end());
  fmt::print("  {} engine(s): {} contacts in {} campaign(s) done, one attempt each; {:.2f} s\n", engines,
             p.contacts, p.campaigns.size(), wall);
  fmt::print("  {}\n", cpu_split(cpu0, cpu1, wall));
  fmt::print("  time waiting on PostgreSQL, by statement (every engine's stages together):\n");
  print_timings(timings, wall);
  std::fflush(stdout);
  return r;
}

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

bench_options parse_args(int argc, char** argv) {
  bench_options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    auto count = [&](const std::string& v) {
      char* end = nullptr;
      const auto n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n == 0)
        die(fmt::format("{} wants a positive whole number, not '{}'", a, v));
      return static_cast<std::uint64_t>(n);
    };
    if (a == "--campaigns") {
      o.campaigns = count(value());
    } else if (a == "--contacts") {
      o.contacts = count(value());
    } else if (a == "--quick") {
      o.campaigns = 100;
      o.contacts = 1000;
    } else if (a == "--only") {
      o.only = value();
      if (o.only != "one" && o.only != "many" && o.only != "two") die("--only wants one, many or two");
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: bench_campaigns [--campaigns N (default 1000)] [--contacts M per campaign (default 1000)]\n"
          "       [--quick (100 x 1000)] [--only one|many|two] [--keep (keep the throwaway cluster)]\n"
          "Starts a throwaway PostgreSQL unless DIALER_DATABASE_URL is set.\n");
      std::exit(0);
    } else {
      die("unknown argument '" + a + "' (try --help)");
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  program_name = "bench_campaigns";
  const bench_options options = parse_args(argc, argv);
  const std::uint64_t total = options.campaigns * options.contacts;
  fmt::print(
      "bench_campaigns: {} campaigns x {} contacts against 1 x {}; {} numbers x {} slots / {:.0f} cps, "
      "simulated carrier (instant mode)\n",
      options.campaigns, options.contacts, total, kNumbers, kSlotsPerNumber, kCpsPerNumber);
  fmt::print("machine: {} cpus, {}; load average at start {}\n", std::thread::hardware_concurrency(),
             cpu_model(), load_average());
  std::fflush(stdout);

  bench_database db;
  if (options.keep) db.keep();
  const fs::path work = fs::temp_directory_path() / fmt::format("dialer-bench-campaigns-{}", ::getpid());
  fs::create_directories(work);
  contacts::synthetic_options clean;
  clean.duplicate_fraction = clean.invalid_fraction = clean.missing_fraction = 0;
  clean.bad_timezone_fraction = clean.international_fraction = 0;
  const fs::path small = work / "per-campaign.csv";
  const fs::path large = work / "all.csv";
  need(contacts::write_synthetic_contacts(small.string(), options.contacts, 42, "US", clean),
       "writing contacts");
  need(contacts::write_synthetic_contacts(large.string(), total, 42, "US", clean), "writing contacts");

  const auto wanted = [&](const char* phase) { return options.only.empty() || options.only == phase; };
  const auto phase = [&](const char* name, const fs::path& csv, std::uint64_t count, std::uint64_t per,
                         int engines) {
    phase_result r;
    if (!wanted(name)) return r;
    auto setup = prepare(db, name, csv, count, per);
    fmt::print("[{}] load average before: {}\n", name, load_average());
    std::fflush(stdout);
    r = run(setup, engines);
    db.drop(name);
    return r;
  };
  const phase_result one = phase("one", large, 1, total, 1);
  const phase_result many = phase("many", small, options.campaigns, options.contacts, 1);
  const phase_result two = phase("two", large, 1, total, 2);

  std::error_code ec;
  fs::remove_all(work, ec);

  const double of_one = one.rate() > 0 ? many.rate() / one.rate() : 0;
  const double two_over_one = one.rate() > 0 ? two.rate() / one.rate() : 0;
  fmt::print("\nresults ({} contacts per phase; load average at end {})\n", total, load_average());
  fmt::print("  one campaign, one engine    {:>10.0f} contacts/s  ({:.2f} s)   the baseline\n", one.rate(),
             one.seconds);
  fmt::print(
      "  {} campaigns, one engine  {:>10.0f} contacts/s  ({:.2f} s)   many / one = {:.2f}, target >= {:.2f}: "
      "{}\n",
      options.campaigns, many.rate(), many.seconds, of_one, kTargetOfOne, verdict(of_one, kTargetOfOne));
  if (!many.finished_s.empty())
    fmt::print(
        "    completion of each campaign after the launch: first {:.2f} s, p10 {:.2f} s, median {:.2f} s, "
        "p90 {:.2f} s, last {:.2f} s\n",
        many.finished_s.front(), quantile(many.finished_s, 0.1), quantile(many.finished_s, 0.5),
        quantile(many.finished_s, 0.9), many.finished_s.back());
  fmt::print(
      "  one campaign, two engines   {:>10.0f} contacts/s  ({:.2f} s)   two / one = {:.2f} (recorded, no "
      "target)\n",
      two.rate(), two.seconds, two_over_one);
  fmt::print("one_campaign_per_s={:.0f} many_campaigns_per_s={:.0f} two_engines_per_s={:.0f}\n", one.rate(),
             many.rate(), two.rate());
  return 0;
}
