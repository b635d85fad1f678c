#include "adapters/postgres/campaign_store.hpp"

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <unordered_set>
#include <unistd.h>
#include <unordered_map>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

using std::chrono::milliseconds;

std::int64_t to_us(timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
timestamp from_us(std::int64_t us) { return timestamp{std::chrono::microseconds(us)}; }

// The statements here compute attempt ids in SQL as contact_id * 128 + attempt_no: the same rule as attempt_of.
static_assert(attempt_of(contact_id{3}, 5).value() == 3 * 128 + 5 && kMaxAttemptNo == 127);
double epoch_s(timestamp t) { return static_cast<double>(to_us(t)) / 1e6; }

}  // namespace


std::string make_engine_id() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  return fmt::format("{}:{}:{:08x}", host, ::getpid(), rd());
}

pg_campaign_store::pg_campaign_store(std::unique_ptr<pqxx::connection> connection, account_id account,
                                     std::string engine_id)
    : connection_(std::move(connection)), account_(account), engine_id_(std::move(engine_id)) {}

void count_contact_states(pqxx::transaction_base& tx, campaign_id id, campaign_progress& p) {
  // Through the campaign's id range (the primary key): contacts have no index on campaign_id.
  for (const auto& r : tx.exec_params(std::string("SELECT c.state, count(*) FROM ") + kCampaignContacts +
                                          " WHERE k.id = $1 GROUP BY c.state",
                                      id.value())) {
    const auto n = r[1].as<std::int64_t>();
    const auto s = r[0].as<std::string>();
    p.total += n;
    if (s == "pending") p.pending = n;
    else if (s == "done") p.done = n;
    else if (s == "cancelled") p.cancelled = n;
    else if (s == "do_not_call") p.do_not_call = n;
    else if (s == "invalid") p.invalid = n;
  }
  // Pending contacts in blocks an engine holds are in progress.
  const auto held = tx.exec_params1("SELECT coalesce(sum(pending), 0) FROM contact_blocks "
                                    "WHERE campaign_id = $1 AND claimed_by IS NOT NULL",
                                    id.value())[0]
                        .as<std::int64_t>();
  p.in_progress = std::min(held, p.pending);
  p.pending -= p.in_progress;
}

result<campaign_record> load_campaign_record(pqxx::connection& c, account_id account, campaign_id id) {
  try {
    pqxx::nontransaction tx(c);
    auto rows = tx.exec_params(
        "SELECT c.id, c.name, c.agent_id, a.name, a.handoff, c.state, c.carrier, c.settings::text, "
        "c.imported_at IS NOT NULL, c.import_accepted, c.import_rejected::text, "
        "(extract(epoch FROM c.created_at) * 1e6)::bigint, (extract(epoch FROM c.started_at) * 1e6)::bigint, "
        "(extract(epoch FROM c.finished_at) * 1e6)::bigint, "
        "coalesce(c.first_contact_id, 0), coalesce(c.last_contact_id, 0), c.block_size "
        "FROM campaigns c JOIN agents a ON a.id = c.agent_id WHERE c.account_id = $1 AND c.id = $2",
        account.value(), id.value());
    if (rows.empty()) return make_error(errc::not_found, "campaign {} does not exist", id.value());
    const auto& r = rows[0];
    campaign_record rec;
    rec.id = campaign_id{r[0].as<std::int64_t>()};
    rec.name = r[1].as<std::string>();
    rec.agent = agent_id{r[2].as<std::int64_t>()};
    rec.agent_name = r[3].as<std::string>();
    rec.agent_handoff = r[4].as<std::string>();
    rec.state = parse_campaign_state(r[5].as<std::string>()).value_or(campaign_state::draft);
    rec.carrier = r[6].as<std::string>();
    auto spec = campaign_spec_from_json(nlohmann::json::parse(r[7].as<std::string>()));
    if (!spec) return std::move(spec).error();
    rec.spec = std::move(*spec);
    rec.imported = r[8].as<bool>();
    rec.import_accepted = r[9].as<int>();
    for (const auto& item : nlohmann::json::parse(r[10].as<std::string>()))
      rec.import_rejected.emplace_back(item.at("row").get<int>(), item.at("reason").get<std::string>());
    rec.created_at = from_us(r[11].as<std::int64_t>());
    if (!r[12].is_null()) rec.started_at = from_us(r[12].as<std::int64_t>());
    if (!r[13].is_null()) rec.finished_at = from_us(r[13].as<std::int64_t>());
    rec.blocks.first = r[14].as<std::int64_t>();
    rec.blocks.last = r[15].as<std::int64_t>();
    rec.blocks.size = r[16].as<std::int32_t>();
    for (const auto& n : tx.exec_params("SELECT number_id FROM campaign_numbers WHERE campaign_id = $1 ORDER BY number_id",
                                        id.value()))
      rec.numbers.emplace_back(n[0].as<std::int64_t>());
    return rec;
  } catch (...) {
    return current_exception_error("loading campaign");
  }
}

result<campaign_record> pg_campaign_store::load_campaign(campaign_id id) {
  return load_campaign_record(*connection_, account_, id);
}

result<campaign_state> pg_campaign_store::state(campaign_id id) {
  try {
    pqxx::nontransaction tx(*connection_);
    auto rows = tx.exec_params("SELECT state FROM campaigns WHERE account_id = $1 AND id = $2", account_.value(),
                               id.value());
    if (rows.empty()) return make_error(errc::not_found, "campaign {} does not exist", id.value());
    return parse_campaign_state(rows[0][0].as<std::string>()).value_or(campaign_state::draft);
  } catch (...) {
    return current_exception_error("reading campaign state");
  }
}

