// The fake Telnyx (tests/fakes/fake_telnyx.hpp) over real HTTP on loopback: the Call Control routes' answers
// and errors, command_id idempotency, each call's life and its ed25519-signed webhooks (received by a small
// server in this file), every REST and webhook fault, the numbers routes (search, order, list, update,
// release), the Call Control Application, transfers to an agent's leg and incoming calls with their answer,
// reject and transfer commands. Nothing here sleeps: the tests wait on the fake's and the receiver's
// condition variables, with a generous timeout.
#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"
#include "tests/fakes/fake_telnyx.hpp"

namespace dialer::fakes {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto patience = 20s;  // the waits end as soon as what they wait for happens

const std::regex iso_ms(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
const std::regex iso_time(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,6}Z)");
const std::regex uuid(R"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})");

struct answer {
  unsigned status = 0;                         // 0: no answer came
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  beast::error_code error;
  [[nodiscard]] json body_json() const { return json::parse(body, nullptr, false); }
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  // errors[i].code, or "" without one.
  [[nodiscard]] std::string code(std::size_t i = 0) const {
    const json j = body_json();
    if (!j.is_object() || !j.contains("errors") || j["errors"].size() <= i) return {};
    return j["errors"][i].value("code", "");
  }
  [[nodiscard]] std::string pointer(std::size_t i = 0) const {
    const json j = body_json();
    if (!j.is_object() || !j.contains("errors") || j["errors"].size() <= i) return {};
    return j["errors"][i].value("source", json::object()).value("pointer", "");
  }
};

// A blocking HTTP/1.1 client on one keep-alive connection.
class client {
 public:
  explicit client(unsigned short port) : socket_(io_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }
  void send(bhttp::verb method, const std::string& target, const std::string& body,
            const std::string& authorization) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    if (!authorization.empty()) req.set(bhttp::field::authorization, authorization);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    bhttp::write(socket_, req);
  }
  answer receive() {
    answer a;
    bhttp::response_parser<bhttp::string_body> parser;
    bhttp::read(socket_, buffer_, parser, a.error);
    if (a.error) return a;
    a.status = parser.get().result_int();
    for (const auto& f : parser.get()) {
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      a.headers[name] = std::string(f.value());
    }
    a.body = parser.get().body();
    return a;
  }
  answer request(bhttp::verb method, const std::string& target, const std::string& body,
                 const std::string& authorization) {
    send(method, target, body, authorization);
    return receive();
  }
  // Nothing has arrived and the connection is still open.
  bool silent() {
    socket_.non_blocking(true);
    char byte = 0;
    beast::error_code ec;
    const auto n = socket_.read_some(net::buffer(&byte, 1), ec);
    socket_.non_blocking(false);
    return n == 0 && ec == net::error::would_block && buffer_.size() == 0;
  }
  void close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  net::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

// One webhook the receiver got.
struct webhook {
  std::string method, target, host, content_type, signature, timestamp, body;
  json j;
  std::chrono::steady_clock::time_point at;
  [[nodiscard]] std::string type() const { return j["data"].value("event_type", ""); }
  [[nodiscard]] const json& payload() const { return j["data"]["payload"]; }
  [[nodiscard]] std::string id() const { return j["data"].value("id", ""); }
};

// The engine's side of the webhooks: a blocking HTTP server on loopback, one thread per connection, that
// records every request and answers 200 (or what refuse_next() says).
class webhook_receiver {
 public:
  webhook_receiver() : acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    accepting_ = std::thread([this] { accept_loop(); });
  }
  ~webhook_receiver() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes accept()
    accepting_.join();
    {
      std::lock_guard lock(mutex_);
      for (auto& s : sockets_) ::shutdown(s.native_handle(), SHUT_RDWR);
    }
    for (auto& t : serving_) t.join();
  }

  [[nodiscard]] std::string authority() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  [[nodiscard]] std::string url(const std::string& path_and_query) const {
    return "http://" + authority() + path_and_query;
  }

  void refuse_next(int n, unsigned status) {
    std::lock_guard lock(mutex_);
    refuse_left_ = n;
    refuse_status_ = status;
  }
  bool wait_for(const std::function<bool(const std::vector<webhook>&)>& done) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, patience, [&] { return done(got_); });
  }
  [[nodiscard]] std::vector<webhook> of(const std::string& call_control_id) const {
    std::lock_guard lock(mutex_);
    std::vector<webhook> out;
    for (const auto& w : got_)
      if (w.j.is_object() && w.payload().value("call_control_id", "") == call_control_id) out.push_back(w);
    return out;
  }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return got_.size();
  }

 private:
  void accept_loop() {
    for (;;) {
      tcp::socket s(io_);
      beast::error_code ec;
      acceptor_.accept(s, ec);
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      if (ec) continue;
      tcp::socket& mine = sockets_.emplace_back(std::move(s));
      serving_.emplace_back([this, &mine] { serve(mine); });
    }
  }
  void serve(tcp::socket& s) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(s, buffer, req, ec);
      if (ec) return;
      webhook w;
      w.method = std::string(req.method_string());
      w.target = std::string(req.target());
      w.host = std::string(req[bhttp::field::host]);
      w.content_type = std::string(req[bhttp::field::content_type]);
      w.signature = std::string(req["Telnyx-Signature-Ed25519"]);  // header names are case-insensitive
      w.timestamp = std::string(req["Telnyx-Timestamp"]);
      w.body = req.body();
      w.j = json::parse(w.body, nullptr, false);
      w.at = std::chrono::steady_clock::now();
      unsigned status = 200;
      {
        std::lock_guard lock(mutex_);
        if (refuse_left_ > 0) {
          --refuse_left_;
          status = refuse_status_;
        }
        got_.push_back(std::move(w));
      }
      changed_.notify_all();
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), req.version()};
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      bhttp::write(s, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  net::io_context io_;
  tcp::acceptor acceptor_;
  std::thread accepting_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;             // guarded by mutex_
  std::list<tcp::socket> sockets_;    // guarded by mutex_ (stable addresses for the serving threads)
  std::vector<std::thread> serving_;  // the accepting thread's, then the destructor's
  std::vector<webhook> got_;          // guarded by mutex_
  int refuse_left_ = 0;               // guarded by mutex_
  unsigned refuse_status_ = 0;        // guarded by mutex_
};

std::string client_state_of(const json& j) {
  return http::base64(j.dump());
}
// What the product sends: base64 of {"attempt": ..., "placement": ...}.
std::string placement_state() {
  return client_state_of({{"attempt", 7}, {"placement", "ab12cd34"}});
}

class FakeTelnyx : public ::testing::Test {
 protected:
  fake_telnyx& start(fake_telnyx_options o = {}) {
    fake_ = std::make_unique<fake_telnyx>(std::move(o));
    fake_->start();
    return *fake_;
  }
  [[nodiscard]] std::string bearer() const { return "Bearer " + fake_->api_key(); }
  answer request(bhttp::verb method, const std::string& target, const json& body = nullptr,
                 const std::string& authorization = {}) {
    return client(fake_->port())
        .request(method, target, body.is_null() ? std::string() : body.dump(),
                 authorization.empty() ? bearer() : authorization);
  }
  answer post(const std::string& target, const json& body) {
    return request(bhttp::verb::post, target, body);
  }
  answer get(const std::string& target) { return request(bhttp::verb::get, target); }
  answer patch(const std::string& target, const json& body) {
    return request(bhttp::verb::patch, target, body);
  }
  answer del(const std::string& target) { return request(bhttp::verb::delete_, target); }

  [[nodiscard]] std::string hook_url() const { return hooks_.url("/telnyx/webhooks?engine=a"); }
  // A dial with its webhooks to hooks_.
  [[nodiscard]] json dial_to(const std::string& to, const json& extra = json::object()) const {
    json d = {{"connection_id", fake_->connection_id()},
              {"to", to},
              {"from", "+15005550006"},
              {"webhook_url", hook_url()},
              {"client_state", placement_state()}};
    d.update(extra);
    return d;
  }
  static json without(json j, const std::string& name) {
    j.erase(name);
    return j;
  }
  static json with(json j, const std::string& name, json value) {
    j[name] = std::move(value);
    return j;
  }
  // Dials; the call_control_id.
  std::string dial(const json& body) {
    const answer a = post("/v2/calls", body);
    EXPECT_EQ(a.status, 200u) << a.body;
    return a.body_json()["data"].value("call_control_id", "");
  }
  [[nodiscard]] bool signed_rightly(const webhook& w) const {
    return http::ed25519_ok(fake_->public_key_base64(), w.timestamp + "|" + w.body, w.signature);
  }
  [[nodiscard]] static std::vector<std::string> types(const std::vector<webhook>& got) {
    std::vector<std::string> out;
    for (const auto& w : got) out.push_back(w.type());
    return out;
  }
  static std::string path(const std::string& call_control_id) {
    return "/v2/calls/" + http::percent_encode(call_control_id);
  }

  webhook_receiver hooks_;  // outlives the fake
  std::unique_ptr<fake_telnyx> fake_;
};

class FakeTelnyxWebhooks : public FakeTelnyx {};
class FakeTelnyxFaults : public FakeTelnyx {};
class FakeTelnyxNumbers : public FakeTelnyx {};

// ---- dial, status, hangup ----

TEST_F(FakeTelnyx, DialAnswers200WithTheCallAndRecordsIt) {
  start();
  const auto before = std::chrono::system_clock::now();
  const json body =
      dial_to("+15551230000", {{"command_id", "place-1"},
                               {"answering_machine_detection", "detect"},
                               {"stream_url", "wss://media.example.com/stream"},
                               {"stream_track", "both_tracks"},
                               {"stream_bidirectional_mode", "rtp"},
                               {"timeout_secs", 30},
                               {"custom_headers", {{{"name", "X-Placement"}, {"value", "ab12"}}}}});
  const answer a = post("/v2/calls", body);
  const auto after = std::chrono::system_clock::now();
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_TRUE(a.header("content-type").starts_with("application/json"));
  const json data = a.body_json().at("data");
  const std::string id = data.at("call_control_id");
  EXPECT_TRUE(std::regex_match(id, std::regex("v3:[A-Za-z0-9_-]{22,}"))) << id;
  EXPECT_TRUE(std::regex_match(data.at("call_leg_id").get<std::string>(), uuid));
  EXPECT_TRUE(std::regex_match(data.at("call_session_id").get<std::string>(), uuid));
  EXPECT_EQ(data.at("is_alive"), false);
  EXPECT_EQ(data.at("record_type"), "call");
  EXPECT_EQ(data.at("client_state"), body["client_state"]);

  const auto placed = fake_->placed();
  ASSERT_EQ(placed.size(), 1u);
  const auto& p = placed[0];
  EXPECT_EQ(p.call_control_id, id);
  EXPECT_EQ(p.call_leg_id, data.at("call_leg_id"));
  EXPECT_EQ(p.connection_id, fake_->connection_id());
  EXPECT_EQ(p.to, "+15551230000");
  EXPECT_EQ(p.from, "+15005550006");
  EXPECT_EQ(p.webhook_url, hook_url());
  EXPECT_EQ(p.client_state, body["client_state"]);
  EXPECT_EQ(p.attempt, 7);
  EXPECT_EQ(p.command_id, "place-1");
  EXPECT_EQ(p.answering_machine_detection, "detect");
  EXPECT_EQ(p.stream_url, "wss://media.example.com/stream");
  EXPECT_EQ(p.stream_track, "both_tracks");
  EXPECT_EQ(p.stream_bidirectional_mode, "rtp");
  EXPECT_EQ(p.custom_headers, (std::vector<std::pair<std::string, std::string>>{{"X-Placement", "ab12"}}));
  EXPECT_EQ(p.fault, telnyx_rest_fault::none);
  EXPECT_EQ(p.create_request, 0u);
  EXPECT_GE(p.created_at, before);
  EXPECT_LE(p.created_at, after);
  const auto counted = fake_->counters();
  EXPECT_EQ(counted.requests.at("dial"), 1);
  EXPECT_EQ(counted.answers.at(200), 1);
  EXPECT_EQ(counted.calls_created, 1);
}

TEST_F(FakeTelnyx, DialsOnlyTheFirstNumberOfAnArrayTo) {
  start();
  const std::string id = dial(dial_to("+15551230000", {{"to", {"+15551230001", "+15551230002"}}}));
  ASSERT_EQ(fake_->placed().size(), 1u);
  EXPECT_EQ(fake_->placed()[0].to, "+15551230001");
  EXPECT_EQ(fake_->call(id)->placed.to, "+15551230001");
}

TEST_F(FakeTelnyx, EveryRouteWantsTheBearerKey) {
  start();
  const struct {
    bhttp::verb method;
    std::string target;
  } routes[] = {{bhttp::verb::post, "/v2/calls"},
                {bhttp::verb::get, "/v2/calls/v3:abc"},
                {bhttp::verb::post, "/v2/calls/v3:abc/actions/hangup"},
                {bhttp::verb::get, "/v2/available_phone_numbers?filter%5Bcountry_code%5D=US"},
                {bhttp::verb::post, "/v2/number_orders"},
                {bhttp::verb::get, "/v2/number_orders/abc"},
                {bhttp::verb::get, "/v2/phone_numbers"},
                {bhttp::verb::get, "/v2/phone_numbers/123"},
                {bhttp::verb::patch, "/v2/phone_numbers/123"},
                {bhttp::verb::delete_, "/v2/phone_numbers/123"},
                {bhttp::verb::get, "/v2/call_control_applications/" + fake_->connection_id()},
                {bhttp::verb::patch, "/v2/call_control_applications/" + fake_->connection_id()}};
  for (const auto& r : routes) {
    for (const std::string& authorization :
         {std::string("Bearer not-the-key"), "Basic " + http::base64("user:" + fake_->api_key()),
          std::string()}) {
      SCOPED_TRACE(r.target + " with '" + authorization + "'");
      const answer a =
          client(fake_->port()).request(r.method, r.target, dial_to("+15551230000").dump(), authorization);
      EXPECT_EQ(a.status, 401u) << a.body;
      EXPECT_EQ(a.code(), "10009");
      EXPECT_EQ(a.body_json()["errors"][0].value("title", ""), "Authentication failed");
      EXPECT_FALSE(a.body_json()["errors"][0].value("detail", "").empty());
    }
  }
  EXPECT_TRUE(fake_->placed().empty());
  // The scheme is case-insensitive.
  EXPECT_EQ(
      request(bhttp::verb::post, "/v2/calls", dial_to("+15551230000"), "bearer " + fake_->api_key()).status,
      200u);
}

