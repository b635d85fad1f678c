// bench_http: the HTTP API under wrk on loopback with keep-alive, against a bare Beast server in the same run.
//
//   cmake --build build-bench --target bench_http dialer && build-bench/bench/bench_http [--seconds 10]
//       [--connections 32] [--threads 2] [--numbers 100000] [--io-threads N (the server's; default: its own)]
//
// Three wrk runs, same settings, one after the other:
//   1. the baseline: a minimal Beast server (this process, 2 I/O threads) answering a fixed 45-byte body;
//   2. inbound routing: signed Twilio voice webhooks to `dialer serve` (the real binary), for numbers of an
//      account of 100 000 assigned numbers; the answer is TwiML <Connect><Stream>;
//   3. GET /v1/numbers/{id} with an API key, ids drawn at random among the 100 000 (a database read each).
// Target (issue 10): routing at least 50 % of the baseline's requests/s, with p99 under 2 ms.
#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <regex>
#include <thread>

#include "adapters/http/api_key.hpp"
#include "adapters/http/signatures.hpp"
#include "adapters/postgres/pg_api_store.hpp"
#include "bench/bare_server.hpp"
#include "bench/bench_support.hpp"

namespace dialer::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

struct wrk_result {
  double requests_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  std::int64_t non_2xx = 0, errors = 0;
  std::string raw;
};

double to_ms(const std::string& value, const std::string& unit) {
  const double v = std::stod(value);
  if (unit == "us") return v / 1000;
  if (unit == "s") return v * 1000;
  return v;
}

wrk_result run_wrk(const std::string& url, const std::string& script, int threads, int connections, int seconds) {
  const auto cmd = fmt::format("wrk -t{} -c{} -d{}s --latency -s {} {} 2>&1", threads, connections, seconds, script, url);
  wrk_result r;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) r.raw += buf;
    if (::pclose(p) != 0) die("wrk failed (apt-get install wrk):\n" + r.raw);
  }
  std::smatch m;
  if (std::regex_search(r.raw, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) r.requests_per_s = std::stod(m[1]);
  if (std::regex_search(r.raw, m, std::regex(R"(\n\s+50%\s+([0-9.]+)(us|ms|s))"))) r.p50_ms = to_ms(m[1], m[2]);
  if (std::regex_search(r.raw, m, std::regex(R"(\n\s+99%\s+([0-9.]+)(us|ms|s))"))) r.p99_ms = to_ms(m[1], m[2]);
  if (std::regex_search(r.raw, m, std::regex(R"(Non-2xx or 3xx responses:\s+([0-9]+))"))) r.non_2xx = std::stoll(m[1]);
  if (std::regex_search(r.raw, m, std::regex(R"(Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+))")))
    r.errors = std::stoll(m[1]) + std::stoll(m[2]) + std::stoll(m[3]) + std::stoll(m[4]);
  if (r.requests_per_s <= 0) die("could not read wrk's output:\n" + r.raw);
  return r;
}

std::string lua_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace
}  // namespace dialer::bench

