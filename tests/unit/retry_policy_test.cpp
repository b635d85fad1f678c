// The retry policy: what each call outcome does to a contact, and the max-attempts cap.

#include <gtest/gtest.h>

#include <chrono>

#include "engine/rules/retry_policy.hpp"

namespace dialer::rules {
namespace {

using namespace std::chrono_literals;

const std::chrono::system_clock::time_point now{std::chrono::sys_days{std::chrono::year{2026} / 3 / 2} + 15h};

void expect_retry_after(const retry_decision& d, std::chrono::seconds delay) {
  EXPECT_EQ(d.state, contact_state::pending);
  ASSERT_TRUE(d.retry_at.has_value());
  EXPECT_EQ(*d.retry_at, now + delay);
  EXPECT_FALSE(d.exhausted);
}

void expect_done(const retry_decision& d, call_outcome outcome, bool exhausted) {
  EXPECT_EQ(d.state, contact_state::done);
  EXPECT_FALSE(d.retry_at.has_value());
  EXPECT_EQ(d.outcome, outcome);
  EXPECT_EQ(d.exhausted, exhausted);
}

TEST(retry_policy, busy_retries_after_ten_minutes) {
  expect_retry_after(retry_policy{}.next(call_outcome::busy, 1, now), 10min);
}

TEST(retry_policy, no_answer_retries_after_four_hours) {
  expect_retry_after(retry_policy{}.next(call_outcome::no_answer, 1, now), 4h);
}

TEST(retry_policy, failed_retries_after_thirty_minutes) {
  expect_retry_after(retry_policy{}.next(call_outcome::failed, 2, now), 30min);
}

TEST(retry_policy, voicemail_is_not_retried_by_default) {
  expect_done(retry_policy{}.next(call_outcome::voicemail, 1, now), call_outcome::voicemail, false);
}

TEST(retry_policy, completed_and_canceled_are_terminal) {
  expect_done(retry_policy{}.next(call_outcome::completed, 1, now), call_outcome::completed, false);
  expect_done(retry_policy{}.next(call_outcome::canceled, 1, now), call_outcome::canceled, false);
}

TEST(retry_policy, unknown_is_terminal_and_never_redialed) {
  expect_done(retry_policy{}.next(call_outcome::unknown, 1, now), call_outcome::unknown, false);
  retry_policy policy;
  const auto r = policy.set_rule(call_outcome::unknown, {true, 1h});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::invalid_input);
  EXPECT_NE(r.error().message.find("never redialed"), std::string::npos);
  expect_done(policy.next(call_outcome::unknown, 1, now), call_outcome::unknown, false);
}

TEST(retry_policy, completed_and_canceled_cannot_be_made_retryable) {
  retry_policy policy;
  EXPECT_EQ(policy.set_rule(call_outcome::completed, {true, 1h}).error().code, errc::invalid_input);
  EXPECT_EQ(policy.set_rule(call_outcome::canceled, {true, 1h}).error().code, errc::invalid_input);
  EXPECT_TRUE(policy.set_rule(call_outcome::completed, {false, 0s}).has_value());
}

TEST(retry_policy, max_attempts_caps_retries_and_marks_the_contact_exhausted) {
  const retry_policy policy;  // max 3
  expect_retry_after(policy.next(call_outcome::busy, 2, now), 10min);
  expect_done(policy.next(call_outcome::busy, 3, now), call_outcome::busy, true);
  expect_done(policy.next(call_outcome::no_answer, 7, now), call_outcome::no_answer, true);
}

TEST(retry_policy, a_single_attempt_policy_never_retries) {
  retry_policy policy;
  ASSERT_TRUE(policy.set_max_attempts(1).has_value());
  expect_done(policy.next(call_outcome::busy, 1, now), call_outcome::busy, true);
}

TEST(retry_policy, attempts_below_one_count_as_the_first_attempt) {
  retry_policy policy;
  ASSERT_TRUE(policy.set_max_attempts(1).has_value());
  expect_done(policy.next(call_outcome::busy, 0, now), call_outcome::busy, true);
}

TEST(retry_policy, rules_can_be_overridden_per_outcome) {
  retry_policy policy;
  ASSERT_TRUE(policy.set_rule(call_outcome::voicemail, {true, 24h}).has_value());
  ASSERT_TRUE(policy.set_rule(call_outcome::busy, {false, 0s}).has_value());
  expect_retry_after(policy.next(call_outcome::voicemail, 1, now), 24h);
  expect_done(policy.next(call_outcome::busy, 1, now), call_outcome::busy, false);
  EXPECT_EQ(policy.rule_for(call_outcome::voicemail).delay, 24h);
}

TEST(retry_policy, invalid_settings_are_rejected) {
  retry_policy policy;
  EXPECT_EQ(policy.set_rule(call_outcome::busy, {true, -1s}).error().code, errc::invalid_input);
  EXPECT_EQ(policy.set_rule(call_outcome::busy, {true, std::chrono::hours{24 * 400}}).error().code,
            errc::invalid_input);
  EXPECT_EQ(policy.set_max_attempts(0).error().code, errc::invalid_input);
  EXPECT_EQ(policy.set_max_attempts(101).error().code, errc::invalid_input);
  EXPECT_EQ(policy.max_attempts(), 3);
}

TEST(contact_state, names_round_trip_and_terminal_states_are_known) {
  for (auto s : {contact_state::pending, contact_state::in_progress, contact_state::done, contact_state::cancelled,
                 contact_state::do_not_call, contact_state::invalid}) {
    EXPECT_EQ(parse_contact_state(to_string(s)), s);
  }
  EXPECT_FALSE(parse_contact_state("exhausted").has_value());
  EXPECT_FALSE(is_terminal(contact_state::pending));
  EXPECT_FALSE(is_terminal(contact_state::in_progress));
  EXPECT_TRUE(is_terminal(contact_state::done));
  EXPECT_TRUE(is_terminal(contact_state::do_not_call));
}

}  // namespace
}  // namespace dialer::rules
