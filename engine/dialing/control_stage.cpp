#include "engine/dialing/control_stage.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace dialer::dialing {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

// The reason a campaign drains, from the state the database now gives it.
drain_reason reason_for(campaign_state s) {
  switch (s) {
    case campaign_state::cancelled:
      return drain_reason::cancelled;
    case campaign_state::paused:
    case campaign_state::draft:
      return drain_reason::paused;
    default:
      return drain_reason::left_scope;
  }
}

}  // namespace

control_stage::control_stage(engine_context& ctx, const engine_ports& ports, carrier_source& carriers,
                             carrier_table& links, engine_scope scope)
    : ctx_(ctx), ports_(ports), carrier_source_(carriers), links_(links), scope_(std::move(scope)) {}

bool control_stage::in_scope(campaign_id id) const {
  return scope_.only.empty() || std::find(scope_.only.begin(), scope_.only.end(), id) != scope_.only.end();
}

void control_stage::watch(campaign_id id) {
  std::lock_guard lock(watch_mutex_);
  (void)watches_[id.value()];
}

std::optional<campaign_watch> control_stage::watched(campaign_id id) const {
  std::lock_guard lock(watch_mutex_);
  auto it = watches_.find(id.value());
  if (it == watches_.end()) return std::nullopt;
  return it->second;
}

std::vector<campaign_id> control_stage::watched_ids() const {
  std::lock_guard lock(watch_mutex_);
  std::vector<campaign_id> out;
  for (const auto& [id, w] : watches_) out.emplace_back(id);
  return out;
}

void control_stage::settle_watch(campaign_id id, result<campaign_state> how) {
  std::lock_guard lock(watch_mutex_);
  auto it = watches_.find(id.value());
  if (it == watches_.end()) return;
  it->second.running_here = false;
  if (how) it->second.status.state = *how;
  it->second.settled = std::move(how);
}

void control_stage::run() {
  registry_ = open_port(ctx_, ports_.registry, "control");
  claims_ = open_port(ctx_, ports_.claims, "control");
  if (!registry_ || !claims_) return;
  (void)registry_->changes();  // subscribe before the first full read: nothing announced after it is missed
  discover(true);
  std::optional<nanoseconds> drain_started;
  while (!ctx_.stop_now.load(std::memory_order_acquire)) {
    const auto now = ctx_.clk.monotonic();
    if (draining_all_.load(std::memory_order_acquire)) {
      if (!drain_started) drain_started = now;
      for (const auto& c : ctx_.campaigns.all()) begin_drain(c, drain_reason::engine_stopped);
    } else {
      auto changed = registry_->changes();
      const bool poll_due = now - last_poll_ >= ctx_.options.campaign_poll;
      const bool asked = look_now_.exchange(false, std::memory_order_acq_rel);
      if (asked || poll_due || (changed && !changed->empty())) discover(poll_due);
    }
    // Contacts enqueued for a campaign the scheduler no longer runs (it drained meanwhile) come back here.
    std::vector<sched::contact_item> rejected;
    ctx_.scheduler.take_rejected(rejected);
    const timestamp wall = ctx_.clk.wall();
    for (const auto& item : rejected)
      if (auto e = ctx_.arena.take(item.payload))
        ctx_.hand_back(
            e->campaign,
            {{}, e->contact.id, e->contact.attempts, wall, to_string(e->campaign->draining.load()), {}});
    const bool beat = now - last_beat_ >= ctx_.options.heartbeat;
    reconcile(beat);
    for (auto& id : ctx_.calls.unkept_ids()) (void)ctx_.writes.push(writeback_item{nullptr, std::move(id)});
    if (beat) {
      last_beat_ = now;
      settle_uncertain();
      ctx_.numbers.restore_rotation(now, ctx_.options.unusable_cooloff);
    }
    check_campaigns();
    if (now - last_numbers_ >= 5 * ctx_.options.campaign_poll) {
      last_numbers_ = now;
      refresh_numbers();
    }
    if (now - last_sweep_ >= 10 * ctx_.options.campaign_poll) {
      last_sweep_ = now;
      if (auto r = claims_->cancel_orphaned(); !r) ctx_.errors.note("control", r.error());
    }
    refresh_status(false);
    if (draining_all_.load(std::memory_order_acquire)) {
      if (ctx_.campaigns.size() == 0) break;
      if (drain_started && now - *drain_started >= ctx_.options.drain_deadline) {
        ctx_.stop_now.store(true, std::memory_order_release);  // the calls did not end in time
        break;
      }
    }
    (void)ctx_.control_now.wait_until(ctx_.clk, now + ctx_.options.tick,
                                      [&] { return ctx_.stop_now.load(std::memory_order_acquire); });
  }
  refresh_status(true);
}

