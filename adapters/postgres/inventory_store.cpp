#include "adapters/postgres/inventory_store.hpp"

#include <pqxx/pqxx>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/number_rows.hpp"

namespace dialer::pg {
namespace {

agent read_agent(const pqxx::row& r) {
  agent a;
  a.id = agent_id{r[0].as<std::int64_t>()};
  a.account = account_id{r[1].as<std::int64_t>()};
  a.name = r[2].as<std::string>();
  a.handoff = r[3].as<std::string>();
  a.created_at = from_micros(r[4].as<std::int64_t>());
  return a;
}

constexpr const char* kAgentColumns =
    "id, account_id, name, handoff, (extract(epoch FROM created_at) * 1000000)::bigint";

std::string text_array(std::span<const std::string> items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

result<account_id> find_account(pqxx::connection& connection, const std::string& name) {
  try {
    pqxx::nontransaction tx(connection);
    auto rows = tx.exec_params("SELECT id FROM accounts WHERE name = $1", name);
    if (rows.empty()) return make_error(errc::not_found, "account '{}' does not exist", name);
    return account_id{rows[0][0].as<std::int64_t>()};
  } catch (...) {
    return current_exception_error("looking up account " + name);
  }
}

result<agent> pg_inventory_store::create_agent(const std::string& name, const std::string& handoff) {
  try {
    pqxx::work tx(connection_);
    auto rows =
        tx.exec_params(std::string("INSERT INTO agents (account_id, name, handoff) VALUES ($1, $2, $3) "
                                   "ON CONFLICT (account_id, name) WHERE deleted_at IS NULL DO NOTHING RETURNING ") +
                           kAgentColumns,
                       account_.value(), name, handoff);
    if (rows.empty()) return make_error(errc::conflict, "agent '{}' already exists", name);
    tx.commit();
    return read_agent(rows[0]);
  } catch (...) {
    return current_exception_error("creating agent " + name);
  }
}

result<std::vector<agent>> pg_inventory_store::list_agents() {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<agent> out;
    for (const auto& r : tx.exec_params(
             std::string("SELECT ") + kAgentColumns + " FROM agents WHERE account_id = $1 AND deleted_at IS NULL ORDER BY id",
             account_.value()))
      out.push_back(read_agent(r));
    return out;
  } catch (...) {
    return current_exception_error("listing agents");
  }
}

result<agent> pg_inventory_store::find_agent(agent_id id) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params(
        std::string("SELECT ") + kAgentColumns + " FROM agents WHERE account_id = $1 AND id = $2 AND deleted_at IS NULL",
        account_.value(), id.value());
    if (rows.empty()) return make_error(errc::not_found, "agent {} does not exist", id.value());
    return read_agent(rows[0]);
  } catch (...) {
    return current_exception_error("looking up an agent");
  }
}

result<agent> pg_inventory_store::find_agent(const std::string& name) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params(
        std::string("SELECT ") + kAgentColumns + " FROM agents WHERE account_id = $1 AND name = $2 AND deleted_at IS NULL",
        account_.value(), name);
    if (rows.empty()) return make_error(errc::not_found, "agent '{}' does not exist", name);
    return read_agent(rows[0]);
  } catch (...) {
    return current_exception_error("looking up agent " + name);
  }
}

result<phone_number> pg_inventory_store::add_number(const phone_number& n, const std::string& provider_ref) {
  try {
    pqxx::work tx(connection_);
    // Explain a duplicate precisely instead of surfacing the index name.
    auto clash = tx.exec_params(
        "SELECT account_id = $1 FROM numbers WHERE e164 = $2 AND status = 'active' "
        "AND (account_id = $1 OR kind = 'managed') ORDER BY account_id = $1 DESC LIMIT 1",
        account_.value(), n.e164);
    if (!clash.empty()) {
      if (clash[0][0].as<bool>())
        return make_error(errc::conflict, "number {} is already active in this account", n.e164);
      return make_error(errc::conflict, "number {} is already owned on this platform", n.e164);
    }
    auto id = tx.exec_params1(
                    "INSERT INTO numbers (account_id, e164, country, type, kind, provider, provider_ref, "
                    "max_concurrent_calls, "
                    "max_cps, monthly_fee) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric / "
                    "1000000) RETURNING id",
                    account_.value(), n.e164, n.country, std::string(to_string(n.type)),
                    std::string(to_string(n.kind)), n.provider, provider_ref, n.max_concurrent_calls,
                    n.max_cps, n.monthly_fee)[0]
                  .as<std::int64_t>();
    tx.commit();
    return find_number(number_id{id});
  } catch (const pqxx::unique_violation&) {
    return make_error(errc::conflict, "number {} is already active", n.e164);
  } catch (...) {
    return current_exception_error("storing number " + n.e164);
  }
}

