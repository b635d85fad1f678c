// dialer run FILE, dialer campaigns ..., dialer call ..., dialer dnc ...
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <spdlog/spdlog.h>
#include <thread>
#include <unistd.h>

#include "adapters/carriers/registry.hpp"
#include "adapters/config/campaign_file.hpp"
#include "adapters/postgres/campaign_admin.hpp"
#include "adapters/postgres/campaign_store.hpp"
#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/inventory_store.hpp"
#include "app/campaign_launch.hpp"
#include "app/commands.hpp"
#include "app/output.hpp"
#include "engine/campaign_runner.hpp"
#include "engine/contacts/do_not_call_file.hpp"
#include "engine/contacts/synthetic.hpp"
#include "engine/phone.hpp"
#include "engine/rules/zones.hpp"

namespace dialer::app {
namespace {

namespace fs = std::filesystem;

// Ctrl-C / SIGTERM: the first pauses (in-flight calls finish, state is saved), the second stops at once.
std::atomic<campaign_runner*> g_runner{nullptr};
std::atomic<int> g_signals{0};

extern "C" void on_signal(int) {
  const int n = g_signals.fetch_add(1) + 1;
  if (auto* r = g_runner.load()) {
    if (n == 1) r->request_pause();
    else r->request_stop_now();
  }
}

struct signal_scope {
  explicit signal_scope(campaign_runner* r) {
    g_signals = 0;
    g_runner = r;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~signal_scope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    g_runner = nullptr;
  }
  struct sigaction old_int_ {}, old_term_ {};
};

std::string duration_text(std::chrono::seconds s) {
  const auto n = s.count();
  if (n >= 3600) return fmt::format("{}h{:02d}m", n / 3600, (n % 3600) / 60);
  if (n >= 60) return fmt::format("{}m{:02d}s", n / 60, n % 60);
  return fmt::format("{}s", n);
}

class progress_printer {
 public:
  explicit progress_printer(bool quiet) : tty_(::isatty(2) != 0), quiet_(quiet) {}

  void operator()(const run_status& s) {
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!tty_ && now - last_ < std::chrono::seconds(3)) return;
    last_ = now;
    std::string numbers;
    for (const auto& n : s.numbers) {
      if (numbers.size() > 120) {
        numbers += " ...";
        break;
      }
      numbers += fmt::format(" {}:{}/{}", n.e164, n.in_flight, n.max_concurrent_calls);
    }
    std::string line = fmt::format("{} {}/{} done, {} dialed, {} answered, {} in flight [{} ], {:.1f} calls/s",
                                   to_string(s.state), s.finished, s.total, s.dialed, s.answered, s.in_flight, numbers,
                                   s.calls_per_second);
    if (s.eta) line += ", ETA " + duration_text(*s.eta);
    if (s.waiting_until) line += ", waiting until " + iso8601(*s.waiting_until);
    if (tty_) {
      fmt::print(stderr, "\r\033[K{}", line);
      std::fflush(stderr);
      drawn_ = true;
    } else {
      fmt::print(stderr, "{}\n", line);
    }
  }
  void finish() {
    if (drawn_) fmt::print(stderr, "\n");
  }

