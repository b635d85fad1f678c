#pragma once
// What the REST carriers' adapters (Twilio, Telnyx) share around their calls: the table of calls in flight keyed by
// attempt (each with its placement nonce), the report of an outcome to the engine's sink outside the lock, the
// outcomes of calls whose origination answer was lost (kept for a racing lookup), and the callback thread that takes
// this instance's callbacks from the inbox. Each adapter's `impl` derives from callback_core<its call state> and
// adds what its carrier's protocol needs.
//
// Threading: the fields under `m` are guarded by it; `report()` calls the sink without it. The callback thread runs
// `each_batch` and `each_pass` of start(); everything else from any thread. start() and stop() from the owner.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/carriers/rest/callback_bell.hpp"
#include "adapters/carriers/rest/credentials.hpp"
#include "adapters/carriers/rest/http_pool.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/carrier_callbacks.hpp"
#include "engine/ports/clock.hpp"

namespace dialer::carriers::rest {

// A random 16-hex-digit name for an adapter instance (it names the instance in callback URLs and client states).
[[nodiscard]] inline std::string new_instance_name() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

template <class CallState>  // CallState has `std::string placement`
struct callback_core {
  callback_core(std::string carrier_name, dialer::clock& c, std::chrono::milliseconds poll)
      : carrier(std::move(carrier_name)), clk(c), instance(new_instance_name()), inbox_poll(poll) {}

  const std::string carrier;  // "twilio": the inbox's carrier column and the log's prefix
  dialer::clock& clk;
  const std::string instance;
  const std::chrono::milliseconds inbox_poll;
  std::function<result<std::unique_ptr<carrier_callback_inbox>>()> open_inbox;
  std::optional<error> broken;  // start() failed: every origination is refused with it
  std::unique_ptr<http_pool> pool;
  std::unique_ptr<carrier_callback_inbox> inbox;         // the callback thread's
  std::unique_ptr<carrier_callback_inbox> lookup_inbox;  // lookup()'s, under lookup_mutex
  std::mutex lookup_mutex;
  std::atomic<carrier_events*> sink{nullptr};

  std::mutex m;
  std::condition_variable wake;     // the callback thread: a callback arrived, or stop
  std::condition_variable settled;  // drain: a call ended and was reported
  std::unordered_map<std::int64_t, CallState> calls;
  int reporting = 0;  // calls taken out of `calls` whose report to the sink is under way
  // Outcomes of calls whose origination answer was lost, kept a while: a lookup racing with the callback still
  // finds the call (never "no such call" for a call that ran).
  std::unordered_map<std::int64_t, call_event> finished_uncertain;
  std::deque<std::int64_t> finished_order;
  bool rung = false;
  bool stopping = false;
  bool draining = false;
  std::thread callback_thread;
  std::minstd_rand placements{std::random_device{}()};  // under m

  carrier_events& events() { return *sink.load(std::memory_order_acquire); }

  // A report to the sink for a call taken out of `calls` (counted in `reporting`): drain() returns only after it.
  template <class F>
  void report(F&& f) {
    f();
    {
      std::lock_guard g(m);
      --reporting;
    }
    settled.notify_all();
  }

  // Takes the placement out of `calls` for a report (counted in `reporting`); false when it is not there.
  bool forget(attempt_id attempt, const std::string& placement) {
    std::lock_guard g(m);
    auto it = calls.find(attempt.value());
    if (it == calls.end() || it->second.placement != placement) return false;
    calls.erase(it);
    ++reporting;
    return true;
  }

  // Under m.
  void remember(const call_event& ev) {
    finished_uncertain[ev.attempt.value()] = ev;
    finished_order.push_back(ev.attempt.value());
    while (finished_order.size() > 10'000) {
      finished_uncertain.erase(finished_order.front());
      finished_order.pop_front();
    }
  }

  void ring() {
    {
      std::lock_guard g(m);
      rung = true;
    }
    wake.notify_all();
  }

