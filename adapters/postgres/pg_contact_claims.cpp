#include "adapters/postgres/pg_contact_claims.hpp"

#include <pqxx/pqxx>
#include <unordered_set>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

using std::chrono::milliseconds;

timestamp from_us(std::int64_t us) {
  return timestamp{std::chrono::microseconds(us)};
}

}  // namespace

claim_batch pg_contact_claims::claim_one(pqxx::transaction_base& tx, const claim_request& request,
                                         milliseconds lease) {
  claim_batch out;
  out.campaign = request.campaign;
  const campaign_id id = request.campaign;
  const int max = request.max;
  if (max <= 0) return out;
  // Blocks in order of their earliest due contact, as many as fit in `max` by their pending counters (the
  // first always), locked with SKIP LOCKED so that engines never wait on each other. The claimability test is
  // repeated on the locked rows: a block another engine claimed since the candidates were read is skipped.
  auto blocks = tx.exec_params(
      // The candidates are computed once (an InitPlan): inlined into a join, the window ran again for every
      // block when the statistics said the table was nearly empty.
      // Only while the campaign runs: a claim that reaches the database after a pause or a cancel takes
      // nothing.
      "WITH cand AS MATERIALIZED ("
      "  SELECT first_id, pending, sum(pending) OVER (ORDER BY next_due, first_id) - pending AS before "
      "  FROM contact_blocks WHERE campaign_id = $1 AND next_due <= now() "
      "  AND (claimed_by IS NULL OR lease_until < now()) "
      "  AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND state = 'running')), "
      "picked AS ("
      "  SELECT b.first_id, b.claimed_by IS NOT NULL AS recovered FROM contact_blocks b "
      "  WHERE b.campaign_id = $1 AND b.next_due <= now() AND (b.claimed_by IS NULL OR b.lease_until < "
      "now()) "
      "  AND b.first_id = ANY (ARRAY(SELECT first_id FROM cand WHERE before = 0 OR before + pending <= $2)) "
      "  FOR UPDATE SKIP LOCKED) "
      "UPDATE contact_blocks t SET claimed_by = $3, lease_until = now() + $4 * interval '1 millisecond' "
      "FROM picked WHERE t.campaign_id = $1 AND t.first_id = picked.first_id "
      "RETURNING t.first_id, t.last_id, picked.recovered",
      id.value(), max, engine_id_, static_cast<std::int64_t>(lease.count()));
  if (blocks.empty()) {
    // Nothing claimable now: when is the next contact due in a block nobody holds (none: nothing waits
    // there)? (greatest() skips a NULL: the minimum is tested first. Imported contacts are due at
    // '-infinity', which has no epoch: clamped to 1970, due now.)
    auto due = tx.exec_params(
        "SELECT (extract(epoch FROM greatest(m, 'epoch'::timestamptz)) * 1e6)::bigint FROM ("
        "  SELECT min(next_due) AS m FROM contact_blocks WHERE campaign_id = $1 AND pending > 0 AND "
        "claimed_by IS NULL"
        ") x WHERE m IS NOT NULL",
        id.value());
    if (!due.empty()) out.next_due = from_us(due[0][0].as<std::int64_t>());
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
    // the contact back: attempt numbers beyond the contact's counter. Those contacts are reconciled, not
    // dialed.
    for (const auto& r : tx.exec_params(
             "SELECT a.id, a.contact_id, a.attempt_no, a.number_id, coalesce(a.carrier_call_id, ''), "
             "a.outcome, "
             "  (extract(epoch FROM a.started_at) * 1e6)::bigint, (extract(epoch FROM a.answered_at) * "
             "1e6)::bigint, "
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
      id.value(), firsts.str(), lasts.str(), layouts_.get(tx, id).account.value(), max);
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
}

result<std::vector<claim_batch>> pg_contact_claims::claim(std::span<const claim_request> requests,
                                                          milliseconds lease) {
  std::vector<claim_batch> out;
  if (requests.empty()) return out;
  try {
    pqxx::work tx(link_.get());
    std::vector<std::int64_t> ids;
    for (const auto& r : requests) ids.push_back(r.campaign.value());
    layouts_.load(tx, ids);
    out.reserve(requests.size());
    for (const auto& r : requests) out.push_back(claim_one(tx, r, lease));
    tx.commit();
    return out;
  } catch (...) {
    return link_.fail("claiming contacts");
  }
}

result<void> pg_contact_claims::renew(std::span<const held_blocks> held, milliseconds lease) {
  array_literal campaigns, firsts;
  bool any = false;
  for (const auto& h : held)
    for (auto b : h.blocks) {
      campaigns.add(h.campaign.value());
      firsts.add(b);
      any = true;
    }
  if (!any) return ok();
  try {
    pqxx::work tx(link_.get());
    // Only the leases past their half-life: a block is rewritten at most every lease/2, not every beat. A
    // lease that lapsed stays ours until another engine claims the block; renewing it here takes it back.
    // Rows are locked in (campaign, first_id) order, as every multi-block statement here does, so that two of
    // them never deadlock.
    tx.exec_params0(
        "UPDATE contact_blocks b SET lease_until = now() + $3 * interval '1 millisecond' FROM ("
        "  SELECT k.campaign_id, k.first_id FROM unnest($1::bigint[], $2::bigint[]) u(c, f) "
        "  JOIN contact_blocks k ON k.campaign_id = u.c AND k.first_id = u.f "
        "  WHERE k.claimed_by = $4 AND k.lease_until < now() + $3 * interval '0.5 millisecond' "
        "  ORDER BY k.campaign_id, k.first_id FOR NO KEY UPDATE OF k) due "
        "WHERE b.campaign_id = due.campaign_id AND b.first_id = due.first_id",
        campaigns.str(), firsts.str(), static_cast<std::int64_t>(lease.count()), engine_id_);
    tx.commit();
    return ok();
  } catch (...) {
    return link_.fail("renewing block leases");
  }
}

result<campaign_progress> pg_contact_claims::progress(campaign_id id) {
  try {
    pqxx::nontransaction tx(link_.get());
    campaign_progress p;
    // From the blocks' counters: a few hundred rows for a million contacts, not a scan of the contacts.
    auto r = tx.exec_params1(
        "SELECT coalesce(sum(pending) FILTER (WHERE claimed_by IS NULL), 0), "
        "  coalesce(sum(pending) FILTER (WHERE claimed_by IS NOT NULL), 0), coalesce(sum(done), 0), "
        "  coalesce(sum(cancelled), 0), coalesce(sum(do_not_call), 0), coalesce(sum(invalid), 0), "
        // Imported contacts are due at '-infinity', which has no epoch: clamp to 1970 (due now). None
        // waiting: NULL (greatest() would skip the NULL and answer 1970).
        "  (extract(epoch FROM greatest(nullif(min(next_due) FILTER (WHERE claimed_by IS NULL AND pending > "
        "0), "
        "   'infinity'), 'epoch'::timestamptz)) * 1e6)::bigint * "
        "  CASE WHEN min(next_due) FILTER (WHERE claimed_by IS NULL AND pending > 0) IS NULL THEN NULL ELSE "
        "1 END "
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
    return link_.fail("reading campaign progress");
  }
}

result<std::int64_t> pg_contact_claims::cancel_pending(campaign_id id) {
  try {
    pqxx::work tx(link_.get());
    const auto n = cancel_waiting_contacts(tx, id);
    tx.commit();
    return n;
  } catch (...) {
    return link_.fail("cancelling contacts");
  }
}

result<std::int64_t> pg_contact_claims::cancel_orphaned() {
  try {
    std::vector<std::int64_t> ids;
    {
      pqxx::nontransaction tx(link_.get());
      for (const auto& r :
           tx.exec("SELECT k.id FROM campaigns k WHERE k.state = 'cancelled' AND k.finished_at > now() - "
                   "interval '1 hour' "
                   "AND EXISTS (SELECT 1 FROM contact_blocks b WHERE b.campaign_id = k.id AND b.pending > 0 "
                   "  AND (b.claimed_by IS NULL OR b.lease_until < now()))"))
        ids.push_back(r[0].as<std::int64_t>());
    }
    std::int64_t n = 0;
    for (auto id : ids) {
      pqxx::work tx(link_.get());
      n += cancel_waiting_contacts(tx, campaign_id{id});
      tx.commit();
    }
    return n;
  } catch (...) {
    return link_.fail("cancelling the waiting contacts of cancelled campaigns");
  }
}

}  // namespace dialer::pg
