#include "adapters/postgres/embedded_cluster.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <libpq-fe.h>
#include <pqxx/pqxx>
#include <pwd.h>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

namespace dialer::pg {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSuperuser = "dialer";
constexpr const char* kDatabase = "dialer";
constexpr std::size_t kMaxSocketPath = 100;  // sun_path is 108 bytes including ".s.PGSQL.5432"

std::string hash_path(const fs::path& p) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across runs and builds
  for (unsigned char c : p.string()) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:012x}", h & 0xffffffffffffULL);
}

std::string tail_lines(const std::string& text, std::size_t lines) {
  std::size_t pos = text.size();
  for (std::size_t n = 0; n < lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An exclusive advisory lock on a file, held for the object's lifetime.
class file_lock {
 public:
  explicit file_lock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~file_lock() {
    if (fd_ >= 0) ::close(fd_);
  }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;
  [[nodiscard]] bool held() const { return fd_ >= 0; }

 private:
  int fd_;
};

fs::path find_bin_dir() {
  if (const char* env = std::getenv("DIALER_PG_BINDIR"); env && *env) return env;
  fs::path best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto name = entry.path().filename().string();
    int version = std::atoi(name.c_str());
    if (version > best_version && fs::exists(entry.path() / "bin" / "initdb")) {
      best_version = version;
      best = entry.path() / "bin";
    }
  }
  return best;
}

result<void> chown_to(const fs::path& p, const std::optional<run_as>& user) {
  if (!user) return ok();
  if (::chown(p.c_str(), user->uid, user->gid) != 0)
    return make_error(errc::unavailable, "cannot give {} to user {}: {}", p.string(), user->name, std::strerror(errno));
  return ok();
}

}  // namespace

embedded_cluster::embedded_cluster(fs::path state_dir) : state_dir_(std::move(state_dir)) {}

