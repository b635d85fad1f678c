#include "adapters/postgres/pg_campaign_repository.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <pqxx/pqxx>
#include <span>
#include <utility>

#include "adapters/postgres/campaign_rows.hpp"
#include "adapters/postgres/connection.hpp"
#include "adapters/postgres/number_rows.hpp"
#include "adapters/postgres/pg_engine_registry.hpp"
#include "adapters/postgres/raw_connection.hpp"
#include "adapters/postgres/sql_arrays.hpp"

namespace dialer::pg {
namespace {

constexpr std::int64_t kContactIdLock = 0x6469616c65720002;  // "dialer" + 2: contact id ranges

// The rejected rows of one import, in COPY text format, in an unnamed temporary file (gone when closed): they
// are copied into import_rejections once the contacts' COPY has ended (one connection runs one COPY at a
// time), and a file with millions of bad rows costs disk, not memory.
class rejection_spool {
 public:
  explicit rejection_spool(campaign_id campaign) : campaign_(std::to_string(campaign.value())) {}

  result<void> add(std::span<const contacts::rejected_contact> rows) {
    if (rows.empty()) return dialer::ok();
    if (!file_) {
      file_.reset(std::tmpfile());
      if (!file_)
        return make_error(errc::unavailable, "cannot create a temporary file for the rejected rows: {}",
                          std::strerror(errno));
    }
    buffer_.clear();
    for (const auto& r : rows) {
      fmt::format_to(std::back_inserter(buffer_), "{}\t{}\t{}\t", campaign_, r.row,
                     contacts::to_string(r.reason));
      std::string input(r.input);
      std::replace(input.begin(), input.end(), '\0', '?');  // text cannot hold NUL; the rest is valid UTF-8
      append_copy_field(buffer_, input);
      buffer_ += '\n';
    }
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_.get()) != buffer_.size())
      return make_error(errc::unavailable, "cannot write the rejected rows to a temporary file: {}",
                        std::strerror(errno));
    return dialer::ok();
  }

  // COPYs what was spooled into import_rejections on `conn` (inside its transaction).
  result<void> store(raw_connection& conn) {
    if (!file_) return dialer::ok();
    if (std::fflush(file_.get()) != 0 || std::fseek(file_.get(), 0, SEEK_SET) != 0)
      return make_error(errc::unavailable, "cannot read back the rejected rows: {}", std::strerror(errno));
    if (auto r = conn.exec("COPY import_rejections (campaign_id, row_number, reason, input) FROM STDIN",
                           PGRES_COPY_IN);
        !r)
      return std::move(r).error();
    buffer_.resize(1 << 20);
    while (const std::size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_.get())) {
      if (auto r = conn.put(std::string_view(buffer_.data(), n)); !r) {
        (void)conn.end_copy();
        return std::move(r).error();
      }
    }
    return conn.end_copy();
  }

 private:
  struct closer {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };
  std::string campaign_;
  std::unique_ptr<std::FILE, closer> file_;
  std::string buffer_;
};

class copy_sink final : public contacts::contact_sink {
 public:
  // Contact ids are assigned here, consecutively from `first_id` (the range the import reserved).
  copy_sink(raw_connection& conn, campaign_id campaign, std::int64_t first_id, rejection_spool& rejected)
      : conn_(conn), campaign_(std::to_string(campaign.value())), next_id_(first_id), rejected_(rejected) {}

  result<void> write(const contacts::contact_batch& batch) override {
    if (auto r = rejected_.add(batch.rejected); !r) return r;
    buffer_.clear();
    for (const auto& a : batch.accepted) {
      fmt::format_to(std::back_inserter(buffer_), "{}\t{}\t{}\t", next_id_++, campaign_, a.row);
      append_copy_field(buffer_, a.e164);
      buffer_ += '\t';
      append_copy_field(buffer_, a.timezone);
      buffer_ += '\t';
      append_copy_field(buffer_, a.variables_json);
      buffer_ += '\n';
    }
    if (buffer_.empty()) return dialer::ok();
    return conn_.put(buffer_);
  }

