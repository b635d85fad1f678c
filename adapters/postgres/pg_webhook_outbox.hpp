#pragma once
// PostgreSQL implementation of the webhook_outbox port (migration 11). The events are in webhook_log, one row per
// statement that caused them, written in that statement's transaction (the triggers, or the engine's write-back
// itself); each endpoint reads the log through its cursor (webhook_endpoints.cursor_*). A claim leases either a
// segment (the next events past an endpoint's cursor, first tries), or due retries (webhook_deliveries rows), and
// builds their payloads from the rows the events describe. A record keeps a segment as the record of its
// first-try deliveries and gives every event it did not deliver a delivery row of its own (retried on the
// schedule); the tries that failed, and every try of a retry, go to webhook_attempts.
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
