#pragma once
// Keeps a route_table coherent with the database: LISTEN dialer_numbers (migration 8 announces every number
// that is bought, imported, assigned, reassigned, unassigned or released, and every number of an agent whose
// hand-off changes or that is deleted), a full load first, then a reload of each announced number. When the
// connection is lost it reconnects (backing off on the clock) and loads everything again, so an announcement
// missed meanwhile cannot leave a stale route.
//
// Threading: start() and stop() from the owner thread; the feed has its own thread and connection.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "engine/inbound_routes.hpp"
#include "engine/ports/clock.hpp"

namespace dialer::pg {

class pg_route_feed {
 public:
  pg_route_feed(std::string database_url, route_table& table, const clock& clk);
  ~pg_route_feed();
  pg_route_feed(const pg_route_feed&) = delete;
  pg_route_feed& operator=(const pg_route_feed&) = delete;

  void start();
  void stop();
  // Full loads done (the first, and one after each reconnection).
  [[nodiscard]] std::int64_t full_loads() const noexcept { return full_loads_.load(); }

 private:
  void run();
  std::string url_;
  route_table& table_;
  const clock& clock_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> full_loads_{0};
  std::thread thread_;
};

}  // namespace dialer::pg
