#pragma once
// PostgreSQL implementation of the campaign_store port (claims, attempts, write-back, leases, recovery).
// Threading: one instance per thread; each owns its connection.

#include <memory>
#include <pqxx/connection>
#include <pqxx/transaction_base>
#include <string>

#include "engine/ports/campaign_store.hpp"

namespace dialer::pg {

class pg_campaign_store final : public campaign_store {
 public:
  // engine_id names this process in claims and leases (host:pid:random).
  pg_campaign_store(std::unique_ptr<pqxx::connection> connection, account_id account, std::string engine_id);

  result<campaign_record> load_campaign(campaign_id id) override;
  result<campaign_state> state(campaign_id id) override;
  result<campaign_state> transition(campaign_id id, std::span<const campaign_state> from, campaign_state to) override;
  result<std::vector<claimed_contact>> claim(campaign_id id, int max, std::chrono::milliseconds lease) override;
  result<void> heartbeat(campaign_id id, std::chrono::milliseconds lease) override;
  result<void> record_attempts(campaign_id id, std::span<attempt_to_record> attempts,
                               const std::string& carrier) override;
  result<void> write_back(std::span<const attempt_outcome> outcomes, std::span<const contact_return> returns,
                          std::span<const contact_final> finals) override;
  result<campaign_progress> progress(campaign_id id) override;
  result<std::vector<open_attempt>> recover_expired(campaign_id id) override;
  result<std::vector<slot_lease>> lease_slots(std::span<const number_id> numbers, std::span<const int> in_use,
                                              std::chrono::milliseconds lease) override;
  result<void> release_engine() override;
  result<std::int64_t> cancel_pending(campaign_id id) override;

  [[nodiscard]] pqxx::connection& connection() { return *connection_; }

 private:
  std::unique_ptr<pqxx::connection> connection_;
  account_id account_;
  std::string engine_id_;
};

// A unique id for this process: host:pid:random.
[[nodiscard]] std::string make_engine_id();

// Counts the campaign's contacts by state into p (shared by the runner's store and the CLI's summaries).
void count_contact_states(pqxx::transaction_base& tx, campaign_id id, campaign_progress& p);

// Loads a campaign record through any connection (shared by the store and the CLI).
[[nodiscard]] result<campaign_record> load_campaign_record(pqxx::connection& c, account_id account, campaign_id id);

}  // namespace dialer::pg
