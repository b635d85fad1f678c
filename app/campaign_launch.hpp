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
  agent agent_record;                    // id empty while the agent is still to be created
  std::vector<phone_number> numbers;     // caller IDs the campaign uses (those that exist already)
  std::vector<number_id> listed;         // explicit list (empty: all of the agent's)
  std::vector<std::string> would_create; // what provisioning creates, buys or assigns (check only)
};

enum class launch_step {
  check,  // reads only: everything provisioning would do is checked and listed in would_create
  act,    // creates the agent, buys and assigns numbers as the spec allows
};

// Checks (and with launch_step::act, creates the agent and provisions numbers) so that the campaign can start.
// Errors: not_found for an agent that does not exist (and is not to be created), a listed number the account
// lacks, or one the number inventory does not offer; launch_failed, naming the agent and the number, for an agent
// without any outbound number or a number that belongs to another agent. A check that passes means that acting
// fails only if something changed in between (hold pg::campaign_admin::lock_launches across both).
[[nodiscard]] result<launch_plan> prepare_launch(context& ctx, const campaign_spec& spec, launch_step step);

}  // namespace dialer::app
