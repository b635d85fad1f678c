#include "adapters/http/server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <limits>
#include <optional>
#include <spdlog/spdlog.h>

namespace dialer::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

response error_response(unsigned status, std::string_view code, std::string_view message, unsigned http_version,
                        bool keep_alive) {
  response res{static_cast<bhttp::status>(status), http_version};
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  nlohmann::json body{{"error", {{"code", code}, {"message", message}, {"details", nlohmann::json::object()}}}};
  res.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  res.prepare_payload();
  return res;
}

// One connection. Every member is touched only on the connection's I/O thread (its io_context has one),
// except what the owner's close() posts there.
class http_server::session : public std::enable_shared_from_this<session> {
 public:
  session(http_server& owner, tcp::socket&& socket) : owner_(owner), stream_(std::move(socket)) {
    owner_.counters_.connections_open.fetch_add(1, std::memory_order_relaxed);
  }
  ~session() {
    end_request();  // a session dropped without shut() (its context destroyed, an escaped exception)
    owner_.counters_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  void begin() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); });
  }

  // The sweep: whether the current wait has run out.
  [[nodiscard]] bool expired(std::int64_t now_ns) const noexcept {
    return now_ns > deadline_ns_.load(std::memory_order_relaxed);
  }

  // From the owner: close once the request in progress (if any: from its complete headers) has been answered,
  // or at once when `now`.
  void close(bool now) {
    net::post(stream_.get_executor(), [self = shared_from_this(), now] {
      if (!self->in_request_ || now) return self->shut();
      self->close_after_answer_ = true;
    });
  }

 private:
  void arm(std::chrono::nanoseconds within) {
    deadline_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count() + within.count(),
                       std::memory_order_relaxed);
  }
  void disarm() { deadline_ns_.store(std::numeric_limits<std::int64_t>::max(), std::memory_order_relaxed); }

  // A keep-alive connection may wait idle_timeout for a request's first byte; from then on the whole
  // request must arrive within request_timeout (a client that trickles bytes cannot hold the connection).
  // Whatever is buffered is parsed at once (a small request arrives in one read and costs one read).
  void wait_for_request() {
    if (buffer_.size() > 0) return begin_request();
    arm(owner_.limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->shut();
                              self->buffer_.commit(n);
                              self->begin_request();
                            });
  }

  void begin_request() {
    arm(owner_.limits_.request_timeout);  // for the whole request, however many reads it takes
    parser_.emplace();
    parser_->eager(true);
    parser_->header_limit(static_cast<std::uint32_t>(owner_.limits_.header_bytes));
    parser_->body_limit(owner_.limits_.body_bytes);
    continue_sent_ = false;
    parse_buffered();
  }

  void parse_buffered() {
    while (buffer_.size() > 0 && !parser_->is_done()) {
      beast::error_code ec;
      const auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == bhttp::error::need_more) break;
      if (ec) return refuse(ec);
      if (used == 0) break;
    }
    // A request is in flight from its complete headers until its answer is written (or the connection ends): a
    // drain waits for one whose body is still arriving, and closes a connection that has sent less (a stray
    // CRLF, a client trickling its headers) at once.
    if (parser_->is_header_done() && !in_request_) {
      in_request_ = true;
      owner_.request_started();
    }
    if (parser_->is_done()) return dispatch_request();
    // curl and others wait for "100 Continue" before a large body: say it, once the headers are acceptable.
    if (parser_->is_header_done() && !continue_sent_ &&
        beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      continue_sent_ = true;
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, parser_->get().version());
      bhttp::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
        if (ec) return self->shut();
        self->read_more();
      });
      return;
    }
    read_more();
  }

  void read_more() {
    // What the parser has not taken yet is a header, a chunk's size line or a trailer: never more than the header
    // limit and a little (Beast 1.74 does not bound chunk extensions and trailers itself).
    if (buffer_.size() > owner_.limits_.header_bytes + 64 * 1024) return refuse(bhttp::error::header_limit);
    stream_.async_read_some(buffer_.prepare(16 * 1024), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      if (ec) return self->refuse(ec == net::error::eof ? beast::error_code(bhttp::error::partial_message) : ec);
      self->buffer_.commit(n);
      self->parse_buffered();
    });
  }

  // A request the server turns away itself; the connection closes after the answer.
  void refuse(beast::error_code ec) {
    if (ec == beast::error::timeout) {
      owner_.counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
      return shut();
    }
    unsigned status = 400;
    std::string_view code = "malformed_request";
    std::string message = "the request is not valid HTTP/1.1: " + ec.message();
    if (ec == bhttp::error::body_limit) {
      status = 413, code = "body_too_large";
      message = fmt::format("the request body is larger than {} bytes", owner_.limits_.body_bytes);
    } else if (ec == bhttp::error::header_limit) {
      status = 431, code = "headers_too_large";
      message = fmt::format("the request headers are larger than {} bytes", owner_.limits_.header_bytes);
    } else if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
               ec == net::error::connection_reset || ec == net::error::eof || ec == net::error::operation_aborted) {
      return shut();  // the client went away
    }
    owner_.counters_.requests_refused.fetch_add(1, std::memory_order_relaxed);
    close_after_answer_ = true;
    write(error_response(status, code, message, 11, false), false);
  }

  void dispatch_request() {
    disarm();  // ours to answer now: no client timeout while the handler works
    auto req = parser_->release();
    parser_.reset();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == bhttp::verb::head;
    // The responder answers once; one that is dropped unanswered (a bug) still answers, with a 500.
    struct once {
      std::shared_ptr<session> s;
      std::atomic<bool> done{false};
      void answer(response res) {
        if (done.exchange(true)) return;
        // On the connection's strand already (a route that answers at once, inside the handler's call): written
        // now, nothing in dispatch_request touches the session after the handler returns. From a worker: queued
        // on the strand.
        net::dispatch(s->stream_.get_executor(),
                      [self = s, r = std::move(res)]() mutable { self->write(std::move(r), true); });
      }
      ~once() {
        if (!done.load()) answer(error_response(500, "internal", "the request was not answered"));
      }
    };
    auto reply = std::make_shared<once>();
    reply->s = shared_from_this();
    try {
      owner_.handler_(std::move(req), [reply](response res) { reply->answer(std::move(res)); });
    } catch (const std::exception& e) {
      spdlog::error("http: handler threw: {}", e.what());
      reply->answer(error_response(500, "internal", "internal error"));
    }
  }

  // `handled`: the answer of the handler (false: the server's own refusal, after which the connection closes).
  void write(response res, bool handled) {
    const bool keep =
        keep_alive_ && !close_after_answer_ && !owner_.draining_.load(std::memory_order_relaxed) && res.keep_alive();
    res.version(version_ ? version_ : 11);
    res.keep_alive(keep);
    res.prepare_payload();
    if (head_ && handled) {  // the GET's headers, Content-Length included, and no body
      const auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    auto out = std::make_shared<response>(std::move(res));
    arm(owner_.limits_.write_timeout);
    bhttp::async_write(stream_, *out,
                       [self = shared_from_this(), out, keep, handled](beast::error_code ec, std::size_t) {
                         self->end_request();
                         if (ec == beast::error::timeout)
                           self->owner_.counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
                         if (ec) return self->shut();
                         // A drain that began while this answer was written closes the connection too.
                         if (!keep || self->close_after_answer_ || self->owner_.draining_.load())
                           return handled ? self->shut() : self->shut_after_refusal();
                         self->wait_for_request();
                       });
  }

  // After refusing a request whose bytes may still be arriving (a body over the limit): stop sending, then
  // read and drop what the client still sends, for a second at most, before closing. Closing with unread bytes
  // would reset the connection, and the reset can destroy the answer before the client has read it.
  void shut_after_refusal() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    arm(std::chrono::seconds(1));
    discard_rest(0);
  }
  void discard_rest(std::size_t dropped) {
    buffer_.consume(buffer_.size());
    if (dropped > owner_.limits_.body_bytes + owner_.limits_.header_bytes) return stream_.close();
    stream_.async_read_some(buffer_.prepare(64 * 1024),
                            [self = shared_from_this(), dropped](beast::error_code ec, std::size_t n) {
                              if (ec) return self->stream_.close();
                              self->discard_rest(dropped + n);
                            });
  }

  void end_request() {
    if (!in_request_) return;
    in_request_ = false;
    owner_.request_finished();
  }

  void shut() {
    end_request();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  http_server& owner_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // When the connection's current wait (idle, request, write) must end; the server's sweep closes it then.
  // One atomic store per phase instead of a reactor timer per operation (a timerfd update and a wake-up each).
  std::atomic<std::int64_t> deadline_ns_{std::numeric_limits<std::int64_t>::max()};
  bool continue_sent_ = false;
  bool head_ = false;  // the request being answered is a HEAD
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool in_request_ = false;  // from a request's complete headers to its answer written
  bool close_after_answer_ = false;
};

