#include <utility>  // before Asio (Boost 1.74 on g++ 12)

#include "adapters/carriers/sip/sip_endpoint.hpp"

#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <osip2/osip.h>
#include <spdlog/spdlog.h>

namespace dialer::carriers::sip {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;

namespace {

transport via_transport(const osip_message_t& m) {
  auto* via = static_cast<osip_via_t*>(osip_list_get(&m.vias, 0));
  if (via == nullptr || via->protocol == nullptr) return transport::udp;
  return osip_strcasecmp(via->protocol, "TCP") == 0 ? transport::tcp : transport::udp;
}

// A transaction's matching key (RFC 3261 §17.1.3 for responses, §17.2.3 for requests): the top Via's branch and
// the method (an ACK matches its INVITE); the server side adds the Via's sent-by. Requests without the magic
// cookie (RFC 2543 peers) fall back to Call-ID, CSeq and From tag.
std::string client_key(std::string_view branch, std::string_view method) {
  return fmt::format("c|{}|{}", branch, method);
}

std::string server_key(const osip_message_t& m) {
  std::string method = method_of(m);
  if (method == "ACK") method = "INVITE";
  const std::string branch = top_branch_of(m);
  if (branch.starts_with("z9hG4bK")) return fmt::format("s|{}|{}|{}", branch, sent_by_of(m), method);
  return fmt::format("s2543|{}|{}|{}|{}", call_id_of(m), cseq_of(m), from_tag_of(m), method);
}

message_ptr clone_of(const osip_message_t& m) {
  osip_message_t* out = nullptr;
  if (osip_message_clone(&m, &out) != 0) return nullptr;
  return message_ptr(out);
}

osip_event_t* incoming_event(osip_message_t* m) {
  auto* evt = static_cast<osip_event_t*>(osip_malloc(sizeof(osip_event_t)));
  if (evt == nullptr) return nullptr;
  evt->transactionid = 0;
  evt->sip = m;
  if (is_request(*m)) {
    const std::string method = m->sip_method;
    evt->type = method == "INVITE" ? RCV_REQINVITE : method == "ACK" ? RCV_REQACK : RCV_REQUEST;
  } else {
    evt->type = m->status_code < 200 ? RCV_STATUS_1XX : m->status_code < 300 ? RCV_STATUS_2XX : RCV_STATUS_3456XX;
  }
  return evt;
}

}  // namespace

struct sip_endpoint::impl {
  struct tx_info {
    bool client = false;
    client_tag tag = 0;
    server_handle handle = 0;
    std::string key;
    peer to;  // client: where its requests go
    bool final_delivered = false;
  };
  struct response_delivery {
    client_tag tag;
    message_ptr message;
  };
  struct failure_delivery {
    client_tag tag;
    client_failure why;
  };
  struct request_delivery {
    server_handle handle;
    message_ptr message;
    peer from;
  };
  struct stray_delivery {
    message_ptr message;
    peer from;
  };
  using delivery = std::variant<response_delivery, failure_delivery, request_delivery, stray_delivery>;

  struct tcp_connection : std::enable_shared_from_this<tcp_connection> {
    explicit tcp_connection(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    peer remote;
    std::string key;
    std::string inbuf;
    std::array<char, 16384> chunk{};
    std::deque<std::string> outq;
    bool connected = false;
    bool writing = false;
    bool closed = false;
    bool accepted = false;  // the peer opened it
    std::chrono::steady_clock::time_point used{};  // the last byte read or written
  };

  endpoint_options options;
  asio::io_context io;
  udp::socket udp_socket{io};
  tcp::acceptor acceptor{io};
  asio::steady_timer ticker{io};
  std::thread thread;
  std::atomic<std::thread::id> thread_id{};
  std::atomic<bool> running{false};
  sip_user* user = nullptr;
  // oSIP keeps each kind of transaction in one linked list that it walks to add (at the tail), remove and run
  // timers: O(n) per transaction. Spreading them over shards (by their key) keeps each list short; all run on
  // this one thread.
  static constexpr std::size_t k_shards = 32;
  std::vector<osip_t*> shards;
  std::size_t shard_cursor = 0;
  std::size_t accepted_open = 0;  // accepted TCP connections not closed
  std::unordered_map<std::string, std::size_t> accepted_from;  // the same, by the peer's address
  std::chrono::steady_clock::time_point next_refusal_log{};
  std::chrono::steady_clock::time_point next_idle_sweep{};
  int port = 0;
  std::string host;
  endpoint_counters counters;
  std::atomic<std::size_t> live{0};
  std::array<char, 65536> datagram{};
  udp::endpoint datagram_from;
  token_source tokens;

