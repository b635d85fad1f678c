#pragma once
// The dialing engine's metrics in Prometheus form (prometheus-cpp core, serialized by /metrics):
//   dialer_calls_total{outcome}                    calls ended, by outcome
//   dialer_contacts_claimed_total                  contacts claimed from the database
//   dialer_carrier_answer_seconds                  origination -> the carrier's first answer (histogram)
//   dialer_number_calls_in_flight{number}          this engine's calls in flight on each number ...
//   dialer_number_max_concurrent_calls{number}     ... against the number's limit (all engines together)
//   dialer_hopper_contacts                         contacts queued in the scheduler
// The counters are fed by the engine as it works; the gauges are refreshed from dialing_engine::gauges() just
// before each scrape.
//
// Threading: the engine_metrics calls from any thread; refresh() from the scraping thread.

#include <map>
#include <mutex>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <string>

#include "engine/dialing/dialing_engine.hpp"
#include "engine/ports/engine_metrics.hpp"

namespace dialer::http {

class prometheus_engine_metrics final : public engine_metrics {
 public:
  explicit prometheus_engine_metrics(prometheus::Registry& registry);

  void call_ended(call_outcome outcome) noexcept override;
  void contacts_claimed(std::int64_t count) noexcept override;
  void carrier_answered(std::chrono::nanoseconds latency) noexcept override;

  void refresh(const dialing_engine::gauges_now& now);

 private:
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Counter& claimed_;
  prometheus::Histogram& answer_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Gauge>& limit_;
  prometheus::Gauge& hopper_;
  std::mutex mutex_;  // guards the counters by outcome and the per-number gauges
  std::map<int, prometheus::Counter*> by_outcome_;
  std::map<std::string, std::pair<prometheus::Gauge*, prometheus::Gauge*>> numbers_;
};

}  // namespace dialer::http
