// The fake Twilio: the HTTP server (one coroutine per connection), the routes of the Calls resource, each
// call's life (one coroutine on its own strand, timers only) and its callbacks (a second coroutine on that
// strand drains the call's outbox in order through a keep-alive client pool), and the account's phone numbers
// (account_numbers: the inventory on offer and the numbers held, under a mutex of their own).
#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

// g++ 12 warns, after inlining, that Asio 1.74 frees a coroutine frame with awaitable_frame_base::operator
// delete when thread_info_base::allocate got it from ::operator new; that operator delete hands it back to
// thread_info_base::deallocate, which calls ::operator delete: a false positive of the frame allocator's
// recycling.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "tests/fakes/fake_twilio.hpp"

#include <fcntl.h>
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

std::string_view to_string(rest_fault f) noexcept {
  static constexpr std::string_view names[] = {
      "none",          "throttle",         "error_unprocessed", "timeout_created", "timeout_not_created",
      "reset_created", "reset_not_created"};
  return names[static_cast<std::size_t>(f)];
}

std::string_view to_string(callback_fault f) noexcept {
  static constexpr std::string_view names[] = {"late", "twice", "out_of_order", "never", "bad_signature"};
  return names[static_cast<std::size_t>(f)];
}

namespace {

constexpr std::string_view api_version = "2010-04-01";

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

std::string utc_format(sys_clock::time_point t, const char* format) {
  const std::time_t s = sys_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  std::array<char, 64> out{};
  const auto n = std::strftime(out.data(), out.size(), format, &tm);
  return std::string(out.data(), n);
}
std::string rfc2822(sys_clock::time_point t) {
  return utc_format(t, "%a, %d %b %Y %H:%M:%S +0000");
}
std::string utc_date(sys_clock::time_point t) {
  return utc_format(t, "%Y-%m-%d");
}
std::string rfc3339(sys_clock::time_point t) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1'000'000;
  std::array<char, 16> frac{};
  std::snprintf(frac.data(), frac.size(), ".%06lldZ", static_cast<long long>(us < 0 ? us + 1'000'000 : us));
  return utc_format(t, "%Y-%m-%dT%H:%M:%S") + frac.data();
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
bool is_hex32(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}
// ^\+[1-9][0-9]{6,14}$
bool is_e164(std::string_view s) {
  return s.size() >= 8 && s.size() <= 16 && s[0] == '+' && s[1] >= '1' && s[1] <= '9' &&
         is_digits(s.substr(1));
}
bool is_date(std::string_view s) {  // YYYY-MM-DD
  return s.size() == 10 && s[4] == '-' && s[7] == '-' && is_digits(s.substr(0, 4)) &&
         is_digits(s.substr(5, 2)) && is_digits(s.substr(8, 2));
}
template <class T>
std::optional<T> to_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
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
  const auto colon = p.authority.rfind(':');  // no IPv6 literals: the callbacks go to loopback or a name
  p.host = p.authority.substr(0, colon);
  const std::string_view port =
      colon == std::string::npos ? std::string_view{} : std::string_view(p.authority).substr(colon + 1);
  if (p.host.empty() || (!port.empty() && !to_number<std::uint16_t>(port))) return std::nullopt;
  p.port = port.empty() ? (p.https ? "443" : "80") : std::string(port);
  return p;
}

std::string form_encode(const query_params& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += http::percent_encode(name) + '=' + http::percent_encode(value);
  }
  return out;
}

const std::string* first(const query_params& params, std::string_view name) {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

// The user and password of a Basic Authorization header.
std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view header) {
  if (header.size() < 6 || (header.substr(0, 6) != "Basic " && header.substr(0, 6) != "basic "))
    return std::nullopt;
  auto decoded = http::unbase64(header.substr(6));
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::pair{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

enum event : unsigned { ev_initiated = 1, ev_ringing = 2, ev_answered = 4, ev_completed = 8 };

struct reply {
  enum class kind : std::uint8_t { answer, silent, reset };
  kind how = kind::answer;
  response res;
};

reply json_reply(bhttp::status status, const json& body) {
  reply r;
  r.res.result(status);
  r.res.set(bhttp::field::content_type, "application/json; charset=utf-8");
  r.res.body() = body.dump();
  return r;
}
reply error_reply(unsigned status, int code, const std::string& message) {
  reply r = json_reply(static_cast<bhttp::status>(status),
                       {{"code", code},
                        {"message", message},
                        {"more_info", "https://www.twilio.com/docs/errors/" + std::to_string(code)},
                        {"status", status}});
  return r;
}
reply invalid(const std::string& field, const std::string& value, const std::string& why) {
  return error_reply(400, 21218, "Invalid value for " + field + ": '" + value + "' (" + why + ")");
}

struct report_failure {
  void operator()(const std::exception_ptr& e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "fake_twilio: %s\n", x.what());
    } catch (...) {
      std::fprintf(stderr, "fake_twilio: unknown exception\n");
    }
  }
};

// One callback to post, built when its event happens.
struct outgoing {
  parsed_url where;
  std::string url;  // exactly as given in the create request: what is signed
  bool get = false;
  query_params params;
  bool final = false, amd = false;
  std::chrono::milliseconds delay{0};
};

// The rates by fault, indexed by the enums.
using rest_rates = std::array<double, 7>;
using callback_rates = std::array<double, 5>;
rest_rates rest_rates_of(const fault_rates& r) {
  return {0,
          r.throttle,
          r.error_unprocessed,
          r.timeout_created,
          r.timeout_not_created,
          r.reset_created,
          r.reset_not_created};
}
callback_rates callback_rates_of(const fault_rates& r) {
  return {r.late, r.twice, r.out_of_order, r.never, r.bad_signature};
}
void check_rate(double r) {
  if (!(r >= 0.0 && r <= 1.0)) throw std::invalid_argument("fake_twilio: a fault rate must be in [0, 1]");
}
void check_rates(const fault_rates& r) {
  for (double x : rest_rates_of(r)) check_rate(x);
  for (double x : callback_rates_of(r)) check_rate(x);
}

// The parts of a call that live on the io_context: touched only on its strand (and destroyed by stop()).
struct call_runtime {
  explicit call_runtime(net::io_context& io) : strand(net::make_strand(io)), timer(strand) {}
  net::strand<net::io_context::executor_type> strand;
  net::steady_timer timer;
  std::deque<outgoing> outbox;
  std::vector<outgoing> held;  // out_of_order: the ringing and answered callbacks, sent after the final one
  bool sending = false, life_done = false;
  int sequence = 0;
};

struct call_record {
  placed_call placed;
  std::size_t index = 0;  // in creation order (paging)
  std::optional<parsed_url> callback, amd_callback;
  std::string amd_callback_url;  // as given: what its callback is signed over
  bool callback_get = false, amd_get = false, async_amd = false;
  unsigned events = 0;
  std::vector<callback_fault> fault_list;
  std::array<bool, 5> met{};  // by callback_fault
  [[nodiscard]] bool meets(callback_fault f) const { return met[static_cast<std::size_t>(f)]; }
  std::unique_ptr<call_runtime> rt;
  // Guarded by impl::mutex_.
  std::string status = "queued";
  sys_clock::time_point date_updated;
  std::optional<sys_clock::time_point> start_time, end_time;
  std::optional<steady::time_point> answered_at;
  std::string answered_by, sip;
  std::optional<std::int64_t> duration;
  bool ended = false, final_delivered = false, settled = false;
  int callbacks_generated = 0;
};

// ---- the account's phone numbers (AvailablePhoneNumbers, IncomingPhoneNumbers) ----

enum class number_kind : std::uint8_t { local, toll_free, mobile };

std::string_view kind_name(number_kind k) {
  return k == number_kind::local ? "local" : k == number_kind::toll_free ? "toll-free" : "mobile";
}
// The subresource names of a kind ("Local.json" and so on, without ".json").
std::optional<number_kind> kind_named(std::string_view s) {
  if (s == "Local") return number_kind::local;
  if (s == "TollFree") return number_kind::toll_free;
  if (s == "Mobile") return number_kind::mobile;
  return std::nullopt;
}
// The kinds an AvailablePhoneNumbers search may name; the fake offers only the first three.
bool searchable_kind(std::string_view s) {
  return kind_named(s) || s == "National" || s == "Voip" || s == "SharedCost" || s == "MachineToMachine";
}

// Where a US area code's numbers are, as a search answer tells it (the default inventory's area codes).
struct place {
  std::string_view npa, region, locality, lata, rate_center, latitude, longitude, postal_code;
};
constexpr std::array<place, 5> places{{
    {"212", "NY", "New York", "132", "NWYRCYZN01", "40.714200", "-74.006400", "10007"},
    {"312", "IL", "Chicago", "358", "CHICAGO", "41.878100", "-87.629800", "60601"},
    {"415", "CA", "San Francisco", "722", "SNFC CNTRL", "37.774900", "-122.419400", "94103"},
    {"512", "TX", "Austin", "558", "AUSTIN", "30.267200", "-97.743100", "78701"},
    {"617", "MA", "Boston", "128", "BOSTON", "42.360100", "-71.058900", "02108"},
}};
constexpr std::array<std::string_view, 7> toll_free_npas{"800", "833", "844", "855", "866", "877", "888"};

