// dialer run FILE, dialer serve, dialer campaigns ..., dialer call ..., dialer dnc ...
//
// `dialer run FILE` launches the file's campaign through the campaign service, then runs a dialing engine in
// this process scoped to that campaign until the campaign completes, is cancelled, or is paused here
// (Ctrl-C). Engines already serving the database (`dialer serve`) share the campaign's work with it, as
// several engines always do. `dialer serve` runs an engine for every running campaign of the database until
// SIGTERM or Ctrl-C.
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <atomic>
#include <charconv>
#include <cmath>
#include <csignal>
#include <map>
#include <random>
#include <variant>

#include "adapters/carriers/registry.hpp"
#include "adapters/carriers/rest/http_pool.hpp"
#include "adapters/carriers/sip/sip_proxy.hpp"
#include "adapters/http/url.hpp"
#include "adapters/config/campaign_file.hpp"
#include "adapters/postgres/campaign_rows.hpp"
#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/engine_ports.hpp"
#include "adapters/http/engine_metrics.hpp"
#include "adapters/postgres/pg_api_store.hpp"
#include "adapters/postgres/pg_route_feed.hpp"
#include "adapters/postgres/pg_webhook_outbox.hpp"
#include "adapters/webhooks/http_sender.hpp"
#include "app/api_backend.hpp"
#include "app/campaign_session.hpp"
#include "app/commands.hpp"
#include "app/output.hpp"
#include "engine/dialing/dialing_engine.hpp"
#include "engine/webhook_dispatcher.hpp"