  // Opens the pool and the inboxes, subscribes `ring_me` to the process's callback bell, and starts the callback
  // thread: on each wake (a callback stored here, or every inbox_poll) it takes up to 512 callbacks of this
  // instance, hands them to `each_batch`, then runs `each_pass`; it purges old callbacks every 10 minutes.
  result<void> start(const pool_options& po, std::function<void()> ring_me,
                     std::function<void(std::vector<carrier_callback>&)> each_batch, std::function<void()> each_pass) {
    auto made = http_pool::make(po);
    if (!made) return std::move(made).error();
    auto taking = open_inbox();
    if (!taking) return std::move(taking).error();
    auto looking = open_inbox();
    if (!looking) return std::move(looking).error();
    pool = std::move(*made);
    inbox = std::move(*taking);
    lookup_inbox = std::move(*looking);
    callback_bell::process().subscribe(instance, std::move(ring_me));
    callback_thread = std::thread([this, batch = std::move(each_batch), pass = std::move(each_pass)] {
      auto last_purge = clk.monotonic();
      while (true) {
        {
          std::unique_lock lock(m);
          (void)clk.wait_for(wake, lock, inbox_poll, [&] { return rung || stopping; });
          if (stopping) return;
          rung = false;
        }
        auto taken = inbox->take(carrier, instance, 512);
        if (!taken) {
          spdlog::warn("{}: reading the callback inbox: {}", carrier, taken.error().message);
        } else {
          batch(*taken);
          if (taken->size() == 512) {
            std::lock_guard g(m);
            rung = true;  // more waiting
          }
        }
        pass();
        if (clk.monotonic() - last_purge > std::chrono::minutes(10)) {
          last_purge = clk.monotonic();
          (void)inbox->purge(std::chrono::hours(48), std::chrono::hours(24 * 7));
        }
      }
    });
    return ok();
  }

  // The first set_events(): starts (once); a failure is kept in `broken` and logged.
  void start_once(carrier_events* s, const std::function<result<void>()>& starter) noexcept {
    sink.store(s, std::memory_order_release);
    if (pool || broken) return;
    try {
      if (auto started = starter(); !started) broken = started.error();
    } catch (const std::exception& e) {
      broken = error{errc::unavailable, fmt::format("{} carrier: {}", carrier, e.what()), {}};
    }
    if (broken) spdlog::error("{} carrier cannot start: {}", carrier, broken->message);
  }

  // originate(): each request placed by `place`, or refused when the adapter could not start; an exception from
  // `place` refuses that request (not_placed) and forgets it.
  template <class Refuse, class Place>
  void originate_each(std::span<const origination_request> requests, Refuse&& refuse, Place&& place) noexcept {
    if (broken || !pool) {
      const auto why = broken ? broken->message : std::string("set_events() was not called");
      for (const auto& r : requests) refuse(r.attempt, origination_refusal::not_placed, std::chrono::milliseconds(30'000), why);
      return;
    }
    for (const auto& r : requests) {
      try {
        place(r);
      } catch (const std::exception& e) {
        {
          std::lock_guard g(m);
          calls.erase(r.attempt.value());
        }
        settled.notify_all();
        refuse(r.attempt, origination_refusal::not_placed, std::nullopt, e.what());
      }
    }
  }

  // Stops accepting work and waits until every call in flight has been reported, or the deadline.
  void drain(std::chrono::milliseconds deadline) noexcept {
    std::unique_lock lock(m);
    draining = true;
    (void)clk.wait_for(settled, lock, deadline, [&] { return calls.empty() && reporting == 0; });
  }

  // The owner's destructor: the callback thread joined, then the pool stopped.
  void stop() noexcept {
    if (!pool) return;  // never started
    callback_bell::process().unsubscribe(instance);
    {
      std::lock_guard g(m);
      stopping = true;
    }
    wake.notify_all();
    if (callback_thread.joinable()) callback_thread.join();
    pool->stop();
  }
};

}  // namespace dialer::carriers::rest
