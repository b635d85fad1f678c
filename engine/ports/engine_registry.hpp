#pragma once
// The engine-registry port: which engines are alive, which campaigns there are to run, and how an engine
// hears that one changed. Every engine on a database registers with a heartbeat; the others treat its leases
// as lapsed once its registration expires. A campaign launched, paused, resumed or cancelled by any process
// is announced on a change feed (PostgreSQL LISTEN/NOTIFY), which engines poll every control tick; a full
// read of the campaigns every `campaign_poll` is the fallback.
//
// Implemented by adapters/postgres (pg_engine_registry) and, for tests, in memory. Threading: one instance
// per thread (it owns its connection); the engine's control stage and lease stage each open one.

#include <chrono>
#include <span>
#include <vector>

#include "engine/campaign_record.hpp"
#include "engine/result.hpp"
#include "engine/telephony.hpp"

namespace dialer {

struct campaign_brief {
  campaign_id id;
  campaign_state state = campaign_state::draft;
};

class engine_registry {
 public:
  virtual ~engine_registry() = default;

  // This engine is alive for `lease` from now (its claims and slot leases count in the shares).
  [[nodiscard]] virtual result<void> heartbeat(std::chrono::milliseconds lease) = 0;
  // On a clean exit: the registration goes (and with it this engine's place in every share).
  [[nodiscard]] virtual result<void> deregister() = 0;

  // The campaigns to run, with their states: every running campaign of the database (or, when `only` is not
  // empty, those of `only` that run), and the current state of each of `watched` whatever it is.
  [[nodiscard]] virtual result<std::vector<campaign_brief>> campaigns(
      std::span<const campaign_id> only, std::span<const campaign_id> watched) = 0;
  // Campaigns whose state changed since the last call, as announced on the change feed (empty when nothing
  // was). Never blocks. The first call subscribes.
  [[nodiscard]] virtual result<std::vector<campaign_id>> changes() = 0;

  [[nodiscard]] virtual result<campaign_record> load(campaign_id id) = 0;
  // The caller IDs the campaign may use now: its listed numbers, or every active number of its agent; each
  // with its agent as it is now (a listed number reassigned since is returned with its new agent, or none).
  [[nodiscard]] virtual result<std::vector<phone_number>> numbers_of(const campaign_record& campaign) = 0;
  // Moves the state only from one of `from` (already at `to`: success); conflict otherwise, saying the
  // current state. Announced on the change feed.
  [[nodiscard]] virtual result<campaign_state> transition(campaign_id id,
                                                          std::span<const campaign_state> from,
                                                          campaign_state to) = 0;
};

}  // namespace dialer
