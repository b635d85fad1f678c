#pragma once
// The slot-lease port: a number's concurrency, and a campaign's, held across engines. One leased row per slot
// (per unit of the cap); each engine holds its fair share of the live engines that use the number (or run the
// campaign), and may dial only on the slots it holds. A slot in use is never released.
//
// Implemented by adapters/postgres (pg_slot_leases) and, for tests, in memory. Threading: one instance per
// thread (it owns its connection); the engine's lease stage is its only user.

#include <algorithm>
#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "engine/ids.hpp"
#include "engine/result.hpp"

namespace dialer {

struct number_lease_request {
  number_id number;
  agent_id
      agent;  // the agent the engine dials it for: a number no longer active and assigned to it gets max 0
  int in_use = 0;      // slots of it this engine must keep: calls in flight, or more (see lease_numbers)
  bool wanted = true;  // false: the engine no longer dials on it; it keeps only `in_use` and leaves the share
};

struct campaign_lease_request {
  campaign_id campaign;
  int max = 0;  // the cap to use when the database stores none
  int in_use = 0;
  bool wanted = true;
};

struct slot_lease {
  number_id number;      // invalid for a campaign's lease
  campaign_id campaign;  // invalid for a number's lease
  int held = 0;          // slots this engine leases now
  int target = 0;        // its fair share
  int max = 0;           // the number's max_concurrent_calls (the campaign's concurrency)
  // Held slots that another holder (or this engine, before it let them go) freed less than `quiet` ago: the
  // calls placed on them then still count in the number's CPS window at the carrier, so they take no call
  // yet.
  int cooling = 0;
  std::chrono::milliseconds cooled_in{0};  // until the first of them may take calls (0: none is cooling)
};

// A trunk's channels (calls up at once), shared by the engines that use it (its carrier account identity).
struct channel_lease_request {
  std::string identity;  // the carrier's account_identity()
  int max = 0;           // the trunk's limit as this engine's settings give it (> 0)
  int in_use = 0;        // channels this engine must keep: its calls up, or more (see lease_channels)
  bool wanted = true;    // false: no work on the trunk; it keeps only `in_use` and leaves the share
};

// A carrier account's calls-per-second, shared by the live engines that use it.
struct account_share {
  int engines = 1;       // live engines using the account, this one included
  bool settled = true;   // this engine has been counted by every other one (its row is older than `quiet`)
};

class slot_leases {
 public:
  virtual ~slot_leases() = default;

  // One transaction for every number: renews what is held, converges to the fair share among the live engines
  // that use each number, never releasing one of `in_use`. A number that is no longer active and assigned to
  // the request's agent (released, unassigned, reassigned) has no slots to give: max 0. A slot remembers when
  // its last holder let it go (released it, or its lease ran out); for `quiet` after that it is reported as
  // cooling (a number's CPS is counted per second across engines, and the engine that let it go may have
  // placed calls on it an instant before). One answer per request, in order.
  [[nodiscard]] virtual result<std::vector<slot_lease>> lease_numbers(
      std::span<const number_lease_request> numbers, std::chrono::milliseconds lease,
      std::chrono::milliseconds quiet) = 0;
  // Each campaign's `concurrency` across engines, leased the same way: one slot per unit of the cap as the
  // database stores it (`max` when it stores none), shared among the live engines that run it.
  [[nodiscard]] virtual result<std::vector<slot_lease>> lease_campaigns(
      std::span<const campaign_lease_request> campaigns, std::chrono::milliseconds lease) = 0;

  // The carrier accounts (by account_identity) this engine uses now: registered for `lease`, the others this
  // engine had dropped. For each, how many live engines use it; an engine that just started using an account
  // is `settled` only after `quiet`, once every other engine has renewed (and counted it) since: until then it
  // places nothing on the account, so the account's rate is never exceeded while the shares change. The default
  // (memory ports in tests): one engine.
  [[nodiscard]] virtual result<std::vector<account_share>> lease_accounts(std::span<const std::string> identities,
                                                                          std::chrono::milliseconds /*lease*/,
                                                                          std::chrono::milliseconds /*quiet*/) {
    return std::vector<account_share>(identities.size());
  }

  // Each trunk's channels across engines, leased like a campaign's concurrency: a count per engine, the counts
  // of the live engines never above the smallest limit any of them declares, shared among those that want it,
  // never below what a request keeps in use. The answers (number and campaign left invalid) come in request
  // order. The default (memory ports in tests): one engine, which holds the whole limit while it wants it.
  [[nodiscard]] virtual result<std::vector<slot_lease>> lease_channels(
      std::span<const channel_lease_request> trunks, std::chrono::milliseconds /*lease*/) {
    std::vector<slot_lease> out;
    for (const auto& t : trunks) {
      slot_lease l;
      l.max = t.max;
      l.target = t.wanted ? t.max : 0;
      l.held = std::max(l.target, t.in_use);
      out.push_back(l);
    }
    return out;
  }

  // On a clean exit: every slot this engine holds goes (numbers' slots remember when).
  [[nodiscard]] virtual result<void> release_all() = 0;
};

}  // namespace dialer
