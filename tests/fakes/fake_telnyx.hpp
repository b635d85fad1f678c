#pragma once
// A fake of Telnyx's Call Control v2 and Numbers REST APIs (shapes from team-telnyx/telnyx-python, the SDK
// generated from Telnyx's OpenAPI): a real HTTP/1.1 server on 127.0.0.1 that dials calls on one Call Control
// Application, lets them ring, answer and end on timers by the last digit of `to`, posts their webhooks
// signed with an ed25519 key of its own, answers status, hangup and the numbers routes (search, order, list,
// update, release) and the application's settings, and injects REST and webhook faults decided from a seed,
// so that a run can be reproduced. Its own record of every call created (`placed()`, and one JSON line per
// call in `options.log_path`) is the outside check of "never placed twice". It also transfers a live call to
// an agent's leg (a new call, in `agent_legs()`, never in `placed()`), and rings the application with
// incoming calls (`inbound_call()`) that wait parked for an answer, reject or transfer command; every command
// on a call is kept in `commands()`. tests/fakes/README.md lists the routes, the error codes and the faults.
//
// Threading: the fake runs an io_context on `options.threads` threads of its own (connections, call and order
// timers, webhooks; nothing there blocks or sleeps). start() and stop() from the owner thread, never from a
// handler of the fake (stop() joins its threads); the destructor stops. Every other public method may be
// called from any thread at any time, before, during or after the run: they take one mutex briefly and copy
// what they return.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dialer::fakes {

// What a `POST /v2/calls` may meet instead of an ordinary answer; decided per dial request.
enum class telnyx_rest_fault : std::uint8_t {
  none,
  throttle,           // 429, code "10011", x-ratelimit-* headers (no Retry-After); nothing created
  error_unprocessed,  // 500 (code "10007") or 503 ("Service unavailable"); nothing created
  timeout_created,    // the call is created and runs; no answer, the connection stays silent until the client
                      // closes
  timeout_not_created,  // nothing created; silent
  reset_created,        // the call is created and runs; the connection is reset without an answer
  reset_not_created,    // nothing created; reset
};

// What may happen to the webhooks of a call; decided per created call, several may combine.
enum class telnyx_webhook_fault : std::uint8_t {
  late,           // call.hangup is delayed by options.late_by
  twice,          // every webhook of the call is sent twice (the same data.id)
  out_of_order,   // call.initiated, call.answered and the AMD result are held back and sent after call.hangup
  never,          // no webhook at all (GET still tells)
  bad_signature,  // each webhook is signed with another key (then resent rightly signed only if
                  // options.resend_after_bad_signature)
};

[[nodiscard]] std::string_view to_string(telnyx_rest_fault f) noexcept;
[[nodiscard]] std::string_view to_string(telnyx_webhook_fault f) noexcept;

// Rates in [0, 1]: the probability that a dial request (REST) or a created call (webhooks) meets the fault.
struct telnyx_fault_rates {
  double throttle = 0, error_unprocessed = 0, timeout_created = 0, timeout_not_created = 0, reset_created = 0,
         reset_not_created = 0;
  double late = 0, twice = 0, out_of_order = 0, never = 0, bad_signature = 0;
};

struct fake_telnyx_options {
  std::string api_key = "KEY0123456789ABCDEF0123456789ABCDEF_test";  // Authorization: Bearer <api_key>
  std::string connection_id = "1494404757140276705";                 // the Call Control Application's id
  std::string webhook_event_url;  // the application's initial webhook_event_url (PATCH changes it)
  unsigned short port = 0;        // 0: an ephemeral port (see port())
  unsigned threads = 2;

  std::chrono::milliseconds latency{0};       // added to every REST answer (a timer, never a sleep)
  std::chrono::milliseconds ring{20};         // dial -> answered, busy or rejected; twice that to no answer
  std::chrono::milliseconds talk{50};         // answered -> hangup
  // An answering machine's (a `to` ending in 9) answered -> hangup; unset: `talk`. A test that checks the engine
  // hangs machines up sets it long, so the hang-up never races the machine's own end.
  std::optional<std::chrono::milliseconds> machine_talk;
  std::chrono::milliseconds amd_delay{3};     // answered -> call.machine.detection.ended
  std::chrono::milliseconds late_by{1000};    // the `late` fault's delay of call.hangup
  std::chrono::milliseconds order_delay{30};  // a number order: pending -> success
  double time_scale = 1000;                   // reported seconds = real ms * time_scale / 1000 (ceil, >= 1)

