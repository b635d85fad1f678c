#include "adapters/postgres/campaign_rows.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <pqxx/pqxx>
#include <random>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/sql_arrays.hpp"
#include "engine/contacts/contact_import.hpp"

namespace dialer::pg {

namespace {
timestamp from_us(std::int64_t us) {
  return timestamp{std::chrono::microseconds(us)};
}
}  // namespace

// The statements here compute attempt ids in SQL as contact_id * 128 + attempt_no: the same rule as
// attempt_of.
static_assert(attempt_of(contact_id{3}, 5).value() == 3 * 128 + 5 && kMaxAttemptNo == 127);

std::string make_engine_id() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  return fmt::format("{}:{}:{:08x}", host, ::getpid(), rd());
}

void count_contact_states(pqxx::transaction_base& tx, campaign_id id, campaign_progress& p) {
  // Through the campaign's id range (the primary key): contacts have no index on campaign_id.
  for (const auto& r : tx.exec_params(std::string("SELECT c.state, count(*) FROM ") + kCampaignContacts +
                                          " WHERE k.id = $1 GROUP BY c.state",
                                      id.value())) {
    const auto n = r[1].as<std::int64_t>();
    const auto s = r[0].as<std::string>();
    p.total += n;
    if (s == "pending")
      p.pending = n;
    else if (s == "done")
      p.done = n;
    else if (s == "cancelled")
      p.cancelled = n;
    else if (s == "do_not_call")
      p.do_not_call = n;
    else if (s == "invalid")
      p.invalid = n;
  }
  // Pending contacts in blocks an engine holds are in progress.
  const auto held = tx.exec_params1(
                          "SELECT coalesce(sum(pending), 0) FROM contact_blocks "
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
        "c.imported_at IS NOT NULL, c.import_accepted, c.import_rejected_by_reason::text, "
        "(extract(epoch FROM c.created_at) * 1e6)::bigint, (extract(epoch FROM c.started_at) * 1e6)::bigint, "
        "(extract(epoch FROM c.finished_at) * 1e6)::bigint, "
        "coalesce(c.first_contact_id, 0), coalesce(c.last_contact_id, 0), c.block_size, c.account_id "
        "FROM campaigns c JOIN agents a ON a.id = c.agent_id WHERE ($1::bigint = 0 OR c.account_id = $1) AND "
        "c.id = $2",
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
    rec.import_accepted = r[9].as<std::int64_t>();
    const auto by_reason = nlohmann::json::parse(r[10].as<std::string>());
    for (std::size_t i = 0; i < contacts::reject_reason_count; ++i) {  // in the import's precedence order
      const std::string reason(contacts::to_string(static_cast<contacts::reject_reason>(i)));
      if (const auto it = by_reason.find(reason); it != by_reason.end() && it->get<std::int64_t>() > 0)
        rec.import_rejected_by_reason.emplace_back(reason, it->get<std::int64_t>());
    }
    rec.created_at = from_us(r[11].as<std::int64_t>());
    if (!r[12].is_null()) rec.started_at = from_us(r[12].as<std::int64_t>());
    if (!r[13].is_null()) rec.finished_at = from_us(r[13].as<std::int64_t>());
    rec.blocks.first = r[14].as<std::int64_t>();
    rec.blocks.last = r[15].as<std::int64_t>();
    rec.blocks.size = r[16].as<std::int32_t>();
    rec.account = account_id{r[17].as<std::int64_t>()};
    for (const auto& n : tx.exec_params(
             "SELECT number_id FROM campaign_numbers WHERE campaign_id = $1 ORDER BY number_id", id.value()))
      rec.numbers.emplace_back(n[0].as<std::int64_t>());
    return rec;
  } catch (...) {
    return current_exception_error("loading campaign");
  }
}

void layout_cache::load(pqxx::transaction_base& tx, std::span<const std::int64_t> campaigns) {
  array_literal missing;
  bool any = false;
  for (auto id : campaigns) {
    auto it = entries_.find(id);
    if (it != entries_.end() && !it->second.blocks.empty()) continue;
    missing.add(id);
    any = true;
  }
  if (!any) return;
  for (const auto& r :
       tx.exec_params("SELECT id, coalesce(first_contact_id, 0), coalesce(last_contact_id, 0), "
                      "block_size, account_id FROM campaigns WHERE id = ANY($1::bigint[])",
                      missing.str())) {
    entry e;
    e.blocks.first = r[1].as<std::int64_t>();
    e.blocks.last = r[2].as<std::int64_t>();
    e.blocks.size = r[3].as<std::int32_t>();
    e.account = account_id{r[4].as<std::int64_t>()};
    entries_[r[0].as<std::int64_t>()] = e;
  }
}

const layout_cache::entry& layout_cache::get(pqxx::transaction_base& tx, campaign_id id) {
  auto it = entries_.find(id.value());
  if (it == entries_.end() || it->second.blocks.empty()) {
    const std::int64_t one[] = {id.value()};
    load(tx, one);
    it = entries_.find(id.value());
    if (it == entries_.end()) it = entries_.emplace(id.value(), entry{}).first;
  }
  return it->second;
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
          "  FROM contacts c WHERE c.id BETWEEN k.first_id AND k.last_id AND c.campaign_id = k.campaign_id) "
          "n "
          "  WHERE k.campaign_id = $1 AND k.first_id = ANY($2::bigint[])) s "
          "WHERE b.campaign_id = $1 AND b.first_id = s.first_id",
      id.value(), firsts);
}

