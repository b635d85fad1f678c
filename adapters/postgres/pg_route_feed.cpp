#include "adapters/postgres/pg_route_feed.hpp"

#include <pqxx/pqxx>
#include <set>
#include <spdlog/spdlog.h>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {

namespace {

constexpr const char* kChannel = "dialer_numbers";
constexpr const char* kRouteQuery =
    "SELECT n.id, n.account_id, n.e164, coalesce(a.id, 0), coalesce(a.name, ''), coalesce(a.handoff, ''), "
    "n.kind = 'managed' "
    "FROM numbers n LEFT JOIN agents a ON a.id = n.agent_id AND a.deleted_at IS NULL WHERE n.status = 'active' ";

std::vector<inbound_route> read_routes(const pqxx::result& rows) {
  std::vector<inbound_route> out;
  out.reserve(rows.size());
  for (const auto& r : rows)
    out.push_back({number_id{r[0].as<std::int64_t>()}, account_id{r[1].as<std::int64_t>()}, r[2].as<std::string>(),
                   agent_id{r[3].as<std::int64_t>()}, r[4].as<std::string>(), r[5].as<std::string>(),
                   r[6].as<bool>()});
  return out;
}

class announcements final : public pqxx::notification_receiver {
 public:
  announcements(pqxx::connection_base& c, std::set<std::string>& heard)
      : pqxx::notification_receiver(c, kChannel), heard_(heard) {}
  void operator()(const std::string& payload, int) override { heard_.insert(payload); }

 private:
  std::set<std::string>& heard_;
};

}  // namespace

pg_route_feed::pg_route_feed(std::string database_url, route_table& table, const clock& clk)
    : url_(std::move(database_url)), table_(table), clock_(clk) {}

pg_route_feed::~pg_route_feed() { stop(); }

void pg_route_feed::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void pg_route_feed::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void pg_route_feed::run() {
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    try {
      auto c = connect(url_, connect_options{std::chrono::milliseconds(10'000)});
      if (!c) throw std::runtime_error(c.error().message);
      pqxx::nontransaction(**c).exec0("SET application_name = 'dialer route feed'");  // found in pg_stat_activity
      std::set<std::string> heard;
      announcements listening(**c, heard);
      {
        // LISTEN is in place before the full load: a change committed meanwhile is heard, and reloaded after.
        pqxx::nontransaction tx(**c);
        table_.replace_all(read_routes(tx.exec(kRouteQuery)));
      }
      full_loads_.fetch_add(1);
      backoff = std::chrono::milliseconds(100);
      while (!stopping_) {
        // Wakes at a notification, or every 200 ms to see whether it should stop.
        (void)(*c)->await_notification(0, 200'000);
        if (heard.empty()) continue;
        std::set<std::string> batch;
        batch.swap(heard);
        array_literal numbers;
        for (const auto& e : batch) numbers.add(std::string_view(e));
        pqxx::nontransaction tx(**c);
        auto rows = read_routes(tx.exec_params(std::string(kRouteQuery) + "AND n.e164 = ANY($1::text[])", numbers.str()));
        for (const auto& e164 : batch) {
          std::vector<inbound_route> mine;
          for (const auto& r : rows)
            if (r.e164 == e164) mine.push_back(r);
          table_.replace_number(e164, mine);
        }
      }
    } catch (const std::exception& e) {
      if (stopping_) break;
      spdlog::warn("inbound routes: the feed lost the database ({}); reloading after reconnecting", e.what());
      for (auto slept = std::chrono::milliseconds(0); slept < backoff && !stopping_; slept += std::chrono::milliseconds(100))
        clock_.sleep_for(std::chrono::milliseconds(100));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

}  // namespace dialer::pg
