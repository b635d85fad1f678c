#pragma once
// A bounded, typed queue between two pipeline stages. Producers push (waiting, through the clock port, while
// the queue is full); one consumer takes everything queued at once (a batch) and waits, through the clock
// port, until something arrives, a deadline passes or the queue is closed. One lock per push and per batch
// taken, never per item taken.
//
// Thread-safety: any number of producer threads, one consumer thread at a time. Allocates when the deque
// needs a new block; the bound caps how far it grows.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>

#include "engine/ports/clock.hpp"

namespace dialer {

template <class T>
class stage_queue {
 public:
  stage_queue(const clock& clk, std::size_t capacity) : clock_(clk), capacity_(capacity < 1 ? 1 : capacity) {}

  // Waits while the queue is full (never once it is closed); false when closed: the item is not queued and
  // not moved from (the caller still has it).
  bool push(T&& item) {
    std::unique_lock lock(mutex_);
    (void)clock_.wait_until(not_full_, lock, clock::never,
                            [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  // Moves every queued item to the back of `out` (after waiting until there is one, `deadline` (monotonic)
  // passes, or the queue is closed). Returns how many were taken.
  std::size_t take_all(std::deque<T>& out, std::chrono::nanoseconds deadline) {
    std::unique_lock lock(mutex_);
    (void)clock_.wait_until(not_empty_, lock, deadline, [&] { return closed_ || !items_.empty(); });
    const std::size_t n = items_.size();
    if (out.empty()) {
      out.swap(items_);
    } else {
      for (auto& item : items_) out.push_back(std::move(item));
      items_.clear();
    }
    lock.unlock();
    if (n > 0) not_full_.notify_all();
    return n;
  }

  // No more pushes; the consumer still takes what is queued. Wakes everyone.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }
  [[nodiscard]] bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return items_.size();
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  const clock& clock_;
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace dialer
