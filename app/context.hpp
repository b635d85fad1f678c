#pragma once
// Resolves where the database is (flag, environment, or the embedded cluster), connects and migrates.
// The composition root's one place that knows how the adapters are found.

#include <filesystem>
#include <memory>
#include <pqxx/connection>
#include <string>

#include "engine/ids.hpp"
#include "engine/result.hpp"

namespace dialer::app {

struct global_options {
  std::string state_dir;     // --state-dir, else DIALER_STATE_DIR, else ./.dialer
  std::string database_url;  // --database-url, else DIALER_DATABASE_URL, else the embedded cluster
  std::string account;        // --account, else DIALER_ACCOUNT, else "default"
  bool json = false;
};

// Fills the defaults from the environment.
void apply_environment(global_options& options);

class context {
 public:
  // Connects (starting the embedded cluster when no URL is given) and applies pending migrations.
  [[nodiscard]] static result<context> open(const global_options& options);

  [[nodiscard]] pqxx::connection& db() { return *connection_; }
  [[nodiscard]] account_id account() const { return account_; }
  [[nodiscard]] const std::string& database_url() const { return url_; }
  [[nodiscard]] const global_options& options() const { return options_; }

 private:
  global_options options_;
  std::string url_;
  std::unique_ptr<pqxx::connection> connection_;
  account_id account_;
};

// The database URL this process uses: the given one, or the embedded cluster's (started if needed).
[[nodiscard]] result<std::string> resolve_database_url(const global_options& options);

}  // namespace dialer::app
