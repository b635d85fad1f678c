#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/carriers/simulated/call_plan.hpp"
#include "adapters/carriers/simulated/simulated_carrier.hpp"

namespace dialer::carriers {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Generous: only a real hang reaches it; the events themselves arrive in milliseconds.
constexpr auto await_limit = 60s;

class recording_sink final : public carrier_events {
 public:
  struct refusal {
    attempt_id attempt;
    origination_refusal why;
    std::optional<milliseconds> retry_after;
    std::string detail;
  };

  void on_accepted(attempt_id attempt, std::string_view carrier_call_id) noexcept override {
    std::lock_guard lock(mutex_);
    accepted.emplace_back(attempt, std::string(carrier_call_id));
    cv_.notify_all();
  }
  void on_refused(attempt_id attempt, origination_refusal why, std::optional<milliseconds> retry_after,
                  std::string_view detail) noexcept override {
    std::lock_guard lock(mutex_);
    refusals.push_back(refusal{attempt, why, retry_after, std::string(detail)});
    cv_.notify_all();
  }
  void on_outcome(const call_event& event) noexcept override {
    std::lock_guard lock(mutex_);
    outcomes.push_back(event);
    outcome_threads.push_back(std::this_thread::get_id());
    cv_.notify_all();
  }

  bool await(const std::function<bool()>& done) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, await_limit, done);
  }
  bool await_accepted(std::size_t n) {
    return await([&] { return accepted.size() >= n; });
  }
  bool await_outcomes(std::size_t n) {
    return await([&] { return outcomes.size() >= n; });
  }
  bool await_refusals(std::size_t n) {
    return await([&] { return refusals.size() >= n; });
  }

  // Read only after the events have been awaited or the carrier drained.
  std::vector<std::pair<attempt_id, std::string>> accepted;
  std::vector<refusal> refusals;
  std::vector<call_event> outcomes;
  std::vector<std::thread::id> outcome_threads;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
};

origination_request request(std::int64_t attempt, std::string key = {}) {
  origination_request r;
  r.attempt = attempt_id{attempt};
  r.from_e164 = "+14155550100";
  r.to_e164 = "+12125550142";
  r.idempotency_key = key.empty() ? fmt::format("attempt-{}", attempt) : std::move(key);
  return r;
}

std::vector<origination_request> requests(std::int64_t first, std::int64_t count) {
  std::vector<origination_request> all;
  for (std::int64_t i = first; i < first + count; ++i) all.push_back(request(i));
  return all;
}

simulated_carrier_settings instant_settings() {
  simulated_carrier_settings s;
  s.instant = true;
  return s;
}

// Always answered, so a test controls exactly when the answer and the hang-up happen.
simulated_carrier_settings answered_settings(milliseconds ring, milliseconds talk) {
  simulated_carrier_settings s;
  s.busy_rate = s.no_answer_rate = s.failed_rate = s.voicemail_rate = 0;
  s.ring_mean = ring;
  s.ring_spread = 0ms;
  s.no_answer_after = std::max(ring, milliseconds(1));
  s.talk = talk_distribution::exponential;
  s.talk_mean = talk;
  s.talk_max = std::max(talk * 1000, milliseconds(1));
  return s;
}

struct summary {
  call_outcome outcome;
  std::optional<milliseconds> answered_after;
  milliseconds billable;
  milliseconds length;
  bool operator==(const summary&) const = default;
};

summary summarize(const call_event& e) {
  std::optional<milliseconds> answered;
  if (e.answered_at) answered = std::chrono::duration_cast<milliseconds>(*e.answered_at - e.started_at);
  return summary{e.outcome, answered, e.billable,
                 std::chrono::duration_cast<milliseconds>(e.ended_at - e.started_at)};
}

std::map<std::int64_t, summary> by_attempt(const std::vector<call_event>& events) {
  std::map<std::int64_t, summary> m;
  for (const auto& e : events) m.emplace(e.attempt.value(), summarize(e));
  return m;
}