 private:
  raw_connection& conn_;
  std::string campaign_;
  std::int64_t next_id_;
  std::string buffer_;
  rejection_spool& rejected_;
};

// The campaign's calls as wall-clock intervals (iv: number_id, s, e), for $1 = the campaign id.
// - The simulated carrier stamps a call's end on its simulated timeline (started_at + the simulated
// duration),
//   which runs time_acceleration times faster than the wall clock: its durations are scaled back, and an
//   instant carrier's calls take no wall time. Every other carrier reports wall-clock times.
// - A call in flight (no outcome yet) runs from when it was recorded until now; one that ended without times
//   (reconciled as unknown) is a point. Every call lasts at least a microsecond, so it counts at its start.
constexpr const char* kCallIntervals =
    "k AS (SELECT id, first_contact_id, last_contact_id, "
    "  CASE WHEN carrier <> 'simulated' THEN 1.0::float8 "
    "       WHEN settings #>> '{carrier_settings,instant}' = 'true' THEN 0.0::float8 "
    "       ELSE 1.0 / greatest(coalesce((settings #>> '{carrier_settings,time_acceleration}')::float8, "
    "1.0), 1e-9) "
    "  END AS wall_per_call_second "
    "  FROM campaigns WHERE id = $1), "
    "spans AS (SELECT a.number_id, coalesce(a.started_at, a.created_at) AS s, "
    "  CASE WHEN a.outcome IS NULL THEN greatest(now(), coalesce(a.started_at, a.created_at)) "
    "       WHEN a.ended_at IS NULL OR a.started_at IS NULL THEN coalesce(a.started_at, a.created_at) "
    "       ELSE a.started_at + (a.ended_at - a.started_at) * k.wall_per_call_second END AS e "
    "  FROM k JOIN call_attempts a ON a.id BETWEEN k.first_contact_id * 128 AND k.last_contact_id * 128 + "
    "127 "
    "   AND a.campaign_id = k.id), "
    "iv AS (SELECT number_id, s, greatest(e, s + interval '1 microsecond') AS e FROM spans)";

}  // namespace

result<std::optional<campaign_id>> pg_campaign_repository::find(const std::string& name_or_id) {
  try {
    pqxx::nontransaction tx(connection_);
    const bool digits =
        !name_or_id.empty() && name_or_id.find_first_not_of("0123456789") == std::string::npos;
    auto rows = digits ? tx.exec_params("SELECT id FROM campaigns WHERE account_id = $1 AND id = $2",
                                        account_.value(), std::stoll(name_or_id))
                       : tx.exec_params("SELECT id FROM campaigns WHERE account_id = $1 AND name = $2",
                                        account_.value(), name_or_id);
    if (rows.empty()) return std::optional<campaign_id>{};
    return std::optional<campaign_id>{campaign_id{rows[0][0].as<std::int64_t>()}};
  } catch (...) {
    return current_exception_error("looking up campaign " + name_or_id);
  }
}

result<void> pg_campaign_repository::update_settings(campaign_id id, const campaign_spec& spec) {
  try {
    pqxx::work tx(connection_);
    tx.exec_params0(
        "UPDATE campaigns SET settings = $2::jsonb, carrier = $3, updated_at = now() WHERE id = $1",
        id.value(), to_json(spec).dump(), spec.carrier);
    tx.commit();
    return ok();
  } catch (...) {
    return current_exception_error("updating campaign settings");
  }
}

