#include "adapters/postgres/pg_webhook_outbox.hpp"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "adapters/postgres/number_rows.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

using sys_time = std::chrono::system_clock::time_point;

// Claims of every engine take turns (a transaction-scoped advisory lock held for one transaction): two engines
// counting an endpoint's lease holders at once could both fill its max_in_flight, and two reading its cursor at
// once could both take the same events.
constexpr std::int64_t kClaimLock = 0x5745424800000001;  // "WEBH" 1

// An endpoint a claim may serve: enabled, not paused, with room for another lease holder.
struct candidate {
  std::int64_t id = 0;
  std::int64_t account = 0;
  std::vector<std::string> types;  // empty: every type
  std::string cursor_xid;
  std::int64_t cursor_log = 0;
  std::int64_t cursor_index = 0;
};

std::int64_t type_index(std::string_view type) {
  for (std::size_t i = 0; i < std::size(kWebhookEventTypes); ++i)
    if (kWebhookEventTypes[i] == type) return static_cast<std::int64_t>(i);
  return -1;
}

struct taken {
  std::int64_t segment = 0;
  std::vector<std::int64_t> events, logs, attempts;
};

// What the claim leased for one endpoint, if anything: a segment whose holder's lease ran out (sent again in
// full), else its due retries, else the next events of the log past its cursor.
taken take_work(pqxx::work& tx, const candidate& c, double now, double lease, std::size_t limit,
                const std::string& holder) {
  taken t;
  auto lost = tx.exec_params(
      "UPDATE webhook_segments SET leased_by = $3, lease_until = to_timestamp($2) + make_interval(secs => $4) "
      "WHERE id = (SELECT id FROM webhook_segments WHERE endpoint_id = $1 AND delivered_at IS NULL "
      "  AND lease_until <= to_timestamp($2) ORDER BY id LIMIT 1) "
      // Checked again on the row as it is now: one recorded since the subquery read it is not taken.
      "  AND delivered_at IS NULL AND lease_until <= to_timestamp($2) "
      "RETURNING id, event_ids::text, log_ids::text",
      c.id, now, holder, lease);
  if (!lost.empty()) {
    t.segment = lost[0][0].as<std::int64_t>();
    t.events = parse_int_array(lost[0][1].c_str());
    t.logs = parse_int_array(lost[0][2].c_str());
    t.attempts.assign(t.events.size(), 0);
    return t;
  }
  auto due = tx.exec_params(
      "WITH u AS (UPDATE webhook_deliveries w SET leased_by = $3, "
      "  lease_until = to_timestamp($2) + make_interval(secs => $4) "
      "FROM (SELECT event_id FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending' "
      "  AND next_attempt_at <= to_timestamp($2) AND (lease_until IS NULL OR lease_until <= to_timestamp($2)) "
      "  ORDER BY next_attempt_at, event_id LIMIT $5) p "
      "WHERE w.endpoint_id = $1 AND w.event_id = p.event_id "
      "  AND w.state = 'pending' AND (w.lease_until IS NULL OR w.lease_until <= to_timestamp($2)) "
      "RETURNING w.event_id, w.log_id, w.attempts, w.next_attempt_at) "
      "SELECT event_id, log_id, attempts FROM u ORDER BY next_attempt_at, event_id",
      c.id, now, holder, lease, static_cast<std::int64_t>(limit));
  for (const auto& r : due) {
    t.events.push_back(r[0].as<std::int64_t>());
    t.logs.push_back(r[1].as<std::int64_t>());
    t.attempts.push_back(r[2].as<int>());
  }
  if (!t.events.empty()) return t;
  // The log past the cursor, of transactions older than every one still running: none of those can commit
  // behind the cursor later. Rows of types the endpoint does not want are passed over. The rows first (their
  // sizes, without reading their arrays), then the slices of the arrays this claim takes.
  auto rows = tx.exec_params(
      "SELECT id, xid::text, type, n FROM webhook_log WHERE account_id = $1 AND (xid, id) >= ($2::xid8, $3) "
      "  AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT 64",
      c.account, c.cursor_xid, c.cursor_log);
  if (rows.empty()) return t;
  struct slice {
    std::int64_t log, start, count, type;
    bool campaign;
  };
  std::vector<slice> slices;
  std::string xid = c.cursor_xid;
  std::int64_t log = c.cursor_log, index = c.cursor_index;
  std::size_t room = limit;
  for (const auto& r : rows) {
    if (room == 0) break;
    const auto id = r[0].as<std::int64_t>();
    const auto size = r[3].as<std::int64_t>();
    const std::string type = r[2].c_str();
    const std::int64_t start = (r[1].as<std::string>() == c.cursor_xid && id == c.cursor_log) ? c.cursor_index : 0;
    std::int64_t end = size;
    const bool wanted = c.types.empty() || std::find(c.types.begin(), c.types.end(), type) != c.types.end();
    if (wanted && start < size) {
      const auto n = std::min<std::int64_t>(size - start, static_cast<std::int64_t>(room));
      slices.push_back({id, start, n, type_index(type), type.starts_with("campaign.")});
      room -= static_cast<std::size_t>(n);
      end = start + n;
    }
    xid = r[1].as<std::string>();
    if (end >= size) {
      log = id + 1;  // past this row: nothing lies between (xid, id) and (xid, id + 1)
      index = 0;
    } else {
      log = id;
      index = end;
    }
  }
  if (!slices.empty()) {
    array_literal logs, starts, counts;
    for (const auto& x : slices) {
      logs.add(x.log);
      starts.add(x.start);
      counts.add(x.count);
    }
    auto got = tx.exec_params(
        "SELECT q.ord, l.ids[q.start + 1 : q.start + q.count]::text FROM unnest($1::bigint[], $2::int[], $3::int[]) "
        "WITH ORDINALITY AS q(log, start, count, ord) JOIN webhook_log l ON l.id = q.log ORDER BY q.ord",
        logs.str(), starts.str(), counts.str());
    for (const auto& r : got) {
      const auto& x = slices[static_cast<std::size_t>(r[0].as<std::int64_t>() - 1)];
      for (auto source : parse_int_array(r[1].c_str())) {
        t.events.push_back((x.campaign ? x.log : source) * 8 + x.type);
        t.logs.push_back(x.log);
        t.attempts.push_back(0);
      }
    }
  }
  tx.exec_params0("UPDATE webhook_endpoints SET cursor_xid = $2::xid8, cursor_log = $3, cursor_index = $4 "
                  "WHERE id = $1",
                  c.id, xid, log, index);
  if (!t.events.empty()) {
    array_literal events, logs;
    for (auto e : t.events) events.add(e);
    for (auto l : t.logs) logs.add(l);
    t.segment = tx.exec_params1("INSERT INTO webhook_segments (endpoint_id, event_ids, log_ids, leased_by, "
                                "lease_until) VALUES ($1, $2::bigint[], $3::bigint[], $4, "
                                "to_timestamp($5) + make_interval(secs => $6)) RETURNING id",
                                c.id, events.str(), logs.str(), holder, now, lease)[0]
                    .as<std::int64_t>();
  }
  return t;
}

