#include "adapters/carriers/twilio/twilio_protocol.hpp"

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "adapters/carriers/rest/handoff.hpp"
#include "adapters/http/url.hpp"

namespace dialer::carriers::twilio {

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 (tab, line feed and carriage return aside).
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += c;
    }
  }
  return out;
}

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string string_of(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return {};
  return j.dump();
}

std::int64_t seconds_of(const nlohmann::json& j) {
  const auto s = string_of(j);
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::stoll(s);
}

}  // namespace

std::string encode_form(const form& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += http::percent_encode(k);
    out += '=';
    out += http::percent_encode(v);
  }
  return out;
}

result<std::string> handoff_twiml(const origination_request& r, int* dropped) {
  const bool sip = starts_with(r.handoff, "sip:") || starts_with(r.handoff, "sips:");
  if (!sip && !starts_with(r.handoff, "wss://"))
    return make_error(errc::invalid_input,
                      "the agent's hand-off '{}' is neither a media stream (wss://) nor a SIP URI (sip:, sips:)",
                      r.handoff.substr(0, 200));
  auto fields = rest::handoff_fields_of(r);
  const auto& params = fields.ids;
  const auto& variables = fields.variables;
  int left_out = 0;
  std::string twiml;
  if (sip) {
    // Custom SIP headers ride on the URI as X- parameters (<Sip>sip:agent@host?X-Attempt-Id=1&amp;...</Sip>).
    const auto build = [&](std::size_t vars) {
      std::string uri = r.handoff;
      char sep = uri.find('?') == std::string::npos ? '?' : '&';
      const auto add = [&](std::string_view k, std::string_view v) {
        uri += sep;
        uri += rest::x_header(k);
        uri += '=';
        uri += http::percent_encode(v);
        sep = '&';
      };
      for (const auto& [k, v] : params) add(k, v);
      for (std::size_t i = 0; i < vars; ++i) add(variables[i].first, variables[i].second);
      return "<Response><Dial><Sip>" + xml_escape(uri) + "</Sip></Dial></Response>";
    };
    std::size_t n = variables.size();
    twiml = build(n);
    while (twiml.size() > kMaxTwiml && n > 0) twiml = build(--n), ++left_out;
  } else {
    const auto param = [](std::string_view name, std::string_view value) {
      return "<Parameter name=\"" + xml_escape(name) + "\" value=\"" + xml_escape(value) + "\"/>";
    };
    const std::string head = "<Response><Connect><Stream url=\"" + xml_escape(r.handoff) + "\">";
    const std::string tail = "</Stream></Connect></Response>";
    twiml = head;
    for (const auto& [k, v] : params) twiml += param(k, v);
    for (const auto& [k, v] : variables) {
      auto p = param(k, v);
      if (twiml.size() + p.size() + tail.size() > kMaxTwiml) {
        ++left_out;
        continue;
      }
      twiml += p;
    }
    twiml += tail;
  }
  if (twiml.size() > kMaxTwiml)
    return make_error(errc::invalid_input, "the agent's hand-off URI is too long for TwiML ({} characters at most)",
                      kMaxTwiml);
  if (dropped) *dropped = left_out;
  return twiml;
}

