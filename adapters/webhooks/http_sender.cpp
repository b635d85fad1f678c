#include "adapters/webhooks/http_sender.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>
#include <fmt/format.h>

#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"

namespace dialer::webhooks {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

result<address_policy> address_policy::parse(std::string_view text) {
  address_policy p;
  while (!text.empty()) {
    const auto comma = text.find(',');
    auto word = text.substr(0, comma);
    while (!word.empty() && word.front() == ' ') word.remove_prefix(1);
    while (!word.empty() && word.back() == ' ') word.remove_suffix(1);
    if (word == "loopback") p.loopback = true;
    else if (word == "private") p.private_ranges = true;
    else if (!word.empty())
      return make_error(errc::invalid_input,
                        "DIALER_WEBHOOK_ALLOW: '{}' is not 'loopback' or 'private' (comma-separated)", word);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return p;
}

namespace {
bool in(std::uint32_t a, std::uint32_t net, int bits) {
  const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
  return (a & mask) == (net & mask);
}
constexpr std::uint32_t v4(int a, int b, int c, int d) {
  return static_cast<std::uint32_t>(a) << 24 | static_cast<std::uint32_t>(b) << 16 | static_cast<std::uint32_t>(c) << 8 |
         static_cast<std::uint32_t>(d);
}
}  // namespace

bool address_allowed(const net::ip::address& a, const address_policy& policy) {
  if (a.is_v6()) {
    const auto six = a.to_v6();
    const auto b = six.to_bytes();
    if (six.is_v4_mapped()) return address_allowed(net::ip::make_address_v4(net::ip::v4_mapped, six), policy);
    // IPv4-compatible (::a.b.c.d, deprecated) and 6to4 (2002:a.b.c.d::/48) reach the IPv4 address they embed.
    if (std::all_of(b.begin(), b.begin() + 12, [](unsigned char x) { return x == 0; }) && !six.is_loopback() &&
        !six.is_unspecified())
      return address_allowed(net::ip::address_v4(net::ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]}), policy);
    if (b[0] == 0x20 && b[1] == 0x02)
      return address_allowed(net::ip::address_v4(net::ip::address_v4::bytes_type{b[2], b[3], b[4], b[5]}), policy);
    // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds; the local-use prefix 64:ff9b:1::/48 is internal.
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
        std::all_of(b.begin() + 4, b.begin() + 12, [](unsigned char x) { return x == 0; }))
      return address_allowed(net::ip::address_v4(net::ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]}), policy);
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 && b[5] == 0x01)
      return policy.private_ranges;
    // Link-local (fe80::/10) is never a receiver; fd00:ec2::254 (a cloud metadata service) never either.
    if (six.is_link_local()) return false;
    if (six == net::ip::make_address_v6("fd00:ec2::254")) return false;
    if (six.is_unspecified() || six.is_multicast()) return false;
    if (six.is_loopback()) return policy.loopback;
    if (six.is_site_local() || (b[0] & 0xfe) == 0xfc) return policy.private_ranges;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;  // 2001:db8::/32, documentation
    return true;
  }
  const auto x = a.to_v4().to_uint();
  if (in(x, v4(127, 0, 0, 0), 8)) return policy.loopback;
  // Link-local (169.254/16, with the cloud metadata address 169.254.169.254) is never a receiver.
  if (in(x, v4(169, 254, 0, 0), 16)) return false;
  if (in(x, v4(10, 0, 0, 0), 8) || in(x, v4(172, 16, 0, 0), 12) || in(x, v4(192, 168, 0, 0), 16) ||
      in(x, v4(100, 64, 0, 0), 10))
    return policy.private_ranges;
  if (in(x, v4(0, 0, 0, 0), 8) || in(x, v4(224, 0, 0, 0), 4) || in(x, v4(240, 0, 0, 0), 4) ||
      in(x, v4(192, 0, 0, 0), 24) || in(x, v4(192, 0, 2, 0), 24) || in(x, v4(198, 18, 0, 0), 15) ||
      in(x, v4(198, 51, 100, 0), 24) || in(x, v4(203, 0, 113, 0), 24))
    return false;
  return true;
}