result<campaign_state> pg_campaign_store::transition(campaign_id id, std::span<const campaign_state> from,
                                                     campaign_state to) {
  try {
    pqxx::work tx(*connection_);
    auto rows = tx.exec_params("SELECT state, name FROM campaigns WHERE account_id = $1 AND id = $2 FOR UPDATE",
                               account_.value(), id.value());
    if (rows.empty()) return make_error(errc::not_found, "campaign {} does not exist", id.value());
    const auto current = parse_campaign_state(rows[0][0].as<std::string>()).value_or(campaign_state::draft);
    if (current == to) return current;
    if (std::find(from.begin(), from.end(), current) == from.end())
      return make_error(errc::conflict, "campaign '{}' is {} and cannot become {}", rows[0][1].as<std::string>(),
                        to_string(current), to_string(to));
    tx.exec_params0(
        "UPDATE campaigns SET state = $2, updated_at = now(), "
        "started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END, "
        "finished_at = CASE WHEN $2 IN ('completed', 'cancelled') THEN now() ELSE finished_at END WHERE id = $1",
        id.value(), std::string(to_string(to)));
    tx.commit();
    return to;
  } catch (...) {
    return current_exception_error("changing campaign state");
  }
}

const contact_blocks& pg_campaign_store::layout(pqxx::transaction_base& tx, campaign_id id) {
  auto it = layouts_.find(id.value());
  if (it != layouts_.end() && !it->second.empty()) return it->second;
  auto r = tx.exec_params1(
      "SELECT coalesce(first_contact_id, 0), coalesce(last_contact_id, 0), block_size FROM campaigns WHERE id = $1",
      id.value());
  contact_blocks b;
  b.first = r[0].as<std::int64_t>();
  b.last = r[1].as<std::int64_t>();
  b.size = r[2].as<std::int32_t>();
  return layouts_[id.value()] = b;
}

result<claim_batch> pg_campaign_store::claim(campaign_id id, int max, milliseconds lease) {
  claim_batch out;
  if (max <= 0) return out;
  try {
    pqxx::work tx(*connection_);
    // Blocks in order of their earliest due contact, as many as fit in `max` by their pending counters (the
    // first always), locked with SKIP LOCKED so that engines never wait on each other. The claimability test is
    // repeated on the locked rows: a block another engine claimed since the candidates were read is skipped.
    auto blocks = tx.exec_params(
        // The candidates are computed once (an InitPlan): inlined into a join, the window ran again for every
        // block when the statistics said the table was nearly empty.
        "WITH cand AS MATERIALIZED ("
        "  SELECT first_id, pending, sum(pending) OVER (ORDER BY next_due, first_id) - pending AS before "
        "  FROM contact_blocks WHERE campaign_id = $1 AND next_due <= now() "
        "  AND (claimed_by IS NULL OR lease_until < now())), "
        "picked AS ("
        "  SELECT b.first_id, b.claimed_by IS NOT NULL AS recovered FROM contact_blocks b "
        "  WHERE b.campaign_id = $1 AND b.next_due <= now() AND (b.claimed_by IS NULL OR b.lease_until < now()) "
        "  AND b.first_id = ANY (ARRAY(SELECT first_id FROM cand WHERE before = 0 OR before + pending <= $2)) "
        "  FOR UPDATE SKIP LOCKED) "
        "UPDATE contact_blocks t SET claimed_by = $3, lease_until = now() + $4 * interval '1 millisecond' "
        "FROM picked WHERE t.campaign_id = $1 AND t.first_id = picked.first_id "
        "RETURNING t.first_id, t.last_id, picked.recovered",
        id.value(), max, engine_id_, static_cast<std::int64_t>(lease.count()));
    if (blocks.empty()) {
      tx.commit();
      return out;
    }
    array_literal firsts, lasts, recovered_firsts, recovered_lasts;
    bool any_recovered = false;
    for (const auto& r : blocks) {
      claimed_block b{r[0].as<std::int64_t>(), r[1].as<std::int64_t>(), r[2].as<bool>()};
      firsts.add(b.first);
      lasts.add(b.last);
      if (b.recovered) {
        any_recovered = true;
        recovered_firsts.add(b.first);
        recovered_lasts.add(b.last);
      }
      out.blocks.push_back(b);
    }
    if (any_recovered) {
      // A recovered block may hold attempts its previous engine recorded (and perhaps settled) without writing
      // the contact back: attempt numbers beyond the contact's counter. Those contacts are reconciled, not dialed.
      for (const auto& r : tx.exec_params(
               "SELECT a.id, a.contact_id, a.attempt_no, a.number_id, coalesce(a.carrier_call_id, ''), a.outcome, "
               "  (extract(epoch FROM a.started_at) * 1e6)::bigint, (extract(epoch FROM a.answered_at) * 1e6)::bigint, "
               "  (extract(epoch FROM a.ended_at) * 1e6)::bigint, a.billable_ms, coalesce(a.detail, '') "
               "FROM unnest($2::bigint[], $3::bigint[]) b(f, l) "
               "CROSS JOIN LATERAL (SELECT x.id, x.attempts FROM contacts x WHERE x.id BETWEEN b.f AND b.l "
               "  AND x.campaign_id = $1 AND x.state = 'pending' OFFSET 0) c "
               "JOIN call_attempts a ON a.id BETWEEN c.id * 128 + c.attempts + 1 AND c.id * 128 + 127 "
               "ORDER BY a.contact_id, a.attempt_no",
               id.value(), recovered_firsts.str(), recovered_lasts.str())) {
        open_attempt o;
        o.attempt = attempt_id{r[0].as<std::int64_t>()};
        o.contact = contact_id{r[1].as<std::int64_t>()};
        o.attempt_no = r[2].as<int>();
        o.number = number_id{r[3].as<std::int64_t>()};
        o.carrier_call_id = r[4].as<std::string>();
        if (!r[5].is_null()) {
          call_event e;
          e.attempt = o.attempt;
          e.carrier_call_id = o.carrier_call_id;
          e.outcome = parse_call_outcome(r[5].as<std::string>()).value_or(call_outcome::unknown);
          if (!r[6].is_null()) e.started_at = from_us(r[6].as<std::int64_t>());
          if (!r[7].is_null()) e.answered_at = from_us(r[7].as<std::int64_t>());
          if (!r[8].is_null()) e.ended_at = from_us(r[8].as<std::int64_t>());
          e.billable = milliseconds{r[9].as<std::int64_t>()};
          e.detail = r[10].as<std::string>();
          o.stored = std::move(e);
        }
        // Only the latest attempt of a contact decides it; an earlier one beyond the counter is settled too.
        out.open.push_back(std::move(o));
      }
    }
    // The due contacts, with a dial-time do-not-call check. Contacts with an attempt beyond their counter (only
    // possible in a recovered block) are left out: they are in `open`. Each block is one range scan of the
    // primary key (LATERAL with a LIMIT, so the planner cannot turn it into a walk of the whole index from the
    // campaign's first contact, which grows with every block done).
    auto rows = tx.exec_params(
        "SELECT c.id, c.row_number, c.e164, c.timezone, c.variables, c.attempts, c.sticky_number_id, "
        "  d.e164 IS NOT NULL "
        "FROM unnest($2::bigint[], $3::bigint[]) b(f, l) "
        "CROSS JOIN LATERAL (SELECT * FROM contacts x WHERE x.id BETWEEN b.f AND b.l AND x.campaign_id = $1 "
        "  AND x.state = 'pending' AND x.next_attempt_at <= now() ORDER BY x.id LIMIT $5) c "
        "LEFT JOIN do_not_call d ON d.account_id = $4 AND d.e164 = c.e164 "
        "ORDER BY c.id LIMIT $5",
        id.value(), firsts.str(), lasts.str(), account_.value(), max);
    tx.commit();
    std::unordered_set<std::int64_t> reconciling;
    for (const auto& o : out.open) reconciling.insert(o.contact.value());
    out.contacts.reserve(rows.size());
    for (const auto& r : rows) {
      claimed_contact c;
      c.id = contact_id{r[0].as<std::int64_t>()};
      if (reconciling.contains(c.id.value())) continue;
      c.row = r[1].as<int>();
      c.e164 = r[2].as<std::string>();
      c.timezone = r[3].as<std::string>();
      c.variables = r[4].as<std::string>();
      c.attempts = r[5].as<int>();
      if (!r[6].is_null()) c.sticky = number_id{r[6].as<std::int64_t>()};
      c.do_not_call = r[7].as<bool>();
      out.contacts.push_back(std::move(c));
    }
    return out;
  } catch (...) {
    return current_exception_error("claiming contacts");
  }
}

