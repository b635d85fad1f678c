#pragma once
// A max tournament tree over a campaign's numbers: each leaf holds a number's score under the campaign's
// strategy (or `unavailable`), each inner node the max of its children. Picking the best number, or the next
// usable one after a round-robin cursor, is O(log n) instead of a scan over saturated numbers; an update
// climbs only while the max changes. Not thread-safe: owned by the scheduler's core lock.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace dialer::sched::detail {

class selector_tree {
 public:
  static constexpr std::int64_t unavailable = std::numeric_limits<std::int64_t>::min();

  void reset(std::uint32_t leaves) {
    leaves_ = leaves;
    size_ = 1;
    while (size_ < leaves) size_ *= 2;
    node_.assign(2 * static_cast<std::size_t>(size_), unavailable);
  }

  [[nodiscard]] std::uint32_t leaves() const noexcept { return leaves_; }
  [[nodiscard]] bool any() const noexcept { return node_[1] != unavailable; }
  [[nodiscard]] std::int64_t score(std::uint32_t leaf) const noexcept { return node_[size_ + leaf]; }

  void set(std::uint32_t leaf, std::int64_t score) noexcept {
    std::size_t i = size_ + leaf;
    if (node_[i] == score) return;
    node_[i] = score;
    for (i >>= 1; i != 0; i >>= 1) {
      const std::int64_t best = std::max(node_[2 * i], node_[2 * i + 1]);
      if (node_[i] == best) break;
      node_[i] = best;
    }
  }

  // The leftmost leaf with the highest score, or -1 when none is available.
  [[nodiscard]] std::int32_t best() const noexcept {
    if (node_[1] == unavailable) return -1;
    std::size_t i = 1;
    while (i < size_) i = node_[2 * i] >= node_[2 * i + 1] ? 2 * i : 2 * i + 1;
    return static_cast<std::int32_t>(i - size_);
  }

  // The first available leaf at or after `from`, wrapping around; -1 when none is available.
  [[nodiscard]] std::int32_t next_available(std::uint32_t from) const noexcept {
    if (node_[1] == unavailable) return -1;
    if (from >= leaves_) from = 0;
    std::size_t i = size_ + from;
    if (node_[i] != unavailable) return static_cast<std::int32_t>(from);
    for (; i > 1; i >>= 1) {
      if ((i & 1) == 0 && node_[i + 1] != unavailable) return descend_leftmost(i + 1);
    }
    return descend_leftmost(1);
  }

 private:
  [[nodiscard]] std::int32_t descend_leftmost(std::size_t i) const noexcept {
    while (i < size_) i = node_[2 * i] != unavailable ? 2 * i : 2 * i + 1;
    return static_cast<std::int32_t>(i - size_);
  }

  std::vector<std::int64_t> node_{unavailable, unavailable};
  std::size_t size_ = 1;
  std::uint32_t leaves_ = 0;
};

}  // namespace dialer::sched::detail