TEST(CarrierPort, OutcomesAndRefusalsRoundTripThroughTheirNames) {
  for (auto o : {call_outcome::completed, call_outcome::busy, call_outcome::no_answer, call_outcome::failed,
                 call_outcome::voicemail, call_outcome::canceled, call_outcome::unknown}) {
    EXPECT_EQ(parse_call_outcome(to_string(o)), o);
  }
  for (auto r : {origination_refusal::throttled, origination_refusal::number_unusable,
                 origination_refusal::invalid_destination, origination_refusal::not_placed,
                 origination_refusal::indeterminate}) {
    EXPECT_EQ(parse_origination_refusal(to_string(r)), r);
  }
  EXPECT_EQ(parse_call_outcome("no-answer"), call_outcome::no_answer);  // Twilio's spelling
  EXPECT_EQ(parse_call_outcome("answered"), call_outcome::completed);
  EXPECT_EQ(parse_call_outcome("ringing"), std::nullopt);
  EXPECT_EQ(parse_origination_refusal("busy"), std::nullopt);
}

TEST(SimulatedCarrier, OutcomeRatesAndMeanDurationsConvergeToTheDefaults) {
  manual_clock clock;
  simulated_carrier carrier(instant_settings(), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  const auto all = requests(1, 20'000);
  carrier.originate(all);
  ASSERT_EQ(sink.outcomes.size(), all.size());

  std::map<call_outcome, int> counts;
  double ring_ms = 0, talk_ms = 0;
  int answered = 0;
  for (const auto& e : sink.outcomes) {
    ++counts[e.outcome];
    if (e.outcome == call_outcome::completed) {
      ++answered;
      ring_ms += static_cast<double>((*e.answered_at - e.started_at) / 1ms);
      talk_ms += static_cast<double>(e.billable.count());
    }
  }
  auto rate = [&](call_outcome o) { return counts[o] / 20'000.0; };
  EXPECT_NEAR(rate(call_outcome::completed), 0.55, 0.015);
  EXPECT_NEAR(rate(call_outcome::busy), 0.10, 0.015);
  EXPECT_NEAR(rate(call_outcome::no_answer), 0.20, 0.015);
  EXPECT_NEAR(rate(call_outcome::failed), 0.05, 0.015);
  EXPECT_NEAR(rate(call_outcome::voicemail), 0.10, 0.015);
  EXPECT_NEAR(ring_ms / answered, 8'000, 300);
  EXPECT_NEAR(talk_ms / answered, 45'000, 4'500);
}

TEST(SimulatedCarrier, ExponentialTalkTimeHasTheConfiguredMeanAndCap) {
  manual_clock clock;
  auto s = instant_settings();
  s.talk = talk_distribution::exponential;
  s.talk_max = 120s;
  simulated_carrier carrier(s, clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 20'000));
  double talk_ms = 0;
  int answered = 0;
  for (const auto& e : sink.outcomes) {
    if (e.outcome != call_outcome::completed) continue;
    ++answered;
    talk_ms += static_cast<double>(e.billable.count());
    EXPECT_LE(e.billable, 120s);
  }
  // exp(45 s) capped at 120 s has mean 45 (1 - e^(-120/45)) = 41.9 s.
  EXPECT_NEAR(talk_ms / answered, 41'900, 2'000);
}

TEST(SimulatedCarrier, SameSeedAndKeyGiveSameOutcomeAcrossInstancesAndThreads) {
  const auto all = requests(1, 4'000);
  manual_clock clock;
  recording_sink serial_sink;
  simulated_carrier serial(instant_settings(), clock);
  serial.set_events(&serial_sink);
  serial.originate(all);

  recording_sink parallel_sink;
  simulated_carrier parallel(instant_settings(), clock);
  parallel.set_events(&parallel_sink);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {  // interleave: each thread takes every fourth request, one at a time
      for (std::size_t i = static_cast<std::size_t>(t); i < all.size(); i += 4)
        parallel.originate({&all[i], 1});
    });
  }
  for (auto& t : threads) t.join();

  ASSERT_EQ(serial_sink.outcomes.size(), all.size());
  ASSERT_EQ(parallel_sink.outcomes.size(), all.size());
  EXPECT_EQ(by_attempt(serial_sink.outcomes), by_attempt(parallel_sink.outcomes));
}

TEST(SimulatedCarrier, DifferentSeedsGiveDifferentOutcomes) {
  auto other = instant_settings();
  other.seed = 2;
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    auto key = hash_idempotency_key(fmt::format("attempt-{}", i));
    differ += plan_call(instant_settings(), key).total() != plan_call(other, key).total();
  }
  EXPECT_GT(differ, 50);
}

TEST(SimulatedCarrier, InstantModeDeliversEveryOutcomeExactlyOnceOnTheCallersThread) {
  manual_clock clock;
  simulated_carrier carrier(instant_settings(), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  std::vector<std::thread> threads;
  std::vector<std::thread::id> ids(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ids[static_cast<std::size_t>(t)] = std::this_thread::get_id();
      const auto mine = requests(1 + t * 5'000, 5'000);
      for (std::size_t i = 0; i < mine.size(); i += 100) carrier.originate(std::span(mine).subspan(i, 100));
    });
  }
  for (auto& t : threads) t.join();

  ASSERT_EQ(sink.outcomes.size(), 20'000u);
  EXPECT_EQ(sink.accepted.size(), 20'000u);
  std::map<std::int64_t, int> seen;
  for (const auto& e : sink.outcomes) ++seen[e.attempt.value()];
  EXPECT_EQ(seen.size(), 20'000u);
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](const auto& kv) { return kv.second == 1; }));
  for (std::size_t i = 0; i < sink.outcomes.size(); ++i) {
    const auto thread = static_cast<std::size_t>((sink.outcomes[i].attempt.value() - 1) / 5'000);
    ASSERT_EQ(sink.outcome_threads[i], ids[thread]);
  }
  EXPECT_EQ(carrier.statistics().outcomes, 20'000u);
}

TEST(SimulatedCarrier, TimedModeWaitsForTheClockBeforeReportingAnOutcome) {
  manual_clock clock;
  simulated_carrier carrier(answered_settings(5s, 30s), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 1));
  ASSERT_TRUE(sink.await_accepted(1));
  // The worker has taken the request in; with the clock standing still nothing can be due.
  EXPECT_TRUE(sink.outcomes.empty());

  const auto plan = plan_call(carrier.settings(), hash_idempotency_key("attempt-1"));
  clock.advance(plan.total());
  carrier.wake();
  ASSERT_TRUE(sink.await_outcomes(1));
  EXPECT_EQ(sink.outcomes[0].outcome, call_outcome::completed);
  EXPECT_EQ(sink.outcomes[0].billable, plan.talk);
  EXPECT_EQ(sink.outcomes[0].carrier_call_id, sink.accepted[0].second);
}

TEST(SimulatedCarrier, TimeAccelerationReportsSimulatedDurationsAfterTheScaledDelay) {
  system_clock clock;
  auto s = answered_settings(8s, 45s);
  s.time_acceleration = 1000;  // a 53 s call takes about 53 ms
  simulated_carrier carrier(s, clock);
  recording_sink sink;
  carrier.set_events(&sink);
  const auto all = requests(1, 20);
  const auto before = std::chrono::steady_clock::now();
  carrier.originate(all);
  ASSERT_TRUE(sink.await_outcomes(all.size()));
  const auto real_elapsed = std::chrono::steady_clock::now() - before;

  milliseconds longest{0};
  for (const auto& e : sink.outcomes) {
    const auto plan = plan_call(s, hash_idempotency_key(fmt::format("attempt-{}", e.attempt.value())));
    EXPECT_EQ(summarize(e).length, plan.total());
    EXPECT_EQ(e.billable, plan.talk);
    EXPECT_EQ(*summarize(e).answered_after, 8s);
    longest = std::max(longest, plan.total());
  }
  // A timer never fires early, so the real wait is at least the longest call divided by the factor.
  EXPECT_GE(real_elapsed, longest / 1000);
}

TEST(SimulatedCarrier, CancelBeforeAnswerEndsTheCallCanceled) {
  manual_clock clock;
  simulated_carrier carrier(answered_settings(1h, 30s), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(7, 1));
  ASSERT_TRUE(sink.await_accepted(1));
  clock.advance(10s);
  carrier.cancel(attempt_id{7});
  ASSERT_TRUE(sink.await_outcomes(1));
  const auto& e = sink.outcomes[0];
  EXPECT_EQ(e.outcome, call_outcome::canceled);
  EXPECT_FALSE(e.answered_at.has_value());
  EXPECT_EQ(e.billable, 0ms);
  EXPECT_EQ(e.ended_at - e.started_at, 10s);
}

TEST(SimulatedCarrier, CancelAfterAnswerCompletesWithTheTalkTimeSoFar) {
  manual_clock clock;
  simulated_carrier carrier(answered_settings(5s, 1h), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(7, 1));
  ASSERT_TRUE(sink.await_accepted(1));
  ASSERT_GT(plan_call(carrier.settings(), hash_idempotency_key("attempt-7")).talk, 60s);
  clock.advance(65s);
  carrier.cancel(attempt_id{7});
  ASSERT_TRUE(sink.await_outcomes(1));
  const auto& e = sink.outcomes[0];
  EXPECT_EQ(e.outcome, call_outcome::completed);
  ASSERT_TRUE(e.answered_at.has_value());
  EXPECT_EQ(*e.answered_at - e.started_at, 5s);
  EXPECT_EQ(e.billable, 60s);
  EXPECT_EQ(e.ended_at - e.started_at, 65s);
}

TEST(SimulatedCarrier, CancelOfAnUnknownAttemptIsIgnored) {
  manual_clock clock;
  simulated_carrier carrier(answered_settings(5s, 10s), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.cancel(attempt_id{99});
  carrier.originate(requests(1, 1));
  ASSERT_TRUE(sink.await_accepted(1));  // started before the clock moves, so it ends within the hour
  clock.advance(1h);
  carrier.wake();
  carrier.drain(await_limit);
  ASSERT_EQ(sink.outcomes.size(), 1u);
  EXPECT_EQ(sink.outcomes[0].outcome, call_outcome::completed);
}

TEST(SimulatedCarrier, SameAttemptOriginatedTwiceIsPlacedOnceAndCounted) {
  manual_clock clock;
  simulated_carrier carrier(answered_settings(5s, 10s), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  const auto r = requests(3, 1);
  carrier.originate(r);
  carrier.originate(r);
  ASSERT_TRUE(sink.await_accepted(1));
  clock.advance(1h);
  carrier.wake();
  carrier.drain(await_limit);
  EXPECT_EQ(sink.accepted.size(), 1u);
  EXPECT_EQ(sink.outcomes.size(), 1u);
  EXPECT_TRUE(sink.refusals.empty());
  EXPECT_EQ(carrier.statistics().duplicates_ignored, 1u);
}

TEST(SimulatedCarrier, SameKeyUnderAnotherAttemptIsRefusedAsDuplicate) {
  manual_clock clock;
  simulated_carrier carrier(instant_settings(), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  std::vector<origination_request> twice{request(1, "key-1"), request(2, "key-1")};
  carrier.originate(twice);
  ASSERT_EQ(sink.outcomes.size(), 1u);
  ASSERT_EQ(sink.refusals.size(), 1u);
  EXPECT_EQ(sink.refusals[0].attempt, attempt_id{2});
  EXPECT_EQ(sink.refusals[0].why, origination_refusal::not_placed);
  EXPECT_NE(sink.refusals[0].detail.find("duplicate idempotency key"), std::string::npos);
}

TEST(SimulatedCarrier, FinishedKeyIsStillRecognisedWithinTheDedupWindow) {
  manual_clock clock;
  simulated_carrier carrier(instant_settings(), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 1000));
  carrier.originate(requests(1, 1));
  EXPECT_EQ(sink.outcomes.size(), 1000u);
  EXPECT_EQ(carrier.statistics().duplicates_ignored, 1u);
}

TEST(SimulatedCarrier, UnverifiedCallerIdIsRefusedAsNumberUnusable) {
  manual_clock clock;
  auto s = instant_settings();
  s.unverified_caller_ids = {"+14155550100"};
  simulated_carrier carrier(s, clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 1));
  ASSERT_EQ(sink.refusals.size(), 1u);
  EXPECT_TRUE(sink.outcomes.empty());
  EXPECT_EQ(sink.refusals[0].why, origination_refusal::number_unusable);
  EXPECT_EQ(sink.refusals[0].detail, "caller ID +14155550100 is not verified");
}

TEST(SimulatedCarrier, BlockedPrefixAndMalformedDestinationAreInvalidDestinations) {
  manual_clock clock;
  auto s = answered_settings(1s, 1s);
  s.invalid_destination_prefixes = {"+1212"};
  simulated_carrier carrier(s, clock);  // timed: refusals come from the worker
  recording_sink sink;
  carrier.set_events(&sink);
  auto blocked = request(1);
  auto malformed = request(2);
  malformed.to_e164 = "212-555-0142";
  carrier.originate(std::vector{blocked, malformed});
  ASSERT_TRUE(sink.await_refusals(2));
  EXPECT_EQ(sink.refusals[0].why, origination_refusal::invalid_destination);
  EXPECT_NE(sink.refusals[0].detail.find("prefix +1212"), std::string::npos);
  EXPECT_EQ(sink.refusals[1].why, origination_refusal::invalid_destination);
  EXPECT_NE(sink.refusals[1].detail.find("not an E.164 number"), std::string::npos);
}

TEST(SimulatedCarrier, ThrottleRefusesAboveTheRateWithRetryAfter) {
  manual_clock clock;
  auto s = instant_settings();
  s.throttle_cps = 2;
  simulated_carrier carrier(s, clock);
  recording_sink sink;
  carrier.set_events(&sink);
  EXPECT_EQ(carrier.account_cps(), 2.0);
  carrier.originate(requests(1, 3));
  EXPECT_EQ(sink.outcomes.size(), 2u);
  ASSERT_EQ(sink.refusals.size(), 1u);
  EXPECT_EQ(sink.refusals[0].attempt, attempt_id{3});
  EXPECT_EQ(sink.refusals[0].why, origination_refusal::throttled);
  EXPECT_EQ(sink.refusals[0].retry_after, std::optional<milliseconds>(500ms));

  clock.advance(500ms);  // one token back: the retried attempt goes through
  carrier.originate(requests(3, 1));
  EXPECT_EQ(sink.outcomes.size(), 3u);
  EXPECT_EQ(sink.refusals.size(), 1u);
}

TEST(SimulatedCarrier, AccountCpsIsUnlimitedUnlessConfigured) {
  manual_clock clock;
  EXPECT_EQ(simulated_carrier(instant_settings(), clock).account_cps(), unlimited_cps);
  auto s = instant_settings();
  s.account_cps = 30;
  EXPECT_EQ(simulated_carrier(s, clock).account_cps(), 30.0);
}

TEST(SimulatedCarrier, LookupAfterACrashRecomputesTheOutcome) {
  manual_clock clock;
  const auto s = answered_settings(5s, 30s);
  std::string call_id;
  {
    simulated_carrier crashed(s, clock);
    recording_sink sink;
    crashed.set_events(&sink);
    crashed.originate(requests(11, 1));
    ASSERT_TRUE(sink.await_accepted(1));
    call_id = sink.accepted[0].second;
  }  // destroyed with the call in flight: no outcome was ever reported

  simulated_carrier restarted(s, clock);
  auto early = restarted.lookup(attempt_id{11}, call_id);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, errc::unavailable);

  const auto plan = plan_call(s, hash_idempotency_key("attempt-11"));
  clock.advance(plan.total());
  auto found = restarted.lookup(attempt_id{11}, call_id);
  ASSERT_TRUE(found);
  ASSERT_TRUE(found->has_value());
  const call_event& e = **found;
  EXPECT_EQ(e.attempt, attempt_id{11});
  EXPECT_EQ(e.carrier_call_id, call_id);

  // The same as the instant carrier reports for that key, which never ran in the crashed process.
  auto instant_settings_same = s;
  instant_settings_same.instant = true;
  simulated_carrier reference(instant_settings_same, clock);
  recording_sink reference_sink;
  reference.set_events(&reference_sink);
  reference.originate(requests(11, 1));
  ASSERT_EQ(reference_sink.outcomes.size(), 1u);
  EXPECT_EQ(summarize(e), summarize(reference_sink.outcomes[0]));
}

TEST(SimulatedCarrier, LookupWithoutACallIdCannotTellAndAForeignIdIsRejected) {
  manual_clock clock;
  simulated_carrier carrier(instant_settings(), clock);
  auto none = carrier.lookup(attempt_id{1}, "");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  auto foreign = carrier.lookup(attempt_id{1}, "CA1234567890abcdef");
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, errc::invalid_input);
}

TEST(SimulatedCarrier, DrainWaitsForEveryInFlightCallThenRefusesNewWork) {
  system_clock clock;
  auto s = simulated_carrier_settings{};
  s.time_acceleration = 10'000;
  simulated_carrier carrier(s, clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 200));
  carrier.drain(await_limit);
  EXPECT_EQ(sink.outcomes.size(), 200u);  // no waiting here: drain returned only after they all reported

  carrier.originate(requests(201, 1));
  ASSERT_TRUE(sink.await_refusals(1));
  EXPECT_EQ(sink.refusals[0].why, origination_refusal::not_placed);
  EXPECT_NE(sink.refusals[0].detail.find("draining"), std::string::npos);
}

TEST(SimulatedCarrier, DrainGivesUpAtTheDeadline) {
  manual_clock clock;  // moved only to 1 s: the call cannot end
  simulated_carrier carrier(answered_settings(5s, 10s), clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 1));
  // The deadline is in the clock's time: the drain runs as a participant while the test moves time to 1 s, long
  // before the call's earliest end (5 s).
  std::atomic<bool> returned{false};
  std::thread drainer([&] {
    const dialer::clock::participant in_time(clock);
    carrier.drain(20ms);
    returned = true;
  });
  const auto start = clock.monotonic();
  while (clock.participants() < 2) std::this_thread::yield();  // the carrier's worker and the drainer
  ASSERT_TRUE(clock.run_until(start + 1s));
  drainer.join();
  EXPECT_TRUE(returned.load());
  EXPECT_TRUE(sink.outcomes.empty());
}