namespace {

// Imports `file` into campaign `id` inside the transaction open on `conn` (the caller holds the campaign's
// row, by lock or by having just inserted it): one range of consecutive contact ids, COPY, the blocks, and
// the import record on the campaign. Leaves the transaction open; on error the caller rolls it back.
result<import_report> copy_contacts(raw_connection& conn, campaign_id id, const contacts_source& source,
                                    const contacts::e164_set& dnc) {
  // The campaign's contacts get one range of consecutive ids, which the engine cuts into claimable blocks.
  // The sequence is advanced past the range at the end, under a transaction-wide lock: concurrent imports (of
  // other campaigns) take their ranges one after the other.
  if (auto r = conn.exec(fmt::format("SELECT pg_advisory_xact_lock({})", kContactIdLock), PGRES_TUPLES_OK);
      !r)
    return std::move(r).error();
  auto first = conn.scalar("SELECT nextval('contacts_id_seq')");
  if (!first) return std::move(first).error();
  if (auto r = conn.exec("COPY contacts (id, campaign_id, row_number, e164, timezone, variables) FROM STDIN",
                         PGRES_COPY_IN);
      !r)
    return std::move(r).error();
  import_report report;
  rejection_spool rejected(id);
  copy_sink sink(conn, id, *first, rejected);
  contacts::import_options options;
  options.default_region = source.default_region;
  options.do_not_call = &dnc;
  auto summary = [&] {
    if (!source.csv) return contacts::import_contacts_file(source.file.string(), options, sink);
    auto reader = contacts::csv_reader::from_string(*source.csv);
    return contacts::import_contacts(reader, options, sink);
  }();
  if (!summary) {
    (void)conn.end_copy();
    return std::move(summary).error();
  }
  if (auto r = conn.end_copy(); !r) return std::move(r).error();
  if (auto r = rejected.store(conn); !r) return std::move(r).error();
  report.summary = *summary;
  nlohmann::json by_reason = nlohmann::json::object();
  for (std::size_t i = 0; i < contacts::reject_reason_count; ++i) {
    const auto reason = static_cast<contacts::reject_reason>(i);
    if (summary->count(reason) > 0)
      by_reason[std::string(contacts::to_string(reason))] = summary->count(reason);
  }
  const auto accepted = static_cast<std::int64_t>(summary->accepted);
  std::string first_sql = "NULL", last_sql = "NULL";
  std::string statements;
  const auto size = block_size_for(accepted);
  if (accepted > 0) {
    const std::int64_t last = *first + accepted - 1;
    first_sql = std::to_string(*first);
    last_sql = std::to_string(last);
    statements = fmt::format(
        "SELECT setval('contacts_id_seq', {1});"
        "INSERT INTO contact_blocks (campaign_id, first_id, last_id, pending) "
        "SELECT {0}, b, least(b + {3} - 1, {1}), least(b + {3} - 1, {1}) - b + 1 "
        "FROM generate_series({2}::bigint, {1}::bigint, {3}::bigint) b;",
        id.value(), last, *first, size);
  }
  if (!statements.empty()) {
    if (auto r = conn.exec(statements); !r) return std::move(r).error();
  }
  if (auto r = conn.exec_params(
          fmt::format("UPDATE campaigns SET imported_at = now(), import_accepted = {}, "
                      "import_rejected_by_reason = $1::jsonb, "
                      "first_contact_id = {}, last_contact_id = {}, block_size = {} WHERE id = {}",
                      summary->accepted, first_sql, last_sql, size, id.value()),
          {by_reason.dump()});
      !r)
    return std::move(r).error();
  return report;
}

// The server's message of a failed statement, without libpq's "ERROR:  " prefix.
std::string server_message(const error& e) {
  std::string why = e.message;
  if (const auto pos = why.find("ERROR:  "); pos != std::string::npos) why = why.substr(pos + 8);
  if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
  return why;
}

}  // namespace

result<import_report> pg_campaign_repository::import_contacts(campaign_id id,
                                                              const contacts_source& contacts) {
  auto dnc = dnc_.set();
  if (!dnc) return std::move(dnc).error();
  raw_connection conn(url_);
  if (!conn.ok()) return make_error(errc::unavailable, "cannot connect to the database: {}", conn.message());
  if (auto r = conn.exec("BEGIN"); !r) return std::move(r).error();
  // Lock the campaign row: two processes importing the same campaign serialise, and the second sees it done.
  auto lock = conn.exec(
      fmt::format("SELECT 1 FROM campaigns WHERE id = {} AND imported_at IS NULL FOR UPDATE", id.value()),
      PGRES_TUPLES_OK);
  if (!lock) return std::move(lock).error();
  {
    pqxx::nontransaction tx(connection_);
    if (tx.exec_params1("SELECT imported_at IS NOT NULL FROM campaigns WHERE id = $1", id.value())[0]
            .as<bool>()) {
      (void)conn.exec("ROLLBACK");
      return make_error(errc::conflict, "the contacts of campaign {} were imported already", id.value());
    }
  }
  auto report = copy_contacts(conn, id, contacts, *dnc);
  if (!report) {
    (void)conn.exec("ROLLBACK");
    return std::move(report).error();
  }
  if (auto r = conn.exec("COMMIT"); !r) return std::move(r).error();
  return report;
}

