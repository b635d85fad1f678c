#pragma once
// The campaign service: the use cases of campaigns, for the command line (and the HTTP API). Launch with its
// fail-fast checks (the agent exists, has an outbound number, every listed number is its own), import, pause,
// resume, cancel, status and per-contact results, a single call, the do-not-call list. It validates
// everything before it acts: a launch that fails a check leaves nothing behind (no agent, no number bought,
// no campaign, no do-not-call entry). It decides; the ports store. Dialing itself is the dialing engine's
// (engine/dialing/), which picks up a campaign once the service has set it running.
//
// Threading: one instance per thread, like the ports it is given (each holds a connection).

#include <optional>
#include <string>
#include <vector>

#include "engine/campaign.hpp"
#include "engine/campaign_record.hpp"
#include "engine/contacts/do_not_call_file.hpp"
#include "engine/inventory.hpp"
#include "engine/ports/campaign_repository.hpp"
#include "engine/ports/clock.hpp"
#include "engine/ports/inventory_store.hpp"
#include "engine/ports/number_provider.hpp"

namespace dialer {

// What a launch would do, or did: the agent, the caller IDs, and what provisioning creates.
struct launch_plan {
  agent agent_record;                     // id empty while the agent is still to be created
  std::vector<phone_number> numbers;      // caller IDs the campaign uses (those that exist already)
  std::vector<number_id> listed;          // explicit list (empty: all of the agent's)
  std::vector<std::string> would_create;  // what provisioning creates, buys or assigns (check only)
};

// What a launch reads from outside the database, checked before anything is created.
struct launch_inputs {
  std::optional<contacts::do_not_call_entries> do_not_call;  // the spec's do-not-call file, read
  std::optional<std::string> contacts_csv;  // the contacts themselves (the HTTP API), instead of spec.contacts.file
};

struct launch_options {
  bool resume = false;  // the campaign must exist already (`dialer run --resume`)
  bool start = true;    // false: create and import, and leave it a draft (start_draft() launches it)
  bool must_be_new = false;  // conflict when a campaign of this name exists (instead of resuming it)
};

struct launch_result {
  campaign_id id;
  launch_plan plan;
  bool created = false;                          // the campaign was created now
  std::optional<import_report> imported;         // its contacts were imported now
  std::optional<campaign_state> already;         // it was completed or cancelled already: nothing was done
  std::vector<std::string> do_not_call_skipped;  // lines of the do-not-call file that are not numbers
};

struct dry_run_report {
  launch_plan plan;
  contacts::import_summary import;  // the counts, by reason
  std::vector<rejected_row>
      first_rejected;  // the first campaign_summary::summary_rejected_rows, in row order
};

struct single_call_request {
  std::string agent;  // id or name
  std::string to;     // the callee, any format libphonenumber reads (US default)
  std::string from;   // a caller ID of the agent's; empty: any of them
  std::string carrier = "simulated";
  std::string name_suffix;  // makes the one-call campaign's name unique (the caller's random text)
};

class campaign_service {
 public:
  // Every reference outlives the service.
  campaign_service(campaign_repository& campaigns, do_not_call_list& dnc, inventory_store& inventory,
                   number_provider& provider, const clock& clk) noexcept
      : campaigns_(campaigns), dnc_(dnc), inventory_store_(inventory), provider_(provider), clock_(clk) {}

  // ---- Launching ----

  // Everything about a spec that can be checked without the database, checked first: the calling window and
  // the OS time-zone data it needs (calling windows are law: no dialing without correct DST rules), the
  // contacts file (generated first when the spec asks for synthetic contacts and it does not exist) and its
  // header, and the do-not-call file. Reads files; creates nothing but a missing synthetic contacts file.
  [[nodiscard]] result<launch_inputs> check_inputs(const campaign_spec& spec);

  // Checks the agent and the numbers the way a launch would, changing nothing. not_found for an agent that
  // does not exist (and is not to be created), a listed number the account lacks, or one the number inventory
  // does not offer; launch_failed, naming the agent and the number, for an agent without any outbound number
  // or a number that belongs to another agent.
  [[nodiscard]] result<launch_plan> plan(const campaign_spec& spec);

