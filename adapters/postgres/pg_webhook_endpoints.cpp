#include "adapters/postgres/pg_webhook_endpoints.hpp"

#include <pqxx/pqxx>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/number_rows.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

using sys_time = std::chrono::system_clock::time_point;

std::int64_t micros(const pqxx::field& f) { return f.as<std::int64_t>(); }
std::optional<sys_time> maybe_time(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return from_micros(f.as<std::int64_t>());
}

#define US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

// The endpoint's columns and its deliveries by state.
constexpr const char* kEndpointSelect =
    "SELECT e.id, e.account_id, e.url, e.description, e.event_types, e.enabled, coalesce(e.disabled_reason, ''), "
    "e.max_in_flight, " US("e.previous_secret_until") ", " US("e.created_at") ", " US("e.updated_at") ", "
    // pending: retries waiting, first tries under way, and the events of the log past its cursor
    "(SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'pending') + "
    "(SELECT coalesce(sum(cardinality(s.event_ids)), 0) FROM webhook_segments s "
    "  WHERE s.endpoint_id = e.id AND s.delivered_at IS NULL) + "
    "(SELECT greatest(coalesce(sum(l.n), 0) - e.cursor_index, 0) "
    "  FROM webhook_log l WHERE l.account_id = e.account_id AND (l.xid, l.id) >= (e.cursor_xid, e.cursor_log) "
    "  AND (e.event_types = '{}' OR l.type = ANY (e.event_types))), "
    "e.delivered_count, "  // every delivery, first try or not
    "(SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'failed') "
    "FROM webhook_endpoints e ";

webhook_endpoint_record read_endpoint(const pqxx::row& r) {
  webhook_endpoint_record e;
  e.id = r[0].as<std::int64_t>();
  e.account = account_id{r[1].as<std::int64_t>()};
  e.url = r[2].as<std::string>();
  e.description = r[3].as<std::string>();
  e.event_types = parse_text_array(r[4]);
  e.enabled = r[5].as<bool>();
  e.disabled_reason = r[6].as<std::string>();
  e.max_in_flight = r[7].as<int>();
  e.previous_secret_until = maybe_time(r[8]);
  e.created_at = from_micros(micros(r[9]));
  e.updated_at = from_micros(micros(r[10]));
  e.pending = r[11].as<std::int64_t>();
  e.delivered = r[12].as<std::int64_t>();
  e.failed = r[13].as<std::int64_t>();
  return e;
}

std::string types_literal(const std::vector<std::string>& types) {
  array_literal a;
  for (const auto& t : types) a.add(std::string_view(t));
  return a.str();
}

result<webhook_endpoint_record> one(pqxx::work& tx, account_id account, std::int64_t id) {
  auto rows = tx.exec_params(std::string(kEndpointSelect) + "WHERE e.account_id = $1 AND e.id = $2",
                             account.value(), id);
  if (rows.empty()) return make_error(errc::not_found, "no webhook endpoint {}", id);
  return read_endpoint(rows[0]);
}

}  // namespace

result<webhook_endpoint_record> pg_webhook_endpoints::create(account_id account, const std::string& url,
                                                             const std::string& description,
                                                             const std::vector<std::string>& event_types,
                                                             int max_in_flight, const std::string& secret) {
  try {
    pqxx::work tx(connection_);
    const auto id = tx.exec_params1("INSERT INTO webhook_endpoints (account_id, url, description, event_types, "
                                    "max_in_flight, secret) VALUES ($1, $2, $3, $4::text[], $5, $6) RETURNING id",
                                    account.value(), url, description, types_literal(event_types), max_in_flight,
                                    secret)[0]
                        .as<std::int64_t>();
    auto e = one(tx, account, id);
    tx.commit();
    if (e) e->secret = secret;
    return e;
  } catch (...) {
    return current_exception_error("creating a webhook endpoint");
  }
}

