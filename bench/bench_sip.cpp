// Complete calls per second through the SIP trunk carrier (RFC 3725 flow I: two dialogs per call, the trunk's and
// the agent's) against a SIPp trunk and a SIPp agent, beside SIPp's own UAC (`sipp -sn uac`: one dialog per call)
// against the same trunk scenario in the same run. Everything on loopback, on this machine's cores, shared.
//
//   bench_sip [calls] [window] [rounds]      (defaults 20000, 400 and 3)
//
// A call counts once both of its legs ended: the outcome reached the sink (the agent's BYE relayed to the trunk and
// answered). The adapter gets `window` calls at once and one more per outcome (the engine's origination stage
// paces real campaigns; here the client keeps the window full, as SIPp's -l does for the baseline). Each SIPp's own
// statistics say how many calls it completed; they must equal `calls`.
#include <utility>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "adapters/carriers/sip/sip_carrier.hpp"
#include "bench/bench_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

int free_udp_port() {
  boost::asio::io_context io;
  boost::asio::ip::udp::socket s(io, boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

bool port_taken(int port) {
  boost::asio::io_context io;
  boost::asio::ip::udp::socket s(io);
  boost::system::error_code ec;
  s.open(boost::asio::ip::udp::v4(), ec);
  s.bind(boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                        static_cast<unsigned short>(port)),
         ec);
  return ec == boost::asio::error::address_in_use;
}

struct sipp {
  pid_t pid = -1;
  fs::path stat;
  rusage usage{};
  int code = -1;
};

// Starts SIPp with `args` in `dir`; for a UAS, returns once its port is bound.
sipp start_sipp(const fs::path& dir, const std::string& name, std::vector<std::string> args, int uas_port) {
  sipp s;
  s.stat = dir / (name + ".csv");
  args.insert(args.begin(), "sipp");
  for (const auto& a : {std::string("-nostdin"), std::string("-i"), std::string("127.0.0.1"), std::string("-ci"),
                        std::string("127.0.0.1"), std::string("-trace_stat"), std::string("-stf"), s.stat.string(),
                        std::string("-fd"), std::string("1"), std::string("-timeout"), std::string("300s")})
    args.push_back(a);
  s.pid = ::fork();
  if (s.pid == 0) {
    ::chdir(dir.c_str());
    std::FILE* out = std::fopen((dir / (name + ".out")).c_str(), "w");
    if (out) {
      ::dup2(::fileno(out), 1);
      ::dup2(::fileno(out), 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("sipp", argv.data());
    std::_Exit(127);
  }
  if (uas_port > 0) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!port_taken(uas_port) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  }
  return s;
}

void wait_sipp(sipp& s) {
  int status = 0;
  ::wait4(s.pid, &status, 0, &s.usage);
  s.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

double cpu_seconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The last row of a SIPp statistics CSV: SuccessfulCall(C), FailedCall(C) and the seconds it covers.
struct sipp_totals {
  long long successful = 0;
  long long failed = 0;
  double seconds = 0;
};

sipp_totals totals_of(const fs::path& csv) {
  const auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string f;
    while (std::getline(ss, f, ';')) out.push_back(f);
    return out;
  };
  const auto epoch = [](const std::string& field) {  // "date<TAB>time<TAB>epoch.usec"
    return std::stod(field.substr(field.rfind('\t') + 1));
  };
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  const auto names = split(line);
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(split(line));
  const auto column = [&](const std::string& name) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return i;
    return names.size();
  };
  const auto ok = column("SuccessfulCall(C)");
  const auto failed = column("FailedCall(C)");
  const auto start = column("StartTime");
  const auto now = column("CurrentTime");
  sipp_totals t;
  if (rows.empty() || ok >= names.size()) return t;
  t.successful = std::stoll(rows.back()[ok]);
  t.failed = std::stoll(rows.back()[failed]);
  // The rate runs to the first row where every successful call had completed: failed calls keep SIPp going until
  // their own timeouts, which is not throughput (rows are one second apart: the figure is conservative).
  for (const auto& row : rows) {
    if (std::stoll(row[ok]) >= t.successful) {
      t.seconds = epoch(row[now]) - epoch(row[start]);
      break;
    }
  }
  return t;
}

class counting_sink final : public dialer::carrier_events {
 public:
  void on_accepted(dialer::attempt_id, std::string_view) noexcept override {}
  void on_refused(dialer::attempt_id, dialer::origination_refusal, std::optional<std::chrono::milliseconds>,
                  std::string_view detail) noexcept override {
    std::lock_guard lock(mutex_);
    ++refused_;
    if (last_refusal_.empty()) last_refusal_ = std::string(detail);
    ++ended_;
    cv_.notify_all();
  }
  void on_outcome(const dialer::call_event& e) noexcept override {
    std::lock_guard lock(mutex_);
    if (e.outcome == dialer::call_outcome::completed) ++completed_;
    ++ended_;
    cv_.notify_all();
  }
  // Waits until more than `seen` calls ended (or 10 s passed); returns how many have.
  long long wait_beyond(long long seen) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, 10s, [&] { return ended_ > seen; });
    return ended_;
  }
  long long completed() {
    std::lock_guard lock(mutex_);
    return completed_;
  }
  long long refused() {
    std::lock_guard lock(mutex_);
    return refused_;
  }
  std::string last_refusal() {
    std::lock_guard lock(mutex_);
    return last_refusal_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  long long ended_ = 0;
  long long completed_ = 0;
  long long refused_ = 0;
  std::string last_refusal_;
};

