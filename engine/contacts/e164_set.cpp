#include "engine/contacts/e164_set.hpp"

#include <algorithm>
#include <bit>

#include "engine/phone.hpp"

namespace dialer::contacts {
namespace {

std::uint64_t mix(std::uint64_t key) noexcept {
  // splitmix64 finalizer: consecutive numbers (one exchange's block) spread over shards and slots.
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ULL;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebULL;
  key ^= key >> 31;
  return key;
}

// A shard of `slots` slots holds at most 80 % of them: linear probing stays short (about 3 probes for a hit,
// 13 for a miss, within one or two cache lines). Shards grow by half, so a number costs 10 to 15 bytes.
constexpr bool over_load(std::size_t size, std::size_t slots) noexcept {
  return size * 5 > slots * 4;
}
constexpr std::size_t min_slots = 16;
constexpr std::size_t slots_for(std::size_t size) noexcept {
  return std::max(min_slots, (size * 5 + 3) / 4);
}

}  // namespace

std::optional<std::uint64_t> e164_set::key_of(std::string_view e164) noexcept {
  if (!is_e164_form(e164)) return std::nullopt;
  std::uint64_t key = 0;
  for (char c : e164.substr(1)) key = key * 10 + static_cast<std::uint64_t>(c - '0');
  return key;
}

result<void> e164_set::add(std::string_view e164) {
  const auto key = key_of(e164);
  if (!key)
    return make_error(errc::invalid_input, "'{}' is not an E.164 number (expected + and digits)", e164);
  insert(*key);
  return ok();
}

std::size_t e164_set::slot_of(const shard& s, std::uint64_t hash, std::uint64_t key) noexcept {
  // The hash's low 32 bits scaled to the shard's size (any size, not only powers of two); the shard took the
  // high bits.
  const std::size_t n = s.slots.size();
  std::size_t i = static_cast<std::size_t>(((hash & 0xffff'ffffULL) * n) >> 32);
  while (s.slots[i] != 0 && s.slots[i] != key) i = i + 1 == n ? 0 : i + 1;
  return i;
}

bool e164_set::insert(std::uint64_t key) {
  const std::uint64_t hash = mix(key);
  shard& s = shards_[hash >> (64 - shard_bits)];
  if (s.slots.empty() || over_load(s.size + 1, s.slots.size()))
    grow(s, std::max(min_slots, s.slots.size() + s.slots.size() / 2));
  const std::size_t i = slot_of(s, hash, key);
  if (s.slots[i] == key) return false;
  s.slots[i] = key;
  ++s.size;
  ++size_;
  return true;
}

bool e164_set::contains(std::uint64_t key) const noexcept {
  if (key == 0) return false;
  const std::uint64_t hash = mix(key);
  const shard& s = shards_[hash >> (64 - shard_bits)];
  if (s.slots.empty()) return false;
  return s.slots[slot_of(s, hash, key)] == key;
}

bool e164_set::contains(std::string_view e164) const noexcept {
  const auto key = key_of(e164);
  return key && contains(*key);
}

void e164_set::reserve(std::size_t count) {
  // Shards fill evenly (the hash's high bits pick them); a little headroom covers the spread between them.
  const std::size_t per_shard = count / shards_.size() + count / shards_.size() / 16 + 1;
  const std::size_t slots = slots_for(per_shard);
  for (shard& s : shards_) {
    if (slots > s.slots.size()) grow(s, slots);
  }
}

std::size_t e164_set::bytes() const noexcept {
  std::size_t total = 0;
  for (const shard& s : shards_) total += s.slots.capacity() * sizeof(std::uint64_t);
  return total;
}

void e164_set::grow(shard& s, std::size_t slots) {
  std::vector<std::uint64_t> old = std::move(s.slots);
  s.slots.assign(slots, 0);
  for (std::uint64_t key : old) {
    if (key != 0) s.slots[slot_of(s, mix(key), key)] = key;
  }
}

}  // namespace dialer::contacts
