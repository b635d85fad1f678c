#include "engine/campaign_runner.hpp"

#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "engine/block_tracker.hpp"
#include "engine/contacts/contact_import.hpp"
#include "engine/rules/nanp.hpp"
#include "engine/rules/zones.hpp"
#include "scheduler/scheduler.hpp"

namespace dialer {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr carrier_account_id kAccount{1};

// A claimed contact on its way through the hopper; the scheduler carries a pointer to it as its cookie.
struct contact_entry {
  claimed_contact contact;
  const rules::zone_set* zones = nullptr;  // owned by the runner's zone cache
};

// What one claimed contact costs in memory on its way through the pipeline, counted against the memory budget:
// its entry, and its strings twice (the entry's, and the origination request's or the report's copy).
std::size_t contact_footprint(const claimed_contact& c) {
  return sizeof(contact_entry) + sizeof(origination_request) +
         2 * (c.e164.size() + c.timezone.size() + c.variables.size());
}

struct in_flight_call {
  sched::slot_handle slot;
  contact_id contact;
  number_id number;
  int attempt_no = 1;
  const rules::zone_set* zones = nullptr;
};

// What a carrier thread hands to the writer.
struct carrier_report {
  enum class kind : std::uint8_t { outcome, refused } what = kind::outcome;
  in_flight_call call;
  attempt_id attempt;
  call_event event;
  origination_refusal refusal = origination_refusal::not_placed;
  std::optional<milliseconds> retry_after;
  std::string detail;
};

// Writes with retries: a batch stays in memory until the database has taken it.
template <class Fn>
bool retry_write(const std::atomic<bool>& give_up, const clock& clk, Fn&& write) {
  milliseconds backoff{50};
  while (true) {
    auto r = write();
    if (r) return true;
    if (give_up.load(std::memory_order_acquire)) return false;
    clk.sleep_for(backoff);  // back-off between reconnection attempts, not waiting for an event
    backoff = std::min(backoff * 2, milliseconds{2000});
  }
}

}  // namespace

struct campaign_runner::impl : carrier_events {
  impl(campaign_runner& owner, campaign_record campaign, std::vector<phone_number> numbers, carrier& carrier_ref,
       const clock& clk, campaign_store_factory stores, runner_options options)
      : owner_(owner),
        campaign_(std::move(campaign)),
        numbers_(std::move(numbers)),
        carrier_(carrier_ref),
        clock_(clk),
        stores_(std::move(stores)),
        options_(options),
        scheduler_(clk, sched::scheduler_options{options.hopper_capacity, 32, 512,
#ifdef NDEBUG
                                                 false
#else
                                                 true
#endif
                   }) {
  }

  campaign_runner& owner_;
  campaign_record campaign_;
  std::vector<phone_number> numbers_;
  carrier& carrier_;
  const clock& clock_;
  campaign_store_factory stores_;
  runner_options options_;
  sched::scheduler scheduler_;
  std::optional<rules::calling_window> window_;

  std::atomic<bool> stopping_{false};   // workers end their loops
  std::atomic<bool> dispatching_{true};  // feeder and dispatcher may take new work
  std::atomic<bool> cancelled_{false};
  std::atomic<std::int64_t> dialed_{0};
  std::atomic<std::int64_t> answered_{0};
  std::atomic<std::int64_t> outstanding_{0};  // reports and returns not yet written
  std::atomic<bool> feeder_idle_{false};       // the last claim found nothing due
  std::atomic<std::size_t> usable_slots_{0};   // slots this process may dial on now (sizes the hopper)
  block_tracker blocks_;

  std::mutex in_flight_mutex_;
  // A call in flight and the carrier's id for it (kept: written to the database already).
  struct live_call {
    in_flight_call call;
    std::string carrier_call_id;
    bool kept = false;
    // The carrier's answer was lost (indeterminate): the call may exist. It keeps its slot until the carrier
    // reports its outcome or lookup() settles it.
    std::optional<nanoseconds> uncertain_since;
  };
  std::unordered_map<std::int64_t, live_call> in_flight_;

  std::mutex reports_mutex_;
  std::condition_variable reports_cv_;
  std::deque<carrier_report> reports_;
  std::vector<contact_return> pending_returns_;  // guarded by reports_mutex_
  std::vector<contact_final> pending_finals_;    // guarded by reports_mutex_
  std::vector<accepted_call> pending_accepted_;  // guarded by reports_mutex_; not counted in outstanding_

  std::mutex feeder_mutex_;
  std::condition_variable feeder_cv_;
  bool feeder_woken_ = false;  // guarded by feeder_mutex_: look again now (a resume, a stop)

  // Feeder thread: waits up to `d` of clock time, or until wake_feeder().
  void feeder_wait(milliseconds d) {
    std::unique_lock lock(feeder_mutex_);
    (void)clock_.wait_for(feeder_cv_, lock, d, [&] {
      return feeder_woken_ || stopping_.load(std::memory_order_acquire);
    });
    feeder_woken_ = false;
  }
  void wake_feeder() {
    {
      std::lock_guard lock(feeder_mutex_);
      feeder_woken_ = true;
    }
    feeder_cv_.notify_all();
  }

  // Decisions on their way from the dispatcher to the originator (recorded, then originated).
  struct dial_batch {
    timestamp decided_at{};
    std::vector<attempt_to_record> attempts;
    std::vector<sched::decision> taken;
    std::vector<std::unique_ptr<contact_entry>> entries;
  };
  std::mutex dial_mutex_;
  std::condition_variable dial_cv_;
  std::deque<dial_batch> dial_queue_;  // guarded by dial_mutex_
  bool dispatcher_done_ = false;       // guarded by dial_mutex_
  std::atomic<std::int64_t> dialing_{0};  // handed out by the scheduler, not yet in in_flight_ nor given back

  // ---- carrier_events (carrier threads) ----
  std::optional<in_flight_call> take(attempt_id attempt) {
    std::lock_guard lock(in_flight_mutex_);
    auto it = in_flight_.find(attempt.value());
    if (it == in_flight_.end()) return std::nullopt;
    auto call = it->second.call;
    in_flight_.erase(it);
    return call;
  }

  // The carrier's id for a call that is now running is noted here; keep_call_ids() writes the ids of calls still
  // running at the control loop's next tick, so that after a crash the next run can ask the carrier about them.
  // Calls that end before (all of them, with an instant carrier) cost nothing more: their outcome carries the id.
  void on_accepted(attempt_id attempt, std::string_view carrier_call_id) noexcept override {
    if (carrier_call_id.empty()) return;
    std::lock_guard lock(in_flight_mutex_);
    if (auto it = in_flight_.find(attempt.value()); it != in_flight_.end())
      it->second.carrier_call_id.assign(carrier_call_id);
  }

  // Control thread, every tick (runner_options::tick, 50 ms): hands the writer the carrier ids of calls in
  // flight not yet written.
  void keep_call_ids() {
    std::vector<accepted_call> ids;
    {
      std::lock_guard lock(in_flight_mutex_);
      for (auto& [attempt, live] : in_flight_) {
        if (live.kept || live.carrier_call_id.empty()) continue;
        live.kept = true;
        ids.push_back({attempt_id{attempt}, live.carrier_call_id});
      }
    }
    if (ids.empty()) return;
    {
      std::lock_guard lock(reports_mutex_);
      for (auto& a : ids) pending_accepted_.push_back(std::move(a));
    }
    reports_cv_.notify_one();
  }

