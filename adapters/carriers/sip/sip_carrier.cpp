#include <utility>  // before Asio (Boost 1.74 on g++ 12)

#include "adapters/carriers/sip/sip_carrier.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <unordered_map>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "adapters/carriers/rest/handoff.hpp"
#include "adapters/carriers/rest/settings.hpp"
#include "adapters/carriers/sip/sip_digest.hpp"
#include "adapters/carriers/sip/sip_endpoint.hpp"

namespace dialer::carriers::sip {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

namespace {

// The address this machine uses toward `trunk` (a connected UDP socket sends nothing; the kernel picks the route).
std::string local_address_toward(const std::string& trunk_host, int port) {
  namespace asio = boost::asio;
  asio::io_context io;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(trunk_host, ec);
  if (ec) return "127.0.0.1";
  asio::ip::udp::socket s(io);
  s.open(address.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4(), ec);
  if (!ec) s.connect(asio::ip::udp::endpoint(address, static_cast<unsigned short>(port)), ec);
  if (ec) return address.is_v6() ? "::1" : "127.0.0.1";
  return s.local_endpoint(ec).address().to_string();
}

// A header value from something a contact carries: control characters would end the header (or forge the next).
std::string header_safe(std::string_view v) {
  std::string out;
  out.reserve(std::min<std::size_t>(v.size(), 256));
  for (char c : v) {
    if (out.size() >= 256) break;
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  return out;
}

// The longest ring with delayed_offer: false (the agent's un-ACKed 200 lasts 32 s; a CANCEL's 487 must come too).
constexpr milliseconds kAgentFirstRingLimit{25'000};

}  // namespace

result<sip_settings> parse_sip_settings(const nlohmann::json& json, const carrier_environment& env) {
  sip_settings s;
  const rest::settings_reader o("sip", json);
  static constexpr std::string_view known[] = {
      "trunk",        "transport",    "trunk_domain", "local_host",          "local_port", "max_channels",
      "account_cps",  "ring_timeout", "username",     "agent_answer_timeout", "delayed_offer", "password",
      "threads"};
  try {
    o.only_known(known);
    const auto trunk = o.text("trunk");
    if (trunk.empty())
      return make_error(errc::invalid_input, "sip carrier: setting 'trunk' is required (\"10.0.0.5:5060\")");
    auto uri = parse_sip_uri("sip:" + trunk);
    if (!uri || !uri->user.empty() || !uri->params.empty())
      return make_error(errc::invalid_input, "sip carrier: setting 'trunk' must be host[:port], got \"{}\"",
                        trunk.substr(0, 80));
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address(uri->host, ec);
    if (ec)
      return make_error(errc::invalid_input,
                        "sip carrier: setting 'trunk' must be a numeric IP address (names are not resolved), got "
                        "\"{}\"",
                        uri->host);
    s.trunk.host = uri->host;
    s.trunk.port = uri->port != 0 ? uri->port : 5060;
    static constexpr std::string_view transports[] = {"udp", "tcp"};
    s.trunk.via = o.choice("transport", "udp", transports) == "tcp" ? transport::tcp : transport::udp;
    s.trunk_domain = o.text("trunk_domain");
    if (s.trunk_domain.empty()) s.trunk_domain = host_port(s.trunk.host, s.trunk.port);
    s.local_host = o.text("local_host");
    if (!s.local_host.empty()) {
      (void)boost::asio::ip::make_address(s.local_host, ec);
      if (ec) throw o.fail("setting 'local_host' must be a numeric IP address");
    } else {
      s.local_host = local_address_toward(s.trunk.host, s.trunk.port);
    }
    s.local_port = static_cast<int>(o.number("local_port", 0, 0, 65535));
    s.max_channels = static_cast<int>(o.number("max_channels", 0, 0, 1'000'000));
    s.account_cps = o.number("account_cps", 10, 0.01, 100'000);
    s.ring_timeout = o.duration("ring_timeout", s.ring_timeout, milliseconds(1000), milliseconds(600'000));
    s.agent_answer_timeout =
        o.duration("agent_answer_timeout", s.agent_answer_timeout, milliseconds(200), milliseconds(30'000));
    s.threads = static_cast<int>(o.number("threads", s.threads, 1, 16));
    s.delayed_offer = o.flag("delayed_offer", true);
    // Without delayed offer the agent answers first and its 200 waits un-ACKed while the callee rings: it gives up
    // after 64*T1 = 32 s (RFC 3261 §13.3.1.4), so the ring (and our CANCEL's answer) must end before that.
    if (!s.delayed_offer && !(json.is_object() && json.contains("ring_timeout")))
      s.ring_timeout = kAgentFirstRingLimit;
    if (!s.delayed_offer && s.ring_timeout > kAgentFirstRingLimit)
      return make_error(errc::invalid_input,
                        "sip carrier: with delayed_offer: false the agent answers before the callee rings and its "
                        "200 waits for our ACK 32 s at most: ring_timeout must be at most 25s, got {}ms",
                        s.ring_timeout.count());
    s.username = o.text("username");
    if (s.username.empty())
      if (const auto* u = env.credentials.find("sip.username")) s.username = u->reveal();
    auto own_password = o.text("password", true);
    if (own_password == "<redacted>") own_password.clear();
    if (!own_password.empty())
      s.password = secret(own_password);
    else if (const auto* p = env.credentials.find("sip.password"))
      s.password = *p;
    if (s.username.empty() != s.password.empty())
      return make_error(errc::invalid_input,
                        "sip carrier: digest credentials need both a username and a password (DIALER_SIP_USERNAME, "
                        "DIALER_SIP_PASSWORD)");
  } catch (const rest::bad_setting& b) {
    return make_error(errc::invalid_input, "{}", b.what());
  }
  return s;
}

namespace {

enum class kind : std::uint8_t {
  trunk_invite = 1,
  trunk_cancel,
  trunk_bye,
  trunk_reinvite,
  agent_invite,
  agent_cancel,
  agent_bye,
  agent_reinvite,
};

constexpr client_tag tag_of(std::uint64_t call, kind k) {
  return (call << 4) | static_cast<std::uint64_t>(k);
}
constexpr std::uint64_t call_of(client_tag t) {
  return t >> 4;
}
constexpr kind kind_of(client_tag t) {
  return static_cast<kind>(t & 0xF);
}

// One side of the call, as a UAC dialog (RFC 3261 §12.1.2).
struct leg {
  peer next_hop;
  std::string request_uri;
  std::string call_id;
  std::string from;  // ours, with our tag
  std::string to;    // theirs, as first sent (no tag)
  std::string remote_tag;
  std::string remote_target;  // Contact of the 2xx
  std::vector<std::string> route_set;
  std::uint32_t cseq = 1;
  std::uint32_t invite_cseq = 1;  // the INVITE a 2xx retransmission belongs to
  std::string invite_via;         // the INVITE's Via: a CANCEL repeats it
  std::vector<std::pair<std::string, std::string>> invite_auth;  // credentials, repeated in the 2xx's ACK
  std::string ack;                // the ACK of its last 2xx, resent when the 2xx is
  bool provisional = false;
  bool confirmed = false;  // 2xx received and ACKed
  bool invite_pending = false;
  bool cancel_sent = false;
  bool ended = false;
};

// Flow I: trunk, then agent. Without delayed offer (agent_first): agent_first, then trunk.
enum class phase : std::uint8_t { agent_first, trunk, agent, connected, ended };

struct sip_call {
  std::uint64_t key = 0;
  origination_request request;
  leg trunk;
  leg agent;
  phase at = phase::trunk;
  bool accepted = false;
  bool auth_tried = false;
  bool engine_cancel = false;    // cancel() asked
  bool ring_timed_out = false;
  bool cancel_pending = false;   // wanted before any 1xx: sent at the first one
  bool trunk_gone = false;       // the callee hung up while the agent was being called
  bool agent_cancel_pending = false;  // give up on the agent at its first provisional response
  // delayed_offer: false: the agent is called first without SDP, its 200's offer goes to the trunk, the trunk's
  // answer to the agent in its ACK.
  bool agent_first = false;
  bool agent_gone = false;  // agent_first: the agent hung up while the callee was being called
  nanoseconds ring_deadline{};
  nanoseconds agent_deadline{};
  nanoseconds cancel_deadline{clock::never};
  std::chrono::system_clock::time_point started{};
  std::optional<std::chrono::system_clock::time_point> answered;
  std::string offer;
  bool reported = false;
  // A re-INVITE relayed from one leg to the other: its server transaction, where it came from, our 2xx to it
  // (resent until its ACK: the server transaction ended on it), and whether the ACK is the one carrying the answer.
  server_handle relay_server = 0;
  std::string relay_request;  // the re-INVITE being relayed, to answer it
  std::uint32_t relay_cseq = 0;
  bool relay_from_trunk = false;
  bool relay_awaiting_ack = false;
  bool relay_offer_in_request = false;
  std::string relay_ok;
  peer relay_peer;
  nanoseconds relay_next{clock::never};
  milliseconds relay_interval{500};
  nanoseconds relay_give_up{clock::never};
};

// A leg of a call that has ended, kept cancel_timeout for the 2xx that may still come on it: the ACK of its 2xx
// (resent when that 2xx is), or, for an INVITE that got no 2xx (abandoned, timer B), nothing: a 2xx then is ACKed
// and hung up. Only the leg's own peer is answered.
struct ack_memory {
  std::string ack;         // empty: its INVITE got no 2xx
  peer to;
  nanoseconds until;
  std::string remote_tag;  // the dialog its ACK belongs to
  bool offer_in_2xx = false;
};

}  // namespace

// What the workers of one carrier share. Any thread.
struct shared_state {
  carrier_events* sink = nullptr;  // set before the first originate()
  std::mutex mutex;
  std::condition_variable idle;
  std::size_t unreported = 0;  // under mutex: calls taken and not yet refused or reported
  bool draining = false;       // under mutex
  sip_statistics stats;        // under mutex
  std::atomic<int> active{0};  // calls placed and not yet reported: what max_channels counts
  // The channels this instance may hold (its engine's share of the trunk's, allow_channels()); -1: max_channels.
  std::atomic<int> allowed{-1};
  std::atomic<std::int64_t> trunk_blocked_until_ns{0};  // a 503's Retry-After, for every worker
};

// One endpoint thread with its calls: a carrier spreads its calls over its workers by attempt.
struct call_worker final : sip_user {
  sip_settings settings;
  dialer::clock& clock;
  std::unique_ptr<sip_endpoint> endpoint;
  shared_state& shared;
  carrier_events*& sink;
  token_source tokens;  // endpoint thread
  std::atomic<std::size_t> live_calls{0};

  // Endpoint thread.
  std::unordered_map<std::uint64_t, sip_call> calls;
  std::unordered_map<std::int64_t, std::uint64_t> by_attempt;
  std::unordered_map<std::string, std::uint64_t> by_call_id;  // both legs' Call-IDs
  std::unordered_map<std::string, ack_memory> acks_after_end;  // Call-ID -> the ACK to resend
  std::deque<std::pair<nanoseconds, std::string>> ack_expiry;   // the same, oldest first (one lifetime for all)
  nanoseconds next_call_scan{0};
  std::uint64_t next_key = 1;
  std::atomic<int>& active;
  std::mutex& mutex;
  std::condition_variable& idle;
  std::size_t& unreported;
  sip_statistics& stats;

  call_worker(sip_settings s, dialer::clock& c, shared_state& sh)
      : settings(std::move(s)),
        clock(c),
        shared(sh),
        sink(sh.sink),
        active(sh.active),
        mutex(sh.mutex),
        idle(sh.idle),
        unreported(sh.unreported),
        stats(sh.stats) {}

  // ---- what the engine sees ----

  void refuse(const origination_request& r, origination_refusal why, std::optional<milliseconds> retry_after,
              std::string_view detail) {
    {
      std::lock_guard lock(mutex);
      ++stats.refused;
    }
    if (sink != nullptr) sink->on_refused(r.attempt, why, retry_after, detail);
  }

  void settle_one() {
    std::lock_guard lock(mutex);
    if (unreported > 0) --unreported;
    idle.notify_all();
  }

  void accept(sip_call& c) {
    if (c.accepted) return;
    c.accepted = true;
    if (sink != nullptr) sink->on_accepted(c.request.attempt, c.trunk.call_id);
  }

  void report(sip_call& c, call_outcome outcome, std::string detail) {
    if (c.reported) return;
    c.reported = true;
    --active;
    accept(c);
    call_event e;
    e.attempt = c.request.attempt;
    e.carrier_call_id = c.trunk.call_id;
    e.outcome = outcome;
    e.started_at = c.started;
    e.answered_at = c.answered;
    e.ended_at = clock.wall();
    if (c.answered && outcome == call_outcome::completed)
      e.billable = std::chrono::duration_cast<milliseconds>(e.ended_at - *c.answered);
    e.detail = std::move(detail);
    {
      std::lock_guard lock(mutex);
      ++stats.outcomes;
    }
    if (sink != nullptr) sink->on_outcome(e);
    settle_one();
  }

  void refuse_call(sip_call& c, origination_refusal why, std::optional<milliseconds> retry_after,
                   std::string detail) {
    if (c.reported) return;
    c.reported = true;
    --active;
    refuse(c.request, why, retry_after, detail);
    settle_one();
  }

  // A call whose legs are all ended leaves; the ACKs of its 2xx stay a while for retransmitted 2xx.
  void finish_if_done(sip_call& c) {
    if (!c.reported) return;
    if (c.agent_first && !c.agent.remote_tag.empty() && !c.agent.ended) return;  // its 200 still wants an ACK
    if (c.trunk.invite_pending || c.agent.invite_pending) return;
    if (c.trunk.confirmed && !c.trunk.ended) return;
    if (c.agent.confirmed && !c.agent.ended) return;
    if (c.relay_server != 0 || c.relay_awaiting_ack) return;
    const auto until = clock.monotonic() + settings.cancel_timeout;
    for (const leg* l : {&c.trunk, &c.agent}) {
      if (!l->ack.empty() || (!l->invite_via.empty() && l->remote_tag.empty())) {
        acks_after_end[l->call_id] = ack_memory{l->ack, l->next_hop, until, l->remote_tag, offer_in_2xx(c, *l)};
        ack_expiry.emplace_back(until, l->call_id);
      }
      by_call_id.erase(l->call_id);
    }
    by_attempt.erase(c.request.attempt.value());
    calls.erase(c.key);
  }

  // ---- building requests ----

  std::string via(const leg& l, const std::string& branch) const { return endpoint->via(l.next_hop.via, branch); }

  std::string in_dialog(leg& l, std::string_view method, std::uint32_t cseq, const std::string& branch,
                        std::vector<std::pair<std::string, std::string>> headers = {}, std::string content_type = {},
                        std::string body = {}) {
    request_text r;
    r.method = std::string(method);
    r.uri = l.remote_target.empty() ? l.request_uri : l.remote_target;
    r.via = via(l, branch);
    r.from = l.from;
    r.to = l.to + ";tag=" + l.remote_tag;
    r.call_id = l.call_id;
    r.cseq = cseq;
    r.routes = l.route_set;
    if (method == "INVITE" || method == "ACK") r.contact = endpoint->contact(l.next_hop.via);
    r.headers = std::move(headers);
    r.content_type = std::move(content_type);
    r.body = std::move(body);
    return write_request(r);
  }

  bool send(sip_call& c, const std::string& text, const peer& to, kind k) {
    if (auto sent = endpoint->send_request(text, to, tag_of(c.key, k)); !sent) {
      spdlog::error("sip: attempt {}: {}", c.request.attempt.value(), sent.error().message);
      return false;
    }
    return true;
  }

  // The initial INVITE of a leg (a new branch, the leg's CSeq), remembered for its CANCEL and its 2xx's ACK.
  request_text first_invite(leg& l) {
    request_text r;
    r.method = "INVITE";
    r.uri = l.request_uri;
    l.invite_via = via(l, tokens.branch());
    r.via = l.invite_via;
    r.from = l.from;
    r.to = l.to;
    r.call_id = l.call_id;
    r.cseq = l.cseq;
    l.invite_cseq = l.cseq;
    r.contact = endpoint->contact(l.next_hop.via);
    r.headers = {{"Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"}};
    return r;
  }

  void send_trunk_invite(sip_call& c, std::vector<std::pair<std::string, std::string>> auth) {
    request_text r = first_invite(c.trunk);
    r.headers.insert(r.headers.end(), auth.begin(), auth.end());
    if (c.agent_first) {  // the agent's offer (flow I's legs swapped)
      r.content_type = "application/sdp";
      r.body = c.offer;
    }
    c.trunk.invite_auth = std::move(auth);
    c.trunk.invite_pending = true;
    {
      std::lock_guard lock(mutex);
      ++stats.invites;
    }
    if (!send(c, write_request(r), c.trunk.next_hop, kind::trunk_invite)) {
      c.trunk.invite_pending = false;
      c.at = phase::ended;
      if (c.agent_first) {  // the agent answered already: not a dial to retry as if nothing happened
        release_agent(c);
        report(c, call_outcome::failed, "the trunk's INVITE could not be written");
      } else {
        refuse_call(c, origination_refusal::not_placed, milliseconds(5000),
                    "the trunk's INVITE could not be written");
      }
    }
  }

  void send_agent_invite(sip_call& c) {
    const auto& req = c.request;
    request_text r = first_invite(c.agent);
    const auto fields = rest::handoff_fields_of(req);
    for (const auto& [name, value] : fields.ids) r.headers.emplace_back(rest::x_header(name), value);
    r.headers.emplace_back("X-Caller", header_safe(req.from_e164));
    r.headers.emplace_back("X-Callee", header_safe(req.to_e164));
    std::set<std::string> taken;  // a variable never takes the name of one of ours
    for (const auto& [name, value] : r.headers) taken.insert(ascii_lower(name));
    for (const auto& [name, value] : fields.variables) {
      auto h = rest::x_header(name);
      if (h.size() > 2 && taken.insert(ascii_lower(h)).second) r.headers.emplace_back(std::move(h), header_safe(value));
    }
    if (!c.offer.empty()) {  // empty when the agent is called first: its 200 makes the offer
      r.content_type = "application/sdp";
      r.body = c.offer;
    }
    c.agent.invite_pending = true;
    c.agent_deadline = clock.monotonic() + settings.agent_answer_timeout;
    {
      std::lock_guard lock(mutex);
      ++stats.agent_invites;
    }
    if (!send(c, write_request(r), c.agent.next_hop, kind::agent_invite)) {
      c.agent.invite_pending = false;
      if (c.at == phase::agent_first) {
        c.at = phase::ended;
        refuse_call(c, origination_refusal::not_placed, milliseconds(5000), "the agent's INVITE could not be written");
      } else {
        refuse_agent(c, "the agent's INVITE could not be written");
      }
    }
  }

  void send_cancel(sip_call& c, leg& l, kind k) {
    if (l.cancel_sent || !l.invite_pending) return;
    l.cancel_sent = true;
    request_text r;
    r.method = "CANCEL";
    r.uri = l.request_uri;
    r.via = l.invite_via;
    r.from = l.from;
    r.to = l.to;
    r.call_id = l.call_id;
    r.cseq = l.invite_cseq;
    c.cancel_deadline = clock.monotonic() + settings.cancel_timeout;
    {
      std::lock_guard lock(mutex);
      ++stats.cancels;
    }
    send(c, write_request(r), l.next_hop, k);
  }

  void send_bye(sip_call& c, leg& l, kind k) {
    if (!l.confirmed || l.ended) return;
    l.ended = true;
    send(c, in_dialog(l, "BYE", ++l.cseq, tokens.branch()), l.next_hop, k);
  }

  // The 2xx of an INVITE on `l`: the dialog is set (RFC 3261 §12.1.2) and the ACK sent (with `body` when the 2xx
  // carried the offer).
  void confirm(leg& l, const osip_message_t& ok, const std::string& body) {
    take_dialog(l, ok);
    l.confirmed = true;
    follow_dialog(l);
    send_ack(l, body);
  }

  // What a 2xx sets up: the remote tag, the remote target and the route set (not yet ACKed).
  static void take_dialog(leg& l, const osip_message_t& ok) {
    l.remote_tag = to_tag_of(ok);
    l.remote_target = contact_uri_of(ok);
    if (l.remote_target.empty()) l.remote_target = l.request_uri;
    auto rr = record_routes_of(ok);
    std::reverse(rr.begin(), rr.end());
    l.route_set = std::move(rr);
  }

  // The agent's dialog goes where it says (RFC 3261 §12.2.1.1): its first Route, else its Contact, when that is a
  // numeric address. The trunk's always goes to the trunk's address (our outbound proxy for that leg).
  static void follow_dialog(leg& l) {
    const auto& where = l.route_set.empty() ? l.remote_target : l.route_set.front();
    auto uri = parse_sip_uri(where);
    if (!uri) return;
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address(uri->host, ec);
    if (ec) return;
    l.next_hop = peer{transport_of(*uri), uri->host, uri->port != 0 ? uri->port : 5060};
  }

  void send_ack(leg& l, const std::string& body) {
    l.ack = in_dialog(l, "ACK", l.invite_cseq, tokens.branch(), l.invite_auth, body.empty() ? "" : "application/sdp",
                      body);
    endpoint->send_stateless(l.ack, l.next_hop);
  }

  // ---- the engine's calls (endpoint thread) ----

  void place(const origination_request& r) {
    if (!rest::is_sip_uri(r.handoff)) {
      // Launch refuses such a campaign; this is an agent whose hand-off changed since. Not the callee's fault.
      refuse(r, origination_refusal::not_placed, milliseconds(60'000),
             "the agent's hand-off is not a SIP URI: a SIP trunk connects the callee to the agent by SIP only");
      settle_one();
      return;
    }
    auto agent_uri = parse_sip_uri(r.handoff);
    boost::system::error_code ec;
    if (agent_uri) (void)boost::asio::ip::make_address(agent_uri->host, ec);
    if (!agent_uri || ec) {
      refuse(r, origination_refusal::not_placed, milliseconds(60'000),
             fmt::format("the agent's SIP URI '{}' has no numeric host (names are not resolved)",
                         header_safe(r.handoff)));
      settle_one();
      return;
    }
    const auto now = clock.monotonic();
    const nanoseconds blocked_until{shared.trunk_blocked_until_ns.load()};
    if (now < blocked_until) {
      refuse(r, origination_refusal::not_placed, std::chrono::duration_cast<milliseconds>(blocked_until - now),
             "the trunk asked us to wait (503 Retry-After)");
      settle_one();
      return;
    }
    if (const int limit = channel_limit(); !take_channel(limit)) {
      refuse(r, origination_refusal::throttled, milliseconds(500),
             limit == settings.max_channels
                 ? fmt::format("the trunk's {} channels are all in use", settings.max_channels)
                 : fmt::format("the {} of the trunk's {} channels leased to this engine are all in use", limit,
                               settings.max_channels));
      settle_one();
      return;
    }
    sip_call c;
    c.key = next_key++;
    c.request = r;
    c.started = clock.wall();
    c.ring_deadline = now + settings.ring_timeout;
    const std::string attempt = std::to_string(r.attempt.value());
    c.trunk.next_hop = settings.trunk;
    c.trunk.request_uri = fmt::format("sip:{}@{}", header_safe(r.to_e164), settings.trunk_domain);
    c.trunk.call_id = fmt::format("d{}-{}@{}", attempt, tokens.hex(12), endpoint->advertised_host());
    c.trunk.from = fmt::format("<sip:{}@{}>;tag={}", header_safe(r.from_e164), settings.trunk_domain, tokens.tag());
    c.trunk.to = fmt::format("<{}>", c.trunk.request_uri);
    c.agent.next_hop = peer{transport_of(*agent_uri), agent_uri->host, agent_uri->port != 0 ? agent_uri->port : 5060};
    c.agent.request_uri = r.handoff;
    c.agent.call_id = fmt::format("a{}-{}@{}", attempt, tokens.hex(12), endpoint->advertised_host());
    c.agent.from = fmt::format("<sip:{}@{}>;tag={}", header_safe(r.from_e164),
                               host_port(endpoint->advertised_host(), endpoint->local_port()), tokens.tag());
    c.agent.to = fmt::format("<{}>", r.handoff);
    const auto key = c.key;
    by_attempt[r.attempt.value()] = key;
    by_call_id[c.trunk.call_id] = key;
    by_call_id[c.agent.call_id] = key;
    auto& placed = calls.emplace(key, std::move(c)).first->second;
    if (settings.delayed_offer) {
      send_trunk_invite(placed, {});
    } else {
      placed.agent_first = true;
      placed.at = phase::agent_first;
      send_agent_invite(placed);
    }
    finish_if_done(placed);
  }

  // How many calls this instance may hold on the trunk: max_channels, or less when its engine leased it less.
  // -1: no limit.
  [[nodiscard]] int channel_limit() const {
    const int allowed = shared.allowed.load(std::memory_order_acquire);
    if (allowed < 0) return settings.max_channels > 0 ? settings.max_channels : -1;
    return settings.max_channels > 0 ? std::min(allowed, settings.max_channels) : allowed;
  }

  // One channel for a new call (all workers count together); false when none of `limit` is free.
  bool take_channel(int limit) {
    int now = active.load();
    do {
      if (limit >= 0 && now >= limit) return false;
    } while (!active.compare_exchange_weak(now, now + 1));
    return true;
  }

  void cancel_call(attempt_id attempt) {
    auto it = by_attempt.find(attempt.value());
    if (it == by_attempt.end()) return;
    sip_call& c = calls.at(it->second);
    c.engine_cancel = true;
    hang_up(c, "hung up by the engine");
  }

  // Ends the call from our side at whatever point it is.
  void hang_up(sip_call& c, std::string why) {
    if (c.at == phase::agent_first) {  // nothing reached the callee yet
      give_up_on_agent(c);
      c.at = phase::ended;
      report(c, call_outcome::canceled, std::move(why));
      finish_if_done(c);
      return;
    }
    if (c.at == phase::trunk) {
      if (c.agent_first) release_agent(c);  // the agent's 200 waits no longer: refused now
      if (c.trunk.provisional)
        send_cancel(c, c.trunk, kind::trunk_cancel);
      else
        c.cancel_pending = true;  // a CANCEL must wait for a provisional response (RFC 3261 §9.1)
      return;
    }
    if (c.at == phase::agent) {
      c.trunk_gone = true;
      give_up_on_agent(c);
      refuse_agent(c, "");
      report(c, call_outcome::completed, std::move(why));
      finish_if_done(c);
      return;
    }
    if (c.at == phase::connected) {
      send_bye(c, c.trunk, kind::trunk_bye);
      send_bye(c, c.agent, kind::agent_bye);
      c.at = phase::ended;
      report(c, call_outcome::completed, std::move(why));
      finish_if_done(c);
    }
  }

  // The agent's INVITE is still pending and no longer wanted: CANCEL it now, or at its first provisional response
  // (RFC 3261 §9.1); if nothing final comes within 64*T1 after that, its transaction is dropped (cancel_deadline).
  void give_up_on_agent(sip_call& c) {
    if (!c.agent.invite_pending) return;
    if (c.agent.provisional) send_cancel(c, c.agent, kind::agent_cancel);
    else c.agent_cancel_pending = true;
    c.cancel_deadline = std::min(c.cancel_deadline, clock.monotonic() + settings.cancel_timeout);
  }

  // The agent will not take the call: the trunk's 200 gets its ACK with every stream refused, then a BYE.
  void refuse_agent(sip_call& c, std::string_view detail) {
    if (!c.trunk.confirmed && !c.trunk.remote_tag.empty()) {
      c.trunk.confirmed = true;
      send_ack(c.trunk, refusing_answer(c.offer));
    }
    send_bye(c, c.trunk, kind::trunk_bye);
    c.at = phase::ended;
    if (!detail.empty()) report(c, call_outcome::failed, std::string(detail));
  }

  // ---- sip_user ----

  void on_response(client_tag tag, const osip_message_t& m) override {
    auto it = calls.find(call_of(tag));
    if (it == calls.end()) return;
    sip_call& c = it->second;
    const int status = status_of(m);
    switch (kind_of(tag)) {
      case kind::trunk_invite: trunk_response(c, m, status); break;
      case kind::agent_invite: agent_response(c, m, status); break;
      case kind::trunk_reinvite:
      case kind::agent_reinvite: relay_response(c, m, status, kind_of(tag) == kind::agent_reinvite); break;
      default: break;  // CANCEL and BYE: their answers change nothing
    }
    finish_if_done(c);
  }

  void trunk_response(sip_call& c, const osip_message_t& m, int status) {
    if (status < 200) {
      if (status > 100) {
        c.trunk.provisional = true;
        accept(c);
      } else {
        c.trunk.provisional = true;  // 100 Trying: the CANCEL may go (RFC 3261 §9.1 asks for any provisional)
      }
      if (c.cancel_pending) send_cancel(c, c.trunk, kind::trunk_cancel);
      return;
    }
    c.trunk.invite_pending = false;
    if (c.cancel_deadline != clock::never) c.cancel_deadline = clock::never;
    if (status < 300) {
      if (c.agent_first) {
        trunk_answered_agent_first(c, m);
        return;
      }
      // The callee answered (its 2xx has the offer). Each retransmission of it comes as a stray response.
      take_dialog(c.trunk, m);
      c.offer = body_of(m);
      c.answered = clock.wall();
      accept(c);
      if (c.engine_cancel || c.ring_timed_out || c.offer.empty()) {
        // Answered as we gave up (a CANCEL crossed the 200), or with no offer to pass on: ACK and BYE.
        refuse_agent(c, "");
        report(c, c.offer.empty() ? call_outcome::failed : call_outcome::completed,
               c.offer.empty() ? "the trunk's 200 carried no SDP offer" : "answered as the call was given up");
        return;
      }
      c.at = phase::agent;
      send_agent_invite(c);
      return;
    }
    const std::string detail = fmt::format("SIP {} {}", status, reason_of(m));
    if ((status == 401 || status == 407) && !c.auth_tried && !settings.username.empty()) {
      if (auto challenge = read_challenge(&m)) {
        c.auth_tried = true;
        c.trunk.cseq += 1;
        const auto value = authorization_value(*challenge, {settings.username, settings.password.reveal()}, "INVITE",
                                               c.trunk.request_uri, tokens.hex(16), 1);
        send_trunk_invite(c, {{challenge->proxy ? "Proxy-Authorization" : "Authorization", value}});
        return;
      }
    }
    c.at = phase::ended;
    if (c.agent_first) release_agent(c);
    const auto now = clock.monotonic();
    switch (status) {
      case 486:
      case 600: report(c, call_outcome::busy, detail); return;
      case 408:
      case 480: report(c, call_outcome::no_answer, detail); return;
      case 487:
        if (c.engine_cancel) report(c, call_outcome::canceled, detail);
        else report(c, c.ring_timed_out ? call_outcome::no_answer : call_outcome::failed, detail);
        return;
      case 404:
      case 484:
      case 604:
        if (!c.accepted) refuse_call(c, origination_refusal::invalid_destination, std::nullopt, detail);
        else report(c, call_outcome::failed, detail);
        return;
      case 503: {
        const auto wait = retry_after_of(m);
        if (wait && *wait > 0)
          shared.trunk_blocked_until_ns.store((now + std::chrono::seconds(std::min(*wait, 3600))).count());
        if (!c.accepted)
          refuse_call(c, origination_refusal::not_placed,
                      wait ? std::optional<milliseconds>(std::chrono::seconds(std::min(*wait, 3600))) : std::nullopt,
                      detail);
        else
          report(c, call_outcome::failed, detail);
        return;
      }
      case 403: {
        // A trunk's channel limit ("403 ... channel limit exceeded") slows us down; any other 403 (credentials
        // refused after a challenge, a caller ID the trunk will not carry) fails the call rather than redialing it.
        const std::string reason = ascii_lower(reason_of(m));
        const bool limit = reason.find("limit") != std::string::npos || reason.find("channel") != std::string::npos;
        if (!c.accepted && limit && !c.auth_tried) refuse_call(c, origination_refusal::throttled, milliseconds(1000), detail);
        else report(c, call_outcome::failed, c.auth_tried ? "the trunk refused our credentials: " + detail : detail);
        return;
      }
      default: report(c, call_outcome::failed, detail); return;
    }
  }

  void agent_response(sip_call& c, const osip_message_t& m, int status) {
    if (c.agent_first && status >= 200) {
      agent_first_final(c, m, status);
      return;
    }
    if (status < 200) {
      c.agent.provisional = true;
      if (c.agent_cancel_pending) {
        c.agent_cancel_pending = false;
        send_cancel(c, c.agent, kind::agent_cancel);
      }
      return;
    }
    c.agent.invite_pending = false;
    if (status < 300) {
      confirm(c.agent, m, "");
      if (c.trunk_gone || c.at == phase::ended) {
        send_bye(c, c.agent, kind::agent_bye);
        return;
      }
      c.trunk.confirmed = true;
      send_ack(c.trunk, body_of(m));
      c.at = phase::connected;
      std::lock_guard lock(mutex);
      ++stats.connected;
      return;
    }
    if (c.at == phase::ended) return;
    refuse_agent(c, fmt::format("the agent refused the call: SIP {} {}", status, reason_of(m)));
  }

  // ---- delayed_offer: false: the agent first ----

  // The agent's final answer to our offerless INVITE. A 2xx holds its offer, which goes to the trunk; its ACK waits
  // for the trunk's answer (or refuses every stream when the callee is not reached).
  void agent_first_final(sip_call& c, const osip_message_t& m, int status) {
    c.agent.invite_pending = false;
    if (status >= 300) {
      if (c.at != phase::agent_first) return;
      c.at = phase::ended;
      report(c, call_outcome::failed,
             fmt::format("the agent refused the call before the callee was dialed: SIP {} {}", status, reason_of(m)));
      return;
    }
    take_dialog(c.agent, m);
    follow_dialog(c.agent);
    c.offer = body_of(m);
    if (c.at != phase::agent_first || c.offer.empty()) {
      // Given up meanwhile (the engine's cancel, the answer timeout), or no offer to pass on.
      const bool no_offer = c.at == phase::agent_first;
      c.at = phase::ended;
      release_agent(c);
      if (no_offer) report(c, call_outcome::failed, "the agent's 200 carried no SDP offer");
      return;
    }
    c.at = phase::trunk;
    c.ring_deadline = clock.monotonic() + settings.ring_timeout;
    send_trunk_invite(c, {});
  }

  // The trunk's 2xx with the callee's answer: ACK it, and ACK the agent with that answer.
  void trunk_answered_agent_first(sip_call& c, const osip_message_t& m) {
    // The trunk's dialog always goes to the trunk (our outbound proxy), whatever its Contact says.
    take_dialog(c.trunk, m);
    c.trunk.confirmed = true;
    send_ack(c.trunk, "");
    c.answered = clock.wall();
    accept(c);
    const auto answer = body_of(m);
    if (c.engine_cancel || c.ring_timed_out || c.agent_gone || c.agent.ended || answer.empty()) {
      send_bye(c, c.trunk, kind::trunk_bye);
      c.at = phase::ended;
      release_agent(c);
      report(c, c.agent_gone || answer.empty() ? call_outcome::failed : call_outcome::completed,
             answer.empty()        ? "the trunk's 200 carried no SDP answer"
             : c.agent_gone        ? "answered after the agent hung up"
                                   : "answered as the call was given up");
      return;
    }
    c.agent.confirmed = true;
    send_ack(c.agent, answer);
    c.at = phase::connected;
    std::lock_guard lock(mutex);
    ++stats.connected;
  }

  // The agent's 200 that will not be connected: ACKed with every stream refused (port 0), then a BYE.
  void release_agent(sip_call& c) {
    if (c.agent.remote_tag.empty() || c.agent.ended) return;
    if (!c.agent.confirmed) {
      c.agent.confirmed = true;
      send_ack(c.agent, c.offer.empty() ? "" : refusing_answer(c.offer));
    }
    send_bye(c, c.agent, kind::agent_bye);
  }

  void on_client_failed(client_tag tag, client_failure why) override {
    auto it = calls.find(call_of(tag));
    if (it == calls.end()) return;
    sip_call& c = it->second;
    const char* how = why == client_failure::timeout    ? "no response (timer B)"
                      : why == client_failure::not_sent ? "it could not be sent"
                                                        : "the TCP connection closed";
    switch (kind_of(tag)) {
      case kind::trunk_invite:
        c.trunk.invite_pending = false;
        c.at = phase::ended;
        if (c.agent_first) release_agent(c);
        if (why == client_failure::not_sent && !c.trunk.provisional) {
          // Never left (no route, the trunk's TCP port refused): nothing rang; dial again later.
          refuse_call(c, origination_refusal::not_placed, milliseconds(5000),
                      fmt::format("the INVITE to the trunk {}: {}", to_string(settings.trunk), how));
        } else if (!c.accepted && !c.trunk.provisional) {
          // The INVITE left and nothing came back: it may have rung the callee. Not a refusal of the call.
          refuse(c.request, origination_refusal::indeterminate, std::nullopt,
                 fmt::format("the trunk never answered the INVITE: {}", how));
          c.reported = true;  // the engine asks lookup(), which cannot tell: `unknown`
          --active;
          settle_one();
        } else {
          report(c, call_outcome::failed, fmt::format("the trunk's INVITE ended: {}", how));
        }
        break;
      case kind::agent_invite:
        c.agent.invite_pending = false;
        if (c.at == phase::agent) refuse_agent(c, fmt::format("the agent never answered: {}", how));
        if (c.at == phase::agent_first) {
          c.at = phase::ended;
          if (why == client_failure::not_sent)
            refuse_call(c, origination_refusal::not_placed, milliseconds(5000),
                        fmt::format("the INVITE to the agent: {}", how));
          else
            report(c, call_outcome::failed, fmt::format("the agent never answered: {}", how));
        }
        break;
      case kind::trunk_reinvite:
      case kind::agent_reinvite:
        if (c.relay_server != 0) {
          if (auto original = parse_text(c.relay_request))
            endpoint->respond(c.relay_server, write_response(*original, plain(408)));
          c.relay_server = 0;
        }
        (kind_of(tag) == kind::agent_reinvite ? c.agent : c.trunk).invite_pending = false;
        break;
      default: break;
    }
    finish_if_done(c);
  }

  void on_request(server_handle server, const osip_message_t& m, const peer& from) override {
    const std::string method = method_of(m);
    const std::string call_id = call_id_of(m);
    auto found = by_call_id.find(call_id);
    if (found == by_call_id.end()) {
      if (method == "ACK") return;
      if (method == "OPTIONS") {
        endpoint->respond(server, write_response(m, [&] {
          auto r = plain(200, tokens.tag());
          r.headers = {{"Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"}};
          return r;
        }()));
        return;
      }
      endpoint->respond(server, write_response(m, plain(481, tokens.tag())));
      return;
    }
    sip_call& c = calls.at(found->second);
    const bool from_trunk = call_id == c.trunk.call_id;
    leg& here = from_trunk ? c.trunk : c.agent;
    leg& there = from_trunk ? c.agent : c.trunk;
    (void)from;
    // In the dialog only: its remote tag is theirs (a request naming another dialog of this Call-ID is not ours).
    if (here.remote_tag.empty() || from_tag_of(m) != here.remote_tag) {
      if (method != "ACK") endpoint->respond(server, write_response(m, plain(481, tokens.tag())));
      return;
    }
    if (method == "ACK") {
      // The ACK of our 2xx to a relayed re-INVITE: it carries the answer when the re-INVITE had no offer.
      if (c.relay_awaiting_ack && c.relay_from_trunk == from_trunk) {
        c.relay_awaiting_ack = false;
        c.relay_next = clock::never;
        if (!c.relay_offer_in_request) send_ack(there, body_of(m));
      }
      finish_if_done(c);
      return;
    }
    if (method == "BYE") {
      endpoint->respond(server, write_response(m, plain(200)));
      here.ended = true;
      if (c.relay_server != 0) {  // a relayed re-INVITE still open: it ends with the dialog (§15.1.2)
        if (auto original = parse_text(c.relay_request))
          endpoint->respond(c.relay_server, write_response(*original, plain(487)));
        c.relay_server = 0;
      }
      c.relay_awaiting_ack = false;
      c.relay_next = clock::never;
      {
        std::lock_guard lock(mutex);
        ++stats.relayed_byes;
      }
      if (c.at == phase::connected) {
        send_bye(c, there, from_trunk ? kind::agent_bye : kind::trunk_bye);
        c.at = phase::ended;
        report(c, call_outcome::completed, from_trunk ? "the callee hung up" : "the agent hung up");
      } else if (c.at == phase::agent && from_trunk) {
        c.trunk_gone = true;
        give_up_on_agent(c);
        c.at = phase::ended;
        report(c, call_outcome::completed, "the callee hung up before the agent answered");
      } else if (c.at == phase::trunk && !from_trunk) {
        // The agent called first gave up while the callee rang (its 200 went un-ACKed too long): its 2xx still gets
        // its ACK (RFC 3261 §13.2.2.4), the trunk's INVITE is cancelled, and its final answer reports the call.
        c.agent_gone = true;
        if (!c.agent.confirmed) {
          c.agent.confirmed = true;
          send_ack(c.agent, refusing_answer(c.offer));
        }
        if (c.trunk.provisional)
          send_cancel(c, c.trunk, kind::trunk_cancel);
        else
          c.cancel_pending = true;
      }
      finish_if_done(c);
      return;
    }
    if (method == "INVITE") {
      relay_reinvite(c, server, m, from_trunk);
      return;
    }
    if (method == "OPTIONS" || method == "INFO" || method == "UPDATE") {
      endpoint->respond(server, write_response(m, plain(method == "OPTIONS" ? 200 : 501)));
      return;
    }
    endpoint->respond(server, write_response(m, [] {
      auto r = plain(405);
      r.headers = {{"Allow", "INVITE, ACK, BYE, OPTIONS"}};
      return r;
    }()));
  }

  // A re-INVITE (hold, a codec change, a session refresh) from one leg goes to the other; glare or a call not yet
  // connected is answered 491 (RFC 3261 §14.2).
  void relay_reinvite(sip_call& c, server_handle server, const osip_message_t& m, bool from_trunk) {
    leg& there = from_trunk ? c.agent : c.trunk;
    if (c.relay_awaiting_ack && c.relay_from_trunk == from_trunk && cseq_of(m) == c.relay_cseq) {
      // A retransmission of the re-INVITE we answered (its transaction ended on our 2xx): the same answer.
      endpoint->respond(server, c.relay_ok);
      return;
    }
    if (c.at != phase::connected || c.relay_server != 0 || c.relay_awaiting_ack || there.invite_pending) {
      endpoint->respond(server, write_response(m, plain(491)));
      return;
    }
    endpoint->respond(server, write_response(m, plain(100)));
    c.relay_server = server;
    c.relay_cseq = cseq_of(m);
    c.relay_request = clone_text(m);
    c.relay_from_trunk = from_trunk;
    c.relay_next = clock::never;
    there.invite_cseq = ++there.cseq;
    there.invite_pending = true;
    there.cancel_sent = false;
    const auto body = body_of(m);
    {
      std::lock_guard lock(mutex);
      ++stats.relayed_reinvites;
    }
    send(c,
         in_dialog(there, "INVITE", there.invite_cseq, tokens.branch(), {},
                   body.empty() ? "" : "application/sdp", body),
         there.next_hop, from_trunk ? kind::agent_reinvite : kind::trunk_reinvite);
  }

  static std::string clone_text(const osip_message_t& m) {
    osip_message_t* copy = nullptr;
    if (osip_message_clone(&m, &copy) != 0 || copy == nullptr) return {};
    message_ptr owned(copy);
    return wire_of(*owned);
  }

  void relay_response(sip_call& c, const osip_message_t& m, int status, bool answered_by_agent) {
    leg& there = answered_by_agent ? c.agent : c.trunk;
    leg& here = answered_by_agent ? c.trunk : c.agent;
    if (c.relay_server == 0 || status < 200) return;
    there.invite_pending = false;
    auto original = parse_text(c.relay_request);
    const server_handle server = c.relay_server;
    c.relay_server = 0;
    if (!original) return;
    if (status >= 300) {
      endpoint->respond(server, write_response(*original, plain(status, {}, reason_of(m))));
      return;
    }
    // The far side is ACKed now when the re-INVITE carried the offer; otherwise its 2xx holds the offer and the
    // answer comes in our peer's ACK, which we pass on.
    c.relay_offer_in_request = !body_of(*original).empty();
    if (auto target = contact_uri_of(m); !target.empty()) there.remote_target = target;
    if (c.relay_offer_in_request) send_ack(there, "");
    const auto body = body_of(m);
    auto ok = plain(status);
    ok.contact = endpoint->contact(here.next_hop.via);
    if (!body.empty()) ok.content_type = "application/sdp";
    ok.body = body;
    c.relay_ok = write_response(*original, ok);
    endpoint->respond(server, c.relay_ok);
    // The server transaction ended on the 2xx: on UDP it is resent until the ACK comes (RFC 3261 §13.3.1.4).
    c.relay_awaiting_ack = true;
    c.relay_peer = here.next_hop;
    c.relay_interval = milliseconds(500);
    c.relay_next = here.next_hop.via == transport::udp ? clock.monotonic() + c.relay_interval : clock::never;
    c.relay_give_up = clock.monotonic() + settings.cancel_timeout;
  }

  // Whether a 2xx to this leg's INVITE carries the offer (and its ACK must carry an answer).
  static bool offer_in_2xx(const sip_call& c, const leg& l) { return (&l == &c.agent) == c.agent_first; }

  // A retransmitted 2xx (its ACK again), or a 2xx no call wants: a second fork's, one to an INVITE we gave up on.
  // Only a 2xx from the leg's own peer is answered, and only for a Call-ID of ours still remembered: anyone else
  // could make us send ACKs and BYEs wherever they like.
  void on_stray_response(const osip_message_t& m, const peer& from) override {
    if (status_of(m) < 200 || status_of(m) >= 300 || cseq_method_of(m) != "INVITE") return;
    const auto call_id = call_id_of(m);
    if (auto found = by_call_id.find(call_id); found != by_call_id.end()) {
      sip_call& c = calls.at(found->second);
      leg& l = call_id == c.trunk.call_id ? c.trunk : c.agent;
      if (from.host != l.next_hop.host) return;
      if (!l.remote_tag.empty() && to_tag_of(m) != l.remote_tag) {
        hang_up_stray(m, l.next_hop, offer_in_2xx(c, l));  // a second fork's answer: the call goes on with the first
        return;
      }
      if (!l.ack.empty() && cseq_of(m) == l.invite_cseq) endpoint->send_stateless(l.ack, l.next_hop);
      return;
    }
    auto old = acks_after_end.find(call_id);
    if (old == acks_after_end.end() || from.host != old->second.to.host) return;
    if (!old->second.ack.empty() && to_tag_of(m) == old->second.remote_tag)
      endpoint->send_stateless(old->second.ack, old->second.to);
    else  // the answer to an INVITE given up (timer B, an unanswered CANCEL), or another fork's
      hang_up_stray(m, old->second.to, old->second.offer_in_2xx);
  }

  // A 2xx no call wants: its dialog is up at the far end, so it gets its ACK (refusing every stream when the 2xx
  // made the offer) and a BYE (RFC 3261 §13.2.2.4), both built from the response alone.
  void hang_up_stray(const osip_message_t& ok, const peer& to, bool offer) {
    request_text r;
    r.uri = contact_uri_of(ok);
    if (r.uri.empty()) return;
    r.from = from_header(ok);
    r.to = to_header(ok);
    r.call_id = call_id_of(ok);
    auto routes = record_routes_of(ok);
    std::reverse(routes.begin(), routes.end());
    r.routes = std::move(routes);
    r.method = "ACK";
    r.cseq = cseq_of(ok);
    r.via = endpoint->via(to.via, tokens.branch());
    r.contact = endpoint->contact(to.via);
    if (const auto body = body_of(ok); offer && !body.empty()) {
      r.content_type = "application/sdp";
      r.body = refusing_answer(body);
    }
    endpoint->send_stateless(write_request(r), to);
    r.method = "BYE";
    r.cseq += 1;
    r.via = endpoint->via(to.via, tokens.branch());
    r.contact.clear();
    r.content_type.clear();
    r.body.clear();
    // Its own transaction (retransmitted, answered into nothing: no call has key 0).
    (void)endpoint->send_request(write_request(r), to, tag_of(0, kind::trunk_bye));
    std::lock_guard lock(mutex);
    ++stats.stray_answers;
  }

  void on_tick(std::chrono::steady_clock::time_point) override {
    const auto now = clock.monotonic();
    while (!ack_expiry.empty() && now >= ack_expiry.front().first) {
      if (auto it = acks_after_end.find(ack_expiry.front().second);
          it != acks_after_end.end() && now >= it->second.until)
        acks_after_end.erase(it);
      ack_expiry.pop_front();
    }
    // The calls' own deadlines (ring, agent, CANCEL, relayed 2xx) are looked at every 100 ms.
    if (now < next_call_scan) return;
    next_call_scan = now + milliseconds(100);
    std::vector<std::uint64_t> keys;
    for (auto& [key, c] : calls) {
      if (c.at == phase::trunk && !c.ring_timed_out && !c.engine_cancel && now >= c.ring_deadline) {
        c.ring_timed_out = true;
        if (c.trunk.provisional)
          send_cancel(c, c.trunk, kind::trunk_cancel);
        else
          c.cancel_pending = true;
      }
      if (c.at == phase::agent_first && c.agent.invite_pending && now >= c.agent_deadline) {
        give_up_on_agent(c);
        c.at = phase::ended;
        report(c, call_outcome::failed, "the agent did not answer in time");
        keys.push_back(key);
      }
      if (c.at == phase::agent && c.agent.invite_pending && now >= c.agent_deadline) {
        // Too late for the trunk's 200, which waits for its ACK: give up on the agent. Without a provisional it
        // cannot be cancelled; if it answers after all, its 2xx is ACKed and hung up (trunk_gone).
        c.trunk_gone = true;
        give_up_on_agent(c);
        refuse_agent(c, "the agent did not answer in time");
        keys.push_back(key);
      }
      if (c.cancel_deadline != clock::never && now >= c.cancel_deadline) {
        // No final response to our CANCEL within 64*T1: the INVITE is considered cancelled (RFC 3261 §9.1).
        c.cancel_deadline = clock::never;
        for (auto [l, k] : {std::pair{&c.trunk, kind::trunk_invite}, std::pair{&c.agent, kind::agent_invite}}) {
          if (!l->invite_pending) continue;
          endpoint->abandon(tag_of(c.key, k));
          l->invite_pending = false;
        }
        if (c.at == phase::trunk) {
          c.at = phase::ended;
          if (c.agent_first) release_agent(c);
          report(c, c.engine_cancel ? call_outcome::canceled : call_outcome::no_answer,
                 "no final response to our CANCEL");
        }
        keys.push_back(key);
      }
      if (c.relay_awaiting_ack && now >= c.relay_give_up) {
        c.relay_next = clock::never;
        c.relay_awaiting_ack = false;
        keys.push_back(key);
      } else if (c.relay_next != clock::never && now >= c.relay_next) {
        {
          endpoint->send_stateless(c.relay_ok, c.relay_peer);
          c.relay_interval = std::min(c.relay_interval * 2, milliseconds(4000));
          c.relay_next = now + c.relay_interval;
        }
      }
    }
    for (auto key : keys)
      if (auto it = calls.find(key); it != calls.end()) finish_if_done(it->second);
    live_calls.store(calls.size());
  }
};

struct sip_carrier::impl {
  shared_state shared;
  std::vector<std::unique_ptr<call_worker>> workers;
  dialer::clock* clock = nullptr;
  sip_settings settings;

  call_worker& worker_of(attempt_id attempt) {
    return *workers[static_cast<std::size_t>(attempt.value()) % workers.size()];
  }
};

result<std::unique_ptr<sip_carrier>> sip_carrier::make(sip_settings settings, dialer::clock& clock) {
  auto i = std::make_unique<impl>();
  i->clock = &clock;
  i->settings = settings;
  const int threads = settings.local_port != 0 ? 1 : settings.threads;
  for (int t = 0; t < threads; ++t) {
    auto w = std::make_unique<call_worker>(settings, clock, i->shared);
    endpoint_options eo;
    eo.bind_host = settings.local_host;
    eo.bind_port = settings.local_port;
    eo.limits = settings.limits;
    eo.name = "sip carrier";
    // A TCP trunk sends its BYE or re-INVITE to our Contact, on a new connection if it does not reuse ours.
    eo.listen_tcp = settings.trunk.via == transport::tcp;
    auto ep = sip_endpoint::open(std::move(eo));
    if (!ep) return std::move(ep).error();
    w->endpoint = std::move(*ep);
    i->workers.push_back(std::move(w));
  }
  for (auto& w : i->workers) w->endpoint->start(w.get());
  return std::unique_ptr<sip_carrier>(new sip_carrier(std::move(i)));
}

sip_carrier::sip_carrier(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

sip_carrier::~sip_carrier() {
  for (auto& w : impl_->workers) w->endpoint->stop();
}

double sip_carrier::account_cps() const noexcept {
  return impl_->settings.account_cps;
}

int sip_carrier::max_channels() const noexcept {
  return impl_->settings.max_channels;
}

int sip_carrier::channels_in_use() const noexcept {
  return impl_->shared.active.load(std::memory_order_acquire);
}

void sip_carrier::allow_channels(int channels) noexcept {
  impl_->shared.allowed.store(std::max(channels, 0), std::memory_order_release);
}

std::string sip_carrier::account_identity() const {
  // One trunk account: two accounts on one SBC (their own credentials) have their own limits.
  const auto& s = impl_->settings;
  return "sip:" + (s.username.empty() ? "" : s.username + "@") + host_port(s.trunk.host, s.trunk.port);
}

void sip_carrier::set_events(carrier_events* sink) noexcept {
  impl_->shared.sink = sink;
}

void sip_carrier::originate(std::span<const origination_request> requests) noexcept {
  auto& shared = impl_->shared;
  bool draining = false;
  {
    std::lock_guard lock(shared.mutex);
    draining = shared.draining;
    if (!draining) shared.unreported += requests.size();
  }
  if (draining) {
    for (const auto& r : requests)
      if (shared.sink != nullptr)
        shared.sink->on_refused(r.attempt, origination_refusal::not_placed, std::nullopt, "the carrier is draining");
    return;
  }
  std::vector<std::vector<origination_request>> per_worker(impl_->workers.size());
  for (const auto& r : requests)
    per_worker[static_cast<std::size_t>(r.attempt.value()) % per_worker.size()].push_back(r);
  for (std::size_t n = 0; n < per_worker.size(); ++n) {
    if (per_worker[n].empty()) continue;
    auto* w = impl_->workers[n].get();
    w->endpoint->post([w, batch = std::move(per_worker[n])] {
      for (const auto& r : batch) w->place(r);
    });
  }
}

void sip_carrier::cancel(attempt_id attempt) noexcept {
  auto& w = impl_->worker_of(attempt);
  w.endpoint->post([w = &w, attempt] { w->cancel_call(attempt); });
}

result<std::optional<call_event>> sip_carrier::lookup(attempt_id, std::string_view) {
  // A SIP trunk keeps no record we could ask: a call whose INVITE got no answer, or one placed by an earlier
  // process, cannot be told apart from one that rang. `unknown`, never redialed.
  return std::optional<call_event>{};
}

void sip_carrier::drain(std::chrono::milliseconds deadline) noexcept {
  auto& shared = impl_->shared;
  std::unique_lock lock(shared.mutex);
  shared.draining = true;
  if (impl_->clock->wait_for(shared.idle, lock, deadline, [&] { return shared.unreported == 0; })) return;
  // Past the deadline: nobody would relay a BYE once we are gone, and the legs would stay up between the trunk and
  // the agent. Every call still here is ended (CANCEL or BYE) and reported.
  lock.unlock();
  for (auto& worker : impl_->workers) {
    worker->endpoint->post([w = worker.get()] {
      std::vector<std::uint64_t> keys;
      for (auto& [key, c] : w->calls) keys.push_back(key);
      for (auto key : keys)
        if (auto it = w->calls.find(key); it != w->calls.end()) w->hang_up(it->second, "ended as the engine stopped");
    });
  }
  lock.lock();
  impl_->clock->wait_for(shared.idle, lock, std::chrono::seconds(2), [&] { return shared.unreported == 0; });
}

sip_statistics sip_carrier::statistics() const {
  sip_statistics s;
  {
    std::lock_guard lock(impl_->shared.mutex);
    s = impl_->shared.stats;
  }
  for (const auto& w : impl_->workers) {
    s.live_calls += w->live_calls.load();
    s.live_transactions += w->endpoint->live_transactions();
  }
  return s;
}

int sip_carrier::local_port() const noexcept {
  return impl_->workers.front()->endpoint->local_port();
}

}  // namespace dialer::carriers::sip