void recount_blocks(pqxx::transaction_base& tx, const std::string& campaigns, const std::string& firsts,
                    bool release) {
  // The same, for blocks of several campaigns: (campaigns[i], firsts[i]) pairs.
  tx.exec_params0(
      std::string("UPDATE contact_blocks b SET pending = s.pending, done = s.done, cancelled = s.cancelled, "
                  "do_not_call = s.dnc, invalid = s.invalid, next_due = coalesce(s.next_due, 'infinity') ") +
          (release ? ", claimed_by = NULL, lease_until = NULL " : "") +
          "FROM (SELECT k.campaign_id, k.first_id, n.* FROM unnest($1::bigint[], $2::bigint[]) u(c, f) "
          "  JOIN contact_blocks k ON k.campaign_id = u.c AND k.first_id = u.f CROSS JOIN LATERAL (SELECT "
          "  count(*) FILTER (WHERE c.state = 'pending') AS pending, "
          "  count(*) FILTER (WHERE c.state = 'done') AS done, "
          "  count(*) FILTER (WHERE c.state = 'cancelled') AS cancelled, "
          "  count(*) FILTER (WHERE c.state = 'do_not_call') AS dnc, "
          "  count(*) FILTER (WHERE c.state = 'invalid') AS invalid, "
          "  min(c.next_attempt_at) FILTER (WHERE c.state = 'pending') AS next_due "
          "  FROM contacts c WHERE c.id BETWEEN k.first_id AND k.last_id AND c.campaign_id = k.campaign_id) "
          "n) s "
          "WHERE b.campaign_id = s.campaign_id AND b.first_id = s.first_id",
      campaigns, firsts);
}

std::int64_t cancel_waiting_contacts(pqxx::transaction_base& tx, campaign_id id) {
  // Blocks no engine holds, and blocks whose holder's lease lapsed (a dead engine's), locked against claims.
  // FOR UPDATE also skips blocks an engine is writing or dialing from right now (they hold key-share locks),
  // so this never waits on, or deadlocks with, an engine's contact writes. Cancel is final: in a lapsed
  // block, a contact with an attempt beyond its counter (its engine died, or was cut off, before writing it
  // back) is cancelled too, with that attempt settled as it stands: its stored outcome, or `unknown` when
  // none was stored (the call may have happened; it is never redialed). Nobody else would ever settle it: no
  // engine runs a cancelled campaign.
  std::vector<std::int64_t> released, lapsed;
  array_literal firsts;
  for (const auto& r :
       tx.exec_params("SELECT first_id, claimed_by IS NOT NULL FROM contact_blocks "
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
        "  CROSS JOIN LATERAL (SELECT x.id, x.attempts FROM contacts x WHERE x.id BETWEEN b.first_id AND "
        "b.last_id "
        "    AND x.campaign_id = b.campaign_id AND x.state = 'pending' OFFSET 0) y "
        "  JOIN call_attempts a ON a.id BETWEEN y.id * 128 + y.attempts + 1 AND y.id * 128 + 127 "
        "  WHERE b.campaign_id = $1 AND b.first_id = ANY($2::bigint[])), "
        "settled AS ("
        "  UPDATE call_attempts a SET outcome = 'unknown', started_at = coalesce(a.started_at, "
        "a.created_at), "
        "  ended_at = now(), detail = 'campaign cancelled while its engine was away; the carrier was not "
        "asked' "
        "  FROM open WHERE a.id = open.attempt AND a.outcome IS NULL) "
        "UPDATE contacts c SET attempts = m.top, outcome = coalesce(c.outcome, 'unknown') "
        "FROM (SELECT contact, max(attempt_no) AS top FROM open GROUP BY 1) m WHERE c.id = m.contact",
        id.value(), lapsed_arr.str());
  }
  auto cancelled = tx.exec_params(
      "UPDATE contacts c SET state = 'cancelled', pending_reason = 'cancelled', updated_at = now() "
      "FROM (SELECT x.id FROM contact_blocks b CROSS JOIN LATERAL (SELECT y.id FROM contacts y "
      "  WHERE y.id BETWEEN b.first_id AND b.last_id AND y.campaign_id = b.campaign_id AND y.state = "
      "'pending' "
      "  OFFSET 0) x "
      "  WHERE b.campaign_id = $1 AND b.first_id = ANY($2::bigint[])) s "
      "WHERE c.id = s.id",
      id.value(), firsts.str());
  recount_blocks(tx, id, firsts.str(), false);
  // A lapsed block with nothing left to reconcile is nobody's any more.
  tx.exec_params0(
      "UPDATE contact_blocks SET claimed_by = NULL, lease_until = NULL WHERE campaign_id = $1 "
      "AND first_id = ANY($2::bigint[]) AND claimed_by IS NOT NULL AND pending = 0",
      id.value(), firsts.str());
  return static_cast<std::int64_t>(cancelled.affected_rows());
}

}  // namespace dialer::pg