result<created_campaign> pg_campaign_repository::create_with_contacts(const campaign_spec& spec,
                                                                      agent_id agent,
                                                                      std::span<const number_id> numbers,
                                                                      const contacts_source& contacts) {
  auto dnc = dnc_.set();
  if (!dnc) return std::move(dnc).error();
  raw_connection conn(url_);
  if (!conn.ok()) return make_error(errc::unavailable, "cannot connect to the database: {}", conn.message());
  try {
    if (auto r = conn.exec("BEGIN"); !r) return std::move(r).error();
    const auto rollback = [&conn](error e) {
      (void)conn.exec("ROLLBACK");
      return e;
    };
    auto id = conn.scalar_params(
        "INSERT INTO campaigns (account_id, name, agent_id, carrier, settings) "
        "VALUES ($1::bigint, $2, $3::bigint, $4, $5::jsonb) RETURNING id",
        {std::to_string(account_.value()), spec.name, std::to_string(agent.value()), spec.carrier,
         to_json(spec).dump()});
    if (!id) {
      if (conn.last_sqlstate() == "23505")
        return rollback(make_error(errc::conflict, "campaign '{}' already exists", spec.name));
      return rollback(std::move(id).error());
    }
    for (auto n : numbers) {
      auto listed = conn.exec(fmt::format(
          "INSERT INTO campaign_numbers (campaign_id, number_id) VALUES ({}, {})", *id, n.value()));
      if (!listed) {
        if (conn.last_sqlstate() == "23514")
          return rollback(make_error(errc::launch_failed, "{}", server_message(listed.error())));
        return rollback(std::move(listed).error());
      }
    }
    auto report = copy_contacts(conn, campaign_id{*id}, contacts, *dnc);
    if (!report) return rollback(std::move(report).error());
    if (auto r = conn.exec("COMMIT"); !r) return std::move(r).error();
    return created_campaign{campaign_id{*id}, std::move(*report)};
  } catch (...) {
    (void)conn.exec("ROLLBACK");
    return current_exception_error("creating campaign " + spec.name);
  }
}

// Launches of one account take turns: a session-level advisory lock on this admin's connection, so it lasts
// across the transactions of the launch and ends with the connection if the process dies.
constexpr std::int32_t kLaunchLockClass = 0x6469616c;  // "dial"

namespace {

// A session-level advisory lock on the repository's connection: it lasts across the transactions of the
// launch and ends with the connection if the process dies.
class advisory_turn final : public launch_turn {
 public:
  advisory_turn(pqxx::connection& connection, std::int64_t account)
      : connection_(connection), account_(account) {}
  ~advisory_turn() override {
    try {
      pqxx::nontransaction tx(connection_);
      tx.exec_params("SELECT pg_advisory_unlock($1, $2::integer)", kLaunchLockClass, account_);
    } catch (...) {
      // The connection is gone, and the session's lock with it.
    }
  }
  advisory_turn(const advisory_turn&) = delete;
  advisory_turn& operator=(const advisory_turn&) = delete;

 private:
  pqxx::connection& connection_;
  std::int64_t account_;
};

}  // namespace

result<std::unique_ptr<launch_turn>> pg_campaign_repository::lock_launches() {
  try {
    pqxx::nontransaction tx(connection_);
    tx.exec_params("SELECT pg_advisory_lock($1, $2::integer)", kLaunchLockClass, account_.value());
    return std::unique_ptr<launch_turn>(std::make_unique<advisory_turn>(connection_, account_.value()));
  } catch (...) {
    return current_exception_error("waiting for other launches of this account");
  }
}