result<phone_number> pg_inventory_store::find_number(number_id id) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params(
        std::string("SELECT ") + kNumberColumns + kNumberFrom + "WHERE n.account_id = $1 AND n.id = $2",
        account_.value(), id.value());
    if (rows.empty()) return make_error(errc::not_found, "number {} does not exist", id.value());
    return read_number(rows[0]);
  } catch (...) {
    return current_exception_error("looking up a number");
  }
}

result<phone_number> pg_inventory_store::find_number(const std::string& e164) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params(std::string("SELECT ") + kNumberColumns + kNumberFrom +
                                   "WHERE n.account_id = $1 AND n.e164 = $2 "
                                   "ORDER BY n.status = 'active' DESC, n.id DESC LIMIT 1",
                               account_.value(), e164);
    if (rows.empty()) return make_error(errc::not_found, "number {} is not in this account", e164);
    return read_number(rows[0]);
  } catch (...) {
    return current_exception_error("looking up number " + e164);
  }
}

result<std::vector<phone_number>> pg_inventory_store::list_numbers(std::optional<agent_id> agent_filter,
                                                                   bool include_released) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<phone_number> out;
    const auto rows = tx.exec_params(
        std::string("SELECT ") + kNumberColumns + kNumberFrom +
            "WHERE n.account_id = $1 AND ($2::bigint IS NULL OR n.agent_id = $2) "
            "AND ($3 OR n.status = 'active') ORDER BY n.id",
        account_.value(), agent_filter ? std::optional<std::int64_t>(agent_filter->value()) : std::nullopt,
        include_released);
    for (const auto& r : rows) out.push_back(read_number(r));
    return out;
  } catch (...) {
    return current_exception_error("listing numbers");
  }
}

result<phone_number> pg_inventory_store::assign(number_id number, agent_id agent_to, bool reassign) {
  try {
    pqxx::work tx(connection_);
    // One statement: the row lock makes concurrent assignments of a free number serialise, and the loser
    // re-reads the row and finds it taken.
    auto rows = tx.exec_params(
        "UPDATE numbers SET agent_id = $3, assigned_at = now() "
        "WHERE account_id = $1 AND id = $2 AND status = 'active' AND (agent_id IS NULL OR agent_id = $3 OR "
        "$4) AND EXISTS (SELECT 1 FROM agents WHERE id = $3 AND account_id = $1 AND deleted_at IS NULL FOR SHARE) "
        "RETURNING id",
        account_.value(), number.value(), agent_to.value(), reassign);
    if (!rows.empty()) {
      tx.commit();
      return find_number(number);
    }
    tx.abort();
    auto current = find_number(number);
    if (!current) return current;
    if (current->status == number_status::released)
      return make_error(errc::conflict, "number {} is released and cannot be assigned", current->e164);
    return make_error(errc::conflict,
                      "number {} is already assigned to agent '{}'; reassign it explicitly to move it", current->e164,
                      current->agent_name);
  } catch (...) {
    return current_exception_error("assigning a number");
  }
}

template <class... Extra>
result<phone_number> pg_inventory_store::change_active(number_id number, const char* set_clause, const char* refused,
                                                       const char* what, Extra&&... extra) {
  try {
    pqxx::work tx(connection_);
    auto rows = tx.exec_params(std::string("UPDATE numbers SET ") + set_clause +
                                   " WHERE account_id = $1 AND id = $2 AND status = 'active' RETURNING id",
                               account_.value(), number.value(), std::forward<Extra>(extra)...);
    if (!rows.empty()) {
      tx.commit();
      return find_number(number);
    }
    tx.abort();
    auto current = find_number(number);
    if (!current) return current;
    return make_error(errc::conflict, "number {} {}", current->e164, refused);
  } catch (...) {
    return current_exception_error(what);
  }
}

result<phone_number> pg_inventory_store::unassign(number_id number) {
  return change_active(number, "agent_id = NULL, assigned_at = NULL", "is released", "unassigning a number");
}