  std::unordered_map<osip_transaction_t*, tx_info> txs;
  std::unordered_map<std::string, osip_transaction_t*> by_key;
  std::unordered_map<client_tag, osip_transaction_t*> by_tag;
  std::unordered_map<server_handle, osip_transaction_t*> by_handle;
  server_handle next_handle = 1;
  std::vector<osip_transaction_t*> graveyard;
  std::deque<delivery> deliveries;
  std::unordered_map<std::string, std::shared_ptr<tcp_connection>> connections;

  ~impl() { release_all(); }

  static impl* of(osip_transaction_t* tr) {
    return static_cast<impl*>(osip_get_application_context(static_cast<osip_t*>(tr->config)));
  }

  // ---- oSIP callbacks (inside osip_transaction_execute: record, never call the user) ----

  static int on_send(osip_transaction_t* tr, osip_message_t* sip, char* dest_host, int dest_port, int) {
    impl* self = tr != nullptr ? of(tr) : nullptr;
    if (self == nullptr || sip == nullptr || dest_host == nullptr) return -1;
    std::string text = wire_of(*sip);
    if (text.empty()) return -1;
    const peer to{via_transport(*sip), dest_host, dest_port};
    return self->write(text, to) ? 0 : -1;
  }

  static void on_kill(int, osip_transaction_t* tr) {
    impl* self = of(tr);
    osip_remove_transaction(static_cast<osip_t*>(tr->config), tr);
    self->forget(tr);
    self->graveyard.push_back(tr);
  }

  // oSIP reports a send that failed at once (no route, a refused connection): the request never left.
  static void on_transport_error(int, osip_transaction_t* tr, int) {
    of(tr)->client_failed(tr, client_failure::not_sent);
  }

  static void on_timeout(int, osip_transaction_t* tr, osip_message_t*) {
    of(tr)->client_failed(tr, client_failure::timeout);
  }

  void client_failed(osip_transaction_t* tr, client_failure why) {
    auto it = txs.find(tr);
    if (it == txs.end() || !it->second.client || it->second.final_delivered) return;
    it->second.final_delivered = true;
    deliveries.push_back(failure_delivery{it->second.tag, why});
  }

  osip_t* shard_for(std::string_view key) const { return shards[std::hash<std::string_view>{}(key) % shards.size()]; }

  void forget(osip_transaction_t* tr) {
    auto it = txs.find(tr);
    if (it == txs.end()) return;
    // A key or tag may name a newer transaction by now (a digest retry reuses its INVITE's tag).
    if (auto k = by_key.find(it->second.key); k != by_key.end() && k->second == tr) by_key.erase(k);
    if (it->second.client) {
      if (auto t = by_tag.find(it->second.tag); t != by_tag.end() && t->second == tr) by_tag.erase(t);
    } else {
      by_handle.erase(it->second.handle);
    }
    txs.erase(it);
    live.store(txs.size(), std::memory_order_relaxed);
  }

  void remember(osip_transaction_t* tr, tx_info info) {
    by_key[info.key] = tr;
    if (info.client)
      by_tag[info.tag] = tr;
    else
      by_handle[info.handle] = tr;
    txs.emplace(tr, std::move(info));
    live.store(txs.size(), std::memory_order_relaxed);
  }

  // ---- set-up ----

  result<void> init_osip() {
    // oSIP's first osip_init() in a process runs parser_init() again, unguarded, rewriting the parser's global
    // tables: it must not race a parse on another endpoint's thread. So it happens once, here, before any
    // endpoint thread exists; later osip_init() calls skip it (its counter never goes down).
    static std::once_flag first;
    std::call_once(first, [] {
      init_osip_once();
      osip_t* probe = nullptr;
      if (osip_init(&probe) == 0) osip_release(probe);
    });
    for (std::size_t i = 0; i < k_shards; ++i) {
      osip_t* osip = nullptr;
      if (osip_init(&osip) != 0) return make_error(errc::internal, "oSIP could not be initialised");
      shards.push_back(osip);
      osip_set_application_context(osip, this);
      osip_set_cb_send_message(osip, &impl::on_send);
      for (int t : {OSIP_ICT_KILL_TRANSACTION, OSIP_IST_KILL_TRANSACTION, OSIP_NICT_KILL_TRANSACTION,
                    OSIP_NIST_KILL_TRANSACTION})
        osip_set_kill_transaction_callback(osip, t, &impl::on_kill);
      for (int t : {OSIP_ICT_TRANSPORT_ERROR, OSIP_NICT_TRANSPORT_ERROR, OSIP_IST_TRANSPORT_ERROR,
                    OSIP_NIST_TRANSPORT_ERROR})
        osip_set_transport_error_callback(osip, t, &impl::on_transport_error);
      osip_set_message_callback(osip, OSIP_ICT_STATUS_TIMEOUT, &impl::on_timeout);
      osip_set_message_callback(osip, OSIP_NICT_STATUS_TIMEOUT, &impl::on_timeout);
    }
    return ok();
  }

