#include "adapters/postgres/connection.hpp"

#include <pqxx/pqxx>

#include "adapters/postgres/embedded_cluster.hpp"

namespace dialer::pg {

result<std::unique_ptr<pqxx::connection>> connect(const std::string& url) {
  if (auto r = validate_database_url(url); !r) return std::move(r).error();
  try {
    auto c = std::make_unique<pqxx::connection>(url);
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
