// The fake Telnyx: the HTTP server (one coroutine per connection), the Call Control and Numbers routes, each
// call's life (one coroutine on its own strand, timers only: a dialed call, an agent's leg made by a
// transfer, an incoming call), its webhooks (a second coroutine on that strand drains the call's outbox in
// order through a keep-alive client pool) and each number order's completion (one timer coroutine).
#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

// g++ 12 warns, after inlining, that Asio 1.74 frees a coroutine frame with awaitable_frame_base::operator
// delete when thread_info_base::allocate got it from ::operator new; that operator delete hands it back to
// thread_info_base::deallocate, which calls ::operator delete: a false positive of the frame allocator's
// recycling.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "tests/fakes/fake_telnyx.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"

namespace dialer::fakes {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using sys_clock = std::chrono::system_clock;
using steady = std::chrono::steady_clock;
using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;
using http::query_params;

std::string_view to_string(telnyx_rest_fault f) noexcept {
  static constexpr std::string_view names[] = {
      "none",          "throttle",         "error_unprocessed", "timeout_created", "timeout_not_created",
      "reset_created", "reset_not_created"};
  return names[static_cast<std::size_t>(f)];
}

std::string_view to_string(telnyx_webhook_fault f) noexcept {
  static constexpr std::string_view names[] = {"late", "twice", "out_of_order", "never", "bad_signature"};
  return names[static_cast<std::size_t>(f)];
}

namespace {

// splitmix64: a fault decision is a pure function of (seed, number, which decision), so a run can be
// replayed.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
double draw(std::uint64_t seed, std::uint64_t number, std::uint64_t salt) {
  return static_cast<double>(mix(seed ^ mix(number * 64 + salt)) >> 11) * 0x1.0p-53;
}

// ISO 8601 in UTC with `digits` fractional digits (3: milliseconds, 6: microseconds).
std::string iso8601(sys_clock::time_point t, int digits) {
  const std::time_t s = sys_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  std::array<char, 32> whole{};
  const auto n = std::strftime(whole.data(), whole.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1'000'000;
  if (us < 0) us += 1'000'000;
  std::array<char, 16> frac{};
  if (digits == 3)
    std::snprintf(frac.data(), frac.size(), ".%03lldZ", static_cast<long long>(us / 1000));
  else
    std::snprintf(frac.data(), frac.size(), ".%06lldZ", static_cast<long long>(us));
  return std::string(whole.data(), n) + frac.data();
}
std::string occurred(sys_clock::time_point t) {
  return iso8601(t, 3);
}
std::string iso(sys_clock::time_point t) {
  return iso8601(t, 6);
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
// ^\+[1-9][0-9]{6,14}$
bool is_e164(std::string_view s) {
  return s.size() >= 8 && s.size() <= 16 && s[0] == '+' && s[1] >= '1' && s[1] <= '9' &&
         is_digits(s.substr(1));
}
// A North American number, +1 and ten digits: what the inventory holds.
bool is_nanp(std::string_view s) {
  return s.size() == 12 && s.substr(0, 2) == "+1" && is_digits(s.substr(2));
}
// A transfer's `to`: a sip: or sips: URI, or +E.164, which may end with ",<digits>" (DTMF sent on answer).
bool is_transfer_target(std::string_view s) {
  if (s.find_first_of(" \t\r\n") != std::string_view::npos) return false;
  if (s.starts_with("sip:") || s.starts_with("sips:")) return s.size() > s.find(':') + 1;
  const auto comma = s.find(',');
  if (comma != std::string_view::npos) {
    const auto dtmf = s.substr(comma + 1);
    const bool ok = !dtmf.empty() && std::all_of(dtmf.begin(), dtmf.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '*' || c == '#' || c == 'w' || c == 'W';
    });
    if (!ok) return false;
  }
  return is_e164(s.substr(0, comma));
}
template <class T>
std::optional<T> to_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct parsed_url {
  std::string authority, host, port, target;  // target: path and query, at least "/"
  bool https = false;
};
std::optional<parsed_url> parse_url(std::string_view u) {
  parsed_url p;
  std::string_view rest;
  if (u.substr(0, 7) == "http://") {
    rest = u.substr(7);
  } else if (u.substr(0, 8) == "https://") {
    rest = u.substr(8);
    p.https = true;
  } else {
    return std::nullopt;
  }
  if (u.find_first_of(" \t\r\n") != std::string_view::npos) return std::nullopt;
  const auto end = rest.find_first_of("/?#");
  p.authority = std::string(rest.substr(0, end));
  if (p.authority.empty() || p.authority.find('@') != std::string::npos) return std::nullopt;
  std::string_view target = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  target = target.substr(0, target.find('#'));
  p.target = target.empty() || target[0] != '/' ? "/" + std::string(target) : std::string(target);
  const auto colon = p.authority.rfind(':');  // no IPv6 literals: the webhooks go to loopback or a name
  p.host = p.authority.substr(0, colon);
  const std::string_view port =
      colon == std::string::npos ? std::string_view{} : std::string_view(p.authority).substr(colon + 1);
  if (p.host.empty() || (!port.empty() && !to_number<std::uint16_t>(port))) return std::nullopt;
  p.port = port.empty() ? (p.https ? "443" : "80") : std::string(port);
  return p;
}

const std::string* first(const query_params& params, std::string_view name) {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

// One entry of Telnyx's error envelope {"errors": [...]}; `code` is a string there.
struct api_error {
  api_error(std::string code_, std::string title_, std::string detail_, std::string pointer_ = {},
            std::string parameter_ = {})
      : code(std::move(code_)),
        title(std::move(title_)),
        detail(std::move(detail_)),
        pointer(std::move(pointer_)),
        parameter(std::move(parameter_)) {}
  std::string code, title, detail;
  std::string pointer;    // source.pointer (RFC 6901) into the JSON body, "" for none
  std::string parameter;  // source.parameter, a query parameter, "" for none
};
api_error missing(const std::string& field) {
  return api_error("10004", "Missing required parameter", "The '" + field + "' parameter is required.",
                   "/" + field);
}
api_error bad_value(const std::string& field, const std::string& why) {
  return api_error("10015", "Bad Request", "The '" + field + "' parameter is invalid: " + why, "/" + field);
}
api_error bad_query(const std::string& parameter, const std::string& why) {
  return api_error("10015", "Bad Request", "The '" + parameter + "' parameter is invalid: " + why, {},
                   parameter);
}

struct reply {
  enum class kind : std::uint8_t { answer, silent, reset };
  kind how = kind::answer;
  response res;
};

reply json_reply(bhttp::status status, const json& body) {
  reply r;
  r.res.result(status);
  r.res.set(bhttp::field::content_type, "application/json");
  r.res.body() = body.dump();
  return r;
}
reply error_reply(unsigned status, const std::vector<api_error>& errors) {
  json list = json::array();
  for (const auto& e : errors) {
    json one = {{"code", e.code}, {"title", e.title}, {"detail", e.detail}};
    if (!e.pointer.empty()) one["source"] = {{"pointer", e.pointer}};
    if (!e.parameter.empty()) one["source"] = {{"parameter", e.parameter}};
    one["meta"] = {{"url", "https://developers.telnyx.com/docs/overview/errors/" + e.code}};
    list.push_back(std::move(one));
  }
  return json_reply(static_cast<bhttp::status>(status), {{"errors", list}});
}
reply error_reply(unsigned status, api_error e) {
  return error_reply(status, std::vector<api_error>{std::move(e)});
}
reply not_found(const std::string& what) {
  return error_reply(404, api_error("10005", "Resource not found", what + " could not be found."));
}
reply call_ended() {
  return error_reply(422, api_error("90018", "Call has already ended",
                                    "This call is no longer active and can't receive commands."));
}
// A live call in a state the command does not take (the code and title are the fake's choice: unconfirmed).
reply bad_call_state(const std::string& detail) {
  return error_reply(422, api_error("90015", "Invalid call state", detail));
}
reply command_ok() {
  return json_reply(bhttp::status::ok, {{"data", {{"result", "ok"}}}});
}

struct report_failure {
  void operator()(const std::exception_ptr& e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "fake_telnyx: %s\n", x.what());
    } catch (...) {
      std::fprintf(stderr, "fake_telnyx: unknown exception\n");
    }
  }
};

// An ed25519 key pair of OpenSSL's: signs the webhooks.
class ed25519_key {
 public:
  ed25519_key() {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
        EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* made = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &made) != 1)
      throw std::runtime_error("fake_telnyx: cannot generate an ed25519 key");
    key_.reset(made);
    std::array<unsigned char, 32> raw{};
    std::size_t n = raw.size();
    if (EVP_PKEY_get_raw_public_key(key_.get(), raw.data(), &n) != 1 || n != raw.size())
      throw std::runtime_error("fake_telnyx: cannot read the ed25519 public key");
    public_base64_ = http::base64(std::string_view(reinterpret_cast<const char*>(raw.data()), n));
  }
  [[nodiscard]] const std::string& public_base64() const { return public_base64_; }
  // base64 of the 64-byte signature.
  [[nodiscard]] std::string sign(std::string_view message) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<unsigned char, 64> sig{};
    std::size_t n = sig.size();
    bool ok = false;
    {
      // One signer at a time: OpenSSL shares a key across threads for reading, but a signing init may cache
      // in it; the cost is nothing next to a webhook's HTTP request.
      std::lock_guard lock(mutex_);
      ok = ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) == 1 &&
           EVP_DigestSign(ctx.get(), sig.data(), &n, reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
    }
    if (!ok) throw std::runtime_error("fake_telnyx: ed25519 signing failed");
    return http::base64(std::string_view(reinterpret_cast<const char*>(sig.data()), n));
  }

 private:
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_{nullptr, EVP_PKEY_free};
  std::string public_base64_;
  mutable std::mutex mutex_;
};

// `attempt` from a client_state: base64 of {"attempt": n, ...} (n a number or a decimal string) or of a bare
// decimal number; 0 otherwise.
std::int64_t attempt_of(const std::string& client_state) {
  const auto decoded = http::unbase64(client_state);
  if (!decoded) return 0;
  const json j = json::parse(*decoded, nullptr, false);
  const json* a = &j;
  if (j.is_object()) {
    auto it = j.find("attempt");
    if (it == j.end()) return 0;
    a = &*it;
  }
  if (a->is_number_integer()) return a->get<std::int64_t>();
  if (a->is_string()) return to_number<std::int64_t>(a->get<std::string>()).value_or(0);
  return 0;
}

// Reads the optional fields of a command's body, listing every error as Telnyx would (one per field).
class command_fields {
 public:
  command_fields(const json& body, std::vector<api_error>& errors) : body_(body), errors_(errors) {}
  [[nodiscard]] const json* field(const char* name) const {
    auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }
  // A string field: its value, or an error when it has another type.
  bool string(const char* name, std::string& out) {
    const json* v = field(name);
    if (!v) return false;
    if (!v->is_string()) {
      errors_.push_back(bad_value(name, "a string is expected"));
      return false;
    }
    out = v->get<std::string>();
    return true;
  }
  void one_of(const char* name, std::string& out, std::initializer_list<std::string_view> allowed) {
    if (!string(name, out)) return;
    if (std::find(allowed.begin(), allowed.end(), out) != allowed.end()) return;
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    errors_.push_back(bad_value(name, "'" + out + "' is not one of " + list));
  }
  void base64(const char* name, std::string& out) {
    if (string(name, out) && !http::unbase64(out))
      errors_.push_back(bad_value(name, "it must be a valid Base-64 encoded string"));
  }
  void url(const char* name, std::string& out) {
    if (string(name, out) && !parse_url(out))
      errors_.push_back(bad_value(name, "an http or https URL is expected"));
  }
  void headers(const char* name, std::vector<std::pair<std::string, std::string>>& out) {
    const json* h = field(name);
    if (!h) return;
    const bool ok = h->is_array() && std::all_of(h->begin(), h->end(), [](const json& e) {
                      return e.is_object() && e.contains("name") && e["name"].is_string() &&
                             e.contains("value") && e["value"].is_string();
                    });
    if (!ok) {
      errors_.push_back(bad_value(name, "an array of {name, value} strings is expected"));
      return;
    }
    for (const auto& e : *h) out.emplace_back(e["name"].get<std::string>(), e["value"].get<std::string>());
  }
  void integer_in(const char* name, std::int64_t low, std::int64_t high) {
    const json* t = field(name);
    if (t && (!t->is_number_integer() || t->get<std::int64_t>() < low || t->get<std::int64_t>() > high))
      errors_.push_back(bad_value(
          name, "an integer from " + std::to_string(low) + " to " + std::to_string(high) + " is expected"));
  }

