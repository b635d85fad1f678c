#include "adapters/carriers/telnyx/telnyx_protocol.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "adapters/carriers/rest/handoff.hpp"
#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"

namespace dialer::carriers::telnyx {

std::string text_of(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string encode_client_state(const call_tag& tag) {
  nlohmann::json j{{"instance", tag.instance}, {"attempt", tag.attempt}, {"placement", tag.placement}};
  if (!tag.leg.empty()) j["leg"] = tag.leg;
  return http::base64(j.dump());
}

std::optional<call_tag> decode_client_state(std::string_view client_state) {
  const auto raw = http::unbase64(client_state);
  if (!raw) return std::nullopt;
  const auto j = nlohmann::json::parse(*raw, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  call_tag t;
  if (auto it = j.find("instance"); it != j.end() && it->is_string()) t.instance = it->get<std::string>();
  if (auto it = j.find("attempt"); it != j.end() && it->is_number_integer()) t.attempt = it->get<std::int64_t>();
  if (auto it = j.find("placement"); it != j.end() && it->is_string()) t.placement = it->get<std::string>();
  if (auto it = j.find("leg"); it != j.end() && it->is_string()) t.leg = it->get<std::string>();
  if (t.instance.empty() || t.instance.size() > 64 || t.attempt <= 0 || t.placement.size() > 64) return std::nullopt;
  return t;
}

result<nlohmann::json> dial_body(const origination_request& r, const dial_options& o, const std::string& client_state,
                                 int* dropped) {
  const bool sip = rest::is_sip_uri(r.handoff);
  if (!sip && !rest::is_media_stream(r.handoff))
    return make_error(errc::invalid_input,
                      "the agent's hand-off '{}' is neither a media stream (wss://) nor a SIP URI (sip:, sips:)",
                      r.handoff.substr(0, 200));
  nlohmann::json body{{"connection_id", o.connection_id},
                      {"to", r.to_e164},
                      {"from", r.from_e164},
                      {"webhook_url", o.webhook_url},
                      {"webhook_url_method", "POST"},
                      {"timeout_secs", o.timeout_secs},
                      {"client_state", client_state},
                      {"command_id", command_id_of(r, o)}};
  if (o.machine_detection != "disabled") body["answering_machine_detection"] = o.machine_detection;
  int left_out = 0;
  if (!sip) {
    // The agent learns who it talks to from the stream URL's query: the ids always, the variables while the URL
    // stays within kMaxStreamUrl.
    const auto fields = rest::handoff_fields_of(r);
    std::string url = r.handoff;
    char sep = url.find('?') == std::string::npos ? '?' : '&';
    const auto param = [&](std::string_view k, std::string_view v) {
      return fmt::format("{}{}={}", sep, http::percent_encode(k), http::percent_encode(v));
    };
    for (const auto& [k, v] : fields.ids) {
      url += param(k, v);
      sep = '&';
    }
    if (url.size() > kMaxStreamUrl)
      return make_error(errc::invalid_input, "the agent's stream URL is too long ({} characters at most)",
                        kMaxStreamUrl);
    for (const auto& [k, v] : fields.variables) {
      auto p = param(k, v);
      if (url.size() + p.size() > kMaxStreamUrl) {
        ++left_out;
        continue;
      }
      url += p;
    }
    body["stream_url"] = url;
    body["stream_track"] = o.stream_track;
    body["stream_bidirectional_mode"] = o.stream_bidirectional_mode;
    if (!o.stream_codec.empty()) body["stream_bidirectional_codec"] = o.stream_codec;
  }
  if (dropped) *dropped = left_out;
  return body;
}

std::string command_id_of(const origination_request& r, const dial_options& o) {
  const auto key = r.idempotency_key.empty() ? fmt::format("attempt-{}", r.attempt.value()) : r.idempotency_key;
  return o.command_scope.empty() ? key : o.command_scope + ":" + key;
}

nlohmann::json transfer_body(const origination_request& r, const dial_options& o, const std::string& client_state,
                             const std::string& agent_state) {
  const auto fields = rest::handoff_fields_of(r);
  nlohmann::json headers = nlohmann::json::array();
  for (const auto* list : {&fields.ids, &fields.variables})
    for (const auto& [k, v] : *list) headers.push_back({{"name", rest::x_header(k)}, {"value", v}});
  return nlohmann::json{{"to", r.handoff},
                        {"client_state", client_state},
                        {"target_leg_client_state", agent_state},
                        {"webhook_url", o.webhook_url},
                        {"webhook_url_method", "POST"},
                        {"command_id", command_id_of(r, o) + ":transfer"},
                        {"custom_headers", headers}};
}

std::optional<refusal_decision> classify_error(unsigned status, std::string_view body,
                                               std::optional<std::chrono::seconds> retry_after) {
  using std::chrono::milliseconds;
  refusal_decision d;
  std::string code, title, detail, pointer;
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
    const auto& e = j["errors"][0];
    code = text_of(e, "code");
    title = text_of(e, "title");
    detail = text_of(e, "detail");
    if (detail.empty()) detail = text_of(e, "description");
    if (e.is_object() && e.contains("source")) pointer = text_of(e["source"], "pointer");
  }
  const auto what = detail.empty() ? title : title.empty() ? detail : title + ": " + detail;
  d.detail = code.empty() ? fmt::format("telnyx answered HTTP {}", status)
                          : fmt::format("telnyx {}: {} (HTTP {})", code, what.substr(0, 300), status);
  const auto after = [&](milliseconds fallback) {
    return retry_after ? std::max(std::chrono::duration_cast<milliseconds>(*retry_after), milliseconds(100)) : fallback;
  };
  const auto text = lower(what);
  if (status == 429 || code == "10011") {
    d.why = origination_refusal::throttled;
    d.retry_after = after(milliseconds(1000));
    return d;
  }
  if (text.find("channel limit") != std::string::npos) {
    d.why = origination_refusal::throttled;
    d.retry_after = after(milliseconds(2000));
    return d;
  }
  if (status >= 500) return std::nullopt;
  // Which field is wrong says whose problem it is: the callee's number, or our caller ID.
  const bool about_to = pointer == "/to" || pointer.rfind("/to/", 0) == 0;
  const bool about_from = pointer == "/from";
  // The field named wins over the code: the same codes (10002, 10016) are used for either number.
  if (status == 422 || status == 400) {
    if (about_to) {
      d.why = origination_refusal::invalid_destination;
      return d;
    }
    if (about_from || code == "10001") {  // 10001: inactive number, which can only be ours
      d.why = origination_refusal::number_unusable;
      return d;
    }
    if (code == "10002" || code == "10016") {
      d.why = origination_refusal::invalid_destination;
      return d;
    }
  }
  // 401/403 (credentials), 404, 422 on a field of ours, any 4xx we do not know: nothing was placed, and the same
  // request soon cannot succeed: back off long, the contact keeps its place.
  d.why = origination_refusal::not_placed;
  d.retry_after = milliseconds(30'000);
  return d;
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  if (text.size() < 19 || text.size() > 40) return std::nullopt;
  std::tm tm{};
  const std::string s(text);
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  std::chrono::microseconds fraction{0};
  if (*end == '.') {
    ++end;
    std::int64_t digits = 0, scale = 1'000'000;
    while (std::isdigit(static_cast<unsigned char>(*end))) {
      if (scale > 1) {
        scale /= 10;
        digits += (*end - '0') * scale;
      }
      ++end;
    }
    fraction = std::chrono::microseconds(digits);
  }
  int offset_minutes = 0;
  if (*end == '+' || *end == '-') {
    const int sign = *end == '-' ? -1 : 1;
    const char* at = end + 1;
    const auto two = [&](int& v) {
      if (!std::isdigit(static_cast<unsigned char>(at[0])) || !std::isdigit(static_cast<unsigned char>(at[1])))
        return false;
      v = (at[0] - '0') * 10 + (at[1] - '0');
      at += 2;
      return true;
    };
    int hh = 0, mm = 0;
    if (!two(hh)) return std::nullopt;
    if (*at == ':') ++at;
    if (*at != '\0' && !two(mm)) return std::nullopt;
    offset_minutes = sign * (hh * 60 + mm);
  } else if (*end != 'Z' && *end != '\0') {
    return std::nullopt;
  }
  const auto t = ::timegm(&tm) - offset_minutes * 60;
  return std::chrono::system_clock::from_time_t(t) + fraction;
}

hangup hangup_of(const nlohmann::json& p) {
  hangup h;
  h.cause = text_of(p, "hangup_cause");
  h.sip_cause = text_of(p, "sip_hangup_cause");
  h.source = text_of(p, "hangup_source");
  h.started = parse_iso8601(text_of(p, "start_time"));
  h.ended = parse_iso8601(text_of(p, "end_time"));
  if (p.is_object())
    if (auto it = p.find("call_duration"); it != p.end() && it->is_number_integer()) h.duration_s = it->get<std::int64_t>();
  return h;
}

bool is_machine(std::string_view result) noexcept {
  return result == "machine" || result == "fax_detected" || result == "beep_detected";
}

bool was_answered(const hangup& h) noexcept {
  return h.duration_s > 0 || h.cause == "time_limit" || (h.cause == "normal_clearing" && h.sip_cause == "200");
}

bool is_channel_limit(const hangup& h, bool answered) noexcept {
  return !answered && h.sip_cause == "403" && h.source != "callee";
}

call_outcome outcome_of(const hangup& h, bool answered, bool machine, bool canceled) noexcept {
  if (answered) return machine ? call_outcome::voicemail : call_outcome::completed;
  if (canceled || h.cause == "originator_cancel") return call_outcome::canceled;
  if (h.cause == "user_busy" || h.sip_cause == "486" || h.sip_cause == "600") return call_outcome::busy;
  if (h.cause == "timeout" || h.cause == "no_answer" || h.sip_cause == "408" || h.sip_cause == "480" ||
      h.sip_cause == "487")
    return call_outcome::no_answer;
  return call_outcome::failed;
}

std::string_view step_of(std::string_view t) noexcept {
  if (t == "call.initiated") return "initiated";
  if (t == "call.answered") return "answered";
  if (t == "call.hangup") return "final";
  if (t == "call.machine.detection.ended" || t == "call.machine.premium.detection.ended") return "amd";
  if (t == "call.machine.greeting.ended" || t == "call.machine.premium.greeting.ended") return "greeting";
  return {};
}

}  // namespace dialer::carriers::telnyx