void control_stage::discover(bool full) {
  last_poll_ = ctx_.clk.monotonic();
  (void)full;
  std::vector<campaign_id> watched = watched_ids();
  for (const auto& c : ctx_.campaigns.all()) watched.push_back(c->record.id);
  auto briefs = registry_->campaigns(scope_.only, watched);
  if (!briefs) return ctx_.errors.note("control", briefs.error());
  const auto now = ctx_.clk.monotonic();
  numbers_by_agent numbers_seen;
  for (const auto& b : *briefs) {
    if (auto c = ctx_.campaigns.find(b.id)) {
      if (b.state != campaign_state::running) begin_drain(c, reason_for(b.state));
      continue;
    }
    if (b.state == campaign_state::running) {
      if (!in_scope(b.id)) continue;
      if (auto f = failed_until_.find(b.id.value()); f != failed_until_.end() && f->second > now) continue;
      start_campaign(b.id, numbers_seen);
      continue;
    }
    std::lock_guard lock(watch_mutex_);
    if (auto w = watches_.find(b.id.value()); w != watches_.end() && !w->second.running_here) {
      w->second.status.state = b.state;
      if (!w->second.settled || (*w->second.settled && **w->second.settled != b.state))
        w->second.settled = result<campaign_state>(b.state);
    }
  }
}