result<webhook_endpoint_record> pg_webhook_endpoints::get(account_id account, std::int64_t id) {
  try {
    pqxx::work tx(connection_);
    return one(tx, account, id);
  } catch (...) {
    return current_exception_error("reading a webhook endpoint");
  }
}

result<std::vector<webhook_endpoint_record>> pg_webhook_endpoints::list(account_id account, page_request page) {
  try {
    pqxx::work tx(connection_);
    std::vector<webhook_endpoint_record> out;
    for (const auto& r : tx.exec_params(std::string(kEndpointSelect) +
                                            "WHERE e.account_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3",
                                        account.value(), page.after, page.limit))
      out.push_back(read_endpoint(r));
    return out;
  } catch (...) {
    return current_exception_error("listing webhook endpoints");
  }
}

result<webhook_endpoint_record> pg_webhook_endpoints::update(account_id account, std::int64_t id,
                                                             const webhook_endpoint_change& c) {
  try {
    pqxx::work tx(connection_);
    // Enabling clears the reason it was disabled; disabling through the API gives one.
    auto rows = tx.exec_params(
        "UPDATE webhook_endpoints SET url = coalesce($3, url), description = coalesce($4, description), "
        "event_types = coalesce($5::text[], event_types), enabled = coalesce($6, enabled), "
        "disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason WHEN $6 THEN NULL "
        "  ELSE 'disabled through the API' END, "
        "max_in_flight = coalesce($7, max_in_flight), updated_at = now(), "
        // Enabled again: tried at once, and it gets what happened while it was disabled (within the retention).
        "paused_until = CASE WHEN $6 AND NOT enabled THEN '-infinity' ELSE paused_until END, "
        "failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END "
        "WHERE account_id = $1 AND id = $2 RETURNING id",
        account.value(), id, c.url, c.description,
        c.event_types ? std::optional<std::string>(types_literal(*c.event_types)) : std::nullopt, c.enabled,
        c.max_in_flight);
    if (rows.empty()) return make_error(errc::not_found, "no webhook endpoint {}", id);
    auto e = one(tx, account, id);
    tx.commit();
    return e;
  } catch (...) {
    return current_exception_error("changing a webhook endpoint");
  }
}

result<void> pg_webhook_endpoints::remove(account_id account, std::int64_t id) {
  try {
    pqxx::work tx(connection_);
    // Its deliveries and their history go with it (ON DELETE CASCADE); the events stay for other endpoints.
    auto rows = tx.exec_params("DELETE FROM webhook_endpoints WHERE account_id = $1 AND id = $2 RETURNING id",
                               account.value(), id);
    if (rows.empty()) return make_error(errc::not_found, "no webhook endpoint {}", id);
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("deleting a webhook endpoint");
  }
}

result<webhook_endpoint_record> pg_webhook_endpoints::rotate(account_id account, std::int64_t id,
                                                             const std::string& secret, sys_time previous_until) {
  try {
    pqxx::work tx(connection_);
    auto rows = tx.exec_params(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = to_timestamp($3), "
        "secret = $4, updated_at = now() WHERE account_id = $1 AND id = $2 RETURNING id",
        account.value(), id, epoch_seconds(previous_until), secret);
    if (rows.empty()) return make_error(errc::not_found, "no webhook endpoint {}", id);
    auto e = one(tx, account, id);
    tx.commit();
    if (e) e->secret = secret;
    return e;
  } catch (...) {
    return current_exception_error("rotating a webhook endpoint's secret");
  }
}

