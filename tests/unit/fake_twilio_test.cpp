// The fake Twilio (tests/fakes/fake_twilio.hpp) over real HTTP on loopback: the Calls resource's answers and
// errors, each call's life and its signed status callbacks (received by a small server in this file), paging,
// and every REST and callback fault. Nothing here sleeps: the tests wait on the fake's and the receiver's
// condition variables, with a generous timeout.
#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"
#include "tests/fakes/fake_twilio.hpp"

namespace dialer::fakes {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using http::query_params;
using namespace std::chrono_literals;

constexpr auto patience = 20s;  // the waits end as soon as what they wait for happens

std::string form(const query_params& params) {
  std::string out;
  for (const auto& [k, v] : params)
    out += (out.empty() ? "" : "&") + http::percent_encode(k) + "=" + http::percent_encode(v);
  return out;
}
std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + http::base64(user + ":" + password);
}
std::string value_of(const query_params& params, const std::string& name) {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

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
    if (method == bhttp::verb::post) req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
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

// One request the receiver got.
struct callback {
  std::string method, target, host, signature, content_type;
  query_params params;
  std::chrono::steady_clock::time_point at;
  [[nodiscard]] std::string operator[](const std::string& name) const { return value_of(params, name); }
  [[nodiscard]] bool has(const std::string& name) const {
    return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
  }
};

// The engine's side of the callbacks: a blocking HTTP server on loopback, one thread per connection, that
// records every request and answers 200 (or what refuse_next() says).
class callback_receiver {
 public:
  callback_receiver() : acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    accepting_ = std::thread([this] { accept_loop(); });
  }
  ~callback_receiver() {
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
  bool wait_for(const std::function<bool(const std::vector<callback>&)>& done) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, patience, [&] { return done(got_); });
  }
  [[nodiscard]] std::vector<callback> of(const std::string& call_sid) const {
    std::lock_guard lock(mutex_);
    std::vector<callback> out;
    for (const auto& c : got_)
      if (c["CallSid"] == call_sid) out.push_back(c);
    return out;
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
      callback c;
      c.method = std::string(req.method_string());
      c.target = std::string(req.target());
      c.host = std::string(req[bhttp::field::host]);
      c.signature = std::string(req["X-Twilio-Signature"]);
      c.content_type = std::string(req[bhttp::field::content_type]);
      c.at = std::chrono::steady_clock::now();
      if (req.method() == bhttp::verb::get) {
        if (auto t = http::split_target(c.target)) c.params = t->query;
      } else {
        c.params = http::parse_form(req.body()).value_or(query_params{});
      }
      unsigned status = 200;
      {
        std::lock_guard lock(mutex_);
        if (refuse_left_ > 0) {
          --refuse_left_;
          status = refuse_status_;
        }
        got_.push_back(std::move(c));
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
  std::vector<callback> got_;         // guarded by mutex_
  int refuse_left_ = 0;               // guarded by mutex_
  unsigned refuse_status_ = 0;        // guarded by mutex_
};

const std::regex rfc2822_date(R"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000)");

class FakeTwilio : public ::testing::Test {
 protected:
  fake_twilio& start(fake_twilio_options o = {}) {
    fake_ = std::make_unique<fake_twilio>(std::move(o));
    fake_->start();
    return *fake_;
  }
  [[nodiscard]] std::string calls() const {
    return "/2010-04-01/Accounts/" + fake_->account_sid() + "/Calls.json";
  }
  [[nodiscard]] std::string call_path(const std::string& sid) const {
    return "/2010-04-01/Accounts/" + fake_->account_sid() + "/Calls/" + sid + ".json";
  }
  [[nodiscard]] std::string auth() const { return basic(fake_->account_sid(), fake_->auth_token()); }
  answer post(const std::string& target, const query_params& params, const std::string& authorization = {}) {
    return client(fake_->port())
        .request(bhttp::verb::post, target, form(params), authorization.empty() ? auth() : authorization);
  }
  answer get(const std::string& target) {
    return client(fake_->port()).request(bhttp::verb::get, target, {}, auth());
  }

  [[nodiscard]] std::string status_url() const { return hooks_.url("/status?attempt=7"); }
  // A create request with every event asked for, its callbacks to hooks_.
  [[nodiscard]] query_params call_to(const std::string& to, const query_params& extra = {}) const {
    query_params p{{"To", to},
                   {"From", "+15005550006"},
                   {"Url", "https://example.com/twiml"},
                   {"StatusCallback", status_url()},
                   {"StatusCallbackEvent", "initiated"},
                   {"StatusCallbackEvent", "ringing"},
                   {"StatusCallbackEvent", "answered"},
                   {"StatusCallbackEvent", "completed"}};
    p.insert(p.end(), extra.begin(), extra.end());
    return p;
  }
  // Without any callback.
  [[nodiscard]] static query_params plain(const std::string& to) {
    return {{"To", to}, {"From", "+15005550006"}, {"Url", "https://example.com/twiml"}};
  }
  static query_params without(query_params p, const std::string& name) {
    std::erase_if(p, [&](const auto& kv) { return kv.first == name; });
    return p;
  }
  static query_params replaced(query_params p, const std::string& name, const std::string& value) {
    p = without(std::move(p), name);
    p.emplace_back(name, value);
    return p;
  }
  std::string create(const query_params& params) {
    const answer a = post(calls(), params);
    EXPECT_EQ(a.status, 201u) << a.body;
    return a.body_json().value("sid", "");
  }
  void expect_signed(const callback& c, const std::string& url) const {
    EXPECT_TRUE(http::twilio_signature_ok(fake_->auth_token(), url, c.params, c.signature))
        << c["CallStatus"] << " to " << url << " with signature " << c.signature;
  }
  [[nodiscard]] static std::vector<std::string> statuses(const std::vector<callback>& got) {
    std::vector<std::string> out;
    for (const auto& c : got) out.push_back(c["CallStatus"]);
    return out;
  }

  callback_receiver hooks_;  // outlives the fake
  std::unique_ptr<fake_twilio> fake_;
};

class FakeTwilioCallbacks : public FakeTwilio {};
class FakeTwilioFaults : public FakeTwilio {};

// ---- the REST answers ----

TEST_F(FakeTwilio, CreateAnswers201WithTheCallObjectAndRecordsTheCall) {
  start();
  const auto before = std::chrono::system_clock::now();
  const answer a = post(calls(), call_to("+15551230000"));
  const auto after = std::chrono::system_clock::now();
  ASSERT_EQ(a.status, 201u) << a.body;
  EXPECT_TRUE(a.header("content-type").starts_with("application/json"));
  const json j = a.body_json();
  const std::string sid = j.at("sid");
  EXPECT_TRUE(std::regex_match(sid, std::regex("CA[0-9a-f]{32}"))) << sid;
  EXPECT_EQ(j.at("account_sid"), fake_->account_sid());
  EXPECT_EQ(j.at("to"), "+15551230000");
  EXPECT_EQ(j.at("from"), "+15005550006");
  EXPECT_EQ(j.at("status"), "queued");
  EXPECT_EQ(j.at("direction"), "outbound-api");
  EXPECT_EQ(j.at("api_version"), "2010-04-01");
  EXPECT_TRUE(std::regex_match(j.at("date_created").get<std::string>(), rfc2822_date))
      << j.at("date_created");
  EXPECT_TRUE(std::regex_match(j.at("date_updated").get<std::string>(), rfc2822_date));
  for (const char* k : {"start_time", "end_time", "duration", "price", "answered_by"})
    EXPECT_TRUE(j.at(k).is_null()) << k;
  EXPECT_EQ(j.at("uri"), call_path(sid));
  EXPECT_TRUE(j.at("subresource_uris").is_object());

  const auto placed = fake_->placed();
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].sid, sid);
  EXPECT_EQ(placed[0].account_sid, fake_->account_sid());
  EXPECT_EQ(placed[0].to, "+15551230000");
  EXPECT_EQ(placed[0].url, "https://example.com/twiml");
  EXPECT_EQ(placed[0].status_callback, status_url());
  EXPECT_EQ(placed[0].attempt, 7);
  EXPECT_EQ(placed[0].fault, rest_fault::none);
  EXPECT_GE(placed[0].created_at, before);
  EXPECT_LE(placed[0].created_at, after);
  const auto counted = fake_->counters();
  EXPECT_EQ(counted.requests.at("create_call"), 1);
  EXPECT_EQ(counted.answers.at(201), 1);
}