// The payloads' rows: the events come from an attempt with its outcome or a finished contact (neither changes
// again), or a campaign event's payload kept as it was. The JSON is built here, not by PostgreSQL: the database
// is what every engine shares.
constexpr const char* kPayloads =
    "SELECT u.ord, l.type, l.account_id, l.occurred_at, "
    "  n.id, n.attempt_no, n.carrier, n.carrier_call_id, n.caller_id, n.outcome, n.detail, n.started_at, "
    "  n.answered_at, n.ended_at, n.billable_ms, n.cost, "
    "  k.id, k.e164, k.row_number, k.variables, k.state, k.outcome, k.pending_reason, k.attempts, c.id, c.name, "
    "  l.data "
    "FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS u(event_id, log_id, ord) "
    "JOIN webhook_log l ON l.id = u.log_id "
    "LEFT JOIN call_attempts n ON l.type LIKE 'call.%' AND n.id = u.event_id / 8 "
    "LEFT JOIN contacts k ON k.id = CASE WHEN l.type LIKE 'call.%' THEN n.contact_id "
    "  WHEN l.type = 'contact.finished' THEN u.event_id / 8 END "
    "LEFT JOIN campaigns c ON c.id = k.campaign_id "
    "WHERE l.type LIKE 'campaign.%' OR k.id IS NOT NULL";

