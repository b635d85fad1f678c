#pragma once
// A concurrency slot the scheduler handed out, as an owned resource (the shape of Envoy's ResourceLimit with its
// RAII holder): whoever holds the guard holds the slot, and the slot goes back exactly once, in one place.
//
//   complete()            the call ended: the slot frees (scheduler::complete)
//   give_back(reason)     it comes back without a finished call (scheduler::give_back, see release_reason)
//   destructor            a guard still holding its slot gives it back as not_attempted: a decision dropped on
//                         any path (an error, a shutdown) never leaks its slot
//
// Move-only. Not thread-safe: one thread owns a guard at a time (it travels with its call through the engine's
// queues). Never allocates. The scheduler must outlive every guard it issued.

#include <utility>

#include "scheduler/scheduler.hpp"

namespace dialer::sched {

class slot_guard {
 public:
  constexpr slot_guard() noexcept = default;
  slot_guard(scheduler& owner, slot_handle slot) noexcept : owner_(slot.valid() ? &owner : nullptr), slot_(slot) {}
  slot_guard(slot_guard&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)), slot_(std::exchange(other.slot_, slot_handle{})) {}
  slot_guard& operator=(slot_guard&& other) noexcept {
    if (this != &other) {
      give_back(release_reason::not_attempted);
      owner_ = std::exchange(other.owner_, nullptr);
      slot_ = std::exchange(other.slot_, slot_handle{});
    }
    return *this;
  }
  slot_guard(const slot_guard&) = delete;
  slot_guard& operator=(const slot_guard&) = delete;
  ~slot_guard() { give_back(release_reason::not_attempted); }

  [[nodiscard]] bool held() const noexcept { return owner_ != nullptr; }
  [[nodiscard]] slot_handle handle() const noexcept { return slot_; }

  // The call ended. No-op when the guard holds nothing.
  void complete() noexcept {
    if (auto* s = std::exchange(owner_, nullptr)) s->complete(std::exchange(slot_, slot_handle{}));
  }
  // The slot comes back without a finished call. No-op when the guard holds nothing.
  void give_back(release_reason reason) noexcept {
    if (auto* s = std::exchange(owner_, nullptr)) {
      if (reason == release_reason::completed) s->complete(std::exchange(slot_, slot_handle{}));
      else s->give_back(std::exchange(slot_, slot_handle{}), reason);
    }
  }

 private:
  scheduler* owner_ = nullptr;
  slot_handle slot_;
};

}  // namespace dialer::sched
