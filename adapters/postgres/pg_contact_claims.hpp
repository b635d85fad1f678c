#pragma once
// PostgreSQL implementation of the contact_claims port: blocks of due contacts claimed with FOR UPDATE SKIP
// LOCKED under a lease, renewed in one statement for every campaign, progress from the blocks' counters,
// cancellation of the contacts no live engine holds. Threading: one instance per thread; it owns its
// connection.

#include <memory>
#include <pqxx/connection>

#include <string>
#include "adapters/postgres/pg_link.hpp"

#include "adapters/postgres/campaign_rows.hpp"
#include "engine/ports/contact_claims.hpp"

namespace dialer::pg {

class pg_contact_claims final : public contact_claims {
 public:
  // engine_id names this engine in claims and leases (make_engine_id()).
  pg_contact_claims(pg_link link, std::string engine_id)
      : link_(std::move(link)), engine_id_(std::move(engine_id)) {}

  result<std::vector<claim_batch>> claim(std::span<const claim_request> requests,
                                         std::chrono::milliseconds lease) override;
  result<void> renew(std::span<const held_blocks> held, std::chrono::milliseconds lease) override;
  result<campaign_progress> progress(campaign_id id) override;
  result<std::int64_t> cancel_pending(campaign_id id) override;
  result<std::int64_t> cancel_orphaned() override;

 private:
  claim_batch claim_one(pqxx::transaction_base& tx, const claim_request& request,
                        std::chrono::milliseconds lease);

  pg_link link_;
  std::string engine_id_;
  layout_cache layouts_;
};

}  // namespace dialer::pg
