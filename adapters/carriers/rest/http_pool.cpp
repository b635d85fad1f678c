#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include "adapters/carriers/rest/http_pool.hpp"

#include <sys/socket.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"
#include "adapters/webhooks/http_sender.hpp"

namespace dialer::carriers::rest {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using steady = std::chrono::steady_clock;

std::string basic_authorization(std::string_view user, std::string_view password) {
  std::string pair(user);
  pair += ':';
  pair += password;
  return "Basic " + http::base64(pair);
}


namespace {

struct job {
  http_request request;
  response_handler done;
  steady::time_point deadline;
};

}  // namespace

struct http_pool::impl {
  struct connection {
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    std::uint64_t uses = 0;
    bool closed = false;
    steady::time_point idle_since{};
    beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }
  };
  using conn_ptr = std::shared_ptr<connection>;

  impl(pool_options o, webhooks::webhook_url u)
      : options(std::move(o)), url(std::move(u)), tls(ssl::context::tls_client), work(net::make_work_guard(io)),
        sweeper(io) {
    tls.set_verify_mode(ssl::verify_peer);
    if (options.ca_file.empty()) tls.set_default_verify_paths();
    else tls.load_verify_file(options.ca_file);
    host_header = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    if (url.port != (url.tls ? "443" : "80")) host_header += ":" + url.port;
  }

  pool_options options;
  webhooks::webhook_url url;
  std::string host_header;
  net::io_context io;
  ssl::context tls;
  net::executor_work_guard<net::io_context::executor_type> work;
  net::steady_timer sweeper;
  std::thread thread;
  std::atomic<bool> stopping{false};

  // Touched on the I/O thread only.
  std::deque<job> waiting;
  std::vector<conn_ptr> idle;
  std::set<conn_ptr> active;  // carrying a request
  std::size_t open = 0;
  std::size_t opening = 0;
  std::vector<tcp::endpoint> endpoints;
  steady::time_point resolved_at{};

  mutable std::mutex stats_mutex;
  pool_statistics stats;

  void count(const std::function<void(pool_statistics&)>& f) {
    std::lock_guard g(stats_mutex);
    f(stats);
  }

  static void finish(job& j, http_response&& r) {
    auto done = std::move(j.done);
    if (done) done(std::move(r));
  }
  static http_response failed(failure f, std::string why) {
    http_response r;
    r.fail = f;
    r.error = std::move(why);
    return r;
  }

  void start() {
    thread = std::thread([this] { io.run(); });
    sweep();
  }

  // Fails the requests whose deadline passed while they waited, and closes connections idle too long.
  void sweep() {
    sweeper.expires_after(std::chrono::milliseconds(100));
    sweeper.async_wait([this](beast::error_code ec) {
      if (ec || stopping) return;
      const auto now = steady::now();
      while (!waiting.empty() && waiting.front().deadline <= now) {
        auto j = std::move(waiting.front());
        waiting.pop_front();
        finish(j, failed(failure::not_sent, "no connection to " + url.host + " became free within the timeout"));
      }
      for (auto it = idle.begin(); it != idle.end();) {
        if (now - (*it)->idle_since > options.idle_close) {
          close(**it);
          it = idle.erase(it);
        } else {
          ++it;
        }
      }
      publish();
      sweep();
    });
  }

  void publish() {
    std::lock_guard g(stats_mutex);
    stats.open = open;
    stats.queued = waiting.size();
  }

  void close(connection& c) {
    if (c.closed) return;
    c.closed = true;
    beast::error_code ignored;
    c.lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    c.lowest().socket().close(ignored);
    --open;
  }

  // An idle connection the server has closed (or written to unasked) is not reused.
  static bool still_open(connection& c) {
    char b = 0;
    const int fd = c.lowest().socket().native_handle();
    const auto n = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return false;                                        // the server closed it
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;       // nothing to read: alive
    // Bytes nobody asked for: on TLS before the first exchange a session ticket; after it, most likely the
    // server's close_notify. Anything else: drop it.
    return c.secure != nullptr && c.uses == 0;
  }

  void enqueue(job j) {
    if (stopping) {
      finish(j, failed(failure::not_sent, "the carrier client is stopping"));
      return;
    }
    if (waiting.size() >= options.max_queued) {
      finish(j, failed(failure::not_sent, "too many requests waiting for a connection"));
      return;
    }
    waiting.push_back(std::move(j));
    pump();
  }

  // Gives waiting requests to idle connections, and opens connections while there is room.
  void pump() {
    while (!waiting.empty() && !idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      if (!still_open(*c)) {
        close(*c);
        count([](pool_statistics& s) { ++s.stale_dropped; });
        continue;
      }
      auto j = std::move(waiting.front());
      waiting.pop_front();
      exchange(std::move(c), std::move(j));
    }
    while (waiting.size() > opening && open + opening < options.max_connections) connect();
    publish();
  }

