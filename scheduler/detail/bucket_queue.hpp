#pragma once
// Least-loaded selection in O(1): each usable number sits in the bucket of its free-slot count (an intrusive
// FIFO list), and a bitset_index over non-empty buckets finds the fullest one. A number that moves to another
// bucket joins its tail, so numbers with equal free slots take turns. Not thread-safe.

#include <cstdint>
#include <limits>
#include <vector>

#include "scheduler/detail/bitset_index.hpp"

namespace dialer::sched::detail {

class bucket_queue {
 public:
  static constexpr std::uint32_t max_key = bitset_index::max_bits - 1;

  // Keys 1..max_key; 0 means "not in any bucket".
  void reset(std::uint32_t leaves, std::uint32_t keys) {
    key_.assign(leaves, 0);
    prev_.assign(leaves, none);
    next_.assign(leaves, none);
    head_.assign(static_cast<std::size_t>(keys) + 1, none);
    tail_.assign(static_cast<std::size_t>(keys) + 1, none);
    nonempty_.reset(keys + 1);
  }

  [[nodiscard]] std::uint32_t keys() const noexcept { return static_cast<std::uint32_t>(head_.size() - 1); }

  void set(std::uint32_t leaf, std::uint32_t key) noexcept {
    if (key > keys()) key = keys();
    const std::uint32_t old = key_[leaf];
    if (old == key) return;
    if (old != 0) unlink(leaf, old);
    key_[leaf] = key;
    if (key != 0) link_back(leaf, key);
  }

  // The first leaf of the highest non-empty bucket; -1 when every bucket is empty.
  [[nodiscard]] std::int32_t best() const noexcept {
    const std::int32_t bucket = nonempty_.last();
    return bucket < 0 ? -1 : static_cast<std::int32_t>(head_[static_cast<std::uint32_t>(bucket)]);
  }

 private:
  static constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();

  void unlink(std::uint32_t leaf, std::uint32_t key) noexcept {
    const std::uint32_t p = prev_[leaf];
    const std::uint32_t n = next_[leaf];
    if (p != none)
      next_[p] = n;
    else
      head_[key] = n;
    if (n != none)
      prev_[n] = p;
    else
      tail_[key] = p;
    if (head_[key] == none) nonempty_.clear(key);
  }

  void link_back(std::uint32_t leaf, std::uint32_t key) noexcept {
    const std::uint32_t t = tail_[key];
    prev_[leaf] = t;
    next_[leaf] = none;
    if (t != none)
      next_[t] = leaf;
    else
      head_[key] = leaf;
    tail_[key] = leaf;
    nonempty_.set(key);
  }

  std::vector<std::uint32_t> key_;
  std::vector<std::uint32_t> prev_;
  std::vector<std::uint32_t> next_;
  std::vector<std::uint32_t> head_;
  std::vector<std::uint32_t> tail_;
  bitset_index nonempty_;
};

}  // namespace dialer::sched::detail
