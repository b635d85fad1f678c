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
    {3, "contacts claimed in blocks; lean contact and attempt rows for the dialing path", R"SQL(
-- Why (docs/benchmarks.md has the figures): a per-row claim rewrote every contact once more than needed and
-- moved it between two partial indexes; every attempt paid three foreign-key triggers and four indexes; and no
-- update could be HOT. Now an engine claims a *block* of a campaign's contacts (a range of ids) with a lease,
-- a contact row is written once per attempt (its outcome), and with one index per table those writes stay on
-- their page (HOT).

-- A campaign's contacts have consecutive ids (the import allocates them as one range under an advisory lock),
-- cut into blocks of block_size: the block of id i is first_contact_id + (i - first_contact_id) / block_size * block_size.
ALTER TABLE campaigns
  ADD COLUMN first_contact_id bigint,
  ADD COLUMN last_contact_id bigint,
  ADD COLUMN block_size integer NOT NULL DEFAULT 1024 CHECK (block_size > 0),
  ADD CONSTRAINT contact_range_is_whole CHECK ((first_contact_id IS NULL) = (last_contact_id IS NULL)
                                               AND last_contact_id >= first_contact_id);

-- The unit of claiming: an engine holds a block under a lease (claimed_by, lease_until), claimed with
-- FOR UPDATE SKIP LOCKED. The counters are exact for a block nobody holds (recomputed from its contacts at
-- every release) and as of the claim for a held one; next_due is the earliest next attempt of a pending contact
-- ('infinity': none left).
CREATE TABLE contact_blocks (
  campaign_id bigint NOT NULL REFERENCES campaigns (id),
  first_id    bigint NOT NULL,
  last_id     bigint NOT NULL,
  next_due    timestamptz NOT NULL DEFAULT '-infinity',
  pending     integer NOT NULL DEFAULT 0 CHECK (pending >= 0),
  done        integer NOT NULL DEFAULT 0 CHECK (done >= 0),
  cancelled   integer NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
  do_not_call integer NOT NULL DEFAULT 0 CHECK (do_not_call >= 0),
  invalid     integer NOT NULL DEFAULT 0 CHECK (invalid >= 0),
  claimed_by  text,
  lease_until timestamptz,
  PRIMARY KEY (campaign_id, first_id),
  CHECK (last_id >= first_id),
  CONSTRAINT claimed_blocks_have_a_lease CHECK ((claimed_by IS NULL) = (lease_until IS NULL))
);
CREATE INDEX contact_blocks_due ON contact_blocks (campaign_id, next_due);

-- Existing campaigns: their id range and blocks (ids need not be consecutive here: every block scan also
-- filters on campaign_id). Block size as for new imports: about 64 blocks, 16 to 1024 contacts each.
UPDATE campaigns c SET first_contact_id = r.lo, last_contact_id = r.hi,
  block_size = least(1024, greatest(16, (2 ^ ceil(log(2, greatest(1, (r.hi - r.lo + 1) / 64.0))))::integer))
FROM (SELECT campaign_id, min(id) AS lo, max(id) AS hi FROM contacts GROUP BY campaign_id) r
WHERE r.campaign_id = c.id;
INSERT INTO contact_blocks (campaign_id, first_id, last_id)
SELECT c.id, b, least(b + c.block_size - 1, c.last_contact_id)
FROM campaigns c, generate_series(c.first_contact_id, c.last_contact_id, c.block_size) b
WHERE c.first_contact_id IS NOT NULL;
UPDATE contact_blocks b SET pending = n.pending, done = n.done, cancelled = n.cancelled, do_not_call = n.dnc,
  invalid = n.invalid, next_due = coalesce(n.next_due, 'infinity')
FROM (SELECT k.campaign_id, k.first_id,
        count(*) FILTER (WHERE c.state IN ('pending', 'in_progress')) AS pending,
        count(*) FILTER (WHERE c.state = 'done') AS done, count(*) FILTER (WHERE c.state = 'cancelled') AS cancelled,
        count(*) FILTER (WHERE c.state = 'do_not_call') AS dnc, count(*) FILTER (WHERE c.state = 'invalid') AS invalid,
        min(CASE WHEN c.state = 'in_progress' THEN '-infinity' ELSE c.next_attempt_at END)
          FILTER (WHERE c.state IN ('pending', 'in_progress')) AS next_due
      FROM contact_blocks k JOIN contacts c ON c.campaign_id = k.campaign_id AND c.id BETWEEN k.first_id AND k.last_id
      GROUP BY k.campaign_id, k.first_id) n
WHERE b.campaign_id = n.campaign_id AND b.first_id = n.first_id;
-- A block that held a claimed contact was being dialed by an engine of the old schema: it is left claimed with a
-- lapsed lease, so the next claim treats it as recovered and reconciles its attempts without an outcome.
UPDATE contact_blocks b SET claimed_by = 'schema-3-migration', lease_until = '-infinity'
WHERE EXISTS (SELECT 1 FROM contacts x WHERE x.campaign_id = b.campaign_id AND x.id BETWEEN b.first_id AND b.last_id
              AND x.state = 'in_progress');

DROP INDEX contacts_due;
DROP INDEX contacts_leased;
ALTER TABLE contacts DROP CONSTRAINT claimed_contacts_have_a_lease;
UPDATE contacts SET state = 'pending', pending_reason = 'lease_expired', next_attempt_at = '-infinity'
WHERE state = 'in_progress';
ALTER TABLE contacts
  DROP COLUMN claimed_by,
  DROP COLUMN lease_until,
  -- Referential rules kept by other means (a trigger per row cost more than the rest of the row): contacts are
  -- written only by the import, which holds its campaign's row lock, and campaigns are never deleted (below).
  DROP CONSTRAINT contacts_campaign_id_fkey,
  -- The import rejects duplicates itself (it sees the whole file, once per campaign); a unique index on text
  -- took most of the import's database time.
  DROP CONSTRAINT contacts_campaign_id_e164_key,
  DROP CONSTRAINT contacts_state_check,
  ADD CONSTRAINT contacts_state_check CHECK (state IN ('pending', 'done', 'cancelled', 'do_not_call', 'invalid')),
  ALTER COLUMN id DROP DEFAULT;
-- Room on every page for the next version of each row, so that write-back is a HOT update (a block's contacts are
-- written back together, in one transaction, so each page needs room for all its rows' new versions at once).
ALTER TABLE contacts SET (fillfactor = 50);
-- The importer writes the variables it has built as JSON; no second validation per row (and a rewrite here).
ALTER TABLE contacts ALTER COLUMN variables TYPE text, ALTER COLUMN variables SET DEFAULT '{}';

-- An attempt's id is derived from its natural key: contact_id * 128 + attempt_no (engine/ids.hpp, attempt_of).
-- One index (the primary key) then serves lookups by attempt, by contact (an id range) and by campaign (the
-- range of its contacts), and keeps an attempt from being recorded twice.
ALTER TABLE call_attempts
  DROP CONSTRAINT call_attempts_campaign_id_fkey,
  DROP CONSTRAINT call_attempts_contact_id_fkey,
  DROP CONSTRAINT call_attempts_number_id_fkey,
  DROP CONSTRAINT call_attempts_contact_id_attempt_no_key,
  DROP CONSTRAINT call_attempts_pkey,
  ALTER COLUMN id DROP DEFAULT;
DROP SEQUENCE call_attempts_id_seq;
UPDATE call_attempts SET id = contact_id * 128 + attempt_no;
ALTER TABLE call_attempts
  ADD PRIMARY KEY (id),
  ADD CONSTRAINT attempt_id_is_its_natural_key CHECK (attempt_no BETWEEN 1 AND 127 AND id = contact_id * 128 + attempt_no);
DROP INDEX call_attempts_by_campaign;
DROP INDEX call_attempts_by_number_time;
-- Time ranges (billing) through a BRIN index: attempts are appended in time order, and BRIN costs next to
-- nothing per insert. A campaign's attempts are found through (contact_id, attempt_no) and its contact range.
CREATE INDEX call_attempts_created_brin ON call_attempts USING brin (created_at);
-- Room for the outcome on the attempt's own page, so that the outcome update is HOT (no index entry, no second
-- page): an attempt row grows from ~110 to ~200 bytes with its outcome, and the whole batch of a page is
-- updated in one transaction. The price is disk: about 400 bytes per attempt instead of ~200.
ALTER TABLE call_attempts SET (fillfactor = 30);

-- Campaigns hold the history that billing reads: they are completed or cancelled, never deleted.
CREATE FUNCTION campaigns_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'campaign % cannot be deleted: cancel it instead', OLD.name USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER campaigns_are_kept BEFORE DELETE ON campaigns FOR EACH ROW EXECUTE FUNCTION campaigns_are_kept();
)SQL"},
    {4,
     "number slots remember when their holder let them go; shares count the engines that use the number; "
     "campaign concurrency slots",
     R"SQL(
-- A number's CPS is counted per second at the carrier, across engines. An engine that takes a slot another
-- engine has just let go (released, or its lease ran out) must not place calls on it until a second has passed:
-- the other engine may have placed calls on it an instant before. freed_at is when that happened.
ALTER TABLE number_slots ADD COLUMN freed_at timestamptz;

-- A number's slots are shared among the live engines that use it, not among every live engine: an engine that
-- dials other numbers only must not halve this one's capacity. An engine registers its numbers as it leases
-- their slots; the rows go with the engine.
CREATE TABLE engine_numbers (
  engine_id text NOT NULL REFERENCES engines (id) ON DELETE CASCADE,
  number_id bigint NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
  PRIMARY KEY (number_id, engine_id)
);

-- A campaign's concurrency cap holds across engines like a number's: one row per unit of the cap, leased by the
-- engine whose call uses it, shared among the live engines that run the campaign.
CREATE TABLE campaign_slots (
  campaign_id bigint NOT NULL REFERENCES campaigns (id),
  slot        integer NOT NULL CHECK (slot >= 0),
  engine_id   text,
  lease_until timestamptz,
  PRIMARY KEY (campaign_id, slot),
  CHECK ((engine_id IS NULL) = (lease_until IS NULL))
);
CREATE TABLE engine_campaigns (
  engine_id   text NOT NULL REFERENCES engines (id) ON DELETE CASCADE,
  campaign_id bigint NOT NULL REFERENCES campaigns (id),
  PRIMARY KEY (campaign_id, engine_id)
);
)SQL"},
    {5, "campaign changes are announced (LISTEN/NOTIFY); running campaigns indexed", R"SQL(
-- Engines learn that a campaign was launched, paused, resumed or cancelled, by whatever process, within a control
-- tick: every state change is announced on the channel dialer_campaigns with the campaign's id. Engines also read
-- the running campaigns in full every second, the fallback when a notification is lost (a reconnection).
CREATE FUNCTION campaigns_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dialer_campaigns', NEW.id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER campaigns_announce_insert AFTER INSERT ON campaigns
  FOR EACH ROW EXECUTE FUNCTION campaigns_announce();
CREATE TRIGGER campaigns_announce_state AFTER UPDATE OF state ON campaigns
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION campaigns_announce();
CREATE INDEX campaigns_running ON campaigns (id) WHERE state = 'running';
)SQL"},
    {6, "a campaign's concurrency is shared as counts per engine, not as a row per unit", R"SQL(
-- One row per (campaign, engine): how many units of the campaign's cap the engine holds, under a lease. A row per
-- unit (campaign_slots) cost a row per call of every campaign: a thousand campaigns of concurrency 5000 were five
-- million rows, renewed one campaign at a time. Shares are now read and written for every campaign at once; the
-- campaign rows, locked FOR NO KEY UPDATE in id order, serialise the engines that change one campaign's shares
-- (recording attempts takes them FOR KEY SHARE, which does not wait on that).
CREATE TABLE campaign_shares (
  campaign_id bigint NOT NULL REFERENCES campaigns (id),
  engine_id   text NOT NULL REFERENCES engines (id) ON DELETE CASCADE,
  held        integer NOT NULL CHECK (held >= 0),
  wants       boolean NOT NULL,  -- it runs the campaign (false: it drains, and keeps only what its calls hold)
  lease_until timestamptz NOT NULL,
  PRIMARY KEY (campaign_id, engine_id)
);
DROP TABLE campaign_slots;
DROP TABLE engine_campaigns;
)SQL"},
    {7, "an import's rejected rows are rows, not one JSON value on the campaign", R"SQL(
-- A file of ten million rows with a third of them bad held three million rejections in the importing process and in
-- one jsonb value, read back with every load of the campaign. Now the import streams them here (COPY), the campaign
-- keeps their count by reason, and readers page through them by row.
CREATE TABLE import_rejections (
  campaign_id bigint NOT NULL REFERENCES campaigns (id),
  row_number  bigint NOT NULL,  -- the data record: 1 is the first after the header
  reason      text NOT NULL,
  input       text NOT NULL,    -- the phone field as written, cut at the import's phone limit
  PRIMARY KEY (campaign_id, row_number)
);
INSERT INTO import_rejections (campaign_id, row_number, reason, input)
SELECT c.id, (r ->> 'row')::bigint, r ->> 'reason', '' FROM campaigns c, jsonb_array_elements(c.import_rejected) r;
ALTER TABLE campaigns ADD COLUMN import_rejected_by_reason jsonb NOT NULL DEFAULT '{}';
UPDATE campaigns c SET import_rejected_by_reason = coalesce(
  (SELECT jsonb_object_agg(reason, n) FROM
     (SELECT r ->> 'reason' AS reason, count(*) AS n FROM jsonb_array_elements(c.import_rejected) r GROUP BY 1) g),
  '{}')
WHERE jsonb_array_length(c.import_rejected) > 0;
ALTER TABLE campaigns DROP COLUMN import_rejected;
ALTER TABLE campaigns ALTER COLUMN import_accepted TYPE bigint;
)SQL"},
    {8, "the HTTP API: API keys, idempotency keys, agents that can be deleted, number changes announced", R"SQL(
-- An API key belongs to one account. The key is random and shown once; only its SHA-256 is kept (a key has 192
-- random bits, so a fast hash is enough: there is nothing to guess), with a prefix to tell keys apart in listings.
CREATE TABLE api_keys (
  id           bigserial PRIMARY KEY,
  account_id   bigint NOT NULL REFERENCES accounts (id),
  name         text NOT NULL DEFAULT '',
  prefix       text NOT NULL,
  hash         bytea NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz
);
-- A POST with an Idempotency-Key: the first request's answer, replayed to a retry with the same body, refused to one
-- with another body. status is NULL while the first request is being served (until locked_until, after which a
-- process that died serving it no longer blocks the key).
CREATE TABLE idempotency_keys (
  account_id   bigint NOT NULL REFERENCES accounts (id),
  key          text NOT NULL,
  request_hash bytea NOT NULL,
  status       integer,
  response     text,
  locked_until timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, key)
);
-- An agent is deleted softly: its finished campaigns and past calls keep pointing at it, and its name is free again.
ALTER TABLE agents ADD COLUMN deleted_at timestamptz;
ALTER TABLE agents DROP CONSTRAINT agents_account_id_name_key;
CREATE UNIQUE INDEX agents_live_name ON agents (account_id, name) WHERE deleted_at IS NULL;
-- Every process that routes inbound calls from memory hears of each change that moves a number: assigned,
-- reassigned, unassigned, released, bought, imported, or its agent's hand-off changed.
CREATE FUNCTION announce_number_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dialer_numbers', NEW.e164);
  RETURN NULL;