 private:
  const json& body_;
  std::vector<api_error>& errors_;
};

struct transfer_params {
  std::string to, from, client_state, target_leg_client_state, command_id, webhook_url, webhook_url_method;
  std::vector<std::pair<std::string, std::string>> custom_headers;
};

struct reject_params {
  std::string cause, client_state, command_id;
};

// A reject's cause: the hangup_cause and the SIP response the caller gets (TPY's action_reject_params).
struct reject_cause_entry {
  std::string_view cause, hangup_cause, sip;
};
constexpr reject_cause_entry reject_causes[] = {{"CALL_REJECTED", "call_rejected", "603"},
                                                {"USER_BUSY", "user_busy", "486"},
                                                {"NOT_FOUND", "not_found", "404"},
                                                {"TEMPORARILY_UNAVAILABLE", "unspecified", "480"}};

// An incoming call, or an agent's leg, waits for a command or its other leg this long at most: for ever, for
// a test.
constexpr std::chrono::milliseconds forever = std::chrono::hours(24 * 365);

// The region of the inventory's area codes; others have none but the country.
struct area {
  std::string_view npa, state, rate_center;
};
constexpr area areas[] = {{"212", "NY", "NEW YORK CITY"},
                          {"312", "IL", "CHICAGO"},
                          {"415", "CA", "SAN FRANCISCO"},
                          {"512", "TX", "AUSTIN"},
                          {"617", "MA", "BOSTON"}};
constexpr std::string_view toll_free_npas[] = {"800", "833", "844", "855", "866", "877", "888"};

struct inventory_entry {
  std::string type;  // local, toll_free
  std::string state, rate_center;
};
inventory_entry inventory_entry_of(std::string_view phone) {
  const std::string_view npa = phone.substr(2, 3);
  inventory_entry e;
  e.type = std::find(std::begin(toll_free_npas), std::end(toll_free_npas), npa) != std::end(toll_free_npas)
               ? "toll_free"
               : "local";
  for (const auto& a : areas) {
    if (a.npa != npa) continue;
    e.state = a.state;
    e.rate_center = a.rate_center;
  }
  return e;
}

// One webhook to post, built when its event happens.
struct outgoing {
  parsed_url where;
  std::string url;  // as given: meta.delivered_to
  json data;        // the envelope's `data`; `meta` is added per attempt
  bool hangup = false, amd = false;
  std::chrono::milliseconds delay{0};
};

// The rates by fault, indexed by the enums.
using rest_rates = std::array<double, 7>;
using webhook_rates = std::array<double, 5>;
rest_rates rest_rates_of(const telnyx_fault_rates& r) {
  return {0,
          r.throttle,
          r.error_unprocessed,
          r.timeout_created,
          r.timeout_not_created,
          r.reset_created,
          r.reset_not_created};
}
webhook_rates webhook_rates_of(const telnyx_fault_rates& r) {
  return {r.late, r.twice, r.out_of_order, r.never, r.bad_signature};
}
void check_rate(double r) {
  if (!(r >= 0.0 && r <= 1.0)) throw std::invalid_argument("fake_telnyx: a fault rate must be in [0, 1]");
}
void check_rates(const telnyx_fault_rates& r) {
  for (double x : rest_rates_of(r)) check_rate(x);
  for (double x : webhook_rates_of(r)) check_rate(x);
}

using call_strand = net::strand<net::io_context::executor_type>;

// The parts of a call that live on the io_context: touched only on its strand (and destroyed by stop()).
struct call_runtime {
  explicit call_runtime(net::io_context& io) : strand(net::make_strand(io)), timer(strand) {}
  call_strand strand;
  net::steady_timer timer;
  std::deque<outgoing> outbox;
  std::vector<outgoing> held;  // out_of_order: sent after call.hangup
  bool sending = false, life_done = false;
};

struct call_record {
  telnyx_placed_call placed;
  std::vector<telnyx_webhook_fault> fault_list;
  std::array<bool, 5> met{};  // by telnyx_webhook_fault
  [[nodiscard]] bool meets(telnyx_webhook_fault f) const { return met[static_cast<std::size_t>(f)]; }
  std::unique_ptr<call_runtime> rt;
  std::string direction = "outgoing";  // outgoing (dialed, an agent's leg), incoming
  std::string transferred_from;        // an agent's leg: the transferred call's call_control_id
  bool agent_answers = true;           // an agent's leg: whether it answers
  // Guarded by impl::mutex_.
  std::string url;                  // where its webhooks go: placed.webhook_url, then an answer's webhook_url
  std::optional<parsed_url> where;  // of url; none: no webhooks
  std::string client_state;         // echoed in the webhooks: the dial's, then a command's
  std::string state = "bridging";   // bridging, parked (incoming), answered, hangup
  std::optional<sys_clock::time_point> start_time, end_time;
  std::optional<steady::time_point> answered_at;
  std::string hangup_cause, sip_hangup_cause, hangup_source, amd_result;
  std::optional<std::int64_t> duration;
  std::set<std::string> command_ids;  // of the commands already taken on the call (any action)
  bool ended = false, hangup_delivered = false, settled = false;
  int webhooks_generated = 0;
  bool answered_by_command = false;  // incoming: answered by an answer command (not by an agent's answer)
  std::string transfer_to, transfer_target_leg_client_state, agent_leg_id;  // the last transfer's
  std::vector<std::pair<std::string, std::string>> transfer_custom_headers;
  int transfers = 0;
  std::vector<std::shared_ptr<call_record>> agent_legs;  // the legs its transfers made, oldest first
  std::optional<telnyx_answer> answer;
  std::string reject_cause;
};

// What the fake's side of a call says when it ends it: an outgoing call is the fake's (its caller), an
// incoming one the far end's (the fake is its callee; no SIP response is known: "unspecified", as TPY says).
const char* our_side(const call_record& c) {
  return c.direction == "incoming" ? "callee" : "caller";
}
const char* clearing_sip(const call_record& c) {
  return c.direction == "incoming" ? "unspecified" : "200";
}

struct number_record {
  std::uint64_t seq = 0;  // account order
  std::string id, phone_number, status, connection_id, type;
  std::vector<std::string> tags;
  std::optional<std::string> customer_reference;
  sys_clock::time_point created_at, updated_at;
};

struct order_record {
  std::string id, status = "pending";
  std::optional<std::string> connection_id, customer_reference;
  std::vector<std::pair<std::string, std::string>> numbers;  // number id, phone number
  sys_clock::time_point created_at, updated_at;
};

struct application {
  std::string id, name = "dialer", webhook_event_url, api_version = "2";
  std::optional<std::string> failover_url;
  std::optional<std::int64_t> timeout_secs;
  bool active = true;
  std::vector<std::string> tags;
  sys_clock::time_point created_at, updated_at;
};

enum class route : std::uint8_t {
  dial,
  get_call,
  hangup,
  transfer,
  answer,
  reject,
  available_numbers,
  create_order,
  get_order,
  list_numbers,
  get_number,
  update_number,
  delete_number,
  get_application,
  update_application,
  unknown,
};
constexpr std::string_view route_names[] = {
    "dial",       "get_call",          "hangup",        "transfer",        "answer",
    "reject",     "available_numbers", "create_order",  "get_order",       "list_numbers",
    "get_number", "update_number",     "delete_number", "get_application", "update_application",
    "unknown"};
bool is_command(route r) {
  return r == route::hangup || r == route::transfer || r == route::answer || r == route::reject;
}

}  // namespace

