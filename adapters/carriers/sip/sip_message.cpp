#include "adapters/carriers/sip/sip_message.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>

#include <fmt/format.h>
#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>

namespace dialer::carriers::sip {
namespace {

void free_text(char* p) noexcept {
  if (p == nullptr) return;
  if (osip_free_func != nullptr)
    osip_free_func(p);
  else
    std::free(p);  // NOLINT: oSIP allocated it with malloc
}

// Runs an oSIP *_to_str function and takes its text.
template <class T, class F>
std::string text_of(const T* header, F to_str) {
  if (header == nullptr) return {};
  char* out = nullptr;
  if (to_str(header, &out) != 0 || out == nullptr) return {};
  std::string s(out);
  free_text(out);
  return s;
}

char* name_arg(const char* literal) { return const_cast<char*>(literal); }  // oSIP's lookups take char*

std::string param_of(osip_list_t* params, const char* name) {
  osip_generic_param_t* p = nullptr;
  if (osip_uri_param_get_byname(params, name_arg(name), &p) != 0 || p == nullptr || p->gvalue == nullptr)
    return {};
  return p->gvalue;
}

template <class T, class F>
std::vector<std::string> list_text(const osip_list_t& list, F to_str) {
  std::vector<std::string> out;
  const int n = osip_list_size(&list);
  for (int i = 0; i < n; ++i)
    out.push_back(text_of(static_cast<const T*>(osip_list_get(&list, i)), to_str));
  return out;
}

std::optional<int> leading_int(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  return v;
}

}  // namespace

std::string host_port(std::string_view host, int port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  return fmt::format("{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

std::string to_string(const peer& p) {
  return fmt::format("{}/{}", host_port(p.host, p.port), p.via == transport::tcp ? "tcp" : "udp");
}

std::string sent_by_of(const osip_message_t& m) {
  auto* via = static_cast<osip_via_t*>(osip_list_get(&m.vias, 0));
  if (via == nullptr) return {};
  return fmt::format("{}:{}", via->host != nullptr ? via->host : "", via->port != nullptr ? via->port : "5060");
}

bool is_request(const osip_message_t& m) noexcept {
  return m.sip_method != nullptr;
}

std::string method_of(const osip_message_t& m) {
  return is_request(m) ? std::string(m.sip_method) : cseq_method_of(m);
}

int status_of(const osip_message_t& m) noexcept {
  return is_request(m) ? 0 : m.status_code;
}

std::string reason_of(const osip_message_t& m) {
  return m.reason_phrase != nullptr ? std::string(m.reason_phrase) : std::string();
}

std::string call_id_of(const osip_message_t& m) {
  return text_of(m.call_id, osip_call_id_to_str);
}

std::uint32_t cseq_of(const osip_message_t& m) noexcept {
  if (m.cseq == nullptr || m.cseq->number == nullptr) return 0;
  std::uint32_t v = 0;
  const std::string_view s(m.cseq->number);
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string cseq_method_of(const osip_message_t& m) {
  return (m.cseq != nullptr && m.cseq->method != nullptr) ? std::string(m.cseq->method) : std::string();
}

std::string from_tag_of(const osip_message_t& m) {
  return m.from != nullptr ? param_of(&m.from->gen_params, "tag") : std::string();
}

std::string to_tag_of(const osip_message_t& m) {
  return m.to != nullptr ? param_of(&m.to->gen_params, "tag") : std::string();
}

std::string from_header(const osip_message_t& m) {
  return text_of(m.from, osip_from_to_str);
}

std::string to_header(const osip_message_t& m) {
  return text_of(m.to, osip_to_to_str);
}

std::string request_uri_of(const osip_message_t& m) {
  return text_of(m.req_uri, osip_uri_to_str);
}

std::string top_branch_of(const osip_message_t& m) {
  auto* via = static_cast<osip_via_t*>(osip_list_get(&m.vias, 0));
  return via != nullptr ? param_of(&via->via_params, "branch") : std::string();
}

std::vector<std::string> vias_of(const osip_message_t& m) {
  return list_text<osip_via_t>(m.vias, osip_via_to_str);
}

std::vector<std::string> record_routes_of(const osip_message_t& m) {
  return list_text<osip_record_route_t>(m.record_routes, osip_record_route_to_str);
}

std::vector<std::string> routes_of(const osip_message_t& m) {
  return list_text<osip_route_t>(m.routes, osip_route_to_str);
}

std::string contact_uri_of(const osip_message_t& m) {
  auto* c = static_cast<osip_contact_t*>(osip_list_get(&m.contacts, 0));
  if (c == nullptr || c->url == nullptr) return {};
  return text_of(c->url, osip_uri_to_str);
}

std::optional<std::string> header_of(const osip_message_t& m, std::string_view name) {
  const int n = osip_list_size(&m.headers);
  for (int i = 0; i < n; ++i) {
    auto* h = static_cast<osip_header_t*>(osip_list_get(&m.headers, i));
    if (h != nullptr && h->hname != nullptr && iequals(h->hname, name))
      return std::string(h->hvalue != nullptr ? h->hvalue : "");
  }
  return std::nullopt;
}

std::string body_of(const osip_message_t& m) {
  auto* b = static_cast<osip_body_t*>(osip_list_get(&m.bodies, 0));
  if (b == nullptr || b->body == nullptr) return {};
  return std::string(b->body, b->length);
}

std::string content_type_of(const osip_message_t& m) {
  return text_of(m.content_type, osip_content_type_to_str);
}

std::optional<int> max_forwards_of(const osip_message_t& m) {
  auto v = header_of(m, "max-forwards");
  if (!v) return std::nullopt;
  return leading_int(*v);
}

std::optional<int> retry_after_of(const osip_message_t& m) {
  auto v = header_of(m, "retry-after");
  if (!v) return std::nullopt;
  return leading_int(*v);
}

std::string wire_of(osip_message_t& m) {
  char* out = nullptr;
  size_t len = 0;
  if (osip_message_to_str(&m, &out, &len) != 0 || out == nullptr) return {};
  std::string s(out, len);
  free_text(out);
  return s;
}

std::optional<sip_uri> parse_sip_uri(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (!text.empty() && text.front() == '<') {
    auto close = text.find('>');
    if (close == std::string_view::npos) return std::nullopt;
    text = text.substr(1, close - 1);
  }
  sip_uri u;
  if (text.starts_with("sip:")) {
    u.scheme = "sip";
    text.remove_prefix(4);
  } else if (text.starts_with("sips:")) {
    u.scheme = "sips";
    text.remove_prefix(5);
  } else {
    return std::nullopt;
  }
  // Header part (?...) is not part of the address.
  if (auto q = text.find('?'); q != std::string_view::npos) text = text.substr(0, q);
  if (auto at = text.find('@'); at != std::string_view::npos) {
    u.user = std::string(text.substr(0, at));
    text.remove_prefix(at + 1);
  }
  if (auto semi = text.find(';'); semi != std::string_view::npos) {
    u.params = std::string(text.substr(semi));
    text = text.substr(0, semi);
  }
  if (text.empty()) return std::nullopt;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(text.substr(1, close - 1));
    text.remove_prefix(close + 1);
  } else {
    auto colon = text.find(':');
    u.host = std::string(text.substr(0, colon));
    text = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
  }
  if (!text.empty()) {
    if (text.front() != ':') return std::nullopt;
    text.remove_prefix(1);
    int port = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc() || p != text.data() + text.size() || port <= 0 || port > 65535) return std::nullopt;
    u.port = port;
  }
  if (u.host.empty()) return std::nullopt;
  return u;
}

transport transport_of(const sip_uri& uri) {
  const std::string p = ascii_lower(uri.params);
  return p.find(";transport=tcp") != std::string::npos ? transport::tcp : transport::udp;
}

namespace {

// What requests and responses end with alike: Contact, the other headers, the body and its type and length.
void append_rest(std::string& s, const std::string& contact, const std::vector<std::pair<std::string, std::string>>& headers,
                 const std::string& content_type, const std::string& body) {
  if (!contact.empty()) fmt::format_to(std::back_inserter(s), "Contact: {}\r\n", contact);
  for (const auto& [name, value] : headers) fmt::format_to(std::back_inserter(s), "{}: {}\r\n", name, value);
  if (!body.empty()) fmt::format_to(std::back_inserter(s), "Content-Type: {}\r\n", content_type);
  fmt::format_to(std::back_inserter(s), "Content-Length: {}\r\n\r\n", body.size());
  s += body;
}

}  // namespace

std::string write_request(const request_text& r) {
  std::string s;
  s.reserve(512 + r.body.size());
  fmt::format_to(std::back_inserter(s), "{} {} SIP/2.0\r\nVia: {}\r\n", r.method, r.uri, r.via);
  for (const auto& route : r.routes) fmt::format_to(std::back_inserter(s), "Route: {}\r\n", route);
  fmt::format_to(std::back_inserter(s),
                 "Max-Forwards: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n", r.max_forwards,
                 r.from, r.to, r.call_id, r.cseq, r.cseq_method.empty() ? r.method : r.cseq_method);
  append_rest(s, r.contact, r.headers, r.content_type, r.body);
  return s;
}

std::string write_response(const osip_message_t& request, const response_text& r) {
  std::string s;
  s.reserve(512 + r.body.size());
  const char* phrase = r.reason.empty() ? osip_message_get_reason(r.status) : nullptr;
  fmt::format_to(std::back_inserter(s), "SIP/2.0 {} {}\r\n", r.status,
                 r.reason.empty() ? (phrase != nullptr ? phrase : "Unknown") : r.reason);
  for (const auto& v : vias_of(request)) fmt::format_to(std::back_inserter(s), "Via: {}\r\n", v);
  for (const auto& rr : r.record_routes) fmt::format_to(std::back_inserter(s), "Record-Route: {}\r\n", rr);
  std::string to = to_header(request);
  if (!r.to_tag.empty() && to_tag_of(request).empty()) to += ";tag=" + r.to_tag;
  fmt::format_to(std::back_inserter(s), "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n", from_header(request),
                 to, call_id_of(request), cseq_of(request), cseq_method_of(request));
  append_rest(s, r.contact, r.headers, r.content_type, r.body);
  return s;
}

message_ptr parse_text(std::string_view text) {
  osip_message_t* m = nullptr;
  if (osip_message_init(&m) != 0) return nullptr;
  message_ptr owned(m);
  if (osip_message_parse(m, text.data(), text.size()) != 0) return nullptr;
  return owned;
}

token_source::token_source() : engine_(std::random_device{}()) {}

std::string token_source::hex(std::size_t digits) {
  static constexpr std::array<char, 16> k_digits{'0', '1', '2', '3', '4', '5', '6', '7',
                                                  '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string s;
  s.reserve(digits);
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (i % 16 == 0) bits = engine_();
    s.push_back(k_digits[bits & 0xF]);
    bits >>= 4;
  }
  return s;
}

std::string refusing_answer(std::string_view offer) {
  // Our own session lines, then each m= line of the offer with its port set to 0 and its formats kept (RFC 3264
  // §6: a refused stream is answered with port 0); media attributes are dropped.
  std::string out = "v=0\r\no=dialer 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n";
  std::string_view rest = offer;
  while (!rest.empty()) {
    auto eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.starts_with("m=")) continue;
    // m=<media> <port>[/<n>] <proto> <fmt>...
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) continue;
    fmt::format_to(std::back_inserter(out), "{} 0{}\r\n", line.substr(0, sp1), line.substr(sp2));
  }
  return out;
}

}  // namespace dialer::carriers::sip
