#pragma once
// The batch scheduler: a bounded hopper of contacts per campaign, caller-ID selection, per-number concurrency
// slots, per-number and per-carrier-account CPS buckets, campaign caps, parking and wake-up.
//
// Threading model (see scheduler/README.md):
// - Data plane, lock-free, any thread: enqueue(), complete(), give_back(), room(), hopper_size().
//   They push into lock-free queues (moodycamel::ConcurrentQueue) and bump a wake-up counter.
// - Dispatch, any number of threads: dispatch() takes the core lock for one batch, drains the completion and
//   contact queues, and hands out up to out.size() decisions. All slot, bucket and hopper state is owned by
//   whoever holds the core lock, so none of it needs atomics; the lock is taken once per batch.
// - Control plane and stats: registration, runtime changes and stats() take the core lock; they may allocate.
//
// Time comes only from the injected dialer::clock; `until` arguments are on its monotonic scale.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ids.hpp"
#include "engine/ports/clock.hpp"
#include "engine/result.hpp"
#include "scheduler/types.hpp"

namespace dialer::sched {

// A deadline for wait() and dispatch_wait() that never passes.
inline constexpr std::chrono::nanoseconds forever = std::chrono::nanoseconds::max();

class scheduler {
 public:
  // The clock must outlive the scheduler.
  explicit scheduler(const dialer::clock& clock, scheduler_options options = {});
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  // ---- Registration and runtime control. Any thread; take the core lock; may allocate. ----

  // conflict when the id is taken; invalid_input when the cap is not > 0.
  result<void> add_carrier_account(const carrier_account_config& account);
  // conflict when the id is taken; not_found when its carrier account is unknown; invalid_input on bad
  // limits.
  result<void> add_number(const number_config& number);
  // Grows or shrinks a number's share. Lowering never cancels calls in flight: the number simply gets no new
  // hand-out until it is under the new limit.
  result<void> set_number_limits(number_id number, std::int32_t max_concurrent_calls, double max_cps);
  // Takes a number out of rotation (or back in). Contacts parked on it for a sticky retry go back to their
  // campaign's queue.
  result<void> set_number_rotation(number_id number, bool in_rotation);
  // Reassigns a number (agent invalid: unassigned). Campaigns of the old agent stop using it at once.
  result<void> assign_number(number_id number, agent_id agent, std::string agent_name);

  // Fail-fast check for a campaign or a single call: launch_failed when the agent has no outbound number or a
  // listed number is unknown or assigned to another agent; the message names the agent and the number.
  [[nodiscard]] result<void> check_outbound(agent_id agent, std::string_view agent_name,
                                            std::span<const number_id> numbers) const;
  // Runs check_outbound first; conflict when the campaign id is live; invalid_input when max_in_flight < 1.
  result<void> add_campaign(const campaign_config& campaign);
  result<void> pause_campaign(campaign_id campaign);
  result<void> resume_campaign(campaign_id campaign);
  // 0 hands out nothing for the campaign until raised (an engine that holds no share of a cap shared with
  // other engines); invalid_input when negative.
  result<void> set_campaign_max_in_flight(campaign_id campaign, std::int32_t max_in_flight);
  // Removes the campaign and returns its still-queued contacts (including those enqueued before this call and
  // not yet seen by a dispatcher), so the engine can release their claims. Calls in flight finish normally;
  // contacts enqueued for it afterwards are rejected (see take_rejected()).
  result<std::vector<contact_item>> remove_campaign(campaign_id campaign);
  // Carrier back-pressure (HTTP 429, SIP 503 Retry-After): no hand-out on the account's numbers before
  // `until`.
  result<void> throttle_carrier_account(carrier_account_id account, std::chrono::nanoseconds until);

  // ---- Data plane. ----

  // Bulk enqueue from any thread. Accepts at most room() contacts (a prefix of `items`) and returns how many.
  // Lock-free; allocates only when the inbound queue needs a new block (its pool then keeps it).
  // A contact for an unknown campaign is accepted here and rejected when a dispatcher sees it.
  std::size_t enqueue(std::span<const contact_item> items) noexcept;
  // Contacts the feeder may add now. Lock-free, never allocates.
  [[nodiscard]] std::size_t room() const noexcept;
  // Contacts accepted and not yet handed out (queued, parked, or not yet seen by a dispatcher).
  [[nodiscard]] std::size_t hopper_size() const noexcept;
  [[nodiscard]] std::size_t hopper_capacity() const noexcept;

  // Hands out up to out.size() decisions, never blocks on time (it takes the core lock for one batch).
  // Any thread. Allocates only when the slot table, a campaign queue or the timer heap outgrows its peak.
  std::size_t dispatch(std::span<decision> out) noexcept;
  // Blocks until dispatch() may have something: contacts arrived, a slot freed, a control change, the
  // earliest CPS refill or throttle expiry, close(), or `until` (monotonic). Spins briefly, then sleeps on a
  // condition variable; the wake-up counter is read before the last dispatch drained, so no wake-up is lost.
  void wait(std::chrono::nanoseconds until = forever) noexcept;
  // dispatch(), then wait() and retry until something is handed out, `until` passes or close() is called.
  std::size_t dispatch_wait(std::span<decision> out, std::chrono::nanoseconds until = forever) noexcept;
  // The earliest time a CPS bucket or a throttle lets queued work go, as of the last dispatch; nullopt when
  // nothing queued waits for time (it waits for a slot or for nothing).
  [[nodiscard]] std::optional<std::chrono::nanoseconds> next_refill() const noexcept;

  // The call ended: the slot frees. Any thread; lock-free; a double release is counted (and aborts when
  // scheduler_options::abort_on_double_release). Allocates only when the completion queue needs a block.
  void complete(slot_handle slot) noexcept;
  void complete(std::span<const slot_handle> slots) noexcept;
  // The slot comes back without a finished call; see release_reason. Same threading as complete().
  void give_back(slot_handle slot, release_reason reason) noexcept;
  void give_back(std::span<const slot_handle> slots, release_reason reason) noexcept;

  // Wakes every waiter; wait() returns at once from now on. For shutdown.
  void close() noexcept;

  // ---- Observability. ----

  // A consistent snapshot (drains pending completions first). Takes the core lock for O(numbers + campaigns);
  // cheap enough to poll every 250 ms. The second form reuses the vectors' capacity.
  [[nodiscard]] scheduler_stats stats();
  void stats(scheduler_stats& out);
  // Moves out contacts that could not be queued (unknown or removed campaign); returns how many.
  std::size_t take_rejected(std::vector<contact_item>& out);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace dialer::sched
