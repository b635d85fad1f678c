#include "engine/dialing/engine_context.hpp"

#include <fmt/format.h>

namespace dialer::dialing {

namespace {

sched::scheduler_options scheduler_options_for(const engine_options& o) {
  sched::scheduler_options s;
  s.hopper_capacity = o.hopper_capacity;
  s.campaign_quantum = 32;
  s.spin_before_sleep = 512;
#ifdef NDEBUG
  s.abort_on_double_release = false;
#else
  s.abort_on_double_release = true;
#endif
  return s;
}

// Every setting of a window that changes its answers.
std::string window_key(const rules::calling_window& w) {
  std::string key = fmt::format("{}-{}-{}-{}", w.start().count(), w.end().count(), static_cast<int>(w.days()),
                                w.holidays().us_federal ? 1 : 0);
  for (const auto& d : w.holidays().extra_dates)
    key += fmt::format(":{}", std::chrono::sys_days(d).time_since_epoch().count());
  return key;
}

}  // namespace

engine_context::engine_context(const clock& c, const engine_options& opts)
    : clk(c),
      options(opts),
      scheduler(c, scheduler_options_for(opts)),
      numbers(scheduler),
      writes(c, opts.hopper_capacity * 2 + 65536),
      dials(c, 1024),
      calls(c, scheduler, numbers, writes, opts.metrics) {}

timestamp engine_context::window_time(const live_campaign& c, const rules::zone_set* zones, timestamp at) {
  if (!zones) return at;
  auto next = rules::next_open(c.window, *zones, at);
  return next.value_or(at + std::chrono::hours{24});
}

rules::window_checker& window_checkers::for_window(const rules::calling_window& w) {
  auto key = window_key(w);
  auto it = by_key_.find(key);
  if (it == by_key_.end())
    it = by_key_.emplace(std::move(key), std::make_unique<rules::window_checker>(w)).first;
  return *it->second;
}

const char* to_string(drain_reason r) noexcept {
  switch (r) {
    case drain_reason::none:
      return "none";
    case drain_reason::paused:
      return "paused";
    case drain_reason::cancelled:
      return "cancelled";
    case drain_reason::engine_stopped:
      return "engine_stopped";
    case drain_reason::left_scope:
      return "engine_stopped";
  }
  return "none";
}

}  // namespace dialer::dialing
