#include "adapters/http/api/api.hpp"

#include <boost/beast/http/field.hpp>
#include <condition_variable>
#include <date/date.h>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "adapters/http/api/api_internal.hpp"
#include "adapters/http/api_key.hpp"

#include <openssl/crypto.h>

namespace dialer::http {

namespace bhttp = boost::beast::http;

// ---- Errors and request parts ----

api_error to_api_error(const error& e) {
  const auto code = [&](std::string fallback) { return e.reason.empty() ? fallback : e.reason; };
  switch (e.code) {
    case errc::invalid_input: return {422, code("invalid_input"), e.message};
    case errc::not_found: return {404, code("not_found"), e.message};
    case errc::conflict: return {409, code("conflict"), e.message};
    case errc::unavailable: return {503, code("unavailable"), e.message};
    case errc::launch_failed: return {422, code("launch_failed"), e.message};
    case errc::internal: break;
  }
  spdlog::error("api: internal error: {}", e.message);
  return {500, "internal", "internal error"};
}

namespace {
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

std::size_t json_depth(std::string_view text) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    else if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return deepest;
}

std::int64_t api_call::id_param(std::string_view name, std::string_view what) const {
  for (const auto& [k, v] : params)
    if (k == name) {
      if (!all_digits(v) || v.size() > 18) throw api_error(404, "not_found", fmt::format("no such {}", what));
      return std::stoll(v);
    }
  throw api_error(500, "internal", fmt::format("route has no parameter {}", name));
}

std::optional<std::string> api_call::query_value(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return v;
  return std::nullopt;
}

std::optional<std::int64_t> api_call::query_int(std::string_view name, std::int64_t lo, std::int64_t hi) const {
  auto v = query_value(name);
  if (!v) return std::nullopt;
  if (!all_digits(*v) || v->size() > 18)
    throw api_error(400, "invalid_parameter", fmt::format("query parameter {} must be a whole number", name),
                    {{"parameter", name}});
  const auto n = std::stoll(*v);
  if (n < lo || n > hi)
    throw api_error(400, "invalid_parameter", fmt::format("query parameter {} must be from {} to {}", name, lo, hi),
                    {{"parameter", name}});
  return n;
}

page_request api_call::page() const {
  page_request p;
  p.limit = static_cast<int>(query_int("limit", 1, 1000).value_or(50));
  if (auto c = query_value("cursor")) {
    if (!all_digits(*c) || c->size() > 18)
      throw api_error(400, "invalid_parameter", "cursor is not one this API gave out", {{"parameter", "cursor"}});
    p.after = std::stoll(*c);
  }
  return p;
}

nlohmann::json api_call::json_body(std::initializer_list<std::string_view> allowed, bool body_optional,
                                   bool any_field) const {
  const auto& body = req.body();
  if (body.empty()) {
    if (body_optional) return nlohmann::json::object();
    throw api_error(400, "malformed_json", "the request needs a JSON object as its body");
  }
  const auto type_field = req[bhttp::field::content_type];
  const std::string_view type(type_field.data(), type_field.size());
  const auto media = type.substr(0, type.find(';'));
  if (!(media == "application/json" || (media.size() > 5 && media.substr(media.size() - 5) == "+json")))
    throw api_error(415, "unsupported_media_type",
                    fmt::format("the body must be application/json, not '{}'", std::string(media)));
  if (json_depth(body) > kMaxJsonDepth)
    throw api_error(422, "invalid_input", fmt::format("the body nests deeper than {} levels", kMaxJsonDepth));
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_discarded()) throw api_error(400, "malformed_json", "the body is not valid JSON");
  if (!parsed.is_object()) throw api_error(422, "invalid_input", "the body must be a JSON object");
  if (any_field) return parsed;
  for (const auto& [k, v] : parsed.items()) {
    (void)v;
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
      throw api_error(422, "invalid_input", fmt::format("unknown field '{}'", k), {{"field", k}});
  }
  return parsed;
}