// A timestamptz as the session prints it in UTC with ISO DateStyle ("2026-12-07 10:00:04.12+00", fraction digits
// as needed) in RFC 3339 with microseconds ("2026-12-07T10:00:04.120000Z"), as every timestamp of a payload is.
nlohmann::json rfc3339(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  std::string t = f.c_str();
  if (t.size() < 19 || t[10] != ' ' || !t.ends_with("+00")) return t;  // infinity, or not as expected: as it is
  t.resize(t.size() - 3);
  t[10] = 'T';
  const auto dot = t.find('.', 19);
  if (dot == std::string::npos) t += ".000000";
  else t.append(6 - std::min<std::size_t>(6, t.size() - dot - 1), '0');
  t += 'Z';
  return t;
}

nlohmann::json text_or_null(const pqxx::field& f) { return f.is_null() ? nlohmann::json() : nlohmann::json(f.c_str()); }

// The contact's variables, stored as JSON text by the import (an object); anything else is sent as it is stored.
nlohmann::json variables(const pqxx::field& f) {
  auto v = nlohmann::json::parse(f.c_str(), nullptr, false);
  return v.is_discarded() ? nlohmann::json(f.c_str()) : v;
}

// The event's body: the Standard Webhooks envelope around its data.
std::string payload(const pqxx::row& r, const std::string& message_id) {
  const std::string type = r[1].c_str();
  nlohmann::json data;
  std::int64_t sequence = 0;
  nlohmann::json contact_id;
  if (type.starts_with("call.")) {
    const auto attempt_no = r[5].as<std::int64_t>();
    sequence = attempt_no * 4 + (type == "call.answered" ? 1 : 2);
    contact_id = r[16].as<std::int64_t>();
    data = {{"attempt", {{"id", r[4].as<std::int64_t>()}, {"attempt_no", attempt_no}, {"carrier", r[6].c_str()},
                         {"carrier_call_id", text_or_null(r[7])}}},
            {"campaign", {{"id", r[24].as<std::int64_t>()}, {"name", r[25].c_str()}}},
            {"contact", {{"id", r[16].as<std::int64_t>()}, {"e164", r[17].c_str()}, {"variables", variables(r[19])}}},
            {"from", r[8].c_str()},
            {"to", r[17].c_str()},
            {"outcome", text_or_null(r[9])},
            {"detail", text_or_null(r[10])},
            {"started_at", rfc3339(r[11])},
            {"answered_at", rfc3339(r[12])},
            {"ended_at", rfc3339(r[13])},
            {"duration_s", static_cast<double>(r[14].as<std::int64_t>()) / 1000.0},
            {"cost", std::stod(r[15].c_str())}};
  } else if (type == "contact.finished") {
    sequence = (r[23].as<std::int64_t>() + 1) * 4 + 3;
    contact_id = r[16].as<std::int64_t>();
    data = {{"contact", {{"id", r[16].as<std::int64_t>()}, {"e164", r[17].c_str()}, {"row", r[18].as<std::int64_t>()},
                         {"variables", variables(r[19])}}},
            {"campaign", {{"id", r[24].as<std::int64_t>()}, {"name", r[25].c_str()}}},
            {"state", r[20].c_str()},
            {"outcome", text_or_null(r[21])},
            {"reason", r[22].c_str()},
            {"attempts", r[23].as<std::int64_t>()}};
  } else {
    data = nlohmann::json::parse(r[26].c_str());
  }
  nlohmann::json body{{"id", message_id},
                      {"type", type},
                      {"timestamp", rfc3339(r[3])},
                      {"account_id", r[2].as<std::int64_t>()},
                      {"contact_id", contact_id},
                      {"sequence", sequence},
                      {"data", std::move(data)}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

pg_webhook_outbox::pg_webhook_outbox(std::string database_url, std::string process, int thread)
    : link_(std::move(database_url)), process_(std::move(process) + "/"), holder_(process_ + std::to_string(thread)) {}

result<std::vector<webhook_delivery>> pg_webhook_outbox::claim(sys_time now, std::chrono::seconds lease,
                                                               std::size_t limit, int per_process) {
  try {
    const double at = epoch_seconds(now);
    const double secs = static_cast<double>(lease.count());
    pqxx::work tx(link_.get());
    // Not waiting for the WAL flush (here and in record): a claim or a record lost with the server's crash only
    // sends its events again (at least once), and the engine's commits do not queue behind ours.
    tx.exec0("SET LOCAL synchronous_commit = off");
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kClaimLock);
    // Lease holders (dispatcher threads, of every engine) per endpoint; endpoints in turn, the least recently
    // served first, so that one busy or slow receiver does not keep the others waiting.
    auto rows = tx.exec_params(
        "WITH holders AS ("
        "  SELECT endpoint_id, leased_by FROM webhook_deliveries "
        "  WHERE leased_by IS NOT NULL AND lease_until > to_timestamp($1) "
        "  UNION SELECT endpoint_id, leased_by FROM webhook_segments "
        "  WHERE delivered_at IS NULL AND lease_until > to_timestamp($1)), "
        "h AS (SELECT endpoint_id, count(*) AS n, count(*) FILTER (WHERE starts_with(leased_by, $2)) AS mine "
        "  FROM holders GROUP BY endpoint_id) "
        "SELECT e.id, e.account_id, e.event_types::text, e.cursor_xid::text, e.cursor_log, e.cursor_index, e.url, "
        "  e.secret, CASE WHEN e.previous_secret_until > to_timestamp($1) THEN e.previous_secret END "
        "FROM webhook_endpoints e LEFT JOIN h ON h.endpoint_id = e.id "
        "WHERE e.enabled AND e.paused_until <= to_timestamp($1) AND coalesce(h.n, 0) < e.max_in_flight "
        "  AND coalesce(h.mine, 0) < $3 "
        // Only endpoints with something to send: a first try whose holder's lease ran out, a due retry, or an
        // event it wants past its cursor.
        "  AND (EXISTS (SELECT 1 FROM webhook_segments s WHERE s.endpoint_id = e.id AND s.delivered_at IS NULL "
        "         AND s.lease_until <= to_timestamp($1)) "
        "    OR EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'pending' "
        "         AND d.next_attempt_at <= to_timestamp($1) "
        "         AND (d.lease_until IS NULL OR d.lease_until <= to_timestamp($1))) "
        "    OR EXISTS (SELECT 1 FROM webhook_log l WHERE l.account_id = e.account_id "
        "         AND (l.xid, l.id) >= (e.cursor_xid, e.cursor_log) "
        "         AND l.xid < pg_snapshot_xmin(pg_current_snapshot()) "
        "         AND (e.event_types = '{}' OR l.type = ANY (e.event_types)) "
        "         AND NOT (l.xid = e.cursor_xid AND l.id = e.cursor_log AND e.cursor_index >= l.n))) "
        "ORDER BY e.claimed_at, e.id LIMIT 32",
        at, process_, per_process);
    taken work;
    std::optional<pqxx::row> chosen;
    for (const auto& r : rows) {
      candidate c;
      c.id = r[0].as<std::int64_t>();
      c.account = r[1].as<std::int64_t>();
      c.types = parse_text_array(r[2]);
      c.cursor_xid = r[3].as<std::string>();
      c.cursor_log = r[4].as<std::int64_t>();
      c.cursor_index = r[5].as<std::int64_t>();
      work = take_work(tx, c, at, secs, limit, holder_);
      if (!work.events.empty()) {
        chosen = r;
        tx.exec_params0("UPDATE webhook_endpoints SET claimed_at = to_timestamp($2) WHERE id = $1", c.id, at);
        break;
      }
    }
    tx.commit();
    if (!chosen) return std::vector<webhook_delivery>{};

    const auto endpoint = (*chosen)[0].as<std::int64_t>();
    std::vector<std::string> secrets{(*chosen)[7].as<std::string>()};
    if (!(*chosen)[8].is_null()) secrets.push_back((*chosen)[8].as<std::string>());
    const auto url = (*chosen)[6].as<std::string>();

    array_literal events, logs;
    for (auto e : work.events) events.add(e);
    for (auto l : work.logs) logs.add(l);
    pqxx::work read(link_.get());
    read.exec0("SET LOCAL TimeZone = 'UTC'");
    read.exec0("SET LOCAL DateStyle = 'ISO'");
    auto payloads = read.exec_params(kPayloads, events.str(), logs.str());
    std::vector<std::optional<webhook_delivery>> slots(work.events.size());
    for (const auto& r : payloads) {
      const auto i = static_cast<std::size_t>(r[0].as<std::int64_t>() - 1);
      webhook_delivery d;
      d.event_id = work.events[i];
      d.log_id = work.logs[i];
      d.endpoint_id = endpoint;
      d.segment_id = work.segment;
      d.attempts = work.attempts[i];
      d.url = url;
      d.secrets = secrets;
      d.message_id = "evt_" + std::to_string(d.event_id);
      d.body = payload(r, d.message_id);
      slots[i] = std::move(d);
    }
    std::vector<webhook_delivery> out;
    out.reserve(slots.size());
    // An event whose rows are gone (past the retention) cannot be sent: a retry of it fails for good; in a
    // segment it goes with the segment.
    array_literal missing;
    bool any_missing = false;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i]) {
        out.push_back(std::move(*slots[i]));
      } else {
        missing.add(work.events[i]);
        any_missing = true;
      }
    }
    if (any_missing && work.segment == 0)
      read.exec_params0("UPDATE webhook_deliveries SET state = 'failed', leased_by = NULL, lease_until = NULL, "
                        "last_error = 'the event is no longer stored' WHERE endpoint_id = $1 "
                        "AND event_id = ANY ($2::bigint[]) AND leased_by = $3",
                        endpoint, missing.str(), holder_);
    if (out.empty() && work.segment != 0)
      read.exec_params0("DELETE FROM webhook_segments WHERE id = $1 AND leased_by = $2", work.segment, holder_);
    read.commit();
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

