#pragma once
// PostgreSQL implementation of the webhook_endpoint_store port (tables webhook_endpoints, webhook_deliveries,
// webhook_attempts; migration 10): what the API reads and changes. Every statement is scoped to the account.
// Threading: one instance per thread; it uses the connection it is given and nothing else.

#include <pqxx/connection>

#include "engine/ports/webhooks.hpp"

namespace dialer::pg {

class pg_webhook_endpoints final : public webhook_endpoint_store {
 public:
  explicit pg_webhook_endpoints(pqxx::connection& connection) noexcept : connection_(connection) {}

  result<webhook_endpoint_record> create(account_id account, const std::string& url, const std::string& description,
                                         const std::vector<std::string>& event_types, int max_in_flight,
                                         const std::string& secret) override;
  result<webhook_endpoint_record> get(account_id account, std::int64_t id) override;
  result<std::vector<webhook_endpoint_record>> list(account_id account, page_request page) override;
  result<webhook_endpoint_record> update(account_id account, std::int64_t id,
                                         const webhook_endpoint_change& change) override;
  result<void> remove(account_id account, std::int64_t id) override;
  result<webhook_endpoint_record> rotate(account_id account, std::int64_t id, const std::string& secret,
                                         std::chrono::system_clock::time_point previous_until) override;
  result<std::vector<webhook_delivery_record>> deliveries(account_id account, std::int64_t id,
                                                          std::optional<std::string> state, page_request page) override;
  result<std::vector<webhook_attempt_record>> attempts(account_id account, std::int64_t id, page_request page) override;
  result<std::int64_t> replay(account_id account, std::int64_t id, const std::vector<std::int64_t>& event_ids,
                              std::chrono::system_clock::time_point now) override;

 private:
  pqxx::connection& connection_;
};

}  // namespace dialer::pg