bool is_nanp(std::string_view n) {  // +1 and 10 digits
  return n.size() == 12 && n.starts_with("+1") && is_digits(n.substr(2));
}
std::string_view npa_of(std::string_view n) {
  return is_nanp(n) ? n.substr(2, 3) : std::string_view{};
}
number_kind kind_of(std::string_view n) {
  const auto npa = npa_of(n);
  return std::find(toll_free_npas.begin(), toll_free_npas.end(), npa) != toll_free_npas.end()
             ? number_kind::toll_free
             : number_kind::local;
}
const place* place_of(std::string_view n) {
  const auto npa = npa_of(n);
  for (const auto& p : places)
    if (p.npa == npa) return &p;
  return nullptr;
}
std::string formatted(std::string_view n) {  // "(415) 555-0123" for a NANP number, else as it is
  if (!is_nanp(n)) return std::string(n);
  return "(" + std::string(n.substr(2, 3)) + ") " + std::string(n.substr(5, 3)) + "-" +
         std::string(n.substr(8));
}
bool same_text(std::string_view a, std::string_view b) {  // ASCII, case-insensitive
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
// A '+' sent unencoded in a query or a form arrives as a space; a number without its '+' is taken with it.
std::string with_plus(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s.starts_with('+') ? std::string(s) : "+" + std::string(s);
}

// A pattern over a number's digits (its country code included): digits, '*' for any one digit and '%' for any
// run of them; `from_start` ties it to the first digit and `to_end` to the last, else it may match anywhere.
struct digit_pattern {
  std::string text;
  bool from_start = false, to_end = false;

  [[nodiscard]] bool matches(std::string_view number) const {
    const std::string_view digits = number.starts_with('+') ? number.substr(1) : number;
    for (std::size_t at = 0; at <= digits.size(); ++at) {
      if (here(text, digits.substr(at))) return true;
      if (from_start) break;
    }
    return false;
  }

 private:
  [[nodiscard]] bool here(std::string_view p, std::string_view d) const {
    if (p.empty()) return !to_end || d.empty();
    if (p[0] == '%') {
      for (std::size_t skip = 0; skip <= d.size(); ++skip)
        if (here(p.substr(1), d.substr(skip))) return true;
      return false;
    }
    if (d.empty() || (p[0] != '*' && p[0] != d[0])) return false;
    return here(p.substr(1), d.substr(1));
  }
};

// A search's Contains: 2 to 16 characters, digits and letters (a letter stands for its keypad digit) and the
// meta-characters '*' and '%', a leading '+' (or the space an unencoded '+' becomes) and a trailing '$'; at
// least two characters that are not meta-characters.
std::optional<digit_pattern> contains_pattern(std::string_view s) {
  if (s.size() < 2 || s.size() > 16) return std::nullopt;
  static constexpr std::string_view keypad = "22233344455566677778889999";
  digit_pattern p;
  if (s.front() == '+' || s.front() == ' ') {
    p.from_start = true;
    s.remove_prefix(1);
  }
  if (!s.empty() && s.back() == '$') {
    p.to_end = true;
    s.remove_suffix(1);
  }
  int plain = 0;
  for (const char c : s) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c >= '0' && c <= '9') {
      p.text += c;
      ++plain;
    } else if (lower >= 'a' && lower <= 'z') {
      p.text += keypad[static_cast<std::size_t>(lower - 'a')];
      ++plain;
    } else if (c == '*' || c == '%') {
      p.text += c;
    } else {
      return std::nullopt;
    }
  }
  if (plain < 2) return std::nullopt;
  return p;
}

// The IncomingPhoneNumbers list's PhoneNumber filter: a number or a part of one, '*' for any digit. With its
// '+' (or the space an unencoded '+' becomes) it is tied to the number's start; a whole number matches only
// itself, with or without its '+'. nullopt: it can match nothing.
std::optional<digit_pattern> number_filter(std::string_view s) {
  digit_pattern p;
  if (!s.empty() && (s.front() == '+' || s.front() == ' ')) {
    p.from_start = true;
    s.remove_prefix(1);
  }
  if (s.empty() ||
      !std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '*'; }))
    return std::nullopt;
  p.text = std::string(s);
  return p;
}

json capabilities_json() {
  return {{"voice", true}, {"sms", true}, {"mms", true}, {"fax", false}};
}

// What a buy or an update sets; absent fields are left as they are.
struct number_changes {
  std::optional<std::string> friendly_name, voice_url, voice_method, voice_fallback_url,
      voice_fallback_method, status_callback, status_callback_method, voice_application_sid, trunk_sid;
  std::optional<bool> caller_id_lookup;
};

struct number_record {
  incoming_number n;
  std::string voice_fallback_url, voice_fallback_method = "POST", status_callback,
                                  status_callback_method = "POST";
  bool caller_id_lookup = false;
  number_kind kind = number_kind::local;
  sys_clock::time_point created, updated;
};

// The account's numbers: the inventory on offer and the numbers it holds, and the answers of their routes.
// Threading: every method takes the object's own mutex briefly; any thread.
class account_numbers {
 public:
  account_numbers(const std::string& account_sid, const std::vector<std::string>& owned,
                  const std::vector<std::string>& available)
      : account_sid_(account_sid), base_("/2010-04-01/Accounts/" + account_sid) {
    std::random_device rd;
    sid_rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (const auto& n : available)
      if (!is_nanp(n))
        throw std::invalid_argument("fake_twilio: an available number must be +1 and 10 digits: " + n);
    for (const auto& n : owned)
      if (!is_e164(n)) throw std::invalid_argument("fake_twilio: an owned number must be E.164: " + n);
    if (!available.empty()) {
      for (const auto& n : available) offer(n);
    } else {
      for (const auto& p : places)
        for (int line = 100; line <= 199; ++line) offer(default_number(p.npa, line));
      for (const std::string_view npa : {"888", "877"})
        for (int line = 100; line <= 199; ++line) offer(default_number(npa, line));
    }
    const auto now = sys_clock::now();
    for (const auto& n : owned) {
      if (held_.contains(n)) continue;
      number_record r;
      r.n.phone_number = n;
      r.n.voice_method = "POST";
      r.n.friendly_name = formatted(n);
      r.kind = kind_of(n);
      r.created = r.updated = now;
      hold(std::move(r));
    }
  }

  // GET .../AvailablePhoneNumbers/{country}/{type}.json. One page: next_page_uri is always null.
  // `uri`: the request's target as it came.
  reply search(std::string_view country, std::string_view type, const http::target& t,
               std::string_view uri) const {
    const auto value = [&](const char* name) -> const std::string* { return first(t.query, name); };
    std::optional<digit_pattern> contains;
    if (const std::string* a = value("AreaCode"); a && !(a->size() == 3 && is_digits(*a)))
      return invalid("AreaCode", *a, "a three-digit area code");
    if (const std::string* c = value("Contains")) {
      contains = contains_pattern(*c);
      if (!contains)
        return invalid("Contains", *c,
                       "2 to 16 digits or letters, with the wildcards * and %, a leading + or a trailing $");
    }
    bool no_fax = false;
    for (const char* name : {"VoiceEnabled", "SmsEnabled", "MmsEnabled", "FaxEnabled"}) {
      const std::string* v = value(name);
      if (!v) continue;
      if (*v != "true" && *v != "false") return invalid(name, *v, "true or false");
      if (*v == "true" && std::string_view(name) == "FaxEnabled") no_fax = true;  // none of ours can fax
    }
    int size = 0, page = 0;
    if (auto refused = read_paging(t.query, size, page)) return std::move(*refused);
    const auto kind = kind_named(type);
    const auto wanted = [&](const std::string& n) {
      if (kind_of(n) != *kind) return false;
      if (const std::string* a = value("AreaCode"); a && npa_of(n) != *a) return false;
      if (contains && !contains->matches(n)) return false;
      const place* p = place_of(n);
      for (const auto& [name, field] :
           {std::pair{"InRegion", &place::region}, std::pair{"InLocality", &place::locality},
            std::pair{"InPostalCode", &place::postal_code}, std::pair{"InRateCenter", &place::rate_center},
            std::pair{"InLata", &place::lata}}) {
        const std::string* v = value(name);
        if (v && (!p || !same_text(p->*field, *v))) return false;
      }
      return true;
    };
    json found = json::array();
    if (country == "US" && kind && page == 0 && !no_fax) {
      std::lock_guard lock(mutex_);
      for (const auto& n : inventory_) {
        if (found.size() >= static_cast<std::size_t>(size)) break;
        if (!held_.contains(n) && wanted(n)) found.push_back(offer_json(n));
      }
    }
    const std::string path(t.path);
    query_params carried;
    for (const auto& [k, v] : t.query)
      if (k != "PageSize" && k != "Page" && k != "PageToken") carried.emplace_back(k, v);
    json body = page_envelope(path, carried, size, page, found.size(), false);
    body["uri"] = std::string(uri);
    body["available_phone_numbers"] = std::move(found);
    return json_reply(bhttp::status::ok, body);
  }