namespace dialer::app {

namespace {

// A Call Control command for an inbound call; lost, unsent or a 5xx: sent again (`left` more times at most: its
// command_id makes a repeat harmless). The pool outlives every request it runs (it fails them when it stops).
void send_telnyx_command(carriers::rest::http_pool& pool, carriers::rest::http_request q, std::string call,
                         std::string action, int left) {
  auto again = q;
  pool.send(std::move(q), [&pool, again = std::move(again), call = std::move(call), action = std::move(action),
                           left](carriers::rest::http_response&& a) mutable {
    if (a.fail == carriers::rest::failure::none && a.status < 300) return;
    if ((a.fail != carriers::rest::failure::none || a.status >= 500) && left > 0) {
      send_telnyx_command(pool, std::move(again), std::move(call), std::move(action), left - 1);
      return;
    }
    spdlog::warn("telnyx: inbound call {}: {} failed: {}", call, action,
                 a.fail != carriers::rest::failure::none ? a.error
                                                         : fmt::format("HTTP {}: {}", a.status, a.body.substr(0, 300)));
  });
}

}  // namespace
namespace {

namespace fs = std::filesystem;

// Ctrl-C / SIGTERM: the first pauses the campaign (`run`) or drains the engine (`serve`), the second stops at
// once. The handler only counts; the waiting loop acts on the count.
std::atomic<int> g_signals{0};

extern "C" void on_signal(int) {
  g_signals.fetch_add(1);
}

struct signal_scope {
  signal_scope() {
    g_signals = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~signal_scope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  signal_scope(const signal_scope&) = delete;
  signal_scope& operator=(const signal_scope&) = delete;
  struct sigaction old_int_ {
  }, old_term_{};
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
    std::string line = fmt::format(
        "{} {}/{} done, {} dialed, {} answered, {} in flight [{} ], {:.1f} calls/s", to_string(s.state),
        s.finished, s.total, s.dialed, s.answered, s.in_flight, numbers, s.calls_per_second);
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
std::int64_t peak_of(const number_summary& n, const run_status* run) {
  if (run)
    for (const auto& u : run->numbers)
      if (u.id == n.id) return std::max<std::int64_t>(u.peak_in_flight, 0);
  return n.peak_in_flight;
}

// At most this many rejected rows in the summary table (JSON lists the first 1000; `dialer campaigns
// rejected` pages through them all).
constexpr std::size_t kRejectedRowsShown = 20;

// The summary's JSON is the API's (views::to_json); a run adds what it measured itself.
nlohmann::json report_json(const campaign_summary& s, const run_status* run, double duration_s) {
  auto j = to_json(s);
  for (std::size_t i = 0; i < s.numbers.size(); ++i) j["numbers"][i]["peak_in_flight"] = peak_of(s.numbers[i], run);
  j["duration_s"] = duration_s;
  if (run) j["reconciled"] = {{"attempts", run->reconciled}, {"unknown", run->unknown}};
  return j;
}

void print_summary(const campaign_summary& s, const run_status* run, double duration_s) {
  fmt::print("campaign '{}' (id {}): {}\n", s.campaign.name, s.campaign.id.value(),
             to_string(s.campaign.state));
  fmt::print(
      "contacts: {} total, {} done, {} pending, {} in progress, {} cancelled, {} do-not-call, {} invalid\n",
      s.progress.total, s.progress.done, s.progress.pending, s.progress.in_progress, s.progress.cancelled,
      s.progress.do_not_call, s.progress.invalid);
  fmt::print("attempts: {}\n\n", s.progress.attempts);
  std::vector<std::vector<std::string>> rows;
  for (const auto& o : s.outcomes)
    rows.push_back(
        {o.outcome, std::to_string(o.count),
         s.progress.attempts ? fmt::format("{:.1f}%", 100.0 * o.count / s.progress.attempts) : "-"});
  print_table({"OUTCOME", "ATTEMPTS", "SHARE"}, rows);
  fmt::print("\n");
  rows.clear();
  for (const auto& n : s.numbers)
    rows.push_back({n.e164, std::to_string(n.calls), std::to_string(peak_of(n, run)),
                    std::to_string(n.max_concurrent_calls)});
  print_table({"CALLER_ID", "CALLS", "PEAK_IN_FLIGHT", "LIMIT"}, rows);
  const std::int64_t rejected = s.campaign.import_rejected();
  fmt::print("\nimport: {} accepted, {} rejected", s.campaign.import_accepted, rejected);
  for (const auto& [reason, n] : s.campaign.import_rejected_by_reason) fmt::print(", {} {}", n, reason);
  for (std::size_t i = 0; i < s.first_rejected.size() && i < kRejectedRowsShown; ++i) {
    const auto& r = s.first_rejected[i];
    fmt::print("\n  row {}: {} '{}'", r.row, r.reason, r.input);
  }
  if (rejected > static_cast<std::int64_t>(kRejectedRowsShown))
    fmt::print("\n  and {} more (dialer campaigns rejected {} lists them)",
               rejected - static_cast<std::int64_t>(kRejectedRowsShown), s.campaign.id.value());
  fmt::print("\nduration: {:.1f}s, talk time: {:.1f} min, cost: {} USD\n", duration_s, s.talk_minutes,
             format_money(s.cost));
  if (run && run->reconciled)
    fmt::print("reconciled from an earlier run: {} attempts ({} unknown, not redialed)\n", run->reconciled,
               run->unknown);
}

int print_campaign(const global_options& options, const campaign_summary& s, const run_status* run,
                   double duration) {
  if (options.json)
    print_json(report_json(s, run, duration));
  else
    print_summary(s, run, duration);
  return exit_ok;
}

struct run_options {
  std::string file;
  bool resume = false;
  bool dry_run = false;
};

struct run_outcome {
  result<run_status> status = make_error(errc::internal, "not run");
  bool paused_here = false;  // Ctrl-C paused it: exit 130
  double duration_s = 0;
};

// Runs a dialing engine in this process for one launched campaign until the campaign completes, is cancelled,
// or is paused here (the first Ctrl-C pauses it for every engine: in-flight calls finish, queued contacts go
// back; the second stops at once, leaving the calls in flight to be reconciled by the next run). A pause from
// another process waits here for its resume.
run_outcome dial(campaign_session& session, campaign_id id, const campaign_spec& spec, bool quiet) {
  run_outcome out;
  auto options = engine_options_from_environment();
  if (!options) {
    out.status = options.error();
    return out;
  }
  if (auto rate = session.campaigns.call_minute_rate(); rate) options->call_minute_rate = *rate;
  auto carrier_env = carrier_environment_for(session.ctx.database_url());
  if (!carrier_env) {
    out.status = carrier_env.error();
    return out;
  }
  carriers::registry registry = carriers::make_default_registry(*carrier_env);
  system_clock clk;
  registry_carrier_source carriers(registry, clk);
  carriers.override_for(id, spec.carrier, spec.carrier_settings);
  dialing_engine engine(pg::engine_ports_for(session.ctx.database_url(), pg::make_engine_id()), carriers, clk,
                        *options, engine_scope{{id}});
  progress_printer printer(quiet);
  const auto started = std::chrono::steady_clock::now();
  signal_scope signals;
  engine.watch(id);
  engine.start();
  bool pause_sent = false;
  std::optional<result<campaign_state>> settled;
  std::uint64_t errors_seen = 0;
  const auto log_errors = [&] {
    for (const auto& e : engine.errors_since(errors_seen)) {
      spdlog::warn("{}: {}", e.stage, e.what.message);
      errors_seen = e.seq;
    }
  };
  while (true) {
    log_errors();
    const int n = g_signals.load();
    if (n >= 1 && !pause_sent) {
      pause_sent = true;
      (void)session.service.pause(id);  // not running any more (completed meanwhile): nothing to pause
      engine.wake();
    }
    if (n >= 2) {
      engine.request_stop(stop_mode::now);
      break;
    }
    const auto w = engine.watched(id);
    if (w) printer(w->status);
    if (w && w->settled) {
      const auto& how = *w->settled;
      if (!how) {
        settled = how;
        break;
      }
      if (*how != campaign_state::paused || pause_sent) {
        settled = how;
        break;
      }
      // Paused by another process: wait here for its resume (or a cancel).
    }
    clk.sleep_for(std::chrono::milliseconds(100));  // the progress line's cadence: nothing to wait for
  }
  engine.request_stop(g_signals.load() >= 2 ? stop_mode::now : stop_mode::drain);
  engine.join();
  log_errors();
  printer.finish();
  out.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  out.paused_here = pause_sent;
  if (settled && !*settled) {
    // The engine could not take the campaign on (its numbers changed since the launch): nothing more is
    // dialed.
    if (!pause_sent) (void)session.service.pause(id);
    out.status = settled->error();
    return out;
  }
  auto w = engine.watched(id);
  run_status status = w ? w->status : run_status{};
  if (settled) status.state = **settled;
  out.status = status;
  return out;
}

// A fresh session for the summary: the one opened at start may have died with a database restart during the
// run.
result<std::unique_ptr<campaign_session>> reopen(const global_options& options) {
  auto s = open_campaign_session(options);
  for (int i = 0; !s && s.error().code == errc::unavailable && i < 30; ++i) {
    system_clock clk;
    clk.sleep_for(std::chrono::seconds(1));  // reconnection back-off
    s = open_campaign_session(options);
  }
  return s;
}

int dry_run(const global_options& options, campaign_session& session, const campaign_spec& spec) {
  auto report_ = session.service.dry_run(spec);
  if (!report_) return report(report_.error());
  const auto& r = *report_;
  if (options.json) {
    nlohmann::json numbers = nlohmann::json::array();
    for (const auto& n : r.plan.numbers) numbers.push_back(n.e164);
    nlohmann::json rejected = nlohmann::json::array();
    for (const auto& row : r.first_rejected) rejected.push_back(to_json(row));
    nlohmann::json by_reason = nlohmann::json::object();
    for (std::size_t i = 0; i < contacts::reject_reason_count; ++i) {
      const auto reason = static_cast<contacts::reject_reason>(i);
      if (r.import.count(reason) > 0)
        by_reason[std::string(contacts::to_string(reason))] = r.import.count(reason);
    }
    print_json({{"dry_run", true},
                {"campaign", spec.name},
                {"agent", spec.agent},
                {"carrier", spec.carrier},
                {"numbers", numbers},
                {"would", r.plan.would_create},
                {"import",
                 {{"accepted", r.import.accepted},
                  {"rejected", rejected},
                  {"rejected_total", r.import.rejected},
                  {"rejected_by_reason", by_reason}}}});
  } else {
    fmt::print("dry run: campaign '{}' would call {} contacts ({} rejected) as agent '{}' through '{}'\n",
               spec.name, r.import.accepted, r.import.rejected, spec.agent, spec.carrier);
    for (const auto& n : r.plan.numbers) fmt::print("  caller ID {}\n", n.e164);
    for (const auto& w : r.plan.would_create) fmt::print("  would {}\n", w);
    fmt::print("nothing was dialed.\n");
  }
  return exit_ok;
}

// A campaign file launched: its session, its spec, and what the launch did.
struct launched_file {
  std::unique_ptr<campaign_session> session;
  campaign_spec spec;
  launch_result launched;
};

// Validate everything first, then act: nothing is created, bought or written before every check has passed,
// and the launches of one account take turns (two first runs of one file: one creates and imports, the other
// finds the campaign and joins it). Returns the exit code when there is nothing more to do (an error, a dry
// run, a campaign that is over already).
std::variant<int, launched_file> launch_file(const global_options& options, const run_options& ro) {
  auto carrier_env = carrier_environment_for("");  // checks settings only: its carriers never start
  if (!carrier_env) return report(carrier_env.error());
  carriers::registry registry = carriers::make_default_registry(*carrier_env);
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
    return report(make_error(errc::invalid_input,
                             "{}: carrier '{}' is not available in this build (known: {})", ro.file,
                             spec->carrier, fmt::join(registry.carrier_names(), ", ")));
  if (auto r = engine_options_from_environment(); !r) return report(r.error());
  {
    system_clock clk;  // the carrier checks its settings; the one it builds here places no call
    auto carrier = registry.make_carrier(spec->carrier, spec->carrier_settings, clk);
    if (!carrier) return report(carrier.error());
  }
  auto session = open_campaign_session(options);
  if (!session) return report(session.error());
  auto& service = (*session)->service;
  auto inputs = service.check_inputs(*spec);
  if (!inputs) return report(inputs.error());
  if (ro.dry_run) return dry_run(options, **session, *spec);

  launch_options lopts;
  lopts.resume = ro.resume;
  auto launched = service.launch(*spec, *inputs, lopts);
  if (!launched) return report(launched.error());
  for (const auto& w : launched->do_not_call_skipped)
    fmt::print(stderr, "dialer: warning: do-not-call entry skipped: {}\n", w);
  if (launched->imported)
    spdlog::info("imported {} contacts ({} rejected) from {}", launched->imported->summary.accepted,
                 launched->imported->summary.rejected, spec->contacts.file.string());
  if (launched->already) {
    spdlog::info("campaign '{}' is {} already; nothing to do", spec->name, to_string(*launched->already));
    auto summary = service.status(launched->id);
    if (!summary) return report(summary.error());
    return print_campaign(options, *summary, nullptr, summary->duration_s);
  }
  if (!launched->created) spdlog::info("campaign '{}' exists: resuming it", spec->name);
  return launched_file{std::move(*session), std::move(*spec), std::move(*launched)};
}

int run_campaign(const global_options& options, const run_options& ro) {
  auto launched = launch_file(options, ro);
  if (auto* code = std::get_if<int>(&launched)) return *code;
  auto& l = std::get<launched_file>(launched);
  auto run = dial(*l.session, l.launched.id, l.spec, false);
  if (!run.status) return report(run.status.error());
  auto fresh = reopen(options);
  if (!fresh) return report(fresh.error());
  auto summary = (*fresh)->service.status(l.launched.id);
  if (!summary) return report(summary.error());
  print_campaign(options, *summary, &*run.status, run.duration_s);
  if (summary->campaign.state == campaign_state::paused) {
    fmt::print(stderr, "dialer: campaign '{}' is paused; rerun or use --resume to continue.\n",
               summary->campaign.name);
    return exit_interrupted;
  }
  return exit_ok;
}

// dialer campaigns launch FILE: everything `run` does before it dials; the engines that serve the database
// (`dialer serve`) dial it.
int launch_campaign(const global_options& options, const run_options& ro) {
  auto launched = launch_file(options, ro);
  if (auto* code = std::get_if<int>(&launched)) return *code;
  auto& l = std::get<launched_file>(launched);
  auto summary = l.session->service.status(l.launched.id);
  if (!summary) return report(summary.error());
  if (options.json) {
    print_json(report_json(*summary, nullptr, summary->duration_s));
  } else {
    fmt::print(
        "campaign '{}' (id {}) is {}: {} contacts; the engines serving the database ('dialer serve') dial "
        "it\n",
        summary->campaign.name, summary->campaign.id.value(), to_string(summary->campaign.state),
        summary->progress.total);
  }
  return exit_ok;
}

int single_call(const global_options& options, single_call_request request) {
  carriers::registry registry = carriers::make_default_registry();
  if (request.carrier.empty()) request.carrier = "simulated";
  if (!registry.has_carrier(request.carrier))
    return report(make_error(errc::invalid_input, "carrier '{}' is not one of: {}", request.carrier,
                             fmt::join(registry.carrier_names(), ", ")));
  if (auto r = engine_options_from_environment(); !r) return report(r.error());
  auto session = open_campaign_session(options);
  if (!session) return report(session.error());
  auto& service = (*session)->service;
  std::random_device rd;
  request.name_suffix = fmt::format("{:06x}", rd() & 0xffffff);
  auto id = service.place_call(request);
  if (!id) return report(id.error());
  auto record = (*session)->campaigns.load(*id);
  if (!record) return report(record.error());
  auto run = dial(**session, *id, record->spec, true);
  if (!run.status) return report(run.status.error());
  auto fresh = reopen(options);
  if (!fresh) return report(fresh.error());
  auto attempt = (*fresh)->service.last_attempt(*id);
  if (!attempt) return report(attempt.error());
  if (!*attempt) {
    fmt::print(stderr, "dialer: no attempt was placed (state {})\n", to_string(run.status->state));
    return run.paused_here ? int{exit_interrupted} : int{exit_ok};
  }
  const auto& a = **attempt;
  if (options.json) {
    print_json({{"campaign", record->name},
                {"attempt_id", a.id},
                {"from", a.caller_id},
                {"to", a.callee},
                {"outcome", a.outcome},
                {"duration_s", a.billable_ms / 1000.0},
                {"carrier_call_id", a.carrier_call_id}});
  } else {
    fmt::print("call {} -> {}: {} ({:.1f}s talk, carrier call id {})\n", a.caller_id, a.callee, a.outcome,
               a.billable_ms / 1000.0, a.carrier_call_id);
  }
  return run.paused_here ? int{exit_interrupted} : int{exit_ok};
}

// dialer serve: an engine for every running campaign of the database, and the HTTP API in front of it, until
// SIGTERM or Ctrl-C. The first signal stops accepting connections, answers the requests in flight and drains the
// engine (queued contacts go back, calls in flight finish, the campaigns stay running for the other engines);
// the second stops at once.
struct serve_settings {
  std::string listen = "127.0.0.1:8080";  // "none": no HTTP API (an engine only)
  int api_workers = 4;
  int io_threads = 0;
  double key_rate = 100;
  double request_timeout_s = 15;           // a request's bytes must all arrive within this
  std::size_t max_body_bytes = 32 << 20;   // 413 beyond
  int webhook_threads = 4;                 // deliveries in flight from this process (0: this process delivers none)
  double webhook_lease_s = 60;             // a delivery a dead engine held is retried by another after this
  std::string sip_listen;                  // HOST:PORT for inbound SIP calls on BYOC numbers (empty: none)
  bool sip_redirect = false;               // answer 302 to the agent's URI instead of proxying
};

int serve(const global_options& options, const serve_settings& settings) {
  // From the start: a SIGTERM that comes while the server is still starting (it already listens) is handled by the
  // loop below like any other, not by the default action.
  signal_scope signals;
  auto engine_opts = engine_options_from_environment();
  if (!engine_opts) return report(engine_opts.error());
  auto session = open_campaign_session(options);
  if (!session) return report(session.error());
  if (auto rate = (*session)->campaigns.call_minute_rate(); rate) engine_opts->call_minute_rate = *rate;
  auto carrier_env = carrier_environment_for((*session)->ctx.database_url());
  if (!carrier_env) return report(carrier_env.error());
  carriers::registry registry = carriers::make_default_registry(*carrier_env);
  system_clock clk;

  prometheus::Registry metrics;
  auto engine_metrics = std::make_unique<http::prometheus_engine_metrics>(metrics);
  std::atomic<dialing_engine*> engine_for_metrics{nullptr};
  route_table routes;
  std::unique_ptr<pg::pg_route_feed> route_feed;
  // Which internal addresses webhooks may reach (none unless DIALER_WEBHOOK_ALLOW says loopback and/or private).
  const char* allow_text = std::getenv("DIALER_WEBHOOK_ALLOW");
  auto webhook_allow = webhooks::address_policy::parse(allow_text ? allow_text : "");
  if (!webhook_allow) return report(webhook_allow.error());
  // Inbound Telnyx calls are answered through Call Control's REST API, with the process's key (if it holds one).
  std::shared_ptr<carriers::rest::http_pool> telnyx_commands;
  std::string telnyx_authorization;
  if (const auto* key = (*carrier_env)->credentials.find("telnyx.api_key"); key && settings.listen != "none") {
    carriers::rest::pool_options po;
    const char* base = std::getenv("DIALER_TELNYX_BASE_URL");
    po.base_url = base && *base ? base : "https://api.telnyx.com";
    po.max_connections = 16;
    po.timeout = std::chrono::seconds(10);
    auto made = carriers::rest::http_pool::make(po);
    if (!made) return report(made.error());
    telnyx_commands = std::move(*made);
    telnyx_authorization = "Bearer " + key->reveal();
  }
  std::unique_ptr<http::api_server> api;
  if (settings.listen != "none" || !settings.sip_listen.empty()) {
    // Inbound routing reads the number -> agent table from memory, kept coherent by its own feed.
    route_feed = std::make_unique<pg::pg_route_feed>((*session)->ctx.database_url(), routes, clk);
    route_feed->start();
  }
  // Inbound SIP on BYOC numbers: a proxy to the assigned agent's SIP URI (adapters/carriers/sip/sip_proxy.hpp).
  std::unique_ptr<carriers::sip::sip_proxy> sip_proxy;
  if (!settings.sip_listen.empty()) {
    const auto colon = settings.sip_listen.rfind(':');
    int sip_port = -1;
    if (colon != std::string::npos) {
      const auto port_text = settings.sip_listen.substr(colon + 1);
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), sip_port);
      if (ec != std::errc() || end != port_text.data() + port_text.size()) sip_port = -1;
    }
    if (colon == std::string::npos || sip_port < 0 || sip_port > 65535)
      return report(make_error(errc::invalid_input, "--sip-listen '{}' must be HOST:PORT", settings.sip_listen));
    auto& family = prometheus::BuildCounter()
                       .Name("dialer_sip_inbound_calls_total")
                       .Help("Inbound SIP calls (out-of-dialog INVITEs) by result: routed, redirected, rejected "
                             "(404: unknown, released or unassigned number), not_ready, too_many_hops")
                       .Register(metrics);
    carriers::sip::proxy_options po;
    po.endpoint.bind_host = settings.sip_listen.substr(0, colon);
    if (po.endpoint.bind_host.size() > 2 && po.endpoint.bind_host.front() == '[')
      po.endpoint.bind_host = po.endpoint.bind_host.substr(1, po.endpoint.bind_host.size() - 2);
    po.endpoint.bind_port = sip_port;
    po.endpoint.listen_tcp = true;
    po.endpoint.name = "sip proxy";
    if (const char* advertised = std::getenv("DIALER_SIP_ADVERTISED_HOST"); advertised && *advertised)
      po.endpoint.advertised_host = advertised;
    if ((po.endpoint.bind_host == "0.0.0.0" || po.endpoint.bind_host == "::") && po.endpoint.advertised_host.empty())
      return report(make_error(errc::invalid_input,
                               "--sip-listen {}: a wildcard address cannot go in our Via and Record-Route; set "
                               "DIALER_SIP_ADVERTISED_HOST to the address the trunk and the agents reach",
                               settings.sip_listen));
    po.redirect = settings.sip_redirect;
    po.count = [&family](std::string_view result) { family.Add({{"result", std::string(result)}}).Increment(); };
    auto made = carriers::sip::sip_proxy::make(std::move(po), routes);
    if (!made) return report(made.error());
    sip_proxy = std::move(*made);
    fmt::print("listening for SIP on {}:{}\n", settings.sip_listen.substr(0, colon), sip_proxy->port());
    std::fflush(stdout);
  }
  if (settings.listen != "none") {
    http::api_options api_opts;
    api_opts.listen = settings.listen;
    api_opts.workers = settings.api_workers;
    api_opts.io_threads = settings.io_threads;
    api_opts.key_rate_per_s = settings.key_rate;
    api_opts.key_burst = std::max(1.0, settings.key_rate * 2);
    api_opts.limits.request_timeout =
        std::chrono::milliseconds(static_cast<std::int64_t>(settings.request_timeout_s * 1000));
    api_opts.limits.body_bytes = settings.max_body_bytes;
    api_opts.carriers = registry.carrier_names();
    api_opts.webhook_allow = *webhook_allow;
    api_opts.routes = &routes;
    const auto env = [](const char* name) {
      const char* v = std::getenv(name);
      return std::string(v ? v : "");
    };
    api_opts.public_base_url = env("DIALER_PUBLIC_BASE_URL");
    while (!api_opts.public_base_url.empty() && api_opts.public_base_url.back() == '/') api_opts.public_base_url.pop_back();
    // Twilio signs its webhooks with the account's auth token (also when the REST API is used with an API key).
    if (const auto* token = (*carrier_env)->credentials.find("twilio.auth_token")) api_opts.twilio_auth_token = token->reveal();
    api_opts.telnyx_public_key = env("DIALER_TELNYX_PUBLIC_KEY");
    if (telnyx_commands)
      api_opts.telnyx_command = [pool = telnyx_commands, auth = telnyx_authorization](
                                    const std::string& call, const std::string& action, const nlohmann::json& body) {
        carriers::rest::http_request q;
        q.method = "POST";
        q.target = "/v2/calls/" + http::percent_encode(call) + "/actions/" + action;
        q.content_type = "application/json";
        q.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        q.authorization = auth;
        send_telnyx_command(*pool, std::move(q), call, action, 2);
      };
    api_opts.metrics_token = env("DIALER_METRICS_TOKEN");
    api_opts.before_scrape = [&engine_metrics, &engine_for_metrics] {
      if (auto* e = engine_for_metrics.load()) engine_metrics->refresh(e->gauges());
    };
    api = std::make_unique<http::api_server>(api_opts, pg_api_backends((*session)->ctx.database_url()), clk, metrics);
    auto port = api->start();
    if (!port) return report(port.error());
    const auto host = settings.listen.substr(0, settings.listen.rfind(':'));
    // On stdout, for whoever started us (a test, a supervisor): the address actually bound (port 0: any free one).
    fmt::print("listening on http://{}:{}\n", host, *port);
    std::fflush(stdout);
  }

