#include "adapters/postgres/pg_link.hpp"

#include <pqxx/except>

namespace dialer::pg {

pqxx::connection& pg_link::get() {
  if (!connection_ || !connection_->is_open()) {
    connection_.reset();
    auto c = connect(url_, options_);
    if (!c) throw pqxx::broken_connection(c.error().message);
    connection_ = std::move(*c);
    ++generation_;
  }
  return *connection_;
}

error pg_link::fail(const std::string& what) {
  try {
    throw;
  } catch (const pqxx::broken_connection&) {
    connection_.reset();
    return current_exception_error(what);
  } catch (...) {
    return current_exception_error(what);
  }
}

}  // namespace dialer::pg
