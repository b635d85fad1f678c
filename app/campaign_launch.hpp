#pragma once
// Launching a campaign from its spec: agent, numbers (fail fast), carrier, the campaign row and its one-time
// import. Shared by `dialer run` and `dialer call`.

#include <memory>
#include <vector>

#include "adapters/postgres/campaign_admin.hpp"
#include "app/context.hpp"
#include "engine/campaign.hpp"
#include "engine/ports/carrier.hpp"

namespace dialer::app {

struct launch_plan {
  agent agent_record;
  std::vector<phone_number> numbers;     // caller IDs the campaign uses
  std::vector<number_id> listed;         // explicit list (empty: all of the agent's)
  std::vector<std::string> would_create; // dry run: what a real run would create or buy
};

// Checks (and unless dry_run, creates the agent and provisions numbers) so that the campaign can start;
// errc::launch_failed with a message naming the agent and the missing or foreign number otherwise.
[[nodiscard]] result<launch_plan> prepare_launch(context& ctx, const campaign_spec& spec, bool dry_run);

}  // namespace dialer::app
