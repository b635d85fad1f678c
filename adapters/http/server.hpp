#pragma once
// An asynchronous HTTP/1.1 server on Boost.Beast: keep-alive, and bounded in everything a client controls
// (header bytes, body bytes, the time a request may take to arrive, the time a connection may sit idle, the
// number of connections), so a slow or oversized client cannot tie it up. It knows nothing of routes: each
// parsed request goes to the handler, which answers through its responder exactly once, from any thread.
// Requests the server itself refuses (too large, malformed) are answered in the API's error shape.
//
// Threading: construct, listen() and start() from the owner thread. Each I/O thread runs its own io_context
// and owns the connections handed to it (round robin at accept): a connection's handlers all run on one
// thread, so no strand and no wake-up of another thread per request. The handler runs on the connection's
// I/O thread and must not block (blocking work goes to a worker_pool, which answers through the responder);
// stop_accepting(), drain() and stop() from the owner thread. A responder must not outlive the server: stop
// whatever holds them (the worker pool) before the server is destroyed.

#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/result.hpp"

namespace dialer::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

struct server_limits {
  std::size_t header_bytes = 16 * 1024;                   // 431 beyond
  std::size_t body_bytes = 32 * 1024 * 1024;              // 413 beyond (a CSV of ~500 k contacts)
  std::chrono::milliseconds request_timeout{15'000};      // from a request's first byte to its last
  std::chrono::milliseconds idle_timeout{60'000};         // a keep-alive connection waiting for a request
  std::chrono::milliseconds write_timeout{30'000};        // a client that does not read its answer
  std::size_t max_connections = 10'000;                   // beyond: closed at once
};

// Answers one request; call it exactly once, from any thread.
using responder = std::function<void(response)>;
using request_handler = std::function<void(request&&, responder)>;

// Statistics for the owner (tests, metrics): connections and requests the server refused itself.
struct server_counters {
  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::int64_t> connections_refused{0};  // over max_connections
  std::atomic<std::int64_t> requests_in_flight{0};  // from a request's complete headers to its answer written
  std::atomic<std::int64_t> requests_refused{0};     // malformed, too large
  std::atomic<std::int64_t> timeouts{0};             // request or write timeout
};

class http_server {
 public:
  http_server(server_limits limits, request_handler handler);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds "host:port" (port 0: any free one). invalid_input for a malformed address, unavailable when the
  // port cannot be bound. Returns the bound port.
  [[nodiscard]] result<std::uint16_t> listen(const std::string& address);
  // Starts `threads` I/O threads (one io_context each); the first also accepts and sweeps.
  void start(int threads);
  // Closes the listening socket: no new connections. Requests in flight and those already on open
  // connections still finish; every answer from now on says `Connection: close`.
  void stop_accepting();
  // Waits until no request is in flight (or the timeout passes); then closes every connection.
  // Returns whether every request finished.
  bool drain(std::chrono::milliseconds timeout);
  // Stops the I/O threads and joins them. Idempotent.
  void stop();

  [[nodiscard]] const server_counters& counters() const noexcept { return counters_; }

  class session;  // one connection (server.cpp)

 private:
  friend class session;
  void accept_next();
  void sweep();  // every 100 ms: closes the connections whose wait has run out
  void session_opened(const std::shared_ptr<session>& s);
  void session_closed(session* s);
  void request_started();
  void request_finished();

  // Declared before the contexts, so destroyed after them: a session destroyed with its context's pending
  // handlers still counts and signals.
  server_limits limits_;
  request_handler handler_;
  server_counters counters_;
  std::atomic<bool> draining_{false};
  std::mutex mutex_;  // guards sessions_; in-flight count changes are signalled on idle_
  std::condition_variable idle_;
  std::vector<std::weak_ptr<session>> sessions_;

  // The other I/O threads' contexts. Destroyed after io_: a pending accept on io_ holds a socket of one of them.
  std::vector<std::unique_ptr<boost::asio::io_context>> more_io_;
  boost::asio::io_context io_;  // the first I/O thread's: the acceptor, the sweep, its share of connections
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer sweep_timer_;
  std::size_t next_io_ = 0;  // round robin of accepted connections (the accepting thread only)
  std::vector<std::thread> threads_;
};

// The API's error body: {"error": {"code": ..., "message": ..., "details": {...}}}.
[[nodiscard]] response error_response(unsigned status, std::string_view code, std::string_view message,
                                      unsigned http_version = 11, bool keep_alive = true);

}  // namespace dialer::http
