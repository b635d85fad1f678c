#pragma once
// Reading and writing SIP messages for the transaction users (the carrier's calls, the inbound proxy).
//
// Outgoing messages are written as text (a request or response is a handful of header lines) and parsed once by
// oSIP when a transaction needs them: simpler to read and to check than oSIP's setter chains, and each value is
// exactly what goes on the wire. Incoming ones are read through these accessors, which copy what they return (an
// oSIP message is owned by its transaction and dies with it).
//
// Thread-safety: free functions over values; an osip_message_t must only be read by the thread that owns it.

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/carriers/sip/sip_wire.hpp"

namespace dialer::carriers::sip {

// Where a message goes or came from: a numeric address (no DNS at this layer) and a transport.
struct peer {
  transport via = transport::udp;
  std::string host;  // numeric IPv4 or IPv6
  int port = 5060;
  friend bool operator==(const peer&, const peer&) = default;
};
[[nodiscard]] std::string to_string(const peer& p);  // "[::1]:5060/udp"
[[nodiscard]] std::string host_port(std::string_view host, int port);  // "10.0.0.1:5060", "[::1]:5060"

// ---- reading -------------------------------------------------------------------------------------------------

[[nodiscard]] bool is_request(const osip_message_t& m) noexcept;
[[nodiscard]] std::string method_of(const osip_message_t& m);  // request method, or the CSeq method of a response
[[nodiscard]] int status_of(const osip_message_t& m) noexcept;  // 0 for a request
[[nodiscard]] std::string reason_of(const osip_message_t& m);
[[nodiscard]] std::string call_id_of(const osip_message_t& m);
[[nodiscard]] std::uint32_t cseq_of(const osip_message_t& m) noexcept;
[[nodiscard]] std::string cseq_method_of(const osip_message_t& m);
[[nodiscard]] std::string from_tag_of(const osip_message_t& m);
[[nodiscard]] std::string to_tag_of(const osip_message_t& m);
[[nodiscard]] std::string from_header(const osip_message_t& m);  // the whole value, tag included
[[nodiscard]] std::string to_header(const osip_message_t& m);
[[nodiscard]] std::string request_uri_of(const osip_message_t& m);
[[nodiscard]] std::string top_branch_of(const osip_message_t& m);
// The top Via's sent-by, "host:port" (5060 when it names none: RFC 3261 §18.2.1 compares them so).
[[nodiscard]] std::string sent_by_of(const osip_message_t& m);
[[nodiscard]] std::vector<std::string> vias_of(const osip_message_t& m);           // each Via value, top first
[[nodiscard]] std::vector<std::string> record_routes_of(const osip_message_t& m);  // in message order
[[nodiscard]] std::vector<std::string> routes_of(const osip_message_t& m);
[[nodiscard]] std::string contact_uri_of(const osip_message_t& m);  // the first Contact's URI, without <>
// A header by name (case-insensitive; the first one), nullopt when absent.
[[nodiscard]] std::optional<std::string> header_of(const osip_message_t& m, std::string_view name);
[[nodiscard]] std::string body_of(const osip_message_t& m);
[[nodiscard]] std::string content_type_of(const osip_message_t& m);
// Max-Forwards as a number; nullopt when absent or not a number.
[[nodiscard]] std::optional<int> max_forwards_of(const osip_message_t& m);
// Retry-After in seconds (its leading number), nullopt when absent.
[[nodiscard]] std::optional<int> retry_after_of(const osip_message_t& m);
// The serialized message.
[[nodiscard]] std::string wire_of(osip_message_t& m);

// The user, host and port of a SIP URI such as "sip:+15550001@10.0.0.5:5080;transport=tcp" (or "<...>").
struct sip_uri {
  std::string scheme;  // sip | sips
  std::string user;
  std::string host;
  int port = 0;        // 0: not given
  std::string params;  // ";transport=tcp;lr", as written
};
[[nodiscard]] std::optional<sip_uri> parse_sip_uri(std::string_view text);
// The transport a URI asks for (";transport=tcp"), udp otherwise.
[[nodiscard]] transport transport_of(const sip_uri& uri);

// ---- writing -------------------------------------------------------------------------------------------------

struct request_text {
  std::string method;
  std::string uri;
  std::string via;  // the whole top Via value ("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK...;rport")
  std::string from;
  std::string to;
  std::string call_id;
  std::uint32_t cseq = 1;
  std::string cseq_method;  // empty: the request's method
  std::string contact;      // empty: none
  std::vector<std::string> routes;
  std::vector<std::pair<std::string, std::string>> headers;  // any others, in order
  std::string content_type;
  std::string body;
  int max_forwards = 70;
};
[[nodiscard]] std::string write_request(const request_text& r);

// A response to `request`: its Vias, From, Call-ID and CSeq copied; its To with `to_tag` added when it has none
// (and to_tag is not empty).
struct response_text {
  int status = 200;
  std::string reason;  // empty: the standard phrase
  std::string to_tag;
  std::string contact;
  std::vector<std::string> record_routes;  // copied into a 2xx/1xx to establish the dialog
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;
  std::string body;
};
[[nodiscard]] std::string write_response(const osip_message_t& request, const response_text& r);
// The common short answers: a status, optionally a reason phrase and a To tag.
[[nodiscard]] inline response_text plain(int status, std::string to_tag = {}, std::string reason = {}) {
  response_text r;
  r.status = status;
  r.to_tag = std::move(to_tag);
  r.reason = std::move(reason);
  return r;
}

// Parses text this module wrote (or a peer's message already checked by parse_message). nullptr if oSIP refuses.
[[nodiscard]] message_ptr parse_text(std::string_view text);

// Random tokens for tags, branches (with the magic cookie) and Call-IDs. Not thread-safe: one per thread.
class token_source {
 public:
  token_source();
  [[nodiscard]] std::string hex(std::size_t digits);
  [[nodiscard]] std::string branch() { return "z9hG4bK" + hex(16); }
  [[nodiscard]] std::string tag() { return hex(12); }

 private:
  std::mt19937_64 engine_;
};

// An SDP answer that refuses every media line of `offer` (port 0; RFC 3264 §6): what the trunk gets in its ACK
// when the agent never answered, before our BYE (RFC 3261 §13.2.2.4: the ACK must still carry an answer).
[[nodiscard]] std::string refusing_answer(std::string_view offer);

}  // namespace dialer::carriers::sip
