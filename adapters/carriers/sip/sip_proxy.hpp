#pragma once
// Inbound calls on BYOC numbers by SIP: `dialer serve --sip-listen HOST:PORT` takes INVITEs from a trunk and sends
// each to the agent the called number is assigned to, as a proxy (RFC 3261 §16): a transaction-stateful forward to
// the agent's SIP URI with our Via on top, Max-Forwards decremented, and our Record-Route (";lr") so that the
// dialog's later requests (ACK, BYE, re-INVITE) pass through us too. With `redirect`, it answers 302 with the
// agent's URI instead (for trunks set to follow redirects; many are not).
//
// The called number is the Request-URI's user part (else the To's), read as E.164 ("+14155550100", or digits that
// become one with a '+'). Not in the route table (unknown, released), not assigned, or an agent without a SIP
// hand-off: 404, counted. Before the table's first load: 503 with Retry-After. Max-Forwards 0: 483. A CANCEL is
// answered 200 here and sent on to the agent (§16.10). Malformed messages get a 400 from the endpoint (never a
// crash); an OPTIONS outside a dialog (a trunk's keep-alive) gets a 200.
//
// What it never does: touch media, answer a call itself, or hold state beyond a transaction (dialogs pass through
// on their Route headers; a 2xx retransmission or an ACK is forwarded statelessly by its Via / Route).
//
// Threading: make() and stop() from one thread; the work runs on the endpoint's thread; `count` is called there.

#include <functional>
#include <memory>
#include <string_view>

#include "adapters/carriers/sip/sip_endpoint.hpp"
#include "engine/inbound_routes.hpp"
#include "engine/result.hpp"

namespace dialer::carriers::sip {

struct proxy_options {
  endpoint_options endpoint;  // where to listen (UDP and, with listen_tcp, TCP on the same port)
  bool redirect = false;
  // Each out-of-dialog INVITE's result: "routed", "redirected", "rejected" (404), "not_ready" (503), "too_many_hops".
  std::function<void(std::string_view result)> count;
};

class sip_proxy {
 public:
  // Binds and starts. `routes` must outlive the proxy.
  [[nodiscard]] static result<std::unique_ptr<sip_proxy>> make(proxy_options options, const route_table& routes);
  ~sip_proxy();
  void stop() noexcept;
  [[nodiscard]] int port() const noexcept;
  [[nodiscard]] const endpoint_counters& counters() const noexcept;

  struct impl;

 private:
  explicit sip_proxy(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// "sip:+14155550100@10.0.0.1" -> "+14155550100"; digits without '+' get one; nullopt when no E.164 can be read.
[[nodiscard]] std::optional<std::string> called_number(std::string_view request_uri_or_to);

}  // namespace dialer::carriers::sip