// A SIPp UAS playing `scenario` (tests/data/sip/scenarios) for `calls` calls on `port`, with `extra` arguments.
sipp start_uas(const fs::path& dir, const std::string& name, const fs::path& scenario, int port, long long calls,
               std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"-sf", scenario.string(), "-p", std::to_string(port), "-m", std::to_string(calls)};
  args.insert(args.end(), extra.begin(), extra.end());
  return start_sipp(dir, name, args, port);
}

// One round of SIPp's own UAC against trunk_bench.xml, as many calls at once as our window: its calls/s.
double baseline_round(const fs::path& dir, const fs::path& data, long long calls, long long window) {
  const int port = free_udp_port();
  auto trunk = start_uas(dir, "baseline-trunk", data / "trunk_bench.xml", port, calls);
  auto uac = start_sipp(dir, "baseline-uac",
                        {"-sn", "uac", "127.0.0.1:" + std::to_string(port), "-p", std::to_string(free_udp_port()),
                         "-r", "100000", "-l", std::to_string(window), "-m", std::to_string(calls)},
                        0);
  wait_sipp(uac);
  wait_sipp(trunk);
  const auto t = totals_of(uac.stat);
  const double rate = t.successful / std::max(t.seconds, 1e-9);
  fmt::print("baseline  sipp -sn uac -> trunk_bench.xml: {} calls completed ({} failed) in {:.2f} s = {:.0f} calls/s "
             "(uac cpu {:.1f} s, trunk cpu {:.1f} s, exit {} / {})\n",
             t.successful, t.failed, t.seconds, rate, cpu_seconds(uac.usage), cpu_seconds(trunk.usage), uac.code,
             trunk.code);
  return rate;
}