  // POST .../IncomingPhoneNumbers.json, or .../IncomingPhoneNumbers/{Local,TollFree,Mobile}.json (`only`:
  // those take PhoneNumber alone, and only a number of their kind).
  reply buy(std::optional<number_kind> only, std::string_view body) {
    auto form = http::parse_form(body);
    if (!form) return error_reply(400, 21218, "The body is not application/x-www-form-urlencoded");
    number_changes changes;
    if (auto refused = read_changes(*form, changes)) return std::move(*refused);
    const std::string* phone = first(*form, "PhoneNumber");
    const std::string* area = only ? nullptr : first(*form, "AreaCode");
    if (phone && phone->empty()) phone = nullptr;
    if (area && area->empty()) area = nullptr;
    if (phone && area) return error_reply(400, 21218, "Only one of PhoneNumber and AreaCode may be given");
    if (!phone && !area)
      return error_reply(400, 21421,
                         only ? "PhoneNumber is required" : "A PhoneNumber or an AreaCode is required");
    const std::string number = phone ? with_plus(*phone) : std::string();
    if (phone && !is_e164(number))
      return error_reply(400, 21421, "PhoneNumber " + *phone + " is not a valid phone number");
    if (area && !(area->size() == 3 && is_digits(*area)))
      return error_reply(400, 21451, "AreaCode " + *area + " is not a valid area code");
    json answer;
    {
      std::lock_guard lock(mutex_);
      std::string chosen;
      if (phone) {
        if (!offered_.contains(number) || held_.contains(number) || (only && kind_of(number) != *only))
          return error_reply(400, 21422, "PhoneNumber " + number + " is not available");
        chosen = number;
      } else {
        for (const auto& n : inventory_) {
          if (npa_of(n) == *area && !held_.contains(n)) {
            chosen = n;
            break;
          }
        }
        if (chosen.empty()) return error_reply(400, 21452, "No phone numbers found in area code " + *area);
      }
      number_record r;
      r.n.phone_number = chosen;
      r.n.voice_method = "POST";
      r.kind = kind_of(chosen);
      r.created = sys_clock::now();
      apply(r, changes);
      answer = number_json(hold(std::move(r)));
    }
    return json_reply(bhttp::status::created, answer);
  }

  // GET .../IncomingPhoneNumbers.json (or a kind's subresource, `only`): oldest first, in pages.
  reply list(std::optional<number_kind> only, const http::target& t) const {
    query_params carried;  // the filters, carried into every page's URI
    for (const char* name : {"PhoneNumber", "FriendlyName", "Origin", "Beta"})
      if (const std::string* v = first(t.query, name)) carried.emplace_back(name, *v);
    int size = 0, page = 0;
    if (auto refused = read_paging(t.query, size, page)) return std::move(*refused);
    std::optional<digit_pattern> phone;
    bool nothing = false;
    if (const std::string* v = first(t.query, "PhoneNumber")) {
      phone = number_filter(*v);
      nothing = !phone;
    }
    const std::string* name = first(t.query, "FriendlyName");
    const std::string* origin = first(t.query, "Origin");
    json found = json::array();
    bool more = false;
    {
      std::lock_guard lock(mutex_);
      std::size_t matched = 0;
      const std::size_t begin = static_cast<std::size_t>(page) * static_cast<std::size_t>(size);
      for (const auto& r : held_order_) {
        if (nothing || (only && r.kind != *only) || (phone && !phone->matches(r.n.phone_number)) ||
            (name && r.n.friendly_name != *name) || (origin && *origin != "twilio"))
          continue;
        if (matched >= begin + static_cast<std::size_t>(size)) {
          more = true;
          break;
        }
        if (matched++ >= begin) found.push_back(number_json(r));
      }
    }
    json body = page_envelope(std::string(t.path), carried, size, page, found.size(), more);
    body["incoming_phone_numbers"] = std::move(found);
    return json_reply(bhttp::status::ok, body);
  }

  reply get(std::string_view sid, std::string_view path) const {
    std::lock_guard lock(mutex_);
    const number_record* r = find(sid);
    if (!r) return not_found(path);
    return json_reply(bhttp::status::ok, number_json(*r));
  }

  reply update(std::string_view sid, std::string_view path, std::string_view body) {
    auto form = http::parse_form(body);
    if (!form) return error_reply(400, 21218, "The body is not application/x-www-form-urlencoded");
    number_changes changes;
    if (auto refused = read_changes(*form, changes)) return std::move(*refused);
    std::lock_guard lock(mutex_);
    number_record* r = find(sid);
    if (!r) return not_found(path);
    apply(*r, changes);
    return json_reply(bhttp::status::ok, number_json(*r));
  }

