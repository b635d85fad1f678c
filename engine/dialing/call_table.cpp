#include "engine/dialing/call_table.hpp"

#include "engine/dialing/carrier_link.hpp"

namespace dialer::dialing {

using std::chrono::milliseconds;

void call_table::add(attempt_id attempt, placed_call call) {
  std::lock_guard lock(mutex_);
  calls_.insert_or_assign(attempt.value(), live{std::move(call), {}, false, {}, clock_.monotonic()});
}

std::optional<placed_call> call_table::take(attempt_id attempt) {
  std::lock_guard lock(mutex_);
  auto it = calls_.find(attempt.value());
  if (it == calls_.end()) return std::nullopt;
  placed_call call = std::move(it->second.call);
  calls_.erase(it);
  return call;
}

void call_table::report(placed_call call, carrier_report r) {
  r.contact = call.contact;
  r.number = call.number;
  r.attempt_no = call.attempt_no;
  r.zones = call.zones;
  auto campaign = std::move(call.campaign);
  (void)writes_.push(writeback_item{std::move(campaign), std::move(r)});
}

// The carrier's id for a call that is now running is noted here; the control stage hands the ids of calls
// still running to the writer within a tick. Calls that end before (all of them, with an instant carrier)
// cost nothing more: their outcome carries the id.
void call_table::answered_locked(live& call) noexcept {
  if (call.answered) return;
  call.answered = true;
  if (metrics_) metrics_->carrier_answered(clock_.monotonic() - call.placed_at);
}

void call_table::on_accepted(attempt_id attempt, std::string_view carrier_call_id) noexcept {
  std::lock_guard lock(mutex_);
  if (auto it = calls_.find(attempt.value()); it != calls_.end()) {
    answered_locked(it->second);
    if (!carrier_call_id.empty()) it->second.carrier_call_id.assign(carrier_call_id);
  }
}

void call_table::on_refused(attempt_id attempt, origination_refusal why,
                            std::optional<milliseconds> retry_after, std::string_view detail) noexcept {
  if (why == origination_refusal::indeterminate) {
    // Never redialed blindly: the call stays in flight (slot held) until its outcome or a lookup settles it.
    std::lock_guard lock(mutex_);
    if (auto it = calls_.find(attempt.value()); it != calls_.end())
      it->second.uncertain_since = clock_.monotonic();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (auto it = calls_.find(attempt.value()); it != calls_.end()) answered_locked(it->second);
  }
  auto call = take(attempt);
  if (!call) return;
  // The contact is rescheduled by the writer (with the carrier's Retry-After), not re-queued by the
  // scheduler.
  call->slot.give_back(sched::release_reason::not_attempted);
  if (why == origination_refusal::throttled && call->campaign) {
    const auto until = clock_.monotonic() + retry_after.value_or(milliseconds{1000});
    (void)scheduler_.throttle_carrier_account(call->campaign->carrier.account(), until);
    call->campaign->carrier.throttle_until(until);
  }
  if (why == origination_refusal::number_unusable) numbers_.out_of_rotation(call->number);
  carrier_report r;
  r.what = carrier_report::kind::refused;
  r.attempt = attempt;
  r.refusal = why;
  r.retry_after = retry_after;
  r.detail = std::string(detail);
  report(std::move(*call), std::move(r));
}

void call_table::on_outcome(const call_event& event) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (auto it = calls_.find(event.attempt.value()); it != calls_.end()) answered_locked(it->second);
  }
  auto call = take(event.attempt);
  if (!call) return;
  if (metrics_) metrics_->call_ended(event.outcome);
  call->slot.complete();
  if (event.outcome == call_outcome::completed && call->campaign)
    call->campaign->answered.fetch_add(1, std::memory_order_relaxed);
  carrier_report r;
  r.attempt = event.attempt;
  r.event = event;
  report(std::move(*call), std::move(r));
}

std::vector<accepted_call> call_table::unkept_ids() {
  std::vector<accepted_call> ids;
  std::lock_guard lock(mutex_);
  for (auto& [attempt, c] : calls_) {
    if (c.kept || c.carrier_call_id.empty()) continue;
    c.kept = true;
    ids.push_back({attempt_id{attempt}, c.carrier_call_id});
  }
  return ids;
}

std::vector<call_table::uncertain> call_table::uncertain_since(std::chrono::nanoseconds grace,
                                                               std::chrono::nanoseconds overdue) {
  std::vector<uncertain> out;
  const auto now = clock_.monotonic();
  std::lock_guard lock(mutex_);
  for (const auto& [attempt, c] : calls_)
    if ((c.uncertain_since && now - *c.uncertain_since >= grace) || now - c.placed_at >= overdue)
      out.push_back(
          {attempt_id{attempt}, c.carrier_call_id, c.call.campaign ? &c.call.campaign->carrier : nullptr});
  return out;
}

void call_table::never_placed(attempt_id attempt, std::string_view detail) {
  auto call = take(attempt);
  if (!call) return;  // its outcome arrived meanwhile
  call->slot.give_back(sched::release_reason::not_attempted);
  carrier_report r;
  r.what = carrier_report::kind::refused;
  r.attempt = attempt;
  r.refusal = origination_refusal::not_placed;
  r.detail = std::string(detail);
  report(std::move(*call), std::move(r));
}

std::size_t call_table::size() const {
  std::lock_guard lock(mutex_);
  return calls_.size();
}

std::size_t call_table::abandon() {
  std::unordered_map<std::int64_t, live> gone;
  {
    std::lock_guard lock(mutex_);
    gone.swap(calls_);
  }
  return gone.size();  // their call_slots give the slots back as they go
}

}  // namespace dialer::dialing
