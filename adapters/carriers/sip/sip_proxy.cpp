#include "adapters/carriers/sip/sip_proxy.hpp"

#include <cctype>
#include <unordered_map>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>
#include <spdlog/spdlog.h>

namespace dialer::carriers::sip {
namespace {

std::optional<std::string> e164_of_user(std::string_view user) {
  std::string digits;
  bool plus = false;
  for (std::size_t i = 0; i < user.size(); ++i) {
    const char c = user[i];
    if (c == '+' && digits.empty() && !plus) plus = true;
    else if (std::isdigit(static_cast<unsigned char>(c))) digits.push_back(c);
    else if (c == '-' || c == '.' || c == '(' || c == ')') continue;  // visual separators (RFC 3966)
    else return std::nullopt;
  }
  if (digits.size() < 8 || digits.size() > 15 || digits.front() == '0') return std::nullopt;
  return "+" + digits;
}

// The Via a response goes back to: its received/rport when set (RFC 3261 §18.2.2, RFC 3581), else its sent-by.
std::optional<peer> via_target(const osip_via_t& via) {
  peer p;
  p.via = via.protocol != nullptr && osip_strcasecmp(via.protocol, "TCP") == 0 ? transport::tcp : transport::udp;
  osip_generic_param_t* received = nullptr;
  osip_generic_param_t* rport = nullptr;
  osip_via_param_get_byname(const_cast<osip_via_t*>(&via), const_cast<char*>("received"), &received);
  osip_via_param_get_byname(const_cast<osip_via_t*>(&via), const_cast<char*>("rport"), &rport);
  p.host = received != nullptr && received->gvalue != nullptr ? received->gvalue : (via.host != nullptr ? via.host : "");
  if (rport != nullptr && rport->gvalue != nullptr) p.port = std::atoi(rport->gvalue);
  else if (via.port != nullptr) p.port = std::atoi(via.port);
  else p.port = 5060;
  if (p.host.empty() || p.port <= 0 || p.port > 65535) return std::nullopt;
  return p;
}

// A branch derived from the request's own (RFC 3261 §16.6 step 8): the same request forwarded twice (a
// retransmission we forward statelessly, an ACK) gets the same branch.
std::string derived_branch(std::string_view seed) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(seed.data(), seed.size(), md, &len, EVP_sha256(), nullptr);
  std::string b = "z9hG4bK";
  for (unsigned i = 0; i < 10 && i < len; ++i) b += fmt::format("{:02x}", md[i]);
  return b;
}

}  // namespace

std::optional<std::string> called_number(std::string_view text) {
  auto uri = parse_sip_uri(text);
  if (uri) return e164_of_user(uri->user);
  if (text.starts_with("tel:")) {
    text.remove_prefix(4);
    return e164_of_user(text.substr(0, text.find(';')));
  }
  return std::nullopt;
}

struct sip_proxy::impl final : sip_user {
  proxy_options options;
  const route_table& routes;
  std::unique_ptr<sip_endpoint> endpoint;
  token_source tokens;
  client_tag next_tag = 1;

  // An INVITE (or an in-dialog request) forwarded and not yet finally answered: its server transaction, the
  // request as it came (for our own answers), and what we sent (for a CANCEL).
  struct pending {
    server_handle server = 0;
    message_ptr original;
    std::string via;  // our Via on the forwarded request
    std::string uri;  // its Request-URI
    peer target;
    bool invite = false;
    bool provisional = false;
    bool cancel_pending = false;
    std::string caller_branch;
    std::string caller_sent_by;
    // Timer C (RFC 3261 §16.6 step 11, > 3 min): an INVITE with no final answer by then is cancelled; 64*T1 after
    // that without one, it is answered 408 and dropped.
    std::chrono::steady_clock::time_point timer_c{};
    bool cancelled_by_timer_c = false;
  };
  std::unordered_map<client_tag, pending> forwards;
  std::unordered_map<std::string, client_tag> invites_by_branch;  // caller's INVITE branch -> its forward

  // The 2xx we passed back for each INVITE, kept 64*T1 for its retransmissions (caller's branch and sent-by).
  struct answered {
    std::string ok;
    std::chrono::steady_clock::time_point until;
  };
  std::unordered_map<std::string, answered> answered_invites;
  std::chrono::steady_clock::time_point next_sweep{};

  impl(proxy_options o, const route_table& r) : options(std::move(o)), routes(r) {}

