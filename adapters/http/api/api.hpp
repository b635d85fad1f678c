#pragma once
// The HTTP API the platform calls (/v1, JSON in and out), with /healthz, /readyz and /metrics, on the
// http_server. Every /v1 request carries an API key (Authorization: Bearer dk_...) and sees only that key's
// account: another account's numbers, agents and campaigns are 404, as if they did not exist. POSTs accept an
// Idempotency-Key (the first answer is replayed to a retry with the same body, across processes and
// restarts). Each key has a request rate (429 beyond it, with Retry-After). Errors share one shape:
// {"error": {"code", "message", "details"}}; bad input is a 4xx, never a 500.
//
// What it must never do: block an I/O thread (every route that touches the database runs on the worker pool,
// one connection per worker), log or echo an API key, or answer for another account.
//
// Threading: construct, start() and stop() on one owner thread; routes run on the worker threads, each with
// its own api_backend; the I/O threads only parse, route and answer.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapters/http/server.hpp"
#include "adapters/webhooks/http_sender.hpp"
#include "engine/campaign_service.hpp"
#include "engine/inbound_routes.hpp"
#include "engine/inventory.hpp"
#include "engine/ports/api_store.hpp"
#include "engine/ports/carrier_callbacks.hpp"
#include "engine/ports/clock.hpp"
#include "engine/ports/webhooks.hpp"

namespace prometheus {
class Registry;
}

namespace dialer::http {

// What one worker thread uses: its own database connection, and the services scoped to one account (the
// references stay valid until the next call of the same method on this backend).
class api_backend {
 public:
  virtual ~api_backend() = default;
  [[nodiscard]] virtual api_store& store() = 0;
  [[nodiscard]] virtual inventory_service& inventory(account_id account) = 0;
  [[nodiscard]] virtual campaign_service& campaigns(account_id account) = 0;
  [[nodiscard]] virtual webhook_endpoint_store& webhooks() = 0;
  [[nodiscard]] virtual carrier_callback_inbox& callbacks() = 0;
  // The database answers (readiness).
  [[nodiscard]] virtual result<void> ping() = 0;
};

// Makes a worker's backend (connects). Called on the worker thread, again after a failure.
using backend_factory = std::function<result<std::unique_ptr<api_backend>>()>;

struct api_options {
  std::string listen = "127.0.0.1:8080";
  int io_threads = 0;               // 0: half the cores, at least one (the rest: engine, PostgreSQL, workers)
  int workers = 4;                  // database connections of the API
  std::size_t queue_limit = 4096;   // requests waiting for a worker; beyond: 503
  server_limits limits;
  double key_rate_per_s = 100;      // requests per second per API key (per process)
  double key_burst = 200;
  std::chrono::seconds idempotency_hold{60};        // a request being served holds its key this long at most
  std::chrono::hours idempotency_retention{24};     // answers are replayed this long
  std::vector<std::string> carriers{"simulated"};   // carrier names a campaign may use (the registry's)
  webhooks::address_policy webhook_allow;            // address literals a webhook URL may name (DIALER_WEBHOOK_ALLOW)
  // Inbound routing: the number -> agent table (null: not served), what carriers call (https://host[:port],
  // no trailing slash: Twilio signs the full URL), and the carriers' verification secrets.
  const route_table* routes = nullptr;
  std::string public_base_url;
  std::string twilio_auth_token;
  std::string telnyx_public_key;  // base64 of the 32-byte ed25519 key
  std::chrono::seconds telnyx_tolerance{300};
  // Issues a Call Control command for an inbound Telnyx call (POST /v2/calls/{id}/actions/{action} with `body`):
  // Telnyx ignores the webhook's answer, so the call is answered, transferred or rejected through its REST API.
  // Queues and returns (any I/O thread). Empty: the process holds no Telnyx API key; the route still answers.
  std::function<void(const std::string& call_control_id, const std::string& action, const nlohmann::json& body)>
      telnyx_command;
  std::function<void()> before_scrape;  // refreshes the gauges /metrics shows (any thread)
  std::string metrics_token;            // when set, /metrics wants it as a bearer token (it names every number)
};

class api_server {
 public:
  api_server(api_options options, backend_factory backends, const clock& clk, prometheus::Registry& metrics);
  ~api_server();
  api_server(const api_server&) = delete;
  api_server& operator=(const api_server&) = delete;

  // Binds and starts serving; returns the bound port.
  [[nodiscard]] result<std::uint16_t> start();
  // Stops accepting, lets the requests in flight finish (up to `drain`), then stops. Idempotent.
  void stop(std::chrono::milliseconds drain);

  // The routes as (method, path pattern): the OpenAPI description must list exactly these.
  [[nodiscard]] static std::vector<std::pair<std::string, std::string>> routes();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace dialer::http