TEST_F(FakeTelnyx, UnknownRoutesAreNotFound) {
  start();
  for (const auto& [method, target] :
       std::vector<std::pair<bhttp::verb, std::string>>{{bhttp::verb::get, "/v2/calls"},
                                                        {bhttp::verb::post, "/v2/calls/v3:abc/actions/speak"},
                                                        {bhttp::verb::delete_, "/v2/calls/v3:abc"},
                                                        {bhttp::verb::get, "/v1/calls"},
                                                        {bhttp::verb::post, "/v2/phone_numbers"}}) {
    const answer a = request(method, target);
    EXPECT_EQ(a.status, 404u) << target;
    EXPECT_EQ(a.code(), "10005") << target;
  }
  EXPECT_EQ(fake_->counters().requests.at("unknown"), 5);
}

TEST_F(FakeTelnyx, DialRefusesInvalidParametersWithTelnyxCodes) {
  fake_telnyx_options o;
  o.allowed_from = {"+15005550006", "+15005550007"};
  o.invalid_to = {"+15550001111"};
  start(o);
  const json valid = dial_to("+15551230000");
  const struct {
    const char* why;
    json body;
    std::string code, pointer;
  } cases[] = {
      {"no connection_id", without(valid, "connection_id"), "10004", "/connection_id"},
      {"another connection_id", with(valid, "connection_id", "999"), "10015", "/connection_id"},
      {"connection_id not a string", with(valid, "connection_id", 1494404757140276705LL), "10015",
       "/connection_id"},
      {"no to", without(valid, "to"), "10004", "/to"},
      {"to not E.164", with(valid, "to", "5551230000"), "10016", "/to"},
      {"to too short", with(valid, "to", "+12345"), "10016", "/to"},
      {"to an empty array", with(valid, "to", json::array()), "10015", "/to"},
      {"to a number", with(valid, "to", 15551230000LL), "10015", "/to"},
      {"to premium rate", with(valid, "to", "+19005550100"), "10002", "/to"},
      {"to listed invalid", with(valid, "to", "+15550001111"), "10002", "/to"},
      {"no from", without(valid, "from"), "10004", "/from"},
      {"from not E.164", with(valid, "from", "15005550006"), "10016", "/from"},
      {"from not allowed", with(valid, "from", "+15551119999"), "10001", "/from"},
      {"timeout_secs 4", with(valid, "timeout_secs", 4), "10015", "/timeout_secs"},
      {"timeout_secs 601", with(valid, "timeout_secs", 601), "10015", "/timeout_secs"},
      {"timeout_secs a string", with(valid, "timeout_secs", "30"), "10015", "/timeout_secs"},
      {"bad answering_machine_detection", with(valid, "answering_machine_detection", "enable"), "10015",
       "/answering_machine_detection"},
      {"bad stream_track", with(valid, "stream_track", "inbound"), "10015", "/stream_track"},
      {"bad stream_bidirectional_mode", with(valid, "stream_bidirectional_mode", "pcm"), "10015",
       "/stream_bidirectional_mode"},
      {"client_state not base64", with(valid, "client_state", "not base64!"), "10015", "/client_state"},
      {"webhook_url not http", with(valid, "webhook_url", "ftp://x/y"), "10015", "/webhook_url"},
      {"command_id not a string", with(valid, "command_id", 12), "10015", "/command_id"},
      {"custom_headers without value", with(valid, "custom_headers", {{{"name", "X-A"}}}), "10015",
       "/custom_headers"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    const answer a = post("/v2/calls", c.body);
    EXPECT_EQ(a.status, 422u) << a.body;
    EXPECT_EQ(a.code(), c.code) << a.body;
    EXPECT_EQ(a.pointer(), c.pointer) << a.body;
    const json e = a.body_json()["errors"][0];
    EXPECT_TRUE(e.at("code").is_string());
    EXPECT_FALSE(e.value("title", "").empty());
    EXPECT_FALSE(e.value("detail", "").empty());
  }
  // Every error at once, one per field.
  const answer several =
      post("/v2/calls", json{{"to", "555"}, {"from", "+15551119999"}, {"timeout_secs", 1}});
  EXPECT_EQ(several.status, 422u);
  std::set<std::pair<std::string, std::string>> got;
  const json listed = several.body_json();
  for (const auto& e : listed["errors"]) got.emplace(e["code"], e["source"]["pointer"]);
  EXPECT_EQ(
      got,
      (std::set<std::pair<std::string, std::string>>{
          {"10004", "/connection_id"}, {"10016", "/to"}, {"10001", "/from"}, {"10015", "/timeout_secs"}}));
  // Not JSON at all.
  const answer garbled =
      client(fake_->port()).request(bhttp::verb::post, "/v2/calls", "to=+15551230000", bearer());
  EXPECT_EQ(garbled.status, 400u);
  EXPECT_EQ(garbled.code(), "10015");
  EXPECT_TRUE(fake_->placed().empty());

  // Unknown fields are tolerated, and the other allowed From works.
  json fine = with(dial_to("+15551230000"), "from", "+15005550007");
  fine["something_new"] = {{"nested", true}};
  fine["answering_machine_detection"] = "disabled";
  EXPECT_EQ(post("/v2/calls", fine).status, 200u);
  EXPECT_EQ(fake_->placed().size(), 1u);
}

TEST_F(FakeTelnyx, ARepeatedCommandIdAnswersTheFirstCallAndPlacesNothing) {
  start();
  const json body = dial_to("+15551230000", {{"command_id", "placement-42"}});
  const answer first = post("/v2/calls", body);
  const answer again = post("/v2/calls", body);
  ASSERT_EQ(first.status, 200u);
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.body_json(), first.body_json());
  // Another command_id, or none, places a new call.
  EXPECT_NE(dial(with(body, "command_id", "placement-43")), first.body_json()["data"]["call_control_id"]);
  dial(without(body, "command_id"));
  EXPECT_EQ(fake_->placed().size(), 3u);
  EXPECT_EQ(fake_->counters().duplicate_commands, 1);
  EXPECT_EQ(fake_->counters().calls_created, 3);
}

TEST_F(FakeTelnyx, ACommandIdIsTakenOnlyByADialThatCreatedTheCall) {
  start();
  const json lost = dial_to("+15551230000", {{"command_id", "lost-answer"}});
  fake_->fail_next(telnyx_rest_fault::reset_created);
  EXPECT_EQ(post("/v2/calls", lost).status, 0u);  // created, but its answer was lost
  const answer retried = post("/v2/calls", lost);
  ASSERT_EQ(retried.status, 200u);
  EXPECT_EQ(retried.body_json()["data"]["call_control_id"], fake_->placed().at(0).call_control_id);
  EXPECT_EQ(fake_->placed().size(), 1u);

  const json refused = dial_to("+15551230001", {{"command_id", "throttled"}});
  fake_->fail_next(telnyx_rest_fault::throttle);
  EXPECT_EQ(post("/v2/calls", refused).status, 429u);
  fake_->fail_next(telnyx_rest_fault::reset_not_created);
  EXPECT_EQ(post("/v2/calls", refused).status, 0u);
  EXPECT_EQ(post("/v2/calls", with(refused, "to", "+1555")).status, 422u);
  EXPECT_EQ(fake_->placed().size(), 1u);
  dial(refused);  // now it creates one
  EXPECT_EQ(fake_->placed().size(), 2u);
  EXPECT_EQ(fake_->placed().at(1).command_id, "throttled");
  EXPECT_EQ(fake_->counters().duplicate_commands, 1);
}

TEST_F(FakeTelnyx, TheAttemptIsReadFromTheClientState) {
  start();
  const struct {
    std::string client_state;
    std::int64_t attempt;
  } cases[] = {{client_state_of({{"attempt", 123}, {"placement", "ab12cd34"}}), 123},
               {client_state_of({{"placement", "ab12cd34"}, {"attempt", "456"}}), 456},
               {http::base64("789"), 789},
               {client_state_of({{"placement", "ab12cd34"}}), 0},
               {http::base64("not json"), 0},
               {"", 0}};
  for (const auto& c : cases) {
    json body = dial_to("+15551230000");
    if (c.client_state.empty())
      body.erase("client_state");
    else
      body["client_state"] = c.client_state;
    dial(body);
  }
  const auto placed = fake_->placed();
  ASSERT_EQ(placed.size(), std::size(cases));
  for (std::size_t i = 0; i < placed.size(); ++i) EXPECT_EQ(placed[i].attempt, cases[i].attempt) << i;
}

TEST_F(FakeTelnyx, GetTellsTheCallAsItIsNow) {
  fake_telnyx_options o;
  o.talk = 10min;  // stays answered until hung up
  start(o);
  const std::string id = dial(dial_to("+15551230000"));
  const json alive = get(path(id)).body_json().at("data");
  EXPECT_EQ(alive.at("call_control_id"), id);
  EXPECT_EQ(alive.at("is_alive"), true);
  EXPECT_EQ(alive.at("record_type"), "call");
  EXPECT_EQ(alive.at("client_state"), placement_state());
  EXPECT_TRUE(std::regex_match(alive.at("start_time").get<std::string>(), iso_time));
  EXPECT_FALSE(alive.contains("end_time"));
  EXPECT_FALSE(alive.contains("call_duration"));
  ASSERT_TRUE(hooks_.wait_for([&](const std::vector<webhook>& all) {
    return std::any_of(all.begin(), all.end(), [](const webhook& w) { return w.type() == "call.answered"; });
  }));
  ASSERT_EQ(post(path(id) + "/actions/hangup", json::object()).status, 200u);
  const json ended = get(path(id)).body_json().at("data");
  EXPECT_EQ(ended.at("is_alive"), false);
  EXPECT_TRUE(std::regex_match(ended.at("end_time").get<std::string>(), iso_time));
  EXPECT_GE(ended.at("call_duration").get<std::int64_t>(), 1);
  // The id may come percent-encoded or not.
  EXPECT_EQ(get("/v2/calls/" + id).body_json()["data"]["call_control_id"], id);

  const answer unknown = get(path("v3:unknown"));
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(unknown.code(), "10005");
  EXPECT_EQ(fake_->counters().requests.at("get_call"), 4);
}

TEST_F(FakeTelnyx, HangupEndsALiveCallAndAnEndedOneIsRefused) {
  fake_telnyx_options o;
  o.ring = 10min;  // never answered
  start(o);
  const std::string id = dial(dial_to("+15551230000"));
  const answer a = post(path(id) + "/actions/hangup", {{"command_id", "hangup-1"}});
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body_json(), (json{{"data", {{"result", "ok"}}}}));
  const auto snapshot = fake_->call(id);
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->state, "hangup");
  EXPECT_FALSE(snapshot->is_alive);
  EXPECT_EQ(snapshot->hangup_cause, "originator_cancel");
  EXPECT_EQ(snapshot->hangup_source, "caller");
  EXPECT_EQ(snapshot->sip_hangup_cause, "487");
  EXPECT_EQ(snapshot->duration, 0);
  EXPECT_EQ(get(path(id)).body_json()["data"]["call_duration"], 0);

  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  const auto got = hooks_.of(id);
  EXPECT_EQ(types(got), (std::vector<std::string>{"call.initiated", "call.hangup"}));
  EXPECT_EQ(got.back().payload()["hangup_cause"], "originator_cancel");
  EXPECT_EQ(got.back().payload()["hangup_source"], "caller");

  // The same command again is taken and ignored; another is refused: the call has ended.
  EXPECT_EQ(post(path(id) + "/actions/hangup", {{"command_id", "hangup-1"}}).status, 200u);
  const answer ended = post(path(id) + "/actions/hangup", json(nullptr));
  EXPECT_EQ(ended.status, 422u);
  EXPECT_EQ(ended.code(), "90018");
  EXPECT_EQ(ended.body_json()["errors"][0]["title"], "Call has already ended");
  const answer unknown = post(path("v3:nope") + "/actions/hangup", json::object());
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(unknown.code(), "10005");
  const auto n = fake_->counters();
  EXPECT_EQ(n.hangups, 1);
  EXPECT_EQ(n.duplicate_hangup_commands, 1);
  EXPECT_EQ(n.calls_ended, 1);
}

TEST_F(FakeTelnyx, HangupOfAnAnsweredCallIsNormalClearingWithItsTalkTime) {
  fake_telnyx_options o;
  o.talk = 10min;
  start(o);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(hooks_.wait_for([&](const std::vector<webhook>& all) {
    return std::any_of(all.begin(), all.end(), [](const webhook& w) { return w.type() == "call.answered"; });
  }));
  const std::string state = http::base64("hung-up-by-us");
  const answer refused = post(path(id) + "/actions/hangup", {{"client_state", "%%%"}});
  EXPECT_EQ(refused.status, 422u);
  EXPECT_EQ(refused.pointer(), "/client_state");
  ASSERT_EQ(post(path(id) + "/actions/hangup", {{"client_state", state}}).status, 200u);
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  const auto got = hooks_.of(id);
  ASSERT_EQ(types(got), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  const json& hangup = got.back().payload();
  EXPECT_EQ(hangup["hangup_cause"], "normal_clearing");
  EXPECT_EQ(hangup["hangup_source"], "caller");
  EXPECT_EQ(hangup["sip_hangup_cause"], "200");
  EXPECT_EQ(hangup["client_state"], state);  // a command's client_state goes with the webhooks after it
  EXPECT_EQ(got[1].payload()["client_state"], placement_state());
  EXPECT_GE(*fake_->call(id)->duration, 1);
  EXPECT_EQ(get(path(id)).body_json()["data"]["client_state"], state);
}

TEST_F(FakeTelnyx, KeepAliveConnectionsAreServedConcurrently) {
  start();
  std::mutex m;
  std::vector<std::string> ids;
  std::vector<unsigned> bad;
  std::vector<std::thread> threads;
  const std::string body = without(dial_to("+15551230000"), "webhook_url").dump();
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      client c(fake_->port());
      for (int i = 0; i < 25; ++i) {
        const answer a = c.request(bhttp::verb::post, "/v2/calls", body, bearer());
        std::lock_guard lock(m);
        if (a.status == 200)
          ids.push_back(a.body_json()["data"]["call_control_id"]);
        else
          bad.push_back(a.status);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(bad.empty());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 200u);
  EXPECT_EQ(fake_->counters().connections_accepted, 8);
  EXPECT_EQ(fake_->placed().size(), 200u);
}

TEST_F(FakeTelnyx, LatencyHoldsTheAnswersOnTimersNotOnThreads) {
  fake_telnyx_options o;
  o.latency = 1h;  // never answered within the test
  o.threads = 2;
  start(o);
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<client>(fake_->port()));
    clients.back()->send(bhttp::verb::get, "/v2/phone_numbers", {}, bearer());
  }
  ASSERT_TRUE(fake_->wait_for([](const fake_telnyx_counters& c) { return c.delayed_now == 40; }, patience));
  EXPECT_EQ(fake_->counters().delayed_peak, 40);
  for (auto& c : clients) EXPECT_TRUE(c->silent());
  fake_->stop();
  EXPECT_EQ(clients[0]->receive().status, 0u);  // the held answers go with the fake
}

