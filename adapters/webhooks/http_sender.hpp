#pragma once
// The webhook_sender port over real HTTP/1.1 (Boost.Beast; https through OpenSSL, the peer verified against the
// system's CA store or a configured CA file, with SNI and host-name checks). It signs each request (Standard
// Webhooks), keeps one keep-alive connection per origin, and bounds each try by its timeout, from resolving the
// name to the last byte of the answer. It refuses to connect to an address the policy does not allow (SSRF: no
// loopback, link-local, private or otherwise internal address unless configured), checked on the addresses the
// name resolved to, which are the ones it connects to (no second lookup for a rebinding name to change).
//
// Threading: one instance per thread (a dispatcher thread); post() blocks that thread for at most the timeout.

#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <boost/asio/ip/address.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/ports/webhooks.hpp"
#include "engine/result.hpp"

namespace dialer::webhooks {

// Which internal addresses a delivery may reach. Default: none (public addresses only).
struct address_policy {
  bool loopback = false;  // 127.0.0.0/8, ::1
  bool private_ranges = false;  // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7, link-local
  // "loopback", "private", "loopback,private" (DIALER_WEBHOOK_ALLOW); invalid_input for anything else.
  [[nodiscard]] static result<address_policy> parse(std::string_view text);
};

// Whether `a` may be reached under `policy` (an IPv4-mapped IPv6 address is judged as its IPv4 address).
// Never: unspecified, multicast, broadcast, 0.0.0.0/8, documentation and reserved ranges.
[[nodiscard]] bool address_allowed(const boost::asio::ip::address& a, const address_policy& policy);

// An endpoint URL taken apart: http or https, a host, a port, a target.
struct webhook_url {
  bool tls = false;
  std::string host;    // without brackets for IPv6
  std::string port;    // "80", "443" or the URL's own
  std::string target;  // path and query, at least "/"
};
// invalid_input with the reason for anything but an absolute http(s) URL without user info or fragment.
[[nodiscard]] result<webhook_url> parse_webhook_url(std::string_view url);

struct sender_options {
  address_policy allow;
  std::string ca_file;  // PEM file of trusted CAs for https (empty: the system's store)
  std::size_t max_response_body = 64 * 1024;  // read and discarded; a longer answer closes the connection
};

class http_sender final : public webhook_sender {
 public:
  explicit http_sender(sender_options options);
  ~http_sender() override;
  http_sender(const http_sender&) = delete;
  http_sender& operator=(const http_sender&) = delete;

  webhook_response post(const webhook_request& request) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace dialer::webhooks