struct fake_telnyx::impl {
  explicit impl(fake_telnyx_options o)
      : options_(std::move(o)),
        callback_authority_(options_.callback_authority),
        rest_rates_(rest_rates_of(options_.rates)),
        webhook_rates_(webhook_rates_of(options_.rates)) {
    if (options_.threads == 0) throw std::invalid_argument("fake_telnyx: threads must be at least 1");
    check_rates(options_.rates);
    std::random_device rd;
    rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid()));
    const auto now = sys_clock::now();
    app_.id = options_.connection_id;
    app_.webhook_event_url = options_.webhook_event_url;
    app_.created_at = app_.updated_at = now;
    if (options_.available_numbers.empty()) {
      for (const char* npa : {"212", "312", "415", "512", "617", "888", "877"})
        for (int line = 100; line < 200; ++line)
          inventory_.emplace("+1" + std::string(npa) + "5550" + std::to_string(line),
                             inventory_entry_of(std::string("+1") + npa + "5550000"));
    } else {
      for (const auto& n : options_.available_numbers) {
        if (!is_nanp(n))
          throw std::invalid_argument("fake_telnyx: an available number must be +1 and ten digits: " + n);
        inventory_.emplace(n, inventory_entry_of(n));
      }
    }
    for (const auto& n : options_.owned_numbers) {
      if (!is_e164(n)) throw std::invalid_argument("fake_telnyx: an owned number must be +E.164: " + n);
      if (number_ids_.contains(n)) continue;
      auto r = std::make_shared<number_record>();
      r->phone_number = n;
      r->status = "active";
      r->type = is_nanp(n) ? inventory_entry_of(n).type : "local";
      r->created_at = r->updated_at = now;
      add_number(std::move(r));
    }
  }
  ~impl() {
    stop();
    if (log_fd_ >= 0) ::close(log_fd_);
  }

  // Counter updates wake the waiters.
  template <class F>
  void count(F&& change) {
    {
      std::lock_guard lock(mutex_);
      change(counters_);
    }
    changed_.notify_all();
  }

  // ---- lifecycle ----

  void start() {
    if (started_) throw std::logic_error("fake_telnyx: start() called twice");
    if (!options_.log_path.empty()) {
      log_fd_ = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (log_fd_ < 0)
        throw std::runtime_error("fake_telnyx: cannot open the log " + options_.log_path + ": " +
                                 std::strerror(errno));
    }
    io_ = std::make_unique<net::io_context>(static_cast<int>(options_.threads));
    acceptor_ = std::make_unique<tcp::acceptor>(*io_);
    const tcp::endpoint where(net::ip::make_address("127.0.0.1"), options_.port);
    beast::error_code ec;
    acceptor_->open(where.protocol(), ec);
    if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(where, ec);
    if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error("fake_telnyx: cannot listen on 127.0.0.1:" + std::to_string(options_.port) +
                               ": " + ec.message());
    port_ = acceptor_->local_endpoint().port();
    started_ = true;
    work_.emplace(io_->get_executor());
    net::co_spawn(*io_, accept_loop(), report_failure{});
    for (unsigned i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { io_->run(); });
    running_ = true;
  }

  void stop() noexcept {
    if (!started_ || stopped_) return;
    stopped_ = true;
    running_ = false;
    io_->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    // Every object bound to the io_context goes before it; the coroutines' frames go with it.
    {
      std::lock_guard lock(pool_mutex_);
      idle_.clear();
    }
    acceptor_.reset();
    {
      std::lock_guard lock(mutex_);
      for (auto& c : order_) c->rt.reset();
      for (auto& c : others_) c->rt.reset();
    }
    work_.reset();
    io_.reset();
  }

  // ---- the server ----

  net::awaitable<void> accept_loop() {
    for (;;) {
      beast::error_code ec;
      tcp::socket socket = co_await acceptor_->async_accept(net::redirect_error(net::use_awaitable, ec));
      if (ec == net::error::operation_aborted) co_return;
      if (ec) {  // out of descriptors, say: let the clients close some
        net::steady_timer pause(co_await net::this_coro::executor, std::chrono::milliseconds(10));
        co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
        continue;
      }
      count([](fake_telnyx_counters& c) {
        ++c.connections_accepted;
        ++c.connections_open;
      });
      net::co_spawn(io_->get_executor(), serve(std::move(socket)), report_failure{});
    }
  }

  net::awaitable<void> serve(tcp::socket socket) {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    bool reset = false;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(1024 * 1024);
      stream.expires_after(options_.idle_timeout);
      co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
            ec != bhttp::error::end_of_stream) {
          reply bad =
              error_reply(400, api_error("10015", "Bad Request", "Malformed request: " + ec.message()));
          bad.res.keep_alive(false);
          bad.res.prepare_payload();
          co_await bhttp::async_write(stream, bad.res, net::redirect_error(net::use_awaitable, ec));
        }
        break;
      }
      request req = parser.release();
      reply r = dispatch(req);
      if (r.how == reply::kind::silent) {
        count([](fake_telnyx_counters& c) { ++c.silent; });
        stream.expires_never();
        std::array<char, 512> sink{};
        while (!ec)
          co_await stream.async_read_some(net::buffer(sink), net::redirect_error(net::use_awaitable, ec));
        break;
      }
      if (r.how == reply::kind::reset) {
        count([](fake_telnyx_counters& c) { ++c.resets; });  // before the client can see it
        stream.socket().set_option(net::socket_base::linger(true, 0), ec);
        stream.socket().close(ec);
        reset = true;
        break;
      }
      if (options_.latency.count() > 0) {
        count([](fake_telnyx_counters& c) { c.delayed_peak = std::max(c.delayed_peak, ++c.delayed_now); });
        net::steady_timer delay(co_await net::this_coro::executor, options_.latency);
        co_await delay.async_wait(net::redirect_error(net::use_awaitable, ec));
        count([](fake_telnyx_counters& c) { --c.delayed_now; });
      }
      r.res.version(req.version());
      r.res.keep_alive(req.keep_alive());
      r.res.prepare_payload();
      const bool keep = r.res.keep_alive();
      const unsigned status = r.res.result_int();
      count([status](fake_telnyx_counters& c) { ++c.answers[status]; });  // before the client can have it
      stream.expires_after(std::chrono::seconds(30));
      co_await bhttp::async_write(stream, r.res, net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      if (!keep) break;
    }
    if (!reset) stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    count([](fake_telnyx_counters& c) { --c.connections_open; });
  }

  // The route of a request, and its path's segments decoded ("v2", "calls", ...); unknown when a segment has
  // a malformed escape.
  static route route_of(const request& req, std::string_view path, std::vector<std::string>& seg) {
    while (!path.empty()) {
      path.remove_prefix(path[0] == '/' ? 1 : 0);
      const auto slash = path.find('/');
      auto decoded = http::percent_decode(path.substr(0, slash));
      if (!decoded) return route::unknown;
      seg.push_back(std::move(*decoded));
      path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    const auto m = req.method();
    const auto is = [&](std::initializer_list<std::string_view> want) {
      if (seg.size() != want.size()) return false;
      std::size_t i = 0;
      for (const auto w : want) {
        if (w != "*" ? seg[i] != w : seg[i].empty()) return false;
        ++i;
      }
      return true;
    };
    using bhttp::verb;
    if (is({"v2", "calls"})) return m == verb::post ? route::dial : route::unknown;
    if (is({"v2", "calls", "*"})) return m == verb::get ? route::get_call : route::unknown;
    if (is({"v2", "calls", "*", "actions", "hangup"}))
      return m == verb::post ? route::hangup : route::unknown;
    if (is({"v2", "calls", "*", "actions", "transfer"}))
      return m == verb::post ? route::transfer : route::unknown;
    if (is({"v2", "calls", "*", "actions", "answer"}))
      return m == verb::post ? route::answer : route::unknown;
    if (is({"v2", "calls", "*", "actions", "reject"}))
      return m == verb::post ? route::reject : route::unknown;
    if (is({"v2", "available_phone_numbers"}))
      return m == verb::get ? route::available_numbers : route::unknown;
    if (is({"v2", "number_orders"})) return m == verb::post ? route::create_order : route::unknown;
    if (is({"v2", "number_orders", "*"})) return m == verb::get ? route::get_order : route::unknown;
    if (is({"v2", "phone_numbers"})) return m == verb::get ? route::list_numbers : route::unknown;
    if (is({"v2", "phone_numbers", "*"}))
      return m == verb::get       ? route::get_number
             : m == verb::patch   ? route::update_number
             : m == verb::delete_ ? route::delete_number
                                  : route::unknown;
    if (is({"v2", "call_control_applications", "*"}))
      return m == verb::get     ? route::get_application
             : m == verb::patch ? route::update_application
                                : route::unknown;
    return route::unknown;
  }

  reply dispatch(const request& req) {
    const std::string_view raw(req.target().data(), req.target().size());
    const auto target = http::split_target(raw);
    std::vector<std::string> seg;
    const route r = target ? route_of(req, target->path, seg) : route::unknown;
    count([r](fake_telnyx_counters& c) {
      ++c.requests[std::string(route_names[static_cast<std::size_t>(r)])];
    });
    if (r == route::unknown)
      return not_found("The requested resource " + std::string(req.method_string()) + " " + std::string(raw));
    if (!authenticated(req)) {
      return error_reply(401,
                         api_error("10009", "Authentication failed",
                                   "The API key given in the Authorization header is missing or invalid."));
    }
    const auto at = sys_clock::now();
    bool duplicate = false;
    reply out = handle(req, r, raw, *target, seg, duplicate);
    if (is_command(r)) {  // every command on a call, whatever its answer
      {
        std::lock_guard lock(mutex_);
        command_log_.push_back({seg[2], std::string(route_names[static_cast<std::size_t>(r)]), req.body(), at,
                                out.res.result_int(), duplicate});
      }
      changed_.notify_all();
    }
    return out;
  }

  // `duplicate`: set by a command answered ok for a command_id the call had already taken.
  reply handle(const request& req, route r, std::string_view raw, const http::target& target,
               const std::vector<std::string>& seg, bool& duplicate) {
    try {
      switch (r) {
        case route::dial:
          return dial(req);
        case route::get_call:
          return get_call(seg[2]);
        case route::hangup:
          return hangup(req, seg[2], duplicate);
        case route::transfer:
          return transfer_call(req, seg[2], duplicate);
        case route::answer:
          return answer_call(req, seg[2], duplicate);
        case route::reject:
          return reject_call(req, seg[2], duplicate);
        case route::available_numbers:
          return available_numbers(target.query);
        case route::create_order:
          return create_order(req);
        case route::get_order:
          return get_order(seg[2]);
        case route::list_numbers:
          return list_numbers(target.query);
        case route::get_number:
          return get_number(seg[2]);
        case route::update_number:
          return update_number(req, seg[2]);
        case route::delete_number:
          return delete_number(seg[2]);
        case route::get_application:
          return get_application(seg[2]);
        case route::update_application:
          return update_application(req, seg[2]);
        case route::unknown:
          break;
      }
    } catch (const std::exception& e) {
      return error_reply(500, api_error("10007", "Unexpected error", e.what()));
    }
    return not_found(std::string(raw));
  }

  bool authenticated(const request& req) const {
    const auto header = req[bhttp::field::authorization];
    const std::string_view h(header.data(), header.size());
    if (h.size() < 7 || lower(std::string(h.substr(0, 7))) != "bearer ") return false;
    return h.substr(7) == options_.api_key;
  }

  // The JSON object of a body; an empty body is {} when `empty_is_object`. nullopt: the 400 to answer.
  static std::optional<json> body_object(const request& req, bool empty_is_object, reply& refused) {
    if (req.body().empty() && empty_is_object) return json::object();
    json j = json::parse(req.body(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      refused =
          error_reply(400, api_error("10015", "Bad Request", "The request body is not a JSON object.", "/"));
      return std::nullopt;
    }
    return j;
  }

  // ---- calls ----

  telnyx_rest_fault decide_rest_fault(std::uint64_t number) {  // under mutex_
    if (!forced_.empty()) {
      const telnyx_rest_fault f = forced_.front().first;
      if (--forced_.front().second <= 0) forced_.pop_front();
      return f;
    }
    using F = telnyx_rest_fault;
    for (const auto fault : {F::throttle, F::error_unprocessed, F::timeout_not_created, F::reset_not_created,
                             F::timeout_created, F::reset_created}) {
      const auto i = static_cast<std::size_t>(fault);
      if (rest_rates_[i] > 0 && draw(options_.seed, number, i) < rest_rates_[i]) return fault;
    }
    return F::none;
  }

  reply dial(const request& req) {
    std::uint64_t number = 0;
    telnyx_rest_fault fault = telnyx_rest_fault::none;
    webhook_rates rates{};
    {
      std::lock_guard lock(mutex_);
      number = dial_requests_++;
      fault = decide_rest_fault(number);
      rates = webhook_rates_;
    }
    switch (fault) {
      case telnyx_rest_fault::throttle: {
        reply r = error_reply(429, api_error("10011", "Too many requests",
                                             "You have exceeded the maximum number of allowed requests."));
        r.res.set("x-ratelimit-limit", "20");
        r.res.set("x-ratelimit-remaining", "0");
        r.res.set("x-ratelimit-reset", "1");
        return r;
      }
      case telnyx_rest_fault::error_unprocessed:
        return draw(options_.seed, number, 40) < 0.5
                   ? error_reply(500, api_error("10007", "Unexpected error",
                                                "An unexpected error occurred while processing the request."))
                   : error_reply(503, api_error("10007", "Service unavailable",
                                                "The service is temporarily unavailable; try again later."));
      case telnyx_rest_fault::timeout_not_created:
        return reply{reply::kind::silent, {}};
      case telnyx_rest_fault::reset_not_created:
        return reply{reply::kind::reset, {}};
      default:
        break;
    }
    reply refused;
    const auto body = body_object(req, false, refused);
    if (!body) return refused;
    auto c = std::make_shared<call_record>();
    if (auto errors = read_dial_params(*body, *c); !errors.empty()) return error_reply(422, errors);

    auto& p = c->placed;
    p.created_at = sys_clock::now();
    p.create_request = number;
    p.fault = fault;
    p.attempt = attempt_of(p.client_state);
    c->client_state = p.client_state;
    for (std::size_t i = 0; i < rates.size(); ++i) {
      if (rates[i] > 0 && draw(options_.seed, number, 32 + i) < rates[i]) {
        c->met[i] = true;
        c->fault_list.push_back(static_cast<telnyx_webhook_fault>(i));
      }
    }
    json answer;
    bool duplicate = false;
    {
      std::lock_guard lock(mutex_);
      auto known = p.command_id.empty() ? commands_.end() : commands_.find(p.command_id);
      if (known != commands_.end()) {
        duplicate = true;
        ++counters_.duplicate_commands;
        answer = dial_json(*known->second);
      } else {
        if (p.webhook_url.empty()) p.webhook_url = app_.webhook_event_url;
        c->url = p.webhook_url;
        c->where = parse_url(c->url);
        c->rt = std::make_unique<call_runtime>(*io_);
        p.call_control_id = new_call_control_id();
        p.call_leg_id = new_uuid();
        p.call_session_id = new_uuid();
        calls_.emplace(p.call_control_id, c);
        order_.push_back(c);
        if (!p.command_id.empty()) commands_.emplace(p.command_id, c);
        ++counters_.calls_created;
        answer = dial_json(*c);
      }
    }
    changed_.notify_all();
    if (!duplicate) {
      log_created(p);
      net::co_spawn(c->rt->strand, run_call(c), report_failure{});
    }
    if (fault == telnyx_rest_fault::timeout_created) return reply{reply::kind::silent, {}};
    if (fault == telnyx_rest_fault::reset_created) return reply{reply::kind::reset, {}};
    return json_reply(bhttp::status::ok, answer);
  }

  // The dial's parameters into the record, or every error Telnyx would list.
  std::vector<api_error> read_dial_params(const json& body, call_record& c) const {
    auto& p = c.placed;
    std::vector<api_error> errors;
    const auto field = [&](const char* name) -> const json* {
      auto it = body.find(name);
      return it == body.end() || it->is_null() ? nullptr : &*it;
    };
    // A string field: its value, or an error when it has another type.
    const auto string_field = [&](const char* name, std::string& out) {
      const json* v = field(name);
      if (!v) return false;
      if (!v->is_string()) {
        errors.push_back(bad_value(name, "a string is expected"));
        return false;
      }
      out = v->get<std::string>();
      return true;
    };
    const auto one_of = [&](const char* name, std::string& out,
                            std::initializer_list<std::string_view> allowed) {
      if (!string_field(name, out)) return;
      if (std::find(allowed.begin(), allowed.end(), out) != allowed.end()) return;
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      errors.push_back(bad_value(name, "'" + out + "' is not one of " + list));
    };

    if (!field("connection_id")) {
      errors.push_back(missing("connection_id"));
    } else if (string_field("connection_id", p.connection_id) && p.connection_id != options_.connection_id) {
      errors.push_back(
          bad_value("connection_id", "'" + p.connection_id + "' is not a Call Control Application"));
    }

    if (const json* to = field("to"); !to) {
      errors.push_back(missing("to"));
    } else if (to->is_array() ? to->empty() || !(*to)[0].is_string() : !to->is_string()) {
      errors.push_back(bad_value("to", "a string, or an array of strings, is expected"));
    } else {
      p.to = to->is_array() ? (*to)[0].get<std::string>() : to->get<std::string>();
      if (!is_e164(p.to)) {
        errors.emplace_back("10016", "Phone number must be in +E.164 format",
                            "The 'to' number " + p.to + " is not in +E.164 format.", "/to");
      } else if (std::find(options_.invalid_to.begin(), options_.invalid_to.end(), p.to) !=
                     options_.invalid_to.end() ||
                 std::any_of(options_.invalid_to_prefixes.begin(), options_.invalid_to_prefixes.end(),
                             [&](const std::string& prefix) { return p.to.starts_with(prefix); })) {
        errors.emplace_back("10002", "Invalid phone number",
                            "The 'to' number " + p.to + " is not a valid phone number.", "/to");
      }
    }

    if (!field("from")) {
      errors.push_back(missing("from"));
    } else if (string_field("from", p.from)) {
      if (!is_e164(p.from)) {
        errors.emplace_back("10016", "Phone number must be in +E.164 format",
                            "The 'from' number " + p.from + " is not in +E.164 format.", "/from");
      } else if (!options_.allowed_from.empty() &&
                 std::find(options_.allowed_from.begin(), options_.allowed_from.end(), p.from) ==
                     options_.allowed_from.end()) {
        errors.emplace_back("10001", "Inactive phone number",
                            "The 'from' number " + p.from + " is not an active number of this account.",
                            "/from");
      }
    }

    if (const json* t = field("timeout_secs")) {
      if (!t->is_number_integer() || t->get<std::int64_t>() < 5 || t->get<std::int64_t>() > 600)
        errors.push_back(bad_value("timeout_secs", "an integer from 5 to 600 is expected"));
    }
    one_of("answering_machine_detection", p.answering_machine_detection,
           {"premium", "detect", "detect_beep", "detect_words", "greeting_end", "disabled"});
    string_field("stream_url", p.stream_url);
    one_of("stream_track", p.stream_track, {"inbound_track", "outbound_track", "both_tracks"});
    one_of("stream_bidirectional_mode", p.stream_bidirectional_mode, {"mp3", "rtp"});
    if (string_field("client_state", p.client_state) && !http::unbase64(p.client_state))
      errors.push_back(bad_value("client_state", "it must be a valid Base-64 encoded string"));
    if (string_field("webhook_url", p.webhook_url) && !parse_url(p.webhook_url))
      errors.push_back(bad_value("webhook_url", "an http or https URL is expected"));
    string_field("command_id", p.command_id);
    if (const json* h = field("custom_headers")) {
      const bool ok = h->is_array() && std::all_of(h->begin(), h->end(), [](const json& e) {
                        return e.is_object() && e.contains("name") && e["name"].is_string() &&
                               e.contains("value") && e["value"].is_string();
                      });
      if (!ok) {
        errors.push_back(bad_value("custom_headers", "an array of {name, value} strings is expected"));
      } else {
        for (const auto& e : *h)
          p.custom_headers.emplace_back(e["name"].get<std::string>(), e["value"].get<std::string>());
      }
    }
    return errors;
  }

  static json dial_json(const call_record& c) {  // under mutex_
    const auto& p = c.placed;
    json data = {{"call_control_id", p.call_control_id},
                 {"call_leg_id", p.call_leg_id},
                 {"call_session_id", p.call_session_id},
                 {"is_alive", false},
                 {"record_type", "call"}};
    if (!p.client_state.empty()) data["client_state"] = p.client_state;
    return {{"data", data}};
  }

  reply get_call(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return not_found("Call " + id);
    const call_record& c = *it->second;
    const auto& p = c.placed;
    json data = {{"call_control_id", p.call_control_id},
                 {"call_leg_id", p.call_leg_id},
                 {"call_session_id", p.call_session_id},
                 {"is_alive", !c.ended},
                 {"record_type", "call"},
                 {"start_time", iso(c.start_time.value_or(p.created_at))}};
    if (!c.client_state.empty()) data["client_state"] = c.client_state;
    if (c.ended) {
      data["end_time"] = iso(*c.end_time);
      data["call_duration"] = c.duration.value_or(0);
    }
    return json_reply(bhttp::status::ok, {{"data", data}});
  }

  reply hangup(const request& req, const std::string& id, bool& duplicate) {
    reply refused;
    const auto body = body_object(req, true, refused);
    if (!body) return refused;
    std::string client_state, command_id;
    if (auto it = body->find("client_state"); it != body->end() && !it->is_null()) {
      if (!it->is_string() || !http::unbase64(it->get<std::string>()))
        return error_reply(422, bad_value("client_state", "it must be a valid Base-64 encoded string"));
      client_state = it->get<std::string>();
    }
    if (auto it = body->find("command_id"); it != body->end() && !it->is_null()) {
      if (!it->is_string()) return error_reply(422, bad_value("command_id", "a string is expected"));
      command_id = it->get<std::string>();
    }
    std::shared_ptr<call_record> c;
    std::optional<call_strand> strand;
    {
      std::lock_guard lock(mutex_);
      auto it = calls_.find(id);
      if (it == calls_.end()) return not_found("Call " + id);
      c = it->second;
      if (!command_id.empty() && c->command_ids.contains(command_id)) {
        ++counters_.duplicate_hangup_commands;  // Telnyx ignores a command repeated on the same call
        duplicate = true;
      } else if (c->ended) {
        return call_ended();
      } else {
        if (c->answered_at) {
          const auto talked =
              std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - *c->answered_at);
          end_call(*c, "normal_clearing", clearing_sip(*c), our_side(*c), reported_seconds(talked));
        } else if (c->direction == "incoming") {  // still parked
          end_call(*c, "normal_clearing", "unspecified", "callee", 0);
        } else {
          end_call(*c, "originator_cancel", "487", "caller", 0);
        }
        if (!command_id.empty()) c->command_ids.insert(command_id);
        if (!client_state.empty()) c->client_state = client_state;
        ++counters_.hangups;
        strand = c->rt->strand;  // not settled yet: it settles only once it has ended
      }
    }
    if (strand) {
      changed_.notify_all();
      wake(c, *strand);
    }
    return command_ok();
  }

  // Wakes a call's life (cancels its timer, on its strand) to look again at what changed.
  static void wake(const std::shared_ptr<call_record>& c, const call_strand& strand) {
    net::post(strand, [c] {
      if (c->rt) c->rt->timer.cancel();
    });
  }

  // ---- transfer, answer, reject ----

  std::vector<api_error> read_transfer_params(const json& body, transfer_params& t) const {
    std::vector<api_error> errors;
    command_fields f(body, errors);
    if (!f.field("to")) {
      errors.push_back(missing("to"));
    } else if (f.string("to", t.to) && !is_transfer_target(t.to)) {
      errors.push_back(bad_value("to", "'" + t.to + "' is neither a SIP URI nor a +E.164 number"));
    }
    if (f.string("from", t.from) && !is_e164(t.from)) {
      errors.emplace_back("10016", "Phone number must be in +E.164 format",
                          "The 'from' number " + t.from + " is not in +E.164 format.", "/from");
    }
    f.base64("client_state", t.client_state);
    f.base64("target_leg_client_state", t.target_leg_client_state);
    f.string("command_id", t.command_id);
    f.headers("custom_headers", t.custom_headers);
    f.url("webhook_url", t.webhook_url);
    f.one_of("webhook_url_method", t.webhook_url_method, {"POST", "GET"});
    f.integer_in("timeout_secs", 5, 600);
    return errors;
  }

  // A live call, answered or (incoming) parked, gets a new leg to `to`: the agent's, a call of its own.
  reply transfer_call(const request& req, const std::string& id, bool& duplicate) {
    reply refused;
    const auto body = body_object(req, true, refused);
    if (!body) return refused;
    transfer_params t;
    if (auto errors = read_transfer_params(*body, t); !errors.empty()) return error_reply(422, errors);
    std::shared_ptr<call_record> a, b;
    {
      std::lock_guard lock(mutex_);
      auto it = calls_.find(id);
      if (it == calls_.end()) return not_found("Call " + id);
      a = it->second;
      if (!t.command_id.empty() && a->command_ids.contains(t.command_id)) {
        ++counters_.duplicate_call_commands;
        duplicate = true;
        return command_ok();
      }
      if (a->ended) return call_ended();
      if (a->state != "answered" && a->state != "parked")
        return bad_call_state("This call has not been answered yet: it can't be transferred.");
      if (!t.command_id.empty()) a->command_ids.insert(t.command_id);
      if (!t.client_state.empty()) a->client_state = t.client_state;
      a->transfer_to = t.to;
      a->transfer_custom_headers = t.custom_headers;
      a->transfer_target_leg_client_state = t.target_leg_client_state;
      ++a->transfers;
      ++counters_.transfers;

      b = std::make_shared<call_record>();
      auto& p = b->placed;
      p.call_control_id = new_call_control_id();
      p.call_leg_id = new_uuid();
      p.call_session_id = a->placed.call_session_id;  // the legs of one call share its session
      p.connection_id = options_.connection_id;
      p.to = t.to;
      p.from = t.from.empty() ? a->placed.to : t.from;
      p.webhook_url = t.webhook_url.empty() ? app_.webhook_event_url : t.webhook_url;
      p.client_state = t.target_leg_client_state;
      p.attempt = attempt_of(p.client_state);
      p.custom_headers = t.custom_headers;
      p.created_at = sys_clock::now();
      b->transferred_from = id;
      b->agent_answers = agent_answers_;
      b->client_state = p.client_state;
      b->url = p.webhook_url;
      b->where = parse_url(b->url);
      b->rt = std::make_unique<call_runtime>(*io_);
      a->agent_legs.push_back(b);
      a->agent_leg_id = p.call_control_id;
      calls_.emplace(p.call_control_id, b);
      others_.push_back(b);
      agent_order_.push_back(b);
    }
    changed_.notify_all();
    net::co_spawn(b->rt->strand, run_agent_leg(b, a), report_failure{});
    return command_ok();
  }

  std::vector<api_error> read_answer_params(const json& body, telnyx_answer& a) const {
    std::vector<api_error> errors;
    command_fields f(body, errors);
    f.base64("client_state", a.client_state);
    f.string("command_id", a.command_id);
    f.string("stream_url", a.stream_url);
    f.one_of("stream_track", a.stream_track, {"inbound_track", "outbound_track", "both_tracks"});
    f.one_of("stream_bidirectional_mode", a.stream_bidirectional_mode, {"mp3", "rtp"});
    f.url("webhook_url", a.webhook_url);
    f.one_of("webhook_url_method", a.webhook_url_method, {"POST", "GET"});
    f.headers("custom_headers", a.custom_headers);
    return errors;
  }

  // A parked incoming call is answered: call.answered, then the caller hangs up after `talk`.
  reply answer_call(const request& req, const std::string& id, bool& duplicate) {
    reply refused;
    const auto body = body_object(req, true, refused);
    if (!body) return refused;
    telnyx_answer given;
    if (auto errors = read_answer_params(*body, given); !errors.empty()) return error_reply(422, errors);
    std::shared_ptr<call_record> c;
    std::optional<call_strand> strand;
    {
      std::lock_guard lock(mutex_);
      auto it = calls_.find(id);
      if (it == calls_.end()) return not_found("Call " + id);
      c = it->second;
      if (!given.command_id.empty() && c->command_ids.contains(given.command_id)) {
        ++counters_.duplicate_call_commands;
        duplicate = true;
        return command_ok();
      }
      if (c->ended) return call_ended();
      if (c->direction != "incoming" || c->state != "parked")
        return bad_call_state("Only a parked incoming call can be answered; this one is " +
                              (c->direction == "incoming" ? c->state : c->direction) + ".");
      if (!given.command_id.empty()) c->command_ids.insert(given.command_id);
      if (!given.client_state.empty()) c->client_state = given.client_state;
      if (!given.webhook_url.empty()) {
        c->url = given.webhook_url;
        c->where = parse_url(c->url);
      }
      c->state = "answered";
      c->answered_at = steady::now();
      c->answered_by_command = true;
      c->answer = std::move(given);
      ++counters_.inbound_answered;
      strand = c->rt->strand;
    }
    changed_.notify_all();
    wake(c, *strand);
    return command_ok();
  }

  // A parked incoming call is refused: it ends (call.hangup with the cause's hangup_cause and SIP response).
  reply reject_call(const request& req, const std::string& id, bool& duplicate) {
    reply refused;
    const auto body = body_object(req, true, refused);
    if (!body) return refused;
    reject_params given;
    std::vector<api_error> errors;
    command_fields f(*body, errors);
    const reject_cause_entry* cause = nullptr;
    if (!f.field("cause")) {
      errors.push_back(missing("cause"));
    } else if (f.string("cause", given.cause)) {
      for (const auto& r : reject_causes)
        if (r.cause == given.cause) cause = &r;
      if (!cause)
        errors.push_back(bad_value("cause", "'" + given.cause +
                                                "' is not one of CALL_REJECTED, NOT_FOUND, "
                                                "TEMPORARILY_UNAVAILABLE, USER_BUSY"));
    }
    f.base64("client_state", given.client_state);
    f.string("command_id", given.command_id);
    if (!errors.empty()) return error_reply(422, errors);
    std::shared_ptr<call_record> c;
    std::optional<call_strand> strand;
    {
      std::lock_guard lock(mutex_);
      auto it = calls_.find(id);
      if (it == calls_.end()) return not_found("Call " + id);
      c = it->second;
      if (!given.command_id.empty() && c->command_ids.contains(given.command_id)) {
        ++counters_.duplicate_call_commands;
        duplicate = true;
        return command_ok();
      }
      if (c->ended) return call_ended();
      if (c->direction != "incoming" || c->state != "parked")
        return bad_call_state("Only a parked incoming call can be rejected; this one is " +
                              (c->direction == "incoming" ? c->state : c->direction) + ".");
      if (!given.command_id.empty()) c->command_ids.insert(given.command_id);
      if (!given.client_state.empty()) c->client_state = given.client_state;
      end_call(*c, cause->hangup_cause, cause->sip, "callee", 0);
      c->reject_cause = given.cause;
      ++counters_.inbound_rejected;
      strand = c->rt->strand;
    }
    changed_.notify_all();
    wake(c, *strand);
    return command_ok();
  }

  void log_created(const telnyx_placed_call& p) const {
    if (log_fd_ < 0) return;
    const json line = {{"call_control_id", p.call_control_id},
                       {"call_leg_id", p.call_leg_id},
                       {"call_session_id", p.call_session_id},
                       {"connection_id", p.connection_id},
                       {"to", p.to},
                       {"from", p.from},
                       {"webhook_url", p.webhook_url},
                       {"client_state", p.client_state},
                       {"command_id", p.command_id},
                       {"attempt", p.attempt},
                       {"answering_machine_detection", p.answering_machine_detection},
                       {"created_at", iso(p.created_at)},
                       {"fault", to_string(p.fault)},
                       {"port", port_.load()}};
    const std::string text = line.dump() + "\n";
    if (::write(log_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      std::fprintf(stderr, "fake_telnyx: writing %s failed: %s\n", options_.log_path.c_str(),
                   std::strerror(errno));
  }

  // ---- ids (under mutex_) ----

  std::string new_uuid() {
    std::uint64_t hi = rng_(), lo = rng_();
    hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
    std::array<char, 40> out{};
    std::snprintf(out.data(), out.size(), "%08llx-%04llx-%04llx-%04llx-%012llx",
                  static_cast<unsigned long long>(hi >> 32),
                  static_cast<unsigned long long>((hi >> 16) & 0xffff),
                  static_cast<unsigned long long>(hi & 0xffff), static_cast<unsigned long long>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xffffffffffffULL));
    return out.data();
  }
  // "v3:" and 32 url-safe base64 characters (24 random bytes).
  std::string new_call_control_id() {
    std::string bytes;
    for (int i = 0; i < 3; ++i) {
      const std::uint64_t r = rng_();
      bytes.append(reinterpret_cast<const char*>(&r), sizeof r);
    }
    std::string id = http::base64(bytes);
    for (auto& ch : id) ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    return "v3:" + id;
  }
  // 19 decimal digits, unused by any number so far.
  std::string new_number_id() {
    for (;;) {
      std::string id = std::to_string(1'000'000'000'000'000'000ULL + rng_() % 8'000'000'000'000'000'000ULL);
      if (used_number_ids_.insert(id).second) return id;
    }
  }

  // ---- a call's life (on its strand) ----

  std::int64_t reported_seconds(std::chrono::microseconds real) const {
    const double seconds = static_cast<double>(real.count()) * options_.time_scale / 1e6;
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(seconds - 1e-9)));
  }

  // Its agents' legs still up learn that it has ended (they wake and end too).
  void end_call(call_record& c, std::string_view cause, std::string_view sip, std::string_view source,
                std::int64_t duration) {  // under mutex_
    c.ended = true;
    c.state = "hangup";
    c.hangup_cause = cause;
    c.sip_hangup_cause = sip;
    c.hangup_source = source;
    c.duration = duration;
    c.end_time = sys_clock::now();
    ++counters_.calls_ended;
    for (const auto& leg : c.agent_legs)
      if (!leg->ended && leg->rt) wake(leg, leg->rt->strand);
  }

  // Until `d` has passed or `woken()` holds (checked under mutex_: whoever makes it hold wakes the call
  // afterwards); false when the call has ended meanwhile (a hangup wakes it).
  net::awaitable<bool> pause(std::shared_ptr<call_record> c, std::chrono::milliseconds d,
                             std::function<bool()> woken = nullptr) {
    const auto deadline = steady::now() + d;
    for (;;) {
      bool ended = false, now_woken = false;
      {
        std::lock_guard lock(mutex_);
        ended = c->ended;
        now_woken = woken && woken();
      }
      if (ended) co_return false;
      if (now_woken || steady::now() >= deadline) co_return true;
      c->rt->timer.expires_at(deadline);
      beast::error_code ec;
      co_await c->rt->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  }

  // Ends the call unless it has ended already; false if it had.
  bool finish(call_record& c, std::string_view cause, std::string_view sip, std::string_view source,
              std::int64_t duration) {
    {
      std::lock_guard lock(mutex_);
      if (c.ended) return false;
      end_call(c, cause, sip, source, duration);
    }
    changed_.notify_all();
    return true;
  }

  bool answer(call_record& c) {
    {
      std::lock_guard lock(mutex_);
      if (c.ended) return false;
      c.state = "answered";
      c.answered_at = steady::now();
    }
    changed_.notify_all();
    return true;
  }

  [[nodiscard]] bool detects_machines(const call_record& c) const {
    const auto& amd = c.placed.answering_machine_detection;
    return !amd.empty() && amd != "disabled";
  }

  net::awaitable<void> run_call(std::shared_ptr<call_record> c) {
    {
      std::lock_guard lock(mutex_);
      c->start_time = sys_clock::now();
    }
    emit(c, "call.initiated");
    co_await live(c);
    emit_hangup(c);
    c->rt->life_done = true;
    maybe_settle(c);
  }

  // Ringing, then the outcome the last digit of `to` says, unless a hangup ends the call first.
  net::awaitable<void> live(std::shared_ptr<call_record> c) {
    const char digit = c->placed.to.back();
    if (digit == '7') {  // nobody answers: Telnyx gives up on the caller's behalf
      if (co_await pause(c, options_.ring * 2)) finish(*c, "timeout", "487", "caller", 0);
      co_return;
    }
    bool on = co_await pause(c, options_.ring);
    if (!on) co_return;
    if (digit == '6') {
      finish(*c, "user_busy", "486", "callee", 0);
    } else if (digit == '8') {
      finish(*c, "call_rejected", "503", "callee", 0);
    } else if (answer(*c)) {
      emit(c, "call.answered");
      const auto full = digit == '9' ? options_.machine_talk.value_or(options_.talk) : options_.talk;
      auto talk = full;
      if (detects_machines(*c)) {
        const auto detection = std::min(options_.amd_delay, talk);
        on = co_await pause(c, detection);
        if (!on) co_return;
        {
          std::lock_guard lock(mutex_);
          c->amd_result = digit == '9' ? "machine" : "human";
        }
        emit(c, "call.machine.detection.ended");
        talk -= detection;
      }
      on = co_await pause(c, talk);
      if (on) finish(*c, "normal_clearing", "200", "callee", reported_seconds(full));
    }
  }

  // ---- an agent's leg (on its strand) ----

  net::awaitable<void> run_agent_leg(std::shared_ptr<call_record> b, std::shared_ptr<call_record> a) {
    {
      std::lock_guard lock(mutex_);
      b->start_time = sys_clock::now();
    }
    emit(b, "call.initiated");
    co_await agent_live(b, a);
    emit_hangup(b);
    // An agent that answered and hangs up first ends the call it was bridged to (park_after_unbridge unset).
    std::optional<call_strand> strand;
    {
      std::lock_guard lock(mutex_);
      if (b->answered_at && !a->ended && a->rt) {
        const auto talked = std::chrono::duration_cast<std::chrono::microseconds>(
            steady::now() - a->answered_at.value_or(steady::now()));
        end_call(*a, "normal_clearing", clearing_sip(*a), our_side(*a),
                 a->answered_at ? reported_seconds(talked) : 0);
        strand = a->rt->strand;
      }
    }
    if (strand) {
      changed_.notify_all();
      wake(a, *strand);
    }
    b->rt->life_done = true;
    maybe_settle(b);
  }

  // Rings `ring`, then refuses (agent_answers false) or answers and stays up until the transferred call ends or
  // `agent_talk` is over (then run_agent_leg ends that call); that call ending while it rings cancels it.
  net::awaitable<void> agent_live(std::shared_ptr<call_record> b, std::shared_ptr<call_record> a) {
    const auto a_ended = [a] { return a->ended; };              // under mutex_
    if (!co_await pause(b, options_.ring, a_ended)) co_return;  // hung up meanwhile
    bool gone = false;
    {
      std::lock_guard lock(mutex_);
      gone = a->ended;
    }
    if (gone) {
      finish(*b, "originator_cancel", "487", "caller", 0);
      co_return;
    }
    if (!b->agent_answers) {
      finish(*b, "call_rejected", "603", "callee", 0);
      co_return;
    }
    bool answered = false;
    std::optional<call_strand> bridged;
    {
      std::lock_guard lock(mutex_);
      if (!b->ended) {
        answered = true;
        b->state = "answered";
        b->answered_at = steady::now();
        if (!a->ended && a->state == "parked" && a->rt) {  // an incoming call transferred parked: bridged now
          a->state = "answered";
          a->answered_at = b->answered_at;
          bridged = a->rt->strand;
        }
      }
    }
    if (!answered) co_return;
    changed_.notify_all();
    if (bridged) wake(a, *bridged);
    emit(b, "call.answered");
    if (!co_await pause(b, options_.agent_talk, a_ended)) co_return;
    std::chrono::microseconds talked{0};
    bool agent_first = false;  // `agent_talk` is over while the transferred call is still up
    {
      std::lock_guard lock(mutex_);
      talked = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - *b->answered_at);
      agent_first = !a->ended;
    }
    finish(*b, "normal_clearing", "200", agent_first ? "callee" : "caller", reported_seconds(talked));
  }

  // ---- an incoming call (on its strand) ----

  net::awaitable<void> run_inbound(std::shared_ptr<call_record> c) {
    emit(c, "call.initiated");
    co_await inbound_live(c);
    emit_hangup(c);
    c->rt->life_done = true;
    maybe_settle(c);
  }

  // Parked until an answer command (call.answered) or a transfer's agent answers it (no webhook: Telnyx's
  // call.bridged is not sent); then the caller hangs up after `talk`. A reject or a hangup ends it sooner.
  net::awaitable<void> inbound_live(std::shared_ptr<call_record> c) {
    const auto answered = [c] { return c->answered_at.has_value(); };  // under mutex_
    bool is_answered = false, announce = false;
    while (!is_answered) {
      if (!co_await pause(c, forever, answered)) co_return;
      std::lock_guard lock(mutex_);
      is_answered = c->answered_at.has_value();
      announce = c->answered_by_command;
    }
    if (announce) emit(c, "call.answered");
    if (co_await pause(c, options_.talk))
      finish(*c, "normal_clearing", "unspecified", "caller", reported_seconds(options_.talk));
  }

  std::string inbound_call(std::string from, std::string to) {
    if (from.empty() || to.empty())
      throw std::invalid_argument("fake_telnyx: an incoming call needs a from and a to");
    if (!running_) throw std::logic_error("fake_telnyx: inbound_call() between start() and stop() only");
    auto c = std::make_shared<call_record>();
    c->direction = "incoming";
    c->state = "parked";
    auto& p = c->placed;
    p.from = std::move(from);
    p.to = std::move(to);
    p.connection_id = options_.connection_id;
    p.created_at = sys_clock::now();
    std::string id;
    {
      std::lock_guard lock(mutex_);
      p.webhook_url = app_.webhook_event_url;
      c->url = p.webhook_url;
      c->where = parse_url(c->url);
      c->rt = std::make_unique<call_runtime>(*io_);
      id = p.call_control_id = new_call_control_id();
      p.call_leg_id = new_uuid();
      p.call_session_id = new_uuid();
      c->start_time = p.created_at;
      calls_.emplace(id, c);
      others_.push_back(c);
      ++counters_.inbound_calls;
    }
    changed_.notify_all();
    net::co_spawn(c->rt->strand, run_inbound(c), report_failure{});
    return id;
  }

  json event(call_record& c, std::string_view type) {  // under mutex_
    const auto& p = c.placed;
    json payload = {{"call_control_id", p.call_control_id},
                    {"call_leg_id", p.call_leg_id},
                    {"call_session_id", p.call_session_id},
                    {"connection_id", p.connection_id},
                    {"from", p.from},
                    {"to", p.to},
                    {"direction", c.direction},
                    {"state", c.state},
                    {"start_time", iso(c.start_time.value_or(p.created_at))}};
    if (!c.client_state.empty()) payload["client_state"] = c.client_state;
    ++c.webhooks_generated;
    return {{"record_type", "event"},
            {"event_type", std::string(type)},
            {"id", new_uuid()},
            {"occurred_at", occurred(sys_clock::now())},
            {"payload", std::move(payload)}};
  }

  outgoing webhook(const call_record& c, json data) const {  // under mutex_
    outgoing o;
    o.where = *c.where;
    o.url = c.url;
    o.data = std::move(data);
    return o;
  }

  void emit(const std::shared_ptr<call_record>& c, std::string_view type) {
    if (c->meets(telnyx_webhook_fault::never)) return;
    const bool amd = type == "call.machine.detection.ended";
    outgoing o;
    {
      std::lock_guard lock(mutex_);
      if (!c->where) return;
      json data = event(*c, type);
      if (type == "call.initiated")  // even if already hung up
        data["payload"]["state"] = c->direction == "incoming" ? "parked" : "bridging";
      if (amd) data["payload"]["result"] = c->amd_result;
      o = webhook(*c, std::move(data));
    }
    o.amd = amd;
    if (c->meets(telnyx_webhook_fault::out_of_order)) {
      c->rt->held.push_back(std::move(o));
      return;
    }
    enqueue(c, std::move(o));
  }

  void emit_hangup(const std::shared_ptr<call_record>& c) {
    if (c->meets(telnyx_webhook_fault::never)) return;
    outgoing o;
    {
      std::lock_guard lock(mutex_);
      if (!c->where) return;
      json data = event(*c, "call.hangup");
      auto& payload = data["payload"];
      payload["hangup_cause"] = c->hangup_cause;
      payload["hangup_source"] = c->hangup_source;
      payload["sip_hangup_cause"] = c->sip_hangup_cause;
      payload["end_time"] = iso(*c->end_time);
      payload["call_quality_stats"] = nullptr;
      o = webhook(*c, std::move(data));
    }
    o.hangup = true;
    if (c->meets(telnyx_webhook_fault::late)) o.delay = options_.late_by;
    enqueue(c, std::move(o));
    for (auto& h : c->rt->held) enqueue(c, std::move(h));
    c->rt->held.clear();
  }

  void enqueue(const std::shared_ptr<call_record>& c, outgoing o) {
    auto& rt = *c->rt;
    rt.outbox.push_back(std::move(o));
    if (rt.sending) return;
    rt.sending = true;
    net::co_spawn(rt.strand, drain(c), report_failure{});
  }

  void maybe_settle(const std::shared_ptr<call_record>& c) {
    if (!c->rt || !c->rt->life_done || c->rt->sending || !c->rt->outbox.empty()) return;
    std::unique_ptr<call_runtime> done;
    {
      std::lock_guard lock(mutex_);
      c->settled = true;
      ++counters_.calls_settled;
      done = std::move(c->rt);  // nothing waits on it any more: a long run keeps only the calls' data
      c->where.reset();
    }
    changed_.notify_all();
  }

  // ---- the webhooks (on the call's strand) ----

  net::awaitable<void> drain(std::shared_ptr<call_record> c) {
    auto& rt = *c->rt;
    while (!rt.outbox.empty()) {
      outgoing o = std::move(rt.outbox.front());
      rt.outbox.pop_front();
      if (o.delay.count() > 0) {
        net::steady_timer wait(rt.strand, o.delay);
        beast::error_code ec;
        co_await wait.async_wait(net::redirect_error(net::use_awaitable, ec));
      }
      co_await deliver(c, std::move(o));
    }
    rt.sending = false;
    maybe_settle(c);
  }

  net::awaitable<void> deliver(std::shared_ptr<call_record> c, outgoing o) {
    for (int copy = 0; copy < (c->meets(telnyx_webhook_fault::twice) ? 2 : 1); ++copy) {
      if (c->meets(telnyx_webhook_fault::bad_signature)) {
        co_await post(o, 1, wrong_key_);
        count([](fake_telnyx_counters& k) { ++k.webhooks_bad_signed; });
        if (!options_.resend_after_bad_signature) continue;
      }
      const bool delivered = co_await post_with_retries(o);
      if (!delivered || !o.hangup) continue;
      bool first_time = false;
      {
        std::lock_guard lock(mutex_);
        first_time = !c->hangup_delivered;
        c->hangup_delivered = true;
        if (first_time) ++counters_.hangups_delivered;
      }
      if (first_time) changed_.notify_all();
    }
  }

  net::awaitable<bool> post_with_retries(const outgoing& o) {
    for (int attempt = 1;; ++attempt) {
      const unsigned status = co_await post(o, attempt, key_);
      if (status >= 200 && status < 300) {
        count([&o](fake_telnyx_counters& k) {
          ++k.webhooks_sent;
          if (o.amd) ++k.amd_webhooks_sent;
        });
        co_return true;
      }
      const bool again = status == 0 || status >= 500 || status == 429;
      if (!again || attempt >= options_.webhook_attempts) break;
      count([](fake_telnyx_counters& k) { ++k.webhook_retries; });
      net::steady_timer wait(co_await net::this_coro::executor, options_.webhook_retry_delay);
      beast::error_code ec;
      co_await wait.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    count([](fake_telnyx_counters& k) { ++k.webhooks_failed; });
    co_return false;
  }

  // One HTTP request of a webhook, signed with `key` over "<telnyx-timestamp>|<body>"; its status, 0 when no
  // answer came.
  net::awaitable<unsigned> post(const outgoing& o, int attempt, const ed25519_key& key) {
    count([](fake_telnyx_counters& k) { ++k.webhook_posts; });
    std::string authority;
    {
      std::lock_guard lock(mutex_);
      authority = callback_authority_;
    }
    const bool redirected = !authority.empty();
    std::optional<parsed_url> to = redirected ? parse_url("http://" + authority) : o.where;
    if (!to || (!redirected && o.where.https)) co_return 0;  // no TLS here: an https URL needs the authority
    const json envelope = {{"data", o.data}, {"meta", {{"attempt", attempt}, {"delivered_to", o.url}}}};
    const std::string body = envelope.dump();
    const std::string timestamp = std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(sys_clock::now().time_since_epoch()).count());
    request req{bhttp::verb::post, o.where.target, 11};
    req.set(bhttp::field::host, o.where.authority);
    req.set(bhttp::field::user_agent, "telnyx-webhooks");
    req.set(bhttp::field::content_type, "application/json");
    req.set("telnyx-timestamp", timestamp);
    req.set("telnyx-signature-ed25519", key.sign(timestamp + "|" + body));
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    const std::string pool_key = to->host + ":" + to->port;
    for (int round = 0; round < 2; ++round) {
      std::unique_ptr<beast::tcp_stream> stream = take_idle(pool_key);
      const bool reused = stream != nullptr;
      beast::error_code ec;
      if (!stream) {
        stream = std::make_unique<beast::tcp_stream>(io_->get_executor());
        stream->expires_after(options_.webhook_timeout);
        tcp::resolver resolver(co_await net::this_coro::executor);
        const auto endpoints =
            co_await resolver.async_resolve(to->host, to->port, net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return 0;
        co_await stream->async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return 0;
      }
      stream->expires_after(options_.webhook_timeout);
      co_await bhttp::async_write(*stream, req, net::redirect_error(net::use_awaitable, ec));
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(1024 * 1024);
      if (!ec)
        co_await bhttp::async_read(*stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (reused && round == 0) continue;  // the receiver had closed the idle connection: a fresh one
        co_return 0;
      }
      const unsigned status = parser.get().result_int();
      if (parser.get().keep_alive()) give_back(pool_key, std::move(stream));
      co_return status;
    }
    co_return 0;
  }

  std::unique_ptr<beast::tcp_stream> take_idle(const std::string& key) {
    std::lock_guard lock(pool_mutex_);
    auto it = idle_.find(key);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    auto s = std::move(it->second.back());
    it->second.pop_back();
    return s;
  }
  void give_back(const std::string& key, std::unique_ptr<beast::tcp_stream> s) {
    std::lock_guard lock(pool_mutex_);
    auto& v = idle_[key];
    if (v.size() < 1024) v.push_back(std::move(s));
  }

  // ---- numbers ----

  // Its id.
  std::string add_number(std::shared_ptr<number_record> r) {  // under mutex_ (or in the constructor)
    std::string id = new_number_id();
    r->id = id;
    r->seq = next_number_seq_++;
    number_ids_.emplace(r->phone_number, id);
    numbers_.emplace(id, std::move(r));
    return id;
  }

  [[nodiscard]] bool available(const std::string& phone) const {  // under mutex_
    return inventory_.contains(phone) && !number_ids_.contains(phone);
  }

  static json available_json(const std::string& phone, const inventory_entry& e) {
    json regions = json::array({{{"region_type", "country_code"}, {"region_name", "US"}}});
    if (!e.state.empty()) regions.push_back({{"region_type", "state"}, {"region_name", e.state}});
    if (!e.rate_center.empty())
      regions.push_back({{"region_type", "rate_center"}, {"region_name", e.rate_center}});
    return {{"record_type", "available_phone_number"},
            {"phone_number", phone},
            {"vanity_format", ""},
            {"best_effort", false},
            {"quickship", true},
            {"reservable", true},
            {"features", json::array({{{"name", "voice"}}, {{"name", "sms"}}})},
            {"region_information", regions},
            {"cost_information",
             {{"currency", "USD"}, {"monthly_cost", "1.00000"}, {"upfront_cost", "1.00000"}}}};
  }

  reply available_numbers(const query_params& q) {
    const auto value = [&](const char* name) { return first(q, name); };
    // An unencoded '+' in a query is a space: read it back as the '+' it was.
    const auto pattern = [&](const char* name) -> std::optional<std::string> {
      const std::string* v = value(name);
      if (!v) return std::nullopt;
      std::string s = *v;
      if (!s.empty() && s[0] == ' ') s[0] = '+';
      return s;
    };
    const std::string* country = value("filter[country_code]");
    const std::string* ndc = value("filter[national_destination_code]");
    const auto starts = pattern("filter[phone_number][starts_with]");
    const auto contains = pattern("filter[phone_number][contains]");
    const auto ends = pattern("filter[phone_number][ends_with]");
    const std::string* type = value("filter[phone_number_type]");
    const std::string* state = value("filter[administrative_area]");
    const std::string* locality = value("filter[locality]");
    const std::string* rate_center = value("filter[rate_center]");
    const std::string* limit_text = value("filter[limit]");
    if (type && *type != "local" && *type != "toll_free" && *type != "mobile" && *type != "national" &&
        *type != "shared_cost")
      return error_reply(422,
                         bad_query("filter[phone_number_type]",
                                   "one of local, toll_free, mobile, national, shared_cost is expected"));
    std::size_t limit = 10;
    if (limit_text) {
      const auto n = to_number<int>(*limit_text);
      if (!n || *n < 1) return error_reply(422, bad_query("filter[limit]", "a positive integer is expected"));
      limit = static_cast<std::size_t>(std::min(*n, 100));
    }
    const auto matches = [&](const std::string& phone, const inventory_entry& e) {
      if (country && *country != "US") return false;
      const std::string national = phone.substr(2);
      // With an area code asked for, the patterns apply to the rest of the number.
      const std::string rest = ndc ? national.substr(3) : national;
      if (ndc && national.substr(0, 3) != *ndc) return false;
      const auto space = [&](const std::string& p) -> const std::string& {
        return p[0] == '+' ? phone : rest;
      };
      if (starts && !starts->empty() && !space(*starts).starts_with(*starts)) return false;
      if (contains && !contains->empty() && space(*contains).find(*contains) == std::string::npos)
        return false;
      if (ends && !phone.ends_with(*ends)) return false;
      if (type && e.type != *type) return false;
      if (state && lower(e.state) != lower(*state)) return false;
      if (locality && lower(e.rate_center) != lower(*locality)) return false;
      if (rate_center && lower(e.rate_center) != lower(*rate_center)) return false;
      return true;
    };
    json data = json::array();
    {
      std::lock_guard lock(mutex_);
      for (const auto& [phone, e] : inventory_) {
        if (data.size() >= limit) break;
        if (available(phone) && matches(phone, e)) data.push_back(available_json(phone, e));
      }
    }
    const auto n = data.size();
    return json_reply(bhttp::status::ok, {{"data", std::move(data)},
                                          {"meta", {{"total_results", n}, {"best_effort_results", 0}}}});
  }

  json number_json(const number_record& n) const {  // under mutex_
    return {{"id", n.id},
            {"record_type", "phone_number"},
            {"phone_number", n.phone_number},
            {"status", n.status},
            {"phone_number_type", n.type},
            {"connection_id", n.connection_id.empty() ? json() : json(n.connection_id)},
            {"connection_name", n.connection_id == app_.id ? json(app_.name) : json()},
            {"tags", n.tags},
            {"customer_reference", n.customer_reference ? json(*n.customer_reference) : json()},
            {"billing_group_id", nullptr},
            {"messaging_profile_id", nullptr},
            {"messaging_profile_name", nullptr},
            {"emergency_enabled", false},
            {"emergency_address_id", nullptr},
            {"call_forwarding_enabled", true},
            {"call_recording_enabled", false},
            {"caller_id_name_enabled", false},
            {"cnam_listing_enabled", false},
            {"t38_fax_gateway_enabled", false},
            {"deletion_lock_enabled", false},
            {"external_pin", nullptr},
            {"purchased_at", iso(n.created_at)},
            {"created_at", iso(n.created_at)},
            {"updated_at", iso(n.updated_at)}};
  }

  json order_json(const order_record& o) const {  // under mutex_
    json numbers = json::array();
    for (const auto& [id, phone] : o.numbers) {
      numbers.push_back({{"id", id},
                         {"record_type", "number_order_phone_number"},
                         {"phone_number", phone},
                         {"status", o.status},
                         {"phone_number_type", inventory_entry_of(phone).type},
                         {"country_code", "US"},
                         {"requirements_met", true},
                         {"regulatory_requirements", json::array()}});
    }
    return {{"id", o.id},
            {"record_type", "number_order"},
            {"status", o.status},
            {"phone_numbers", std::move(numbers)},
            {"phone_numbers_count", o.numbers.size()},
            {"connection_id", o.connection_id ? json(*o.connection_id) : json()},
            {"messaging_profile_id", nullptr},
            {"billing_group_id", nullptr},
            {"customer_reference", o.customer_reference ? json(*o.customer_reference) : json()},
            {"requirements_met", true},
            {"sub_number_orders_ids", json::array()},
            {"created_at", iso(o.created_at)},
            {"updated_at", iso(o.updated_at)}};
  }

  reply create_order(const request& req) {
    reply refused;
    const auto body = body_object(req, false, refused);
    if (!body) return refused;
    auto o = std::make_shared<order_record>();
    std::vector<std::string> phones;
    auto list = body->find("phone_numbers");
    if (list == body->end() || list->is_null()) return error_reply(422, missing("phone_numbers"));
    if (!list->is_array() || list->empty())
      return error_reply(422, bad_value("phone_numbers", "a non-empty array of {phone_number} is expected"));
    std::vector<api_error> errors;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const json& e = (*list)[i];
      const std::string at = "phone_numbers/" + std::to_string(i) + "/phone_number";
      if (!e.is_object() || !e.contains("phone_number") || !e["phone_number"].is_string()) {
        errors.push_back(bad_value(at, "a +E.164 string is expected"));
        continue;
      }
      phones.push_back(e["phone_number"].get<std::string>());
    }
    for (const char* name : {"connection_id", "customer_reference"}) {
      auto it = body->find(name);
      if (it == body->end() || it->is_null()) continue;
      if (!it->is_string()) {
        errors.push_back(bad_value(name, "a string is expected"));
        continue;
      }
      (std::string_view(name) == "connection_id" ? o->connection_id : o->customer_reference) =
          it->get<std::string>();
    }
    if (!errors.empty()) return error_reply(422, errors);
    json answer;
    {
      std::lock_guard lock(mutex_);
      std::set<std::string> seen;
      for (std::size_t i = 0; i < phones.size(); ++i) {
        if (available(phones[i]) && seen.insert(phones[i]).second) continue;
        errors.emplace_back("10002", "Invalid phone number",
                            "The phone number " + phones[i] + " is not available to order.",
                            "/phone_numbers/" + std::to_string(i) + "/phone_number");
      }
      if (!errors.empty()) return error_reply(422, errors);
      const auto now = sys_clock::now();
      o->id = new_uuid();
      o->created_at = o->updated_at = now;
      for (const auto& phone : phones) {
        auto r = std::make_shared<number_record>();
        r->phone_number = phone;
        r->status = "purchase-pending";
        r->type = inventory_.at(phone).type;
        r->connection_id = o->connection_id.value_or("");
        r->customer_reference = o->customer_reference;
        r->created_at = r->updated_at = now;
        o->numbers.emplace_back(add_number(std::move(r)), phone);
      }
      orders_.emplace(o->id, o);
      ++counters_.orders_created;
      answer = {{"data", order_json(*o)}};
    }
    changed_.notify_all();
    net::co_spawn(*io_, complete_order(o), report_failure{});
    return json_reply(bhttp::status::ok, answer);
  }

  // The order succeeds after order_delay: its numbers still in the account become active.
  net::awaitable<void> complete_order(std::shared_ptr<order_record> o) {
    net::steady_timer wait(co_await net::this_coro::executor, options_.order_delay);
    beast::error_code ec;
    co_await wait.async_wait(net::redirect_error(net::use_awaitable, ec));
    {
      std::lock_guard lock(mutex_);
      o->status = "success";
      o->updated_at = sys_clock::now();
      for (const auto& [id, phone] : o->numbers) {
        auto it = numbers_.find(id);
        if (it == numbers_.end() || it->second->status != "purchase-pending") continue;
        it->second->status = "active";
        it->second->updated_at = o->updated_at;
      }
      ++counters_.orders_completed;
    }
    changed_.notify_all();
  }

  reply get_order(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto it = orders_.find(id);
    if (it == orders_.end()) return not_found("Number order " + id);
    return json_reply(bhttp::status::ok, {{"data", order_json(*it->second)}});
  }

  reply list_numbers(const query_params& q) {
    const auto digits_of = [](std::string s) {
      std::erase_if(s, [](char c) { return c == '+' || c == ' '; });
      return s;
    };
    const std::string* phone = first(q, "filter[phone_number]");
    const std::string* status = first(q, "filter[status]");
    const std::string* connection = first(q, "filter[connection_id]");
    const std::string* tag = first(q, "filter[tag]");
    const std::string* number_text = first(q, "page[number]");
    const std::string* size_text = first(q, "page[size]");
    const auto page = number_text ? to_number<std::int64_t>(*number_text) : std::optional<std::int64_t>(1);
    if (!page || *page < 1)
      return error_reply(422, bad_query("page[number]", "a positive integer is expected"));
    const auto size = size_text ? to_number<std::int64_t>(*size_text) : std::optional<std::int64_t>(20);
    if (!size || *size < 1 || *size > 250)
      return error_reply(422, bad_query("page[size]", "an integer from 1 to 250 is expected"));
    json data = json::array();
    std::int64_t total = 0;
    {
      std::lock_guard lock(mutex_);
      std::vector<const number_record*> matches;
      for (const auto& [id, n] : numbers_) {
        if (phone && digits_of(n->phone_number) != digits_of(*phone)) continue;
        if (status && n->status != *status) continue;
        if (connection && n->connection_id != *connection) continue;
        if (tag && std::find(n->tags.begin(), n->tags.end(), *tag) == n->tags.end()) continue;
        matches.push_back(n.get());
      }
      // Newest first, as Telnyx sorts without `sort`.
      std::sort(matches.begin(), matches.end(), [](auto* a, auto* b) { return a->seq > b->seq; });
      total = static_cast<std::int64_t>(matches.size());
      const auto begin = std::min<std::int64_t>(total, (*page - 1) * *size);
      const auto end = std::min<std::int64_t>(total, begin + *size);
      for (auto i = begin; i < end; ++i) data.push_back(number_json(*matches[static_cast<std::size_t>(i)]));
    }
    const json meta = {{"total_pages", (total + *size - 1) / *size},
                       {"total_results", total},
                       {"page_number", *page},
                       {"page_size", *size}};
    return json_reply(bhttp::status::ok, {{"data", std::move(data)}, {"meta", meta}});
  }

  reply get_number(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto it = numbers_.find(id);
    if (it == numbers_.end()) return not_found("Phone number " + id);
    return json_reply(bhttp::status::ok, {{"data", number_json(*it->second)}});
  }

  reply update_number(const request& req, const std::string& id) {
    reply refused;
    const auto body = body_object(req, false, refused);
    if (!body) return refused;
    std::vector<api_error> errors;
    std::optional<std::string> connection;
    std::optional<std::optional<std::string>> reference;
    std::optional<std::vector<std::string>> tags;
    if (auto it = body->find("connection_id"); it != body->end()) {
      if (it->is_null())
        connection = "";
      else if (it->is_string())
        connection = it->get<std::string>();
      else
        errors.push_back(bad_value("connection_id", "a string is expected"));
    }
    if (auto it = body->find("customer_reference"); it != body->end()) {
      if (it->is_null())
        reference.emplace();
      else if (it->is_string())
        reference = it->get<std::string>();
      else
        errors.push_back(bad_value("customer_reference", "a string is expected"));
    }
    if (auto it = body->find("tags"); it != body->end()) {
      if (it->is_array() && std::all_of(it->begin(), it->end(), [](const json& t) { return t.is_string(); }))
        tags = it->get<std::vector<std::string>>();
      else
        errors.push_back(bad_value("tags", "an array of strings is expected"));
    }
    json answer;
    {
      std::lock_guard lock(mutex_);
      auto it = numbers_.find(id);
      if (it == numbers_.end()) return not_found("Phone number " + id);
      if (!errors.empty()) return error_reply(422, errors);
      auto& n = *it->second;
      if (connection) n.connection_id = *connection;
      if (reference) n.customer_reference = *reference;
      if (tags) n.tags = *tags;
      n.updated_at = sys_clock::now();
      ++counters_.numbers_updated;
      answer = {{"data", number_json(n)}};
    }
    changed_.notify_all();
    return json_reply(bhttp::status::ok, answer);
  }

  // The number leaves the account and becomes available again.
  reply delete_number(const std::string& id) {
    json answer;
    {
      std::lock_guard lock(mutex_);
      auto it = numbers_.find(id);
      if (it == numbers_.end()) return not_found("Phone number " + id);
      auto n = it->second;
      numbers_.erase(it);
      number_ids_.erase(n->phone_number);
      if (is_nanp(n->phone_number)) inventory_.emplace(n->phone_number, inventory_entry_of(n->phone_number));
      n->status = "deleted";
      n->updated_at = sys_clock::now();
      ++counters_.numbers_deleted;
      answer = {{"data", number_json(*n)}};
    }
    changed_.notify_all();
    return json_reply(bhttp::status::ok, answer);
  }

  // ---- the Call Control Application ----

  json application_json() const {  // under mutex_
    return {
        {"id", app_.id},
        {"record_type", "call_control_application"},
        {"application_name", app_.name},
        {"webhook_event_url", app_.webhook_event_url},
        {"webhook_event_failover_url", app_.failover_url ? json(*app_.failover_url) : json()},
        {"webhook_api_version", app_.api_version},
        {"webhook_timeout_secs", app_.timeout_secs ? json(*app_.timeout_secs) : json()},
        {"active", app_.active},
        {"anchorsite_override", "\"Latency\""},
        {"dtmf_type", "RFC 2833"},
        {"first_command_timeout", false},
        {"first_command_timeout_secs", 30},
        {"inbound", {{"channel_limit", nullptr}, {"shaken_stir_enabled", false}, {"sip_subdomain", nullptr}}},
        {"outbound", {{"channel_limit", nullptr}, {"outbound_voice_profile_id", nullptr}}},
        {"redact_dtmf_debug_logging", false},
        {"tags", app_.tags},
        {"created_at", iso(app_.created_at)},
        {"updated_at", iso(app_.updated_at)}};
  }

  reply get_application(const std::string& id) {
    if (id != options_.connection_id) return not_found("Call Control Application " + id);
    std::lock_guard lock(mutex_);
    return json_reply(bhttp::status::ok, {{"data", application_json()}});
  }

  // application_name and webhook_event_url are both required on an update (TPY's
  // call_control_application_update_params); the other fields kept here are optional.
  reply update_application(const request& req, const std::string& id) {
    if (id != options_.connection_id) return not_found("Call Control Application " + id);
    reply refused;
    const auto body = body_object(req, false, refused);
    if (!body) return refused;
    std::vector<api_error> errors;
    const auto field = [&](const char* name) -> const json* {
      auto it = body->find(name);
      return it == body->end() ? nullptr : &*it;
    };
    const json* name = field("application_name");
    const json* url = field("webhook_event_url");
    if (!name || name->is_null())
      errors.push_back(missing("application_name"));
    else if (!name->is_string() || name->get<std::string>().empty())
      errors.push_back(bad_value("application_name", "a non-empty string is expected"));
    if (!url || url->is_null())
      errors.push_back(missing("webhook_event_url"));
    else if (!url->is_string() || !parse_url(url->get<std::string>()))
      errors.push_back(bad_value("webhook_event_url", "an http or https URL is expected"));
    const json* active = field("active");
    if (active && !active->is_boolean()) errors.push_back(bad_value("active", "a boolean is expected"));
    const json* version = field("webhook_api_version");
    if (version && !(version->is_string() && (*version == "1" || *version == "2")))
      errors.push_back(bad_value("webhook_api_version", "\"1\" or \"2\" is expected"));
    const json* failover = field("webhook_event_failover_url");
    if (failover && !failover->is_null() &&
        !(failover->is_string() &&
          (failover->get<std::string>().empty() || parse_url(failover->get<std::string>()))))
      errors.push_back(bad_value("webhook_event_failover_url", "an http or https URL is expected"));
    const json* timeout = field("webhook_timeout_secs");
    if (timeout && !timeout->is_null() && !timeout->is_number_integer())
      errors.push_back(bad_value("webhook_timeout_secs", "an integer is expected"));
    const json* tags = field("tags");
    if (tags && !(tags->is_array() &&
                  std::all_of(tags->begin(), tags->end(), [](const json& t) { return t.is_string(); })))
      errors.push_back(bad_value("tags", "an array of strings is expected"));
    if (!errors.empty()) return error_reply(422, errors);
    json answer;
    {
      std::lock_guard lock(mutex_);
      app_.name = name->get<std::string>();
      app_.webhook_event_url = url->get<std::string>();
      if (active) app_.active = active->get<bool>();
      if (version) app_.api_version = version->get<std::string>();
      if (failover)
        app_.failover_url = failover->is_null() ? std::nullopt : std::optional(failover->get<std::string>());
      if (timeout)
        app_.timeout_secs = timeout->is_null() ? std::nullopt : std::optional(timeout->get<std::int64_t>());
      if (tags) app_.tags = tags->get<std::vector<std::string>>();
      app_.updated_at = sys_clock::now();
      answer = {{"data", application_json()}};
    }
    return json_reply(bhttp::status::ok, answer);
  }

  const fake_telnyx_options options_;
  const ed25519_key key_, wrong_key_;  // wrong_key_: the bad_signature fault's
  std::atomic<unsigned short> port_{0};
  int log_fd_ = -1;  // opened by start(), before the threads; closed by the destructor

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::string callback_authority_;                                          // guarded by mutex_
  rest_rates rest_rates_;                                                   // guarded by mutex_
  webhook_rates webhook_rates_;                                             // guarded by mutex_
  std::deque<std::pair<telnyx_rest_fault, int>> forced_;                    // guarded by mutex_
  std::uint64_t dial_requests_ = 0;                                         // guarded by mutex_
  std::unordered_map<std::string, std::shared_ptr<call_record>> calls_;     // guarded by mutex_
  std::vector<std::shared_ptr<call_record>> order_;                         // guarded by mutex_
  std::unordered_map<std::string, std::shared_ptr<call_record>> commands_;  // by dial command_id; mutex_
  std::vector<std::shared_ptr<call_record>> others_;       // agents' legs, incoming calls; guarded by mutex_
  std::vector<std::shared_ptr<call_record>> agent_order_;  // agents' legs, oldest first; guarded by mutex_
  std::vector<telnyx_command> command_log_;                // guarded by mutex_
  bool agent_answers_ = options_.agent_answers;            // guarded by mutex_
  fake_telnyx_counters counters_;                          // guarded by mutex_
  std::mt19937_64 rng_;                                    // guarded by mutex_
  application app_;                                        // guarded by mutex_
  std::map<std::string, inventory_entry> inventory_;       // by phone number, sorted; guarded by mutex_
  std::unordered_map<std::string, std::shared_ptr<number_record>> numbers_;  // by id; guarded by mutex_
  std::unordered_map<std::string, std::string> number_ids_;  // phone number -> id, in the account; mutex_
  std::unordered_set<std::string> used_number_ids_;          // guarded by mutex_
  std::uint64_t next_number_seq_ = 0;                        // guarded by mutex_
  std::unordered_map<std::string, std::shared_ptr<order_record>> orders_;  // guarded by mutex_

  std::mutex pool_mutex_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>>
      idle_;  // guarded by pool_mutex_

  std::atomic<bool> running_{false};  // between start() and stop()

  // Owner thread only.
  bool started_ = false, stopped_ = false;
  std::unique_ptr<net::io_context> io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
};

