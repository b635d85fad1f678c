#include "adapters/carriers/simulated/simulated_carrier.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include <spdlog/spdlog.h>

namespace dialer::carriers {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr std::string_view draining_detail = "simulated carrier is draining and accepts no new calls";

simulated_carrier_settings checked(simulated_carrier_settings settings) {
  if (auto valid = validate(settings); !valid) throw dialer_exception(std::move(valid).error());
  return settings;
}

bool is_e164(std::string_view text) noexcept {
  if (text.size() < 7 || text.size() > 16 || text[0] != '+' || text[1] == '0') return false;
  return std::all_of(text.begin() + 1, text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint64_t key_hash_of(const origination_request& request) {
  if (!request.idempotency_key.empty()) return hash_idempotency_key(request.idempotency_key);
  std::array<char, 40> buffer{};
  auto end = fmt::format_to_n(buffer.data(), buffer.size(), "attempt-{}", request.attempt.value()).out;
  return hash_idempotency_key(std::string_view(buffer.data(), static_cast<std::size_t>(end - buffer.data())));
}

// The event of a call nobody canceled. Details stay within the small-string buffer: no allocation.
call_event natural_event(const call_plan& plan, attempt_id attempt, std::string call_id, timestamp started) {
  call_event e;
  e.attempt = attempt;
  e.carrier_call_id = std::move(call_id);
  e.outcome = plan.outcome;
  e.started_at = started;
  if (plan.answered()) {
    e.answered_at = started + plan.ring;
    e.billable = plan.talk;
  }
  e.ended_at = started + plan.total();
  e.detail = to_string(plan.outcome);
  return e;
}

}  // namespace

simulated_carrier::simulated_carrier(simulated_carrier_settings settings, dialer::clock& clock)
    : settings_(checked(std::move(settings))), clock_(clock) {
  if (settings_.dedup_window > 0) {
    recent_.resize(std::bit_ceil(std::max<std::size_t>(settings_.dedup_window, 4)));  // sets of 4 ways
  }
  tokens_ = std::max(1.0, settings_.throttle_cps);
  tokens_at_ = clock_.monotonic();
  if (!settings_.call_log.empty()) {
    call_log_fd_ = ::open(settings_.call_log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (call_log_fd_ < 0)
      throw dialer_exception(make_error(errc::invalid_input, "simulated carrier: cannot open call_log {}: {}",
                                        settings_.call_log, std::strerror(errno)));
  }
  if (!settings_.instant) {
    clock_.expect_participant();
    worker_ = std::thread([this] {
      // A manual clock waits for this thread too.
      const dialer::clock::participant in_time(clock_, dialer::clock::participant::how::announced);
      run();
    });
  }
}

simulated_carrier::~simulated_carrier() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (call_log_fd_ >= 0) ::close(call_log_fd_);
}

void simulated_carrier::log_line(const std::string& line) noexcept {
  // One write(2) per line on an O_APPEND descriptor: lines of several processes never interleave mid-line,
  // and what was written survives a kill -9.
  const std::string text = line + "\n";
  if (::write(call_log_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    spdlog::warn("simulated carrier: call_log write failed: {}", std::strerror(errno));
}

double simulated_carrier::account_cps() const noexcept {
  if (settings_.account_cps > 0) return settings_.account_cps;
  if (settings_.throttle_cps > 0) return settings_.throttle_cps;
  return unlimited_cps;
}

void simulated_carrier::set_events(carrier_events* sink) noexcept {
  std::lock_guard lock(mutex_);
  sink_ = sink;
}

simulated_carrier::verdict simulated_carrier::precheck(const origination_request& request,
                                                       std::string& detail) const {
  if (!is_e164(request.to_e164)) {
    detail = fmt::format("destination '{}' is not an E.164 number", request.to_e164);
    return verdict::refuse_invalid;
  }
  for (const auto& prefix : settings_.invalid_destination_prefixes) {
    if (request.to_e164.starts_with(prefix)) {
      detail = fmt::format("destination {} cannot be dialed (prefix {} is blocked)", request.to_e164, prefix);
      return verdict::refuse_invalid;
    }
  }
  for (const auto& caller_id : settings_.unverified_caller_ids) {
    if (request.from_e164 == caller_id) {
      detail = fmt::format("caller ID {} is not verified", request.from_e164);
      return verdict::refuse_unusable;
    }
  }
  return verdict::place;
}

const simulated_carrier::recent_entry* simulated_carrier::find_recent_locked(
    std::uint64_t key_hash) const noexcept {
  if (recent_.empty()) return nullptr;
  const std::size_t base = static_cast<std::size_t>(key_hash) & (recent_.size() - 1) & ~std::size_t{3};
  for (std::size_t i = base; i < base + 4; ++i) {
    if (recent_[i].stamp != 0 && recent_[i].key_hash == key_hash) return &recent_[i];
  }
  return nullptr;
}

void simulated_carrier::remember_locked(std::uint64_t key_hash, attempt_id attempt) noexcept {
  if (recent_.empty()) return;
  const std::size_t base = static_cast<std::size_t>(key_hash) & (recent_.size() - 1) & ~std::size_t{3};
  recent_entry* victim = &recent_[base];
  for (std::size_t i = base; i < base + 4; ++i) {
    if (recent_[i].stamp < victim->stamp) victim = &recent_[i];  // the oldest (or an empty) way
  }
  *victim = recent_entry{key_hash, ++recent_stamp_, attempt};
}

simulated_carrier::verdict simulated_carrier::admit_locked(const intake& in, nanoseconds now,
                                                           std::optional<milliseconds>& retry_after,
                                                           std::string& detail) {
  if (in.precheck == verdict::refuse_draining) {  // decided when originate() was called, not now
    detail = in.detail;
    return verdict::refuse_draining;
  }
  // Duplicates first: a second copy of a placed attempt must never turn into a refusal of that attempt.
  std::optional<attempt_id> holder;
  if (auto it = calls_.find(in.key_hash); it != calls_.end()) {
    holder = it->second.attempt;
  } else if (const auto* seen = find_recent_locked(in.key_hash)) {
    holder = seen->attempt;
  }
  if (holder) {
    if (*holder == in.attempt) return verdict::ignore_duplicate;
    detail = fmt::format("duplicate idempotency key: already placed for attempt {}", holder->value());
    return verdict::refuse_duplicate;
  }
  if (settings_.throttle_cps > 0) {
    const double capacity = std::max(1.0, settings_.throttle_cps);
    tokens_ = std::min(
        capacity, tokens_ + static_cast<double>((now - tokens_at_).count()) * settings_.throttle_cps / 1e9);
    tokens_at_ = now;
    if (tokens_ < 1.0) {
      const double wait_ms = std::ceil((1.0 - tokens_) / settings_.throttle_cps * 1000.0);
      retry_after = milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(wait_ms)));
      detail = fmt::format("too many requests: account limit is {} originations per second",
                           settings_.throttle_cps);
      return verdict::refuse_throttled;
    }
    tokens_ -= 1.0;
  }
  if (in.precheck != verdict::place) {
    detail = in.detail;
    return in.precheck;
  }
  if (settings_.not_placed_rate > 0 || settings_.indeterminate_rate > 0) {
    // splitmix64 from the seed: the same campaign replays the same faults in the same order.
    std::uint64_t z = (fault_state_ += 0x9E3779B97F4A7C15ULL) ^ settings_.seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    const double u = static_cast<double>((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
    if (u < settings_.not_placed_rate) {
      detail = "service unavailable before the request was processed (simulated fault)";
      return verdict::refuse_not_placed;
    }
    if (u < settings_.not_placed_rate + settings_.indeterminate_rate) {
      detail = "the answer to the request was lost (simulated fault)";
      if ((in.key_hash >> 17) & 1) {
        remember_locked(in.key_hash, in.attempt);
        return verdict::place_indeterminate;
      }
      return verdict::refuse_indeterminate;
    }
  }
  remember_locked(in.key_hash, in.attempt);
  return verdict::place;
}

std::string simulated_carrier::make_call_id(std::uint64_t key_hash, timestamp started) const {
  const auto ms = std::chrono::duration_cast<milliseconds>(started.time_since_epoch()).count();
  return fmt::format("SIM-{:016x}-{}", key_hash, ms);
}

nanoseconds simulated_carrier::real_delay(milliseconds simulated) const noexcept {
  if (settings_.instant) return nanoseconds(0);
  return nanoseconds(
      std::llround(static_cast<double>(simulated.count()) * 1e6 / settings_.time_acceleration));
}

call_event simulated_carrier::outcome_event(const live_call& call) const {
  if (!call.canceled_at) return natural_event(call.plan, call.attempt, call.call_id, call.started_wall);
  const double real_ns = static_cast<double>((*call.canceled_at - call.started_mono).count());
  const auto elapsed = std::clamp(milliseconds(std::llround(real_ns * settings_.time_acceleration / 1e6)),
                                  milliseconds(0), call.plan.total());
  call_event e;
  e.attempt = call.attempt;
  e.carrier_call_id = call.call_id;
  e.started_at = call.started_wall;
  e.ended_at = call.started_wall + elapsed;
  if (call.plan.answered() && elapsed >= call.plan.ring) {
    e.outcome = call.plan.outcome;
    e.answered_at = call.started_wall + call.plan.ring;
    e.billable = elapsed - call.plan.ring;
    e.detail = "hung up by us";
  } else {
    e.outcome = call_outcome::canceled;
    e.detail = "canceled by us";
  }
  return e;
}

void simulated_carrier::deliver(pending_event& e) noexcept {
  if (sink_ == nullptr) return;
  switch (e.what) {
    case pending_event::kind::accepted:
      sink_->on_accepted(e.event.attempt, e.event.carrier_call_id);
      break;
    case pending_event::kind::refused:
      sink_->on_refused(e.event.attempt, e.why, e.retry_after, e.event.detail);
      break;
    case pending_event::kind::outcome:
      sink_->on_outcome(e.event);
      break;
  }
}

origination_refusal simulated_carrier::refusal_of(verdict v) noexcept {
  switch (v) {
    case verdict::refuse_throttled:
      return origination_refusal::throttled;
    case verdict::refuse_unusable:
      return origination_refusal::number_unusable;
    case verdict::refuse_invalid:
      return origination_refusal::invalid_destination;
    case verdict::refuse_indeterminate:
    case verdict::place_indeterminate:
      return origination_refusal::indeterminate;
    default:
      return origination_refusal::not_placed;  // duplicates and draining
  }
}

void simulated_carrier::originate(std::span<const origination_request> requests) noexcept {
  if (requests.empty()) return;
  if (settings_.instant) {
    originate_instant(requests);
    return;
  }
  try {
    {
      std::lock_guard lock(mutex_);
      for (const auto& request : requests) {
        intake& in = incoming_.emplace_back();
        in.attempt = request.attempt;
        in.key_hash = key_hash_of(request);
        in.contact = request.contact.value();
        in.received = clock_.monotonic();
        in.from = request.from_e164;
        in.to = request.to_e164;
        in.precheck = draining_ ? verdict::refuse_draining : precheck(request, in.detail);
        if (draining_) in.detail = draining_detail;
      }
      outstanding_ += requests.size();
      poked_ = true;
    }
    work_cv_.notify_one();
  } catch (const std::exception& e) {  // out of memory: nothing sensible is left to do but say so
    spdlog::error("simulated carrier: dropped {} originations: {}", requests.size(), e.what());
  }
}

void simulated_carrier::originate_instant(std::span<const origination_request> requests) noexcept {
  constexpr std::size_t chunk = 64;
  std::array<intake, chunk> ins;
  std::array<verdict, chunk> verdicts{};
  std::array<std::optional<milliseconds>, chunk> retry{};
  try {
    for (std::size_t offset = 0; offset < requests.size(); offset += chunk) {
      const std::size_t n = std::min(chunk, requests.size() - offset);
      for (std::size_t i = 0; i < n; ++i) {
        const auto& request = requests[offset + i];
        ins[i].attempt = request.attempt;
        ins[i].key_hash = key_hash_of(request);
        ins[i].detail.clear();
        ins[i].precheck = precheck(request, ins[i].detail);
        retry[i].reset();
      }
      timestamp started{};
      {
        std::lock_guard lock(mutex_);
        const auto now = clock_.monotonic();
        started = clock_.wall();
        outstanding_ += n;
        for (std::size_t i = 0; i < n; ++i) {
          if (draining_) {
            ins[i].precheck = verdict::refuse_draining;
            ins[i].detail = draining_detail;
          }
          verdicts[i] = admit_locked(ins[i], now, retry[i], ins[i].detail);
        }
      }
      for (std::size_t i = 0; i < n; ++i) {
        const intake& in = ins[i];
        switch (verdicts[i]) {
          case verdict::place: {
            accepted_.fetch_add(1, std::memory_order_relaxed);
            auto event = natural_event(plan_call(settings_, in.key_hash), in.attempt,
                                       make_call_id(in.key_hash, started), started);
            if (sink_ != nullptr) {
              sink_->on_accepted(in.attempt, event.carrier_call_id);
              sink_->on_outcome(event);
            }
            outcomes_.fetch_add(1, std::memory_order_relaxed);
            break;
          }
          case verdict::ignore_duplicate:
            duplicates_ignored_.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn(
                "simulated carrier: ignored a second origination of attempt {} (same idempotency key)",
                in.attempt.value());
            break;
          default: {
            refused_.fetch_add(1, std::memory_order_relaxed);
            if (sink_ != nullptr) sink_->on_refused(in.attempt, refusal_of(verdicts[i]), retry[i], in.detail);
            break;
          }
        }
      }
      std::lock_guard lock(mutex_);
      outstanding_ -= n;
      if (outstanding_ == 0 && draining_) drained_cv_.notify_all();
    }
  } catch (const std::exception& e) {
    spdlog::error("simulated carrier: instant origination failed: {}", e.what());
  }
}

void simulated_carrier::cancel(attempt_id attempt) noexcept {
  if (settings_.instant) return;  // every instant call has already ended
  try {
    {
      std::lock_guard lock(mutex_);
      cancels_.push_back(attempt);
      poked_ = true;
    }
    work_cv_.notify_one();
  } catch (const std::exception& e) {
    spdlog::error("simulated carrier: could not cancel attempt {}: {}", attempt.value(), e.what());
  }
}

void simulated_carrier::wake() noexcept {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  work_cv_.notify_one();
}

void simulated_carrier::drain(milliseconds deadline) noexcept {
  std::unique_lock lock(mutex_);
  draining_ = true;
  (void)clock_.wait_for(drained_cv_, lock, deadline, [this] { return outstanding_ == 0; });
}

simulated_carrier::stats simulated_carrier::statistics() const noexcept {
  return stats{accepted_.load(std::memory_order_relaxed), refused_.load(std::memory_order_relaxed),
               duplicates_ignored_.load(std::memory_order_relaxed),
               outcomes_.load(std::memory_order_relaxed)};
}

result<std::optional<call_event>> simulated_carrier::lookup(attempt_id attempt,
                                                            std::string_view carrier_call_id) {
  std::string found_id;
  if (carrier_call_id.empty()) {
    // A call placed under a lost answer is found by its attempt (as a REST carrier's list of calls by number
    // and time would find it); any other attempt without a call id has no call here.
    std::lock_guard lock(mutex_);
    auto it = uncertain_ids_.find(attempt.value());
    if (it == uncertain_ids_.end()) return std::optional<call_event>{};
    found_id = it->second;
    carrier_call_id = found_id;
  }
  // SIM-<16 hex digits of the key hash>-<start, wall-clock milliseconds>
  std::uint64_t key_hash = 0;
  std::int64_t start_ms = 0;
  const char* text = carrier_call_id.data();
  const char* end = text + carrier_call_id.size();
  bool well_formed =
      carrier_call_id.size() > 22 && carrier_call_id.starts_with("SIM-") && carrier_call_id[20] == '-';
  if (well_formed) {
    auto [hash_end, hash_ec] = std::from_chars(text + 4, text + 20, key_hash, 16);
    auto [ms_end, ms_ec] = std::from_chars(text + 21, end, start_ms);
    well_formed = hash_ec == std::errc{} && hash_end == text + 20 && ms_ec == std::errc{} && ms_end == end;
  }
  if (!well_formed) {
    return make_error(errc::invalid_input, "'{}' is not a simulated carrier call id (SIM-<hash>-<start ms>)",
                      carrier_call_id);
  }
  {
    std::lock_guard lock(mutex_);
    if (auto it = calls_.find(key_hash); it != calls_.end()) {
      return make_error(errc::unavailable,
                        "simulated call {} is still in progress; its outcome will be reported",
                        carrier_call_id);
    }
  }
  const auto plan = plan_call(settings_, key_hash);
  const timestamp started{std::chrono::duration_cast<timestamp::duration>(milliseconds(start_ms))};
  const auto ends = started + std::chrono::duration_cast<timestamp::duration>(real_delay(plan.total()));
  const auto now = clock_.wall();
  if (now < ends) {
    return make_error(errc::unavailable,
                      "simulated call {} is still in progress for about {} ms; look it up again later",
                      carrier_call_id, std::chrono::duration_cast<milliseconds>(ends - now).count() + 1);
  }
  auto event = natural_event(plan, attempt, std::string(carrier_call_id), started);
  return std::optional<call_event>(std::move(event));
}

void simulated_carrier::run() {
  std::vector<intake> batch;
  std::vector<attempt_id> cancel_batch;
  std::vector<pending_event> ready;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    poked_ = false;
    batch.swap(incoming_);
    cancel_batch.swap(cancels_);
    const auto now = clock_.monotonic();
    // Read with `now`, once per round: a call's reported start is the instant its timer counts from, however long
    // the calls before it in the batch take to place (a call's reported end was once late by that much).
    const auto wall_now = clock_.wall();
    std::uint64_t finished = 0;  // requests whose reporting ends in this round

    try {
      for (auto& in : batch) {
        pending_event e{};
        e.event.attempt = in.attempt;
        const verdict v = admit_locked(in, now, e.retry_after, e.event.detail);
        if (v == verdict::place || v == verdict::place_indeterminate) {
          live_call call;
          call.attempt = in.attempt;
          call.plan = plan_call(settings_, in.key_hash);
          call.started_mono = now;
          call.started_wall = wall_now;
          call.call_id = make_call_id(in.key_hash, call.started_wall);
          e.what = pending_event::kind::accepted;
          e.event.carrier_call_id = call.call_id;
          if (v == verdict::place_indeterminate) {  // the engine hears only that the answer was lost
            e.what = pending_event::kind::refused;
            e.why = origination_refusal::indeterminate;
            e.event.carrier_call_id.clear();
            uncertain_ids_[in.attempt.value()] = call.call_id;
          }
          timers_.push(timer{now + real_delay(call.plan.total()), in.key_hash, 0});
          key_of_attempt_[in.attempt.value()] = in.key_hash;
          if (call_log_fd_ >= 0)
            log_line(fmt::format(
                R"({{"event":"placed","pid":{},"attempt":{},"key":"{:016x}","contact":{},"from":"{}","to":"{}","at_ns":{},"ends_ns":{}}})",
                ::getpid(), in.attempt.value(), in.key_hash, in.contact, in.from, in.to, in.received.count(),
                (now + real_delay(call.plan.total())).count()));
          calls_.emplace(in.key_hash, std::move(call));
          accepted_.fetch_add(1, std::memory_order_relaxed);
          ready.push_back(std::move(e));
        } else if (v == verdict::ignore_duplicate) {
          duplicates_ignored_.fetch_add(1, std::memory_order_relaxed);
          spdlog::warn("simulated carrier: ignored a second origination of attempt {} (same idempotency key)",
                       in.attempt.value());
          ++finished;
        } else {
          e.what = pending_event::kind::refused;
          e.why = refusal_of(v);
          refused_.fetch_add(1, std::memory_order_relaxed);
          ready.push_back(std::move(e));
          ++finished;
        }
      }
      batch.clear();

      for (attempt_id attempt : cancel_batch) {
        auto key = key_of_attempt_.find(attempt.value());
        if (key == key_of_attempt_.end()) continue;
        auto& call = calls_.at(key->second);
        if (call.canceled_at || now >= call.started_mono + real_delay(call.plan.total())) continue;
        call.canceled_at = now;
        timers_.push(timer{now, key->second, ++call.generation});
      }
      cancel_batch.clear();

      while (!timers_.empty() && timers_.top().due <= now) {
        const timer t = timers_.top();
        timers_.pop();
        auto it = calls_.find(t.key_hash);
        if (it == calls_.end() || it->second.generation != t.generation) continue;  // superseded by a cancel
        pending_event e{};
        e.what = pending_event::kind::outcome;
        e.event = outcome_event(it->second);
        if (call_log_fd_ >= 0)
          log_line(fmt::format(
              R"({{"event":"ended","pid":{},"attempt":{},"key":"{:016x}","outcome":"{}","at_ns":{}}})",
              ::getpid(), it->second.attempt.value(), t.key_hash, to_string(e.event.outcome), now.count()));
        key_of_attempt_.erase(it->second.attempt.value());
        calls_.erase(it);
        outcomes_.fetch_add(1, std::memory_order_relaxed);
        ready.push_back(std::move(e));
        ++finished;
      }
    } catch (const std::exception& e) {  // allocation failure: keep the worker alive, say what happened
      spdlog::error("simulated carrier: worker error: {}", e.what());
    }

    if (!ready.empty()) {
      lock.unlock();
      for (auto& e : ready) deliver(e);
      ready.clear();
      lock.lock();
    }
    if (finished > 0) {
      outstanding_ -= finished;
      if (outstanding_ == 0) drained_cv_.notify_all();
      continue;  // time moved while delivering: look again before sleeping
    }
    if (stop_ || poked_) continue;
    // Through the clock port: under a manual clock the next call end comes when simulated time reaches it.
    (void)clock_.wait_until(work_cv_, lock, timers_.empty() ? dialer::clock::never : timers_.top().due,
                            [this] { return stop_ || poked_; });
  }
}

}  // namespace dialer::carriers