TEST(SimulatedCarrier, DestructionWithCallsInFlightJoinsCleanly) {
  system_clock clock;
  auto carrier = std::make_unique<simulated_carrier>(answered_settings(1h, 1h), clock);
  recording_sink sink;
  carrier->set_events(&sink);
  carrier->originate(requests(1, 50));
  ASSERT_TRUE(sink.await_accepted(50));
  carrier.reset();
  EXPECT_TRUE(sink.outcomes.empty());
}

TEST(SimulatedCarrierSettings, NullGivesTheDemoDefaults) {
  auto s = parse_simulated_carrier_settings(nlohmann::json());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->busy_rate, 0.10);
  EXPECT_EQ(s->no_answer_rate, 0.20);
  EXPECT_EQ(s->failed_rate, 0.05);
  EXPECT_EQ(s->voicemail_rate, 0.10);
  EXPECT_EQ(s->ring_mean, 8s);
  EXPECT_EQ(s->talk_mean, 45s);
  EXPECT_FALSE(s->instant);
}

TEST(SimulatedCarrierSettings, ReadsEveryFieldIncludingYamlStyleStrings) {
  auto json = nlohmann::json::parse(R"({
    "seed": "42", "mode": "instant", "time_acceleration": "60", "account_cps": 1, "dedup_window": 10,
    "rates": {"busy": 0.2, "no_answer": "0.1", "failed": 0, "voicemail": 0.05},
    "ring": {"distribution": "normal", "mean": "6s", "spread": 1.5, "no_answer_after": "45s", "busy_after": "500ms"},
    "talk": {"distribution": "exponential", "mean": "2m", "sigma": 1, "max": "1h", "voicemail_mean": 20},
    "faults": {"unverified_caller_ids": ["+14155550100"], "invalid_destination_prefixes": ["+1900"], "throttle_cps": 5}
  })");
  auto s = parse_simulated_carrier_settings(json);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->seed, 42u);
  EXPECT_TRUE(s->instant);
  EXPECT_EQ(s->time_acceleration, 60.0);
  EXPECT_EQ(s->no_answer_rate, 0.1);
  EXPECT_EQ(s->ring, ring_distribution::normal);
  EXPECT_EQ(s->ring_mean, 6s);
  EXPECT_EQ(s->ring_spread, 1500ms);
  EXPECT_EQ(s->busy_after, 500ms);
  EXPECT_EQ(s->talk, talk_distribution::exponential);
  EXPECT_EQ(s->talk_mean, 2min);
  EXPECT_EQ(s->talk_max, 1h);
  EXPECT_EQ(s->voicemail_mean, 20s);
  EXPECT_EQ(s->unverified_caller_ids, std::vector<std::string>{"+14155550100"});
  EXPECT_EQ(s->throttle_cps, 5.0);
  EXPECT_EQ(s->dedup_window, 10u);
}