  std::vector<std::string> allowed_from;                  // empty: any from; else 10001 for another one
  std::vector<std::string> invalid_to;                    // 10002 for these numbers
  std::vector<std::string> invalid_to_prefixes{"+1900"};  // and for numbers that start so

  std::string callback_authority;  // "127.0.0.1:PORT": post every webhook there (delivered_to stays the URL)
  int webhook_attempts = 3;        // per webhook, on no answer or a 5xx/429; then dropped and counted
  std::chrono::milliseconds webhook_retry_delay{100};
  std::chrono::milliseconds webhook_timeout{5000};  // per attempt, connection included
  bool resend_after_bad_signature = false;

  std::chrono::seconds idle_timeout{300};  // a keep-alive connection with no request is closed after this
  std::uint64_t seed = 1;                  // fault decisions: a function of (seed, request or call number)
  telnyx_fault_rates rates;                // the initial rates (setters change them)
  std::string log_path;                    // one JSON line per created call, appended (O_APPEND, one write)

  std::vector<std::string> owned_numbers;      // in the account from the start: active, connection_id ""
  std::vector<std::string> available_numbers;  // the inventory to search and order; empty: the default one
                                               // (+1{212,312,415,512,617,888,877}5550100..0199)

  // A transfer's new leg (the agent's) answers after `ring`; false: it refuses after `ring` (call_rejected,
  // "603") and the transferred call stays up. set_agent_answers() changes it for the next transfers.
  bool agent_answers = true;
  // An agent's leg that answered hangs up after this (which ends the call it was transferred from, as Telnyx does
  // without park_after_unbridge); by default it stays until that call ends. A test that must not race the callee's
  // own hang-up against the engine's transfer sets `talk` long and ends the call here instead.
  std::chrono::milliseconds agent_talk = std::chrono::hours(24 * 365);
};

// A call as it was dialed: the fake's own record.
struct telnyx_placed_call {
  std::string call_control_id, call_leg_id, call_session_id;
  std::string connection_id;
  std::string to, from;  // `to`: the first element when an array was given
  // Where its webhooks go: the dial's webhook_url, else the application's webhook_event_url at the dial.
  std::string webhook_url;
  std::string client_state;  // as given (base64), "" without one
  std::string command_id;
  std::string stream_url, stream_track, stream_bidirectional_mode;
  std::string answering_machine_detection;  // as given, "" without one
  std::int64_t attempt = 0;  // from client_state: base64 of a JSON object {"attempt": n, ...} (n a number or
                             // a decimal string) or of a bare decimal number; 0 otherwise
  std::vector<std::pair<std::string, std::string>> custom_headers;  // name, value
  std::chrono::system_clock::time_point created_at;
  std::uint64_t create_request = 0;  // the dial request's number (0-based), which decided faults
  telnyx_rest_fault fault = telnyx_rest_fault::none;  // timeout_created or reset_created: the answer was lost
};

// What an answer command of an incoming call gave: its body's fields, "" (or empty) when absent.
struct telnyx_answer {
  std::string client_state, command_id;
  std::string stream_url, stream_track, stream_bidirectional_mode;
  std::string webhook_url, webhook_url_method;  // webhook_url: where the call's later webhooks go
  std::vector<std::pair<std::string, std::string>> custom_headers;  // name, value
};

// A call as it is now.
struct telnyx_call_snapshot {
  telnyx_placed_call placed;
  std::string state;  // bridging (dialing), answered, hangup
  bool is_alive = false;
  std::string hangup_cause, sip_hangup_cause, hangup_source;  // once ended
  std::string amd_result;                                     // human or machine, once detected
  std::optional<std::int64_t> duration;  // reported seconds, once ended (0: never answered)
  std::vector<telnyx_webhook_fault> webhook_faults;
  int webhooks_generated = 0;     // events (call.initiated, ...), duplicates not counted
  bool hangup_delivered = false;  // call.hangup rightly signed and answered 2xx
  bool settled = false;           // ended, and every webhook delivered, dropped or never sent