  void on_refused(attempt_id attempt, origination_refusal why, std::optional<milliseconds> retry_after,
                  std::string_view detail) noexcept override {
    if (why == origination_refusal::indeterminate) {
      // Never redialed blindly: the call stays in flight (slot held) until its outcome or a lookup settles it.
      std::lock_guard lock(in_flight_mutex_);
      if (auto it = in_flight_.find(attempt.value()); it != in_flight_.end())
        it->second.uncertain_since = clock_.monotonic();
      return;
    }
    auto call = take(attempt);
    if (!call) return;
    scheduler_.give_back(call->slot, sched::release_reason::not_attempted);
    if (why == origination_refusal::throttled)
      (void)scheduler_.throttle_carrier_account(kAccount, clock_.monotonic() + retry_after.value_or(milliseconds{1000}));
    if (why == origination_refusal::number_unusable) (void)scheduler_.set_number_rotation(call->number, false);
    carrier_report r;
    r.what = carrier_report::kind::refused;
    r.call = *call;
    r.attempt = attempt;
    r.refusal = why;
    r.retry_after = retry_after;
    r.detail = std::string(detail);
    push(std::move(r));
  }

  void on_outcome(const call_event& event) noexcept override {
    auto call = take(event.attempt);
    if (!call) return;
    scheduler_.complete(call->slot);
    if (event.outcome == call_outcome::completed) answered_.fetch_add(1, std::memory_order_relaxed);
    carrier_report r;
    r.call = *call;
    r.attempt = event.attempt;
    r.event = event;
    push(std::move(r));
  }

  void push(carrier_report&& r) {
    outstanding_.fetch_add(1, std::memory_order_acq_rel);
    {
      std::lock_guard lock(reports_mutex_);
      reports_.push_back(std::move(r));
    }
    reports_cv_.notify_one();
  }

  void push_return(contact_return r) {
    outstanding_.fetch_add(1, std::memory_order_acq_rel);
    {
      std::lock_guard lock(reports_mutex_);
      pending_returns_.push_back(std::move(r));
    }
    reports_cv_.notify_one();
  }

  void push_final(contact_final f) {
    outstanding_.fetch_add(1, std::memory_order_acq_rel);
    {
      std::lock_guard lock(reports_mutex_);
      pending_finals_.push_back(std::move(f));
    }
    reports_cv_.notify_one();
  }

  // The earliest time a contact may be called at or after `at`, given its zones (now + 1 day if never within
  // the search horizon: the contact waits, it is not dropped).
  timestamp window_time(const rules::zone_set* zones, timestamp at) {
    if (!zones || !window_) return at;
    auto next = rules::next_open(*window_, *zones, at);
    return next.value_or(at + std::chrono::hours{24});
  }

  // ---- feeder thread ----
  void feeder_loop() {
    auto store = stores_();
    if (!store) return fail_thread("feeder", store.error());
    rules::window_checker checker(*window_);
    rules::zone_cache zones(campaign_.spec.default_region);
    std::vector<sched::contact_item> items;
    // Bytes per contact, as the last claim brought them; before any claim, the largest a contact may be.
    std::size_t per_contact = contact_footprint(claimed_contact{}) + 2 * contacts::import_limits{}.max_variables_bytes;
    while (!stopping_.load(std::memory_order_acquire)) {
      // Waiting: in the hopper, and in the writer's backlog (outcomes, returns, finals not yet written).
      const std::size_t queued = options_.hopper_capacity - std::min(options_.hopper_capacity, scheduler_.room()) +
                                 static_cast<std::size_t>(std::max<std::int64_t>(0, outstanding_.load()));
      int want = claim_size(queued,
                            high_water_mark(usable_slots_.load(std::memory_order_acquire), options_,
                                            campaign_.blocks.size),
                            options_, campaign_.blocks.size);
      // And within the memory budget; with nothing held, at least one contact, so that a budget smaller than
      // one contact still makes progress.
      const std::size_t held = blocks_.bytes();
      if (want > 0) {
        const std::size_t left = held >= options_.memory_budget ? 0 : options_.memory_budget - held;
        const std::size_t room = held == 0 ? std::max<std::size_t>(left / per_contact, 1) : left / per_contact;
        want = static_cast<int>(std::min(static_cast<std::size_t>(want), room));
      }
      if (!dispatching_.load(std::memory_order_acquire) || want == 0) {
        feeder_wait(options_.idle_wait);
        continue;
      }
      auto claimed = (*store)->claim(campaign_.id, want, options_.lease);
      if (!claimed) {
        feeder_wait(milliseconds{200});  // database away: try again shortly
        continue;
      }
      if (claimed->blocks.empty()) {
        feeder_idle_.store(true, std::memory_order_release);
        feeder_wait(options_.idle_poll);
        continue;
      }
      feeder_idle_.store(false, std::memory_order_release);
      // Every contact and open attempt of a claimed block is one unit on its way to the writer; the block is
      // released with the write-back of its last unit. A block that brings nothing is released at once. A block
      // we still track (our own, retaken after its lease lapsed) is already in the pipeline: nothing is added.
      std::unordered_map<std::int64_t, std::int64_t> units;
      std::unordered_map<std::int64_t, std::size_t> bytes;
      for (const auto& b : claimed->blocks) units.emplace(b.first, 0);
      std::size_t claimed_bytes = 0;
      for (const auto& c : claimed->contacts) {
        const auto block = campaign_.blocks.block_of(c.id);
        ++units[block];
        const auto b = contact_footprint(c);
        bytes[block] += b;
        claimed_bytes += b;
      }
      if (!claimed->contacts.empty()) per_contact = std::max<std::size_t>(1, claimed_bytes / claimed->contacts.size());
      for (const auto& o : claimed->open) ++units[campaign_.blocks.block_of(o.contact)];
      std::vector<std::int64_t> empty_blocks;
      std::unordered_set<std::int64_t> retaken;
      for (const auto& [block, n] : units) {
        if (!blocks_.add(block, n, bytes[block])) retaken.insert(block);
        else if (n == 0) empty_blocks.push_back(block);
      }
      if (!empty_blocks.empty()) {
        (void)retry_write(stopping_, clock_, [&] { return (*store)->write_back(campaign_.id, {.release = empty_blocks}); });
        blocks_.released(empty_blocks);
      }
      const auto fresh = [&](contact_id c) { return !retaken.contains(campaign_.blocks.block_of(c)); };
      if (!claimed->open.empty()) {
        // Until the carrier says otherwise, a recovered attempt's call may still be talking: it holds a slot of
        // its number from now (before this claim's fresh contacts can be handed out) until it is settled.
        std::lock_guard lock(reconcile_mutex_);
        for (auto& o : claimed->open) {
          if (!fresh(o.contact)) continue;
          if (!o.stored) hold_recovered(o.number, +1);
          to_reconcile_.push_back(std::move(o));
        }
      }
      items.clear();
      const timestamp now = clock_.wall();
      for (auto& c : claimed->contacts) {
        if (!fresh(c.id)) continue;
        if (c.do_not_call) {
          push_final({c.id, c.attempts, rules::contact_state::do_not_call, "do_not_call"});
          continue;
        }
        auto z = zones.zones_for(c.timezone, c.e164);
        if (!z) {
          push_final({c.id, c.attempts, rules::contact_state::invalid, z.error().message});
          continue;
        }
        if (!checker.open_at(**z, now)) {
          push_return({c.id, c.attempts, window_time(*z, now), "outside_window", {}});
          continue;
        }
        const int npa = rules::nanp_npa_of(c.e164);
        const auto* area = npa > 0 ? rules::find_nanp_area(npa) : nullptr;
        sched::contact_item item;
        item.contact = c.id;
        item.campaign = campaign_.id;
        item.sticky_number = campaign_.spec.sticky_retries ? c.sticky : number_id{};
        item.area_code = static_cast<std::uint16_t>(npa > 0 ? npa : 0);
        item.region = sched::region_code::from(area ? area->region : std::string_view{});
        item.payload = sched::payload_ref{reinterpret_cast<std::uint64_t>(new contact_entry{std::move(c), *z})};
        items.push_back(item);
      }
      const std::size_t accepted = scheduler_.enqueue(items);
      for (std::size_t i = accepted; i < items.size(); ++i) {  // no room after all: back to the database
        std::unique_ptr<contact_entry> entry(reinterpret_cast<contact_entry*>(items[i].payload.value()));
        push_return({entry->contact.id, entry->contact.attempts, now, "hopper_full", {}});
      }
    }
  }

