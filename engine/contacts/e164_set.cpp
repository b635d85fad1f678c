#include "engine/contacts/e164_set.hpp"

#include <bit>

#include "engine/phone.hpp"

namespace dialer::contacts {
namespace {

std::uint64_t mix(std::uint64_t key) noexcept {
  // splitmix64 finalizer: consecutive numbers (one exchange's block) spread over the table.
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ULL;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebULL;
  key ^= key >> 31;
  return key;
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

std::size_t e164_set::slot_of(std::uint64_t key) const noexcept {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = static_cast<std::size_t>(mix(key)) & mask;
  while (slots_[i] != 0 && slots_[i] != key) i = (i + 1) & mask;
  return i;
}

bool e164_set::insert(std::uint64_t key) {
  if ((size_ + 1) * 2 > slots_.size()) grow_to(std::max<std::size_t>(64, slots_.size() * 2));
  const std::size_t i = slot_of(key);
  if (slots_[i] == key) return false;
  slots_[i] = key;
  ++size_;
  return true;
}

bool e164_set::contains(std::uint64_t key) const noexcept {
  if (slots_.empty() || key == 0) return false;
  return slots_[slot_of(key)] == key;
}

bool e164_set::contains(std::string_view e164) const noexcept {
  const auto key = key_of(e164);
  return key && contains(*key);
}

void e164_set::reserve(std::size_t count) {
  const std::size_t slots = std::bit_ceil(std::max<std::size_t>(64, count * 2));
  if (slots > slots_.size()) grow_to(slots);
}

void e164_set::grow_to(std::size_t slots) {
  std::vector<std::uint64_t> old = std::move(slots_);
  slots_.assign(slots, 0);
  for (std::uint64_t key : old) {
    if (key != 0) slots_[slot_of(key)] = key;
  }
}

}  // namespace dialer::contacts
