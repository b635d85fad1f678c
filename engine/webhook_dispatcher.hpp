#pragma once
// Delivers the outbox's events to the platform's endpoints: claims what is due with a lease, signs each request
// (Standard Webhooks), posts it, and records what came of it, retrying on the Standard Webhooks schedule with
// jitter. At least once: a receiver deduplicates on webhook-id. Every engine process that serves may run one; the
// leases share the work and survive a crash (another engine takes a delivery whose lease ran out).
//
// Threading: construct, start() and stop() from the owner thread. Each of the dispatcher's threads owns its own
// outbox (a database connection) and sender. deliver_due() is also callable alone, on the caller's thread with
// the caller's parts (tests under a manual clock). All time comes from the clock.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/ports/clock.hpp"
#include "engine/ports/webhooks.hpp"

namespace dialer {

struct webhook_dispatcher_options {
  int threads = 4;                                   // requests in flight from this process at most
  std::size_t batch = 128;                           // leased per claim (one endpoint's), posted in order
  std::chrono::seconds lease{60};                    // a batch stops posting at half of it; at least 2 timeouts
  std::chrono::milliseconds timeout{15'000};         // a receiver that has not answered by then failed this try
  std::chrono::milliseconds idle_poll{500};          // a thread that found nothing due looks again after this
  std::chrono::hours retention{24 * 7};              // delivered and spent events are forgotten after this
  std::function<void(const std::string&)> on_error;  // a lost outbox connection (any dispatcher thread)
  // Dialing first: while `busy` says the engine of this process is at capacity, one thread delivers, and only
  // `busy_share` of the time (it waits after each batch for the rest); the others wait. Deliveries lag behind a
  // burst and catch up after it, rather than slow the calls down. Thread-safe; none: never busy.
  std::function<bool()> busy;
  double busy_share = 0.1;
};

// The Standard Webhooks schedule: after `failed` tries, the next comes this long after the last (before jitter);
// nullopt once the schedule is spent (10 tries: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h).
[[nodiscard]] std::optional<std::chrono::seconds> webhook_retry_delay(int failed);

// What a try came to. `jitter` in [0, 1) spreads a retry over +-10 % of its delay; a Retry-After from a 429, 502,
// 503 or 504 is honoured (at least 1 s, at most a day) when it asks for longer.
[[nodiscard]] webhook_outcome decide_webhook_outcome(const webhook_delivery& d, const webhook_response& r,
                                                     std::chrono::system_clock::time_point attempted,
                                                     std::chrono::milliseconds took, double jitter);

// The request for one try at `now`: the body as stored, to be signed by the sender with every secret.
[[nodiscard]] webhook_request webhook_request_for(const webhook_delivery& d, std::chrono::system_clock::time_point now,
                                                  std::chrono::milliseconds timeout);

class webhook_dispatcher {
 public:
  // Called on dispatcher thread `index` (0..threads-1): its own outbox, whose lease holder names the thread.
  using outbox_factory = std::function<result<std::unique_ptr<webhook_outbox>>(int index)>;
  using sender_factory = std::function<std::unique_ptr<webhook_sender>()>;

  webhook_dispatcher(outbox_factory outboxes, sender_factory senders, const clock& clk,
                     webhook_dispatcher_options options);
  ~webhook_dispatcher();
  webhook_dispatcher(const webhook_dispatcher&) = delete;
  webhook_dispatcher& operator=(const webhook_dispatcher&) = delete;

  void start();
  void stop();  // finishes the tries in progress (a try ends within the timeout) and joins

  // One pass: claims a batch (one endpoint's, up to options.batch), posts it in order, records it in one go.
// A throttled or failed try defers the rest of its batch (to its own next try; no try counted for them); a 410
// releases the rest; a batch that has taken half its lease releases the rest. Returns how many were posted.
  static result<std::size_t> deliver_due(webhook_outbox& outbox, webhook_sender& sender, const clock& clk,
                                         const webhook_dispatcher_options& options, std::mt19937_64& rng);
  // Threads of one process that may work on one endpoint at once: all but one, so that a slow endpoint always
  // leaves a thread for the others.
  [[nodiscard]] static int per_endpoint(const webhook_dispatcher_options& options) noexcept {
    return std::max(1, options.threads - 1);
  }

 private:
  void run(int index);

  outbox_factory outboxes_;
  sender_factory senders_;
  const clock& clock_;
  webhook_dispatcher_options options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dialer
