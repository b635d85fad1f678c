#include "adapters/http/engine_metrics.hpp"

#include <set>

namespace dialer::http {

prometheus_engine_metrics::prometheus_engine_metrics(prometheus::Registry& registry)
    : calls_(prometheus::BuildCounter().Name("dialer_calls_total").Help("Calls ended, by outcome").Register(registry)),
      claimed_(prometheus::BuildCounter()
                   .Name("dialer_contacts_claimed_total")
                   .Help("Contacts claimed from the database")
                   .Register(registry)
                   .Add({})),
      answer_(prometheus::BuildHistogram()
                  .Name("dialer_carrier_answer_seconds")
                  .Help("From handing an origination to the carrier to its first answer")
                  .Register(registry)
                  .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
                                                                   0.25, 0.5, 1, 2.5, 5, 10})),
      in_flight_(prometheus::BuildGauge()
                     .Name("dialer_number_calls_in_flight")
                     .Help("This engine's calls in flight on each number")
                     .Register(registry)),
      limit_(prometheus::BuildGauge()
                 .Name("dialer_number_max_concurrent_calls")
                 .Help("Each number's limit of calls in flight, across every engine")
                 .Register(registry)),
      hopper_(prometheus::BuildGauge()
                  .Name("dialer_hopper_contacts")
                  .Help("Contacts queued in this engine's scheduler")
                  .Register(registry)
                  .Add({})) {}

void prometheus_engine_metrics::call_ended(call_outcome outcome) noexcept {
  try {
    std::lock_guard lock(mutex_);
    auto& c = by_outcome_[static_cast<int>(outcome)];
    if (!c) c = &calls_.Add({{"outcome", std::string(to_string(outcome))}});
    c->Increment();
  } catch (...) {
  }
}

void prometheus_engine_metrics::contacts_claimed(std::int64_t count) noexcept {
  claimed_.Increment(static_cast<double>(count));
}

void prometheus_engine_metrics::carrier_answered(std::chrono::nanoseconds latency) noexcept {
  answer_.Observe(std::chrono::duration<double>(latency).count());
}

void prometheus_engine_metrics::refresh(const dialing_engine::gauges_now& now) {
  std::lock_guard lock(mutex_);
  hopper_.Set(static_cast<double>(now.hopper));
  std::set<std::string> seen;
  for (const auto& n : now.numbers) {
    seen.insert(n.e164);
    auto& g = numbers_[n.e164];
    if (!g.first) g = {&in_flight_.Add({{"number", n.e164}}), &limit_.Add({{"number", n.e164}})};
    g.first->Set(n.in_flight);
    g.second->Set(n.max_concurrent_calls);
  }
  for (auto it = numbers_.begin(); it != numbers_.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    in_flight_.Remove(it->second.first);
    limit_.Remove(it->second.second);
    it = numbers_.erase(it);
  }
}

}  // namespace dialer::http