result<phone_number> pg_inventory_store::release(number_id number) {
  return change_active(number,
                       "status = 'released', released_at = now(), agent_id = NULL, assigned_at = NULL",
                       "is already released", "releasing a number");
}

result<std::string> pg_inventory_store::provider_ref(number_id number) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params("SELECT provider_ref FROM numbers WHERE account_id = $1 AND id = $2",
                               account_.value(), number.value());
    if (rows.empty()) return make_error(errc::not_found, "number {} does not exist", number.value());
    return rows[0][0].as<std::string>();
  } catch (...) {
    return current_exception_error("looking up a number");
  }
}

result<std::unordered_set<std::string>> pg_inventory_store::owned_managed(
    std::span<const std::string> e164s) {
  std::unordered_set<std::string> out;
  if (e164s.empty()) return out;
  try {
    pqxx::nontransaction tx(connection_);
    for (const auto& r : tx.exec_params("SELECT e164 FROM numbers WHERE kind = 'managed' AND status = "
                                        "'active' AND e164 = ANY($1::text[])",
                                        text_array(e164s)))
      out.insert(r[0].as<std::string>());
    return out;
  } catch (...) {
    return current_exception_error("checking owned numbers");
  }
}

result<micros> pg_inventory_store::monthly_fee(const std::string& country, number_type type) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params(
        "SELECT (monthly_fee * 1000000)::bigint FROM number_fees WHERE type = $2 AND country IN ($1, '*') "
        "ORDER BY country = '*' LIMIT 1",
        country, std::string(to_string(type)));
    if (rows.empty())
      return make_error(errc::not_found, "no monthly fee is configured for {} {} numbers", country,
                        to_string(type));
    return rows[0][0].as<std::int64_t>();
  } catch (...) {
    return current_exception_error("looking up the monthly fee");
  }
}

result<std::vector<phone_number>> pg_inventory_store::numbers_active_between(timestamp from, timestamp to) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<phone_number> out;
    for (const auto& r :
         tx.exec_params(std::string("SELECT ") + kNumberColumns + kNumberFrom +
                            "WHERE n.account_id = $1 AND n.purchased_at < to_timestamp($3::float8 / 1e6) "
                            "AND (n.released_at IS NULL OR n.released_at >= to_timestamp($2::float8 / 1e6)) "
                            "ORDER BY n.id",
                        account_.value(), to_micros(from), to_micros(to)))
      out.push_back(read_number(r));
    return out;
  } catch (...) {
    return current_exception_error("listing billable numbers");
  }
}

result<std::vector<call_usage>> pg_inventory_store::call_usage_between(timestamp from, timestamp to) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<call_usage> out;
    for (const auto& r :
         tx.exec_params("SELECT n.id, n.e164, n.kind, count(*), coalesce(sum(ceil(a.billable_ms / 60000.0)), "
                        "0)::bigint, "
                        "(coalesce(sum(a.cost), 0) * 1000000)::bigint "
                        "FROM call_attempts a JOIN numbers n ON n.id = a.number_id "
                        "WHERE n.account_id = $1 AND a.created_at >= to_timestamp($2::float8 / 1e6) "
                        "AND a.created_at < to_timestamp($3::float8 / 1e6) AND a.outcome IS NOT NULL "
                        "GROUP BY n.id ORDER BY n.id",
                        account_.value(), to_micros(from), to_micros(to))) {
      call_usage u;
      u.number = number_id{r[0].as<std::int64_t>()};
      u.e164 = r[1].as<std::string>();
      u.kind = parse_number_kind(r[2].as<std::string>()).value_or(number_kind::managed);
      u.calls = r[3].as<std::int64_t>();
      u.billed_minutes = r[4].as<std::int64_t>();
      u.carrier_cost = r[5].as<std::int64_t>();
      out.push_back(std::move(u));
    }
    return out;
  } catch (...) {
    return current_exception_error("reading call usage");
  }
}

result<micros> pg_inventory_store::per_minute_rate(const std::string& item) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params("SELECT (per_minute * 1000000)::bigint FROM call_rates WHERE item = $1", item);
    if (rows.empty()) return make_error(errc::not_found, "no per-minute rate is configured for {}", item);
    return rows[0][0].as<std::int64_t>();
  } catch (...) {
    return current_exception_error("reading per-minute rates");
  }
}