  bool routed_through_us(const osip_message_t& m) const {
    auto* route = static_cast<osip_route_t*>(osip_list_get(&m.routes, 0));
    if (route == nullptr || route->url == nullptr) return false;
    char* text = nullptr;
    if (osip_uri_to_str(route->url, &text) != 0 || text == nullptr) return false;
    auto parsed = parse_sip_uri(text);
    osip_free(text);
    return parsed && is_us(*parsed);
  }

  void count(std::string_view result) {
    if (options.count) options.count(result);
  }

  bool is_us(const sip_uri& u) const {
    const int port = u.port != 0 ? u.port : 5060;
    return port == endpoint->local_port() && (u.host == endpoint->advertised_host() || u.host == options.endpoint.bind_host);
  }

  std::string record_route() const {
    const bool v6 = endpoint->advertised_host().find(':') != std::string::npos;
    return fmt::format("<sip:{}{}{}:{};lr>", v6 ? "[" : "", endpoint->advertised_host(), v6 ? "]" : "",
                       endpoint->local_port());
  }

  // The request as it goes on: our Via on top, Max-Forwards one less, our Route gone, the Request-URI set when
  // `uri` is given, our Record-Route on top when asked. Returns its text and where it goes.
  std::optional<std::pair<std::string, peer>> forwarded(const osip_message_t& m, const std::string* uri,
                                                        bool add_record_route, const std::string& branch,
                                                        std::string* via_out) {
    osip_message_t* copy = nullptr;
    if (osip_message_clone(&m, &copy) != 0 || copy == nullptr) return std::nullopt;
    message_ptr out(copy);
    if (uri != nullptr) {
      osip_uri_t* u = nullptr;
      if (osip_uri_init(&u) != 0) return std::nullopt;
      if (osip_uri_parse(u, uri->c_str()) != 0) {
        osip_uri_free(u);
        return std::nullopt;
      }
      osip_uri_free(out->req_uri);
      out->req_uri = nullptr;
      osip_message_set_uri(out.get(), u);
    }
    // §16.4: a top Route naming us is ours to remove.
    if (auto* route = static_cast<osip_route_t*>(osip_list_get(&out->routes, 0)); route != nullptr && route->url) {
      char* text = nullptr;
      if (osip_uri_to_str(route->url, &text) == 0 && text != nullptr) {
        auto parsed = parse_sip_uri(text);
        osip_free(text);
        if (parsed && is_us(*parsed)) {
          osip_list_remove(&out->routes, 0);
          osip_from_free(route);
        }
      }
    }
    osip_header_t* mf = nullptr;
    if (osip_message_header_get_byname(out.get(), "max-forwards", 0, &mf) >= 0 && mf != nullptr) {
      const int value = std::max(0, std::atoi(mf->hvalue != nullptr ? mf->hvalue : "70") - 1);
      osip_free(mf->hvalue);
      mf->hvalue = osip_strdup(std::to_string(value).c_str());
    } else {
      osip_message_set_max_forwards(out.get(), "70");
    }
    if (add_record_route) {
      osip_record_route_t* rr = nullptr;
      if (osip_record_route_init(&rr) == 0) {
        if (osip_record_route_parse(rr, record_route().c_str()) == 0)
          osip_list_add(&out->record_routes, rr, 0);
        else
          osip_from_free(rr);
      }
    }
    // The next hop: the first Route left, else the Request-URI (no DNS: numeric hosts only).
    std::string hop_text = request_uri_of(*out);
    if (auto* route = static_cast<osip_route_t*>(osip_list_get(&out->routes, 0)); route != nullptr && route->url) {
      char* text = nullptr;
      if (osip_uri_to_str(route->url, &text) == 0 && text != nullptr) {
        hop_text = text;
        osip_free(text);
      }
    }
    auto hop = parse_sip_uri(hop_text);
    if (!hop) return std::nullopt;
    peer to{transport_of(*hop), hop->host, hop->port != 0 ? hop->port : 5060};
    const auto via = endpoint->via(to.via, branch);
    if (osip_message_append_via(out.get(), via.c_str()) != 0) return std::nullopt;
    osip_message_force_update(out.get());
    if (via_out != nullptr) *via_out = via;
    return std::pair{wire_of(*out), to};
  }

  // A response on its way back: our Via removed; nullopt when it was the only one (it was for us).
  static std::optional<std::string> upstream(const osip_message_t& m) {
    osip_message_t* copy = nullptr;
    if (osip_message_clone(&m, &copy) != 0 || copy == nullptr) return std::nullopt;
    message_ptr out(copy);
    auto* top = static_cast<osip_via_t*>(osip_list_get(&out->vias, 0));
    if (top == nullptr || osip_list_size(&out->vias) < 2) return std::nullopt;
    osip_list_remove(&out->vias, 0);
    osip_via_free(top);
    osip_message_force_update(out.get());
    return wire_of(*out);
  }