int main(int argc, char** argv) {
  using namespace dialer;
  using namespace dialer::bench;
  program_name = "bench_http";
  int seconds = 10, connections = 32, threads = 2, numbers = 100000, io_threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::stoi(argv[++i]) : (die("missing value after " + a), 0); };
    if (a == "--seconds") seconds = next();
    else if (a == "--connections") connections = next();
    else if (a == "--threads") threads = next();
    else if (a == "--numbers") numbers = next();
    else if (a == "--io-threads") io_threads = next();
    else {
      std::fprintf(stderr, "usage: bench_http [--seconds N] [--connections N] [--threads N] [--numbers N] "
                           "[--io-threads N]\n");
      return 2;
    }
  }
  if (std::system("command -v wrk >/dev/null") != 0) die("wrk is missing: apt-get install wrk");
  std::printf("machine: %s, %u cpus; load average before: %s\n", cpu_model().c_str(), std::thread::hardware_concurrency(),
              load_average().c_str());

  bench_database db;
  const auto url = db.database_for("api");
  // The account: 100 000 numbers, each assigned to one of 100 agents (a wss:// hand-off), and an API key.
  std::string key;
  {
    pqxx::connection c(url);
    pqxx::work tx(c);
    tx.exec0("INSERT INTO agents (account_id, name, handoff) SELECT 1, 'agent-' || g, 'wss://agents.example.com/' || g "
             "FROM generate_series(1, 100) g");
    tx.exec_params0("INSERT INTO numbers (account_id, e164, country, type, kind, provider, agent_id) "
                    "SELECT 1, '+1' || (2000000000 + g)::text, 'US', 'local', 'byoc', 'twilio', 1 + g % 100 "
                    "FROM generate_series(1, $1) g",
                    numbers);
    tx.commit();
    pg::pg_api_store store(c);
    key = http::new_api_key();
    need(store.add_key(account_id{1}, "bench", http::api_key_prefix(key), http::sha256(key)), "an API key");
  }

  // The server: the real binary, its engine idle (no campaign), its API on a free port.
  const std::string token = "bench-auth-token";
  const std::string base = "http://127.0.0.1";
  const auto dir = fs::temp_directory_path() / fmt::format("bench_http-{}", ::getpid());
  fs::create_directories(dir);
  std::fflush(stdout);  // the child must not print this process's buffered output again
  const int server_pid = ::fork();
  if (server_pid == 0) {
    ::setenv("DIALER_TWILIO_AUTH_TOKEN", token.c_str(), 1);
    ::setenv("DIALER_PUBLIC_BASE_URL", base.c_str(), 1);
    ::setenv("DIALER_LOG_LEVEL", "warn", 1);
    const auto out = (dir / "serve.out").string();
    std::freopen(out.c_str(), "w", stdout);
    std::freopen((dir / "serve.err").string().c_str(), "w", stderr);
    const auto io = std::to_string(io_threads);  // 0: the server's default
    if (io_threads > 0)
      ::execl(DIALER_BINARY, DIALER_BINARY, "--database-url", url.c_str(), "serve", "--listen", "127.0.0.1:0",
              "--key-rate", "1000000", "--io-threads", io.c_str(), static_cast<char*>(nullptr));
    else
      ::execl(DIALER_BINARY, DIALER_BINARY, "--database-url", url.c_str(), "serve", "--listen", "127.0.0.1:0",
              "--key-rate", "1000000", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  unsigned short port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::ifstream in(dir / "serve.out");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    std::smatch m;
    if (std::regex_search(text, m, std::regex(R"(listening on http://127\.0\.0\.1:([0-9]+))"))) port = static_cast<unsigned short>(std::stoi(m[1]));
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the server's first line
  }
  if (port == 0) die("dialer serve did not start; see " + dir.string());
  // Every server has loaded its routes once its feed has: wait until a route answers <Connect>.

  // wrk scripts: a signed webhook for one assigned number; random number ids with the API key.
  const std::string to = "+12000000001";
  const http::query_params params{{"AccountSid", "AC00000000000000000000000000000000"},
                                  {"CallSid", "CA00000000000000000000000000000001"},
                                  {"CallStatus", "ringing"}, {"Direction", "inbound"},
                                  {"From", "+13125550100"}, {"To", to}};
  const std::string path = "/v1/inbound/twilio";
  const auto signature = http::twilio_signature(token, base + path, params);
  std::string form;
  for (const auto& [k, v] : params) form += (form.empty() ? "" : "&") + k + "=" + http::percent_encode(v);
  std::ofstream(dir / "route.lua") << "wrk.method = \"POST\"\nwrk.body = " << lua_string(form)
                                   << "\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n"
                                   << "wrk.headers[\"X-Twilio-Signature\"] = " << lua_string(signature) << "\n";
  std::ofstream(dir / "numbers.lua") << "wrk.headers[\"Authorization\"] = " << lua_string("Bearer " + key) << "\n"
                                     << "request = function() return wrk.format(\"GET\", \"/v1/numbers/\" .. "
                                     << "math.random(1, " << numbers << ")) end\n";
  std::ofstream(dir / "plain.lua") << "-- no script: plain GETs\n";
  {
    // Warm: one routed answer proves the route table is loaded.
    bool routed = false;
    for (int i = 0; i < 200 && !routed; ++i) {
      const auto probe = fmt::format(
          "curl -s -X POST -H 'Content-Type: application/x-www-form-urlencoded' -H 'X-Twilio-Signature: {}' --data '{}' "
          "http://127.0.0.1:{}{}",
          signature, form, port, path);
      std::string answer;
      if (FILE* p = ::popen(probe.c_str(), "r")) {
        char buf[512];
        while (std::fgets(buf, sizeof buf, p)) answer += buf;
        ::pclose(p);
      }
      routed = answer.find("<Connect>") != std::string::npos;
      if (!routed) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the route feed's first load
    }
    if (!routed) die("the server never routed the call; see " + dir.string());
  }

  bare_server bare;
  bare.start(2);
  std::printf("wrk -t%d -c%d -d%ds --latency, keep-alive, loopback; %d numbers in the account; server I/O threads: %s\n",
              threads, connections, seconds, numbers,
              io_threads > 0 ? std::to_string(io_threads).c_str() : "its default (half the cores, at least 1)");
  const auto baseline = run_wrk(fmt::format("http://127.0.0.1:{}/", bare.port()), (dir / "plain.lua").string(),
                                threads, connections, seconds);
  const auto routing = run_wrk(fmt::format("http://127.0.0.1:{}{}", port, path), (dir / "route.lua").string(), threads,
                               connections, seconds);
  const auto lookup = run_wrk(fmt::format("http://127.0.0.1:{}/", port), (dir / "numbers.lua").string(), threads,
                              connections, seconds);
  ::kill(server_pid, SIGTERM);
  int status = 0;
  ::waitpid(server_pid, &status, 0);

  const auto line = [&](const char* what, const wrk_result& r) {
    std::printf("  %-36s %9.0f req/s   p50 %6.3f ms   p99 %6.3f ms   non-2xx %lld, socket errors %lld   (%.2f of baseline)\n",
                what, r.requests_per_s, r.p50_ms, r.p99_ms, static_cast<long long>(r.non_2xx),
                static_cast<long long>(r.errors), r.requests_per_s / baseline.requests_per_s);
  };
  std::printf("results (load average at end %s)\n", load_average().c_str());
  line("bare Beast server (baseline)", baseline);
  line("inbound routing (signed Twilio)", routing);
  line("GET /v1/numbers/{id} (API key, DB)", lookup);
  const double ratio = routing.requests_per_s / baseline.requests_per_s;
  std::printf("routing / baseline = %.2f, target >= 0.50: %s; routing p99 %.3f ms, target < 2 ms: %s\n", ratio,
              verdict(ratio, 0.5).c_str(), routing.p99_ms, routing.p99_ms < 2.0 ? "MET" : "NOT MET");
  std::printf("baseline_rps=%.0f routing_rps=%.0f routing_p99_ms=%.3f numbers_get_rps=%.0f numbers_get_p99_ms=%.3f\n",
              baseline.requests_per_s, routing.requests_per_s, routing.p99_ms, lookup.requests_per_s, lookup.p99_ms);
  if (routing.non_2xx || lookup.non_2xx) std::printf("note: some answers were not 2xx (see above): check the setup\n");
  fs::remove_all(dir);
  return 0;
}
