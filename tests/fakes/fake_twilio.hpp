#pragma once
// A fake of Twilio's Programmable Voice REST API, the Calls resource (shapes from twilio/twilio-oai,
// spec/json/twilio_api_v2010.json): a real HTTP/1.1 server on 127.0.0.1 that creates calls, lets them ring,
// answer and end on timers by the last digit of `To`, posts signed status callbacks, answers GET, list and
// update, and injects REST and callback faults decided from a seed, so that a run can be reproduced. Its own
// record of every call created (`placed()`, and one JSON line per call in `options.log_path`) is the outside
// check of "never placed twice". It also holds the account's phone numbers: an inventory to search and buy
// from (AvailablePhoneNumbers), and the numbers bought or pre-owned, to list, fetch, update and release
// (IncomingPhoneNumbers). tests/fakes/README.md lists the routes, the error codes and the faults.
//
// Threading: the fake runs an io_context on `options.threads` threads of its own (connections, call timers
// and callbacks; nothing there blocks or sleeps). start() and stop() from the owner thread, never from a
// handler of the fake (stop() joins its threads); the destructor stops. Every other public method may be
// called from any thread at any time, before, during or after the run: they take a mutex briefly and copy
// what they return.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dialer::fakes {

// What a `POST .../Calls.json` may meet instead of an ordinary answer; decided per create request.
enum class rest_fault : std::uint8_t {
  none,
  throttle,           // 429, code 20429, Retry-After: 1; nothing created
  error_unprocessed,  // 500 or 503, code 20500; nothing created
  timeout_created,    // the call is created and runs; no answer, the connection stays silent until the client
                      // closes
  timeout_not_created,  // nothing created; silent
  reset_created,        // the call is created and runs; the connection is reset without an answer
  reset_not_created,    // nothing created; reset
};

// What may happen to the status callbacks of a call; decided per created call, several may combine.
enum class callback_fault : std::uint8_t {
  late,           // the final callback is delayed by options.late_by
  twice,          // every callback of the call is sent twice (same SequenceNumber)
  out_of_order,   // the ringing and answered callbacks are held back and sent after the final one
  never,          // no callback at all (GET still tells the status)
  bad_signature,  // each callback is signed with a wrong token (then resent rightly signed only if
                  // options.resend_after_bad_signature)
};

[[nodiscard]] std::string_view to_string(rest_fault f) noexcept;
[[nodiscard]] std::string_view to_string(callback_fault f) noexcept;

// Rates in [0, 1]: the probability that a create request (REST) or a created call (callbacks) meets the
// fault.
struct fault_rates {
  double throttle = 0, error_unprocessed = 0, timeout_created = 0, timeout_not_created = 0, reset_created = 0,
         reset_not_created = 0;
  double late = 0, twice = 0, out_of_order = 0, never = 0, bad_signature = 0;
};

struct api_key {
  std::string sid;  // "SK" + 32 hex
  std::string secret;
};

struct fake_twilio_options {
  std::string account_sid = "AC0123456789abcdef0123456789abcdef";
  std::string auth_token = "0123456789abcdef0123456789abcdef";  // also signs the callbacks
  std::vector<api_key> api_keys;                                // more Basic credentials of the same account
  unsigned short port = 0;                                      // 0: an ephemeral port (see port())
  unsigned threads = 2;

  std::chrono::milliseconds latency{0};     // added to every REST answer (a timer, never a sleep)
  std::chrono::milliseconds ring{20};       // create -> ringing, and ringing -> no-answer
  std::chrono::milliseconds talk{50};       // answered -> completed
  // An answering machine's (a To ending in 9) answered -> completed; unset: `talk`. A test that checks the engine
  // hangs machines up sets it long, so the hang-up never races the machine's own end.
  std::optional<std::chrono::milliseconds> machine_talk;
  std::chrono::milliseconds amd_delay{3};   // answered -> the AsyncAmdStatusCallback
  std::chrono::milliseconds late_by{1000};  // the `late` fault's delay of the final callback
  double time_scale = 1000;                 // reported seconds = real ms * time_scale / 1000 (ceil, >= 1)

  std::vector<std::string> verified_from;                 // empty: any From; else 21210 for another one
  std::vector<std::string> invalid_to;                    // 21211 for these numbers
  std::vector<std::string> invalid_to_prefixes{"+1900"};  // and for numbers that start so

  std::string callback_authority;  // "127.0.0.1:PORT": post every callback there (signed over the URL)
  int callback_attempts = 3;       // per callback, on no answer or a 5xx/429; then dropped and counted
  std::chrono::milliseconds callback_retry_delay{100};
  std::chrono::milliseconds callback_timeout{5000};  // per attempt, connection included
  bool resend_after_bad_signature = false;

  std::chrono::seconds idle_timeout{300};  // a keep-alive connection with no request is closed after this
  std::uint64_t seed = 1;                  // fault decisions: a function of (seed, request or call number)
  fault_rates rates;                       // the initial rates (setters change them)
  std::string log_path;                    // one JSON line per created call, appended (O_APPEND, one write)

  // The account's phone numbers (AvailablePhoneNumbers, IncomingPhoneNumbers). `owned_numbers`: numbers the
  // account already holds (E.164), each given a PN sid at construction. `available_numbers`: the inventory on
  // offer (+1 and 10 digits), replacing the default one: +1{NPA}5550100..0199 for NPA 212, 312, 415, 512, 617
  // and the toll-free +1{888,877}5550100..0199. An owned number is never offered.
  std::vector<std::string> owned_numbers;
  std::vector<std::string> available_numbers;
};

