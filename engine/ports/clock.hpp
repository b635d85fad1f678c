#pragma once
// The clock port. All time in the engine and the scheduler comes through here, so tests can
// drive CPS buckets, retries and calling windows deterministically.

#include <atomic>
#include <chrono>

namespace dialer {

class clock {
 public:
  virtual ~clock() = default;
  // Monotonic time for rates, timeouts and latencies. Thread-safe, never allocates.
  [[nodiscard]] virtual std::chrono::nanoseconds monotonic() const noexcept = 0;
  // Wall time for calling windows, timestamps and billing. Thread-safe, never allocates.
  [[nodiscard]] virtual std::chrono::system_clock::time_point wall() const noexcept = 0;
};

class system_clock final : public clock {
 public:
  [[nodiscard]] std::chrono::nanoseconds monotonic() const noexcept override {
    return std::chrono::steady_clock::now().time_since_epoch();
  }
  [[nodiscard]] std::chrono::system_clock::time_point wall() const noexcept override {
    return std::chrono::system_clock::now();
  }
};

// A clock that moves only when told. Thread-safe: readers may run on any thread.
class manual_clock final : public clock {
 public:
  explicit manual_clock(std::chrono::system_clock::time_point wall_start = {}) noexcept
      : wall_start_(wall_start) {}

  [[nodiscard]] std::chrono::nanoseconds monotonic() const noexcept override {
    return std::chrono::nanoseconds(now_ns_.load(std::memory_order_acquire));
  }
  [[nodiscard]] std::chrono::system_clock::time_point wall() const noexcept override {
    return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(monotonic());
  }
  void advance(std::chrono::nanoseconds by) noexcept { now_ns_.fetch_add(by.count(), std::memory_order_acq_rel); }

 private:
  std::chrono::system_clock::time_point wall_start_;
  std::atomic<std::int64_t> now_ns_{1'000'000'000};  // start at 1 s so "time zero" is never a valid stamp
};

}  // namespace dialer