namespace {
template <class T, class Check>
std::optional<T> field(const nlohmann::json& body, std::string_view name, bool required, Check ok,
                       std::string_view kind) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required)
      throw api_error(422, "invalid_input", fmt::format("field '{}' is required", name), {{"field", name}});
    return std::nullopt;
  }
  if (!ok(*it))
    throw api_error(422, "invalid_input", fmt::format("field '{}' must be {}", name, kind), {{"field", name}});
  return it->template get<T>();
}
}  // namespace

std::optional<std::string> string_field(const nlohmann::json& body, std::string_view name, bool required) {
  return field<std::string>(body, name, required, [](const auto& v) { return v.is_string(); }, "a string");
}
std::optional<std::int64_t> int_field(const nlohmann::json& body, std::string_view name, bool required) {
  return field<std::int64_t>(body, name, required, [](const auto& v) { return v.is_number_integer(); },
                             "a whole number");
}
std::optional<double> number_field(const nlohmann::json& body, std::string_view name, bool required) {
  return field<double>(body, name, required, [](const auto& v) { return v.is_number(); }, "a number");
}
std::optional<bool> bool_field(const nlohmann::json& body, std::string_view name, bool required) {
  return field<bool>(body, name, required, [](const auto& v) { return v.is_boolean(); }, "true or false");
}

// ---- The server ----

namespace {

// A key's request rate: GCRA (one timestamp per key), in the clock's monotonic time.
class key_rate_limiter {
 public:
  key_rate_limiter(double rate, double burst)
      : interval_(static_cast<std::int64_t>(1e9 / std::max(rate, 1e-3))),
        tolerance_(static_cast<std::int64_t>((std::max(burst, 1.0) - 1) * static_cast<double>(interval_))) {}
  // 0 when allowed; else the nanoseconds until the next request would be.
  std::int64_t admit(const sha256_digest& key, std::int64_t now) {
    std::lock_guard lock(mutex_);
    std::string k(reinterpret_cast<const char*>(key.data()), key.size());
    auto& tat = tat_[k];
    const auto earliest = tat - tolerance_;
    if (now < earliest) return earliest - now;
    tat = std::max(tat, now) + interval_;
    return 0;
  }