TEST_F(FakeTelnyx, LatencyDelaysEachAnswer) {
  fake_telnyx_options o;
  o.latency = 100ms;
  start(o);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(post("/v2/calls", dial_to("+15551230000")).status, 200u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
}

TEST_F(FakeTelnyx, LogsOneJsonLinePerCreatedCallInAFileFakesShare) {
  const auto log = std::filesystem::temp_directory_path() /
                   ("fake_telnyx_log_" + std::to_string(::getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove(log);
  fake_telnyx_options o;
  o.log_path = log.string();
  fake_telnyx other(o);
  other.start();
  start(o);
  for (int i = 0; i < 3; ++i) {
    dial(dial_to("+15551230000"));
    EXPECT_EQ(client(other.port())
                  .request(bhttp::verb::post, "/v2/calls", dial_to("+15551230001").dump(),
                           "Bearer " + other.api_key())
                  .status,
              200u);
  }
  std::set<std::string> expected;
  for (const auto& p : fake_->placed()) expected.insert(p.call_control_id);
  for (const auto& p : other.placed()) expected.insert(p.call_control_id);
  std::ifstream in(log);
  std::set<std::string> logged;
  std::set<unsigned> ports;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    logged.insert(j.at("call_control_id").get<std::string>());
    ports.insert(j.at("port").get<unsigned>());
    EXPECT_EQ(j.at("attempt"), 7);
    EXPECT_EQ(j.at("webhook_url"), hook_url());
    EXPECT_EQ(j.at("connection_id"), fake_->connection_id());
    EXPECT_EQ(j.at("fault"), "none");
    EXPECT_TRUE(j.at("created_at").is_string());
  }
  EXPECT_EQ(expected.size(), 6u);
  EXPECT_EQ(logged, expected);
  EXPECT_EQ(ports, (std::set<unsigned>{fake_->port(), other.port()}));
  std::filesystem::remove(log);
}

TEST_F(FakeTelnyx, BadOptionsAreRefused) {
  fake_telnyx_options o;
  o.rates.never = 1.5;
  EXPECT_THROW(fake_telnyx{o}, std::invalid_argument);
  o = {};
  o.threads = 0;
  EXPECT_THROW(fake_telnyx{o}, std::invalid_argument);
  o = {};
  o.owned_numbers = {"5551230000"};
  EXPECT_THROW(fake_telnyx{o}, std::invalid_argument);
  o = {};
  o.available_numbers = {"+445551230000"};
  EXPECT_THROW(fake_telnyx{o}, std::invalid_argument);
  start();
  EXPECT_THROW(fake_->set_rate(telnyx_rest_fault::throttle, -0.1), std::invalid_argument);
  EXPECT_THROW(fake_->set_rate(telnyx_webhook_fault::late, 2), std::invalid_argument);
  EXPECT_THROW(fake_->start(), std::logic_error);
}

// ---- the calls' lives and their webhooks ----

TEST_F(FakeTelnyxWebhooks, AnAnsweredCallSendsItsEventsInOrderSignedWithEd25519) {
  start();
  const json body = dial_to("+15551230000");
  const std::string id = dial(body);
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  const auto got = hooks_.of(id);
  ASSERT_EQ(types(got), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  const auto p = fake_->placed().at(0);
  std::set<std::string> ids;
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  for (const auto& w : got) {
    SCOPED_TRACE(w.type());
    EXPECT_EQ(w.method, "POST");
    EXPECT_EQ(w.target, "/telnyx/webhooks?engine=a");
    EXPECT_EQ(w.host, hooks_.authority());
    EXPECT_EQ(w.content_type, "application/json");
    EXPECT_TRUE(signed_rightly(w)) << w.signature;
    EXPECT_LE(std::abs(std::stoll(w.timestamp) - now), 300);
    const json& data = w.j.at("data");
    EXPECT_EQ(data.at("record_type"), "event");
    EXPECT_TRUE(std::regex_match(data.at("id").get<std::string>(), uuid));
    ids.insert(data.at("id"));
    EXPECT_TRUE(std::regex_match(data.at("occurred_at").get<std::string>(), iso_ms))
        << data.at("occurred_at");
    EXPECT_EQ(w.j.at("meta"), (json{{"attempt", 1}, {"delivered_to", hook_url()}}));
    const json& pl = w.payload();
    EXPECT_EQ(pl.at("call_control_id"), id);
    EXPECT_EQ(pl.at("call_leg_id"), p.call_leg_id);
    EXPECT_EQ(pl.at("call_session_id"), p.call_session_id);
    EXPECT_EQ(pl.at("connection_id"), fake_->connection_id());
    EXPECT_EQ(pl.at("client_state"), body["client_state"]);
    EXPECT_EQ(pl.at("from"), "+15005550006");
    EXPECT_EQ(pl.at("to"), "+15551230000");
    EXPECT_EQ(pl.at("direction"), "outgoing");
    EXPECT_TRUE(std::regex_match(pl.at("start_time").get<std::string>(), iso_time));
    EXPECT_EQ(pl.contains("hangup_cause"), w.type() == "call.hangup");
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(got[0].payload()["state"], "bridging");
  EXPECT_EQ(got[1].payload()["state"], "answered");
  const json& hangup = got[2].payload();
  EXPECT_EQ(hangup["state"], "hangup");
  EXPECT_EQ(hangup["hangup_cause"], "normal_clearing");
  EXPECT_EQ(hangup["hangup_source"], "callee");
  EXPECT_EQ(hangup["sip_hangup_cause"], "200");
  EXPECT_TRUE(std::regex_match(hangup["end_time"].get<std::string>(), iso_time));
  EXPECT_TRUE(hangup.contains("call_quality_stats"));

  // A signature covers the timestamp and every byte of the body.
  webhook tampered = got[2];
  tampered.body.replace(tampered.body.find("normal_clearing"), 6, "NORMAL");
  EXPECT_FALSE(signed_rightly(tampered));
  tampered = got[2];
  tampered.timestamp = std::to_string(std::stoll(tampered.timestamp) + 1);
  EXPECT_FALSE(signed_rightly(tampered));
  EXPECT_EQ(http::unbase64(fake_->public_key_base64())->size(), 32u);
  EXPECT_EQ(http::unbase64(got[0].signature)->size(), 64u);

  // talk 50 ms at the default scale (1 ms -> 1 s)
  const json status = get(path(id)).body_json().at("data");
  EXPECT_EQ(status.at("is_alive"), false);
  EXPECT_EQ(status.at("call_duration"), 50);
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto snapshot = fake_->call(id);
  ASSERT_TRUE(snapshot);
  EXPECT_TRUE(snapshot->hangup_delivered);
  EXPECT_TRUE(snapshot->settled);
  EXPECT_EQ(snapshot->webhooks_generated, 3);
  EXPECT_EQ(snapshot->duration, 50);
  EXPECT_EQ(fake_->counters().webhooks_sent, 3);
}

TEST_F(FakeTelnyxWebhooks, TheLastDigitOfToDecidesTheOutcome) {
  start();
  const struct {
    std::string to;
    std::vector<std::string> events;
    std::string cause, sip, source;
    std::int64_t duration;
  } cases[] = {
      {"+15551230005",
       {"call.initiated", "call.answered", "call.hangup"},
       "normal_clearing",
       "200",
       "callee",
       50},
      {"+15551230006", {"call.initiated", "call.hangup"}, "user_busy", "486", "callee", 0},
      {"+15551230007", {"call.initiated", "call.hangup"}, "timeout", "487", "caller", 0},
      {"+15551230008", {"call.initiated", "call.hangup"}, "call_rejected", "503", "callee", 0},
      {"+15551230009",
       {"call.initiated", "call.answered", "call.hangup"},
       "normal_clearing",
       "200",
       "callee",
       50},
  };
  std::vector<std::string> ids;
  for (const auto& c : cases) ids.push_back(dial(dial_to(c.to)));
  ASSERT_TRUE(fake_->wait_for_hangups(5, patience));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(cases[i].to);
    const auto got = hooks_.of(ids[i]);
    EXPECT_EQ(types(got), cases[i].events);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back().payload()["hangup_cause"], cases[i].cause);
    EXPECT_EQ(got.back().payload()["sip_hangup_cause"], cases[i].sip);
    EXPECT_EQ(got.back().payload()["hangup_source"], cases[i].source);
    for (const auto& w : got) EXPECT_TRUE(signed_rightly(w));
    const json status = get(path(ids[i])).body_json().at("data");
    EXPECT_EQ(status.at("call_duration"), cases[i].duration);
    const auto s = fake_->call(ids[i]);
    EXPECT_EQ(s->hangup_cause, cases[i].cause);
    EXPECT_EQ(s->duration, cases[i].duration);
    EXPECT_EQ(s->amd_result, "");
  }
}

TEST_F(FakeTelnyxWebhooks, MachineDetectionTellsWhoAnswered) {
  start();
  const struct {
    std::string to, detection, result;
  } cases[] = {{"+15551230009", "detect", "machine"},
               {"+15551230009", "premium", "machine"},
               {"+15551230001", "detect_beep", "human"},
               {"+15551230009", "disabled", ""},
               {"+15551230009", "", ""}};
  std::vector<std::string> ids;
  for (const auto& c : cases)
    ids.push_back(dial(c.detection.empty() ? dial_to(c.to)
                                           : dial_to(c.to, {{"answering_machine_detection", c.detection}})));
  ASSERT_TRUE(fake_->wait_for_hangups(5, patience));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(cases[i].detection + " " + cases[i].to);
    const auto got = hooks_.of(ids[i]);
    if (cases[i].result.empty()) {
      EXPECT_EQ(types(got), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
    } else {
      ASSERT_EQ(types(got), (std::vector<std::string>{"call.initiated", "call.answered",
                                                      "call.machine.detection.ended", "call.hangup"}));
      EXPECT_EQ(got[2].payload()["result"], cases[i].result);
      EXPECT_EQ(got[2].payload()["call_control_id"], ids[i]);
      EXPECT_TRUE(signed_rightly(got[2]));
    }
    EXPECT_EQ(fake_->call(ids[i])->amd_result, cases[i].result);
  }
  EXPECT_EQ(fake_->counters().amd_webhooks_sent, 3);
}

TEST_F(FakeTelnyxWebhooks, WithoutAWebhookUrlTheApplicationsIsUsed) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const std::string id = dial(without(dial_to("+15551230000"), "webhook_url"));
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  EXPECT_EQ(fake_->placed().at(0).webhook_url, hooks_.url("/app"));
  for (const auto& w : hooks_.of(id)) {
    EXPECT_EQ(w.target, "/app");
    EXPECT_EQ(w.j["meta"]["delivered_to"], hooks_.url("/app"));
  }
  EXPECT_EQ(hooks_.of(id).size(), 3u);

  // Neither: no webhook at all, and the call still runs its course.
  fake_.reset();
  start();
  const std::string quiet = dial(without(dial_to("+15551230000"), "webhook_url"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  EXPECT_TRUE(hooks_.of(quiet).empty());
  EXPECT_EQ(fake_->call(quiet)->hangup_cause, "normal_clearing");
  EXPECT_EQ(fake_->counters().webhook_posts, 0);
}

TEST_F(FakeTelnyxWebhooks, TheCallbackAuthorityTakesThemButDeliveredToIsTheGivenUrl) {
  fake_telnyx_options o;
  o.callback_authority = hooks_.authority();
  start(o);
  const std::string given = "https://engine.example.com/telnyx/webhooks";
  const std::string id = dial(with(dial_to("+15551230000"), "webhook_url", given));
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  const auto got = hooks_.of(id);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& w : got) {
    EXPECT_EQ(w.host, "engine.example.com");
    EXPECT_EQ(w.target, "/telnyx/webhooks");
    EXPECT_EQ(w.j["meta"]["delivered_to"], given);
    EXPECT_TRUE(signed_rightly(w));
  }
}

TEST_F(FakeTelnyxWebhooks, AFailedWebhookIsRetriedWithItsAttemptCounted) {
  fake_telnyx_options o;
  o.webhook_retry_delay = 5ms;
  o.ring = 10min;  // only call.initiated for now
  start(o);
  hooks_.refuse_next(2, 503);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for([](const fake_telnyx_counters& c) { return c.webhooks_sent == 1; }, patience));
  const auto got = hooks_.of(id);
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].type(), "call.initiated");
    EXPECT_EQ(got[i].id(), got[0].id());  // the same event
    EXPECT_EQ(got[i].j["meta"]["attempt"], i + 1);
    EXPECT_TRUE(signed_rightly(got[i]));
  }
  const auto n = fake_->counters();
  EXPECT_EQ(n.webhook_posts, 3);
  EXPECT_EQ(n.webhook_retries, 2);
  EXPECT_EQ(n.webhooks_failed, 0);
}

