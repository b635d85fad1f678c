#pragma once
// Inside the API: what a route gets (api_call), what it returns (reply) or throws (api_error), and the
// helpers that turn request parts into checked values. Routes throw api_error for every refusal; the
// dispatcher turns it into the error shape. Threading: an api_call lives on one worker thread for one request.

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http/api/api.hpp"
#include "adapters/json/views.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/url.hpp"

namespace dialer::http {

struct api_error : std::exception {
  api_error(unsigned s, std::string c, std::string m, nlohmann::json d = nlohmann::json::object())
      : status(s), code(std::move(c)), message(std::move(m)), details(std::move(d)) {}
  [[nodiscard]] const char* what() const noexcept override { return message.c_str(); }
  unsigned status;
  std::string code;
  std::string message;
  nlohmann::json details;
};

struct reply {
  unsigned status = 200;
  nlohmann::json body;             // null: no body (204)
  std::string text;                // used instead of body when content_type is not JSON
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

[[nodiscard]] inline reply json_reply(nlohmann::json body, unsigned status = 200) {
  return reply{status, std::move(body), {}, "application/json", {}};
}

// The status and code of an engine error: invalid_input 422, not_found 404, conflict 409, unavailable 503,
// launch_failed 422, internal 500.
[[nodiscard]] api_error to_api_error(const error& e);

template <class T>
T take(result<T> r) {
  if (!r) throw to_api_error(r.error());
  return std::move(r).value();
}
inline void take(result<void> r) {
  if (!r) throw to_api_error(r.error());
}

struct api_call {
  const request& req;
  const path_params& params;
  const query_params& query;
  account_id account;
  api_backend* backend;  // null on routes that do not run on a worker
  const clock& clk;
  const api_options& options;
  std::function<void(std::string_view carrier, std::string_view result)> count_inbound;

  [[nodiscard]] api_backend& db() const {
    if (!backend) throw api_error(500, "internal", "this route has no database connection");
    return *backend;
  }
  [[nodiscard]] inventory_service& inventory() const { return db().inventory(account); }
  [[nodiscard]] campaign_service& campaigns() const { return db().campaigns(account); }

  // A path parameter that is an id: an id that cannot exist (not digits, too long) is 404, as a missing one.
  [[nodiscard]] std::int64_t id_param(std::string_view name, std::string_view what) const;
  [[nodiscard]] std::optional<std::string> query_value(std::string_view name) const;
  // Integer query parameter in [lo, hi]; 400 when malformed or out of range.
  [[nodiscard]] std::optional<std::int64_t> query_int(std::string_view name, std::int64_t lo, std::int64_t hi) const;
  // limit (1-1000, default 50) and cursor (from a previous page's next_cursor).
  [[nodiscard]] page_request page() const;
  // The JSON object in the body: 415 when it is not declared JSON, 400 when it does not parse, 422 when it
  // is not an object or has a field not in `allowed` (unless `any_field`: the route checks them itself). An
  // empty body is {} when `body_optional`.
  [[nodiscard]] nlohmann::json json_body(std::initializer_list<std::string_view> allowed,
                                         bool body_optional = false, bool any_field = false) const;
};

// Typed fields of a JSON object; 422 naming the field when missing (required) or of the wrong type.
[[nodiscard]] std::optional<std::string> string_field(const nlohmann::json& body, std::string_view name,
                                                      bool required);
[[nodiscard]] std::optional<std::int64_t> int_field(const nlohmann::json& body, std::string_view name, bool required);
[[nodiscard]] std::optional<double> number_field(const nlohmann::json& body, std::string_view name, bool required);
[[nodiscard]] std::optional<bool> bool_field(const nlohmann::json& body, std::string_view name, bool required);

using views::to_json;

// How deeply a JSON text nests (arrays and objects); bodies deeper than kMaxJsonDepth are refused before parsing
// (serializing them again recurses).
inline constexpr std::size_t kMaxJsonDepth = 32;
[[nodiscard]] std::size_t json_depth(std::string_view text) noexcept;

// A listing's envelope: {"data": [...], "next_cursor": "..." | null}; the cursor is the last item's id when the
// page is full.
template <class Item>
nlohmann::json page_of(const std::vector<Item>& items, int limit) {
  nlohmann::json data = nlohmann::json::array();
  for (const auto& i : items) data.push_back(to_json(i));
  nlohmann::json out{{"data", std::move(data)}, {"next_cursor", nullptr}};
  if (!items.empty() && static_cast<int>(items.size()) == limit)
    out["next_cursor"] = std::to_string(items.back().id.value());
  return out;
}

using route_fn = std::function<reply(api_call&)>;

struct route_entry {
  route_fn fn;
  bool authenticated = true;
  bool blocking = true;  // runs on a worker (touches the database)
};

using api_router = router<route_entry>;

void add_inventory_routes(api_router& r);
void add_campaign_routes(api_router& r);
void add_inbound_routes(api_router& r);
void add_webhook_routes(api_router& r);

}  // namespace dialer::http
