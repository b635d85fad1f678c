#include "engine/dialing/writeback_stage.hpp"

#include <unordered_map>
#include <unordered_set>

namespace dialer::dialing {

using std::chrono::milliseconds;
using std::chrono::seconds;

writeback_stage::writeback_stage(engine_context& ctx,
                                 std::function<result<std::unique_ptr<attempt_journal>>()> open)
    : ctx_(ctx), open_(std::move(open)) {}

attempt_outcome writeback_stage::outcome_for(const live_campaign& c, const carrier_report& r,
                                             timestamp now) const {
  attempt_outcome o;
  o.campaign = c.record.id;
  o.attempt = r.attempt;
  o.contact = r.contact;
  o.attempt_no = r.attempt_no;
  o.number = r.number;
  o.event = r.event;
  const auto billable_s = std::chrono::duration_cast<seconds>(r.event.billable + milliseconds{999}).count();
  const auto minutes = (billable_s + 59) / 60;
  const auto info = ctx_.numbers.info(r.number);
  if (info && info->kind == number_kind::managed) o.cost = minutes * ctx_.options.call_minute_rate;
  const auto decision = c.record.spec.retry.next(r.event.outcome, r.attempt_no, now);
  o.next_state = decision.state;
  if (decision.state == rules::contact_state::pending) {
    if (c.cancelled()) {
      o.next_state = rules::contact_state::cancelled;
    } else {
      o.next_attempt_at = engine_context::window_time(c, r.zones, *decision.retry_at);
      o.pending_reason = "retry";
    }
  }
  return o;
}

void writeback_stage::fill_batch() {
  outcomes_.clear();
  returns_.clear();
  finals_.clear();
  accepted_.clear();
  release_.clear();
  settled_.clear();
  // Units of each campaign this batch settles (block keys), then the blocks that have none left.
  std::unordered_map<live_campaign*, std::pair<campaign_ptr, std::vector<std::int64_t>>> units;
  std::unordered_set<std::int64_t>
      ended;  // attempts whose report is in this batch: their outcome carries the id
  const timestamp now = ctx_.clk.wall();
  std::size_t rows = 0;
  std::size_t ids = 0;
  const std::size_t limit = std::max<std::size_t>(1, ctx_.options.write_batch);
  while (!pending_.empty() && rows < limit && ids < limit) {
    auto item = std::move(pending_.front());
    pending_.pop_front();
    if (auto* a = std::get_if<accepted_call>(&item.what)) {
      accepted_.push_back(std::move(*a));
      ++ids;
      continue;
    }
    auto& c = item.campaign;
    if (!c) continue;
    const auto& layout = c->record.blocks;
    if (auto* b = std::get_if<empty_block>(&item.what)) {
      release_.push_back({c->record.id, b->first});
      settled_.push_back({c, {b->first}});
      continue;
    }
    auto& mine = units[c.get()];
    if (!mine.first) mine.first = c;
    ++rows;
    if (auto* r = std::get_if<carrier_report>(&item.what)) {
      mine.second.push_back(layout.block_of(r->contact));
      ended.insert(r->attempt.value());
      if (r->what == carrier_report::kind::outcome) {
        outcomes_.push_back(outcome_for(*c, *r, now));
      } else if (r->refusal == origination_refusal::invalid_destination) {
        // Never placed: remove the attempt row and end the contact.
        returns_.push_back(
            {c->record.id, r->contact, r->attempt_no - 1, now, "invalid_destination", r->attempt});
        finals_.push_back({c->record.id, r->contact, r->attempt_no - 1, rules::contact_state::invalid,
                           "invalid_destination: " + r->detail});
      } else {
        const auto wait = r->retry_after.value_or(
            r->refusal == origination_refusal::not_placed ? milliseconds{2000} : milliseconds{0});
        returns_.push_back({c->record.id, r->contact, r->attempt_no - 1, now + wait,
                            std::string(to_string(r->refusal)), r->attempt});
      }
    } else if (auto* ret = std::get_if<contact_return>(&item.what)) {
      mine.second.push_back(layout.block_of(ret->contact));
      returns_.push_back(std::move(*ret));
    } else if (auto* f = std::get_if<contact_final>(&item.what)) {
      mine.second.push_back(layout.block_of(f->contact));
      finals_.push_back(std::move(*f));
    }
  }
  // A call whose report is in this batch needs no separate carrier id.
  std::erase_if(accepted_, [&](const accepted_call& a) { return ended.contains(a.attempt.value()); });
  // Each unit is the last of one claimed contact (or open attempt): settle them before the write, so that a
  // block whose last unit this is gets released in the same transaction. Its release is final only once
  // committed.
  for (auto& [raw, entry] : units) {
    if (entry.second.empty()) continue;
    std::vector<std::int64_t> released;
    entry.first->blocks.settle(entry.second, released);
    for (auto b : released) release_.push_back({entry.first->record.id, b});
    if (!released.empty()) settled_.push_back({entry.first, std::move(released)});
  }
}

void writeback_stage::run() {
  journal_ = open_port(ctx_, open_, "write-back");
  while (true) {
    if (pending_.empty()) {
      const bool closed = ctx_.writes.closed();
      (void)ctx_.writes.take_all(
          pending_, closed ? ctx_.clk.monotonic() : ctx_.clk.monotonic() + ctx_.options.idle_wait);
      if (pending_.empty()) {
        ctx_.last_write_back.store(0, std::memory_order_relaxed);  // nothing waited for a whole idle_wait
        if (closed && ctx_.writes.size() == 0) return;
        continue;
      }
    }
    fill_batch();
    const write_batch batch{outcomes_, returns_, finals_, accepted_, release_};
    if (batch.empty()) continue;
    const bool written =
        journal_ && retry_write(ctx_, "write-back", [&] { return journal_->write_back(batch); });
    if (!written) continue;  // stopping at once with the database away: the next engine reconciles these
    ctx_.last_write_back.store(outcomes_.size(), std::memory_order_relaxed);
    for (auto& [c, blocks] : settled_) c->blocks.released(blocks);
    // A draining campaign may have just emptied: let the control stage look now.
    if (!settled_.empty()) ctx_.control_now.set();
  }
}

}  // namespace dialer::dialing