// ---- the public face ----

fake_telnyx::fake_telnyx(fake_telnyx_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
fake_telnyx::~fake_telnyx() = default;

void fake_telnyx::start() {
  impl_->start();
}
void fake_telnyx::stop() noexcept {
  impl_->stop();
}
unsigned short fake_telnyx::port() const noexcept {
  return impl_->port_.load();
}
std::string fake_telnyx::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port());
}
const std::string& fake_telnyx::api_key() const noexcept {
  return impl_->options_.api_key;
}
const std::string& fake_telnyx::connection_id() const noexcept {
  return impl_->options_.connection_id;
}
const std::string& fake_telnyx::public_key_base64() const noexcept {
  return impl_->key_.public_base64();
}

void fake_telnyx::set_rate(telnyx_rest_fault fault, double rate) {
  check_rate(rate);
  std::lock_guard lock(impl_->mutex_);
  if (fault != telnyx_rest_fault::none) impl_->rest_rates_[static_cast<std::size_t>(fault)] = rate;
}

void fake_telnyx::set_rate(telnyx_webhook_fault fault, double rate) {
  check_rate(rate);
  std::lock_guard lock(impl_->mutex_);
  impl_->webhook_rates_[static_cast<std::size_t>(fault)] = rate;
}

void fake_telnyx::set_callback_authority(std::string authority) {
  std::lock_guard lock(impl_->mutex_);
  impl_->callback_authority_ = std::move(authority);
}

