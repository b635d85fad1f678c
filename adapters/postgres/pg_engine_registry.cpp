#include "adapters/postgres/pg_engine_registry.hpp"

#include <unistd.h>
#include <charconv>
#include <pqxx/pqxx>

#include "adapters/postgres/campaign_rows.hpp"
#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/number_rows.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {

class pg_engine_registry::listener final : public pqxx::notification_receiver {
 public:
  listener(pqxx::connection_base& c, std::vector<campaign_id>& heard)
      : pqxx::notification_receiver(c, kCampaignChannel), heard_(heard) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override {
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), id);
    if (ec == std::errc{} && end == payload.data() + payload.size() && id > 0) heard_.emplace_back(id);
  }

 private:
  std::vector<campaign_id>& heard_;
};

pg_engine_registry::pg_engine_registry(pg_link link, std::string engine_id)
    : link_(std::move(link)), engine_id_(std::move(engine_id)) {}

pg_engine_registry::~pg_engine_registry() = default;

result<void> pg_engine_registry::heartbeat(std::chrono::milliseconds lease) {
  try {
    pqxx::work tx(conn());
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    tx.exec_params0(
        "INSERT INTO engines (id, host, pid, expires_at) VALUES ($1, $2, $3, now() + $4 * interval '1 "
        "millisecond') "
        "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at",
        engine_id_, std::string(host), static_cast<int>(::getpid()),
        static_cast<std::int64_t>(lease.count()));
    tx.commit();
    return ok();
  } catch (...) {
    return lost("renewing the engine's registration");
  }
}

result<void> pg_engine_registry::deregister() {
  try {
    pqxx::work tx(conn());
    tx.exec_params0("DELETE FROM engines WHERE id = $1",
                    engine_id_);  // engine_numbers, campaign_shares cascade
    tx.commit();
    return ok();
  } catch (...) {
    return lost("removing the engine's registration");
  }
}

result<std::vector<campaign_brief>> pg_engine_registry::campaigns(std::span<const campaign_id> only,
                                                                  std::span<const campaign_id> watched) {
  try {
    array_literal only_arr, watched_arr;
    for (auto id : only) only_arr.add(id.value());
    for (auto id : watched) watched_arr.add(id.value());
    pqxx::nontransaction tx(conn());
    std::vector<campaign_brief> out;
    for (const auto& r : tx.exec_params(
             "SELECT id, state FROM campaigns WHERE (state = 'running' AND (cardinality($1::bigint[]) = 0 "
             "OR id = ANY($1::bigint[]))) OR id = ANY($2::bigint[]) ORDER BY id",
             only_arr.str(), watched_arr.str()))
      out.push_back({campaign_id{r[0].as<std::int64_t>()},
                     parse_campaign_state(r[1].as<std::string>()).value_or(campaign_state::draft)});
    return out;
  } catch (...) {
    return lost("reading the campaigns to run");
  }
}

result<std::vector<campaign_id>> pg_engine_registry::changes() {
  try {
    auto& c = conn();
    if (!listener_ || listener_generation_ != link_.generation()) {
      // Subscribed first now, or again on a new connection: what was announced in between was missed, so this
      // reports a change of every campaign (an invalid id): the engine reads them all.
      const bool again = listener_generation_ != 0;
      listener_ = std::make_unique<listener>(c, heard_);
      listener_generation_ = link_.generation();
      if (again) heard_.emplace_back();
    }
    c.get_notifs();  // never blocks: delivers what the server has sent
    return std::exchange(heard_, {});
  } catch (...) {
    return lost("reading campaign changes");
  }
}

pqxx::connection& pg_engine_registry::conn() {
  // The listener refers to the connection: it goes before a lost connection is replaced (whichever call
  // notices).
  if (link_.lost()) listener_.reset();
  return link_.get();
}

error pg_engine_registry::lost(const std::string& what) {
  // A lost connection goes (link_.fail), and the listener first: it refers to it.
  try {
    throw;
  } catch (const pqxx::broken_connection&) {
    listener_.reset();
  } catch (...) {
  }
  return link_.fail(what);
}

result<campaign_record> pg_engine_registry::load(campaign_id id) {
  try {
    return load_campaign_record(conn(), account_id{}, id);
  } catch (...) {
    return lost("loading campaign");
  }
}

result<std::vector<phone_number>> pg_engine_registry::numbers_of(const campaign_record& campaign) {
  try {
    pqxx::nontransaction tx(conn());
    std::vector<phone_number> out;
    if (!campaign.numbers.empty()) {
      array_literal ids;
      for (auto n : campaign.numbers) ids.add(n.value());
      for (const auto& r : tx.exec_params(std::string("SELECT ") + kNumberColumns + kNumberFrom +
                                              "WHERE n.id = ANY($1::bigint[]) ORDER BY n.id",
                                          ids.str()))
        out.push_back(read_number(r));
    } else {
      for (const auto& r :
           tx.exec_params(std::string("SELECT ") + kNumberColumns + kNumberFrom +
                              "WHERE n.account_id = $1 AND n.agent_id = $2 AND n.status = 'active' "
                              "ORDER BY n.id",
                          campaign.account.value(), campaign.agent.value()))
        out.push_back(read_number(r));
    }
    return out;
  } catch (...) {
    return lost("reading the campaign's numbers");
  }
}

result<campaign_state> pg_engine_registry::transition(campaign_id id, std::span<const campaign_state> from,
                                                      campaign_state to) {
  try {
    return transition_campaign(conn(), account_id{}, id, from, to);
  } catch (...) {
    return lost("changing campaign state");
  }
}

result<campaign_state> transition_campaign(pqxx::connection& c, account_id account, campaign_id id,
                                           std::span<const campaign_state> from, campaign_state to) {
  try {
    pqxx::work tx(c);
    auto rows = tx.exec_params(
        "SELECT state, name FROM campaigns WHERE ($1::bigint = 0 OR account_id = $1) AND id = $2 "
        "FOR UPDATE",
        account.value(), id.value());
    if (rows.empty()) return make_error(errc::not_found, "campaign {} does not exist", id.value());
    const auto current = parse_campaign_state(rows[0][0].as<std::string>()).value_or(campaign_state::draft);
    if (current == to) return current;
    if (std::find(from.begin(), from.end(), current) == from.end())
      return make_error(errc::conflict, "campaign '{}' is {} and cannot become {}",
                        rows[0][1].as<std::string>(), to_string(current), to_string(to));
    tx.exec_params0(
        "UPDATE campaigns SET state = $2, updated_at = now(), "
        "started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END, "
        "finished_at = CASE WHEN $2 IN ('completed', 'cancelled') THEN now() ELSE finished_at END WHERE id = "
        "$1",
        id.value(), std::string(to_string(to)));
    tx.commit();
    return to;
  } catch (...) {
    return current_exception_error("changing campaign state");
  }
}

}  // namespace dialer::pg
