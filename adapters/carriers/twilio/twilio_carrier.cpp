#include "adapters/carriers/twilio/twilio_carrier.hpp"

#include <atomic>
#include <condition_variable>
#include <ctime>
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
#include "adapters/carriers/rest/http_pool.hpp"
#include "adapters/carriers/rest/json_text.hpp"
#include "adapters/carriers/rest/settings.hpp"
#include "adapters/carriers/twilio/twilio_protocol.hpp"
#include "adapters/http/url.hpp"
#include "adapters/webhooks/http_sender.hpp"

namespace dialer::carriers::twilio {

namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

bool hex_sid(std::string_view s, std::string_view prefix) {
  if (s.size() != 34 || s.substr(0, 2) != prefix) return false;
  return std::all_of(s.begin() + 2, s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// A string field of a JSON object ("" when absent, null or not a string: every field of a call is nullable).
using rest::text_of;



}  // namespace

result<twilio_settings> parse_twilio_settings(const nlohmann::json& json, const carrier_environment& env) {
  twilio_settings s;
  const rest::settings_reader o("twilio", json);
  static constexpr std::string_view known[] = {
      "account_sid",     "auth_token",      "api_key_sid", "api_key_secret",    "base_url",
      "account_cps",     "ring_timeout",    "request_timeout", "max_connections", "status_poll_after",
      "inbox_poll",      "machine_detection", "ca_file", "lookup_margin"};
  try {
    o.only_known(known);
    // Credentials: the campaign file's own (dialer run), else the process's. A stored campaign's are redacted.
    const auto own = [&](std::string_view key) {
      auto v = o.text(key, true);
      return v == "<redacted>" ? std::string() : v;
    };
    const auto from_env = [&](std::string_view key) -> std::string {
      const auto* v = env.credentials.find(fmt::format("twilio.{}", key));
      return v ? v->reveal() : std::string();
    };
    // One source for the whole set: the campaign file's when it carries a secret, else the process's. A
    // campaign naming an account other than the one this process holds credentials for is an error, not a 401 at
    // every call.
    const bool file_credentials = !own("auth_token").empty() || !own("api_key_secret").empty();
    const auto pick = [&](std::string_view key) { return file_credentials ? own(key) : from_env(key); };
    s.account_sid = pick("account_sid");
    s.auth_token = secret(pick("auth_token"));
    s.api_key_sid = pick("api_key_sid");
    s.api_key_secret = secret(pick("api_key_secret"));
    if (const auto named = own("account_sid"); !file_credentials && !named.empty() && named != s.account_sid)
      return make_error(errc::invalid_input,
                        "twilio carrier: the campaign names account {} but this process's credentials (DIALER_TWILIO_*) "
                        "are for {}",
                        named, s.account_sid.empty() ? std::string("no account") : s.account_sid);
    if (s.account_sid.empty())
      return make_error(errc::invalid_input,
                        "twilio carrier: no account SID: set DIALER_TWILIO_ACCOUNT_SID (or DIALER_CARRIER_SECRETS_FILE)");
    if (!hex_sid(s.account_sid, "AC"))
      return make_error(errc::invalid_input, "twilio carrier: the account SID must be AC followed by 32 hex digits");
    if (!s.api_key_sid.empty() && !hex_sid(s.api_key_sid, "SK"))
      return make_error(errc::invalid_input, "twilio carrier: the API key SID must be SK followed by 32 hex digits");
    if (!s.api_key_sid.empty() && s.api_key_secret.empty())
      return make_error(errc::invalid_input, "twilio carrier: an API key SID needs its secret (DIALER_TWILIO_API_KEY_SECRET)");
    // Twilio signs every callback with the account's auth token, also when the REST API is used with an API key:
    // without it no status callback could be verified and every outcome would wait for the poll.
    if (s.auth_token.empty())
      return make_error(errc::invalid_input,
                        "twilio carrier: no auth token: set DIALER_TWILIO_AUTH_TOKEN (or DIALER_CARRIER_SECRETS_FILE); "
                        "it signs Twilio's status callbacks even when the REST API uses an API key");
    s.base_url = rest::base_url_setting(o, "base_url", s.base_url);
    s.account_cps = o.number("account_cps", 1, 0.01, 10'000);
    s.ring_timeout_s = static_cast<int>(o.number("ring_timeout", 30, 5, 600));
    s.request_timeout = o.duration("request_timeout", s.request_timeout, milliseconds(100), milliseconds(120'000));
    s.max_connections = static_cast<std::size_t>(o.number("max_connections", 64, 1, 4096));
    s.status_poll_after = o.duration("status_poll_after", s.status_poll_after, milliseconds(500), milliseconds(86'400'000));
    s.inbox_poll = o.duration("inbox_poll", s.inbox_poll, milliseconds(10), milliseconds(60'000));
    s.lookup_margin = o.duration("lookup_margin", s.lookup_margin, milliseconds(0), milliseconds(3'600'000));
    s.ca_file = o.text("ca_file");
    if (o.member("machine_detection")) {
      const auto md = o.nested("machine_detection");
      static constexpr std::string_view md_known[] = {"mode", "async", "on_machine"};
      md.only_known(md_known);
      static constexpr std::string_view modes[] = {"off", "enable", "detect_message_end"};
      const auto mode = md.choice("mode", "off", modes);
      s.machine_detection = mode == "off" ? "off" : mode == "enable" ? "Enable" : "DetectMessageEnd";
      s.async_amd = md.flag("async", s.async_amd);
      // Whether a machine answer is retried is the campaign's retry.voicemail.
      static constexpr std::string_view on[] = {"hangup", "leave_message"};
      s.hang_up_on_machine = md.choice("on_machine", "hangup", on) == "hangup";
    }
  } catch (const rest::bad_setting& b) {
    return make_error(errc::invalid_input, "{}", b.what());
  }
  s.public_base_url = env.public_base_url;
  while (!s.public_base_url.empty() && s.public_base_url.back() == '/') s.public_base_url.pop_back();
  if (s.public_base_url.empty())
    return make_error(errc::invalid_input,
                      "twilio carrier: DIALER_PUBLIC_BASE_URL is not set: Twilio posts each call's status to "
                      "<DIALER_PUBLIC_BASE_URL>/v1/carriers/twilio/status, served by `dialer serve`");
  return s;
}

namespace calls {
enum class phase : std::uint8_t { placing, accepted, uncertain };
struct call_state {
  std::string placement;  // a nonce in the callback URL: callbacks of an earlier placement of the attempt
                          // (one Twilio did not list in time) are not this call's
  std::string to, from;
  std::string sid;
  phase at = phase::placing;
  bool reported_accept = false;  // on_accepted sent (with the SID)
  system_clock::time_point sent{};
  std::chrono::nanoseconds next_poll{};
  bool poll_in_flight = false;
  std::optional<system_clock::time_point> answered;
  bool machine = false;
  bool cancel_wanted = false;  // hang up as soon as the SID is known (and again after a failed try)
  bool cancel_sent = false;
};
}  // namespace calls

struct twilio_carrier::impl : rest::callback_core<calls::call_state>, std::enable_shared_from_this<twilio_carrier::impl> {
  using phase = calls::phase;
  using call_state = calls::call_state;
  impl(twilio_settings st, dialer::clock& c) : callback_core("twilio", c, st.inbox_poll), s(std::move(st)) {
    calls_path = "/2010-04-01/Accounts/" + s.account_sid + "/Calls";
    authorization = s.api_key_sid.empty() ? rest::basic_authorization(s.account_sid, s.auth_token.reveal())
                                          : rest::basic_authorization(s.api_key_sid, s.api_key_secret.reveal());
    callback_base = s.public_base_url + "/v1/carriers/twilio/status?instance=" + instance;
  }

  twilio_settings s;
  std::string calls_path;
  std::string authorization;
  std::string callback_base;
  result<void> start();

  std::atomic<std::uint64_t> placed{0}, refused{0}, indeterminate{0}, callbacks{0}, polled{0}, outcomes{0};

  void refuse(attempt_id a, origination_refusal why, std::optional<milliseconds> after, std::string_view detail) {
    refused.fetch_add(1, std::memory_order_relaxed);
    if (why == origination_refusal::indeterminate) indeterminate.fetch_add(1, std::memory_order_relaxed);
    events().on_refused(a, why, after, detail);
  }

  std::string callback_url(attempt_id a, const std::string& placement) const {
    return fmt::format("{}&attempt={}&placement={}", callback_base, a.value(), placement);
  }

  // The body of a create.
  std::string create_form(const origination_request& r, const std::string& twiml, const std::string& placement) const {
    const auto url = callback_url(r.attempt, placement);
    form f{{"To", r.to_e164},
           {"From", r.from_e164},
           {"Twiml", twiml},
           {"StatusCallback", url},
           {"StatusCallbackMethod", "POST"},
           {"StatusCallbackEvent", "initiated"},
           {"StatusCallbackEvent", "ringing"},
           {"StatusCallbackEvent", "answered"},
           {"StatusCallbackEvent", "completed"},
           {"Timeout", std::to_string(s.ring_timeout_s)}};
    if (s.machine_detection != "off") {
      f.emplace_back("MachineDetection", s.machine_detection);
      f.emplace_back("AsyncAmd", s.async_amd ? "true" : "false");
      if (s.async_amd) {
        f.emplace_back("AsyncAmdStatusCallback", url + "&step=amd");
        f.emplace_back("AsyncAmdStatusCallbackMethod", "POST");
      }
    }
    return encode_form(f);
  }

  rest::http_request post(std::string target, std::string body) const {
    rest::http_request q;
    q.method = "POST";
    q.target = std::move(target);
    q.content_type = "application/x-www-form-urlencoded";
    q.body = std::move(body);
    q.authorization = authorization;
    return q;
  }
  rest::http_request get(std::string target) const {
    rest::http_request q;
    q.target = std::move(target);
    q.authorization = authorization;
    return q;
  }

  void place(const origination_request& r) {
    int dropped = 0;
    auto twiml = handoff_twiml(r, &dropped);
    if (!twiml) {
      refuse(r.attempt, origination_refusal::not_placed, milliseconds(60'000), twiml.error().message);
      return;
    }
    if (dropped > 0)
      spdlog::debug("twilio: attempt {}: {} contact variables left out of the TwiML (4000 characters at most)",
                    r.attempt.value(), dropped);
    bool refused_draining = false;
    std::string placement;
    {
      std::lock_guard g(m);
      refused_draining = draining;
      if (!draining) {
        placement = fmt::format("{:08x}", placements());
        auto& st = calls[r.attempt.value()];
        st = call_state{};
        st.placement = placement;
        st.to = r.to_e164;
        st.from = r.from_e164;
        st.sent = clk.wall();
      }
    }
    if (refused_draining) {
      refuse(r.attempt, origination_refusal::not_placed, std::nullopt, "the twilio carrier is draining");
      return;
    }
    const auto attempt = r.attempt;
    pool->send(post(calls_path + ".json", create_form(r, *twiml, placement)),
               [this, attempt, placement](rest::http_response&& a) { created(attempt, placement, std::move(a)); });
  }

  // The answer to a create (pool thread).
  void created(attempt_id attempt, const std::string& placement, rest::http_response&& a) {
    if (a.fail == rest::failure::not_sent) {
      if (forget(attempt, placement)) {
        // A little jitter, so that a pool that could not connect does not get every contact back at once.
        thread_local std::minstd_rand jitter(std::random_device{}());
        report([&] { refuse(attempt, origination_refusal::not_placed, milliseconds(500 + jitter() % 1000), a.error); });
      }
      return;
    }
    if (a.fail == rest::failure::lost || (a.status >= 200 && a.status < 300 && a.status != 201)) {
      uncertain(attempt, a.fail == rest::failure::lost ? a.error : fmt::format("unexpected HTTP {}", a.status));
      return;
    }
    if (a.status == 201) {
      const auto body = nlohmann::json::parse(a.body, nullptr, false);
      const auto sid = text_of(body, "sid");
      if (!hex_sid(sid, "CA")) {
        uncertain(attempt, "a 201 answer without a call SID");
        return;
      }
      placed.fetch_add(1, std::memory_order_relaxed);
      learned(attempt, placement, sid, true);
      return;
    }
    auto decision = classify_error(a.status, a.body, a.retry_after);
    if (!decision) {
      uncertain(attempt, fmt::format("twilio answered HTTP {}: the call may have been created", a.status));
      return;
    }
    if (!forget(attempt, placement)) return;
    if (decision->why == origination_refusal::not_placed && decision->retry_after &&
        *decision->retry_after >= milliseconds(30'000))
      spdlog::error("twilio: attempt {}: {}", attempt.value(), decision->detail);
    report([&] { refuse(attempt, decision->why, decision->retry_after, decision->detail); });
  }

  // The call of this placement has a SID (from the create's answer, a callback, or the call list): the engine
  // learns it once (kept for a later process's reconciliation), and a hang-up asked for meanwhile goes out.
  void learned(attempt_id attempt, const std::string& placement, const std::string& sid, bool from_create) {
    bool tell = false, cancel = false, answered = false;
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end() || it->second.placement != placement) return;
      auto& c = it->second;
      if (c.sid.empty()) c.sid = sid;
      if (c.sid != sid) return;
      if (from_create && c.at == phase::placing) c.at = phase::accepted;
      if (c.next_poll == std::chrono::nanoseconds{}) c.next_poll = clk.monotonic() + s.status_poll_after;
      tell = !c.reported_accept;
      c.reported_accept = true;
      cancel = c.cancel_wanted && !c.cancel_sent;
      if (cancel) c.cancel_sent = true;
      answered = c.answered.has_value();
    }
    if (tell) events().on_accepted(attempt, sid);
    if (cancel) hang_up(attempt, sid, answered);
  }

  void uncertain(attempt_id attempt, const std::string& why) {
    {
      std::lock_guard g(m);
      if (auto it = calls.find(attempt.value()); it != calls.end() && it->second.sid.empty())
        it->second.at = phase::uncertain;
    }
    refuse(attempt, origination_refusal::indeterminate, std::nullopt, why);
  }

  // Ends a call: canceled while it rings, completed once answered (Twilio refuses the other combination; a refusal
  // of `canceled` is followed by `completed`, for a call answered meanwhile). A try that fails is tried again by
  // the callback thread's next pass.
  void hang_up(attempt_id attempt, const std::string& sid, bool answered) {
    const std::string target = calls_path + "/" + sid + ".json";
    pool->send(post(target, encode_form({{"Status", answered ? "completed" : "canceled"}})),
               [this, attempt, sid, answered](rest::http_response&& a) {
                 if (a.fail == rest::failure::none && a.status < 300) return;
                 if (a.fail == rest::failure::none && (a.status == 400 || a.status == 409) && !answered) {
                   hang_up(attempt, sid, true);
                   return;
                 }
                 spdlog::warn("twilio: hanging up {}: {}", sid,
                              a.fail != rest::failure::none ? a.error : fmt::format("HTTP {}", a.status));
                 std::lock_guard g(m);
                 if (auto it = calls.find(attempt.value()); it != calls.end() && it->second.sid == sid)
                   it->second.cancel_sent = false;  // again on the next pass
               });
  }

  // Reports the end of a call once. Returns whether this placement was still waiting for it.
  bool finish(attempt_id attempt, const std::string& placement, const call_status& st, const std::string& call_id) {
    call_event ev;
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end()) return false;
      auto& c = it->second;
      if (!placement.empty() && c.placement != placement) return false;
      if (!c.sid.empty() && !call_id.empty() && c.sid != call_id) return false;
      ev = event_of(attempt, c, st, call_id);
      if (c.at == phase::uncertain) remember(ev);
      calls.erase(it);
      ++reporting;
    }
    outcomes.fetch_add(1, std::memory_order_relaxed);
    report([&] { events().on_outcome(ev); });
    return true;
  }

  call_event event_of(attempt_id attempt, const call_state& c, const call_status& st, const std::string& call_id) const {
    call_event ev;
    ev.attempt = attempt;
    ev.carrier_call_id = !c.sid.empty() ? c.sid : call_id;
    ev.outcome = outcome_of(st, c.machine);
    ev.started_at = st.started.value_or(c.sent == system_clock::time_point{} ? clk.wall() : c.sent);
    ev.ended_at = st.at.value_or(clk.wall());
    if (ev.ended_at < ev.started_at) ev.ended_at = ev.started_at;
    const auto talk = std::chrono::seconds(std::max<std::int64_t>(0, st.duration_s));
    ev.billable = std::chrono::duration_cast<milliseconds>(talk);
    if (c.answered) ev.answered_at = c.answered;
    else if (talk.count() > 0) ev.answered_at = ev.ended_at - talk;
    ev.detail = "twilio " + st.status;
    if (!st.sip_response.empty()) ev.detail += " (SIP " + st.sip_response + ")";
    if (!st.answered_by.empty()) ev.detail += ", answered by " + st.answered_by;
    return ev;
  }

  // One callback taken from the inbox (callback thread).
  void apply(const carrier_callback& cb) {
    callbacks.fetch_add(1, std::memory_order_relaxed);
    const auto params = nlohmann::json::parse(cb.params_json, nullptr, false);
    if (!params.is_object()) return;
    const auto st = status_of_callback(params);
    std::string placement = cb.placement;
    {
      std::lock_guard g(m);
      auto it = calls.find(cb.attempt.value());
      if (it == calls.end()) return;  // ended already (a late or out-of-order callback)
      if (!placement.empty() && it->second.placement != placement) return;  // an earlier placement's call
      placement = it->second.placement;
    }
    learned(cb.attempt, placement, cb.call_id, false);
    if (cb.event == "final") {
      (void)finish(cb.attempt, placement, st, cb.call_id);
      return;
    }
    std::string hang;
    bool answered_call = false;
    {
      std::lock_guard g(m);
      auto it = calls.find(cb.attempt.value());
      if (it == calls.end() || it->second.placement != placement || it->second.sid != cb.call_id) return;
      auto& c = it->second;
      if (cb.event == "answered" && !c.answered) c.answered = st.at.value_or(cb.received_at);
      if (is_machine(st.answered_by)) c.machine = true;
      answered_call = c.answered.has_value() || cb.event == "amd";
      if (c.machine && s.hang_up_on_machine && !c.cancel_sent) {
        c.cancel_wanted = true;
        c.cancel_sent = true;
        hang = c.sid;
      }
    }
    if (!hang.empty()) hang_up(cb.attempt, hang, answered_call);
  }

  // Calls whose final callback is late: fetched; hang-ups that failed: again (callback thread; answers on the
  // pool thread).
  void poll_overdue() {
    struct due_call {
      attempt_id attempt;
      std::string placement, sid;
    };
    std::vector<due_call> due;
    std::vector<std::tuple<attempt_id, std::string, bool>> hang;
    {
      std::lock_guard g(m);
      const auto now = clk.monotonic();
      for (auto& [attempt, c] : calls) {
        if (c.sid.empty()) continue;
        if (c.cancel_wanted && !c.cancel_sent) {
          c.cancel_sent = true;
          hang.emplace_back(attempt_id(attempt), c.sid, c.answered.has_value());
        }
        if (c.poll_in_flight || c.next_poll > now) continue;
        c.poll_in_flight = true;
        due.push_back({attempt_id(attempt), c.placement, c.sid});
      }
    }
    for (const auto& [attempt, sid, answered] : hang) hang_up(attempt, sid, answered);
    for (const auto& d : due) {
      polled.fetch_add(1, std::memory_order_relaxed);
      pool->send(get(calls_path + "/" + d.sid + ".json"), [this, d](rest::http_response&& a) {
        if (a.fail == rest::failure::none && a.status == 200) {
          const auto body = nlohmann::json::parse(a.body, nullptr, false);
          if (body.is_object()) {
            const auto st = status_of_resource(body);
            if (is_final(st.status) && finish(d.attempt, d.placement, st, d.sid)) return;
          }
        } else if (a.fail == rest::failure::none && a.status == 404) {
          // Twilio gave this SID and now has no record of it: the call existed; what became of it is unknown.
          if (finish_unknown(d.attempt, d.placement, d.sid)) return;
        }
        std::lock_guard g(m);
        if (auto it = calls.find(d.attempt.value()); it != calls.end() && it->second.placement == d.placement) {
          it->second.poll_in_flight = false;
          it->second.next_poll = clk.monotonic() + s.status_poll_after;
        }
      });
    }
  }

  bool finish_unknown(attempt_id attempt, const std::string& placement, const std::string& sid) {
    call_event ev;
    {
      std::lock_guard g(m);
      auto it = calls.find(attempt.value());
      if (it == calls.end() || it->second.placement != placement) return false;
      ev.attempt = attempt;
      ev.carrier_call_id = sid;
      ev.outcome = call_outcome::unknown;
      ev.started_at = it->second.sent;
      ev.ended_at = clk.wall();
      ev.detail = "twilio has no record of call " + sid;
      calls.erase(it);
      ++reporting;
    }
    spdlog::warn("twilio: call {} of attempt {} is unknown to Twilio; recorded as unknown", sid, attempt.value());
    report([&] { events().on_outcome(ev); });
    return true;
  }
};

result<std::unique_ptr<twilio_carrier>> twilio_carrier::make(twilio_settings settings, const carrier_environment& env,
                                                             dialer::clock& clock) {
  if (!env.open_inbox)
    return make_error(errc::invalid_input,
                      "the twilio carrier needs the callback inbox (a database): it is not available in this command");
  auto i = std::make_shared<impl>(std::move(settings), clock);
  i->open_inbox = env.open_inbox;
  return std::unique_ptr<twilio_carrier>(new twilio_carrier(std::move(i)));
}

// The pool, the inbox and the callback thread start with the first use (a carrier built only to check a campaign's
// settings opens nothing).
result<void> twilio_carrier::impl::start() {
  rest::pool_options po;
  po.base_url = s.base_url;
  po.max_connections = s.max_connections;
  po.timeout = s.request_timeout;
  po.ca_file = s.ca_file;
  std::weak_ptr<impl> weak = shared_from_this();
  return callback_core::start(
      po, [weak] { if (auto p = weak.lock()) p->ring(); },
      [this](std::vector<carrier_callback>& taken) {
        for (const auto& cb : taken) apply(cb);
      },
      [this] { poll_overdue(); });
}

twilio_carrier::twilio_carrier(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

twilio_carrier::~twilio_carrier() { impl_->stop(); }

double twilio_carrier::account_cps() const noexcept { return impl_->s.account_cps; }

std::string twilio_carrier::account_identity() const { return "twilio:" + impl_->s.account_sid; }

void twilio_carrier::set_events(carrier_events* sink) noexcept {
  impl_->start_once(sink, [this] { return impl_->start(); });
}

void twilio_carrier::originate(std::span<const origination_request> requests) noexcept {
  impl_->originate_each(
      requests,
      [this](attempt_id a, origination_refusal why, std::optional<milliseconds> after, std::string_view detail) {
        impl_->refuse(a, why, after, detail);
      },
      [this](const origination_request& r) { impl_->place(r); });
}

void twilio_carrier::cancel(attempt_id attempt) noexcept {
  std::string sid;
  bool answered = false;
  {
    std::lock_guard g(impl_->m);
    auto it = impl_->calls.find(attempt.value());
    if (it == impl_->calls.end() || it->second.cancel_sent) return;
    it->second.cancel_wanted = true;  // sent when the SID is known (the create's answer, a callback, the list)
    if (it->second.sid.empty() || !impl_->pool) return;
    it->second.cancel_sent = true;
    sid = it->second.sid;
    answered = it->second.answered.has_value();
  }
  impl_->hang_up(attempt, sid, answered);
}

// What became of a call. This process's own calls are followed through their callbacks and polls: for one with a
// SID the answer is "ask again" (no request), for one whose create answer was lost Twilio's call list is searched.
// A call placed by another process is settled from the callbacks stored for it, then from Twilio by its SID.
result<std::optional<call_event>> twilio_carrier::lookup(attempt_id attempt, std::string_view carrier_call_id) try {
  auto& i = *impl_;
  if (!i.pool) return make_error(errc::unavailable, "twilio carrier: {}", i.broken ? i.broken->message : "not started");
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
    i.ring();  // callbacks stored for it (by any engine) are applied now
    if (!known.sid.empty())
      return make_error(errc::unavailable, "twilio: call {} is followed through its callbacks", known.sid);
    // The create's answer was lost: is there a call from this caller ID to this callee, created around then? No
    // StartTime filter: a call Twilio still holds in its queue has no start time yet. Newest first: the first
    // page holds anything created in the last moments.
    const auto target = fmt::format("{}.json?To={}&From={}&PageSize=50", i.calls_path, http::percent_encode(known.to),
                                    http::percent_encode(known.from));
    const auto a = i.pool->send_sync(i.get(target));
    if (a.fail != rest::failure::none || a.status != 200)
      return make_error(errc::unavailable, "twilio: listing calls to find attempt {}: {}", attempt.value(),
                        a.fail != rest::failure::none ? a.error : fmt::format("HTTP {}", a.status));
    const auto body = nlohmann::json::parse(a.body, nullptr, false);
    if (!body.is_object() || !body.contains("calls") || !body["calls"].is_array())
      return make_error(errc::unavailable, "twilio: the call list is not the expected JSON");
    // The create left at `sent`; Twilio stamps it within the request's timeout (clock skew allowed either side).
    const auto lo = known.sent - std::chrono::seconds(30);
    const auto hi = known.sent + i.s.request_timeout + std::chrono::seconds(30);
    std::string sid;
    nlohmann::json found;
    for (const auto& c : body["calls"]) {
      if (!c.is_object()) continue;
      const auto created = parse_rfc2822(text_of(c, "date_created"));
      if (!created || *created < lo || *created > hi) continue;
      sid = text_of(c, "sid");
      found = c;
      break;
    }
    if (sid.empty()) {
      // Not listed: "never placed" only once Twilio can no longer be creating it.
      if (i.clk.wall() < known.sent + i.s.request_timeout + i.s.lookup_margin)
        return make_error(errc::unavailable, "twilio: attempt {} is not listed yet", attempt.value());
      bool erased = false;
      {
        std::lock_guard g(i.m);
        if (auto it = i.calls.find(attempt.value()); it != i.calls.end() && it->second.placement == known.placement) {
          i.calls.erase(it);
          erased = true;
        }
      }
      i.settled.notify_all();
      if (!erased) return make_error(errc::unavailable, "twilio: attempt {} changed meanwhile", attempt.value());
      return std::optional<call_event>{};  // no such call: never placed
    }
    i.learned(attempt, known.placement, sid, false);
    const auto st = status_of_resource(found);
    if (is_final(st.status) && i.finish(attempt, known.placement, st, sid)) {
      std::lock_guard g(i.m);
      if (auto it = i.finished_uncertain.find(attempt.value()); it != i.finished_uncertain.end())
        return std::optional<call_event>(it->second);
    }
    return make_error(errc::unavailable, "twilio: call {} of attempt {} exists and is {}", sid, attempt.value(),
                      st.status);
  }
  // Another process's call (reconciliation).
  std::vector<carrier_callback> held;
  {
    std::lock_guard g(i.lookup_mutex);
    auto rows = i.lookup_inbox->take_attempt("twilio", attempt);
    if (!rows) return std::move(rows).error();
    held = std::move(*rows);
  }
  std::string sid(carrier_call_id);
  for (const auto& cb : held) {
    const auto params = nlohmann::json::parse(cb.params_json, nullptr, false);
    if (!params.is_object()) continue;
    const auto st = status_of_callback(params);
    if (sid.empty()) sid = cb.call_id;
    if (is_machine(st.answered_by)) known.machine = true;
    if (cb.event == "answered" && !known.answered) known.answered = st.at.value_or(cb.received_at);
  }
  for (const auto& cb : held) {
    if (cb.event != "final" || (!sid.empty() && cb.call_id != sid)) continue;
    const auto params = nlohmann::json::parse(cb.params_json, nullptr, false);
    return std::optional<call_event>(i.event_of(attempt, known, status_of_callback(params), cb.call_id));
  }
  if (sid.empty()) return std::optional<call_event>{};  // nothing to ask about: the engine records `unknown`
  const auto a = i.pool->send_sync(i.get(i.calls_path + "/" + sid + ".json"));
  if (a.fail == rest::failure::none && a.status == 404) {
    call_event ev;
    ev.attempt = attempt;
    ev.carrier_call_id = sid;
    ev.outcome = call_outcome::unknown;
    ev.started_at = ev.ended_at = i.clk.wall();
    ev.detail = "twilio has no record of call " + sid;
    return std::optional<call_event>(std::move(ev));
  }
  if (a.fail != rest::failure::none || a.status != 200)
    return make_error(errc::unavailable, "twilio: fetching call {}: {}", sid,
                      a.fail != rest::failure::none ? a.error : fmt::format("HTTP {}", a.status));
  const auto body = nlohmann::json::parse(a.body, nullptr, false);
  if (!body.is_object()) return make_error(errc::unavailable, "twilio: the call resource is not JSON");
  const auto st = status_of_resource(body);
  if (!is_final(st.status)) return make_error(errc::unavailable, "twilio: call {} is still {}", sid, st.status);
  return std::optional<call_event>(i.event_of(attempt, known, st, sid));
} catch (const std::exception& e) {
  return make_error(errc::unavailable, "twilio: looking up attempt {}: {}", attempt.value(), e.what());
}

void twilio_carrier::drain(std::chrono::milliseconds deadline) noexcept { impl_->drain(deadline); }

twilio_statistics twilio_carrier::statistics() const {
  const auto& i = *impl_;
  return {i.placed.load(), i.refused.load(), i.indeterminate.load(), i.callbacks.load(), i.polled.load(),
          i.outcomes.load()};
}

const std::string& twilio_carrier::instance() const noexcept { return impl_->instance; }

}  // namespace dialer::carriers::twilio