result<void> pg_campaign_store::heartbeat(campaign_id id, milliseconds lease, std::span<const std::int64_t> blocks) {
  try {
    pqxx::work tx(*connection_);
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    tx.exec_params0(
        "INSERT INTO engines (id, host, pid, expires_at) VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond') "
        "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at",
        engine_id_, std::string(host), static_cast<int>(::getpid()), static_cast<std::int64_t>(lease.count()));
    // Only the leases past their half-life: a block is rewritten at most every lease/2, not every beat. A lease
    // that lapsed stays ours until another engine claims the block; renewing it here takes it back. Rows are
    // locked in first_id order, as every multi-block statement here does, so that two of them never deadlock.
    if (!blocks.empty()) {
      array_literal held;
      for (auto b : blocks) held.add(b);
      tx.exec_params0(
          "UPDATE contact_blocks b SET lease_until = now() + $3 * interval '1 millisecond' FROM ("
          "  SELECT first_id FROM contact_blocks WHERE campaign_id = $1 AND first_id = ANY($4::bigint[]) "
          "  AND claimed_by = $2 AND lease_until < now() + $3 * interval '0.5 millisecond' "
          "  ORDER BY first_id FOR NO KEY UPDATE) due "
          "WHERE b.campaign_id = $1 AND b.first_id = due.first_id",
          id.value(), engine_id_, static_cast<std::int64_t>(lease.count()), held.str());
    }
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("renewing leases");
  }
}