  void connect() {
    ++opening;
    const auto now = steady::now();
    if (!endpoints.empty() && now - resolved_at < std::chrono::seconds(60)) {
      dial(endpoints);
      return;
    }
    auto resolver = std::make_shared<tcp::resolver>(io);
    resolver->async_resolve(url.host, url.port, [this, resolver](beast::error_code ec, tcp::resolver::results_type rs) {
      if (ec || rs.empty()) {
        --opening;
        fail_one_waiting("resolving " + url.host + ": " + (ec ? ec.message() : "no address"));
        return;
      }
      endpoints.clear();
      for (const auto& e : rs) endpoints.push_back(e.endpoint());
      resolved_at = steady::now();
      dial(endpoints);
    });
  }

  // A connection that could not be made fails one waiting request (not_sent); the others keep their chance.
  void fail_one_waiting(const std::string& why) {
    if (!waiting.empty()) {
      auto j = std::move(waiting.front());
      waiting.pop_front();
      finish(j, failed(failure::not_sent, why));
    }
    if (!stopping) pump();
  }

  void dial(const std::vector<tcp::endpoint>& eps) {
    auto c = std::make_shared<connection>();
    if (url.tls) c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, tls);
    else c->plain = std::make_unique<beast::tcp_stream>(io);
    c->lowest().expires_after(std::min<steady::duration>(options.timeout, std::chrono::seconds(10)));
    c->lowest().async_connect(eps, [this, c](beast::error_code ec, const tcp::endpoint&) {
      if (ec) {
        --opening;
        fail_one_waiting("connecting to " + url.host + ":" + url.port + ": " + ec.message());
        return;
      }
      beast::error_code ignored;
      c->lowest().socket().set_option(tcp::no_delay(true), ignored);
      if (!c->secure) return opened(c);
      boost::system::error_code not_ip;
      (void)net::ip::make_address(url.host, not_ip);
      if (not_ip && !SSL_set_tlsext_host_name(c->secure->native_handle(), url.host.c_str())) {
        --opening;
        return fail_one_waiting("TLS: cannot set the server name " + url.host);
      }
      c->secure->set_verify_callback(ssl::host_name_verification(url.host));
      c->secure->async_handshake(ssl::stream_base::client, [this, c](beast::error_code e) {
        if (e) {
          --opening;
          return fail_one_waiting("TLS with " + url.host + ": " + e.message());
        }
        opened(c);
      });
    });
  }

  void opened(const conn_ptr& c) {
    --opening;
    ++open;
    count([](pool_statistics& s) { ++s.connections_opened; });
    if (stopping) {
      close(*c);
      return;
    }
    c->idle_since = steady::now();
    idle.push_back(c);
    pump();
  }

  struct exchange_state {
    job j;
    bhttp::request<bhttp::string_body> message;
    bhttp::response_parser<bhttp::string_body> parser;
  };

  void exchange(conn_ptr c, job j) {
    // Too little time left to send and hear back: failing it now, unsent, is better than a timeout after the
    // request left (which the carrier adapter must treat as "the call may exist").
    if (j.deadline - steady::now() < std::chrono::milliseconds(50)) {
      finish(j, failed(failure::not_sent, "the request's deadline passed before a connection was free"));
      back_to_idle(c);
      return;
    }
    active.insert(c);
    const bool reused = c->uses++ > 0;
    count([reused](pool_statistics& s) {
      ++s.requests;
      if (reused) ++s.reused;
    });
    auto st = std::make_shared<exchange_state>();
    st->j = std::move(j);
    auto& req = st->j.request;
    auto& m = st->message;
    m.method(bhttp::string_to_verb(req.method));
    m.target(req.target);
    m.version(11);
    m.set(bhttp::field::host, host_header);
    m.set(bhttp::field::user_agent, options.user_agent);
    m.set(bhttp::field::accept, "application/json");
    if (!req.authorization.empty()) m.set(bhttp::field::authorization, req.authorization);
    for (const auto& [k, v] : req.headers) m.set(k, v);
    if (!req.content_type.empty()) m.set(bhttp::field::content_type, req.content_type);
    m.keep_alive(true);
    m.body() = req.body;
    m.prepare_payload();
    st->parser.body_limit(options.max_response_body);
    c->lowest().expires_at(st->j.deadline);
    const auto on_written = [this, c, st](beast::error_code ec, std::size_t) {
      // Some bytes may have left: the server may act on what it got.
      if (ec) return lost(c, st, "sending the request: " + ec.message());
      const auto on_read = [this, c, st](beast::error_code e, std::size_t) {
        if (e && !(e == bhttp::error::body_limit && st->parser.is_header_done()))
          return lost(c, st, e == beast::error::timeout ? "no answer within the timeout"
                                                        : "reading the answer: " + e.message());
        auto& res = st->parser.get();
        http_response out;
        out.status = res.result_int();
        if (e) out.error = "the answer's body exceeded the limit and was cut";
        if (auto it = res.find(bhttp::field::content_type); it != res.end())
          out.content_type = std::string(it->value());
        if (auto it = res.find(bhttp::field::retry_after); it != res.end())
          out.retry_after = http::parse_retry_after(std::string_view(it->value().data(), it->value().size()));
        // Telnyx says when its rate window reopens in x-ratelimit-reset (seconds), not in Retry-After.
        if (auto it = res.find("x-ratelimit-reset"); !out.retry_after && out.status == 429 && it != res.end())
          out.retry_after = http::parse_retry_after(std::string_view(it->value().data(), it->value().size()));
        out.body = std::move(res.body());
        const bool keep = !e && res.keep_alive() && out.status >= 200;
        active.erase(c);
        finish(st->j, std::move(out));
        if (keep) back_to_idle(c);
        else {
          close(*c);
          if (!stopping) pump();
        }
      };
      if (c->plain) bhttp::async_read(*c->plain, c->buffer, st->parser, on_read);
      else bhttp::async_read(*c->secure, c->buffer, st->parser, on_read);
    };
    if (c->plain) bhttp::async_write(*c->plain, st->message, on_written);
    else bhttp::async_write(*c->secure, st->message, on_written);
  }

  void lost(const conn_ptr& c, const std::shared_ptr<exchange_state>& st, std::string why) {
    active.erase(c);
    close(*c);
    finish(st->j, failed(failure::lost, std::move(why)));
    if (!stopping) pump();
  }

  void back_to_idle(const conn_ptr& c) {
    if (stopping) {
      close(*c);
      return;
    }
    c->lowest().expires_never();
    c->idle_since = steady::now();
    idle.push_back(c);
    pump();
  }

  void shut() {
    stopping = true;
    sweeper.cancel();
    while (!waiting.empty()) {
      auto j = std::move(waiting.front());
      waiting.pop_front();
      finish(j, failed(failure::not_sent, "the carrier client is stopping"));
    }
    for (auto& c : idle) close(*c);
    idle.clear();
    // Requests in flight end now, as lost (their sockets close under them).
    for (const auto& c : std::set<conn_ptr>(active)) {
      beast::error_code ignored;
      c->lowest().socket().cancel(ignored);
      c->lowest().socket().close(ignored);
    }
    publish();
  }
};