void control_stage::start_campaign(campaign_id id, numbers_by_agent& numbers_seen) {
  const auto now = ctx_.clk.monotonic();
  // A campaign that cannot start is tried again later; its watchers hear of it only when the reason is its
  // own (no outbound number, a foreign number, bad settings), not when the database or a carrier is away for
  // a moment.
  const auto fail = [&](error e, nanoseconds retry_in) {
    failed_until_[id.value()] = now + retry_in;
    ctx_.errors.note("control", make_error(e.code, "campaign {} cannot start: {}", id.value(), e.message));
    if (e.code != errc::unavailable && e.code != errc::internal) settle_watch(id, std::move(e));
  };
  auto rec = registry_->load(id);
  if (!rec) return fail(std::move(rec).error(), ctx_.options.campaign_poll);
  auto window = rec->spec.make_window();
  if (!window) return fail(std::move(window).error(), 10 * ctx_.options.campaign_poll);
  // A campaign without explicit caller IDs uses all of its agent's: read once per agent in this discovery.
  std::optional<result<std::vector<phone_number>>> own;
  auto seen = numbers_seen.find(rec->agent.value());
  if (!rec->numbers.empty()) {
    own.emplace(registry_->numbers_of(*rec));
  } else if (seen == numbers_seen.end()) {
    seen = numbers_seen.emplace(rec->agent.value(), registry_->numbers_of(*rec)).first;
  }
  auto& numbers = own ? *own : seen->second;
  if (!numbers) {
    auto e = numbers.error();
    if (!own) numbers_seen.erase(seen);  // a failed read is not remembered: the next campaign asks again
    return fail(std::move(e), ctx_.options.campaign_poll);
  }
  // Fail fast, naming what is wrong: an agent without an outbound number, a listed number of another agent.
  std::vector<const phone_number*> usable;
  for (const auto& n : *numbers) {
    if (n.status == number_status::active && n.agent == rec->agent) {
      usable.push_back(&n);
    } else if (!rec->numbers.empty()) {
      return fail(
          make_error(errc::launch_failed, "number {} is assigned to {}, not to the campaign's agent '{}'",
                     n.e164, n.agent ? fmt::format("agent '{}'", n.agent_name) : std::string("no agent"),
                     rec->agent_name),
          10 * ctx_.options.campaign_poll);
    }
  }
  if (usable.empty())
    return fail(
        make_error(
            errc::launch_failed,
            "agent '{}' has no outbound number: assign one with 'dialer numbers assign NUMBER --agent {}'",
            rec->agent_name, rec->agent_name),
        10 * ctx_.options.campaign_poll);
  const auto key = carrier_source_.account_key(*rec);
  carrier_link* link = links_.find(key);
  if (!link) {
    auto made = carrier_source_.make(*rec);
    if (!made) return fail(std::move(made).error(), 10 * ctx_.options.campaign_poll);
    const carrier_account_id account{next_account_++};
    sched::carrier_account_config a;
    a.id = account;
    a.name = std::string((*made)->name());
    const double cps = (*made)->account_cps();
    a.max_cps = cps > 0 ? cps : std::numeric_limits<double>::infinity();
    if (auto r = ctx_.scheduler.add_carrier_account(a); !r)
      return fail(std::move(r).error(), ctx_.options.campaign_poll);
    (*made)->set_events(&ctx_.calls);
    link = &links_.add(std::make_unique<carrier_link>(std::move(*made), account, key));
  }
  auto c = std::make_shared<live_campaign>(std::move(*rec), std::move(*window), *link);
  std::vector<number_id> ids;
  for (const auto* n : usable) {
    if (auto r = ctx_.numbers.use(*n, link->account()); !r) {
      for (auto used : ids) ctx_.numbers.unuse(used);
      return fail(std::move(r).error(), ctx_.options.campaign_poll);
    }
    ids.push_back(n->id);
  }
  c->set_numbers(ids);
  sched::campaign_config cfg;
  cfg.id = c->record.id;
  cfg.agent = c->record.agent;
  cfg.agent_name = c->record.agent_name;
  cfg.numbers = c->record.numbers;
  cfg.strategy = c->record.spec.strategy;
  cfg.sticky_retries = c->record.spec.sticky_retries;
  cfg.max_in_flight = std::max(1, c->record.spec.max_concurrency);
  cfg.paused = true;  // no hand-out before its cap is this engine's share (none yet)
  if (auto r = ctx_.scheduler.add_campaign(cfg); !r) {
    for (auto used : ids) ctx_.numbers.unuse(used);
    return fail(std::move(r).error(), 10 * ctx_.options.campaign_poll);
  }
  c->apply_cap(ctx_.scheduler);
  (void)ctx_.scheduler.resume_campaign(c->record.id);
  c->dialing.store(true, std::memory_order_release);
  ctx_.campaigns.add(c);
  failed_until_.erase(id.value());
  next_check_.erase(id.value());
  check_backoff_.erase(id.value());
  rate_[id.value()] = {now, 0};
  {
    std::lock_guard lock(watch_mutex_);
    if (auto w = watches_.find(id.value()); w != watches_.end()) {
      w->second.running_here = true;
      w->second.settled.reset();
      w->second.status.state = campaign_state::running;
    }
  }
  ctx_.lease_now.set();
  ctx_.claim_now.set();
}