result<void> pg_campaign_store::record_attempts(campaign_id id, std::span<attempt_to_record> attempts,
                                                const std::string& carrier) {
  if (attempts.empty()) return ok();
  std::unordered_set<std::int64_t> ours;  // attempts whose block this engine holds
  std::unordered_set<std::int64_t> dnc;   // attempts not recorded: the callee is on the do-not-call list
  const auto insert = [&](bool tolerate_duplicates) -> std::vector<std::int64_t> {
    pqxx::work tx(*connection_);
    const auto& blocks = layout(tx, id);
    // Only for blocks this engine still holds: if our lease lapsed and another engine took a block over, its
    // contacts are not ours to dial. The key-share lock makes claims skip these blocks until we commit (and does
    // not wait for our own heartbeat or writer).
    array_literal touched;
    std::int64_t last_block = -1;
    for (const auto& a : attempts) {
      const auto b = blocks.block_of(a.contact);
      if (b != last_block) touched.add(b);  // duplicates are harmless in ANY()
      last_block = b;
    }
    // Only while the campaign runs: once a pause or a cancel is committed, nothing more is recorded, so nothing
    // more is placed, even by an engine that has not seen the change yet (or was cut off while it happened).
    // The key-share lock makes a concurrent cancel wait for this commit, and this wait for the cancel's.
    const auto state = tx.exec_params("SELECT state FROM campaigns WHERE id = $1 FOR KEY SHARE", id.value());
    if (state.empty() || state[0][0].as<std::string>() != "running") {
      tx.commit();
      return {};
    }
    std::unordered_set<std::int64_t> mine;
    for (const auto& r : tx.exec_params("SELECT first_id FROM contact_blocks WHERE campaign_id = $1 "
                                        "AND first_id = ANY($2::bigint[]) AND claimed_by = $3 "
                                        "ORDER BY first_id FOR KEY SHARE",
                                        id.value(), touched.str(), engine_id_))
      mine.insert(r[0].as<std::int64_t>());
    // The caller IDs on which this engine still holds a live slot lease: a decision taken on a slot whose lease
    // lapsed since (a stall longer than the lease) is not recorded, so it is never placed. And the callees on the
    // do-not-call list now: a number listed while its contact waited in the hopper is not dialed.
    array_literal used_numbers, callees;
    for (const auto& a : attempts) {
      used_numbers.add(a.number.value());
      callees.add(std::string_view(a.callee));
    }
    std::unordered_set<std::int64_t> leased;
    for (const auto& r : tx.exec_params("SELECT DISTINCT number_id FROM number_slots WHERE number_id = ANY($1::bigint[]) "
                                        "AND engine_id = $2 AND lease_until > now()",
                                        used_numbers.str(), engine_id_))
      leased.insert(r[0].as<std::int64_t>());
    std::unordered_set<std::string> listed;
    for (const auto& r : tx.exec_params("SELECT e164 FROM do_not_call WHERE account_id = $1 AND e164 = ANY($2::text[])",
                                        account_.value(), callees.str()))
      listed.insert(r[0].as<std::string>());
    dnc.clear();
    array_literal contacts, numbers_arr, attempt_nos, callers;
    std::vector<std::int64_t> recorded;
    ours.clear();
    for (const auto& a : attempts) {
      if (!mine.contains(blocks.block_of(a.contact))) continue;
      if (listed.contains(a.callee)) {
        dnc.insert(attempt_of(a.contact, a.attempt_no).value());
        continue;
      }
      if (!leased.contains(a.number.value())) continue;
      ours.insert(attempt_of(a.contact, a.attempt_no).value());
      contacts.add(a.contact.value());
      numbers_arr.add(a.number.value());
      attempt_nos.add(static_cast<std::int64_t>(a.attempt_no));
      callers.add(std::string_view(a.caller_id));
      recorded.push_back(attempt_of(a.contact, a.attempt_no).value());
    }
    if (recorded.empty()) return recorded;
    // The id is the attempt's natural key: a second recording of the same attempt is a unique violation.
    const std::string sql =
        "INSERT INTO call_attempts (id, campaign_id, contact_id, attempt_no, number_id, caller_id, carrier, engine_id) "
        "SELECT u.c * 128 + u.a, $1, u.c, u.a, u.n, u.e, $2, $3 "
        "FROM unnest($4::bigint[], $5::int[], $6::bigint[], $7::text[]) AS u(c, a, n, e)";
    const std::vector<std::int64_t> candidates = recorded;  // ours to record: block held, slot leased, not listed
    if (!tolerate_duplicates) {
      tx.exec_params0(sql, id.value(), carrier, engine_id_, contacts.str(), attempt_nos.str(), numbers_arr.str(),
                      callers.str());
    } else {
      recorded.clear();
      for (const auto& r : tx.exec_params(sql + " ON CONFLICT (id) DO NOTHING RETURNING id", id.value(), carrier,
                                          engine_id_, contacts.str(), attempt_nos.str(), numbers_arr.str(),
                                          callers.str()))
        recorded.push_back(r[0].as<std::int64_t>());
      // A retry after a lost commit acknowledgement: rows this engine recorded that have neither outcome nor
      // carrier call id were never placed (the engine places only after the commit returns): recorded now.
      array_literal wanted;
      for (auto c : candidates) wanted.add(c);
      for (const auto& r : tx.exec_params("SELECT id FROM call_attempts WHERE id = ANY($1::bigint[]) AND engine_id = $2 "
                                          "AND outcome IS NULL AND carrier_call_id IS NULL",
                                          wanted.str(), engine_id_))
        recorded.push_back(r[0].as<std::int64_t>());
    }
    tx.commit();
    return recorded;
  };
  try {
    std::vector<std::int64_t> recorded;
    try {
      recorded = insert(false);
    } catch (const pqxx::unique_violation&) {
      // Cannot happen while block leases hold (an attempt number is taken only by the block's holder, from the
      // contact's counter); should it, the batch is recorded without the duplicates, which are not dialed.
      recorded = insert(true);
    }
    std::unordered_set<std::int64_t> ok_ids(recorded.begin(), recorded.end());
    for (auto& a : attempts) {
      const auto key = attempt_of(a.contact, a.attempt_no);
      a.id = ok_ids.contains(key.value()) ? key : attempt_id{};  // invalid: not to be dialed
      a.recorded_before = !a.id && ours.contains(key.value());
      a.do_not_call = dnc.contains(key.value());
    }
    return ok();
  } catch (...) {
    return current_exception_error("recording call attempts");
  }
}