  // The number leaves the account and is on offer again.
  reply release(std::string_view sid, std::string_view path) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(held_order_.begin(), held_order_.end(),
                           [&](const number_record& r) { return r.n.sid == sid; });
    if (it == held_order_.end()) return not_found(path);
    const std::string number = it->n.phone_number;
    held_order_.erase(it);
    held_.erase(number);
    offer(number);
    reply r;
    r.res.result(bhttp::status::no_content);
    return r;
  }

  [[nodiscard]] std::vector<incoming_number> held() const {
    std::lock_guard lock(mutex_);
    std::vector<incoming_number> out;
    out.reserve(held_order_.size());
    for (const auto& r : held_order_) out.push_back(r.n);
    return out;
  }

 private:
  static std::string default_number(std::string_view npa, int line) {
    return "+1" + std::string(npa) + "555" + std::to_string(line + 10000).substr(1);
  }

  static reply not_found(std::string_view path) {
    return error_reply(404, 20404, "The requested resource " + std::string(path) + " was not found");
  }

  // PageSize (1..1000, default 50) and Page (from 0, default 0).
  static std::optional<reply> read_paging(const query_params& query, int& size, int& page) {
    const std::string* size_text = first(query, "PageSize");
    const std::string* page_text = first(query, "Page");
    const auto s = size_text ? to_number<int>(*size_text) : std::optional<int>(50);
    if (!s || *s < 1 || *s > 1000) return invalid("PageSize", *size_text, "an integer from 1 to 1000");
    const auto p = page_text ? to_number<int>(*page_text) : std::optional<int>(0);
    if (!p || *p < 0) return invalid("Page", *page_text, "an integer from 0");
    size = *s;
    page = *p;
    return std::nullopt;
  }

  static json page_envelope(const std::string& path, const query_params& carried, int size, int page,
                            std::size_t n, bool more) {
    const auto page_uri = [&](int number) {
      query_params q = carried;
      q.emplace_back("PageSize", std::to_string(size));
      q.emplace_back("Page", std::to_string(number));
      return path + "?" + form_encode(q);
    };
    const auto start = static_cast<std::int64_t>(page) * size;
    return {{"first_page_uri", page_uri(0)},
            {"next_page_uri", more ? json(page_uri(page + 1)) : json(nullptr)},
            {"previous_page_uri", page > 0 ? json(page_uri(page - 1)) : json(nullptr)},
            {"uri", page_uri(page)},
            {"page", page},
            {"page_size", size},
            {"start", start},
            {"end", n > 0 ? start + static_cast<std::int64_t>(n) - 1 : start}};
  }

  // The fields a buy or an update may set, checked.
  static std::optional<reply> read_changes(const query_params& form, number_changes& c) {
    const auto url = [&](const char* name, std::optional<std::string>& out) -> std::optional<reply> {
      const std::string* v = first(form, name);
      if (!v) return std::nullopt;
      if (!v->empty() && !parse_url(*v))
        return error_reply(400, 21402, std::string(name) + " is not a valid URL: " + *v);
      out = *v;
      return std::nullopt;
    };
    const auto method = [&](const char* name, std::optional<std::string>& out) -> std::optional<reply> {
      const std::string* v = first(form, name);
      if (!v || v->empty()) return std::nullopt;
      if (*v != "GET" && *v != "POST") return invalid(name, *v, "GET or POST");
      out = *v;
      return std::nullopt;
    };
    const auto sid = [&](const char* name, std::string_view prefix,
                         std::optional<std::string>& out) -> std::optional<reply> {
      const std::string* v = first(form, name);
      if (!v) return std::nullopt;
      if (!v->empty() && !(v->starts_with(prefix) && is_hex32(std::string_view(*v).substr(2))))
        return invalid(name, *v, std::string(prefix) + " followed by 32 hexadecimal digits");
      out = *v;
      return std::nullopt;
    };
    if (auto r = url("VoiceUrl", c.voice_url)) return r;
    if (auto r = url("VoiceFallbackUrl", c.voice_fallback_url)) return r;
    if (auto r = url("StatusCallback", c.status_callback)) return r;
    if (auto r = method("VoiceMethod", c.voice_method)) return r;
    if (auto r = method("VoiceFallbackMethod", c.voice_fallback_method)) return r;
    if (auto r = method("StatusCallbackMethod", c.status_callback_method)) return r;
    if (auto r = sid("VoiceApplicationSid", "AP", c.voice_application_sid)) return r;
    if (auto r = sid("TrunkSid", "TK", c.trunk_sid)) return r;
    if (c.voice_application_sid && c.trunk_sid && !c.voice_application_sid->empty() && !c.trunk_sid->empty())
      return error_reply(400, 21218, "Only one of VoiceApplicationSid and TrunkSid may be given");
    if (const std::string* v = first(form, "FriendlyName")) {
      if (v->size() > 64) return invalid("FriendlyName", v->substr(0, 20) + "...", "at most 64 characters");
      c.friendly_name = *v;
    }
    if (const std::string* v = first(form, "VoiceCallerIdLookup")) {
      if (*v != "true" && *v != "false") return invalid("VoiceCallerIdLookup", *v, "true or false");
      c.caller_id_lookup = *v == "true";
    }
    return std::nullopt;
  }

  static void apply(number_record& r, const number_changes& c) {
    const auto set = [](std::string& field, const std::optional<std::string>& v) {
      if (v) field = *v;
    };
    set(r.n.voice_url, c.voice_url);
    set(r.n.voice_method, c.voice_method);
    set(r.voice_fallback_url, c.voice_fallback_url);
    set(r.voice_fallback_method, c.voice_fallback_method);
    set(r.status_callback, c.status_callback);
    set(r.status_callback_method, c.status_callback_method);
    if (c.voice_application_sid) {  // the one set last is the one that handles the calls
      r.n.voice_application_sid = *c.voice_application_sid;
      if (!c.voice_application_sid->empty()) r.n.trunk_sid.clear();
    }
    if (c.trunk_sid) {
      r.n.trunk_sid = *c.trunk_sid;
      if (!c.trunk_sid->empty()) r.n.voice_application_sid.clear();
    }
    if (c.friendly_name) r.n.friendly_name = *c.friendly_name;
    if (r.n.friendly_name.empty()) r.n.friendly_name = formatted(r.n.phone_number);
    if (c.caller_id_lookup) r.caller_id_lookup = *c.caller_id_lookup;
    r.updated = sys_clock::now();
  }

  void offer(const std::string& n) {  // under mutex_ (or in the constructor)
    if (offered_.insert(n).second) inventory_.push_back(n);
  }

  const number_record& hold(number_record r) {  // under mutex_ (or in the constructor)
    std::array<char, 40> sid{};
    std::snprintf(sid.data(), sid.size(), "PN%016llx%016llx", static_cast<unsigned long long>(sid_rng_()),
                  static_cast<unsigned long long>(sid_rng_()));
    r.n.sid = sid.data();
    held_.insert(r.n.phone_number);
    return held_order_.emplace_back(std::move(r));
  }

  number_record* find(std::string_view sid) {  // under mutex_
    for (auto& r : held_order_)
      if (r.n.sid == sid) return &r;
    return nullptr;
  }
  const number_record* find(std::string_view sid) const {  // under mutex_
    for (const auto& r : held_order_)
      if (r.n.sid == sid) return &r;
    return nullptr;
  }

  static json offer_json(const std::string& n) {
    const place* p = place_of(n);
    const auto where = [p](std::string_view place::*field) { return p ? json(p->*field) : json(nullptr); };
    return {{"friendly_name", formatted(n)},
            {"phone_number", n},
            {"lata", where(&place::lata)},
            {"locality", where(&place::locality)},
            {"rate_center", where(&place::rate_center)},
            {"latitude", where(&place::latitude)},
            {"longitude", where(&place::longitude)},
            {"region", where(&place::region)},
            {"postal_code", where(&place::postal_code)},
            {"iso_country", "US"},
            {"address_requirements", "none"},
            {"beta", false},
            {"capabilities", capabilities_json()}};
  }

  json number_json(const number_record& r) const {  // under mutex_
    const auto sid_or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
    return {{"account_sid", account_sid_},
            {"address_sid", nullptr},
            {"address_requirements", "none"},
            {"api_version", api_version},
            {"beta", false},
            {"capabilities", capabilities_json()},
            {"date_created", rfc2822(r.created)},
            {"date_updated", rfc2822(r.updated)},
            {"friendly_name", r.n.friendly_name},
            {"identity_sid", nullptr},
            {"phone_number", r.n.phone_number},
            {"origin", "twilio"},
            {"sid", r.n.sid},
            {"sms_application_sid", nullptr},
            {"sms_fallback_method", "POST"},
            {"sms_fallback_url", ""},
            {"sms_method", "POST"},
            {"sms_url", ""},
            {"status_callback", r.status_callback},
            {"status_callback_method", r.status_callback_method},
            {"trunk_sid", sid_or_null(r.n.trunk_sid)},
            {"uri", base_ + "/IncomingPhoneNumbers/" + r.n.sid + ".json"},
            {"voice_receive_mode", "voice"},
            {"voice_application_sid", sid_or_null(r.n.voice_application_sid)},
            {"voice_caller_id_lookup", r.caller_id_lookup},
            {"voice_fallback_method", r.voice_fallback_method},
            {"voice_fallback_url", r.voice_fallback_url},
            {"voice_method", r.n.voice_method},
            {"voice_url", r.n.voice_url},
            {"emergency_status", "Inactive"},
            {"emergency_address_sid", nullptr},
            {"emergency_address_status", "unregistered"},
            {"bundle_sid", nullptr},
            {"status", "in-use"},
            {"type", kind_name(r.kind)}};
  }

  const std::string account_sid_, base_;
  mutable std::mutex mutex_;
  std::vector<std::string> inventory_;       // guarded by mutex_: every number ever on offer, in order
  std::unordered_set<std::string> offered_;  // guarded by mutex_: inventory_'s numbers
  std::unordered_set<std::string> held_;     // guarded by mutex_: held_order_'s numbers
  std::vector<number_record> held_order_;    // guarded by mutex_: the account's numbers, oldest first
  std::mt19937_64 sid_rng_;                  // guarded by mutex_
};

}  // namespace