 private:
  bool tty_;
  bool quiet_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// A number's peak: what this run measured when it dialed (its own calls), else the database's figure (every
// engine's calls, from their recorded intervals).
std::int64_t peak_of(const pg::number_summary& n, const run_status* run) {
  if (run)
    for (const auto& u : run->numbers)
      if (u.id == n.id) return u.peak_in_flight;
  return n.peak_in_flight;
}

// At most this many rejected rows in the summary table (JSON lists them all).
constexpr std::size_t kRejectedRowsShown = 20;

nlohmann::json report_json(const pg::campaign_summary& s, const run_status* run, double duration_s) {
  nlohmann::json by_state{{"pending", s.progress.pending},   {"in_progress", s.progress.in_progress},
                          {"done", s.progress.done},         {"cancelled", s.progress.cancelled},
                          {"do_not_call", s.progress.do_not_call}, {"invalid", s.progress.invalid}};
  nlohmann::json outcomes = nlohmann::json::object();
  for (const auto& o : s.outcomes) outcomes[o.outcome] = o.count;
  nlohmann::json rejected = nlohmann::json::array();
  for (const auto& [row, reason] : s.campaign.import_rejected) rejected.push_back({{"row", row}, {"reason", reason}});
  nlohmann::json numbers = nlohmann::json::array();
  for (const auto& n : s.numbers) {
    const std::int64_t peak = peak_of(n, run);
    numbers.push_back({{"e164", n.e164},
                       {"calls", n.calls},
                       {"peak_in_flight", peak},
                       {"max_concurrent_calls", n.max_concurrent_calls}});
  }
  nlohmann::json j{{"campaign", {{"id", s.campaign.id.value()}, {"name", s.campaign.name},
                                 {"state", to_string(s.campaign.state)}, {"agent", s.campaign.agent_name}}},
                   {"contacts", {{"total", s.progress.total}, {"by_state", by_state}}},
                   {"outcomes", outcomes},
                   {"attempts", s.progress.attempts},
                   {"import", {{"accepted", s.campaign.import_accepted}, {"rejected", rejected}}},
                   {"numbers", numbers},
                   {"duration_s", duration_s},
                   {"talk_minutes", s.talk_minutes},
                   {"cost", format_money(s.cost)}};
  if (run) j["reconciled"] = {{"attempts", run->reconciled}, {"unknown", run->unknown}};
  return j;
}

void print_summary(const pg::campaign_summary& s, const run_status* run, double duration_s) {
  fmt::print("campaign '{}' (id {}): {}\n", s.campaign.name, s.campaign.id.value(), to_string(s.campaign.state));
  fmt::print("contacts: {} total, {} done, {} pending, {} in progress, {} cancelled, {} do-not-call, {} invalid\n",
             s.progress.total, s.progress.done, s.progress.pending, s.progress.in_progress, s.progress.cancelled,
             s.progress.do_not_call, s.progress.invalid);
  fmt::print("attempts: {}\n\n", s.progress.attempts);
  std::vector<std::vector<std::string>> rows;
  for (const auto& o : s.outcomes)
    rows.push_back({o.outcome, std::to_string(o.count),
                    s.progress.attempts ? fmt::format("{:.1f}%", 100.0 * o.count / s.progress.attempts) : "-"});
  print_table({"OUTCOME", "ATTEMPTS", "SHARE"}, rows);
  fmt::print("\n");
  rows.clear();
  for (const auto& n : s.numbers)
    rows.push_back({n.e164, std::to_string(n.calls), std::to_string(peak_of(n, run)),
                    std::to_string(n.max_concurrent_calls)});
  print_table({"CALLER_ID", "CALLS", "PEAK_IN_FLIGHT", "LIMIT"}, rows);
  std::map<std::string, int> reasons;
  for (const auto& r : s.campaign.import_rejected) ++reasons[r.second];
  fmt::print("\nimport: {} accepted, {} rejected", s.campaign.import_accepted, s.campaign.import_rejected.size());
  for (const auto& [reason, n] : reasons) fmt::print(", {} {}", n, reason);
  const auto& rejected = s.campaign.import_rejected;
  for (std::size_t i = 0; i < rejected.size() && i < kRejectedRowsShown; ++i)
    fmt::print("\n  row {}: {}", rejected[i].first, rejected[i].second);
  if (rejected.size() > kRejectedRowsShown)
    fmt::print("\n  and {} more (--json lists them all)", rejected.size() - kRejectedRowsShown);
  fmt::print("\nduration: {:.1f}s, talk time: {:.1f} min, cost: {} USD\n", duration_s, s.talk_minutes, format_money(s.cost));
  if (run && run->reconciled) fmt::print("reconciled from an earlier run: {} attempts ({} unknown, not redialed)\n",
                                         run->reconciled, run->unknown);
}

struct run_options {
  std::string file;
  bool resume = false;
  bool dry_run = false;
  bool quiet = false;
};

struct null_sink final : contacts::contact_sink {
  result<void> write(const contacts::contact_batch& b) override {
    accepted += b.accepted.size();
    for (const auto& r : b.rejected) rejected.emplace_back(r.row, std::string(contacts::to_string(r.reason)));
    return ok();
  }
  std::size_t accepted = 0;
  std::vector<std::pair<std::uint64_t, std::string>> rejected;
};

result<void> ensure_contacts_file(const campaign_spec& spec) {
  if (fs::exists(spec.contacts.file) || !spec.contacts.generate) return ok();
  std::error_code ec;
  fs::create_directories(spec.contacts.file.parent_path(), ec);
  const std::string tmp = spec.contacts.file.string() + ".tmp";
  auto written = contacts::write_synthetic_contacts(tmp, static_cast<std::uint64_t>(*spec.contacts.generate),
                                                    spec.contacts.seed, spec.default_region);
  if (!written) return std::move(written).error();
  fs::rename(tmp, spec.contacts.file, ec);  // atomic: a half-written file is never taken for a finished one
  if (ec) return make_error(errc::unavailable, "cannot write {}: {}", spec.contacts.file.string(), ec.message());
  return ok();
}

// Reads the do-not-call file (engine) and adds its numbers to the account's list (adapter); returns how many
// were new. Lines that are not numbers are left in `skipped`.
result<int> load_dnc_file(pg::campaign_admin& admin, const fs::path& file, const std::string& region,
                          std::vector<std::string>* skipped) {
  auto entries = contacts::read_do_not_call_file(file, region);
  if (!entries) return std::move(entries).error();
  if (skipped) *skipped = std::move(entries->skipped);
  return admin.dnc_add(entries->e164s, file.filename().string());
}

struct carrier_holder {
  carriers::registry registry = carriers::make_default_registry();
  system_clock clk;
};

// DIALER_LEASE_MS shortens the contact and slot leases (default 15 s) so that the claims of a killed run lapse
// soon, e.g. in crash-recovery tests; the heartbeat stays well below a third of the lease so that a live
// process never loses its own claims to a late renewal.
result<runner_options> runner_options_from_environment() {
  runner_options o;
  const char* env = std::getenv("DIALER_LEASE_MS");
  if (env == nullptr || *env == '\0') return o;
  std::int64_t ms = 0;
  const char* end = env + std::strlen(env);
  const auto [stop, ec] = std::from_chars(env, end, ms);
  if (ec != std::errc{} || stop != end || ms < 400 || ms > 3'600'000)
    return make_error(errc::invalid_input,
                      "DIALER_LEASE_MS: expected whole milliseconds from 400 to 3600000, got \"{}\"", env);
  o.lease = std::chrono::milliseconds(ms);
  o.heartbeat = std::min(o.heartbeat, std::chrono::milliseconds(ms / 4));
  return o;
}

// Runs a prepared campaign to its end (or a pause); prints the summary; returns the exit code.
int execute(context& ctx, const global_options& options, campaign_id id, const launch_plan& plan,
            const campaign_spec& spec, bool quiet, const std::function<void(const pg::campaign_summary&)>& extra = {}) {
  auto runner_opts = runner_options_from_environment();
  if (!runner_opts) return report(runner_opts.error());
  carrier_holder holder;
  auto carrier = holder.registry.make_carrier(spec.carrier, spec.carrier_settings, holder.clk);
  if (!carrier) return report(carrier.error());
  auto record = pg::load_campaign_record(ctx.db(), ctx.account(), id);
  if (!record) return report(record.error());
  record->spec = spec;
  const std::string url = ctx.database_url();
  const account_id account = ctx.account();
  const std::string engine_id = pg::make_engine_id();
  campaign_store_factory stores = [url, account, engine_id]() -> result<std::unique_ptr<campaign_store>> {
    auto c = pg::connect(url, pg::engine_connection);
    if (!c) return std::move(c).error();
    return std::unique_ptr<campaign_store>(std::make_unique<pg::pg_campaign_store>(std::move(*c), account, engine_id));
  };
  {
    pg::pg_inventory_store inventory(ctx.db(), ctx.account());
    auto rate = inventory.per_minute_rate("call_minutes");
    if (!rate) return report(rate.error());
    runner_opts->call_minute_rate = *rate;
  }
  campaign_runner runner(*record, plan.numbers, **carrier, holder.clk, stores, *runner_opts);
  progress_printer printer(quiet);
  const auto started = std::chrono::steady_clock::now();
  result<run_status> status = make_error(errc::internal, "not run");
  {
    signal_scope signals(&runner);
    status = runner.run([&](const run_status& s) { printer(s); });
  }
  // run() has returned and the runner asks the carrier nothing more, but after a stop-now the carrier's own
  // thread goes on reporting the calls left in flight to the runner, its event sink, until the carrier stops.
  // Stop it here, before the runner is destroyed at the end of this function: calls still in flight then report
  // nothing, like a cut connection, and the next run reconciles them. (The other way round, a call ending in
  // between was delivered to the freed runner: heap-use-after-free in simulated_carrier::deliver under ASan.)
  (*carrier).reset();
  printer.finish();
  const double duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!status) return report(status.error());
  // A fresh connection: the one opened at start may have died with a database restart during the run.
  auto connection = pg::connect(ctx.database_url());
  for (int i = 0; !connection && connection.error().code == errc::unavailable && i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // reconnection back-off
    connection = pg::connect(ctx.database_url());
  }
  if (!connection) return report(connection.error());
  pg::campaign_admin admin(**connection, ctx.account(), ctx.database_url());
  auto summary = admin.summary(id);
  if (!summary) return report(summary.error());
  if (extra) {
    extra(*summary);
  } else if (options.json) {
    print_json(report_json(*summary, &*status, duration));
  } else {
    print_summary(*summary, &*status, duration);
  }
  if (status->state == campaign_state::paused) {
    fmt::print(stderr, "dialer: campaign '{}' is paused; rerun or use --resume to continue.\n", summary->campaign.name);
    return exit_interrupted;
  }
  return exit_ok;
}

// Everything about a run that can be checked without the database, checked before anything is created:
// the carrier and its settings, the OS time-zone data, the lease override, the contacts file's header and the
// do-not-call file.
result<std::optional<contacts::do_not_call_entries>> check_run_inputs(const campaign_spec& spec,
                                                                      const carriers::registry& registry) {
  // Calling windows are law: refuse to dial when the OS time-zone data cannot give correct DST rules.
  if (auto r = rules::verify_os_tzdb(std::chrono::system_clock::now()); !r) return std::move(r).error();
  if (auto r = runner_options_from_environment(); !r) return std::move(r).error();
  {
    system_clock clk;  // the carrier checks its settings; the one it builds here places no call
    auto carrier = registry.make_carrier(spec.carrier, spec.carrier_settings, clk);
    if (!carrier) return std::move(carrier).error();
  }
  if (auto r = ensure_contacts_file(spec); !r) return std::move(r).error();
  if (auto r = contacts::check_contacts_header(spec.contacts.file.string()); !r) return std::move(r).error();
  std::optional<contacts::do_not_call_entries> dnc;
  if (spec.do_not_call_file) {
    auto entries = contacts::read_do_not_call_file(*spec.do_not_call_file, spec.default_region);
    if (!entries) return std::move(entries).error();
    dnc = std::move(*entries);
  }
  return dnc;
}

int dry_run(const global_options& options, pg::campaign_admin& admin, const campaign_spec& spec,
            const launch_plan& plan) {
  auto dnc = admin.dnc_set();
  if (!dnc) return report(dnc.error());
  null_sink sink;
  contacts::import_options io;
  io.default_region = spec.default_region;
  io.do_not_call = &*dnc;
  auto imported = contacts::import_contacts_file(spec.contacts.file.string(), io, sink);
  if (!imported) return report(imported.error());
  if (options.json) {
    nlohmann::json numbers = nlohmann::json::array();
    for (const auto& n : plan.numbers) numbers.push_back(n.e164);
    nlohmann::json rejected = nlohmann::json::array();
    for (const auto& [row, reason] : sink.rejected) rejected.push_back({{"row", row}, {"reason", reason}});
    print_json({{"dry_run", true}, {"campaign", spec.name}, {"agent", spec.agent}, {"carrier", spec.carrier},
                {"numbers", numbers}, {"would", plan.would_create},
                {"import", {{"accepted", sink.accepted}, {"rejected", rejected}}}});
  } else {
    fmt::print("dry run: campaign '{}' would call {} contacts ({} rejected) as agent '{}' through '{}'\n", spec.name,
               sink.accepted, sink.rejected.size(), spec.agent, spec.carrier);
    for (const auto& n : plan.numbers) fmt::print("  caller ID {}\n", n.e164);
    for (const auto& w : plan.would_create) fmt::print("  would {}\n", w);
    fmt::print("nothing was dialed.\n");
  }
  return exit_ok;
}

// Validate everything first, then act: nothing is created, bought or written before every check has passed,
// and the launches of one account take turns (two first runs of one file: one creates and imports, the other
// finds the campaign and joins it).
int run_campaign(const global_options& options, const run_options& ro) {
  carriers::registry registry = carriers::make_default_registry();
  config::load_options lo;
  lo.known_carriers = registry.carrier_names();
  for (const char* planned : {"twilio", "telnyx", "sip"})
    if (std::find(lo.known_carriers.begin(), lo.known_carriers.end(), planned) == lo.known_carriers.end())
      lo.known_carriers.push_back(planned);
  auto spec = config::load_campaign_file(ro.file, lo);
  if (!spec) {
    fmt::print(stderr, "{}\n", spec.error().message);
    return exit_code_for(spec.error().code);
  }
  if (!registry.has_carrier(spec->carrier))
    return report(make_error(errc::invalid_input, "{}: carrier '{}' is not available in this build (known: {})",
                             ro.file, spec->carrier, fmt::join(registry.carrier_names(), ", ")));
  auto dnc_entries = check_run_inputs(*spec, registry);
  if (!dnc_entries) return report(dnc_entries.error());

  auto ctx = context::open(options);
  if (!ctx) return report(ctx.error());
  pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
  auto turn = admin.lock_launches();
  if (!turn) return report(turn.error());

  std::optional<campaign_record> existing;
  if (!ro.dry_run) {
    auto found = admin.find_campaign(spec->name);
    if (!found) return report(found.error());
    if (*found) {
      auto rec = pg::load_campaign_record(ctx->db(), ctx->account(), **found);
      if (!rec) return report(rec.error());
      if (rec->agent_name != spec->agent)
        return report(make_error(errc::launch_failed, "campaign '{}' belongs to agent '{}', not '{}'", spec->name,
                                 rec->agent_name, spec->agent));
      if (rec->state == campaign_state::completed || rec->state == campaign_state::cancelled) {
        turn->release();
        spdlog::info("campaign '{}' is {} already; nothing to do", spec->name, to_string(rec->state));
        auto summary = admin.summary(rec->id);
        if (!summary) return report(summary.error());
        if (options.json) print_json(report_json(*summary, nullptr, summary->duration_s));
        else print_summary(*summary, nullptr, summary->duration_s);
        return exit_ok;
      }
      existing = std::move(*rec);
    } else if (ro.resume) {
      return report(make_error(errc::not_found, "campaign '{}' has never run: there is nothing to resume", spec->name));
    }
  }

  auto checked = prepare_launch(*ctx, *spec, launch_step::check);
  if (!checked) return report(checked.error());
  if (ro.dry_run) {
    turn->release();
    return dry_run(options, admin, *spec, *checked);
  }

  // Every check passed: act.
  auto plan = prepare_launch(*ctx, *spec, launch_step::act);
  if (!plan) return report(plan.error());
  if (*dnc_entries) {
    auto added = admin.dnc_add((*dnc_entries)->e164s, spec->do_not_call_file->filename().string());
    if (!added) return report(added.error());
    for (const auto& w : (*dnc_entries)->skipped) fmt::print(stderr, "dialer: warning: do-not-call entry skipped: {}\n", w);
  }
  campaign_id id;
  if (existing) {
    id = existing->id;
    if (auto r = admin.update_settings(id, *spec); !r) return report(r.error());
    spdlog::info("campaign '{}' exists ({}): resuming it", spec->name, to_string(existing->state));
    if (!existing->imported) {
      auto imported = admin.import_contacts(id, spec->contacts.file, spec->default_region);
      if (!imported) return report(imported.error());
      spdlog::info("imported {} contacts ({} rejected) from {}", imported->summary.accepted,
                   imported->summary.rejected, spec->contacts.file.string());
    }
  } else {
    auto created = admin.create_and_import(*spec, plan->agent_record.id, plan->listed, spec->contacts.file,
                                           spec->default_region);
    if (!created) return report(created.error());
    id = created->id;
    spdlog::info("imported {} contacts ({} rejected) from {}", created->import.summary.accepted,
                 created->import.summary.rejected, spec->contacts.file.string());
  }
  turn->release();
  return execute(*ctx, options, id, *plan, *spec, options.json && ::isatty(2) == 0 ? false : false);
}

int single_call(const global_options& options, const std::string& agent, const std::string& to,
                const std::string& from, const std::string& carrier) {
  auto callee = parse_phone(to, "US");
  if (!callee) return report(callee.error());
  campaign_spec spec;
  std::random_device rd;
  spec.name = fmt::format("call-{}-{:06x}", std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count(),
                          rd() & 0xffffff);
  spec.agent = agent;
  spec.carrier = carrier.empty() ? "simulated" : carrier;
  // An operator's single call is placed now: no calling window, one attempt, no retries.
  spec.window.start = std::chrono::seconds{0};
  spec.window.end = std::chrono::hours{24};
  spec.window.days = rules::weekdays::every_day;
  spec.window.us_holidays = false;
  (void)spec.retry.set_max_attempts(1);
  spec.max_concurrency = 1;
  if (!from.empty()) {
    auto caller = parse_phone(from, "US");
    if (!caller) return report(caller.error());
    spec.numbers.push_back({caller->e164, std::nullopt, std::nullopt});
  }
  carriers::registry registry = carriers::make_default_registry();
  if (!registry.has_carrier(spec.carrier))
    return report(make_error(errc::invalid_input, "carrier '{}' is not one of: {}", spec.carrier,
                             fmt::join(registry.carrier_names(), ", ")));
  if (auto r = runner_options_from_environment(); !r) return report(r.error());
  auto ctx = context::open(options);
  if (!ctx) return report(ctx.error());
  // A single call creates nothing but its campaign, and that only once every check has passed.
  auto plan = prepare_launch(*ctx, spec, launch_step::check);
  if (!plan) return report(plan.error());
  pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
  auto dnc = admin.dnc_set();
  if (!dnc) return report(dnc.error());
  if (dnc->contains(callee->e164))
    return report(make_error(errc::invalid_input, "{} is on the do-not-call list and was not called", callee->e164));
  const auto dir = fs::temp_directory_path() / fmt::format("dialer-call-{}", ::getpid());
  fs::create_directories(dir);
  spec.contacts.file = dir / "contact.csv";
  std::ofstream(spec.contacts.file) << "phone\n" << callee->e164 << "\n";
  auto created = admin.create_and_import(spec, plan->agent_record.id, plan->listed, spec.contacts.file, "US");
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!created) return report(created.error());
  const campaign_id id = created->id;
  return execute(*ctx, options, id, *plan, spec, true, [&](const pg::campaign_summary& s) {
    pg::campaign_admin reader(ctx->db(), ctx->account(), ctx->database_url());
    auto attempt = reader.last_attempt(id);
    if (!attempt) {
      (void)report(attempt.error());
      return;
    }
    if (!*attempt) {
      fmt::print(stderr, "dialer: no attempt was placed (state {})\n", to_string(s.campaign.state));
      return;
    }
    const auto& a = **attempt;
    if (options.json) {
      print_json({{"campaign", s.campaign.name}, {"attempt_id", a.id}, {"from", a.caller_id}, {"to", callee->e164},
                  {"outcome", a.outcome}, {"duration_s", a.billable_ms / 1000.0},
                  {"carrier_call_id", a.carrier_call_id}});
    } else {
      fmt::print("call {} -> {}: {} ({:.1f}s talk, carrier call id {})\n", a.caller_id, callee->e164, a.outcome,
                 a.billable_ms / 1000.0, a.carrier_call_id);
    }
  });
}