  // Launches (or resumes) the campaign of `spec`: under the account's launch turn, every check first, then
  // the agent and numbers as the spec allows, the do-not-call entries, the campaign with its contacts (once),
  // and the state running. A campaign that exists is resumed (its settings updated, imported if it never
  // was); one completed or cancelled is left as it is (`already`). launch_failed when the campaign belongs to
  // another agent.
  [[nodiscard]] result<launch_result> launch(const campaign_spec& spec, const launch_inputs& inputs,
                                             launch_options options = {});

  // A draft's launch, with the fail-fast checks of a launch (the agent exists and has an outbound number, every
  // listed number is its own): draft -> running. conflict when it is not a draft or has no contacts yet.
  [[nodiscard]] result<campaign_state> start_draft(campaign_id id);

  // What a launch of `spec` would do, and the import's verdict on every row, dialing and storing nothing.
  [[nodiscard]] result<dry_run_report> dry_run(const campaign_spec& spec);

  // One call through the same pipeline: a campaign of one contact (no calling window, one attempt,
  // concurrency 1), set running. Fails at once, saying so, when the agent has no outbound number, `from` is
  // not one of its numbers, or the callee is on the do-not-call list.
  [[nodiscard]] result<campaign_id> place_call(const single_call_request& request);

  // ---- Lifecycle (any process; engines see it within a control tick) ----
  [[nodiscard]] result<campaign_state> pause(campaign_id id);   // running -> paused
  [[nodiscard]] result<campaign_state> resume(campaign_id id);  // paused -> running
  // draft, running or paused -> cancelled (final). The waiting contacts no engine holds are cancelled at
  // once; an engine running the campaign cancels the rest of its own as it drains.
  [[nodiscard]] result<campaign_state> cancel(campaign_id id);

  // ---- Reading ----
  [[nodiscard]] result<campaign_id> find(const std::string& name_or_id);  // not_found names it
  [[nodiscard]] result<std::vector<campaign_record>> list() { return campaigns_.list(); }
  [[nodiscard]] result<campaign_summary> status(campaign_id id) { return campaigns_.summary(id); }
  [[nodiscard]] result<contact_page> results(campaign_id id, std::optional<contact_id> after, int limit) {
    return campaigns_.contact_results(id, after, limit);
  }
  // The rows its import turned away, in row order, after row `after`, at most `limit` (1-10000).
  [[nodiscard]] result<std::vector<rejected_row>> rejected_rows(campaign_id id, std::int64_t after,
                                                                int limit) {
    return campaigns_.rejected_rows(id, after, limit);
  }
  [[nodiscard]] result<std::optional<attempt_report>> last_attempt(campaign_id id) {
    return campaigns_.last_attempt(id);
  }
  [[nodiscard]] result<std::vector<attempt_report>> attempts(campaign_id id, std::int64_t after, int limit) {
    return campaigns_.attempts(id, after, limit);
  }

  // ---- Do-not-call ----
  [[nodiscard]] result<int> do_not_call_add(std::span<const std::string> numbers, const std::string& source);
  // Reads a do-not-call file and adds its numbers; lines that are not numbers are returned in `skipped`.
  [[nodiscard]] result<int> do_not_call_import(const std::filesystem::path& file,
                                               const std::string& default_region,
                                               std::vector<std::string>& skipped);
  [[nodiscard]] result<std::vector<std::pair<std::string, std::string>>> do_not_call_list_entries() {
    return dnc_.list();
  }

 private:
  enum class step : std::uint8_t { check, act };
  [[nodiscard]] result<launch_plan> prepare(const campaign_spec& spec, step s);

  campaign_repository& campaigns_;
  do_not_call_list& dnc_;
  inventory_store& inventory_store_;
  number_provider& provider_;
  const clock& clock_;
};

}  // namespace dialer
