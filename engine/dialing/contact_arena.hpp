#pragma once
// Where the contacts waiting in the scheduler's hopper keep their data: the scheduler carries only a typed,
// non-owning sched::payload_ref (slot index and generation); the arena owns the entry until a stage takes it
// out. A contact the scheduler drops, hands back or still holds when the engine stops is freed with the
// arena: nothing leaks, whatever path it took.
//
// Thread-safety: every method takes one lock (per batch for the _many forms). The claim stage puts, the
// dispatcher and the control stage take. Allocates only when the slot table grows past its peak (bounded by
// the hopper's capacity plus what is being handed over).

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "engine/dialing/live_campaign.hpp"
#include "engine/ports/contact_claims.hpp"
#include "engine/rules/zones.hpp"
#include "scheduler/types.hpp"

namespace dialer::dialing {

struct contact_entry {
  claimed_contact contact;
  const rules::zone_set* zones = nullptr;  // owned by the claim stage's zone caches, which outlive the arena
  campaign_ptr campaign;
};

class contact_arena {
 public:
  // Stores each entry and writes its reference into refs (same order). One lock.
  void put_many(std::span<contact_entry> entries, std::span<sched::payload_ref> refs) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      std::uint32_t index;
      if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
      } else {
        index = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
      }
      auto& s = slots_[index];
      ++s.generation;
      s.entry = std::move(entries[i]);
      refs[i] = sched::payload_ref{(static_cast<std::uint64_t>(s.generation) << 32) | index};
    }
    live_ += entries.size();
  }

  // Takes the entry out (the reference is then dead). nullopt for a reference that is not live: a bug,
  // counted.
  std::optional<contact_entry> take(sched::payload_ref ref) {
    std::lock_guard lock(mutex_);
    return take_locked(ref);
  }
  // Takes several at once (one lock); a dead reference leaves its place empty.
  void take_many(std::span<const sched::payload_ref> refs, std::vector<std::optional<contact_entry>>& out) {
    std::lock_guard lock(mutex_);
    out.clear();
    out.reserve(refs.size());
    for (auto ref : refs) out.push_back(take_locked(ref));
  }

  [[nodiscard]] std::size_t live() const {
    std::lock_guard lock(mutex_);
    return live_;
  }
  [[nodiscard]] std::uint64_t dead_references() const {
    std::lock_guard lock(mutex_);
    return dead_;
  }

  // Every entry still held (when the engine stops): handed to `fn`, then freed.
  template <class Fn>
  void drain(Fn&& fn) {
    std::vector<contact_entry> left;
    {
      std::lock_guard lock(mutex_);
      for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        auto& s = slots_[i];
        if (!s.entry) continue;
        left.push_back(std::move(*s.entry));
        s.entry.reset();
        free_.push_back(i);
      }
      live_ = 0;
    }
    for (auto& e : left) fn(e);
  }

 private:
  std::optional<contact_entry> take_locked(sched::payload_ref ref) {
    const auto index = static_cast<std::uint32_t>(ref.value() & 0xffffffffu);
    const auto generation = static_cast<std::uint32_t>(ref.value() >> 32);
    if (index >= slots_.size() || slots_[index].generation != generation || !slots_[index].entry) {
      ++dead_;
      return std::nullopt;
    }
    auto& s = slots_[index];
    std::optional<contact_entry> out = std::move(s.entry);
    s.entry.reset();
    free_.push_back(index);
    --live_;
    return out;
  }

  struct slot {
    std::uint32_t generation = 0;
    std::optional<contact_entry> entry;
  };
  mutable std::mutex mutex_;
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t live_ = 0;
  std::uint64_t dead_ = 0;
};

}  // namespace dialer::dialing
