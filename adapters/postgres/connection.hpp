#pragma once
// Opening connections and turning libpqxx exceptions into result errors at the adapter boundary.

#include <chrono>
#include <memory>
#include <pqxx/connection>
#include <string>

#include "engine/result.hpp"

namespace dialer::pg {

// How a connection behaves once open. Every connection has TCP keepalives and a TCP user timeout, so that a
// server that stops answering (a dead host, a cut network) is noticed in seconds instead of hours.
struct connect_options {
  // Statements running longer are cancelled by the server (0: no limit). The engine's connections set one
  // well below the lease, so that a hung statement cannot hold a heartbeat past the lease it renews.
  std::chrono::milliseconds statement_timeout{0};
};

// The engine's connections: statement timeout of 5 s (a third of the default 15 s lease).
inline constexpr connect_options engine_connection{std::chrono::milliseconds(5000)};

// Connects and checks the server answers. errc::invalid_input for a malformed URL, errc::unavailable when
// the server cannot be reached.
[[nodiscard]] result<std::unique_ptr<pqxx::connection>> connect(const std::string& url, connect_options options = {});

// The URL (a postgresql:// URI or key=value pairs) as key=value pairs with the keepalive, user-timeout and
// statement-timeout settings added. Pure; exposed for tests.
[[nodiscard]] result<std::string> connection_string(const std::string& url, connect_options options);

// Maps the exception being handled (call inside a catch block) to an error; `what` names the operation.
[[nodiscard]] error current_exception_error(const std::string& what);

}  // namespace dialer::pg
