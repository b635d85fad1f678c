#include "adapters/postgres/pg_slot_leases.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <algorithm>
#include <pqxx/pqxx>
#include <unordered_map>

#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

using std::chrono::milliseconds;

// This engine's registration row: live for `ms` from now. Every lease statement refreshes it in its own
// transaction, so that the rows that reference it (engine_numbers, campaign_shares) always find it.
void register_engine(pqxx::work& tx, const std::string& engine_id, std::int64_t ms) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  tx.exec_params0(
      "INSERT INTO engines (id, host, pid, expires_at) VALUES ($1, $2, $3, now() + $4 * interval '1 "
      "millisecond') "
      "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at",
      engine_id, std::string(host), static_cast<int>(::getpid()), ms);
}

// A holder's new count of a shared cap (a campaign's concurrency, a trunk's channels): down to what it keeps
// (its fair share, never a unit in use), or up to its share as far as the other live holders leave room.
int shared_count(int max, int others_held, int held_before, int target, int in_use) {
  const int free = max - others_held;  // what the other live holders leave (a lapsed lease leaves its share)
  const int keep = std::max(target, in_use);
  int held = held_before > keep ? keep : std::max(held_before, std::min(target, free));
  if (held > free) held = std::max(free, std::min(held_before, in_use));  // the cap was lowered
  return std::max(held, 0);
}

// Engines changing one trunk's channel counts take turns: the class of the two-key advisory locks, the key the
// identity's hash (two identities that collide only share turns).
constexpr std::int32_t kTrunkLockClass = 0x7472756b;  // "truk"

}  // namespace

