// Originations per second through the Twilio carrier, and CPU microseconds per origination.
//
//   cmake --build build-bench --target bench_carriers && build-bench/bench/bench_carriers [--calls N] [--latency-ms L]
//
// The fake Twilio of tests/fakes runs in a child process (so this process's CPU time is the adapter's alone) on
// loopback and holds every answer for L ms (default 100: a carrier's round trip); it sends no status callbacks
// (they would go nowhere here). The adapter (rest::http_pool, 256 connections, as the engine's origination stage
// drives it: batches handed to originate(), answers on its I/O thread) places N calls (default 5 000); the figure
// is N / the time until the last create's answer. The account CPS is not enforced here (the engine's origination
// stage does that), so latency and the client decide the rate. Baseline, same run, same fake: a plain sequential
// client (Beast, synchronous), one create at a time on one kept-alive connection.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "adapters/carriers/rest/http_pool.hpp"
#include "adapters/carriers/twilio/twilio_carrier.hpp"
#include "adapters/carriers/twilio/twilio_protocol.hpp"
#include "bench/bench_support.hpp"
#include "engine/ports/clock.hpp"
#include "tests/fakes/fake_twilio.hpp"

namespace dialer::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

// This process's CPU time, to the microsecond (getrusage: /proc's ticks are too coarse for a few thousand calls).
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The fake in a child process; its port comes back through a pipe.
struct fake_process {
  pid_t pid = -1;
  unsigned short port = 0;
  fakes::fake_twilio_options options;
  ~fake_process() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

void start_fake(fake_process& f) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  f.pid = ::fork();
  if (f.pid == 0) {
    ::close(fds[0]);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the fake's threads inherit it: sigwait below takes SIGTERM
    fakes::fake_twilio fake(f.options);
    fake.start();
    const unsigned short port = fake.port();
    if (::write(fds[1], &port, sizeof port) != sizeof port) std::_Exit(2);
    int sig = 0;
    sigwait(&set, &sig);
    fake.stop();
    std::_Exit(0);
  }
  ::close(fds[1]);
  if (::read(fds[0], &f.port, sizeof f.port) != sizeof f.port) throw std::runtime_error("the fake did not start");
  ::close(fds[0]);
}

origination_request request(std::int64_t i) {
  origination_request r;
  r.attempt = attempt_id(1000 + i);
  r.campaign = campaign_id(1);
  r.contact = contact_id(1 + i);
  r.from_e164 = "+14155550100";
  r.to_e164 = fmt::format("+1212555{:04d}", i % 10'000);
  r.handoff = "wss://agents.example.com/stream";
  r.variables_json = R"({"first_name":"Ada","plan":"gold"})";
  return r;
}

class counting_sink final : public carrier_events {
 public:
  void on_accepted(attempt_id, std::string_view) noexcept override { bump(accepted_); }
  void on_refused(attempt_id, origination_refusal, std::optional<std::chrono::milliseconds>,
                  std::string_view detail) noexcept override {
    {
      std::lock_guard g(m_);
      if (last_refusal_.empty()) last_refusal_ = std::string(detail);
    }
    bump(refused_);
  }
  void on_outcome(const call_event&) noexcept override {}
  bool wait_for(std::int64_t n, std::chrono::seconds timeout) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, timeout, [&] { return accepted_ + refused_ >= n; });
  }
  std::int64_t accepted() {
    std::lock_guard g(m_);
    return accepted_;
  }
  std::int64_t refused() {
    std::lock_guard g(m_);
    return refused_;
  }
  std::string last_refusal() {
    std::lock_guard g(m_);
    return last_refusal_;
  }

 private:
  void bump(std::int64_t& v) {
    {
      std::lock_guard g(m_);
      ++v;
    }
    cv_.notify_all();
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::int64_t accepted_ = 0, refused_ = 0;
  std::string last_refusal_;
};

// An inbox that never holds anything: no callbacks in this benchmark.
class empty_inbox final : public carrier_callback_inbox {
 public:
  result<bool> put(const carrier_callback&) override { return true; }
  result<std::vector<carrier_callback>> take(std::string_view, std::string_view, std::size_t) override {
    return std::vector<carrier_callback>{};
  }
  result<std::vector<carrier_callback>> take_attempt(std::string_view, attempt_id) override {
    return std::vector<carrier_callback>{};
  }
  result<std::int64_t> purge(std::chrono::hours, std::chrono::hours) override { return std::int64_t{0}; }
};

struct figure {
  double per_s = 0;
  double cpu_us = 0;
  std::int64_t done = 0;
};

figure sequential(unsigned short port, const fakes::fake_twilio_options& o, std::int64_t n) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  beast::flat_buffer buffer;
  const auto auth = carriers::rest::basic_authorization(o.account_sid, o.auth_token);
  const auto cpu0 = cpu_seconds();
  const auto t0 = steady::now();
  figure f;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto r = request(i);
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/2010-04-01/Accounts/" + o.account_sid + "/Calls.json", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::authorization, auth);
    req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
    req.body() = carriers::twilio::encode_form(
        {{"To", r.to_e164}, {"From", r.from_e164}, {"Twiml", *carriers::twilio::handoff_twiml(r)},
         {"StatusCallback", "http://bench.invalid/v1/carriers/twilio/status?attempt=" + std::to_string(i)}});
    req.keep_alive(true);
    req.prepare_payload();
    bhttp::write(stream, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    if (res.result_int() == 201) ++f.done;
  }
  const double s = std::chrono::duration<double>(steady::now() - t0).count();
  f.per_s = static_cast<double>(f.done) / s;
  f.cpu_us = (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(n);
  return f;
}

