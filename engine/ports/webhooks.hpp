#pragma once
// The ports of event webhooks: the outbox the events wait in (PostgreSQL: adapters/postgres/pg_webhook_outbox)
// and the sender that posts one signed request (adapters/webhooks/http_sender). The events themselves are written
// by the database, in the transaction of the change that causes them (migration 11: a log row per statement); the
// dispatcher (engine/webhook_dispatcher) only delivers them.
//
// Threading: an instance is used by one thread at a time (the dispatcher gives each of its threads its own).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ids.hpp"
#include "engine/ports/inventory_store.hpp"  // page_request
#include "engine/result.hpp"

namespace dialer {

// One event to one endpoint, leased to the engine that claimed it until `lease_until`.
struct webhook_delivery {
  std::int64_t event_id = 0;
  std::int64_t endpoint_id = 0;
  std::int64_t log_id = 0;           // where the outbox keeps the event
  std::int64_t segment_id = 0;       // a first try: the leased part of the log it came with; 0: a retry
                                     // (or replay) of a delivery that has a row of its own
  std::string message_id;            // webhook-id: the event's, the same on every try and for every endpoint
  std::string url;
  std::vector<std::string> secrets;  // the current secret first; the previous one while a rotation overlaps
  std::string body;                  // the JSON sent
  int attempts = 0;                  // tries before this one
};

// What a try came to, as the dispatcher decided it; or why a leased delivery was not tried.
struct webhook_outcome {
  enum class kind {
    delivered,  // 2xx
    retry,      // again at next_attempt_at
    exhausted,  // the schedule is spent: failed (a replay makes it pending again)
    gone,       // 410: the endpoint is disabled, the delivery waits for it to be enabled again
    deferred,   // not tried: an earlier try of its batch was throttled or failed; due again at next_attempt_at,
                // no try counted
    untried,    // not tried (the batch ran out of time, or the endpoint went away): released as it was
  };
  kind what = kind::retry;
  int status = 0;                    // the receiver's HTTP status; 0: no answer
  std::string error;                 // why, when not delivered
  std::chrono::system_clock::time_point attempted_at;
  std::chrono::system_clock::time_point next_attempt_at;  // retry and deferred
  std::chrono::milliseconds took{0};
};

struct webhook_try {
  webhook_delivery delivery;
  webhook_outcome outcome;
};

// Threading: one instance per dispatcher thread; its lease holder names that thread.
class webhook_outbox {
 public:
  virtual ~webhook_outbox() = default;
  // Leases up to `limit` deliveries of one enabled endpoint that is not paused and has fewer lease holders
  // (dispatcher threads, of every engine) than its max_in_flight and fewer than `per_process` of this process's;
  // endpoints in turn, the least recently served first. What is leased, in this order of preference: first tries
  // whose holder's lease ran out (sent again), due retries (oldest first), or the endpoint's next events (in the
  // order they happened). A thread posts its batch in order, so an endpoint never has more requests in flight
  // than max_in_flight.
  [[nodiscard]] virtual result<std::vector<webhook_delivery>> claim(std::chrono::system_clock::time_point now,
                                                                    std::chrono::seconds lease, std::size_t limit,
                                                                    int per_process) = 0;
  // Records a batch's tries (and releases what was not tried) in one transaction and ends their leases; a
  // delivery whose lease was lost to another engine meanwhile keeps its state (its try is still history). A
  // receiver that was down or throttling pauses its endpoint (for every engine) until the deferred tries are due;
  // one that has failed every try for 5 days is disabled.
  [[nodiscard]] virtual result<void> record(const std::vector<webhook_try>& tries) = 0;
  // Forgets events older than `before` that no endpoint is still waiting for. Returns how many.
  [[nodiscard]] virtual result<std::int64_t> expire(std::chrono::system_clock::time_point before) = 0;
};

// One try, as the sender must post it: signed (Standard Webhooks) with each secret over
// "<message_id>.<timestamp>.<body>", in the headers webhook-id, webhook-timestamp and webhook-signature.
struct webhook_request {
  std::string url;
  std::string message_id;
  std::int64_t timestamp = 0;        // unix seconds
  std::vector<std::string> secrets;
  std::string body;
  std::chrono::milliseconds timeout{15'000};  // the whole exchange: resolve, connect, send, answer
};

struct webhook_response {
  int status = 0;                               // 0: no HTTP answer (`error` says why)
  std::optional<std::chrono::seconds> retry_after;
  std::string error;
};

class webhook_sender {
 public:
  virtual ~webhook_sender() = default;
  // Signs and posts; never throws (a failure is a response with status 0 and the reason).
  [[nodiscard]] virtual webhook_response post(const webhook_request& request) = 0;
};

// The event types an endpoint may ask for (none asked: all of them).
inline constexpr std::string_view kWebhookEventTypes[] = {
    "campaign.launched", "campaign.paused", "campaign.resumed", "campaign.completed", "campaign.cancelled",
    "call.answered",     "call.ended",      "contact.finished"};

// An account's receiver, as the API shows it (never its secret, which is shown once: at creation and rotation).
struct webhook_endpoint_record {
  std::int64_t id = 0;
  account_id account;
  std::string url;
  std::string description;
  std::vector<std::string> event_types;  // empty: every type
  bool enabled = true;
  std::string disabled_reason;           // why it was disabled (410 from the receiver, or by the API)
  int max_in_flight = 4;
  std::optional<std::chrono::system_clock::time_point> previous_secret_until;  // a rotation's overlap
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point updated_at;
  std::int64_t pending = 0, delivered = 0, failed = 0;  // its deliveries by state
  std::string secret;                    // filled only by create and rotate
};

struct webhook_endpoint_change {
  std::optional<std::string> url;
  std::optional<std::string> description;
  std::optional<std::vector<std::string>> event_types;
  std::optional<bool> enabled;
  std::optional<int> max_in_flight;
};

struct webhook_delivery_record {
  std::int64_t event_id = 0;
  std::string message_id;  // evt_<event_id>: the webhook-id
  std::string type;
  std::string state;       // pending, delivered, failed
  int attempts = 0;
  std::chrono::system_clock::time_point occurred_at;
  std::optional<std::chrono::system_clock::time_point> next_attempt_at;  // pending only
  std::optional<std::chrono::system_clock::time_point> delivered_at;
  std::optional<int> last_status;
  std::string last_error;
};

struct webhook_attempt_record {
  std::int64_t id = 0;
  std::int64_t event_id = 0;
  std::string message_id;
  std::string type;
  std::chrono::system_clock::time_point attempted_at;
  std::optional<int> status;  // none: no HTTP answer
  std::string error;
  std::int64_t duration_ms = 0;
};

// An account's endpoints (the API). Every call is scoped to the account: another account's endpoint is not_found.
// Threading: one instance per thread.
class webhook_endpoint_store {
 public:
  virtual ~webhook_endpoint_store() = default;
  [[nodiscard]] virtual result<webhook_endpoint_record> create(account_id account, const std::string& url,
                                                               const std::string& description,
                                                               const std::vector<std::string>& event_types,
                                                               int max_in_flight, const std::string& secret) = 0;
  [[nodiscard]] virtual result<webhook_endpoint_record> get(account_id account, std::int64_t id) = 0;
  [[nodiscard]] virtual result<std::vector<webhook_endpoint_record>> list(account_id account, page_request page) = 0;
  [[nodiscard]] virtual result<webhook_endpoint_record> update(account_id account, std::int64_t id,
                                                               const webhook_endpoint_change& change) = 0;
  [[nodiscard]] virtual result<void> remove(account_id account, std::int64_t id) = 0;
  // The new secret signs from now on; the current one also signs until `previous_until`.
  [[nodiscard]] virtual result<webhook_endpoint_record> rotate(account_id account, std::int64_t id,
                                                               const std::string& secret,
                                                               std::chrono::system_clock::time_point previous_until) = 0;
  // Deliveries newest first (page.after: below that event id), optionally of one state.
  [[nodiscard]] virtual result<std::vector<webhook_delivery_record>> deliveries(account_id account, std::int64_t id,
                                                                                std::optional<std::string> state,
                                                                                page_request page) = 0;
  // Tries newest first (page.after: below that attempt id).
  [[nodiscard]] virtual result<std::vector<webhook_attempt_record>> attempts(account_id account, std::int64_t id,
                                                                             page_request page) = 0;
  // Makes the endpoint's failed deliveries (or the listed events' deliveries, whatever their state) due at `now`
  // with a fresh schedule. Returns how many.
  [[nodiscard]] virtual result<std::int64_t> replay(account_id account, std::int64_t id,
                                                    const std::vector<std::int64_t>& event_ids,
                                                    std::chrono::system_clock::time_point now) = 0;
};

}  // namespace dialer