void control_stage::begin_drain(const campaign_ptr& c, drain_reason why) {
  const auto was = c->draining.load();
  // A cancel overrides a pause (cancel is final); nothing else changes a drain under way.
  if (was != drain_reason::none && !(why == drain_reason::cancelled && was != drain_reason::cancelled))
    return;
  c->draining.store(why, std::memory_order_release);
  c->dialing.store(false, std::memory_order_release);
  if (was != drain_reason::none) return;
  // Queued contacts go back (stragglers the claim stage enqueues meanwhile come back as rejected); calls in
  // flight finish; the campaign leaves once nothing of it is left in the pipeline.
  auto queued = ctx_.scheduler.remove_campaign(c->record.id);
  if (!queued) return;
  std::vector<sched::payload_ref> refs;
  for (const auto& item : *queued) refs.push_back(item.payload);
  std::vector<std::optional<contact_entry>> entries;
  ctx_.arena.take_many(refs, entries);
  const timestamp wall = ctx_.clk.wall();
  for (auto& e : entries)
    if (e) ctx_.hand_back(c, {{}, e->contact.id, e->contact.attempts, wall, to_string(why), {}});
}

void control_stage::finish(const campaign_ptr& c, campaign_state state) {
  const auto id = c->record.id;
  ctx_.campaigns.remove(id);
  for (auto n : c->numbers()) ctx_.numbers.unuse(n);
  if (state == campaign_state::cancelled) cancel_left_.insert(id.value());
  next_check_.erase(id.value());
  check_backoff_.erase(id.value());
  settle_watch(id, state);
  look_now_.store(true,
                  std::memory_order_release);  // resumed meanwhile? the next discovery takes it on again
}

bool control_stage::reconciling(const live_campaign& c) const {
  return std::any_of(unresolved_.begin(), unresolved_.end(),
                     [&](const reconcile_inbox::item& i) { return i.campaign.get() == &c; });
}

void control_stage::check_campaigns() {
  const auto now = ctx_.clk.monotonic();
  for (const auto& c : ctx_.campaigns.all()) {
    const auto id = c->record.id;
    const auto why = c->draining.load();
    if (why != drain_reason::none) {
      if (!c->blocks.empty() || reconciling(*c)) continue;
      campaign_state state = campaign_state::paused;
      if (why == drain_reason::cancelled)
        state = campaign_state::cancelled;
      else if (why == drain_reason::engine_stopped)
        state = campaign_state::running;
      else if (why == drain_reason::left_scope) {
        const campaign_id one[] = {id};
        auto st = registry_->campaigns(one, one);
        state = campaign_state::completed;
        if (st)
          for (const auto& b : *st)
            if (b.id == id) state = b.state;
      }
      finish(c, state);
      continue;
    }
    // Completion: nothing left to claim here, nothing of it in the pipeline; the database confirms that no
    // contact waits anywhere (another engine may still hold blocks: asked again later, backing off).
    const bool nothing_to_claim = c->nothing_left.load(std::memory_order_acquire) || c->record.blocks.empty();
    if (!nothing_to_claim || !c->blocks.empty() || reconciling(*c)) continue;
    if (auto it = next_check_.find(id.value()); it != next_check_.end() && it->second > now) continue;
    auto p = claims_->progress(id);
    if (!p) ctx_.errors.note("control", p.error());
    if (p && p->pending + p->in_progress == 0) {
      const campaign_state live[] = {campaign_state::running, campaign_state::paused};
      auto moved = registry_->transition(id, live, campaign_state::completed);
      campaign_state final_state = campaign_state::completed;
      if (!moved) {
        if (moved.error().code != errc::conflict) {  // the database is away: asked again next tick
          ctx_.errors.note("control", moved.error());
          continue;
        }
        // Cancel is final: a completion never overwrites a cancel that won the race.
        final_state = campaign_state::cancelled;
      }
      c->dialing.store(false, std::memory_order_release);
      c->draining.store(final_state == campaign_state::cancelled ? drain_reason::cancelled
                                                                 : drain_reason::left_scope);
      (void)ctx_.scheduler.remove_campaign(id);
      finish(c, final_state);
      continue;
    }
    auto& backoff = check_backoff_[id.value()];
    backoff =
        std::clamp<nanoseconds>(2 * backoff, ctx_.options.status_poll,
                                std::max<nanoseconds>(ctx_.options.status_poll, ctx_.options.lease / 2));
    next_check_[id.value()] = now + backoff;
  }
  for (auto it = cancel_left_.begin(); it != cancel_left_.end();) {
    if (auto r = claims_->cancel_pending(campaign_id{*it})) {
      it = cancel_left_.erase(it);
    } else {
      ctx_.errors.note("control", r.error());
      ++it;
    }
  }
}