  // The state above is also "parked" for an incoming call waiting for a command.
  std::string direction;  // outgoing (a dial, an agent's leg), incoming (inbound_call())
  // The last transfer taken on the call ("" or empty without one) and the agent's leg it created.
  std::string transfer_to;
  std::vector<std::pair<std::string, std::string>> transfer_custom_headers;  // name, value
  std::string transfer_target_leg_client_state;
  std::string agent_leg_id;
  int transfers = 0;                    // transfers taken on the call
  std::string transferred_from;         // on an agent's leg: the call_control_id of the call transferred
  std::optional<telnyx_answer> answer;  // an incoming call's answer command, once taken
  std::string reject_cause;             // an incoming call's reject command's cause, once taken
};

// The agent's leg a transfer created: a call of its own, not a dial (so not in placed()).
struct telnyx_agent_leg {
  // Its ids (call_session_id: the transferred call's), connection_id, `to` (the transfer's), `from` (the
  // transfer's, else the transferred call's `to`), webhook_url (the transfer's, else the application's at the
  // transfer), client_state (the transfer's target_leg_client_state) and the `attempt` decoded from it,
  // custom_headers (the transfer's), created_at. command_id, stream and AMD fields are "".
  telnyx_placed_call leg;
  std::string transferred_call_control_id;  // leg A
  bool answers = true;                      // agent_answers at the transfer
};

// A command on a call (POST /v2/calls/{call_control_id}/actions/{hangup,transfer,answer,reject}) that passed
// authentication, as received, whatever its answer.
struct telnyx_command {
  std::string call_control_id;  // from the path, decoded
  std::string action;           // hangup, transfer, answer, reject
  std::string body_json;        // the request's body as sent ("" when empty)
  std::chrono::system_clock::time_point at;
  unsigned status = 0;     // the HTTP status answered
  bool duplicate = false;  // 200 for a command_id the call had already taken: nothing done
};

// A number of the account.
struct telnyx_owned_number {
  std::string id;  // decimal digits: the phone number resource's id
  std::string phone_number;
  std::string status;  // purchase-pending (ordered), active
  std::string connection_id;
  std::vector<std::string> tags;
};

struct fake_telnyx_counters {
  // By route: dial, get_call, hangup, transfer, answer, reject, available_numbers, create_order, get_order,
  // list_numbers, get_number, update_number, delete_number, get_application, update_application, unknown.
  std::map<std::string, std::int64_t> requests;
  std::map<unsigned, std::int64_t> answers;  // by HTTP status, answers written
  std::int64_t connections_accepted = 0, connections_open = 0;
  std::int64_t silent = 0, resets = 0;             // dial requests left unanswered, connections reset
  std::int64_t delayed_now = 0, delayed_peak = 0;  // answers waiting on their latency timer, now and at most
  // calls_created: the dials' (placed()); calls_ended, calls_settled, hangups_delivered: every call's (dials,
  // agent legs and incoming calls alike).
  std::int64_t calls_created = 0, calls_ended = 0, calls_settled = 0;
  std::int64_t duplicate_commands = 0;         // dials answered from an earlier command_id, nothing created
  std::int64_t duplicate_hangup_commands = 0;  // hangups answered from an earlier command_id of the call
  std::int64_t duplicate_call_commands = 0;    // transfers, answers, rejects likewise
  std::int64_t hangups_delivered = 0;          // calls whose call.hangup was delivered rightly signed
  std::int64_t webhook_posts = 0;  // every HTTP request of a webhook (retries, duplicates included)
  std::int64_t webhooks_sent = 0;  // webhooks answered 2xx (rightly signed)
  std::int64_t webhook_retries = 0;
  std::int64_t webhooks_failed = 0;  // given up: no answer after every attempt, or refused (4xx)
  std::int64_t webhooks_bad_signed = 0;
  std::int64_t amd_webhooks_sent = 0;  // of webhooks_sent, the call.machine.detection.ended ones
  std::int64_t hangups = 0;            // effective hangup actions (a live call ended by the client)
  std::int64_t transfers = 0;          // effective transfers (each created an agent's leg)
  std::int64_t inbound_calls = 0, inbound_answered = 0, inbound_rejected = 0;
  std::int64_t orders_created = 0, orders_completed = 0;
  std::int64_t numbers_updated = 0, numbers_deleted = 0;
};