void fake_telnyx::set_rates(const telnyx_fault_rates& rates) {
  check_rates(rates);
  std::lock_guard lock(impl_->mutex_);
  impl_->rest_rates_ = rest_rates_of(rates);
  impl_->webhook_rates_ = webhook_rates_of(rates);
}

void fake_telnyx::fail_next(telnyx_rest_fault fault, int n) {
  if (n <= 0) return;
  std::lock_guard lock(impl_->mutex_);
  impl_->forced_.emplace_back(fault, n);
}

void fake_telnyx::set_agent_answers(bool answers) {
  std::lock_guard lock(impl_->mutex_);
  impl_->agent_answers_ = answers;
}

std::string fake_telnyx::inbound_call(std::string from, std::string to) {
  return impl_->inbound_call(std::move(from), std::move(to));
}

std::vector<telnyx_placed_call> fake_telnyx::placed() const {
  std::lock_guard lock(impl_->mutex_);
  std::vector<telnyx_placed_call> out;
  out.reserve(impl_->order_.size());
  for (const auto& c : impl_->order_) out.push_back(c->placed);
  return out;
}

std::vector<telnyx_agent_leg> fake_telnyx::agent_legs() const {
  std::lock_guard lock(impl_->mutex_);
  std::vector<telnyx_agent_leg> out;
  out.reserve(impl_->agent_order_.size());
  for (const auto& c : impl_->agent_order_) out.push_back({c->placed, c->transferred_from, c->agent_answers});
  return out;
}

