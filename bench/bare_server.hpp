#pragma once
// A bare Beast HTTP server for the benchmarks: reads a request, answers a fixed 200 with keep-alive, counts the
// requests. The baseline of bench_http; the receiver of bench_webhooks and bench_e2e's webhook phase (with the
// query that says when their deliveries are done).

#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace dialer::bench {

// True once every webhook event has reached every endpoint: no delivery waiting, no first try under way, no
// endpoint's cursor short of the end of the log.
inline constexpr const char* kAllDelivered =
    "SELECT NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE state = 'pending') "
    "AND NOT EXISTS (SELECT 1 FROM webhook_segments WHERE delivered_at IS NULL) "
    "AND NOT EXISTS (SELECT 1 FROM webhook_log l JOIN webhook_endpoints e ON e.account_id = l.account_id "
    "  WHERE e.enabled AND (e.event_types = '{}' OR l.type = ANY (e.event_types)) "
    "  AND ((l.xid, l.id) > (e.cursor_xid, e.cursor_log) OR (l.xid = e.cursor_xid AND l.id = e.cursor_log "
    "    AND e.cursor_index < cardinality(l.ids))))";

// The baseline: the least a Beast server does per request (read, fixed answer, keep-alive), on 2 threads.
class bare_server {
 public:
  using tcp = boost::asio::ip::tcp;
  bare_server() : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {}
  std::atomic<std::int64_t> requests{0};  // answered so far
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  void start(int threads) {
    accept();
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~bare_server() {
    io_.stop();
    for (auto& t : threads_) t.join();
  }

 private:
  struct session : std::enable_shared_from_this<session> {
    session(tcp::socket s, bare_server* o) : owner(o), stream(std::move(s)) {}
    bare_server* owner;
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> req;
    boost::beast::http::response<boost::beast::http::string_body> res;
    void read() {
      req = {};
      boost::beast::http::async_read(stream, buffer, req, [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
        if (ec) return;
        self->owner->requests.fetch_add(1, std::memory_order_relaxed);
        self->res = {boost::beast::http::status::ok, self->req.version()};
        self->res.set(boost::beast::http::field::content_type, "application/json");
        self->res.body() = R"({"status":"ok","baseline":"a fixed answer"})";
        self->res.keep_alive(self->req.keep_alive());
        self->res.prepare_payload();
        boost::beast::http::async_write(self->stream, self->res, [self](boost::beast::error_code e, std::size_t) {
          if (!e) self->read();
        });
      });
    }
  };
  void accept() {
    acceptor_.async_accept(boost::asio::make_strand(io_), [this](boost::beast::error_code ec, tcp::socket s) {
      if (!ec) std::make_shared<session>(std::move(s), this)->read();
      accept();
    });
  }
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

}  // namespace dialer::bench