result<webhook_url> parse_webhook_url(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return make_error(errc::invalid_input, "webhook URL '{}': {}", std::string(url.substr(0, 200)), why);
  };
  if (url.size() > 2048) return bad("longer than 2048 characters");
  if (std::any_of(url.begin(), url.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
    return bad("contains a space or a control character");
  webhook_url out;
  std::string_view rest;
  const auto starts = [&](std::string_view p) {
    return url.size() >= p.size() && std::equal(p.begin(), p.end(), url.begin(), [](char want, char got) {
             return std::tolower(static_cast<unsigned char>(got)) == want;
           });
  };
  if (starts("https://")) out.tls = true, rest = url.substr(8);
  else if (starts("http://")) rest = url.substr(7);
  else return bad("must start with https:// or http://");
  if (rest.find('#') != std::string_view::npos) return bad("has a fragment");
  const auto end = rest.find_first_of("/?");
  auto authority = rest.substr(0, end);
  out.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (out.target.front() == '?') out.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) return bad("has user information");
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed [");
    out.host = std::string(authority.substr(1, close - 1));
    boost::system::error_code ec;
    (void)net::ip::make_address_v6(out.host, ec);
    if (ec) return bad("the bracketed host is not an IPv6 address");
    auto after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return bad("has characters after the ]");
    if (!after.empty()) port = after.substr(1);
  } else {
    const auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (out.host.empty()) return bad("has no host");
    if (!std::all_of(out.host.begin(), out.host.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'; }))
      return bad("the host has characters a host name cannot have");
  }
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535)
      return bad("the port is not a number from 1 to 65535");
    out.port = std::string(port);
  }
  return out;
}

namespace {

std::string host_field(const webhook_url& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + u.host + "]" : u.host;
  if (u.port != (u.tls ? "443" : "80")) h += ":" + u.port;
  return h;
}

}  // namespace

struct http_sender::impl {
  struct connection {
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }
  };

  explicit impl(sender_options o) : options(std::move(o)), tls(ssl::context::tls_client) {
    tls.set_verify_mode(ssl::verify_peer);
    if (options.ca_file.empty()) tls.set_default_verify_paths();
    else tls.load_verify_file(options.ca_file);
  }

  sender_options options;
  net::io_context io;
  ssl::context tls;
  std::map<std::string, std::unique_ptr<connection>> pool;

  void run() {
    io.restart();
    io.run();
  }

  // The host's addresses. getaddrinfo cannot be cancelled once it runs (Asio's resolver cancels only before), so
  // it runs on a thread of its own and the wait for it ends at the deadline; a late answer is dropped.
  static result<std::vector<tcp::endpoint>> resolve(const webhook_url& u, std::chrono::steady_clock::time_point deadline) {
    boost::system::error_code not_ip;
    const auto ip = net::ip::make_address(u.host, not_ip);
    if (!not_ip) return std::vector<tcp::endpoint>{{ip, static_cast<unsigned short>(std::stoi(u.port))}};
    struct lookup {
      std::mutex m;
      std::condition_variable cv;
      bool done = false;
      boost::system::error_code ec;
      std::vector<tcp::endpoint> found;
    };
    auto l = std::make_shared<lookup>();
    std::thread([l, host = u.host, port = u.port] {
      net::io_context io;
      tcp::resolver r(io);
      boost::system::error_code ec;
      const auto results = r.resolve(host, port, ec);
      std::vector<tcp::endpoint> eps;
      for (const auto& e : results) eps.push_back(e.endpoint());
      {
        std::lock_guard g(l->m);
        l->ec = ec;
        l->found = std::move(eps);
        l->done = true;
      }
      l->cv.notify_all();
    }).detach();
    std::unique_lock g(l->m);
    if (!l->cv.wait_until(g, deadline, [&] { return l->done; }))
      return make_error(errc::unavailable, "resolving {}: no answer within the timeout", u.host);
    if (l->ec) return make_error(errc::unavailable, "resolving {}: {}", u.host, l->ec.message());
    return std::move(l->found);
  }

  // Opens a connection to an allowed address of the URL's host; an error says why not.
  result<std::unique_ptr<connection>> open(const webhook_url& u, std::chrono::steady_clock::time_point deadline) {
    auto found = resolve(u, deadline);
    if (!found) return found.error();
    beast::error_code ec;
    std::vector<tcp::endpoint> allowed;
    for (const auto& e : *found)
      if (address_allowed(e.address(), options.allow)) allowed.push_back(e);
    // The addresses are not named: a tenant must not learn what an internal name resolves to.
    if (allowed.empty())
      return make_error(errc::invalid_input,
                        "refused: {} resolves only to addresses this service does not deliver to (internal or "
                        "reserved)",
                        u.host);
    auto c = std::make_unique<connection>();
    if (u.tls) c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, tls);
    else c->plain = std::make_unique<beast::tcp_stream>(io);
    c->lowest().expires_at(deadline);
    c->lowest().async_connect(allowed, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) return make_error(errc::unavailable, "connecting to {}:{}: {}", u.host, u.port, ec.message());
    if (u.tls) {
      boost::system::error_code not_ip;
      (void)net::ip::make_address(u.host, not_ip);
      // SNI names a host, never an address.
      if (not_ip && !SSL_set_tlsext_host_name(c->secure->native_handle(), u.host.c_str()))
        return make_error(errc::internal, "TLS: cannot set the server name {}", u.host);
      c->secure->set_verify_callback(ssl::host_name_verification(u.host));
      c->secure->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
      run();
      if (ec) return make_error(errc::unavailable, "TLS with {}: {}", u.host, ec.message());
    }
    return c;
  }

  // One request on `c`; `stale` says the failure came before any answer byte on a reused connection.
  template <class Stream>
  webhook_response exchange(Stream& stream, connection& c, bhttp::request<bhttp::string_body>& m,
                            std::chrono::steady_clock::time_point deadline, bool& keep, bool& stale) {
    webhook_response out;
    beast::error_code ec;
    c.lowest().expires_at(deadline);
    bhttp::async_write(stream, m, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec) {
      stale = true;
      out.error = "sending: " + ec.message();
      return out;
    }
    const auto written = std::chrono::steady_clock::now();
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_response_body);
    c.lowest().expires_at(deadline);
    bhttp::async_read(stream, c.buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec && !(ec == bhttp::error::body_limit && parser.is_header_done())) {
      // A kept-alive connection the receiver had closed fails at once; one that fails later may have been
      // processed, and is not sent again here (the schedule retries it).
      stale = !parser.got_some() && ec != beast::error::timeout &&
              std::chrono::steady_clock::now() - written < std::chrono::seconds(1);
      out.error = ec == beast::error::timeout ? "no answer within the timeout" : "reading the answer: " + ec.message();
      return out;
    }
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    if (out.status < 200) {  // an interim answer (100, 103): its final answer would follow on this connection
      keep = false;
      out.error = fmt::format("an interim answer ({}) where a final one was expected", out.status);
      out.status = 0;
      return out;
    }
    if (auto it = res.find(bhttp::field::retry_after); it != res.end())
      out.retry_after = http::parse_retry_after(std::string_view(it->value().data(), it->value().size()));
    keep = !ec && res.keep_alive();
    return out;
  }
};