std::string error_of(const char* json_text) {
  auto s = parse_simulated_carrier_settings(nlohmann::json::parse(json_text));
  EXPECT_FALSE(s);
  if (s) return {};
  EXPECT_EQ(s.error().code, errc::invalid_input);
  return s.error().message;
}

TEST(SimulatedCarrierSettings, RateOutsideZeroToOneNamesTheField) {
  EXPECT_EQ(error_of(R"({"rates": {"busy": 1.5}})"),
            "simulated carrier: setting 'rates.busy' must be a number in [0, 1] (answered is the remainder), "
            "got 1.5");
}

TEST(SimulatedCarrierSettings, RatesSummingAboveOneAreRejected) {
  EXPECT_EQ(error_of(R"({"rates": {"busy": 0.5, "no_answer": 0.4, "failed": 0.2, "voicemail": 0.1}})"),
            "simulated carrier: rates must sum to at most 1 (the remainder is answered), got busy 0.5 + "
            "no_answer 0.4 "
            "+ failed 0.2 + voicemail 0.1 = 1.2");
}

TEST(SimulatedCarrierSettings, BadDurationSaysWhatFormIsExpected) {
  EXPECT_EQ(
      error_of(R"({"ring": {"mean": "8 parsecs"}})"),
      "simulated carrier: setting 'ring.mean' must be a duration: seconds as a number, or \"500ms\", \"8s\", "
      "\"2m\", \"1h\", got \"8 parsecs\"");
}