// One round of the adapter: trunk_bench.xml as the trunk, agent_bye.xml (hanging up at once) as the agent. Its
// complete calls/s (0 when it could not start).
double adapter_round(const fs::path& dir, const fs::path& data, long long calls, long long window) {
  const int trunk_port = free_udp_port();
  auto trunk = start_uas(dir, "adapter-trunk", data / "trunk_bench.xml", trunk_port, calls);
  const int agent_port = free_udp_port();
  auto agent = start_uas(dir, "adapter-agent", data / "agent_bye.xml", agent_port, calls, {"-set", "hold", "0"});
  dialer::system_clock clock;
  auto settings = dialer::carriers::sip::parse_sip_settings(
      nlohmann::json{{"trunk", fmt::format("127.0.0.1:{}", trunk_port)},
                     {"local_host", "127.0.0.1"},
                     {"ring_timeout", "30s"},
                     {"agent_answer_timeout", "10s"}},
      {});
  if (!settings) {
    fmt::print(stderr, "{}\n", settings.error().message);
    return 0;
  }
  auto carrier = dialer::carriers::sip::sip_carrier::make(std::move(*settings), clock);
  if (!carrier) {
    fmt::print(stderr, "{}\n", carrier.error().message);
    return 0;
  }
  counting_sink sink;
  (*carrier)->set_events(&sink);
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  const auto started = std::chrono::steady_clock::now();
  long long sent = 0;
  long long ended = 0;
  const auto send_up_to = [&](long long target) {
    std::vector<dialer::origination_request> batch;
    for (; sent < std::min(target, calls); ++sent) {
      dialer::origination_request r;
      r.attempt = dialer::attempt_id{sent + 1};
      r.campaign = dialer::campaign_id{1};
      r.contact = dialer::contact_id{sent + 1};
      r.from_e164 = "+14155550100";
      r.to_e164 = fmt::format("+1202{:07d}", sent % 10'000'000);
      r.handoff = fmt::format("sip:agent@127.0.0.1:{}", agent_port);
      batch.push_back(std::move(r));
    }
    if (!batch.empty()) (*carrier)->originate(batch);
  };
  send_up_to(window);
  while (ended < calls) {
    const auto now_ended = sink.wait_beyond(ended);
    if (now_ended == ended) {
      fmt::print(stderr, "no progress for 10 s at {} of {} calls\n", ended, calls);
      break;
    }
    ended = now_ended;
    send_up_to(ended + window);
  }
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  const double adapter_cpu = cpu_seconds(after) - cpu_seconds(before);
  const auto stats = (*carrier)->statistics();
  wait_sipp(trunk);
  wait_sipp(agent);
  const auto tt = totals_of(trunk.stat);
  const auto at = totals_of(agent.stat);
  const double rate = sink.completed() / seconds;
  fmt::print("adapter   sip_carrier (flow I, 2 dialogs per call): {} calls completed ({} refused{}) in {:.2f} s = "
             "{:.0f} calls/s = {:.0f} dialogs/s (adapter cpu {:.1f} s = {:.0f} us per call; trunk sipp {} ok / {} "
             "failed, cpu {:.1f} s; agent sipp {} ok / {} failed, cpu {:.1f} s; {} trunk INVITEs)\n",
             sink.completed(), sink.refused(), sink.refused() ? ": " + sink.last_refusal() : "", seconds, rate,
             2 * rate, adapter_cpu, 1e6 * adapter_cpu / std::max<long long>(1, sink.completed()), tt.successful,
             tt.failed, cpu_seconds(trunk.usage), at.successful, at.failed, cpu_seconds(agent.usage), stats.invites);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  const long long calls = argc > 1 ? std::stoll(argv[1]) : 20'000;
  const long long window = argc > 2 ? std::stoll(argv[2]) : 400;
  const int rounds = argc > 3 ? std::stoi(argv[3]) : 3;
  const fs::path data = DIALER_TEST_DATA_DIR "/sip/scenarios";
  const fs::path dir = fs::temp_directory_path() / fmt::format("dialer-bench-sip-{}", ::getpid());
  fs::create_directories(dir);
  fmt::print("bench_sip: {} calls, window {}, {} rounds, on {} ({} cores), load {}\n", calls, window, rounds,
             dialer::bench::cpu_model(), std::thread::hardware_concurrency(), dialer::bench::load_average());
  // Rounds of the baseline and the adapter in turn: on a shared 2-core machine one pair of runs varies with how
  // the scheduler interleaves the processes; the median of the rounds' ratios is the figure.
  std::vector<double> ratios;
  for (int round = 1; round <= rounds; ++round) {
    fmt::print("round {}\n", round);
    const double baseline = baseline_round(dir, data, calls, window);
    const double adapter = adapter_round(dir, data, calls, window);
    ratios.push_back(2 * adapter / std::max(baseline, 1e-9));
    fmt::print("round {}: adapter {:.0f} dialogs/s / SIPp uac {:.0f} dialogs/s = {:.2f}x (target 0.80x)\n", round,
               2 * adapter, baseline, ratios.back());
  }
  auto sorted = ratios;
  std::sort(sorted.begin(), sorted.end());
  std::string each;
  for (double r : ratios) each += fmt::format(" {:.2f}x", r);
  fmt::print("median ratio, both of our legs (dialogs) against SIPp's uac: {:.2f}x (rounds:{}); target 0.80x\n",
             sorted[sorted.size() / 2], each);
  fs::remove_all(dir);
  return 0;
}
