#pragma once
// One SIP endpoint: a UDP socket (and TCP connections: to a trunk, or accepted from one) served by one Asio
// thread, with its own GNU oSIP instances (osip_t) whose four RFC 3261 transaction state machines run on that thread
// only. oSIP has no sockets and no event loop: the endpoint parses what arrives (parse_message: bounded, checked),
// finds the transaction in its own hash of branch keys (oSIP's lookup is a linear scan), feeds it, and sends what
// oSIP asks to send; a tick (20 ms) runs oSIP's timers (retransmissions A/E/G, timeouts B/F/H, D/K/I/J).
// Transactions are spread over 32 osip_t shards by their key (oSIP walks a linked list to add or remove one, and
// every list on each timer run); a tick runs the timers of a fifth of the shards, so each every 100 ms.
//
// Above it sits one transaction user (sip_user: the carrier's calls, or the inbound proxy), called on the
// endpoint thread only, after oSIP has run, never from inside an oSIP callback (oSIP forbids re-entry).
//
// What the endpoint owns: the socket, the TCP connections, oSIP's transactions (freed after oSIP is done with
// them, never inside its kill callback), the matching keys, malformed-message answers (400/505/513 built from the
// raw bytes; responses and unanswerable garbage are dropped and counted). What it never does: decide anything
// about calls, block (sends are non-blocking; a full UDP buffer loses the datagram as the network would), or
// resolve names (peers are numeric addresses).
//
// Threading: open() and start() from one thread; post() from any thread; everything else (send_*, respond,
// abandon, the counters' writers) on the endpoint thread only (check with on_thread()). stop() from any thread
// but the endpoint's own; it joins the thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/carriers/sip/sip_message.hpp"
#include "engine/result.hpp"

namespace dialer::carriers::sip {

struct endpoint_options {
  std::string bind_host = "127.0.0.1";
  int bind_port = 0;            // 0: an ephemeral port (local_port() says which)
  std::string advertised_host;  // in our Via and Contact; empty: the bind host
  bool listen_tcp = false;      // also accept TCP on the same port
  // Connections others opened to us: at most this many at once (the next ones are closed at once), each closed
  // after this long without a byte either way (the peer opens a new one to our Contact when it needs one).
  std::size_t max_accepted_connections = 1024;
  std::chrono::milliseconds tcp_idle_timeout{300'000};
  wire_limits limits;
  std::chrono::milliseconds tick{20};  // oSIP's timers (T1 = 500 ms) are run this often
  std::string name = "sip";     // in logs
};

using client_tag = std::uint64_t;     // the user's name for a client transaction

// Why a client transaction ended without a final response.
enum class client_failure : std::uint8_t {
  timeout,         // timer B/F: it left and nothing answered within 64*T1
  not_sent,        // the send failed at once (no route, a TCP connection refused): it never left
  transport_lost,  // the TCP connection closed after it was written: it may have been delivered
};
using server_handle = std::uint64_t;  // the endpoint's name for a server transaction (0: none, an ACK)

// The transaction user. Every method is called on the endpoint thread; the messages are valid during the call only.
class sip_user {
 public:
  virtual ~sip_user() = default;
  // A response to a request sent with send_request (a final one once; provisionals may repeat).
  virtual void on_response(client_tag tag, const osip_message_t& response) = 0;
  // The client transaction ended without a final response.
  virtual void on_client_failed(client_tag tag, client_failure why) = 0;
  // A new request (retransmissions are absorbed by its transaction). `server` answers it through respond();
  // 0 for an ACK of a 2xx, which has no transaction. `from` is where it came from.
  virtual void on_request(server_handle server, const osip_message_t& request, const peer& from) = 0;
  // A response no transaction matches: a retransmitted 2xx of an INVITE (its transaction ended on the first).
  virtual void on_stray_response(const osip_message_t& response, const peer& from) = 0;
  // Every tick, after oSIP's timers.
  virtual void on_tick(std::chrono::steady_clock::time_point now) = 0;
};

struct endpoint_counters {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> malformed{0};       // refused by parse_message (answered when a request)
  std::atomic<std::uint64_t> send_failures{0};   // datagrams the socket would not take
  std::atomic<std::uint64_t> tcp_connections{0};
  std::atomic<std::uint64_t> tcp_refused{0};      // accepted past max_accepted_connections, and closed at once
  std::atomic<std::uint64_t> tcp_idle_closed{0};  // accepted connections closed for idleness
};

class sip_endpoint {
 public:
  // Binds the socket(s). unavailable when the address is taken or invalid.
  [[nodiscard]] static result<std::unique_ptr<sip_endpoint>> open(endpoint_options options);
  ~sip_endpoint();
  sip_endpoint(const sip_endpoint&) = delete;
  sip_endpoint& operator=(const sip_endpoint&) = delete;

  // Starts the endpoint thread; `user` must outlive stop().
  void start(sip_user* user);
  // Stops the thread (pending sends may be lost), frees every transaction. Idempotent.
  void stop() noexcept;
  // Runs fn on the endpoint thread (after start; dropped after stop).
  void post(std::function<void()> fn);
  [[nodiscard]] bool on_thread() const noexcept;

  [[nodiscard]] const std::string& advertised_host() const noexcept;
  [[nodiscard]] int local_port() const noexcept;
  // "SIP/2.0/UDP host:port;branch=<branch>;rport" for this endpoint and transport.
  [[nodiscard]] std::string via(transport t, std::string_view branch) const;
  [[nodiscard]] std::string contact(transport t, std::string_view user = "dialer") const;
  [[nodiscard]] const endpoint_counters& counters() const noexcept;
  // Transactions oSIP holds now (tests check that calls leave none behind).
  [[nodiscard]] std::size_t live_transactions() const noexcept;

  // ---- endpoint thread only ----
  // Sends a request in a new client transaction (INVITE: ICT; others: NICT) to `to`. invalid_input when the text
  // does not parse (a bug: our own text) -- nothing is sent.
  [[nodiscard]] result<void> send_request(std::string_view text, const peer& to, client_tag tag);
  // Answers a server transaction; ignored when it has ended.
  void respond(server_handle server, std::string_view text);
  // Sends without a transaction: an ACK of a 2xx, a forwarded 2xx or ACK (a proxy's stateless part).
  void send_stateless(std::string_view text, const peer& to);
  // Forgets a client transaction that will get no final response (an INVITE whose CANCEL went unanswered).
  void abandon(client_tag tag);

  struct impl;

 private:
  explicit sip_endpoint(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace dialer::carriers::sip