result<void> embedded_cluster::check_state_dir_writable() const {
  std::error_code ec;
  fs::create_directories(state_dir_, ec);
  if (ec)
    return make_error(errc::invalid_input, "state directory {} cannot be created: {}", state_dir_.string(),
                      ec.message());
  if (!fs::is_directory(state_dir_))
    return make_error(errc::invalid_input, "state directory {} is not a directory", state_dir_.string());
  // access() says yes to root even on read-only mounts, so probe with a real file.
  const fs::path probe = state_dir_ / fmt::format(".write-probe-{}", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(errc::invalid_input, "state directory {} is not writable: {}", state_dir_.string(),
                      std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
  return ok();
}

result<void> embedded_cluster::resolve_layout() {
  std::error_code ec;
  state_dir_ = fs::absolute(state_dir_, ec).lexically_normal();
  if (state_dir_.has_filename() == false) state_dir_ = state_dir_.parent_path();

  bin_dir_ = find_bin_dir();
  if (bin_dir_.empty() || !fs::exists(bin_dir_ / "pg_ctl"))
    return make_error(errc::unavailable,
                      "PostgreSQL server programs not found in /usr/lib/postgresql/*/bin; run scripts/setup.sh "
                      "or set DIALER_PG_BINDIR, or point DIALER_DATABASE_URL at an existing server");

  server_user_.reset();
  if (::geteuid() == 0) {
    const char* env = std::getenv("DIALER_PG_USER");
    const std::string name = env && *env ? env : "postgres";
    const passwd* pw = ::getpwnam(name.c_str());
    if (!pw)
      return make_error(errc::unavailable,
                        "running as root: PostgreSQL refuses to run as root and user '{}' does not exist to run it; "
                        "install postgresql (scripts/setup.sh) or set DIALER_PG_USER to an unprivileged user",
                        name);
    server_user_ = run_as{pw->pw_uid, pw->pw_gid, name};
  }

  root_ = state_dir_ / "pg";
  const fs::path location = state_dir_ / "pg.location";
  if (fs::exists(location)) {
    std::string recorded = read_file(location);
    while (!recorded.empty() && (recorded.back() == '\n' || recorded.back() == ' ')) recorded.pop_back();
    if (!recorded.empty()) root_ = recorded;
  }
  choose_dirs();
  return ok();
}

void embedded_cluster::choose_dirs() {
  data_dir_ = root_ / "data";
  socket_dir_ = root_ / "run";
  if ((socket_dir_ / ".s.PGSQL.5432").string().size() > kMaxSocketPath)
    socket_dir_ = fs::path("/tmp") / ("dialer-pg-" + hash_path(state_dir_));
}

bool embedded_cluster::data_dir_usable_by_server() const {
  if (!server_user_) return true;
  const auto r = run_process({"/usr/bin/test", "-w", root_.string(), "-a", "-x", root_.string()}, server_user_);
  return r.exit_code == 0;
}

result<void> embedded_cluster::prepare_directories() {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return make_error(errc::unavailable, "cannot create {}: {}", root_.string(), ec.message());
  fs::permissions(root_, fs::perms::owner_all, ec);
  if (auto r = chown_to(root_, server_user_); !r) return r;

  if (!data_dir_usable_by_server()) {
    // Typical under /root (mode 700): the server user cannot traverse the path. Keep the cluster in a
    // system location instead and remember where, rather than loosening permissions on the user's home.
    const fs::path fallback = fs::path("/var/lib/dialer/clusters") / hash_path(state_dir_);
    fs::create_directories(fallback, ec);
    if (ec) return make_error(errc::unavailable, "cannot create {}: {}", fallback.string(), ec.message());
    fs::permissions(fallback, fs::perms::owner_all, ec);
    if (auto r = chown_to(fallback, server_user_); !r) return r;
    fs::remove(root_ / "data", ec);
    fs::remove(root_, ec);
    std::ofstream(state_dir_ / "pg.location") << fallback.string() << "\n";
    root_ = fallback;
    choose_dirs();
  }
  return ok();
}

process_result embedded_cluster::pg_ctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{(bin_dir_ / "pg_ctl").string(), "-D", data_dir_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, server_user_);
}

std::string embedded_cluster::connection_string(const std::string& database) const {
  return fmt::format("host={} port=5432 dbname={} user={} application_name=dialer", socket_dir_.string(), database,
                     kSuperuser);
}

result<cluster_status> embedded_cluster::status() {
  if (auto r = resolve_layout(); !r) return std::move(r).error();
  cluster_status s;
  s.data_dir = data_dir_;
  s.socket_dir = socket_dir_;
  s.server_user = server_user_ ? server_user_->name : "";
  s.initialized = fs::exists(data_dir_ / "PG_VERSION");
  s.connection_string = connection_string(kDatabase);
  if (s.initialized) {
    const auto r = pg_ctl({"status"});
    s.running = r.exit_code == 0;
    s.detail = r.output;
  }
  return s;
}

result<cluster_status> embedded_cluster::ensure_running() {
  if (auto r = resolve_layout(); !r) return std::move(r).error();
  if (auto r = check_state_dir_writable(); !r) return std::move(r).error();

  file_lock lock(state_dir_ / "pg.lock");
  if (!lock.held())
    return make_error(errc::invalid_input, "state directory {} is not writable: cannot create pg.lock",
                      state_dir_.string());

  std::error_code ec;
  if (!fs::exists(data_dir_ / "PG_VERSION")) {
    if (auto r = prepare_directories(); !r) return std::move(r).error();
    fs::remove_all(data_dir_, ec);  // a half-made cluster from an interrupted initdb
    const auto init = run_process({(bin_dir_ / "initdb").string(), "-D", data_dir_.string(), "-U", kSuperuser,
                                   "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions"},
                                  server_user_);
    if (init.exit_code != 0) {
      fs::remove_all(data_dir_, ec);
      return make_error(errc::unavailable, "initdb failed for {}: {}", data_dir_.string(), tail_lines(init.output, 3));
    }
    std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
    conf << "\n# Added by dialer: Unix socket only, in a private directory.\n"
         << "listen_addresses = ''\n"
         << "unix_socket_permissions = 0700\n"
         << "max_connections = 200\n"
         << "shared_buffers = 256MB\n"
         << "include_if_exists = 'dialer-socket.conf'\n";
  }

  // The socket directory is written on every start: /tmp may have been cleaned since the last one.
  fs::create_directories(socket_dir_, ec);
  if (ec) return make_error(errc::unavailable, "cannot create socket directory {}: {}", socket_dir_.string(), ec.message());
  fs::permissions(socket_dir_, fs::perms::owner_all, ec);
  if (auto r = chown_to(socket_dir_, server_user_); !r) return std::move(r).error();
  {
    // Rewritten at every start (clusters made by an older version pick up new settings on their next start).
    std::ofstream socket_conf(data_dir_ / "dialer-socket.conf", std::ios::trunc);
    socket_conf << "unix_socket_directories = '" << socket_dir_.string() << "'\n"
                // A million-contact campaign writes about 2 GB of WAL: with the default 1 GB a checkpoint (and a
                // full-page image of every page touched after it) lands in the middle of every large run.
                << "max_wal_size = 4GB\n"
                << "checkpoint_timeout = 15min\n";
    // Throwaway test clusters only: durability off makes creating a database per test cheap.
    if (const char* unsafe = std::getenv("DIALER_PG_UNSAFE_FAST"); unsafe && std::string(unsafe) == "1")
      socket_conf << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
  }
  if (auto r = chown_to(data_dir_ / "dialer-socket.conf", server_user_); !r) return std::move(r).error();

  if (pg_ctl({"status"}).exit_code != 0) {
    const fs::path log = root_ / "server.log";
    const auto start = pg_ctl({"start", "-w", "-t", "120", "-s", "-l", log.string()});
    if (start.exit_code != 0) {
      return make_error(errc::unavailable, "PostgreSQL did not start ({}): {} {}", data_dir_.string(),
                        tail_lines(start.output, 2), tail_lines(read_file(log), 3));
    }
  }
  if (auto r = create_database(kDatabase); !r) return std::move(r).error();
  return status();
}

result<void> embedded_cluster::create_database(const std::string& name) {
  try {
    pqxx::connection c(connection_string("postgres"));
    pqxx::nontransaction tx(c);
    if (tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name).empty()) {
      try {
        tx.exec0("CREATE DATABASE " + tx.quote_name(name));
      } catch (const pqxx::sql_error& e) {
        // Another process created it between our check and our CREATE: that is fine.
        if (e.sqlstate() != "42P04") throw;
      }
    }
  } catch (const std::exception& e) {
    return make_error(errc::unavailable, "cannot create database {}: {}", name, e.what());
  }
  return ok();
}

result<void> embedded_cluster::stop() {
  if (auto r = resolve_layout(); !r) return r;
  if (!fs::exists(data_dir_ / "PG_VERSION")) return ok();
  file_lock lock(state_dir_ / "pg.lock");
  if (pg_ctl({"status"}).exit_code != 0) return ok();
  const auto r = pg_ctl({"stop", "-w", "-t", "60", "-m", "fast", "-s"});
  if (r.exit_code != 0) return make_error(errc::unavailable, "PostgreSQL did not stop: {}", tail_lines(r.output, 2));
  return ok();
}

result<void> validate_database_url(const std::string& url) {
  if (url.empty()) return make_error(errc::invalid_input, "invalid database URL: it is empty");
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &message);
  if (!options) {
    std::string why = message ? message : "cannot be parsed";
    if (message) PQfreemem(message);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return make_error(errc::invalid_input,
                      "invalid database URL '{}': {} (expected postgresql://user@host/dbname or key=value pairs)", url,
                      why);
  }
  PQconninfoFree(options);
  return ok();
}

}  // namespace dialer::pg
