// moodycamel synchronises partly with std::atomic_thread_fence, which GCC's ThreadSanitizer does not model
// and warns about (-Wtsan) wherever the fence is inlined. Silence that one warning for this file. The stress
// test under TSan reports no race; should one ever point inside the queue, suspect such a fence first.
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wtsan"

#include "scheduler/scheduler.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#include <concurrentqueue/concurrentqueue.h>
#pragma GCC diagnostic pop

#include "scheduler/detail/bitset_index.hpp"
#include "scheduler/detail/bucket_queue.hpp"
#include "scheduler/detail/gcra.hpp"
#include "scheduler/detail/ring.hpp"
#include "scheduler/detail/selector_tree.hpp"

namespace dialer::sched {

std::string_view to_string(caller_id_strategy s) noexcept {
  switch (s) {
    case caller_id_strategy::round_robin:
      return "round_robin";
    case caller_id_strategy::least_loaded:
      return "least_loaded";
    case caller_id_strategy::local_presence:
      return "local_presence";
  }
  return "unknown";
}

std::optional<caller_id_strategy> parse_caller_id_strategy(std::string_view text) noexcept {
  if (text == "round_robin") return caller_id_strategy::round_robin;
  if (text == "least_loaded") return caller_id_strategy::least_loaded;
  if (text == "local_presence") return caller_id_strategy::local_presence;
  return std::nullopt;
}

std::string_view to_string(release_reason r) noexcept {
  switch (r) {
    case release_reason::completed:
      return "completed";
    case release_reason::not_attempted:
      return "not_attempted";
    case release_reason::number_unusable:
      return "number_unusable";
    case release_reason::throttled:
      return "throttled";
  }
  return "unknown";
}

namespace {

using detail::selector_tree;

constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
constexpr std::uint32_t generation_mask = (1u << 30) - 1;  // bits 62-63 of a queued release carry the reason
constexpr std::size_t drain_chunk = 256;
constexpr std::uint32_t min_spin = 16;
constexpr std::size_t shrink_above =
    16384;  // an emptied campaign queue bigger than this gives its memory back
constexpr std::int32_t max_concurrent_limit = 100'000;
constexpr std::size_t max_numbers = detail::bitset_index::max_bits;
constexpr std::uint32_t max_burst = 1'000'000;

struct queue_traits : moodycamel::ConcurrentQueueDefaultTraits {
  static constexpr std::size_t BLOCK_SIZE = 256;  // bulk operations move whole blocks
};

// A contact in the hopper: 32 bytes, the unit of hopper memory.
struct queued {
  std::int64_t contact;
  std::uint64_t payload;
  std::uint64_t region;
  std::uint32_t sticky;  // number index, npos when none
  std::uint16_t area;
};
static_assert(sizeof(queued) == 32);

struct parked_contact {
  queued item;
  std::uint32_t campaign;
};

struct selector;

// Where a number sits in a selector.
struct membership {
  selector* sel;
  std::uint32_t leaf;
};

struct slot_record {
  queued item;  // kept so a give-back can re-queue the contact
  std::uint32_t number = 0;
  std::uint32_t campaign = 0;
  std::uint32_t generation = 1;
  bool live = false;
};

struct account_state {
  carrier_account_id id;
  std::string name;
  detail::gcra bucket;
  std::int64_t throttled_until = 0;
  bool blocked = false;  // its numbers are unavailable until its timer fires
  bool timer_pending = false;
  std::vector<std::uint32_t> numbers;
};

struct number_state {
  // Touched on every hand-out and release.
  std::int32_t in_flight = 0;
  std::int32_t max_concurrent = 0;
  std::uint32_t account = npos;
  bool in_rotation = true;
  bool available = false;  // in rotation, a free slot, a CPS token and its account not blocked
  bool timer_pending = false;
  detail::gcra bucket;
  std::int64_t used_today = 0;
  std::uint64_t handouts = 0;
  std::int32_t peak = 0;
  std::vector<membership> memberships;
  detail::ring<parked_contact> parked;  // sticky retries waiting for this number
  // Registration data.
  number_id id;
  std::string e164;
  agent_id agent;
  std::string agent_name;
  double max_cps = 1.0;
  std::uint32_t burst = 1;
  std::uint16_t area = 0;
  std::uint64_t region = 0;
};

// The numbers a campaign may pick from (all of them, or one local-presence group), indexed for its strategy.
// Campaigns with the same numbers and strategy share one selector, so a hand-out updates it once.
struct selector {
  caller_id_strategy strategy = caller_id_strategy::round_robin;
  std::vector<std::uint32_t> numbers;  // leaf -> number index
  detail::bitset_index usable;         // round robin: usable leaves
  detail::bucket_queue by_free;        // least loaded: usable leaves by free slots
  selector_tree by_use;                // local presence: usable leaves scored by -(hand-outs today)

  void update(std::uint32_t leaf, const number_state& n, bool flipped) noexcept {
    switch (strategy) {
      case caller_id_strategy::round_robin:
        if (!flipped) return;
        if (n.available) {
          usable.set(leaf);
        } else {
          usable.clear(leaf);
        }
        return;
      case caller_id_strategy::least_loaded:
        by_free.set(leaf, n.available ? static_cast<std::uint32_t>(n.max_concurrent - n.in_flight) : 0);
        return;
      case caller_id_strategy::local_presence:
        by_use.set(leaf, n.available ? -n.used_today : selector_tree::unavailable);
        return;
    }
  }

  // The best usable number for strategies that rank (least loaded, local presence); npos when none.
  [[nodiscard]] std::uint32_t best() const noexcept {
    const std::int32_t leaf = strategy == caller_id_strategy::least_loaded ? by_free.best() : by_use.best();
    return leaf < 0 ? std::numeric_limits<std::uint32_t>::max() : numbers[static_cast<std::uint32_t>(leaf)];
  }
};

enum class campaign_phase : std::uint8_t { free, live, draining };

struct campaign_state {
  // in_flight is decremented on every release and read right after; keeping the flags in another word avoids
  // a merged wide load that the store cannot forward to.
  std::int32_t in_flight = 0;
  std::int32_t max_in_flight = 1;
  campaign_config config;
  campaign_phase phase = campaign_phase::free;
  bool paused = false;
  detail::ring<queued> queue;
  std::size_t parked = 0;
  std::uint64_t handouts = 0;
  std::uint32_t cursor = 0;                                          // round robin: next leaf of `all` to try
  selector* all = nullptr;                                           // every eligible number
  std::vector<selector*> area_selector;                              // local presence: area code -> group
  std::vector<std::pair<std::uint64_t, selector*>> region_selector;  // local presence: sorted by region
  std::vector<std::uint64_t> eligible;                               // bitmap over number indices
};

struct campaign_cache_entry {
  std::int64_t id = 0;
  std::uint32_t index = npos;
};

struct timer {
  std::int64_t at;
  std::uint32_t index;
  bool account;
  friend bool operator>(const timer& a, const timer& b) noexcept { return a.at > b.at; }
};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

std::uint64_t encode_release(slot_handle slot, release_reason reason) noexcept {
  constexpr std::uint64_t handle_bits = (std::uint64_t{1} << 62) - 1;
  return (slot.value() & handle_bits) | (static_cast<std::uint64_t>(reason) << 62);
}

bool valid_rate(double per_second) noexcept {
  return per_second > 0 && per_second == per_second;
}

}  // namespace

struct scheduler::impl {
  impl(const dialer::clock& clock, scheduler_options options)
      : clock_(clock), options_(options), inbound_token_(inbound_), releases_token_(releases_) {}