 private:
  std::int64_t interval_;
  std::int64_t tolerance_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::int64_t> tat_;
};

std::string serialize(const reply& r) { return r.body.is_null() ? std::string{} : r.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

struct api_server::impl {
  impl(api_options o, backend_factory b, const clock& c, prometheus::Registry& m)
      : options(std::move(o)),
        backends(std::move(b)),
        clk(c),
        registry(m),
        requests(prometheus::BuildCounter()
                     .Name("dialer_http_requests_total")
                     .Help("HTTP requests answered, by route, method and status")
                     .Register(m)),
        latency(prometheus::BuildHistogram()
                    .Name("dialer_http_request_duration_seconds")
                    .Help("Time from a parsed request to its answer, by route")
                    .Register(m)),
        inbound(prometheus::BuildCounter()
                    .Name("dialer_inbound_calls_total")
                    .Help("Inbound calls by carrier and result: routed, rejected (no agent), bad_signature, unconfigured")
                    .Register(m)),
        connections_open(prometheus::BuildGauge()
                             .Name("dialer_http_connections_open")
                             .Help("HTTP connections open")
                             .Register(m)
                             .Add({})),
        requests_in_flight(prometheus::BuildGauge()
                               .Name("dialer_http_requests_in_flight")
                               .Help("HTTP requests from their first byte to their answer, this scrape included")
                               .Register(m)
                               .Add({})),
        limiter(options.key_rate_per_s, options.key_burst) {}

  using job = std::function<void(api_backend*)>;

  api_options options;
  backend_factory backends;
  const clock& clk;
  prometheus::Registry& registry;
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& latency;
  prometheus::Family<prometheus::Counter>& inbound;
  prometheus::Gauge& connections_open;    // read from the server's counters at each scrape
  prometheus::Gauge& requests_in_flight;
  key_rate_limiter limiter;
  api_router router;
  std::unique_ptr<http_server> server;

  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<job> queue;
  bool stopping = false;
  std::vector<std::thread> workers;

  void add_routes();
  void handle(request&& req, responder respond);
  reply run(const route_entry& route, const request& req, const path_params& params, const query_params& query,
            api_backend* backend, bool& idempotent_done);
  response to_response(const reply& r, const request& req) const;
  void count(const std::string& route, const request& req, unsigned status, std::chrono::nanoseconds started);
  void count_inbound(std::string_view carrier, std::string_view result);
  std::shared_mutex metrics_mutex;  // guards the caches below
  std::unordered_map<std::string, std::pair<prometheus::Counter*, prometheus::Histogram*>> metric_cache;
  std::unordered_map<std::string, prometheus::Counter*> inbound_cache;
  void worker_loop();
  bool enqueue(job j);
};

namespace {
response error_of(const api_error& e, unsigned version) {
  response res{static_cast<bhttp::status>(e.status), version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = nlohmann::json{{"error", {{"code", e.code}, {"message", e.message}, {"details", e.details}}}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return res;
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b{0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  return b;
}
}  // namespace

response api_server::impl::to_response(const reply& r, const request& req) const {
  response res{static_cast<bhttp::status>(r.status), req.version()};
  if (r.status != 204) {
    res.set(bhttp::field::content_type, r.content_type);
    res.body() = r.content_type == "application/json" ? serialize(r) : r.text;
  }
  for (const auto& [k, v] : r.headers) res.set(k, v);
  return res;
}

void api_server::impl::count(const std::string& route, const request& req, unsigned status,
                             std::chrono::nanoseconds started) {
  // prometheus-cpp's Family::Add builds and hashes a label map under the family's lock: done once per
  // (route, method, status), the metrics kept here after.
  // A method Beast does not know (any token parses) is "other": labels stay a bounded set.
  const std::string_view method =
      req.method() == bhttp::verb::unknown ? std::string_view("other")
                                           : std::string_view(req.method_string().data(), req.method_string().size());
  thread_local std::string key;  // reused: no allocation per request once warm
  key.assign(route);
  key += '\0';
  key.append(method);
  key += '\0';
  key += std::to_string(status);
  const std::pair<prometheus::Counter*, prometheus::Histogram*>* m = nullptr;
  {
    std::shared_lock lock(metrics_mutex);
    if (auto it = metric_cache.find(key); it != metric_cache.end()) m = &it->second;
  }
  if (!m) {
    std::unique_lock lock(metrics_mutex);
    auto& slot = metric_cache[key];
    if (!slot.first)
      slot = {&requests.Add({{"route", route}, {"method", std::string(method)}, {"status", std::to_string(status)}}),
              &latency.Add({{"route", route}}, latency_buckets())};
    m = &slot;  // unordered_map keeps its elements where they are
  }
  m->first->Increment();
  m->second->Observe(std::chrono::duration<double>(clk.monotonic() - started).count());
}

void api_server::impl::count_inbound(std::string_view carrier, std::string_view result) {
  thread_local std::string key;
  key.assign(carrier);
  key += '\0';
  key += result;
  prometheus::Counter* c = nullptr;
  {
    std::shared_lock lock(metrics_mutex);
    if (auto it = inbound_cache.find(key); it != inbound_cache.end()) c = it->second;
  }
  if (!c) {
    std::unique_lock lock(metrics_mutex);
    auto& slot = inbound_cache[key];
    if (!slot) slot = &inbound.Add({{"carrier", std::string(carrier)}, {"result", std::string(result)}});
    c = slot;
  }
  c->Increment();
}

void api_server::impl::handle(request&& req, responder respond) {
  const auto started = clk.monotonic();
  auto t = split_target(std::string_view(req.target().data(), req.target().size()));
  if (!t) {
    count("unmatched", req, 400, started);
    return respond(error_of({400, "invalid_parameter", "the query string has a malformed %-escape"}, req.version()));
  }
  // HEAD is a GET whose answer has no body (the server drops it, keeping the headers).
  auto m = router.match(req.method() == bhttp::verb::head ? bhttp::verb::get : req.method(), t->path);
  if (!m.found) {
    if (!m.allowed.empty()) {
      std::string allow;
      for (const auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
      auto res = error_of({405, "method_not_allowed", fmt::format("{} is not allowed here; allowed: {}",
                                                                  std::string(req.method_string()), allow)},
                          req.version());
      res.set(bhttp::field::allow, allow);
      count("unmatched", req, 405, started);
      return respond(std::move(res));
    }
    count("unmatched", req, 404, started);
    return respond(error_of({404, "not_found", fmt::format("no such path: {}", std::string(t->path))}, req.version()));
  }
  const auto* route = m.found;
  if (!route->handler.blocking) {
    bool unused = false;
    auto r = run(route->handler, req, m.params, t->query, nullptr, unused);
    count(route->pattern, req, r.status, started);
    auto res = to_response(r, req);
    return respond(std::move(res));
  }
  // To a worker: it owns a database connection. The request, its parts and the responder move with it.
  auto shared = std::make_shared<request>(std::move(req));
  auto params = std::make_shared<path_params>(std::move(m.params));
  auto query = std::make_shared<query_params>(std::move(t->query));
  const bool queued = enqueue([this, route, shared, params, query, respond, started](api_backend* backend) {
    bool unused = false;
    auto r = run(route->handler, *shared, *params, *query, backend, unused);
    count(route->pattern, *shared, r.status, started);
    respond(to_response(r, *shared));
  });
  if (!queued) {
    auto res = error_of({503, "overloaded", "the server has too many requests waiting; retry shortly"},
                        shared->version());
    res.set(bhttp::field::retry_after, "1");
    count(route->pattern, *shared, 503, started);
    respond(std::move(res));
  }
}

reply api_server::impl::run(const route_entry& route, const request& req, const path_params& params,
                            const query_params& query, api_backend* backend, bool& idempotent_done) {
  std::optional<account_id> account;
  std::optional<std::string> idem_key;
  try {
    if (route.blocking && !backend)
      throw api_error(503, "unavailable", "the database cannot be reached; retry shortly");
    if (route.authenticated) {
      const auto auth_field = req[bhttp::field::authorization];
      const std::string_view auth(auth_field.data(), auth_field.size());
      constexpr std::string_view bearer = "Bearer ";
      if (auth.size() <= bearer.size() || !std::equal(bearer.begin(), bearer.end(), auth.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
          }))
        throw api_error(401, "unauthenticated", "send an API key: Authorization: Bearer dk_...");
      const auto key = auth.substr(bearer.size());
      if (!looks_like_api_key(key)) throw api_error(401, "unauthenticated", "the API key is not valid");
      const auto hash = sha256(key);
      account = take(backend->store().account_of_key(hash));
      if (!account) throw api_error(401, "unauthenticated", "the API key is not valid or was revoked");
      if (const auto wait = limiter.admit(hash, clk.monotonic().count()); wait > 0) {
        api_error e(429, "rate_limited",
                    fmt::format("this API key is limited to {} requests per second", options.key_rate_per_s));
        const auto seconds = (wait + 999'999'999) / 1'000'000'000;
        e.details["retry_after_s"] = seconds;
        throw e;
      }
    }
    // Idempotency-Key on a POST: the first answer is kept and replayed.
    if (account && req.method() == bhttp::verb::post && req.count("Idempotency-Key")) {
      const auto k = std::string(req["Idempotency-Key"]);
      if (k.empty() || k.size() > 255 ||
          !std::all_of(k.begin(), k.end(), [](char c) { return c >= 0x21 && c <= 0x7e; }))
        throw api_error(400, "invalid_parameter", "Idempotency-Key must be 1-255 visible ASCII characters");
      const auto fingerprint = sha256(std::string(req.method_string()) + ' ' +
                                      std::string(req.target().data(), req.target().size()) + '\n' + req.body());
      auto d = take(backend->store().begin_idempotent(*account, k, fingerprint, options.idempotency_hold));
      if (std::holds_alternative<idempotency::mismatch>(d))
        throw api_error(422, "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request; use a new key");
      if (std::holds_alternative<idempotency::in_progress>(d))
        throw api_error(409, "idempotency_in_progress",
                        "a request with this Idempotency-Key is still being served; retry shortly");
      if (auto* r = std::get_if<idempotency::replay>(&d)) {
        reply out{static_cast<unsigned>(r->status), nlohmann::json(), {}, "application/json", {}};
        out.body = r->body.empty() ? nlohmann::json() : nlohmann::json::parse(r->body, nullptr, false);
        out.headers.emplace_back("Idempotent-Replayed", "true");
        return out;
      }
      idem_key = k;
    }
    api_call call{req, params, query, account.value_or(account_id{}), backend, clk, options,
                  [this](std::string_view carrier, std::string_view result) { count_inbound(carrier, result); }};
    reply r = route.fn(call);
    if (idem_key) {
      if (r.status < 500) (void)backend->store().finish_idempotent(*account, *idem_key, static_cast<int>(r.status), serialize(r));
      else (void)backend->store().abandon_idempotent(*account, *idem_key);
      idempotent_done = true;
    }
    return r;
  } catch (const api_error& e) {
    reply out{e.status, {{"error", {{"code", e.code}, {"message", e.message}, {"details", e.details}}}}, {},
              "application/json", {}};
    if (e.status == 429 && e.details.contains("retry_after_s"))
      out.headers.emplace_back("Retry-After", std::to_string(e.details["retry_after_s"].get<std::int64_t>()));
    if (e.status == 503) out.headers.emplace_back("Retry-After", "1");
    if (idem_key && backend) {
      // A refusal is an answer like any other; a failure a retry may fix frees the key.
      if (e.status < 500 && e.status != 429)
        (void)backend->store().finish_idempotent(*account, *idem_key, static_cast<int>(e.status), serialize(out));
      else
        (void)backend->store().abandon_idempotent(*account, *idem_key);
    }
    return out;
  } catch (const std::exception& e) {
    spdlog::error("api: {} {}: {}", std::string(req.method_string()), std::string(req.target()), e.what());
    if (idem_key && backend) (void)backend->store().abandon_idempotent(*account, *idem_key);
    return reply{500, {{"error", {{"code", "internal"}, {"message", "internal error"}, {"details", nlohmann::json::object()}}}},
                 {}, "application/json", {}};
  }
}

bool api_server::impl::enqueue(job j) {
  std::lock_guard lock(queue_mutex);
  if (stopping || queue.size() >= options.queue_limit) return false;
  queue.push_back(std::move(j));
  queue_cv.notify_one();
  return true;
}

void api_server::impl::worker_loop() {
  std::unique_ptr<api_backend> backend;
  for (;;) {
    job j;
    {
      std::unique_lock lock(queue_mutex);
      queue_cv.wait(lock, [this] { return stopping || !queue.empty(); });
      if (queue.empty()) return;
      j = std::move(queue.front());
      queue.pop_front();
    }
    if (!backend) {
      auto made = backends();
      if (made) backend = std::move(*made);
      else spdlog::warn("api: a worker cannot reach the database: {}", made.error().message);
    }
    try {
      j(backend.get());
    } catch (const std::exception& e) {
      // The job's responder answers 500 when it is dropped unanswered (http_server); the worker goes on.
      spdlog::error("api: a request failed outside its route: {}", e.what());
    }
  }
}

namespace {
// Health, readiness and metrics: no API key (a load balancer and Prometheus call them).
// `refresh` updates the server's own gauges before a scrape (empty: none, as in routes()).
void add_service_routes(api_router& router, prometheus::Registry* registry, std::function<void()> refresh) {
  // (/metrics refreshes its gauges through api_options::before_scrape first.)
  router.add(bhttp::verb::get, "/healthz",
             {[](api_call&) { return json_reply({{"status", "ok"}}); }, false, false});
  router.add(bhttp::verb::get, "/readyz", {[](api_call& c) {
                                             if (auto r = c.db().ping(); !r)
                                               throw api_error(503, "not_ready", r.error().message);
                                             return json_reply({{"status", "ready"}});
                                           },
                                           false, true});
  router.add(bhttp::verb::get, "/metrics", {[registry, refresh](api_call& c) {
                                              if (!c.options.metrics_token.empty()) {
                                                const auto got = c.req[bhttp::field::authorization];
                                                const std::string want = "Bearer " + c.options.metrics_token;
                                                if (got.size() != want.size() ||
                                                    CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0)
                                                  throw api_error(401, "unauthenticated",
                                                                  "/metrics wants the metrics token as a bearer token");
                                              }
                                              if (c.options.before_scrape) c.options.before_scrape();
                                              if (refresh) refresh();
                                              std::ostringstream out;
                                              if (registry) prometheus::TextSerializer().Serialize(out, registry->Collect());
                                              reply r;
                                              r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                                              r.text = out.str();
                                              return r;
                                            },
                                            false, false});
}
}  // namespace

void api_server::impl::add_routes() {
  add_service_routes(router, &registry, [this] {
    // On an I/O thread: the server exists while they run.
    connections_open.Set(static_cast<double>(server->counters().connections_open.load()));
    requests_in_flight.Set(static_cast<double>(server->counters().requests_in_flight.load()));
  });
  add_inventory_routes(router);
  add_campaign_routes(router);
  add_inbound_routes(router);
  add_webhook_routes(router);
}

api_server::api_server(api_options options, backend_factory backends, const clock& clk, prometheus::Registry& metrics)
    : impl_(std::make_unique<impl>(std::move(options), std::move(backends), clk, metrics)) {
  impl_->add_routes();
}

api_server::~api_server() { stop(std::chrono::milliseconds(0)); }

result<std::uint16_t> api_server::start() {
  auto* i = impl_.get();
  i->server = std::make_unique<http_server>(i->options.limits,
                                            [i](request&& req, responder respond) { i->handle(std::move(req), std::move(respond)); });
  auto port = i->server->listen(i->options.listen);
  if (!port) {
    i->server.reset();
    return port;
  }
  for (int w = 0; w < std::max(1, i->options.workers); ++w) i->workers.emplace_back([i] { i->worker_loop(); });
  int io_threads = i->options.io_threads;
  if (io_threads <= 0) io_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency() / 2));
  i->server->start(io_threads);
  return port;
}

void api_server::stop(std::chrono::milliseconds drain) {
  auto* i = impl_.get();
  if (!i->server) return;
  i->server->stop_accepting();
  (void)i->server->drain(drain);
  {
    std::lock_guard lock(i->queue_mutex);
    i->stopping = true;
    i->queue_cv.notify_all();
  }
  for (auto& w : i->workers) w.join();
  i->workers.clear();
  // Jobs still queued after a drain that timed out: answered, so that no responder outlives the server.
  for (auto& j : i->queue) j(nullptr);
  i->queue.clear();
  i->server->stop();
  i->server.reset();
}

std::vector<std::pair<std::string, std::string>> api_server::routes() {
  api_router r;  // the same registration as a live server's
  add_service_routes(r, nullptr, {});
  add_inventory_routes(r);
  add_campaign_routes(r);
  add_inbound_routes(r);
  add_webhook_routes(r);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& x : r.routes()) out.emplace_back(std::string(bhttp::to_string(x.method)), x.pattern);
  return out;
}

}  // namespace dialer::http