  // ---- dispatcher thread ----
  // Takes decisions as fast as the scheduler paces them and hands them to the originator; it never waits on
  // the database. Recording in the same thread left the CPS buckets (burst 1) idle during every commit, so a
  // batch held one decision per number whatever the commit cost: about 100 attempts per transaction here.
  void dispatcher_loop() {
    rules::window_checker checker(*window_);
    std::vector<sched::decision> decisions(options_.dispatch_batch);
    std::unordered_map<std::int64_t, std::string> caller_ids;
    for (const auto& n : numbers_) caller_ids.emplace(n.id.value(), n.e164);
    while (!stopping_.load(std::memory_order_acquire)) {
      const auto idle = std::max<nanoseconds>(options_.idle_wait, milliseconds{50});
      const std::size_t n = scheduler_.dispatch_wait(decisions, clock_.monotonic() + idle);
      if (n == 0) continue;
      // Counted from the hand-out until in_flight_ has them, so all_quiet() never misses a decision in transit.
      dialing_.fetch_add(static_cast<std::int64_t>(n), std::memory_order_acq_rel);
      dial_batch batch;
      batch.decided_at = clock_.wall();
      for (std::size_t i = 0; i < n; ++i) {
        const auto& d = decisions[i];
        std::unique_ptr<contact_entry> entry(reinterpret_cast<contact_entry*>(d.payload.value()));
        // A contact can wait in the hopper across the window's edge: check again at dial time.
        if (!dispatching_.load(std::memory_order_acquire) || !checker.open_at(*entry->zones, batch.decided_at)) {
          scheduler_.give_back(d.slot, sched::release_reason::not_attempted);
          const bool closed = dispatching_.load(std::memory_order_acquire);
          push_return({entry->contact.id, entry->contact.attempts,
                       closed ? window_time(entry->zones, batch.decided_at) : batch.decided_at,
                       closed ? "outside_window" : "paused", {}});
          dialing_.fetch_sub(1, std::memory_order_acq_rel);
          continue;
        }
        attempt_to_record a;
        a.contact = entry->contact.id;
        a.attempt_no = entry->contact.attempts + 1;
        a.number = d.number;
        a.caller_id = caller_ids[d.number.value()];
        a.callee = entry->contact.e164;
        batch.attempts.push_back(std::move(a));
        batch.taken.push_back(d);
        batch.entries.push_back(std::move(entry));
      }
      if (batch.attempts.empty()) continue;
      {
        std::lock_guard lock(dial_mutex_);
        dial_queue_.push_back(std::move(batch));
      }
      dial_cv_.notify_one();
    }
    {
      std::lock_guard lock(dial_mutex_);
      dispatcher_done_ = true;
    }
    dial_cv_.notify_one();
  }

  // ---- originator thread ----
  // Records every decision queued meanwhile in one transaction (group commit); then each recorded call passes
  // the last gate just before the carrier hears of it, at the time it actually leaves: still dispatching (no
  // pause or cancel since), inside the callee's calling window, on a slot lease renewed recently enough to be
  // live, and spaced from this process's previous originations of the same caller ID (and carrier account) so
  // that no one-second window holds more than its CPS. A decision that waited (a database stall, a slow commit)
  // is therefore checked again, and a backlog leaves at the paced rate, not in a burst. Calls that fail the gate
  // are handed back: their attempt row is deleted, it never happened. The queue is bounded by the slots: a
  // queued or paced decision holds its slot, so the per-number concurrency caps stay exact.
  struct paced_call {
    origination_request request;
    sched::decision taken;
    const rules::zone_set* zones = nullptr;
    int attempts_before = 0;
    timestamp decided_at{};
  };

  // Originations of one caller ID (or of the carrier account) this process placed lately. Originator only.
  struct spacing {
    std::deque<nanoseconds> sent;
    // The earliest time the next origination may leave at `cps` per second (now when it may leave now). The
    // window is widened by `guard`: the carrier counts arrivals, which reach it a little later or sooner than
    // they leave here (a thread wake-up, the network), and two of those offsets must never add up to an extra
    // call inside its second.
    [[nodiscard]] nanoseconds next_allowed(double cps, nanoseconds now, nanoseconds guard) const {
      if (!(cps > 0) || std::isinf(cps)) return now;
      if (cps < 1.0) {
        if (sent.empty()) return now;
        return std::max(now, sent.back() + nanoseconds(static_cast<std::int64_t>(1e9 / cps)) + guard);
      }
      const auto k = static_cast<std::size_t>(cps);  // at most floor(cps) in any one-second window
      if (sent.size() < k) return now;
      return std::max(now, sent[sent.size() - k] + seconds(1) + guard);
    }
    // The originations let through at `noted` (or later) really left at `left`. Idempotent.
    void restamp(nanoseconds noted, nanoseconds left) {
      for (auto it = sent.rbegin(); it != sent.rend() && *it >= noted; ++it) *it = std::max(*it, left);
    }
    void note(nanoseconds at, double cps) {
      sent.push_back(at);
      const std::size_t keep = cps >= 1.0 && !std::isinf(cps) ? static_cast<std::size_t>(cps) : 1;
      while (sent.size() > keep) sent.pop_front();
    }
  };

  // The last gate (originator thread). Empty when the call may leave now; otherwise why not.
  const char* gate(const paced_call& c, nanoseconds now_mono, timestamp now_wall, rules::window_checker& checker) {
    if (stopping_.load(std::memory_order_acquire)) return "engine_stopped";
    if (!dispatching_.load(std::memory_order_acquire)) return cancelled_.load() ? "cancelled" : "paused";
    if (c.zones && !checker.open_at(*c.zones, now_wall)) return "outside_window";
    // After a successful renewal every held slot is valid for at least 3/4 of a lease (lease_slots renews at a
    // quarter of its life); past half a lease without one, the slot may be another engine's by the time the
    // call leaves.
    if (now_mono - last_lease_ok_.load(std::memory_order_acquire) >= options_.lease / 2) return "lease_lapsed";
    // The number was released, unassigned or given to another agent (or the database is away): this engine has
    // no slots on it any more.
    if (!number_usable(c.taken.number)) return "slots_withdrawn";
    return nullptr;
  }

