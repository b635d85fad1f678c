// Calling-window dial-time check: the cached window_checker against the naive path (one
// date::zoned_time conversion per zone per call, rules::open_at), on the same contacts and instants.
//
//   build-rules/bench/bench_rules [--benchmark_filter=...]
//
// Workloads:
//   nanp_mix  1024 contacts whose zones come from random NANP area codes (mostly one zone, some split
//             areas with 2 to 8), time advancing 10 us per check (100 k checks/s): the dispatcher's steady state.
//   us_wide   one contact set to every zone of the US (29 zones): numbers whose zone is unknown.
// After the runs, each contender's rate is printed beside its baseline and the ratio.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/rules/calling_window.hpp"
#include "engine/rules/nanp.hpp"

namespace {

using namespace dialer::rules;
using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::sys_days;
using std::chrono::year;

// Monday 2026-03-02 19:00 UTC: 14:00 in New York, 09:00 in Honolulu, so US-wide checks visit every zone.
const time_point start_instant = sys_days{year{2026} / std::chrono::March / 2} + hours{19};

std::vector<zone_set> nanp_mix_contacts() {
  const auto areas = all_nanp_areas();
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::size_t> pick(0, areas.size() - 1);
  std::vector<zone_set> contacts;
  while (contacts.size() < 1024) {
    const auto& area = areas[pick(rng)];
    auto zones = zones_for_contact("", "+1" + std::to_string(area.npa) + "5550100");
    if (zones) contacts.push_back(std::move(*zones));
  }
  return contacts;
}

template <class Check>
void run(benchmark::State& state, const std::vector<zone_set>& contacts, Check&& check) {
  auto t = start_instant;
  std::size_t i = 0;
  std::size_t open = 0;
  for (auto _ : state) {
    open += check(contacts[i], t) ? 1 : 0;
    i = (i + 1) & (contacts.size() - 1);
    t += microseconds{10};
  }
  benchmark::DoNotOptimize(open);
  state.SetItemsProcessed(state.iterations());
}

void BM_naive_nanp_mix(benchmark::State& state) {
  static const auto contacts = nanp_mix_contacts();
  const auto w = calling_window::us_default();
  run(state, contacts, [&](const zone_set& z, time_point t) { return open_at(w, z, t); });
}

void BM_checker_nanp_mix(benchmark::State& state) {
  static const auto contacts = nanp_mix_contacts();
  window_checker checker(calling_window::us_default());
  run(state, contacts, [&](const zone_set& z, time_point t) { return checker.open_at(z, t); });
}

void BM_naive_us_wide(benchmark::State& state) {
  static const std::vector<zone_set> contacts{zones_of_country("US").value()};
  const auto w = calling_window::us_default();
  run(state, contacts, [&](const zone_set& z, time_point t) { return open_at(w, z, t); });
}

void BM_checker_us_wide(benchmark::State& state) {
  static const std::vector<zone_set> contacts{zones_of_country("US").value()};
  window_checker checker(calling_window::us_default());
  run(state, contacts, [&](const zone_set& z, time_point t) { return checker.open_at(z, t); });
}

// For scale: next_open is what a contact found outside its window pays once (not per check).
void BM_next_open_one_zone_over_weekend(benchmark::State& state) {
  const auto w = calling_window::us_default();
  const zone_set ny{find_zone("America/New_York").value()};
  const time_point friday_night = sys_days{year{2026} / std::chrono::February / 7} + hours{2};
  for (auto _ : state) benchmark::DoNotOptimize(next_open(w, ny, friday_night));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_naive_nanp_mix);
BENCHMARK(BM_checker_nanp_mix);
BENCHMARK(BM_naive_us_wide);
BENCHMARK(BM_checker_us_wide);
BENCHMARK(BM_next_open_one_zone_over_weekend);

// Prints the usual table, then each checker figure beside its naive baseline.
class comparing_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      const auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()] = it->second.value;
    }
  }
  void print_comparison() const {
    std::printf("\n%-12s %18s %18s %8s\n", "workload", "naive (checks/s)", "checker (checks/s)", "ratio");
    for (const char* workload : {"nanp_mix", "us_wide"}) {
      const auto naive = rates_.find(std::string("BM_naive_") + workload);
      const auto checker = rates_.find(std::string("BM_checker_") + workload);
      if (naive == rates_.end() || checker == rates_.end()) continue;
      std::printf("%-12s %18.3e %18.3e %7.1fx\n", workload, naive->second, checker->second,
                  checker->second / naive->second);
    }
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  comparing_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_comparison();
  benchmark::Shutdown();
  return 0;
}