result<std::unique_ptr<http_pool>> http_pool::make(pool_options options) {
  auto u = webhooks::parse_webhook_url(options.base_url);
  if (!u) return make_error(errc::invalid_input, "carrier base URL '{}': expected http(s)://host[:port]",
                            options.base_url);
  if (u->target != "/") return make_error(errc::invalid_input, "carrier base URL '{}' must not have a path",
                                          options.base_url);
  if (options.max_connections == 0) return make_error(errc::invalid_input, "max_connections must be at least 1");
  try {
    auto i = std::make_unique<impl>(std::move(options), std::move(*u));
    i->start();
    return std::unique_ptr<http_pool>(new http_pool(std::move(i)));
  } catch (const std::exception& e) {
    return make_error(errc::unavailable, "carrier client: {}", e.what());
  }
}

http_pool::http_pool(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
http_pool::~http_pool() { stop(); }

void http_pool::send(http_request request, response_handler done) noexcept {
  try {
    job j{std::move(request), std::move(done), steady::now() + impl_->options.timeout};
    net::post(impl_->io, [this, j = std::move(j)]() mutable { impl_->enqueue(std::move(j)); });
  } catch (...) {
    // Allocation failure while queueing: the handler is gone with the job; nothing was sent.
  }
}

http_response http_pool::send_sync(http_request request) {
  auto promise = std::make_shared<std::promise<http_response>>();
  auto answer = promise->get_future();
  send(std::move(request), [promise](http_response&& r) { promise->set_value(std::move(r)); });
  return answer.get();
}

void http_pool::stop() noexcept {
  if (!impl_ || !impl_->thread.joinable()) return;
  std::promise<void> shut;
  net::post(impl_->io, [&] {
    impl_->shut();
    shut.set_value();
  });
  shut.get_future().wait();
  // The requests that were in flight report (lost) before the thread ends.
  net::post(impl_->io, [this] { impl_->work.reset(); });
  impl_->thread.join();
}

pool_statistics http_pool::statistics() const {
  std::lock_guard g(impl_->stats_mutex);
  return impl_->stats;
}

const std::string& http_pool::base_url() const noexcept { return impl_->options.base_url; }

}  // namespace dialer::carriers::rest