  registry_carrier_source carriers(registry, clk);
  const auto engine_id = pg::make_engine_id();

  // Event webhooks: the outbox's events, delivered by every serving process (leases share the work).
  // The engine at capacity (updated by the loop below): webhook delivery yields to dialing meanwhile.
  std::atomic<bool> dialing_saturated{false};
  std::unique_ptr<webhook_dispatcher> deliveries;
  if (settings.webhook_threads > 0) {
    webhooks::sender_options sender_opts;
    sender_opts.allow = *webhook_allow;
    if (const char* ca = std::getenv("DIALER_WEBHOOK_CA_FILE")) sender_opts.ca_file = ca;
    try {  // a CA file that cannot be read is an error now, not on a dispatcher thread later
      webhooks::http_sender probe(sender_opts);
    } catch (const std::exception& e) {
      return report(make_error(errc::invalid_input, "DIALER_WEBHOOK_CA_FILE '{}': {}", sender_opts.ca_file, e.what()));
    }
    webhook_dispatcher_options hook_opts;
    hook_opts.threads = settings.webhook_threads;
    hook_opts.lease = std::chrono::seconds(std::max<std::int64_t>(1, std::llround(settings.webhook_lease_s)));
    hook_opts.timeout = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(15'000), hook_opts.lease / 2);
    hook_opts.on_error = [](const std::string& what) { spdlog::warn("webhooks: {}", what); };
    hook_opts.busy = [&dialing_saturated] { return dialing_saturated.load(std::memory_order_relaxed); };

    const auto url = (*session)->ctx.database_url();
    deliveries = std::make_unique<webhook_dispatcher>(
        [url, engine_id](int index) -> result<std::unique_ptr<webhook_outbox>> {
          return std::unique_ptr<webhook_outbox>(std::make_unique<pg::pg_webhook_outbox>(url, engine_id, index));
        },
        [sender_opts]() -> std::unique_ptr<webhook_sender> {
          return std::make_unique<webhooks::http_sender>(sender_opts);
        },
        clk, hook_opts);
    deliveries->start();
  }
  engine_opts->metrics = engine_metrics.get();
  dialing_engine engine(pg::engine_ports_for((*session)->ctx.database_url(), engine_id), carriers, clk,
                        *engine_opts);
  engine.start();
  engine_for_metrics = &engine;
  spdlog::info("engine {} serves every running campaign of the database{}; Ctrl-C or SIGTERM stops it", engine_id,
               api ? " and the HTTP API on " + settings.listen : std::string());
  pg::pg_api_store api_store((*session)->ctx.db());
  auto next_expiry = clk.monotonic();
  int handled = 0;
  std::uint64_t errors_seen = 0;
  while (!engine.stopped()) {
    for (const auto& e : engine.errors_since(errors_seen)) {
      spdlog::warn("{}: {}", e.stage, e.what.message);
      errors_seen = e.seq;
    }
    const int n = g_signals.load();
    if (n > handled) {
      handled = n;
      if (api && n == 1) {
        spdlog::info("no new connections; answering the requests in flight");
        api->stop(std::chrono::seconds(10));
      }
      engine.request_stop(n >= 2 ? stop_mode::now : stop_mode::drain);
      spdlog::info(n >= 2 ? "stopping at once" : "draining: queued contacts go back, calls in flight finish");
    }
    if (api && clk.monotonic() >= next_expiry) {
      // Idempotency keys are answered for a day, then forgotten.
      if (auto gone = api_store.expire_idempotent(std::chrono::hours(24)); !gone)
        spdlog::warn("expiring idempotency keys: {}", gone.error().message);
      next_expiry = clk.monotonic() + std::chrono::minutes(1);
    }
    dialing_saturated.store(engine.saturated(), std::memory_order_relaxed);
    clk.sleep_for(std::chrono::milliseconds(100));  // the signal check's cadence
  }
  engine.join();
  if (deliveries) deliveries->stop();  // tries in progress end within their timeout; the rest stay leased or due
  if (api) api->stop(std::chrono::milliseconds(0));
  engine_for_metrics = nullptr;
  if (route_feed) route_feed->stop();
  return exit_ok;
}

template <class Body>
int with_service(const global_options& options, Body body) {
  auto session = open_campaign_session(options);
  if (!session) return report(session.error());
  return body((*session)->service);
}

int campaign_state_command(const global_options& options, const std::string& name, campaign_state to) {
  return with_service(options, [&](campaign_service& service) {
    auto id = service.find(name);
    if (!id) return report(id.error());
    auto st = to == campaign_state::paused    ? service.pause(*id)
              : to == campaign_state::running ? service.resume(*id)
                                              : service.cancel(*id);
    if (!st) return report(st.error());
    if (options.json)
      print_json({{"campaign", name}, {"state", to_string(*st)}});
    else
      fmt::print("campaign '{}' is {}\n", name, to_string(*st));
    return int{exit_ok};
  });
}

int contact_results(const global_options& options, const std::string& name, std::int64_t after, int limit) {
  return with_service(options, [&](campaign_service& service) {
    auto id = service.find(name);
    if (!id) return report(id.error());
    auto page =
        service.results(*id, after > 0 ? std::optional<contact_id>(contact_id{after}) : std::nullopt, limit);
    if (!page) return report(page.error());
    if (options.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& c : page->contacts) list.push_back(to_json(c));
      print_json({{"contacts", list},
                  {"next_after",
                   page->next_after ? nlohmann::json(page->next_after->value()) : nlohmann::json(nullptr)}});
    } else {
      std::vector<std::vector<std::string>> rows;
      for (const auto& c : page->contacts)
        rows.push_back({std::to_string(c.id.value()), std::to_string(c.row), c.e164, c.state,
                        std::to_string(c.attempts), c.outcome.empty() ? "-" : c.outcome, c.reason,
                        c.next_attempt_at ? iso8601(*c.next_attempt_at) : "-"});
      print_table({"ID", "ROW", "E164", "STATE", "ATTEMPTS", "OUTCOME", "REASON", "NEXT_ATTEMPT"}, rows);
      if (page->next_after) fmt::print("more: --after {}\n", page->next_after->value());
    }
    return int{exit_ok};
  });
}

// dialer campaigns rejected CAMPAIGN: the rows its import turned away, a page at a time.
int rejected_rows(const global_options& options, const std::string& name, std::int64_t after, int limit) {
  return with_service(options, [&](campaign_service& service) {
    auto id = service.find(name);
    if (!id) return report(id.error());
    // One row more than asked says whether another page follows.
    auto rows = service.rejected_rows(*id, after, limit + 1);
    if (!rows) return report(rows.error());
    std::optional<std::int64_t> next_after;
    if (static_cast<int>(rows->size()) > limit) {
      rows->pop_back();
      next_after = rows->back().row;
    }
    if (options.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& r : *rows) list.push_back(to_json(r));
      print_json(
          {{"rejected", list}, {"next_after", next_after ? nlohmann::json(*next_after) : nlohmann::json()}});
    } else {
      std::vector<std::vector<std::string>> table;
      for (const auto& r : *rows) table.push_back({std::to_string(r.row), r.reason, r.input});
      print_table({"ROW", "REASON", "PHONE_AS_WRITTEN"}, table);
      if (next_after) fmt::print("more: --after {}\n", *next_after);
    }
    return int{exit_ok};
  });
}

}  // namespace