TEST(SimulatedCarrierSettings, UnknownKeyListsTheKnownOnes) {
  EXPECT_EQ(error_of(R"({"rates": {"bussy": 0.1}})"),
            "simulated carrier: unknown setting 'rates.bussy'; known settings under 'rates': busy, "
            "no_answer, failed, "
            "voicemail");
}

TEST(SimulatedCarrierSettings, OtherInvalidFieldsAreNamed) {
  EXPECT_NE(error_of(R"({"mode": "fast"})").find("'mode' must be one of \"timed\" \"instant\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"time_acceleration": 0})").find("'time_acceleration'"), std::string::npos);
  EXPECT_NE(error_of(R"({"seed": -1})").find("'seed' must be a non-negative integer"), std::string::npos);
  EXPECT_NE(error_of(R"({"ring": {"mean": "2s", "spread": "3s"}})").find("'ring.spread'"), std::string::npos);
  EXPECT_NE(error_of(R"({"talk": {"mean": "2m", "max": "1m"}})").find("'talk.max'"), std::string::npos);
  EXPECT_NE(error_of(R"({"faults": {"unverified_caller_ids": ["4155550100"]}})").find("E.164"),
            std::string::npos);
  EXPECT_NE(error_of(R"([1, 2])").find("must be a mapping"), std::string::npos);
}

