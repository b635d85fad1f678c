#include "engine/webhook_dispatcher.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>

namespace dialer {

namespace {
using namespace std::chrono_literals;
using sys_time = std::chrono::system_clock::time_point;

constexpr std::array<std::chrono::seconds, 9> kSchedule{5s, 5min, 30min, 2h, 5h, 10h, 14h, 20h, 24h};

std::int64_t unix_seconds(sys_time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
}  // namespace

std::optional<std::chrono::seconds> webhook_retry_delay(int failed) {
  if (failed < 1 || failed > static_cast<int>(kSchedule.size())) return std::nullopt;
  return kSchedule[static_cast<std::size_t>(failed - 1)];
}

webhook_outcome decide_webhook_outcome(const webhook_delivery& d, const webhook_response& r, sys_time attempted,
                                       std::chrono::milliseconds took, double jitter) {
  webhook_outcome o;
  o.status = r.status;
  o.attempted_at = attempted;
  o.took = took;
  if (r.status >= 200 && r.status < 300) {
    o.what = webhook_outcome::kind::delivered;
    return o;
  }
  o.error = r.status == 0 ? r.error : fmt::format("HTTP {}", r.status);
  if (r.status == 410) {
    o.what = webhook_outcome::kind::gone;
    o.error = "HTTP 410: the receiver asked to stop; the endpoint is disabled";
    return o;
  }
  const auto delay = webhook_retry_delay(d.attempts + 1);
  if (!delay) {
    o.what = webhook_outcome::kind::exhausted;
    return o;
  }
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*delay * (0.9 + 0.2 * std::clamp(jitter, 0.0, 1.0)));
  const bool throttled = r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504;
  if (throttled && r.retry_after)
    wait = std::max<std::chrono::milliseconds>(wait, std::clamp<std::chrono::seconds>(*r.retry_after, 1s, 24h));
  o.what = webhook_outcome::kind::retry;
  o.next_attempt_at = attempted + wait;
  return o;
}

webhook_request webhook_request_for(const webhook_delivery& d, sys_time now, std::chrono::milliseconds timeout) {
  webhook_request req;
  req.url = d.url;
  req.message_id = d.message_id;
  req.timestamp = unix_seconds(now);
  req.secrets = d.secrets;
  req.body = d.body;
  req.timeout = timeout;
  return req;
}

webhook_dispatcher::webhook_dispatcher(outbox_factory outboxes, sender_factory senders, const clock& clk,
                                       webhook_dispatcher_options options)
    : outboxes_(std::move(outboxes)), senders_(std::move(senders)), clock_(clk), options_(options) {}

webhook_dispatcher::~webhook_dispatcher() { stop(); }

result<std::size_t> webhook_dispatcher::deliver_due(webhook_outbox& outbox, webhook_sender& sender, const clock& clk,
                                                    const webhook_dispatcher_options& options, std::mt19937_64& rng) {
  auto claimed = outbox.claim(clk.wall(), options.lease, options.batch, per_endpoint(options));
  if (!claimed) return claimed.error();
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  const auto began = clk.monotonic();
  std::vector<webhook_try> tries;
  tries.reserve(claimed->size());
  std::size_t posted = 0;
  std::optional<webhook_outcome> stop;  // what the rest of the batch comes to, once a try stopped it
  for (auto& d : *claimed) {
    if (!stop && clk.monotonic() - began > options.lease / 2) {
      stop = webhook_outcome{};
      stop->what = webhook_outcome::kind::untried;
    }
    if (stop) {
      tries.push_back({std::move(d), *stop});
      continue;
    }
    const auto started = clk.monotonic();
    const auto attempted = clk.wall();
    const auto response = sender.post(webhook_request_for(d, attempted, options.timeout));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clk.monotonic() - started);
    auto o = decide_webhook_outcome(d, response, attempted, took, jitter(rng));
    ++posted;
    using kind = webhook_outcome::kind;
    if (o.what == kind::gone) {
      stop = webhook_outcome{};
      stop->what = kind::untried;
    } else if (o.what != kind::delivered && (response.status == 0 || response.status == 429 || response.status >= 500)) {
      // The receiver is down or throttling: the rest of the batch waits as long as this one, untried.
      stop = webhook_outcome{};
      stop->what = kind::deferred;
      stop->next_attempt_at = o.what == kind::retry ? o.next_attempt_at : attempted + std::chrono::seconds(5);
    }
    tries.push_back({std::move(d), std::move(o)});
  }
  if (!tries.empty())
    if (auto r = outbox.record(tries); !r) return r.error();
  return posted;
}

void webhook_dispatcher::start() {
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    clock_.expect_participant();
    threads_.emplace_back([this, i] { run(i); });
  }
}

void webhook_dispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void webhook_dispatcher::run(int index) {
  clock::participant in_time(clock_, clock::participant::how::announced);
  std::mt19937_64 rng(std::random_device{}() ^ static_cast<std::uint64_t>(index));
  std::unique_ptr<webhook_outbox> outbox;
  auto sender = senders_();
  auto next_expiry = clock_.monotonic();
  auto backoff = std::chrono::milliseconds(500);
  const auto idle = [&](std::chrono::nanoseconds d) {
    std::unique_lock lock(mutex_);
    (void)clock_.wait_for(wake_, lock, d, [this] { return stopping_; });
  };
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    if (!outbox) {
      auto made = outboxes_(index);
      if (!made) {
        if (options_.on_error) options_.on_error("cannot reach the outbox: " + made.error().message);
        idle(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
        continue;
      }
      outbox = std::move(*made);
      backoff = std::chrono::milliseconds(500);
    }
    if (index == 0 && clock_.monotonic() >= next_expiry) {
      if (auto gone = outbox->expire(clock_.wall() - options_.retention); !gone) {
        outbox.reset();
        continue;
      }
      next_expiry = clock_.monotonic() + std::chrono::minutes(10);
    }
    const bool yielding = options_.busy && options_.busy();
    if (yielding && index != 0) {
      idle(options_.idle_poll);
      continue;
    }
    const auto began = clock_.monotonic();
    auto tried = deliver_due(*outbox, *sender, clock_, options_, rng);
    if (!tried) {
      if (options_.on_error) options_.on_error(tried.error().message);
      outbox.reset();  // reconnects on the next round
      idle(backoff);
      continue;
    }
    if (*tried == 0) {
      idle(options_.idle_poll);
    } else if (yielding) {
      // The rest of the time: never less than 10 ms (a batch that took no time must not make this a spin), never
      // more than 2 s (busy is looked at again then: a slow receiver's long batch must not hold deliveries back
      // for minutes after the engine has room again).
      const double share = std::clamp(options_.busy_share, 0.01, 1.0);
      const auto rest =
          std::chrono::duration_cast<std::chrono::nanoseconds>((clock_.monotonic() - began) * ((1 - share) / share));
      idle(std::clamp<std::chrono::nanoseconds>(rest, std::chrono::milliseconds(10), std::chrono::seconds(2)));
    }
  }
}

}  // namespace dialer