END $$;
CREATE TRIGGER numbers_announce AFTER INSERT OR UPDATE OF agent_id, status ON numbers
  FOR EACH ROW EXECUTE FUNCTION announce_number_change();
CREATE FUNCTION announce_agent_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dialer_numbers', n.e164) FROM numbers n WHERE n.agent_id = NEW.id AND n.status = 'active';
  RETURN NULL;
END $$;
CREATE TRIGGER agents_announce AFTER UPDATE OF handoff, deleted_at ON agents
  FOR EACH ROW EXECUTE FUNCTION announce_agent_change();
)SQL"},
    {9, "an agent's rename is announced to the routing tables too", R"SQL(
DROP TRIGGER agents_announce ON agents;
CREATE TRIGGER agents_announce AFTER UPDATE OF handoff, name, deleted_at ON agents
  FOR EACH ROW EXECUTE FUNCTION announce_agent_change();
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
)SQL"},
    {10, "event webhooks: endpoints, the transactional outbox (events and their deliveries), attempts", R"SQL(
-- An account's receivers. event_types empty: every type. During a rotation the previous secret signs too,
-- until previous_secret_until.
CREATE TABLE webhook_endpoints (
  id              bigserial PRIMARY KEY,
  account_id      bigint NOT NULL REFERENCES accounts (id),
  url             text NOT NULL,
  description     text NOT NULL DEFAULT '',
  event_types     text[] NOT NULL DEFAULT '{}',
  secret          text NOT NULL,
  previous_secret text,
  previous_secret_until timestamptz,
  enabled         boolean NOT NULL DEFAULT true,
  disabled_reason text,
  max_in_flight   integer NOT NULL DEFAULT 4 CHECK (max_in_flight BETWEEN 1 AND 64),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, id)
);
CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (account_id) WHERE enabled;