struct fake_twilio::impl {
  explicit impl(fake_twilio_options o)
      : options_(std::move(o)),
        numbers_(options_.account_sid, options_.owned_numbers, options_.available_numbers),
        rest_rates_(rest_rates_of(options_.rates)),
        callback_rates_(callback_rates_of(options_.rates)) {
    if (options_.threads == 0) throw std::invalid_argument("fake_twilio: threads must be at least 1");
    check_rates(options_.rates);
    std::random_device rd;
    sid_rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid()));
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
    if (started_) throw std::logic_error("fake_twilio: start() called twice");
    if (!options_.log_path.empty()) {
      log_fd_ = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (log_fd_ < 0)
        throw std::runtime_error("fake_twilio: cannot open the log " + options_.log_path + ": " +
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
      throw std::runtime_error("fake_twilio: cannot listen on 127.0.0.1:" + std::to_string(options_.port) +
                               ": " + ec.message());
    port_ = acceptor_->local_endpoint().port();
    started_ = true;
    work_.emplace(io_->get_executor());
    net::co_spawn(*io_, accept_loop(), report_failure{});
    for (unsigned i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { io_->run(); });
  }

  void stop() noexcept {
    if (!started_ || stopped_) return;
    stopped_ = true;
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
      count([](fake_counters& c) {
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
          reply bad = error_reply(400, 20001, "Malformed request: " + ec.message());
          bad.res.keep_alive(false);
          bad.res.prepare_payload();
          co_await bhttp::async_write(stream, bad.res, net::redirect_error(net::use_awaitable, ec));
        }
        break;
      }
      request req = parser.release();
      reply r = dispatch(req);
      if (r.how == reply::kind::silent) {
        count([](fake_counters& c) { ++c.silent; });
        stream.expires_never();
        std::array<char, 512> sink{};
        while (!ec)
          co_await stream.async_read_some(net::buffer(sink), net::redirect_error(net::use_awaitable, ec));
        break;
      }
      if (r.how == reply::kind::reset) {
        count([](fake_counters& c) { ++c.resets; });  // before the client can see it
        stream.socket().set_option(net::socket_base::linger(true, 0), ec);
        stream.socket().close(ec);
        reset = true;
        break;
      }
      if (options_.latency.count() > 0) {
        count([](fake_counters& c) { c.delayed_peak = std::max(c.delayed_peak, ++c.delayed_now); });
        net::steady_timer delay(co_await net::this_coro::executor, options_.latency);
        co_await delay.async_wait(net::redirect_error(net::use_awaitable, ec));
        count([](fake_counters& c) { --c.delayed_now; });
      }
      r.res.version(req.version());
      r.res.keep_alive(req.keep_alive());
      r.res.prepare_payload();
      const bool keep = r.res.keep_alive();
      const unsigned status = r.res.result_int();
      count([status](fake_counters& c) { ++c.answers[status]; });  // before the client can have it
      stream.expires_after(std::chrono::seconds(30));
      co_await bhttp::async_write(stream, r.res, net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      if (!keep) break;
    }
    if (!reset) stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    count([](fake_counters& c) { --c.connections_open; });
  }

  reply dispatch(const request& req) {
    const std::string_view raw(req.target().data(), req.target().size());
    auto target = http::split_target(raw);
    std::vector<std::string_view> seg;
    if (target) {
      std::string_view p = target->path;
      while (!p.empty()) {
        p.remove_prefix(p[0] == '/' ? 1 : 0);
        const auto slash = p.find('/');
        seg.push_back(p.substr(0, slash));
        p = slash == std::string_view::npos ? std::string_view{} : p.substr(slash);
      }
    }
    enum class what : std::uint8_t { none, calls, call, search, numbers, number };
    const auto json_file = [](std::string_view x) { return x.size() > 5 && x.ends_with(".json"); };
    const auto stem = [](std::string_view x) { return x.substr(0, x.size() - 5); };
    const bool account = seg.size() >= 4 && seg[0] == api_version && seg[1] == "Accounts";
    const auto under = [&](std::size_t n, std::string_view s3) {
      return account && seg.size() == n && seg[3] == s3;
    };
    what kind = what::none;
    if (under(4, "Calls.json"))
      kind = what::calls;
    else if (under(5, "Calls") && json_file(seg[4]))
      kind = what::call;
    else if (under(6, "AvailablePhoneNumbers") && json_file(seg[5]) && searchable_kind(stem(seg[5])))
      kind = what::search;
    else if (under(4, "IncomingPhoneNumbers.json") ||
             (under(5, "IncomingPhoneNumbers") && json_file(seg[4]) && kind_named(stem(seg[4]))))
      kind = what::numbers;
    else if (under(5, "IncomingPhoneNumbers") && json_file(seg[4]))
      kind = what::number;
    const bool get = req.method() == bhttp::verb::get, post = req.method() == bhttp::verb::post,
               del = req.method() == bhttp::verb::delete_;
    const char* route = "unknown";  // also a known path with a method it does not take
    switch (kind) {
      case what::calls:
        route = post ? "create_call" : get ? "list_calls" : route;
        break;
      case what::call:
        route = get ? "get_call" : post ? "update_call" : route;
        break;
      case what::search:
        route = get ? "search_numbers" : route;
        break;
      case what::numbers:
        route = post ? "buy_number" : get ? "list_numbers" : route;
        break;
      case what::number:
        route = get ? "get_number" : post ? "update_number" : del ? "release_number" : route;
        break;
      case what::none:
        break;
    }
    count([route](fake_counters& c) { ++c.requests[route]; });
    if (kind == what::none)
      return error_reply(404, 20404, "The requested resource " + std::string(raw) + " was not found");
    if (!authenticated(req)) {
      reply r = error_reply(401, 20003, "Authenticate");
      r.res.set(bhttp::field::www_authenticate, "Basic realm=\"Twilio API\"");
      return r;
    }
    if (seg[2] != options_.account_sid)
      return error_reply(404, 20404,
                         "The requested resource " + std::string(target->path) + " was not found");
    if (std::string_view(route) == "unknown") return error_reply(405, 20004, "Method not allowed");
    try {
      const std::string_view body(req.body());
      switch (kind) {
        case what::calls:
          return post ? create_call(req) : list_calls(*target);
        case what::call: {
          const std::string sid(stem(seg[4]));
          return post ? update_call(req, sid, target->path) : get_call(sid, target->path);
        }
        case what::search:
          return numbers_.search(seg[4], stem(seg[5]), *target, raw);
        case what::numbers: {
          const auto only = seg.size() == 5 ? kind_named(stem(seg[4])) : std::nullopt;
          return post ? numbers_.buy(only, body) : numbers_.list(only, *target);
        }
        case what::number:
          return get    ? numbers_.get(stem(seg[4]), target->path)
                 : post ? numbers_.update(stem(seg[4]), target->path, body)
                        : numbers_.release(stem(seg[4]), target->path);
        case what::none:
          break;
      }
      return error_reply(404, 20404, "The requested resource " + std::string(raw) + " was not found");
    } catch (const std::exception& e) {
      return error_reply(500, 20500, std::string("An internal server error has occurred: ") + e.what());
    }
  }

  bool authenticated(const request& req) const {
    const auto header = req[bhttp::field::authorization];
    auto creds = basic_credentials(std::string_view(header.data(), header.size()));
    if (!creds) return false;
    if (creds->first == options_.account_sid) return creds->second == options_.auth_token;
    return std::any_of(options_.api_keys.begin(), options_.api_keys.end(),
                       [&](const api_key& k) { return k.sid == creds->first && k.secret == creds->second; });
  }

  // ---- the routes ----

  rest_fault decide_rest_fault(std::uint64_t number) {  // under mutex_
    if (!forced_.empty()) {
      const rest_fault f = forced_.front().first;
      if (--forced_.front().second <= 0) forced_.pop_front();
      return f;
    }
    for (const auto fault :
         {rest_fault::throttle, rest_fault::error_unprocessed, rest_fault::timeout_not_created,
          rest_fault::reset_not_created, rest_fault::timeout_created, rest_fault::reset_created}) {
      const auto i = static_cast<std::size_t>(fault);
      if (rest_rates_[i] > 0 && draw(options_.seed, number, i) < rest_rates_[i]) return fault;
    }
    return rest_fault::none;
  }

  reply create_call(const request& req) {
    std::uint64_t number = 0;
    rest_fault fault = rest_fault::none;
    callback_rates rates{};
    {
      std::lock_guard lock(mutex_);
      number = create_requests_++;
      fault = decide_rest_fault(number);
      rates = callback_rates_;
    }
    switch (fault) {
      case rest_fault::throttle: {
        reply r = error_reply(429, 20429, "Too Many Requests");
        r.res.set(bhttp::field::retry_after, "1");
        return r;
      }
      case rest_fault::error_unprocessed:
        return draw(options_.seed, number, 40) < 0.5
                   ? error_reply(500, 20500, "An internal server error has occurred")
                   : error_reply(503, 20500, "Service Unavailable");
      case rest_fault::timeout_not_created:
        return reply{reply::kind::silent, {}};
      case rest_fault::reset_not_created:
        return reply{reply::kind::reset, {}};
      default:
        break;
    }
    auto form = http::parse_form(req.body());
    if (!form) return error_reply(400, 21218, "The body is not application/x-www-form-urlencoded");
    auto c = std::make_shared<call_record>();
    if (auto refused = read_create_params(*form, *c)) return std::move(*refused);

    auto& p = c->placed;
    p.account_sid = options_.account_sid;
    p.created_at = sys_clock::now();
    p.create_request = number;
    p.fault = fault;
    c->date_updated = p.created_at;
    for (std::size_t i = 0; i < rates.size(); ++i) {
      if (rates[i] > 0 && draw(options_.seed, number, 32 + i) < rates[i]) {
        c->met[i] = true;
        c->fault_list.push_back(static_cast<callback_fault>(i));
      }
    }
    c->rt = std::make_unique<call_runtime>(*io_);
    json body;
    {
      std::lock_guard lock(mutex_);
      p.sid = new_sid();
      c->index = order_.size();
      calls_.emplace(p.sid, c);
      order_.push_back(c);
      ++counters_.calls_created;
      body = call_json(*c);
    }
    changed_.notify_all();
    log_created(p);
    net::co_spawn(c->rt->strand, run_call(c), report_failure{});
    if (fault == rest_fault::timeout_created) return reply{reply::kind::silent, {}};
    if (fault == rest_fault::reset_created) return reply{reply::kind::reset, {}};
    return json_reply(bhttp::status::created, body);
  }

  // The create request's parameters into the record, or the 400 Twilio answers.
  std::optional<reply> read_create_params(const query_params& form, call_record& c) const {
    auto& p = c.placed;
    const std::string* to = first(form, "To");
    const std::string* from = first(form, "From");
    if (!to || to->empty()) return error_reply(400, 21201, "No 'To' number is specified");
    if (!from || from->empty()) return error_reply(400, 21213, "No 'From' number is specified");
    p.to = *to;
    p.from = *from;
    const auto listed = [&](const std::vector<std::string>& v) {
      return std::find(v.begin(), v.end(), p.to) != v.end();
    };
    if (!is_e164(p.to) || listed(options_.invalid_to) ||
        std::any_of(options_.invalid_to_prefixes.begin(), options_.invalid_to_prefixes.end(),
                    [&](const std::string& prefix) { return p.to.starts_with(prefix); }))
      return error_reply(400, 21211, "The 'To' number " + p.to + " is not a valid phone number.");
    if (!options_.verified_from.empty() &&
        std::find(options_.verified_from.begin(), options_.verified_from.end(), p.from) ==
            options_.verified_from.end())
      return error_reply(400, 21210,
                         "The source phone number provided, " + p.from +
                             ", is not yet verified for your account. You may only make calls from phone "
                             "numbers that you've verified or purchased from Twilio.");
    const auto value = [&](std::string_view name) {
      const std::string* v = first(form, name);
      return v ? *v : std::string();
    };
    p.url = value("Url");
    p.twiml = value("Twiml");
    p.application_sid = value("ApplicationSid");
    const int given = !p.url.empty() + !p.twiml.empty() + !p.application_sid.empty();
    if (given == 0) return error_reply(400, 21205, "Url parameter is required.");
    if (given > 1) return error_reply(400, 21218, "Only one of Url, Twiml and ApplicationSid may be given");
    if (!p.url.empty() && !parse_url(p.url))
      return error_reply(400, 21205, "Url is not a valid URL: " + p.url);
    if (p.twiml.size() > 4000)
      return invalid("Twiml", p.twiml.substr(0, 20) + "...", "at most 4000 characters");
    if (!p.application_sid.empty() &&
        !(p.application_sid.starts_with("AP") && is_hex32(p.application_sid.substr(2))))
      return invalid("ApplicationSid", p.application_sid, "AP followed by 32 hexadecimal digits");

    const auto url_field = [&](std::string_view name,
                               std::optional<parsed_url>& out) -> std::optional<reply> {
      const std::string v = value(name);
      if (v.empty()) return std::nullopt;
      out = parse_url(v);
      if (!out) return invalid(std::string(name), v, "an http or https URL");
      return std::nullopt;
    };
    const auto method_field = [&](std::string_view name, bool& get) -> std::optional<reply> {
      const std::string v = value(name);
      if (v.empty() || v == "POST") return std::nullopt;
      if (v == "GET") {
        get = true;
        return std::nullopt;
      }
      return invalid(std::string(name), v, "GET or POST");
    };
    if (auto r = url_field("StatusCallback", c.callback)) return r;
    p.status_callback = value("StatusCallback");
    if (auto r = method_field("StatusCallbackMethod", c.callback_get)) return r;
    for (const auto& [name, v] : form) {
      if (name != "StatusCallbackEvent") continue;
      std::string_view rest = v;
      while (!rest.empty()) {  // repeated, or several in one value separated by spaces
        const auto space = rest.find(' ');
        const std::string_view e = rest.substr(0, space);
        rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
        if (e.empty()) continue;
        if (e == "initiated")
          c.events |= ev_initiated;
        else if (e == "ringing")
          c.events |= ev_ringing;
        else if (e == "answered")
          c.events |= ev_answered;
        else if (e == "completed")
          c.events |= ev_completed;
        else
          return invalid("StatusCallbackEvent", std::string(e), "initiated, ringing, answered or completed");
      }
    }
    c.events |= ev_completed;
    if (const std::string t = value("Timeout"); !t.empty()) {
      const auto seconds = to_number<int>(t);
      if (!seconds || *seconds < 1 || *seconds > 600)
        return invalid("Timeout", t, "an integer from 1 to 600");
    }
    p.machine_detection = value("MachineDetection");
    if (!p.machine_detection.empty() && p.machine_detection != "Enable" &&
        p.machine_detection != "DetectMessageEnd")
      return invalid("MachineDetection", p.machine_detection, "Enable or DetectMessageEnd");
    if (const std::string a = value("AsyncAmd"); !a.empty()) {
      if (a != "true" && a != "false") return invalid("AsyncAmd", a, "true or false");
      c.async_amd = a == "true" && !p.machine_detection.empty();
    }
    if (auto r = url_field("AsyncAmdStatusCallback", c.amd_callback)) return r;
    c.amd_callback_url = value("AsyncAmdStatusCallback");
    if (auto r = method_field("AsyncAmdStatusCallbackMethod", c.amd_get)) return r;
    if (c.callback) {
      auto t = http::split_target(c.callback->target);
      if (const std::string* a = t ? first(t->query, "attempt") : nullptr)
        p.attempt = to_number<std::int64_t>(*a).value_or(0);
    }
    return std::nullopt;
  }

  reply get_call(const std::string& sid, std::string_view path) {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(sid);
    if (it == calls_.end())
      return error_reply(404, 20404, "The requested resource " + std::string(path) + " was not found");
    return json_reply(bhttp::status::ok, call_json(*it->second));
  }

  reply update_call(const request& req, const std::string& sid, std::string_view path) {
    auto form = http::parse_form(req.body());
    if (!form) return error_reply(400, 21218, "The body is not application/x-www-form-urlencoded");
    const std::string* status = first(*form, "Status");
    if (status && *status != "canceled" && *status != "completed")
      return invalid("Status", *status, "canceled or completed");
    std::shared_ptr<call_record> c;
    std::optional<net::strand<net::io_context::executor_type>> strand;  // set when this update ends the call
    json body;
    {
      std::lock_guard lock(mutex_);
      auto it = calls_.find(sid);
      if (it == calls_.end())
        return error_reply(404, 20404, "The requested resource " + std::string(path) + " was not found");
      c = it->second;
      const bool waiting = c->status == "queued" || c->status == "ringing";
      if (status && !c->ended && (waiting || (*status == "completed" && c->status == "in-progress"))) {
        if (waiting) {
          end_call(*c, "canceled", "487", std::nullopt);
        } else {
          const auto talked =
              std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - *c->answered_at);
          end_call(*c, "completed", "200", reported_seconds(talked));
        }
        ++(*status == "canceled" ? counters_.cancels : counters_.hangups);
        strand = c->rt->strand;  // not settled yet: it settles only once it has ended
      }
      body = call_json(*c);
    }
    if (strand) {
      changed_.notify_all();
      net::post(*strand, [c] {
        if (c->rt) c->rt->timer.cancel();
      });
    }
    return json_reply(bhttp::status::ok, body);
  }

  reply list_calls(const http::target& t) {
    query_params carried;  // the filters, carried into every page's URI
    for (const char* name : {"To", "From", "Status", "StartTime>", "StartTime<", "StartTime"}) {
      const std::string* v = first(t.query, name);
      if (!v) continue;
      if (std::string_view(name).starts_with("StartTime") && !is_date(*v))
        return invalid(name, *v, "YYYY-MM-DD");
      carried.emplace_back(name, *v);
    }
    const std::string* size_text = first(t.query, "PageSize");
    const std::string* page_text = first(t.query, "Page");
    const std::string* token = first(t.query, "PageToken");
    const auto size = size_text ? to_number<int>(*size_text) : std::optional<int>(50);
    if (!size || *size < 1 || *size > 1000)
      return invalid("PageSize", *size_text, "an integer from 1 to 1000");
    const auto page = page_text ? to_number<int>(*page_text) : std::optional<int>(0);
    if (!page || *page < 0) return invalid("Page", *page_text, "an integer from 0");
    const auto filter = [&](const call_record& c) {
      for (const auto& [name, v] : carried) {
        if (name == "To" && c.placed.to != v) return false;
        if (name == "From" && c.placed.from != v) return false;
        if (name == "Status" && c.status != v) return false;
        if (name.starts_with("StartTime")) {
          if (!c.start_time) return false;
          const std::string d = utc_date(*c.start_time);
          if ((name == "StartTime>" && d < v) || (name == "StartTime<" && d > v) ||
              (name == "StartTime" && d != v))
            return false;
        }
      }
      return true;
    };
    json calls = json::array();
    std::string first_sid, last_sid;
    bool more = false;
    {
      std::lock_guard lock(mutex_);
      std::vector<const call_record*> matches;  // newest first
      for (auto it = order_.rbegin(); it != order_.rend(); ++it)
        if (filter(**it)) matches.push_back(it->get());
      std::size_t begin = static_cast<std::size_t>(*page) * static_cast<std::size_t>(*size);
      if (token) {  // PA<sid>: the page after that call; PB<sid>: the page before it
        auto anchor = token->size() > 2 ? calls_.find(token->substr(2)) : calls_.end();
        if (anchor == calls_.end() || (!token->starts_with("PA") && !token->starts_with("PB")))
          return invalid("PageToken", *token, "a token from a page's URI");
        // The matches newer than the anchor (PB) or than and including it (PA) come before the page.
        const std::size_t index = anchor->second->index;
        const bool after = token->starts_with("PA");
        const auto k = static_cast<std::size_t>(std::count_if(matches.begin(), matches.end(), [&](auto* m) {
          return after ? m->index >= index : m->index > index;
        }));
        begin = after ? k : k - std::min<std::size_t>(k, static_cast<std::size_t>(*size));
      }
      const std::size_t end = std::min(matches.size(), begin + static_cast<std::size_t>(*size));
      for (std::size_t i = begin; i < end; ++i) calls.push_back(call_json(*matches[i]));
      more = end < matches.size();
      if (begin < end) {
        first_sid = matches[begin]->placed.sid;
        last_sid = matches[end - 1]->placed.sid;
      }
    }
    const std::string base = calls_path();
    const auto page_uri = [&](int n, const std::string* page_token) {
      query_params q = carried;
      q.emplace_back("PageSize", std::to_string(*size));
      q.emplace_back("Page", std::to_string(n));
      if (page_token) q.emplace_back("PageToken", *page_token);
      return base + "?" + form_encode(q);
    };
    const std::string next_token = "PA" + last_sid, previous_token = "PB" + first_sid;
    const auto start = static_cast<std::int64_t>(*page) * *size;
    const auto n = static_cast<std::int64_t>(calls.size());
    json body = {{"calls", calls},
                 {"first_page_uri", page_uri(0, nullptr)},
                 {"next_page_uri", more ? json(page_uri(*page + 1, &next_token)) : json(nullptr)},
                 {"previous_page_uri",
                  *page > 0 ? json(page_uri(*page - 1, first_sid.empty() ? nullptr : &previous_token))
                            : json(nullptr)},
                 {"uri", page_uri(*page, token)},
                 {"page", *page},
                 {"page_size", *size},
                 {"start", start},
                 {"end", n > 0 ? start + n - 1 : start}};
    return json_reply(bhttp::status::ok, body);
  }

  std::string calls_path() const { return "/2010-04-01/Accounts/" + options_.account_sid + "/Calls.json"; }

  json call_json(const call_record& c) const {  // under mutex_
    const auto& p = c.placed;
    const auto time_or_null = [](const std::optional<sys_clock::time_point>& t) {
      return t ? json(rfc2822(*t)) : json();
    };
    return {{"sid", p.sid},
            {"account_sid", p.account_sid},
            {"parent_call_sid", nullptr},
            {"to", p.to},
            {"to_formatted", p.to},
            {"from", p.from},
            {"from_formatted", p.from},
            {"phone_number_sid", nullptr},
            {"status", c.status},
            {"direction", "outbound-api"},
            {"api_version", api_version},
            {"date_created", rfc2822(p.created_at)},
            {"date_updated", rfc2822(c.date_updated)},
            {"start_time", time_or_null(c.start_time)},
            {"end_time", time_or_null(c.end_time)},
            {"duration", c.duration ? json(std::to_string(*c.duration)) : json()},
            {"price", nullptr},
            {"price_unit", "USD"},
            {"answered_by", c.answered_by.empty() ? json() : json(c.answered_by)},
            {"caller_name", nullptr},
            {"forwarded_from", nullptr},
            {"group_sid", nullptr},
            {"trunk_sid", nullptr},
            {"queue_time", "0"},
            {"annotation", nullptr},
            {"uri", "/2010-04-01/Accounts/" + p.account_sid + "/Calls/" + p.sid + ".json"},
            {"subresource_uris", json::object()}};
  }

  std::string new_sid() {  // under mutex_
    std::array<char, 40> out{};
    std::snprintf(out.data(), out.size(), "CA%016llx%016llx", static_cast<unsigned long long>(sid_rng_()),
                  static_cast<unsigned long long>(sid_rng_()));
    return out.data();
  }

  void log_created(const placed_call& p) const {
    if (log_fd_ < 0) return;
    const json line = {{"sid", p.sid},
                       {"account_sid", p.account_sid},
                       {"to", p.to},
                       {"from", p.from},
                       {"url", p.url},
                       {"twiml", p.twiml},
                       {"application_sid", p.application_sid},
                       {"status_callback", p.status_callback},
                       {"attempt", p.attempt},
                       {"machine_detection", p.machine_detection},
                       {"created_at", rfc3339(p.created_at)},
                       {"fault", to_string(p.fault)},
                       {"port", port_.load()}};
    const std::string text = line.dump() + "\n";
    if (::write(log_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      std::fprintf(stderr, "fake_twilio: writing %s failed: %s\n", options_.log_path.c_str(),
                   std::strerror(errno));
  }

  // ---- a call's life (on its strand) ----

  std::int64_t reported_seconds(std::chrono::microseconds real) const {
    const double seconds = static_cast<double>(real.count()) * options_.time_scale / 1e6;
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(seconds - 1e-9)));
  }

  void end_call(call_record& c, const char* status, const char* sip, std::optional<std::int64_t> duration) {
    // under mutex_
    c.ended = true;
    c.status = status;
    c.sip = sip;
    c.duration = duration;
    c.end_time = c.date_updated = sys_clock::now();
    ++counters_.calls_ended;
  }

  // Until the timer fires; false when the call was ended meanwhile (an update cancels the timer).
  net::awaitable<bool> pause(std::shared_ptr<call_record> c, std::chrono::milliseconds d) {
    {
      std::lock_guard lock(mutex_);
      if (c->ended) co_return false;
    }
    c->rt->timer.expires_after(d);
    beast::error_code ec;
    co_await c->rt->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    std::lock_guard lock(mutex_);
    co_return !c->ended;
  }

  // Moves the call on unless it has ended; false if it had.
  bool advance(call_record& c, const char* status, const char* sip = nullptr,
               std::optional<std::int64_t> duration = {}) {
    {
      std::lock_guard lock(mutex_);
      if (c.ended) return false;
      if (sip) {
        end_call(c, status, sip, duration);
      } else {
        c.status = status;
        c.date_updated = sys_clock::now();
      }
    }
    changed_.notify_all();
    return true;
  }

  std::string answered_by(const call_record& c, bool machine) const {
    if (!machine) return "human";
    return c.placed.machine_detection == "DetectMessageEnd" ? "machine_end_beep" : "machine_start";
  }

  net::awaitable<void> run_call(std::shared_ptr<call_record> c) {
    {
      std::lock_guard lock(mutex_);
      c->start_time = c->date_updated = sys_clock::now();
    }
    emit(c, ev_initiated);
    co_await live(c);
    emit_final(c);
    c->rt->life_done = true;
    maybe_settle(c);
  }

  // Ringing, then the outcome the last digit of To says, unless an update ends the call first.
  net::awaitable<void> live(std::shared_ptr<call_record> c) {
    const char digit = c->placed.to.back();
    bool on = co_await pause(c, options_.ring);
    if (!on || !advance(*c, "ringing")) co_return;
    emit(c, ev_ringing);
    if (digit == '6') {
      advance(*c, "busy", "486");
    } else if (digit == '8') {
      advance(*c, "failed", draw(options_.seed, c->placed.create_request, 41) < 0.5 ? "500" : "503");
    } else if (digit == '7') {
      on = co_await pause(c, options_.ring);
      if (on) advance(*c, "no-answer", "487");
    } else if (answer(*c, digit == '9')) {
      emit(c, ev_answered);
      const auto full = digit == '9' ? options_.machine_talk.value_or(options_.talk) : options_.talk;
      auto talk = full;
      if (c->async_amd) {
        const auto detection = std::min(options_.amd_delay, talk);
        on = co_await pause(c, detection);
        if (!on) co_return;
        emit_amd(c, digit == '9', detection);
        talk -= detection;
      }
      on = co_await pause(c, talk);
      if (on) advance(*c, "completed", "200", reported_seconds(full));
    }
  }

  bool answer(call_record& c, bool machine) {
    {
      std::lock_guard lock(mutex_);
      if (c.ended) return false;
      c.status = "in-progress";
      c.answered_at = steady::now();
      c.date_updated = sys_clock::now();
      if (!c.placed.machine_detection.empty() && !c.async_amd) c.answered_by = answered_by(c, machine);
    }
    changed_.notify_all();
    return true;
  }

  query_params status_params(call_record& c, const char* call_status,
                             bool with_answered_by) {  // under mutex_
    const auto& p = c.placed;
    query_params q{{"CallSid", p.sid},
                   {"AccountSid", p.account_sid},
                   {"From", p.from},
                   {"To", p.to},
                   {"CallStatus", call_status},
                   {"Direction", "outbound-api"},
                   {"ApiVersion", std::string(api_version)},
                   {"CallbackSource", "call-progress-events"},
                   {"SequenceNumber", std::to_string(c.rt->sequence++)},
                   {"Timestamp", rfc2822(sys_clock::now())}};
    if (with_answered_by && !c.placed.machine_detection.empty() && !c.async_amd && !c.answered_by.empty())
      q.emplace_back("AnsweredBy", c.answered_by);
    ++c.callbacks_generated;
    return q;
  }

  outgoing status_callback(call_record& c, query_params params) const {
    outgoing o;
    o.where = *c.callback;
    o.url = c.placed.status_callback;
    o.get = c.callback_get;
    o.params = std::move(params);
    return o;
  }

  void emit(const std::shared_ptr<call_record>& c, event e) {
    if (!c->callback || c->meets(callback_fault::never) || !(c->events & e)) return;
    outgoing o;
    {
      std::lock_guard lock(mutex_);
      const char* status = e == ev_initiated ? "initiated" : e == ev_ringing ? "ringing" : "in-progress";
      o = status_callback(*c, status_params(*c, status, e == ev_answered));
    }
    if (c->meets(callback_fault::out_of_order) && e != ev_initiated) {
      c->rt->held.push_back(std::move(o));
      return;
    }
    enqueue(c, std::move(o));
  }

  void emit_final(const std::shared_ptr<call_record>& c) {
    if (!c->callback || c->meets(callback_fault::never)) return;
    outgoing o;
    {
      std::lock_guard lock(mutex_);
      const std::string status = c->status;
      auto q = status_params(*c, status.c_str(), true);
      const std::string talked = std::to_string(c->duration.value_or(0));
      q.emplace_back("CallDuration", talked);
      q.emplace_back("Duration", talked);
      q.emplace_back("SipResponseCode", c->sip);
      o = status_callback(*c, std::move(q));
    }
    o.final = true;
    if (c->meets(callback_fault::late)) o.delay = options_.late_by;
    enqueue(c, std::move(o));
    for (auto& h : c->rt->held) enqueue(c, std::move(h));
    c->rt->held.clear();
  }

  void emit_amd(const std::shared_ptr<call_record>& c, bool machine, std::chrono::milliseconds detection) {
    const std::string who = answered_by(*c, machine);
    {
      std::lock_guard lock(mutex_);
      c->answered_by = who;
    }
    if (!c->amd_callback || c->meets(callback_fault::never)) return;
    outgoing o;
    o.where = *c->amd_callback;
    o.url = c->amd_callback_url;
    o.get = c->amd_get;
    o.amd = true;
    const auto reported_ms =
        static_cast<std::int64_t>(static_cast<double>(detection.count()) * options_.time_scale);
    o.params = {{"CallSid", c->placed.sid},
                {"AccountSid", c->placed.account_sid},
                {"AnsweredBy", who},
                {"MachineDetectionDuration", std::to_string(reported_ms)}};
    enqueue(c, std::move(o));
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
      c->callback.reset();
      c->amd_callback.reset();
    }
    changed_.notify_all();
  }

  // ---- the callbacks (on the call's strand) ----

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

  // For GET, the parameters go into the URL, which is then what is signed (with no POST parameters).
  static std::pair<std::string, query_params> signed_parts(const outgoing& o) {
    if (!o.get) return {o.url, o.params};
    return {o.url + (o.url.find('?') == std::string::npos ? "?" : "&") + form_encode(o.params), {}};
  }

  net::awaitable<void> deliver(std::shared_ptr<call_record> c, outgoing o) {
    const auto signed_over = signed_parts(o);  // (no structured bindings across a co_await: g++ 12)
    const std::string right =
        http::twilio_signature(options_.auth_token, signed_over.first, signed_over.second);
    for (int copy = 0; copy < (c->meets(callback_fault::twice) ? 2 : 1); ++copy) {
      if (c->meets(callback_fault::bad_signature)) {
        const std::string wrong =
            http::twilio_signature("not-" + options_.auth_token, signed_over.first, signed_over.second);
        co_await post(o, wrong);
        count([](fake_counters& k) { ++k.callbacks_bad_signed; });
        if (!options_.resend_after_bad_signature) continue;
      }
      const bool delivered = co_await post_with_retries(o, right);
      if (!delivered || !o.final) continue;
      bool first_time = false;
      {
        std::lock_guard lock(mutex_);
        first_time = !c->final_delivered;
        c->final_delivered = true;
        if (first_time) ++counters_.finals_delivered;
      }
      if (first_time) changed_.notify_all();
    }
  }

  net::awaitable<bool> post_with_retries(const outgoing& o, const std::string& signature) {
    for (int attempt = 1;; ++attempt) {
      const unsigned status = co_await post(o, signature);
      if (status >= 200 && status < 300) {
        count([&o](fake_counters& k) {
          ++k.callbacks_sent;
          if (o.amd) ++k.amd_callbacks_sent;
        });
        co_return true;
      }
      const bool again = status == 0 || status >= 500 || status == 429;
      if (!again || attempt >= options_.callback_attempts) break;
      count([](fake_counters& k) { ++k.callback_retries; });
      net::steady_timer wait(co_await net::this_coro::executor, options_.callback_retry_delay);
      beast::error_code ec;
      co_await wait.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    count([](fake_counters& k) { ++k.callbacks_failed; });
    co_return false;
  }

  // One HTTP request of a callback; its status, 0 when no answer came.
  net::awaitable<unsigned> post(const outgoing& o, const std::string& signature) {
    count([](fake_counters& k) { ++k.callback_posts; });
    const bool redirected = !options_.callback_authority.empty();
    std::optional<parsed_url> to = redirected ? parse_url("http://" + options_.callback_authority) : o.where;
    if (!to || (!redirected && o.where.https))
      co_return 0;  // no TLS here: an https callback needs the authority
    request req{o.get ? bhttp::verb::get : bhttp::verb::post, o.where.target, 11};
    if (o.get)
      req.target(o.where.target + (o.where.target.find('?') == std::string::npos ? "?" : "&") +
                 form_encode(o.params));
    req.set(bhttp::field::host, o.where.authority);
    req.set(bhttp::field::user_agent, "TwilioProxy/1.1");
    req.set("X-Twilio-Signature", signature);
    if (!o.get) {
      req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
      req.body() = form_encode(o.params);
    }
    req.keep_alive(true);
    req.prepare_payload();
    const std::string key = to->host + ":" + to->port;
    for (int round = 0; round < 2; ++round) {
      std::unique_ptr<beast::tcp_stream> stream = take_idle(key);
      const bool reused = stream != nullptr;
      beast::error_code ec;
      if (!stream) {
        stream = std::make_unique<beast::tcp_stream>(io_->get_executor());
        stream->expires_after(options_.callback_timeout);
        tcp::resolver resolver(co_await net::this_coro::executor);
        const auto endpoints =
            co_await resolver.async_resolve(to->host, to->port, net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return 0;
        co_await stream->async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return 0;
      }
      stream->expires_after(options_.callback_timeout);
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
      if (parser.get().keep_alive()) give_back(key, std::move(stream));
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

  const fake_twilio_options options_;
  account_numbers numbers_;  // its own mutex
  std::atomic<unsigned short> port_{0};
  int log_fd_ = -1;  // opened by start(), before the threads; closed by the destructor

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  rest_rates rest_rates_;                                                // guarded by mutex_
  callback_rates callback_rates_;                                        // guarded by mutex_
  std::deque<std::pair<rest_fault, int>> forced_;                        // guarded by mutex_
  std::uint64_t create_requests_ = 0;                                    // guarded by mutex_
  std::unordered_map<std::string, std::shared_ptr<call_record>> calls_;  // guarded by mutex_
  std::vector<std::shared_ptr<call_record>> order_;                      // guarded by mutex_
  fake_counters counters_;                                               // guarded by mutex_
  std::mt19937_64 sid_rng_;                                              // guarded by mutex_

  std::mutex pool_mutex_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>>
      idle_;  // guarded by pool_mutex_

  // Owner thread only.
  bool started_ = false, stopped_ = false;
  std::unique_ptr<net::io_context> io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
};

// ---- the public face ----

fake_twilio::fake_twilio(fake_twilio_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
fake_twilio::~fake_twilio() = default;

void fake_twilio::start() {
  impl_->start();
}
void fake_twilio::stop() noexcept {
  impl_->stop();
}
unsigned short fake_twilio::port() const noexcept {
  return impl_->port_.load();
}
std::string fake_twilio::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port());
}
const std::string& fake_twilio::account_sid() const noexcept {
  return impl_->options_.account_sid;
}
const std::string& fake_twilio::auth_token() const noexcept {
  return impl_->options_.auth_token;
}

void fake_twilio::set_rate(rest_fault fault, double rate) {
  check_rate(rate);
  std::lock_guard lock(impl_->mutex_);
  if (fault != rest_fault::none) impl_->rest_rates_[static_cast<std::size_t>(fault)] = rate;
}

void fake_twilio::set_rate(callback_fault fault, double rate) {
  check_rate(rate);
  std::lock_guard lock(impl_->mutex_);
  impl_->callback_rates_[static_cast<std::size_t>(fault)] = rate;
}

void fake_twilio::set_rates(const fault_rates& rates) {
  check_rates(rates);
  std::lock_guard lock(impl_->mutex_);
  impl_->rest_rates_ = rest_rates_of(rates);
  impl_->callback_rates_ = callback_rates_of(rates);
}

void fake_twilio::fail_next(rest_fault fault, int n) {
  if (n <= 0) return;
  std::lock_guard lock(impl_->mutex_);
  impl_->forced_.emplace_back(fault, n);
}

std::vector<placed_call> fake_twilio::placed() const {
  std::lock_guard lock(impl_->mutex_);
  std::vector<placed_call> out;
  out.reserve(impl_->order_.size());
  for (const auto& c : impl_->order_) out.push_back(c->placed);
  return out;
}

std::optional<call_snapshot> fake_twilio::call(const std::string& sid) const {
  std::lock_guard lock(impl_->mutex_);
  auto it = impl_->calls_.find(sid);
  if (it == impl_->calls_.end()) return std::nullopt;
  const call_record& c = *it->second;
  return call_snapshot{c.placed,   c.status,     c.answered_by,         c.sip,
                       c.duration, c.fault_list, c.callbacks_generated, c.final_delivered,
                       c.settled};
}

fake_counters fake_twilio::counters() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->counters_;
}

std::vector<incoming_number> fake_twilio::incoming_numbers() const {
  return impl_->numbers_.held();
}

bool fake_twilio::wait_for(const std::function<bool(const fake_counters&)>& done,
                           std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex_);
  return impl_->changed_.wait_for(lock, timeout, [&] { return done(impl_->counters_); });
}
bool fake_twilio::wait_for_callbacks(std::int64_t n, std::chrono::milliseconds timeout) const {
  return wait_for([n](const fake_counters& c) { return c.finals_delivered >= n; }, timeout);
}
bool fake_twilio::wait_for_settled(std::int64_t n, std::chrono::milliseconds timeout) const {
  return wait_for([n](const fake_counters& c) { return c.calls_settled >= n; }, timeout);
}
bool fake_twilio::wait_for_placed(std::int64_t n, std::chrono::milliseconds timeout) const {
  return wait_for([n](const fake_counters& c) { return c.calls_created >= n; }, timeout);
}

}  // namespace dialer::fakes
