#pragma once
// PostgreSQL implementation of the carrier_callback_inbox port (table carrier_callbacks, migration 12).
// Threading: one instance per thread; it uses its own link (reopened after a lost connection), or a connection it
// is lent (an API worker's).

#include <optional>

#include "adapters/postgres/pg_link.hpp"
#include "engine/ports/carrier_callbacks.hpp"

namespace dialer::pg {

class pg_carrier_callbacks final : public carrier_callback_inbox {
 public:
  explicit pg_carrier_callbacks(pg_link link) : link_(std::move(link)) {}
  explicit pg_carrier_callbacks(pqxx::connection& lent) : lent_(&lent) {}

  result<bool> put(const carrier_callback& callback) override;
  result<std::vector<carrier_callback>> take(std::string_view carrier, std::string_view instance,
                                             std::size_t max) override;
  result<std::vector<carrier_callback>> take_attempt(std::string_view carrier, attempt_id attempt) override;
  result<std::int64_t> purge(std::chrono::hours age, std::chrono::hours abandoned) override;

 private:
  pqxx::connection& conn() { return lent_ ? *lent_ : link_->get(); }
  error fail(const std::string& what);
  std::optional<pg_link> link_;
  pqxx::connection* lent_ = nullptr;
};

}  // namespace dialer::pg
