#include "engine/dialing/lease_stage.hpp"

#include "engine/dialing/carrier_link.hpp"

#include <algorithm>

namespace dialer::dialing {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

lease_stage::lease_stage(engine_context& ctx, const engine_ports& ports) : ctx_(ctx), ports_(ports) {}

bool lease_stage::failed(const error& e) {
  ctx_.errors.note("lease", e);
  return false;
}

bool lease_stage::renew() {
  // Leases count from the renewal's start: the gate's margin must not absorb the renewal's own duration.
  const auto start = ctx_.clk.monotonic();
  const auto lease = ctx_.options.lease;
  cooled_at_ = clock::never;  // a failed renewal is retried at the next heartbeat, not at every wake-up
  if (auto r = registry_->heartbeat(lease); !r) return failed(r.error());

  auto campaigns = ctx_.campaigns.all();
  // In id order, as every engine locks them.
  std::sort(campaigns.begin(), campaigns.end(),
            [](const campaign_ptr& a, const campaign_ptr& b) { return a->record.id < b->record.id; });
  std::vector<std::vector<std::int64_t>> blocks;
  std::vector<held_blocks> held;
  blocks.reserve(campaigns.size());
  for (const auto& c : campaigns) {
    blocks.push_back(c->blocks.held());
    if (!blocks.back().empty()) held.push_back({c->record.id, blocks.back()});
  }
  if (!held.empty())
    if (auto r = claims_->renew(held, lease); !r) return failed(r.error());

  // A slot another engine let go less than a second ago may have carried its calls an instant before: the
  // carrier counts those in the same second as ours, so it takes calls here only once that second is over.
  const auto quiet = milliseconds(1000) + ctx_.options.cps_guard;
  const auto stats = ctx_.scheduler.stats();
  const auto requests = ctx_.numbers.lease_requests(stats);
  if (!requests.empty()) {
    auto answers = leases_->lease_numbers(requests, lease, quiet);
    if (!answers) return failed(answers.error());
    if (auto cooled = ctx_.numbers.apply(*answers)) cooled_at_ = start + *cooled;
  }

  // Each campaign's concurrency, shared with the other engines that run it, the same way: what may be in use
  // is what its decisions and calls hold (and recovered calls), or, when more, the cap the scheduler has now.
  // A draining campaign keeps only what its calls hold and leaves the share.
  std::vector<campaign_lease_request> wanted;
  std::vector<campaign_ptr> order;
  for (const auto& c : campaigns) {
    const bool dialing = c->dialing.load(std::memory_order_acquire);
    const int busy = static_cast<int>(c->holding.load()) + c->recovered.load();
    wanted.push_back({c->record.id, c->record.spec.max_concurrency,
                      dialing ? std::max(busy, c->cap_share.load()) : busy, dialing});
    order.push_back(c);
    leased_campaigns_.insert(c->record.id.value());
  }
  for (auto id : leased_campaigns_)  // campaigns this engine no longer runs: their slots go
    if (!ctx_.campaigns.find(campaign_id{id})) wanted.push_back({campaign_id{id}, 0, 0, false});
  // (The answers come back in request order: the dropped campaigns, after the live ones, keep their places.)
  if (!wanted.empty()) {
    auto answers = leases_->lease_campaigns(wanted, lease);
    if (!answers) return failed(answers.error());
    for (std::size_t i = 0; i < answers->size() && i < wanted.size(); ++i) {
      const auto& l = (*answers)[i];
      if (i < order.size()) {
        auto& c = *order[i];
        c.cap_share.store(wanted[i].wanted ? std::min(l.held, l.target) : 0, std::memory_order_release);
        c.apply_cap(ctx_.scheduler);
      } else if (l.held == 0) {
        leased_campaigns_.erase(wanted[i].campaign.value());
      }
    }
  }
  // Carrier accounts shared with other engines: this engine's share of each one's calls per second. Another
  // engine counts this one only at its next renewal, so a newcomer waits a heartbeat and the second its calls
  // are counted in before it places any.
  // An engine counts for an account only while it has work on it (contacts claimed, calls held): an engine
  // with nothing to dial must not halve the others' rate.
  std::vector<std::string> identities;
  std::vector<carrier_link*> shared;
  for (std::size_t i = 0; i < campaigns.size(); ++i) {
    const auto& c = campaigns[i];
    auto& link = c->carrier;
    if (blocks[i].empty() && c->holding.load() == 0 && c->recovered.load() == 0) continue;
    if (link.identity().empty() || std::find(shared.begin(), shared.end(), &link) != shared.end()) continue;
    shared.push_back(&link);
    if (std::find(identities.begin(), identities.end(), link.identity()) == identities.end())
      identities.push_back(link.identity());
  }
  // Before the calls-per-second shares: a newcomer places nothing before both are set.
  if (!renew_channels(campaigns, shared)) return false;
  if (!identities.empty() || had_accounts_) {
    const auto account_quiet =
        std::chrono::duration_cast<milliseconds>(ctx_.options.heartbeat) + milliseconds(1000) +
        std::chrono::duration_cast<milliseconds>(ctx_.options.cps_guard);
    auto shares = leases_->lease_accounts(identities, lease, account_quiet);
    if (!shares) return failed(shares.error());
    had_accounts_ = !identities.empty();
    for (auto* link : shared) {
      const auto at = std::find(identities.begin(), identities.end(), link->identity()) - identities.begin();
      const auto& s = (*shares)[static_cast<std::size_t>(at)];
      link->set_cps_share(s.settled ? 1.0 / s.engines : 0.0);
    }
    // A link without work left the account: when work comes back it waits to be counted again.
    for (const auto& c : campaigns)
      if (std::find(shared.begin(), shared.end(), &c->carrier) == shared.end() && !c->carrier.identity().empty())
        c->carrier.set_cps_share(0.0);
  }

  for (const auto& c : campaigns) {
    const auto numbers = c->numbers();
    const int cap = std::max(0, c->cap_share.load() - c->recovered.load());
    c->usable_slots.store(static_cast<std::size_t>(std::min(cap, ctx_.numbers.usable_slots(numbers))),
                          std::memory_order_release);
  }
  ctx_.last_lease_ok.store(start.count(), std::memory_order_release);
  ctx_.claim_now.set();
  return true;
}

// A trunk's channels are leased like a campaign's concurrency, with the same two steps down: the allowance every
// link has now counts as in use at the renewal that lowers it (the carrier may take calls up to it until it hears
// of the lower one, and a link counted without work may have found some since), and only the next renewal gives
// the difference back. A link without work keeps only its calls' channels and may take no new call.
bool lease_stage::renew_channels(const std::vector<campaign_ptr>& campaigns,
                                 const std::vector<carrier_link*>& working) {
  for (const auto& c : campaigns) {
    auto& link = c->carrier;
    if (link.identity().empty() || !link.alive() || link.get().max_channels() <= 0) continue;
    auto& links = trunks_[link.identity()];
    if (std::find(links.begin(), links.end(), &link) == links.end()) links.push_back(&link);
  }
  if (trunks_.empty()) return true;
  const auto works = [&](carrier_link* link) {
    return std::find(working.begin(), working.end(), link) != working.end();
  };
  std::vector<channel_lease_request> requests;
  for (const auto& [identity, links] : trunks_) {
    channel_lease_request r;
    r.identity = identity;
    r.wanted = false;
    for (auto* link : links) {
      if (!link->alive()) continue;
      const int limit = link->get().max_channels();
      r.max = r.max == 0 ? limit : std::min(r.max, limit);
      r.in_use += std::max(link->get().channels_in_use(), link->channel_allowance());
      r.wanted = r.wanted || works(link);
    }
    if (r.max > 0) requests.push_back(std::move(r));
  }
  if (requests.empty()) return true;
  auto answers = leases_->lease_channels(requests, ctx_.options.lease);
  if (!answers) return failed(answers.error());
  for (std::size_t i = 0; i < requests.size() && i < answers->size(); ++i) {
    const auto& r = requests[i];
    const auto& l = (*answers)[i];
    auto& links = trunks_[r.identity];
    // This engine's channels among its links with work: each keeps its calls up and takes an even part of what
    // is left (the first ones the remainder), so that together they never hold more than the engine does.
    const int total = r.wanted ? std::max(0, std::min(l.held, l.target)) : 0;
    std::vector<std::pair<carrier_link*, int>> busy;  // with its calls up, read once: the split adds up
    int up = 0;
    for (auto* link : links) {
      if (!link->alive()) continue;
      if (!works(link)) {
        link->allow_channels(0);
        continue;
      }
      busy.emplace_back(link, link->get().channels_in_use());
      up += busy.back().second;
    }
    const int spare = std::max(0, total - up);
    for (std::size_t k = 0; k < busy.size(); ++k) {
      const auto n = static_cast<int>(busy.size());
      const int part = spare / n + (static_cast<int>(k) < spare % n ? 1 : 0);
      busy[k].first->allow_channels(busy[k].second + part);
    }
    if (!r.wanted && l.held == 0) trunks_.erase(r.identity);  // given back: asked again once it has work
  }
  return true;
}

void lease_stage::run() {
  registry_ = open_port(ctx_, ports_.registry, "lease");
  claims_ = open_port(ctx_, ports_.claims, "lease");
  leases_ = open_port(ctx_, ports_.leases, "lease");
  if (!registry_ || !claims_ || !leases_) return;
  const auto stopping = [&] { return ctx_.stopping.load(std::memory_order_acquire); };
  auto last = clock::never;  // the last attempt to renew (never: none yet)
  while (!stopping()) {
    const auto now = ctx_.clk.monotonic();
    if (last == clock::never || now - last >= ctx_.options.heartbeat || now >= cooled_at_) {
      last = now;
      if (!renew()) {
        // Past half a lease without a renewal, another engine may own our slots by the time a call leaves:
        // stop handing out calls until we renew.
        if (now - nanoseconds(ctx_.last_lease_ok.load()) >= ctx_.options.lease / 2) {
          ctx_.numbers.drop_capacity();
          for (const auto& c : ctx_.campaigns.all()) {
            c->cap_share.store(0);
            c->usable_slots.store(0);
            c->apply_cap(ctx_.scheduler);
          }
          for (const auto& [identity, links] : trunks_)
            for (auto* link : links)
              if (link->alive()) link->allow_channels(0);
        }
      }
    }
    const auto next = std::min(last + ctx_.options.heartbeat, cooled_at_);
    if (ctx_.lease_now.wait_until(ctx_.clk, next, stopping)) last = clock::never;  // asked to renew at once
  }
}

void lease_stage::release_all() {
  if (leases_) (void)leases_->release_all();
  if (registry_) (void)registry_->deregister();
}

}  // namespace dialer::dialing
