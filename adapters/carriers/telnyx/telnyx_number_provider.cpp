#include "adapters/carriers/telnyx/telnyx_number_provider.hpp"

#include <condition_variable>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/http/url.hpp"
#include "adapters/carriers/rest/json_text.hpp"
#include "engine/phone.hpp"

namespace dialer::carriers::telnyx {

namespace {

using rest::text_of;

const nlohmann::json& data_of(const rest::json_answer& a) {
  static const nlohmann::json none;
  return a.body.is_object() && a.body.contains("data") ? a.body["data"] : none;
}

// {"errors": [{code, title, detail}]} as a message; 404 and 10005 are not_found, 429 and 5xx unavailable.
error telnyx_error(const rest::json_answer& a, std::string_view doing, errc fallback = errc::invalid_input) {
  std::string code, what;
  if (a.body.is_object() && a.body.contains("errors") && a.body["errors"].is_array() && !a.body["errors"].empty()) {
    const auto& e = a.body["errors"][0];
    code = text_of(e, "code");
    const auto title = text_of(e, "title");
    auto detail = text_of(e, "detail");
    if (detail.empty()) detail = text_of(e, "description");
    what = detail.empty() ? title : title.empty() ? detail : title + ": " + detail;
  }
  const auto detail = code.empty() ? fmt::format("telnyx answered HTTP {}", a.status)
                                   : fmt::format("telnyx {}: {} (HTTP {})", code, what.substr(0, 300), a.status);
  errc kind = fallback;
  if (a.status == 404 || code == "10005") kind = errc::not_found;
  else if (a.status == 429 || a.status >= 500 || a.status == 401 || a.status == 403) kind = errc::unavailable;
  return error{kind, fmt::format("{}: {}", doing, detail), {}};
}

std::string_view type_filter(number_type t) {
  switch (t) {
    case number_type::toll_free: return "toll_free";
    case number_type::mobile: return "mobile";
    default: return "local";
  }
}

result<purchased_number> purchased_of(const std::string& e164, const std::string& id) {
  auto parsed = parse_phone(e164, "US");
  if (!parsed) return std::move(parsed).error();
  purchased_number p;
  p.e164 = parsed->e164;
  p.country = parsed->country;
  p.type = parsed->type;
  p.provider = "telnyx";
  p.provider_ref = id;
  return p;
}

}  // namespace

result<telnyx_numbers_settings> telnyx_numbers_settings_from(const carrier_environment& env, std::string base_url) {
  telnyx_numbers_settings s;
  const auto* key = env.credentials.find("telnyx.api_key");
  if (!key) return make_error(errc::invalid_input, "telnyx numbers: set DIALER_TELNYX_API_KEY");
  s.authorization = "Bearer " + key->reveal();
  const auto* connection = env.credentials.find("telnyx.connection_id");
  if (!connection)
    return make_error(errc::invalid_input,
                      "telnyx numbers: set DIALER_TELNYX_CONNECTION_ID (the Call Control application this platform's "
                      "numbers are routed to)");
  s.connection_id = connection->reveal();
  if (env.public_base_url.empty())
    return make_error(errc::invalid_input,
                      "telnyx numbers: DIALER_PUBLIC_BASE_URL is not set: the application's calls are sent to "
                      "<DIALER_PUBLIC_BASE_URL>/v1/inbound/telnyx");
  auto base = env.public_base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  s.webhook_url = base + "/v1/inbound/telnyx";
  if (!base_url.empty()) {
    while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
    s.base_url = base_url;
  }
  return s;
}

telnyx_number_provider::telnyx_number_provider(telnyx_numbers_settings s, const dialer::clock& clock)
    : s_(std::move(s)), clock_(clock), client_("telnyx", rest::pool_options_for(s_.base_url, s_.request_timeout), s_.authorization) {}

result<std::vector<available_number>> telnyx_number_provider::search(const number_search& q) {
  const auto type = q.type.value_or(number_type::local);
  std::string target = fmt::format(
      "/v2/available_phone_numbers?filter%5Bcountry_code%5D={}&filter%5Bphone_number_type%5D={}&filter%5Blimit%5D={}"
      "&filter%5Bfeatures%5D%5B%5D=voice",
      http::percent_encode(q.country), type_filter(type), std::clamp(q.limit, 1, 1000));
  if (q.area_code) target += "&filter%5Bnational_destination_code%5D=" + http::percent_encode(*q.area_code);
  if (q.contains) target += "&filter%5Bphone_number%5D%5Bcontains%5D=" + http::percent_encode(*q.contains);
  auto a = client_.call("GET", target);
  if (!a) return std::move(a).error();
  if (a->status != 200) return telnyx_error(*a, "searching numbers");
  const auto& data = data_of(*a);
  if (!data.is_array()) return make_error(errc::unavailable, "telnyx: the number search answer is not the expected JSON");
  std::vector<available_number> out;
  for (const auto& item : data) {
    available_number n;
    n.e164 = text_of(item, "phone_number");
    if (n.e164.empty()) continue;
    n.country = q.country;
    n.type = type;
    n.provider = "telnyx";
    if (item.contains("region_information") && item["region_information"].is_array())
      for (const auto& r : item["region_information"])
        if (text_of(r, "region_type") == "state") n.region = text_of(r, "region_name");
    out.push_back(std::move(n));
  }
  return out;
}

result<nlohmann::json> telnyx_number_provider::find_owned(const std::string& e164) {
  auto a = client_.call("GET", "/v2/phone_numbers?filter%5Bphone_number%5D=" + http::percent_encode(e164) +
                                   "&page%5Bsize%5D=20");
  if (!a) return std::move(a).error();
  if (a->status != 200) return telnyx_error(*a, fmt::format("looking up {}", e164));
  const auto& data = data_of(*a);
  if (!data.is_array()) return make_error(errc::unavailable, "telnyx: the number list is not the expected JSON");
  for (const auto& n : data)
    if (text_of(n, "phone_number") == e164 && text_of(n, "status") != "deleted") return n;
  return make_error(errc::not_found, "telnyx: {} is not a number of this Telnyx account", e164);
}

result<void> telnyx_number_provider::ensure_application_webhook() {
  if (application_checked_) return ok();
  const auto target = "/v2/call_control_applications/" + http::percent_encode(s_.connection_id);
  auto a = client_.call("GET", target);
  if (!a) return std::move(a).error();
  if (a->status != 200) return telnyx_error(*a, fmt::format("reading Call Control application {}", s_.connection_id));
  const auto& app = data_of(*a);
  if (text_of(app, "webhook_event_url") != s_.webhook_url) {
    nlohmann::json patch{{"webhook_event_url", s_.webhook_url}, {"application_name", text_of(app, "application_name")}};
    auto p = client_.call("PATCH", target, "application/json", patch.dump());
    if (!p) return std::move(p).error();
    if (p->status != 200)
      return telnyx_error(*p, fmt::format("pointing Call Control application {} at this platform", s_.connection_id));
    spdlog::info("telnyx: Call Control application {} now sends its calls to {}", s_.connection_id, s_.webhook_url);
  }
  application_checked_ = true;
  return ok();
}

result<purchased_number> telnyx_number_provider::buy(const std::string& e164) {
  if (auto r = ensure_application_webhook(); !r) return std::move(r).error();
  const nlohmann::json order{{"phone_numbers", nlohmann::json::array({{{"phone_number", e164}}})},
                             {"connection_id", s_.connection_id}};
  auto a = client_.call("POST", "/v2/number_orders", "application/json", order.dump());
  if (!a) return std::move(a).error();
  if (a->status != 200 && a->status != 201) {
    auto e = telnyx_error(*a, fmt::format("ordering {}", e164));
    if (a->status == 422 || a->status == 400) e.code = errc::not_found;  // Telnyx will not sell this number
    return e;
  }
  const auto id = text_of(data_of(*a), "id");
  if (id.empty()) return make_error(errc::unavailable, "telnyx: the number order for {} has no id", e164);
  auto status = text_of(data_of(*a), "status");
  const auto deadline = clock_.monotonic() + s_.order_timeout;
  std::mutex m;
  std::condition_variable never;
  while (status == "pending") {
    if (clock_.monotonic() >= deadline)
      return make_error(errc::unavailable,
                        "telnyx: number order {} for {} is still pending after {} s; once Telnyx completes it the "
                        "number is in the account: import it then",
                        id, e164, s_.order_timeout.count() / 1000);
    {
      std::unique_lock lock(m);
      (void)clock_.wait_for(never, lock, s_.order_poll, [] { return false; });
    }
    auto got = client_.call("GET", "/v2/number_orders/" + http::percent_encode(id));
    if (!got) return std::move(got).error();
    if (got->status != 200) return telnyx_error(*got, fmt::format("following number order {}", id), errc::unavailable);
    status = text_of(data_of(*got), "status");
  }
  if (status != "success")
    return make_error(errc::not_found, "telnyx: number order {} for {} ended {}", id, e164,
                      status.empty() ? std::string("without a status") : status);
  auto owned = find_owned(e164);
  if (!owned) return std::move(owned).error();
  return purchased_of(e164, text_of(*owned, "id"));
}

result<void> telnyx_number_provider::release(const purchased_number& number) {
  if (number.provider_ref.empty())
    return make_error(errc::invalid_input, "telnyx: {} has no phone number id to release", number.e164);
  auto a = client_.call("DELETE", "/v2/phone_numbers/" + http::percent_encode(number.provider_ref));
  if (!a) return std::move(a).error();
  if (a->status == 200 || a->status == 204) return ok();
  if (a->status == 404) {
    spdlog::warn("telnyx: releasing {}: Telnyx no longer has number {}; taken as released", number.e164,
                 number.provider_ref);
    return ok();
  }
  return telnyx_error(*a, fmt::format("releasing {}", number.e164));
}

result<purchased_number> telnyx_number_provider::claim(const std::string& e164) {
  auto owned = find_owned(e164);
  if (!owned) return std::move(owned).error();
  const auto id = text_of(*owned, "id");
  if (id.empty()) return make_error(errc::unavailable, "telnyx: the number resource of {} has no id", e164);
  const auto connection = text_of(*owned, "connection_id");
  // A number on another of the customer's connections (a SIP trunk, another application) is theirs to move.
  if (!connection.empty() && connection != s_.connection_id)
    return make_error(errc::conflict,
                      "telnyx: {} is on connection {} of the account; moving it to this platform's ({}) would take it "
                      "from there: move it in the Telnyx portal first, or import it with --provider sip",
                      e164, connection, s_.connection_id);
  if (connection != s_.connection_id) {
    const nlohmann::json patch{{"connection_id", s_.connection_id}};
    auto a = client_.call("PATCH", "/v2/phone_numbers/" + http::percent_encode(id), "application/json", patch.dump());
    if (!a) return std::move(a).error();
    if (a->status != 200) return telnyx_error(*a, fmt::format("routing {} to this platform", e164));
    if (text_of(data_of(*a), "connection_id") != s_.connection_id)
      return make_error(errc::unavailable, "telnyx: {} kept another connection after the update", e164);
  }
  // The application's webhook last: the number is ours once on its connection; a failure here is repaired by the
  // next import or buy (the check runs until it succeeds once per process).
  if (auto r = ensure_application_webhook(); !r) return std::move(r).error();
  return purchased_of(e164, id);
}

}  // namespace dialer::carriers::telnyx
