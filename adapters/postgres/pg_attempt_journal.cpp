#include "adapters/postgres/pg_attempt_journal.hpp"

#include <algorithm>
#include <pqxx/pqxx>
#include <set>
#include <unordered_set>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

std::int64_t to_us(timestamp t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
double epoch_s(timestamp t) {
  return static_cast<double>(to_us(t)) / 1e6;
}

// A block of a campaign: (campaign, contact_blocks::block_of key).
using block_key = std::pair<std::int64_t, std::int64_t>;

// Locks the listed blocks this engine still holds, key-share, in (campaign, first_id) order, and returns
// them. Claims skip locked blocks, so none of them can change hands before this transaction commits; neither
// our own heartbeat nor another writer of ours waits on it.
std::set<block_key> lock_held_blocks(pqxx::transaction_base& tx, const std::set<block_key>& touched,
                                     const std::string& engine_id) {
  std::set<block_key> mine;
  if (touched.empty()) return mine;
  array_literal campaigns, firsts;
  for (const auto& [c, f] : touched) {
    campaigns.add(c);
    firsts.add(f);
  }
  for (const auto& r :
       tx.exec_params("SELECT k.campaign_id, k.first_id FROM unnest($1::bigint[], $2::bigint[]) u(c, f) "
                      "JOIN contact_blocks k ON k.campaign_id = u.c AND k.first_id = u.f "
                      "WHERE k.claimed_by = $3 ORDER BY k.campaign_id, k.first_id FOR KEY SHARE OF k",
                      campaigns.str(), firsts.str(), engine_id))
    mine.emplace(r[0].as<std::int64_t>(), r[1].as<std::int64_t>());
  return mine;
}

}  // namespace

