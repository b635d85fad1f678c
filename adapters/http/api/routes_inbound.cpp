// /v1/inbound/twilio and /v1/inbound/telnyx: an inbound call to one of our numbers, handed to the number's agent.
// The carrier's signature is checked first (403 when it does not hold: nothing is routed); the number -> agent
// lookup is the in-memory route_table, so these routes run on the I/O threads and never wait for the database.
#include "adapters/http/api/api_internal.hpp"
#include "adapters/carriers/rest/callback_bell.hpp"
#include "adapters/carriers/telnyx/telnyx_protocol.hpp"
#include "adapters/carriers/twilio/twilio_protocol.hpp"
#include "adapters/http/signatures.hpp"

#include <limits>

namespace dialer::http {

namespace bhttp = boost::beast::http;

using carriers::twilio::xml_escape;

namespace {

std::string header(const request& req, std::string_view name) {
  const auto v = req[boost::beast::string_view(name.data(), name.size())];
  return std::string(v.data(), v.size());
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The route of the called number, or null when the call is to be rejected (counted): no agent, or a hand-off that
// is neither a media stream (wss://) nor a SIP URI (an https:// one would make the carrier run TwiML the agent's
// owner wrote, under the platform's carrier account). 503 until the table's first load.
std::shared_ptr<const inbound_route> routable(api_call& c, std::string_view carrier, const std::string& to) {
  if (!c.options.routes->loaded()) {
    c.count_inbound(carrier, "not_ready");
    throw api_error(503, "not_ready", "the number table is still loading; retry shortly");
  }
  auto route = c.options.routes->find(to);
  if (!route || !(starts_with(route->handoff, "wss://") || starts_with(route->handoff, "sip:") ||
                  starts_with(route->handoff, "sips:"))) {
    c.count_inbound(carrier, "rejected");
    return nullptr;
  }
  c.count_inbound(carrier, "routed");
  return route;
}

reply twiml(std::string body) {
  reply r;
  r.content_type = "text/xml";
  r.text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>" + body + "</Response>";
  return r;
}

// The TwiML that hands the call to the agent: a media stream (wss://) with the call's identity as parameters,
// a SIP dial (sip:, sips:), or the agent's own TwiML app (https://).
std::string twilio_handoff(const inbound_route& r, const std::string& call_sid, const std::string& from) {
  if (starts_with(r.handoff, "sip:") || starts_with(r.handoff, "sips:"))
    return "<Dial><Sip>" + xml_escape(r.handoff) + "</Sip></Dial>";
  const auto param = [](std::string_view name, std::string_view value) {
    return "<Parameter name=\"" + xml_escape(name) + "\" value=\"" + xml_escape(value) + "\"/>";
  };
  return "<Connect><Stream url=\"" + xml_escape(r.handoff) + "\">" + param("number", r.e164) +
         param("number_id", std::to_string(r.number.value())) + param("agent_id", std::to_string(r.agent.value())) +
         param("agent", r.agent_name) + param("call_sid", call_sid) + param("from", from) + "</Stream></Connect>";
}

// The form Twilio posted, once X-Twilio-Signature holds over the URL Twilio requested (our public base and the
// target as received, path and query) and the parameters: 400 for a malformed form, 403 (counted under
// `counter`) for a bad signature.
query_params signed_twilio_form(api_call& c, std::string_view counter) {
  auto params = parse_form(c.req.body());
  if (!params) throw api_error(400, "malformed_form", "the body is not application/x-www-form-urlencoded");
  const std::string url = c.options.public_base_url + std::string(c.req.target().data(), c.req.target().size());
  if (!twilio_signature_ok(c.options.twilio_auth_token, url, *params, header(c.req, "X-Twilio-Signature"))) {
    c.count_inbound(counter, "bad_signature");
    throw api_error(403, "bad_signature", "X-Twilio-Signature does not match this request");
  }
  return std::move(*params);
}

reply twilio(api_call& c) {
  const auto& o = c.options;
  if (!o.routes || o.twilio_auth_token.empty() || o.public_base_url.empty()) {
    c.count_inbound("twilio", "unconfigured");
    throw api_error(503, "inbound_not_configured",
                    "inbound Twilio calls need DIALER_PUBLIC_BASE_URL and DIALER_TWILIO_AUTH_TOKEN");
  }
  auto params = signed_twilio_form(c, "twilio");
  std::string to, from, call_sid;
  for (const auto& [k, v] : params) {
    if (k == "To") to = v;
    else if (k == "From") from = v;
    else if (k == "CallSid") call_sid = v;
  }
  const auto route = routable(c, "twilio", to);
  if (!route) return twiml("<Reject/>");
  return twiml(twilio_handoff(*route, call_sid, from));
}

// The webhook's JSON once telnyx-signature-ed25519 holds over "<telnyx-timestamp>|<body>" and the timestamp is
// within the tolerance: 403 (counted under `counter`) otherwise, 400 for a body that is not {"data": {...}}.
nlohmann::json signed_telnyx_body(api_call& c, std::string_view counter) {
  const auto& o = c.options;
  const auto stamp = header(c.req, "telnyx-timestamp");
  const auto signature = header(c.req, "telnyx-signature-ed25519");
  const auto signed_ok = ed25519_ok(o.telnyx_public_key, stamp + "|" + c.req.body(), signature);
  std::int64_t when = 0;
  bool fresh = false;
  try {
    std::size_t used = 0;
    when = std::stoll(stamp, &used);
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(c.clk.wall().time_since_epoch()).count();
    fresh = used == stamp.size() && std::llabs(now - when) <= o.telnyx_tolerance.count();
  } catch (...) {
  }
  if (!signed_ok || !fresh) {
    c.count_inbound(counter, "bad_signature");
    throw api_error(403, "bad_signature",
                    signed_ok ? "telnyx-timestamp is not within 5 minutes of now"
                              : "telnyx-signature-ed25519 does not match this request");
  }
  auto body = nlohmann::json::parse(c.req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("data") || !body["data"].is_object())
    throw api_error(400, "malformed_json", "the body is not a Telnyx webhook ({\"data\": {...}})");
  return body;
}

// Telnyx Call Control: an inbound call's call.initiated decides the command (answer with a media stream, transfer
// to a SIP URI, reject), issued through Call Control's REST API (options.telnyx_command) and told in the answer.
reply telnyx(api_call& c) {
  const auto& o = c.options;
  if (!o.routes || o.telnyx_public_key.empty() || !o.telnyx_command) {
    c.count_inbound("telnyx", "unconfigured");
    // A 503 makes Telnyx retry (or fail over): better than a 200 after which nobody answers the call.
    throw api_error(503, "inbound_not_configured",
                    "inbound Telnyx calls need DIALER_TELNYX_PUBLIC_KEY (to verify them) and DIALER_TELNYX_API_KEY (to "
                    "answer them through Call Control)");
  }
  const auto body = signed_telnyx_body(c, "telnyx");
  using carriers::telnyx::text_of;
  const auto& data = body["data"];
  const auto type = text_of(data, "event_type");
  const auto& payload = data.contains("payload") ? data["payload"] : data;
  // Only a new inbound call is routed: the application's webhook also sees the legs it dials itself (a SIP
  // hand-off's transfer leg, which has its own webhook URL, but Telnyx may still report it here).
  const auto direction = text_of(payload, "direction");
  if (type != "call.initiated" || (!direction.empty() && direction != "incoming"))
    return json_reply({{"action", "none"}, {"event_type", type}});
  const auto to = text_of(payload, "to");
  const auto call = text_of(payload, "call_control_id");
  if (call.empty() || call.size() > 256) throw api_error(400, "malformed_json", "the webhook has no call_control_id");
  const auto route = routable(c, "telnyx", to);
  // The command is issued through Call Control's REST API (Telnyx acts on nothing in this answer, which says what
  // was decided, for the log and the tests). Its command_id makes a webhook Telnyx delivers twice one command.
  const auto issue = [&](const nlohmann::json& decided) {
    auto command = decided;
    const std::string action = command["action"];
    command.erase("action");
    command.erase("call_control_id");
    command["command_id"] = "inbound-" + action + "-" + call;
    o.telnyx_command(call, action, command);
    return json_reply(decided);
  };
  if (!route) return issue({{"action", "reject"}, {"call_control_id", call}, {"cause", "CALL_REJECTED"}});
  const nlohmann::json state{{"number", route->e164}, {"number_id", route->number.value()}, {"agent_id", route->agent.value()}};
  if (starts_with(route->handoff, "sip:") || starts_with(route->handoff, "sips:"))
    return issue({{"action", "transfer"}, {"call_control_id", call}, {"to", route->handoff},
                  {"client_state", base64(state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))}});
  return issue({{"action", "answer"},
                {"call_control_id", call},
                {"stream_url", route->handoff},
                {"stream_track", "both_tracks"},
                {"stream_bidirectional_mode", "rtp"},
                {"client_state", base64(state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))}});
}

// A status callback of a call the Twilio carrier placed (and its async AMD result): verified, then stored in the
// carrier callback inbox for the adapter instance that placed the call, whichever engine runs it; this process's
// own instance is woken at once. The URL names the instance and the attempt (it is signed with the rest).
// Initiated and ringing change nothing the engine keeps: acknowledged, not stored.
reply twilio_status(api_call& c) {
  const auto& o = c.options;
  if (o.twilio_auth_token.empty() || o.public_base_url.empty()) {
    c.count_inbound("twilio_status", "unconfigured");
    throw api_error(503, "carrier_callbacks_not_configured",
                    "Twilio status callbacks need DIALER_PUBLIC_BASE_URL and DIALER_TWILIO_AUTH_TOKEN");
  }
  auto params = signed_twilio_form(c, "twilio_status");
  const auto instance = c.query_value("instance").value_or("");
  const auto placement = c.query_value("placement").value_or("");
  const bool amd_step = c.query_value("step").value_or("") == "amd";
  const auto attempt = c.query_int("attempt", 1, std::numeric_limits<std::int64_t>::max());
  if (instance.empty() || instance.size() > 64 || placement.size() > 64 || !attempt)
    throw api_error(400, "malformed_callback", "the callback URL must name the instance and the attempt");
  nlohmann::json fields = nlohmann::json::object();
  std::string call_sid, status, answered_by;
  for (const auto& [k, v] : params) {
    fields[k] = v;
    if (k == "CallSid") call_sid = v;
    else if (k == "CallStatus") status = v;
    else if (k == "AnsweredBy") answered_by = v;
  }
  if (call_sid.empty()) throw api_error(400, "malformed_callback", "the callback has no CallSid");
  std::string event;
  if (amd_step) event = answered_by.empty() ? "" : "amd";
  else if (status == "completed" || status == "busy" || status == "failed" || status == "no-answer" || status == "canceled")
    event = "final";
  else if (status == "in-progress") event = "answered";

  if (event.empty()) {
    c.count_inbound("twilio_status", "ignored");
    reply r;
    r.status = 204;
    return r;
  }
  carrier_callback cb;
  cb.carrier = "twilio";
  cb.instance = instance;
  cb.attempt = attempt_id(*attempt);
  cb.placement = placement;
  cb.call_id = call_sid;
  cb.event = event;
  cb.params_json = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto stored = c.db().callbacks().put(cb);
  if (!stored) throw api_error(503, "unavailable", "the callback could not be stored; retry");
  c.count_inbound("twilio_status", *stored ? "stored" : "duplicate");
  if (*stored) carriers::rest::callback_bell::process().ring(instance);
  reply r;
  r.status = 204;
  return r;
}

// A webhook of a call the Telnyx carrier placed: verified, then stored in the carrier callback inbox for the adapter
// instance its client_state names (client_state is covered by the signature; the URL is not), whichever engine
// runs it. Telnyx wants a 200, or it retries: events of calls that are not ours, and events that change nothing
// the adapter keeps (call.bridged, streaming.*), are acknowledged and counted, not stored.
reply telnyx_events(api_call& c) {
  if (c.options.telnyx_public_key.empty()) {
    c.count_inbound("telnyx_events", "unconfigured");
    throw api_error(503, "carrier_callbacks_not_configured", "Telnyx call webhooks need DIALER_TELNYX_PUBLIC_KEY");
  }
  const auto body = signed_telnyx_body(c, "telnyx_events");
  const auto& data = body["data"];
  const auto type = carriers::telnyx::text_of(data, "event_type");
  const auto& payload = data.contains("payload") ? data["payload"] : data;
  const auto tag = carriers::telnyx::decode_client_state(carriers::telnyx::text_of(payload, "client_state"));
  const auto step = carriers::telnyx::step_of(type);
  const auto call_id = carriers::telnyx::text_of(payload, "call_control_id");
  const auto done = [] { return json_reply(nlohmann::json::object()); };
  if (!tag || step.empty()) {
    c.count_inbound("telnyx_events", "ignored");
    return done();
  }
  if (call_id.empty() || call_id.size() > 256)
    throw api_error(400, "malformed_callback", "the webhook has no call_control_id");
  carrier_callback cb;
  cb.carrier = "telnyx";
  cb.instance = tag->instance;
  cb.attempt = attempt_id(tag->attempt);
  cb.placement = tag->placement;
  cb.call_id = call_id;
  cb.event = std::string(step);
  cb.params_json = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto stored = c.db().callbacks().put(cb);
  if (!stored) throw api_error(503, "unavailable", "the webhook could not be stored; retry");
  c.count_inbound("telnyx_events", *stored ? "stored" : "duplicate");
  if (*stored) carriers::rest::callback_bell::process().ring(tag->instance);
  return done();
}

}  // namespace

void add_inbound_routes(api_router& r) {
  // Signed by Telnyx; stores into the database (a worker).
  r.add(bhttp::verb::post, "/v1/carriers/telnyx/events", {telnyx_events, false, true});
  // Signed by Twilio; stores into the database (a worker).
  r.add(bhttp::verb::post, "/v1/carriers/twilio/status", {twilio_status, false, true});
  // No API key: the carrier's signature is the authentication. Not blocking: the table is in memory.
  r.add(bhttp::verb::post, "/v1/inbound/twilio", {twilio, false, false});
  r.add(bhttp::verb::post, "/v1/inbound/telnyx", {telnyx, false, false});
}

}  // namespace dialer::http