TEST_F(FakeTwilio, AcceptsAnApiKeyAndRefusesWrongCredentialsWith20003) {
  fake_twilio_options o;
  const std::string key = "SK" + std::string(32, 'e');
  o.api_keys = {{key, "key-secret"}};
  start(o);
  EXPECT_EQ(post(calls(), call_to("+15551230000"), basic(key, "key-secret")).status, 201u);
  for (const auto& authorization :
       {basic(fake_->account_sid(), "not-the-token"), basic(key, "not-the-secret")}) {
    const answer a = post(calls(), call_to("+15551230000"), authorization);
    EXPECT_EQ(a.status, 401u);
    EXPECT_EQ(a.body_json().value("code", 0), 20003);
    EXPECT_EQ(a.body_json().value("status", 0), 401);
    EXPECT_EQ(a.body_json().value("more_info", ""), "https://www.twilio.com/docs/errors/20003");
    EXPECT_FALSE(a.header("www-authenticate").empty());
  }
  const answer anonymous =
      client(fake_->port()).request(bhttp::verb::post, calls(), form(call_to("+15551230000")), "");
  EXPECT_EQ(anonymous.status, 401u);
  EXPECT_EQ(fake_->placed().size(), 1u);
}

TEST_F(FakeTwilio, AnotherAccountOrAnUnknownCallIsNotFound) {
  start();
  const std::string other = "/2010-04-01/Accounts/AC" + std::string(32, 'f') + "/Calls.json";
  const std::string unknown = call_path("CA" + std::string(32, '0'));
  for (const answer& a :
       {post(other, call_to("+15551230000")), get(unknown), post(unknown, {{"Status", "canceled"}})}) {
    EXPECT_EQ(a.status, 404u) << a.body;
    EXPECT_EQ(a.body_json().value("code", 0), 20404);
    EXPECT_EQ(a.body_json().value("more_info", ""), "https://www.twilio.com/docs/errors/20404");
  }
  EXPECT_TRUE(fake_->placed().empty());
}

