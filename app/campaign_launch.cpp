#include "app/campaign_launch.hpp"

#include "adapters/postgres/inventory_store.hpp"
#include "app/commands.hpp"
#include "engine/inventory.hpp"

namespace dialer::app {

result<launch_plan> prepare_launch(context& ctx, const campaign_spec& spec, bool dry_run) {
  pg::pg_inventory_store store(ctx.db(), ctx.account());
  auto provider = make_default_number_provider();
  system_clock clk;
  inventory_service inventory(store, *provider, clk);
  launch_plan plan;

  auto found = store.find_agent(spec.agent);
  if (!found && found.error().code != errc::not_found) return std::move(found).error();
  if (!found) {
    if (!spec.create_agent)
      return make_error(errc::launch_failed, "agent '{}' does not exist (set create_agent: true to create it)",
                        spec.agent);
    if (dry_run) {
      plan.would_create.push_back(fmt::format("create agent '{}'", spec.agent));
      plan.agent_record.name = spec.agent;
    } else {
      auto created = inventory.create_agent(spec.agent, spec.agent_handoff);
      if (!created) return std::move(created).error();
      plan.agent_record = *created;
    }
  } else {
    plan.agent_record = *found;
  }

  for (const auto& listed : spec.numbers) {
    auto n = store.find_number(listed.e164);
    const bool active = n && n->status == number_status::active;
    if (!active && spec.provision_numbers) {
      if (dry_run) {
        plan.would_create.push_back(fmt::format("buy {} and assign it to '{}'", listed.e164, spec.agent));
        continue;
      }
      auto bought = inventory.buy(listed.e164, {listed.max_concurrent_calls, listed.max_cps});
      if (!bought) return make_error(errc::launch_failed, "cannot provision {}: {}", listed.e164, bought.error().message);
      n = *bought;
    } else if (!active) {
      return make_error(errc::launch_failed, "number {} is not an active number of this account", listed.e164);
    }
    if (!n->agent && spec.provision_numbers) {
      if (dry_run) {
        plan.would_create.push_back(fmt::format("assign {} to '{}'", listed.e164, spec.agent));
        continue;
      }
      auto assigned = store.assign(n->id, plan.agent_record.id, false);
      if (!assigned) return make_error(errc::launch_failed, "cannot assign {}: {}", listed.e164, assigned.error().message);
      n = *assigned;
    }
    if (n->agent != plan.agent_record.id)
      return make_error(errc::launch_failed, "number {} is assigned to {}, not to the campaign's agent '{}'",
                        listed.e164, n->agent ? fmt::format("agent '{}'", n->agent_name) : std::string("no agent"),
                        spec.agent);
    plan.listed.push_back(n->id);
    plan.numbers.push_back(*n);
  }
  if (spec.numbers.empty() && plan.agent_record.id) {
    auto all = store.list_numbers(plan.agent_record.id, false);
    if (!all) return std::move(all).error();
    plan.numbers = std::move(*all);
  }
  if (plan.numbers.empty() && plan.would_create.empty())
    return make_error(errc::launch_failed,
                      "agent '{}' has no outbound number: assign one with 'dialer numbers assign NUMBER --agent {}'",
                      spec.agent, spec.agent);
  return plan;
}

}  // namespace dialer::app
