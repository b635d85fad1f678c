#include "adapters/postgres/pg_webhook_outbox.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "adapters/postgres/number_rows.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

// Claims of every engine take turns (a transaction-scoped advisory lock held for one statement): two engines
// counting an endpoint's leases at once could both fill its max_in_flight.
constexpr std::int64_t kClaimLock = 0x5745424800000001;  // "WEBH" 1

}  // namespace

pg_webhook_outbox::pg_webhook_outbox(std::string database_url, std::string process, int thread)
    : link_(std::move(database_url)), process_(std::move(process) + "/"), holder_(process_ + std::to_string(thread)) {}

result<std::vector<webhook_delivery>> pg_webhook_outbox::claim(std::chrono::system_clock::time_point now,
                                                               std::chrono::seconds lease, std::size_t limit,
                                                               int per_process) {
  try {
    pqxx::work tx(link_.get());
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kClaimLock);
    // The endpoint: enabled, with fewer lease holders than its max_in_flight (and than `per_process` of ours),
    // whose oldest due delivery is the oldest. Then up to `limit` of its due deliveries, oldest first.
    auto rows = tx.exec_params(
        "WITH holders AS ("
        "  SELECT endpoint_id, count(DISTINCT leased_by) AS n, "
        "         count(DISTINCT leased_by) FILTER (WHERE starts_with(leased_by, $5)) AS mine "
        "  FROM webhook_deliveries WHERE leased_by IS NOT NULL AND lease_until > to_timestamp($1) "
        "  GROUP BY endpoint_id), "
        "chosen AS ("
        "  SELECT e.id FROM webhook_endpoints e LEFT JOIN holders h ON h.endpoint_id = e.id "
        "  CROSS JOIN LATERAL (SELECT x.next_attempt_at, x.event_id FROM webhook_deliveries x "
        "    WHERE x.endpoint_id = e.id AND x.state = 'pending' AND x.next_attempt_at <= to_timestamp($1) "
        "      AND (x.lease_until IS NULL OR x.lease_until <= to_timestamp($1)) "
        "    ORDER BY x.next_attempt_at, x.event_id LIMIT 1) oldest "
        "  WHERE e.enabled AND coalesce(h.n, 0) < e.max_in_flight AND coalesce(h.mine, 0) < $6 "
        "  ORDER BY oldest.next_attempt_at, oldest.event_id LIMIT 1), "
        "picked AS ("
        "  SELECT x.event_id, x.endpoint_id FROM chosen c CROSS JOIN LATERAL ("
        "    SELECT y.event_id, y.endpoint_id FROM webhook_deliveries y WHERE y.endpoint_id = c.id "
        "      AND y.state = 'pending' AND y.next_attempt_at <= to_timestamp($1) "
        "      AND (y.lease_until IS NULL OR y.lease_until <= to_timestamp($1)) "
        "    ORDER BY y.next_attempt_at, y.event_id LIMIT $3) x), "
        "leased AS (UPDATE webhook_deliveries w SET leased_by = $4, "
        "    lease_until = to_timestamp($1) + make_interval(secs => $2) "
        "  FROM picked p WHERE w.event_id = p.event_id AND w.endpoint_id = p.endpoint_id "
        // Checked again on the row as it is now: a row recorded (or leased) since the CTE read it is not taken.
        "    AND w.state = 'pending' AND (w.lease_until IS NULL OR w.lease_until <= to_timestamp($1)) "
        "  RETURNING w.event_id, w.endpoint_id, w.attempts, w.next_attempt_at) "
        "SELECT l.event_id, l.endpoint_id, l.attempts, e.url, e.secret, "
        "  CASE WHEN e.previous_secret_until > to_timestamp($1) THEN e.previous_secret END, "
        "  v.type, v.account_id, v.contact_id, v.sequence, "
        "  to_char(v.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), v.data::text "
        "FROM leased l JOIN webhook_events v ON v.id = l.event_id JOIN webhook_endpoints e ON e.id = l.endpoint_id "
        "ORDER BY l.next_attempt_at, l.event_id",
        epoch_seconds(now), static_cast<double>(lease.count()), static_cast<std::int64_t>(limit), holder_, process_,
        per_process);
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

namespace {
const char* kind_name(webhook_outcome::kind k) {
  using kind = webhook_outcome::kind;
  switch (k) {
    case kind::delivered: return "delivered";
    case kind::retry: return "retry";
    case kind::exhausted: return "exhausted";
    case kind::gone: return "gone";
    case kind::deferred: return "deferred";
    case kind::untried: return "untried";
  }
  return "untried";
}
}  // namespace

result<void> pg_webhook_outbox::record(const std::vector<webhook_try>& tries) {
  if (tries.empty()) return ok();
  try {
    array_literal events, endpoints, kinds, statuses, errors, at, next, took;
    bool gone = false;
    for (const auto& t : tries) {
      events.add(t.delivery.event_id);
      endpoints.add(t.delivery.endpoint_id);
      kinds.add(std::string_view(kind_name(t.outcome.what)));
      if (t.outcome.status) statuses.add(static_cast<std::int64_t>(t.outcome.status));
      else statuses.add_null();
      errors.add(std::string_view(t.outcome.error));
      at.add(epoch_seconds(t.outcome.attempted_at));
      next.add(epoch_seconds(t.outcome.next_attempt_at));
      took.add(static_cast<std::int64_t>(t.outcome.took.count()));
      gone = gone || t.outcome.what == webhook_outcome::kind::gone;
    }
    pqxx::work tx(link_.get());
    // The state only while the lease is still ours (a try that outlived its lease is history, not state); a try
    // counts and is kept in the history unless it was not made (deferred, untried).
    tx.exec_params0(
        "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::text[], "
        "  $6::float8[], $7::float8[], $8::bigint[]) AS r(event_id, endpoint_id, kind, status, error, at, next, took)), "
        "upd AS (UPDATE webhook_deliveries d SET "
        "  state = CASE r.kind WHEN 'delivered' THEN 'delivered' WHEN 'exhausted' THEN 'failed' ELSE d.state END, "
        "  attempts = d.attempts + CASE WHEN r.kind IN ('deferred', 'untried') THEN 0 ELSE 1 END, "
        "  next_attempt_at = CASE r.kind WHEN 'retry' THEN to_timestamp(r.next) WHEN 'deferred' THEN to_timestamp(r.next) "
        "    WHEN 'gone' THEN to_timestamp(r.at) ELSE d.next_attempt_at END, "
        "  delivered_at = CASE WHEN r.kind = 'delivered' THEN to_timestamp(r.at) ELSE d.delivered_at END, "
        "  last_status = CASE WHEN r.kind IN ('deferred', 'untried') THEN d.last_status ELSE r.status END, "
        "  last_error = CASE WHEN r.kind IN ('deferred', 'untried') THEN d.last_error WHEN r.kind = 'delivered' THEN NULL "
        "    ELSE nullif(r.error, '') END, "
        "  leased_by = NULL, lease_until = NULL "
        "  FROM r WHERE d.event_id = r.event_id AND d.endpoint_id = r.endpoint_id AND d.leased_by = $9 "
        "    AND d.state = 'pending' RETURNING d.event_id) "
        "INSERT INTO webhook_attempts (event_id, endpoint_id, attempted_at, status, error, duration_ms) "
        "SELECT r.event_id, r.endpoint_id, to_timestamp(r.at), r.status, nullif(r.error, ''), r.took FROM r "
        "WHERE r.kind NOT IN ('deferred', 'untried')",
        events.str(), endpoints.str(), kinds.str(), statuses.str(), errors.str(), at.str(), next.str(), took.str(),
        holder_);
    if (gone)
      tx.exec_params0("UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() "
                      "WHERE id = ANY($1::bigint[]) AND enabled",
                      endpoints.str(), "the receiver answered 410 Gone");
    tx.commit();
    return ok();
  } catch (...) {
    return link_.fail("recording webhook deliveries");
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
          epoch_seconds(before));
      tx.commit();
      total += static_cast<std::int64_t>(r.affected_rows());
      if (r.affected_rows() < 5000) return total;
    }
  } catch (...) {
    return link_.fail("forgetting old webhook events");
  }
}

}  // namespace dialer::pg
