#include "adapters/postgres/pg_webhook_outbox.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace dialer::pg {
namespace {

// Claims of every engine take turns (a transaction-scoped advisory lock held for one statement): two engines
// counting an endpoint's leases at once could both fill its max_in_flight.
constexpr std::int64_t kClaimLock = 0x5745424800000001;  // "WEBH" 1

double epoch_s(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

pg_webhook_outbox::pg_webhook_outbox(std::string database_url, std::string owner)
    : link_(std::move(database_url)), owner_(std::move(owner)) {}

result<std::vector<webhook_delivery>> pg_webhook_outbox::claim(std::chrono::system_clock::time_point now,
                                                               std::chrono::seconds lease, std::size_t limit) {
  try {
    pqxx::work tx(link_.get());
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kClaimLock);
    // Each enabled endpoint offers its oldest due deliveries, as many as its max_in_flight leaves room for
    // beside the live leases (anyone's); the oldest of those are leased. A backlog at one endpoint cannot fill
    // a claim, so one slow receiver does not starve the others.
    auto rows = tx.exec_params(
        "WITH offered AS ("
        "  SELECT d.event_id, d.endpoint_id, d.next_attempt_at FROM webhook_endpoints e "
        "  CROSS JOIN LATERAL (SELECT count(*) AS n FROM webhook_deliveries b WHERE b.endpoint_id = e.id "
        "    AND b.leased_by IS NOT NULL AND b.lease_until > to_timestamp($1) AND b.state = 'pending') busy "
        "  CROSS JOIN LATERAL (SELECT x.event_id, x.endpoint_id, x.next_attempt_at FROM webhook_deliveries x "
        "    WHERE x.endpoint_id = e.id AND x.state = 'pending' AND x.next_attempt_at <= to_timestamp($1) "
        "      AND (x.lease_until IS NULL OR x.lease_until <= to_timestamp($1)) "
        "    ORDER BY x.next_attempt_at, x.event_id LIMIT greatest(e.max_in_flight - busy.n, 0)) d "
        "  WHERE e.enabled), "
        "picked AS (SELECT event_id, endpoint_id FROM offered ORDER BY next_attempt_at, event_id LIMIT $3), "
        "leased AS (UPDATE webhook_deliveries w SET leased_by = $4, lease_until = to_timestamp($1) + make_interval(secs => $2) "
        "  FROM picked p WHERE w.event_id = p.event_id AND w.endpoint_id = p.endpoint_id "
        "  RETURNING w.event_id, w.endpoint_id, w.attempts) "
        "SELECT l.event_id, l.endpoint_id, l.attempts, e.url, e.secret, "
        "  CASE WHEN e.previous_secret_until > to_timestamp($1) THEN e.previous_secret END, "
        "  v.type, v.account_id, v.contact_id, v.sequence, "
        "  to_char(v.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), v.data::text "
        "FROM leased l JOIN webhook_events v ON v.id = l.event_id JOIN webhook_endpoints e ON e.id = l.endpoint_id "
        "ORDER BY v.id",
        epoch_s(now), static_cast<double>(lease.count()), static_cast<std::int64_t>(limit), owner_);
    tx.commit();
    std::vector<webhook_delivery> out;
    out.reserve(rows.size());
    for (const auto& r : rows) {
      webhook_delivery d;
      d.event_id = r[0].as<std::int64_t>();
      d.endpoint_id = r[1].as<std::int64_t>();
      d.attempts = r[2].as<int>();
      d.url = r[3].as<std::string>();
      d.secrets.push_back(r[4].as<std::string>());
      if (!r[5].is_null()) d.secrets.push_back(r[5].as<std::string>());
      d.message_id = "evt_" + std::to_string(d.event_id);
      nlohmann::json body{{"id", d.message_id},
                          {"type", r[6].as<std::string>()},
                          {"timestamp", r[10].as<std::string>()},
                          {"account_id", r[7].as<std::int64_t>()},
                          {"contact_id", r[8].is_null() ? nlohmann::json() : nlohmann::json(r[8].as<std::int64_t>())},
                          {"sequence", r[9].as<std::int64_t>()},
                          {"data", nlohmann::json::parse(r[11].as<std::string>())}};
      d.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out.push_back(std::move(d));
    }
    return out;
  } catch (...) {
    return link_.fail("claiming webhook deliveries");
  }
}

result<void> pg_webhook_outbox::record(const webhook_delivery& d, const webhook_outcome& o) {
  try {
    pqxx::work tx(link_.get());
    const auto at = epoch_s(o.attempted_at);
    const auto status = o.status == 0 ? std::optional<int>() : std::optional<int>(o.status);
    const auto error = o.error.empty() ? std::optional<std::string>() : std::optional<std::string>(o.error);
    using kind = webhook_outcome::kind;
    // Only while the lease is still ours: a try that outlived its lease is history, not state.
    constexpr const char* kOurs =
        ", attempts = attempts + 1, last_status = $4, leased_by = NULL, lease_until = NULL "
        "WHERE event_id = $1 AND endpoint_id = $2 AND leased_by = $3 AND state = 'pending'";
    switch (o.what) {
      case kind::delivered:
        tx.exec_params0(std::string("UPDATE webhook_deliveries SET state = 'delivered', delivered_at = to_timestamp($5), "
                                    "last_error = NULL") + kOurs,
                        d.event_id, d.endpoint_id, owner_, status, at);
        break;
      case kind::retry:
        tx.exec_params0(std::string("UPDATE webhook_deliveries SET next_attempt_at = to_timestamp($5), last_error = $6") +
                            kOurs,
                        d.event_id, d.endpoint_id, owner_, status, epoch_s(o.next_attempt_at), error);
        break;
      case kind::exhausted:
        tx.exec_params0(std::string("UPDATE webhook_deliveries SET state = 'failed', last_error = $5") + kOurs,
                        d.event_id, d.endpoint_id, owner_, status, error);
        break;
      case kind::gone:  // waits, due at once, for the endpoint to be enabled again
        tx.exec_params0(std::string("UPDATE webhook_deliveries SET next_attempt_at = to_timestamp($5), last_error = $6") +
                            kOurs,
                        d.event_id, d.endpoint_id, owner_, status, at, error);
        break;
    }
    if (o.what == kind::gone)
      tx.exec_params0("UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() "
                      "WHERE id = $1 AND enabled",
                      d.endpoint_id, "the receiver answered 410 Gone");
    tx.exec_params0("INSERT INTO webhook_attempts (event_id, endpoint_id, attempted_at, status, error, duration_ms) "
                    "VALUES ($1, $2, to_timestamp($3), $4, $5, $6)",
                    d.event_id, d.endpoint_id, at, status, error, static_cast<std::int64_t>(o.took.count()));
    tx.commit();
    return ok();
  } catch (...) {
    return link_.fail("recording a webhook delivery");
  }
}

result<std::int64_t> pg_webhook_outbox::expire(std::chrono::system_clock::time_point before) {
  try {
    std::int64_t total = 0;
    for (;;) {  // in slices: a long outage's backlog is not one huge transaction
      pqxx::work tx(link_.get());
      auto r = tx.exec_params(
          "DELETE FROM webhook_events WHERE id IN (SELECT v.id FROM webhook_events v WHERE v.occurred_at < "
          "to_timestamp($1) AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = v.id AND "
          "d.state = 'pending') LIMIT 5000)",
          epoch_s(before));
      tx.commit();
      total += static_cast<std::int64_t>(r.affected_rows());
      if (r.affected_rows() < 5000) return total;
    }
  } catch (...) {
    return link_.fail("forgetting old webhook events");
  }
}

}  // namespace dialer::pg
