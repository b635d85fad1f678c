#include "adapters/postgres/engine_ports.hpp"

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/pg_attempt_journal.hpp"
#include "adapters/postgres/pg_contact_claims.hpp"
#include "adapters/postgres/pg_engine_registry.hpp"
#include "adapters/postgres/pg_slot_leases.hpp"

namespace dialer::pg {

namespace {

// The port connects on its first call, and again whenever its connection was lost (pg_link).
template <class Port, class Impl>
std::function<result<std::unique_ptr<Port>>()> opener(const std::string& url, const std::string& engine_id) {
  return [url, engine_id]() -> result<std::unique_ptr<Port>> {
    return std::unique_ptr<Port>(std::make_unique<Impl>(pg_link(url, engine_connection), engine_id));
  };
}

}  // namespace

engine_ports engine_ports_for(std::string database_url, std::string engine_id) {
  engine_ports p;
  p.claims = opener<contact_claims, pg_contact_claims>(database_url, engine_id);
  p.journal = opener<attempt_journal, pg_attempt_journal>(database_url, engine_id);
  p.leases = opener<slot_leases, pg_slot_leases>(database_url, engine_id);
  p.registry = opener<engine_registry, pg_engine_registry>(database_url, engine_id);
  return p;
}

}  // namespace dialer::pg