TEST(SimulatedCarrierSettings, ConstructorRejectsInvalidSettings) {
  manual_clock clock;
  simulated_carrier_settings s;
  s.busy_rate = -0.1;
  EXPECT_THROW(simulated_carrier(s, clock), dialer_exception);
}

}  // namespace
}  // namespace dialer::carriers

namespace dialer::carriers {
namespace {

// The two ways an origination fails without an outcome. not_placed: nothing was placed. indeterminate: the answer
// was lost; of those, the calls chosen by the key were placed all the same (they run and report their outcome,
// and lookup() finds them by attempt), the others were not (lookup() says there is no such call).
TEST(SimulatedCarrierFaults, IndeterminateAnswersAreFoundOrDeniedByLookup) {
  system_clock clock;
  auto s = answered_settings(10ms, 50ms);
  s.time_acceleration = 1000;
  s.indeterminate_rate = 1.0;
  simulated_carrier carrier(s, clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 40));
  ASSERT_TRUE(sink.await_refusals(40));
  std::size_t found = 0, denied = 0;
  for (const auto& r : sink.refusals) {
    EXPECT_EQ(r.why, origination_refusal::indeterminate);
    auto l = carrier.lookup(r.attempt, "");
    while (!l && l.error().code == errc::unavailable) l = carrier.lookup(r.attempt, "");  // still talking
    ASSERT_TRUE(l) << l.error().message;
    if (l->has_value()) ++found;
    else ++denied;
  }
  EXPECT_GT(found, 0u);
  EXPECT_GT(denied, 0u);
  // Every call that was placed reports its outcome; the others report nothing more.
  ASSERT_TRUE(sink.await_outcomes(found));
  carrier.drain(5000ms);
  EXPECT_EQ(sink.outcomes.size(), found);
  EXPECT_TRUE(sink.accepted.empty());
}

TEST(SimulatedCarrierFaults, NotPlacedRefusesEverythingAndPlacesNothing) {
  system_clock clock;
  auto s = answered_settings(10ms, 50ms);
  s.not_placed_rate = 1.0;
  simulated_carrier carrier(s, clock);
  recording_sink sink;
  carrier.set_events(&sink);
  carrier.originate(requests(1, 10));
  ASSERT_TRUE(sink.await_refusals(10));
  for (const auto& r : sink.refusals) {
    EXPECT_EQ(r.why, origination_refusal::not_placed);
    auto l = carrier.lookup(r.attempt, "");
    ASSERT_TRUE(l);
    EXPECT_FALSE(l->has_value());
  }
  EXPECT_TRUE(sink.accepted.empty());
}

TEST(SimulatedCarrierFaults, RatesAreValidatedTogether) {
  auto bad = parse_simulated_carrier_settings(nlohmann::json::parse(
      R"({"faults": {"not_placed_rate": 0.7, "indeterminate_rate": 0.5}})"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("indeterminate_rate"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace dialer::carriers
