#include "engine/dialing/dispatch_stage.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace dialer::dialing {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

const std::string& dispatch_stage::caller_id(number_id n) {
  auto it = caller_ids_.find(n.value());
  if (it == caller_ids_.end()) {
    auto info = ctx_.numbers.info(n);
    it = caller_ids_.emplace(n.value(), info ? info->e164 : std::string{}).first;
  }
  return it->second;
}

void dispatch_stage::run() {
  std::vector<sched::decision> decisions(ctx_.options.dispatch_batch);
  std::vector<sched::payload_ref> refs;
  std::vector<std::optional<contact_entry>> entries;
  while (!ctx_.stopping.load(std::memory_order_acquire)) {
    const auto idle = std::max<nanoseconds>(ctx_.options.idle_wait, milliseconds{50});
    const std::size_t n = ctx_.scheduler.dispatch_wait(decisions, ctx_.clk.monotonic() + idle);
    if (n == 0) continue;
    refs.clear();
    for (std::size_t i = 0; i < n; ++i) refs.push_back(decisions[i].payload);
    ctx_.arena.take_many(refs, entries);
    const timestamp now = ctx_.clk.wall();
    std::vector<dial_item> batch;
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& d = decisions[i];
      if (!entries[i]) {
        // A reference the arena does not hold (a bug, counted there): the slot goes back, nothing is dialed.
        ctx_.scheduler.give_back(d.slot, sched::release_reason::not_attempted);
        continue;
      }
      auto& e = *entries[i];
      const auto c = e.campaign;
      call_slot slot(ctx_.scheduler, d.slot, c);
      if (!c->dialing.load(std::memory_order_acquire)) {
        ctx_.hand_back(c, {{}, e.contact.id, e.contact.attempts, now, to_string(c->draining.load()), {}});
        continue;  // the slot goes back with `slot`
      }
      if (!checkers_.for_window(c->window).open_at(*e.zones, now)) {
        ctx_.hand_back(c, {{},
                           e.contact.id,
                           e.contact.attempts,
                           engine_context::window_time(*c, e.zones, now),
                           "outside_window",
                           {}});
        continue;
      }
      batch.push_back(dial_item{std::move(e), d.number, caller_id(d.number), std::move(slot), now});
    }
    if (!batch.empty() && !ctx_.dials.push(std::move(batch))) {
      // The origination stage is gone (the engine stops at once): every decision goes back unplaced.
      for (auto& item : batch)
        ctx_.hand_back(item.entry.campaign,
                       {{}, item.entry.contact.id, item.entry.contact.attempts, now, "engine_stopped", {}});
    }
  }
}

}  // namespace dialer::dialing
