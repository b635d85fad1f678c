#include "adapters/postgres/pg_api_store.hpp"

#include <pqxx/pqxx>
#include <regex>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/number_rows.hpp"

namespace dialer::pg {
namespace {

pqxx::binarystring bytes_of(const sha256_digest& d) { return pqxx::binarystring(d.data(), d.size()); }

constexpr const char* kKeyColumns =
    "id, account_id, name, prefix, (extract(epoch FROM created_at) * 1000000)::bigint, "
    "(extract(epoch FROM revoked_at) * 1000000)::bigint";

api_key_record read_key(const pqxx::row& r) {
  api_key_record k;
  k.id = r[0].as<std::int64_t>();
  k.account = account_id{r[1].as<std::int64_t>()};
  k.name = r[2].as<std::string>();
  k.prefix = r[3].as<std::string>();
  k.created_at = from_micros(r[4].as<std::int64_t>());
  if (!r[5].is_null()) k.revoked_at = from_micros(r[5].as<std::int64_t>());
  return k;
}

}  // namespace

result<account_record> pg_api_store::create_account(const std::string& name) {
  static const std::regex valid("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
  if (!std::regex_match(name, valid))
    return make_error(errc::invalid_input,
                      "account name '{}' must be 1-100 letters, digits, '.', '_' or '-', starting with a letter "
                      "or digit",
                      name);
  try {
    pqxx::work tx(connection_);
    auto rows = tx.exec_params(
        "INSERT INTO accounts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING "
        "RETURNING id, (extract(epoch FROM created_at) * 1000000)::bigint",
        name);
    if (rows.empty()) return make_error(errc::conflict, "account '{}' already exists", name);
    tx.commit();
    return account_record{account_id{rows[0][0].as<std::int64_t>()}, name, from_micros(rows[0][1].as<std::int64_t>())};
  } catch (...) {
    return current_exception_error("creating account " + name);
  }
}

result<std::vector<account_record>> pg_api_store::list_accounts() {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<account_record> out;
    for (const auto& r :
         tx.exec("SELECT id, name, (extract(epoch FROM created_at) * 1000000)::bigint FROM accounts ORDER BY id"))
      out.push_back({account_id{r[0].as<std::int64_t>()}, r[1].as<std::string>(), from_micros(r[2].as<std::int64_t>())});
    return out;
  } catch (...) {
    return current_exception_error("listing accounts");
  }
}

result<api_key_record> pg_api_store::add_key(account_id account, const std::string& name, const std::string& prefix,
                                             const sha256_digest& hash) {
  if (name.size() > 100) return make_error(errc::invalid_input, "a key's name is at most 100 characters");
  try {
    pqxx::work tx(connection_);
    auto rows = tx.exec_params(std::string("INSERT INTO api_keys (account_id, name, prefix, hash) VALUES ($1, $2, "
                                           "$3, $4) RETURNING ") +
                                   kKeyColumns,
                               account.value(), name, prefix, bytes_of(hash));
    tx.commit();
    return read_key(rows[0]);
  } catch (...) {
    return current_exception_error("storing an API key");
  }
}

result<std::vector<api_key_record>> pg_api_store::list_keys(account_id account) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<api_key_record> out;
    for (const auto& r : tx.exec_params(
             std::string("SELECT ") + kKeyColumns + " FROM api_keys WHERE account_id = $1 ORDER BY id", account.value()))
      out.push_back(read_key(r));
    return out;
  } catch (...) {
    return current_exception_error("listing API keys");
  }
}

