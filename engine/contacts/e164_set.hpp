#pragma once
// A set of E.164 numbers stored as 64-bit integers ("+14155550123" -> 14155550123), in 64 open-addressing
// shards that grow by half, one at a time: at most 80 % full, so 10-15 bytes a number, and growing never
// holds two copies of the whole table (ten million numbers: 100-150 MB, not the ~400 MB peak of one table
// doubling at 50 % load, nor the ~700 MB of std::unordered_set<std::string>). Used for duplicate detection in
// an import and for an account's do-not-call list.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/result.hpp"

namespace dialer::contacts {

class e164_set {
 public:
  e164_set() = default;
  explicit e164_set(std::size_t expected_size) { reserve(expected_size); }

  // The key of an E.164 string, or nullopt when `e164` is not E.164-shaped ('+', 1-15 digits, the
  // first non-zero). Distinct E.164 strings have distinct keys (no leading zeros), and no key is 0.
  // Thread-safe, never allocates.
  [[nodiscard]] static std::optional<std::uint64_t> key_of(std::string_view e164) noexcept;

  // Adds `e164`. Errors: errc::invalid_input when it is not E.164-shaped, quoting it.
  // Not thread-safe. Allocates when a shard grows.
  result<void> add(std::string_view e164);

  // Inserts a key from key_of(); returns false if it was already present.
  // Not thread-safe (writers need exclusive access). Allocates when a shard grows (amortized O(1)).
  bool insert(std::uint64_t key);

  // Thread-safe against other readers (not against a concurrent insert). Never allocates.
  [[nodiscard]] bool contains(std::uint64_t key) const noexcept;
  [[nodiscard]] bool contains(std::string_view e164) const noexcept;

  void reserve(std::size_t count);
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Bytes held by the tables (for the memory tests and benchmarks).
  [[nodiscard]] std::size_t bytes() const noexcept;

 private:
  static constexpr unsigned shard_bits = 6;
  struct shard {
    std::vector<std::uint64_t> slots;  // 0 = empty; any size, or none
    std::size_t size = 0;
  };
  static void grow(shard& s, std::size_t slots);
  [[nodiscard]] static std::size_t slot_of(const shard& s, std::uint64_t hash, std::uint64_t key) noexcept;

  std::array<shard, std::size_t{1} << shard_bits> shards_{};
  std::size_t size_ = 0;
};

}  // namespace dialer::contacts
