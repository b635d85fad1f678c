#pragma once
// PostgreSQL implementation of the attempt_journal port: attempts recorded in one transaction per batch
// (whatever campaigns it mixes), guarded by the campaign's state, the block's holder, the caller ID's slot
// lease and the do-not-call list; outcomes, hand-backs and finals written back with set-based statements
// (arrays through unnest), releasing blocks with their counters recomputed. Threading: one instance per
// thread; it owns its connection.

#include <memory>
#include <pqxx/connection>

#include <string>
#include "adapters/postgres/pg_link.hpp"

#include "adapters/postgres/campaign_rows.hpp"
#include "engine/ports/attempt_journal.hpp"

namespace dialer::pg {

class pg_attempt_journal final : public attempt_journal {
 public:
  pg_attempt_journal(pg_link link, std::string engine_id)
      : link_(std::move(link)), engine_id_(std::move(engine_id)) {}

  result<void> record(std::span<attempt_to_record> attempts) override;
  result<void> write_back(const write_batch& batch) override;

 private:
  pg_link link_;
  std::string engine_id_;
  layout_cache layouts_;
};

}  // namespace dialer::pg