-- The outbox. A row is written by the trigger of the change that causes it, in that change's transaction: no
-- event without its change, no change without its event. Only events some enabled endpoint wants are kept.
-- sequence grows with each event of a contact (attempt_no * 4 + 1 answered, + 2 ended; (attempts + 1) * 4 + 3
-- finished, above the ends of a call still in flight when a cancel finished the contact): a receiver orders a
-- contact's events by it.
CREATE TABLE webhook_events (
  id          bigserial PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES accounts (id),
  type        text NOT NULL,
  contact_id  bigint,
  sequence    bigint NOT NULL DEFAULT 0,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  data        jsonb NOT NULL
);
CREATE INDEX webhook_events_occurred ON webhook_events (occurred_at);

-- One event to one endpoint. pending until delivered, or failed once the retry schedule is spent (a replay
-- makes it pending again). Claimed with a lease like contacts: an engine that dies mid-delivery loses it when
-- lease_until passes, and another delivers it.
CREATE TABLE webhook_deliveries (
  event_id        bigint NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
  endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
  leased_by       text,
  lease_until     timestamptz,
  last_status     integer,
  last_error      text,
  delivered_at    timestamptz,
  PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at, event_id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id) WHERE leased_by IS NOT NULL;
CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (endpoint_id, state, event_id);

