#pragma once
// One carrier account this engine places calls through: the carrier instance (made by the carrier_source on
// first use, owned here until the engine stops), its account in the scheduler (one CPS bucket, one back-off),
// and the campaigns' name for it.
//
// Thread-safety: the carrier's own (originate(), cancel(), lookup() are thread-safe by the port's contract);
// the rest is immutable after construction.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "engine/ids.hpp"
#include "engine/ports/carrier.hpp"

namespace dialer::dialing {

class carrier_link {
 public:
  carrier_link(std::unique_ptr<carrier> c, carrier_account_id account, std::string key)
      : carrier_(std::move(c)), account_(account), key_(std::move(key)) {}

  [[nodiscard]] carrier& get() noexcept { return *carrier_; }
  [[nodiscard]] carrier_account_id account() const noexcept { return account_; }
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  // Carrier back-pressure (HTTP 429, SIP 503 with Retry-After): no call of this account leaves before `until`
  // (monotonic). The scheduler's account bucket is throttled too, but a number is paced there through one
  // account only; the origination stage's gate holds every call of this account. Any thread.
  void throttle_until(std::chrono::nanoseconds until) noexcept {
    auto seen = throttled_until_.load(std::memory_order_relaxed);
    while (seen < until.count() && !throttled_until_.compare_exchange_weak(seen, until.count())) {
    }
  }
  [[nodiscard]] std::chrono::nanoseconds throttled_until() const noexcept {
    return std::chrono::nanoseconds(throttled_until_.load(std::memory_order_relaxed));
  }
  // Stops the carrier: calls still in flight report nothing more (like a cut connection).
  void reset() noexcept { carrier_.reset(); }
  [[nodiscard]] bool alive() const noexcept { return carrier_ != nullptr; }

 private:
  std::unique_ptr<carrier> carrier_;
  carrier_account_id account_;
  std::string key_;
  std::atomic<std::int64_t> throttled_until_{0};
};

}  // namespace dialer::dialing

#include <map>
#include <mutex>

namespace dialer::dialing {

// The carrier accounts this engine uses, by the carrier_source's account key. The control stage adds; the
// engine stops them all at the end. Thread-safe.
class carrier_table {
 public:
  // The link for `key`, or nullptr.
  [[nodiscard]] carrier_link* find(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = links_.find(key);
    return it == links_.end() ? nullptr : it->second.get();
  }
  carrier_link& add(std::unique_ptr<carrier_link> link) {
    std::lock_guard lock(mutex_);
    auto& slot = links_[link->key()];
    slot = std::move(link);
    return *slot;
  }
  // Waits (each carrier's own drain) for the calls in flight to report, up to `deadline` each.
  void drain(std::chrono::milliseconds deadline) {
    std::lock_guard lock(mutex_);
    for (auto& [key, link] : links_)
      if (link->alive()) link->get().drain(deadline);
  }
  // Stops every carrier: calls still in flight report nothing more. Links stay (campaigns may still point at
  // them).
  void stop_all() {
    std::lock_guard lock(mutex_);
    for (auto& [key, link] : links_) link->reset();
  }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return links_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<carrier_link>> links_;
};

}  // namespace dialer::dialing
