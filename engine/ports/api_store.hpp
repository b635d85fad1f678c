#pragma once
// What the HTTP API keeps for itself: accounts, API keys (only their hashes) and idempotency keys.
// Implemented by adapters/postgres (pg_api_store). Threading: one instance per thread (it owns a connection).

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/ids.hpp"
#include "engine/result.hpp"
#include "engine/telephony.hpp"

namespace dialer {

using sha256_digest = std::array<unsigned char, 32>;

struct account_record {
  account_id id;
  std::string name;
  timestamp created_at{};
};

struct api_key_record {
  std::int64_t id = 0;
  account_id account;
  std::string name;
  std::string prefix;  // the key's first characters, to tell keys apart; never enough to use it
  timestamp created_at{};
  std::optional<timestamp> revoked_at;
};

// The answer to "may this request go ahead under its Idempotency-Key?".
namespace idempotency {
struct proceed {};                  // first time (or the first attempt died): serve it, then finish()
struct replay {                     // served before with the same body: answer this again
  int status = 0;
  std::string body;
};
struct mismatch {};                 // the key was used with another request
struct in_progress {};              // the first request with this key is being served now
using decision = std::variant<proceed, replay, mismatch, in_progress>;
}  // namespace idempotency

class api_store {
 public:
  virtual ~api_store() = default;

  [[nodiscard]] virtual result<account_record> create_account(const std::string& name) = 0;
  [[nodiscard]] virtual result<std::vector<account_record>> list_accounts() = 0;

  [[nodiscard]] virtual result<api_key_record> add_key(account_id account, const std::string& name,
                                                       const std::string& prefix, const sha256_digest& hash) = 0;
  [[nodiscard]] virtual result<std::vector<api_key_record>> list_keys(account_id account) = 0;
  // not_found when the account has no such key; revoking twice is fine.
  [[nodiscard]] virtual result<api_key_record> revoke_key(account_id account, std::int64_t id) = 0;
  // The account of a live (not revoked) key with this hash; nullopt when there is none.
  [[nodiscard]] virtual result<std::optional<account_id>> account_of_key(const sha256_digest& hash) = 0;

  // Claims `key` for a request whose method, path and body hash to `request`; the claim holds for
  // `hold` (a process that dies serving it frees it then).
  [[nodiscard]] virtual result<idempotency::decision> begin_idempotent(account_id account, const std::string& key,
                                                                       const sha256_digest& request,
                                                                       std::chrono::seconds hold) = 0;
  // The answer to replay from now on.
  [[nodiscard]] virtual result<void> finish_idempotent(account_id account, const std::string& key, int status,
                                                       const std::string& body) = 0;
  // The request failed in a way a retry may fix (the database or a carrier away): the key is free again.
  [[nodiscard]] virtual result<void> abandon_idempotent(account_id account, const std::string& key) = 0;
  // Forgets keys older than `age`; returns how many.
  [[nodiscard]] virtual result<std::int64_t> expire_idempotent(std::chrono::seconds age) = 0;
};

}  // namespace dialer