http_server::http_server(server_limits limits, request_handler handler)
    : limits_(limits), handler_(std::move(handler)), io_(1), acceptor_(io_), sweep_timer_(io_) {}

http_server::~http_server() { stop(); }

result<std::uint16_t> http_server::listen(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return make_error(errc::invalid_input, "listen address '{}' is not HOST:PORT (for example 127.0.0.1:8080)",
                      address);
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1) port = -1;
  } catch (...) {
  }
  if (port < 0 || port > 65535)
    return make_error(errc::invalid_input, "listen address '{}': the port is not a number from 0 to 65535",
                      address);
  beast::error_code ec;
  auto ip = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return make_error(errc::invalid_input, "listen address '{}': '{}' is not an IP address", address, host);
  tcp::endpoint ep{ip, static_cast<std::uint16_t>(port)};
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    return make_error(errc::unavailable, "cannot listen on {}: {}", address, ec.message());
  }
  return acceptor_.local_endpoint().port();
}

void http_server::sweep() {
  sweep_timer_.expires_after(std::chrono::milliseconds(100));
  sweep_timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    {
      std::lock_guard lock(mutex_);
      std::erase_if(sessions_, [&](const std::weak_ptr<session>& w) {
        auto s = w.lock();
        if (!s) return true;
        if (s->expired(now)) {
          counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
          s->close(true);
        }
        return false;
      });
    }
    sweep();
  });
}