class fake_telnyx {
 public:
  // Generates the webhook key pair. Throws std::invalid_argument for a rate outside [0, 1], zero threads, an
  // owned number that is not +E.164 or an available one that is not +1 and ten digits; std::runtime_error if
  // OpenSSL cannot make a key.
  explicit fake_telnyx(fake_telnyx_options options = {});
  ~fake_telnyx();
  fake_telnyx(const fake_telnyx&) = delete;
  fake_telnyx& operator=(const fake_telnyx&) = delete;

  // Binds 127.0.0.1:options.port, opens the log, starts the threads. Throws std::runtime_error when it cannot
  // bind or open the log, std::logic_error when called twice.
  void start();
  // Closes everything and joins the threads; calls and orders still running stay as they are (their record
  // too). Idempotent.
  void stop() noexcept;

  [[nodiscard]] unsigned short port() const noexcept;  // the bound port once started
  [[nodiscard]] std::string base_url() const;          // "http://127.0.0.1:PORT" (the routes are under /v2)
  [[nodiscard]] const std::string& api_key() const noexcept;
  [[nodiscard]] const std::string& connection_id() const noexcept;
  // The ed25519 key that verifies the webhooks: base64 of its 32 raw bytes, as Mission Control shows it.
  [[nodiscard]] const std::string& public_key_base64() const noexcept;

  // Fault rates (std::invalid_argument outside [0, 1]); they apply from the next dial request.
  void set_rate(telnyx_rest_fault fault, double rate);
  void set_rate(telnyx_webhook_fault fault, double rate);
  void set_rates(const telnyx_fault_rates& rates);
  // Where the webhooks go from now on (options.callback_authority's meaning): an engine started after the fake
  // was made, since the engine needs the fake's public key first.
  void set_callback_authority(std::string authority);
  // The next n dial requests meet `fault` (before any rate; queued after earlier fail_next calls). Consumed
  // by dial requests that pass authentication, whether or not their parameters are valid.
  void fail_next(telnyx_rest_fault fault, int n = 1);
  // options.agent_answers from the next transfer on.
  void set_agent_answers(bool answers);

  // An incoming call from `from` to `to` on the application: direction "incoming", state "parked", its own
  // ids, options.connection_id; posts call.initiated (no client_state) to the application's
  // webhook_event_url as it is now, then waits for an answer, reject, transfer or hangup command. Its
  // call_control_id. Between start() and stop(), not concurrently with them (std::logic_error otherwise);
  // std::invalid_argument for an empty from or to.
  std::string inbound_call(std::string from, std::string to);

  [[nodiscard]] std::vector<telnyx_placed_call> placed() const;    // in creation order
  [[nodiscard]] std::vector<telnyx_agent_leg> agent_legs() const;  // in creation order
  [[nodiscard]] std::vector<telnyx_command> commands() const;      // in arrival order
  [[nodiscard]] std::optional<telnyx_call_snapshot> call(const std::string& call_control_id) const;
  [[nodiscard]] fake_telnyx_counters counters() const;
  [[nodiscard]] std::vector<telnyx_owned_number> owned_numbers() const;  // in the account, oldest first
  [[nodiscard]] std::string application_webhook_url() const;             // the application's, as it is now

  // Wait for the counters to satisfy `done` (checked under the fake's mutex: keep it short, call nothing of
  // the fake from it); false on timeout.
  bool wait_for(const std::function<bool(const fake_telnyx_counters&)>& done,
                std::chrono::milliseconds timeout) const;
  // Until n calls have had their call.hangup delivered rightly signed.
  bool wait_for_hangups(std::int64_t n, std::chrono::milliseconds timeout) const;
  // Until n calls are settled (ended, webhooks delivered, dropped or never sent).
  bool wait_for_settled(std::int64_t n, std::chrono::milliseconds timeout) const;
  // Until n calls have been created.
  bool wait_for_placed(std::int64_t n, std::chrono::milliseconds timeout) const;
  // Until n commands have been received (commands().size() >= n).
  bool wait_for_commands(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace dialer::fakes
