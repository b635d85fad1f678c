#pragma once
// A deterministic automaton over the ten ASCII digits, compiled from the regular-expression subset
// that libphonenumber's metadata uses: literals, \d, [classes], (?:groups), alternation and the
// ?, *, +, {n}, {n,}, {n,m} quantifiers. Anything else is rejected at compile time, so a pattern
// either compiles to an automaton with exactly the regex's language or does not compile at all.
//
// Why: libphonenumber (built on ICU regex here) spends ~10 us per pattern match; a table walk over
// ten digits costs tens of nanoseconds, which is what bulk import needs.

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/result.hpp"

namespace dialer::contacts {

class digit_pattern {
 public:
  // Compiles `pattern`. Fails with errc::invalid_input on unsupported syntax, or when the automaton
  // would exceed `max_states` (a guard against pathological patterns; metadata needs far fewer).
  [[nodiscard]] static result<digit_pattern> compile(std::string_view pattern,
                                                     std::size_t max_states = 1 << 16);

  // True when all of `digits` is in the language (ICU matches()). `digits` must hold only '0'-'9'.
  // Thread-safe (immutable), never allocates.
  [[nodiscard]] bool full_match(std::string_view digits) const noexcept;

  // True when some prefix of `digits`, possibly empty, is in the language (ICU lookingAt(), which
  // libphonenumber calls Consume). Thread-safe, never allocates.
  [[nodiscard]] bool prefix_match(std::string_view digits) const noexcept;

  [[nodiscard]] std::size_t state_count() const noexcept { return accepting_.size(); }

 private:
  digit_pattern() = default;
  std::vector<std::int32_t> next_;  // state * 10 + digit -> state, or -1 (no match possible)
  std::vector<std::uint8_t> accepting_;
};

}  // namespace dialer::contacts