result<void> pg_attempt_journal::record(std::span<attempt_to_record> attempts) {
  if (attempts.empty()) return ok();
  std::unordered_set<std::int64_t> ours;  // attempts whose block this engine holds
  std::unordered_set<std::int64_t> dnc;   // attempts not recorded: the callee is on the do-not-call list
  const auto insert = [&](bool tolerate_duplicates) -> std::vector<std::int64_t> {
    pqxx::work tx(link_.get());
    std::vector<std::int64_t> campaign_ids;
    for (const auto& a : attempts) campaign_ids.push_back(a.campaign.value());
    std::sort(campaign_ids.begin(), campaign_ids.end());
    campaign_ids.erase(std::unique(campaign_ids.begin(), campaign_ids.end()), campaign_ids.end());
    layouts_.load(tx, campaign_ids);
    // Only while the campaign runs: once a pause or a cancel is committed, nothing more is recorded, so
    // nothing more is placed, even by an engine that has not seen the change yet (or was cut off while it
    // happened). The key-share lock makes a concurrent state change (which takes FOR UPDATE first) wait for
    // this commit, and this wait for the change's.
    array_literal ids_arr;
    for (auto id : campaign_ids) ids_arr.add(id);
    std::unordered_set<std::int64_t> running;
    for (const auto& r : tx.exec_params("SELECT id, state FROM campaigns WHERE id = ANY($1::bigint[]) "
                                        "ORDER BY id FOR KEY SHARE",
                                        ids_arr.str()))
      if (r[1].as<std::string>() == "running") running.insert(r[0].as<std::int64_t>());
    // Only for blocks this engine still holds: if our lease lapsed and another engine took a block over, its
    // contacts are not ours to dial.
    std::set<block_key> touched;
    for (const auto& a : attempts) {
      if (!running.contains(a.campaign.value())) continue;
      touched.emplace(a.campaign.value(), layouts_.get(tx, a.campaign).blocks.block_of(a.contact));
    }
    const auto mine = lock_held_blocks(tx, touched, engine_id_);
    // The caller IDs on which this engine still holds a live slot lease: a decision taken on a slot whose
    // lease lapsed since (a stall longer than the lease) is not recorded, so it is never placed. And the
    // callees on the do-not-call list now (of each campaign's account): a number listed while its contact
    // waited in the hopper is not dialed.
    array_literal used_numbers, accounts, callees;
    for (const auto& a : attempts) {
      used_numbers.add(a.number.value());
      accounts.add(layouts_.get(tx, a.campaign).account.value());
      callees.add(std::string_view(a.callee));
    }
    std::unordered_set<std::int64_t> leased;
    for (const auto& r :
         tx.exec_params("SELECT DISTINCT number_id FROM number_slots WHERE number_id = ANY($1::bigint[]) "
                        "AND engine_id = $2 AND lease_until > now()",
                        used_numbers.str(), engine_id_))
      leased.insert(r[0].as<std::int64_t>());
    std::set<std::pair<std::int64_t, std::string>> listed;
    for (const auto& r :
         tx.exec_params("SELECT DISTINCT u.a, u.e FROM unnest($1::bigint[], $2::text[]) u(a, e) "
                        "JOIN do_not_call d ON d.account_id = u.a AND d.e164 = u.e",
                        accounts.str(), callees.str()))
      listed.emplace(r[0].as<std::int64_t>(), r[1].as<std::string>());
    dnc.clear();
    ours.clear();
    array_literal campaigns, contacts, numbers_arr, attempt_nos, callers, carriers;
    std::vector<std::int64_t> recorded;
    for (const auto& a : attempts) {
      const auto& layout = layouts_.get(tx, a.campaign);
      if (!mine.contains({a.campaign.value(), layout.blocks.block_of(a.contact)})) continue;
      const auto key = attempt_of(a.contact, a.attempt_no).value();
      if (listed.contains({layout.account.value(), a.callee})) {
        dnc.insert(key);
        continue;
      }
      if (!leased.contains(a.number.value())) continue;
      ours.insert(key);
      campaigns.add(a.campaign.value());
      contacts.add(a.contact.value());
      numbers_arr.add(a.number.value());
      attempt_nos.add(static_cast<std::int64_t>(a.attempt_no));
      callers.add(std::string_view(a.caller_id));
      carriers.add(std::string_view(a.carrier));
      recorded.push_back(key);
    }
    if (recorded.empty()) {
      tx.commit();
      return recorded;
    }
    // The id is the attempt's natural key: a second recording of the same attempt is a unique violation.
    const std::string sql =
        "INSERT INTO call_attempts (id, campaign_id, contact_id, attempt_no, number_id, caller_id, carrier, "
        "engine_id) "
        "SELECT u.c * 128 + u.a, u.k, u.c, u.a, u.n, u.e, u.r, $7 "
        "FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::text[]) AS u(k, c, "
        "a, n, e, r)";
    // Ours to record: block held, slot leased, not listed.
    const std::vector<std::int64_t> candidates = recorded;
    if (!tolerate_duplicates) {
      tx.exec_params0(sql, campaigns.str(), contacts.str(), attempt_nos.str(), numbers_arr.str(),
                      callers.str(), carriers.str(), engine_id_);
    } else {
      recorded.clear();
      for (const auto& r :
           tx.exec_params(sql + " ON CONFLICT (id) DO NOTHING RETURNING id", campaigns.str(), contacts.str(),
                          attempt_nos.str(), numbers_arr.str(), callers.str(), carriers.str(), engine_id_))
        recorded.push_back(r[0].as<std::int64_t>());
      // A retry after a lost commit acknowledgement: rows this engine recorded that have neither outcome nor
      // carrier call id were never placed (the engine places only after the commit returns): recorded now.
      array_literal wanted;
      for (auto c : candidates) wanted.add(c);
      for (const auto& r :
           tx.exec_params("SELECT id FROM call_attempts WHERE id = ANY($1::bigint[]) AND engine_id = $2 "
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
      // Cannot happen while block leases hold (an attempt number is taken only by the block's holder, from
      // the contact's counter), except on a retry after a lost acknowledgement; the batch is then recorded
      // without the duplicates, which are reconciled, not dialed.
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
    return link_.fail("recording call attempts");
  }
}

result<void> pg_attempt_journal::write_back(const write_batch& batch) {
  const auto& [outcomes, returns, finals, accepted, release] = batch;
  if (batch.empty()) return ok();
  try {
    pqxx::work tx(link_.get());
    // The rows written back were claimed and recorded seconds ago: they are in shared buffers. At the default
    // random_page_cost (4, for disks) the planner prefers hashing the whole table (a sequential scan of every
    // contact or attempt, growing with the campaign) over a few thousand cached primary-key lookups.
    //
    // Event webhooks: this transaction logs the events of its own statements from what they return (an attempt
    // given its outcome, a contact put in a final state), which costs less than the triggers' comparison of
    // transition tables; dialer.events_logged tells the triggers so. Every statement below that finishes an
    // attempt or a contact must therefore log (`logging`), as long as any endpoint exists.
    const bool logging =
        tx.exec1("SET LOCAL random_page_cost = 1.1; SELECT EXISTS (SELECT 1 FROM webhook_endpoints)")[0].as<bool>();
    // Only when it logs: an endpoint created after the check above still gets this transaction's events, from the
    // triggers (each statement sees it).
    if (logging) tx.exec0("SET LOCAL dialer.events_logged = 'on'");
    // `update ... RETURNING id, campaign_id, state` with the contact.finished events of the rows it finished.
    const auto finishing = [&](const std::string& update) {
      if (!logging) return update;
      return "WITH w AS (" + update + " RETURNING c.id, c.campaign_id, c.state) "
             "SELECT webhook_log_append('contact.finished', array_agg(campaign_id), array_agg(id)) "
             "FROM w WHERE state IN ('done', 'cancelled', 'do_not_call', 'invalid')";
    };
    std::vector<std::int64_t> campaign_ids;
    for (const auto& o : outcomes) campaign_ids.push_back(o.campaign.value());
    for (const auto& r : returns) campaign_ids.push_back(r.campaign.value());
    for (const auto& f : finals) campaign_ids.push_back(f.campaign.value());
    for (const auto& b : release) campaign_ids.push_back(b.campaign.value());
    std::sort(campaign_ids.begin(), campaign_ids.end());
    campaign_ids.erase(std::unique(campaign_ids.begin(), campaign_ids.end()), campaign_ids.end());
    layouts_.load(tx, campaign_ids);
    const auto block_of = [&](campaign_id c, contact_id k) -> block_key {
      return {c.value(), layouts_.get(tx, c).blocks.block_of(k)};
    };
    // The blocks this batch touches that are still ours, key-share locked until commit so that no engine can
    // claim one while its contacts are written. Contacts of a block we lost are its new holder's: it finds
    // their attempts beyond the contacts' counters and reconciles them.
    std::set<block_key> touched;
    for (const auto& b : release) touched.emplace(b.campaign.value(), b.first);
    for (const auto& o : outcomes) touched.insert(block_of(o.campaign, o.contact));
    for (const auto& r : returns) touched.insert(block_of(r.campaign, r.contact));
    for (const auto& f : finals) touched.insert(block_of(f.campaign, f.contact));
    const auto mine = lock_held_blocks(tx, touched, engine_id_);
    const auto ours = [&](campaign_id c, contact_id k) { return mine.contains(block_of(c, k)); };

    if (!outcomes.empty()) {
      array_literal ids, call_ids, started, answered, ended, outcome, billable, cost, detail;
      array_literal contact_ids, states, attempts, contact_outcome, next_at, reasons, sticky;
      bool any_contact = false;
      for (const auto& o : outcomes) {
        ids.add(o.attempt.value());
        call_ids.add(std::string_view(o.event.carrier_call_id));
        started.add(epoch_s(o.event.started_at));
        if (o.event.answered_at)
          answered.add(epoch_s(*o.event.answered_at));
        else
          answered.add_null();
        ended.add(epoch_s(o.event.ended_at));
        outcome.add(to_string(o.event.outcome));
        billable.add(static_cast<std::int64_t>(o.event.billable.count()));
        cost.add(static_cast<std::int64_t>(o.cost));
        detail.add(std::string_view(o.event.detail));
        if (!ours(o.campaign, o.contact)) continue;
        any_contact = true;
        contact_ids.add(o.contact.value());
        states.add(rules::to_string(o.next_state));
        attempts.add(static_cast<std::int64_t>(o.attempt_no));
        contact_outcome.add(to_string(o.event.outcome));
        if (o.next_attempt_at)
          next_at.add(epoch_s(*o.next_attempt_at));
        else
          next_at.add_null();
        reasons.add(std::string_view(o.pending_reason));
        sticky.add(o.number.value());
      }
      // An outcome is written once: a reconciliation never overwrites one that arrived first. The attempts it
      // finishes are call.ended events (and call.answered, answered ones).
      std::string update =
          "UPDATE call_attempts a SET carrier_call_id = nullif(u.cid, ''), started_at = to_timestamp(u.st), "
          "answered_at = to_timestamp(u.an), ended_at = to_timestamp(u.en), outcome = u.o, billable_ms = u.b, "
          "cost = u.cost / 1000000.0, detail = nullif(u.d, '') "
          "FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::text[], "
          "$7::int[], $8::bigint[], $9::text[]) AS u(id, cid, st, an, en, o, b, cost, d) WHERE a.id = u.id AND "
          "a.outcome IS NULL";
      if (logging)
        update = "WITH w AS (" + update + " RETURNING a.id, a.campaign_id, a.answered_at IS NOT NULL AS answered) "
                 "SELECT webhook_log_append('call.answered', array_agg(campaign_id) FILTER (WHERE answered), "
                 "  array_agg(id) FILTER (WHERE answered)), "
                 "webhook_log_append('call.ended', array_agg(campaign_id), array_agg(id)) FROM w";
      tx.exec_params(update, ids.str(), call_ids.str(), started.str(), answered.str(), ended.str(), outcome.str(),
                     billable.str(), cost.str(), detail.str());
      if (any_contact)
        tx.exec_params(finishing(
            "UPDATE contacts c SET state = u.s, attempts = u.att, outcome = u.o, "
            "next_attempt_at = coalesce(to_timestamp(u.na), c.next_attempt_at), pending_reason = u.r, "
            "sticky_number_id = coalesce(c.sticky_number_id, u.num), updated_at = now() "
            "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::float8[], $6::text[], "
            "$7::bigint[]) "
            "AS u(id, s, att, o, na, r, num) WHERE c.id = u.id AND c.state = 'pending' AND c.attempts = "
            "u.att - 1"),
            contact_ids.str(), states.str(), attempts.str(), contact_outcome.str(), next_at.str(),
            reasons.str(), sticky.str());
    }
    if (!accepted.empty()) {
      // Calls still running: their carrier ids, so that a crashed engine's successor can ask the carrier
      // about them.
      array_literal ids, call_ids;
      for (const auto& a : accepted) {
        ids.add(a.attempt.value());
        call_ids.add(std::string_view(a.carrier_call_id));
      }
      tx.exec_params0(
          "UPDATE call_attempts a SET carrier_call_id = u.cid FROM unnest($1::bigint[], $2::text[]) AS u(id, "
          "cid) "
          "WHERE a.id = u.id AND a.outcome IS NULL",
          ids.str(), call_ids.str());
    }
    if (!returns.empty()) {
      array_literal ids, counters, next_at, reasons, refused;
      bool any = false, any_refused = false;
      for (const auto& r : returns) {
        if (!ours(r.campaign, r.contact)) continue;
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
      if (any_refused)
        tx.exec_params0("DELETE FROM call_attempts WHERE id = ANY($1::bigint[])", refused.str());
      if (any)
        tx.exec_params0(
            "UPDATE contacts c SET next_attempt_at = to_timestamp(u.na), pending_reason = u.r, updated_at = "
            "now() "
            "FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::int[]) AS u(id, na, r, att) "
            "WHERE c.id = u.id AND c.state = 'pending' AND c.attempts = u.att",
            ids.str(), next_at.str(), reasons.str(), counters.str());
    }
    if (!finals.empty()) {
      array_literal ids, counters, states, reasons;
      bool any = false;
      for (const auto& f : finals) {
        if (!ours(f.campaign, f.contact)) continue;
        any = true;
        ids.add(f.contact.value());
        counters.add(static_cast<std::int64_t>(f.attempts));
        states.add(rules::to_string(f.state));
        reasons.add(std::string_view(f.reason));
      }
      if (any)
        tx.exec_params(finishing(
            "UPDATE contacts c SET state = u.s, pending_reason = u.r, updated_at = now() "
            "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[]) AS u(id, s, r, att) "
            "WHERE c.id = u.id AND c.state = 'pending' AND c.attempts = u.att"),
            ids.str(), states.str(), reasons.str(), counters.str());
    }
    if (!release.empty()) {
      array_literal campaigns, firsts;
      bool any = false;
      std::set<block_key> released;
      for (const auto& b : release)
        if (mine.contains({b.campaign.value(), b.first})) released.emplace(b.campaign.value(), b.first);
      for (const auto& [c, f] : released) {  // in (campaign, first_id) order, like the heartbeat: no deadlock
        campaigns.add(c);
        firsts.add(f);
        any = true;
      }
      if (any) {
        tx.exec_params(
            "SELECT 1 FROM unnest($1::bigint[], $2::bigint[]) u(c, f) JOIN contact_blocks k "
            "ON k.campaign_id = u.c AND k.first_id = u.f ORDER BY k.campaign_id, k.first_id "
            "FOR NO KEY UPDATE OF k",
            campaigns.str(), firsts.str());
        // Cancel is final: a block released after its campaign was cancelled (its engine drained for another
        // reason, or a claim crossed the cancel) has its waiting contacts cancelled now; no engine will run
        // the campaign again to do it.
        array_literal distinct;
        for (auto id : campaign_ids) distinct.add(id);
        if (!tx.exec_params(
                   "SELECT 1 FROM campaigns WHERE id = ANY($1::bigint[]) AND state = 'cancelled' LIMIT 1",
                   distinct.str())
                 .empty())
          tx.exec_params(finishing(
              "UPDATE contacts c SET state = 'cancelled', pending_reason = 'cancelled', updated_at = now() "
              "FROM (SELECT x.id FROM unnest($1::bigint[], $2::bigint[]) u(k, f) "
              "  JOIN campaigns k ON k.id = u.k AND k.state = 'cancelled' "
              "  JOIN contact_blocks b ON b.campaign_id = u.k AND b.first_id = u.f "
              "  CROSS JOIN LATERAL (SELECT y.id FROM contacts y WHERE y.id BETWEEN b.first_id AND b.last_id "
              "    AND y.campaign_id = u.k AND y.state = 'pending' OFFSET 0) x) s "
              "WHERE c.id = s.id"),
              campaigns.str(), firsts.str());
        recount_blocks(tx, campaigns.str(), firsts.str(), true);
      }
    }
    tx.commit();
    return ok();
  } catch (...) {
    return link_.fail("writing call outcomes");
  }
}

}  // namespace dialer::pg