result<api_key_record> pg_api_store::revoke_key(account_id account, std::int64_t id) {
  try {
    pqxx::work tx(connection_);
    auto rows = tx.exec_params(std::string("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                                           "WHERE account_id = $1 AND id = $2 RETURNING ") +
                                   kKeyColumns,
                               account.value(), id);
    if (rows.empty()) return make_error(errc::not_found, "API key {} does not exist in this account", id);
    tx.commit();
    return read_key(rows[0]);
  } catch (...) {
    return current_exception_error("revoking an API key");
  }
}

result<std::optional<account_id>> pg_api_store::account_of_key(const sha256_digest& hash) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows =
        tx.exec_params("SELECT account_id FROM api_keys WHERE hash = $1 AND revoked_at IS NULL", bytes_of(hash));
    if (rows.empty()) return std::optional<account_id>{};
    return std::optional<account_id>{account_id{rows[0][0].as<std::int64_t>()}};
  } catch (...) {
    return current_exception_error("checking an API key");
  }
}

result<idempotency::decision> pg_api_store::begin_idempotent(account_id account, const std::string& key,
                                                             const sha256_digest& request, std::chrono::seconds hold) {
  try {
    pqxx::work tx(connection_);
    auto mine = tx.exec_params(
        "INSERT INTO idempotency_keys (account_id, key, request_hash, locked_until) "
        "VALUES ($1, $2, $3, now() + $4 * interval '1 second') ON CONFLICT DO NOTHING RETURNING 1",
        account.value(), key, bytes_of(request), static_cast<std::int64_t>(hold.count()));
    if (!mine.empty()) {
      tx.commit();
      return idempotency::decision{idempotency::proceed{}};
    }
    auto rows = tx.exec_params(
        "SELECT request_hash = $3, status, response, locked_until > now() FROM idempotency_keys "
        "WHERE account_id = $1 AND key = $2 FOR UPDATE",
        account.value(), key, bytes_of(request));
    if (rows.empty()) {  // expired between the two statements: take it
      tx.exec_params0(
          "INSERT INTO idempotency_keys (account_id, key, request_hash, locked_until) "
          "VALUES ($1, $2, $3, now() + $4 * interval '1 second')",
          account.value(), key, bytes_of(request), static_cast<std::int64_t>(hold.count()));
      tx.commit();
      return idempotency::decision{idempotency::proceed{}};
    }
    const auto& r = rows[0];
    if (!r[0].as<bool>()) return idempotency::decision{idempotency::mismatch{}};
    if (!r[1].is_null())
      return idempotency::decision{idempotency::replay{r[1].as<int>(), r[2].is_null() ? "" : r[2].as<std::string>()}};
    if (r[3].as<bool>()) return idempotency::decision{idempotency::in_progress{}};
    tx.exec_params0(
        "UPDATE idempotency_keys SET locked_until = now() + $3 * interval '1 second' WHERE account_id = $1 AND "
        "key = $2",
        account.value(), key, static_cast<std::int64_t>(hold.count()));
    tx.commit();
    return idempotency::decision{idempotency::proceed{}};
  } catch (...) {
    return current_exception_error("checking an idempotency key");
  }
}

result<void> pg_api_store::finish_idempotent(account_id account, const std::string& key, int status,
                                             const std::string& body) {
  try {
    pqxx::work tx(connection_);
    tx.exec_params0("UPDATE idempotency_keys SET status = $3, response = $4 WHERE account_id = $1 AND key = $2",
                    account.value(), key, status, body);
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("storing an idempotent answer");
  }
}

result<void> pg_api_store::abandon_idempotent(account_id account, const std::string& key) {
  try {
    pqxx::work tx(connection_);
    tx.exec_params0("DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND status IS NULL",
                    account.value(), key);
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("freeing an idempotency key");
  }
}

result<std::int64_t> pg_api_store::expire_idempotent(std::chrono::seconds age) {
  try {
    pqxx::work tx(connection_);
    auto r = tx.exec_params("DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 second'",
                            static_cast<std::int64_t>(age.count()));
    tx.commit();
    return static_cast<std::int64_t>(r.affected_rows());
  } catch (...) {
    return current_exception_error("expiring idempotency keys");
  }
}

}  // namespace dialer::pg
