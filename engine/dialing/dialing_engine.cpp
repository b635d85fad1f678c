#include "engine/dialing/dialing_engine.hpp"

#include "engine/dialing/carrier_link.hpp"
#include "engine/dialing/claim_stage.hpp"
#include "engine/dialing/control_stage.hpp"
#include "engine/dialing/dispatch_stage.hpp"
#include "engine/dialing/engine_context.hpp"
#include "engine/dialing/lease_stage.hpp"
#include "engine/dialing/origination_stage.hpp"
#include "engine/dialing/writeback_stage.hpp"

namespace dialer {

using namespace dialing;

dialing_engine::dialing_engine(engine_ports ports, carrier_source& carriers, const clock& clk,
                               engine_options options, engine_scope scope)
    : ports_(std::move(ports)),
      carriers_(carriers),
      links_(std::make_unique<carrier_table>()),
      ctx_(std::make_unique<engine_context>(clk, options)),
      claim_(std::make_unique<claim_stage>(*ctx_, ports_.claims)),
      dispatch_(std::make_unique<dispatch_stage>(*ctx_)),
      origination_(std::make_unique<origination_stage>(*ctx_, ports_.journal)),
      writeback_(std::make_unique<writeback_stage>(*ctx_, ports_.journal)),
      lease_(std::make_unique<lease_stage>(*ctx_, ports_)),
      control_(std::make_unique<control_stage>(*ctx_, ports_, carriers_, *links_, std::move(scope))) {}

dialing_engine::~dialing_engine() {
  if (started_.load() && !stopped_.load()) request_stop(stop_mode::now);
  join();
  // Calls still in flight report nothing more, then go (their slots back to the scheduler, which outlives
  // them); contacts still held by the arena are freed with it.
  if (links_) links_->stop_all();
  if (ctx_) (void)ctx_->calls.abandon();
}

void dialing_engine::start() {
  if (started_.exchange(true)) return;
  auto& clk = ctx_->clk;
  // Every thread moves in the clock's time: announced before it starts, so that a manual clock never sees
  // everyone waiting and moves on without it. A stage thread says so when its body has ended, still in the
  // clock's time, for join_stage().
  const auto in_time = [&clk](wake_event& ended, auto body) {
    clk.expect_participant();
    return std::thread([&clk, &ended, body] {
      const clock::participant p(clk, clock::participant::how::announced);
      body();
      ended.set();
    });
  };
  auto& ended = ctx_->ended;
  writeback_thread_ = in_time(ended.writeback, [this] { writeback_->run(); });
  lease_thread_ = in_time(ended.lease, [this] { lease_->run(); });
  origination_thread_ = in_time(ended.origination, [this] { origination_->run(); });
  dispatch_thread_ = in_time(ended.dispatch, [this] { dispatch_->run(); });
  claim_thread_ = in_time(ended.claim, [this] { claim_->run(); });
  clk.expect_participant();
  control_thread_ = std::thread([this, &clk] {
    // The shutdown too is in the clock's time: a manual clock stands still while it works (a test waiting for
    // stopped() once saw an hour pass during a slow shutdown) and moves while it waits for a stage to end.
    const clock::participant p(clk, clock::participant::how::announced);
    control_->run();
    control_thread();
  });
}

void dialing_engine::join_stage(std::thread& t, wake_event& ended) {
  if (!t.joinable()) return;
  (void)ended.wait_until(ctx_->clk, clock::never, [] { return false; });  // returns once set: no deadline
  t.join();  // its body has ended: it only leaves the clock and returns
}

// The shutdown, on the control thread once its loop has ended: stages stop in pipeline order, so that
// everything an earlier stage hands on is still taken by a later one.
void dialing_engine::control_thread() {
  auto& ctx = *ctx_;
  ctx.stopping.store(true, std::memory_order_release);
  ctx.scheduler.close();
  ctx.claim_now.set();
  ctx.lease_now.set();
  join_stage(claim_thread_, ctx.ended.claim);
  join_stage(dispatch_thread_, ctx.ended.dispatch);
  ctx.dials.close();
  join_stage(origination_thread_, ctx.ended.origination);
  // Contacts still queued (a stop now) go back as they are: the next engine claims them again.
  const timestamp wall = ctx.clk.wall();
  ctx.arena.drain([&](contact_entry& e) {
    ctx.hand_back(e.campaign, {{}, e.contact.id, e.contact.attempts, wall, "engine_stopped", {}});
  });
  if (!ctx.stop_now.load()) links_->drain(ctx.options.drain_deadline);
  ctx.writes.close();
  join_stage(writeback_thread_, ctx.ended.writeback);
  join_stage(lease_thread_, ctx.ended.lease);
  // Stopped at once with calls still talking at the carrier: their slots stay this engine's until the leases
  // run out (then the next engine treats them as a dead engine's), instead of going to another engine while
  // in use.
  if (ctx.calls.size() == 0 && !control_->holds_recovered() && ctx.reconcile.empty()) lease_->release_all();
  stopped_.store(true, std::memory_order_release);
}

void dialing_engine::watch(campaign_id id) {
  control_->watch(id);
}

std::optional<campaign_watch> dialing_engine::watched(campaign_id id) const {
  return control_->watched(id);
}

void dialing_engine::wake() {
  control_->look_now();
  ctx_->control_now.set();
}

std::vector<dialing_engine::stage_error> dialing_engine::errors_since(std::uint64_t seq) const {
  std::vector<stage_error> out;
  for (auto& e : ctx_->errors.since(seq)) out.push_back({e.seq, std::move(e.stage), std::move(e.what)});
  return out;
}

void dialing_engine::request_stop(stop_mode mode) {
  if (mode == stop_mode::now) {
    ctx_->stop_now.store(true, std::memory_order_release);
    ctx_->stopping.store(true, std::memory_order_release);
    ctx_->scheduler.close();
    ctx_->dials.close();
    ctx_->claim_now.set();
    ctx_->lease_now.set();
  } else {
    control_->drain_all();
  }
  ctx_->control_now.set();
}

void dialing_engine::join() {
  if (control_thread_.joinable()) control_thread_.join();
}

bool dialing_engine::saturated() const {
  return ctx_->last_write_back.load(std::memory_order_relaxed) >= std::max<std::size_t>(1, ctx_->options.write_batch / 4);
}

dialing_engine::gauges_now dialing_engine::gauges() const {
  gauges_now g;
  g.hopper = ctx_->scheduler.hopper_size();
  const auto known = ctx_->numbers.known();
  g.numbers = ctx_->numbers.usage(known, ctx_->scheduler.stats());
  return g;
}

}  // namespace dialer