  void reply(server_handle server, const osip_message_t& m, int status,
             std::vector<std::pair<std::string, std::string>> headers = {}, std::string contact = {}) {
    auto r = plain(status, tokens.tag());
    r.headers = std::move(headers);
    r.contact = std::move(contact);
    endpoint->respond(server, write_response(m, r));
  }

  // ---- sip_user ----

  void on_request(server_handle server, const osip_message_t& m, const peer& from) override {
    const auto method = method_of(m);
    if (method == "ACK") {
      // An ACK of a 2xx passes statelessly along its Route, and only when our Record-Route put us there: an ACK
      // (or any request) that does not name us in its top Route is not ours to carry (no open relay).
      if (auto mf = max_forwards_of(m); (mf && *mf <= 0) || !routed_through_us(m)) return;
      if (auto fwd = forwarded(m, nullptr, false, derived_branch(top_branch_of(m) + "ACK"), nullptr))
        endpoint->send_stateless(fwd->first, fwd->second);
      return;
    }
    if (method == "CANCEL") {
      auto it = invites_by_branch.find(top_branch_of(m));
      if (it == invites_by_branch.end()) {
        reply(server, m, 481);
        return;
      }
      reply(server, m, 200);
      auto f = forwards.find(it->second);
      if (f == forwards.end()) return;
      if (f->second.provisional) send_cancel(it->second, f->second);
      else f->second.cancel_pending = true;
      return;
    }
    if (auto mf = max_forwards_of(m); mf && *mf <= 0) {
      if (method == "INVITE" && to_tag_of(m).empty()) count("too_many_hops");
      reply(server, m, 483);
      return;
    }
    if (!to_tag_of(m).empty()) {
      if (!routed_through_us(m)) {
        reply(server, m, 403);  // in a dialog we did not Record-Route: not ours to forward
        return;
      }
      forward(server, m, nullptr, false, method == "INVITE");
      return;
    }
    if (auto done = answered_invites.find(top_branch_of(m) + "|" + sent_by_of(m)); done != answered_invites.end()) {
      // The caller's INVITE again after our 2xx ended its transaction (RFC 3261; RFC 6026 fixes it): the same 2xx,
      // not a second call to the agent.
      endpoint->respond(server, done->second.ok);
      return;
    }
    if (method == "OPTIONS") {
      reply(server, m, 200, {{"Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"}});
      return;
    }
    if (method != "INVITE") {
      reply(server, m, 405, {{"Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"}});
      return;
    }
    endpoint->respond(server, write_response(m, plain(100)));
    if (!routes.loaded()) {
      count("not_ready");
      reply(server, m, 503, {{"Retry-After", "5"}});
      return;
    }
    auto number = called_number(request_uri_of(m));
    if (!number) number = called_number(to_header(m));
    auto route = number ? routes.find(*number) : nullptr;
    if (!route || !(route->handoff.starts_with("sip:") || route->handoff.starts_with("sips:"))) {
      count("rejected");
      spdlog::info("sip proxy: INVITE from {} for {}: no agent takes SIP calls on it (404)", to_string(from),
                   number ? *number : request_uri_of(m));
      reply(server, m, 404);
      return;
    }
    if (options.redirect) {
      count("redirected");
      reply(server, m, 302, {}, "<" + route->handoff + ">");
      return;
    }
    count("routed");
    forward(server, m, &route->handoff, true, true);
  }

  void forward(server_handle server, const osip_message_t& m, const std::string* uri, bool record, bool invite) {
    const client_tag tag = next_tag++;
    std::string via;
    auto fwd = forwarded(m, uri, record, tokens.branch(), &via);
    if (!fwd) {
      reply(server, m, 400);
      return;
    }
    osip_message_t* copy = nullptr;
    if (osip_message_clone(&m, &copy) != 0 || copy == nullptr) return;
    pending p;
    p.server = server;
    p.original.reset(copy);
    p.via = via;
    p.uri = uri != nullptr ? *uri : request_uri_of(m);
    p.target = fwd->second;
    p.invite = invite;
    p.caller_branch = top_branch_of(m);
    p.caller_sent_by = sent_by_of(m);
    p.timer_c = std::chrono::steady_clock::now() + std::chrono::minutes(3);
    if (invite) invites_by_branch[p.caller_branch] = tag;
    forwards.emplace(tag, std::move(p));
    if (auto sent = endpoint->send_request(fwd->first, fwd->second, tag); !sent) {
      finish(tag);
      reply(server, m, 500);
    }
  }