TEST_F(FakeTelnyxWebhooks, AWebhookNobodyTakesIsDroppedAfterItsAttempts) {
  unsigned short closed_port = 0;
  {
    net::io_context io;
    tcp::acceptor a(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    closed_port = a.local_endpoint().port();
  }
  fake_telnyx_options o;
  o.webhook_retry_delay = 5ms;
  start(o);
  const std::string id = dial(with(dial_to("+15551230006"), "webhook_url",
                                   "http://127.0.0.1:" + std::to_string(closed_port) + "/hooks"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto n = fake_->counters();
  EXPECT_EQ(n.webhook_posts, 2 * o.webhook_attempts);  // call.initiated and call.hangup
  EXPECT_EQ(n.webhook_retries, 2 * (o.webhook_attempts - 1));
  EXPECT_EQ(n.webhooks_failed, 2);
  EXPECT_EQ(n.hangups_delivered, 0);
  EXPECT_FALSE(fake_->call(id)->hangup_delivered);
  EXPECT_EQ(fake_->call(id)->hangup_cause, "user_busy");
}

TEST_F(FakeTelnyxWebhooks, ARefusedWebhookIsNotRetried) {
  fake_telnyx_options o;
  o.ring = 10min;
  start(o);
  hooks_.refuse_next(1, 403);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(
      fake_->wait_for([](const fake_telnyx_counters& c) { return c.webhooks_failed == 1; }, patience));
  EXPECT_EQ(hooks_.of(id).size(), 1u);
  EXPECT_EQ(fake_->counters().webhook_retries, 0);
}

TEST_F(FakeTelnyxWebhooks, TheTimeScaleSetsTheReportedDuration) {
  fake_telnyx_options o;
  o.time_scale = 1;  // 50 ms of talk: 0.05 s, rounded up to 1
  start(o);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  EXPECT_EQ(get(path(id)).body_json()["data"]["call_duration"], 1);

  fake_.reset();
  o.time_scale = 100;  // 50 ms -> 5 s
  start(o);
  const std::string second = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  EXPECT_EQ(get(path(second)).body_json()["data"]["call_duration"], 5);
}

// ---- faults ----

TEST_F(FakeTelnyxFaults, ThrottleAnswers429WithRateLimitHeadersAndCreatesNothing) {
  start();
  fake_->fail_next(telnyx_rest_fault::throttle);
  const answer a = post("/v2/calls", dial_to("+15551230000"));
  EXPECT_EQ(a.status, 429u);
  EXPECT_EQ(a.code(), "10011");
  EXPECT_EQ(a.body_json()["errors"][0]["title"], "Too many requests");
  EXPECT_EQ(a.body_json()["errors"][0]["detail"],
            "You have exceeded the maximum number of allowed requests.");
  EXPECT_FALSE(a.header("x-ratelimit-limit").empty());
  EXPECT_EQ(a.header("x-ratelimit-remaining"), "0");
  EXPECT_EQ(a.header("x-ratelimit-reset"), "1");
  EXPECT_EQ(a.header("retry-after"), "");
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_EQ(post("/v2/calls", dial_to("+15551230000")).status, 200u);
  EXPECT_EQ(fake_->placed().size(), 1u);
}

TEST_F(FakeTelnyxFaults, ErrorUnprocessedAnswers5xxAndCreatesNothing) {
  start();
  fake_->fail_next(telnyx_rest_fault::error_unprocessed, 6);
  std::set<unsigned> statuses;
  for (int i = 0; i < 6; ++i) {
    const answer a = post("/v2/calls", dial_to("+15551230000"));
    EXPECT_TRUE(a.status == 500 || a.status == 503) << a.status;
    EXPECT_EQ(a.code(), "10007");
    EXPECT_EQ(a.body_json()["errors"][0]["title"],
              a.status == 503 ? "Service unavailable" : "Unexpected error");
    statuses.insert(a.status);
  }
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_EQ(fake_->counters().calls_created, 0);
}

TEST_F(FakeTelnyxFaults, FaultsMeetOnlyTheDialRoute) {
  start();
  fake_->set_rate(telnyx_rest_fault::throttle, 1);
  EXPECT_EQ(get("/v2/phone_numbers").status, 200u);
  EXPECT_EQ(get("/v2/calls/v3:x").status, 404u);
  EXPECT_EQ(post("/v2/calls", dial_to("+15551230000")).status, 429u);
}

TEST_F(FakeTelnyxFaults, FailNextQueuesFaultsInOrder) {
  start();
  fake_->fail_next(telnyx_rest_fault::throttle, 2);
  fake_->fail_next(telnyx_rest_fault::error_unprocessed);
  std::vector<unsigned> got;
  for (int i = 0; i < 4; ++i) got.push_back(post("/v2/calls", dial_to("+15551230000")).status);
  EXPECT_EQ(got[0], 429u);
  EXPECT_EQ(got[1], 429u);
  EXPECT_TRUE(got[2] == 500 || got[2] == 503) << got[2];
  EXPECT_EQ(got[3], 200u);
}

TEST_F(FakeTelnyxFaults, TimeoutCreatedRunsTheCallButNeverAnswers) {
  start();
  fake_->fail_next(telnyx_rest_fault::timeout_created);
  client waiting(fake_->port());
  waiting.send(bhttp::verb::post, "/v2/calls", dial_to("+15551230000").dump(), bearer());
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));  // the call was created and ran to its end
  const auto placed = fake_->placed();
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].fault, telnyx_rest_fault::timeout_created);
  EXPECT_EQ(types(hooks_.of(placed[0].call_control_id)),
            (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  EXPECT_TRUE(waiting.silent());
  EXPECT_EQ(fake_->counters().silent, 1);
  waiting.close();  // the fake lets go of the connection once the client does
  EXPECT_TRUE(
      fake_->wait_for([](const fake_telnyx_counters& c) { return c.connections_open == 0; }, patience));
  EXPECT_EQ(post("/v2/calls", dial_to("+15551230000")).status, 200u);
}

TEST_F(FakeTelnyxFaults, TimeoutNotCreatedCreatesNothingAndNeverAnswers) {
  start();
  fake_->fail_next(telnyx_rest_fault::timeout_not_created);
  client waiting(fake_->port());
  waiting.send(bhttp::verb::post, "/v2/calls", dial_to("+15551230000").dump(), bearer());
  ASSERT_TRUE(fake_->wait_for([](const fake_telnyx_counters& c) { return c.silent == 1; }, patience));
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_TRUE(waiting.silent());
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_EQ(fake_->placed().size(), 1u);
  EXPECT_EQ(fake_->placed()[0].call_control_id, id);
}

TEST_F(FakeTelnyxFaults, ResetCreatedCreatesTheCallAndResetsTheConnection) {
  start();
  fake_->fail_next(telnyx_rest_fault::reset_created);
  client c(fake_->port());
  const answer a = c.request(bhttp::verb::post, "/v2/calls", dial_to("+15551230000").dump(), bearer());
  EXPECT_EQ(a.status, 0u);
  EXPECT_TRUE(a.error);
  const auto placed = fake_->placed();
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].fault, telnyx_rest_fault::reset_created);
  EXPECT_EQ(fake_->counters().resets, 1);
}

TEST_F(FakeTelnyxFaults, ResetNotCreatedCreatesNothing) {
  start();
  fake_->fail_next(telnyx_rest_fault::reset_not_created);
  client c(fake_->port());
  const answer a = c.request(bhttp::verb::post, "/v2/calls", dial_to("+15551230000").dump(), bearer());
  EXPECT_EQ(a.status, 0u);
  EXPECT_TRUE(a.error);
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_EQ(fake_->counters().resets, 1);
}

TEST_F(FakeTelnyxFaults, DecisionsFollowTheSeed) {
  const auto run = [this](std::uint64_t seed) {
    fake_telnyx_options o;
    o.seed = seed;
    o.rates.throttle = 0.5;
    o.rates.error_unprocessed = 0.25;
    o.rates.twice = 0.5;
    start(o);
    std::vector<unsigned> got;
    client c(fake_->port());
    const std::string body = without(dial_to("+15551230000"), "webhook_url").dump();
    for (int i = 0; i < 32; ++i)
      got.push_back(c.request(bhttp::verb::post, "/v2/calls", body, bearer()).status);
    std::vector<std::vector<telnyx_webhook_fault>> faults;
    for (const auto& p : fake_->placed()) faults.push_back(fake_->call(p.call_control_id)->webhook_faults);
    return std::pair(got, faults);
  };
  const auto first = run(42);
  EXPECT_EQ(run(42), first);
  EXPECT_NE(run(43).first, first.first);
  const auto& statuses = first.first;
  const auto count = [&](unsigned s) { return std::count(statuses.begin(), statuses.end(), s); };
  EXPECT_EQ(count(200) + count(429) + count(500) + count(503), 32);
  EXPECT_GT(count(200), 0);
  EXPECT_GT(count(429), 0);
  EXPECT_TRUE(
      std::any_of(first.second.begin(), first.second.end(), [](const auto& f) { return !f.empty(); }));
  EXPECT_TRUE(std::any_of(first.second.begin(), first.second.end(), [](const auto& f) { return f.empty(); }));
}

TEST_F(FakeTelnyxFaults, TwiceSendsEveryWebhookTwiceWithTheSameId) {
  start();
  fake_->set_rate(telnyx_webhook_fault::twice, 1);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto got = hooks_.of(id);
  EXPECT_EQ(types(got), (std::vector<std::string>{"call.initiated", "call.initiated", "call.answered",
                                                  "call.answered", "call.hangup", "call.hangup"}));
  for (std::size_t i = 0; i + 1 < got.size(); i += 2) {
    EXPECT_EQ(got[i].id(), got[i + 1].id());
    EXPECT_EQ(got[i].j["data"], got[i + 1].j["data"]);
  }
  for (const auto& w : got) EXPECT_TRUE(signed_rightly(w));
  EXPECT_EQ(fake_->call(id)->webhook_faults,
            (std::vector<telnyx_webhook_fault>{telnyx_webhook_fault::twice}));
  EXPECT_EQ(fake_->call(id)->webhooks_generated, 3);
}

TEST_F(FakeTelnyxFaults, OutOfOrderSendsTheHangupFirst) {
  start();
  fake_->set_rate(telnyx_webhook_fault::out_of_order, 1);
  const std::string id = dial(dial_to("+15551230009", {{"answering_machine_detection", "detect"}}));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto got = hooks_.of(id);
  EXPECT_EQ(types(got), (std::vector<std::string>{"call.hangup", "call.initiated", "call.answered",
                                                  "call.machine.detection.ended"}));
  // occurred_at still tells the true order.
  std::vector<std::string> when;
  for (const auto& w : got) when.push_back(w.j["data"]["occurred_at"]);
  EXPECT_TRUE(std::is_sorted(when.begin() + 1, when.end()));
  EXPECT_GE(when[0], when[3]);
}

TEST_F(FakeTelnyxFaults, NeverSendsNoWebhookButTheCallStillEnds) {
  start();
  fake_->set_rate(telnyx_webhook_fault::never, 1);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  EXPECT_TRUE(hooks_.of(id).empty());
  const json status = get(path(id)).body_json()["data"];
  EXPECT_EQ(status["is_alive"], false);
  EXPECT_EQ(status["call_duration"], 50);
  EXPECT_EQ(fake_->counters().webhook_posts, 0);
  EXPECT_EQ(fake_->counters().hangups_delivered, 0);
}

TEST_F(FakeTelnyxFaults, BadSignatureSignsWithAnotherKey) {
  start();
  fake_->set_rate(telnyx_webhook_fault::bad_signature, 1);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto got = hooks_.of(id);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& w : got) {
    EXPECT_FALSE(signed_rightly(w));
    EXPECT_EQ(http::unbase64(w.signature)->size(), 64u);  // a well-formed signature, by another key
  }
  EXPECT_EQ(fake_->counters().webhooks_bad_signed, 3);
  EXPECT_EQ(fake_->counters().hangups_delivered, 0);
}

