#pragma once
// A carrier for runner tests that keeps its own log of every origination it was asked to place, with the
// clock time it was placed and ended: the carrier-side record that proves "never dialed twice", the
// per-number caps and the CPS limits from outside the engine. What each call does is the test's choice (a
// plan per request); a call can also outlive the runner that placed it, as a real call outlives a crashed
// engine.
//
// Threading: originate() and cancel() from any thread queue work; one worker thread (a clock participant)
// places calls, reports events and ends calls at their time. The log is read by the test thread through
// log().

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"

namespace dialer::testing {

struct call_plan {
  std::chrono::nanoseconds duration{std::chrono::seconds(3)};
  call_outcome outcome = call_outcome::completed;
  std::optional<origination_refusal> refuse;  // refuse instead of placing
  // Place the call but tell the engine only that the answer was lost (indeterminate); its outcome follows.
  bool lose_answer = false;
  // Place the call and accept it, but never report its outcome (a lost status callback): only lookup() tells.
  bool lose_outcome = false;
};

struct placed_call {
  attempt_id attempt;
  contact_id contact;
  number_id number;
  std::string from, to;
  std::chrono::nanoseconds placed_at{0};
  std::chrono::system_clock::time_point placed_wall{};
  std::optional<std::chrono::nanoseconds> ended_at;  // nullopt: still talking
  call_outcome outcome = call_outcome::completed;
};

class carrier_endpoint;

class recording_carrier final : public carrier {
 public:
  using planner = std::function<call_plan(const origination_request&)>;

