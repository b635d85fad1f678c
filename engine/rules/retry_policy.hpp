#pragma once
// What happens to a contact after a call attempt: retry later, or stop. Pure rules: no clock, no I/O.
// The engine applies the calling window to retry_at afterwards (a retry that lands at night waits for
// the window, it is not dropped).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/ports/carrier.hpp"
#include "engine/result.hpp"

namespace dialer::rules {

// A contact's lifecycle, stored as text by the contact store (see README.md for who sets each state).
enum class contact_state : std::uint8_t {
  pending,      // waiting for its next attempt (next_attempt_at, and the calling window)
  in_progress,  // claimed: an attempt is being placed or is in flight (stored: pending, in a block an engine holds)
  done,         // terminal: attempts are over; the final outcome says how it ended
  cancelled,    // terminal: the campaign was cancelled before the contact was done
  do_not_call,  // terminal: suppressed by a do-not-call list, never dialed
  invalid,      // terminal: the number cannot be dialed or placed (bad E.164, unknown zone/country,
                // carrier says invalid destination)
};

[[nodiscard]] std::string_view to_string(contact_state s) noexcept;
[[nodiscard]] std::optional<contact_state> parse_contact_state(std::string_view text) noexcept;
[[nodiscard]] constexpr bool is_terminal(contact_state s) noexcept {
  return s != contact_state::pending && s != contact_state::in_progress;
}

struct retry_rule {
  bool retry = false;
  std::chrono::seconds delay{0};
};

struct retry_decision {
  contact_state state = contact_state::done;  // pending (retry) or done
  std::optional<std::chrono::system_clock::time_point> retry_at;  // set exactly when state == pending
  call_outcome outcome = call_outcome::unknown;  // the attempt's outcome: the final outcome when done
  bool exhausted = false;  // done only because max_attempts was reached (the outcome itself was retryable)
};

class retry_policy {
 public:
  // Defaults, per outcome:
  //  busy      retry after 10 min: the line was in use, the person is there and likely free soon.
  //  no_answer retry after 4 h: nobody picked up now; a few hours later lands in another part of the day
  //            (morning -> afternoon -> evening inside an 08:00-21:00 window), which is when a different
  //            answer is likely, and it keeps the call pattern far from harassment.
  //  failed    retry after 30 min: network or carrier trouble, usually transient.
  //  voicemail no retry: a machine answered; redialing a voicemail box rarely reaches the person and
  //            repeated messages annoy. Campaigns that want it opt in.
  //  completed, canceled: terminal. unknown: terminal and never redialed automatically (the call may have
  //            happened; invariant 3).
  //  max_attempts 3.
  retry_policy() = default;

  // Replace the rule of one outcome. errc::invalid_input for a negative or over-366-day delay, and for
  // retrying completed, canceled or unknown.
  [[nodiscard]] result<void> set_rule(call_outcome outcome, retry_rule rule);
  // errc::invalid_input unless 1 <= max <= 100.
  [[nodiscard]] result<void> set_max_attempts(int max);

  [[nodiscard]] retry_rule rule_for(call_outcome outcome) const noexcept;
  [[nodiscard]] int max_attempts() const noexcept { return max_attempts_; }

  // attempts_so_far counts every attempt placed for the contact, including the one that produced
  // `outcome` (so it is >= 1; smaller values are treated as 1). Thread-safe (const), never allocates.
  [[nodiscard]] retry_decision next(call_outcome outcome, int attempts_so_far,
                                    std::chrono::system_clock::time_point now) const noexcept;

 private:
  retry_rule busy_{true, std::chrono::minutes{10}};
  retry_rule no_answer_{true, std::chrono::hours{4}};
  retry_rule failed_{true, std::chrono::minutes{30}};
  retry_rule voicemail_{false, std::chrono::seconds{0}};
  int max_attempts_ = 3;
};

}  // namespace dialer::rules