result<void> pg_campaign_store::write_back(campaign_id id, const write_batch& batch) {
  const auto& [outcomes, returns, finals, accepted, release] = batch;
  if (outcomes.empty() && returns.empty() && finals.empty() && accepted.empty() && release.empty()) return ok();
  try {
    pqxx::work tx(*connection_);
    // The rows written back were claimed and recorded seconds ago: they are in shared buffers. At the default
    // random_page_cost (4, for disks) the planner prefers hashing the whole table (a sequential scan of every
    // contact or attempt, growing with the campaign) over a few thousand cached primary-key lookups.
    tx.exec0("SET LOCAL random_page_cost = 1.1");
    const auto& blocks = layout(tx, id);
    // The blocks this batch touches that are still ours, key-share locked until commit so that no engine can
    // claim one while its contacts are written (claims skip locked blocks). Contacts of a block we lost are its new
    // holder's: it finds their attempts beyond the contacts' counters and reconciles them.
    std::set<std::int64_t> touched(release.begin(), release.end());
    for (const auto& o : outcomes) touched.insert(blocks.block_of(o.contact));
    for (const auto& r : returns) touched.insert(blocks.block_of(r.contact));
    for (const auto& f : finals) touched.insert(blocks.block_of(f.contact));
    array_literal touched_arr;
    for (auto b : touched) touched_arr.add(b);
    std::unordered_set<std::int64_t> mine;
    for (const auto& r : tx.exec_params("SELECT first_id FROM contact_blocks WHERE campaign_id = $1 "
                                        "AND first_id = ANY($2::bigint[]) AND claimed_by = $3 "
                                        "ORDER BY first_id FOR KEY SHARE",
                                        id.value(), touched_arr.str(), engine_id_))
      mine.insert(r[0].as<std::int64_t>());
    const auto ours = [&](contact_id c) { return mine.contains(blocks.block_of(c)); };

    if (!outcomes.empty()) {
      array_literal ids, call_ids, started, answered, ended, outcome, billable, cost, detail;
      array_literal contact_ids, states, attempts, contact_outcome, next_at, reasons, sticky;
      bool any_contact = false;
      for (const auto& o : outcomes) {
        ids.add(o.attempt.value());
        call_ids.add(std::string_view(o.event.carrier_call_id));
        started.add(epoch_s(o.event.started_at));
        if (o.event.answered_at) answered.add(epoch_s(*o.event.answered_at)); else answered.add_null();
        ended.add(epoch_s(o.event.ended_at));
        outcome.add(to_string(o.event.outcome));
        billable.add(static_cast<std::int64_t>(o.event.billable.count()));
        cost.add(static_cast<std::int64_t>(o.cost));
        detail.add(std::string_view(o.event.detail));
        if (!ours(o.contact)) continue;
        any_contact = true;
        contact_ids.add(o.contact.value());
        states.add(rules::to_string(o.next_state));
        attempts.add(static_cast<std::int64_t>(o.attempt_no));
        contact_outcome.add(to_string(o.event.outcome));
        if (o.next_attempt_at) next_at.add(epoch_s(*o.next_attempt_at)); else next_at.add_null();
        reasons.add(std::string_view(o.pending_reason));
        sticky.add(o.number.value());
      }
      // An outcome is written once: a reconciliation never overwrites one that arrived first.
      tx.exec_params0(
          "UPDATE call_attempts a SET carrier_call_id = nullif(u.cid, ''), started_at = to_timestamp(u.st), "
          "answered_at = to_timestamp(u.an), ended_at = to_timestamp(u.en), outcome = u.o, billable_ms = u.b, "
          "cost = u.cost / 1000000.0, detail = nullif(u.d, '') "
          "FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::text[], $7::int[], "
          "$8::bigint[], $9::text[]) AS u(id, cid, st, an, en, o, b, cost, d) WHERE a.id = u.id AND a.outcome IS NULL",
          ids.str(), call_ids.str(), started.str(), answered.str(), ended.str(), outcome.str(), billable.str(),
          cost.str(), detail.str());
      if (any_contact)
        tx.exec_params0(
            "UPDATE contacts c SET state = u.s, attempts = u.att, outcome = u.o, "
            "next_attempt_at = coalesce(to_timestamp(u.na), c.next_attempt_at), pending_reason = u.r, "
            "sticky_number_id = coalesce(c.sticky_number_id, u.num), updated_at = now() "
            "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::float8[], $6::text[], $7::bigint[]) "
            "AS u(id, s, att, o, na, r, num) WHERE c.id = u.id AND c.state = 'pending' AND c.attempts = u.att - 1",
            contact_ids.str(), states.str(), attempts.str(), contact_outcome.str(), next_at.str(), reasons.str(),
            sticky.str());
    }
    if (!accepted.empty()) {
      // Calls still running: their carrier ids, so that a crashed run's successor can ask the carrier about them.
      array_literal ids, call_ids;
      for (const auto& a : accepted) {
        ids.add(a.attempt.value());
        call_ids.add(std::string_view(a.carrier_call_id));
      }
      tx.exec_params0(
          "UPDATE call_attempts a SET carrier_call_id = u.cid FROM unnest($1::bigint[], $2::text[]) AS u(id, cid) "
          "WHERE a.id = u.id AND a.outcome IS NULL",
          ids.str(), call_ids.str());
    }
    if (!returns.empty()) {
      array_literal ids, counters, next_at, reasons, refused;
      bool any = false, any_refused = false;
      for (const auto& r : returns) {
        if (!ours(r.contact)) continue;
        any = true;
        ids.add(r.contact.value());
        counters.add(static_cast<std::int64_t>(r.attempts));
        next_at.add(epoch_s(r.next_attempt_at));
        reasons.add(std::string_view(r.reason));
        if (r.refused_attempt) {
          refused.add(r.refused_attempt.value());
          any_refused = true;
        }
      }
      // A refused origination never happened: its attempt row goes.
      if (any_refused) tx.exec_params0("DELETE FROM call_attempts WHERE id = ANY($1::bigint[])", refused.str());
      if (any)
        tx.exec_params0(
            "UPDATE contacts c SET next_attempt_at = to_timestamp(u.na), pending_reason = u.r, updated_at = now() "
            "FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::int[]) AS u(id, na, r, att) "
            "WHERE c.id = u.id AND c.state = 'pending' AND c.attempts = u.att",
            ids.str(), next_at.str(), reasons.str(), counters.str());
    }
    if (!finals.empty()) {
      array_literal ids, counters, states, reasons;
      bool any = false;
      for (const auto& f : finals) {
        if (!ours(f.contact)) continue;
        any = true;
        ids.add(f.contact.value());
        counters.add(static_cast<std::int64_t>(f.attempts));
        states.add(rules::to_string(f.state));
        reasons.add(std::string_view(f.reason));
      }
      if (any)
        tx.exec_params0(
            "UPDATE contacts c SET state = u.s, pending_reason = u.r, updated_at = now() "
            "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[]) AS u(id, s, r, att) "
            "WHERE c.id = u.id AND c.state = 'pending' AND c.attempts = u.att",
            ids.str(), states.str(), reasons.str(), counters.str());
    }
    if (!release.empty()) {
      array_literal released;
      bool any = false;
      for (auto b : release) {
        if (!mine.contains(b)) continue;
        released.add(b);
        any = true;
      }
      if (any) {
        tx.exec_params("SELECT 1 FROM contact_blocks WHERE campaign_id = $1 AND first_id = ANY($2::bigint[]) "
                        "ORDER BY first_id FOR NO KEY UPDATE",
                        id.value(), released.str());  // in first_id order, like the heartbeat: no deadlock
        recount_blocks(tx, id, released.str(), true);
      }
    }
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("writing call outcomes");
  }
}