result<std::vector<slot_lease>> pg_slot_leases::lease_numbers(std::span<const number_lease_request> numbers,
                                                              milliseconds lease, milliseconds quiet) {
  if (numbers.empty()) return std::vector<slot_lease>{};
  try {
    pqxx::work tx(link_.get());
    const auto ms = static_cast<std::int64_t>(lease.count());
    register_engine(tx, engine_id_, ms);
    // Set-based for all numbers at once: six statements per renewal instead of six per number (600 every
    // second with 100 numbers: 230 ms of each second on the control connection). Only shares that must move
    // touch numbers one by one.
    array_literal ids, agents, wanted;
    for (const auto& n : numbers) {
      ids.add(n.number.value());
      agents.add(n.agent.value());
      wanted.add(static_cast<std::int64_t>(n.wanted ? 1 : 0));
    }
    // Registered only on the numbers it wants and may use (active, assigned to the agent it dials for); an
    // engine whose number was released or reassigned, or that no longer dials on it, stops counting in its
    // share.
    tx.exec_params0(
        "INSERT INTO engine_numbers (engine_id, number_id) "
        "SELECT $1, u.id FROM unnest($2::bigint[], $3::bigint[], $4::int[]) u(id, ag, w) "
        "JOIN numbers n ON n.id = u.id AND n.status = 'active' AND n.agent_id = u.ag "
        "WHERE u.w = 1 ON CONFLICT DO NOTHING",
        engine_id_, ids.str(), agents.str(), wanted.str());
    tx.exec_params0(
        "DELETE FROM engine_numbers en USING unnest($2::bigint[], $3::bigint[], $4::int[]) u(id, ag, w) "
        "WHERE en.engine_id = $1 AND en.number_id = u.id AND (u.w = 0 OR NOT EXISTS ("
        " SELECT 1 FROM numbers n WHERE n.id = u.id AND n.status = 'active' AND n.agent_id = u.ag))",
        engine_id_, ids.str(), agents.str(), wanted.str());
    // Each number's capacity is shared among the live engines that use it (this one included).
    std::unordered_map<std::int64_t, int> max_of, users_of;
    for (const auto& r :
         tx.exec_params("SELECT u.id, coalesce(n.max_concurrent_calls, 0), "
                        " (SELECT count(*) FROM engine_numbers en JOIN engines e ON e.id = en.engine_id "
                        "  WHERE en.number_id = u.id AND e.expires_at > now()) "
                        "FROM unnest($1::bigint[], $2::bigint[]) u(id, ag) "
                        "LEFT JOIN numbers n ON n.id = u.id AND n.status = 'active' AND n.agent_id = u.ag",
                        ids.str(), agents.str())) {
      max_of[r[0].as<std::int64_t>()] = r[1].as<int>();
      users_of[r[0].as<std::int64_t>()] = r[2].as<int>();
    }
    array_literal maxes;
    for (const auto& n : numbers) maxes.add(static_cast<std::int64_t>(max_of[n.number.value()]));
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
    // stops dispatching on its slots lease/2 (plus one beat) after its last successful renewal, still inside
    // that.
    tx.exec_params0(
        "UPDATE number_slots SET lease_until = now() + $3 * interval '1 millisecond' "
        "WHERE number_id = ANY($1::bigint[]) AND engine_id = $2 AND lease_until < now() + $3 * interval "
        "'0.75 millisecond'",
        ids.str(), engine_id_, ms);
    // Milliseconds until a slot freed at freed_at stops cooling, given `quiet` as parameter `param` (<= 0 or
    // NULL: it does not cool).
    const auto cooled_in_ms = [](int param) {
      return fmt::format(
          "coalesce(ceil(extract(epoch FROM (freed_at + ${} * interval '1 millisecond' - now())) * 1000), "
          "0)::bigint",
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
    for (const auto& r : tx.exec_params("SELECT number_id, " + cooled_in_ms(3) +
                                            " FROM number_slots "
                                            "WHERE number_id = ANY($1::bigint[]) AND engine_id = $2",
                                        ids.str(), engine_id_, quiet_ms)) {
      auto& h = held_of[r[0].as<std::int64_t>()];
      ++h.held;
      h.cools(r[1].as<std::int64_t>());
    }
    std::vector<slot_lease> out;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
      const auto nid = numbers[i].number.value();
      const int busy = numbers[i].in_use;
      const int max = max_of[nid];
      const int live = std::max(users_of[nid], 1);
      const int target = max == 0 || !numbers[i].wanted ? 0 : (max + live - 1) / live;
      auto& h = held_of[nid];
      const int keep = std::max(target, busy);
      if (h.held > keep) {
        // The cooling ones go first: they carry no call.
        auto gone = tx.exec_params(
            "UPDATE number_slots SET engine_id = NULL, lease_until = NULL, freed_at = now() WHERE "
            "(number_id, slot) IN ("
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
            "RETURNING " +
                cooled_in_ms(6),
            nid, engine_id_, target - h.held, ms, max, quiet_ms);
        h.held += static_cast<int>(got.size());
        for (const auto& r : got) h.cools(r[0].as<std::int64_t>());
      }
      slot_lease l;
      l.number = numbers[i].number;
      l.held = h.held;
      l.target = target;
      l.max = max;
      l.cooling = h.cooling;
      l.cooled_in = milliseconds{h.cooled_in};
      out.push_back(l);
    }
    tx.commit();
    return out;
  } catch (...) {
    return link_.fail("leasing number slots");
  }
}

result<std::vector<slot_lease>> pg_slot_leases::lease_campaigns(
    std::span<const campaign_lease_request> campaigns, milliseconds lease) {
  std::vector<slot_lease> out;
  if (campaigns.empty()) return out;
  try {
    pqxx::work tx(link_.get());
    const auto ms = static_cast<std::int64_t>(lease.count());
    register_engine(tx, engine_id_, ms);
    array_literal ids;
    for (const auto& c : campaigns) ids.add(c.campaign.value());
    // The campaigns' rows, locked in id order: engines changing the shares of one campaign take turns. The
    // stored cap, not the caller's copy: engines started from files that differ still agree.
    std::unordered_map<std::int64_t, int> stored_max;
    for (const auto& r :
         tx.exec_params("SELECT id, coalesce((settings->>'max_concurrency')::int, -1) FROM campaigns "
                        "WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE",
                        ids.str()))
      stored_max[r[0].as<std::int64_t>()] = r[1].as<int>();
    struct others {
      int held = 0;     // what the other live engines hold
      int wanting = 0;  // the other live engines that run it
    };
    std::unordered_map<std::int64_t, others> other;
    std::unordered_map<std::int64_t, int> mine;  // what this engine holds, its lease live
    for (const auto& r :
         tx.exec_params("SELECT campaign_id, engine_id = $2, held, wants FROM campaign_shares "
                        "WHERE campaign_id = ANY($1::bigint[]) AND lease_until > now()",
                        ids.str(), engine_id_)) {
      const auto c = r[0].as<std::int64_t>();
      if (r[1].as<bool>()) {
        mine[c] = r[2].as<int>();
      } else {
        other[c].held += r[2].as<int>();
        if (r[3].as<bool>()) ++other[c].wanting;
      }
    }
    array_literal keep_ids, keep_held, keep_wants, drop_ids;
    bool any_keep = false, any_drop = false;
    for (const auto& c : campaigns) {
      const auto id = c.campaign.value();
      const auto stored = stored_max.find(id);
      const int max = stored == stored_max.end() ? 0 : (stored->second >= 0 ? stored->second : c.max);
      const auto& o = other[id];
      const int live = o.wanting + (c.wanted ? 1 : 0);
      const int target = max <= 0 || !c.wanted ? 0 : (max + live - 1) / live;
      const int held = shared_count(max, o.held, mine.contains(id) ? mine[id] : 0, target, c.in_use);
      if (held == 0 && !c.wanted) {
        drop_ids.add(id);
        any_drop = true;
      } else {
        keep_ids.add(id);
        keep_held.add(static_cast<std::int64_t>(held));
        keep_wants.add(static_cast<std::int64_t>(c.wanted ? 1 : 0));
        any_keep = true;
      }
      slot_lease l;
      l.campaign = c.campaign;
      l.held = held;
      l.target = target;
      l.max = max;
      out.push_back(l);
    }
    if (any_keep)
      tx.exec_params0(
          "INSERT INTO campaign_shares (campaign_id, engine_id, held, wants, lease_until) "
          "SELECT u.c, $1, u.h, u.w = 1, now() + $5 * interval '1 millisecond' "
          "FROM unnest($2::bigint[], $3::int[], $4::int[]) u(c, h, w) "
          "ON CONFLICT (campaign_id, engine_id) DO UPDATE SET held = EXCLUDED.held, wants = EXCLUDED.wants, "
          "lease_until = EXCLUDED.lease_until",
          engine_id_, keep_ids.str(), keep_held.str(), keep_wants.str(), ms);
    if (any_drop)
      tx.exec_params0("DELETE FROM campaign_shares WHERE engine_id = $1 AND campaign_id = ANY($2::bigint[])",
                      engine_id_, drop_ids.str());
    // The rows of engines gone for an hour.
    tx.exec_params0(
        "DELETE FROM campaign_shares WHERE campaign_id = ANY($1::bigint[]) "
        "AND lease_until < now() - interval '1 hour'",
        ids.str());
    tx.commit();
    return out;
  } catch (...) {
    return link_.fail("leasing campaign shares");
  }
}

result<std::vector<slot_lease>> pg_slot_leases::lease_channels(std::span<const channel_lease_request> trunks,
                                                               milliseconds lease) {
  std::vector<slot_lease> out;
  if (trunks.empty()) return out;
  try {
    pqxx::work tx(link_.get());
    const auto ms = static_cast<std::int64_t>(lease.count());
    register_engine(tx, engine_id_, ms);
    std::vector<std::string> order;
    array_literal ids;
    for (const auto& t : trunks) {
      order.push_back(t.identity);
      ids.add(std::string_view(t.identity));
    }
    // In one order for every engine, as they lock them.
    std::sort(order.begin(), order.end());
    order.erase(std::unique(order.begin(), order.end()), order.end());
    for (const auto& identity : order)
      (void)tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", kTrunkLockClass, identity);
    struct others {
      int held = 0;     // what the other live engines hold
      int wanting = 0;  // the other live engines with work on it
      int max = 0;      // the smallest limit they declare (0: none is live)
    };
    std::unordered_map<std::string, others> other;
    std::unordered_map<std::string, int> mine;
    for (const auto& r : tx.exec_params(
             "SELECT identity, engine_id = $2, held, wants, max FROM carrier_channel_shares "
             "WHERE identity = ANY($1::text[]) AND lease_until > now()",
             ids.str(), engine_id_)) {
      const auto identity = r[0].as<std::string>();
      if (r[1].as<bool>()) {
        mine[identity] = r[2].as<int>();
        continue;
      }
      auto& o = other[identity];
      o.held += r[2].as<int>();
      if (r[3].as<bool>()) ++o.wanting;
      o.max = o.max == 0 ? r[4].as<int>() : std::min(o.max, r[4].as<int>());
    }
    array_literal keep_ids, keep_max, keep_held, keep_wants, drop_ids;
    bool any_keep = false, any_drop = false;
    for (const auto& t : trunks) {
      const auto& o = other[t.identity];
      // Engines whose settings differ agree on the smallest limit.
      const int max = o.max == 0 ? t.max : std::min(o.max, t.max);
      const int live = o.wanting + (t.wanted ? 1 : 0);
      const int target = !t.wanted ? 0 : (max + live - 1) / live;
      const int held = shared_count(max, o.held, mine.contains(t.identity) ? mine[t.identity] : 0, target,
                                    t.in_use);
      if (held == 0 && !t.wanted) {
        drop_ids.add(std::string_view(t.identity));
        any_drop = true;
      } else {
        keep_ids.add(std::string_view(t.identity));
        keep_max.add(static_cast<std::int64_t>(t.max));
        keep_held.add(static_cast<std::int64_t>(held));
        keep_wants.add(static_cast<std::int64_t>(t.wanted ? 1 : 0));
        any_keep = true;
      }
      slot_lease l;
      l.held = held;
      l.target = target;
      l.max = max;
      out.push_back(l);
    }
    if (any_keep)
      tx.exec_params0(
          "INSERT INTO carrier_channel_shares (identity, engine_id, max, held, wants, lease_until) "
          "SELECT u.i, $1, u.m, u.h, u.w = 1, now() + $6 * interval '1 millisecond' "
          "FROM unnest($2::text[], $3::int[], $4::int[], $5::int[]) u(i, m, h, w) "
          "ON CONFLICT (identity, engine_id) DO UPDATE SET max = EXCLUDED.max, held = EXCLUDED.held, "
          "wants = EXCLUDED.wants, lease_until = EXCLUDED.lease_until",
          engine_id_, keep_ids.str(), keep_max.str(), keep_held.str(), keep_wants.str(), ms);
    if (any_drop)
      tx.exec_params0("DELETE FROM carrier_channel_shares WHERE engine_id = $1 AND identity = ANY($2::text[])",
                      engine_id_, drop_ids.str());
    tx.exec_params0(
        "DELETE FROM carrier_channel_shares WHERE identity = ANY($1::text[]) "
        "AND lease_until < now() - interval '1 hour'",
        ids.str());
    tx.commit();
    return out;
  } catch (...) {
    return link_.fail("leasing the trunks' channels");
  }
}

result<std::vector<account_share>> pg_slot_leases::lease_accounts(std::span<const std::string> identities,
                                                                  std::chrono::milliseconds lease,
                                                                  std::chrono::milliseconds quiet) {
  try {
    pqxx::work tx(link_.get());
    const auto ms = static_cast<std::int64_t>(lease.count());
    register_engine(tx, engine_id_, ms);
    array_literal ids;
    for (const auto& i : identities) ids.add(std::string_view(i));
    tx.exec_params0("DELETE FROM carrier_account_engines WHERE engine_id = $1 AND NOT identity = ANY($2::text[])",
                    engine_id_, ids.str());
    tx.exec_params0(
        "INSERT INTO carrier_account_engines (identity, engine_id, expires_at) "
        "SELECT i, $2, now() + $3 * interval '1 millisecond' FROM unnest($1::text[]) i "
        "ON CONFLICT (identity, engine_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
        ids.str(), engine_id_, ms);
    std::unordered_map<std::string, account_share> found;
    for (const auto& r : tx.exec_params(
             "SELECT a.identity, count(*) FILTER (WHERE a.expires_at > now()), "
             "bool_or(a.engine_id = $2 AND a.since <= now() - $3 * interval '1 millisecond') "
             "FROM carrier_account_engines a WHERE a.identity = ANY($1::text[]) GROUP BY a.identity",
             ids.str(), engine_id_, static_cast<std::int64_t>(quiet.count()))) {
      account_share s;
      s.engines = std::max(1, r[1].as<int>());
      s.settled = !r[2].is_null() && r[2].as<bool>();
      found[r[0].as<std::string>()] = s;
    }
    tx.commit();
    std::vector<account_share> out;
    out.reserve(identities.size());
    for (const auto& i : identities) out.push_back(found.contains(i) ? found[i] : account_share{1, false});
    return out;
  } catch (...) {
    return link_.fail("sharing the carrier accounts' calls per second");
  }
}

result<void> pg_slot_leases::release_all() {
  try {
    pqxx::work tx(link_.get());
    tx.exec_params0(
        "UPDATE number_slots SET engine_id = NULL, lease_until = NULL, freed_at = now() WHERE engine_id = $1",
        engine_id_);
    tx.exec_params0("DELETE FROM campaign_shares WHERE engine_id = $1", engine_id_);
    tx.exec_params0("DELETE FROM engine_numbers WHERE engine_id = $1", engine_id_);
    tx.exec_params0("DELETE FROM carrier_account_engines WHERE engine_id = $1", engine_id_);
    tx.exec_params0("DELETE FROM carrier_channel_shares WHERE engine_id = $1", engine_id_);
    tx.commit();
    return ok();
  } catch (...) {
    return link_.fail("releasing slot leases");
  }
}

}  // namespace dialer::pg