http_sender::http_sender(sender_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
http_sender::~http_sender() = default;

webhook_response http_sender::post(const webhook_request& request) {
  webhook_response out;
  try {
    auto url = parse_webhook_url(request.url);
    if (!url) return {0, std::nullopt, url.error().message};
    std::string signatures;
    for (const auto& secret : request.secrets)
      if (auto s = http::standard_webhook_signature(secret, request.message_id, request.timestamp, request.body)) {
        if (!signatures.empty()) signatures += ' ';
        signatures += *s;
      }
    if (signatures.empty()) return {0, std::nullopt, "the endpoint has no well-formed secret to sign with"};
    bhttp::request<bhttp::string_body> m{bhttp::verb::post, url->target, 11};
    m.set(bhttp::field::host, host_field(*url));
    m.set(bhttp::field::user_agent, "dialer-webhooks/1");
    m.set(bhttp::field::content_type, "application/json");
    m.set("webhook-id", request.message_id);
    m.set("webhook-timestamp", std::to_string(request.timestamp));
    m.set("webhook-signature", signatures);
    m.keep_alive(true);
    m.body() = request.body;
    m.prepare_payload();

    const auto deadline = std::chrono::steady_clock::now() + request.timeout;
    const auto key = (url->tls ? "https://" : "http://") + url->host + ":" + url->port;
    auto& pool = impl_->pool;
    for (int round = 0; round < 2; ++round) {
      const bool reused = pool.count(key) > 0;
      if (!reused) {
        auto opened = impl_->open(*url, deadline);
        if (!opened) return {0, std::nullopt, opened.error().message};
        pool[key] = std::move(*opened);
      }
      auto& c = *pool[key];
      bool keep = false, stale = false;
      out = c.plain ? impl_->exchange(*c.plain, c, m, deadline, keep, stale)
                    : impl_->exchange(*c.secure, c, m, deadline, keep, stale);
      if (!keep) pool.erase(key);
      // A kept-alive connection the receiver had closed in the meantime fails before any answer: once more on a
      // new one (at least once: the receiver deduplicates on webhook-id if the first did arrive).
      if (out.status == 0 && reused && stale && std::chrono::steady_clock::now() < deadline) continue;
      return out;
    }
    return out;
  } catch (const std::exception& e) {
    impl_->pool.clear();
    return {0, std::nullopt, std::string("sending: ") + e.what()};
  }
}

}  // namespace dialer::webhooks