int campaign_state_command(const global_options& options, const std::string& name, campaign_state to) {
  auto ctx = context::open(options);
  if (!ctx) return report(ctx.error());
  pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
  auto id = admin.find_campaign(name);
  if (!id) return report(id.error());
  if (!*id) return report(make_error(errc::not_found, "campaign '{}' does not exist", name));
  auto st = admin.set_state(**id, to);
  if (!st) return report(st.error());
  if (options.json) print_json({{"campaign", name}, {"state", to_string(*st)}});
  else fmt::print("campaign '{}' is {}\n", name, to_string(*st));
  return exit_ok;
}

}  // namespace

void add_campaign_commands(CLI::App& app, global_options& options, command_action& run) {
  auto* run_cmd = app.add_subcommand("run", "Run a campaign file: import once, launch, dial to completion");
  auto ro = std::make_shared<run_options>();
  run_cmd->add_option("FILE", ro->file, "Campaign YAML file")->required();
  run_cmd->add_flag("--resume", ro->resume, "Continue a campaign that ran before (a rerun also resumes)");
  run_cmd->add_flag("--dry-run", ro->dry_run, "Validate the file and the contacts; dial nothing");
  run_cmd->callback([&options, &run, ro] { run = [&options, ro] { return run_campaign(options, *ro); }; });

  auto* call = app.add_subcommand("call", "Place one call and print its outcome");
  auto agent = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto from = std::make_shared<std::string>();
  auto carrier = std::make_shared<std::string>();
  call->add_option("--agent", *agent, "Agent id or name")->required();
  call->add_option("--to", *to, "Callee, E.164")->required();
  call->add_option("--from", *from, "Caller ID: one of the agent's numbers");
  call->add_option("--carrier", *carrier, "Carrier name (default: simulated)");
  call->callback([&options, &run, agent, to, from, carrier] {
    run = [&options, agent, to, from, carrier] { return single_call(options, *agent, *to, *from, *carrier); };
  });

  auto* campaigns = app.add_subcommand("campaigns", "Campaigns in the database");
  campaigns->require_subcommand(1);
  campaigns->add_subcommand("list", "List campaigns")->callback([&options, &run] {
    run = [&options] {
      auto ctx = context::open(options);
      if (!ctx) return report(ctx.error());
      pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
      auto list = admin.list_campaigns();
      if (!list) return report(list.error());
      if (options.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& c : *list)
          out.push_back({{"id", c.id.value()}, {"name", c.name}, {"state", to_string(c.state)}, {"agent", c.agent_name},
                         {"carrier", c.carrier}, {"contacts", c.import_accepted}});
        print_json(out);
      } else {
        std::vector<std::vector<std::string>> rows;
        for (const auto& c : *list)
          rows.push_back({std::to_string(c.id.value()), c.name, std::string(to_string(c.state)), c.agent_name, c.carrier,
                          std::to_string(c.import_accepted)});
        print_table({"ID", "NAME", "STATE", "AGENT", "CARRIER", "CONTACTS"}, rows);
      }
      return int{exit_ok};
    };
  });
  auto show_name = std::make_shared<std::string>();
  auto* show = campaigns->add_subcommand("show", "Show a campaign's progress and outcomes");
  show->add_option("CAMPAIGN", *show_name, "Campaign id or name")->required();
  show->callback([&options, &run, show_name] {
    run = [&options, show_name] {
      auto ctx = context::open(options);
      if (!ctx) return report(ctx.error());
      pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
      auto id = admin.find_campaign(*show_name);
      if (!id) return report(id.error());
      if (!*id) return report(make_error(errc::not_found, "campaign '{}' does not exist", *show_name));
      auto summary = admin.summary(**id);
      if (!summary) return report(summary.error());
      if (options.json) print_json(report_json(*summary, nullptr, summary->duration_s));
      else print_summary(*summary, nullptr, summary->duration_s);
      return int{exit_ok};
    };
  });
  for (auto [verb, state, help] : {std::tuple{"pause", campaign_state::paused, "Pause: no new calls, in-flight finish"},
                                   std::tuple{"resume", campaign_state::running, "Resume a paused campaign"},
                                   std::tuple{"cancel", campaign_state::cancelled, "Cancel: in-flight finish, the rest cancelled"}}) {
    auto name = std::make_shared<std::string>();
    auto* cmd = campaigns->add_subcommand(verb, help);
    cmd->add_option("CAMPAIGN", *name, "Campaign id or name")->required();
    const campaign_state target = state;
    cmd->callback([&options, &run, name, target] {
      run = [&options, name, target] { return campaign_state_command(options, *name, target); };
    });
  }

  auto* dnc = app.add_subcommand("dnc", "The account's do-not-call list");
  dnc->require_subcommand(1);
  auto dnc_numbers = std::make_shared<std::vector<std::string>>();
  auto* add = dnc->add_subcommand("add", "Add numbers");
  add->add_option("E164", *dnc_numbers, "Numbers")->required();
  add->callback([&options, &run, dnc_numbers] {
    run = [&options, dnc_numbers] {
      std::vector<std::string> normalised;
      for (const auto& n : *dnc_numbers) {
        auto p = parse_phone(n, "US");
        if (!p) return report(p.error());
        normalised.push_back(p->e164);
      }
      auto ctx = context::open(options);
      if (!ctx) return report(ctx.error());
      pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
      auto added = admin.dnc_add(normalised, "cli");
      if (!added) return report(added.error());
      if (options.json) print_json({{"added", *added}});
      else fmt::print("added {} number(s) to the do-not-call list\n", *added);
      return int{exit_ok};
    };
  });
  auto dnc_file = std::make_shared<std::string>();
  auto* import = dnc->add_subcommand("import", "Add every number of a file (one per line, or CSV with the number first)");
  import->add_option("FILE", *dnc_file, "File")->required();
  import->callback([&options, &run, dnc_file] {
    run = [&options, dnc_file] {
      auto ctx = context::open(options);
      if (!ctx) return report(ctx.error());
      pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
      std::vector<std::string> invalid;
      auto added = load_dnc_file(admin, *dnc_file, "US", &invalid);
      if (!added) return report(added.error());
      for (const auto& w : invalid) fmt::print(stderr, "dialer: skipped {}\n", w);
      if (options.json) print_json({{"added", *added}, {"skipped", invalid}});
      else fmt::print("added {} number(s); skipped {} invalid line(s)\n", *added, invalid.size());
      return invalid.empty() ? int{exit_ok} : int{exit_invalid_input};
    };
  });
  dnc->add_subcommand("list", "List the do-not-call list")->callback([&options, &run] {
    run = [&options] {
      auto ctx = context::open(options);
      if (!ctx) return report(ctx.error());
      pg::campaign_admin admin(ctx->db(), ctx->account(), ctx->database_url());
      auto list = admin.dnc_list();
      if (!list) return report(list.error());
      if (options.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& [e, s] : *list) out.push_back({{"e164", e}, {"source", s}});
        print_json(out);
      } else {
        std::vector<std::vector<std::string>> rows;
        for (const auto& [e, s] : *list) rows.push_back({e, s});
        print_table({"E164", "SOURCE"}, rows);
      }
      return int{exit_ok};
    };
  });
}

}  // namespace dialer::app
