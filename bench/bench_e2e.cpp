// End to end: claim -> schedule -> simulated originate -> outcome written, against PostgreSQL.
//
//   bench_e2e [--contacts N] [--quick] [--one-row-sample N] [--one-row-seconds S] [--only PHASE] [--keep]
//
// Starts a throwaway PostgreSQL cluster under a temporary directory (stopped and removed at the end) unless
// DIALER_DATABASE_URL is set. Every phase gets its own database (or, with DIALER_DATABASE_URL, its own
// campaign) holding the same N synthetic contacts, an agent and 100 numbers (50 concurrent calls, 1000 CPS
// each); the campaign's window is open all day every day and max_attempts is 1, so each contact is exactly
// one attempt. Setup (import, VACUUM ANALYZE, CHECKPOINT) is not timed. The three figures, each measured
// separately:
//
//   engine        a dialing_engine scoped to the campaign (every stage, thread and port of `dialer run`)
//                 with the simulated carrier in instant mode: N / wall time from the engine's start to the
//                 campaign completed.
//   one-row loop  the classic hopper: per contact BEGIN; SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED;
//                 UPDATE contact; INSERT attempt; (originate: no-op); UPDATE attempt; UPDATE contact; COMMIT,
//                 on one connection. It is slow, so it runs on a sample (--one-row-sample, default 20000, or
//                 --one-row-seconds, default 20 s, whichever ends first) and reports that sample's rate.
//   sql ceiling   the engine's own statements alone, batched as the engine batches them: claims
//                 (pg_contact_claims) sized like the claim stage's (refilled below half the high-water mark
//                 of 4 contacts per slot, 20000, up to 4096 at a time), record_attempts of everything queued
//                 (at most the 5000 slots), write_back of what has accumulated (at most 5000 per transaction)
//                 with the release of every block whose contacts are all written, outcomes made up.
//                 Pipelined like the engine's claim, origination and write-back stages: three threads, each
//                 with its own connection, joined by queues. No scheduler, no carrier, no heartbeats, slot
//                 leases or polls.
//   engine + webhooks  the engine phase again, on a fresh database, with one webhook endpoint that wants
//                 call.ended (one event per attempt, written by migration 10's trigger in the write-back's
//                 transaction) and the webhook dispatcher delivering to a bare Beast receiver in this process
//                 throughout (4 threads, as `dialer serve` runs it). Target: at least 0.80 of the engine's rate.
//
// The last line of stdout is: engine_contacts_per_s=X engine_webhooks_contacts_per_s=W one_row_loop_per_s=Y
// sql_ceiling_per_s=Z

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench/bare_server.hpp"  // first: Boost 1.74's Asio needs <utility> first

#include "adapters/carriers/registry.hpp"
#include "adapters/http/signatures.hpp"
#include "adapters/postgres/pg_webhook_outbox.hpp"
#include "adapters/webhooks/http_sender.hpp"
#include "adapters/postgres/campaign_rows.hpp"
#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/embedded_cluster.hpp"
#include "adapters/postgres/migrations.hpp"
#include "adapters/postgres/pg_attempt_journal.hpp"
#include "adapters/postgres/pg_campaign_repository.hpp"
#include "adapters/postgres/pg_contact_claims.hpp"
#include "adapters/postgres/pg_engine_registry.hpp"
#include "adapters/postgres/pg_slot_leases.hpp"
#include "engine/webhook_dispatcher.hpp"
#include "bench/bench_support.hpp"
#include "bench/timed_ports.hpp"
#include "engine/contacts/synthetic.hpp"
#include "engine/dialing/block_tracker.hpp"
#include "engine/dialing/dialing_engine.hpp"

namespace {

using namespace dialer;
using namespace dialer::bench;
using std::chrono::milliseconds;

constexpr int kNumbers = 100;
constexpr int kSlotsPerNumber = 50;
constexpr double kCpsPerNumber = 1000;
constexpr std::size_t kSlotsInFlight = kNumbers * kSlotsPerNumber;
constexpr double kTargetRate = 50'000;
constexpr double kTargetOverOneRow = 20;
constexpr double kTargetOfCeiling = 0.5;

struct bench_options {
  std::uint64_t contacts = 1'000'000;
  std::uint64_t one_row_sample = 20'000;
  double one_row_seconds = 20;
  bool keep = false;
  std::string only;  // profiling: run one phase ("engine", "webhooks", "ceiling", "one-row"); the others print 0
};

// The simulated carrier, instant mode, for every campaign of the run.
class simulated_source final : public carrier_source {
 public:
  simulated_source(carriers::registry& r, dialer::clock& clk, nlohmann::json settings)
      : registry_(r), clock_(clk), settings_(std::move(settings)) {}
  std::string account_key(const campaign_record&) const override { return "simulated"; }
  result<std::unique_ptr<carrier>> make(const campaign_record&) override {
    return registry_.make_carrier("simulated", settings_, clock_);
  }