result<std::vector<agent>> pg_inventory_store::page_agents(page_request page) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<agent> out;
    for (const auto& r : tx.exec_params(std::string("SELECT ") + kAgentColumns +
                                            " FROM agents WHERE account_id = $1 AND deleted_at IS NULL AND id > $2 "
                                            "ORDER BY id LIMIT $3",
                                        account_.value(), page.after, page.limit))
      out.push_back(read_agent(r));
    return out;
  } catch (...) {
    return current_exception_error("listing agents");
  }
}

result<agent> pg_inventory_store::update_agent(agent_id id, const std::optional<std::string>& name,
                                               const std::optional<std::string>& handoff) {
  try {
    pqxx::work tx(connection_);
    auto rows = tx.exec_params(std::string("UPDATE agents SET name = coalesce($3, name), handoff = coalesce($4, "
                                           "handoff) WHERE account_id = $1 AND id = $2 AND deleted_at IS NULL "
                                           "RETURNING ") +
                                   kAgentColumns,
                               account_.value(), id.value(), name, handoff);
    if (rows.empty()) return make_error(errc::not_found, "agent {} does not exist", id.value());
    tx.commit();
    return read_agent(rows[0]);
  } catch (const pqxx::unique_violation&) {
    return make_error(errc::conflict, "agent '{}' already exists", name.value_or(""));
  } catch (...) {
    return current_exception_error("updating an agent");
  }
}

result<void> pg_inventory_store::delete_agent(agent_id id) {
  try {
    pqxx::work tx(connection_);
    // The agent's row lock first: an assignment or a launch that names it waits for this to finish, and
    // then finds it gone.
    if (tx.exec_params("SELECT 1 FROM agents WHERE account_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
                       account_.value(), id.value())
            .empty())
      return make_error(errc::not_found, "agent {} does not exist", id.value());
    // Counted after the lock (a new statement sees what committed while it was waited for).
    auto rows = tx.exec_params(
        "SELECT (SELECT count(*) FROM numbers WHERE account_id = $1 AND agent_id = $2 AND status = 'active'), "
        "(SELECT count(*) FROM campaigns WHERE account_id = $1 AND agent_id = $2 "
        " AND state IN ('draft', 'running', 'paused'))",
        account_.value(), id.value());
    const auto numbers = rows[0][0].as<std::int64_t>();
    const auto campaigns = rows[0][1].as<std::int64_t>();
    if (numbers > 0)
      return make_error(errc::conflict, "agent {} still holds {} number(s): unassign or release them first",
                        id.value(), numbers);
    if (campaigns > 0)
      return make_error(errc::conflict,
                        "agent {} has {} campaign(s) that are not finished: cancel them or let them complete",
                        id.value(), campaigns);
    tx.exec_params0("UPDATE agents SET deleted_at = now() WHERE id = $1", id.value());
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("deleting an agent");
  }
}

result<std::vector<phone_number>> pg_inventory_store::page_numbers(const number_filter& filter,
                                                                   page_request page) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<phone_number> out;
    const auto rows = tx.exec_params(
        std::string("SELECT ") + kNumberColumns + kNumberFrom +
            "WHERE n.account_id = $1 AND n.id > $2 AND ($3::bigint IS NULL OR n.agent_id = $3) "
            "AND ($4::text IS NULL OR n.status = $4) AND ($5::text IS NULL OR n.type = $5) "
            "AND ($6::text IS NULL OR n.country = $6) ORDER BY n.id LIMIT $7",
        account_.value(), page.after,
        filter.agent ? std::optional<std::int64_t>(filter.agent->value()) : std::nullopt,
        filter.status ? std::optional<std::string>(to_string(*filter.status)) : std::nullopt,
        filter.type ? std::optional<std::string>(to_string(*filter.type)) : std::nullopt, filter.country,
        page.limit);
    for (const auto& r : rows) out.push_back(read_number(r));
    return out;
  } catch (...) {
    return current_exception_error("listing numbers");
  }
}

result<phone_number> pg_inventory_store::update_limits(number_id number, std::optional<int> max_concurrent_calls,
                                                       std::optional<double> max_cps) {
  return change_active(number, "max_concurrent_calls = coalesce($3, max_concurrent_calls), max_cps = coalesce($4, max_cps)",
                       "is released: its limits cannot change", "updating a number's limits", max_concurrent_calls,
                       max_cps);
}

}  // namespace dialer::pg