std::optional<refusal_decision> classify_error(unsigned status, std::string_view body,
                                               std::optional<std::chrono::seconds> retry_after) {
  refusal_decision d;
  std::int64_t code = 0;
  std::string message;
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("code") && j["code"].is_number_integer()) code = j["code"].get<std::int64_t>();
    if (j.contains("message") && j["message"].is_string()) message = j["message"].get<std::string>();
  }
  d.detail = code != 0 ? fmt::format("twilio {}: {} (HTTP {})", code, message.substr(0, 300), status)
                       : fmt::format("twilio answered HTTP {}", status);
  const auto after = [&](std::chrono::milliseconds fallback) {
    return retry_after ? std::chrono::duration_cast<std::chrono::milliseconds>(*retry_after) : fallback;
  };
  using std::chrono::milliseconds;
  if (status == 429 || code == 20429) {
    d.why = origination_refusal::throttled;
    d.retry_after = after(milliseconds(1000));
    return d;
  }
  switch (code) {
    case 21210:  // From is not a Twilio number or a verified caller ID
    case 21212:  // invalid caller ID
      d.why = origination_refusal::number_unusable;
      return d;
    case 21211:  // invalid To
    case 21217:  // To does not appear to be valid
    case 13224:  // Twilio cannot call this number
    case 13223:  // To is not E.164
    case 21215:  // geographic permission: not allowed to call this destination
      d.why = origination_refusal::invalid_destination;
      return d;
    case 10004:  // the account's call concurrency limit
    case 32001:  // trunk CPS limit
      d.why = origination_refusal::throttled;
      d.retry_after = after(milliseconds(2000));
      return d;
    default: break;
  }
  // Twilio's own 503 (its JSON error) says the request was not processed. A 500, 502 or 504, or a 503 from
  // something in front of Twilio (no Twilio error body), may come after the call was created: it does not tell.
  if (status == 503 && code != 0) {
    d.why = origination_refusal::not_placed;
    d.retry_after = after(milliseconds(1000));
    return d;
  }
  if (status >= 500) return std::nullopt;
  // 401/403 (credentials), 404 (account), and any 4xx we do not know: nothing was placed, and sending the same
  // request again soon cannot succeed: back off long, the contact keeps its place.
  d.why = origination_refusal::not_placed;
  d.retry_after = milliseconds(30'000);
  return d;
}

bool is_final(std::string_view s) noexcept {
  return s == "completed" || s == "busy" || s == "failed" || s == "no-answer" || s == "canceled";
}

bool is_machine(std::string_view a) noexcept { return starts_with(a, "machine_") || a == "fax"; }

call_outcome outcome_of(const call_status& s, bool machine) noexcept {
  if (s.status == "completed") return machine || is_machine(s.answered_by) ? call_outcome::voicemail
                                                                          : call_outcome::completed;
  if (s.status == "busy") return call_outcome::busy;
  if (s.status == "no-answer") return call_outcome::no_answer;
  if (s.status == "canceled") return call_outcome::canceled;
  // A failed call's SIP answer can say more: the callee was busy or did not answer.
  if (s.sip_response == "486" || s.sip_response == "600") return call_outcome::busy;
  if (s.sip_response == "408" || s.sip_response == "480" || s.sip_response == "487") return call_outcome::no_answer;
  return call_outcome::failed;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc2822(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::tm tm{};
  const std::string s(text);
  const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  int offset_minutes = 0;
  while (*end == ' ') ++end;
  if (*end == '+' || *end == '-') {
    const int sign = *end == '-' ? -1 : 1;
    int hhmm = 0;
    if (std::sscanf(end + 1, "%4d", &hhmm) != 1) return std::nullopt;
    offset_minutes = sign * ((hhmm / 100) * 60 + hhmm % 100);
  }
  const auto t = ::timegm(&tm) - offset_minutes * 60;
  return std::chrono::system_clock::from_time_t(t);
}

call_status status_of_callback(const nlohmann::json& p) {
  call_status s;
  s.status = string_of(p.value("CallStatus", nlohmann::json()));
  s.duration_s = seconds_of(p.value("CallDuration", nlohmann::json()));
  s.answered_by = string_of(p.value("AnsweredBy", nlohmann::json()));
  s.sip_response = string_of(p.value("SipResponseCode", nlohmann::json()));
  s.at = parse_rfc2822(string_of(p.value("Timestamp", nlohmann::json())));
  return s;
}

call_status status_of_resource(const nlohmann::json& c) {
  call_status s;
  s.status = string_of(c.value("status", nlohmann::json()));
  s.duration_s = seconds_of(c.value("duration", nlohmann::json()));
  s.answered_by = string_of(c.value("answered_by", nlohmann::json()));
  s.at = parse_rfc2822(string_of(c.value("end_time", nlohmann::json())));
  s.started = parse_rfc2822(string_of(c.value("start_time", nlohmann::json())));
  return s;
}

}  // namespace dialer::carriers::twilio