-- Every try, for the endpoint's history (kept as long as its event).
CREATE TABLE webhook_attempts (
  id           bigserial PRIMARY KEY,
  event_id     bigint NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
  endpoint_id  bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  attempted_at timestamptz NOT NULL,
  status       integer,
  error        text,
  duration_ms  integer NOT NULL DEFAULT 0
);
CREATE INDEX webhook_attempts_of_endpoint ON webhook_attempts (endpoint_id, id);

-- Queues new events for the enabled endpoints of their account that want their type.
CREATE FUNCTION webhook_fan_out(ids bigint[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO webhook_deliveries (event_id, endpoint_id)
  SELECT v.id, e.id FROM webhook_events v
  JOIN webhook_endpoints e ON e.account_id = v.account_id AND e.enabled
   AND (e.event_types = '{}' OR v.type = ANY (e.event_types))
  WHERE v.id = ANY (ids)
$$;

CREATE FUNCTION webhook_campaign_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  t text;
  ids bigint[];
BEGIN
  t := CASE
    WHEN NEW.state = 'running' AND OLD.state = 'draft' THEN 'campaign.launched'
    WHEN NEW.state = 'running' AND OLD.state = 'paused' THEN 'campaign.resumed'
    WHEN NEW.state = 'paused' THEN 'campaign.paused'
    WHEN NEW.state = 'completed' THEN 'campaign.completed'
    WHEN NEW.state = 'cancelled' THEN 'campaign.cancelled'
  END;
  IF t IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = NEW.account_id AND e.enabled
                              AND (e.event_types = '{}' OR t = ANY (e.event_types))) THEN
    RETURN NULL;
  END IF;
  WITH ev AS (
    INSERT INTO webhook_events (account_id, type, data)
    VALUES (NEW.account_id, t, jsonb_build_object('campaign', jsonb_build_object(
      'id', NEW.id, 'name', NEW.name, 'agent_id', NEW.agent_id, 'state', NEW.state, 'previous_state', OLD.state)))
    RETURNING id, account_id, type)
  SELECT array_agg(id) INTO ids FROM ev;
  PERFORM webhook_fan_out(ids);
  RETURN NULL;
END $$;
CREATE TRIGGER campaigns_webhooks AFTER UPDATE OF state ON campaigns
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION webhook_campaign_events();

-- Statement triggers over the transition tables: one set-based insert per write-back statement, and nothing but
-- one index probe when no endpoint is enabled anywhere.
CREATE FUNCTION webhook_attempt_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN RETURN NULL; END IF;
  WITH ev AS (
  INSERT INTO webhook_events (account_id, type, contact_id, sequence, data)
  SELECT x.account_id, x.type, x.contact_id, x.sequence, x.data
  FROM (
    SELECT c.account_id, t.type, n.contact_id,
           n.attempt_no * 4 + t.step AS sequence,
           jsonb_build_object(
             'attempt', jsonb_build_object('id', n.id, 'attempt_no', n.attempt_no, 'carrier', n.carrier,
                                           'carrier_call_id', n.carrier_call_id),
             'campaign', jsonb_build_object('id', c.id, 'name', c.name),
             'contact', jsonb_build_object('id', k.id, 'e164', k.e164, 'variables', k.variables::jsonb),
             'from', n.caller_id, 'to', k.e164, 'outcome', n.outcome, 'detail', n.detail,
             'started_at', n.started_at, 'answered_at', n.answered_at, 'ended_at', n.ended_at,
             'duration_s', round(n.billable_ms / 1000.0, 3), 'cost', n.cost) AS data
    FROM new_rows n
    JOIN old_rows o ON o.id = n.id
    JOIN campaigns c ON c.id = n.campaign_id
    JOIN contacts k ON k.id = n.contact_id
    CROSS JOIN LATERAL (VALUES ('call.answered', 1), ('call.ended', 2)) t(type, step)
    WHERE ((t.step = 1 AND o.answered_at IS NULL AND n.answered_at IS NOT NULL)
        OR (t.step = 2 AND o.outcome IS NULL AND n.outcome IS NOT NULL))
      AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = c.account_id AND e.enabled
                  AND (e.event_types = '{}' OR t.type = ANY (e.event_types)))
    ORDER BY n.contact_id, t.step
  ) x
  RETURNING id, account_id, type)
  SELECT array_agg(id) INTO ids FROM ev;
  PERFORM webhook_fan_out(ids);
  RETURN NULL;