TEST_F(FakeTelnyxFaults, BadSignatureIsFollowedByARightOneWhenAsked) {
  fake_telnyx_options o;
  o.resend_after_bad_signature = true;
  o.rates.bad_signature = 1;
  start(o);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  const auto got = hooks_.of(id);
  ASSERT_EQ(got.size(), 6u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(signed_rightly(got[i]), i % 2 == 1) << i;
}

TEST_F(FakeTelnyxFaults, LateDelaysTheHangup) {
  fake_telnyx_options o;
  o.late_by = 300ms;
  o.rates.late = 1;
  start(o);
  const std::string id = dial(dial_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  const auto got = hooks_.of(id);
  ASSERT_EQ(types(got), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  EXPECT_GE(got[2].at - got[1].at, o.late_by);
  EXPECT_EQ(fake_->call(id)->webhook_faults, (std::vector<telnyx_webhook_fault>{telnyx_webhook_fault::late}));
}

// ---- numbers ----

std::vector<std::string> phones_of(const json& list) {
  std::vector<std::string> out;
  for (const auto& n : list.at("data")) out.push_back(n.at("phone_number"));
  return out;
}

TEST_F(FakeTelnyxNumbers, SearchOffersTheDefaultInventory) {
  start();
  const answer a = get("/v2/available_phone_numbers?filter%5Bcountry_code%5D=US&filter%5Blimit%5D=3");
  ASSERT_EQ(a.status, 200u) << a.body;
  const json j = a.body_json();
  EXPECT_EQ(phones_of(j), (std::vector<std::string>{"+12125550100", "+12125550101", "+12125550102"}));
  EXPECT_EQ(j.at("meta"), (json{{"total_results", 3}, {"best_effort_results", 0}}));
  const json& n = j.at("data").at(0);
  EXPECT_EQ(n.at("record_type"), "available_phone_number");
  EXPECT_EQ(n.at("vanity_format"), "");
  EXPECT_EQ(n.at("best_effort"), false);
  EXPECT_EQ(n.at("quickship"), true);
  EXPECT_EQ(n.at("reservable"), true);
  EXPECT_EQ(n.at("features"), (json::array({{{"name", "voice"}}, {{"name", "sms"}}})));
  EXPECT_EQ(n.at("region_information"),
            (json::array({{{"region_type", "country_code"}, {"region_name", "US"}},
                          {{"region_type", "state"}, {"region_name", "NY"}},
                          {{"region_type", "rate_center"}, {"region_name", "NEW YORK CITY"}}})));
  EXPECT_EQ(n.at("cost_information"),
            (json{{"currency", "USD"}, {"monthly_cost", "1.00000"}, {"upfront_cost", "1.00000"}}));
  // 10 without a limit; at most 100.
  EXPECT_EQ(get("/v2/available_phone_numbers").body_json().at("data").size(), 10u);
  EXPECT_EQ(get("/v2/available_phone_numbers?filter[limit]=500").body_json().at("data").size(), 100u);
  EXPECT_EQ(fake_->counters().requests.at("available_numbers"), 3);
}

TEST_F(FakeTelnyxNumbers, SearchFilters) {
  start();
  const auto search = [&](const std::string& query) {
    const answer a = get("/v2/available_phone_numbers?filter[limit]=100&" + query);
    EXPECT_EQ(a.status, 200u) << query << " " << a.body;
    return phones_of(a.body_json());
  };
  const auto ndc = search("filter[national_destination_code]=415");
  EXPECT_EQ(ndc.size(), 100u);
  EXPECT_TRUE(std::all_of(ndc.begin(), ndc.end(), [](const auto& p) { return p.starts_with("+1415"); }));
  EXPECT_EQ(search("filter[national_destination_code]=312&filter[phone_number][starts_with]=5550123"),
            (std::vector<std::string>{"+13125550123"}));
  EXPECT_EQ(search("filter[phone_number][starts_with]=6175550").size(), 100u);
  EXPECT_EQ(search("filter[phone_number][starts_with]=%2B1512555015").size(), 10u);
  EXPECT_EQ(search("filter[phone_number][ends_with]=0142").size(), 7u);  // one per area code
  EXPECT_EQ(search("filter[national_destination_code]=512&filter[phone_number][contains]=5550"),
            search("filter[national_destination_code]=512"));
  EXPECT_EQ(search("filter[phone_number][contains]=2125550").size(), 100u);
  const auto toll_free = search("filter[phone_number_type]=toll_free&filter[phone_number][ends_with]=99");
  EXPECT_EQ(toll_free, (std::vector<std::string>{"+18775550199", "+18885550199"}));
  EXPECT_EQ(search("filter[phone_number_type]=local&filter[phone_number][ends_with]=199").size(), 5u);
  EXPECT_EQ(search("filter[administrative_area]=TX").size(), 100u);
  EXPECT_EQ(search("filter[rate_center]=boston").front(), "+16175550100");
  EXPECT_TRUE(search("filter[country_code]=GB").empty());
  EXPECT_TRUE(search("filter[phone_number_type]=mobile").empty());
  EXPECT_EQ(
      search("filter[features][]=voice&filter[features][]=sms&filter[national_destination_code]=212").size(),
      100u);
  for (const char* bad : {"filter[limit]=0", "filter[limit]=many", "filter[phone_number_type]=landline"}) {
    const answer a = get(std::string("/v2/available_phone_numbers?") + bad);
    EXPECT_EQ(a.status, 422u) << bad;
    EXPECT_EQ(a.code(), "10015") << bad;
    EXPECT_FALSE(a.body_json()["errors"][0]["source"].value("parameter", "").empty()) << bad;
  }
}

TEST_F(FakeTelnyxNumbers, AGivenInventoryAndOwnedNumbers) {
  fake_telnyx_options o;
  o.available_numbers = {"+13035550100", "+13035550101", "+18005550100"};
  o.owned_numbers = {"+13035550101", "+447700900123"};
  start(o);
  EXPECT_EQ(phones_of(get("/v2/available_phone_numbers").body_json()),
            (std::vector<std::string>{"+13035550100", "+18005550100"}));  // owned numbers are not offered
  EXPECT_EQ(phones_of(get("/v2/available_phone_numbers?filter[phone_number_type]=toll_free").body_json()),
            (std::vector<std::string>{"+18005550100"}));
  const auto owned = fake_->owned_numbers();
  ASSERT_EQ(owned.size(), 2u);
  EXPECT_EQ(owned[0].phone_number, "+13035550101");
  EXPECT_EQ(owned[0].status, "active");
  EXPECT_EQ(owned[0].connection_id, "");
  EXPECT_TRUE(std::regex_match(owned[0].id, std::regex("[1-9][0-9]{18}"))) << owned[0].id;
  EXPECT_EQ(owned[1].phone_number, "+447700900123");
  const json listed = get("/v2/phone_numbers").body_json();
  EXPECT_EQ(phones_of(listed), (std::vector<std::string>{"+447700900123", "+13035550101"}));  // newest first
  const json& n = listed["data"][1];
  EXPECT_EQ(n.at("id"), owned[0].id);
  EXPECT_EQ(n.at("record_type"), "phone_number");
  EXPECT_EQ(n.at("status"), "active");
  EXPECT_TRUE(n.at("connection_id").is_null());
  EXPECT_EQ(n.at("tags"), json::array());
  EXPECT_TRUE(n.at("customer_reference").is_null());
  EXPECT_TRUE(std::regex_match(n.at("created_at").get<std::string>(), iso_time));
  EXPECT_TRUE(std::regex_match(n.at("updated_at").get<std::string>(), iso_time));
}

TEST_F(FakeTelnyxNumbers, AnOrderIsPendingThenSucceedsAndItsNumbersAreOwned) {
  fake_telnyx_options o;
  o.order_delay = 1s;  // the pending checks below run before it is over, also under a sanitizer
  start(o);
  const answer a =
      post("/v2/number_orders",
           {{"phone_numbers", {{{"phone_number", "+12125550100"}}, {{"phone_number", "+18885550100"}}}},
            {"connection_id", fake_->connection_id()},
            {"customer_reference", "campaign-7"}});
  ASSERT_EQ(a.status, 200u) << a.body;
  const json order = a.body_json().at("data");
  const std::string order_id = order.at("id");
  EXPECT_TRUE(std::regex_match(order_id, uuid));
  EXPECT_EQ(order.at("record_type"), "number_order");
  EXPECT_EQ(order.at("status"), "pending");
  EXPECT_EQ(order.at("phone_numbers_count"), 2);
  EXPECT_EQ(order.at("connection_id"), fake_->connection_id());
  EXPECT_EQ(order.at("customer_reference"), "campaign-7");
  EXPECT_EQ(order.at("requirements_met"), true);
  EXPECT_TRUE(std::regex_match(order.at("created_at").get<std::string>(), iso_time));
  EXPECT_TRUE(order.contains("updated_at"));
  ASSERT_EQ(order.at("phone_numbers").size(), 2u);
  const json& first = order.at("phone_numbers").at(0);
  EXPECT_EQ(first.at("phone_number"), "+12125550100");
  EXPECT_EQ(first.at("status"), "pending");
  EXPECT_EQ(first.at("record_type"), "number_order_phone_number");
  EXPECT_TRUE(std::regex_match(first.at("id").get<std::string>(), std::regex("[0-9]{19}")));

  // Ordered numbers are no longer offered, and are in the account, pending.
  EXPECT_TRUE(
      phones_of(get("/v2/available_phone_numbers?filter[phone_number][ends_with]=2125550100").body_json())
          .empty());
  const auto pending = fake_->owned_numbers();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].status, "purchase-pending");
  EXPECT_EQ(pending[0].id, first.at("id"));

  ASSERT_TRUE(
      fake_->wait_for([](const fake_telnyx_counters& c) { return c.orders_completed == 1; }, patience));
  const json done = get("/v2/number_orders/" + order_id).body_json().at("data");
  EXPECT_EQ(done.at("status"), "success");
  for (const auto& n : done.at("phone_numbers")) EXPECT_EQ(n.at("status"), "success");
  for (const auto& n : fake_->owned_numbers()) {
    EXPECT_EQ(n.status, "active");
    EXPECT_EQ(n.connection_id, fake_->connection_id());
  }
  const json number = get("/v2/phone_numbers/" + first.at("id").get<std::string>()).body_json().at("data");
  EXPECT_EQ(number.at("phone_number"), "+12125550100");
  EXPECT_EQ(number.at("status"), "active");
  EXPECT_EQ(number.at("connection_id"), fake_->connection_id());
  EXPECT_EQ(number.at("customer_reference"), "campaign-7");
  EXPECT_EQ(number.at("phone_number_type"), "local");

  const answer unknown = get("/v2/number_orders/00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(unknown.code(), "10005");
  EXPECT_EQ(fake_->counters().orders_created, 1);
}

TEST_F(FakeTelnyxNumbers, AnOrderWithAnUnavailableNumberOrdersNothing) {
  fake_telnyx_options o;
  o.owned_numbers = {"+12125550101"};
  start(o);
  const auto order = [&](const std::vector<std::string>& phones) {
    json list = json::array();
    for (const auto& p : phones) list.push_back({{"phone_number", p}});
    return post("/v2/number_orders", {{"phone_numbers", list}});
  };
  for (const auto& phones : std::vector<std::vector<std::string>>{{"+12125550100", "+12125550101"},
                                                                  {"+12125550100", "+19995550100"},
                                                                  {"+12125550100", "+12125550100"}}) {
    const answer a = order(phones);
    EXPECT_EQ(a.status, 422u) << a.body;
    EXPECT_EQ(a.code(), "10002");
    EXPECT_EQ(a.pointer(), "/phone_numbers/1/phone_number");
    EXPECT_NE(a.body_json()["errors"][0].value("detail", "").find(phones[1]), std::string::npos);
  }
  for (const json& bad : {json{{"customer_reference", "x"}}, json{{"phone_numbers", json::array()}},
                          json{{"phone_numbers", {{{"number", "+12125550100"}}}}}}) {
    const answer a = post("/v2/number_orders", bad);
    EXPECT_EQ(a.status, 422u) << bad;
  }
  EXPECT_EQ(fake_->owned_numbers().size(), 1u);
  EXPECT_EQ(fake_->counters().orders_created, 0);
  EXPECT_EQ(order({"+12125550100"}).status, 200u);
}

TEST_F(FakeTelnyxNumbers, ListFindsANumberWithOrWithoutItsPlusAndPages) {
  fake_telnyx_options o;
  o.owned_numbers = {"+13035550100", "+13035550101", "+13035550102", "+13035550103", "+13035550104"};
  start(o);
  for (const char* query : {"filter[phone_number]=%2B13035550102", "filter[phone_number]=13035550102"}) {
    const json j = get(std::string("/v2/phone_numbers?") + query).body_json();
    EXPECT_EQ(phones_of(j), (std::vector<std::string>{"+13035550102"})) << query;
    EXPECT_EQ(j.at("meta"),
              (json{{"total_pages", 1}, {"total_results", 1}, {"page_number", 1}, {"page_size", 20}}));
  }
  EXPECT_TRUE(phones_of(get("/v2/phone_numbers?filter[phone_number]=%2B13035550199").body_json()).empty());
  const json page2 = get("/v2/phone_numbers?page[number]=2&page[size]=2").body_json();
  EXPECT_EQ(phones_of(page2), (std::vector<std::string>{"+13035550102", "+13035550101"}));
  EXPECT_EQ(page2.at("meta"),
            (json{{"total_pages", 3}, {"total_results", 5}, {"page_number", 2}, {"page_size", 2}}));
  EXPECT_EQ(phones_of(get("/v2/phone_numbers?page[number]=3&page[size]=2").body_json()),
            (std::vector<std::string>{"+13035550100"}));
  EXPECT_TRUE(phones_of(get("/v2/phone_numbers?page[number]=4&page[size]=2").body_json()).empty());
  for (const char* bad : {"page[size]=0", "page[size]=251", "page[number]=0"}) {
    const answer a = get(std::string("/v2/phone_numbers?") + bad);
    EXPECT_EQ(a.status, 422u) << bad;
    EXPECT_EQ(a.code(), "10015") << bad;
  }
}

TEST_F(FakeTelnyxNumbers, PatchRoutesANumberToTheApplication) {
  fake_telnyx_options o;
  o.owned_numbers = {"+13035550100"};
  start(o);
  const std::string id = fake_->owned_numbers().at(0).id;
  const answer a = patch("/v2/phone_numbers/" + id, {{"connection_id", fake_->connection_id()},
                                                     {"tags", {"dialer", "campaign-7"}},
                                                     {"customer_reference", "ref-1"},
                                                     {"hd_voice_enabled", true}});
  ASSERT_EQ(a.status, 200u) << a.body;
  const json n = a.body_json().at("data");
  EXPECT_EQ(n.at("id"), id);
  EXPECT_EQ(n.at("connection_id"), fake_->connection_id());
  EXPECT_EQ(n.at("connection_name"), "dialer");
  EXPECT_EQ(n.at("tags"), (json{"dialer", "campaign-7"}));
  EXPECT_EQ(n.at("customer_reference"), "ref-1");
  EXPECT_EQ(get("/v2/phone_numbers/" + id).body_json().at("data"), n);
  EXPECT_EQ(phones_of(get("/v2/phone_numbers?filter[connection_id]=" + fake_->connection_id()).body_json()),
            (std::vector<std::string>{"+13035550100"}));
  EXPECT_EQ(phones_of(get("/v2/phone_numbers?filter[tag]=dialer").body_json()).size(), 1u);
  const auto owned = fake_->owned_numbers().at(0);
  EXPECT_EQ(owned.connection_id, fake_->connection_id());
  EXPECT_EQ(owned.tags, (std::vector<std::string>{"dialer", "campaign-7"}));

  // Only what is given changes; a bad type is refused.
  EXPECT_EQ(patch("/v2/phone_numbers/" + id, {{"connection_id", nullptr}}).body_json()["data"]["tags"].size(),
            2u);
  EXPECT_EQ(fake_->owned_numbers().at(0).connection_id, "");
  const answer refused = patch("/v2/phone_numbers/" + id, {{"tags", "dialer"}});
  EXPECT_EQ(refused.status, 422u);
  EXPECT_EQ(refused.pointer(), "/tags");
  EXPECT_EQ(patch("/v2/phone_numbers/1234", {{"tags", json::array()}}).code(), "10005");
  EXPECT_EQ(get("/v2/phone_numbers/1234").status, 404u);
  EXPECT_EQ(fake_->counters().numbers_updated, 2);
}

TEST_F(FakeTelnyxNumbers, DeleteReleasesTheNumberWhichIsOfferedAgain) {
  fake_telnyx_options o;
  o.available_numbers = {"+13035550100", "+13035550101"};
  o.owned_numbers = {"+13035550100"};
  start(o);
  const std::string id = fake_->owned_numbers().at(0).id;
  const answer a = del("/v2/phone_numbers/" + id);
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body_json()["data"]["status"], "deleted");
  EXPECT_EQ(a.body_json()["data"]["phone_number"], "+13035550100");
  EXPECT_TRUE(fake_->owned_numbers().empty());
  EXPECT_TRUE(phones_of(get("/v2/phone_numbers").body_json()).empty());
  EXPECT_EQ(get("/v2/phone_numbers/" + id).code(), "10005");
  EXPECT_EQ(del("/v2/phone_numbers/" + id).status, 404u);
  EXPECT_EQ(phones_of(get("/v2/available_phone_numbers").body_json()),
            (std::vector<std::string>{"+13035550100", "+13035550101"}));
  // And it can be ordered again, under a new id.
  const answer again = post("/v2/number_orders", {{"phone_numbers", {{{"phone_number", "+13035550100"}}}}});
  ASSERT_EQ(again.status, 200u);
  EXPECT_NE(again.body_json()["data"]["phone_numbers"][0]["id"], id);
  EXPECT_EQ(fake_->counters().numbers_deleted, 1);
}

TEST_F(FakeTelnyxNumbers, TheApplicationIsReadAndUpdated) {
  fake_telnyx_options o;
  o.webhook_event_url = "https://old.example.com/hooks";
  start(o);
  const std::string app = "/v2/call_control_applications/" + fake_->connection_id();
  const json got = get(app).body_json().at("data");
  EXPECT_EQ(got.at("id"), fake_->connection_id());
  EXPECT_EQ(got.at("record_type"), "call_control_application");
  EXPECT_EQ(got.at("application_name"), "dialer");
  EXPECT_EQ(got.at("webhook_event_url"), "https://old.example.com/hooks");
  EXPECT_EQ(got.at("webhook_api_version"), "2");
  EXPECT_EQ(got.at("active"), true);

  // Both application_name and webhook_event_url are required.
  const answer missing = patch(app, {{"webhook_event_url", hooks_.url("/new")}});
  EXPECT_EQ(missing.status, 422u);
  EXPECT_EQ(missing.code(), "10004");
  EXPECT_EQ(missing.pointer(), "/application_name");
  const answer both_missing = patch(app, json::object());
  EXPECT_EQ(both_missing.body_json()["errors"].size(), 2u);
  EXPECT_EQ(patch(app, {{"application_name", "dialer"}, {"webhook_event_url", "not a url"}}).pointer(),
            "/webhook_event_url");
  EXPECT_EQ(fake_->application_webhook_url(), "https://old.example.com/hooks");

  const answer a = patch(app, {{"application_name", "dialer-2"},
                               {"webhook_event_url", hooks_.url("/new")},
                               {"webhook_timeout_secs", 10},
                               {"dtmf_type", "Inband"}});
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body_json()["data"]["application_name"], "dialer-2");
  EXPECT_EQ(a.body_json()["data"]["webhook_event_url"], hooks_.url("/new"));
  EXPECT_EQ(a.body_json()["data"]["webhook_timeout_secs"], 10);
  EXPECT_EQ(fake_->application_webhook_url(), hooks_.url("/new"));
  EXPECT_EQ(get(app).body_json()["data"]["application_name"], "dialer-2");

  // New calls without a webhook_url go to the new URL.
  const std::string id = dial(without(dial_to("+15551230000"), "webhook_url"));
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  EXPECT_EQ(hooks_.of(id).at(0).target, "/new");

  for (const answer& other :
       {get("/v2/call_control_applications/42"),
        patch("/v2/call_control_applications/42",
              {{"application_name", "x"}, {"webhook_event_url", "https://x.example.com"}})}) {
    EXPECT_EQ(other.status, 404u);
    EXPECT_EQ(other.code(), "10005");
  }
  const auto n = fake_->counters();
  EXPECT_EQ(n.requests.at("get_application"), 3);
  EXPECT_EQ(n.requests.at("update_application"), 5);
}

