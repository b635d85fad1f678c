#pragma once
// PostgreSQL implementation of the api_store port (tables accounts, api_keys, idempotency_keys; migration 8).
// Threading: one instance per thread; it uses the connection it is given and nothing else.

#include <pqxx/connection>

#include "engine/ports/api_store.hpp"

namespace dialer::pg {

class pg_api_store final : public api_store {
 public:
  explicit pg_api_store(pqxx::connection& connection) noexcept : connection_(connection) {}

  result<account_record> create_account(const std::string& name) override;
  result<std::vector<account_record>> list_accounts() override;
  result<api_key_record> add_key(account_id account, const std::string& name, const std::string& prefix,
                                 const sha256_digest& hash) override;
  result<std::vector<api_key_record>> list_keys(account_id account) override;
  result<api_key_record> revoke_key(account_id account, std::int64_t id) override;
  result<std::optional<account_id>> account_of_key(const sha256_digest& hash) override;
  result<idempotency::decision> begin_idempotent(account_id account, const std::string& key,
                                                 const sha256_digest& request, std::chrono::seconds hold) override;
  result<void> finish_idempotent(account_id account, const std::string& key, int status,
                                 const std::string& body) override;
  result<void> abandon_idempotent(account_id account, const std::string& key) override;
  result<std::int64_t> expire_idempotent(std::chrono::seconds age) override;

 private:
  pqxx::connection& connection_;
};

}  // namespace dialer::pg
