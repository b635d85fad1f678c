#pragma once
// A campaign this engine runs, as every stage sees it, and the table of them.
//
// The control stage creates a live_campaign when the engine takes a campaign on, and drops it from the table
// once the campaign is drained (nothing of it left in the pipeline). Everything that carries one of its
// contacts or calls holds a std::shared_ptr to it, so it lives as long as the last of them.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/campaign_record.hpp"
#include "engine/dialing/block_tracker.hpp"
#include "engine/rules/calling_window.hpp"
#include "scheduler/slot_guard.hpp"

namespace dialer::dialing {

class carrier_link;

// Why a campaign stops taking new work here; also the reason written on the contacts it hands back.
enum class drain_reason : std::uint8_t { none, paused, cancelled, engine_stopped, left_scope };
[[nodiscard]] const char* to_string(drain_reason r) noexcept;

struct live_campaign {
  live_campaign(campaign_record r, rules::calling_window w, carrier_link& c)
      : record(std::move(r)), window(std::move(w)), carrier(c) {}
  live_campaign(const live_campaign&) = delete;
  live_campaign& operator=(const live_campaign&) = delete;

  // Read-only once published (any thread).
  const campaign_record record;
  const rules::calling_window window;
  carrier_link& carrier;  // owned by the engine, which outlives every campaign

  // Lifecycle: the control stage writes, any thread reads.
  std::atomic<bool> dialing{false};  // the claim stage and the dispatcher may take new work
  std::atomic<drain_reason> draining{drain_reason::none};
  [[nodiscard]] bool cancelled() const noexcept { return draining.load() == drain_reason::cancelled; }

  block_tracker blocks;  // thread-safe: units of its claimed blocks still in the pipeline, and their bytes

  // Slots its decisions and calls hold now (call_slot counts them): what it has in flight against its cap.
  std::atomic<std::int64_t> holding{0};
  // Calls of a dead engine's recovered attempts that may still be talking: they occupy its cap too.
  std::atomic<int> recovered{0};
  // The units of its concurrency cap this engine may use (lease stage), and what it may dial on at most now:
  // that, and the usable slots of its numbers (lease stage). Sizes its claims.
  std::atomic<int> cap_share{0};
  std::atomic<std::size_t> usable_slots{0};
  // The scheduler's cap for it: cap_share - recovered (0 when the engine holds no share). Any thread.
  void apply_cap(sched::scheduler& s) {
    std::lock_guard lock(cap_mutex_);
    (void)s.set_campaign_max_in_flight(record.id, std::max(0, cap_share.load() - recovered.load()));
  }

  std::atomic<std::int64_t> dialed{0};
  std::atomic<std::int64_t> answered{0};
  std::atomic<std::int64_t> reconciled{0};
  std::atomic<std::int64_t> unknown{0};

  // Claim stage writes, control stage reads: the last claim found no block holding a contact that waits (due
  // now or later) among the blocks nobody holds.
  std::atomic<bool> nothing_left{false};

  // Claim stage only.
  std::chrono::nanoseconds next_claim_at{0};
  std::size_t bytes_per_contact = 0;         // as the last claim brought them (0: none yet)
  std::chrono::nanoseconds idle_backoff{0};  // the next wait after a claim that found nothing waiting

  // The caller IDs it uses now (control stage writes; lease stage reads).
  [[nodiscard]] std::vector<number_id> numbers() const {
    std::lock_guard lock(numbers_mutex_);
    return numbers_;
  }
  void set_numbers(std::vector<number_id> n) {
    std::lock_guard lock(numbers_mutex_);
    numbers_ = std::move(n);
  }

 private:
  std::mutex cap_mutex_;
  mutable std::mutex numbers_mutex_;
  std::vector<number_id> numbers_;
};

using campaign_ptr = std::shared_ptr<live_campaign>;

// The campaigns this engine runs now, by id. Thread-safe (a shared lock for readers); the control stage alone
// adds and removes. Lookups are per batch, not per contact: stages carry the campaign_ptr with each contact.
class campaign_table {
 public:
  void add(campaign_ptr c) {
    std::unique_lock lock(mutex_);
    by_id_[c->record.id.value()] = std::move(c);
  }
  void remove(campaign_id id) {
    std::unique_lock lock(mutex_);
    by_id_.erase(id.value());
  }
  [[nodiscard]] campaign_ptr find(campaign_id id) const {
    std::shared_lock lock(mutex_);
    auto it = by_id_.find(id.value());
    return it == by_id_.end() ? nullptr : it->second;
  }
  [[nodiscard]] std::vector<campaign_ptr> all() const {
    std::shared_lock lock(mutex_);
    std::vector<campaign_ptr> out;
    out.reserve(by_id_.size());
    for (const auto& [id, c] : by_id_) out.push_back(c);
    return out;
  }
  [[nodiscard]] std::size_t size() const {
    std::shared_lock lock(mutex_);
    return by_id_.size();
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::int64_t, campaign_ptr> by_id_;
};

// A decision's scheduler slot together with its place in the campaign's count of slots held: the slot goes
// back, and the count drops, in one place (this class), exactly once. Move-only; one thread owns it at a time
// (it travels with its call). Never allocates.
class call_slot {
 public:
  call_slot() = default;
  call_slot(sched::scheduler& s, sched::slot_handle h, campaign_ptr campaign) noexcept
      : guard_(s, h), campaign_(std::move(campaign)) {
    if (campaign_) campaign_->holding.fetch_add(1, std::memory_order_acq_rel);
  }
  call_slot(call_slot&&) noexcept = default;
  call_slot& operator=(call_slot&& other) noexcept {
    if (this != &other) {
      release(sched::release_reason::not_attempted);
      guard_ = std::move(other.guard_);
      campaign_ = std::move(other.campaign_);
    }
    return *this;
  }
  call_slot(const call_slot&) = delete;
  call_slot& operator=(const call_slot&) = delete;
  ~call_slot() { release(sched::release_reason::not_attempted); }

  [[nodiscard]] bool held() const noexcept { return guard_.held(); }
  void complete() noexcept { release(sched::release_reason::completed); }
  void give_back(sched::release_reason reason) noexcept { release(reason); }

 private:
  void release(sched::release_reason reason) noexcept {
    if (!guard_.held()) return;
    guard_.give_back(reason);
    if (campaign_) campaign_->holding.fetch_sub(1, std::memory_order_acq_rel);
    campaign_.reset();
  }
  sched::slot_guard guard_;
  campaign_ptr campaign_;
};

}  // namespace dialer::dialing