figure adapter(unsigned short port, const fakes::fake_twilio_options& o, std::int64_t n, std::size_t connections) {
  carriers::carrier_environment env;
  env.public_base_url = "http://bench.invalid";
  env.open_inbox = []() -> result<std::unique_ptr<carrier_callback_inbox>> {
    return std::unique_ptr<carrier_callback_inbox>(std::make_unique<empty_inbox>());
  };
  env.credentials.values["twilio.account_sid"] = carriers::secret(o.account_sid);
  env.credentials.values["twilio.auth_token"] = carriers::secret(o.auth_token);
  auto settings = carriers::twilio::parse_twilio_settings(
      nlohmann::json{{"base_url", fmt::format("http://127.0.0.1:{}", port)},
                     {"max_connections", static_cast<double>(connections)},
                     {"account_cps", 10'000},
                     {"request_timeout", "30s"},
                     {"status_poll_after", "1h"}},
      env);
  if (!settings) throw std::runtime_error(settings.error().message);
  system_clock clk;
  auto made = carriers::twilio::twilio_carrier::make(std::move(*settings), env, clk);
  if (!made) throw std::runtime_error(made.error().message);
  auto& carrier = **made;
  counting_sink sink;
  carrier.set_events(&sink);
  // Warm the pool: the connections are opened before the clock starts (a serving engine keeps them open).
  std::vector<origination_request> warm;
  for (std::size_t i = 0; i < connections; ++i) warm.push_back(request(n + static_cast<std::int64_t>(i)));
  carrier.originate(warm);
  if (!sink.wait_for(static_cast<std::int64_t>(connections), std::chrono::seconds(60)))
    throw std::runtime_error("warm-up did not finish");
  const auto base = sink.accepted() + sink.refused();
  const auto cpu0 = cpu_seconds();
  const auto t0 = steady::now();
  std::vector<origination_request> batch;
  for (std::int64_t i = 0; i < n; ++i) {
    batch.push_back(request(i));
    if (batch.size() == 64 || i + 1 == n) {
      carrier.originate(batch);
      batch.clear();
    }
  }
  if (!sink.wait_for(base + n, std::chrono::seconds(600))) throw std::runtime_error("the originations did not finish");
  const double s = std::chrono::duration<double>(steady::now() - t0).count();
  figure f;
  f.done = sink.accepted() - static_cast<std::int64_t>(connections);
  if (sink.refused() > 0) fmt::print("  ({} refused: {})\n", sink.refused(), sink.last_refusal());
  f.per_s = static_cast<double>(f.done) / s;
  f.cpu_us = (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(n);
  const auto stats = carrier.statistics();
  fmt::print("  adapter: {} placed, pool opened {} connections\n", stats.placed, connections);
  return f;
}

}  // namespace
}  // namespace dialer::bench

int main(int argc, char** argv) {
  using namespace dialer::bench;
  std::int64_t calls = 5000;
  int latency_ms = 100;
  std::size_t connections = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--calls") == 0) calls = std::stoll(argv[i + 1]);
    else if (std::strcmp(argv[i], "--latency-ms") == 0) latency_ms = std::stoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--connections") == 0) connections = std::stoul(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_carriers [--calls N] [--latency-ms L] [--connections C]\n");
      return 2;
    }
  }
  fake_process fake;
  fake.options.latency = std::chrono::milliseconds(latency_ms);
  fake.options.threads = 1;
  fake.options.rates.never = 1.0;  // no status callbacks: they would have nowhere to go
  fake.options.ring = std::chrono::hours(1);
  start_fake(fake);
  fmt::print("bench_carriers: Twilio carrier vs a sequential client, fake Twilio in a child process, {} ms per answer\n",
             latency_ms);
  fmt::print("machine: {}, {} CPUs\n", cpu_model(), std::thread::hardware_concurrency());
  const auto seq_calls = std::max<std::int64_t>(20, std::min<std::int64_t>(calls / 50, 100));
  const auto base = sequential(fake.port, fake.options, seq_calls);
  fmt::print("baseline  sequential client, 1 connection : {:8.1f} originations/s  {:7.1f} us CPU each  ({} calls)\n",
             base.per_s, base.cpu_us, seq_calls);
  const auto ours = adapter(fake.port, fake.options, calls, connections);
  fmt::print("adapter   twilio_carrier, {} connections  : {:8.1f} originations/s  {:7.1f} us CPU each  ({} calls)\n",
             connections, ours.per_s, ours.cpu_us, ours.done);
  fmt::print("ratio     {:.1f}x the sequential client's rate; in flight ~ rate x {} ms = {:.0f}\n", ours.per_s / base.per_s,
             latency_ms, ours.per_s * latency_ms / 1000.0);
  return 0;
}
