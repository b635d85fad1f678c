#pragma once
// A campaign as an operator describes it: who calls, from which numbers, through which carrier, when,
// how often, and whom. Produced by the YAML loader (adapters/config), stored with the campaign (as JSON),
// and read by the campaign runner. Validation of each field happens where it is parsed; `validate()`
// checks what needs the whole spec.

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/result.hpp"
#include "engine/rules/calling_window.hpp"
#include "engine/rules/parse.hpp"
#include "engine/rules/retry_policy.hpp"
#include "scheduler/types.hpp"

namespace dialer {

struct campaign_number_spec {
  std::string e164;                         // E.164 as written (normalised by the loader)
  std::optional<int> max_concurrent_calls;  // used when the number is provisioned by the campaign
  std::optional<double> max_cps;
};

struct window_spec {
  std::chrono::seconds start{std::chrono::hours{8}};
  std::chrono::seconds end{std::chrono::hours{21}};
  rules::weekday_mask days = rules::weekdays::mon_fri;
  bool us_holidays = true;
  std::vector<std::chrono::year_month_day> extra_holidays;
};

struct contacts_spec {
  std::filesystem::path file;       // absolute (the loader resolves it against the YAML file's folder)
  std::optional<int> generate;      // create this many synthetic contacts when the file does not exist
  std::uint64_t seed = 1;           // for generation
};

struct campaign_spec {
  std::string name;
  std::filesystem::path source;     // the YAML file, absolute; empty when built in code

  std::string agent;                // agent name
  bool create_agent = false;        // create it when it does not exist
  std::string agent_handoff;        // hand-off target for a created agent

  std::vector<campaign_number_spec> numbers;  // explicit caller IDs; empty = every number of the agent
  bool provision_numbers = false;   // buy listed numbers missing from the account and assign them (demos)

  std::string carrier = "simulated";
  nlohmann::json carrier_settings = nlohmann::json::object();  // env references already resolved

  int max_concurrency = 10;         // calls in flight for the campaign, across its numbers
  sched::caller_id_strategy strategy = sched::caller_id_strategy::round_robin;
  bool sticky_retries = true;

  window_spec window;
  rules::retry_policy retry;
  std::string default_region = "US";

  contacts_spec contacts;
  std::optional<std::filesystem::path> do_not_call_file;

  [[nodiscard]] result<rules::calling_window> make_window() const;
};

// A carrier-settings key that holds a secret: its name contains token, secret, password, api_key, apikey,
// key_id or auth (case-insensitive). Such values come only from environment variables and are never stored.
[[nodiscard]] bool is_secret_setting(std::string_view key);

// The stored form (campaigns.settings); secrets in carrier settings are replaced by "<redacted>".: everything but the contacts, which live in their own table.
[[nodiscard]] nlohmann::json to_json(const campaign_spec& spec);
[[nodiscard]] result<campaign_spec> campaign_spec_from_json(const nlohmann::json& j);

}  // namespace dialer
