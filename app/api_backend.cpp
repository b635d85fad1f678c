#include "app/api_backend.hpp"

#include <pqxx/pqxx>

#include "adapters/postgres/connection.hpp"
#include "app/commands.hpp"

namespace dialer::app {

pg_api_backend::scoped::scoped(pqxx::connection& c, account_id a, const std::string& url, number_providers& providers,
                               const clock& clk)
    : account(a),
      inventory_store(c, a),
      campaigns(c, a, url),
      dnc(c, a),
      inventory(inventory_store, providers.buying(), clk),
      service(campaigns, dnc, inventory_store, providers.buying(), clk) {
  providers.wire(inventory);
}

pg_api_backend::pg_api_backend(std::unique_ptr<pqxx::connection> connection, std::string database_url,
                               std::unique_ptr<number_providers> providers)
    : connection_(std::move(connection)),
      database_url_(std::move(database_url)),
      providers_(std::move(providers)),
      store_(*connection_),
      webhooks_(*connection_),
      callbacks_(*connection_) {}

pg_api_backend::scoped& pg_api_backend::scope(account_id account) {
  if (!scoped_ || scoped_->account != account) {
    scoped_.reset();
    scoped_.emplace(*connection_, account, database_url_, *providers_, clock_);
  }
  return *scoped_;
}

inventory_service& pg_api_backend::inventory(account_id account) { return scope(account).inventory; }
campaign_service& pg_api_backend::campaigns(account_id account) { return scope(account).service; }

result<void> pg_api_backend::ping() {
  try {
    pqxx::nontransaction tx(*connection_);
    tx.exec("SELECT 1");
    return ok();
  } catch (...) {
    return pg::current_exception_error("checking the database");
  }
}

http::backend_factory pg_api_backends(std::string database_url) {
  return [url = std::move(database_url)]() -> result<std::unique_ptr<http::api_backend>> {
    auto providers = number_providers::from_environment();
    if (!providers) return std::move(providers).error();
    auto c = pg::connect(url, pg::connect_options{std::chrono::milliseconds(10'000)});
    if (!c) return std::move(c).error();
    return std::unique_ptr<http::api_backend>(
        std::make_unique<pg_api_backend>(std::move(*c), url, std::move(*providers)));
  };
}

}  // namespace dialer::app