  void originator_loop() {
    auto store = stores_();
    if (!store) {
      fail_thread("originator", store.error());
      // The dispatcher may still queue decisions until it sees stopping_: hand every one back.
      std::unique_lock lock(dial_mutex_);
      while (!dispatcher_done_ || !dial_queue_.empty()) {
        (void)clock_.wait_until(dial_cv_, lock, clock::never,
                                [&] { return dispatcher_done_ || !dial_queue_.empty(); });
        auto pending = std::move(dial_queue_);
        dial_queue_.clear();
        lock.unlock();
        for (auto& b : pending) give_back_batch(b, "engine_stopped");
        lock.lock();
      }
      return;
    }
    rules::window_checker checker(*window_);
    std::deque<dial_batch> queued;
    dial_batch batch;
    std::vector<origination_request> requests;
    std::unordered_map<std::int64_t, std::deque<paced_call>> paced;  // by caller ID, in decision order
    std::unordered_map<std::int64_t, spacing> by_number;
    spacing account;
    std::size_t paced_count = 0;
    std::vector<spacing*> noted;  // the spacings of the calls let through this pass (by_number's nodes are stable)
    nanoseconds next_due = clock::never;
    while (true) {
      {
        std::unique_lock lock(dial_mutex_);
        (void)clock_.wait_until(dial_cv_, lock, paced_count > 0 ? next_due : clock::never, [&] {
          return !dial_queue_.empty() || (dispatcher_done_ && paced_count == 0) ||
                 stopping_.load(std::memory_order_acquire);
        });
        if (dial_queue_.empty() && paced_count == 0 && dispatcher_done_) return;  // everything decided went out
        queued.swap(dial_queue_);
      }
      batch.attempts.clear();
      batch.taken.clear();
      batch.entries.clear();
      for (auto& b : queued) {
        batch.attempts.insert(batch.attempts.end(), b.attempts.begin(), b.attempts.end());
        batch.taken.insert(batch.taken.end(), b.taken.begin(), b.taken.end());
        for (auto& e : b.entries) batch.entries.push_back(std::move(e));
        batch.decided_at = b.decided_at;
      }
      queued.clear();
      if (!batch.attempts.empty()) record_batch(**store, batch, paced, paced_count);
      // Release what may leave now, caller ID by caller ID, in decision order.
      requests.clear();
      const auto now = clock_.monotonic();
      const auto wall = clock_.wall();
      const double account_cps = carrier_.account_cps();
      next_due = clock::never;
      for (auto& [number, q] : paced) {
        auto& spaced = by_number[number];
        const double cps = number_cps(number_id{number});
        while (!q.empty()) {
          auto& c = q.front();
          if (const char* why = gate(c, now, wall, checker)) {
            hand_back(c, why, now, wall);
            q.pop_front();
            --paced_count;
            continue;
          }
          const auto at = std::max(spaced.next_allowed(cps, now, options_.cps_guard),
                                   account.next_allowed(account_cps, now, options_.cps_guard));
          if (at > now) {
            next_due = std::min(next_due, at);
            break;
          }
          spaced.note(now, cps);
          account.note(now, account_cps);
          noted.push_back(&spaced);
          {
            std::lock_guard lock(in_flight_mutex_);
            in_flight_.emplace(c.request.attempt.value(),
                               live_call{in_flight_call{c.taken.slot, c.request.contact, c.taken.number,
                                                        c.attempts_before + 1, c.zones},
                                         {}, false, {}});
          }
          requests.push_back(std::move(c.request));
          q.pop_front();
          --paced_count;
        }
      }
      std::erase_if(paced, [](const auto& kv) { return kv.second.empty(); });
      if (!requests.empty()) {
        dialing_.fetch_sub(static_cast<std::int64_t>(requests.size()), std::memory_order_acq_rel);
        dialed_.fetch_add(static_cast<std::int64_t>(requests.size()), std::memory_order_relaxed);
        carrier_.originate(requests);
        // The calls left when the carrier took them, not when they were let through: this thread can lose the
        // CPU in between (tens of milliseconds on a loaded machine). Spacing the next ones from the earlier time
        // would let a late batch and a punctual successor meet inside one second at the carrier.
        const auto left = clock_.monotonic();
        for (spacing* s : noted) s->restamp(now, left);
        account.restamp(now, left);
      }
      noted.clear();
    }
  }

  // Durable before the carrier hears of it: an attempt is placed at most once, even across a crash. Recorded
  // calls join the paced queues; the others are handed back here. Originator thread.
  void record_batch(campaign_store& store, dial_batch& batch,
                    std::unordered_map<std::int64_t, std::deque<paced_call>>& paced, std::size_t& paced_count) {
    if (!retry_write(stopping_, clock_, [&] { return store.record_attempts(campaign_.id, batch.attempts,
                                                                          carrier_.name().data()); })) {
      give_back_batch(batch, "engine_stopped");
      return;
    }
    auto& attempts = batch.attempts;
    auto& taken = batch.taken;
    auto& entries = batch.entries;
    for (std::size_t i = 0; i < taken.size(); ++i) {
      if (!attempts[i].id) {
        scheduler_.give_back(taken[i].slot, sched::release_reason::not_attempted);
        dialing_.fetch_sub(1, std::memory_order_acq_rel);
        if (attempts[i].do_not_call) {
          // Put on the do-not-call list after it was claimed: ended here, never dialed.
          push_final({attempts[i].contact, attempts[i].attempt_no - 1, rules::contact_state::do_not_call,
                      "do_not_call"});
          continue;
        }
        if (attempts[i].recorded_before) {
          // The attempt exists already (it cannot while block leases hold): reconciled like a crashed run's,
          // never dialed, so that the contact settles instead of coming back for the same attempt again.
          open_attempt o;
          o.attempt = attempt_of(attempts[i].contact, attempts[i].attempt_no);
          o.contact = attempts[i].contact;
          o.attempt_no = attempts[i].attempt_no;
          o.number = attempts[i].number;
          hold_recovered(o.number, +1);
          std::lock_guard lock(reconcile_mutex_);
          to_reconcile_.push_back(std::move(o));
          continue;
        }
        // Our lease on its block lapsed and another engine took the block over: the contact is theirs to dial.
        // The return only settles its unit here (write-back leaves contacts of blocks we lost alone).
        push_return({attempts[i].contact, attempts[i].attempt_no - 1, batch.decided_at, "lease_lost", {}});
        continue;
      }
      paced_call c;
      c.request.attempt = attempts[i].id;
      c.request.campaign = campaign_.id;
      c.request.contact = attempts[i].contact;
      c.request.caller_number = taken[i].number;
      c.request.from_e164 = attempts[i].caller_id;
      c.request.to_e164 = entries[i]->contact.e164;
      c.request.handoff = campaign_.agent_handoff;
      c.request.variables_json = std::move(entries[i]->contact.variables);
      c.request.idempotency_key = fmt::format("attempt-{}", attempts[i].id.value());
      c.taken = taken[i];
      c.zones = entries[i]->zones;
      c.attempts_before = attempts[i].attempt_no - 1;
      c.decided_at = batch.decided_at;
      paced[taken[i].number.value()].push_back(std::move(c));
      ++paced_count;
    }
  }

  // A recorded call that failed the last gate: its slot back, its attempt row deleted, its contact back.
  void hand_back(const paced_call& c, const char* why, nanoseconds, timestamp now) {
    scheduler_.give_back(c.taken.slot, sched::release_reason::not_attempted);
    dialing_.fetch_sub(1, std::memory_order_acq_rel);
    const bool window = std::string_view(why) == "outside_window";
    push_return({c.request.contact, c.attempts_before, window ? window_time(c.zones, now) : now, why,
                 c.request.attempt});
  }

  // Decisions that will not be dialed: slots back, contacts back to the database.
  void give_back_batch(dial_batch& b, const char* reason) {
    for (std::size_t i = 0; i < b.taken.size(); ++i) {
      scheduler_.give_back(b.taken[i].slot, sched::release_reason::not_attempted);
      push_return({b.entries[i]->contact.id, b.entries[i]->contact.attempts, b.decided_at, reason, {}});
    }
    dialing_.fetch_sub(static_cast<std::int64_t>(b.taken.size()), std::memory_order_acq_rel);
  }

