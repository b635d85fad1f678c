#include "tests/integration/support.hpp"

#include <atomic>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <mutex>
#include <pqxx/pqxx>
#include <signal.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "adapters/postgres/embedded_cluster.hpp"
#include "adapters/postgres/migrations.hpp"

namespace dialer::testing {
namespace fs = std::filesystem;
namespace {

struct run_cluster {
  std::unique_ptr<pg::embedded_cluster> cluster;
  bool owned = false;  // started here (no ctest fixture): stop and delete it when the binary exits
  fs::path state;
  run_cluster() = default;
  run_cluster(run_cluster&&) = default;
  ~run_cluster() {
    if (!owned || !cluster) return;
    if (cluster->stop()) {
      std::error_code ec;
      fs::remove_all(state, ec);
    }
  }
};

run_cluster& shared_cluster() {
  static run_cluster c = [] {
    run_cluster rc;
    fs::path state;
    if (const char* env = std::getenv("DIALER_TEST_STATE_DIR"); env && *env) {
      state = env;
    } else {
      state = fs::temp_directory_path() / fmt::format("dialer-test-pg-{}", ::getpid());
      rc.owned = true;
    }
    ::setenv("DIALER_PG_UNSAFE_FAST", "1", 1);
    rc.state = state;
    rc.cluster = std::make_unique<pg::embedded_cluster>(state);
    auto s = rc.cluster->ensure_running();
    if (!s) {
      std::fprintf(stderr, "cannot start the test cluster: %s\n", s.error().message.c_str());
      std::abort();
    }
    return rc;
  }();
  return c;
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_');
  return out.substr(0, 40);
}

void set_env(const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
}

}  // namespace

std::string fresh_database(const std::string& label, int schema_version) {
  static std::atomic<int> counter{0};
  auto& rc = shared_cluster();
  const std::string name = fmt::format("t_{}_{}_{}", sanitize(label), ::getpid(), counter++);
  if (auto r = rc.cluster->create_database(name); !r) throw std::runtime_error(r.error().message);
  const std::string url = rc.cluster->connection_string(name);
  pqxx::connection c(url);
  std::vector<pg::migration> wanted;
  for (const auto& m : pg::all_migrations())
    if (m.version <= schema_version) wanted.push_back(m);
  if (auto m = pg::migrate(c, wanted); !m) throw std::runtime_error(m.error().message);
  return url;
}

std::unique_ptr<pqxx::connection> connect_to(const std::string& url) {
  return std::make_unique<pqxx::connection>(url);
}

fs::path make_temp_dir(const std::string& label) {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() / fmt::format("dialer-{}-{}-{}", sanitize(label), ::getpid(), counter++);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int spawn_dialer(const std::vector<std::string>& args, const fs::path& out_file, const fs::path& err_file,
                 const std::map<std::string, std::string>& env) {
  return spawn_program(DIALER_BINARY, args, out_file, err_file, env);
}

int spawn_program(const std::string& program, const std::vector<std::string>& args, const fs::path& out_file,
                  const fs::path& err_file, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    set_env(env);
    std::vector<char*> cargs;
    for (auto& a : argv) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    ::execvp(cargs[0], cargs.data());
    ::_exit(127);
  }
  return pid;
}

int wait_for(int pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

run_result run_dialer(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  const fs::path dir = make_temp_dir("run");
  run_result r;
  r.exit_code = wait_for(spawn_dialer(args, dir / "out", dir / "err", env));
  r.out = read_text(dir / "out");
  r.err = read_text(dir / "err");
  fs::remove_all(dir);
  return r;
}

}  // namespace dialer::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
