#include "engine/rules/retry_policy.hpp"

#include <array>

namespace dialer::rules {
namespace {

constexpr std::array<std::string_view, 6> state_names{"pending", "in_progress", "done",
                                                      "cancelled", "do_not_call", "invalid"};

// Spelled out here rather than through the carrier port's to_string, so this module stands alone.
constexpr std::string_view outcome_name(call_outcome o) noexcept {
  switch (o) {
    case call_outcome::completed: return "completed";
    case call_outcome::busy: return "busy";
    case call_outcome::no_answer: return "no_answer";
    case call_outcome::failed: return "failed";
    case call_outcome::voicemail: return "voicemail";
    case call_outcome::canceled: return "canceled";
    case call_outcome::unknown: return "unknown";
  }
  return "unknown";
}

}  // namespace

std::string_view to_string(contact_state s) noexcept { return state_names[static_cast<std::size_t>(s)]; }

std::optional<contact_state> parse_contact_state(std::string_view text) noexcept {
  for (std::size_t i = 0; i < state_names.size(); ++i) {
    if (state_names[i] == text) return static_cast<contact_state>(i);
  }
  return std::nullopt;
}

result<void> retry_policy::set_rule(call_outcome outcome, retry_rule rule) {
  constexpr std::chrono::seconds max_delay{std::chrono::days{366}};
  if (rule.delay < std::chrono::seconds{0} || rule.delay > max_delay) {
    return make_error(errc::invalid_input, "retry delay for {} must be between 0s and 366d, got {}s",
                      outcome_name(outcome), rule.delay.count());
  }
  switch (outcome) {
    case call_outcome::busy: busy_ = rule; return ok();
    case call_outcome::no_answer: no_answer_ = rule; return ok();
    case call_outcome::failed: failed_ = rule; return ok();
    case call_outcome::voicemail: voicemail_ = rule; return ok();
    case call_outcome::completed:
    case call_outcome::canceled:
    case call_outcome::unknown:
      if (!rule.retry) return ok();
      return make_error(errc::invalid_input,
                        "outcome {} cannot be retried: {}", outcome_name(outcome),
                        outcome == call_outcome::unknown
                            ? "the call may have taken place, so it is never redialed automatically"
                            : "it ends the contact");
  }
  return make_error(errc::invalid_input, "unknown call outcome");
}

result<void> retry_policy::set_max_attempts(int max) {
  if (max < 1 || max > 100) {
    return make_error(errc::invalid_input, "max_attempts must be between 1 and 100, got {}", max);
  }
  max_attempts_ = max;
  return ok();
}

retry_rule retry_policy::rule_for(call_outcome outcome) const noexcept {
  switch (outcome) {
    case call_outcome::busy: return busy_;
    case call_outcome::no_answer: return no_answer_;
    case call_outcome::failed: return failed_;
    case call_outcome::voicemail: return voicemail_;
    case call_outcome::completed:
    case call_outcome::canceled:
    case call_outcome::unknown: break;
  }
  return retry_rule{};
}

retry_decision retry_policy::next(call_outcome outcome, int attempts_so_far,
                                  std::chrono::system_clock::time_point now) const noexcept {
  const auto rule = rule_for(outcome);
  retry_decision d;
  d.outcome = outcome;
  if (!rule.retry) return d;  // done with this outcome
  if ((attempts_so_far < 1 ? 1 : attempts_so_far) >= max_attempts_) {
    d.exhausted = true;
    return d;
  }
  d.state = contact_state::pending;
  d.retry_at = now + rule.delay;
  return d;
}

}  // namespace dialer::rules
