#include "engine/dialing/origination_stage.hpp"

#include <cmath>

#include <fmt/format.h>

namespace dialer::dialing {

using std::chrono::nanoseconds;
using std::chrono::seconds;

nanoseconds cps_spacing::next_allowed(double cps, nanoseconds now, nanoseconds guard) const {
  if (!(cps > 0) || std::isinf(cps)) return now;
  if (cps < 1.0) {
    if (sent_.empty()) return now;
    return std::max(now, sent_.back() + nanoseconds(static_cast<std::int64_t>(1e9 / cps)) + guard);
  }
  const auto k = static_cast<std::size_t>(cps);  // at most floor(cps) in any one-second window
  if (sent_.size() < k) return now;
  return std::max(now, sent_[sent_.size() - k] + seconds(1) + guard);
}

void cps_spacing::note(nanoseconds at, double cps) {
  sent_.push_back(at);
  const std::size_t keep = cps >= 1.0 && !std::isinf(cps) ? static_cast<std::size_t>(cps) : 1;
  while (sent_.size() > keep) sent_.pop_front();
}

void cps_spacing::restamp(nanoseconds noted, nanoseconds left) {
  for (auto it = sent_.rbegin(); it != sent_.rend() && *it >= noted; ++it) *it = std::max(*it, left);
}

origination_stage::origination_stage(engine_context& ctx,
                                     std::function<result<std::unique_ptr<attempt_journal>>()> open)
    : ctx_(ctx), open_(std::move(open)) {}

const char* origination_stage::gate(const paced_call& c, nanoseconds now, timestamp wall) {
  const auto& campaign = *c.item.entry.campaign;
  if (ctx_.stopping.load(std::memory_order_acquire)) return "engine_stopped";
  if (!campaign.dialing.load(std::memory_order_acquire)) return to_string(campaign.draining.load());
  if (c.item.entry.zones && !checkers_.for_window(campaign.window).open_at(*c.item.entry.zones, wall))
    return "outside_window";
  // After a successful renewal every held slot is valid for at least 3/4 of a lease (slot leases are renewed
  // at a quarter of their life); past half a lease without one, the slot may be another engine's by the time
  // the call leaves.
  if (now - nanoseconds(ctx_.last_lease_ok.load(std::memory_order_acquire)) >= ctx_.options.lease / 2)
    return "lease_lapsed";
  // The number was released, unassigned or given to another agent (or the database is away): this engine has
  // no slots on it any more, or holds them for its new agent's campaigns, not for the old agent's calls.
  if (!ctx_.numbers.usable_for(c.item.number, campaign.record.agent)) return "slots_withdrawn";
  return nullptr;
}

// A recorded call that failed the last gate: its slot back, its attempt row deleted, its contact back.
void origination_stage::hand_back(paced_call& c, const char* why, timestamp now) {
  auto& e = c.item.entry;
  const bool window = std::string_view(why) == "outside_window";
  ctx_.hand_back(e.campaign, {{},
                              e.contact.id,
                              e.contact.attempts,
                              window ? engine_context::window_time(*e.campaign, e.zones, now) : now,
                              why,
                              c.attempt});
  c.item.slot.give_back(sched::release_reason::not_attempted);
}

// Durable before the carrier hears of it: an attempt is placed at most once, even across a crash. Recorded
// calls join the paced queues; the others are handed back here.
void origination_stage::record(std::deque<std::vector<dial_item>>& queued) {
  taken_.clear();
  attempts_.clear();
  for (auto& batch : queued)
    for (auto& item : batch) taken_.push_back(std::move(item));
  queued.clear();
  if (taken_.empty()) return;
  for (const auto& item : taken_) {
    attempt_to_record a;
    a.campaign = item.entry.campaign->record.id;
    a.contact = item.entry.contact.id;
    a.attempt_no = item.entry.contact.attempts + 1;
    a.number = item.number;
    a.caller_id = item.caller_id;
    a.callee = item.entry.contact.e164;
    a.carrier = item.entry.campaign->record.carrier;
    attempts_.push_back(std::move(a));
  }
  const timestamp now = ctx_.clk.wall();
  // Stopping: nothing more is recorded (a recorded attempt that is never placed would be reconciled as
  // unknown if its hand-back could not be written).
  if (ctx_.stopping.load(std::memory_order_acquire) ||
      !retry_write(ctx_, "origination", [&] { return journal_->record(attempts_); })) {
    for (auto& item : taken_)  // stopping at once with the database away: nothing of these was placed
      ctx_.hand_back(item.entry.campaign,
                     {{}, item.entry.contact.id, item.entry.contact.attempts, now, "engine_stopped", {}});
    taken_.clear();  // their slots go back with them
    return;
  }
  for (std::size_t i = 0; i < taken_.size(); ++i) {
    auto& item = taken_[i];
    auto& a = attempts_[i];
    const auto& c = item.entry.campaign;
    if (!a.id) {
      const int before = a.attempt_no - 1;
      if (a.do_not_call) {
        // Put on the do-not-call list after it was claimed: ended here, never dialed.
        ctx_.end_contact(c, {{}, a.contact, before, rules::contact_state::do_not_call, "do_not_call"});
      } else if (a.recorded_before) {
        // The attempt exists already (it cannot while block leases hold): reconciled like a crashed run's,
        // never dialed, so that the contact settles instead of coming back for the same attempt again.
        open_attempt o;
        o.attempt = attempt_of(a.contact, a.attempt_no);
        o.contact = a.contact;
        o.attempt_no = a.attempt_no;
        o.number = a.number;
        bool holds = false;
        if (ctx_.numbers.hold_recovered(o.number, +1)) {
          holds = true;
          c->recovered.fetch_add(1, std::memory_order_acq_rel);
          c->apply_cap(ctx_.scheduler);
        }
        ctx_.reconcile.push({c, std::move(o), holds});
      } else {
        // Not this engine's to dial: the campaign no longer runs, its block went to another engine (the
        // return only settles the unit here: write-back leaves contacts of blocks we lost alone), or the
        // slot's lease lapsed.
        ctx_.hand_back(c, {{}, a.contact, before, item.decided_at, "not_recorded", {}});
      }
      item.slot.give_back(sched::release_reason::not_attempted);
      continue;
    }
    const auto number = item.number.value();
    paced_[number].push_back(paced_call{std::move(item), a.id});
    ++paced_count_;
  }
  taken_.clear();
}

void origination_stage::run() {
  journal_ = open_port(ctx_, open_, "origination");
  std::deque<std::vector<dial_item>> queued;
  std::unordered_map<carrier_link*, std::vector<origination_request>> requests;
  std::vector<cps_spacing*> noted;  // the spacings of the calls let through this pass (map nodes are stable)
  nanoseconds next_due = clock::never;
  while (true) {
    const bool closed = ctx_.dials.closed();
    (void)ctx_.dials.take_all(queued,
                              paced_count_ > 0 ? next_due : (closed ? ctx_.clk.monotonic() : clock::never));
    if (queued.empty() && paced_count_ == 0 && ctx_.dials.closed() && ctx_.dials.size() == 0) return;
    if (!journal_) {
      // The engine stopped before the journal could be opened: nothing is placed, everything goes back.
      const timestamp now = ctx_.clk.wall();
      for (auto& batch : queued)
        for (auto& item : batch)
          ctx_.hand_back(item.entry.campaign,
                         {{}, item.entry.contact.id, item.entry.contact.attempts, now, "engine_stopped", {}});
      queued.clear();
      continue;
    }
    record(queued);
    // Release what may leave now, caller ID by caller ID, in decision order.
    const auto now = ctx_.clk.monotonic();
    const timestamp wall = ctx_.clk.wall();
    next_due = clock::never;
    std::size_t leaving = 0;
    for (auto& [number, q] : paced_) {
      auto& spaced = by_number_[number];
      const double cps = ctx_.numbers.cps(number_id{number});
      while (!q.empty()) {
        auto& c = q.front();
        if (const char* why = gate(c, now, wall)) {
          hand_back(c, why, wall);
          q.pop_front();
          --paced_count_;
          continue;
        }
        auto& link = c.item.entry.campaign->carrier;
        // Links of one carrier account (campaigns with different settings) share its pacing.
        auto& account = by_account_[link.identity().empty() ? link.key() : link.identity()];
        const double limit = link.alive() ? link.get().account_cps() : unlimited_cps;
        const double share = link.cps_share();
        // This engine's share of a shared account; none yet (not counted by the other engines): wait a beat.
        const double account_cps = limit > 0 && share > 0 ? limit * share : limit;
        const auto unshared = limit > 0 && !(share > 0) ? now + ctx_.options.heartbeat : now;
        const auto at = std::max({spaced.next_allowed(cps, now, ctx_.options.cps_guard),
                                  account.next_allowed(account_cps, now, ctx_.options.cps_guard),
                                  link.throttled_until(), unshared});
        if (at > now) {
          next_due = std::min(next_due, at);
          break;
        }
        spaced.note(now, cps);
        account.note(now, account_cps);
        noted.push_back(&spaced);
        noted.push_back(&account);
        auto& e = c.item.entry;
        const auto& campaign = *e.campaign;
        origination_request r;
        r.attempt = c.attempt;
        r.campaign = campaign.record.id;
        r.contact = e.contact.id;
        r.caller_number = c.item.number;
        r.from_e164 = c.item.caller_id;
        r.to_e164 = e.contact.e164;
        r.handoff = campaign.record.agent_handoff;
        r.variables_json = std::move(e.contact.variables);
        r.idempotency_key = fmt::format("attempt-{}", c.attempt.value());
        e.campaign->dialed.fetch_add(1, std::memory_order_relaxed);
        ctx_.calls.add(c.attempt, placed_call{e.campaign, std::move(c.item.slot), e.contact.id, c.item.number,
                                              e.contact.attempts + 1, e.zones});
        requests[&link].push_back(std::move(r));
        ++leaving;
        q.pop_front();
        --paced_count_;
      }
    }
    std::erase_if(paced_, [](const auto& kv) { return kv.second.empty(); });
    if (leaving > 0) {
      for (auto& [link, batch] : requests) {
        if (batch.empty()) continue;
        if (link->alive()) link->get().originate(batch);
        batch.clear();
      }
      // The calls left when the carrier took them, not when they were let through: this thread can lose the
      // CPU in between (tens of milliseconds on a loaded machine). Spacing the next ones from the earlier
      // time would let a late batch and a punctual successor meet inside one second at the carrier.
      const auto left = ctx_.clk.monotonic();
      for (cps_spacing* s : noted) s->restamp(now, left);
    }
    noted.clear();
  }
}

}  // namespace dialer::dialing
