#include "adapters/postgres/pg_carrier_callbacks.hpp"

#include <algorithm>
#include <pqxx/pqxx>

#include "adapters/postgres/connection.hpp"

namespace dialer::pg {

namespace {

constexpr const char* kColumns =
    "id, carrier, instance, attempt_id, call_id, event, params::text, "
    "(extract(epoch FROM received_at) * 1000000)::bigint, placement";

std::vector<carrier_callback> rows_of(const pqxx::result& r) {
  std::vector<carrier_callback> out;
  out.reserve(r.size());
  for (const auto& row : r) {
    carrier_callback c;
    c.id = row[0].as<std::int64_t>();
    c.carrier = row[1].as<std::string>();
    c.instance = row[2].as<std::string>();
    c.attempt = attempt_id(row[3].as<std::int64_t>());
    c.call_id = row[4].as<std::string>();
    c.event = row[5].as<std::string>();
    c.params_json = row[6].as<std::string>();
    c.received_at = std::chrono::system_clock::time_point(std::chrono::microseconds(row[7].as<std::int64_t>()));
    c.placement = row[8].as<std::string>();
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

error pg_carrier_callbacks::fail(const std::string& what) {
  if (link_) return link_->fail(what);
  return current_exception_error(what);
}

result<bool> pg_carrier_callbacks::put(const carrier_callback& c) {
  try {
    pqxx::work tx(conn());
    const auto r = tx.exec_params(
        "INSERT INTO carrier_callbacks (carrier, instance, attempt_id, placement, call_id, event, params) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT (carrier, call_id, event) DO NOTHING RETURNING id",
        c.carrier, c.instance, c.attempt.value(), c.placement, c.call_id, c.event, c.params_json);
    tx.commit();
    return !r.empty();
  } catch (...) {
    return fail("storing a carrier callback");
  }
}

result<std::vector<carrier_callback>> pg_carrier_callbacks::take(std::string_view carrier, std::string_view instance,
                                                                 std::size_t max) {
  try {
    pqxx::work tx(conn());
    // SKIP LOCKED: a row another transaction is taking (reconciliation) is left to it.
    const auto r = tx.exec_params(
        std::string("WITH t AS (SELECT id FROM carrier_callbacks WHERE carrier = $1 AND instance = $2 "
                    "AND taken_at IS NULL ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) "
                    "UPDATE carrier_callbacks c SET taken_at = now() FROM t WHERE c.id = t.id RETURNING ") +
            "c.id, c.carrier, c.instance, c.attempt_id, c.call_id, c.event, c.params::text, "
            "(extract(epoch FROM c.received_at) * 1000000)::bigint, c.placement",
        std::string(carrier), std::string(instance), static_cast<std::int64_t>(max));
    tx.commit();
    auto out = rows_of(r);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
  } catch (...) {
    return fail("taking carrier callbacks");
  }
}

result<std::vector<carrier_callback>> pg_carrier_callbacks::take_attempt(std::string_view carrier,
                                                                         attempt_id attempt) {
  try {
    pqxx::work tx(conn());
    // Locked, so that the attempt's instance (take) does not apply them meanwhile; taken only with a final one.
    const auto r = tx.exec_params(std::string("SELECT ") + kColumns +
                                      " FROM carrier_callbacks WHERE carrier = $1 AND attempt_id = $2 "
                                      "AND taken_at IS NULL ORDER BY id FOR UPDATE",
                                  std::string(carrier), attempt.value());
    bool final = false;
    for (const auto& row : r) final = final || row[5].as<std::string>() == "final";
    if (final)
      tx.exec_params0("UPDATE carrier_callbacks SET taken_at = now() WHERE carrier = $1 AND attempt_id = $2 "
                      "AND taken_at IS NULL",
                      std::string(carrier), attempt.value());
    tx.commit();
    auto out = rows_of(r);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
  } catch (...) {
    return fail("taking an attempt's carrier callbacks");
  }
}

result<std::int64_t> pg_carrier_callbacks::purge(std::chrono::hours age, std::chrono::hours abandoned) {
  try {
    pqxx::work tx(conn());
    const auto r = tx.exec_params(
        "DELETE FROM carrier_callbacks WHERE taken_at < now() - $1 * interval '1 hour' "
        "OR received_at < now() - $2 * interval '1 hour'",
        static_cast<std::int64_t>(age.count()), static_cast<std::int64_t>(abandoned.count()));
    tx.commit();
    return static_cast<std::int64_t>(r.affected_rows());
  } catch (...) {
    return fail("purging carrier callbacks");
  }
}

}  // namespace dialer::pg
