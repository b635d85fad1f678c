#pragma once
// A token bucket in its GCRA form (generic cell rate algorithm): one "theoretical arrival time" instead of a
// token count and a refill stamp, so a check is one compare and a take is one add, in integer nanoseconds.
//
// Guarantee: in any half-open window of length W there are at most (burst - 1) + ceil(W / interval)
// takes. With burst 1 and W = 1 s that is ceil(rate): never more than the cap in any second.
// The interval is rounded up to whole nanoseconds so rounding can only make the limiter stricter.

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace dialer::sched::detail {

class gcra {
 public:
  // per_second > 0; +infinity means unlimited. burst >= 1.
  void configure(double per_second, std::uint32_t burst) noexcept {
    const std::int64_t interval =
        std::isinf(per_second)
            ? 0
            : std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(1e9 / per_second)));
    // Keep the spacing of the last take under the new rate, so lowering a cap takes effect at once.
    if (last_take_valid_) tat_ += interval - interval_;
    interval_ = interval;
    tolerance_ = static_cast<std::int64_t>(burst - 1) * interval;
  }

  [[nodiscard]] bool ready(std::int64_t now) const noexcept { return now >= tat_ - tolerance_; }
  // Earliest time ready() becomes true without further takes.
  [[nodiscard]] std::int64_t ready_at() const noexcept { return tat_ - tolerance_; }
  void take(std::int64_t now) noexcept {
    tat_ = std::max(tat_, now) + interval_;
    last_take_valid_ = true;
  }
  [[nodiscard]] std::int64_t interval() const noexcept { return interval_; }

 private:
  std::int64_t tat_ = 0;
  std::int64_t interval_ = 0;
  std::int64_t tolerance_ = 0;
  bool last_take_valid_ = false;
};

}  // namespace dialer::sched::detail
