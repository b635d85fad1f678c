#pragma once
// Campaign administration on PostgreSQL: create a campaign once, import its contacts once (COPY, in one
// transaction with the campaign's import record), the do-not-call list, listings and summaries.
// Not a hot path except the import. Threading: one instance per thread (it uses the connection it is given, and
// opens its own for each import).

#include <filesystem>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "engine/contacts/contact_import.hpp"
#include "engine/ports/campaign_store.hpp"

namespace dialer::pg {

struct import_report {
  contacts::import_summary summary;
  std::vector<std::pair<std::uint64_t, std::string>> rejected;  // {row, reason}
};

struct created_campaign {
  campaign_id id;
  import_report import;
};

// Held while a process prepares the launch of a campaign (agent, numbers, the campaign row and its import): the
// launches of one account take turns, so two first runs of one file cannot both create the agent, buy the
// number, create the campaign or import it. A session-level advisory lock on the connection it was taken on,
// released by release() or the destructor (and by the server when the connection ends). Move-only; the thread
// that owns that connection only.
class launch_guard {
 public:
  launch_guard(launch_guard&& other) noexcept;
  launch_guard& operator=(launch_guard&& other) noexcept;
  launch_guard(const launch_guard&) = delete;
  launch_guard& operator=(const launch_guard&) = delete;
  ~launch_guard();
  void release() noexcept;

 private:
  friend class campaign_admin;
  launch_guard(pqxx::connection& connection, std::int64_t account);
  pqxx::connection* connection_;
  std::int64_t account_;
};

struct outcome_count {
  std::string outcome;
  std::int64_t count = 0;
};

struct number_summary {
  number_id id;
  std::string e164;
  std::int32_t max_concurrent_calls = 0;
  std::int64_t calls = 0;
  // Most of its calls in progress at one instant, from the attempts' started_at..ended_at (every engine's).
  std::int64_t peak_in_flight = 0;
};

// One attempt as `dialer call` reports it.
struct attempt_report {
  std::int64_t id = 0;
  std::string caller_id;
  std::string outcome;  // "unknown" while it has none
  std::int64_t billable_ms = 0;
  std::string carrier_call_id;
};

struct campaign_summary {
  campaign_record campaign;
  campaign_progress progress;
  std::vector<outcome_count> outcomes;  // attempts by outcome
  std::vector<number_summary> numbers;  // attempts by caller ID
  micros cost = 0;
  double talk_minutes = 0;
  // started_at..finished_at of the campaign; while it has not finished, its first call's start to its last
  // call's end (0 before any call).
  double duration_s = 0;
};

class campaign_admin {
 public:
  campaign_admin(pqxx::connection& connection, account_id account, std::string database_url)
      : connection_(connection), account_(account), url_(std::move(database_url)) {}

  [[nodiscard]] result<std::optional<campaign_id>> find_campaign(const std::string& name_or_id);
  // Creates the campaign in state draft with its explicit numbers (the database checks they belong to the agent).
  [[nodiscard]] result<campaign_id> create_campaign(const campaign_spec& spec, agent_id agent,
                                                    std::span<const number_id> numbers);
  [[nodiscard]] result<void> update_settings(campaign_id id, const campaign_spec& spec);

  // Streams the file through the importer into `contacts` with COPY; all or nothing, and at most once per
  // campaign (conflict when it was imported already).
  [[nodiscard]] result<import_report> import_contacts(campaign_id id, const std::filesystem::path& file,
                                                      const std::string& default_region);
  // create_campaign and import_contacts in one transaction: the campaign exists with its contacts, or not at
  // all (a file that fails half-way leaves no campaign behind). conflict when the name is taken.
  [[nodiscard]] result<created_campaign> create_and_import(const campaign_spec& spec, agent_id agent,
                                                           std::span<const number_id> numbers,
                                                           const std::filesystem::path& file,
                                                           const std::string& default_region);

  // Waits until no other process prepares a launch in this account, then holds that turn (launch_guard).
  [[nodiscard]] result<launch_guard> lock_launches();

  // Do-not-call list (normalised E.164). add returns how many were new.
  [[nodiscard]] result<int> dnc_add(std::span<const std::string> e164s, const std::string& source);
  [[nodiscard]] result<std::vector<std::pair<std::string, std::string>>> dnc_list();  // {e164, source}
  [[nodiscard]] result<contacts::e164_set> dnc_set();

  [[nodiscard]] result<std::vector<campaign_record>> list_campaigns();
  [[nodiscard]] result<campaign_summary> summary(campaign_id id);
  [[nodiscard]] result<campaign_state> set_state(campaign_id id, campaign_state to);
  // The campaign's latest attempt (highest id), if it placed any.
  [[nodiscard]] result<std::optional<attempt_report>> last_attempt(campaign_id id);

 private:
  pqxx::connection& connection_;
  account_id account_;
  std::string url_;
};

}  // namespace dialer::pg
