#include "adapters/carriers/twilio/twilio_number_provider.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/carriers/twilio/twilio_protocol.hpp"
#include "adapters/carriers/rest/json_text.hpp"
#include "adapters/http/url.hpp"
#include "engine/phone.hpp"

namespace dialer::carriers::twilio {

namespace {

using rest::text_of;

// Twilio's error body as a message, and the error's kind: 404 and 21421/21422 (no such number, or not available)
// are not_found; 429 and 5xx unavailable; the rest invalid_input.
error twilio_error(const rest::json_answer& a, std::string_view doing) {
  std::int64_t code = 0;
  if (a.body.is_object() && a.body.contains("code") && a.body["code"].is_number_integer())
    code = a.body["code"].get<std::int64_t>();
  const auto message = text_of(a.body, "message");
  const auto detail = code != 0 ? fmt::format("twilio {}: {} (HTTP {})", code, message.substr(0, 300), a.status)
                                : fmt::format("twilio answered HTTP {}", a.status);
  errc kind = errc::invalid_input;
  if (a.status == 404 || code == 21421 || code == 21422 || code == 20404) kind = errc::not_found;
  else if (a.status == 429 || a.status >= 500) kind = errc::unavailable;
  else if (a.status == 401 || a.status == 403) kind = errc::unavailable;
  return error{kind, fmt::format("{}: {}", doing, detail), {}};
}

result<purchased_number> purchased_of(const nlohmann::json& resource, const std::string& e164) {
  purchased_number p;
  p.e164 = text_of(resource, "phone_number");
  if (p.e164.empty()) p.e164 = e164;
  p.provider = "twilio";
  p.provider_ref = text_of(resource, "sid");
  if (p.provider_ref.size() != 34 || p.provider_ref.substr(0, 2) != "PN")
    return make_error(errc::unavailable, "twilio: the number resource of {} has no PN sid", e164);
  auto parsed = parse_phone(p.e164, "US");
  if (!parsed) return std::move(parsed).error();
  p.e164 = parsed->e164;
  p.country = parsed->country;
  p.type = parsed->type;
  return p;
}

}  // namespace

result<twilio_numbers_settings> twilio_numbers_settings_from(const carrier_environment& env, std::string base_url) {
  twilio_numbers_settings s;
  const auto* sid = env.credentials.find("twilio.account_sid");
  const auto* token = env.credentials.find("twilio.auth_token");
  const auto* key_sid = env.credentials.find("twilio.api_key_sid");
  const auto* key_secret = env.credentials.find("twilio.api_key_secret");
  if (!sid) return make_error(errc::invalid_input, "twilio numbers: set DIALER_TWILIO_ACCOUNT_SID");
  s.account_sid = sid->reveal();
  if (key_sid && key_secret) s.authorization = rest::basic_authorization(key_sid->reveal(), key_secret->reveal());
  else if (token) s.authorization = rest::basic_authorization(s.account_sid, token->reveal());
  else
    return make_error(errc::invalid_input,
                      "twilio numbers: set DIALER_TWILIO_AUTH_TOKEN (or an API key: DIALER_TWILIO_API_KEY_SID and "
                      "DIALER_TWILIO_API_KEY_SECRET)");
  if (env.public_base_url.empty())
    return make_error(errc::invalid_input,
                      "twilio numbers: DIALER_PUBLIC_BASE_URL is not set: a number's calls are sent to "
                      "<DIALER_PUBLIC_BASE_URL>/v1/inbound/twilio");
  auto base = env.public_base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  s.voice_url = base + "/v1/inbound/twilio";
  if (!base_url.empty()) {
    while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
    s.base_url = base_url;
  }
  return s;
}

twilio_number_provider::twilio_number_provider(twilio_numbers_settings s)
    : s_(std::move(s)), client_("twilio", rest::pool_options_for(s_.base_url, s_.request_timeout), s_.authorization) {}

std::string twilio_number_provider::path(std::string_view rest) const {
  return fmt::format("/2010-04-01/Accounts/{}/{}", s_.account_sid, rest);
}

result<std::vector<available_number>> twilio_number_provider::search(const number_search& q) {
  const auto type = q.type.value_or(number_type::local);
  const std::string_view kind = type == number_type::toll_free ? "TollFree" : type == number_type::mobile ? "Mobile" : "Local";
  std::string target = path(fmt::format("AvailablePhoneNumbers/{}/{}.json?PageSize={}", http::percent_encode(q.country),
                                        kind, std::clamp(q.limit, 1, 1000)));
  if (q.area_code) target += "&AreaCode=" + http::percent_encode(*q.area_code);
  if (q.contains) target += "&Contains=" + http::percent_encode(*q.contains);
  target += "&VoiceEnabled=true";
  auto a = client_.call("GET", target);
  if (!a) return std::move(a).error();
  if (a->status == 404) return std::vector<available_number>{};  // no numbers of that country or type
  if (a->status != 200) return twilio_error(*a, "searching numbers");
  if (!a->body.is_object() || !a->body.contains("available_phone_numbers") ||
      !a->body["available_phone_numbers"].is_array())
    return make_error(errc::unavailable, "twilio: the number search answer is not the expected JSON");
  std::vector<available_number> out;
  for (const auto& item : a->body["available_phone_numbers"]) {
    available_number n;
    n.e164 = text_of(item, "phone_number");
    if (n.e164.empty()) continue;
    n.country = text_of(item, "iso_country");
    if (n.country.empty()) n.country = q.country;
    n.type = type;
    n.region = text_of(item, "region");
    n.provider = "twilio";
    out.push_back(std::move(n));
  }
  return out;
}

result<purchased_number> twilio_number_provider::buy(const std::string& e164) {
  const auto body = encode_form({{"PhoneNumber", e164},
                                 {"VoiceUrl", s_.voice_url},
                                 {"VoiceMethod", "POST"},
                                 {"FriendlyName", "dialer " + e164}});
  auto a = client_.call("POST", path("IncomingPhoneNumbers.json"), "application/x-www-form-urlencoded", body);
  if (!a) return std::move(a).error();
  if (a->status != 201 && a->status != 200) return twilio_error(*a, fmt::format("buying {}", e164));
  return purchased_of(a->body, e164);
}

result<void> twilio_number_provider::release(const purchased_number& number) {
  if (number.provider_ref.empty())
    return make_error(errc::invalid_input, "twilio: {} has no PN sid to release", number.e164);
  auto a = client_.call("DELETE", path(fmt::format("IncomingPhoneNumbers/{}.json", http::percent_encode(number.provider_ref))));
  if (!a) return std::move(a).error();
  if (a->status == 204 || a->status == 200) return ok();
  if (a->status == 404) {
    spdlog::warn("twilio: releasing {}: Twilio no longer has {}; taken as released", number.e164, number.provider_ref);
    return ok();
  }
  return twilio_error(*a, fmt::format("releasing {}", number.e164));
}

result<purchased_number> twilio_number_provider::claim(const std::string& e164) {
  auto listed = client_.call("GET", path("IncomingPhoneNumbers.json?PhoneNumber=" + http::percent_encode(e164)));
  if (!listed) return std::move(listed).error();
  if (listed->status != 200) return twilio_error(*listed, fmt::format("looking up {}", e164));
  const auto& body = listed->body;
  if (!body.is_object() || !body.contains("incoming_phone_numbers") || !body["incoming_phone_numbers"].is_array())
    return make_error(errc::unavailable, "twilio: the number list is not the expected JSON");
  const nlohmann::json* found = nullptr;
  for (const auto& n : body["incoming_phone_numbers"])
    if (text_of(n, "phone_number") == e164) found = &n;
  if (!found)
    return make_error(errc::not_found, "twilio: {} is not a number of account {}", e164, s_.account_sid);
  const auto sid = text_of(*found, "sid");
  if (const auto trunk = text_of(*found, "trunk_sid"); !trunk.empty())
    return make_error(errc::conflict,
                      "twilio: {} belongs to Elastic SIP trunk {}; pointing its voice URL here would take it off the "
                      "trunk: import it with --provider sip instead",
                      e164, trunk);
  twilio::form f{{"VoiceUrl", s_.voice_url}, {"VoiceMethod", "POST"}};
  // An application SID wins over VoiceUrl: cleared, or calls would never reach us.
  if (!text_of(*found, "voice_application_sid").empty()) f.emplace_back("VoiceApplicationSid", "");
  auto updated = client_.call("POST", path(fmt::format("IncomingPhoneNumbers/{}.json", http::percent_encode(sid))),
                              "application/x-www-form-urlencoded", encode_form(f));
  if (!updated) return std::move(updated).error();
  if (updated->status != 200) return twilio_error(*updated, fmt::format("pointing {} at this platform", e164));
  if (text_of(updated->body, "voice_url") != s_.voice_url)
    return make_error(errc::unavailable, "twilio: {} kept another voice URL after the update", e164);
  return purchased_of(updated->body, e164);
}

}  // namespace dialer::carriers::twilio
