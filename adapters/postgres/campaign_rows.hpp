#pragma once
// What the campaign adapters share: how a campaign row is read, how a campaign's contacts and attempts are
// reached (through its contact id range: neither table has an index on campaign_id), how block counters are
// recomputed, and how a cancelled campaign's waiting contacts are ended. Not a port: helpers of
// adapters/postgres only.

#include <pqxx/connection>
#include <pqxx/transaction_base>
#include <span>
#include <string>
#include <unordered_map>

#include "engine/campaign_record.hpp"
#include "engine/result.hpp"

namespace dialer::pg {

// A unique id for this process's engine: host:pid:random.
[[nodiscard]] std::string make_engine_id();

// Counts the campaign's contacts by state into p.
void count_contact_states(pqxx::transaction_base& tx, campaign_id id, campaign_progress& p);

// FROM clauses for one campaign's rows, through its contact id range (an attempt's id is contact_id * 128 +
// attempt_no, see attempt_of in engine/ids.hpp). `k` is the campaign row, `c` its contacts, `a` its attempts;
// filter with `WHERE k.id = $n`.
inline constexpr const char* kCampaignContacts =
    "campaigns k JOIN contacts c ON c.id BETWEEN k.first_contact_id AND k.last_contact_id AND c.campaign_id "
    "= k.id";
inline constexpr const char* kCampaignAttempts =
    "campaigns k JOIN call_attempts a ON a.id BETWEEN k.first_contact_id * 128 AND k.last_contact_id * 128 + "
    "127 "
    "AND a.campaign_id = k.id";

// Recomputes the counters and next_due of the blocks whose first ids are in `firsts` (an array literal) from
// their contacts; `release` also frees them.
void recount_blocks(pqxx::transaction_base& tx, campaign_id id, const std::string& firsts, bool release);
// The same for blocks of several campaigns: `campaigns` and `firsts` are parallel array literals.
void recount_blocks(pqxx::transaction_base& tx, const std::string& campaigns, const std::string& firsts,
                    bool release);

// Cancels the pending contacts of every block no live engine holds (see contact_claims::cancel_pending).
[[nodiscard]] std::int64_t cancel_waiting_contacts(pqxx::transaction_base& tx, campaign_id id);

// A campaign's contact range and block size (fixed once imported) and its account, read once per campaign and
// kept: the engine's adapters compute block keys and do-not-call lookups with them on every batch. One per
// connection (not thread-safe).
class layout_cache {
 public:
  struct entry {
    contact_blocks blocks;
    account_id account;
  };
  // Reads the campaigns it does not know yet (or knows without contacts: not imported then) in one statement.
  void load(pqxx::transaction_base& tx, std::span<const std::int64_t> campaigns);
  // Loaded before (load); a campaign unknown to the database gets an empty entry.
  [[nodiscard]] const entry& get(pqxx::transaction_base& tx, campaign_id id);

 private:
  std::unordered_map<std::int64_t, entry> entries_;
};

// Loads a campaign record through any connection; `account` invalid: whatever its account (the engine serves
// all).
[[nodiscard]] result<campaign_record> load_campaign_record(pqxx::connection& c, account_id account,
                                                           campaign_id id);

}  // namespace dialer::pg