TEST_F(FakeTwilio, RefusesInvalidParametersWithTwiliosCodes) {
  fake_twilio_options o;
  o.verified_from = {"+15005550006", "+15005550007"};
  start(o);
  const query_params valid = call_to("+15551230000");
  query_params both = valid;
  both.emplace_back("Twiml", "<Response/>");
  const struct {
    const char* why;
    query_params params;
    int code;
    std::string said;
  } cases[] = {
      {"no To", without(valid, "To"), 21201, "'To'"},
      {"no From", without(valid, "From"), 21213, "'From'"},
      {"To not E.164", replaced(valid, "To", "5551230000"), 21211,
       "The 'To' number 5551230000 is not a valid phone number."},
      {"To too short", replaced(valid, "To", "+12345"), 21211, "+12345"},
      {"To premium rate", replaced(valid, "To", "+19005550100"), 21211, "+19005550100"},
      {"From not verified", replaced(valid, "From", "+15551119999"), 21210,
       "The source phone number provided, +15551119999, is not yet verified for your account."},
      {"no Url", without(valid, "Url"), 21205, "Url"},
      {"bad Url", replaced(valid, "Url", "example.com/twiml"), 21205, "example.com/twiml"},
      {"Url and Twiml", both, 21218, "Only one of Url, Twiml and ApplicationSid"},
      {"Twiml too long", replaced(without(valid, "Url"), "Twiml", std::string(4001, 'x')), 21218, "Twiml"},
      {"Timeout 0", replaced(valid, "Timeout", "0"), 21218, "Timeout"},
      {"Timeout 601", replaced(valid, "Timeout", "601"), 21218, "Timeout"},
      {"Timeout not a number", replaced(valid, "Timeout", "soon"), 21218, "Timeout"},
      {"unknown event", replaced(valid, "StatusCallbackEvent", "hungup"), 21218, "StatusCallbackEvent"},
      {"bad MachineDetection", replaced(valid, "MachineDetection", "Yes"), 21218, "MachineDetection"},
      {"bad StatusCallbackMethod", replaced(valid, "StatusCallbackMethod", "PUT"), 21218,
       "StatusCallbackMethod"},
      {"bad AsyncAmd", replaced(valid, "AsyncAmd", "maybe"), 21218, "AsyncAmd"},
      {"bad StatusCallback", replaced(valid, "StatusCallback", "ftp://x/y"), 21218, "StatusCallback"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    const answer a = post(calls(), c.params);
    EXPECT_EQ(a.status, 400u) << a.body;
    const json j = a.body_json();
    EXPECT_EQ(j.value("code", 0), c.code);
    EXPECT_EQ(j.value("status", 0), 400);
    EXPECT_NE(j.value("message", "").find(c.said), std::string::npos) << j.value("message", "");
    EXPECT_EQ(j.value("more_info", ""), "https://www.twilio.com/docs/errors/" + std::to_string(c.code));
  }
  EXPECT_TRUE(fake_->placed().empty());

  // Unknown fields are tolerated; Twiml alone will do.
  auto twiml = replaced(without(valid, "Url"), "Twiml", "<Response><Say>hi</Say></Response>");
  twiml.emplace_back("SomethingNew", "yes");
  EXPECT_EQ(post(calls(), twiml).status, 201u);
  ASSERT_EQ(fake_->placed().size(), 1u);
  EXPECT_EQ(fake_->placed()[0].twiml, "<Response><Say>hi</Say></Response>");
}

TEST_F(FakeTwilio, CanceledEndsAQueuedCall) {
  fake_twilio_options o;
  o.ring = 10min;  // the call stays queued
  start(o);
  const std::string sid = create(call_to("+15551230000"));
  const answer a = post(call_path(sid), {{"Status", "canceled"}});
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body_json().at("status"), "canceled");
  EXPECT_TRUE(a.body_json().at("end_time").is_string());
  EXPECT_TRUE(a.body_json().at("duration").is_null());

  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  EXPECT_EQ(statuses(got), (std::vector<std::string>{"initiated", "canceled"}));
  EXPECT_EQ(got.back()["SipResponseCode"], "487");
  EXPECT_EQ(got.back()["CallDuration"], "0");

  EXPECT_EQ(post(call_path(sid), {{"Status", "canceled"}}).body_json().at("status"), "canceled");
  EXPECT_EQ(get(call_path(sid)).body_json().at("status"), "canceled");
  EXPECT_EQ(fake_->counters().cancels, 1);
}

TEST_F(FakeTwilio, CompletedHangsUpAnInProgressCallWithItsTalkTime) {
  fake_twilio_options o;
  o.talk = 10min;
  start(o);
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(hooks_.wait_for([&](const std::vector<callback>& all) {
    return std::any_of(all.begin(), all.end(),
                       [&](const callback& c) { return c["CallStatus"] == "in-progress"; });
  }));
  const answer refused = post(call_path(sid), {{"Status", "hungup"}});
  EXPECT_EQ(refused.status, 400u);
  EXPECT_EQ(refused.body_json().value("code", 0), 21218);

  const answer a = post(call_path(sid), {{"Status", "completed"}, {"Url", "https://example.com/ignored"}});
  ASSERT_EQ(a.status, 200u) << a.body;
  const json j = a.body_json();
  EXPECT_EQ(j.at("status"), "completed");
  ASSERT_TRUE(j.at("duration").is_string());
  EXPECT_GE(std::stoll(j.at("duration").get<std::string>()), 1);

  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  EXPECT_EQ(statuses(got), (std::vector<std::string>{"initiated", "ringing", "in-progress", "completed"}));
  EXPECT_EQ(got.back()["CallDuration"], j.at("duration").get<std::string>());
  EXPECT_EQ(got.back()["SipResponseCode"], "200");
  EXPECT_EQ(fake_->counters().hangups, 1);
  EXPECT_EQ(fake_->counters().cancels, 0);
}

// "Tue, 31 Aug 2010 20:36:28 +0000" -> "2010-08-31", shifted by whole days.
std::string day_of(const std::string& rfc2822, int shift_days = 0) {
  std::tm tm{};
  std::istringstream in(rfc2822);
  in >> std::get_time(&tm, "%a, %d %b %Y %H:%M:%S");
  const std::time_t t = timegm(&tm) + shift_days * 86400;
  std::tm out{};
  gmtime_r(&t, &out);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &out);
  return text;
}

