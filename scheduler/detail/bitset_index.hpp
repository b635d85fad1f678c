#pragma once
// A three-level bitset over up to 64^3 = 262144 positions: set, clear, "next set bit at or after i"
// (wrapping) and "highest set bit" all in O(1) with a handful of word operations. Round robin finds the next
// usable number with it, and the least-loaded buckets find their fullest bucket. Not thread-safe.

#include <bit>
#include <cstdint>
#include <vector>

namespace dialer::sched::detail {

class bitset_index {
 public:
  static constexpr std::uint32_t max_bits = 64u * 64u * 64u;

  void reset(std::uint32_t bits) {
    bits_ = bits;
    l0_.assign((bits + 63) / 64 + 1, 0);
    l1_.assign((l0_.size() + 63) / 64, 0);
    l2_ = 0;
  }

  [[nodiscard]] bool any() const noexcept { return l2_ != 0; }
  [[nodiscard]] bool test(std::uint32_t i) const noexcept { return (l0_[i >> 6] >> (i & 63)) & 1; }

  void set(std::uint32_t i) noexcept {
    l0_[i >> 6] |= bit(i & 63);
    l1_[i >> 12] |= bit((i >> 6) & 63);
    l2_ |= bit(i >> 12);
  }

  void clear(std::uint32_t i) noexcept {
    std::uint64_t& w0 = l0_[i >> 6];
    w0 &= ~bit(i & 63);
    if (w0 != 0) return;
    std::uint64_t& w1 = l1_[i >> 12];
    w1 &= ~bit((i >> 6) & 63);
    if (w1 != 0) return;
    l2_ &= ~bit(i >> 12);
  }

  // The first set position at or after `from`, wrapping around; -1 when none is set.
  [[nodiscard]] std::int32_t next(std::uint32_t from) const noexcept {
    if (l2_ == 0) return -1;
    if (from >= bits_) from = 0;
    if (const std::int32_t found = at_or_after(from); found >= 0) return found;
    return at_or_after(0);
  }

  // The highest set position; -1 when none is set.
  [[nodiscard]] std::int32_t last() const noexcept {
    if (l2_ == 0) return -1;
    const std::uint32_t j = 63 - static_cast<std::uint32_t>(std::countl_zero(l2_));
    const std::uint32_t word = (j << 6) | (63 - static_cast<std::uint32_t>(std::countl_zero(l1_[j])));
    return static_cast<std::int32_t>((word << 6) |
                                     (63 - static_cast<std::uint32_t>(std::countl_zero(l0_[word]))));
  }

 private:
  static constexpr std::uint64_t bit(std::uint32_t i) noexcept { return std::uint64_t{1} << i; }

  [[nodiscard]] std::int32_t descend(std::uint32_t j) const noexcept {
    const std::uint32_t word = (j << 6) | static_cast<std::uint32_t>(std::countr_zero(l1_[j]));
    return static_cast<std::int32_t>((word << 6) | static_cast<std::uint32_t>(std::countr_zero(l0_[word])));
  }

  [[nodiscard]] std::int32_t at_or_after(std::uint32_t from) const noexcept {
    const std::uint32_t w = from >> 6;
    if (const std::uint64_t m = l0_[w] & (~std::uint64_t{0} << (from & 63)); m != 0) {
      return static_cast<std::int32_t>((w << 6) | static_cast<std::uint32_t>(std::countr_zero(m)));
    }
    const std::uint32_t next_word = w + 1;
    const std::uint32_t j = next_word >> 6;
    if (j >= l1_.size()) return -1;
    if (const std::uint64_t m = l1_[j] & (~std::uint64_t{0} << (next_word & 63)); m != 0) {
      const std::uint32_t word = (j << 6) | static_cast<std::uint32_t>(std::countr_zero(m));
      return static_cast<std::int32_t>((word << 6) | static_cast<std::uint32_t>(std::countr_zero(l0_[word])));
    }
    if (j + 1 >= 64) return -1;
    if (const std::uint64_t m = l2_ & (~std::uint64_t{0} << (j + 1)); m != 0) {
      return descend(static_cast<std::uint32_t>(std::countr_zero(m)));
    }
    return -1;
  }

  std::uint32_t bits_ = 0;
  std::vector<std::uint64_t> l0_{0};
  std::vector<std::uint64_t> l1_{0};
  std::uint64_t l2_ = 0;
};

}  // namespace dialer::sched::detail