  recording_carrier(const clock& clk, planner plan, double account_cps = unlimited_cps)
      : clock_(clk), plan_(std::move(plan)), account_cps_(account_cps) {
    clock_.expect_participant();
    worker_ = std::thread([this] {
      const clock::participant in_time(clock_, clock::participant::how::announced);
      run();
    });
  }
  ~recording_carrier() override {
    {
      std::lock_guard g(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  std::string_view name() const noexcept override { return "recording"; }
  double account_cps() const noexcept override { return account_cps_; }
  void set_events(carrier_events* sink) noexcept override {
    std::lock_guard g(mutex_);
    sink_ = sink;
  }
  // A request's placement is stamped when it reaches the carrier (here), as a carrier counts arrivals. Its
  // events go to the sink set with set_events().
  void originate(std::span<const origination_request> requests) noexcept override {
    originate_to(nullptr, requests);
  }
  // The same, for one engine's own endpoint (below): that call's events go to `to`'s sink, not to this one's.
  void originate_to(const carrier_endpoint* to, std::span<const origination_request> requests) noexcept {
    // A slow hand-over (the sending thread lost the CPU, a slow socket): the requests reach the carrier later
    // than the engine let them go.
    std::chrono::nanoseconds delay{0};
    {
      std::lock_guard g(mutex_);
      if (slow_intakes_ > 0) {
        --slow_intakes_;
        delay = intake_delay_;
      }
    }
    if (delay > std::chrono::nanoseconds{0}) clock_.sleep_for(delay);
    const auto arrived = clock_.monotonic();
    const auto arrived_wall = clock_.wall();
    {
      std::lock_guard g(mutex_);
      for (const auto& r : requests) incoming_.push_back({r, arrived, arrived_wall, to});
    }
    cv_.notify_all();
  }
  void cancel(attempt_id attempt) noexcept override {
    {
      std::lock_guard g(mutex_);
      cancels_.push_back(attempt);
    }
    cv_.notify_all();
  }
  result<std::optional<call_event>> lookup(attempt_id attempt, std::string_view) override {
    std::lock_guard g(mutex_);
    for (const auto& c : log_) {
      if (c.attempt != attempt) continue;
      if (!c.ended_at) return make_error(errc::unavailable, "call {} is still in progress", attempt.value());
      return std::optional<call_event>(event_of(c));
    }
    return std::optional<call_event>{};
  }
  void drain(std::chrono::milliseconds deadline) noexcept override {
    std::unique_lock lock(mutex_);
    (void)clock_.wait_for(cv_, lock, deadline, [&] { return incoming_.empty() && live_.empty(); });
  }

  // The next `times` calls of originate() take `delay` (clock time) before their requests arrive.
  void slow_intake(std::chrono::nanoseconds delay, int times) {
    std::lock_guard g(mutex_);
    intake_delay_ = delay;
    slow_intakes_ = times;
  }
  // Detaches the event sink: calls go on (and end) but nobody hears of them, as after an engine crash.
  void detach() {
    std::lock_guard g(mutex_);
    sink_ = nullptr;
  }
  // A call an earlier engine placed (it died since): in the log and still talking until `ends` (clock time).
  void adopt(attempt_id attempt, contact_id contact, number_id number, std::string from, std::string to,
             std::chrono::nanoseconds ends) {
    {
      std::lock_guard g(mutex_);
      placed_call c;
      c.attempt = attempt;
      c.contact = contact;
      c.number = number;
      c.from = std::move(from);
      c.to = std::move(to);
      c.placed_at = clock_.monotonic();
      c.placed_wall = clock_.wall();
      log_.push_back(c);
      live_.emplace(attempt.value(), live{log_.size() - 1, ends});
      adopted_ = true;  // the worker may be waiting with no deadline: it must look at the new end time
    }
    cv_.notify_all();
  }
  // Every call placed (by any engine) that this carrier is still running: for lookup() and the log.
  std::vector<placed_call> log() const {
    std::lock_guard g(mutex_);
    return log_;
  }

 private:
  struct live {
    std::size_t log_index;
    std::chrono::nanoseconds ends;
    const carrier_endpoint* via = nullptr;  // whose sink hears of it (nullptr: this carrier's own)
    bool silent = false;                    // its outcome is never reported (lookup() still tells)
  };
  carrier_events* sink_of(const carrier_endpoint* via) const;  // guarded by mutex_

  call_event event_of(const placed_call& c) const {
    call_event e;
    e.attempt = c.attempt;
    e.carrier_call_id = "rec-" + std::to_string(c.attempt.value());
    e.outcome = c.outcome;
    e.started_at = c.placed_wall;
    if (c.outcome == call_outcome::completed) e.answered_at = c.placed_wall;
    const auto length = c.ended_at ? *c.ended_at - c.placed_at : std::chrono::nanoseconds(0);
    e.ended_at = c.placed_wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(length);
    e.billable = std::chrono::duration_cast<std::chrono::milliseconds>(length);
    return e;
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      const auto now = clock_.monotonic();
      auto incoming = std::move(incoming_);
      incoming_.clear();
      auto cancels = std::move(cancels_);
      cancels_.clear();
      adopted_ = false;
      std::vector<std::pair<carrier_events*, std::function<void(carrier_events&)>>> events;
      for (auto& in : incoming) {
        const auto& r = in.request;
        const auto plan = plan_(r);
        if (plan.refuse) {
          const auto why = *plan.refuse;
          const auto attempt = r.attempt;
          events.emplace_back(sink_of(in.via), [=](carrier_events& s) {
            s.on_refused(attempt, why, std::nullopt, "refused by the test");
          });
          continue;
        }
        placed_call c;
        c.attempt = r.attempt;
        c.contact = r.contact;
        c.number = r.caller_number;
        c.from = r.from_e164;
        c.to = r.to_e164;
        c.placed_at = in.at;
        c.placed_wall = in.wall;
        c.outcome = plan.outcome;
        log_.push_back(c);
        live_.emplace(r.attempt.value(),
                      live{log_.size() - 1, in.at + plan.duration, in.via, plan.lose_outcome});
        const auto attempt = r.attempt;
        if (plan.lose_answer)
          events.emplace_back(sink_of(in.via), [=](carrier_events& s) {
            s.on_refused(attempt, origination_refusal::indeterminate, std::nullopt, "answer lost (test)");
          });
        else
          events.emplace_back(sink_of(in.via), [=](carrier_events& s) {
            s.on_accepted(attempt, "rec-" + std::to_string(attempt.value()));
          });
      }
      for (auto a : cancels)
        if (auto it = live_.find(a.value()); it != live_.end()) {
          it->second.ends = now;
          log_[it->second.log_index].outcome = call_outcome::canceled;
        }
      std::chrono::nanoseconds next = clock::never;
      for (auto it = live_.begin(); it != live_.end();) {
        if (it->second.ends <= now) {
          auto& c = log_[it->second.log_index];
          c.ended_at = now;
          const auto e = event_of(c);
          if (!it->second.silent)
            events.emplace_back(sink_of(it->second.via), [e](carrier_events& s) { s.on_outcome(e); });
          it = live_.erase(it);
        } else {
          next = std::min(next, it->second.ends);
          ++it;
        }
      }
      if (!events.empty()) {
        lock.unlock();
        for (auto& [sink, e] : events)
          if (sink) e(*sink);
        lock.lock();
        cv_.notify_all();  // drain() waiters
        continue;
      }
      (void)clock_.wait_until(cv_, lock, next,
                              [&] { return stop_ || adopted_ || !incoming_.empty() || !cancels_.empty(); });
    }
  }

  const clock& clock_;
  planner plan_;
  double account_cps_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  int slow_intakes_ = 0;  // guarded by mutex_, with intake_delay_
  std::chrono::nanoseconds intake_delay_{0};
  bool adopted_ = false;  // a call was adopted since the worker last looked at the live calls
  carrier_events* sink_ = nullptr;
  struct arrival {
    origination_request request;
    std::chrono::nanoseconds at{0};
    std::chrono::system_clock::time_point wall{};
    const carrier_endpoint* via = nullptr;
  };
  std::vector<arrival> incoming_;
  std::vector<attempt_id> cancels_;
  std::map<std::int64_t, live> live_;  // attempt -> its call
  std::vector<placed_call> log_;
  std::thread worker_;
};

// One engine's own adapter onto a shared recording carrier: two engines are two processes, each with its own
// connection to one carrier account. Its calls' events go to its own runner; the log is the shared carrier's.
// set_events() before the runner starts and after it has stopped (the test thread); the rest, any thread.
class carrier_endpoint final : public carrier {
 public:
  explicit carrier_endpoint(recording_carrier& shared) : shared_(shared) {}
  std::string_view name() const noexcept override { return shared_.name(); }
  double account_cps() const noexcept override { return shared_.account_cps(); }
  void set_events(carrier_events* sink) noexcept override { sink_.store(sink, std::memory_order_release); }
  void originate(std::span<const origination_request> requests) noexcept override {
    shared_.originate_to(this, requests);
  }
  void cancel(attempt_id attempt) noexcept override { shared_.cancel(attempt); }
  result<std::optional<call_event>> lookup(attempt_id attempt, std::string_view id) override {
    return shared_.lookup(attempt, id);
  }
  void drain(std::chrono::milliseconds deadline) noexcept override { shared_.drain(deadline); }
  [[nodiscard]] carrier_events* sink() const noexcept { return sink_.load(std::memory_order_acquire); }

 private:
  recording_carrier& shared_;
  std::atomic<carrier_events*> sink_{nullptr};
};

inline carrier_events* recording_carrier::sink_of(const carrier_endpoint* via) const {
  return via ? via->sink() : sink_;
}

// Checks on a carrier log, independent of the engine: each returns a description of the first violation, or
// an empty string.
inline std::string dialed_twice(const std::vector<placed_call>& log) {
  std::map<std::int64_t, int> seen;
  for (const auto& c : log)
    if (++seen[c.attempt.value()] > 1)
      return "attempt " + std::to_string(c.attempt.value()) + " was placed twice";
  // A contact never has two calls at once.
  std::map<std::int64_t, std::vector<const placed_call*>> by_contact;
  for (const auto& c : log) by_contact[c.contact.value()].push_back(&c);
  for (const auto& [contact, calls] : by_contact)
    for (std::size_t i = 0; i < calls.size(); ++i)
      for (std::size_t j = i + 1; j < calls.size(); ++j) {
        const auto a_end = calls[i]->ended_at.value_or(clock::never);
        const auto b_end = calls[j]->ended_at.value_or(clock::never);
        if (calls[i]->placed_at < b_end && calls[j]->placed_at < a_end)
          return "contact " + std::to_string(contact) + " had two calls at once";
      }
  return {};
}

// The most calls in progress at once from one caller ID (a call occupies [placed_at, ended_at)).
inline std::map<std::string, int> peak_concurrency(const std::vector<placed_call>& log) {
  std::map<std::string, std::vector<std::pair<std::int64_t, int>>> edges;
  for (const auto& c : log) {
    edges[c.from].emplace_back(c.placed_at.count(), +1);
    edges[c.from].emplace_back(c.ended_at.value_or(clock::never).count(), -1);
  }
  std::map<std::string, int> peak;
  for (auto& [from, e] : edges) {
    std::sort(e.begin(), e.end());  // an end at t sorts before a start at t: the slot was free again
    int now = 0;
    for (const auto& [t, d] : e) peak[from] = std::max(peak[from], now += d);
  }
  return peak;
}

// The most calls in progress at once over the whole log (all caller IDs together: a campaign's calls).
inline int peak_concurrency_of_all(std::vector<placed_call> log) {
  for (auto& c : log) c.from.clear();
  return peak_concurrency(log)[""];
}

// The most originations from one caller ID (or, with from empty, from all of them) inside any window of
// `window` length, as the carrier would count them.
inline int max_in_window(const std::vector<placed_call>& log, const std::string& from,
                         std::chrono::nanoseconds window = std::chrono::seconds(1)) {
  std::vector<std::int64_t> t;
  for (const auto& c : log)
    if (from.empty() || c.from == from) t.push_back(c.placed_at.count());
  std::sort(t.begin(), t.end());
  int best = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < t.size(); ++hi) {
    while (t[hi] - t[lo] >= window.count()) ++lo;
    best = std::max(best, static_cast<int>(hi - lo + 1));
  }
  return best;
}

}  // namespace dialer::testing
