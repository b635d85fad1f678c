// Event webhook deliveries per second, to a local receiver on loopback with keep-alive.
//
//   cmake --build build-bench --target bench_webhooks && build-bench/bench/bench_webhooks [--events N] [--threads K]
//
// The outbox holds N call.ended events (a realistic ~700-byte body) for one endpoint that allows K deliveries at
// once; the webhook dispatcher (K threads, as `dialer serve --webhook-threads K` runs it: lease, sign, post,
// record each) delivers them to a bare Beast receiver in this process. Baseline, same run and receiver: K
// keep-alive clients posting the same body in a loop, with no database and no signature (the HTTP ceiling).
#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <pqxx/pqxx>

#include "adapters/http/signatures.hpp"
#include "adapters/postgres/pg_webhook_outbox.hpp"
#include "adapters/webhooks/http_sender.hpp"
#include "bench/bare_server.hpp"
#include "bench/bench_support.hpp"
#include "engine/webhook_dispatcher.hpp"

namespace dialer::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

const std::string kData =
    R"({"attempt":{"id":1,"attempt_no":1,"carrier":"simulated","carrier_call_id":"sim-000000000001"},)"
    R"("campaign":{"id":1,"name":"spring-renewals"},"contact":{"id":1,"e164":"+14155550101","variables":)"
    R"({"first_name":"Ada","last_name":"Lovelace","plan":"gold","renewal":"2027-01-01"}},"from":"+12125550100",)"
    R"("to":"+14155550101","outcome":"completed","detail":null,"started_at":"2026-12-07T10:00:00+00:00",)"
    R"("answered_at":"2026-12-07T10:00:04+00:00","ended_at":"2026-12-07T10:01:31+00:00","duration_s":87.0,"cost":0.0174})";

// The baseline: K threads, each one keep-alive connection posting `body` until `n` posts are done between them.
double raw_posts_per_s(unsigned short port, int threads, std::int64_t n, const std::string& body) {
  std::atomic<std::int64_t> left{n};
  const auto started = steady::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      net::io_context io;
      beast::tcp_stream stream(io);
      stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
      beast::flat_buffer buffer;
      bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/hooks", 11};
      req.set(bhttp::field::host, "127.0.0.1");
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
      while (left.fetch_sub(1) > 0) {
        bhttp::write(stream, req);
        bhttp::response<bhttp::string_body> res;
        bhttp::read(stream, buffer, res);
        if (res.result_int() != 200) die("the receiver answered " + std::to_string(res.result_int()));
      }
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(n) / std::chrono::duration<double>(steady::now() - started).count();
}

}  // namespace
}  // namespace dialer::bench