std::vector<telnyx_command> fake_telnyx::commands() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->command_log_;
}

std::optional<telnyx_call_snapshot> fake_telnyx::call(const std::string& call_control_id) const {
  std::lock_guard lock(impl_->mutex_);
  auto it = impl_->calls_.find(call_control_id);
  if (it == impl_->calls_.end()) return std::nullopt;
  const call_record& c = *it->second;
  telnyx_call_snapshot s;
  s.placed = c.placed;
  s.state = c.state;
  s.is_alive = !c.ended;
  s.hangup_cause = c.hangup_cause;
  s.sip_hangup_cause = c.sip_hangup_cause;
  s.hangup_source = c.hangup_source;
  s.amd_result = c.amd_result;
  s.duration = c.duration;
  s.webhook_faults = c.fault_list;
  s.webhooks_generated = c.webhooks_generated;
  s.hangup_delivered = c.hangup_delivered;
  s.settled = c.settled;
  s.direction = c.direction;
  s.transfer_to = c.transfer_to;
  s.transfer_custom_headers = c.transfer_custom_headers;
  s.transfer_target_leg_client_state = c.transfer_target_leg_client_state;
  s.agent_leg_id = c.agent_leg_id;
  s.transfers = c.transfers;
  s.transferred_from = c.transferred_from;
  s.answer = c.answer;
  s.reject_cause = c.reject_cause;
  return s;
}

