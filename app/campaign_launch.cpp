#include "app/campaign_launch.hpp"

#include <algorithm>

#include "adapters/postgres/inventory_store.hpp"
#include "app/commands.hpp"
#include "engine/inventory.hpp"
#include "engine/phone.hpp"

namespace dialer::app {
namespace {

// Whether the number inventory offers `e164` to this account now (read only: a search for its digits).
result<bool> offered(inventory_service& inventory, const std::string& e164) {
  auto parsed = parse_phone(e164, "US");
  if (!parsed) return std::move(parsed).error();
  number_search query;
  query.country = parsed->country;
  query.contains = e164.substr(1);
  query.limit = 10;
  auto found = inventory.search(query);
  if (!found) return std::move(found).error();
  return std::any_of(found->begin(), found->end(), [&](const available_number& n) { return n.e164 == e164; });
}

}  // namespace

result<launch_plan> prepare_launch(context& ctx, const campaign_spec& spec, launch_step step) {
  const bool check = step == launch_step::check;
  pg::pg_inventory_store store(ctx.db(), ctx.account());
  auto provider = make_default_number_provider();
  system_clock clk;
  inventory_service inventory(store, *provider, clk);
  launch_plan plan;

  auto found = inventory.resolve_agent(spec.agent);
  if (!found && found.error().code != errc::not_found) return std::move(found).error();
  const bool new_agent = !found;
  if (new_agent) {
    if (!spec.create_agent)
      return make_error(errc::not_found, "agent '{}' does not exist (set create_agent: true to create it)",
                        spec.agent);
    if (check) {
      if (auto r = validate_agent_name(spec.agent); !r) return std::move(r).error();
      if (auto r = validate_handoff(spec.agent_handoff); !r) return std::move(r).error();
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

  std::size_t to_provision = 0;  // listed numbers that acting would buy or assign
  for (const auto& listed : spec.numbers) {
    auto n = store.find_number(listed.e164);
    if (!n && n.error().code != errc::not_found) return std::move(n).error();
    const bool active = n && n->status == number_status::active;
    if (!active && !spec.provision_numbers)
      return make_error(errc::not_found, "number {} is not an active number of this account", listed.e164);
    if (!active) {
      if (check) {
        if (auto r = validate_limits({listed.max_concurrent_calls, listed.max_cps}); !r) return std::move(r).error();
        auto available = offered(inventory, listed.e164);
        if (!available) return std::move(available).error();
        if (!*available)
          return make_error(errc::not_found, "cannot provision {}: the number inventory does not offer it",
                            listed.e164);
        plan.would_create.push_back(fmt::format("buy {} and assign it to '{}'", listed.e164, spec.agent));
        ++to_provision;
        continue;
      }
      auto bought = inventory.buy(listed.e164, {listed.max_concurrent_calls, listed.max_cps});
      if (!bought) return make_error(errc::launch_failed, "cannot provision {}: {}", listed.e164, bought.error().message);
      n = *bought;
    }
    if (!n->agent && spec.provision_numbers) {
      if (check) {
        plan.would_create.push_back(fmt::format("assign {} to '{}'", listed.e164, spec.agent));
        ++to_provision;
        continue;
      }
      auto assigned = store.assign(n->id, plan.agent_record.id, false);
      if (!assigned) return make_error(errc::launch_failed, "cannot assign {}: {}", listed.e164, assigned.error().message);
      n = *assigned;
    }
    // An agent still to be created holds no number yet: its id is empty, and so is an unassigned number's agent.
    const bool ours = plan.agent_record.id && n->agent == plan.agent_record.id;
    if (!ours)
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
  if (plan.numbers.empty() && to_provision == 0)
    return make_error(errc::launch_failed,
                      "agent '{}' has no outbound number: assign one with 'dialer numbers assign NUMBER --agent {}'",
                      spec.agent, spec.agent);
  return plan;
}

}  // namespace dialer::app