result<std::vector<webhook_delivery_record>> pg_webhook_endpoints::deliveries(account_id account, std::int64_t id,
                                                                              std::optional<std::string> state,
                                                                              page_request page) {
  try {
    pqxx::work tx(connection_);
    if (auto e = one(tx, account, id); !e) return e.error();
    std::vector<webhook_delivery_record> out;
    for (const auto& r : tx.exec_params(
             // Delivery rows (retried or replayed), and the events of segments: delivered at their first try,
             // or under way (pending).
             "SELECT x.event_id, webhook_type_name(x.event_id), x.state, x.attempts, "
             US("coalesce(v.occurred_at, x.delivered_at, now())") ", "
             "CASE WHEN x.state = 'pending' THEN " US("greatest(x.next_attempt_at, v.occurred_at)") " END, "
             US("x.delivered_at") ", x.last_status, coalesce(x.last_error, '') FROM ("
             "  SELECT d.event_id, d.log_id, d.state, d.attempts, d.next_attempt_at, d.delivered_at, d.last_status, "
             "    d.last_error FROM webhook_deliveries d "
             "  WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.state = $2) AND ($3 = 0 OR d.event_id < $3) "
             "  UNION ALL "
             "  SELECT u.event_id, u.log_id, CASE WHEN s.delivered_at IS NULL THEN 'pending' ELSE 'delivered' END, "
             "    CASE WHEN s.delivered_at IS NULL THEN 0 ELSE 1 END, s.lease_until, s.delivered_at, u.status, NULL "
             "  FROM webhook_segments s CROSS JOIN LATERAL unnest(s.event_ids, s.log_ids, s.statuses) "
             "    AS u(event_id, log_id, status) "
             "  WHERE s.endpoint_id = $1 AND ($3 = 0 OR u.event_id < $3) AND ($2::text IS NULL OR $2 = "
             "    CASE WHEN s.delivered_at IS NULL THEN 'pending' ELSE 'delivered' END)) x "
             "LEFT JOIN webhook_log v ON v.id = x.log_id "
             "ORDER BY x.event_id DESC LIMIT $4",
             id, state, page.after, page.limit)) {
      webhook_delivery_record d;
      d.event_id = r[0].as<std::int64_t>();
      d.message_id = "evt_" + std::to_string(d.event_id);
      d.type = r[1].as<std::string>();
      d.state = r[2].as<std::string>();
      d.attempts = r[3].as<int>();
      d.occurred_at = from_micros(micros(r[4]));
      d.next_attempt_at = maybe_time(r[5]);
      d.delivered_at = maybe_time(r[6]);
      if (!r[7].is_null()) d.last_status = r[7].as<int>();
      d.last_error = r[8].as<std::string>();
      out.push_back(std::move(d));
    }
    return out;
  } catch (...) {
    return current_exception_error("listing webhook deliveries");
  }
}

result<std::vector<webhook_attempt_record>> pg_webhook_endpoints::attempts(account_id account, std::int64_t id,
                                                                           page_request page) {
  try {
    pqxx::work tx(connection_);
    if (auto e = one(tx, account, id); !e) return e.error();
    std::vector<webhook_attempt_record> out;
    for (const auto& r : tx.exec_params(
             "SELECT a.id, a.event_id, webhook_type_name(a.event_id), " US("a.attempted_at") ", a.status, "
             "coalesce(a.error, ''), a.duration_ms FROM webhook_attempts a "
             "WHERE a.endpoint_id = $1 AND ($2 = 0 OR a.id < $2) ORDER BY a.id DESC LIMIT $3",
             id, page.after, page.limit)) {
      webhook_attempt_record a;
      a.id = r[0].as<std::int64_t>();
      a.event_id = r[1].as<std::int64_t>();
      a.message_id = "evt_" + std::to_string(a.event_id);
      a.type = r[2].as<std::string>();
      a.attempted_at = from_micros(micros(r[3]));
      if (!r[4].is_null()) a.status = r[4].as<int>();
      a.error = r[5].as<std::string>();
      a.duration_ms = r[6].as<std::int64_t>();
      out.push_back(std::move(a));
    }
    return out;
  } catch (...) {
    return current_exception_error("listing webhook attempts");
  }
}