 private:
  carriers::registry& registry_;
  dialer::clock& clock_;
  nlohmann::json settings_;
};

// ---- one phase's campaign: agent, 100 numbers, campaign, N contacts ----

struct phase_setup {
  std::string url;
  account_id account;
  campaign_id campaign;
  campaign_spec spec;
  std::vector<phone_number> numbers;
  std::string engine_id;
  contact_blocks blocks;  // the imported contacts' id range
};

// Area codes with real geography, so the calling-window and local-presence code paths see ordinary caller
// IDs.
constexpr int kCallerAreaCodes[] = {212, 312, 415, 617, 713, 206, 305, 404, 602, 303};

phase_setup prepare_phase(bench_database& db, const std::string& phase, const fs::path& csv,
                          std::uint64_t contacts) {
  const auto started = steady::now();
  phase_setup p;
  p.url = db.database_for(phase);
  p.engine_id = pg::make_engine_id();
  pqxx::connection c(p.url);
  const std::string tag =
      fmt::format("bench-e2e-{}-{}-{}", phase, ::getpid(),
                  std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000);
  std::int64_t agent = 0;
  {
    pqxx::work tx(c);
    p.account = account_id{tx.exec1("SELECT id FROM accounts WHERE name = 'default'")[0].as<std::int64_t>()};
    agent = tx.exec_params1("INSERT INTO agents (account_id, name, handoff) VALUES ($1, $2, $3) RETURNING id",
                            p.account.value(), tag, "wss://agents.example/bench")[0]
                .as<std::int64_t>();
    for (int i = 0; i < kNumbers; ++i) {
      phone_number n;
      n.account = p.account;
      n.e164 = fmt::format("+1{}55501{:02}", kCallerAreaCodes[i % 10], i);
      n.country = "US";
      n.provider = "simulated";
      n.max_concurrent_calls = kSlotsPerNumber;
      n.max_cps = kCpsPerNumber;
      n.agent = agent_id{agent};
      n.agent_name = tag;
      n.id = number_id{
          tx.exec_params1("INSERT INTO numbers (account_id, e164, country, type, kind, provider, "
                          "max_concurrent_calls, max_cps, agent_id, assigned_at) "
                          "VALUES ($1, $2, 'US', 'local', 'managed', 'simulated', $3, $4, $5, now()) "
                          "RETURNING id",
                          p.account.value(), n.e164, kSlotsPerNumber, kCpsPerNumber, agent)[0]
              .as<std::int64_t>()};
      p.numbers.push_back(std::move(n));
    }
    tx.commit();
  }
  campaign_spec& s = p.spec;
  s.name = tag;
  s.agent = tag;
  s.carrier = "simulated";
  s.carrier_settings = nlohmann::json{{"mode", "instant"}};
  s.max_concurrency = kNumbers * kSlotsPerNumber;
  s.window.start = std::chrono::seconds{0};
  s.window.end = std::chrono::hours{24};
  s.window.days = rules::weekdays::every_day;
  s.window.us_holidays = false;
  need(s.retry.set_max_attempts(1), "max_attempts");
  s.default_region = "US";
  s.contacts.file = csv;
  std::vector<number_id> ids;
  for (const auto& n : p.numbers) ids.push_back(n.id);
  pg::pg_campaign_repository repository(c, p.account, p.url);
  auto created =
      need(repository.create_with_contacts(s, agent_id{agent}, ids, contacts_source{csv, std::nullopt, "US"}),
           "creating the campaign");
  p.campaign = created.id;
  const auto& imported = created.import;
  if (imported.summary.accepted != contacts)
    die(fmt::format("imported {} of {} contacts: the synthetic file should be all valid",
                    imported.summary.accepted, contacts));
  p.blocks = need(pg::load_campaign_record(c, p.account, p.campaign), "loading the campaign").blocks;
  {
    pqxx::nontransaction tx(c);
    tx.exec0("VACUUM ANALYZE contacts");
    tx.exec0("VACUUM ANALYZE call_attempts");
    try {
      tx.exec0("CHECKPOINT");  // so that the phase does not pay for the import's dirty pages
    } catch (const std::exception&) {
      // not a superuser on an external database: the checkpoint simply happens when the server wants it
    }
  }
  fmt::print("  setup [{}]: {} contacts imported, {} numbers, {:.1f} s (not timed)\n", phase, contacts,
             kNumbers, seconds_since(started));
  std::fflush(stdout);
  return p;
}

// After a phase: the numbers go back (released), so the same E.164s can be set up again on an external
// database.
void release_numbers(const phase_setup& p) {
  pqxx::connection c(p.url);
  pqxx::work tx(c);
  for (const auto& n : p.numbers)
    tx.exec_params0(
        "UPDATE numbers SET status = 'released', released_at = now(), agent_id = NULL WHERE id = $1",
        n.id.value());
  tx.commit();
}

struct contact_counts {
  std::int64_t done = 0, pending = 0, in_progress = 0, attempts = 0, attempts_with_outcome = 0,
               blocks_held = 0;
};

contact_counts count_contacts(const phase_setup& p) {
  pqxx::connection c(p.url);
  pqxx::nontransaction tx(c);
  contact_counts out;
  for (const auto& r :
       tx.exec_params("SELECT state, count(*) FROM contacts WHERE campaign_id = $1 GROUP BY state",
                      p.campaign.value())) {
    const auto s = r[0].as<std::string>();
    if (s == "done") out.done = r[1].as<std::int64_t>();
    if (s == "pending") out.pending = r[1].as<std::int64_t>();
    if (s == "in_progress") out.in_progress = r[1].as<std::int64_t>();
  }
  auto a = tx.exec_params1("SELECT count(*), count(outcome) FROM call_attempts WHERE campaign_id = $1",
                           p.campaign.value());
  out.attempts = a[0].as<std::int64_t>();
  out.attempts_with_outcome = a[1].as<std::int64_t>();
  out.blocks_held =
      tx.exec_params1("SELECT count(*) FROM contact_blocks WHERE campaign_id = $1 AND claimed_by IS NOT NULL",
                      p.campaign.value())[0]
          .as<std::int64_t>();
  return out;
}

struct phase_result {
  std::uint64_t contacts = 0;
  double seconds = 0;
  [[nodiscard]] double rate() const { return seconds > 0 ? static_cast<double>(contacts) / seconds : 0; }
};

// ---- phase 1: the engine ----

// `saturated`, when given, follows the engine's saturated() as `dialer serve`'s loop does (for the webhook phase).
phase_result run_engine(const phase_setup& p, std::uint64_t contacts, std::atomic<bool>* saturated = nullptr) {
  carriers::registry registry = carriers::make_default_registry();
  system_clock clk;
  {
    pqxx::connection c(p.url);
    pqxx::work tx(c);
    tx.exec_params0("UPDATE campaigns SET state = 'running' WHERE id = $1", p.campaign.value());  // launched
    tx.commit();
  }
  store_timings timings;
  simulated_source carriers(registry, clk, p.spec.carrier_settings);
  dialing_engine engine(timed_ports(p.url, p.engine_id, timings), carriers, clk, engine_options{},
                        engine_scope{{p.campaign}});
  engine.watch(p.campaign);
  const auto cpu0 = cpu_sample::now();
  const auto started = steady::now();
  engine.start();
  // A stuck run must not hang the benchmark: after a generous deadline it is stopped and reported as a
  // failure.
  const auto deadline = std::chrono::seconds(120 + static_cast<std::int64_t>(contacts / 2000));
  std::optional<campaign_watch> w;
  while (true) {
    w = engine.watched(p.campaign);
    if (w && w->settled) break;
    if (steady::now() - started > deadline) break;
    if (saturated) saturated->store(engine.saturated(), std::memory_order_relaxed);
    clk.sleep_for(milliseconds{5});  // the watcher's cadence (5 ms is within the measurement's resolution)
  }
  if (saturated) saturated->store(false, std::memory_order_relaxed);
  const double wall = seconds_since(started);
  const auto cpu1 = cpu_sample::now();
  engine.request_stop(stop_mode::drain);
  engine.join();
  if (!w || !w->settled) die(fmt::format("engine run did not finish within {} s", deadline.count()));
  if (!*w->settled) die("engine run failed: " + w->settled->error().message);
  run_status* status = &w->status;
  if (**w->settled != campaign_state::completed)
    die(fmt::format("engine run ended {} after {:.0f} s, not completed", to_string(**w->settled), wall));

  const auto counts = count_contacts(p);
  if (counts.done != static_cast<std::int64_t>(contacts) ||
      counts.attempts != static_cast<std::int64_t>(contacts) ||
      counts.attempts_with_outcome != counts.attempts || counts.blocks_held != 0)
    die(fmt::format(
        "engine: expected {} contacts done with one attempt each and no block held; found {} done, {} "
        "attempts ({} with an outcome), {} blocks held",
        contacts, counts.done, counts.attempts, counts.attempts_with_outcome, counts.blocks_held));
  phase_result r{contacts, wall};
  fmt::print("  engine: {} contacts done, {} attempts, all with outcomes; {} dialed; {:.2f} s\n", counts.done,
             counts.attempts, status->dialed, wall);
  fmt::print("  {}\n", cpu_split(cpu0, cpu1, wall));
  fmt::print("  time waiting on PostgreSQL, by statement (each engine thread has its own connection):\n");
  print_timings(timings, wall);
  std::fflush(stdout);
  return r;
}

// ---- phase 1b: the engine while every attempt's call.ended goes to a live webhook endpoint ----

phase_result run_engine_with_webhooks(const phase_setup& p, std::uint64_t contacts) {
  bare_server receiver;
  receiver.start(1);
  {
    pqxx::connection c(p.url);
    pqxx::work tx(c);
    tx.exec_params0("INSERT INTO webhook_endpoints (account_id, url, secret, event_types, max_in_flight) "
                    "VALUES ($1, $2, $3, '{call.ended}', 8)",
                    p.account.value(), fmt::format("http://127.0.0.1:{}/hooks", receiver.port()),
                    http::new_webhook_secret());
    tx.commit();
  }
  system_clock clk;
  webhook_dispatcher_options opts;  // as `dialer serve` runs it: 4 threads
  std::atomic<bool> saturated{false};  // as serve does: delivery yields while the engine is at capacity
  opts.busy = [&saturated] { return saturated.load(std::memory_order_relaxed); };
  webhooks::sender_options so;
  so.allow.loopback = true;
  webhook_dispatcher dispatcher(
      [&](int index) -> result<std::unique_ptr<webhook_outbox>> {
        return std::unique_ptr<webhook_outbox>(std::make_unique<pg::pg_webhook_outbox>(p.url, "bench", index));
      },
      [so]() -> std::unique_ptr<webhook_sender> { return std::make_unique<webhooks::http_sender>(so); }, clk, opts);
  dispatcher.start();
  const auto started = steady::now();
  const auto r = run_engine(p, contacts, &saturated);
  const auto during = receiver.requests.load();
  pqxx::connection watch(p.url);
  for (;;) {  // the rest of the backlog
    pqxx::nontransaction tx(watch);
    if (tx.exec1(kAllDelivered)[0].as<bool>()) break;
    std::this_thread::sleep_for(milliseconds{50});  // the watcher's cadence
  }
  const double all = seconds_since(started);
  dispatcher.stop();
  pqxx::nontransaction tx(watch);
  const auto events = tx.exec1("SELECT count(*) FROM webhook_events")[0].as<std::int64_t>();
  if (events != static_cast<std::int64_t>(contacts))
    die(fmt::format("webhooks: {} call.ended events for {} attempts", events, contacts));
  fmt::print("  webhooks: {} events; {} delivered while the campaign ran, all {} after {:.2f} s ({:.0f} deliveries/s)\n",
             events, during, receiver.requests.load(), all, static_cast<double>(receiver.requests.load()) / all);
  std::fflush(stdout);
  return r;
}

// ---- phase 2: the classic one-row-per-query hopper ----

phase_result run_one_row_loop(const phase_setup& p, std::uint64_t sample, double budget_s) {
  pqxx::connection c(p.url);
  {
    // The classic hopper's own schema, in this phase's database: a claim per contact row, and the index its
    // query needs (without it every claim would scan the table, which would flatter the engine).
    pqxx::work tx(c);
    tx.exec0(
        "ALTER TABLE contacts ADD COLUMN claimed_by text, ADD COLUMN lease_until timestamptz, "
        "DROP CONSTRAINT contacts_state_check");
    tx.exec0("CREATE INDEX contacts_due ON contacts (campaign_id, next_attempt_at) WHERE state = 'pending'");
    tx.commit();
  }
  {
    pqxx::nontransaction tx(c);
    tx.exec0("ANALYZE contacts");
  }
  c.prepare("claim_one",
            "SELECT id, e164, variables, attempts FROM contacts "
            "WHERE campaign_id = $1 AND state = 'pending' AND next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED");
  c.prepare("mark_in_progress",
            "UPDATE contacts SET state = 'in_progress', claimed_by = $2, "
            "lease_until = now() + interval '15 seconds' WHERE id = $1");
  c.prepare(
      "insert_attempt",
      "INSERT INTO call_attempts (id, campaign_id, contact_id, attempt_no, number_id, caller_id, carrier, "
      "engine_id) VALUES ($2 * 128 + $3, $1, $2, $3, $4, $5, 'simulated', $6) RETURNING id");
  c.prepare("set_outcome",
            "UPDATE call_attempts SET carrier_call_id = $2, started_at = now(), answered_at = now(), "
            "ended_at = now(), "
            "outcome = 'completed', billable_ms = 30000, cost = 0.014 WHERE id = $1");
  c.prepare("mark_done",
            "UPDATE contacts SET state = 'done', attempts = $2, outcome = 'completed', "
            "sticky_number_id = coalesce(sticky_number_id, $3), pending_reason = '', claimed_by = NULL, "
            "lease_until = NULL, updated_at = now() WHERE id = $1");
  const auto started = steady::now();
  std::uint64_t done = 0;
  std::size_t next_number = 0;
  while (done < sample && seconds_since(started) < budget_s) {
    pqxx::work tx(c);
    auto row = tx.exec_prepared("claim_one", p.campaign.value());
    if (row.empty()) break;
    const auto contact = row[0][0].as<std::int64_t>();
    const int attempt_no = row[0][3].as<int>() + 1;
    const auto& number = p.numbers[next_number++ % p.numbers.size()];
    tx.exec_prepared0("mark_in_progress", contact, p.engine_id);
    const auto attempt = tx.exec_prepared1("insert_attempt", p.campaign.value(), contact, attempt_no,
                                           number.id.value(), number.e164, p.engine_id)[0]
                             .as<std::int64_t>();
    // originate: a no-op (the carrier is not what this loop measures)
    tx.exec_prepared0("set_outcome", attempt, fmt::format("sim-{}", attempt));
    tx.exec_prepared0("mark_done", contact, attempt_no, number.id.value());
    tx.commit();
    ++done;
  }
  const double wall = seconds_since(started);
  const auto counts = count_contacts(p);
  if (counts.done != static_cast<std::int64_t>(done) || counts.attempts != static_cast<std::int64_t>(done))
    die(fmt::format("one-row loop: {} contacts processed but {} done and {} attempts in the database", done,
                    counts.done, counts.attempts));
  fmt::print(
      "  one-row loop: {} of {} contacts in {:.2f} s (sample: {} contacts or {:.0f} s, whichever first)\n",
      done, counts.done + counts.pending, wall, sample, budget_s);
  std::fflush(stdout);
  return {done, wall};
}

// ---- phase 3: the raw SQL ceiling ----

// A bounded hand-off between the ceiling's stages (the engine's hopper and report queue play this part).
template <class T>
class stage_queue {
 public:
  void push(T item) {
    {
      std::lock_guard lock(m_);
      items_.push_back(std::move(item));
    }
    cv_.notify_all();
  }
  // Blocks until something arrives or the queue is closed and empty; takes everything queued.
  bool pop_all(std::vector<T>& out) {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return false;
    for (auto& i : items_) out.push_back(std::move(i));
    items_.clear();
    return true;
  }
  void close() {
    {
      std::lock_guard lock(m_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<T> items_;
  bool closed_ = false;
};

phase_result run_sql_ceiling(const phase_setup& p, std::uint64_t contacts) {
  const engine_options engine_defaults;  // the engine's batch sizes and hopper bound
  const auto conn = [&] { return pg::pg_link(p.url, pg::connect_options{}); };
  auto claimer_store = std::make_unique<pg::pg_contact_claims>(conn(), p.engine_id);
  auto recorder_store = std::make_unique<pg::pg_attempt_journal>(conn(), p.engine_id);
  auto writer_store = std::make_unique<pg::pg_attempt_journal>(conn(), p.engine_id);
  pg::pg_slot_leases leases(conn(), p.engine_id);
  store_timings timings;
  {
    // Attempts are recorded only on caller IDs whose slots the engine leases (one lease, as long as the run).
    std::vector<number_lease_request> requests;
    for (const auto& n : p.numbers) requests.push_back({n.id, n.agent, 0, true});
    need(leases.lease_numbers(requests, std::chrono::hours(24), milliseconds{0}), "leasing slots");
  }

  std::atomic<std::int64_t> held{0};  // claimed and not yet recorded: bounded like the engine's hopper
  std::mutex room_m;
  std::condition_variable room_cv;
  stage_queue<claimed_contact> claimed;
  stage_queue<attempt_outcome> outcomes;
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_m;
  auto fail = [&](const std::string& why) {
    std::lock_guard lock(failure_m);
    if (failure.empty()) failure = why;
    failed = true;
    room_cv.notify_all();
  };

  const auto cpu0 = cpu_sample::now();
  const auto started = steady::now();
  // Blocks are released by the writer once all their contacts are written back, as in the engine.
  block_tracker blocks;
  std::atomic<std::uint64_t> written{0};
  std::thread claimer([&] {
    std::uint64_t taken = 0;
    while (!failed && taken < contacts) {
      int want = 0;
      {
        std::unique_lock lock(room_m);
        room_cv.wait(lock, [&] {
          want = claim_size(static_cast<std::size_t>(std::max<std::int64_t>(0, held.load())),
                            high_water_mark(kSlotsInFlight, engine_defaults, p.blocks.size), engine_defaults,
                            p.blocks.size);
          return want > 0 || failed.load();
        });
      }
      if (failed) break;
      op_timer t(timings.claim);
      const claim_request request[] = {{p.campaign, want}};
      auto batches = claimer_store->claim(request, engine_defaults.lease);
      if (!batches) {
        fail("claim: " + batches.error().message);
        break;
      }
      auto* batch = &batches->at(0);
      t.rows(static_cast<std::int64_t>(batch->contacts.size()));
      if (batch->blocks.empty()) {
        // Everything left is in blocks still held here: wait for the writer to release one.
        const auto seen = written.load();
        std::unique_lock lock(room_m);
        room_cv.wait_for(lock, milliseconds{10}, [&] { return written.load() != seen || failed.load(); });
        continue;
      }
      std::unordered_map<std::int64_t, std::int64_t> units;
      for (const auto& b : batch->blocks) units.emplace(b.first, 0);
      for (const auto& c : batch->contacts) ++units[p.blocks.block_of(c.id)];
      for (const auto& [block, n] : units) (void)blocks.add(block, n);
      taken += batch->contacts.size();
      held += static_cast<std::int64_t>(batch->contacts.size());
      for (auto& c : batch->contacts) claimed.push(std::move(c));
    }
    claimed.close();
  });
  std::thread recorder([&] {
    std::vector<claimed_contact> in;
    std::vector<attempt_to_record> attempts;
    std::size_t next_number = 0;
    const std::string carrier = "simulated";
    while (!failed && claimed.pop_all(in)) {
      // Like the engine's originator: everything queued in one transaction, at most what the slots allow in
      // flight.
      for (std::size_t begin = 0; begin < in.size(); begin += kSlotsInFlight) {
        const std::size_t end = std::min(in.size(), begin + kSlotsInFlight);
        attempts.clear();
        for (std::size_t i = begin; i < end; ++i) {
          const auto& n = p.numbers[next_number++ % p.numbers.size()];
          attempt_to_record a;
          a.campaign = p.campaign;
          a.carrier = carrier;
          a.contact = in[i].id;
          a.attempt_no = in[i].attempts + 1;
          a.number = n.id;
          a.caller_id = n.e164;
          a.callee = in[i].e164;
          attempts.push_back(std::move(a));
        }
        {
          op_timer t(timings.record_attempts, static_cast<std::int64_t>(attempts.size()));
          if (auto r = recorder_store->record(attempts); !r) {
            fail("record_attempts: " + r.error().message);
            outcomes.close();
            return;
          }
        }
        held -= static_cast<std::int64_t>(attempts.size());
        room_cv.notify_all();
        const timestamp now = std::chrono::system_clock::now();
        for (const auto& a : attempts) {
          attempt_outcome o;
          o.campaign = p.campaign;
          o.attempt = a.id;
          o.contact = a.contact;
          o.attempt_no = a.attempt_no;
          o.number = a.number;
          o.event.attempt = a.id;
          o.event.carrier_call_id = fmt::format("sim-{}", a.id.value());
          o.event.outcome = call_outcome::completed;
          o.event.started_at = now;
          o.event.answered_at = now;
          o.event.ended_at = now;
          o.event.billable = milliseconds{30000};
          o.cost = 14'000;
          o.next_state = rules::contact_state::done;
          outcomes.push(std::move(o));
        }
      }
      in.clear();
    }
    outcomes.close();
  });
  std::thread writer([&] {
    std::vector<attempt_outcome> batch;
    std::vector<std::int64_t> units, released;
    std::vector<block_ref> release;
    while (!failed && outcomes.pop_all(batch)) {
      // At most a slot table's worth per transaction: the engine's writer sees outcomes arrive as calls end
      // and writes a few thousand at a time; a backlog of 100 000 in one transaction is slower per row.
      for (std::size_t begin = 0; begin < batch.size(); begin += kSlotsInFlight) {
        const std::span<const attempt_outcome> part(batch.data() + begin,
                                                    std::min(kSlotsInFlight, batch.size() - begin));
        units.clear();
        released.clear();
        for (const auto& o : part) units.push_back(p.blocks.block_of(o.contact));
        blocks.settle(units, released);
        release.clear();
        for (auto b : released) release.push_back({p.campaign, b});
        {
          op_timer t(timings.write_back, static_cast<std::int64_t>(part.size()));
          if (auto r = writer_store->write_back({.outcomes = part, .release = release}); !r) {
            fail("write_back: " + r.error().message);
            return;
          }
        }
        written += part.size();
        room_cv.notify_all();
      }
      batch.clear();
    }
  });
  writer.join();
  const double wall = seconds_since(started);
  const auto cpu1 = cpu_sample::now();
  recorder.join();
  claimer.join();
  if (!failure.empty()) die("sql ceiling: " + failure);
  const auto counts = count_contacts(p);
  if (counts.done != static_cast<std::int64_t>(contacts) ||
      counts.attempts != static_cast<std::int64_t>(contacts) || counts.blocks_held != 0)
    die(fmt::format(
        "sql ceiling: expected {} contacts done and no block held; found {} done, {} attempts, {} blocks "
        "held",
        contacts, counts.done, counts.attempts, counts.blocks_held));
  fmt::print("  sql ceiling: {} contacts done, {} attempts; {:.2f} s\n", counts.done, counts.attempts, wall);
  fmt::print("  {}\n", cpu_split(cpu0, cpu1, wall));
  fmt::print("  time waiting on PostgreSQL, by statement (one thread and connection per stage):\n");
  print_timings(timings, wall);
  std::fflush(stdout);
  return {contacts, wall};
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
    if (a == "--contacts") {
      o.contacts = count(value());
    } else if (a == "--quick") {
      o.contacts = 100'000;
    } else if (a == "--one-row-sample") {
      o.one_row_sample = count(value());
    } else if (a == "--one-row-seconds") {
      o.one_row_seconds = static_cast<double>(count(value()));
    } else if (a == "--only") {
      o.only = value();
      for (std::size_t at = 0; at <= o.only.size();) {
        const auto end = std::min(o.only.find(',', at), o.only.size());
        const auto one = o.only.substr(at, end - at);
        if (one != "engine" && one != "webhooks" && one != "ceiling" && one != "one-row")
          die("--only wants engine, webhooks, ceiling or one-row (comma-separated), not '" + one + "'");
        at = end + 1;
      }
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: bench_e2e [--contacts N (default 1000000)] [--quick (100000 contacts)] [--one-row-sample N "
          "(default 20000)] [--one-row-seconds S (default 20)] [--keep (keep the throwaway cluster)]\n"
          "       [--only PHASE[,PHASE] of engine, webhooks, ceiling, one-row (the others report 0)]\n"
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
  program_name = "bench_e2e";
  const bench_options options = parse_args(argc, argv);
  const std::uint64_t n = options.contacts;
  fmt::print("bench_e2e: {} contacts, {} numbers x {} slots / {:.0f} cps, simulated carrier (instant mode)\n",
             n, kNumbers, kSlotsPerNumber, kCpsPerNumber);
  fmt::print("machine: {} cpus, {}; load average at start {}\n", std::thread::hardware_concurrency(),
             cpu_model(), load_average());
  std::fflush(stdout);

  bench_database db;
  if (options.keep) db.keep();
  const fs::path work = fs::temp_directory_path() / fmt::format("dialer-bench-e2e-contacts-{}", ::getpid());
  fs::create_directories(work);
  const fs::path csv = work / "contacts.csv";
  {
    contacts::synthetic_options so;
    so.duplicate_fraction = 0;
    so.invalid_fraction = 0;
    so.missing_fraction = 0;
    so.bad_timezone_fraction = 0;
    so.international_fraction = 0;
    need(contacts::write_synthetic_contacts(csv.string(), n, 42, "US", so), "writing synthetic contacts");
  }

  // Engine first: the figure that matters most is taken on the quietest part of the run.
  const auto wanted = [&](const std::string& phase) {
    return options.only.empty() || ("," + options.only + ",").find("," + phase + ",") != std::string::npos;
  };
  bool settings_shown = false;
  const auto phase = [&](const char* name, const char* title, auto&& body) {
    phase_result r;
    if (!wanted(name)) return r;
    auto setup = prepare_phase(db, name, csv, n);
    if (!settings_shown) {
      settings_shown = true;
      fmt::print("postgresql: {} ({})\n", server_settings(setup.url),
                 db.embedded() ? "throwaway cluster, Unix socket" : "DIALER_DATABASE_URL");
    }
    fmt::print("[{}] load average before: {}\n", title, load_average());
    std::fflush(stdout);
    r = body(setup);
    release_numbers(setup);
    db.drop(name);
    return r;
  };
  const phase_result engine =
      phase("engine", "engine", [&](const phase_setup& s) { return run_engine(s, n); });
  const phase_result hooked =
      phase("webhooks", "engine + webhooks", [&](const phase_setup& s) { return run_engine_with_webhooks(s, n); });
  const phase_result ceiling =
      phase("ceiling", "sql ceiling", [&](const phase_setup& s) { return run_sql_ceiling(s, n); });
  const phase_result one_row = phase("one-row", "one-row loop", [&](const phase_setup& s) {
    return run_one_row_loop(s, std::min(options.one_row_sample, n), options.one_row_seconds);
  });

  std::error_code ec;
  fs::remove_all(work, ec);

  const double over_one_row = one_row.rate() > 0 ? engine.rate() / one_row.rate() : 0;
  const double of_ceiling = ceiling.rate() > 0 ? engine.rate() / ceiling.rate() : 0;
  fmt::print("\nresults ({} contacts; load average at end {})\n", n, load_average());
  fmt::print("  engine end to end      {:>10.0f} contacts/s  ({} in {:.2f} s)   target >= {:.0f}/s: {}\n",
             engine.rate(), engine.contacts, engine.seconds, kTargetRate,
             verdict(engine.rate(), kTargetRate));
  if (hooked.rate() > 0)
    fmt::print("  engine + webhooks      {:>10.0f} contacts/s  ({} in {:.2f} s)   / engine = {:.2f}, target >= 0.80: {}\n",
               hooked.rate(), hooked.contacts, hooked.seconds, engine.rate() > 0 ? hooked.rate() / engine.rate() : 0,
               engine.rate() > 0 ? verdict(hooked.rate() / engine.rate(), 0.8) : "not measured");
  fmt::print(
      "  one-row claim loop     {:>10.0f} contacts/s  ({} in {:.2f} s, a sample)   engine / one-row = "
      "{:.1f}x, "
      "target >= {:.0f}x: {}\n",
      one_row.rate(), one_row.contacts, one_row.seconds, over_one_row, kTargetOverOneRow,
      verdict(over_one_row, kTargetOverOneRow));
  fmt::print(
      "  raw SQL ceiling        {:>10.0f} contacts/s  ({} in {:.2f} s)   engine / ceiling = {:.2f}, target "
      ">= "
      "{:.2f}: {}\n",
      ceiling.rate(), ceiling.contacts, ceiling.seconds, of_ceiling, kTargetOfCeiling,
      verdict(of_ceiling, kTargetOfCeiling));
  fmt::print("engine_contacts_per_s={:.0f} engine_webhooks_contacts_per_s={:.0f} one_row_loop_per_s={:.0f} "
             "sql_ceiling_per_s={:.0f}\n",
             engine.rate(), hooked.rate(), one_row.rate(), ceiling.rate());
  return 0;
}
