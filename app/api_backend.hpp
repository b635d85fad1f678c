#pragma once
// The HTTP API's backend on PostgreSQL: one per API worker thread, each with its own connection (statement
// timeout 10 s, so a hung server cannot hold a worker for ever), the API's own store, and the inventory and
// campaign services scoped to the account of the request being served.
// Threading: one instance per worker thread.

#include <memory>
#include <optional>
#include <pqxx/connection>

#include "adapters/http/api/api.hpp"
#include "adapters/postgres/inventory_store.hpp"
#include "adapters/postgres/pg_api_store.hpp"
#include "adapters/postgres/pg_campaign_repository.hpp"
#include "adapters/postgres/pg_carrier_callbacks.hpp"
#include "adapters/postgres/pg_webhook_endpoints.hpp"
#include "app/providers.hpp"

namespace dialer::app {

class pg_api_backend final : public http::api_backend {
 public:
  pg_api_backend(std::unique_ptr<pqxx::connection> connection, std::string database_url,
                 std::unique_ptr<number_providers> providers);

  [[nodiscard]] api_store& store() override { return store_; }
  [[nodiscard]] inventory_service& inventory(account_id account) override;
  [[nodiscard]] campaign_service& campaigns(account_id account) override;
  [[nodiscard]] webhook_endpoint_store& webhooks() override { return webhooks_; }
  [[nodiscard]] carrier_callback_inbox& callbacks() override { return callbacks_; }
  [[nodiscard]] result<void> ping() override;

 private:
  // The ports and services of one account, rebuilt when the account changes (cheap: references).
  struct scoped {
    scoped(pqxx::connection& c, account_id a, const std::string& url, number_providers& providers, const clock& clk);
    account_id account;
    pg::pg_inventory_store inventory_store;
    pg::pg_campaign_repository campaigns;
    pg::pg_do_not_call_list dnc;
    inventory_service inventory;
    campaign_service service;
  };
  scoped& scope(account_id account);

  std::unique_ptr<pqxx::connection> connection_;
  std::string database_url_;
  system_clock clock_;
  std::unique_ptr<number_providers> providers_;
  pg::pg_api_store store_;
  pg::pg_webhook_endpoints webhooks_;
  pg::pg_carrier_callbacks callbacks_;
  std::optional<scoped> scoped_;
};

// A factory for the API: connects to `database_url` on each call.
[[nodiscard]] http::backend_factory pg_api_backends(std::string database_url);

}  // namespace dialer::app