  // ---- writer thread ----
  attempt_outcome outcome_for(const carrier_report& r, timestamp now) {
    attempt_outcome o;
    o.attempt = r.attempt;
    o.contact = r.call.contact;
    o.attempt_no = r.call.attempt_no;
    o.number = r.call.number;
    o.event = r.event;
    const auto billable_s = std::chrono::duration_cast<seconds>(r.event.billable + milliseconds{999}).count();
    const auto minutes = (billable_s + 59) / 60;
    if (managed_numbers_.contains(r.call.number.value())) o.cost = minutes * options_.call_minute_rate;
    const auto decision = campaign_.spec.retry.next(r.event.outcome, r.call.attempt_no, now);
    o.next_state = decision.state;
    if (decision.state == rules::contact_state::pending) {
      if (cancelled_.load(std::memory_order_acquire)) {
        o.next_state = rules::contact_state::cancelled;
      } else {
        o.next_attempt_at = window_time(r.call.zones, *decision.retry_at);
        o.pending_reason = "retry";
      }
    }
    return o;
  }

  void writer_loop() {
    auto store = stores_();
    if (!store) return fail_thread("writer", store.error());
    std::deque<carrier_report> batch;
    std::vector<contact_return> returns;
    std::vector<contact_final> finals;
    std::vector<accepted_call> accepted;
    std::unordered_set<std::int64_t> ended;
    std::vector<attempt_outcome> outcomes;
    std::vector<std::int64_t> units, released;
    while (true) {
      {
        std::unique_lock lock(reports_mutex_);
        (void)clock_.wait_for(reports_cv_, lock, options_.idle_wait, [&] {
          return !reports_.empty() || !pending_returns_.empty() || !pending_finals_.empty() ||
                 !pending_accepted_.empty() ||
                 writer_stop_.load(std::memory_order_acquire);
        });
        // At most write_batch of each per transaction: when the writer falls behind, one huge transaction per
        // backlog costs more per row than several of a few thousand (and the backlog then grows).
        const auto take = [&](auto& from, auto& into) {
          if (from.size() <= options_.write_batch) {
            into.swap(from);
            return;
          }
          const auto end = from.begin() + static_cast<std::ptrdiff_t>(options_.write_batch);
          into.assign(std::make_move_iterator(from.begin()), std::make_move_iterator(end));
          from.erase(from.begin(), end);
        };
        take(reports_, batch);
        take(pending_returns_, returns);
        take(pending_finals_, finals);
        take(pending_accepted_, accepted);
      }
      if (batch.empty() && returns.empty() && finals.empty() && accepted.empty()) {
        if (writer_stop_.load(std::memory_order_acquire)) return;
        continue;
      }
      // Each report, return and final is the last unit of one claimed contact (or open attempt): settle them
      // before the write, so that a block whose last unit this is gets released in the same transaction.
      units.clear();
      for (const auto& r : batch) units.push_back(campaign_.blocks.block_of(r.call.contact));
      for (const auto& r : returns) units.push_back(campaign_.blocks.block_of(r.contact));
      for (const auto& f : finals) units.push_back(campaign_.blocks.block_of(f.contact));
      released.clear();
      blocks_.settle(units, released);
      // A call whose report is in this batch needs no separate carrier id: its outcome carries it.
      ended.clear();
      for (const auto& r : batch) ended.insert(r.attempt.value());
      std::erase_if(accepted, [&](const accepted_call& a) { return ended.contains(a.attempt.value()); });
      const timestamp now = clock_.wall();
      outcomes.clear();
      for (const auto& r : batch) {
        if (r.what == carrier_report::kind::outcome) {
          outcomes.push_back(outcome_for(r, now));
        } else if (r.refusal == origination_refusal::invalid_destination) {
          // Never placed: remove the attempt row and end the contact.
          returns.push_back({r.call.contact, r.call.attempt_no - 1, now, "invalid_destination", r.attempt});
          finals.push_back({r.call.contact, r.call.attempt_no - 1, rules::contact_state::invalid,
                            "invalid_destination: " + r.detail});
        } else {
          const auto wait = r.retry_after.value_or(r.refusal == origination_refusal::not_placed ? milliseconds{2000}
                                                                                                : milliseconds{0});
          returns.push_back(
              {r.call.contact, r.call.attempt_no - 1, now + wait, std::string(to_string(r.refusal)), r.attempt});
        }
      }
      // Each report, return and final taken from the queues was counted once in outstanding_ (a refusal's derived
      // return and final were not).
      const auto count = static_cast<std::int64_t>(units.size());
      const write_batch to_write{outcomes, returns, finals, accepted, released};
      if (retry_write(writer_give_up_, clock_, [&] { return (*store)->write_back(campaign_.id, to_write); }))
        blocks_.released(released);
      outstanding_.fetch_sub(count, std::memory_order_acq_rel);
      batch.clear();
      returns.clear();
      finals.clear();
      accepted.clear();
    }
  }

  void fail_thread(const char* which, const error& e) {
    std::lock_guard lock(failure_mutex_);
    if (!failure_) failure_ = make_error(e.code, "{} thread: {}", which, e.message);
    stopping_.store(true, std::memory_order_release);
  }

  std::atomic<bool> writer_stop_{false};
  std::atomic<bool> writer_give_up_{false};  // stop now: what cannot be written is reconciled on the next run
  std::mutex failure_mutex_;
  std::optional<error> failure_;
  std::unordered_map<std::int64_t, bool> managed_numbers_;
  std::unordered_map<std::int64_t, std::int32_t> leased_;

  // What this process may use of each number, and the recovered calls that still occupy some of it: the
  // scheduler's limit is the usable share minus those. Guarded by limits_mutex_ (control and feeder threads
  // write; the originator reads the CPS share).
  struct number_limits {
    int usable = 0;
    double cps = 0;
    int recovered = 0;  // attempts of a dead engine on this number, not yet known to have ended
  };
  std::mutex limits_mutex_;
  std::unordered_map<std::int64_t, number_limits> limits_;

  int campaign_usable_ = 0;  // the campaign slots (units of its concurrency cap) this process may use
  void apply_limits_locked(number_id n) {
    const auto& l = limits_[n.value()];
    (void)scheduler_.set_number_limits(n, std::max(0, l.usable - l.recovered), l.cps);
  }
  int recovered_total_locked() const {
    int total = 0;
    for (const auto& [n, l] : limits_) total += l.recovered;
    return total;
  }
  // Recovered calls of a dead engine occupy the campaign's cap as they occupy their numbers' slots.
  void apply_campaign_limit_locked() {
    (void)scheduler_.set_campaign_max_in_flight(campaign_.id, std::max(0, campaign_usable_ - recovered_total_locked()));
  }
  // A recovered attempt on `n` starts (+1) or stops (-1) holding a slot. Feeder, originator, control threads.
  void hold_recovered(number_id n, int delta) {
    std::lock_guard lock(limits_mutex_);
    auto it = limits_.find(n.value());
    if (it == limits_.end()) return;  // not one of this campaign's numbers: nothing of ours to hold
    it->second.recovered = std::max(0, it->second.recovered + delta);
    apply_limits_locked(n);
    apply_campaign_limit_locked();
  }
  int recovered_on(number_id n) {
    std::lock_guard lock(limits_mutex_);
    auto it = limits_.find(n.value());
    return it == limits_.end() ? 0 : it->second.recovered;
  }
  bool number_usable(number_id n) {
    std::lock_guard lock(limits_mutex_);
    auto it = limits_.find(n.value());
    return it != limits_.end() && it->second.usable > 0;
  }
  double number_cps(number_id n) {
    std::lock_guard lock(limits_mutex_);
    auto it = limits_.find(n.value());
    return it == limits_.end() ? 0 : it->second.cps;
  }

