#pragma once
// Shared by the benchmarks that need PostgreSQL (bench_e2e, bench_import): a throwaway cluster (or
// DIALER_DATABASE_URL), CPU accounting of this process and of the server, and the machine's description.
// Header-only; each benchmark is one translation unit.

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "adapters/postgres/embedded_cluster.hpp"
#include "adapters/postgres/migrations.hpp"
#include "engine/result.hpp"

namespace dialer::bench {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

inline const char* program_name = "bench";  // set by main(), for messages

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_name, what.c_str());
  std::exit(1);
}

template <class T>
T need(result<T> r, const char* what) {
  if (!r) die(fmt::format("{}: {}", what, r.error().message));
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

inline double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return fmt::format("{} {} {}", one, five, fifteen);
}

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// CPU seconds of a process and (when `with_children`) of its children, live and reaped, from /proc/<pid>/stat.
inline double process_cpu_seconds(int pid, bool with_children) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
  // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
  if (f.size() < 15) return 0;
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double ticks = std::stod(f[11]) + std::stod(f[12]);
  if (with_children) ticks += std::stod(f[13]) + std::stod(f[14]);
  return ticks / hz;
}

// CPU of a PostgreSQL server: the postmaster with its reaped children, plus every live child (the backends).
inline double server_cpu_seconds(int postmaster) {
  if (postmaster <= 0) return 0;
  double total = process_cpu_seconds(postmaster, true);
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    std::string state;
    int ppid = 0;
    fields >> state >> ppid;
    if (ppid == postmaster) total += process_cpu_seconds(std::stoi(name), false);
  }
  return total;
}

inline int g_postmaster_pid = 0;  // the throwaway cluster's server, for CPU accounting (0: unknown)

// CPU seconds of the whole machine (busy, from /proc/stat), of this process and of the PostgreSQL server.
struct cpu_sample {
  double machine_busy = 0;
  double self = 0;
  double server = 0;
  static cpu_sample now() {
    cpu_sample s;
    s.server = server_cpu_seconds(g_postmaster_pid);
    std::ifstream in("/proc/stat");
    std::string cpu;
    std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    s.machine_busy = static_cast<double>(user + nice + system + irq + softirq) / hz;
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    s.self = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
    return s;
  }
};

inline std::string cpu_split(const cpu_sample& a, const cpu_sample& b, double wall) {
  const double self = b.self - a.self;
  const double server = b.server - a.server;
  const double all = b.machine_busy - a.machine_busy;
  if (g_postmaster_pid <= 0)
    return fmt::format("cpu over {:.2f} s wall: bench process {:.2f} s, rest of the machine (server + others) {:.2f} s",
                       wall, self, std::max(0.0, all - self));
  return fmt::format("cpu over {:.2f} s wall: bench process {:.2f} s ({:.0f}% of a core), PostgreSQL {:.2f} s "
                     "({:.0f}% of a core), everything else {:.2f} s",
                     wall, self, 100 * self / wall, server, 100 * server / wall, std::max(0.0, all - self - server));
}

// The database: a throwaway cluster (stopped and deleted at the end), or DIALER_DATABASE_URL.
class bench_database {
 public:
  bench_database() {
    if (const char* url = std::getenv("DIALER_DATABASE_URL"); url && *url) {
      external_url_ = url;
      need(pg::validate_database_url(external_url_), "DIALER_DATABASE_URL");
      return;
    }
    state_dir_ = fs::temp_directory_path() / fmt::format("dialer-{}-{}", program_name, ::getpid());
    fs::remove_all(state_dir_);
    fs::create_directories(state_dir_);
    cluster_ = std::make_unique<pg::embedded_cluster>(state_dir_);
    auto s = need(cluster_->ensure_running(), "starting the throwaway PostgreSQL cluster");
    data_dir_ = s.data_dir;
    std::ifstream pid_file(data_dir_ / "postmaster.pid");
    pid_file >> g_postmaster_pid;
  }
  ~bench_database() {
    if (!cluster_) return;
    if (auto r = cluster_->stop(); !r) std::fprintf(stderr, "%s: %s\n", program_name, r.error().message.c_str());
    if (keep_) {
      std::fprintf(stderr, "%s: kept the cluster in %s\n", program_name, data_dir_.c_str());
      return;
    }
    std::error_code ec;
    // Under a mode-700 home the cluster lives outside the state directory (see embedded_cluster.hpp): it is
    // ours all the same, created for this run.
    if (!data_dir_.empty() && data_dir_.string().rfind(state_dir_.string(), 0) != 0)
      fs::remove_all(data_dir_.parent_path(), ec);
    fs::remove_all(state_dir_, ec);
  }
  bench_database(const bench_database&) = delete;
  bench_database& operator=(const bench_database&) = delete;

  void keep() { keep_ = true; }
  [[nodiscard]] bool embedded() const { return cluster_ != nullptr; }

  // A migrated database for one phase: a new one in the throwaway cluster, or the external one.
  std::string database_for(const std::string& phase) {
    std::string url = external_url_;
    if (cluster_) {
      const std::string name = database_name(phase);
      need(cluster_->create_database(name), "creating a database");
      url = cluster_->connection_string(name);
    }
    pqxx::connection c(url);
    need(pg::migrate(c), "migrating");
    return url;
  }

  // Frees the phase's disk and buffers before the next one is measured (throwaway cluster only).
  void drop(const std::string& phase) {
    if (!cluster_ || keep_) return;
    pqxx::connection c(cluster_->connection_string("postgres"));
    pqxx::nontransaction tx(c);
    tx.exec0("DROP DATABASE IF EXISTS " + tx.quote_name(database_name(phase)));
  }

 private:
  static std::string database_name(const std::string& phase) { return std::string(program_name) + "_" + phase; }

  std::string external_url_;
  fs::path state_dir_;
  fs::path data_dir_;
  std::unique_ptr<pg::embedded_cluster> cluster_;
  bool keep_ = false;
};

inline std::string server_settings(const std::string& url) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  std::string out = tx.exec1("SHOW server_version")[0].as<std::string>();
  for (const char* name : {"fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level",
                           "max_wal_size", "checkpoint_timeout"})
    out += fmt::format(" {}={}", name, tx.exec1(std::string("SHOW ") + name)[0].as<std::string>());
  return out;
}

inline std::string verdict(double value, double target) {
  return fmt::format("{:.2f}x of target -> {}", value / target, value >= target ? "MET" : "NOT MET");
}

}  // namespace dialer::bench