// A call as it was created: the fake's own record.
struct placed_call {
  std::string sid;
  std::string account_sid;
  std::string to, from;
  std::string url, twiml, application_sid;
  std::string status_callback;    // exactly as given
  std::int64_t attempt = 0;       // the `attempt` query parameter of StatusCallback, 0 without one
  std::string machine_detection;  // "", "Enable" or "DetectMessageEnd"
  std::chrono::system_clock::time_point created_at;
  std::uint64_t create_request = 0;     // the create request's number (0-based), which decided its faults
  rest_fault fault = rest_fault::none;  // timeout_created or reset_created: the client never got the answer
};

// A call as it is now.
struct call_snapshot {
  placed_call placed;
  std::string status;                    // queued, ringing, in-progress, completed, busy, failed, ...
  std::string answered_by;               // "" when none
  std::string sip_response_code;         // once ended
  std::optional<std::int64_t> duration;  // reported seconds, once completed
  std::vector<callback_fault> callback_faults;
  int callbacks_generated = 0;            // status callbacks (SequenceNumber 0..n-1), duplicates not counted
  bool final_callback_delivered = false;  // rightly signed and answered 2xx
  bool settled = false;                   // ended, and every callback delivered, dropped or never sent
};

// A phone number the account holds, as it is now.
struct incoming_number {
  std::string sid;  // "PN" + 32 hex
  std::string phone_number;
  std::string voice_url;     // "" when none
  std::string voice_method;  // "GET" or "POST"
  std::string friendly_name;
  std::string voice_application_sid, trunk_sid;  // "" when none; at most one of them is set
};

struct fake_counters {
  std::map<std::string, std::int64_t>
      requests;  // by route: create_call, list_calls, get_call, update_call, search_numbers, buy_number,
                 // list_numbers, get_number, update_number, release_number, unknown
  std::map<unsigned, std::int64_t> answers;  // by HTTP status, answers written
  std::int64_t connections_accepted = 0, connections_open = 0;
  std::int64_t silent = 0, resets = 0;             // create requests left unanswered, connections reset
  std::int64_t delayed_now = 0, delayed_peak = 0;  // answers waiting on their latency timer, now and at most
  std::int64_t calls_created = 0, calls_ended = 0, calls_settled = 0;
  std::int64_t finals_delivered = 0;  // calls whose final callback was delivered rightly signed
  std::int64_t callback_posts = 0;    // every HTTP request of a callback (retries, duplicates included)
  std::int64_t callbacks_sent = 0;    // callbacks answered 2xx (rightly signed)
  std::int64_t callback_retries = 0;
  std::int64_t callbacks_failed = 0;  // given up: no answer after every attempt, or refused (4xx)
  std::int64_t callbacks_bad_signed = 0;
  std::int64_t amd_callbacks_sent = 0;    // of callbacks_sent, those to AsyncAmdStatusCallback
  std::int64_t cancels = 0, hangups = 0;  // effective Status=canceled / Status=completed updates
};

class fake_twilio {
 public:
  // Throws std::invalid_argument for a rate outside [0, 1], zero threads, an owned number that is not E.164
  // or an available one that is not +1 and 10 digits.
  explicit fake_twilio(fake_twilio_options options = {});
  ~fake_twilio();
  fake_twilio(const fake_twilio&) = delete;
  fake_twilio& operator=(const fake_twilio&) = delete;

  // Binds 127.0.0.1:options.port, opens the log, starts the threads. Throws std::runtime_error when it cannot
  // bind or open the log, std::logic_error when called twice.
  void start();
  // Closes everything and joins the threads; calls still running stay as they are (their record too).
  // Idempotent.
  void stop() noexcept;

  [[nodiscard]] unsigned short port() const noexcept;  // the bound port once started
  [[nodiscard]] std::string base_url() const;          // "http://127.0.0.1:PORT"
  [[nodiscard]] const std::string& account_sid() const noexcept;
  [[nodiscard]] const std::string& auth_token() const noexcept;

  // Fault rates (std::invalid_argument outside [0, 1]); they apply from the next create request.
  void set_rate(rest_fault fault, double rate);
  void set_rate(callback_fault fault, double rate);
  void set_rates(const fault_rates& rates);
  // The next n create requests meet `fault` (before any rate; queued after earlier fail_next calls). Consumed
  // by create requests that pass authentication, whether or not their parameters are valid.
  void fail_next(rest_fault fault, int n = 1);

  [[nodiscard]] std::vector<placed_call> placed() const;  // in creation order
  [[nodiscard]] std::optional<call_snapshot> call(const std::string& sid) const;
  [[nodiscard]] fake_counters counters() const;
  // The numbers the account holds, oldest first (the pre-owned ones first, in the options' order).
  [[nodiscard]] std::vector<incoming_number> incoming_numbers() const;

  // Wait for the counters to satisfy `done` (checked under the fake's mutex: keep it short, call nothing of
  // the fake from it); false on timeout.
  bool wait_for(const std::function<bool(const fake_counters&)>& done,
                std::chrono::milliseconds timeout) const;
  // Until n calls have had their final callback delivered rightly signed.
  bool wait_for_callbacks(std::int64_t n, std::chrono::milliseconds timeout) const;
  // Until n calls are settled (ended, callbacks delivered, dropped or never sent).
  bool wait_for_settled(std::int64_t n, std::chrono::milliseconds timeout) const;
  // Until n calls have been created.
  bool wait_for_placed(std::int64_t n, std::chrono::milliseconds timeout) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace dialer::fakes
