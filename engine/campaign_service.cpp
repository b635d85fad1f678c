#include "engine/campaign_service.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "engine/contacts/contact_import.hpp"
#include "engine/contacts/synthetic.hpp"
#include "engine/phone.hpp"
#include "engine/rules/zones.hpp"

namespace dialer {
namespace {

namespace fs = std::filesystem;

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

// A demo's synthetic contacts, written once (to a temporary name, then renamed: a half-written file is never
// taken for a finished one).
result<void> ensure_contacts_file(const campaign_spec& spec) {
  if (spec.contacts.file.empty() || fs::exists(spec.contacts.file) || !spec.contacts.generate) return ok();
  std::error_code ec;
  fs::create_directories(spec.contacts.file.parent_path(), ec);
  const std::string tmp = spec.contacts.file.string() + ".tmp";
  auto written = contacts::write_synthetic_contacts(tmp, static_cast<std::uint64_t>(*spec.contacts.generate),
                                                    spec.contacts.seed, spec.default_region);
  if (!written) return std::move(written).error();
  fs::rename(tmp, spec.contacts.file, ec);
  if (ec)
    return make_error(errc::unavailable, "cannot write {}: {}", spec.contacts.file.string(), ec.message());
  return ok();
}

// Keeps the first rejected rows of a dry run (the import's summary counts them all): memory stays flat
// however bad the file.
struct counting_sink final : contacts::contact_sink {
  result<void> write(const contacts::contact_batch& b) override {
    for (const auto& r : b.rejected) {
      if (rejected.size() >= static_cast<std::size_t>(campaign_summary::summary_rejected_rows)) break;
      rejected.push_back({static_cast<std::int64_t>(r.row), std::string(contacts::to_string(r.reason)),
                          std::string(r.input)});
    }
    return ok();
  }
  std::vector<rejected_row> rejected;
};

}  // namespace

result<launch_inputs> campaign_service::check_inputs(const campaign_spec& spec) {
  if (auto r = rules::verify_os_tzdb(clock_.wall()); !r) return std::move(r).error();
  if (auto w = spec.make_window(); !w) return std::move(w).error();
  if (auto r = ensure_contacts_file(spec); !r) return std::move(r).error();
  if (auto r = contacts::check_contacts_header(spec.contacts.file.string()); !r) return std::move(r).error();
  launch_inputs in;
  if (spec.do_not_call_file) {
    auto entries = contacts::read_do_not_call_file(*spec.do_not_call_file, spec.default_region);
    if (!entries) return std::move(entries).error();
    in.do_not_call = std::move(*entries);
  }
  return in;
}

result<launch_plan> campaign_service::plan(const campaign_spec& spec) {
  return prepare(spec, step::check);
}

result<launch_plan> campaign_service::prepare(const campaign_spec& spec, step s) {
  const bool check = s == step::check;
  inventory_service inventory(inventory_store_, provider_, clock_);
  launch_plan plan;

  auto found = inventory.resolve_agent(spec.agent);
  if (!found && found.error().code != errc::not_found) return std::move(found).error();
  if (!found) {
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
  // A SIP trunk hands the callee to the agent by SIP (third-party call control, adapters/carriers/sip): an agent
  // reached only by a media stream cannot take its calls, and no call should be placed to find that out.
  if (spec.carrier == "sip") {
    const auto& handoff = plan.agent_record.handoff.empty() ? spec.agent_handoff : plan.agent_record.handoff;
    if (!handoff.starts_with("sip:") && !handoff.starts_with("sips:")) {
      auto e = make_error(errc::launch_failed,
                          "agent '{}' has no SIP hand-off (its hand-off is '{}'): the sip carrier connects the callee "
                          "to the agent by SIP; give the agent a sip: URI or use a carrier that streams media",
                          spec.agent, handoff);
      e.reason = "handoff_not_sip";
      return e;
    }
  }

  std::size_t to_provision = 0;  // listed numbers that acting would buy or assign
  for (const auto& listed : spec.numbers) {
    auto n = inventory_store_.find_number(listed.e164);
    if (!n && n.error().code != errc::not_found) return std::move(n).error();
    const bool active = n && n->status == number_status::active;
    if (!active && !spec.provision_numbers)
      return make_error(errc::not_found, "number {} is not an active number of this account", listed.e164);
    if (!active) {
      if (check) {
        if (auto r = validate_limits({listed.max_concurrent_calls, listed.max_cps}); !r)
          return std::move(r).error();
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
      if (!bought)
        return make_error(errc::launch_failed, "cannot provision {}: {}", listed.e164,
                          bought.error().message);
      n = *bought;
    }
    if (!n->agent && spec.provision_numbers) {
      if (check) {
        plan.would_create.push_back(fmt::format("assign {} to '{}'", listed.e164, spec.agent));
        ++to_provision;
        continue;
      }
      auto assigned = inventory_store_.assign(n->id, plan.agent_record.id, false);
      if (!assigned)
        return make_error(errc::launch_failed, "cannot assign {}: {}", listed.e164, assigned.error().message);
      n = *assigned;
    }
    // An agent still to be created holds no number yet: its id is empty, and so is an unassigned number's
    // agent.
    const bool ours = plan.agent_record.id && n->agent == plan.agent_record.id;
    if (!ours)
      return make_error(
          errc::launch_failed, "number {} is assigned to {}, not to the campaign's agent '{}'", listed.e164,
          n->agent ? fmt::format("agent '{}'", n->agent_name) : std::string("no agent"), spec.agent);
    plan.listed.push_back(n->id);
    plan.numbers.push_back(*n);
  }
  if (spec.numbers.empty() && plan.agent_record.id) {
    auto all = inventory_store_.list_numbers(plan.agent_record.id, false);
    if (!all) return std::move(all).error();
    plan.numbers = std::move(*all);
  }
  if (plan.numbers.empty() && to_provision == 0) {
    auto e = make_error(
        errc::launch_failed,
        "agent '{}' has no outbound number: assign one with 'dialer numbers assign NUMBER --agent {}'",
        spec.agent, spec.agent);
    e.reason = "no_outbound_number";
    return e;
  }
  return plan;
}

result<launch_result> campaign_service::launch(const campaign_spec& spec, const launch_inputs& inputs,
                                               launch_options options) {
  // The launches of one account take turns, so that two first runs of one file cannot both create the agent,
  // buy the number, create the campaign or import it: the second finds the campaign and resumes it.
  auto turn = campaigns_.lock_launches();
  if (!turn) return std::move(turn).error();
  launch_result out;
  std::optional<campaign_record> existing;
  auto found = campaigns_.find(spec.name);
  if (!found) return std::move(found).error();
  if (*found && options.must_be_new)
    return make_error(errc::conflict, "campaign '{}' already exists", spec.name);
  if (*found) {
    auto rec = campaigns_.load(**found);
    if (!rec) return std::move(rec).error();
    if (rec->agent_name != spec.agent)
      return make_error(errc::launch_failed, "campaign '{}' belongs to agent '{}', not '{}'", spec.name,
                        rec->agent_name, spec.agent);
    if (is_terminal(rec->state)) {
      out.id = rec->id;
      out.already = rec->state;
      return out;
    }
    existing = std::move(*rec);
  } else if (options.resume) {
    return make_error(errc::not_found, "campaign '{}' has never run: there is nothing to resume", spec.name);
  }

  // Every check first, then act: nothing is created, bought or written before every check has passed.
  if (auto checked = prepare(spec, step::check); !checked) return std::move(checked).error();
  auto acted = prepare(spec, step::act);
  if (!acted) return std::move(acted).error();
  out.plan = std::move(*acted);
  if (inputs.do_not_call) {
    const auto& entries = *inputs.do_not_call;
    auto added =
        dnc_.add(entries.e164s, spec.do_not_call_file ? spec.do_not_call_file->filename().string() : "file");
    if (!added) return std::move(added).error();
    out.do_not_call_skipped = entries.skipped;
  }
  const contacts_source source{spec.contacts.file, inputs.contacts_csv, spec.default_region};
  if (existing) {
    out.id = existing->id;
    if (auto r = campaigns_.update_settings(out.id, spec); !r) return std::move(r).error();
    if (!existing->imported) {
      auto imported = campaigns_.import_contacts(out.id, source);
      if (!imported) return std::move(imported).error();
      out.imported = std::move(*imported);
    }
  } else {
    auto created = campaigns_.create_with_contacts(spec, out.plan.agent_record.id, out.plan.listed, source);
    if (!created) return std::move(created).error();
    out.id = created->id;
    out.created = true;
    out.imported = std::move(created->import);
  }
  turn->reset();
  if (!options.start) return out;
  const campaign_state from[] = {campaign_state::draft, campaign_state::paused, campaign_state::running};
  auto started = campaigns_.transition(out.id, from, campaign_state::running);
  if (!started) {
    // Cancelled meanwhile, by another process: cancel is final, and there is nothing to launch.
    if (started.error().code != errc::conflict) return std::move(started).error();
    auto rec = campaigns_.load(out.id);
    if (!rec) return std::move(rec).error();
    out.already = rec->state;
  }
  return out;
}

result<campaign_state> campaign_service::start_draft(campaign_id id) {
  auto rec = campaigns_.load(id);
  if (!rec) return std::move(rec).error();
  if (rec->state != campaign_state::draft)
    return make_error(errc::conflict, "campaign '{}' is {}, not a draft: it cannot be launched", rec->name,
                      to_string(rec->state));
  if (!rec->imported)
    return make_error(errc::conflict, "campaign '{}' has no contacts yet: add them before the launch", rec->name);
  if (auto w = rec->spec.make_window(); !w) return std::move(w).error();
  // The checks of a launch, on the campaign as stored: the agent by name, its numbers as they are now.
  if (auto checked = prepare(rec->spec, step::check); !checked) return std::move(checked).error();
  const campaign_state from[] = {campaign_state::draft};
  return campaigns_.transition(id, from, campaign_state::running);
}

result<dry_run_report> campaign_service::dry_run(const campaign_spec& spec) {
  auto checked = prepare(spec, step::check);
  if (!checked) return std::move(checked).error();
  auto dnc = dnc_.set();
  if (!dnc) return std::move(dnc).error();
  counting_sink sink;
  contacts::import_options io;
  io.default_region = spec.default_region;
  io.do_not_call = &*dnc;
  auto imported = contacts::import_contacts_file(spec.contacts.file.string(), io, sink);
  if (!imported) return std::move(imported).error();
  dry_run_report out;
  out.plan = std::move(*checked);
  out.import = *imported;
  out.first_rejected = std::move(sink.rejected);
  return out;
}

result<campaign_id> campaign_service::place_call(const single_call_request& request) {
  auto callee = parse_phone(request.to, "US");
  if (!callee) return std::move(callee).error();
  campaign_spec spec;
  spec.name =
      fmt::format("call-{}-{}",
                  std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count(),
                  request.name_suffix);
  spec.agent = request.agent;
  spec.carrier = request.carrier.empty() ? "simulated" : request.carrier;
  // An operator's single call is placed now: no calling window, one attempt, no retries.
  spec.window.start = std::chrono::seconds{0};
  spec.window.end = std::chrono::hours{24};
  spec.window.days = rules::weekdays::every_day;
  spec.window.us_holidays = false;
  (void)spec.retry.set_max_attempts(1);
  spec.max_concurrency = 1;
  if (!request.from.empty()) {
    auto caller = parse_phone(request.from, "US");
    if (!caller) return std::move(caller).error();
    spec.numbers.push_back({caller->e164, std::nullopt, std::nullopt});
  }
  // The agent may be named by id: the campaign records its name.
  inventory_service inventory(inventory_store_, provider_, clock_);
  auto agent_record = inventory.resolve_agent(request.agent);
  if (!agent_record) return std::move(agent_record).error();
  spec.agent = agent_record->name;
  // A single call creates nothing but its campaign, and that only once every check has passed.
  auto checked = prepare(spec, step::check);
  if (!checked) return std::move(checked).error();
  auto dnc = dnc_.set();
  if (!dnc) return std::move(dnc).error();
  if (dnc->contains(callee->e164))
    return make_error(errc::invalid_input, "{} is on the do-not-call list and was not called", callee->e164);
  contacts_source source;
  source.csv = "phone\n" + callee->e164 + "\n";
  source.default_region = "US";
  auto created = campaigns_.create_with_contacts(spec, checked->agent_record.id, checked->listed, source);
  if (!created) return std::move(created).error();
  const campaign_state from[] = {campaign_state::draft};
  if (auto r = campaigns_.transition(created->id, from, campaign_state::running); !r)
    return std::move(r).error();
  return created->id;
}

result<campaign_state> campaign_service::pause(campaign_id id) {
  const campaign_state from[] = {campaign_state::running};
  return campaigns_.transition(id, from, campaign_state::paused);
}

result<campaign_state> campaign_service::resume(campaign_id id) {
  const campaign_state from[] = {campaign_state::paused};
  return campaigns_.transition(id, from, campaign_state::running);
}

result<campaign_state> campaign_service::cancel(campaign_id id) {
  const campaign_state from[] = {campaign_state::draft, campaign_state::running, campaign_state::paused};
  auto st = campaigns_.transition(id, from, campaign_state::cancelled);
  if (!st) return st;
  // Waiting contacts in blocks no engine holds end now; an engine running the campaign cancels the rest of
  // its own.
  if (auto r = campaigns_.cancel_waiting(id); !r) return std::move(r).error();
  return st;
}

result<campaign_id> campaign_service::find(const std::string& name_or_id) {
  auto found = campaigns_.find(name_or_id);
  if (!found) return std::move(found).error();
  if (!*found) return make_error(errc::not_found, "campaign '{}' does not exist", name_or_id);
  return **found;
}

result<int> campaign_service::do_not_call_add(std::span<const std::string> numbers,
                                              const std::string& source) {
  std::vector<std::string> normalised;
  for (const auto& n : numbers) {
    auto p = parse_phone(n, "US");
    if (!p) return std::move(p).error();
    normalised.push_back(p->e164);
  }
  return dnc_.add(normalised, source);
}

result<int> campaign_service::do_not_call_import(const std::filesystem::path& file,
                                                 const std::string& default_region,
                                                 std::vector<std::string>& skipped) {
  auto entries = contacts::read_do_not_call_file(file, default_region);
  if (!entries) return std::move(entries).error();
  skipped = std::move(entries->skipped);
  return dnc_.add(entries->e164s, file.filename().string());
}

}  // namespace dialer
