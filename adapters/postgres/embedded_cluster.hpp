#pragma once
// The embedded default database: a private PostgreSQL cluster under the state directory.
//
// Lifecycle: ensure_running() creates the cluster on first use (initdb), starts the server when it is
// not running and creates the `dialer` database; the server keeps running after the process exits so the
// next `dialer` command (or a second one running at the same time) reuses it; stop() shuts it down.
// The server listens on a Unix socket only (listen_addresses = ''), in a directory only its owner can enter.
//
// Root: initdb and postgres refuse to run as root, so when we are root the server runs as the `postgres`
// system user (DIALER_PG_USER overrides). That user must reach the data directory; under a mode-700 home
// (such as /root) it cannot, and then the cluster lives in /var/lib/dialer/clusters/<hash of the state dir>,
// recorded in <state>/pg.location so every later command finds it.
//
// Threading: not thread-safe; start-up code only. Concurrent processes are serialised by a lock file.

#include <filesystem>
#include <optional>
#include <string>

#include "adapters/postgres/process.hpp"
#include "engine/result.hpp"

namespace dialer::pg {

struct cluster_status {
  bool initialized = false;
  bool running = false;
  std::filesystem::path data_dir;
  std::filesystem::path socket_dir;
  std::string server_user;
  std::string connection_string;  // libpq keyword form for the `dialer` database
  std::string detail;             // pg_ctl's own words
};

class embedded_cluster {
 public:
  explicit embedded_cluster(std::filesystem::path state_dir);

  // Creates (once) and starts (when stopped) the cluster, and makes sure the database exists.
  [[nodiscard]] result<cluster_status> ensure_running();
  [[nodiscard]] result<cluster_status> status();
  [[nodiscard]] result<void> stop();

  // Creates a database in the running cluster when it does not exist (used by tests: one per suite).
  [[nodiscard]] result<void> create_database(const std::string& name);
  [[nodiscard]] std::string connection_string(const std::string& database) const;

 private:
  result<void> resolve_layout();
  void choose_dirs();
  result<void> check_state_dir_writable() const;
  result<void> prepare_directories();
  bool data_dir_usable_by_server() const;
  process_result pg_ctl(const std::vector<std::string>& args) const;

  std::filesystem::path state_dir_;
  std::filesystem::path root_;  // holds data/ and run/
  std::filesystem::path data_dir_;
  std::filesystem::path socket_dir_;
  std::filesystem::path bin_dir_;
  std::optional<run_as> server_user_;
};

// Validates a libpq connection URL or keyword string before it is used (errc::invalid_input on failure).
[[nodiscard]] result<void> validate_database_url(const std::string& url);

}  // namespace dialer::pg
