#pragma once
// PostgreSQL implementations of the campaign service's ports: campaigns created once with their contacts
// (COPY, in one transaction with the campaign row), their state and settings, summaries with per-number peaks
// from the calls' intervals, per-contact results; and the account's do-not-call list. Not a hot path except
// the import. Threading: one instance per thread (it uses the connection it is given, and opens its own for
// each import).

#include <filesystem>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "engine/ports/campaign_repository.hpp"

namespace dialer::pg {

class pg_do_not_call_list final : public do_not_call_list {
 public:
  pg_do_not_call_list(pqxx::connection& connection, account_id account)
      : connection_(connection), account_(account) {}
  result<int> add(std::span<const std::string> e164s, const std::string& source) override;
  result<std::vector<std::pair<std::string, std::string>>> list() override;
  result<contacts::e164_set> set() override;

 private:
  pqxx::connection& connection_;
  account_id account_;
};

class pg_campaign_repository final : public campaign_repository {
 public:
  pg_campaign_repository(pqxx::connection& connection, account_id account, std::string database_url)
      : connection_(connection),
        account_(account),
        url_(std::move(database_url)),
        dnc_(connection, account) {}

  result<std::optional<campaign_id>> find(const std::string& name_or_id) override;
  result<campaign_record> load(campaign_id id) override;
  result<std::vector<campaign_record>> list() override;
  result<created_campaign> create_with_contacts(const campaign_spec& spec, agent_id agent,
                                                std::span<const number_id> numbers,
                                                const contacts_source& contacts) override;
  result<import_report> import_contacts(campaign_id id, const contacts_source& contacts) override;
  result<void> update_settings(campaign_id id, const campaign_spec& spec) override;
  result<std::unique_ptr<launch_turn>> lock_launches() override;
  result<campaign_state> transition(campaign_id id, std::span<const campaign_state> from,
                                    campaign_state to) override;
  result<std::int64_t> cancel_waiting(campaign_id id) override;
  result<campaign_summary> summary(campaign_id id) override;
  result<contact_page> contact_results(campaign_id id, std::optional<contact_id> after, int limit) override;
  result<std::vector<rejected_row>> rejected_rows(campaign_id id, std::int64_t after, int limit) override;
  result<std::optional<attempt_report>> last_attempt(campaign_id id) override;
  result<std::vector<attempt_report>> attempts(campaign_id id, std::int64_t after, int limit) override;
  result<micros> call_minute_rate() override;

 private:
  pqxx::connection& connection_;
  account_id account_;
  std::string url_;
  pg_do_not_call_list dnc_;
};

}  // namespace dialer::pg