result<int> pg_do_not_call_list::add(std::span<const std::string> e164s, const std::string& source) {
  if (e164s.empty()) return 0;
  try {
    array_literal list;
    for (const auto& e : e164s) list.add(std::string_view(e));
    pqxx::work tx(connection_);
    auto r = tx.exec_params(
        "INSERT INTO do_not_call (account_id, e164, source) SELECT $1, e, $3 FROM unnest($2::text[]) e "
        "ON CONFLICT DO NOTHING",
        account_.value(), list.str(), source);
    tx.commit();
    return static_cast<int>(r.affected_rows());
  } catch (...) {
    return current_exception_error("adding to the do-not-call list");
  }
}

result<std::vector<std::pair<std::string, std::string>>> pg_do_not_call_list::list() {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& r : tx.exec_params(
             "SELECT e164, source FROM do_not_call WHERE account_id = $1 ORDER BY e164", account_.value()))
      out.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
    return out;
  } catch (...) {
    return current_exception_error("listing the do-not-call list");
  }
}

result<contacts::e164_set> pg_do_not_call_list::set() {
  auto list = this->list();
  if (!list) return std::move(list).error();
  contacts::e164_set set(list->size() + 16);
  for (const auto& [e164, source] : *list) (void)set.add(e164);
  return set;
}

result<std::vector<campaign_record>> pg_campaign_repository::list() {
  try {
    std::vector<std::int64_t> ids;
    {
      pqxx::nontransaction tx(connection_);
      for (const auto& r :
           tx.exec_params("SELECT id FROM campaigns WHERE account_id = $1 ORDER BY id", account_.value()))
        ids.push_back(r[0].as<std::int64_t>());
    }
    std::vector<campaign_record> out;
    for (auto id : ids) {
      auto rec = load_campaign_record(connection_, account_, campaign_id{id});
      if (!rec) return std::move(rec).error();
      out.push_back(std::move(*rec));
    }
    return out;
  } catch (...) {
    return current_exception_error("listing campaigns");
  }
}

result<campaign_summary> pg_campaign_repository::summary(campaign_id id) {
  auto rec = load_campaign_record(connection_, account_, id);
  if (!rec) return std::move(rec).error();
  campaign_summary s;
  s.campaign = std::move(*rec);
  if (s.campaign.import_rejected() > 0) {
    auto first = rejected_rows(id, 0, campaign_summary::summary_rejected_rows);
    if (!first) return std::move(first).error();
    s.first_rejected = std::move(*first);
  }
  try {
    pqxx::nontransaction tx(connection_);
    count_contact_states(tx, id, s.progress);
    for (const auto& r :
         tx.exec_params("SELECT coalesce(a.outcome, 'in_flight'), count(*) FROM " +
                            std::string(kCampaignAttempts) + " WHERE k.id = $1 GROUP BY 1 ORDER BY 2 DESC",
                        id.value())) {
      s.outcomes.push_back({r[0].as<std::string>(), r[1].as<std::int64_t>()});
      s.progress.attempts += r[1].as<std::int64_t>();
      if (r[0].as<std::string>() == "completed") s.progress.answered = r[1].as<std::int64_t>();
    }
    for (const auto& r : tx.exec_params(
             "SELECT n.id, n.e164, n.max_concurrent_calls, count(a.id), count(a.id) FILTER (WHERE a.outcome IS NULL) "
             "FROM " +
                 std::string(kCampaignAttempts) +
                 " JOIN numbers n ON n.id = a.number_id WHERE k.id = $1 GROUP BY n.id ORDER BY n.e164",
             id.value()))
      s.numbers.push_back({number_id{r[0].as<std::int64_t>()}, r[1].as<std::string>(),
                           r[2].as<std::int32_t>(), r[3].as<std::int64_t>(), r[4].as<std::int64_t>()});
    // Peaks: a sweep over each number's call intervals (+1 at a start, -1 at an end; at one instant ends
    // count first, so back-to-back calls do not overlap). A call still without an end counts until now.
    const std::string intervals = "WITH " + std::string(kCallIntervals);
    for (const auto& r : tx.exec_params(
             intervals +
                 ", events AS (SELECT number_id, s AS at, 1 AS d FROM iv UNION ALL "
                 "SELECT number_id, e, -1 FROM iv) "
                 "SELECT number_id, max(running) FROM (SELECT number_id, sum(d) OVER (PARTITION BY number_id "
                 "ORDER BY at, d ROWS UNBOUNDED PRECEDING) AS running FROM events) sweep GROUP BY number_id",
             id.value())) {
      for (auto& n : s.numbers)
        if (n.id.value() == r[0].as<std::int64_t>()) n.peak_in_flight = r[1].as<std::int64_t>();
    }
    s.duration_s =
        tx.exec_params1(intervals +
                            " SELECT coalesce(extract(epoch FROM coalesce(c.finished_at, "
                            "(SELECT max(e) FROM iv)) - coalesce(c.started_at, (SELECT min(s) FROM iv))), "
                            "0)::float8 FROM campaigns c WHERE c.id = $1",
                        id.value())[0]
            .as<double>();
    auto totals = tx.exec_params1(
        "SELECT (coalesce(sum(a.cost), 0) * 1000000)::bigint, coalesce(sum(a.billable_ms), 0) / 60000.0 "
        "FROM " +
            std::string(kCampaignAttempts) + " WHERE k.id = $1",
        id.value());
    s.cost = totals[0].as<std::int64_t>();
    s.talk_minutes = totals[1].as<double>();
    return s;
  } catch (...) {
    return current_exception_error("summarising campaign");
  }
}

