#include "engine/dialing/claim_stage.hpp"

#include <algorithm>
#include <unordered_set>

#include "engine/contacts/contact_import.hpp"
#include "engine/rules/nanp.hpp"

namespace dialer::dialing {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

claim_stage::claim_stage(engine_context& ctx, std::function<result<std::unique_ptr<contact_claims>>()> open)
    : ctx_(ctx), open_(std::move(open)) {}

std::size_t claim_stage::footprint(const claimed_contact& c) noexcept {
  return sizeof(contact_entry) + sizeof(origination_request) +
         2 * (c.e164.size() + c.timezone.size() + c.variables.size());
}

rules::zone_cache& claim_stage::zones_for(const std::string& region) {
  auto it = zones_.find(region);
  if (it == zones_.end()) it = zones_.emplace(region, std::make_unique<rules::zone_cache>(region)).first;
  return *it->second;
}

claim_stage::plan claim_stage::plan_round() {
  plan p;
  const auto now = ctx_.clk.monotonic();
  auto all = ctx_.campaigns.all();
  std::sort(all.begin(), all.end(),
            [](const campaign_ptr& a, const campaign_ptr& b) { return a->record.id < b->record.id; });
  // Waiting, across campaigns: in the hopper and in the writer's backlog (claimed, not yet written, not on a
  // call). Both count against the hopper's capacity; the claimed contacts' bytes count against the memory
  // budget.
  std::size_t queued_total = 0;
  std::size_t held_bytes = 0;
  for (const auto& c : all) {
    queued_total +=
        static_cast<std::size_t>(std::max<std::int64_t>(0, c->blocks.units() - c->holding.load()));
    held_bytes += c->blocks.bytes();
  }
  const auto& o = ctx_.options;
  std::size_t room =
      std::min(ctx_.scheduler.room(), o.hopper_capacity - std::min(o.hopper_capacity, queued_total));
  std::size_t memory_left = held_bytes >= o.memory_budget ? 0 : o.memory_budget - held_bytes;
  const std::size_t n = all.size();
  for (std::size_t k = 0; k < n && room > 0; ++k) {
    const auto& c = all[(rotation_ + k) % n];
    if (!c->dialing.load(std::memory_order_acquire) || c->record.blocks.empty()) continue;
    if (c->next_claim_at > now) {
      p.wake_at = std::min(p.wake_at, c->next_claim_at);
      continue;
    }
    const auto block = c->record.blocks.size;
    const auto queued =
        static_cast<std::size_t>(std::max<std::int64_t>(0, c->blocks.units() - c->holding.load()));
    const auto high = high_water_mark(c->usable_slots.load(std::memory_order_acquire), o, block);
    std::size_t want = static_cast<std::size_t>(claim_size(queued, high, o, block));
    if (want == 0) continue;
    want = std::min(want, room);
    // Bytes per contact, as the last claim brought them; before any claim, the largest a contact may be. With
    // nothing held at all, at least one contact, so that a budget smaller than one contact still makes
    // progress.
    const std::size_t per = c->bytes_per_contact > 0 ? c->bytes_per_contact
                                                     : footprint(claimed_contact{}) +
                                                           2 * contacts::import_limits{}.max_variables_bytes;
    const bool nothing_held = held_bytes == 0 && p.requests.empty();
    want = std::min(want, nothing_held ? std::max<std::size_t>(memory_left / per, 1) : memory_left / per);
    if (want == 0) break;  // the memory budget is spent: no campaign gets more this round
    p.requests.push_back({c->record.id, static_cast<int>(want)});
    p.campaigns.push_back(c);
    room -= want;
    memory_left -= std::min(memory_left, want * per);
  }
  ++rotation_;
  return p;
}

void claim_stage::run() {
  claims_ = open_port(ctx_, open_, "claim");
  if (!claims_) return;
  std::vector<sched::contact_item> items;
  std::vector<contact_entry> entries;
  std::vector<sched::payload_ref> refs;
  const auto stopping = [&] { return ctx_.stopping.load(std::memory_order_acquire); };
  while (!stopping()) {
    auto p = plan_round();
    const auto now = ctx_.clk.monotonic();
    if (p.requests.empty()) {
      (void)ctx_.claim_now.wait_until(ctx_.clk, std::min(now + ctx_.options.idle_wait, p.wake_at), stopping);
      continue;
    }
    auto batches = claims_->claim(p.requests, ctx_.options.lease);
    if (!batches) {
      ctx_.errors.note("claim", batches.error());
      (void)ctx_.claim_now.wait_until(ctx_.clk, now + milliseconds{200}, stopping);  // database away: shortly
      continue;
    }
    items.clear();
    entries.clear();
    if (auto* m = ctx_.options.metrics) {
      std::int64_t claimed = 0;
      for (const auto& b : *batches) claimed += static_cast<std::int64_t>(b.contacts.size());
      m->contacts_claimed(claimed);
    }
    for (std::size_t i = 0; i < batches->size() && i < p.campaigns.size(); ++i)
      take(p.campaigns[i], std::move((*batches)[i]), items, entries);
    if (items.empty()) continue;
    refs.resize(entries.size());
    ctx_.arena.put_many(entries, refs);
    for (std::size_t i = 0; i < items.size(); ++i) items[i].payload = refs[i];
    const std::size_t accepted = ctx_.scheduler.enqueue(items);
    const timestamp wall = ctx_.clk.wall();
    for (std::size_t i = accepted; i < items.size(); ++i) {  // no room after all: back to the database
      auto e = ctx_.arena.take(items[i].payload);
      if (e) ctx_.hand_back(e->campaign, {{}, e->contact.id, e->contact.attempts, wall, "hopper_full", {}});
    }
  }
}

void claim_stage::take(const campaign_ptr& c, claim_batch&& batch, std::vector<sched::contact_item>& items,
                       std::vector<contact_entry>& entries) {
  const auto now = ctx_.clk.monotonic();
  const timestamp wall = ctx_.clk.wall();
  if (batch.blocks.empty()) {
    // Nothing claimable now: ask again after idle_poll, or when its next contact is due if that is later (but
    // within half a lease, to notice a dead engine's blocks as they lapse).
    c->nothing_left.store(!batch.next_due.has_value(), std::memory_order_release);
    const auto longest = std::max<nanoseconds>(ctx_.options.idle_poll, ctx_.options.lease / 2);
    nanoseconds delay = ctx_.options.idle_poll;
    if (batch.next_due && *batch.next_due > wall) {
      delay = std::clamp<nanoseconds>(*batch.next_due - wall, ctx_.options.idle_poll, longest);
    } else if (!batch.next_due) {
      // Nothing waits in a block nobody holds (another engine holds the rest, or nothing is left): ask less
      // and less often, so that a thousand such campaigns do not poll the database ten times a second each.
      delay = std::max<nanoseconds>(c->idle_backoff, ctx_.options.idle_poll);
      c->idle_backoff = std::min<nanoseconds>(2 * delay, longest);
    }
    c->next_claim_at = now + delay;
    return;
  }
  c->idle_backoff = nanoseconds{0};
  c->nothing_left.store(false, std::memory_order_release);
  c->next_claim_at = nanoseconds{0};
  const auto& layout = c->record.blocks;
  // Every contact and open attempt of a claimed block is one unit on its way to the writer; the block is
  // released with the write-back of its last unit. A block that brings nothing is released at once. A block
  // the engine still tracks (its own, retaken after its lease lapsed) is already in the pipeline: nothing is
  // added.
  std::unordered_map<std::int64_t, std::int64_t> units;
  std::unordered_map<std::int64_t, std::size_t> bytes;
  for (const auto& b : batch.blocks) units.emplace(b.first, 0);
  std::size_t claimed_bytes = 0;
  for (const auto& k : batch.contacts) {
    const auto block = layout.block_of(k.id);
    ++units[block];
    const auto f = footprint(k);
    bytes[block] += f;
    claimed_bytes += f;
  }
  if (!batch.contacts.empty())
    c->bytes_per_contact = std::max<std::size_t>(1, claimed_bytes / batch.contacts.size());
  for (const auto& o : batch.open) ++units[layout.block_of(o.contact)];
  std::unordered_set<std::int64_t> retaken;
  for (const auto& [block, n] : units) {
    if (!c->blocks.add(block, n, bytes[block]))
      retaken.insert(block);
    else if (n == 0)
      (void)ctx_.writes.push(writeback_item{c, empty_block{block}});
  }
  const auto fresh = [&](contact_id k) { return !retaken.contains(layout.block_of(k)); };
  // Until the carrier says otherwise, a recovered attempt's call may still be talking: it holds a slot of its
  // number (and of the campaign's cap) from now, before this claim's fresh contacts can be handed out, until
  // it is settled.
  for (auto& o : batch.open) {
    if (!fresh(o.contact)) continue;
    bool holds = false;
    if (!o.stored && ctx_.numbers.hold_recovered(o.number, +1)) {
      holds = true;
      c->recovered.fetch_add(1, std::memory_order_acq_rel);
      c->apply_cap(ctx_.scheduler);
    }
    ctx_.reconcile.push({c, std::move(o), holds});
  }
  auto& zones = zones_for(c->record.spec.default_region);
  auto& checker = checkers_.for_window(c->window);
  for (auto& k : batch.contacts) {
    if (!fresh(k.id)) continue;
    if (k.do_not_call) {
      ctx_.end_contact(c, {{}, k.id, k.attempts, rules::contact_state::do_not_call, "do_not_call"});
      continue;
    }
    auto z = zones.zones_for(k.timezone, k.e164);
    if (!z) {
      ctx_.end_contact(c, {{}, k.id, k.attempts, rules::contact_state::invalid, z.error().message});
      continue;
    }
    if (!checker.open_at(**z, wall)) {
      ctx_.hand_back(c,
                     {{}, k.id, k.attempts, engine_context::window_time(*c, *z, wall), "outside_window", {}});
      continue;
    }
    const int npa = rules::nanp_npa_of(k.e164);
    const auto* area = npa > 0 ? rules::find_nanp_area(npa) : nullptr;
    sched::contact_item item;
    item.contact = k.id;
    item.campaign = c->record.id;
    item.sticky_number = c->record.spec.sticky_retries ? k.sticky : number_id{};
    item.area_code = static_cast<std::uint16_t>(npa > 0 ? npa : 0);
    item.region = sched::region_code::from(area ? area->region : std::string_view{});
    items.push_back(item);
    entries.push_back(contact_entry{std::move(k), *z, c});
  }
}

}  // namespace dialer::dialing