TEST_F(FakeTwilio, ListsNewestFirstInPagesThatCarryTheFilters) {
  start();
  std::vector<std::string> a, b;
  for (int i = 0; i < 5; ++i) a.push_back(create(plain("+15551110001")));
  for (int i = 0; i < 2; ++i) b.push_back(create(plain("+15552220000")));
  ASSERT_TRUE(fake_->wait_for_settled(7, patience));
  const auto sids = [](const json& page) {
    std::vector<std::string> out;
    for (const auto& c : page.at("calls")) out.push_back(c.at("sid"));
    return out;
  };
  const std::string filtered = calls() + "?To=%2B15551110001&PageSize=2";
  const json p0 = get(filtered).body_json();
  EXPECT_EQ(sids(p0), (std::vector<std::string>{a[4], a[3]}));
  EXPECT_EQ(p0.at("page"), 0);
  EXPECT_EQ(p0.at("page_size"), 2);
  EXPECT_EQ(p0.at("start"), 0);
  EXPECT_EQ(p0.at("end"), 1);
  EXPECT_TRUE(p0.at("previous_page_uri").is_null());
  EXPECT_EQ(p0.at("first_page_uri"), filtered + "&Page=0");
  EXPECT_EQ(p0.at("uri"), filtered + "&Page=0");
  ASSERT_TRUE(p0.at("next_page_uri").is_string());
  EXPECT_TRUE(p0.at("next_page_uri").get<std::string>().starts_with(filtered + "&Page=1&PageToken=PA"));

  const json p1 = get(p0.at("next_page_uri")).body_json();
  EXPECT_EQ(sids(p1), (std::vector<std::string>{a[2], a[1]}));
  EXPECT_EQ(p1.at("page"), 1);
  EXPECT_EQ(p1.at("start"), 2);
  EXPECT_EQ(p1.at("end"), 3);
  const json p2 = get(p1.at("next_page_uri")).body_json();
  EXPECT_EQ(sids(p2), (std::vector<std::string>{a[0]}));
  EXPECT_TRUE(p2.at("next_page_uri").is_null());
  EXPECT_EQ(p2.at("start"), 4);
  EXPECT_EQ(p2.at("end"), 4);
  ASSERT_TRUE(p2.at("previous_page_uri").is_string());
  EXPECT_EQ(sids(get(p2.at("previous_page_uri")).body_json()), sids(p1));

  EXPECT_EQ(sids(get(calls()).body_json()),
            (std::vector<std::string>{b[1], b[0], a[4], a[3], a[2], a[1], a[0]}));
  EXPECT_EQ(get(calls() + "?Status=completed").body_json().at("calls").size(), 7u);
  EXPECT_EQ(get(calls() + "?Status=busy").body_json().at("calls").size(), 0u);
  EXPECT_EQ(get(calls() + "?From=%2B15005550006&To=%2B15552220000").body_json().at("calls").size(), 2u);

  // Dates: from the calls' own start times (a run may cross midnight UTC).
  std::vector<std::string> days;
  for (const auto& sid : b) days.push_back(day_of(get(call_path(sid)).body_json().at("start_time")));
  const auto within = [&](const std::string& query) {
    return get(calls() + "?To=%2B15552220000&" + query).body_json().at("calls").size();
  };
  const auto expected = [&](auto keep) {
    return static_cast<std::size_t>(std::count_if(days.begin(), days.end(), keep));
  };
  const std::string day = days[0], next = day_of(get(call_path(b[0])).body_json().at("start_time"), 1);
  EXPECT_EQ(within("StartTime%3E=" + day), expected([&](const std::string& d) { return d >= day; }));
  EXPECT_EQ(within("StartTime%3E=" + day), 2u);
  EXPECT_EQ(within("StartTime%3E=" + next), expected([&](const std::string& d) { return d >= next; }));
  EXPECT_EQ(within("StartTime%3C=" + day), expected([&](const std::string& d) { return d <= day; }));
  EXPECT_EQ(within("StartTime=" + day), expected([&](const std::string& d) { return d == day; }));
  EXPECT_GE(within("StartTime=" + day), 1u);

  for (const char* bad :
       {"?PageSize=0", "?PageSize=1001", "?StartTime%3E=yesterday", "?PageToken=nonsense"}) {
    const answer r = get(calls() + bad);
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_EQ(r.body_json().value("code", 0), 21218) << bad;
  }
}

TEST_F(FakeTwilio, KeepAliveConnectionsAreServedConcurrently) {
  start();
  std::mutex m;
  std::vector<std::string> sids;
  std::vector<unsigned> bad;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      client c(fake_->port());
      for (int i = 0; i < 25; ++i) {
        const answer a = c.request(bhttp::verb::post, calls(), form(plain("+15551230000")), auth());
        std::lock_guard lock(m);
        if (a.status == 201)
          sids.push_back(a.body_json().at("sid"));
        else
          bad.push_back(a.status);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(bad.empty());
  EXPECT_EQ(std::set<std::string>(sids.begin(), sids.end()).size(), 200u);
  EXPECT_EQ(fake_->counters().connections_accepted, 8);
  EXPECT_EQ(fake_->placed().size(), 200u);
}

TEST_F(FakeTwilio, LatencyHoldsTheAnswersOnTimersNotOnThreads) {
  fake_twilio_options o;
  o.latency = 1h;  // never answered within the test
  o.threads = 2;
  start(o);
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<client>(fake_->port()));
    clients.back()->send(bhttp::verb::get, call_path("CA" + std::string(32, '1')), {}, auth());
  }
  // Forty answers wait at once on two threads, and the threads still take new requests meanwhile.
  ASSERT_TRUE(fake_->wait_for([](const fake_counters& c) { return c.delayed_now == 40; }, patience));
  EXPECT_EQ(fake_->counters().delayed_peak, 40);
  for (auto& c : clients) EXPECT_TRUE(c->silent());
  fake_->stop();
  EXPECT_EQ(clients[0]->receive().status, 0u);  // the held answers go with the fake
}