void recount_blocks(pqxx::transaction_base& tx, campaign_id id, const std::string& firsts, bool release) {
  // One range scan of the primary key per block. The counters are what progress() sums.
  tx.exec_params0(
      std::string("UPDATE contact_blocks b SET pending = s.pending, done = s.done, cancelled = s.cancelled, "
                  "do_not_call = s.dnc, invalid = s.invalid, next_due = coalesce(s.next_due, 'infinity') ") +
          (release ? ", claimed_by = NULL, lease_until = NULL " : "") +
          "FROM (SELECT k.first_id, n.* FROM contact_blocks k CROSS JOIN LATERAL (SELECT "
          "  count(*) FILTER (WHERE c.state = 'pending') AS pending, "
          "  count(*) FILTER (WHERE c.state = 'done') AS done, "
          "  count(*) FILTER (WHERE c.state = 'cancelled') AS cancelled, "
          "  count(*) FILTER (WHERE c.state = 'do_not_call') AS dnc, "
          "  count(*) FILTER (WHERE c.state = 'invalid') AS invalid, "
          "  min(c.next_attempt_at) FILTER (WHERE c.state = 'pending') AS next_due "
          "  FROM contacts c WHERE c.id BETWEEN k.first_id AND k.last_id AND c.campaign_id = k.campaign_id) n "
          "  WHERE k.campaign_id = $1 AND k.first_id = ANY($2::bigint[])) s "
          "WHERE b.campaign_id = $1 AND b.first_id = s.first_id",
      id.value(), firsts);
}

std::int64_t cancel_waiting_contacts(pqxx::transaction_base& tx, campaign_id id) {
  // Blocks no engine holds, and blocks whose holder's lease lapsed (a dead engine's), locked against claims. FOR
  // UPDATE also skips blocks an engine is writing or dialing from right now (they hold key-share locks), so this
  // never waits on, or deadlocks with, an engine's contact writes. Cancel is final: in a lapsed block, a contact
  // with an attempt beyond its counter (its engine died, or was cut off, before writing it back) is cancelled
  // too, with that attempt settled as it stands: its stored outcome, or `unknown` when none was stored (the call
  // may have happened; it is never redialed). Nobody else would ever settle it: no engine runs a cancelled
  // campaign.
  std::vector<std::int64_t> released, lapsed;
  array_literal firsts;
  for (const auto& r : tx.exec_params("SELECT first_id, claimed_by IS NOT NULL FROM contact_blocks "
                                      "WHERE campaign_id = $1 AND (claimed_by IS NULL OR lease_until < now()) "
                                      "AND pending > 0 ORDER BY first_id FOR UPDATE SKIP LOCKED",
                                      id.value())) {
    firsts.add(r[0].as<std::int64_t>());
    (r[1].as<bool>() ? lapsed : released).push_back(r[0].as<std::int64_t>());
  }
  if (released.empty() && lapsed.empty()) return 0;
  if (!lapsed.empty()) {
    array_literal lapsed_arr;
    for (auto b : lapsed) lapsed_arr.add(b);
    tx.exec_params0(
        "WITH open AS ("
        "  SELECT y.id AS contact, a.id AS attempt, a.attempt_no FROM contact_blocks b "
        "  CROSS JOIN LATERAL (SELECT x.id, x.attempts FROM contacts x WHERE x.id BETWEEN b.first_id AND b.last_id "
        "    AND x.campaign_id = b.campaign_id AND x.state = 'pending' OFFSET 0) y "
        "  JOIN call_attempts a ON a.id BETWEEN y.id * 128 + y.attempts + 1 AND y.id * 128 + 127 "
        "  WHERE b.campaign_id = $1 AND b.first_id = ANY($2::bigint[])), "
        "settled AS ("
        "  UPDATE call_attempts a SET outcome = 'unknown', started_at = coalesce(a.started_at, a.created_at), "
        "  ended_at = now(), detail = 'campaign cancelled while its engine was away; the carrier was not asked' "
        "  FROM open WHERE a.id = open.attempt AND a.outcome IS NULL) "
        "UPDATE contacts c SET attempts = m.top, outcome = coalesce(c.outcome, 'unknown') "
        "FROM (SELECT contact, max(attempt_no) AS top FROM open GROUP BY 1) m WHERE c.id = m.contact",
        id.value(), lapsed_arr.str());
  }
  auto cancelled = tx.exec_params(
      "UPDATE contacts c SET state = 'cancelled', pending_reason = 'cancelled', updated_at = now() "
      "FROM (SELECT x.id FROM contact_blocks b CROSS JOIN LATERAL (SELECT y.id FROM contacts y "
      "  WHERE y.id BETWEEN b.first_id AND b.last_id AND y.campaign_id = b.campaign_id AND y.state = 'pending' "
      "  OFFSET 0) x "
      "  WHERE b.campaign_id = $1 AND b.first_id = ANY($2::bigint[])) s "
      "WHERE c.id = s.id",
      id.value(), firsts.str());
  recount_blocks(tx, id, firsts.str(), false);
  // A lapsed block with nothing left to reconcile is nobody's any more.
  tx.exec_params0("UPDATE contact_blocks SET claimed_by = NULL, lease_until = NULL WHERE campaign_id = $1 "
                  "AND first_id = ANY($2::bigint[]) AND claimed_by IS NOT NULL AND pending = 0",
                  id.value(), firsts.str());
  return static_cast<std::int64_t>(cancelled.affected_rows());
}

result<campaign_progress> pg_campaign_store::progress(campaign_id id) {
  try {
    pqxx::nontransaction tx(*connection_);
    campaign_progress p;
    // From the blocks' counters: a few hundred rows for a million contacts, not a scan of the contacts.
    auto r = tx.exec_params1(
        "SELECT coalesce(sum(pending) FILTER (WHERE claimed_by IS NULL), 0), "
        "  coalesce(sum(pending) FILTER (WHERE claimed_by IS NOT NULL), 0), coalesce(sum(done), 0), "
        "  coalesce(sum(cancelled), 0), coalesce(sum(do_not_call), 0), coalesce(sum(invalid), 0), "
        // Imported contacts are due at '-infinity', which has no epoch: clamp to 1970 (due now).
        "  (extract(epoch FROM greatest(min(next_due) FILTER (WHERE claimed_by IS NULL AND pending > 0), "
        "   'epoch'::timestamptz)) * 1e6)::bigint "
        "FROM contact_blocks WHERE campaign_id = $1",
        id.value());
    p.pending = r[0].as<std::int64_t>();
    p.in_progress = r[1].as<std::int64_t>();
    p.done = r[2].as<std::int64_t>();
    p.cancelled = r[3].as<std::int64_t>();
    p.do_not_call = r[4].as<std::int64_t>();
    p.invalid = r[5].as<std::int64_t>();
    p.total = p.pending + p.in_progress + p.terminal();
    if (!r[6].is_null()) p.next_due = from_us(r[6].as<std::int64_t>());
    return p;
  } catch (...) {
    return current_exception_error("reading campaign progress");
  }
}

