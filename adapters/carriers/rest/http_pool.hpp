#pragma once
// The HTTPS client of the REST carriers (Twilio, Telnyx): one origin, a keep-alive pool of connections, and
// asynchronous requests, so that the requests in flight reach calls-per-second x round-trip time without a thread
// or a connection per call. Built on Boost.Beast and OpenSSL (already the server's and the webhooks' stack: one
// event loop model, no new dependency; libcurl's multi interface would add a second one).
//
// - TLS: the peer is verified against the system's CA store (or `ca_file`), with SNI and a host-name check.
// - Keep-alive: up to `max_connections` open, each carrying one request at a time (HTTP/1.1 without pipelining: a
//   carrier's API answers in order anyway, and parallel connections do not stall behind one slow answer). An idle
//   connection the server has closed is noticed before it is reused (a peek at the socket) and dropped.
// - Deadlines: one per request, from the moment it is queued to the last byte of the answer.
// - Failures say whether the request can have reached the server: `not_sent` (no connection could be made, the
//   deadline passed while it waited for one, the pool is stopping) means nothing was placed; `lost` (a timeout, a
//   reset or a malformed answer after the first byte was written) means the server may have acted on it. A carrier
//   adapter turns `lost` into `indeterminate`, never into a blind retry.
//
// Threading: send() and send_sync() from any thread; handlers run on the pool's own I/O thread and must not block.
// send_sync() must not be called from a handler. stop() from the owner; the destructor stops.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/result.hpp"

namespace dialer::carriers::rest {

struct pool_options {
  std::string base_url;                          // https://api.twilio.com (scheme, host, optional port; no path)
  std::size_t max_connections = 64;              // open at once
  std::chrono::milliseconds timeout{15'000};     // per request, queueing included
  std::chrono::seconds idle_close{45};           // an idle connection is closed after this (servers close first)
  std::string ca_file;                           // PEM of trusted CAs (empty: the system's store)
  std::size_t max_response_body = 4 * 1024 * 1024;
  std::size_t max_queued = 100'000;              // requests waiting for a connection; beyond: not_sent at once
  std::string user_agent = "dialer/1";
};

enum class failure : std::uint8_t {
  none,      // an answer arrived (any status)
  not_sent,  // nothing reached the server
  lost,      // the request may have reached the server; its answer did not come back
};

struct http_response {
  failure fail = failure::none;
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::optional<std::chrono::seconds> retry_after;  // Retry-After; on a 429 without one, x-ratelimit-reset
  std::string error;  // why, when fail != none (never contains the request's credentials)
};

struct http_request {
  std::string method = "GET";  // GET, POST, DELETE, PATCH
  std::string target;          // path and query, starting with '/'
  std::string content_type;    // for a body
  std::string body;
  std::string authorization;   // the Authorization header's value (Basic ..., Bearer ...)
  std::vector<std::pair<std::string, std::string>> headers;
};

using response_handler = std::function<void(http_response&&)>;

struct pool_statistics {
  std::uint64_t requests = 0;
  std::uint64_t connections_opened = 0;
  std::uint64_t reused = 0;          // requests sent on a connection that had carried one before
  std::uint64_t stale_dropped = 0;   // idle connections found closed by the server
  std::size_t open = 0;
  std::size_t queued = 0;
};

class http_pool {
 public:
  // invalid_input for a base URL that is not http(s)://host[:port].
  [[nodiscard]] static result<std::unique_ptr<http_pool>> make(pool_options options);
  ~http_pool();
  http_pool(const http_pool&) = delete;
  http_pool& operator=(const http_pool&) = delete;

  // Queues the request; `done` runs once on the pool's thread with the answer or the failure. Never blocks.
  void send(http_request request, response_handler done) noexcept;
  // Sends and waits for the answer (for reconciliation lookups). Not from a handler.
  [[nodiscard]] http_response send_sync(http_request request);

  // Fails what is queued (not_sent), closes every connection, joins the thread. Idempotent.
  void stop() noexcept;

  [[nodiscard]] pool_statistics statistics() const;
  [[nodiscard]] const std::string& base_url() const noexcept;

 private:
  struct impl;
  explicit http_pool(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// "Basic " + base64(user:password).
[[nodiscard]] std::string basic_authorization(std::string_view user, std::string_view password);

}  // namespace dialer::carriers::rest
