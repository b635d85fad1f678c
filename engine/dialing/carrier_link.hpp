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
      : carrier_(std::move(c)), account_(account), key_(std::move(key)), identity_(carrier_->account_identity()) {
    // A trunk's channels shared with other engines: none is taken before the lease stage has leased some.
    if (!identity_.empty() && carrier_->max_channels() > 0) allow_channels(0);
  }

  [[nodiscard]] carrier& get() noexcept { return *carrier_; }
  [[nodiscard]] carrier_account_id account() const noexcept { return account_; }
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  // The carrier account whose calls-per-second this link shares with every engine (empty: its own alone).
  [[nodiscard]] const std::string& identity() const noexcept { return identity_; }
  // This engine's fraction of the account's calls per second (1 / live engines using it; 0 until every other
  // engine has counted this one). Set by the lease stage, read by the origination stage.
  void set_cps_share(double share) noexcept { cps_share_.store(share, std::memory_order_release); }
  [[nodiscard]] double cps_share() const noexcept { return cps_share_.load(std::memory_order_acquire); }
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
  // This engine's share of the account's channels (a SIP trunk's max_channels), passed on to the carrier: set
  // by the lease stage only, which reads it back to know what the carrier may take before its next renewal.
  void allow_channels(int channels) noexcept {
    channel_allowance_.store(channels, std::memory_order_release);
    if (carrier_) carrier_->allow_channels(channels);
  }
  [[nodiscard]] int channel_allowance() const noexcept { return channel_allowance_.load(std::memory_order_acquire); }
  // Stops the carrier: calls still in flight report nothing more (like a cut connection).
  void reset() noexcept { carrier_.reset(); }
  [[nodiscard]] bool alive() const noexcept { return carrier_ != nullptr; }

 private:
  std::unique_ptr<carrier> carrier_;
  carrier_account_id account_;
  std::string key_;
  std::string identity_;
  // An account shared with other engines starts at 0: it places nothing until the first lease renewal has
  // counted it (and every other engine has counted it too).
  std::atomic<double> cps_share_{identity_.empty() ? 1.0 : 0.0};
  std::atomic<std::int64_t> throttled_until_{0};
  std::atomic<int> channel_allowance_{carrier_->max_channels()};
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
