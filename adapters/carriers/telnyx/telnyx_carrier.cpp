#include "adapters/carriers/telnyx/telnyx_carrier.hpp"

#include <openssl/evp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "adapters/carriers/rest/callback_bell.hpp"
#include "adapters/carriers/rest/callback_core.hpp"
#include "adapters/carriers/rest/handoff.hpp"
#include "adapters/carriers/rest/http_pool.hpp"
#include "adapters/carriers/rest/settings.hpp"
#include "adapters/carriers/telnyx/telnyx_protocol.hpp"

namespace dialer::carriers::telnyx {

namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;


std::string data_text(const nlohmann::json& body, const char* key) {
  if (!body.is_object() || !body.contains("data") || !body["data"].is_object()) return {};
  const auto& d = body["data"];
  auto it = d.find(key);
  return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string telnyx_account_identity(const secret& api_key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(api_key.reveal().data(), api_key.reveal().size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < 8 && i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return "telnyx:" + hex;
}

result<telnyx_settings> parse_telnyx_settings(const nlohmann::json& json, const carrier_environment& env) {
  telnyx_settings s;
  const rest::settings_reader o("telnyx", json);
  static constexpr std::string_view known[] = {
      "api_key",         "connection_id", "base_url",      "account_cps",           "ring_timeout",
      "request_timeout", "max_connections", "status_poll_after", "inbox_poll",    "dial_resends",
      "redial_window",   "channel_limit_backoff", "machine_detection", "stream",  "ca_file"};
  try {
    o.only_known(known);
    // The campaign file's own key (dialer run), else the process's; a stored campaign's is redacted.
    auto own_key = o.text("api_key", true);
    if (own_key == "<redacted>") own_key.clear();
    if (!own_key.empty()) s.api_key = secret(own_key);
    else if (const auto* k = env.credentials.find("telnyx.api_key")) s.api_key = *k;
    if (s.api_key.empty())
      return make_error(errc::invalid_input,
                        "telnyx carrier: no API key: set DIALER_TELNYX_API_KEY (or DIALER_CARRIER_SECRETS_FILE)");
    s.connection_id = o.text("connection_id");
    if (s.connection_id.empty())
      if (const auto* c = env.credentials.find("telnyx.connection_id")) s.connection_id = c->reveal();
    if (s.connection_id.empty())
      return make_error(errc::invalid_input,
                        "telnyx carrier: no connection_id (the Call Control application that places the calls): set "
                        "it in the carrier settings or DIALER_TELNYX_CONNECTION_ID");
    if (s.connection_id.size() > 64 ||
        !std::all_of(s.connection_id.begin(), s.connection_id.end(),
                     [](unsigned char c) { return std::isalnum(c) != 0 || c == '-' || c == '_'; }))
      return make_error(errc::invalid_input, "telnyx carrier: connection_id \"{}\" is not a Telnyx id",
                        s.connection_id.substr(0, 80));
    s.base_url = rest::base_url_setting(o, "base_url", s.base_url);
    s.account_cps = o.number("account_cps", 30, 0.01, 10'000);
    s.ring_timeout_s = static_cast<int>(o.number("ring_timeout", 30, 5, 600));
    s.request_timeout = o.duration("request_timeout", s.request_timeout, milliseconds(100), milliseconds(120'000));
    s.max_connections = static_cast<std::size_t>(o.number("max_connections", 64, 1, 4096));
    s.status_poll_after = o.duration("status_poll_after", s.status_poll_after, milliseconds(500), milliseconds(86'400'000));
    s.inbox_poll = o.duration("inbox_poll", s.inbox_poll, milliseconds(10), milliseconds(60'000));
    s.dial_resends = static_cast<int>(o.number("dial_resends", 3, 0, 5));
    // Telnyx ignores a repeated command_id for 60 s: past that, a resend could ring the callee a second time.
    s.redial_window = o.duration("redial_window", s.redial_window, milliseconds(0), milliseconds(50'000));
    s.channel_limit_backoff =
        o.duration("channel_limit_backoff", s.channel_limit_backoff, milliseconds(100), milliseconds(600'000));
    s.ca_file = o.text("ca_file");
    if (o.member("machine_detection")) {
      const auto md = o.nested("machine_detection");
      static constexpr std::string_view md_known[] = {"mode", "on_machine"};
      md.only_known(md_known);
      static constexpr std::string_view modes[] = {"off",         "disabled",     "detect", "detect_beep",
                                                   "detect_words", "greeting_end", "premium"};
      const auto mode = md.choice("mode", "disabled", modes);
      s.machine_detection = mode == "off" ? "disabled" : mode;
      static constexpr std::string_view on[] = {"hangup", "leave_message"};
      s.hang_up_on_machine = md.choice("on_machine", "hangup", on) == "hangup";
    }
    if (o.member("stream")) {
      const auto st = o.nested("stream");
      static constexpr std::string_view st_known[] = {"track", "mode", "codec"};
      st.only_known(st_known);
      static constexpr std::string_view tracks[] = {"inbound_track", "outbound_track", "both_tracks"};
      static constexpr std::string_view stream_modes[] = {"rtp", "mp3"};
      static constexpr std::string_view codecs[] = {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"};
      s.stream_track = st.choice("track", s.stream_track, tracks);
      s.stream_mode = st.choice("mode", s.stream_mode, stream_modes);
      s.stream_codec = st.choice("codec", "", codecs);
    }
  } catch (const rest::bad_setting& b) {
    return make_error(errc::invalid_input, "{}", b.what());
  }
  s.installation = env.installation;
  s.public_base_url = env.public_base_url;
  while (!s.public_base_url.empty() && s.public_base_url.back() == '/') s.public_base_url.pop_back();
  if (s.public_base_url.empty())
    return make_error(errc::invalid_input,
                      "telnyx carrier: DIALER_PUBLIC_BASE_URL is not set: Telnyx posts each call's events to "
                      "<DIALER_PUBLIC_BASE_URL>/v1/carriers/telnyx/events, served by `dialer serve`");
  return s;
}

namespace calls {
enum class phase : std::uint8_t { placing, accepted, uncertain };
struct call_state {
  std::string placement;
  origination_request request;  // kept: a lost dial is sent again as it was; a SIP hand-off is a transfer later
  std::string body;             // the dial, byte for byte (same command_id)
  std::string call_id;          // call_control_id
  phase at = phase::placing;
  bool doubtful = false;        // a send of this dial may have created the call: never refused from now on
  int resends = 0;
  std::chrono::nanoseconds resend_at{};  // > 0: due on the callback thread
  bool reported_accept = false;
  system_clock::time_point sent{};
  std::chrono::nanoseconds first_sent{};  // monotonic, for redial_window
  std::chrono::nanoseconds next_poll{};
  bool poll_in_flight = false;
  std::optional<system_clock::time_point> answered;
  bool machine = false;
  bool amd_seen = false;
  bool cancel_wanted = false, cancel_sent = false, canceled = false;
  bool transfer_sent = false, agent_answered = false, agent_failed = false;
  // A call.hangup of an answered call that came before the machine-detection result: held a moment for it.
  std::optional<hangup> pending_final;
  std::chrono::nanoseconds final_due{};
};
}  // namespace calls

struct telnyx_carrier::impl : rest::callback_core<calls::call_state>, std::enable_shared_from_this<telnyx_carrier::impl> {
  using phase = calls::phase;
  using call_state = calls::call_state;

  // How long a call.hangup waits for the call.answered / machine result that Telnyx may deliver after it.
  static constexpr milliseconds kFinalGrace{1000};
  // How the end of a call read back by GET /v2/calls/{id} is named (event_of tells it from a call.hangup).
  static constexpr std::string_view kFromStatus = "status (no call.hangup came)";

  impl(telnyx_settings st, dialer::clock& c) : callback_core("telnyx", c, st.inbox_poll), s(std::move(st)) {
    authorization = "Bearer " + s.api_key.reveal();
    options.connection_id = s.connection_id;
    options.command_scope = s.installation;
    options.webhook_url = s.public_base_url + "/v1/carriers/telnyx/events";
    options.timeout_secs = s.ring_timeout_s;
    options.machine_detection = s.machine_detection;
    options.stream_track = s.stream_track;
    options.stream_bidirectional_mode = s.stream_mode;
    options.stream_codec = s.stream_codec;
  }

  telnyx_settings s;
  std::string authorization;
  dial_options options;
  result<void> start();
  std::chrono::nanoseconds hold_until{};  // channel limit: dials refused `throttled` until then (monotonic)
  milliseconds hold_step{0};

  std::atomic<std::uint64_t> placed{0}, resent{0}, refused{0}, indeterminate{0}, webhooks{0}, polled{0}, outcomes{0},
      channel_limited{0};

  void refuse(attempt_id a, origination_refusal why, std::optional<milliseconds> after, std::string_view detail) {
    refused.fetch_add(1, std::memory_order_relaxed);
    if (why == origination_refusal::indeterminate) indeterminate.fetch_add(1, std::memory_order_relaxed);
    events().on_refused(a, why, after, detail);
  }

  rest::http_request request(std::string method, std::string target, std::string body = {}) const {
    rest::http_request q;
    q.method = std::move(method);
    q.target = std::move(target);
    if (!body.empty()) {
      q.content_type = "application/json";
      q.body = std::move(body);
    }
    q.authorization = authorization;
    q.headers.emplace_back("Accept", "application/json");
    return q;
  }

  void place(const origination_request& r) {
    std::optional<milliseconds> held;
    bool refused_draining = false;
    std::string placement, body;
    {
      std::lock_guard g(m);
      refused_draining = draining;
      const auto now = clk.monotonic();
      if (hold_until > now) held = std::chrono::ceil<milliseconds>(hold_until - now);
      if (!draining && !held) placement = fmt::format("{:08x}", placements());
    }
    if (refused_draining) {
      refuse(r.attempt, origination_refusal::not_placed, std::nullopt, "the telnyx carrier is draining");
      return;
    }
    if (held) {
      refuse(r.attempt, origination_refusal::throttled, held,
             "telnyx: the connection's channel limit was reached (SIP 403); dials held");
      return;
    }
    int dropped = 0;
    auto made = dial_body(r, options, encode_client_state({instance, r.attempt.value(), placement, ""}), &dropped);
    if (!made) {
      refuse(r.attempt, origination_refusal::not_placed, milliseconds(60'000), made.error().message);
      return;
    }
    if (dropped > 0)
      spdlog::debug("telnyx: attempt {}: {} contact variables left out of the stream URL ({} characters at most)",
                    r.attempt.value(), dropped, kMaxStreamUrl);
    body = made->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    {
      std::lock_guard g(m);
      refused_draining = draining;  // drain() may have begun since the check above
      if (!refused_draining) {
        auto& st = calls[r.attempt.value()];
        st = call_state{};
        st.placement = placement;
        st.request = r;
        st.body = body;
        st.sent = clk.wall();
        st.first_sent = clk.monotonic();
      }
    }
    if (refused_draining) {
      refuse(r.attempt, origination_refusal::not_placed, std::nullopt, "the telnyx carrier is draining");
      return;
    }
    send_dial(r.attempt, placement, std::move(body));
  }

  void send_dial(attempt_id attempt, const std::string& placement, std::string body) {
    pool->send(request("POST", "/v2/calls", std::move(body)),
               [this, attempt, placement](rest::http_response&& a) { dialed(attempt, placement, std::move(a)); });
  }

  // The answer to a dial (pool thread).
  void dialed(attempt_id attempt, const std::string& placement, rest::http_response&& a) {
    bool doubtful = false, known = false;
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end() || it->second.placement != placement) return;
      doubtful = it->second.doubtful;
      known = !it->second.call_id.empty();
    }
    const bool created = a.fail == rest::failure::none && a.status >= 200 && a.status < 300;
    if (known && !created) return;  // settled already (a webhook told the call id): a late answer changes nothing
    if (created) {
      const auto body = nlohmann::json::parse(a.body, nullptr, false);
      const auto id = data_text(body, "call_control_id");
      if (id.empty()) {
        again(attempt, placement, fmt::format("HTTP {} without a call_control_id", a.status));
        return;
      }
      placed.fetch_add(1, std::memory_order_relaxed);
      learned(attempt, placement, id, true);
      return;
    }
    if (a.fail == rest::failure::not_sent && !doubtful) {
      if (forget(attempt, placement)) {
        thread_local std::minstd_rand jitter(std::random_device{}());
        report([&] { refuse(attempt, origination_refusal::not_placed, milliseconds(500 + jitter() % 1000), a.error); });
      }
      return;
    }
    if (a.fail != rest::failure::none) {
      again(attempt, placement, a.error);
      return;
    }
    auto decision = classify_error(a.status, a.body, a.retry_after);
    if (!decision) {
      again(attempt, placement, fmt::format("telnyx answered HTTP {}", a.status));
      return;
    }
    if (doubtful) {
      // An earlier send may have created the call, and what Telnyx answers a repeated command_id is not documented:
      // from now on only a call id settles this dial (or the redial window runs out: `unknown`), never a refusal.
      again(attempt, placement, decision->detail);
      return;
    }
    if (!forget(attempt, placement)) return;
    if (decision->why == origination_refusal::not_placed && decision->retry_after &&
        *decision->retry_after >= milliseconds(30'000))
      spdlog::error("telnyx: attempt {}: {}", attempt.value(), decision->detail);
    report([&] { refuse(attempt, decision->why, decision->retry_after, decision->detail); });
  }

  // The dial may have created the call: send it again with the same command_id (after a back-off, on the callback
  // thread), or, once the resends are spent, tell the engine it is indeterminate.
  void again(attempt_id attempt, const std::string& placement, const std::string& why) {
    bool give_up = false;
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end() || it->second.placement != placement) return;
      auto& c = it->second;
      c.doubtful = true;
      // Not sent again once the engine asked to cancel it or is draining: a late dial would ring after that.
      if (c.resends >= s.dial_resends || c.cancel_wanted || draining) {
        give_up = c.at != phase::uncertain;
        c.at = phase::uncertain;
        c.resend_at = {};
      } else {
        c.resend_at = clk.monotonic() + milliseconds(250) * (1 << c.resends);
        ++c.resends;
      }
    }
    if (give_up) refuse(attempt, origination_refusal::indeterminate, std::nullopt, why);
  }

  void learned(attempt_id attempt, const std::string& placement, const std::string& id, bool from_dial) {
    bool tell = false, cancel = false, stray = false;
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end() || it->second.placement != placement) return;
      auto& c = it->second;
      if (c.call_id.empty()) c.call_id = id;
      // A dial answered with another call than the one kept: Telnyx did not take a resend as the same command (a
      // second call for one attempt). It is never followed, only hung up.
      stray = c.call_id != id && from_dial;
      if (c.call_id != id && !stray) return;
      if (!stray) {
        if (from_dial && c.at == phase::placing) c.at = phase::accepted;
        c.resend_at = {};
        if (c.next_poll == std::chrono::nanoseconds{}) c.next_poll = clk.monotonic() + s.status_poll_after;
        tell = !c.reported_accept;
        c.reported_accept = true;
        cancel = c.cancel_wanted && !c.cancel_sent;
        if (cancel) c.cancel_sent = true;
      }
    }
    if (stray) {
      spdlog::error("telnyx: attempt {}: a resent dial created a second call {}; hanging it up", attempt.value(), id);
      hang_up(attempt, id);
      return;
    }
    if (tell) events().on_accepted(attempt, id);
    if (cancel) hang_up(attempt, id);
  }

  // Hangs the call up (a repeat after it ended is answered 422 90018: nothing to do). A failed try is tried again
  // by the callback thread's next pass.
  void hang_up(attempt_id attempt, const std::string& id) {
    nlohmann::json body{{"command_id", fmt::format("hangup-{}-{}", attempt.value(), id.substr(0, 40))}};
    pool->send(request("POST", "/v2/calls/" + id + "/actions/hangup", body.dump()),
               [this, attempt, id](rest::http_response&& a) {
                 if (a.fail == rest::failure::none && (a.status < 300 || a.status == 404 || a.status == 422)) return;
                 spdlog::warn("telnyx: hanging up {}: {}", id,
                              a.fail != rest::failure::none ? a.error : fmt::format("HTTP {}", a.status));
                 std::lock_guard g(m);
                 if (auto it = calls.find(attempt.value()); it != calls.end() && it->second.call_id == id)
                   it->second.cancel_sent = false;
               });
  }

  // The callee answered a call whose agent is a SIP URI: transfer it there. A refusal ends the call (`failed`).
  void transfer(attempt_id attempt, const std::string& id, const origination_request& r, const std::string& placement,
                int tries_left = 3) {
    const auto body = transfer_body(r, options, encode_client_state({instance, attempt.value(), placement, ""}),
                                    encode_client_state({instance, attempt.value(), placement, "agent"}));
    pool->send(request("POST", "/v2/calls/" + id + "/actions/transfer", body.dump()),
               [this, attempt, id, r, placement, tries_left](rest::http_response&& a) {
                 if (a.fail == rest::failure::none && a.status < 300) return;
                 // Lost, unsent or a 5xx: the same command again (its command_id makes a repeat harmless).
                 if ((a.fail != rest::failure::none || a.status >= 500) && tries_left > 1) {
                   transfer(attempt, id, r, placement, tries_left - 1);
                   return;
                 }
                 // 422 90018: the callee hung up meanwhile; the call's own hangup says how it ended.
                 if (a.fail == rest::failure::none && a.status == 422 && a.body.find("90018") != std::string::npos)
                   return;
                 spdlog::warn("telnyx: transferring {} to the agent: {}", id,
                              a.fail != rest::failure::none ? a.error : fmt::format("HTTP {}", a.status));
                 {
                   std::lock_guard g(m);
                   auto it = calls.find(attempt.value());
                   if (it == calls.end() || it->second.call_id != id) return;
                   it->second.agent_failed = true;
                   it->second.cancel_wanted = it->second.cancel_sent = true;
                 }
                 hang_up(attempt, id);
               });
  }

  // A webhook of the agent's leg (a SIP hand-off's transfer). Its call.hangup before its call.answered means the
  // agent never took the call: the callee's leg is hung up (Telnyx leaves it up) and the attempt is `failed`.
  void agent_leg(const carrier_callback& cb, const std::string& placement) {
    std::string hang;
    {
      std::lock_guard g(m);
      auto it = calls.find(cb.attempt.value());
      if (it == calls.end() || it->second.placement != placement || it->second.call_id.empty()) return;
      auto& c = it->second;
      if (cb.event == "answered") c.agent_answered = true;
      const auto data = nlohmann::json::parse(cb.params_json, nullptr, false);
      const auto cause = text_of(data.is_object() && data.contains("payload") ? data["payload"] : data, "hangup_cause");
      // originator_cancel: the callee hung up while the agent's leg rang (Telnyx cancels it): not the agent's doing.
      if (cb.event == "final" && !c.agent_answered && !c.cancel_sent && cause != "originator_cancel") {
        c.agent_failed = c.cancel_wanted = c.cancel_sent = true;
        hang = c.call_id;
      }
    }
    if (!hang.empty()) {
      spdlog::warn("telnyx: attempt {}: the agent's SIP URI did not take the call; hanging up {}", cb.attempt.value(),
                   hang);
      hang_up(cb.attempt, hang);
    }
  }

  bool finish(attempt_id attempt, const std::string& placement, const hangup& h, const std::string& id,
              std::string_view how) {
    call_event ev;
    bool limited = false;
    milliseconds held_for{0};
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end()) return false;
      auto& c = it->second;
      if (!placement.empty() && c.placement != placement) return false;
      if (!c.call_id.empty() && !id.empty() && c.call_id != id) return false;
      ev = event_of(attempt, c, h, id, how);
      limited = is_channel_limit(h, c.answered.has_value());
      if (limited) {
        hold_locked();
        held_for = hold_step;
      }
      if (c.at == phase::uncertain) remember(ev);
      calls.erase(it);
      ++reporting;
    }
    if (limited) {
      channel_limited.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("telnyx: call {} refused with SIP 403 (the channel limit); holding dials for {} ms", id,
                   held_for.count());
    }
    outcomes.fetch_add(1, std::memory_order_relaxed);
    report([&] { events().on_outcome(ev); });
    return true;
  }

  // Under m: the next dials wait; the wait doubles while the limit keeps being met (up to 30x the setting).
  void hold_locked() {
    const auto now = clk.monotonic();
    hold_step = hold_until > now ? std::min(hold_step * 2, s.channel_limit_backoff * 30) : s.channel_limit_backoff;
    hold_until = now + hold_step;
  }

  call_event event_of(attempt_id attempt, const call_state& c, const hangup& h, const std::string& id,
                      std::string_view how) const {
    call_event ev;
    ev.attempt = attempt;
    ev.carrier_call_id = !c.call_id.empty() ? c.call_id : id;
    const bool answered = c.answered.has_value() || was_answered(h);
    ev.outcome = c.agent_failed ? call_outcome::failed : outcome_of(h, answered, c.machine, c.canceled);
    if (how == kFromStatus && !c.answered) {
      // Telnyx's status tells whether the call is alive and how long it lasted (ringing included), not whether it
      // was answered, nor why it ended.
      ev.outcome = call_outcome::unknown;
      ev.detail = "telnyx: the call ended without a call.hangup webhook; its status does not say whether it was "
                  "answered";
      ev.started_at = h.started.value_or(c.sent == system_clock::time_point{} ? clk.wall() : c.sent);
      ev.ended_at = std::max(h.ended.value_or(clk.wall()), ev.started_at);
      ev.carrier_call_id = !c.call_id.empty() ? c.call_id : id;
      ev.attempt = attempt;
      return ev;
    }
    ev.started_at = h.started.value_or(c.sent == system_clock::time_point{} ? clk.wall() : c.sent);
    ev.ended_at = h.ended.value_or(clk.wall());
    if (ev.ended_at < ev.started_at) ev.ended_at = ev.started_at;
    if (c.answered) {
      ev.answered_at = std::max(*c.answered, ev.started_at);
      ev.billable = std::chrono::duration_cast<milliseconds>(ev.ended_at - *ev.answered_at);
      if (ev.billable.count() < 0) ev.billable = milliseconds(0);
    }
    ev.detail = fmt::format("telnyx {}", how);
    if (!h.cause.empty()) ev.detail += " " + h.cause;
    if (!h.sip_cause.empty() && h.sip_cause != "unspecified") ev.detail += " (SIP " + h.sip_cause + ")";
    if (c.machine) ev.detail += ", answered by a machine";
    if (c.agent_failed) ev.detail += ", the agent's SIP URI refused the transfer";
    return ev;
  }

  // One stored webhook (callback thread).
  void apply(const carrier_callback& cb) {
    webhooks.fetch_add(1, std::memory_order_relaxed);
    const auto data = nlohmann::json::parse(cb.params_json, nullptr, false);
    if (!data.is_object()) return;
    const auto& payload = data.contains("payload") ? data["payload"] : data;
    const auto result = text_of(payload, "result");
    std::string placement = cb.placement;
    {
      std::lock_guard g(m);
      auto it = calls.find(cb.attempt.value());
      if (it == calls.end()) return;
      if (!placement.empty() && it->second.placement != placement) return;
      placement = it->second.placement;
    }
    if (const auto tag = decode_client_state(text_of(payload, "client_state")); tag && tag->leg == "agent") {
      agent_leg(cb, placement);
      return;
    }
    learned(cb.attempt, placement, cb.call_id, false);
    if (cb.event == "final") {
      const auto h = hangup_of(payload);
      {
        std::lock_guard g(m);
        auto it = calls.find(cb.attempt.value());
        if (it == calls.end() || it->second.call_id != cb.call_id) return;
        auto& c = it->second;
        // Answered, but its machine-detection result has not come: it may still be on its way.
        if (s.machine_detection != "disabled" && (c.answered || was_answered(h)) && !c.machine && !c.amd_seen) {
          c.pending_final = h;
          c.final_due = clk.monotonic() + kFinalGrace;
          return;
        }
      }
      (void)finish(cb.attempt, placement, h, cb.call_id, "call.hangup");
      return;
    }
    bool hang = false, do_transfer = false;
    std::optional<hangup> held_final;
    origination_request r;
    {
      std::lock_guard g(m);
      auto it = calls.find(cb.attempt.value());
      if (it == calls.end() || it->second.placement != placement || it->second.call_id != cb.call_id) return;
      auto& c = it->second;
      const bool detection = cb.event == "amd" || cb.event == "greeting";
      if (detection) c.amd_seen = true;
      if (detection && is_machine(result)) c.machine = true;
      if (c.pending_final && detection) held_final = c.pending_final;
      if (cb.event == "answered" && !c.answered) {
        const auto occurred = parse_iso8601(text_of(data, "occurred_at"));
        c.answered = occurred.value_or(cb.received_at);
        if (rest::is_sip_uri(c.request.handoff) && !c.transfer_sent && !c.cancel_wanted) {
          c.transfer_sent = do_transfer = true;
          r = c.request;
        }
      }
      if (c.machine && s.hang_up_on_machine && !c.cancel_sent && !held_final) {
        c.cancel_wanted = c.cancel_sent = true;
        hang = true;
      }
    }
    if (held_final) {
      (void)finish(cb.attempt, placement, *held_final, cb.call_id, "call.hangup");
      return;
    }
    if (hang) hang_up(cb.attempt, cb.call_id);
    else if (do_transfer) transfer(cb.attempt, cb.call_id, r, placement);
  }

  // Dials due to be sent again, hang-ups to try again, calls whose call.hangup is late (callback thread).
  void poll_overdue() {
    struct due_call {
      attempt_id attempt;
      std::string placement, id;
    };
    std::vector<due_call> due;
    std::vector<std::pair<attempt_id, std::string>> hang;
    std::vector<std::tuple<attempt_id, std::string, std::string>> resend;
    std::vector<std::tuple<attempt_id, std::string, std::string, hangup>> finals;
    std::vector<attempt_id> give_up;
    {
      std::lock_guard g(m);
      const auto now = clk.monotonic();
      for (auto& [attempt, c] : calls) {
        if (c.pending_final && c.final_due <= now) {
          finals.emplace_back(attempt_id(attempt), c.placement, c.call_id, *c.pending_final);
          continue;
        }
        if (c.call_id.empty()) {
          if (c.resend_at != std::chrono::nanoseconds{} && c.resend_at <= now) {
            c.resend_at = {};
            if (c.cancel_wanted || draining || now - c.first_sent > s.redial_window) {
              // Not sent again after a cancel, once draining, or past the window (Telnyx may have forgotten the
              // command_id): the dial stays doubtful (indeterminate).
              if (c.at != phase::uncertain) {
                c.at = phase::uncertain;
                give_up.emplace_back(attempt_id(attempt));
              }
            } else {
              resend.emplace_back(attempt_id(attempt), c.placement, c.body);
            }
          }
          continue;
        }
        if (c.cancel_wanted && !c.cancel_sent) {
          c.cancel_sent = true;
          hang.emplace_back(attempt_id(attempt), c.call_id);
        }
        if (c.poll_in_flight || c.next_poll > now) continue;
        c.poll_in_flight = true;
        due.push_back({attempt_id(attempt), c.placement, c.call_id});
      }
    }
    for (const auto& [attempt, placement, id, h] : finals) (void)finish(attempt, placement, h, id, "call.hangup");
    for (const auto attempt : give_up)
      refuse(attempt, origination_refusal::indeterminate, std::nullopt,
             "telnyx: the dial's answer was lost and it is not sent again (canceled or draining)");
    for (auto& [attempt, placement, body] : resend) {
      resent.fetch_add(1, std::memory_order_relaxed);
      send_dial(attempt, placement, std::move(body));
    }
    for (const auto& [attempt, id] : hang) hang_up(attempt, id);
    for (const auto& d : due) {
      polled.fetch_add(1, std::memory_order_relaxed);
      pool->send(request("GET", "/v2/calls/" + d.id), [this, d](rest::http_response&& a) {
        if (a.fail == rest::failure::none && a.status == 200) {
          const auto body = nlohmann::json::parse(a.body, nullptr, false);
          if (body.is_object() && body.contains("data") && body["data"].is_object()) {
            const auto& data = body["data"];
            const auto alive = data.find("is_alive");
            const bool ended = alive != data.end() && alive->is_boolean() && !alive->get<bool>();
            if (ended && finish(d.attempt, d.placement, hangup_of(data), d.id, kFromStatus)) return;
          }
        } else if (a.fail == rest::failure::none && a.status == 404) {
          if (finish_unknown(d.attempt, d.placement, d.id)) return;
        }
        std::lock_guard g(m);
        if (auto it = calls.find(d.attempt.value()); it != calls.end() && it->second.placement == d.placement) {
          it->second.poll_in_flight = false;
          it->second.next_poll = clk.monotonic() + s.status_poll_after;
        }
      });
    }
  }

  bool finish_unknown(attempt_id attempt, const std::string& placement, const std::string& id) {
    call_event ev;
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end() || it->second.placement != placement) return false;
      ev.attempt = attempt;
      ev.carrier_call_id = id;
      ev.outcome = call_outcome::unknown;
      ev.started_at = it->second.sent;
      ev.ended_at = clk.wall();
      ev.detail = "telnyx has no record of call " + id;
      if (it->second.at == phase::uncertain) remember(ev);
      calls.erase(it);
      ++reporting;
    }
    spdlog::warn("telnyx: call {} of attempt {} is unknown to Telnyx; recorded as unknown", id, attempt.value());
    report([&] { events().on_outcome(ev); });
    return true;
  }
};

result<std::unique_ptr<telnyx_carrier>> telnyx_carrier::make(telnyx_settings settings, const carrier_environment& env,
                                                             dialer::clock& clock) {
  if (!env.open_inbox)
    return make_error(errc::invalid_input,
                      "the telnyx carrier needs the callback inbox (a database): it is not available in this command");
  auto i = std::make_shared<impl>(std::move(settings), clock);
  i->open_inbox = env.open_inbox;
  return std::unique_ptr<telnyx_carrier>(new telnyx_carrier(std::move(i)));
}

result<void> telnyx_carrier::impl::start() {
  rest::pool_options po;
  po.base_url = s.base_url;
  po.max_connections = s.max_connections;
  po.timeout = s.request_timeout;
  po.ca_file = s.ca_file;
  std::weak_ptr<impl> weak = shared_from_this();
  return callback_core::start(
      po, [weak] { if (auto p = weak.lock()) p->ring(); },
      [this](std::vector<carrier_callback>& taken) {
        // In the call's own order, whatever order they arrived in: call.initiated tells the call id the others are
        // matched against, and the answer and the machine result say what a hangup means.
        const auto rank = [](const std::string& e) {
          return e == "initiated" ? 0 : e == "answered" ? 1 : e == "amd" || e == "greeting" ? 2 : 3;
        };
        std::stable_sort(taken.begin(), taken.end(), [&](const carrier_callback& a, const carrier_callback& b) {
          return rank(a.event) < rank(b.event);
        });
        for (const auto& cb : taken) {
          try {
            apply(cb);
          } catch (const std::exception& e) {  // a webhook we cannot read must not stop the others
            spdlog::warn("telnyx: webhook {} of attempt {}: {}", cb.event, cb.attempt.value(), e.what());
          }
        }
      },
      [this] { poll_overdue(); });
}

telnyx_carrier::telnyx_carrier(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

telnyx_carrier::~telnyx_carrier() { impl_->stop(); }

double telnyx_carrier::account_cps() const noexcept { return impl_->s.account_cps; }

std::string telnyx_carrier::account_identity() const { return telnyx_account_identity(impl_->s.api_key); }

void telnyx_carrier::set_events(carrier_events* sink) noexcept {
  impl_->start_once(sink, [this] { return impl_->start(); });
}

void telnyx_carrier::originate(std::span<const origination_request> requests) noexcept {
  impl_->originate_each(
      requests,
      [this](attempt_id a, origination_refusal why, std::optional<milliseconds> after, std::string_view detail) {
        impl_->refuse(a, why, after, detail);
      },
      [this](const origination_request& r) { impl_->place(r); });
}

void telnyx_carrier::cancel(attempt_id attempt) noexcept {
  std::string id;
  {
    std::lock_guard g(impl_->m);
    auto it = impl_->calls.find(attempt.value());
    if (it == impl_->calls.end() || it->second.cancel_sent) return;
    it->second.cancel_wanted = true;
    if (!it->second.answered) it->second.canceled = true;
    if (it->second.call_id.empty() || !impl_->pool) return;
    it->second.cancel_sent = true;
    id = it->second.call_id;
  }
  impl_->hang_up(attempt, id);
}

// What became of a call. This process's own calls are followed through their webhooks and polls; one whose dial
// is indeterminate is dialed once more with the same command_id (Telnyx ignores a repeated one: if the first dial
// created the call, nothing new rings), while redial_window lasts and the engine has not asked to cancel it; only a
// call id settles it, and past the window it is `unknown`. Another process's call is settled from the webhooks
// stored for it, then from Telnyx by its call_control_id.
result<std::optional<call_event>> telnyx_carrier::lookup(attempt_id attempt, std::string_view carrier_call_id) try {
  auto& i = *impl_;
  if (!i.pool) return make_error(errc::unavailable, "telnyx carrier: {}", i.broken ? i.broken->message : "not started");
  impl::call_state known;
  bool tracked = false;
  {
    std::lock_guard g(i.m);
    if (auto it = i.finished_uncertain.find(attempt.value()); it != i.finished_uncertain.end())
      return std::optional<call_event>(it->second);
    if (auto it = i.calls.find(attempt.value()); it != i.calls.end()) {
      known = it->second;
      tracked = true;
    }
  }
  if (tracked) {
    i.ring();  // webhooks stored for it (by any engine) are applied now
    if (!known.call_id.empty())
      return make_error(errc::unavailable, "telnyx: call {} is followed through its webhooks", known.call_id);
    if (known.resend_at != std::chrono::nanoseconds{})
      return make_error(errc::unavailable, "telnyx: attempt {} is being dialed again", attempt.value());
    bool stopping = false;
    {
      std::lock_guard g(i.m);
      stopping = i.draining;
    }
    if (i.clk.monotonic() - known.first_sent > i.s.redial_window || known.cancel_wanted || stopping) {
      if (i.clk.monotonic() - known.first_sent <= i.s.redial_window)
        return make_error(errc::unavailable, "telnyx: attempt {} is waiting for a webhook", attempt.value());
      // Too late to ask Telnyx by command_id (it may have forgotten it: a new dial could ring the callee twice).
      call_event ev;
      ev.attempt = attempt;
      ev.outcome = call_outcome::unknown;
      ev.started_at = known.sent;
      ev.ended_at = i.clk.wall();
      ev.detail = "telnyx: the dial's answer was lost and no webhook came within the redial window";
      bool erased = false;
      {
        std::lock_guard g(i.m);
        if (auto it = i.calls.find(attempt.value()); it != i.calls.end() && it->second.placement == known.placement) {
          i.calls.erase(it);
          erased = true;
        }
      }
      i.settled.notify_all();
      if (!erased) return make_error(errc::unavailable, "telnyx: attempt {} changed meanwhile", attempt.value());
      return std::optional<call_event>(std::move(ev));
    }
    i.resent.fetch_add(1, std::memory_order_relaxed);
    const auto a = i.pool->send_sync(i.request("POST", "/v2/calls", known.body));
    if (a.fail == rest::failure::none && a.status >= 200 && a.status < 300) {
      const auto id = data_text(nlohmann::json::parse(a.body, nullptr, false), "call_control_id");
      if (!id.empty()) {
        i.placed.fetch_add(1, std::memory_order_relaxed);
        i.learned(attempt, known.placement, id, false);
        return make_error(errc::unavailable, "telnyx: call {} of attempt {} exists; followed", id, attempt.value());
      }
    }
    return make_error(errc::unavailable, "telnyx: dialing attempt {} again: {}", attempt.value(),
                      a.fail != rest::failure::none ? a.error : fmt::format("HTTP {}", a.status));
  }
  // Another process's call (reconciliation).
  std::vector<carrier_callback> held;
  {
    std::lock_guard g(i.lookup_mutex);
    auto rows = i.lookup_inbox->take_attempt("telnyx", attempt);
    if (!rows) return std::move(rows).error();
    held = std::move(*rows);
  }
  std::string id(carrier_call_id);
  for (const auto& cb : held) {
    const auto data = nlohmann::json::parse(cb.params_json, nullptr, false);
    if (!data.is_object()) continue;
    const auto& payload = data.contains("payload") ? data["payload"] : data;
    if (const auto tag = decode_client_state(text_of(payload, "client_state")); tag && tag->leg == "agent") continue;
    if (id.empty()) id = cb.call_id;
    if ((cb.event == "amd" || cb.event == "greeting") && is_machine(text_of(payload, "result"))) known.machine = true;
    if (cb.event == "answered" && !known.answered)
      known.answered = parse_iso8601(text_of(data, "occurred_at")).value_or(cb.received_at);
  }
  for (const auto& cb : held) {
    if (cb.event != "final" || (!id.empty() && cb.call_id != id)) continue;
    const auto data = nlohmann::json::parse(cb.params_json, nullptr, false);
    if (!data.is_object()) continue;
    return std::optional<call_event>(i.event_of(
        attempt, known, hangup_of(data.contains("payload") ? data["payload"] : data), cb.call_id, "call.hangup"));
  }
  if (id.empty()) return std::optional<call_event>{};  // nothing to ask about: the engine records `unknown`
  const auto a = i.pool->send_sync(i.request("GET", "/v2/calls/" + id));
  if (a.fail == rest::failure::none && a.status == 404) {
    call_event ev;
    ev.attempt = attempt;
    ev.carrier_call_id = id;
    ev.outcome = call_outcome::unknown;
    ev.started_at = ev.ended_at = i.clk.wall();
    ev.detail = "telnyx has no record of call " + id;
    return std::optional<call_event>(std::move(ev));
  }
  if (a.fail != rest::failure::none || a.status != 200)
    return make_error(errc::unavailable, "telnyx: fetching call {}: {}", id,
                      a.fail != rest::failure::none ? a.error : fmt::format("HTTP {}", a.status));
  const auto body = nlohmann::json::parse(a.body, nullptr, false);
  if (!body.is_object() || !body.contains("data") || !body["data"].is_object())
    return make_error(errc::unavailable, "telnyx: the call status is not the expected JSON");
  const auto alive = body["data"].find("is_alive");
  if (alive == body["data"].end() || !alive->is_boolean() || alive->get<bool>())
    return make_error(errc::unavailable, "telnyx: call {} is still alive", id);
  return std::optional<call_event>(i.event_of(attempt, known, hangup_of(body["data"]), id, impl::kFromStatus));
} catch (const std::exception& e) {
  return make_error(errc::unavailable, "telnyx: looking up attempt {}: {}", attempt.value(), e.what());
}

void telnyx_carrier::drain(std::chrono::milliseconds deadline) noexcept { impl_->drain(deadline); }

telnyx_statistics telnyx_carrier::statistics() const {
  const auto& i = *impl_;
  return {i.placed.load(),     i.resent.load(),  i.refused.load(),   i.indeterminate.load(),
          i.webhooks.load(),   i.polled.load(),  i.outcomes.load(),  i.channel_limited.load()};
}

const std::string& telnyx_carrier::instance() const noexcept { return impl_->instance; }

}  // namespace dialer::carriers::telnyx
