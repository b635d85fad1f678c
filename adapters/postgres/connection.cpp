#include "adapters/postgres/connection.hpp"

#include <libpq-fe.h>
#include <map>
#include <pqxx/pqxx>

#include "adapters/postgres/embedded_cluster.hpp"

namespace dialer::pg {

namespace {

std::string conninfo_value(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

result<std::string> connection_string(const std::string& url, connect_options options) {
  if (auto r = validate_database_url(url); !r) return std::move(r).error();
  char* message = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &message);
  if (!parsed) {
    if (message) PQfreemem(message);
    return make_error(errc::invalid_input, "invalid database URL '{}'", url);
  }
  std::string out;
  std::string server_options;
  // Defaults the URL may override: keepalives after 10 s idle, every 5 s, 3 lost = dead; unacknowledged data
  // for 20 s = dead.
  std::map<std::string, std::string> settings{{"keepalives", "1"},
                                              {"keepalives_idle", "10"},
                                              {"keepalives_interval", "5"},
                                              {"keepalives_count", "3"},
                                              {"tcp_user_timeout", "20000"}};
  for (auto* o = parsed; o->keyword; ++o) {
    if (!o->val) continue;
    if (std::string_view(o->keyword) == "options") server_options = o->val;
    else settings[o->keyword] = o->val;
  }
  PQconninfoFree(parsed);
  if (options.statement_timeout.count() > 0)
    server_options += fmt::format("{}-c statement_timeout={}", server_options.empty() ? "" : " ",
                                  options.statement_timeout.count());
  if (!server_options.empty()) settings["options"] = server_options;
  for (const auto& [key, value] : settings) out += (out.empty() ? "" : " ") + key + "=" + conninfo_value(value);
  return out;
}

result<std::unique_ptr<pqxx::connection>> connect(const std::string& url, connect_options options) {
  auto conninfo = connection_string(url, options);
  if (!conninfo) return std::move(conninfo).error();
  try {
    auto c = std::make_unique<pqxx::connection>(*conninfo);
    return c;
  } catch (const std::exception& e) {
    std::string why = e.what();
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return make_error(errc::unavailable, "cannot connect to the database: {}", why);
  }
}

error current_exception_error(const std::string& what) {
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return make_error(errc::unavailable, "{}: database connection lost: {}", what, e.what());
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    if (state == "23505") return make_error(errc::conflict, "{}: already exists", what);
    if (state.rfind("23", 0) == 0) return make_error(errc::conflict, "{}: {}", what, e.what());
    if (state == "40001" || state == "40P01") return make_error(errc::unavailable, "{}: {}", what, e.what());
    return make_error(errc::internal, "{}: {}", what, e.what());
  } catch (const std::exception& e) {
    return make_error(errc::internal, "{}: {}", what, e.what());
  }
}

}  // namespace dialer::pg