  void send_cancel(client_tag tag, pending& p) {
    request_text r;
    r.method = "CANCEL";
    r.uri = p.uri;
    r.via = p.via;
    r.from = from_header(*p.original);
    r.to = to_header(*p.original);
    r.call_id = call_id_of(*p.original);
    r.cseq = cseq_of(*p.original);
    if (auto sent = endpoint->send_request(write_request(r), p.target, tag | (client_tag{1} << 62)); !sent)
      spdlog::warn("sip proxy: {}", sent.error().message);
  }

  void finish(client_tag tag) {
    auto it = forwards.find(tag);
    if (it == forwards.end()) return;
    if (it->second.invite) invites_by_branch.erase(it->second.caller_branch);
    forwards.erase(it);
  }

  void on_response(client_tag tag, const osip_message_t& m) override {
    if (tag & (client_tag{1} << 62)) return;  // the answer to our CANCEL
    auto it = forwards.find(tag);
    if (it == forwards.end()) return;
    const int status = status_of(m);
    if (status == 100) return;  // hop by hop (§16.7 step 5)
    auto text = upstream(m);
    if (text) endpoint->respond(it->second.server, *text);
    if (text && status < 300 && status >= 200 && it->second.invite)
      answered_invites[it->second.caller_branch + "|" + it->second.caller_sent_by] =
          answered{*text, std::chrono::steady_clock::now() + std::chrono::seconds(32)};
    if (status < 200) {
      it->second.timer_c = std::chrono::steady_clock::now() + std::chrono::minutes(3);  // a provisional resets it
      it->second.provisional = true;
      if (it->second.cancel_pending) {
        it->second.cancel_pending = false;
        send_cancel(tag, it->second);
      }
      return;
    }
    finish(tag);
  }

  void on_client_failed(client_tag tag, client_failure why) override {
    if (tag & (client_tag{1} << 62)) return;
    auto it = forwards.find(tag);
    if (it == forwards.end()) return;
    reply(it->second.server, *it->second.original, why == client_failure::timeout ? 408 : 503);
    finish(tag);
  }

  // A 2xx retransmission (its transaction ended on the first): passed on statelessly when our Via is on top.
  void on_stray_response(const osip_message_t& m, const peer&) override {
    auto* top = static_cast<osip_via_t*>(osip_list_get(&m.vias, 0));
    auto* next = static_cast<osip_via_t*>(osip_list_get(&m.vias, 1));
    if (top == nullptr || next == nullptr || top->host == nullptr) return;
    const int port = top->port != nullptr ? std::atoi(top->port) : 5060;
    if (port != endpoint->local_port() || endpoint->advertised_host() != top->host) return;
    auto to = via_target(*next);
    auto text = upstream(m);
    if (to && text) endpoint->send_stateless(*text, *to);
  }

  void on_tick(std::chrono::steady_clock::time_point now) override {
    if (now < next_sweep) return;
    next_sweep = now + std::chrono::seconds(1);
    for (auto it = answered_invites.begin(); it != answered_invites.end();)
      it = now >= it->second.until ? answered_invites.erase(it) : std::next(it);
    std::vector<client_tag> expired;
    for (auto& [tag, p] : forwards) {
      if (!p.invite || now < p.timer_c) continue;
      if (!p.cancelled_by_timer_c && p.provisional) {
        p.cancelled_by_timer_c = true;
        p.timer_c = now + std::chrono::seconds(32);
        send_cancel(tag, p);
      } else {
        expired.push_back(tag);
      }
    }
    for (auto tag : expired) {
      auto it = forwards.find(tag);
      reply(it->second.server, *it->second.original, 408);
      endpoint->abandon(tag);
      finish(tag);
    }
  }
};

result<std::unique_ptr<sip_proxy>> sip_proxy::make(proxy_options options, const route_table& routes) {
  auto i = std::make_unique<impl>(std::move(options), routes);
  auto ep = sip_endpoint::open(i->options.endpoint);
  if (!ep) return std::move(ep).error();
  i->endpoint = std::move(*ep);
  i->endpoint->start(i.get());
  return std::unique_ptr<sip_proxy>(new sip_proxy(std::move(i)));
}

sip_proxy::sip_proxy(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

sip_proxy::~sip_proxy() {
  stop();
}

void sip_proxy::stop() noexcept {
  if (impl_ && impl_->endpoint) impl_->endpoint->stop();
}

int sip_proxy::port() const noexcept {
  return impl_->endpoint->local_port();
}

const endpoint_counters& sip_proxy::counters() const noexcept {
  return impl_->endpoint->counters();
}

}  // namespace dialer::carriers::sip