END $$;
CREATE TRIGGER call_attempts_webhooks AFTER UPDATE ON call_attempts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_attempt_events();

CREATE FUNCTION webhook_contact_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN RETURN NULL; END IF;
  WITH ev AS (
  INSERT INTO webhook_events (account_id, type, contact_id, sequence, data)
  SELECT x.account_id, 'contact.finished', x.contact_id, x.sequence, x.data
  FROM (
    SELECT c.account_id, n.id AS contact_id, (n.attempts + 1) * 4 + 3 AS sequence,
           jsonb_build_object(
             'contact', jsonb_build_object('id', n.id, 'e164', n.e164, 'row', n.row_number,
                                           'variables', n.variables::jsonb),
             'campaign', jsonb_build_object('id', c.id, 'name', c.name),
             'state', n.state, 'outcome', n.outcome, 'reason', n.pending_reason, 'attempts', n.attempts) AS data
    FROM new_rows n
    JOIN old_rows o ON o.id = n.id
    JOIN campaigns c ON c.id = n.campaign_id
    WHERE o.state IN ('pending', 'in_progress') AND n.state IN ('done', 'cancelled', 'do_not_call', 'invalid')
      AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = c.account_id AND e.enabled
                  AND (e.event_types = '{}' OR 'contact.finished' = ANY (e.event_types)))
    ORDER BY n.id
  ) x
  RETURNING id, account_id, type)
  SELECT array_agg(id) INTO ids FROM ev;
  PERFORM webhook_fan_out(ids);
  RETURN NULL;