namespace {
// This engine's registration row: live for `ms` from now.
void register_engine(pqxx::work& tx, const std::string& engine_id, std::int64_t ms) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  tx.exec_params0(
      "INSERT INTO engines (id, host, pid, expires_at) VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond') "
      "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at",
      engine_id, std::string(host), static_cast<int>(::getpid()), ms);
}
}  // namespace

result<std::vector<slot_lease>> pg_campaign_store::lease_slots(agent_id agent, std::span<const number_id> numbers,
                                                               std::span<const int> in_use, milliseconds lease,
                                                               milliseconds quiet) {
  try {
    pqxx::work tx(*connection_);
    const auto ms = static_cast<std::int64_t>(lease.count());
    register_engine(tx, engine_id_, ms);
    // Set-based for all numbers at once: six statements per renewal instead of six per number (600 every second
    // with 100 numbers: 230 ms of each second on the control connection). Only shares that must move touch
    // numbers one by one.
    array_literal ids;
    for (const auto& n : numbers) ids.add(n.value());
    // Registered only on the numbers it may use (active, assigned to the agent); an engine whose number was
    // released or reassigned stops counting in that number's share.
    tx.exec_params0("INSERT INTO engine_numbers (engine_id, number_id) SELECT $1, u.id FROM unnest($2::bigint[]) u(id) "
                    "JOIN numbers n ON n.id = u.id AND n.status = 'active' AND n.agent_id = $3 ON CONFLICT DO NOTHING",
                    engine_id_, ids.str(), agent.value());
    tx.exec_params0("DELETE FROM engine_numbers en USING unnest($2::bigint[]) u(id) "
                    "WHERE en.engine_id = $1 AND en.number_id = u.id AND NOT EXISTS ("
                    " SELECT 1 FROM numbers n WHERE n.id = u.id AND n.status = 'active' AND n.agent_id = $3)",
                    engine_id_, ids.str(), agent.value());
    // Each number's capacity is shared among the live engines that use it (this one included).
    std::unordered_map<std::int64_t, int> max_of, users_of;
    for (const auto& r : tx.exec_params(
             "SELECT u.id, coalesce(n.max_concurrent_calls, 0), "
             " (SELECT count(*) FROM engine_numbers en JOIN engines e ON e.id = en.engine_id "
             "  WHERE en.number_id = u.id AND e.expires_at > now()) "
             "FROM unnest($1::bigint[]) u(id) "
             "LEFT JOIN numbers n ON n.id = u.id AND n.status = 'active' AND n.agent_id = $2",
             ids.str(), agent.value())) {
      max_of[r[0].as<std::int64_t>()] = r[1].as<int>();
      users_of[r[0].as<std::int64_t>()] = r[2].as<int>();
    }
    array_literal maxes;
    for (const auto& n : numbers) maxes.add(static_cast<std::int64_t>(max_of[n.value()]));
    tx.exec_params0(
        "INSERT INTO number_slots (number_id, slot) "
        "SELECT u.n, g FROM unnest($1::bigint[], $2::int[]) u(n, m), generate_series(0, u.m - 1) g "
        "ON CONFLICT DO NOTHING",
        ids.str(), maxes.str());
    // Slots above a lowered limit go once nobody holds them.
    tx.exec_params0(
        "DELETE FROM number_slots s USING unnest($1::bigint[], $2::int[]) u(n, m) "
        "WHERE s.number_id = u.n AND s.slot >= u.m AND (s.engine_id IS NULL OR s.lease_until < now())",
        ids.str(), maxes.str());
    // Renew what we hold once a quarter of its lease has passed, not every second: the table is not rewritten
    // at each beat. After a successful call every held slot is valid for at least 3/4 of a lease; the runner
    // stops dispatching on its slots lease/2 (plus one beat) after its last successful renewal, still inside that.
    tx.exec_params0(
        "UPDATE number_slots SET lease_until = now() + $3 * interval '1 millisecond' "
        "WHERE number_id = ANY($1::bigint[]) AND engine_id = $2 AND lease_until < now() + $3 * interval '0.75 millisecond'",
        ids.str(), engine_id_, ms);
    // Milliseconds until a slot freed at freed_at stops cooling, given `quiet` as parameter `param` (<= 0 or NULL:
    // it does not cool).
    const auto cooled_in_ms = [](int param) {
      return fmt::format("coalesce(ceil(extract(epoch FROM (freed_at + ${} * interval '1 millisecond' - now())) * 1000), 0)::bigint",
                         param);
    };
    const auto quiet_ms = static_cast<std::int64_t>(quiet.count());
    struct held_slots {
      int held = 0;
      int cooling = 0;
      std::int64_t cooled_in = 0;  // ms until the first cooling slot is ready
      void cools(std::int64_t ms) {
        if (ms <= 0) return;
        ++cooling;
        cooled_in = cooled_in == 0 ? ms : std::min(cooled_in, ms);
      }
    };
    std::unordered_map<std::int64_t, held_slots> held_of;
    for (const auto& r : tx.exec_params("SELECT number_id, " + cooled_in_ms(3) + " FROM number_slots "
                                        "WHERE number_id = ANY($1::bigint[]) AND engine_id = $2",
                                        ids.str(), engine_id_, quiet_ms)) {
      auto& h = held_of[r[0].as<std::int64_t>()];
      ++h.held;
      h.cools(r[1].as<std::int64_t>());
    }
    std::vector<slot_lease> out;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      const auto nid = numbers[i].value();
      const int busy = i < in_use.size() ? in_use[i] : 0;
      const int max = max_of[nid];
      const int live = std::max(users_of[nid], 1);
      const int target = max == 0 ? 0 : (max + live - 1) / live;
      auto& h = held_of[nid];
      const int keep = std::max(target, busy);
      if (h.held > keep) {
        // The cooling ones go first: they carry no call.
        auto gone = tx.exec_params(
            "UPDATE number_slots SET engine_id = NULL, lease_until = NULL, freed_at = now() WHERE (number_id, slot) IN ("
            " SELECT number_id, slot FROM number_slots WHERE number_id = $1 AND engine_id = $2 "
            " ORDER BY freed_at > now() - $4 * interval '1 millisecond' DESC NULLS LAST, slot DESC LIMIT $3) "
            "RETURNING slot",
            nid, engine_id_, h.held - keep, quiet_ms);
        h.held -= static_cast<int>(gone.size());
        h.cooling = std::max(0, h.cooling - static_cast<int>(gone.size()));
        if (h.cooling == 0) h.cooled_in = 0;
      } else if (h.held < target) {
        // A lapsed lease was let go when it ran out (its holder stopped dialing on it before that).
        auto got = tx.exec_params(
            "UPDATE number_slots SET engine_id = $2, lease_until = now() + $4 * interval '1 millisecond', "
            " freed_at = CASE WHEN lease_until IS NULL THEN freed_at ELSE least(lease_until, now()) END "
            "WHERE (number_id, slot) IN ("
            " SELECT number_id, slot FROM number_slots WHERE number_id = $1 AND slot < $5 "
            " AND (engine_id IS NULL OR lease_until < now()) "
            " ORDER BY coalesce(lease_until, freed_at, '-infinity'), slot LIMIT $3 FOR UPDATE SKIP LOCKED) "
            "RETURNING " + cooled_in_ms(6),
            nid, engine_id_, target - h.held, ms, max, quiet_ms);
        h.held += static_cast<int>(got.size());
        for (const auto& r : got) h.cools(r[0].as<std::int64_t>());
      }
      out.push_back(slot_lease{numbers[i], h.held, target, max, h.cooling, milliseconds{h.cooled_in}});
    }
    tx.commit();
    return out;
  } catch (...) {
    return current_exception_error("leasing number slots");
  }
}