// Attempts found in recovered blocks (a crashed or cut-off engine's): settle those whose outcome was stored,
// ask the carrier about the rest, mark unknown what it cannot tell (never redialed). The outcomes go through
// the writer like any other. A call the carrier reports as still running (errc::unavailable) is asked again
// on a later beat.
void control_stage::reconcile(bool all) {
  bool fresh = false;
  for (auto& item : ctx_.reconcile.take()) {
    unresolved_.push_back(std::move(item));
    fresh = true;
  }
  if (unresolved_.empty() || !(fresh || all)) return;
  std::vector<reconcile_inbox::item> still_open;
  const timestamp now = ctx_.clk.wall();
  std::size_t asked =
      0;  // carrier lookups this pass: a slow carrier must not hold the control stage for long
  for (auto& item : unresolved_) {
    auto& c = *item.campaign;
    auto& a = item.attempt;
    if (!a.stored && asked >= ctx_.options.lookups_per_pass) {
      still_open.push_back(std::move(item));  // asked next pass
      continue;
    }
    if (!a.stored) ++asked;
    carrier_report r;
    r.attempt = a.attempt;
    r.contact = a.contact;
    r.number = a.number;
    r.attempt_no = a.attempt_no;
    if (a.stored) {
      r.event = *a.stored;
    } else {
      result<std::optional<call_event>> found =
          c.carrier.alive()
              ? c.carrier.get().lookup(a.attempt, a.carrier_call_id)
              : result<std::optional<call_event>>(make_error(errc::unavailable, "carrier stopped"));
      if (!found && found.error().code == errc::unavailable) {
        still_open.push_back(
            std::move(item));  // still talking (or the carrier cannot say yet): keeps its slot
        continue;
      }
      if (item.holds_slot) {
        (void)ctx_.numbers.hold_recovered(a.number, -1);
        c.recovered.fetch_sub(1, std::memory_order_acq_rel);
        c.apply_cap(ctx_.scheduler);
      }
      if (found && found->has_value()) {
        r.event = **found;
      } else {
        r.event.attempt = a.attempt;
        r.event.outcome = call_outcome::unknown;
        r.event.started_at = now;
        r.event.ended_at = now;
        r.event.detail = "engine stopped before the outcome was known; the carrier could not tell";
        c.unknown.fetch_add(1, std::memory_order_relaxed);
      }
    }
    c.reconciled.fetch_add(1, std::memory_order_relaxed);
    (void)ctx_.writes.push(writeback_item{item.campaign, std::move(r)});
  }
  unresolved_ = std::move(still_open);
}

// Calls whose origination answer was lost: asked of the carrier once `indeterminate_grace` has passed (a
// carrier may take a moment to show a call it created). Found: its outcome is taken like any other (a call
// still running is asked again next beat). Not found: it was never placed; the slot goes back and the contact
// is retried.
void control_stage::settle_uncertain() {
  std::size_t asked = 0;
  for (const auto& u :
       ctx_.calls.uncertain_since(ctx_.options.indeterminate_grace, ctx_.options.outcome_overdue)) {
    if (asked++ >= ctx_.options.lookups_per_pass) break;  // the rest next beat
    if (!u.carrier || !u.carrier->alive()) continue;
    auto found = u.carrier->get().lookup(u.attempt, u.carrier_call_id);
    if (!found) continue;  // still running, or the carrier cannot say now: asked again next beat
    if (found->has_value())
      ctx_.calls.on_outcome(**found);
    else
      ctx_.calls.never_placed(u.attempt, "indeterminate: the carrier has no such call");
  }
}