  // ---- control (the caller's thread) ----
  result<void> register_numbers(campaign_store& store) {
    sched::carrier_account_config account;
    account.id = kAccount;
    account.name = std::string(carrier_.name());
    const double account_cps = carrier_.account_cps();
    account.max_cps = account_cps > 0 ? account_cps : std::numeric_limits<double>::infinity();
    if (auto r = scheduler_.add_carrier_account(account); !r) return r;
    for (const auto& n : numbers_) {
      managed_numbers_[n.id.value()] = n.kind == number_kind::managed;
      sched::number_config c;
      c.id = n.id;
      c.e164 = n.e164;
      c.agent = n.agent;
      c.agent_name = n.agent_name;
      c.carrier_account = kAccount;
      c.max_concurrent_calls = 0;  // until this process leases slots
      c.max_cps = n.max_cps;
      const int npa = rules::nanp_npa_of(n.e164);
      c.area_code = static_cast<std::uint16_t>(npa > 0 ? npa : 0);
      const auto* area = npa > 0 ? rules::find_nanp_area(npa) : nullptr;
      c.region = area ? std::string(area->region) : n.country;
      if (auto r = scheduler_.add_number(c); !r) return r;
      std::lock_guard lock(limits_mutex_);
      limits_[n.id.value()] = number_limits{0, n.max_cps, 0};
    }
    if (auto r = scheduler_.add_campaign(campaign_config()); !r) return r;
    return refresh_leases(store);
  }

  sched::campaign_config campaign_config() const {
    sched::campaign_config cc;
    cc.id = campaign_.id;
    cc.agent = campaign_.agent;
    cc.agent_name = campaign_.agent_name;
    cc.numbers = campaign_.numbers;
    cc.strategy = campaign_.spec.strategy;
    cc.sticky_retries = campaign_.spec.sticky_retries;
    cc.max_in_flight = campaign_.spec.max_concurrency;
    return cc;
  }

  // Leases slots in PostgreSQL and gives the scheduler exactly what this process holds.
  result<void> refresh_leases(campaign_store& store) {
    std::vector<number_id> ids;
    std::vector<int> busy;
    const auto stats = scheduler_.stats();
    for (const auto& n : numbers_) {
      ids.push_back(n.id);
      // In use: calls in flight here, and recovered calls of a dead engine that may still be talking; or, when
      // more, the slots the scheduler may fill now (it hands out calls up to its limit between this reading and
      // the release). A share that shrinks is released in two renewals: the first lowers the scheduler's limit
      // (below), the next reads what is in flight under the lowered limit and lets the rest go.
      int in_use = recovered_on(n.id);
      for (const auto& s : stats.numbers)
        if (s.id == n.id) in_use += s.in_flight;
      {
        std::lock_guard lock(limits_mutex_);
        in_use = std::max(in_use, limits_[n.id.value()].usable);
      }
      busy.push_back(in_use);
    }
    // A slot another engine let go less than a second ago may have carried its calls an instant before: the
    // carrier counts those in the same second as ours, so it takes calls here only once that second is over.
    const auto quiet = milliseconds(1000) + options_.cps_guard;
    // Leases count from the renewal's start: the gate's margin must not absorb the renewal's own duration.
    const auto now = clock_.monotonic();
    cooled_at_ = clock::never;  // a failed renewal is retried at the next heartbeat, not at every tick
    auto leases = store.lease_slots(campaign_.agent, ids, busy, options_.lease, quiet);
    if (!leases) return std::move(leases).error();
    std::size_t usable_total = 0;
    for (std::size_t i = 0; i < leases->size(); ++i) {
      const auto& l = (*leases)[i];
      const auto& n = numbers_[i];
      // Slots held above the fair share (kept only because their calls were still running) take no new calls:
      // they drain and the next renewal hands them to the other engines. Handing them out again would keep a
      // busy engine's slots busy forever and starve an engine that joins later.
      // Cooling slots take none either, until the next renewal after they cooled.
      const int usable = std::max(0, std::min(l.held - l.cooling, l.target));
      if (l.cooling > 0) cooled_at_ = std::min<nanoseconds>(cooled_at_, now + l.cooled_in);
      // CPS share in proportion to the usable slots, so the processes together never exceed the number's cap.
      const double share = l.max > 0 ? n.max_cps * usable / l.max : n.max_cps;
      {
        std::lock_guard lock(limits_mutex_);
        auto& lim = limits_[l.number.value()];
        lim.usable = usable;
        lim.cps = share > 0 ? share : n.max_cps;
        apply_limits_locked(l.number);
      }
      leased_[l.number.value()] = l.held;
      usable_total += static_cast<std::size_t>(std::max(0, usable));
    }
    // The campaign's concurrency, shared with the other engines that run it, the same way: what may be in use is
    // what is in flight or, when more, the limit the scheduler has now.
    // In flight from the numbers' counts: a paused or cancelled campaign drains its calls outside the scheduler's
    // campaign list, and the calls still hold their share of the cap meanwhile.
    int campaign_in_use = 0;
    for (const auto& s : stats.numbers) campaign_in_use += s.in_flight;
    {
      std::lock_guard lock(limits_mutex_);
      campaign_in_use = std::max(campaign_in_use + recovered_total_locked(), campaign_usable_);
    }
    auto share =
        store.lease_campaign_slots(campaign_.id, campaign_.spec.max_concurrency, campaign_in_use, options_.lease);
    if (!share) return std::move(share).error();
    const int campaign_usable = std::min(share->held, share->target);
    {
      std::lock_guard lock(limits_mutex_);
      campaign_usable_ = campaign_usable;
      apply_campaign_limit_locked();
    }
    usable_total = std::min(usable_total, static_cast<std::size_t>(std::max(0, campaign_usable)));
    usable_slots_.store(usable_total, std::memory_order_release);
    last_lease_ok_.store(now, std::memory_order_release);
    return ok();
  }
  nanoseconds cooled_at_ = clock::never;  // when a cooling slot may take calls: renew then. Control thread only.

  void drop_capacity() {
    usable_slots_.store(0, std::memory_order_release);
    std::lock_guard lock(limits_mutex_);
    for (const auto& n : numbers_) {
      limits_[n.id.value()].usable = 0;
      apply_limits_locked(n.id);
    }
    campaign_usable_ = 0;
    apply_campaign_limit_locked();
  }

  // Calls whose origination answer was lost: asked of the carrier once `grace` has passed since (a carrier may
  // take a moment to show a call it created). Found: its outcome is taken like any other (a call still running
  // is asked again next beat). Not found: it was never placed, the slot goes back and the contact is retried,
  // its attempt row deleted. Control thread only.
  void settle_uncertain(nanoseconds grace) {
    struct ask {
      attempt_id attempt;
      std::string call_id;
    };
    std::vector<ask> asks;
    const auto now = clock_.monotonic();
    {
      std::lock_guard lock(in_flight_mutex_);
      for (const auto& [attempt, live] : in_flight_)
        if (live.uncertain_since && now - *live.uncertain_since >= grace)
          asks.push_back({attempt_id{attempt}, live.carrier_call_id});
    }
    for (const auto& a : asks) {
      auto found = carrier_.lookup(a.attempt, a.call_id);
      if (!found) continue;  // still running, or the carrier cannot say now: asked again next beat
      if (found->has_value()) {
        on_outcome(**found);
        continue;
      }
      auto call = take(a.attempt);
      if (!call) continue;  // its outcome arrived meanwhile
      scheduler_.give_back(call->slot, sched::release_reason::not_attempted);
      carrier_report r;
      r.what = carrier_report::kind::refused;
      r.call = *call;
      r.attempt = a.attempt;
      r.refusal = origination_refusal::not_placed;
      r.detail = "indeterminate: the carrier has no such call";
      push(std::move(r));
    }
  }