// An endpoint that has failed every try for this long is disabled (it can be enabled again through the API).
constexpr double kFailingFor = 5 * 24 * 3600.0;
}  // namespace

result<void> pg_webhook_outbox::record(const std::vector<webhook_try>& tries) {
  if (tries.empty()) return ok();
  try {
    array_literal events, endpoints, logs, segments, kinds, statuses, errors, at, next, took;
    struct summary {
      std::int64_t delivered = 0;
      bool failed = false;                        // a try was made and did not deliver
      bool gone = false;
      std::optional<double> pause;                // a down or throttling receiver: not before then
      double last = 0;
    };
    std::unordered_map<std::int64_t, summary> by_endpoint;
    for (const auto& t : tries) {
      events.add(t.delivery.event_id);
      endpoints.add(t.delivery.endpoint_id);
      logs.add(t.delivery.log_id);
      segments.add(t.delivery.segment_id);
      kinds.add(std::string_view(kind_name(t.outcome.what)));
      if (t.outcome.status) statuses.add(static_cast<std::int64_t>(t.outcome.status));
      else statuses.add_null();
      errors.add(std::string_view(t.outcome.error));
      at.add(epoch_seconds(t.outcome.attempted_at));
      next.add(epoch_seconds(t.outcome.next_attempt_at));
      took.add(static_cast<std::int64_t>(t.outcome.took.count()));
      auto& s = by_endpoint[t.delivery.endpoint_id];
      using kind = webhook_outcome::kind;
      switch (t.outcome.what) {
        case kind::delivered: ++s.delivered; break;
        case kind::retry:
        case kind::exhausted: s.failed = true; break;
        case kind::gone: s.gone = s.failed = true; break;
        case kind::deferred: s.pause = epoch_seconds(t.outcome.next_attempt_at); break;
        case kind::untried: break;
      }
      if (t.outcome.what != kind::deferred && t.outcome.what != kind::untried)
        s.last = std::max(s.last, epoch_seconds(t.outcome.attempted_at));
    }
    pqxx::work tx(link_.get());
    tx.exec0("SET LOCAL synchronous_commit = off");
    // One statement for the batch. Deliveries with a row: their state, only while the lease is still ours (a try
    // that outlived its lease is history, not state). First tries from a segment still leased by us: a row for
    // each that was not delivered, and the segment is done. Every try made (and not a first-try delivery) is kept
    // in the history; deferred and untried ones were not made.
    tx.exec_params0(
        "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], "
        "  $6::int[], $7::text[], $8::float8[], $9::float8[], $10::bigint[]) WITH ORDINALITY "
        "  AS r(event_id, endpoint_id, log_id, segment_id, kind, status, error, at, next, took, ord)), "
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
        "  FROM r WHERE r.segment_id = 0 AND d.event_id = r.event_id AND d.endpoint_id = r.endpoint_id "
        "    AND d.leased_by = $11 AND d.state = 'pending' RETURNING d.event_id), "
        "ours AS (SELECT s.id FROM webhook_segments s WHERE s.id IN (SELECT DISTINCT segment_id FROM r) "
        "  AND s.delivered_at IS NULL AND s.leased_by = $11 FOR UPDATE), "
        "ins AS (INSERT INTO webhook_deliveries (event_id, endpoint_id, log_id, state, attempts, next_attempt_at, "
        "    last_status, last_error) "
        "  SELECT r.event_id, r.endpoint_id, r.log_id, CASE WHEN r.kind = 'exhausted' THEN 'failed' ELSE 'pending' END, "
        "    CASE WHEN r.kind IN ('deferred', 'untried') THEN 0 ELSE 1 END, "
        "    CASE r.kind WHEN 'retry' THEN to_timestamp(r.next) WHEN 'deferred' THEN to_timestamp(r.next) "
        "      WHEN 'gone' THEN to_timestamp(r.at) ELSE '-infinity' END, "
        "    CASE WHEN r.kind IN ('deferred', 'untried') THEN NULL ELSE r.status END, "
        "    CASE WHEN r.kind IN ('deferred', 'untried') THEN NULL ELSE nullif(r.error, '') END "
        "  FROM r JOIN ours ON ours.id = r.segment_id WHERE r.kind <> 'delivered' "
        "  ON CONFLICT (event_id, endpoint_id) DO NOTHING), "
        // The segment keeps the record of what its first tries delivered; one that delivered nothing goes.
        "kept AS (UPDATE webhook_segments s SET delivered_at = x.at, leased_by = NULL, lease_until = NULL, "
        "    event_ids = x.events, log_ids = x.logs, statuses = x.statuses "
        "  FROM (SELECT r.segment_id, to_timestamp(max(r.at)) AS at, array_agg(r.event_id ORDER BY r.ord) AS events, "
        "      array_agg(r.log_id ORDER BY r.ord) AS logs, array_agg(r.status ORDER BY r.ord) AS statuses "
        "    FROM r JOIN ours ON ours.id = r.segment_id WHERE r.kind = 'delivered' GROUP BY r.segment_id) x "
        "  WHERE s.id = x.segment_id), "
        "gone AS (DELETE FROM webhook_segments s USING ours WHERE s.id = ours.id "
        "  AND NOT EXISTS (SELECT 1 FROM r WHERE r.segment_id = s.id AND r.kind = 'delivered')) "
        "INSERT INTO webhook_attempts (event_id, endpoint_id, log_id, attempted_at, status, error, duration_ms) "
        "SELECT r.event_id, r.endpoint_id, r.log_id, to_timestamp(r.at), r.status, nullif(r.error, ''), r.took FROM r "
        "WHERE r.kind NOT IN ('deferred', 'untried') AND (r.segment_id = 0 OR r.kind <> 'delivered')",
        events.str(), endpoints.str(), logs.str(), segments.str(), kinds.str(), statuses.str(), errors.str(),
        at.str(), next.str(), took.str(), holder_);
    // The endpoint: what it delivered; a pause while it is down or throttling; when it began failing every try
    // (and, after 5 days of that, disabled); 410 disables it at once.
    for (const auto& [endpoint, s] : by_endpoint) {
      const bool any_try = s.delivered > 0 || s.failed;
      tx.exec_params0(
          "UPDATE webhook_endpoints SET delivered_count = delivered_count + $2, "
          "  paused_until = CASE WHEN $3::float8 IS NOT NULL THEN to_timestamp($3) WHEN $2 > 0 THEN '-infinity' "
          "    ELSE paused_until END, "
          "  failing_since = CASE WHEN $2 > 0 THEN NULL WHEN $4 THEN coalesce(failing_since, to_timestamp($5)) "
          "    ELSE failing_since END "
          "WHERE id = $1",
          endpoint, s.delivered, s.pause, s.failed && s.delivered == 0, s.last);
      if (s.gone)
        tx.exec_params0("UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() "
                        "WHERE id = $1 AND enabled",
                        endpoint, "the receiver answered 410 Gone");
      else if (any_try && s.delivered == 0)
        tx.exec_params0("UPDATE webhook_endpoints SET enabled = false, updated_at = now(), disabled_reason = "
                        "'every try failed for 5 days, since ' || to_char(failing_since AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') WHERE id = $1 AND enabled "
                        "AND failing_since <= to_timestamp($2) - make_interval(secs => $3)",
                        endpoint, s.last, kFailingFor);
    }
    tx.commit();
    return ok();
  } catch (...) {
    return link_.fail("recording webhook deliveries");
  }
}