void add_campaign_commands(CLI::App& app, global_options& options, command_action& run) {
  auto* run_cmd = app.add_subcommand("run", "Run a campaign file: import once, launch, dial to completion");
  auto ro = std::make_shared<run_options>();
  run_cmd->add_option("FILE", ro->file, "Campaign YAML file")->required();
  run_cmd->add_flag("--resume", ro->resume, "Continue a campaign that ran before (a rerun also resumes)");
  run_cmd->add_flag("--dry-run", ro->dry_run, "Validate the file and the contacts; dial nothing");
  run_cmd->callback([&options, &run, ro] { run = [&options, ro] { return run_campaign(options, *ro); }; });

  auto serve_opts = std::make_shared<serve_settings>();
  auto* serve_cmd = app.add_subcommand(
      "serve", "Run the dialing engine for every running campaign of the database, and the HTTP API");
  serve_cmd->add_option("--listen", serve_opts->listen,
                        "HOST:PORT of the HTTP API (default 127.0.0.1:8080; port 0: any free one; 'none': no API)");
  serve_cmd->add_option("--api-workers", serve_opts->api_workers, "Database connections of the HTTP API (default 4)")
      ->check(CLI::Range(1, 64));
  serve_cmd->add_option("--io-threads", serve_opts->io_threads,
                        "HTTP I/O threads, each owning its connections (default: half the cores, at least 1)")
      ->check(CLI::Range(1, 64));
  serve_cmd->add_option("--key-rate", serve_opts->key_rate, "Requests per second per API key (default 100)")
      ->check(CLI::Range(0.1, 1e6));
  serve_cmd->add_option("--request-timeout", serve_opts->request_timeout_s,
                        "Seconds a request may take to arrive, from its first byte (default 15)")
      ->check(CLI::Range(0.1, 3600.0));
  serve_cmd->add_option("--max-body", serve_opts->max_body_bytes, "Largest request body in bytes (default 32 MiB)")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));
  serve_cmd->add_option("--webhook-threads", serve_opts->webhook_threads,
                        "Event webhook deliveries in flight from this process (default 4; 0: none)")
      ->check(CLI::Range(0, 256));
  serve_cmd->add_option("--webhook-lease", serve_opts->webhook_lease_s,
                        "Seconds a delivery stays leased to this process before another may retry it (default 60)")
      ->check(CLI::Range(2.0, 3600.0));
  serve_cmd->add_option("--sip-listen", serve_opts->sip_listen,
                        "HOST:PORT for inbound SIP calls on BYOC numbers, UDP and TCP (port 0: any free one): each "
                        "INVITE is proxied to the called number's agent, 404 when it has none");
  serve_cmd->add_flag("--sip-redirect", serve_opts->sip_redirect,
                      "Answer inbound SIP INVITEs with 302 to the agent's URI instead of proxying them");
  serve_cmd->callback([&options, &run, serve_opts] { run = [&options, serve_opts] { return serve(options, *serve_opts); }; });

  auto* call = app.add_subcommand("call", "Place one call and print its outcome");
  auto req = std::make_shared<single_call_request>();
  call->add_option("--agent", req->agent, "Agent id or name")->required();
  call->add_option("--to", req->to, "Callee, E.164")->required();
  call->add_option("--from", req->from, "Caller ID: one of the agent's numbers");
  call->add_option("--carrier", req->carrier, "Carrier name (default: simulated)");
  call->callback([&options, &run, req] { run = [&options, req] { return single_call(options, *req); }; });

  auto* campaigns = app.add_subcommand("campaigns", "Campaigns in the database");
  campaigns->require_subcommand(1);
  auto lo = std::make_shared<run_options>();
  auto* launch = campaigns->add_subcommand("launch",
                                           "Launch a campaign file (import once, set it running) for the "
                                           "engines serving the database to dial");
  launch->add_option("FILE", lo->file, "Campaign YAML file")->required();
  launch->callback([&options, &run, lo] { run = [&options, lo] { return launch_campaign(options, *lo); }; });
  campaigns->add_subcommand("list", "List campaigns")->callback([&options, &run] {
    run = [&options] {
      return with_service(options, [&](campaign_service& service) {
        auto list = service.list();
        if (!list) return report(list.error());
        if (options.json) {
          nlohmann::json out = nlohmann::json::array();
          for (const auto& c : *list)
            out.push_back({{"id", c.id.value()},
                           {"name", c.name},
                           {"state", to_string(c.state)},
                           {"agent", c.agent_name},
                           {"carrier", c.carrier},
                           {"contacts", c.import_accepted}});
          print_json(out);
        } else {
          std::vector<std::vector<std::string>> rows;
          for (const auto& c : *list)
            rows.push_back({std::to_string(c.id.value()), c.name, std::string(to_string(c.state)),
                            c.agent_name, c.carrier, std::to_string(c.import_accepted)});
          print_table({"ID", "NAME", "STATE", "AGENT", "CARRIER", "CONTACTS"}, rows);
        }
        return int{exit_ok};
      });
    };
  });
  auto show_name = std::make_shared<std::string>();
  auto* show = campaigns->add_subcommand("show", "Show a campaign's progress and outcomes");
  show->add_option("CAMPAIGN", *show_name, "Campaign id or name")->required();
  show->callback([&options, &run, show_name] {
    run = [&options, show_name] {
      return with_service(options, [&](campaign_service& service) {
        auto id = service.find(*show_name);
        if (!id) return report(id.error());
        auto summary = service.status(*id);
        if (!summary) return report(summary.error());
        return print_campaign(options, *summary, nullptr, summary->duration_s);
      });
    };
  });
  auto results_name = std::make_shared<std::string>();
  auto results_after = std::make_shared<std::int64_t>(0);
  auto results_limit = std::make_shared<int>(100);
  auto* results = campaigns->add_subcommand("results", "Each contact's state, attempts and last outcome");
  results->add_option("CAMPAIGN", *results_name, "Campaign id or name")->required();
  results->add_option("--after", *results_after, "Contacts after this contact id (the previous page's last)");
  results->add_option("--limit", *results_limit, "Contacts per page (1-10000)")->check(CLI::Range(1, 10000));
  results->callback([&options, &run, results_name, results_after, results_limit] {
    run = [&options, results_name, results_after, results_limit] {
      return contact_results(options, *results_name, *results_after, *results_limit);
    };
  });
  auto rejected_name = std::make_shared<std::string>();
  auto rejected_after = std::make_shared<std::int64_t>(0);
  auto rejected_limit = std::make_shared<int>(100);
  auto* rejected =
      campaigns->add_subcommand("rejected", "The rows of the contact file its import turned away");
  rejected->add_option("CAMPAIGN", *rejected_name, "Campaign id or name")->required();
  rejected->add_option("--after", *rejected_after, "Rows after this row number (the previous page's last)");
  rejected->add_option("--limit", *rejected_limit, "Rows per page (1-9999)")->check(CLI::Range(1, 9999));
  rejected->callback([&options, &run, rejected_name, rejected_after, rejected_limit] {
    run = [&options, rejected_name, rejected_after, rejected_limit] {
      return rejected_rows(options, *rejected_name, *rejected_after, *rejected_limit);
    };
  });
  for (auto [verb, state, help] :
       {std::tuple{"pause", campaign_state::paused, "Pause: no new calls, in-flight finish"},
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
      return with_service(options, [&](campaign_service& service) {
        auto added = service.do_not_call_add(*dnc_numbers, "cli");
        if (!added) return report(added.error());
        if (options.json)
          print_json({{"added", *added}});
        else
          fmt::print("added {} number(s) to the do-not-call list\n", *added);
        return int{exit_ok};
      });
    };
  });
  auto dnc_file = std::make_shared<std::string>();
  auto* import = dnc->add_subcommand(
      "import", "Add every number of a file (one per line, or CSV with the number first)");
  import->add_option("FILE", *dnc_file, "File")->required();
  import->callback([&options, &run, dnc_file] {
    run = [&options, dnc_file] {
      return with_service(options, [&](campaign_service& service) {
        std::vector<std::string> invalid;
  auto added = service.do_not_call_import(*dnc_file, "US", invalid);
  if (!added) return report(added.error());
  for (const auto& w : invalid) fmt::print(stderr, "dialer: skipped {}\n", w);
  if (options.json)
    print_json({{"added", *added}, {"skipped", invalid}});
  else
    fmt::print("added {} number(s); skipped {} invalid line(s)\n", *added, invalid.size());
  return invalid.empty() ? int{exit_ok} : int{exit_invalid_input};
});
};  // namespace dialer::app
});
dnc->add_subcommand("list", "List the do-not-call list")->callback([&options, &run] {
  run = [&options] {
    return with_service(options, [&](campaign_service& service) {
      auto list = service.do_not_call_list_entries();
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
    });
  };
});
}

}  // namespace dialer::app
