#pragma once
// Strong identifier types: a campaign_id cannot be passed where a number_id is wanted.
// Ids are database keys (bigserial), so 0 means "none".

#include <compare>
#include <cstdint>
#include <functional>

namespace dialer {

template <class Tag>
class strong_id {
 public:
  constexpr strong_id() noexcept = default;
  constexpr explicit strong_id(std::int64_t value) noexcept : value_(value) {}

  [[nodiscard]] constexpr std::int64_t value() const noexcept { return value_; }
  [[nodiscard]] constexpr bool valid() const noexcept { return value_ > 0; }
  constexpr explicit operator bool() const noexcept { return valid(); }

  friend constexpr auto operator<=>(strong_id, strong_id) noexcept = default;

 private:
  std::int64_t value_ = 0;
};

using account_id = strong_id<struct account_tag>;
using agent_id = strong_id<struct agent_tag>;
using number_id = strong_id<struct number_tag>;
using campaign_id = strong_id<struct campaign_tag>;
using contact_id = strong_id<struct contact_tag>;
using attempt_id = strong_id<struct attempt_tag>;
using carrier_account_id = strong_id<struct carrier_account_tag>;

// An attempt is identified by its contact and its number: its id is derived from both, so the same attempt always
// has the same id (and the same carrier idempotency key, even when a refused origination is tried again), and the
// database needs no sequence and no second unique index to keep an attempt from being recorded twice.
inline constexpr int kMaxAttemptNo = 127;
[[nodiscard]] constexpr attempt_id attempt_of(contact_id contact, int attempt_no) noexcept {
  return attempt_id{contact.value() * (kMaxAttemptNo + 1) + attempt_no};
}

}  // namespace dialer

template <class Tag>
struct std::hash<dialer::strong_id<Tag>> {
  std::size_t operator()(dialer::strong_id<Tag> id) const noexcept {
    return std::hash<std::int64_t>{}(id.value());
  }
};
