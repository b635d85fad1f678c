#pragma once
// PostgreSQL implementation of the webhook_outbox port (tables webhook_endpoints, webhook_events,
// webhook_deliveries, webhook_attempts; migration 10). The events are written by migration 10's triggers in the
// transaction of the change that causes them; this class only leases, records and forgets.
// Threading: one instance per thread (its pg_link is its own connection).

#include <string>

#include "adapters/postgres/pg_link.hpp"
#include "engine/ports/webhooks.hpp"

namespace dialer::pg {

class pg_webhook_outbox final : public webhook_outbox {
 public:
  // Leases are held as "<process>/<thread>" (leased_by): `process` names this engine, `thread` the dispatcher
  // thread this instance serves.
  pg_webhook_outbox(std::string database_url, std::string process, int thread);

  result<std::vector<webhook_delivery>> claim(std::chrono::system_clock::time_point now, std::chrono::seconds lease,
                                              std::size_t limit, int per_process) override;
  result<void> record(const std::vector<webhook_try>& tries) override;
  result<std::int64_t> expire(std::chrono::system_clock::time_point before) override;

 private:
  pg_link link_;
  std::string process_;  // leased_by prefix of this engine: "<process>/"
  std::string holder_;   // "<process>/<thread>"
};

}  // namespace dialer::pg