// Caller IDs as the database says now: a number assigned to a campaign's agent since joins (when the campaign
// uses all of the agent's numbers), one reassigned moves in the scheduler. A number that left its agent gets
// no slot from the next lease renewal already (within a heartbeat); this only keeps the shares of the others
// right.
void control_stage::refresh_numbers() {
  // Campaigns that use every number of their agent share one read per agent.
  std::map<std::int64_t, result<std::vector<phone_number>>> of_agent;
  for (const auto& c : ctx_.campaigns.all()) {
    if (!c->dialing.load(std::memory_order_acquire)) continue;
    result<std::vector<phone_number>> listed = std::vector<phone_number>{};
    const auto* now_numbers = &listed;
    if (c->record.numbers.empty()) {
      auto it = of_agent.find(c->record.agent.value());
      if (it == of_agent.end())
        it = of_agent.emplace(c->record.agent.value(), registry_->numbers_of(c->record)).first;
      now_numbers = &it->second;
    } else {
      listed = registry_->numbers_of(c->record);
    }
    if (!*now_numbers) continue;
    auto before = c->numbers();
    std::vector<number_id> after;
    for (const auto& n : **now_numbers) {
      ctx_.numbers.refresh(n);
      if (n.status != number_status::active || n.agent != c->record.agent) continue;
      after.push_back(n.id);
      if (std::find(before.begin(), before.end(), n.id) == before.end())
        (void)ctx_.numbers.use(n, c->carrier.account());
    }
    for (auto n : before)
      if (std::find(after.begin(), after.end(), n) == after.end()) ctx_.numbers.unuse(n);
    c->set_numbers(std::move(after));
  }
}

void control_stage::refresh_status(bool force) {
  const auto now = ctx_.clk.monotonic();
  if (!force && now - last_status_ < ctx_.options.status_poll) return;
  last_status_ = now;
  const auto ids = watched_ids();
  if (ids.empty()) return;
  const auto stats = ctx_.scheduler.stats();
  const timestamp wall = ctx_.clk.wall();
  for (auto id : ids) {
    auto c = ctx_.campaigns.find(id);
    auto p = claims_->progress(id);
    std::lock_guard lock(watch_mutex_);
    auto& w = watches_[id.value()];
    auto& s = w.status;
    if (p) {
      s.total = p->total;
      s.finished = p->terminal();
      s.waiting_until.reset();
      if (p->next_due && *p->next_due > wall && p->in_progress == 0) s.waiting_until = p->next_due;
    }
    if (!c) continue;
    s.state = c->dialing.load() ? campaign_state::running
                                : (c->cancelled() ? campaign_state::cancelled : campaign_state::paused);
    s.dialed = c->dialed.load();
    s.answered = c->answered.load();
    s.reconciled = c->reconciled.load();
    s.unknown = c->unknown.load();
    s.numbers = ctx_.numbers.usage(c->numbers(), stats);
    s.in_flight = 0;
    for (const auto& u : s.numbers) s.in_flight += u.in_flight;
    auto& [since, then] = rate_[id.value()];
    const double dt = std::chrono::duration<double>(now - since).count();
    if (dt >= 1.0) {
      s.calls_per_second = static_cast<double>(s.dialed - then) / dt;
      since = now;
      then = s.dialed;
    }
    const auto remaining = s.total - s.finished;
    if (s.calls_per_second > 0.5 && remaining > 0)
      s.eta = seconds(static_cast<std::int64_t>(static_cast<double>(remaining) / s.calls_per_second));
    else
      s.eta.reset();
  }
}

}  // namespace dialer::dialing