result<campaign_record> pg_campaign_repository::load(campaign_id id) {
  return load_campaign_record(connection_, account_, id);
}

result<campaign_state> pg_campaign_repository::transition(campaign_id id,
                                                          std::span<const campaign_state> from,
                                                          campaign_state to) {
  return transition_campaign(connection_, account_, id, from, to);
}

result<std::int64_t> pg_campaign_repository::cancel_waiting(campaign_id id) {
  try {
    pqxx::work tx(connection_);
    if (tx.exec_params("SELECT 1 FROM campaigns WHERE account_id = $1 AND id = $2", account_.value(),
                       id.value())
            .empty())
      return make_error(errc::not_found, "campaign {} does not exist", id.value());
    const auto n = cancel_waiting_contacts(tx, id);
    tx.commit();
    return n;
  } catch (...) {
    return current_exception_error("cancelling waiting contacts");
  }
}

result<contact_page> pg_campaign_repository::contact_results(campaign_id id, std::optional<contact_id> after,
                                                             int limit) {
  try {
    pqxx::nontransaction tx(connection_);
    contact_page page;
    const int n = std::clamp(limit, 1, 10000);
    // One range scan of the primary key from `after`: the campaign's contacts are a range of ids.
    const auto rows = tx.exec_params(
        std::string("SELECT c.id, c.row_number, c.e164, c.state, c.pending_reason, c.attempts, "
                    "coalesce(c.outcome, ''), "
                    "  CASE WHEN c.state = 'pending' AND c.next_attempt_at > '-infinity' "
                    "    THEN (extract(epoch FROM c.next_attempt_at) * 1e6)::bigint END "
                    "FROM ") +
            kCampaignContacts + " WHERE k.id = $1 AND k.account_id = $2 AND c.id > $3 ORDER BY c.id LIMIT $4",
        id.value(), account_.value(), after ? after->value() : std::int64_t{0}, n + 1);
    for (const auto& r : rows) {
      if (static_cast<int>(page.contacts.size()) == n) {
        page.next_after = page.contacts.back().id;
        break;
      }
      contact_result c;
      c.id = contact_id{r[0].as<std::int64_t>()};
      c.row = r[1].as<int>();
      c.e164 = r[2].as<std::string>();
      c.state = r[3].as<std::string>();
      c.reason = r[4].as<std::string>();
      c.attempts = r[5].as<int>();
      c.outcome = r[6].as<std::string>();
      if (!r[7].is_null()) c.next_attempt_at = timestamp{std::chrono::microseconds(r[7].as<std::int64_t>())};
      page.contacts.push_back(std::move(c));
    }
    return page;
  } catch (...) {
    return current_exception_error("reading contact results");
  }
}