  // Attempts found in recovered blocks (a crashed or cut-off engine's): settle those whose outcome was stored,
  // ask the carrier about the rest, mark unknown what it cannot tell (never redialed). The outcomes go through
  // the writer like any other. A call the carrier reports as still running (errc::unavailable) is asked again
  // on a later beat. Control thread only.
  void reconcile(run_status& status) {
    {
      std::lock_guard lock(reconcile_mutex_);
      for (auto& a : to_reconcile_) unresolved_.push_back(std::move(a));
      to_reconcile_.clear();
    }
    if (unresolved_.empty()) return;
    std::vector<open_attempt> still_open;
    const timestamp now = clock_.wall();
    for (auto& a : unresolved_) {
      carrier_report r;
      r.attempt = a.attempt;
      r.call.contact = a.contact;
      r.call.number = a.number;
      r.call.attempt_no = a.attempt_no;
      if (a.stored) {
        r.event = *a.stored;
      } else {
        auto found = carrier_.lookup(a.attempt, a.carrier_call_id);
        if (!found && found.error().code == errc::unavailable) {
          still_open.push_back(std::move(a));  // still talking (or the carrier cannot say yet): keeps its slot
          continue;
        }
        hold_recovered(a.number, -1);
        if (found && found->has_value()) {
          r.event = **found;
        } else {
          r.event.attempt = a.attempt;
          r.event.outcome = call_outcome::unknown;
          r.event.started_at = now;
          r.event.ended_at = now;
          r.event.detail = "engine stopped before the outcome was known; the carrier could not tell";
          ++status.unknown;
        }
      }
      ++status.reconciled;
      push(std::move(r));
    }
    unresolved_ = std::move(still_open);
  }
  bool reconciling() {
    std::lock_guard lock(reconcile_mutex_);
    return !to_reconcile_.empty();
  }
  std::vector<open_attempt> unresolved_;  // control thread
  std::mutex reconcile_mutex_;
  std::vector<open_attempt> to_reconcile_;  // guarded by reconcile_mutex_: from the feeder's claims

  bool all_quiet() {
    const auto stats = scheduler_.stats();
    std::size_t queued = 0;
    for (const auto& c : stats.campaigns) queued += c.queued;
    std::lock_guard lock(in_flight_mutex_);
    return in_flight_.empty() && unresolved_.empty() && !reconciling() && queued == 0 && stats.hopper_size == 0 &&
           dialing_.load(std::memory_order_acquire) == 0 && outstanding_.load(std::memory_order_acquire) == 0;
  }

  void fill_status(run_status& s, const campaign_progress& p, double cps) {
    s.total = p.total;
    s.finished = p.terminal();
    s.dialed = dialed_.load(std::memory_order_relaxed);
    s.answered = answered_.load(std::memory_order_relaxed);
    s.calls_per_second = cps;
    const auto stats = scheduler_.stats();
    s.in_flight = 0;
    s.numbers.clear();
    for (const auto& n : numbers_) {
      number_usage u;
      u.id = n.id;
      u.e164 = n.e164;
      u.max_concurrent_calls = n.max_concurrent_calls;
      u.leased = leased_[n.id.value()];
      for (const auto& ns : stats.numbers) {
        if (ns.id != n.id) continue;
        u.in_flight = ns.in_flight;
        u.peak_in_flight = ns.peak_in_flight;
        u.calls = ns.handouts;
      }
      s.in_flight += u.in_flight;
      s.numbers.push_back(u);
    }
    const auto remaining = p.total - p.terminal();
    if (cps > 0.5 && remaining > 0) s.eta = seconds(static_cast<std::int64_t>(static_cast<double>(remaining) / cps));
    else s.eta.reset();
    s.waiting_until.reset();
    if (p.next_due && *p.next_due > clock_.wall() && p.in_progress == 0) s.waiting_until = p.next_due;
  }

  std::atomic<nanoseconds> last_lease_ok_{nanoseconds{0}};  // control writes, originator reads
};

campaign_runner::campaign_runner(campaign_record campaign, std::vector<phone_number> numbers, carrier& carrier_ref,
                                 const clock& clk, campaign_store_factory stores, runner_options options)
    : impl_(std::make_unique<impl>(*this, std::move(campaign), std::move(numbers), carrier_ref, clk, std::move(stores),
                                   options)) {}

campaign_runner::~campaign_runner() = default;