TEST_F(FakeTwilio, LatencyDelaysEachAnswer) {
  fake_twilio_options o;
  o.latency = 100ms;
  start(o);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(post(calls(), plain("+15551230000")).status, 201u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
}

TEST_F(FakeTwilio, LogsOneJsonLinePerCreatedCallInAFileFakesShare) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("fake_twilio_log_" + std::to_string(::getpid()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove(path);
  fake_twilio_options o;
  o.log_path = path.string();
  fake_twilio other(o);
  other.start();
  start(o);
  for (int i = 0; i < 3; ++i) {
    create(call_to("+15551230000"));
    EXPECT_EQ(client(other.port())
                  .request(bhttp::verb::post, calls(), form(call_to("+15551230001")), auth())
                  .status,
              201u);
  }
  std::set<std::string> expected;
  for (const auto& p : fake_->placed()) expected.insert(p.sid);
  for (const auto& p : other.placed()) expected.insert(p.sid);
  std::ifstream in(path);
  std::set<std::string> logged;
  std::set<unsigned> ports;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    logged.insert(j.at("sid").get<std::string>());
    ports.insert(j.at("port").get<unsigned>());
    EXPECT_EQ(j.at("attempt"), 7);
    EXPECT_EQ(j.at("status_callback"), status_url());
    EXPECT_TRUE(j.at("created_at").is_string());
  }
  EXPECT_EQ(expected.size(), 6u);
  EXPECT_EQ(logged, expected);
  EXPECT_EQ(ports, (std::set<unsigned>{fake_->port(), other.port()}));
  std::filesystem::remove(path);
}

TEST_F(FakeTwilio, RatesOutsideZeroToOneAreRefused) {
  fake_twilio_options o;
  o.rates.never = 1.5;
  EXPECT_THROW(fake_twilio{o}, std::invalid_argument);
  start();
  EXPECT_THROW(fake_->set_rate(rest_fault::throttle, -0.1), std::invalid_argument);
  EXPECT_THROW(fake_->set_rate(callback_fault::late, 2), std::invalid_argument);
}

// ---- the calls' lives and their callbacks ----

TEST_F(FakeTwilioCallbacks, AnAnsweredCallReportsEachRequestedEventInOrderSigned) {
  start();
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(statuses(got), (std::vector<std::string>{"initiated", "ringing", "in-progress", "completed"}));
  for (std::size_t i = 0; i < got.size(); ++i) {
    const callback& c = got[i];
    SCOPED_TRACE(c["CallStatus"]);
    EXPECT_EQ(c.method, "POST");
    EXPECT_EQ(c.target, "/status?attempt=7");
    EXPECT_EQ(c.host, hooks_.authority());
    EXPECT_EQ(c.content_type, "application/x-www-form-urlencoded");
    EXPECT_EQ(c["SequenceNumber"], std::to_string(i));
    EXPECT_EQ(c["AccountSid"], fake_->account_sid());
    EXPECT_EQ(c["From"], "+15005550006");
    EXPECT_EQ(c["To"], "+15551230000");
    EXPECT_EQ(c["Direction"], "outbound-api");
    EXPECT_EQ(c["ApiVersion"], "2010-04-01");
    EXPECT_EQ(c["CallbackSource"], "call-progress-events");
    EXPECT_TRUE(std::regex_match(c["Timestamp"], rfc2822_date)) << c["Timestamp"];
    EXPECT_FALSE(c.has("AnsweredBy"));
    EXPECT_EQ(c.has("CallDuration"), i == 3);
    expect_signed(c, status_url());
  }
  // talk 50 ms at the default scale (1 ms -> 1 s)
  EXPECT_EQ(got[3]["CallDuration"], "50");
  EXPECT_EQ(got[3]["Duration"], "50");
  EXPECT_EQ(got[3]["SipResponseCode"], "200");

  const json j = get(call_path(sid)).body_json();
  EXPECT_EQ(j.at("status"), "completed");
  EXPECT_EQ(j.at("duration"), "50");
  EXPECT_TRUE(std::regex_match(j.at("start_time").get<std::string>(), rfc2822_date));
  EXPECT_TRUE(std::regex_match(j.at("end_time").get<std::string>(), rfc2822_date));
  EXPECT_TRUE(j.at("answered_by").is_null());
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto snapshot = fake_->call(sid);
  ASSERT_TRUE(snapshot);
  EXPECT_TRUE(snapshot->final_callback_delivered);
  EXPECT_EQ(snapshot->callbacks_generated, 4);
}

TEST_F(FakeTwilioCallbacks, WithoutStatusCallbackEventOnlyTheFinalOneIsSent) {
  start();
  const std::string sid = create(without(call_to("+15551230000"), "StatusCallbackEvent"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(statuses(got), (std::vector<std::string>{"completed"}));
  EXPECT_EQ(got[0]["SequenceNumber"], "0");
}

TEST_F(FakeTwilioCallbacks, TheLastDigitOfToDecidesTheOutcome) {
  start();
  const struct {
    std::string to;
    std::vector<std::string> events;
    std::set<std::string> sip;
    std::string duration;
  } cases[] = {
      {"+15551230005", {"initiated", "ringing", "in-progress", "completed"}, {"200"}, "50"},
      {"+15551230006", {"initiated", "ringing", "busy"}, {"486"}, "0"},
      {"+15551230007", {"initiated", "ringing", "no-answer"}, {"487"}, "0"},
      {"+15551230008", {"initiated", "ringing", "failed"}, {"500", "503"}, "0"},
      {"+15551230009", {"initiated", "ringing", "in-progress", "completed"}, {"200"}, "50"},
  };
  std::vector<std::string> sids;
  for (const auto& c : cases) sids.push_back(create(call_to(c.to)));
  ASSERT_TRUE(fake_->wait_for_callbacks(5, patience));
  for (std::size_t i = 0; i < sids.size(); ++i) {
    SCOPED_TRACE(cases[i].to);
    const auto got = hooks_.of(sids[i]);
    EXPECT_EQ(statuses(got), cases[i].events);
    ASSERT_FALSE(got.empty());
    EXPECT_TRUE(cases[i].sip.contains(got.back()["SipResponseCode"])) << got.back()["SipResponseCode"];
    EXPECT_EQ(got.back()["CallDuration"], cases[i].duration);
    EXPECT_FALSE(got.back().has("AnsweredBy"));  // no machine detection asked for
    const json j = get(call_path(sids[i])).body_json();
    EXPECT_EQ(j.at("status"), cases[i].events.back());
    EXPECT_EQ(j.at("duration").is_null(), cases[i].duration == "0");
    EXPECT_TRUE(j.at("answered_by").is_null());
  }
}

TEST_F(FakeTwilioCallbacks, MachineDetectionTellsWhoAnswered) {
  start();
  const struct {
    std::string to, detection, who;
  } cases[] = {{"+15551230009", "Enable", "machine_start"},
               {"+15551230009", "DetectMessageEnd", "machine_end_beep"},
               {"+15551230001", "Enable", "human"}};
  std::vector<std::string> sids;
  for (const auto& c : cases) sids.push_back(create(call_to(c.to, {{"MachineDetection", c.detection}})));
  ASSERT_TRUE(fake_->wait_for_callbacks(3, patience));
  for (std::size_t i = 0; i < sids.size(); ++i) {
    SCOPED_TRACE(cases[i].detection + " " + cases[i].to);
    const auto got = hooks_.of(sids[i]);
    ASSERT_EQ(statuses(got), (std::vector<std::string>{"initiated", "ringing", "in-progress", "completed"}));
    EXPECT_FALSE(got[1].has("AnsweredBy"));
    EXPECT_EQ(got[2]["AnsweredBy"], cases[i].who);
    EXPECT_EQ(got[3]["AnsweredBy"], cases[i].who);
    EXPECT_EQ(get(call_path(sids[i])).body_json().at("answered_by"), cases[i].who);
    EXPECT_EQ(fake_->placed()[i].machine_detection, cases[i].detection);
  }
}

TEST_F(FakeTwilioCallbacks, AsyncAmdPostsItsResultToItsOwnCallback) {
  fake_twilio_options o;
  start(o);
  const std::string amd_url = hooks_.url("/amd?attempt=7");
  const std::string sid = create(
      call_to("+15551230009",
              {{"MachineDetection", "Enable"}, {"AsyncAmd", "true"}, {"AsyncAmdStatusCallback", amd_url}}));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  std::vector<callback> amd, status;
  for (const auto& c : hooks_.of(sid)) (c.target.starts_with("/amd") ? amd : status).push_back(c);
  ASSERT_EQ(amd.size(), 1u);
  EXPECT_EQ(amd[0]["AnsweredBy"], "machine_start");
  EXPECT_EQ(amd[0]["AccountSid"], fake_->account_sid());
  EXPECT_EQ(amd[0]["MachineDetectionDuration"],
            std::to_string(static_cast<long long>(static_cast<double>(o.amd_delay.count()) * o.time_scale)));
  EXPECT_FALSE(amd[0].has("CallStatus"));
  expect_signed(amd[0], amd_url);
  EXPECT_EQ(statuses(status), (std::vector<std::string>{"initiated", "ringing", "in-progress", "completed"}));
  for (const auto& c : status) EXPECT_FALSE(c.has("AnsweredBy"));
  EXPECT_EQ(get(call_path(sid)).body_json().at("answered_by"), "machine_start");
  EXPECT_EQ(fake_->counters().amd_callbacks_sent, 1);
}

TEST_F(FakeTwilioCallbacks, TheTimeScaleSetsTheReportedDuration) {
  fake_twilio_options o;
  o.time_scale = 1;  // 50 ms of talk: 0.05 s, rounded up to 1
  start(o);
  const std::string sid = create(without(call_to("+15551230000"), "StatusCallbackEvent"));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  EXPECT_EQ(hooks_.of(sid).at(0)["CallDuration"], "1");

  fake_.reset();
  o.time_scale = 100;  // 50 ms -> 5 s
  start(o);
  const std::string second = create(without(call_to("+15551230000"), "StatusCallbackEvent"));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  EXPECT_EQ(hooks_.of(second).at(0)["CallDuration"], "5");
}

TEST_F(FakeTwilioCallbacks, AGetStatusCallbackCarriesItsParametersInTheSignedUrl) {
  start();
  const std::string sid = create(replaced(call_to("+15551230000"), "StatusCallbackMethod", "GET"));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(got.size(), 4u);
  for (const auto& c : got) {
    EXPECT_EQ(c.method, "GET");
    EXPECT_TRUE(c.target.starts_with("/status?attempt=7&CallSid=")) << c.target;
    EXPECT_TRUE(http::twilio_signature_ok(fake_->auth_token(), "http://" + hooks_.authority() + c.target, {},
                                          c.signature));
  }
}

TEST_F(FakeTwilioCallbacks, TheCallbackAuthorityTakesThemButTheGivenUrlIsSigned) {
  fake_twilio_options o;
  o.callback_authority = hooks_.authority();
  start(o);
  const std::string given = "https://engine.example.com/twilio/status?attempt=3";
  const std::string sid = create(replaced(call_to("+15551230000"), "StatusCallback", given));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(got.size(), 4u);
  for (const auto& c : got) {
    EXPECT_EQ(c.host, "engine.example.com");
    EXPECT_EQ(c.target, "/twilio/status?attempt=3");
    expect_signed(c, given);
    EXPECT_FALSE(http::twilio_signature_ok(fake_->auth_token(), hooks_.url(c.target), c.params, c.signature));
  }
  EXPECT_EQ(fake_->placed().at(0).attempt, 3);
}

TEST_F(FakeTwilioCallbacks, AFailedCallbackIsRetried) {
  fake_twilio_options o;
  o.callback_retry_delay = 5ms;
  start(o);
  hooks_.refuse_next(2, 503);
  const std::string sid = create(without(call_to("+15551230000"), "StatusCallbackEvent"));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& c : got) {
    EXPECT_EQ(c["SequenceNumber"], "0");
    expect_signed(c, status_url());
  }
  const auto n = fake_->counters();
  EXPECT_EQ(n.callback_posts, 3);
  EXPECT_EQ(n.callback_retries, 2);
  EXPECT_EQ(n.callbacks_sent, 1);
  EXPECT_EQ(n.callbacks_failed, 0);
}

TEST_F(FakeTwilioCallbacks, ACallbackNobodyTakesIsDroppedAfterItsAttempts) {
  unsigned short closed_port = 0;
  {
    net::io_context io;
    tcp::acceptor a(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    closed_port = a.local_endpoint().port();
  }
  fake_twilio_options o;
  o.callback_retry_delay = 5ms;
  start(o);
  const std::string sid = create(replaced(plain("+15551230000"), "StatusCallback",
                                          "http://127.0.0.1:" + std::to_string(closed_port) + "/status"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto n = fake_->counters();
  EXPECT_EQ(n.callback_posts, o.callback_attempts);
  EXPECT_EQ(n.callback_retries, o.callback_attempts - 1);
  EXPECT_EQ(n.callbacks_failed, 1);
  EXPECT_EQ(n.finals_delivered, 0);
  EXPECT_FALSE(fake_->call(sid)->final_callback_delivered);
  EXPECT_EQ(fake_->call(sid)->status, "completed");
}

TEST_F(FakeTwilioCallbacks, ARefusedCallbackIsNotRetried) {
  start();
  hooks_.refuse_next(1, 403);
  const std::string sid = create(without(call_to("+15551230000"), "StatusCallbackEvent"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  EXPECT_EQ(hooks_.of(sid).size(), 1u);
  EXPECT_EQ(fake_->counters().callbacks_failed, 1);
  EXPECT_EQ(fake_->counters().callback_retries, 0);
}

// ---- faults ----

TEST_F(FakeTwilioFaults, ThrottleAnswers429WithRetryAfterAndCreatesNothing) {
  start();
  fake_->fail_next(rest_fault::throttle);
  const answer a = post(calls(), call_to("+15551230000"));
  EXPECT_EQ(a.status, 429u);
  EXPECT_EQ(a.header("retry-after"), "1");
  EXPECT_EQ(a.body_json().value("code", 0), 20429);
  EXPECT_EQ(a.body_json().value("status", 0), 429);
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_EQ(post(calls(), call_to("+15551230000")).status, 201u);
  EXPECT_EQ(fake_->placed().size(), 1u);
}

TEST_F(FakeTwilioFaults, ErrorUnprocessedAnswers5xxAndCreatesNothing) {
  start();
  fake_->fail_next(rest_fault::error_unprocessed, 4);
  for (int i = 0; i < 4; ++i) {
    const answer a = post(calls(), call_to("+15551230000"));
    EXPECT_TRUE(a.status == 500 || a.status == 503) << a.status;
    EXPECT_EQ(a.body_json().value("code", 0), 20500);
  }
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_EQ(fake_->counters().calls_created, 0);
}

TEST_F(FakeTwilioFaults, FailNextQueuesFaultsInOrder) {
  start();
  fake_->fail_next(rest_fault::throttle, 2);
  fake_->fail_next(rest_fault::error_unprocessed);
  std::vector<unsigned> got;
  for (int i = 0; i < 4; ++i) got.push_back(post(calls(), plain("+15551230000")).status);
  EXPECT_EQ(got[0], 429u);
  EXPECT_EQ(got[1], 429u);
  EXPECT_TRUE(got[2] == 500 || got[2] == 503) << got[2];
  EXPECT_EQ(got[3], 201u);
}

TEST_F(FakeTwilioFaults, TimeoutCreatedRunsTheCallButNeverAnswers) {
  start();
  fake_->fail_next(rest_fault::timeout_created);
  client waiting(fake_->port());
  waiting.send(bhttp::verb::post, calls(), form(call_to("+15551230000")), auth());
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));  // the call was created and ran to its end
  const auto placed = fake_->placed();
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].fault, rest_fault::timeout_created);
  EXPECT_EQ(statuses(hooks_.of(placed[0].sid)),
            (std::vector<std::string>{"initiated", "ringing", "in-progress", "completed"}));
  EXPECT_TRUE(waiting.silent());
  EXPECT_EQ(fake_->counters().silent, 1);
  waiting.close();  // the fake lets go of the connection once the client does
  EXPECT_TRUE(fake_->wait_for([](const fake_counters& c) { return c.connections_open == 0; }, patience));
  EXPECT_EQ(post(calls(), plain("+15551230000")).status, 201u);
}

TEST_F(FakeTwilioFaults, TimeoutNotCreatedCreatesNothingAndNeverAnswers) {
  start();
  fake_->fail_next(rest_fault::timeout_not_created);
  client waiting(fake_->port());
  waiting.send(bhttp::verb::post, calls(), form(call_to("+15551230000")), auth());
  ASSERT_TRUE(fake_->wait_for([](const fake_counters& c) { return c.silent == 1; }, patience));
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_TRUE(waiting.silent());
  const std::string sid = create(plain("+15551230000"));
  ASSERT_EQ(fake_->placed().size(), 1u);
  EXPECT_EQ(fake_->placed()[0].sid, sid);
}

TEST_F(FakeTwilioFaults, ResetCreatedCreatesTheCallAndResetsTheConnection) {
  start();
  fake_->fail_next(rest_fault::reset_created);
  client c(fake_->port());
  const answer a = c.request(bhttp::verb::post, calls(), form(plain("+15551230000")), auth());
  EXPECT_EQ(a.status, 0u);
  EXPECT_TRUE(a.error);
  const auto placed = fake_->placed();
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].fault, rest_fault::reset_created);
  EXPECT_EQ(fake_->counters().resets, 1);
}

TEST_F(FakeTwilioFaults, ResetNotCreatedCreatesNothing) {
  start();
  fake_->fail_next(rest_fault::reset_not_created);
  client c(fake_->port());
  const answer a = c.request(bhttp::verb::post, calls(), form(plain("+15551230000")), auth());
  EXPECT_EQ(a.status, 0u);
  EXPECT_TRUE(a.error);
  EXPECT_TRUE(fake_->placed().empty());
  EXPECT_EQ(fake_->counters().resets, 1);
}

TEST_F(FakeTwilioFaults, DecisionsFollowTheSeed) {
  const auto run = [this](std::uint64_t seed) {
    fake_twilio_options o;
    o.seed = seed;
    o.rates.throttle = 0.5;
    o.rates.error_unprocessed = 0.25;
    start(o);
    std::vector<unsigned> got;
    client c(fake_->port());
    for (int i = 0; i < 32; ++i)
      got.push_back(c.request(bhttp::verb::post, calls(), form(plain("+15551230000")), auth()).status);
    return got;
  };
  const auto first = run(42);
  EXPECT_EQ(run(42), first);
  EXPECT_NE(run(43), first);
  EXPECT_EQ(std::count(first.begin(), first.end(), 201u) + std::count(first.begin(), first.end(), 429u) +
                std::count(first.begin(), first.end(), 500u) + std::count(first.begin(), first.end(), 503u),
            32);
  EXPECT_GT(std::count(first.begin(), first.end(), 201u), 0);
  EXPECT_GT(std::count(first.begin(), first.end(), 429u), 0);
}

TEST_F(FakeTwilioFaults, TwiceSendsEveryCallbackTwice) {
  start();
  fake_->set_rate(callback_fault::twice, 1);
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto got = hooks_.of(sid);
  EXPECT_EQ(statuses(got),
            (std::vector<std::string>{"initiated", "initiated", "ringing", "ringing", "in-progress",
                                      "in-progress", "completed", "completed"}));
  for (std::size_t i = 0; i + 1 < got.size(); i += 2) EXPECT_EQ(got[i].params, got[i + 1].params);
  for (const auto& c : got) expect_signed(c, status_url());
  EXPECT_EQ(fake_->call(sid)->callback_faults, (std::vector<callback_fault>{callback_fault::twice}));
}

TEST_F(FakeTwilioFaults, OutOfOrderSendsTheFinalCallbackBeforeRingingAndAnswered) {
  start();
  fake_->set_rate(callback_fault::out_of_order, 1);
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto got = hooks_.of(sid);
  EXPECT_EQ(statuses(got), (std::vector<std::string>{"initiated", "completed", "ringing", "in-progress"}));
  std::vector<std::string> sequence;
  for (const auto& c : got) sequence.push_back(c["SequenceNumber"]);
  EXPECT_EQ(sequence, (std::vector<std::string>{"0", "3", "1", "2"}));
}

TEST_F(FakeTwilioFaults, NeverSendsNoCallbackButTheCallStillEnds) {
  start();
  fake_->set_rate(callback_fault::never, 1);
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  EXPECT_TRUE(hooks_.of(sid).empty());
  EXPECT_EQ(get(call_path(sid)).body_json().at("status"), "completed");
  EXPECT_EQ(fake_->counters().callback_posts, 0);
  EXPECT_EQ(fake_->counters().finals_delivered, 0);
}

TEST_F(FakeTwilioFaults, BadSignatureSignsWithAWrongToken) {
  start();
  fake_->set_rate(callback_fault::bad_signature, 1);
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_settled(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(got.size(), 4u);
  for (const auto& c : got)
    EXPECT_FALSE(http::twilio_signature_ok(fake_->auth_token(), status_url(), c.params, c.signature));
  EXPECT_EQ(fake_->counters().callbacks_bad_signed, 4);
  EXPECT_EQ(fake_->counters().finals_delivered, 0);
}

TEST_F(FakeTwilioFaults, BadSignatureIsFollowedByARightOneWhenAsked) {
  fake_twilio_options o;
  o.resend_after_bad_signature = true;
  o.rates.bad_signature = 1;
  start(o);
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(got.size(), 8u);
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(http::twilio_signature_ok(fake_->auth_token(), status_url(), got[i].params, got[i].signature),
              i % 2 == 1)
        << i;
}

TEST_F(FakeTwilioFaults, LateDelaysTheFinalCallback) {
  fake_twilio_options o;
  o.late_by = 300ms;
  o.rates.late = 1;
  start(o);
  const std::string sid = create(call_to("+15551230000"));
  ASSERT_TRUE(fake_->wait_for_callbacks(1, patience));
  const auto got = hooks_.of(sid);
  ASSERT_EQ(statuses(got), (std::vector<std::string>{"initiated", "ringing", "in-progress", "completed"}));
  // The final one waits late_by once the answered one has been delivered, at least.
  EXPECT_GE(got[3].at - got[2].at, o.late_by);
  EXPECT_EQ(fake_->call(sid)->callback_faults, (std::vector<callback_fault>{callback_fault::late}));
}

}  // namespace
}  // namespace dialer::fakes