// ---- transfers and incoming calls ----

class FakeTelnyxCommands : public FakeTelnyx {
 protected:
  // Until the receiver has a webhook of that type for that call.
  bool got(const std::string& id, const std::string& type) {
    return hooks_.wait_for([&](const std::vector<webhook>& all) {
      return std::any_of(all.begin(), all.end(), [&](const webhook& w) {
        return w.j.is_object() && w.type() == type && w.payload().value("call_control_id", "") == id;
      });
    });
  }
  answer command(const std::string& id, const std::string& action, const json& body) {
    return post(path(id) + "/actions/" + action, body);
  }
  // A dialed call, once its call.answered has come.
  std::string answered_call() {
    const std::string id = dial(dial_to("+15551230000"));
    EXPECT_TRUE(got(id, "call.answered"));
    return id;
  }
  // An incoming call, once its call.initiated has come.
  std::string incoming(const std::string& from = "+15559870001", const std::string& to = "+12125550100") {
    const std::string id = fake_->inbound_call(from, to);
    EXPECT_TRUE(got(id, "call.initiated"));
    return id;
  }
  static std::string state_of(const std::string& s) { return http::base64(s); }
  [[nodiscard]] std::vector<unsigned> statuses() const {
    std::vector<unsigned> out;
    for (const auto& c : fake_->commands()) out.push_back(c.status);
    return out;
  }
};

class FakeTelnyxTransfer : public FakeTelnyxCommands {};
class FakeTelnyxInbound : public FakeTelnyxCommands {};

using headers = std::vector<std::pair<std::string, std::string>>;

TEST_F(FakeTelnyxTransfer, AnAnsweredCallGetsTheAgentsLegWhichHangsUpRightAfterIt) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  o.talk = 1s;  // time enough to transfer before the callee hangs up
  start(o);
  const std::string id = answered_call();
  const json body = {{"to", "sip:agent-7@pbx.example.com"},
                     {"client_state", state_of("transferring")},
                     {"target_leg_client_state", state_of("agent-7")},
                     {"command_id", "transfer-1"},
                     {"custom_headers", {{{"name", "X-Campaign"}, {"value", "c7"}}}},
                     {"timeout_secs", 30},
                     {"webhook_url_method", "POST"},
                     {"mute_dtmf", "none"}};  // tolerated
  const auto before = std::chrono::system_clock::now();
  const answer a = command(id, "transfer", body);
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body_json(), (json{{"data", {{"result", "ok"}}}}));

  const auto s = fake_->call(id);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->is_alive);
  EXPECT_EQ(s->state, "answered");
  EXPECT_EQ(s->direction, "outgoing");
  EXPECT_EQ(s->transfer_to, "sip:agent-7@pbx.example.com");
  EXPECT_EQ(s->transfer_custom_headers, (headers{{"X-Campaign", "c7"}}));
  EXPECT_EQ(s->transfer_target_leg_client_state, state_of("agent-7"));
  EXPECT_EQ(s->transfers, 1);
  const std::string leg = s->agent_leg_id;
  ASSERT_FALSE(leg.empty());
  EXPECT_NE(leg, id);

  const auto legs = fake_->agent_legs();
  ASSERT_EQ(legs.size(), 1u);
  const auto& b = legs[0];
  EXPECT_EQ(b.leg.call_control_id, leg);
  EXPECT_EQ(b.transferred_call_control_id, id);
  EXPECT_TRUE(b.answers);
  EXPECT_EQ(b.leg.to, "sip:agent-7@pbx.example.com");
  EXPECT_EQ(b.leg.from, "+15551230000");             // the transferred call's `to`
  EXPECT_EQ(b.leg.webhook_url, hooks_.url("/app"));  // the application's: the transfer gave none
  EXPECT_EQ(b.leg.client_state, state_of("agent-7"));
  EXPECT_EQ(b.leg.call_session_id, s->placed.call_session_id);
  EXPECT_NE(b.leg.call_leg_id, s->placed.call_leg_id);
  EXPECT_EQ(b.leg.connection_id, fake_->connection_id());
  EXPECT_EQ(b.leg.custom_headers, s->transfer_custom_headers);
  EXPECT_GE(b.leg.created_at, before);
  EXPECT_EQ(fake_->placed().size(), 1u);  // the agent's leg is no dial
  EXPECT_EQ(fake_->call(leg)->transferred_from, id);
  EXPECT_EQ(fake_->call(leg)->direction, "outgoing");

  ASSERT_TRUE(fake_->wait_for_hangups(2, patience));
  const auto got_a = hooks_.of(id);
  ASSERT_EQ(types(got_a), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  const json a_hangup = got_a[2].payload();
  EXPECT_EQ(a_hangup["hangup_cause"], "normal_clearing");
  EXPECT_EQ(a_hangup["hangup_source"], "callee");
  EXPECT_EQ(a_hangup["client_state"], state_of("transferring"));  // the transfer's, from then on
  EXPECT_EQ(fake_->call(id)->duration, 1000);  // at its usual time: talk 1 s, at the default scale
  const auto got_b = hooks_.of(leg);
  ASSERT_EQ(types(got_b), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  for (const auto& w : got_b) {
    SCOPED_TRACE(w.type());
    EXPECT_EQ(w.target, "/app");
    EXPECT_TRUE(signed_rightly(w));
    const json& pl = w.payload();
    EXPECT_EQ(pl["call_control_id"], leg);
    EXPECT_EQ(pl["client_state"], state_of("agent-7"));
    EXPECT_EQ(pl["call_session_id"], s->placed.call_session_id);
    EXPECT_EQ(pl["to"], "sip:agent-7@pbx.example.com");
    EXPECT_EQ(pl["from"], "+15551230000");
    EXPECT_EQ(pl["direction"], "outgoing");
    EXPECT_EQ(pl["connection_id"], fake_->connection_id());
  }
  EXPECT_EQ(got_b[0].payload()["state"], "bridging");
  EXPECT_EQ(got_b[1].payload()["state"], "answered");
  const json& b_hangup = got_b[2].payload();
  EXPECT_EQ(b_hangup["hangup_cause"], "normal_clearing");
  EXPECT_EQ(b_hangup["sip_hangup_cause"], "200");
  EXPECT_GE(b_hangup["end_time"].get<std::string>(), a_hangup["end_time"].get<std::string>());  // right after
  EXPECT_LT(
      got_b[1].j["data"]["occurred_at"].get<std::string>(),
      got_a[2].j["data"]["occurred_at"].get<std::string>());  // the agent answered while the call was up
  EXPECT_FALSE(fake_->call(leg)->is_alive);
  EXPECT_EQ(get(path(leg)).body_json()["data"]["is_alive"], false);

  const auto commands = fake_->commands();
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].call_control_id, id);
  EXPECT_EQ(commands[0].action, "transfer");
  EXPECT_EQ(json::parse(commands[0].body_json), body);
  EXPECT_EQ(commands[0].status, 200u);
  EXPECT_FALSE(commands[0].duplicate);
  EXPECT_GE(commands[0].at, before);
  const auto n = fake_->counters();
  EXPECT_EQ(n.requests.at("transfer"), 1);
  EXPECT_EQ(n.transfers, 1);
  EXPECT_EQ(n.calls_created, 1);
  EXPECT_TRUE(fake_->wait_for_settled(2, patience));
}

TEST_F(FakeTelnyxTransfer, AnAgentWhoRefusesHangsUpAndTheCallStaysUp) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  o.talk = 10min;  // up until hung up
  o.agent_answers = false;
  start(o);
  const std::string id = answered_call();
  ASSERT_EQ(command(id, "transfer",
                    {{"to", "+15557770001"},
                     {"target_leg_client_state", state_of("agent-1")},
                     {"webhook_url", hooks_.url("/agents")}})
                .status,
            200u);
  const std::string refused = fake_->call(id)->agent_leg_id;
  ASSERT_TRUE(got(refused, "call.hangup"));
  const auto got_b = hooks_.of(refused);
  ASSERT_EQ(types(got_b), (std::vector<std::string>{"call.initiated", "call.hangup"}));
  EXPECT_EQ(got_b[0].target, "/agents");  // the transfer's webhook_url
  const json& hangup = got_b[1].payload();
  EXPECT_EQ(hangup["hangup_cause"], "call_rejected");
  EXPECT_EQ(hangup["sip_hangup_cause"], "603");
  EXPECT_EQ(hangup["hangup_source"], "callee");
  EXPECT_EQ(hangup["client_state"], state_of("agent-1"));
  EXPECT_EQ(fake_->call(refused)->duration, 0);
  EXPECT_FALSE(fake_->agent_legs().at(0).answers);
  EXPECT_EQ(fake_->agent_legs().at(0).leg.webhook_url, hooks_.url("/agents"));

  // The transferred call is still up.
  EXPECT_TRUE(fake_->call(id)->is_alive);
  EXPECT_EQ(get(path(id)).body_json()["data"]["is_alive"], true);
  EXPECT_EQ(types(hooks_.of(id)), (std::vector<std::string>{"call.initiated", "call.answered"}));

  // Another agent answers; hanging up the call hangs up the agent right after.
  fake_->set_agent_answers(true);
  ASSERT_EQ(command(id, "transfer", {{"to", "+15557770002"}}).status, 200u);
  const std::string agent = fake_->call(id)->agent_leg_id;
  EXPECT_NE(agent, refused);
  ASSERT_TRUE(got(agent, "call.answered"));
  ASSERT_EQ(command(id, "hangup", json::object()).status, 200u);
  ASSERT_TRUE(fake_->wait_for_hangups(3, patience));
  const auto got_agent = hooks_.of(agent);
  ASSERT_EQ(types(got_agent), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  EXPECT_EQ(got_agent[2].payload()["hangup_cause"], "normal_clearing");
  EXPECT_FALSE(got_agent[0].payload().contains("client_state"));  // no target_leg_client_state given
  EXPECT_EQ(got_agent[0].target, "/app");
  EXPECT_EQ(fake_->call(id)->hangup_cause, "normal_clearing");
  EXPECT_EQ(fake_->call(id)->transfers, 2);
  EXPECT_EQ(fake_->agent_legs().size(), 2u);
  EXPECT_EQ(fake_->counters().transfers, 2);
}

