#pragma once
// A set of E.164 numbers stored as 64-bit integers ("+14155550123" -> 14155550123): 8 bytes a
// number at up to 50% load in one flat array, so a million numbers take 16-32 MB, not the
// ~70 MB of std::unordered_set<std::string>. Used for duplicate detection in an import and for
// an account's do-not-call list.

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
  // Not thread-safe. Allocates when the table grows.
  result<void> add(std::string_view e164);

  // Inserts a key from key_of(); returns false if it was already present.
  // Not thread-safe (writers need exclusive access). Allocates when the table grows (amortized O(1)).
  bool insert(std::uint64_t key);

  // Thread-safe against other readers (not against a concurrent insert). Never allocates.
  [[nodiscard]] bool contains(std::uint64_t key) const noexcept;
  [[nodiscard]] bool contains(std::string_view e164) const noexcept;

  void reserve(std::size_t count);
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

 private:
  [[nodiscard]] std::size_t slot_of(std::uint64_t key) const noexcept;
  void grow_to(std::size_t slots);

  std::vector<std::uint64_t> slots_;  // 0 = empty; power-of-two size
  std::size_t size_ = 0;
};

}  // namespace dialer::contacts