fake_telnyx_counters fake_telnyx::counters() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->counters_;
}

std::vector<telnyx_owned_number> fake_telnyx::owned_numbers() const {
  std::lock_guard lock(impl_->mutex_);
  std::vector<const number_record*> all;
  for (const auto& [id, n] : impl_->numbers_) all.push_back(n.get());
  std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  std::vector<telnyx_owned_number> out;
  for (const auto* n : all) out.push_back({n->id, n->phone_number, n->status, n->connection_id, n->tags});
  return out;
}

std::string fake_telnyx::application_webhook_url() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->app_.webhook_event_url;
}

bool fake_telnyx::wait_for(const std::function<bool(const fake_telnyx_counters&)>& done,
                           std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex_);
  return impl_->changed_.wait_for(lock, timeout, [&] { return done(impl_->counters_); });
}
bool fake_telnyx::wait_for_hangups(std::int64_t n, std::chrono::milliseconds timeout) const {
  return wait_for([n](const fake_telnyx_counters& c) { return c.hangups_delivered >= n; }, timeout);
}
bool fake_telnyx::wait_for_settled(std::int64_t n, std::chrono::milliseconds timeout) const {
  return wait_for([n](const fake_telnyx_counters& c) { return c.calls_settled >= n; }, timeout);
}
bool fake_telnyx::wait_for_placed(std::int64_t n, std::chrono::milliseconds timeout) const {
  return wait_for([n](const fake_telnyx_counters& c) { return c.calls_created >= n; }, timeout);
}
bool fake_telnyx::wait_for_commands(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex_);
  return impl_->changed_.wait_for(lock, timeout, [&] { return impl_->command_log_.size() >= n; });
}

}  // namespace dialer::fakes