result<run_status> campaign_runner::run(const std::function<void(const run_status&)>& on_progress) {
  auto& m = *impl_;
  const clock::participant control_in_time(m.clock_);
  run_status status;
  auto window = m.campaign_.spec.make_window();
  if (!window) return std::move(window).error();
  m.window_ = std::move(*window);

  auto control = m.stores_();
  if (!control) return std::move(control).error();
  auto& store = **control;

  if (auto r = m.register_numbers(store); !r) return std::move(r).error();

  const campaign_state from[] = {campaign_state::draft, campaign_state::paused, campaign_state::running};
  auto started = store.transition(m.campaign_.id, from, campaign_state::running);
  if (!started) return std::move(started).error();

  m.carrier_.set_events(&m);
  // Every thread of the run moves in the clock's time (a manual clock advances only when all of them wait).
  const auto in_time = [&m](void (impl::*body)()) {
    m.clock_.expect_participant();
    return std::thread([&m, body] {
      const clock::participant p(m.clock_, clock::participant::how::announced);
      (m.*body)();
    });
  };
  std::thread writer = in_time(&impl::writer_loop);
  std::thread feeder = in_time(&impl::feeder_loop);
  std::thread dispatcher = in_time(&impl::dispatcher_loop);
  std::thread originator = in_time(&impl::originator_loop);

  const auto tick = m.options_.tick;
  auto last_heartbeat = m.clock_.monotonic();
  auto last_poll = m.clock_.monotonic();
  // progress() sums the blocks' counters (about a millisecond at a million contacts); should a store's be costly,
  // it is refreshed only after ten times its own last cost has passed (at most ~10% of one core), and the
  // completion check asks afresh.
  auto last_progress = m.clock_.monotonic();
  nanoseconds progress_cost{0};
  bool idle_checked = false;  // the database was asked once since the feeder went idle and all went quiet
  const auto refresh_progress = [&](campaign_progress& into) {
    const auto asked = m.clock_.monotonic();
    auto p = store.progress(m.campaign_.id);
    last_progress = m.clock_.monotonic();
    progress_cost = last_progress - asked;
    if (p) into = *p;
    return p.has_value();
  };
  auto last_rate_at = m.clock_.monotonic();
  std::int64_t last_rate_dialed = 0;
  double cps = 0;
  campaign_progress progress;
  (void)refresh_progress(progress);
  campaign_state final_state = campaign_state::running;
  bool pausing = false;
  bool drained = false;
  bool external_resume = false;
  bool db_ok = true;

  while (true) {
    if (stop_now_.load(std::memory_order_acquire)) {
      final_state = campaign_state::paused;
      break;
    }
    {
      std::lock_guard lock(m.failure_mutex_);
      if (m.failure_) break;
    }
    const auto now = m.clock_.monotonic();
    if (m.reconciling()) m.reconcile(status);  // attempts of recovered blocks, as soon as they are claimed
    m.keep_call_ids();
    if (now - last_heartbeat >= m.options_.heartbeat || now >= m.cooled_at_) {
      last_heartbeat = now;
      m.reconcile(status);  // calls the carrier said were still running
      m.settle_uncertain(m.options_.indeterminate_grace);
      auto hb = store.heartbeat(m.campaign_.id, m.options_.lease, m.blocks_.held());
      auto leased = hb ? m.refresh_leases(store) : result<void>(hb.error());
      if (!leased) {
        // Past our lease, another process may own our slots: stop handing out calls until we renew.
        if (now - m.last_lease_ok_.load() >= m.options_.lease / 2) m.drop_capacity();
        db_ok = false;
      } else {
        db_ok = true;
      }
    }
    if (pause_requested_.load(std::memory_order_acquire) && !pausing) {
      pausing = true;
      m.dispatching_.store(false, std::memory_order_release);
      (void)m.scheduler_.pause_campaign(m.campaign_.id);
    }
    if (now - last_poll >= m.options_.state_poll && db_ok) {
      last_poll = now;
      if (auto st = store.state(m.campaign_.id)) {
        if (*st == campaign_state::running && pausing && !pause_requested_.load() && !m.cancelled_.load()) {
          external_resume = true;
        } else if (*st == campaign_state::paused && !pausing) {
          pausing = true;
          m.dispatching_.store(false, std::memory_order_release);
          (void)m.scheduler_.pause_campaign(m.campaign_.id);
        } else if (*st == campaign_state::cancelled && !m.cancelled_.load()) {
          m.cancelled_.store(true, std::memory_order_release);
          m.dispatching_.store(false, std::memory_order_release);
          (void)m.scheduler_.pause_campaign(m.campaign_.id);
        }
      }
      if (now - last_progress >= std::max<nanoseconds>(m.options_.state_poll, 10 * progress_cost))
        (void)refresh_progress(progress);
      const auto dialed = m.dialed_.load(std::memory_order_relaxed);
      const double dt = std::chrono::duration<double>(now - last_rate_at).count();
      if (dt >= 1.0) {
        cps = static_cast<double>(dialed - last_rate_dialed) / dt;
        last_rate_dialed = dialed;
        last_rate_at = now;
      }
      m.fill_status(status, progress, cps);
      status.state = pausing ? campaign_state::paused : campaign_state::running;
      if (on_progress) on_progress(status);
    }

    if (pausing || m.cancelled_.load(std::memory_order_acquire)) {
      // Hand queued contacts back (once; stragglers the feeder enqueued meanwhile come back as rejected),
      // let in-flight calls finish, then stop.
      std::vector<sched::contact_item> returned;
      if (!drained) {
        drained = true;
        if (auto queued = m.scheduler_.remove_campaign(m.campaign_.id)) returned = std::move(*queued);
      }
      m.scheduler_.take_rejected(returned);
      for (const auto& item : returned) {
        std::unique_ptr<contact_entry> entry(reinterpret_cast<contact_entry*>(item.payload.value()));
        m.push_return({item.contact, entry->contact.attempts, m.clock_.wall(),
                       m.cancelled_.load() ? "cancelled" : "paused", {}});
      }
      if (m.all_quiet()) {
        if (m.cancelled_.load() || pause_requested_.load(std::memory_order_acquire) || m.options_.return_on_pause) {
          final_state = m.cancelled_.load() ? campaign_state::cancelled : campaign_state::paused;
          break;
        }
        // Paused by another process: wait here until it is resumed (or cancelled).
        if (external_resume) {
          external_resume = false;
          pausing = false;
          drained = false;
          (void)m.scheduler_.add_campaign(m.campaign_config());
          {
            std::lock_guard lock(m.limits_mutex_);
            m.apply_campaign_limit_locked();  // the share this process holds, not the whole cap
          }
          m.dispatching_.store(true, std::memory_order_release);
          m.wake_feeder();
        }
      }
    } else if (db_ok && m.feeder_idle_.load(std::memory_order_acquire) && m.all_quiet()) {
      // Confirm against the database before declaring victory: at once the first time all went quiet (the
      // polled progress may be seconds old), then whenever the polled progress says nothing is left.
      if (!idle_checked || progress.pending + progress.in_progress == 0) {
        idle_checked = true;
        campaign_progress fresh;
        if (refresh_progress(fresh)) {
          progress = fresh;
          if (fresh.pending + fresh.in_progress == 0 && m.all_quiet()) {
            final_state = campaign_state::completed;
            break;
          }
        }
      }
    } else {
      idle_checked = false;
    }
    m.clock_.sleep_for(tick);  // the control loop's cadence (heartbeats and polls), not an event wait
  }

  m.stopping_.store(true, std::memory_order_release);
  m.wake_feeder();
  m.scheduler_.close();
  feeder.join();
  dispatcher.join();
  originator.join();  // after the dispatcher: it records and originates what the dispatcher queued last
  if (!stop_now_.load()) m.carrier_.drain(seconds{30});
  // Stopping at once: the writer writes what it can and gives up on a database that is away; whatever it could
  // not write is an attempt without outcome, reconciled on the next run.
  if (stop_now_.load()) m.writer_give_up_.store(true, std::memory_order_release);
  m.writer_stop_.store(true, std::memory_order_release);
  m.reports_cv_.notify_all();
  writer.join();

  {
    std::lock_guard lock(m.failure_mutex_);
    if (m.failure_) return *m.failure_;
  }
  if (final_state == campaign_state::cancelled) {
    (void)store.cancel_pending(m.campaign_.id);
  }
  if (!stop_now_.load()) {
    // Cancel is final: a pause or a completion never overwrites a cancel that won the race (the transition is
    // refused), and the contacts of a campaign cancelled meanwhile are cancelled here.
    const campaign_state live[] = {campaign_state::running, campaign_state::paused};
    if (final_state == campaign_state::completed || final_state == campaign_state::paused) {
      auto moved = store.transition(m.campaign_.id, live, final_state);
      if (!moved && moved.error().code == errc::conflict) (void)store.cancel_pending(m.campaign_.id);
    }
  } else {
    const campaign_state running[] = {campaign_state::running};
    (void)store.transition(m.campaign_.id, running, campaign_state::paused);
  }
  // Stopped at once with calls still talking at the carrier: their slots stay ours until the leases run out
  // (then the next engine treats them as a dead engine's), instead of going to another engine while in use.
  bool calls_left = false;
  {
    std::lock_guard lock(m.in_flight_mutex_);
    calls_left = !m.in_flight_.empty();
  }
  if (!stop_now_.load() || !calls_left) (void)store.release_engine();
  if (auto p = store.progress(m.campaign_.id)) progress = *p;
  m.fill_status(status, progress, cps);
  status.state = final_state;
  if (auto st = store.state(m.campaign_.id)) status.state = *st;
  return status;
}

std::string_view to_string(campaign_state s) noexcept {
  switch (s) {
    case campaign_state::draft: return "draft";
    case campaign_state::running: return "running";
    case campaign_state::paused: return "paused";
    case campaign_state::completed: return "completed";
    case campaign_state::cancelled: return "cancelled";
  }
  return "draft";
}

std::optional<campaign_state> parse_campaign_state(std::string_view text) noexcept {
  for (auto s : {campaign_state::draft, campaign_state::running, campaign_state::paused, campaign_state::completed,
                 campaign_state::cancelled})
    if (to_string(s) == text) return s;
  return std::nullopt;
}

std::size_t high_water_mark(std::size_t usable_slots, const runner_options& options,
                            std::int32_t block_size) noexcept {
  const auto block = static_cast<std::size_t>(std::max(1, block_size));
  const auto wanted = std::max(usable_slots * std::max<std::size_t>(1, options.hopper_per_slot), block);
  return std::max<std::size_t>(1, std::min(wanted, options.hopper_capacity));
}

int claim_size(std::size_t queued, std::size_t high_water, const runner_options& options,
               std::int32_t block_size) noexcept {
  if (queued >= high_water || queued > high_water / 2) return 0;  // still above the low-water mark
  const auto room = high_water - queued;
  const auto batch = static_cast<std::size_t>(std::max({1, options.claim_batch, block_size}));
  return static_cast<int>(std::min(room, batch));
}

std::int32_t block_size_for(std::int64_t contacts) noexcept {
  std::int32_t size = 16;
  while (size < 1024 && static_cast<std::int64_t>(size) * 64 < contacts) size *= 2;
  return size;
}

}  // namespace dialer