END $$;
CREATE TRIGGER contacts_webhooks AFTER UPDATE ON contacts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_contact_events();
)SQL"},
    {11, "event webhooks: a compact log (one row per statement) read by each endpoint's cursor", R"SQL(
-- Migration 10 wrote an event row and a delivery row per event and endpoint inside the transaction of the change:
-- a write-back of 4 000 outcomes took six times as long. Now the change's transaction writes one log row per
-- statement, account and type (the ids of the rows it finished); each endpoint reads the log through a cursor, and
-- only deliveries that need a retry get a row of their own. Nothing here is released yet: what migration 10's
-- tables held is not carried over.
DROP TRIGGER IF EXISTS campaigns_webhooks ON campaigns;
DROP TRIGGER IF EXISTS call_attempts_webhooks ON call_attempts;
DROP TRIGGER IF EXISTS contacts_webhooks ON contacts;
DROP FUNCTION IF EXISTS webhook_campaign_events();
DROP FUNCTION IF EXISTS webhook_attempt_events();
DROP FUNCTION IF EXISTS webhook_contact_events();
DROP FUNCTION IF EXISTS webhook_fan_out(bigint[]);
DROP TABLE IF EXISTS webhook_attempts, webhook_deliveries, webhook_events;

-- An event type's number: the low three bits of its events' ids (engine/ports/webhooks.hpp, kWebhookEventTypes).
CREATE FUNCTION webhook_type_index(t text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_position(ARRAY['campaign.launched', 'campaign.paused', 'campaign.resumed', 'campaign.completed',
                              'campaign.cancelled', 'call.answered', 'call.ended', 'contact.finished'], t) - 1
$$;

CREATE FUNCTION webhook_type_name(event_id bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (ARRAY['campaign.launched', 'campaign.paused', 'campaign.resumed', 'campaign.completed',
                'campaign.cancelled', 'call.answered', 'call.ended', 'contact.finished'])[event_id % 8 + 1]
$$;

-- The log. xid orders it by transaction: a reader takes only rows of transactions older than every transaction
-- still running (pg_snapshot_xmin), so no row can appear later behind a cursor that has passed it. ids: the
-- attempts (call.*) or contacts (contact.finished) the statement finished, or the campaign (campaign.*, whose
-- payload, as it was, is in data). An event's id: source * 8 + its type's number, where the source is the
-- attempt or contact, or this row for a campaign event.
CREATE TABLE webhook_log (
  id          bigserial PRIMARY KEY,
  xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
  account_id  bigint NOT NULL,
  type        text NOT NULL,
  ids         bigint[] NOT NULL,
  n           integer GENERATED ALWAYS AS (cardinality(ids)) STORED,  -- read without the (toasted) array
  data        jsonb,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_log_order ON webhook_log (account_id, xid, id);
CREATE INDEX webhook_log_occurred ON webhook_log USING brin (occurred_at);

-- Every event, one row each (for the API's replay and for people): the log unrolled.
CREATE VIEW webhook_events AS
  SELECT CASE WHEN l.type LIKE 'campaign.%' THEN l.id ELSE u.source END * 8 + webhook_type_index(l.type) AS id,
         l.id AS log_id, l.account_id, l.type, u.source, l.occurred_at
  FROM webhook_log l CROSS JOIN LATERAL unnest(l.ids) AS u(source);

-- Where each endpoint has read the log to: the next event is at (cursor_xid, cursor_log), past its first
-- cursor_index ids. A new endpoint starts at the transactions not yet finished.
ALTER TABLE webhook_endpoints
  ADD COLUMN cursor_xid xid8 NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),
  ADD COLUMN cursor_log bigint NOT NULL DEFAULT 0,
  ADD COLUMN cursor_index integer NOT NULL DEFAULT 0,
  -- Claims take endpoints in turn, the least recently served first.
  ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT '-infinity',
  -- A receiver that is down or throttling is not tried again (by any engine) before paused_until; one that has
  -- failed every try since failing_since for 5 days is disabled.
  ADD COLUMN paused_until timestamptz NOT NULL DEFAULT '-infinity',
  ADD COLUMN failing_since timestamptz,
  ADD COLUMN delivered_count bigint NOT NULL DEFAULT 0;

-- Events taken from the log by one claim: leased like contacts while their first tries are made (an engine that
-- dies with one loses it when lease_until passes, and another sends it again), then kept as the record of those
-- delivered at their first try (delivered_at; the others have a delivery row of their own from then on).
CREATE TABLE webhook_segments (
  id           bigserial PRIMARY KEY,
  endpoint_id  bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  event_ids    bigint[] NOT NULL,
  log_ids      bigint[] NOT NULL,
  statuses     integer[],
  leased_by    text,
  lease_until  timestamptz,
  delivered_at timestamptz,
  CHECK ((delivered_at IS NULL) = (leased_by IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE INDEX webhook_segments_in_flight ON webhook_segments (endpoint_id, lease_until) WHERE delivered_at IS NULL;
CREATE INDEX webhook_segments_of_endpoint ON webhook_segments (endpoint_id, id);
CREATE INDEX webhook_segments_delivered ON webhook_segments USING brin (delivered_at);

-- One event to one endpoint, once its first try did not deliver it (or a replay asked for it): pending until
-- delivered, or failed once the retry schedule is spent (a replay makes it pending again).
CREATE TABLE webhook_deliveries (
  event_id        bigint NOT NULL,
  endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  log_id          bigint NOT NULL,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
  leased_by       text,
  lease_until     timestamptz,
  last_status     integer,
  last_error      text,
  delivered_at    timestamptz,
  PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at, event_id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id) WHERE leased_by IS NOT NULL;
CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (endpoint_id, state, event_id);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (log_id);

-- Every try that did not deliver, and every try of a retried delivery: the endpoint's failure history. A first
-- try that delivered is counted (webhook_endpoints.delivered_count), not kept.
CREATE TABLE webhook_attempts (
  id           bigserial PRIMARY KEY,
  event_id     bigint NOT NULL,
  endpoint_id  bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  log_id       bigint NOT NULL,
  attempted_at timestamptz NOT NULL,
  status       integer,
  error        text,
  duration_ms  integer NOT NULL DEFAULT 0
);
CREATE INDEX webhook_attempts_of_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_at ON webhook_attempts USING brin (attempted_at);

-- Appends the events of one type, for the given sources (attempts or contacts) of the given campaigns: one log
-- row per campaign whose account has an endpoint wanting the type. Called once per statement, never per row.
CREATE FUNCTION webhook_log_append(t text, campaign_ids bigint[], source_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
  WITH g AS (
    SELECT x.campaign_id, array_agg(x.source_id) AS ids
    FROM unnest(campaign_ids, source_ids) AS x(campaign_id, source_id)
    GROUP BY x.campaign_id)
  INSERT INTO webhook_log (account_id, type, ids)
  SELECT c.account_id, t, g.ids FROM g JOIN campaigns c ON c.id = g.campaign_id
  WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = c.account_id
                AND (e.event_types = '{}' OR t = ANY (e.event_types)))
  ORDER BY g.campaign_id
$$;

CREATE FUNCTION webhook_campaign_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  t text;
BEGIN
  t := CASE
    WHEN NEW.state = 'running' AND OLD.state = 'draft' THEN 'campaign.launched'
    WHEN NEW.state = 'running' AND OLD.state = 'paused' THEN 'campaign.resumed'
    WHEN NEW.state = 'paused' THEN 'campaign.paused'
    WHEN NEW.state = 'completed' THEN 'campaign.completed'
    WHEN NEW.state = 'cancelled' THEN 'campaign.cancelled'
  END;
  IF t IS NOT NULL AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = NEW.account_id
                               AND (e.event_types = '{}' OR t = ANY (e.event_types))) THEN
    INSERT INTO webhook_log (account_id, type, ids, data)
    VALUES (NEW.account_id, t, ARRAY[NEW.id], jsonb_build_object('campaign', jsonb_build_object(
      'id', NEW.id, 'name', NEW.name, 'agent_id', NEW.agent_id, 'state', NEW.state, 'previous_state', OLD.state)));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER campaigns_webhooks AFTER UPDATE OF state ON campaigns
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION webhook_campaign_events();

-- Statement triggers over the transition tables: one log row per statement, account and type, for every writer
-- (the API, the CLI, a reconciliation); nothing but one index probe when there is no endpoint at all. An
-- account's disabled endpoints count: a disabled endpoint is paused, and gets what happened meanwhile (within the
-- retention) when it is enabled again. The engine's write-back logs its own statements' events from what they
-- return (cheaper than comparing transition tables) and says so with dialer.events_logged, which these skip.
-- The payloads are built at delivery from the rows, which do not change once finished (an attempt with its
-- outcome, a contact in a final state).
CREATE FUNCTION webhook_attempt_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('dialer.events_logged', true) = 'on' OR NOT EXISTS (SELECT 1 FROM webhook_endpoints) THEN
    RETURN NULL;
  END IF;
  PERFORM webhook_log_append('call.answered', array_agg(n.campaign_id), array_agg(n.id))
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE o.answered_at IS NULL AND n.answered_at IS NOT NULL;
  PERFORM webhook_log_append('call.ended', array_agg(n.campaign_id), array_agg(n.id))
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE o.outcome IS NULL AND n.outcome IS NOT NULL;
  RETURN NULL;
END $$;
CREATE TRIGGER call_attempts_webhooks AFTER UPDATE ON call_attempts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_attempt_events();

CREATE FUNCTION webhook_contact_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('dialer.events_logged', true) = 'on' OR NOT EXISTS (SELECT 1 FROM webhook_endpoints) THEN
    RETURN NULL;
  END IF;
  PERFORM webhook_log_append('contact.finished', array_agg(n.campaign_id), array_agg(n.id))
  FROM new_rows n JOIN old_rows o ON o.id = n.id
  WHERE o.state IN ('pending', 'in_progress') AND n.state IN ('done', 'cancelled', 'do_not_call', 'invalid');
  RETURN NULL;
END $$;
CREATE TRIGGER contacts_webhooks AFTER UPDATE ON contacts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_contact_events();
)SQL"},
    {12, "carrier callbacks: an inbox between the server that receives a status callback and the engine that placed the call", R"SQL(
-- A carrier posts a call's status callbacks to whichever engine its load balancer picks. The receiving server
-- stores each verified callback here; the adapter instance that placed the call (named in the callback URL) takes
-- it. One row per (carrier, call, event): a repeated or late callback finds its row and is not stored again, and a
-- taken row stays (taken_at) until purged, so nothing is applied twice.
CREATE TABLE carrier_callbacks (
  id bigserial PRIMARY KEY,
  carrier text NOT NULL,
  instance text NOT NULL,
  attempt_id bigint NOT NULL,
  placement text NOT NULL DEFAULT '',
  call_id text NOT NULL,
  event text NOT NULL,
  params jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  taken_at timestamptz,
  UNIQUE (carrier, call_id, event)
);
CREATE INDEX carrier_callbacks_waiting ON carrier_callbacks (carrier, instance, id) WHERE taken_at IS NULL;
CREATE INDEX carrier_callbacks_attempt ON carrier_callbacks (carrier, attempt_id) WHERE taken_at IS NULL;
CREATE INDEX carrier_callbacks_taken ON carrier_callbacks (taken_at) WHERE taken_at IS NOT NULL;
CREATE INDEX carrier_callbacks_received ON carrier_callbacks (received_at);

-- A carrier account's calls-per-second limit (Twilio: 1 per account by default) is the account's, not each
-- engine's: each engine registers the accounts it uses here, every heartbeat, and paces its calls at the limit
-- divided by the live engines registered for it.
CREATE TABLE carrier_account_engines (
  identity text NOT NULL,
  engine_id text NOT NULL REFERENCES engines (id) ON DELETE CASCADE,
  since timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (identity, engine_id)
);
)SQL"},
    {13, "installation: one random id per database, for what must be unique across databases sharing a carrier account", R"SQL(
-- Ids that a carrier account keeps (Telnyx's command_id, an idempotency key it remembers) must not repeat across
-- the databases that use the account (staging and production, shards, a fresh embedded cluster): attempt ids do.
CREATE TABLE installation (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  id uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO installation DEFAULT VALUES;
)SQL"},
    {14, "a SIP trunk's channels (calls up at once) shared by the engines that use it", R"SQL(
-- A trunk's max_channels is the trunk's, not each engine's: every engine that uses the trunk (by its carrier
-- account identity) holds a count of its channels here, renewed every heartbeat. The counts of the live rows
-- never exceed the smallest limit a live engine declares. Engines changing one trunk's counts take turns on a
-- transaction-scoped advisory lock of its identity.
CREATE TABLE carrier_channel_shares (
  identity    text NOT NULL,
  engine_id   text NOT NULL REFERENCES engines (id) ON DELETE CASCADE,
  max         integer NOT NULL CHECK (max > 0),  -- the trunk's limit as this engine's settings give it
  held        integer NOT NULL CHECK (held >= 0),
  wants       boolean NOT NULL,  -- it has work on the trunk (false: it keeps only what its calls hold)
  lease_until timestamptz NOT NULL,
  PRIMARY KEY (identity, engine_id)
);
)SQL"},
};

}  // namespace

std::span<const migration> all_migrations() noexcept {
  return kMigrations;
}

result<int> migrate(pqxx::connection& connection) {
  return migrate(connection, all_migrations());
}

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
        return make_error(errc::internal, "migration {} ({}) failed and was rolled back: {}", m.version,
                          m.name, e.what());
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