void http_server::start(int threads) {
  if (!threads_.empty()) return;  // started already
  for (int i = 1; i < std::max(1, threads); ++i) more_io_.push_back(std::make_unique<net::io_context>(1));
  accept_next();
  sweep();
  auto run = [this](net::io_context& io) {
    auto guard = net::make_work_guard(io);
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http: I/O thread: {}", e.what());
      }
    }
  };
  threads_.emplace_back([this, run] { run(io_); });
  for (auto& io : more_io_) threads_.emplace_back([run, ctx = io.get()] { run(*ctx); });
}

void http_server::accept_next() {
  // The new connection belongs to the next I/O thread's context.
  const std::size_t k = next_io_++ % (more_io_.size() + 1);
  net::io_context& target = k == 0 ? io_ : *more_io_[k - 1];
  acceptor_.async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (draining_.load() ||
          counters_.connections_open.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(limits_.max_connections)) {
        counters_.connections_refused.fetch_add(1, std::memory_order_relaxed);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto s = std::make_shared<session>(*this, std::move(socket));
        session_opened(s);
        s->begin();
      }
    }
    accept_next();
  });
}

void http_server::session_opened(const std::shared_ptr<session>& s) {
  std::lock_guard lock(mutex_);
  sessions_.push_back(s);  // the sweep forgets the closed ones
}

void http_server::request_started() { counters_.requests_in_flight.fetch_add(1, std::memory_order_relaxed); }

void http_server::request_finished() {
  if (counters_.requests_in_flight.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard lock(mutex_);
    idle_.notify_all();
  }
}

void http_server::stop_accepting() {
  draining_.store(true);
  net::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  // Idle keep-alive connections close now; busy ones after their answer.
  std::lock_guard lock(mutex_);
  for (auto& w : sessions_)
    if (auto s = w.lock()) s->close(false);
}

bool http_server::drain(std::chrono::milliseconds timeout) {
  if (!draining_.load()) stop_accepting();
  std::unique_lock lock(mutex_);
  const bool finished = idle_.wait_for(lock, timeout, [this] { return counters_.requests_in_flight.load() == 0; });
  for (auto& w : sessions_)
    if (auto s = w.lock()) s->close(true);
  return finished;
}

void http_server::stop() {
  if (threads_.empty()) return;
  draining_.store(true);
  {
    std::lock_guard lock(mutex_);
    for (auto& w : sessions_)
      if (auto s = w.lock()) s->close(true);
  }
  net::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    sweep_timer_.cancel();
  });
  io_.stop();
  for (auto& io : more_io_) io->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace dialer::http