result<slot_lease> pg_campaign_store::lease_campaign_slots(campaign_id id, int given_max, int in_use,
                                                          milliseconds lease) {
  try {
    pqxx::work tx(*connection_);
    const auto ms = static_cast<std::int64_t>(lease.count());
    // The stored campaign's cap, not the caller's copy: engines started from files that differ still agree.
    const int max = tx.exec_params1("SELECT coalesce((settings->>'max_concurrency')::int, $3) FROM campaigns "
                                    "WHERE id = $1 AND account_id = $2",
                                    id.value(), account_.value(), given_max)[0]
                        .as<int>();
    register_engine(tx, engine_id_, ms);
    tx.exec_params0("INSERT INTO engine_campaigns (engine_id, campaign_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    engine_id_, id.value());
    tx.exec_params0("INSERT INTO campaign_slots (campaign_id, slot) SELECT $1, g FROM generate_series(0, $2 - 1) g "
                    "ON CONFLICT DO NOTHING",
                    id.value(), max);
    tx.exec_params0("DELETE FROM campaign_slots WHERE campaign_id = $1 AND slot >= $2 "
                    "AND (engine_id IS NULL OR lease_until < now())",
                    id.value(), max);
    tx.exec_params0("UPDATE campaign_slots SET lease_until = now() + $3 * interval '1 millisecond' "
                    "WHERE campaign_id = $1 AND engine_id = $2 AND lease_until < now() + $3 * interval '0.75 millisecond'",
                    id.value(), engine_id_, ms);
    const auto row = tx.exec_params1(
        "SELECT (SELECT count(*) FROM campaign_slots WHERE campaign_id = $1 AND engine_id = $2), "
        " (SELECT count(*) FROM engine_campaigns ec JOIN engines e ON e.id = ec.engine_id "
        "  WHERE ec.campaign_id = $1 AND e.expires_at > now())",
        id.value(), engine_id_);
    int held = row[0].as<int>();
    const int live = std::max(row[1].as<int>(), 1);
    const int target = max <= 0 ? 0 : (max + live - 1) / live;
    const int keep = std::max(target, in_use);
    if (held > keep) {
      held -= static_cast<int>(tx.exec_params(
                                     "UPDATE campaign_slots SET engine_id = NULL, lease_until = NULL "
                                     "WHERE (campaign_id, slot) IN (SELECT campaign_id, slot FROM campaign_slots "
                                     " WHERE campaign_id = $1 AND engine_id = $2 ORDER BY slot DESC LIMIT $3) "
                                     "RETURNING slot",
                                     id.value(), engine_id_, held - keep)
                                     .size());
    } else if (held < target) {
      held += static_cast<int>(tx.exec_params(
                                     "UPDATE campaign_slots SET engine_id = $2, lease_until = now() + $4 * interval '1 millisecond' "
                                     "WHERE (campaign_id, slot) IN (SELECT campaign_id, slot FROM campaign_slots "
                                     " WHERE campaign_id = $1 AND slot < $5 AND (engine_id IS NULL OR lease_until < now()) "
                                     " ORDER BY slot LIMIT $3 FOR UPDATE SKIP LOCKED) "
                                     "RETURNING slot",
                                     id.value(), engine_id_, target - held, ms, max)
                                     .size());
    }
    tx.commit();
    return slot_lease{number_id{}, held, target, max};
  } catch (...) {
    return current_exception_error("leasing campaign slots");
  }
}

result<void> pg_campaign_store::release_engine() {
  try {
    pqxx::work tx(*connection_);
    tx.exec_params0("UPDATE number_slots SET engine_id = NULL, lease_until = NULL, freed_at = now() WHERE engine_id = $1",
                    engine_id_);
    tx.exec_params0("UPDATE campaign_slots SET engine_id = NULL, lease_until = NULL WHERE engine_id = $1", engine_id_);
    tx.exec_params0("DELETE FROM engines WHERE id = $1", engine_id_);
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("releasing engine leases");
  }
}

result<std::int64_t> pg_campaign_store::cancel_pending(campaign_id id) {
  try {
    pqxx::work tx(*connection_);
    const auto n = cancel_waiting_contacts(tx, id);
    tx.commit();
    return n;
  } catch (...) {
    return current_exception_error("cancelling contacts");
  }
}

}  // namespace dialer::pg
