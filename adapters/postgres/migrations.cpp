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
    {2, "campaigns, contacts, do-not-call, call attempts, engines and number slot leases", R"SQL(
CREATE TABLE campaigns (
  id          bigserial PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES accounts (id),
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
  agent_id    bigint NOT NULL,
  state       text NOT NULL DEFAULT 'draft'
              CHECK (state IN ('draft', 'running', 'paused', 'completed', 'cancelled')),
  carrier     text NOT NULL,
  settings    jsonb NOT NULL,
  -- Import happens once: a rerun of the same campaign resumes instead of importing twice.
  imported_at timestamptz,
  import_accepted integer NOT NULL DEFAULT 0,
  import_rejected jsonb NOT NULL DEFAULT '[]',
  created_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  finished_at timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id),
  UNIQUE (account_id, name),
  UNIQUE (account_id, id)
);

-- Explicit caller IDs of a campaign (none listed: every number of the agent).
CREATE TABLE campaign_numbers (
  campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  number_id   bigint NOT NULL REFERENCES numbers (id),
  PRIMARY KEY (campaign_id, number_id)
);

CREATE TABLE do_not_call (
  account_id bigint NOT NULL REFERENCES accounts (id),
  e164       text NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
  source     text NOT NULL DEFAULT '',
  added_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, e164)
);

-- state: pending (waiting for next_attempt_at and the calling window; pending_reason says why),
-- in_progress (claimed by an engine: claimed_by, lease_until), and the terminal states done (outcome holds
-- the final outcome), cancelled, do_not_call, invalid.
CREATE TABLE contacts (
  id              bigserial PRIMARY KEY,
  campaign_id     bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  row_number      integer NOT NULL,
  e164            text NOT NULL,
  timezone        text NOT NULL DEFAULT '',
  variables       json NOT NULL DEFAULT '{}',
  state           text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'in_progress', 'done', 'cancelled', 'do_not_call', 'invalid')),
  pending_reason  text NOT NULL DEFAULT 'new',
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
  outcome         text,
  sticky_number_id bigint,
  claimed_by      text,
  lease_until     timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT claimed_contacts_have_a_lease CHECK ((state = 'in_progress') = (claimed_by IS NOT NULL)),
  UNIQUE (campaign_id, e164)
);
CREATE INDEX contacts_due ON contacts (campaign_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX contacts_leased ON contacts (campaign_id, lease_until) WHERE state = 'in_progress';

-- One row per origination, written (in groups) before the carrier is asked: an attempt is placed at most once.
CREATE TABLE call_attempts (
  id              bigserial PRIMARY KEY,
  campaign_id     bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  contact_id      bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  attempt_no      integer NOT NULL CHECK (attempt_no >= 1),
  number_id       bigint NOT NULL REFERENCES numbers (id),
  caller_id       text NOT NULL,
  carrier         text NOT NULL,
  engine_id       text NOT NULL,
  carrier_call_id text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  answered_at     timestamptz,
  ended_at        timestamptz,
  outcome         text CHECK (outcome IN ('completed', 'busy', 'no_answer', 'failed', 'voicemail', 'canceled', 'unknown')),
  billable_ms     integer NOT NULL DEFAULT 0,
  cost            numeric(14, 6) NOT NULL DEFAULT 0,
  detail          text,
  UNIQUE (contact_id, attempt_no)
);
CREATE INDEX call_attempts_by_campaign ON call_attempts (campaign_id);
CREATE INDEX call_attempts_by_number_time ON call_attempts (number_id, created_at);

-- Live engine processes: heartbeats let the others recover a dead one's leases.
CREATE TABLE engines (
  id           text PRIMARY KEY,
  host         text NOT NULL,
  pid          integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);

-- Per-number concurrency across processes: one row per slot; an engine dials only on slots it leases.
CREATE TABLE number_slots (
  number_id   bigint NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
  slot        integer NOT NULL CHECK (slot >= 0),
  engine_id   text,
  lease_until timestamptz,
  PRIMARY KEY (number_id, slot),
  CHECK ((engine_id IS NULL) = (lease_until IS NULL))
);

-- Per-minute prices: managed numbers pay carrier minutes; every call pays AI minutes.
CREATE TABLE call_rates (
  item       text PRIMARY KEY CHECK (item IN ('call_minutes', 'ai_minutes')),
  per_minute numeric(12, 6) NOT NULL CHECK (per_minute >= 0)
);
INSERT INTO call_rates (item, per_minute) VALUES ('call_minutes', 0.014), ('ai_minutes', 0.07);

-- A number listed on a campaign must be active and assigned to the campaign's agent when it is listed.
CREATE FUNCTION campaign_number_must_belong_to_agent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n numbers%ROWTYPE;
  c campaigns%ROWTYPE;
BEGIN
  SELECT * INTO n FROM numbers WHERE id = NEW.number_id;
  SELECT * INTO c FROM campaigns WHERE id = NEW.campaign_id;
  IF n.status <> 'active' THEN
    RAISE EXCEPTION 'number % is released and cannot be used', n.e164 USING ERRCODE = 'check_violation';
  END IF;
  IF n.agent_id IS DISTINCT FROM c.agent_id OR n.account_id <> c.account_id THEN
    RAISE EXCEPTION 'number % is not assigned to the campaign''s agent', n.e164 USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER campaign_number_must_belong_to_agent BEFORE INSERT OR UPDATE ON campaign_numbers
  FOR EACH ROW EXECUTE FUNCTION campaign_number_must_belong_to_agent();
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