result<std::int64_t> pg_webhook_endpoints::replay(account_id account, std::int64_t id,
                                                  const std::vector<std::int64_t>& event_ids, sys_time now) {
  try {
    pqxx::work tx(connection_);
    if (auto e = one(tx, account, id); !e) return e.error();
    array_literal ids;
    for (auto e : event_ids) ids.add(e);
    // Not while another try holds it (a live lease): that try's outcome stands. A listed event delivered at its
    // first try has no delivery row yet: it gets one. The endpoint is tried at once, paused or not.
    auto rows = tx.exec_params(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = to_timestamp($2), "
        "delivered_at = NULL WHERE endpoint_id = $1 AND leased_by IS NULL AND "
        "(CASE WHEN cardinality($3::bigint[]) = 0 THEN state = 'failed' ELSE event_id = ANY($3::bigint[]) END) "
        "RETURNING event_id",
        id, epoch_seconds(now), ids.str());
    if (!event_ids.empty()) {
      // A listed event delivered at its first try leaves its segment's record for a row of its own; one this
      // endpoint never had (it happened before the endpoint, or while it was behind) is looked up in the log.
      auto moved = tx.exec_params(
          "WITH hit AS (SELECT s.id, u.event_id, u.log_id FROM webhook_segments s "
          "  CROSS JOIN LATERAL unnest(s.event_ids, s.log_ids) AS u(event_id, log_id) "
          "  WHERE s.endpoint_id = $1 AND s.delivered_at IS NOT NULL AND s.event_ids && $3::bigint[] "
          "    AND u.event_id = ANY ($3::bigint[])), "
          "trim AS (UPDATE webhook_segments s SET event_ids = k.events, log_ids = k.logs, statuses = k.statuses "
          "  FROM (SELECT s2.id, array_agg(u.event_id ORDER BY u.o) AS events, array_agg(u.log_id ORDER BY u.o) AS logs, "
          "      array_agg(u.status ORDER BY u.o) AS statuses "
          "    FROM webhook_segments s2 CROSS JOIN LATERAL unnest(s2.event_ids, s2.log_ids, s2.statuses) "
          "      WITH ORDINALITY AS u(event_id, log_id, status, o) "
          "    WHERE s2.id IN (SELECT id FROM hit) AND NOT (u.event_id = ANY ($3::bigint[])) GROUP BY s2.id) k "
          "  WHERE s.id = k.id), "
          "emptied AS (DELETE FROM webhook_segments s WHERE s.id IN (SELECT id FROM hit) "
          "  AND s.event_ids <@ $3::bigint[]) "
          "INSERT INTO webhook_deliveries (event_id, endpoint_id, log_id, next_attempt_at) "
          "SELECT DISTINCT ON (event_id) event_id, $1, log_id, to_timestamp($2) FROM hit "
          "ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING event_id",
          id, epoch_seconds(now), ids.str());
      auto added = tx.exec_params(
          "INSERT INTO webhook_deliveries (event_id, endpoint_id, log_id, next_attempt_at) "
          "SELECT DISTINCT ON (v.id) v.id, $1, v.log_id, to_timestamp($2) FROM webhook_events v "
          "WHERE v.account_id = $4 AND v.id = ANY ($3::bigint[]) AND v.type = webhook_type_name(v.id) "
          "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND d.event_id = v.id) "
          // Not while its first try is under way (that try's outcome stands, as for a leased delivery).
          "AND NOT EXISTS (SELECT 1 FROM webhook_segments s WHERE s.endpoint_id = $1 AND s.delivered_at IS NULL "
          "  AND v.id = ANY (s.event_ids)) "
          "ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING event_id",
          id, epoch_seconds(now), ids.str(), account.value());
      tx.exec_params0("UPDATE webhook_endpoints SET paused_until = '-infinity' WHERE id = $1", id);
      tx.commit();
      return static_cast<std::int64_t>(rows.size() + moved.size() + added.size());
    }
    tx.exec_params0("UPDATE webhook_endpoints SET paused_until = '-infinity' WHERE id = $1", id);
    tx.commit();
    return static_cast<std::int64_t>(rows.size());
  } catch (...) {
    return current_exception_error("replaying webhook deliveries");
  }
}

#undef US

}  // namespace dialer::pg
