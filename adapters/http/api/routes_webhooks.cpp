// /v1/webhook_endpoints: an account's event receivers. The events themselves are written by the database with
// each change (migration 10) and delivered by the serving engines (engine/webhook_dispatcher); these routes manage
// where they go, show how delivery fares, and replay what failed.
#include <algorithm>

#include "adapters/http/api/api_internal.hpp"
#include "adapters/http/signatures.hpp"
#include "adapters/webhooks/http_sender.hpp"

namespace dialer::http {

namespace bhttp = boost::beast::http;

namespace {

using namespace std::chrono_literals;
constexpr auto kMaxOverlap = std::chrono::hours(24 * 7);
constexpr int kMaxEndpoints = 20;

nlohmann::json maybe_time(const std::optional<timestamp>& t) {
  return t ? nlohmann::json(views::iso8601(*t)) : nlohmann::json();
}

// A page's envelope: next_cursor is the last item's key when the page is full.
nlohmann::json page_json(nlohmann::json data, int limit, std::int64_t last_key) {
  const bool full = static_cast<int>(data.size()) == limit && limit > 0;
  return {{"data", std::move(data)}, {"next_cursor", full ? nlohmann::json(std::to_string(last_key)) : nlohmann::json()}};
}

nlohmann::json endpoint_json(const webhook_endpoint_record& e) {
  nlohmann::json j{{"id", e.id},
                   {"url", e.url},
                   {"description", e.description},
                   {"event_types", e.event_types},
                   {"enabled", e.enabled},
                   {"disabled_reason", e.disabled_reason.empty() ? nlohmann::json() : nlohmann::json(e.disabled_reason)},
                   {"max_in_flight", e.max_in_flight},
                   {"previous_secret_expires_at", maybe_time(e.previous_secret_until)},
                   {"deliveries", {{"pending", e.pending}, {"delivered", e.delivered}, {"failed", e.failed}}},
                   {"created_at", views::iso8601(e.created_at)},
                   {"updated_at", views::iso8601(e.updated_at)}};
  if (!e.secret.empty()) j["secret"] = e.secret;  // shown once: at creation and at rotation
  return j;
}

// The URL as the sender will use it: http(s), a host, no user info; an address literal the delivery policy
// refuses is refused now rather than at every try.
std::string checked_url(const api_call& c, const std::string& url) {
  auto u = webhooks::parse_webhook_url(url);
  if (!u) throw api_error(422, "invalid_input", u.error().message, {{"field", "url"}});
  boost::system::error_code not_ip;
  const auto ip = boost::asio::ip::make_address(u->host, not_ip);
  if (!not_ip && !webhooks::address_allowed(ip, c.options.webhook_allow))
    throw api_error(422, "invalid_input",
                    fmt::format("webhook URL '{}': {} is an internal address, which this service does not deliver "
                                "to (DIALER_WEBHOOK_ALLOW)",
                                url, u->host),
                    {{"field", "url"}});
  return url;
}

std::optional<std::vector<std::string>> event_types_of(const nlohmann::json& body) {
  if (!body.contains("event_types")) return std::nullopt;
  const auto& v = body["event_types"];
  if (!v.is_array())
    throw api_error(422, "invalid_input", "event_types must be an array of event types", {{"field", "event_types"}});
  std::vector<std::string> out;
  for (const auto& t : v) {
    const bool known = t.is_string() && std::any_of(std::begin(kWebhookEventTypes), std::end(kWebhookEventTypes),
                                                    [&](std::string_view k) { return k == t.get<std::string>(); });
    if (!known) {
      std::string all;
      for (auto k : kWebhookEventTypes) all += (all.empty() ? "" : ", ") + std::string(k);
      throw api_error(422, "invalid_input", fmt::format("event_types: {} is not an event type; known: {}",
                                                        t.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), all),
                      {{"field", "event_types"}});
    }
    if (std::find(out.begin(), out.end(), t.get<std::string>()) == out.end()) out.push_back(t.get<std::string>());
  }
  return out;
}

std::optional<int> max_in_flight_of(const nlohmann::json& body) {
  auto v = int_field(body, "max_in_flight", false);
  if (!v) return std::nullopt;
  if (*v < 1 || *v > 64)
    throw api_error(422, "invalid_input", "max_in_flight must be between 1 and 64", {{"field", "max_in_flight"}});
  return static_cast<int>(*v);
}

std::optional<std::string> description_of(const nlohmann::json& body) {
  auto d = string_field(body, "description", false);
  if (d && d->size() > 500)
    throw api_error(422, "invalid_input", "description is longer than 500 characters", {{"field", "description"}});
  return d;
}

reply create_endpoint(api_call& c) {
  const auto body = c.json_body({"url", "description", "event_types", "max_in_flight"});
  const auto url = checked_url(c, *string_field(body, "url", true));
  // Every event fans out to each endpoint inside the transaction of its change: bounded per account.
  if (take(c.db().webhooks().list(c.account, page_request{0, kMaxEndpoints})).size() >= kMaxEndpoints)
    throw api_error(409, "too_many_endpoints",
                    fmt::format("an account has at most {} webhook endpoints; delete one first", kMaxEndpoints));
  auto e = take(c.db().webhooks().create(c.account, url, description_of(body).value_or(""),
                                         event_types_of(body).value_or(std::vector<std::string>{}),
                                         max_in_flight_of(body).value_or(4), new_webhook_secret()));
  return json_reply(endpoint_json(e), 201);
}

reply list_endpoints(api_call& c) {
  const auto page = c.page();
  const auto items = take(c.db().webhooks().list(c.account, page));
  nlohmann::json data = nlohmann::json::array();
  for (const auto& e : items) data.push_back(endpoint_json(e));
  return json_reply(page_json(std::move(data), page.limit, items.empty() ? 0 : items.back().id));
}

reply get_endpoint(api_call& c) {
  return json_reply(endpoint_json(take(c.db().webhooks().get(c.account, c.id_param("id", "webhook endpoint")))));
}

reply update_endpoint(api_call& c) {
  const auto id = c.id_param("id", "webhook endpoint");
  const auto body = c.json_body({"url", "description", "event_types", "enabled", "max_in_flight"});
  webhook_endpoint_change change;
  if (auto url = string_field(body, "url", false)) change.url = checked_url(c, *url);
  change.description = description_of(body);
  change.event_types = event_types_of(body);
  change.enabled = bool_field(body, "enabled", false);
  change.max_in_flight = max_in_flight_of(body);
  return json_reply(endpoint_json(take(c.db().webhooks().update(c.account, id, change))));
}

reply delete_endpoint(api_call& c) {
  take(c.db().webhooks().remove(c.account, c.id_param("id", "webhook endpoint")));
  return reply{204, nullptr, {}, "application/json", {}};
}

// A new secret signs from now on; the old one keeps signing beside it for `overlap_seconds` (default a day, at most
// a week), so receivers can switch without losing a delivery.
reply rotate_secret(api_call& c) {
  const auto id = c.id_param("id", "webhook endpoint");
  const auto body = c.json_body({"overlap_seconds"}, true);
  std::chrono::seconds overlap = 24h;
  if (auto v = int_field(body, "overlap_seconds", false)) {
    if (*v < 0 || *v > std::chrono::seconds(kMaxOverlap).count())
      throw api_error(422, "invalid_input", "overlap_seconds must be between 0 and 604800 (a week)",
                      {{"field", "overlap_seconds"}});
    overlap = std::chrono::seconds(*v);
  }
  return json_reply(endpoint_json(take(c.db().webhooks().rotate(c.account, id, new_webhook_secret(), c.clk.wall() + overlap))));
}

reply list_deliveries(api_call& c) {
  const auto id = c.id_param("id", "webhook endpoint");
  auto state = c.query_value("state");
  if (state && *state != "pending" && *state != "delivered" && *state != "failed")
    throw api_error(400, "invalid_parameter", "query parameter state must be one of pending, delivered, failed",
                    {{"parameter", "state"}});
  const auto page = c.page();
  const auto items = take(c.db().webhooks().deliveries(c.account, id, state, page));
  nlohmann::json data = nlohmann::json::array();
  for (const auto& d : items)
    data.push_back({{"event_id", d.message_id},
                    {"type", d.type},
                    {"state", d.state},
                    {"attempts", d.attempts},
                    {"occurred_at", views::iso8601(d.occurred_at)},
                    {"next_attempt_at", maybe_time(d.next_attempt_at)},
                    {"delivered_at", maybe_time(d.delivered_at)},
                    {"last_status", d.last_status ? nlohmann::json(*d.last_status) : nlohmann::json()},
                    {"last_error", d.last_error.empty() ? nlohmann::json() : nlohmann::json(d.last_error)}});
  return json_reply(page_json(std::move(data), page.limit, items.empty() ? 0 : items.back().event_id));
}

reply list_attempts(api_call& c) {
  const auto id = c.id_param("id", "webhook endpoint");
  const auto page = c.page();
  const auto items = take(c.db().webhooks().attempts(c.account, id, page));
  nlohmann::json data = nlohmann::json::array();
  for (const auto& a : items)
    data.push_back({{"id", a.id},
                    {"event_id", a.message_id},
                    {"type", a.type},
                    {"attempted_at", views::iso8601(a.attempted_at)},
                    {"status", a.status ? nlohmann::json(*a.status) : nlohmann::json()},
                    {"error", a.error.empty() ? nlohmann::json() : nlohmann::json(a.error)},
                    {"duration_ms", a.duration_ms}});
  return json_reply(page_json(std::move(data), page.limit, items.empty() ? 0 : items.back().id));
}

// Failed deliveries (or the listed events, whatever their state) are due again at once, with a fresh schedule.
reply replay(api_call& c) {
  const auto id = c.id_param("id", "webhook endpoint");
  const auto body = c.json_body({"event_ids"}, true);
  std::vector<std::int64_t> events;
  if (body.contains("event_ids")) {
    const auto& v = body["event_ids"];
    if (!v.is_array() || v.size() > 1000)
      throw api_error(422, "invalid_input", "event_ids must be an array of at most 1000 event ids (evt_...)",
                      {{"field", "event_ids"}});
    for (const auto& e : v) {
      const auto text = e.is_string() ? e.get<std::string>() : std::string();
      if (text.size() < 5 || text.size() > 22 || text.rfind("evt_", 0) != 0 ||
          !std::all_of(text.begin() + 4, text.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        throw api_error(422, "invalid_input", "event_ids: each is an event id as delivered (evt_ and digits)",
                        {{"field", "event_ids"}});
      events.push_back(std::stoll(text.substr(4)));
    }
  }
  const auto n = take(c.db().webhooks().replay(c.account, id, events, c.clk.wall()));
  return json_reply({{"replayed", n}}, 202);
}

}  // namespace

void add_webhook_routes(api_router& r) {
  using bhttp::verb;
  r.add(verb::post, "/v1/webhook_endpoints", {create_endpoint});
  r.add(verb::get, "/v1/webhook_endpoints", {list_endpoints});
  r.add(verb::get, "/v1/webhook_endpoints/{id}", {get_endpoint});
  r.add(verb::patch, "/v1/webhook_endpoints/{id}", {update_endpoint});
  r.add(verb::delete_, "/v1/webhook_endpoints/{id}", {delete_endpoint});
  r.add(verb::post, "/v1/webhook_endpoints/{id}/rotate_secret", {rotate_secret});
  r.add(verb::get, "/v1/webhook_endpoints/{id}/deliveries", {list_deliveries});
  r.add(verb::get, "/v1/webhook_endpoints/{id}/attempts", {list_attempts});
  r.add(verb::post, "/v1/webhook_endpoints/{id}/replay", {replay});
}

}  // namespace dialer::http
