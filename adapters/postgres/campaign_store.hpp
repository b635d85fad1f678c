#pragma once
// PostgreSQL implementation of the campaign_store port: block claims with leases, attempts, write-back, slot
// leases, recovery. Threading: one instance per thread; each owns its connection.

#include <memory>
#include <pqxx/connection>
#include <pqxx/transaction_base>
#include <string>
#include <unordered_map>

#include "engine/ports/campaign_store.hpp"

namespace dialer::pg {

class pg_campaign_store final : public campaign_store {
 public:
  // engine_id names this process in claims and leases (host:pid:random).
  pg_campaign_store(std::unique_ptr<pqxx::connection> connection, account_id account, std::string engine_id);

  result<campaign_record> load_campaign(campaign_id id) override;
  result<campaign_state> state(campaign_id id) override;
  result<campaign_state> transition(campaign_id id, std::span<const campaign_state> from, campaign_state to) override;
  result<claim_batch> claim(campaign_id id, int max, std::chrono::milliseconds lease) override;
  result<void> heartbeat(campaign_id id, std::chrono::milliseconds lease,
                         std::span<const std::int64_t> blocks) override;
  result<void> record_attempts(campaign_id id, std::span<attempt_to_record> attempts,
                               const std::string& carrier) override;
  result<void> write_back(campaign_id id, const write_batch& batch) override;
  result<campaign_progress> progress(campaign_id id) override;
  result<std::vector<slot_lease>> lease_slots(agent_id agent, std::span<const number_id> numbers, std::span<const int> in_use,
                                              std::chrono::milliseconds lease, std::chrono::milliseconds quiet) override;
  result<slot_lease> lease_campaign_slots(campaign_id id, int max, int in_use, std::chrono::milliseconds lease) override;
  result<void> release_engine() override;
  result<std::int64_t> cancel_pending(campaign_id id) override;

  [[nodiscard]] pqxx::connection& connection() { return *connection_; }

 private:
  // The campaign's contact range and block size (fixed once imported), read once per campaign.
  const contact_blocks& layout(pqxx::transaction_base& tx, campaign_id id);

  std::unique_ptr<pqxx::connection> connection_;
  std::unordered_map<std::int64_t, contact_blocks> layouts_;
  account_id account_;
  std::string engine_id_;
};

// A unique id for this process: host:pid:random.
[[nodiscard]] std::string make_engine_id();

// Counts the campaign's contacts by state into p (shared by the runner's store and the CLI's summaries).
void count_contact_states(pqxx::transaction_base& tx, campaign_id id, campaign_progress& p);

// FROM clauses for one campaign's rows, through its contact id range (neither contacts nor call_attempts has an
// index on campaign_id; both are reached by a range of their primary key: an attempt's id is
// contact_id * 128 + attempt_no, see attempt_of in engine/ids.hpp). `k` is the campaign row,
// `c` its contacts, `a` its attempts; filter with `WHERE k.id = $n`.
inline constexpr const char* kCampaignContacts =
    "campaigns k JOIN contacts c ON c.id BETWEEN k.first_contact_id AND k.last_contact_id AND c.campaign_id = k.id";
inline constexpr const char* kCampaignAttempts =
    "campaigns k JOIN call_attempts a ON a.id BETWEEN k.first_contact_id * 128 AND k.last_contact_id * 128 + 127 "
    "AND a.campaign_id = k.id";

// Recomputes the counters and next_due of the blocks whose first ids are in `firsts` (an array literal) from
// their contacts; `release` also frees them. Shared by write-back, cancellation and the CLI.
void recount_blocks(pqxx::transaction_base& tx, campaign_id id, const std::string& firsts, bool release);

// Cancels the pending contacts of every block no live engine holds (see campaign_store::cancel_pending).
[[nodiscard]] std::int64_t cancel_waiting_contacts(pqxx::transaction_base& tx, campaign_id id);

// Loads a campaign record through any connection (shared by the store and the CLI).
[[nodiscard]] result<campaign_record> load_campaign_record(pqxx::connection& c, account_id account, campaign_id id);

}  // namespace dialer::pg