result<std::vector<rejected_row>> pg_campaign_repository::rejected_rows(campaign_id id, std::int64_t after,
                                                                        int limit) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<rejected_row> out;
    const auto rows = tx.exec_params(
        "SELECT r.row_number, r.reason, r.input FROM import_rejections r JOIN campaigns k ON k.id = "
        "r.campaign_id "
        "WHERE r.campaign_id = $1 AND k.account_id = $2 AND r.row_number > $3 ORDER BY r.row_number LIMIT $4",
        id.value(), account_.value(), after, std::clamp(limit, 1, 10000));
    out.reserve(rows.size());
    for (const auto& r : rows)
      out.push_back({r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<std::string>()});
    return out;
  } catch (...) {
    return current_exception_error("reading the rejected rows");
  }
}

result<micros> pg_campaign_repository::call_minute_rate() {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec("SELECT (per_minute * 1000000)::bigint FROM call_rates WHERE item = 'call_minutes'");
    if (rows.empty()) return micros{0};
    return rows[0][0].as<micros>();
  } catch (...) {
    return current_exception_error("reading the call-minute rate");
  }
}

namespace {
constexpr const char* kAttemptColumns =
    "a.id, a.caller_id, coalesce(a.outcome, 'unknown'), a.billable_ms, coalesce(a.carrier_call_id, ''), "
    "coalesce((SELECT e164 FROM contacts WHERE id = a.contact_id), ''), a.campaign_id, a.attempt_no, "
    "(extract(epoch FROM a.started_at) * 1000000)::bigint, (extract(epoch FROM a.answered_at) * 1000000)::bigint, "
    "(extract(epoch FROM a.ended_at) * 1000000)::bigint ";

attempt_report read_attempt(const pqxx::row& r) {
  const auto at = [&](int i) {
    return r[i].is_null() ? std::optional<timestamp>{} : std::optional<timestamp>{from_micros(r[i].as<std::int64_t>())};
  };
  return attempt_report{r[0].as<std::int64_t>(), r[1].as<std::string>(), r[5].as<std::string>(),
                        r[2].as<std::string>(),  r[3].as<std::int64_t>(), r[4].as<std::string>(),
                        campaign_id{r[6].as<std::int64_t>()}, r[7].as<int>(), at(8), at(9), at(10)};
}
}  // namespace

result<std::optional<attempt_report>> pg_campaign_repository::last_attempt(campaign_id id) {
  try {
    pqxx::nontransaction tx(connection_);
    auto rows = tx.exec_params(std::string("SELECT ") + kAttemptColumns + "FROM " + kCampaignAttempts +
                                   " WHERE k.id = $1 AND k.account_id = $2 ORDER BY a.id DESC LIMIT 1",
                               id.value(), account_.value());
    if (rows.empty()) return std::optional<attempt_report>{};
    return std::optional<attempt_report>{read_attempt(rows[0])};
  } catch (...) {
    return current_exception_error("reading the campaign's last attempt");
  }
}

result<std::vector<attempt_report>> pg_campaign_repository::attempts(campaign_id id, std::int64_t after, int limit) {
  try {
    pqxx::nontransaction tx(connection_);
    std::vector<attempt_report> out;
    for (const auto& r : tx.exec_params(std::string("SELECT ") + kAttemptColumns + "FROM " + kCampaignAttempts +
                                            " WHERE k.id = $1 AND k.account_id = $2 AND a.id > $3 ORDER BY a.id "
                                            "LIMIT $4",
                                        id.value(), account_.value(), after, limit))
      out.push_back(read_attempt(r));
    return out;
  } catch (...) {
    return current_exception_error("listing the campaign's attempts");
  }
}

}  // namespace dialer::pg
