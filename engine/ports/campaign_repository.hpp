#pragma once
// The campaign-repository port: campaigns of one account as the campaign service keeps them: created once
// with their contacts (all or nothing), their settings, their state, summaries and per-contact results, and
// the account's do-not-call list. Not a hot path (the engine's ports are contact_claims, attempt_journal,
// slot_leases and engine_registry).
//
// Implemented by adapters/postgres (pg_campaign_repository). Threading: one instance per thread.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/campaign_record.hpp"
#include "engine/contacts/contact_import.hpp"
#include "engine/contacts/e164_set.hpp"
#include "engine/result.hpp"

namespace dialer {

// Where a campaign's contacts come from: CSV text in memory when `csv` is set (a single call, an API
// request), else a CSV file (its header checked before anything is created); read with `default_region` for
// numbers written without a country code.
struct contacts_source {
  std::filesystem::path file;
  std::optional<std::string> csv;
  std::string default_region = "US";
};

// The counts; the rejected rows themselves are stored with the campaign (campaign_repository::rejected_rows).
struct import_report {
  contacts::import_summary summary;
};

// One row of a contact file the import turned away.
struct rejected_row {
  std::int64_t row = 0;  // the data record: 1 is the first after the header
  std::string reason;    // contacts::reject_reason's name
  std::string input;     // the phone field as written, cut at the import's phone limit
};

struct created_campaign {
  campaign_id id;
  import_report import;
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
  std::int64_t in_flight = 0;  // its attempts of this campaign recorded and not ended, now
  // Most of its calls in progress at one instant, from the attempts' started_at..ended_at (every engine's).
  std::int64_t peak_in_flight = 0;
};

struct campaign_summary {
  campaign_record campaign;
  campaign_progress progress;
  std::vector<outcome_count> outcomes;  // attempts by outcome
  std::vector<number_summary> numbers;  // attempts by caller ID
  // The first rows its import turned away (at most summary_rejected_rows; campaign.import_rejected() counts
  // them all, rejected_rows pages through them).
  std::vector<rejected_row> first_rejected;
  static constexpr int summary_rejected_rows = 1000;
  micros cost = 0;
  double talk_minutes = 0;
  // started_at..finished_at of the campaign; while it has not finished, its first call's start to its last
  // call's end (0 before any call).
  double duration_s = 0;
};

// One attempt as a report shows it.
struct attempt_report {
  std::int64_t id = 0;
  std::string caller_id;
  std::string callee;
  std::string outcome;  // "unknown" while it has none
  std::int64_t billable_ms = 0;
  std::string carrier_call_id;
  campaign_id campaign;
  int attempt_no = 0;
  std::optional<timestamp> started_at;
  std::optional<timestamp> answered_at;
  std::optional<timestamp> ended_at;
};

// One contact's result: its state, why, and its last attempt.
struct contact_result {
  contact_id id;
  int row = 0;  // in the imported file
  std::string e164;
  std::string state;   // pending, done, cancelled, do_not_call, invalid
  std::string reason;  // pending_reason, or why it ended without an attempt
  int attempts = 0;
  std::string outcome;                       // the last attempt's outcome ("" before any)
  std::optional<timestamp> next_attempt_at;  // when pending
};

struct contact_page {
  std::vector<contact_result> contacts;
  std::optional<contact_id> next_after;  // pass as `after` for the next page; nullopt: this was the last
};

// The launches of one account take turns while the token lives (two first runs of one file: one creates and
// imports, the other finds the campaign). Move-only; released by its destructor.
class launch_turn {
 public:
  virtual ~launch_turn() = default;
};

class campaign_repository {
 public:
  virtual ~campaign_repository() = default;

  // A name, or an id (digits). nullopt when the account has none such.
  [[nodiscard]] virtual result<std::optional<campaign_id>> find(const std::string& name_or_id) = 0;
  [[nodiscard]] virtual result<campaign_record> load(campaign_id id) = 0;
  [[nodiscard]] virtual result<std::vector<campaign_record>> list() = 0;

  // The campaign (state draft) with its explicit caller IDs and its contacts, in one transaction: it exists
  // with its contacts, or not at all (a file that fails half-way leaves nothing). The account's do-not-call
  // list filters the import. conflict when the name is taken; launch_failed when a listed number is not the
  // agent's.
  [[nodiscard]] virtual result<created_campaign> create_with_contacts(const campaign_spec& spec,
                                                                      agent_id agent,
                                                                      std::span<const number_id> numbers,
                                                                      const contacts_source& contacts) = 0;
  // The contacts of a campaign created without them; at most once (conflict when imported already).
  [[nodiscard]] virtual result<import_report> import_contacts(campaign_id id,
                                                              const contacts_source& contacts) = 0;
  [[nodiscard]] virtual result<void> update_settings(campaign_id id, const campaign_spec& spec) = 0;

  // Waits until no other process prepares a launch in this account, then holds that turn.
  [[nodiscard]] virtual result<std::unique_ptr<launch_turn>> lock_launches() = 0;

  // Moves the state only from one of `from` (already at `to`: success); conflict naming the current state
  // otherwise.
  [[nodiscard]] virtual result<campaign_state> transition(campaign_id id,
                                                          std::span<const campaign_state> from,
                                                          campaign_state to) = 0;
  // Cancels the waiting contacts no live engine holds (contact_claims::cancel_pending); returns how many.
  [[nodiscard]] virtual result<std::int64_t> cancel_waiting(campaign_id id) = 0;

  [[nodiscard]] virtual result<campaign_summary> summary(campaign_id id) = 0;
  // Contacts in id order, after `after` (none: from the first), at most `limit`.
  [[nodiscard]] virtual result<contact_page> contact_results(campaign_id id, std::optional<contact_id> after,
                                                             int limit) = 0;
  // The rows its import turned away, in row order, after row `after` (0: from the first), at most `limit`.
  [[nodiscard]] virtual result<std::vector<rejected_row>> rejected_rows(campaign_id id, std::int64_t after,
                                                                        int limit) = 0;
  // The campaign's latest attempt (highest id), if it placed any.
  [[nodiscard]] virtual result<std::optional<attempt_report>> last_attempt(campaign_id id) = 0;
  // Its attempts in id order, after `after` (0: from the first), at most `limit`.
  [[nodiscard]] virtual result<std::vector<attempt_report>> attempts(campaign_id id, std::int64_t after, int limit) = 0;
  // Price per minute of carrier time on managed numbers.
  [[nodiscard]] virtual result<micros> call_minute_rate() = 0;
};

// The account's do-not-call list (normalised E.164).
class do_not_call_list {
 public:
  virtual ~do_not_call_list() = default;
  // Returns how many were new.
  [[nodiscard]] virtual result<int> add(std::span<const std::string> e164s, const std::string& source) = 0;
  [[nodiscard]] virtual result<std::vector<std::pair<std::string, std::string>>>
  list() = 0;  // {e164, source}
  [[nodiscard]] virtual result<contacts::e164_set> set() = 0;
};

}  // namespace dialer