  // ---- lock-free side ----

  // After a data-plane queue operation (enqueue, complete, give_back). With no dispatcher in wait() this is
  // one fence and one load, no shared write: a waiter announces itself (waiting_, poked_ reset) before it
  // looks at the queues, and the fence on each side guarantees that one of the two sees the other, so no
  // wake-up is lost. Only the first notifier of a wait episode pays for the wake; the others see poked_ and
  // return.
  void notify_data() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (waiting_.load(std::memory_order_relaxed) == 0 || poked_.load(std::memory_order_relaxed)) return;
    if (!poked_.exchange(true, std::memory_order_seq_cst)) wake();
  }

  // Wakes waiters: bumps the wake counter they compare against and signals the condition variable if one
  // sleeps. (A "signalled once per sleep" flag would be cheaper, but a late waker from an earlier episode can
  // spend it without its bump counting for the new one: the benchmark hung on exactly that.) poked_ already
  // limits data-plane wakes to one per wait episode.
  void wake() noexcept {
    wake_epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) != 0) {
      // The empty critical section orders us after a sleeper's predicate check; notifying after unlocking
      // spares the woken thread from blocking straight away on the mutex we would still hold.
      { std::lock_guard lock(sleep_mutex_); }
      sleep_cv_.notify_all();
    }
  }

  [[nodiscard]] bool work_pending() const noexcept {
    return releases_.size_approx() != 0 || inbound_.size_approx() != 0;
  }

  void push_releases(std::span<const slot_handle> slots, release_reason reason) noexcept {
    std::uint64_t buffer[drain_chunk];
    for (std::size_t offset = 0; offset < slots.size(); offset += drain_chunk) {
      const std::size_t count = std::min(drain_chunk, slots.size() - offset);
      for (std::size_t i = 0; i < count; ++i) buffer[i] = encode_release(slots[offset + i], reason);
      if (!releases_.enqueue_bulk(buffer, count)) release_now(std::span(buffer, count));
    }
    notify_data();
  }

  void push_release(slot_handle slot, release_reason reason) noexcept {
    const std::uint64_t value = encode_release(slot, reason);
    if (!releases_.enqueue(value)) release_now(std::span(&value, 1));
    notify_data();
  }

  // Out of memory for the queue: a release must never be lost, so apply it under the core lock instead.
  void release_now(std::span<const std::uint64_t> values) noexcept {
    std::lock_guard lock(core_);
    sync();
    for (const std::uint64_t value : values) release(value);
    publish();
  }

  // ---- core: everything below runs under core_ ----

  // Brings the owned state up to date: the clock, the day, pending releases, new contacts, due timers.
  // Outside dispatch() a drain may free a slot a waiting dispatcher did not see; publish() then wakes it.
  void sync(bool for_dispatch = false) {
    if (!for_dispatch && work_pending()) wake_after_publish_ = true;
    now_ = clock_.monotonic().count();
    const std::int64_t day = std::chrono::floor<std::chrono::days>(clock_.wall().time_since_epoch()).count();
    if (day != day_) {
      day_ = day;
      for (auto& n : numbers_) n.used_today = 0;
      for (std::uint32_t i = 0; i < numbers_.size(); ++i) refresh(i);
    }
    drain_releases();
    drain_inbound();
    // A timer that fires here (a CPS refill, a throttle ending) frees numbers a sleeping dispatcher waits
    // for.
    if (run_timers() && !for_dispatch) wake_after_publish_ = true;
  }

  // Makes the batch's effects visible to the lock-free side.
  void publish() noexcept {
    if (wake_after_publish_) {
      wake_after_publish_ = false;
      wake();
    }
    if (queued_delta_ != 0) {
      queued_.fetch_add(queued_delta_, std::memory_order_acq_rel);
      queued_delta_ = 0;
    }
    const bool waiting = queued_.load(std::memory_order_relaxed) > 0;
    next_wake_.store(waiting && !timers_.empty() ? timers_.front().at : never, std::memory_order_relaxed);
  }

  void drain_releases() {
    std::uint64_t buffer[drain_chunk];
    std::size_t count;
    while ((count = releases_.try_dequeue_bulk(releases_token_, buffer, drain_chunk)) != 0) {
      for (std::size_t i = 0; i < count; ++i) release(buffer[i]);
    }
  }

  void drain_inbound() {
    contact_item buffer[drain_chunk];
    std::size_t count;
    while ((count = inbound_.try_dequeue_bulk(inbound_token_, buffer, drain_chunk)) != 0) {
      for (std::size_t i = 0; i < count; ++i) {
        const contact_item& item = buffer[i];
        const std::uint32_t campaign = campaign_of(item.campaign);
        if (campaign == npos) {
          rejected_.push_back(item);
          ++rejected_count_;
          --queued_delta_;
          continue;
        }
        campaigns_[campaign].queue.push_back(queued{item.contact.value(), item.payload.value(), item.region.packed(),
                                                    number_of(item.sticky_number), item.area_code});
      }
    }
  }

  // Contacts arrive interleaved across campaigns: a direct-mapped cache keeps the lookup off the hash map.
  [[nodiscard]] std::uint32_t campaign_of(campaign_id id) {
    campaign_cache_entry& entry =
        campaign_cache_[static_cast<std::uint64_t>(id.value()) % campaign_cache_.size()];
    if (entry.id == id.value() && id.valid()) return entry.index;
    const auto found = campaign_index_.find(id);
    if (found == campaign_index_.end()) return npos;
    entry = campaign_cache_entry{id.value(), found->second};
    return found->second;
  }

  [[nodiscard]] std::uint32_t number_of(number_id id) const {
    if (!id.valid()) return npos;
    const auto found = number_index_.find(id);
    return found == number_index_.end() ? npos : found->second;
  }

  void push_timer(std::int64_t at, std::uint32_t index, bool account) {
    timers_.push_back(timer{at, index, account});
    std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
  }

  // Returns whether any timer fired.
  bool run_timers() {
    const bool any = !timers_.empty() && timers_.front().at <= now_;
    while (!timers_.empty() && timers_.front().at <= now_) {
      std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
      const timer t = timers_.back();
      timers_.pop_back();
      if (t.account) {
        account_state& a = accounts_[t.index];
        a.timer_pending = false;
        if (!account_ready(a)) {
          a.timer_pending = true;
          push_timer(account_ready_at(a), t.index, true);
          continue;
        }
        a.blocked = false;
        for (const std::uint32_t n : a.numbers) refresh(n);
      } else {
        numbers_[t.index].timer_pending = false;
        refresh(t.index);
      }
    }
    return any;
  }

  [[nodiscard]] bool account_ready(const account_state& a) const noexcept {
    return now_ >= a.throttled_until && a.bucket.ready(now_);
  }
  [[nodiscard]] static std::int64_t account_ready_at(const account_state& a) noexcept {
    return std::max(a.throttled_until, a.bucket.ready_at());
  }

  void block_account(std::uint32_t index) {
    account_state& a = accounts_[index];
    a.blocked = true;
    if (!a.timer_pending) {
      a.timer_pending = true;
      push_timer(account_ready_at(a), index, true);
    }
    for (const std::uint32_t n : a.numbers) refresh(n);
  }

  // Recomputes whether a number can take a call now and updates every selector it is in. `force` after a
  // rebuild, when the selectors are new and do not know the number's state yet.
  void refresh(std::uint32_t index, bool force = false) {
    number_state& n = numbers_[index];
    const bool has_slot = n.in_rotation && n.in_flight < n.max_concurrent;
    const bool has_token = n.bucket.ready(now_);
    const bool available = has_slot && has_token && (n.account == npos || !accounts_[n.account].blocked);
    if (has_slot && !has_token && !n.timer_pending) {
      n.timer_pending = true;
      push_timer(n.bucket.ready_at(), index, false);
    }
    const bool flipped = force || available != n.available;
    n.available = available;
    for (const membership& m : n.memberships) m.sel->update(m.leaf, n, flipped);
  }

  [[nodiscard]] bool eligible(std::uint32_t campaign, std::uint32_t number) const noexcept {
    const auto& bits = campaigns_[campaign].eligible;
    return number / 64 < bits.size() && ((bits[number / 64] >> (number % 64)) & 1) != 0;
  }

  // A sticky retry keeps its number while the number is usable: in rotation, still eligible, with a share.
  [[nodiscard]] bool sticky_usable(std::uint32_t campaign, std::uint32_t number) const noexcept {
    const number_state& n = numbers_[number];
    return n.in_rotation && n.max_concurrent > 0 && eligible(campaign, number);
  }

  void handout(std::uint32_t campaign, std::uint32_t number, const queued& item, decision& out) {
    std::uint32_t slot;
    if (free_slots_.empty()) {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    slot_record& record = slots_[slot];
    record.item = item;
    record.number = number;
    record.campaign = campaign;
    record.live = true;

    number_state& n = numbers_[number];
    ++n.in_flight;
    n.peak = std::max(n.peak, n.in_flight);
    ++n.handouts;
    ++n.used_today;
    n.bucket.take(now_);
    carrier_account_id account_id;
    if (n.account != npos) {
      account_state& a = accounts_[n.account];
      account_id = a.id;
      a.bucket.take(now_);
      if (!a.bucket.ready(now_)) block_account(n.account);
    }
    refresh(number);

    campaign_state& c = campaigns_[campaign];
    ++c.in_flight;
    ++c.handouts;
    ++handouts_;
    --queued_delta_;
    out = decision{contact_id{item.contact},
                   c.config.id,
                   n.id,
                   account_id,
                   payload_ref{item.payload},
                   slot_handle{(static_cast<std::uint64_t>(record.generation) << 32) | (slot + 1)}};
  }

  void release(std::uint64_t value) {
    const auto reason = static_cast<release_reason>(value >> 62);
    const std::uint64_t index = value & 0xffffffffu;
    const auto generation = static_cast<std::uint32_t>((value >> 32) & generation_mask);
    if (index == 0 || index > slots_.size() || !slots_[index - 1].live ||
        slots_[index - 1].generation != generation) {
      ++double_releases_;
      if (options_.abort_on_double_release) {
        std::fprintf(stderr, "dialer::sched: slot handle %#llx released twice or never issued\n",
                     static_cast<unsigned long long>(value));
        std::abort();
      }
      return;
    }
    slot_record& record = slots_[index - 1];
    record.live = false;
    record.generation = record.generation == generation_mask ? 1 : record.generation + 1;
    free_slots_.push_back(static_cast<std::uint32_t>(index - 1));

    number_state& n = numbers_[record.number];
    --n.in_flight;
    campaign_state& c = campaigns_[record.campaign];
    --c.in_flight;
    switch (reason) {
      case release_reason::completed:
        ++completed_;
        break;
      case release_reason::not_attempted:
        ++not_attempted_;
        break;
      case release_reason::number_unusable:
        ++unusable_;
        if (n.in_rotation) {
          n.in_rotation = false;
          unpark(record.number);
        }
        requeue(record.campaign, record.item);
        break;
      case release_reason::throttled:
        ++throttled_;
        requeue(record.campaign, record.item);
        break;
    }
    refresh(record.number);
    if (c.phase == campaign_phase::draining && c.in_flight == 0) free_campaign(record.campaign);
  }

  // The contact was first in line when it was handed out, so it goes back to the front.
  void requeue(std::uint32_t campaign, const queued& item) {
    campaign_state& c = campaigns_[campaign];
    if (c.phase == campaign_phase::live) {
      c.queue.push_front(item);
      ++queued_delta_;
    } else {
      rejected_.push_back(to_item(item, c.config.id));
      ++rejected_count_;
    }
  }

  [[nodiscard]] contact_item to_item(const queued& q, campaign_id campaign) const {
    return contact_item{contact_id{q.contact},
                        campaign,
                        q.sticky == npos ? number_id{} : numbers_[q.sticky].id,
                        payload_ref{q.payload},
                        region_code::from_packed(q.region),
                        q.area};
  }

  void park(std::uint32_t number, std::uint32_t campaign, const queued& item) {
    number_state& n = numbers_[number];
    if (n.parked.empty()) parked_numbers_.push_back(number);
    n.parked.push_back(parked_contact{item, campaign});
    ++campaigns_[campaign].parked;
  }

  // Sends every contact parked on the number back to the front of its campaign's queue, in order.
  void unpark(std::uint32_t number) {
    auto& parked = numbers_[number].parked;
    if (parked.empty()) return;
    for (std::size_t i = parked.size(); i-- > 0;) {
      const parked_contact& p = parked[i];
      campaign_state& c = campaigns_[p.campaign];
      c.queue.push_front(p.item);
      --c.parked;
    }
    parked.clear();
    std::erase(parked_numbers_, number);
  }

  std::size_t serve_parked(std::span<decision> out, std::size_t k) {
    for (std::size_t i = 0; i < parked_numbers_.size() && k < out.size();) {
      const std::uint32_t number = parked_numbers_[i];
      number_state& n = numbers_[number];
      for (std::size_t tries = n.parked.size(); tries > 0 && n.available && k < out.size(); --tries) {
        const parked_contact p = n.parked.front();
        n.parked.pop_front();
        campaign_state& c = campaigns_[p.campaign];
        if (c.paused || c.in_flight >= c.max_in_flight) {
          n.parked.push_back(p);
          continue;
        }
        --c.parked;
        handout(p.campaign, number, p.item, out[k++]);
      }
      if (n.parked.empty()) {
        parked_numbers_[i] = parked_numbers_.back();
        parked_numbers_.pop_back();
      } else {
        ++i;
      }
    }
    return k;
  }

  [[nodiscard]] static std::uint32_t pick(campaign_state& c, const queued& item) noexcept {
    switch (c.config.strategy) {
      case caller_id_strategy::round_robin: {
        const std::int32_t leaf = c.all->usable.next(c.cursor);
        if (leaf < 0) return npos;
        c.cursor = static_cast<std::uint32_t>(leaf) + 1;
        return c.all->numbers[static_cast<std::uint32_t>(leaf)];
      }
      case caller_id_strategy::least_loaded:
        return c.all->best();
      case caller_id_strategy::local_presence: {
        if (item.area < c.area_selector.size() && c.area_selector[item.area] != nullptr) {
          if (const std::uint32_t n = c.area_selector[item.area]->best(); n != npos) return n;
        }
        if (item.region != 0) {
          const auto found = std::lower_bound(c.region_selector.begin(), c.region_selector.end(), item.region,
                                              [](const std::pair<std::uint64_t, selector*>& entry,
                                                 std::uint64_t region) { return entry.first < region; });
          if (found != c.region_selector.end() && found->first == item.region) {
            if (const std::uint32_t n = found->second->best(); n != npos) return n;
          }
        }
        return c.all->best();
      }
    }
    return npos;
  }

  // Up to `budget` contacts of one campaign: handed out, or parked on their sticky number.
  std::size_t serve_campaign(std::uint32_t campaign, std::span<decision> out, std::size_t k,
                             std::size_t budget) {
    campaign_state& c = campaigns_[campaign];
    while (budget > 0 && !c.queue.empty() && c.in_flight < c.max_in_flight) {
      const queued item = c.queue.front();
      if (item.sticky != npos && c.config.sticky_retries && sticky_usable(campaign, item.sticky)) {
        c.queue.pop_front();
        --budget;
        if (numbers_[item.sticky].available) {
          handout(campaign, item.sticky, item, out[k++]);
        } else {
          park(item.sticky, campaign, item);
        }
        continue;
      }
      const std::uint32_t number = pick(c, item);
      if (number == npos) break;  // every eligible number is saturated: the campaign waits
      c.queue.pop_front();
      --budget;
      handout(campaign, number, item, out[k++]);
    }
    if (c.queue.empty() && c.queue.capacity() > shrink_above) c.queue.release();
    return k;
  }

  // Round robin over campaigns, a quantum each, until the batch is full or nobody can move.
  std::size_t serve_campaigns(std::span<decision> out, std::size_t k) {
    const std::size_t count = campaigns_.size();
    if (count == 0) return k;
    const std::size_t start = next_campaign_++ % count;
    for (bool progress = true; progress && k < out.size();) {
      progress = false;
      for (std::size_t j = 0; j < count && k < out.size(); ++j) {
        const auto index = static_cast<std::uint32_t>((start + j) % count);
        campaign_state& c = campaigns_[index];
        if (c.phase != campaign_phase::live || c.paused || c.queue.empty() || c.in_flight >= c.max_in_flight)
          continue;
        const std::size_t before = c.queue.size();
        k = serve_campaign(index, out, k, std::min<std::size_t>(options_.campaign_quantum, out.size() - k));
        progress = progress || c.queue.size() != before;
      }
    }
    return k;
  }

  std::size_t dispatch(std::span<decision> out) {
    std::lock_guard lock(core_);
    // Control changes between here and a later wait() must not be missed: wait() compares against this.
    dispatch_epoch_.store(wake_epoch_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
    sync(true);
    std::size_t k = serve_parked(out, 0);
    if (k < out.size()) k = serve_campaigns(out, k);
    more_ready_.store(k == out.size(), std::memory_order_relaxed);
    publish();
    return k;
  }

  void wait(std::chrono::nanoseconds until) {
    if (closed_.load(std::memory_order_acquire) || more_ready_.load(std::memory_order_relaxed)) return;
    const bool alone = waiting_.fetch_add(1, std::memory_order_seq_cst) == 0;
    poked_.store(false, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint64_t seen = dispatch_epoch_.load(std::memory_order_seq_cst);
    if (wake_epoch_.load(std::memory_order_seq_cst) == seen && !work_pending()) {
      // Spin before sleeping only when contacts are parked (a freed slot should become a hand-out within
      // microseconds, faster than a futex wake-up: ~30 us on an idle VM) and no other dispatcher is already
      // spinning. The spin adapts: it doubles (up to spin_before_sleep) while spins end with work and halves
      // when they end in sleep, so it fades out where it cannot help, e.g. when the completing thread shares
      // the core. No sched_yield: on a busy machine it hands the core away for a whole time slice.
      const std::uint32_t learned = spin_budget_.load(std::memory_order_relaxed);
      const std::uint32_t budget = alone && queued_.load(std::memory_order_relaxed) > 0 ? learned : 0;
      bool woken = false;
      for (std::uint32_t i = 1; i <= budget && !woken; ++i) {
        cpu_relax();
        woken = wake_epoch_.load(std::memory_order_acquire) != seen;
      }
      if (budget != 0) {
        const std::uint32_t next = woken ? std::min(options_.spin_before_sleep, learned * 2) : learned / 2;
        spin_budget_.store(std::max(next, std::min(min_spin, options_.spin_before_sleep)),
                           std::memory_order_relaxed);
      }
      if (!woken) sleep(seen, std::min(until.count(), next_wake_.load(std::memory_order_relaxed)));
    }
    waiting_.fetch_sub(1, std::memory_order_seq_cst);
  }

  void sleep(std::uint64_t seen, std::int64_t deadline) {
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    {
      // Through the clock port, so that a manual clock's time moves this wait too.
      std::unique_lock lock(sleep_mutex_);
      (void)clock_.wait_until(sleep_cv_, lock,
                              deadline == never ? dialer::clock::never : std::chrono::nanoseconds(deadline), [&] {
                                return wake_epoch_.load(std::memory_order_seq_cst) != seen ||
                                       closed_.load(std::memory_order_acquire);
                              });
    }
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }

  // ---- control plane (under core_) ----

  [[nodiscard]] static std::string display(const number_state& n) {
    return n.e164.empty() ? fmt::format("#{}", n.id.value()) : n.e164;
  }

  [[nodiscard]] result<void> check_outbound(agent_id agent, std::string_view agent_name,
                                            std::span<const number_id> numbers) const {
    if (!agent.valid()) return make_error(errc::invalid_input, "a campaign or call needs an agent");
    if (numbers.empty()) {
      const bool any = std::any_of(numbers_.begin(), numbers_.end(),
                                   [&](const number_state& n) { return n.agent == agent; });
      if (!any) return make_error(errc::launch_failed, "agent '{}' has no outbound number", agent_name);
      return ok();
    }
    for (const number_id id : numbers) {
      const std::uint32_t index = number_of(id);
      if (index == npos) {
        return make_error(errc::launch_failed,
                          "number #{} listed for agent '{}' is not a registered outbound number", id.value(),
                          agent_name);
      }
      const number_state& n = numbers_[index];
      if (n.agent == agent) continue;
      if (!n.agent.valid()) {
        return make_error(errc::launch_failed,
                          "number {} is not assigned to any agent, not to campaign agent '{}'", display(n),
                          agent_name);
      }
      return make_error(errc::launch_failed,
                        "number {} is assigned to agent '{}', not to campaign agent '{}'", display(n),
                        n.agent_name, agent_name);
    }
    return ok();
  }

  [[nodiscard]] std::vector<std::uint32_t> eligible_numbers(const campaign_config& config) const {
    std::vector<std::uint32_t> out;
    if (config.numbers.empty()) {
      for (std::uint32_t i = 0; i < numbers_.size(); ++i) {
        if (numbers_[i].agent == config.agent) out.push_back(i);
      }
      return out;
    }
    std::unordered_set<std::uint32_t> seen;
    for (const number_id id : config.numbers) {
      const std::uint32_t index = number_of(id);
      if (index != npos && numbers_[index].agent == config.agent && seen.insert(index).second)
        out.push_back(index);
    }
    return out;
  }

  using selector_key = std::pair<caller_id_strategy, std::vector<std::uint32_t>>;

  // The shared selector for these numbers under this strategy, created on first use.
  selector* selector_for(caller_id_strategy strategy, std::vector<std::uint32_t> numbers,
                         std::map<selector_key, selector*>& made) {
    selector_key key{strategy, std::move(numbers)};
    if (const auto found = made.find(key); found != made.end()) return found->second;
    auto sel = std::make_unique<selector>();
    sel->strategy = strategy;
    sel->numbers = key.second;
    const auto leaves = static_cast<std::uint32_t>(sel->numbers.size());
    switch (strategy) {
      case caller_id_strategy::round_robin:
        sel->usable.reset(leaves);
        break;
      case caller_id_strategy::least_loaded: {
        std::int32_t keys = 1;
        for (const std::uint32_t n : sel->numbers) keys = std::max(keys, numbers_[n].max_concurrent);
        sel->by_free.reset(leaves, static_cast<std::uint32_t>(keys));
        break;
      }
      case caller_id_strategy::local_presence:
        sel->by_use.reset(leaves);
        break;
    }
    for (std::uint32_t leaf = 0; leaf < leaves; ++leaf) {
      numbers_[sel->numbers[leaf]].memberships.push_back(membership{sel.get(), leaf});
    }
    selector* raw = sel.get();
    selectors_.push_back(std::move(sel));
    made.emplace(std::move(key), raw);
    return raw;
  }

  void build_selectors(std::uint32_t index, std::map<selector_key, selector*>& made) {
    campaign_state& c = campaigns_[index];
    c.area_selector.clear();
    c.region_selector.clear();
    std::vector<std::uint32_t> all = eligible_numbers(c.config);
    c.eligible.assign(numbers_.size() / 64 + 1, 0);
    for (const std::uint32_t n : all) c.eligible[n / 64] |= std::uint64_t{1} << (n % 64);
    if (c.config.strategy == caller_id_strategy::local_presence) {
      std::map<std::uint16_t, std::vector<std::uint32_t>> by_area;
      std::map<std::uint64_t, std::vector<std::uint32_t>> by_region;
      for (const std::uint32_t n : all) {
        if (numbers_[n].area != 0) by_area[numbers_[n].area].push_back(n);
        if (numbers_[n].region != 0) by_region[numbers_[n].region].push_back(n);
      }
      c.area_selector.assign(1000, nullptr);
      for (auto& [area, group] : by_area)
        c.area_selector[area] = selector_for(c.config.strategy, std::move(group), made);
      for (auto& [region, group] : by_region) {
        c.region_selector.emplace_back(region, selector_for(c.config.strategy, std::move(group), made));
      }
    }
    c.all = selector_for(c.config.strategy, std::move(all), made);
    if (c.cursor >= c.all->numbers.size()) c.cursor = 0;
  }

  // Registration changed: recompute every campaign's eligible numbers and trees, and send sticky retries
  // parked on a number that is no longer usable for their campaign back to their queue.
  void rebuild() {
    for (auto& n : numbers_) n.memberships.clear();
    for (auto& c : campaigns_) {
      c.all = nullptr;
      c.area_selector.clear();
      c.region_selector.clear();
    }
    selectors_.clear();
    std::map<selector_key, selector*> made;
    for (std::uint32_t c = 0; c < campaigns_.size(); ++c) {
      if (campaigns_[c].phase == campaign_phase::live) build_selectors(c, made);
    }
    for (std::uint32_t n = 0; n < numbers_.size(); ++n) refresh(n, true);
    campaign_cache_.fill(campaign_cache_entry{});
    for (std::size_t i = 0; i < parked_numbers_.size();) {
      const std::uint32_t number = parked_numbers_[i];
      auto& parked = numbers_[number].parked;
      std::vector<parked_contact> back;
      for (std::size_t j = parked.size(); j-- > 0;) {
        if (!sticky_usable(parked[j].campaign, number)) back.push_back(parked[j]);
      }
      if (back.empty()) {
        ++i;
        continue;
      }
      const std::size_t count = parked.size();
      for (std::size_t j = 0; j < count; ++j) {
        const parked_contact p = parked.front();
        parked.pop_front();
        if (sticky_usable(p.campaign, number)) parked.push_back(p);
      }
      for (const parked_contact& p : back) {  // newest first, so push_front restores the order
        campaigns_[p.campaign].queue.push_front(p.item);
        --campaigns_[p.campaign].parked;
      }
      if (parked.empty()) {
        parked_numbers_[i] = parked_numbers_.back();
        parked_numbers_.pop_back();
      } else {
        ++i;
      }
    }
  }

  void free_campaign(std::uint32_t index) {
    campaigns_[index] = campaign_state{};
    free_campaigns_.push_back(index);
  }

  [[nodiscard]] result<std::uint32_t> find_number(number_id id) const {
    const std::uint32_t index = number_of(id);
    if (index == npos)
      return make_error(errc::not_found, "number #{} is not registered with the scheduler", id.value());
    return index;
  }

  [[nodiscard]] result<std::uint32_t> find_campaign(campaign_id id) const {
    const auto found = campaign_index_.find(id);
    if (found == campaign_index_.end()) {
      return make_error(errc::not_found, "campaign {} is not scheduled", id.value());
    }
    return found->second;
  }

  [[nodiscard]] static result<void> check_limits(std::int32_t max_concurrent, double max_cps,
                                                 std::uint32_t burst, std::string_view what) {
    if (max_concurrent < 0 || max_concurrent > max_concurrent_limit) {
      return make_error(errc::invalid_input, "{}: max_concurrent_calls {} is outside 0..{}", what,
                        max_concurrent, max_concurrent_limit);
    }
    if (!valid_rate(max_cps))
      return make_error(errc::invalid_input, "{}: max_cps must be > 0, got {}", what, max_cps);
    if (max_cps < 1e-6) return make_error(errc::invalid_input, "{}: max_cps {} is below 1e-6", what, max_cps);
    if (burst < 1 || burst > max_burst) {
      return make_error(errc::invalid_input, "{}: cps_burst {} is outside 1..{}", what, burst, max_burst);
    }
    return ok();
  }

  void reserve_slots() {
    std::size_t total = 0;
    for (const auto& n : numbers_) total += static_cast<std::size_t>(n.max_concurrent);
    total = std::min<std::size_t>(total, std::size_t{1} << 22);
    slots_.reserve(total);
    free_slots_.reserve(total);
  }

  void fill_stats(scheduler_stats& out) const {
    const std::int64_t queued = std::max<std::int64_t>(0, queued_.load(std::memory_order_acquire));
    out.hopper_size = static_cast<std::size_t>(queued);
    out.hopper_capacity = options_.hopper_capacity;
    out.hopper_room = out.hopper_capacity > out.hopper_size ? out.hopper_capacity - out.hopper_size : 0;
    out.handouts = handouts_;
    out.completed = completed_;
    out.not_attempted = not_attempted_;
    out.number_unusable = unusable_;
    out.throttled = throttled_;
    out.double_releases = double_releases_;
    out.rejected = rejected_count_;
    out.slots_in_use = slots_.size() - free_slots_.size();
    out.numbers.clear();
    for (const auto& n : numbers_) {
      out.numbers.push_back(number_stats{n.id, n.in_flight, n.peak, n.max_concurrent, n.handouts,
                                         static_cast<std::uint64_t>(n.used_today), n.parked.size(),
                                         n.in_rotation});
    }
    out.campaigns.clear();
    for (const auto& c : campaigns_) {
      if (c.phase != campaign_phase::live) continue;
      const auto& all = c.all->numbers;
      const auto rotating = static_cast<std::size_t>(
          std::count_if(all.begin(), all.end(), [&](std::uint32_t n) { return numbers_[n].in_rotation; }));
      out.campaigns.push_back(campaign_stats{c.config.id, c.in_flight, c.max_in_flight,
                                             c.queue.size() + c.parked, c.handouts, all.size(), rotating,
                                             c.paused});
    }
  }

  const dialer::clock& clock_;
  const scheduler_options options_;

  // Lock-free side: touched by producers, completers and waiters.
  moodycamel::ConcurrentQueue<contact_item, queue_traits> inbound_;
  moodycamel::ConcurrentQueue<std::uint64_t, queue_traits> releases_;
  alignas(64) std::atomic<std::int64_t> queued_{0};
  alignas(64) std::atomic<std::uint32_t> waiting_{0};  // dispatchers inside wait(): read by every notify
  std::atomic<bool> poked_{false};                     // a notifier already woke this wait episode
  alignas(64) std::atomic<std::uint64_t> wake_epoch_{0};
  std::atomic<std::uint64_t> dispatch_epoch_{0};  // wake_epoch_ as the latest dispatch() began
  std::atomic<std::uint32_t> sleepers_{0};
  std::atomic<bool> closed_{false};
  std::atomic<bool> more_ready_{false};
  std::atomic<std::uint32_t> spin_budget_{min_spin};  // see wait()
  std::atomic<std::int64_t> next_wake_{never};
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;

  // Core: owned by whoever holds core_.
  alignas(64) mutable std::mutex core_;
  moodycamel::ConsumerToken inbound_token_;
  moodycamel::ConsumerToken releases_token_;
  std::int64_t now_ = 0;
  std::int64_t day_ = std::numeric_limits<std::int64_t>::min();
  std::int64_t queued_delta_ = 0;  // applied to queued_ once per batch
  bool wake_after_publish_ = false;
  std::vector<number_state> numbers_;
  std::unordered_map<number_id, std::uint32_t> number_index_;
  std::vector<account_state> accounts_;
  std::unordered_map<carrier_account_id, std::uint32_t> account_index_;
  std::vector<campaign_state> campaigns_;
  std::unordered_map<campaign_id, std::uint32_t> campaign_index_;
  std::array<campaign_cache_entry, 64> campaign_cache_{};  // cleared by rebuild()
  std::vector<std::unique_ptr<selector>> selectors_;
  std::vector<std::uint32_t> free_campaigns_;
  std::size_t next_campaign_ = 0;
  std::vector<slot_record> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<timer> timers_;
  std::vector<std::uint32_t> parked_numbers_;
  std::vector<contact_item> rejected_;
  std::uint64_t handouts_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t not_attempted_ = 0;
  std::uint64_t unusable_ = 0;
  std::uint64_t throttled_ = 0;
  std::uint64_t double_releases_ = 0;
  std::uint64_t rejected_count_ = 0;
};

scheduler::scheduler(const dialer::clock& clock, scheduler_options options)
    : impl_(std::make_unique<impl>(clock, options)) {}

scheduler::~scheduler() = default;

result<void> scheduler::add_carrier_account(const carrier_account_config& account) {
  std::lock_guard lock(impl_->core_);
  if (!account.id.valid()) return make_error(errc::invalid_input, "a carrier account needs an id");
  if (impl_->account_index_.contains(account.id)) {
    return make_error(errc::conflict, "carrier account {} is already registered", account.id.value());
  }
  const auto what = fmt::format("carrier account '{}'", account.name);
  if (auto checked = impl::check_limits(0, account.max_cps, account.cps_burst, what); !checked)
    return checked;
  account_state a;
  a.id = account.id;
  a.name = account.name;
  a.bucket.configure(account.max_cps, account.cps_burst);
  impl_->account_index_.emplace(account.id, static_cast<std::uint32_t>(impl_->accounts_.size()));
  impl_->accounts_.push_back(std::move(a));
  return ok();
}

result<void> scheduler::add_number(const number_config& number) {
  std::lock_guard lock(impl_->core_);
  auto& s = *impl_;
  if (!number.id.valid()) return make_error(errc::invalid_input, "a number needs an id");
  if (s.number_index_.contains(number.id)) {
    return make_error(errc::conflict, "number #{} is already registered", number.id.value());
  }
  if (s.numbers_.size() >= max_numbers) {
    return make_error(errc::invalid_input, "the scheduler holds at most {} numbers", max_numbers);
  }
  const auto what =
      fmt::format("number {}", number.e164.empty() ? fmt::format("#{}", number.id.value()) : number.e164);
  if (auto checked = impl::check_limits(number.max_concurrent_calls, number.max_cps, number.cps_burst, what);
      !checked) {
    return checked;
  }
  if (number.area_code >= 1000) {
    return make_error(errc::invalid_input, "{}: area code {} is not a 3-digit NANP code", what,
                      number.area_code);
  }
  if (number.region.size() > 8) {
    return make_error(errc::invalid_input, "{}: region '{}' is longer than 8 characters", what,
                      number.region);
  }
  std::uint32_t account = npos;
  if (number.carrier_account.valid()) {
    const auto found = s.account_index_.find(number.carrier_account);
    if (found == s.account_index_.end()) {
      return make_error(errc::not_found, "{}: carrier account {} is not registered", what,
                        number.carrier_account.value());
    }
    account = found->second;
  }
  s.sync();
  const auto index = static_cast<std::uint32_t>(s.numbers_.size());
  number_state n;
  n.max_concurrent = number.max_concurrent_calls;
  n.account = account;
  n.in_rotation = number.in_rotation;
  n.bucket.configure(number.max_cps, number.cps_burst);
  n.id = number.id;
  n.e164 = number.e164;
  n.agent = number.agent;
  n.agent_name = number.agent_name;
  n.max_cps = number.max_cps;
  n.burst = number.cps_burst;
  n.area = number.area_code;
  n.region = region_code::from(number.region).packed();
  s.numbers_.push_back(std::move(n));
  s.number_index_.emplace(number.id, index);
  if (account != npos) s.accounts_[account].numbers.push_back(index);
  s.reserve_slots();
  s.rebuild();
  s.publish();
  s.wake();
  return ok();
}

result<void> scheduler::set_number_limits(number_id number, std::int32_t max_concurrent_calls,
                                          double max_cps) {
  std::lock_guard lock(impl_->core_);
  auto& s = *impl_;
  const auto found = s.find_number(number);
  if (!found) return found.error();
  number_state& n = s.numbers_[*found];
  if (auto checked = impl::check_limits(max_concurrent_calls, max_cps, n.burst,
                                        fmt::format("number {}", impl::display(n)));
      !checked) {
    return checked;
  }
  s.sync();
  n.max_concurrent = max_concurrent_calls;
  n.max_cps = max_cps;
  n.bucket.configure(max_cps, n.burst);
  if (max_concurrent_calls == 0) s.unpark(*found);
  s.reserve_slots();
  // A least-loaded selector sized for the old limit needs more buckets.
  const bool outgrown = std::any_of(n.memberships.begin(), n.memberships.end(), [&](const membership& m) {
    return m.sel->strategy == caller_id_strategy::least_loaded &&
           m.sel->by_free.keys() < static_cast<std::uint32_t>(max_concurrent_calls);
  });
  if (outgrown) {
    s.rebuild();
  } else {
    s.refresh(*found);
  }
  s.publish();
  s.wake();
  return ok();
}

result<void> scheduler::set_number_rotation(number_id number, bool in_rotation) {
  std::lock_guard lock(impl_->core_);
  auto& s = *impl_;
  const auto found = s.find_number(number);
  if (!found) return found.error();
  s.sync();
  s.numbers_[*found].in_rotation = in_rotation;
  if (!in_rotation) s.unpark(*found);
  s.refresh(*found);
  s.publish();
  s.wake();
  return ok();
}

result<void> scheduler::assign_number(number_id number, agent_id agent, std::string agent_name) {
  std::lock_guard lock(impl_->core_);
  auto& s = *impl_;
  const auto found = s.find_number(number);
  if (!found) return found.error();
  s.sync();
  s.numbers_[*found].agent = agent;
  s.numbers_[*found].agent_name = std::move(agent_name);
  s.rebuild();
  s.publish();
  s.wake();
  return ok();
}

result<void> scheduler::check_outbound(agent_id agent, std::string_view agent_name,
                                       std::span<const number_id> numbers) const {
  std::lock_guard lock(impl_->core_);
  return impl_->check_outbound(agent, agent_name, numbers);
}

result<void> scheduler::add_campaign(const campaign_config& campaign) {
  std::lock_guard lock(impl_->core_);
  auto& s = *impl_;
  if (!campaign.id.valid()) return make_error(errc::invalid_input, "a campaign needs an id");
  if (s.campaign_index_.contains(campaign.id)) {
    return make_error(errc::conflict, "campaign {} is already scheduled", campaign.id.value());
  }
  if (campaign.max_in_flight < 1) {
    return make_error(errc::invalid_input, "campaign {}: max_in_flight must be >= 1, got {}",
                      campaign.id.value(), campaign.max_in_flight);
  }
  if (auto checked = s.check_outbound(campaign.agent, campaign.agent_name, campaign.numbers); !checked)
    return checked;
  s.sync();
  std::uint32_t index;
  if (s.free_campaigns_.empty()) {
    index = static_cast<std::uint32_t>(s.campaigns_.size());
    s.campaigns_.emplace_back();
  } else {
    index = s.free_campaigns_.back();
    s.free_campaigns_.pop_back();
  }
  campaign_state& c = s.campaigns_[index];
  c.config = campaign;
  c.phase = campaign_phase::live;
  c.paused = campaign.paused;
  c.max_in_flight = campaign.max_in_flight;
  s.campaign_index_.emplace(campaign.id, index);
  s.rebuild();
  s.publish();
  s.wake();
  return ok();
}

result<void> scheduler::pause_campaign(campaign_id campaign) {
  std::lock_guard lock(impl_->core_);
  const auto found = impl_->find_campaign(campaign);
  if (!found) return found.error();
  impl_->campaigns_[*found].paused = true;
  return ok();
}

result<void> scheduler::resume_campaign(campaign_id campaign) {
  std::lock_guard lock(impl_->core_);
  const auto found = impl_->find_campaign(campaign);
  if (!found) return found.error();
  impl_->campaigns_[*found].paused = false;
  impl_->wake();
  return ok();
}

result<void> scheduler::set_campaign_max_in_flight(campaign_id campaign, std::int32_t max_in_flight) {
  std::lock_guard lock(impl_->core_);
  const auto found = impl_->find_campaign(campaign);
  if (!found) return found.error();
  if (max_in_flight < 0) {
    return make_error(errc::invalid_input, "campaign {}: max_in_flight must be >= 0, got {}",
                      campaign.value(), max_in_flight);
  }
  impl_->campaigns_[*found].max_in_flight = max_in_flight;
  impl_->wake();
  return ok();
}

result<std::vector<contact_item>> scheduler::remove_campaign(campaign_id campaign) {
  std::lock_guard lock(impl_->core_);
  auto& s = *impl_;
  const auto found = s.find_campaign(campaign);
  if (!found) return found.error();
  s.sync();  // contacts enqueued before this call are now in the campaign's queue
  const std::uint32_t index = *found;
  campaign_state& c = s.campaigns_[index];
  std::vector<contact_item> out;
  out.reserve(c.queue.size() + c.parked);
  for (std::size_t i = 0; i < c.queue.size(); ++i) out.push_back(s.to_item(c.queue[i], campaign));
  c.queue.release();
  for (std::size_t i = 0; i < s.parked_numbers_.size() && c.parked > 0;) {
    auto& parked = s.numbers_[s.parked_numbers_[i]].parked;
    for (std::size_t j = parked.size(); j > 0; --j) {
      const parked_contact p = parked.front();
      parked.pop_front();
      if (p.campaign == index) {
        out.push_back(s.to_item(p.item, campaign));
        --c.parked;
      } else {
        parked.push_back(p);
      }
    }
    if (parked.empty()) {
      s.parked_numbers_[i] = s.parked_numbers_.back();
      s.parked_numbers_.pop_back();
    } else {
      ++i;
    }
  }
  s.queued_delta_ -= static_cast<std::int64_t>(out.size());
  s.campaign_index_.erase(campaign);
  if (c.in_flight == 0) {
    s.free_campaign(index);
  } else {
    c.phase = campaign_phase::draining;
  }
  s.rebuild();
  s.publish();
  s.wake();
  return out;
}

result<void> scheduler::throttle_carrier_account(carrier_account_id account, std::chrono::nanoseconds until) {
  std::lock_guard lock(impl_->core_);
  auto& s = *impl_;
  const auto found = s.account_index_.find(account);
  if (found == s.account_index_.end()) {
    return make_error(errc::not_found, "carrier account {} is not registered", account.value());
  }
  s.sync();
  account_state& a = s.accounts_[found->second];
  a.throttled_until = std::max(a.throttled_until, until.count());
  if (!s.account_ready(a)) s.block_account(found->second);
  s.publish();
  return ok();
}

std::size_t scheduler::enqueue(std::span<const contact_item> items) noexcept {
  if (items.empty()) return 0;
  auto& s = *impl_;
  const auto capacity = static_cast<std::int64_t>(s.options_.hopper_capacity);
  std::int64_t current = s.queued_.load(std::memory_order_relaxed);
  std::int64_t take;
  do {
    const std::int64_t room = capacity - current;
    if (room <= 0) return 0;
    take = std::min<std::int64_t>(room, static_cast<std::int64_t>(items.size()));
  } while (!s.queued_.compare_exchange_weak(current, current + take, std::memory_order_acq_rel,
                                            std::memory_order_relaxed));
  if (!s.inbound_.enqueue_bulk(items.data(), static_cast<std::size_t>(take))) {
    s.queued_.fetch_sub(take, std::memory_order_acq_rel);
    return 0;
  }
  s.notify_data();
  return static_cast<std::size_t>(take);
}

std::size_t scheduler::room() const noexcept {
  const auto queued = impl_->queued_.load(std::memory_order_acquire);
  const auto capacity = static_cast<std::int64_t>(impl_->options_.hopper_capacity);
  return queued >= capacity ? 0 : static_cast<std::size_t>(capacity - queued);
}

std::size_t scheduler::hopper_size() const noexcept {
  return static_cast<std::size_t>(std::max<std::int64_t>(0, impl_->queued_.load(std::memory_order_acquire)));
}

std::size_t scheduler::hopper_capacity() const noexcept {
  return impl_->options_.hopper_capacity;
}

std::size_t scheduler::dispatch(std::span<decision> out) noexcept {
  if (out.empty()) return 0;
  return impl_->dispatch(out);
}

void scheduler::wait(std::chrono::nanoseconds until) noexcept {
  impl_->wait(until);
}

std::size_t scheduler::dispatch_wait(std::span<decision> out, std::chrono::nanoseconds until) noexcept {
  if (out.empty()) return 0;
  for (;;) {
    if (const std::size_t count = impl_->dispatch(out); count != 0) return count;
    if (impl_->closed_.load(std::memory_order_acquire)) return 0;
    if (until != forever && impl_->clock_.monotonic() >= until) return 0;
    impl_->wait(until);
  }
}

std::optional<std::chrono::nanoseconds> scheduler::next_refill() const noexcept {
  const std::int64_t at = impl_->next_wake_.load(std::memory_order_relaxed);
  if (at == never) return std::nullopt;
  return std::chrono::nanoseconds(at);
}

void scheduler::complete(slot_handle slot) noexcept {
  impl_->push_release(slot, release_reason::completed);
}

void scheduler::complete(std::span<const slot_handle> slots) noexcept {
  impl_->push_releases(slots, release_reason::completed);
}

void scheduler::give_back(slot_handle slot, release_reason reason) noexcept {
  impl_->push_release(slot, reason);
}

void scheduler::give_back(std::span<const slot_handle> slots, release_reason reason) noexcept {
  impl_->push_releases(slots, reason);
}

void scheduler::close() noexcept {
  impl_->closed_.store(true, std::memory_order_release);
  impl_->wake_epoch_.fetch_add(1, std::memory_order_seq_cst);
  { std::lock_guard lock(impl_->sleep_mutex_); }
  impl_->sleep_cv_.notify_all();
}

scheduler_stats scheduler::stats() {
  scheduler_stats out;
  stats(out);
  return out;
}

void scheduler::stats(scheduler_stats& out) {
  std::lock_guard lock(impl_->core_);
  impl_->sync();
  impl_->publish();
  impl_->fill_stats(out);
}

std::size_t scheduler::take_rejected(std::vector<contact_item>& out) {
  std::lock_guard lock(impl_->core_);
  impl_->sync();
  impl_->publish();
  const std::size_t count = impl_->rejected_.size();
  out.insert(out.end(), impl_->rejected_.begin(), impl_->rejected_.end());
  impl_->rejected_.clear();
  return count;
}

}  // namespace dialer::sched
