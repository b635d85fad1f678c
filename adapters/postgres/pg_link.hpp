#pragma once
// A database port's connection that reopens itself after it broke: the server restarted, the network dropped
// it. libpqxx 6 reactivates a broken connection on its own only sometimes (a connection polled for
// notifications in between stays "not connected" for good), so the engine's ports do not rely on it: a call
// that finds the connection lost drops it, and the next call opens a new one with the same settings
// (statement timeout, TCP keepalives). Not thread-safe: one port, one thread.

#include <cstdint>
#include <memory>
#include <pqxx/connection>
#include <string>

#include "adapters/postgres/connection.hpp"
#include "engine/result.hpp"

namespace dialer::pg {

class pg_link {
 public:
  explicit pg_link(std::string url, connect_options options = engine_connection)
      : url_(std::move(url)), options_(options) {}

  // The connection, opened if there is none. Throws pqxx::broken_connection when it cannot be opened (inside
  // a port method's try block: fail() maps it).
  [[nodiscard]] pqxx::connection& get();
  // Inside a catch block: the error for the exception being handled, naming `what`; a lost connection is
  // dropped, so that the next get() opens a new one.
  [[nodiscard]] error fail(const std::string& what);
  // Whether the next get() opens a new connection (there is none, or it was lost): whatever refers to the
  // current one (a LISTEN receiver) must go first.
  [[nodiscard]] bool lost() const { return !connection_ || !connection_->is_open(); }
  // Bumped each time a new connection is opened (session state such as LISTEN must be set up again).
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }

 private:
  std::string url_;
  connect_options options_;
  std::unique_ptr<pqxx::connection> connection_;
  std::uint64_t generation_ = 0;
};

}  // namespace dialer::pg