int main(int argc, char** argv) {
  using namespace dialer;
  using namespace dialer::bench;
  program_name = "bench_webhooks";
  std::int64_t events = 20'000;
  int threads = 4;
  std::size_t batch = dialer::webhook_dispatcher_options{}.batch;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::stoll(argv[++i]) : (die("missing value after " + a), 0LL); };
    if (a == "--events") events = next();
    else if (a == "--threads") threads = static_cast<int>(next());
    else if (a == "--batch") batch = static_cast<std::size_t>(next());
    else {
      std::fprintf(stderr, "usage: bench_webhooks [--events N (default 20000)] [--threads K (default 4)] "
                           "[--batch B (default: the dispatcher's)]\n");
      return 2;
    }
  }
  std::printf("machine: %s, %u cpus; load average before: %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), load_average().c_str());
  bare_server receiver;
  receiver.start(1);
  const auto url = fmt::format("http://127.0.0.1:{}/hooks", receiver.port());

  bench_database db;
  const auto database = db.database_for("webhooks");
  {
    pqxx::connection c(database);
    pqxx::work tx(c);
    tx.exec_params0("INSERT INTO webhook_endpoints (account_id, url, secret, max_in_flight) VALUES (1, $1, $2, $3)",
                    url, http::new_webhook_secret(), threads);
    // Real rows behind the events (payloads are built from them at delivery): a campaign, its contacts, one
    // finished attempt each, and the log's call.ended rows for them (one per 4 000 attempts, as write-back makes).
    tx.exec0("INSERT INTO agents (account_id, name) VALUES (1, 'bench-agent')");
    tx.exec0("INSERT INTO campaigns (account_id, name, agent_id, state, carrier, settings) "
             "SELECT 1, 'spring-renewals', id, 'completed', 'simulated', '{}' FROM agents WHERE name = 'bench-agent'");
    tx.exec_params0("INSERT INTO contacts (id, campaign_id, row_number, e164, variables, state, attempts, outcome) "
                    "SELECT g, (SELECT id FROM campaigns), g, '+1415' || lpad(g::text, 7, '0'), "
                    "'{\"first_name\":\"Ada\",\"last_name\":\"Lovelace\",\"plan\":\"gold\",\"renewal\":\"2027-01-01\"}', "
                    "'done', 1, 'completed' FROM generate_series(1, $1) g",
                    events);
    tx.exec0("INSERT INTO call_attempts (id, campaign_id, contact_id, attempt_no, number_id, caller_id, carrier, "
             "engine_id, carrier_call_id, started_at, answered_at, ended_at, outcome, billable_ms, cost) "
             "SELECT k.id * 128 + 1, k.campaign_id, k.id, 1, 1, '+12125550100', 'simulated', 'bench', "
             "'sim-' || lpad(k.id::text, 12, '0'), now() - interval '90 s', now() - interval '87 s', now(), "
             "'completed', 87000, 0.0174 FROM contacts k");
    tx.exec0("INSERT INTO webhook_log (account_id, type, ids) "
             "SELECT 1, 'call.ended', array_agg(id ORDER BY id) FROM call_attempts GROUP BY id / (4000 * 128)");
    tx.exec0("UPDATE webhook_endpoints SET cursor_xid = '0', cursor_log = 0, cursor_index = 0");
    tx.commit();
  }
  const auto body_size = kData.size() + 150;  // the envelope: id, type, timestamp, account, contact, sequence
  std::printf("%lld call.ended events (~%zu-byte bodies), one endpoint, %d at once; receiver: bare Beast, 1 thread\n",
              static_cast<long long>(events), body_size, threads);
  std::fflush(stdout);

  const double baseline = raw_posts_per_s(receiver.port(), threads, events, std::string(body_size, 'x'));
  const auto before = receiver.requests.load();

  system_clock clk;
  webhook_dispatcher_options opts;
  opts.threads = threads;
  opts.batch = batch;
  opts.idle_poll = std::chrono::milliseconds(50);
  webhooks::sender_options so;
  so.allow.loopback = true;
  webhook_dispatcher dispatcher(
      [&](int index) -> result<std::unique_ptr<webhook_outbox>> {
        return std::unique_ptr<webhook_outbox>(std::make_unique<pg::pg_webhook_outbox>(database, "bench", index));
      },
      [so]() -> std::unique_ptr<webhook_sender> { return std::make_unique<webhooks::http_sender>(so); }, clk, opts);
  const auto cpu0 = cpu_sample::now();
  const auto started = std::chrono::steady_clock::now();
  dispatcher.start();
  pqxx::connection watch(database);
  for (;;) {
    pqxx::nontransaction tx(watch);
    if (tx.exec1(kAllDelivered)[0].as<bool>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the watcher's cadence
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto cpu1 = cpu_sample::now();
  dispatcher.stop();
  const auto posted = receiver.requests.load() - before;
  if (posted < events) die(fmt::format("the receiver saw {} requests for {} events", posted, events));
  const double ours = static_cast<double>(events) / wall;
  std::printf("  %s\n", cpu_split(cpu0, cpu1, wall).c_str());
  std::printf("results (load average at end %s)\n", load_average().c_str());
  std::printf("  raw keep-alive POSTs (baseline)   %8.0f /s\n", baseline);
  std::printf("  webhook deliveries                %8.0f /s   (%lld in %.2f s; %.2f of the baseline; %lld requests)\n",
              ours, static_cast<long long>(events), wall, ours / baseline, static_cast<long long>(posted));
  std::printf("raw_posts_per_s=%.0f deliveries_per_s=%.0f\n", baseline, ours);
  return 0;
}