TEST_F(FakeTelnyxTransfer, TheAgentHangingUpEndsTheTransferredCall) {
  fake_telnyx_options o;
  o.talk = 10min;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const std::string id = answered_call();
  ASSERT_EQ(command(id, "transfer", {{"to", "+15557770001"}}).status, 200u);
  const std::string agent = fake_->call(id)->agent_leg_id;
  ASSERT_TRUE(got(agent, "call.answered"));
  ASSERT_EQ(command(agent, "hangup", json::object()).status, 200u);
  ASSERT_TRUE(fake_->wait_for_hangups(2, patience));
  const auto b = fake_->call(agent);
  EXPECT_EQ(b->hangup_cause, "normal_clearing");
  EXPECT_EQ(b->hangup_source, "caller");
  const auto a = fake_->call(id);
  EXPECT_FALSE(a->is_alive);
  EXPECT_EQ(a->hangup_cause, "normal_clearing");
  EXPECT_EQ(a->sip_hangup_cause, "200");
  EXPECT_EQ(a->hangup_source, "caller");
  EXPECT_GE(*a->duration, 1);
  EXPECT_EQ(types(hooks_.of(id)),
            (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
}

TEST_F(FakeTelnyxTransfer, AnAgentWhoseTalkIsOverHangsUpAndEndsTheTransferredCall) {
  fake_telnyx_options o;
  o.talk = 10min;  // the callee would stay: the end must be the agent's
  o.agent_talk = 50ms;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const std::string id = answered_call();
  ASSERT_EQ(command(id, "transfer", {{"to", "+15557770001"}}).status, 200u);
  const std::string agent = fake_->call(id)->agent_leg_id;
  ASSERT_TRUE(fake_->wait_for_hangups(2, patience));
  const auto b = fake_->call(agent);
  EXPECT_EQ(b->hangup_cause, "normal_clearing");
  EXPECT_EQ(b->hangup_source, "callee");  // the agent's own
  EXPECT_EQ(types(hooks_.of(agent)), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  const auto a = fake_->call(id);
  EXPECT_FALSE(a->is_alive);
  EXPECT_EQ(a->hangup_cause, "normal_clearing");
  EXPECT_EQ(a->hangup_source, "caller");
  EXPECT_EQ(types(hooks_.of(id)), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  EXPECT_EQ(fake_->commands().size(), 1u);  // the transfer only: nobody sent a hangup
}

TEST_F(FakeTelnyxTransfer, AnEndedCallCancelsItsRingingAgent) {
  fake_telnyx_options o;
  o.ring = 1s;  // the agent still rings when the call is hung up
  o.talk = 10min;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const std::string id = answered_call();
  ASSERT_EQ(command(id, "transfer", {{"to", "+15557770001"}}).status, 200u);
  ASSERT_EQ(command(id, "hangup", json::object()).status, 200u);
  const std::string agent = fake_->call(id)->agent_leg_id;
  ASSERT_TRUE(fake_->wait_for_hangups(2, patience));
  const auto got_b = hooks_.of(agent);
  ASSERT_EQ(types(got_b), (std::vector<std::string>{"call.initiated", "call.hangup"}));
  EXPECT_EQ(got_b[1].payload()["hangup_cause"], "originator_cancel");
  EXPECT_EQ(got_b[1].payload()["sip_hangup_cause"], "487");
  EXPECT_EQ(fake_->call(agent)->duration, 0);
}

TEST_F(FakeTelnyxTransfer, RefusedOnAnUnansweredAnEndedOrAnUnknownCall) {
  fake_telnyx_options o;
  o.ring = 10min;  // never answered
  start(o);
  const std::string id = dial(dial_to("+15551230000"));
  const json body = {{"to", "+15557770001"}};
  const answer ringing = command(id, "transfer", body);
  EXPECT_EQ(ringing.status, 422u) << ringing.body;
  EXPECT_EQ(ringing.code(), "90015");
  EXPECT_EQ(ringing.body_json()["errors"][0]["title"], "Invalid call state");
  ASSERT_EQ(command(id, "hangup", json::object()).status, 200u);
  const answer ended = command(id, "transfer", body);
  EXPECT_EQ(ended.status, 422u);
  EXPECT_EQ(ended.code(), "90018");
  EXPECT_EQ(ended.body_json()["errors"][0]["title"], "Call has already ended");
  const answer unknown = command("v3:nope", "transfer", body);
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(unknown.code(), "10005");
  EXPECT_TRUE(fake_->agent_legs().empty());
  EXPECT_EQ(fake_->counters().transfers, 0);
  EXPECT_EQ(fake_->call(id)->transfer_to, "");
  EXPECT_EQ(statuses(), (std::vector<unsigned>{422, 200, 422, 404}));
  EXPECT_EQ(fake_->commands().at(3).call_control_id, "v3:nope");
}

TEST_F(FakeTelnyxTransfer, ItsParametersAreChecked) {
  fake_telnyx_options o;
  o.talk = 10min;
  start(o);
  const std::string id = answered_call();
  const json valid = {{"to", "+15557770001"}};
  const struct {
    const char* why;
    json body;
    std::string code, pointer;
  } cases[] = {
      {"no to", json::object(), "10004", "/to"},
      {"to a number", {{"to", 15557770001LL}}, "10015", "/to"},
      {"to without +", {{"to", "15557770001"}}, "10015", "/to"},
      {"to too short", {{"to", "+1555"}}, "10015", "/to"},
      {"to an empty SIP URI", {{"to", "sip:"}}, "10015", "/to"},
      {"to with bad DTMF", {{"to", "+15557770001,12x"}}, "10015", "/to"},
      {"from not E.164", with(valid, "from", "5551230000"), "10016", "/from"},
      {"client_state not base64", with(valid, "client_state", "%%%"), "10015", "/client_state"},
      {"target_leg_client_state not base64", with(valid, "target_leg_client_state", "not base64!"), "10015",
       "/target_leg_client_state"},
      {"command_id a number", with(valid, "command_id", 7), "10015", "/command_id"},
      {"custom_headers without value", with(valid, "custom_headers", {{{"name", "X-A"}}}), "10015",
       "/custom_headers"},
      {"webhook_url not http", with(valid, "webhook_url", "ftp://x/y"), "10015", "/webhook_url"},
      {"webhook_url_method PUT", with(valid, "webhook_url_method", "PUT"), "10015", "/webhook_url_method"},
      {"timeout_secs 4", with(valid, "timeout_secs", 4), "10015", "/timeout_secs"},
      {"timeout_secs 601", with(valid, "timeout_secs", 601), "10015", "/timeout_secs"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    const answer a = command(id, "transfer", c.body);
    EXPECT_EQ(a.status, 422u) << a.body;
    EXPECT_EQ(a.code(), c.code) << a.body;
    EXPECT_EQ(a.pointer(), c.pointer) << a.body;
  }
  const answer empty = command(id, "transfer", json(nullptr));
  EXPECT_EQ(empty.status, 422u);
  EXPECT_EQ(empty.pointer(), "/to");
  const answer garbled =
      client(fake_->port()).request(bhttp::verb::post, path(id) + "/actions/transfer", "to=+1555", bearer());
  EXPECT_EQ(garbled.status, 400u);
  EXPECT_EQ(garbled.code(), "10015");
  EXPECT_TRUE(fake_->agent_legs().empty());
  EXPECT_EQ(fake_->commands().size(), std::size(cases) + 2);

  // A number with DTMF to send, and a sips: URI, are fine; and so is a from.
  EXPECT_EQ(command(id, "transfer", {{"to", "+15557770001,123#"}}).status, 200u);
  EXPECT_EQ(
      command(id, "transfer", {{"to", "sips:agent@pbx.example.com;transport=tls"}, {"from", "+15005550006"}})
          .status,
      200u);
  const auto legs = fake_->agent_legs();
  ASSERT_EQ(legs.size(), 2u);
  EXPECT_EQ(legs[0].leg.to, "+15557770001,123#");
  EXPECT_EQ(legs[1].leg.from, "+15005550006");
  EXPECT_EQ(fake_->call(id)->agent_leg_id, legs[1].leg.call_control_id);  // the last one
}

TEST_F(FakeTelnyxTransfer, ARepeatedCommandIdIsTakenOnce) {
  fake_telnyx_options o;
  o.talk = 10min;
  start(o);
  const std::string id = answered_call();
  const json body = {{"to", "+15557770001"}, {"command_id", "transfer-1"}};
  ASSERT_EQ(command(id, "transfer", body).status, 200u);
  const answer again = command(id, "transfer", body);
  ASSERT_EQ(again.status, 200u);
  EXPECT_EQ(again.body_json(), (json{{"data", {{"result", "ok"}}}}));
  EXPECT_EQ(fake_->agent_legs().size(), 1u);
  ASSERT_EQ(command(id, "transfer", with(body, "command_id", "transfer-2")).status, 200u);
  EXPECT_EQ(fake_->agent_legs().size(), 2u);
  // Any command with a command_id the call has taken is ignored: a hangup too.
  ASSERT_EQ(command(id, "hangup", {{"command_id", "transfer-1"}}).status, 200u);
  EXPECT_TRUE(fake_->call(id)->is_alive);
  ASSERT_EQ(command(id, "hangup", json::object()).status, 200u);
  // Once the call has ended, the same command is still answered ok; a new one is refused.
  EXPECT_EQ(command(id, "transfer", body).status, 200u);
  EXPECT_EQ(command(id, "transfer", with(body, "command_id", "transfer-3")).code(), "90018");
  EXPECT_EQ(fake_->agent_legs().size(), 2u);
  const auto commands = fake_->commands();
  ASSERT_EQ(commands.size(), 7u);
  std::vector<bool> duplicates;
  for (const auto& c : commands) duplicates.push_back(c.duplicate);
  EXPECT_EQ(duplicates, (std::vector<bool>{false, true, false, true, false, true, false}));
  EXPECT_EQ(statuses(), (std::vector<unsigned>{200, 200, 200, 200, 200, 200, 422}));
  const auto n = fake_->counters();
  EXPECT_EQ(n.duplicate_call_commands, 2);
  EXPECT_EQ(n.duplicate_hangup_commands, 1);
  EXPECT_EQ(n.transfers, 2);
}

TEST_F(FakeTelnyxTransfer, TheCommandRoutesWantTheBearerKey) {
  start();
  const std::string id = fake_->inbound_call("+15559870001", "+12125550100");
  for (const char* action : {"transfer", "answer", "reject"}) {
    SCOPED_TRACE(action);
    const answer a = request(bhttp::verb::post, path(id) + "/actions/" + action,
                             {{"to", "+15557770001"}, {"cause", "USER_BUSY"}}, "Bearer not-the-key");
    EXPECT_EQ(a.status, 401u);
    EXPECT_EQ(a.code(), "10009");
    EXPECT_EQ(fake_->counters().requests.at(action), 1);
  }
  EXPECT_TRUE(fake_->commands().empty());  // a command is kept once it passed authentication
  EXPECT_EQ(fake_->call(id)->state, "parked");
  for (const char* action : {"transfer", "answer", "reject"}) {  // other methods are no route
    EXPECT_EQ(get(path(id) + "/actions/" + action).code(), "10005");
  }
}

TEST_F(FakeTelnyxInbound, AnIncomingCallPostsASignedCallInitiatedToTheApplication) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const auto before = std::chrono::system_clock::now();
  const std::string id = fake_->inbound_call("+15559870001", "+12125550100");
  EXPECT_TRUE(std::regex_match(id, std::regex("v3:[A-Za-z0-9_-]{22,}"))) << id;
  ASSERT_TRUE(got(id, "call.initiated"));
  const auto got_in = hooks_.of(id);
  ASSERT_EQ(got_in.size(), 1u);
  const webhook& w = got_in[0];
  EXPECT_EQ(w.method, "POST");
  EXPECT_EQ(w.target, "/app");
  EXPECT_EQ(w.host, hooks_.authority());
  EXPECT_EQ(w.content_type, "application/json");
  EXPECT_TRUE(signed_rightly(w));
  EXPECT_EQ(w.j.at("meta"), (json{{"attempt", 1}, {"delivered_to", hooks_.url("/app")}}));
  const json& data = w.j.at("data");
  EXPECT_EQ(data.at("record_type"), "event");
  EXPECT_TRUE(std::regex_match(data.at("id").get<std::string>(), uuid));
  EXPECT_TRUE(std::regex_match(data.at("occurred_at").get<std::string>(), iso_ms));
  const json& pl = w.payload();
  EXPECT_EQ(pl.at("call_control_id"), id);
  EXPECT_TRUE(std::regex_match(pl.at("call_leg_id").get<std::string>(), uuid));
  EXPECT_TRUE(std::regex_match(pl.at("call_session_id").get<std::string>(), uuid));
  EXPECT_EQ(pl.at("connection_id"), fake_->connection_id());
  EXPECT_EQ(pl.at("from"), "+15559870001");
  EXPECT_EQ(pl.at("to"), "+12125550100");
  EXPECT_EQ(pl.at("direction"), "incoming");
  EXPECT_EQ(pl.at("state"), "parked");
  EXPECT_TRUE(std::regex_match(pl.at("start_time").get<std::string>(), iso_time));
  EXPECT_FALSE(pl.contains("client_state"));

  const auto s = fake_->call(id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->direction, "incoming");
  EXPECT_EQ(s->state, "parked");
  EXPECT_TRUE(s->is_alive);
  EXPECT_EQ(s->placed.from, "+15559870001");
  EXPECT_EQ(s->placed.to, "+12125550100");
  EXPECT_EQ(s->placed.webhook_url, hooks_.url("/app"));
  EXPECT_EQ(s->placed.connection_id, fake_->connection_id());
  EXPECT_GE(s->placed.created_at, before);
  EXPECT_FALSE(s->answer);
  const json status = get(path(id)).body_json().at("data");
  EXPECT_EQ(status.at("is_alive"), true);
  EXPECT_FALSE(status.contains("client_state"));
  EXPECT_TRUE(fake_->placed().empty());  // not a dial
  EXPECT_TRUE(fake_->wait_for([](const fake_telnyx_counters& c) { return c.webhooks_sent == 1; }, patience));
  EXPECT_EQ(fake_->counters().inbound_calls, 1);
  EXPECT_EQ(fake_->counters().calls_created, 0);

  // To the application's URL as it is now, through the callback authority when there is one.
  const std::string url = "https://engine.example.com/telnyx/inbound";
  ASSERT_EQ(patch("/v2/call_control_applications/" + fake_->connection_id(),
                  {{"application_name", "dialer"}, {"webhook_event_url", url}})
                .status,
            200u);
  fake_->set_callback_authority(hooks_.authority());
  const std::string second = fake_->inbound_call("sip:customer@example.org", "+12125550101");
  ASSERT_TRUE(got(second, "call.initiated"));
  const webhook w2 = hooks_.of(second).at(0);
  EXPECT_EQ(w2.host, "engine.example.com");
  EXPECT_EQ(w2.target, "/telnyx/inbound");
  EXPECT_EQ(w2.j["meta"]["delivered_to"], url);
  EXPECT_EQ(w2.payload()["from"], "sip:customer@example.org");
  EXPECT_TRUE(signed_rightly(w2));
  EXPECT_NE(fake_->call(second)->placed.call_session_id, s->placed.call_session_id);
}

TEST_F(FakeTelnyxInbound, AnAnswerIsRecordedAndTheCallerHangsUpAfterTalking) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const std::string id = incoming();
  const json body = {{"client_state", state_of("inbound-1")},
                     {"command_id", "answer-1"},
                     {"stream_url", "wss://media.example.com/in"},
                     {"stream_track", "inbound_track"},
                     {"stream_bidirectional_mode", "rtp"},
                     {"webhook_url", hooks_.url("/answered")},
                     {"custom_headers", {{{"name", "X-Queue"}, {"value", "sales"}}}},
                     {"send_silence_when_idle", true}};  // tolerated
  const answer a = command(id, "answer", body);
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body_json(), (json{{"data", {{"result", "ok"}}}}));
  ASSERT_TRUE(fake_->wait_for_hangups(1, patience));
  const auto got_in = hooks_.of(id);
  ASSERT_EQ(types(got_in), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  EXPECT_EQ(got_in[0].target, "/app");
  EXPECT_EQ(got_in[1].target, "/answered");  // the answer's webhook_url from then on
  EXPECT_EQ(got_in[2].target, "/answered");
  EXPECT_EQ(got_in[2].j["meta"]["delivered_to"], hooks_.url("/answered"));
  for (const auto& w : got_in) EXPECT_TRUE(signed_rightly(w));
  const json& answered = got_in[1].payload();
  EXPECT_EQ(answered["state"], "answered");
  EXPECT_EQ(answered["client_state"], state_of("inbound-1"));
  EXPECT_EQ(answered["direction"], "incoming");
  const json& hangup = got_in[2].payload();
  EXPECT_EQ(hangup["hangup_cause"], "normal_clearing");
  EXPECT_EQ(hangup["hangup_source"], "caller");
  EXPECT_EQ(hangup["sip_hangup_cause"], "unspecified");
  EXPECT_EQ(hangup["client_state"], state_of("inbound-1"));

  const auto s = fake_->call(id);
  ASSERT_TRUE(s && s->answer);
  EXPECT_EQ(s->answer->client_state, state_of("inbound-1"));
  EXPECT_EQ(s->answer->command_id, "answer-1");
  EXPECT_EQ(s->answer->stream_url, "wss://media.example.com/in");
  EXPECT_EQ(s->answer->stream_track, "inbound_track");
  EXPECT_EQ(s->answer->stream_bidirectional_mode, "rtp");
  EXPECT_EQ(s->answer->webhook_url, hooks_.url("/answered"));
  EXPECT_EQ(s->answer->webhook_url_method, "");
  EXPECT_EQ(s->answer->custom_headers, (headers{{"X-Queue", "sales"}}));
  EXPECT_EQ(s->state, "hangup");
  EXPECT_EQ(s->duration, 50);                            // talk 50 ms at the default scale
  EXPECT_EQ(s->placed.webhook_url, hooks_.url("/app"));  // where it started

  ASSERT_TRUE(fake_->wait_for_commands(1, patience));
  const auto commands = fake_->commands();
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].call_control_id, id);
  EXPECT_EQ(commands[0].action, "answer");
  EXPECT_EQ(json::parse(commands[0].body_json), body);
  EXPECT_EQ(commands[0].status, 200u);
  const auto n = fake_->counters();
  EXPECT_EQ(n.inbound_answered, 1);
  EXPECT_EQ(n.requests.at("answer"), 1);
}

TEST_F(FakeTelnyxInbound, ARejectEndsTheCallWithItsCause) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const struct {
    std::string cause, hangup_cause, sip;
  } cases[] = {{"CALL_REJECTED", "call_rejected", "603"},
               {"USER_BUSY", "user_busy", "486"},
               {"NOT_FOUND", "not_found", "404"},
               {"TEMPORARILY_UNAVAILABLE", "unspecified", "480"}};
  std::vector<std::string> ids;
  for (const auto& c : cases) {
    ids.push_back(incoming());
    const answer a = command(ids.back(), "reject", {{"cause", c.cause}, {"client_state", state_of(c.cause)}});
    EXPECT_EQ(a.status, 200u) << a.body;
    EXPECT_EQ(a.body_json(), (json{{"data", {{"result", "ok"}}}}));
  }
  ASSERT_TRUE(fake_->wait_for_hangups(4, patience));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(cases[i].cause);
    const auto got_in = hooks_.of(ids[i]);
    ASSERT_EQ(types(got_in), (std::vector<std::string>{"call.initiated", "call.hangup"}));
    const json& hangup = got_in[1].payload();
    EXPECT_EQ(hangup["hangup_cause"], cases[i].hangup_cause);
    EXPECT_EQ(hangup["sip_hangup_cause"], cases[i].sip);
    EXPECT_EQ(hangup["hangup_source"], "callee");
    EXPECT_EQ(hangup["direction"], "incoming");
    EXPECT_EQ(hangup["client_state"], state_of(cases[i].cause));
    const auto s = fake_->call(ids[i]);
    EXPECT_EQ(s->reject_cause, cases[i].cause);
    EXPECT_EQ(s->duration, 0);
    EXPECT_FALSE(s->is_alive);
    EXPECT_FALSE(s->answer);
  }
  const auto n = fake_->counters();
  EXPECT_EQ(n.inbound_rejected, 4);
  EXPECT_EQ(n.requests.at("reject"), 4);
  EXPECT_EQ(n.hangups, 0);  // a reject is no hangup command
}

