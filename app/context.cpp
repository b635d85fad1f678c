#include "app/context.hpp"

#include <cstdlib>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/embedded_cluster.hpp"
#include "adapters/postgres/inventory_store.hpp"
#include "adapters/postgres/migrations.hpp"

namespace dialer::app {

void apply_environment(global_options& options) {
  if (options.state_dir.empty()) {
    const char* env = std::getenv("DIALER_STATE_DIR");
    options.state_dir = env && *env ? env : ".dialer";
  }
  if (options.account.empty()) {
    const char* env = std::getenv("DIALER_ACCOUNT");
    options.account = env && *env ? env : "default";
  }
  if (options.database_url.empty()) {
    if (const char* env = std::getenv("DIALER_DATABASE_URL"); env && *env) options.database_url = env;
  }
}

result<std::string> resolve_database_url(const global_options& options) {
  if (!options.database_url.empty()) {
    if (auto r = pg::validate_database_url(options.database_url); !r) return std::move(r).error();
    return options.database_url;
  }
  pg::embedded_cluster cluster(options.state_dir);
  auto status = cluster.ensure_running();
  if (!status) return std::move(status).error();
  return status->connection_string;
}

result<context> context::open(const global_options& options) {
  context c;
  c.options_ = options;
  auto url = resolve_database_url(options);
  if (!url) return std::move(url).error();
  c.url_ = *url;
  auto connection = pg::connect(c.url_);
  if (!connection) return std::move(connection).error();
  c.connection_ = std::move(*connection);
  auto migrated = pg::migrate(*c.connection_);
  if (!migrated) return std::move(migrated).error();
  auto account = pg::find_account(*c.connection_, options.account.empty() ? "default" : options.account);
  if (!account) return std::move(account).error();
  c.account_ = *account;
  return c;
}

}  // namespace dialer::app