  void release_all() {
    if (shards.empty()) return;
    for (auto& [tr, info] : txs) {
      osip_remove_transaction(static_cast<osip_t*>(tr->config), tr);
      graveyard.push_back(tr);
    }
    txs.clear();
    by_key.clear();
    by_tag.clear();
    by_handle.clear();
    for (auto* tr : graveyard) osip_transaction_free2(tr);
    graveyard.clear();
    deliveries.clear();
    for (auto* osip : shards) osip_release(osip);
    shards.clear();
  }

  // ---- sending ----

  bool write(const std::string& text, const peer& to) {
    if (to.via == transport::tcp) return write_tcp(text, to);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(to.host, ec);
    if (ec) {
      spdlog::warn("{}: cannot send to '{}': not a numeric address", options.name, to.host);
      return false;
    }
    udp_socket.send_to(asio::buffer(text), udp::endpoint(address, static_cast<unsigned short>(to.port)), 0, ec);
    if (ec) {
      counters.send_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: send to {} failed: {}", options.name, to_string(to), ec.message());
      return ec == asio::error::would_block || ec == asio::error::no_buffer_space;  // lost, as on a network
    }
    counters.sent.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  static std::string connection_key(const peer& p) { return fmt::format("{}:{}", p.host, p.port); }

  bool write_tcp(const std::string& text, const peer& to) {
    auto key = connection_key(to);
    auto it = connections.find(key);
    std::shared_ptr<tcp_connection> c;
    if (it != connections.end()) {
      c = it->second;
    } else {
      boost::system::error_code ec;
      auto address = asio::ip::make_address(to.host, ec);
      if (ec) return false;
      c = std::make_shared<tcp_connection>(io);
      c->remote = to;
      c->key = key;
      connections.emplace(key, c);
      counters.tcp_connections.fetch_add(1, std::memory_order_relaxed);
      c->socket.async_connect(tcp::endpoint(address, static_cast<unsigned short>(to.port)),
                              [this, c](const boost::system::error_code& error) {
                                if (error) {
                                  spdlog::warn("{}: TCP connection to {} failed: {}", options.name,
                                               to_string(c->remote), error.message());
                                  close(c);
                                  settle();
                                  return;
                                }
                                c->connected = true;
                                read_tcp(c);
                                flush(c);
                              });
    }
    // A peer that stopped reading: nothing more is queued for it (the idle sweep closes an accepted one; an
    // outgoing one fails its transactions when the kernel gives up on it).
    if (c->outq.size() >= 4096) return false;
    c->outq.push_back(text);
    if (c->connected) flush(c);
    counters.sent.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void flush(const std::shared_ptr<tcp_connection>& c) {
    if (c->writing || c->outq.empty() || c->closed) return;
    c->writing = true;
    asio::async_write(c->socket, asio::buffer(c->outq.front()),
                      [this, c](const boost::system::error_code& error, std::size_t) {
                        c->writing = false;
                        c->used = std::chrono::steady_clock::now();
                        if (error) {
                          close(c);
                          settle();
                          return;
                        }
                        c->outq.pop_front();
                        flush(c);
                      });
  }

  // A connection that failed or closed: the client transactions that sent on it fail (TCP has no retransmission
  // to save them), and the next message to that peer opens a new one.
  void close(const std::shared_ptr<tcp_connection>& c) {
    if (c->closed) return;
    c->closed = true;
    if (c->accepted) {
      --accepted_open;
      if (auto it = accepted_from.find(c->remote.host); it != accepted_from.end() && --it->second == 0)
        accepted_from.erase(it);
    }
    boost::system::error_code ignored;
    c->socket.close(ignored);
    if (auto it = connections.find(c->key); it != connections.end() && it->second == c) connections.erase(it);
    std::vector<osip_transaction_t*> failed;
    for (auto& [tr, info] : txs)
      if (info.client && info.to == c->remote && !info.final_delivered) failed.push_back(tr);
    for (auto* tr : failed) {
      // Never connected: the request did not leave. Closed after: it may have been delivered.
      client_failed(tr, c->connected ? client_failure::transport_lost : client_failure::not_sent);
      osip_remove_transaction(static_cast<osip_t*>(tr->config), tr);
      forget(tr);
      graveyard.push_back(tr);
    }
  }

  void read_tcp(const std::shared_ptr<tcp_connection>& c) {
    c->socket.async_read_some(asio::buffer(c->chunk), [this, c](const boost::system::error_code& error,
                                                                std::size_t n) {
      if (error) {
        close(c);
        settle();
        return;
      }
      c->inbuf.append(c->chunk.data(), n);
      c->used = std::chrono::steady_clock::now();
      while (!c->closed) {
        auto framed = frame_stream(c->inbuf, options.limits);
        if (auto* e = std::get_if<wire_error>(&framed)) {
          counters.malformed.fetch_add(1, std::memory_order_relaxed);
          if (auto answer = error_response(c->inbuf, *e, tokens.tag())) write_tcp(*answer, c->remote);
          spdlog::info("{}: closing TCP connection from {}: {}", options.name, to_string(c->remote), e->reason);
          close(c);
          break;
        }
        const auto frame = std::get<stream_frame>(framed);
        if (frame.length == 0) {
          c->inbuf.erase(0, frame.skip);
          break;
        }
        std::string message = c->inbuf.substr(frame.skip, frame.length);
        c->inbuf.erase(0, frame.skip + frame.length);
        receive(message, c->remote);
      }
      settle();
      if (!c->closed) read_tcp(c);
    });
  }

  void accept_tcp() {
    auto c = std::make_shared<tcp_connection>(io);
    acceptor.async_accept(c->socket, [this, c](const boost::system::error_code& error) {
      if (error) {
        if (error != asio::error::operation_aborted) accept_tcp();
        return;
      }
      boost::system::error_code ec;
      auto remote = c->socket.remote_endpoint(ec);
      // At most max_accepted_connections in all, and a quarter of them from one address: one peer cannot take
      // every slot from the trunk that must reach us.
      const auto from_host = ec ? std::string() : remote.address().to_string();
      const std::size_t per_host = std::max<std::size_t>(1, options.max_accepted_connections / 4);
      if (!ec && (accepted_open >= options.max_accepted_connections || accepted_from[from_host] >= per_host)) {
        counters.tcp_refused.fetch_add(1, std::memory_order_relaxed);
        if (const auto now = std::chrono::steady_clock::now(); now >= next_refusal_log) {  // one line a minute
          next_refusal_log = now + std::chrono::minutes(1);
          spdlog::warn("{}: TCP connection from {} closed: {} are open ({} from it); {} refused so far", options.name,
                       from_host, accepted_open, accepted_from[from_host], counters.tcp_refused.load());
        }
        if (auto it = accepted_from.find(from_host); it != accepted_from.end() && it->second == 0)
          accepted_from.erase(it);
        c->socket.close(ec);
      } else if (!ec) {
        c->remote = peer{transport::tcp, remote.address().to_string(), remote.port()};
        c->key = connection_key(c->remote);
        c->connected = true;
        c->accepted = true;
        c->used = std::chrono::steady_clock::now();
        ++accepted_open;
        ++accepted_from[from_host];
        // The same address and port again: the earlier connection is gone (its peer reconnected).
        if (auto old = connections.find(c->key); old != connections.end() && old->second->accepted)
          close(old->second);
        connections[c->key] = c;
        counters.tcp_connections.fetch_add(1, std::memory_order_relaxed);
        read_tcp(c);
      }
      accept_tcp();
    });
  }

  void read_udp() {
    udp_socket.async_receive_from(asio::buffer(datagram), datagram_from,
                                  [this](const boost::system::error_code& error, std::size_t n) {
                                    if (error == asio::error::operation_aborted) return;
                                    if (!error) {
                                      receive(std::string_view(datagram.data(), n),
                                              peer{transport::udp, datagram_from.address().to_string(),
                                                   datagram_from.port()});
                                      settle();
                                    }
                                    read_udp();
                                  });
  }

  // ---- receiving ----

  void receive(std::string_view bytes, const peer& from) {
    counters.received.fetch_add(1, std::memory_order_relaxed);
    auto parsed = parse_message(bytes, from.via, options.limits);
    if (auto* e = std::get_if<wire_error>(&parsed)) {
      counters.malformed.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: malformed message from {}: {}", options.name, to_string(from), e->reason);
      if (auto answer = error_response(bytes, *e, tokens.tag())) write(*answer, from);
      return;
    }
    message_ptr message = std::move(std::get<message_ptr>(parsed));
    if (is_request(*message))
      receive_request(std::move(message), from);
    else
      receive_response(std::move(message), from);
  }

  void receive_response(message_ptr message, const peer& from) {
    auto it = by_key.find(client_key(top_branch_of(*message), cseq_method_of(*message)));
    if (it == by_key.end()) {
      deliveries.push_back(stray_delivery{std::move(message), from});
      return;
    }
    osip_transaction_t* tr = it->second;
    tx_info& info = txs.at(tr);
    const bool final = message->status_code >= 200;
    const bool deliver = !final || !info.final_delivered;
    if (final) info.final_delivered = true;
    message_ptr copy = deliver ? clone_of(*message) : nullptr;
    const client_tag tag = info.tag;
    if (osip_event_t* evt = incoming_event(message.get()); evt != nullptr) {
      message.release();  // the transaction owns it now
      osip_transaction_execute(tr, evt);
    }
    if (copy) deliveries.push_back(response_delivery{tag, std::move(copy)});
  }

  void receive_request(message_ptr message, const peer& from) {
    osip_message_fix_last_via_header(message.get(), from.host.c_str(), from.port);
    if (from.via == transport::tcp) answer_on_connection(*message, from);
    const std::string key = server_key(*message);
    const bool ack = method_of(*message) == "ACK";
    if (auto it = by_key.find(key); it != by_key.end()) {
      // A retransmission (its transaction answers it again), or the ACK of a non-2xx final response.
      if (osip_event_t* evt = incoming_event(message.get()); evt != nullptr) {
        message.release();
        osip_transaction_execute(it->second, evt);
      }
      return;
    }
    if (ack) {
      deliveries.push_back(request_delivery{0, std::move(message), from});
      return;
    }
    const bool invite = method_of(*message) == "INVITE";
    osip_transaction_t* tr = nullptr;
    if (osip_transaction_init(&tr, invite ? IST : NIST, shard_for(key), message.get()) != 0 || tr == nullptr) {
      counters.malformed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    tx_info info;
    info.handle = next_handle++;
    info.key = key;
    remember(tr, info);
    message_ptr copy = clone_of(*message);
    if (osip_event_t* evt = incoming_event(message.get()); evt != nullptr) {
      message.release();
      osip_transaction_execute(tr, evt);
    }
    if (copy) deliveries.push_back(request_delivery{info.handle, std::move(copy), from});
  }

  // After anything that ran oSIP: hands the user what happened, then frees what oSIP finished with.
  void settle() {
    while (!deliveries.empty()) {
      delivery d = std::move(deliveries.front());
      deliveries.pop_front();
      if (user == nullptr) continue;
      std::visit(
          [this](auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, response_delivery>)
              user->on_response(v.tag, *v.message);
            else if constexpr (std::is_same_v<T, failure_delivery>)
              user->on_client_failed(v.tag, v.why);
            else if constexpr (std::is_same_v<T, request_delivery>)
              user->on_request(v.handle, *v.message, v.from);
            else
              user->on_stray_response(*v.message, v.from);
          },
          d);
    }
    for (auto* tr : graveyard) osip_transaction_free2(tr);
    graveyard.clear();
  }

  // Accepted connections without a byte either way for tcp_idle_timeout are closed (looked at 4 times a timeout),
  // also one whose peer stopped reading (a write that does not finish is no activity).
  void close_idle(std::chrono::steady_clock::time_point now) {
    next_idle_sweep = now + std::max<std::chrono::steady_clock::duration>(options.tcp_idle_timeout / 4, options.tick);
    std::vector<std::shared_ptr<tcp_connection>> idle;
    for (const auto& [key, c] : connections)
      if (c->accepted && now - c->used >= options.tcp_idle_timeout)
        idle.push_back(c);
    for (const auto& c : idle) {
      counters.tcp_idle_closed.fetch_add(1, std::memory_order_relaxed);
      close(c);
    }
  }

  void tick() {
    // oSIP's timer functions walk every transaction of a shard (and copy its list): each tick takes the next
    // fifth of the shards, so a transaction's timers are looked at every 5 ticks (100 ms at 20 ms: T1 is 500 ms)
    // and the walking is spread evenly instead of done in full 50 times a second.
    constexpr std::size_t k_rounds = 5;
    const std::size_t per_tick = (shards.size() + k_rounds - 1) / k_rounds;
    for (std::size_t n = 0; n < per_tick; ++n) {
      osip_t* osip = shards[shard_cursor];
      shard_cursor = (shard_cursor + 1) % shards.size();
      osip_timers_ict_execute(osip);
      osip_timers_ist_execute(osip);
      osip_timers_nict_execute(osip);
      osip_timers_nist_execute(osip);
      osip_ict_execute(osip);
      osip_ist_execute(osip);
      osip_nict_execute(osip);
      osip_nist_execute(osip);
    }
    settle();
    const auto now = std::chrono::steady_clock::now();
    if (accepted_open > 0 && now >= next_idle_sweep) close_idle(now);
    if (user != nullptr) user->on_tick(now);
    settle();
    ticker.expires_after(options.tick);
    ticker.async_wait([this](const boost::system::error_code& error) {
      if (!error) tick();
    });
  }

  // ---- user calls ----

  result<void> send_request(std::string_view text, const peer& to, client_tag tag) {
    message_ptr message = parse_text(text);
    if (!message) return make_error(errc::invalid_input, "oSIP refused a request we wrote");
    const std::string method = method_of(*message);
    const bool invite = method == "INVITE";
    osip_transaction_t* tr = nullptr;
    const auto key = client_key(top_branch_of(*message), method);
    if (osip_transaction_init(&tr, invite ? ICT : NICT, shard_for(key), message.get()) != 0 || tr == nullptr)
      return make_error(errc::invalid_input, "oSIP refused to start a transaction for a {}", method);
    if (invite)
      osip_ict_set_destination(tr->ict_context, osip_strdup(to.host.c_str()), to.port);
    else
      osip_nict_set_destination(tr->nict_context, osip_strdup(to.host.c_str()), to.port);
    tx_info info;
    info.client = true;
    info.tag = tag;
    info.key = key;
    info.to = to;
    remember(tr, std::move(info));
    osip_transaction_execute(tr, osip_new_outgoing_sipmessage(message.release()));
    return ok();
  }

  void respond(server_handle handle, std::string_view text) {
    auto it = by_handle.find(handle);
    if (it == by_handle.end()) return;
    message_ptr message = parse_text(text);
    if (!message) {
      spdlog::error("{}: oSIP refused a response we wrote", options.name);
      return;
    }
    osip_transaction_execute(it->second, osip_new_outgoing_sipmessage(message.release()));
  }

  void abandon(client_tag tag) {
    auto it = by_tag.find(tag);
    if (it == by_tag.end()) return;
    osip_transaction_t* tr = it->second;
    osip_remove_transaction(static_cast<osip_t*>(tr->config), tr);
    forget(tr);
    graveyard.push_back(tr);
  }

  // Over TCP, a response goes back on the connection its request came on (RFC 3261 §18.2.2): the top Via's
  // received/rport are set to that connection's far end, which is how the send path finds it.
  static void answer_on_connection(osip_message_t& m, const peer& from) {
    auto* via = static_cast<osip_via_t*>(osip_list_get(&m.vias, 0));
    if (via == nullptr) return;
    const auto port = std::to_string(from.port);
    osip_generic_param_t* rport = nullptr;
    osip_via_param_get_byname(via, const_cast<char*>("rport"), &rport);
    if (rport != nullptr) {
      osip_free(rport->gvalue);
      rport->gvalue = osip_strdup(port.c_str());
    } else {
      osip_via_param_add(via, osip_strdup("rport"), osip_strdup(port.c_str()));
    }
    osip_generic_param_t* received = nullptr;
    osip_via_param_get_byname(via, const_cast<char*>("received"), &received);
    if (received != nullptr) {
      osip_free(received->gvalue);
      received->gvalue = osip_strdup(from.host.c_str());
    } else {
      osip_via_set_received(via, osip_strdup(from.host.c_str()));
    }
    osip_message_force_update(&m);
  }
};

result<std::unique_ptr<sip_endpoint>> sip_endpoint::open(endpoint_options options) {
  auto i = std::make_unique<impl>();
  i->options = std::move(options);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(i->options.bind_host, ec);
  if (ec) return make_error(errc::invalid_input, "SIP bind address '{}' is not an IP address", i->options.bind_host);
  i->udp_socket.open(address.is_v6() ? udp::v6() : udp::v4(), ec);
  if (!ec) i->udp_socket.bind(udp::endpoint(address, static_cast<unsigned short>(i->options.bind_port)), ec);
  if (ec)
    return make_error(errc::unavailable, "cannot listen for SIP on {}:{} (UDP): {}", i->options.bind_host,
                      i->options.bind_port, ec.message());
  i->udp_socket.non_blocking(true, ec);
  // Room for bursts: a full receive buffer drops datagrams (retransmissions recover them, slowly).
  i->udp_socket.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
  i->udp_socket.set_option(asio::socket_base::send_buffer_size(4 << 20), ec);
  i->port = i->udp_socket.local_endpoint().port();
  if (i->options.listen_tcp) {
    tcp::endpoint where(address, static_cast<unsigned short>(i->port));
    i->acceptor.open(where.protocol(), ec);
    if (!ec) i->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) i->acceptor.bind(where, ec);
    if (!ec) i->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return make_error(errc::unavailable, "cannot listen for SIP on {}:{} (TCP): {}", i->options.bind_host,
                        i->port, ec.message());
  }
  i->host = i->options.advertised_host.empty() ? i->options.bind_host : i->options.advertised_host;
  if (auto r = i->init_osip(); !r) return std::move(r).error();
  return std::unique_ptr<sip_endpoint>(new sip_endpoint(std::move(i)));
}

sip_endpoint::sip_endpoint(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

sip_endpoint::~sip_endpoint() {
  stop();
}

void sip_endpoint::start(sip_user* user) {
  impl_->user = user;
  impl_->running = true;
  impl_->read_udp();
  if (impl_->options.listen_tcp) impl_->accept_tcp();
  asio::post(impl_->io, [i = impl_.get()] { i->tick(); });
  impl_->thread = std::thread([i = impl_.get()] {
    i->thread_id = std::this_thread::get_id();
    i->io.run();
  });
}

void sip_endpoint::stop() noexcept {
  if (!impl_ || !impl_->running.exchange(false)) return;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->user = nullptr;
  impl_->connections.clear();
  impl_->release_all();
}

void sip_endpoint::post(std::function<void()> fn) {
  asio::post(impl_->io, [i = impl_.get(), fn = std::move(fn)] {
    fn();
    i->settle();
  });
}

bool sip_endpoint::on_thread() const noexcept {
  return impl_->thread_id.load() == std::this_thread::get_id();
}

const std::string& sip_endpoint::advertised_host() const noexcept {
  return impl_->host;
}

int sip_endpoint::local_port() const noexcept {
  return impl_->port;
}

std::string sip_endpoint::via(transport t, std::string_view branch) const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return fmt::format("SIP/2.0/{} {}{}{}:{};branch={};rport", t == transport::tcp ? "TCP" : "UDP", v6 ? "[" : "",
                     impl_->host, v6 ? "]" : "", impl_->port, branch);
}

std::string sip_endpoint::contact(transport t, std::string_view user) const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return fmt::format("<sip:{}@{}{}{}:{}{}>", user, v6 ? "[" : "", impl_->host, v6 ? "]" : "", impl_->port,
                     t == transport::tcp ? ";transport=tcp" : "");
}

const endpoint_counters& sip_endpoint::counters() const noexcept {
  return impl_->counters;
}

std::size_t sip_endpoint::live_transactions() const noexcept {
  return impl_->live.load(std::memory_order_relaxed);
}

result<void> sip_endpoint::send_request(std::string_view text, const peer& to, client_tag tag) {
  return impl_->send_request(text, to, tag);
}

void sip_endpoint::respond(server_handle server, std::string_view text) {
  impl_->respond(server, text);
}

void sip_endpoint::send_stateless(std::string_view text, const peer& to) {
  impl_->write(std::string(text), to);
}

void sip_endpoint::abandon(client_tag tag) {
  impl_->abandon(tag);
}

}  // namespace dialer::carriers::sip
