#include "adapters/postgres/migrations.hpp"

#include <pqxx/pqxx>

namespace dialer::pg {
namespace {

constexpr std::int64_t kMigrationLock = 0x6469616c65720001;  // "dialer" + 1

constexpr migration kMigrations[] = {
    {1, "accounts, agents, numbers and number fees", R"SQL(
CREATE TABLE accounts (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL UNIQUE CHECK (name <> ''),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounts (name) VALUES ('default');

CREATE TABLE agents (
  id         bigserial PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES accounts (id),
  -- Not all digits: on the command line an agent is named by id or by name.
  name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$' AND name !~ '^[0-9]+$'),
  handoff    text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, name),
  UNIQUE (account_id, id)
);

-- Monthly fee per country and type; country '*' is the fallback. Operators change prices here.
CREATE TABLE number_fees (
  country     text NOT NULL CHECK (country = '*' OR country ~ '^[A-Z]{2}$'),
  type        text NOT NULL CHECK (type IN ('local', 'toll_free', 'mobile')),
  monthly_fee numeric(12, 4) NOT NULL CHECK (monthly_fee >= 0),
  PRIMARY KEY (country, type)
);
INSERT INTO number_fees (country, type, monthly_fee) VALUES
  ('US', 'local', 1.15), ('US', 'toll_free', 2.15), ('US', 'mobile', 1.15),
  ('CA', 'local', 1.15), ('CA', 'toll_free', 2.15), ('CA', 'mobile', 1.15),
  ('GB', 'local', 1.00), ('GB', 'toll_free', 2.00), ('GB', 'mobile', 1.00),
  ('AU', 'local', 3.00), ('AU', 'toll_free', 10.00), ('AU', 'mobile', 6.50),
  ('*', 'local', 2.00), ('*', 'toll_free', 5.00), ('*', 'mobile', 4.00);

CREATE TABLE numbers (
  id                   bigserial PRIMARY KEY,
  account_id           bigint NOT NULL REFERENCES accounts (id),
  e164                 text NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
  country              text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
  type                 text NOT NULL CHECK (type IN ('local', 'toll_free', 'mobile')),
  kind                 text NOT NULL CHECK (kind IN ('managed', 'byoc')),
  provider             text NOT NULL CHECK (provider <> ''),
  provider_ref         text NOT NULL DEFAULT '',
  max_concurrent_calls integer NOT NULL DEFAULT 1 CHECK (max_concurrent_calls BETWEEN 1 AND 10000),
  max_cps              double precision NOT NULL DEFAULT 1 CHECK (max_cps > 0 AND max_cps <= 1000),
  status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'released')),
  monthly_fee          numeric(12, 4) NOT NULL DEFAULT 0 CHECK (monthly_fee >= 0),
  agent_id             bigint,
  assigned_at          timestamptz,
  purchased_at         timestamptz NOT NULL DEFAULT now(),
  released_at          timestamptz,
  -- The agent must belong to the number's account: a number has at most one agent by construction.
  FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id),
  CONSTRAINT released_number_has_no_agent CHECK (status = 'active' OR agent_id IS NULL),
  CONSTRAINT released_at_matches_status CHECK ((status = 'released') = (released_at IS NOT NULL)),
  CONSTRAINT byoc_number_has_no_fee CHECK (kind = 'managed' OR monthly_fee = 0)
);
-- The same E.164 cannot be active twice in one account, and a managed number has one owner platform-wide.
CREATE UNIQUE INDEX numbers_active_e164_per_account ON numbers (account_id, e164) WHERE status = 'active';
CREATE UNIQUE INDEX numbers_managed_active_e164 ON numbers (e164) WHERE status = 'active' AND kind = 'managed';
CREATE INDEX numbers_by_agent ON numbers (account_id, agent_id) WHERE agent_id IS NOT NULL;

-- A released number is final: it cannot be assigned, reactivated or changed.
CREATE FUNCTION numbers_released_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'released' THEN
    RAISE EXCEPTION 'number % is released and cannot be changed', OLD.e164 USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER numbers_released_is_final BEFORE UPDATE ON numbers
  FOR EACH ROW EXECUTE FUNCTION numbers_released_is_final();
)SQL"},
};

}  // namespace

std::span<const migration> all_migrations() noexcept { return kMigrations; }

result<int> migrate(pqxx::connection& connection) { return migrate(connection, all_migrations()); }

result<int> migrate(pqxx::connection& connection, std::span<const migration> migrations) {
  int applied = 0;
  try {
    {
      pqxx::work tx(connection);
      tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
      tx.exec0(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
      tx.commit();
    }
    for (const auto& m : migrations) {
      pqxx::work tx(connection);
      tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
      if (!tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version).empty()) continue;
      try {
        tx.exec(m.sql);
      } catch (const pqxx::sql_error& e) {
        return make_error(errc::internal, "migration {} ({}) failed and was rolled back: {}", m.version, m.name,
                          e.what());
      }
      tx.exec_params0("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name);
      tx.commit();
      ++applied;
    }
  } catch (const pqxx::broken_connection& e) {
    return make_error(errc::unavailable, "database connection lost while migrating: {}", e.what());
  } catch (const std::exception& e) {
    return make_error(errc::internal, "migrating the database failed: {}", e.what());
  }
  return applied;
}

}  // namespace dialer::pg