result<std::int64_t> pg_webhook_outbox::expire(sys_time before) {
  try {
    std::int64_t total = 0;
    const double cut = epoch_seconds(before);
    {
      // Deliveries settled (delivered or failed), first-try records and tries older than the retention.
      pqxx::work tx(link_.get());
      tx.exec_params0("DELETE FROM webhook_attempts WHERE attempted_at < to_timestamp($1)", cut);
      tx.exec_params0("DELETE FROM webhook_segments WHERE delivered_at < to_timestamp($1)", cut);
      tx.exec_params0("DELETE FROM webhook_deliveries d USING webhook_log l WHERE l.id = d.log_id "
                      "AND d.state <> 'pending' AND l.occurred_at < to_timestamp($1)",
                      cut);
      tx.commit();
    }
    for (;;) {  // in slices: a long outage's backlog is not one huge transaction
      pqxx::work tx(link_.get());
      // Not while a claim reads the log (it reads rows, then their slices).
      tx.exec_params("SELECT pg_advisory_xact_lock($1)", kClaimLock);
      // The log rows nothing still needs: no delivery or first try under way refers to them, and no enabled
      // endpoint that wants them has yet read past them (however long it is behind). A disabled endpoint does
      // not hold them: enabled again after longer than the retention, it goes on from what is left.
      auto r = tx.exec_params(
          "DELETE FROM webhook_log WHERE id IN (SELECT l.id FROM webhook_log l WHERE l.occurred_at < "
          "to_timestamp($1) AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.log_id = l.id) "
          "AND NOT EXISTS (SELECT 1 FROM webhook_segments s WHERE s.delivered_at IS NULL AND l.id = ANY (s.log_ids)) "
          "AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = l.account_id AND e.enabled "
          "  AND (e.event_types = '{}' OR l.type = ANY (e.event_types)) "
          "  AND ((l.xid, l.id) > (e.cursor_xid, e.cursor_log) "
          "    OR (l.xid = e.cursor_xid AND l.id = e.cursor_log AND e.cursor_index < l.n))) "
          "LIMIT 1000) "
          "RETURNING n",
          cut);
      tx.commit();
      for (const auto& row : r) total += row[0].as<std::int64_t>();
      if (r.size() < 1000) return total;
    }
  } catch (...) {
    return link_.fail("forgetting old webhook events");
  }
}

}  // namespace dialer::pg