TEST_F(FakeTelnyxInbound, ARejectWantsOneOfTheCauses) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const std::string id = incoming();
  const struct {
    const char* why;
    json body;
    std::string code, pointer;
  } cases[] = {
      {"no cause", json::object(), "10004", "/cause"},
      {"no body", json(nullptr), "10004", "/cause"},
      {"another cause", {{"cause", "BUSY"}}, "10015", "/cause"},
      {"lower case", {{"cause", "user_busy"}}, "10015", "/cause"},
      {"a number", {{"cause", 486}}, "10015", "/cause"},
      {"client_state not base64",
       {{"cause", "USER_BUSY"}, {"client_state", "%%%"}},
       "10015",
       "/client_state"},
      {"command_id a number", {{"cause", "USER_BUSY"}, {"command_id", 1}}, "10015", "/command_id"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    const answer a = command(id, "reject", c.body);
    EXPECT_EQ(a.status, 422u) << a.body;
    EXPECT_EQ(a.code(), c.code) << a.body;
    EXPECT_EQ(a.pointer(), c.pointer) << a.body;
  }
  EXPECT_EQ(fake_->call(id)->state, "parked");  // none was taken
  EXPECT_TRUE(fake_->call(id)->is_alive);
  EXPECT_EQ(statuses(), std::vector<unsigned>(std::size(cases), 422));
  EXPECT_EQ(command(id, "reject", {{"cause", "USER_BUSY"}}).status, 200u);
  EXPECT_EQ(fake_->call(id)->hangup_cause, "user_busy");
}

TEST_F(FakeTelnyxInbound, ACommandAfterAnAnswerOrARejectIsRefused) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  o.talk = 10min;  // the caller stays until hung up
  start(o);
  const std::string answered = incoming();
  ASSERT_EQ(command(answered, "answer", {{"command_id", "answer-1"}}).status, 200u);
  EXPECT_EQ(command(answered, "answer", {{"command_id", "answer-1"}}).status, 200u);  // the same: ignored
  const answer twice = command(answered, "answer", json::object());
  EXPECT_EQ(twice.status, 422u);
  EXPECT_EQ(twice.code(), "90015");
  EXPECT_EQ(twice.body_json()["errors"][0]["title"], "Invalid call state");
  EXPECT_EQ(command(answered, "reject", {{"cause", "USER_BUSY"}}).code(), "90015");
  EXPECT_TRUE(fake_->call(answered)->is_alive);
  EXPECT_EQ(fake_->call(answered)->state, "answered");
  ASSERT_TRUE(got(answered, "call.answered"));

  const std::string rejected = incoming("+15559870002");
  ASSERT_EQ(command(rejected, "reject", {{"cause", "CALL_REJECTED"}}).status, 200u);
  for (const auto& [action, body] :
       std::vector<std::pair<std::string, json>>{{"answer", json::object()},
                                                 {"reject", {{"cause", "USER_BUSY"}}},
                                                 {"transfer", {{"to", "+15557770001"}}},
                                                 {"hangup", json::object()}}) {
    SCOPED_TRACE(action);
    const answer a = command(rejected, action, body);
    EXPECT_EQ(a.status, 422u);
    EXPECT_EQ(a.code(), "90018");
    EXPECT_EQ(a.body_json()["errors"][0]["title"], "Call has already ended");
  }

  // An outgoing call is neither answered nor rejected by a command.
  const std::string dialed = dial(dial_to("+15551230000"));
  EXPECT_EQ(command(dialed, "answer", json::object()).code(), "90015");
  EXPECT_EQ(command(dialed, "reject", {{"cause", "USER_BUSY"}}).code(), "90015");
  EXPECT_EQ(command("v3:nope", "answer", json::object()).code(), "10005");
  EXPECT_EQ(command("v3:nope", "reject", {{"cause", "USER_BUSY"}}).code(), "10005");

  // A hangup ends the answered one: the fake's side is the callee.
  ASSERT_EQ(command(answered, "hangup", json::object()).status, 200u);
  const auto s = fake_->call(answered);
  EXPECT_EQ(s->hangup_cause, "normal_clearing");
  EXPECT_EQ(s->hangup_source, "callee");
  EXPECT_EQ(s->sip_hangup_cause, "unspecified");
  EXPECT_GE(*s->duration, 1);
  EXPECT_EQ(statuses(),
            (std::vector<unsigned>{200, 200, 422, 422, 200, 422, 422, 422, 422, 422, 422, 404, 404, 200}));
  EXPECT_TRUE(fake_->commands().at(1).duplicate);
  const auto n = fake_->counters();
  EXPECT_EQ(n.duplicate_call_commands, 1);
  EXPECT_EQ(n.inbound_answered, 1);
  EXPECT_EQ(n.inbound_rejected, 1);
}

TEST_F(FakeTelnyxInbound, ATransferOfAParkedCallIsAnsweredWhenTheAgentAnswers) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  start(o);
  const std::string id = incoming();
  ASSERT_EQ(command(id, "transfer",
                    {{"to", "sip:agent-3@pbx.example.com"}, {"target_leg_client_state", state_of("agent-3")}})
                .status,
            200u);
  const auto s = fake_->call(id);
  EXPECT_EQ(s->transfer_to, "sip:agent-3@pbx.example.com");
  EXPECT_EQ(s->transfer_target_leg_client_state, state_of("agent-3"));
  const std::string agent = s->agent_leg_id;
  ASSERT_TRUE(fake_->wait_for_hangups(2, patience));  // the caller hangs up after `talk`, then the agent
  const auto got_a = hooks_.of(id);
  ASSERT_EQ(types(got_a), (std::vector<std::string>{"call.initiated", "call.hangup"}));  // no call.answered
  const json& a_hangup = got_a[1].payload();
  EXPECT_EQ(a_hangup["hangup_cause"], "normal_clearing");
  EXPECT_EQ(a_hangup["hangup_source"], "caller");
  EXPECT_EQ(fake_->call(id)->duration, 50);
  const auto got_b = hooks_.of(agent);
  ASSERT_EQ(types(got_b), (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
  EXPECT_EQ(got_b[0].payload()["from"], "+12125550100");  // the incoming call's `to`
  EXPECT_EQ(got_b[0].payload()["client_state"], state_of("agent-3"));
  EXPECT_EQ(got_b[0].payload()["call_session_id"], got_a[0].payload()["call_session_id"]);
  EXPECT_EQ(got_b[2].payload()["hangup_cause"], "normal_clearing");
  EXPECT_GE(got_b[2].payload()["end_time"].get<std::string>(), a_hangup["end_time"].get<std::string>());
  EXPECT_FALSE(fake_->call(id)->answer);  // no answer command
  EXPECT_EQ(fake_->commands().at(0).action, "transfer");
  EXPECT_EQ(fake_->counters().transfers, 1);
}

TEST_F(FakeTelnyxInbound, ARefusedTransferLeavesTheCallParked) {
  fake_telnyx_options o;
  o.webhook_event_url = hooks_.url("/app");
  o.agent_answers = false;
  start(o);
  const std::string id = incoming();
  ASSERT_EQ(command(id, "transfer", {{"to", "+15557770001"}}).status, 200u);
  const std::string agent = fake_->call(id)->agent_leg_id;
  ASSERT_TRUE(got(agent, "call.hangup"));
  EXPECT_EQ(fake_->call(agent)->hangup_cause, "call_rejected");
  EXPECT_EQ(fake_->call(id)->state, "parked");
  EXPECT_TRUE(fake_->call(id)->is_alive);
  // Still parked: it can be answered.
  ASSERT_EQ(command(id, "answer", json::object()).status, 200u);
  ASSERT_TRUE(fake_->wait_for_hangups(2, patience));
  EXPECT_EQ(types(hooks_.of(id)),
            (std::vector<std::string>{"call.initiated", "call.answered", "call.hangup"}));
}

TEST_F(FakeTelnyxInbound, IncomingCallsNeedARunningFake) {
  {
    fake_telnyx idle;
    EXPECT_THROW(idle.inbound_call("+15559870001", "+12125550100"), std::logic_error);
  }
  start();
  EXPECT_THROW(fake_->inbound_call("", "+12125550100"), std::invalid_argument);
  EXPECT_THROW(fake_->inbound_call("+15559870001", ""), std::invalid_argument);
  // Without an application URL it has no webhooks; it waits parked all the same, and a hangup ends it.
  const std::string id = fake_->inbound_call("+15559870001", "+12125550100");
  EXPECT_EQ(fake_->call(id)->state, "parked");
  EXPECT_EQ(get(path(id)).body_json()["data"]["is_alive"], true);
  ASSERT_EQ(command(id, "hangup", json::object()).status, 200u);
  const auto s = fake_->call(id);
  EXPECT_EQ(s->hangup_cause, "normal_clearing");
  EXPECT_EQ(s->hangup_source, "callee");
  EXPECT_EQ(s->sip_hangup_cause, "unspecified");
  EXPECT_EQ(s->duration, 0);
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  EXPECT_EQ(fake_->counters().webhook_posts, 0);
  EXPECT_FALSE(fake_->wait_for_commands(2, 1ms));
  fake_->stop();
  EXPECT_THROW(fake_->inbound_call("+15559870001", "+12125550100"), std::logic_error);
}

}  // namespace
}  // namespace dialer::fakes
