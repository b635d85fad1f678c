// Contact blocks on real PostgreSQL, through the engine's ports (adapters/postgres: pg_contact_claims,
// pg_attempt_journal, pg_slot_leases, pg_engine_registry): the import's id ranges, claims by several engines,
// leases that lapse, recovery of a lost block's attempts, write-back guards, counters and cancellation. Each
// test has its own database; an "engine" is a set of those ports on their own connections, with one engine
// id.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "adapters/postgres/campaign_rows.hpp"
#include "adapters/postgres/migrations.hpp"
#include "adapters/postgres/pg_attempt_journal.hpp"
#include "adapters/postgres/pg_campaign_repository.hpp"
#include "adapters/postgres/pg_contact_claims.hpp"
#include "adapters/postgres/pg_engine_registry.hpp"
#include "adapters/postgres/pg_slot_leases.hpp"
#include "engine/contacts/synthetic.hpp"
#include "tests/integration/support.hpp"

namespace dialer::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

constexpr milliseconds kLease{60'000};
constexpr milliseconds kLapsed{-1'000};  // a lease that has run out already: the block is anyone's to take
constexpr std::int32_t kBlock = 256;  // the block size of every campaign of up to 4096 contacts
constexpr milliseconds kQuiet{1'010};    // how long a slot another engine let go cools (the engine's figure)

// One write-back of one campaign, as the tests write them (the journal takes batches that mix campaigns).
struct one_campaign_batch {
  std::span<const attempt_outcome> outcomes = {};
  std::span<const contact_return> returns = {};
  std::span<const contact_final> finals = {};
  std::span<const accepted_call> accepted = {};
  std::span<const std::int64_t> release = {};
};

// An engine as these tests drive it: its four ports, each on a connection of its own, under one engine id,
// with calls shaped for one campaign at a time.
class engine_ports_on_pg {
 public:
  engine_ports_on_pg(const std::string& url, const std::string& engine_id)
      : claims_(pg::pg_link(url), engine_id),
        journal_(pg::pg_link(url), engine_id),
        leases_(pg::pg_link(url), engine_id),
        registry_(pg::pg_link(url), engine_id) {}

  result<claim_batch> claim(campaign_id id, int max, milliseconds lease) {
    const claim_request r[] = {{id, max}};
    auto all = claims_.claim(r, lease);
    if (!all) return std::move(all).error();
    return std::move(all->at(0));
  }
  result<campaign_progress> progress(campaign_id id) { return claims_.progress(id); }
  result<std::int64_t> cancel_pending(campaign_id id) { return claims_.cancel_pending(id); }
  result<std::int64_t> cancel_orphaned() { return claims_.cancel_orphaned(); }
  // The engine's registration and the leases of the blocks it tracks, as the lease stage renews them.
  result<void> heartbeat(campaign_id id, milliseconds lease, std::span<const std::int64_t> blocks) {
    if (auto r = registry_.heartbeat(lease); !r) return r;
    const held_blocks held[] = {{id, blocks}};
    return claims_.renew(held, lease);
  }
  result<void> record_attempts(campaign_id id, std::span<attempt_to_record> attempts,
                               const std::string& carrier) {
    for (auto& a : attempts) {
      a.campaign = id;
      a.carrier = carrier;
    }
    return journal_.record(attempts);
  }
  result<void> write_back(campaign_id id, const one_campaign_batch& b) {
    std::vector<attempt_outcome> outcomes(b.outcomes.begin(), b.outcomes.end());
    std::vector<contact_return> returns(b.returns.begin(), b.returns.end());
    std::vector<contact_final> finals(b.finals.begin(), b.finals.end());
    std::vector<block_ref> release;
    for (auto& o : outcomes) o.campaign = id;
    for (auto& r : returns) r.campaign = id;
    for (auto& f : finals) f.campaign = id;
    for (auto first : b.release) release.push_back({id, first});
    return journal_.write_back({outcomes, returns, finals, b.accepted, release});
  }
  result<std::vector<slot_lease>> lease_slots(agent_id agent, std::span<const number_id> numbers,
                                              std::span<const int> in_use, milliseconds lease,
                                              milliseconds quiet) {
    std::vector<number_lease_request> requests;
    for (std::size_t i = 0; i < numbers.size(); ++i) requests.push_back({numbers[i], agent, in_use[i], true});
    return leases_.lease_numbers(requests, lease, quiet);
  }
  result<slot_lease> lease_trunk_channels(const std::string& identity, int max, int in_use, bool wanted,
                                          milliseconds lease) {
    const channel_lease_request r[] = {{identity, max, in_use, wanted}};
    auto all = leases_.lease_channels(r, lease);
    if (!all) return std::move(all).error();
    return all->at(0);
  }
  result<slot_lease> lease_campaign_slots(campaign_id id, int max, int in_use, milliseconds lease) {
    const campaign_lease_request r[] = {{id, max, in_use, true}};
    auto all = leases_.lease_campaigns(r, lease);
    if (!all) return std::move(all).error();
    return all->at(0);
  }
  // A clean exit: the slots go, then the registration.
  result<void> release_engine() {
    if (auto r = leases_.release_all(); !r) return r;
    return registry_.deregister();
  }

 private:
  pg::pg_contact_claims claims_;
  pg::pg_attempt_journal journal_;
  pg::pg_slot_leases leases_;
  pg::pg_engine_registry registry_;
};

class BlockClaims : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    url_ = fresh_database(name);
    dir_ = make_temp_dir(name);
    c_ = connect_to(url_);
    pqxx::work tx(*c_);
    agent_ = agent_id{tx.exec1("INSERT INTO agents (account_id, name) VALUES (1, 'blocks') RETURNING id")[0]
                          .as<std::int64_t>()};
    tx.commit();
    number_ = add_number("+14155550100", 50);
  }
  // A managed number of the agent with `max_concurrent` slots.
  number_id add_number(const std::string& e164, int max_concurrent) {
    pqxx::work tx(*c_);
    const auto id = tx.exec_params1(
                          "INSERT INTO numbers (account_id, e164, country, type, kind, provider, agent_id, "
                          "assigned_at, max_concurrent_calls) VALUES (1, $1, 'US', 'local', 'managed', "
                          "'simulated', $2, now(), $3) RETURNING id",
                          e164, agent_.value(), max_concurrent)[0]
                        .as<std::int64_t>();
    tx.commit();
    return number_id{id};
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A campaign of the agent with `contacts` imported (all valid, distinct).
  campaign_id campaign(const std::string& name, std::uint64_t contacts, std::uint64_t seed = 7) {
    campaign_spec spec;
    spec.name = name;
    spec.agent = "blocks";
    const auto csv = dir_ / (name + ".csv");
    contacts::synthetic_options clean;
    clean.duplicate_fraction = clean.invalid_fraction = clean.missing_fraction = 0;
    clean.international_fraction = clean.bad_timezone_fraction = 0;
    EXPECT_TRUE(contacts::write_synthetic_contacts(csv.string(), contacts, seed, "US", clean));
    auto conn = connect_to(url_);
    pg::pg_campaign_repository campaigns(*conn, account_id{1}, url_);
    auto created = campaigns.create_with_contacts(spec, agent_, {}, contacts_source{csv, std::nullopt, "US"});
    EXPECT_TRUE(created) << created.error().message;
    EXPECT_EQ(created->import.summary.accepted, contacts);
    // Running: attempts are recorded only while the campaign runs.
    pqxx::work tx(*conn);
    tx.exec_params0("UPDATE campaigns SET state = 'running' WHERE id = $1", created->id.value());
    tx.commit();
    return created->id;
  }
  // An engine: its own connection and id, holding slot leases on the number (attempts are recorded only on a
  // number whose slots the engine leases).
  std::unique_ptr<engine_ports_on_pg> engine(const std::string& name) {
    auto e = std::make_unique<engine_ports_on_pg>(url_, name);
    const number_id numbers[] = {number_};
    const int in_use[] = {0};
    auto leased = e->lease_slots(agent_, numbers, in_use, kLease, kQuiet);
    EXPECT_TRUE(leased) << leased.error().message;
    return e;
  }
  attempt_to_record rec(contact_id contact, int attempt_no) const {
    attempt_to_record a;
    a.contact = contact;
    a.attempt_no = attempt_no;
    a.number = number_;
    a.caller_id = "+14155550100";
    return a;
  }
  contact_blocks layout(campaign_id id) {
    auto rec = pg::load_campaign_record(*c_, account_id{1}, id);
    EXPECT_TRUE(rec) << rec.error().message;
    return rec->blocks;
  }
  std::int64_t scalar(const std::string& sql) {
    pqxx::nontransaction tx(*c_);
    auto r = tx.exec1(sql);
    return r[0].is_null() ? 0 : r[0].as<std::int64_t>();
  }
  // Claims with `store` until a claim brings nothing; returns every contact id it got.
  static std::vector<std::int64_t> drain(engine_ports_on_pg& store, campaign_id id,
                                         std::vector<std::int64_t>& blocks) {
    std::vector<std::int64_t> got;
    while (true) {
      auto batch = store.claim(id, 1024, kLease);  // whole blocks (of kBlock here)
      EXPECT_TRUE(batch) << batch.error().message;
      if (!batch || batch->blocks.empty()) return got;
      for (const auto& b : batch->blocks) blocks.push_back(b.first);
      for (const auto& c : batch->contacts) got.push_back(c.id.value());
    }
  }
  static attempt_outcome outcome_of(const attempt_to_record& a, call_outcome o, rules::contact_state next) {
    attempt_outcome out;
    out.attempt = a.id;
    out.contact = a.contact;
    out.attempt_no = a.attempt_no;
    out.number = a.number;
    out.event.attempt = a.id;
    out.event.outcome = o;
    out.event.started_at = out.event.ended_at = std::chrono::system_clock::now();
    out.next_state = next;
    return out;
  }

  std::string url_;
  fs::path dir_;
  std::unique_ptr<pqxx::connection> c_;
  agent_id agent_;
  number_id number_;
};

TEST_F(BlockClaims, ImportGivesACampaignOneRangeOfConsecutiveIdsCutIntoBlocks) {
  const auto id = campaign("range", 1000);
  const auto b = layout(id);
  EXPECT_EQ(b.last - b.first + 1, 1000);
  EXPECT_EQ(b.size, block_size_for(1000));
  EXPECT_EQ(b.size, kBlock) << "about a sixteenth of the campaign, at least 256";
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE campaign_id = " + std::to_string(id.value()) +
                   " AND id BETWEEN " + std::to_string(b.first) + " AND " + std::to_string(b.last)),
            1000);
  // The blocks tile the range exactly, each counting its contacts as pending.
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks"), (1000 + 255) / 256);
  EXPECT_EQ(scalar("SELECT sum(last_id - first_id + 1) FROM contact_blocks"), 1000);
  EXPECT_EQ(scalar("SELECT sum(pending) FROM contact_blocks"), 1000);
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks WHERE (first_id - " + std::to_string(b.first) +
                   ") % 256 <> 0"),
            0);
}

// Rejected rows are stored as rows (not held in memory or in one value), each with its reason and its phone
// field as written, byte for byte through COPY's escapes; the campaign keeps their count by reason; paging by
// row returns each once.
TEST_F(BlockClaims, AnImportStoresEveryRejectedRowWithItsReasonAndInput) {
  std::string csv = "phone,note\n+12025550143,ok\n";
  std::vector<std::string> written;
  for (int i = 0; i < 3000; ++i) {  // rows 2..3001: more than one COPY batch's worth of rejections
    written.push_back(fmt::format("bad\\{}\tx", i));  // a backslash and a tab, which COPY must escape
    csv += "\"" + written.back() + "\",n\n";
  }
  csv += "+12025550143,again\n";  // row 3002: a duplicate
  campaign_spec spec;
  spec.name = "rejections";
  spec.agent = "blocks";
  pg::pg_campaign_repository campaigns(*c_, account_id{1}, url_);
  auto created = campaigns.create_with_contacts(spec, agent_, {}, contacts_source{{}, csv, "US"});
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->import.summary.accepted, 1u);
  EXPECT_EQ(created->import.summary.rejected, 3001u);

  auto rec = campaigns.load(created->id);
  ASSERT_TRUE(rec) << rec.error().message;
  const std::vector<std::pair<std::string, std::int64_t>> by_reason{{"invalid_number", 3000},
                                                                    {"duplicate", 1}};
  EXPECT_EQ(rec->import_rejected_by_reason, by_reason);
  EXPECT_EQ(rec->import_rejected(), 3001);

  std::vector<rejected_row> all;
  std::int64_t after = 0;
  while (true) {
    auto page = campaigns.rejected_rows(created->id, after, 700);
    ASSERT_TRUE(page) << page.error().message;
    if (page->empty()) break;
    all.insert(all.end(), page->begin(), page->end());
    after = page->back().row;
  }
  ASSERT_EQ(all.size(), 3001u);
  for (std::size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ(all[i].row, static_cast<std::int64_t>(i) + 2);
    EXPECT_EQ(all[i].reason, "invalid_number");
    EXPECT_EQ(all[i].input, written[i]);
  }
  EXPECT_EQ(all.back().row, 3002);
  EXPECT_EQ(all.back().reason, "duplicate");
  EXPECT_EQ(all.back().input, "+12025550143");
}

TEST_F(BlockClaims, ConcurrentImportsOfTwoCampaignsTakeDisjointRanges) {
  campaign_id one, two;
  std::thread a([&] { one = campaign("one", 3000, 1); });
  std::thread b([&] { two = campaign("two", 3000, 2); });
  a.join();
  b.join();
  const auto r1 = layout(one), r2 = layout(two);
  EXPECT_TRUE(r1.last < r2.first || r2.last < r1.first)
      << r1.first << ".." << r1.last << " and " << r2.first << ".." << r2.last;
  for (const auto& [c, r] : {std::pair{one, r1}, std::pair{two, r2}})
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE campaign_id = " + std::to_string(c.value()) +
                     " AND id BETWEEN " + std::to_string(r.first) + " AND " + std::to_string(r.last)),
              3000);
}

TEST_F(BlockClaims, TwoEnginesNeverClaimTheSameContact) {
  const auto id = campaign("shared", 2000);
  auto a = engine("engine-a");
  auto b = engine("engine-b");
  std::vector<std::int64_t> blocks_a, blocks_b, got_a, got_b;
  std::thread ta([&] { got_a = drain(*a, id, blocks_a); });
  std::thread tb([&] { got_b = drain(*b, id, blocks_b); });
  ta.join();
  tb.join();
  std::set<std::int64_t> all(got_a.begin(), got_a.end());
  for (auto c : got_b) EXPECT_TRUE(all.insert(c).second) << "contact " << c << " was claimed by both engines";
  EXPECT_EQ(all.size(), 2000u);
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks WHERE claimed_by = 'engine-a'"),
            static_cast<std::int64_t>(blocks_a.size()));
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks WHERE claimed_by = 'engine-b'"),
            static_cast<std::int64_t>(blocks_b.size()));
}

TEST_F(BlockClaims, AClaimNeverReturnsMoreThanAskedAndTheRestOfTheBlockWaits) {
  const auto id = campaign("partial", kBlock + 96);  // blocks of kBlock
  auto a = engine("engine-a");
  auto batch = a->claim(id, 10, kLease);
  ASSERT_TRUE(batch) << batch.error().message;
  ASSERT_EQ(batch->blocks.size(), 1u);
  EXPECT_EQ(batch->contacts.size(), 10u);
  // Released with 10 written back and the rest never taken: all are due again at once.
  std::vector<contact_return> back;
  for (const auto& c : batch->contacts)
    back.push_back({{}, c.id, c.attempts, std::chrono::system_clock::now(), "paused", {}});
  const std::int64_t release[] = {batch->blocks[0].first};
  ASSERT_TRUE(a->write_back(id, {.returns = back, .release = release}));
  auto again = a->claim(id, 2 * kBlock, kLease);
  ASSERT_TRUE(again);
  std::size_t from_first = 0;
  for (const auto& c : again->contacts)
    if (c.id.value() <= batch->blocks[0].last) ++from_first;
  EXPECT_EQ(from_first, static_cast<std::size_t>(kBlock));
}

TEST_F(BlockClaims, ALapsedBlockIsRecoveredAndItsOpenAttemptsAreReconciledNotRedialed) {
  const auto id = campaign("recover", 16);  // one block
  auto a = engine("engine-a");
  auto b = engine("engine-b");
  auto first = a->claim(id, 100, kLapsed);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->contacts.size(), 16u);
  EXPECT_FALSE(first->blocks[0].recovered);
  // Engine a records three attempts, then loses its lease before any outcome.
  std::vector<attempt_to_record> placed;
  for (int i = 0; i < 3; ++i) placed.push_back(rec(first->contacts[i].id, 1));
  ASSERT_TRUE(a->record_attempts(id, placed, "simulated"));
  for (const auto& p : placed) ASSERT_TRUE(p.id) << "engine a still held the block";

  auto taken = b->claim(id, 100, kLease);
  ASSERT_TRUE(taken) << taken.error().message;
  ASSERT_EQ(taken->blocks.size(), 1u);
  EXPECT_TRUE(taken->blocks[0].recovered);
  ASSERT_EQ(taken->open.size(), 3u);
  std::set<std::int64_t> open_contacts;
  for (const auto& o : taken->open) {
    open_contacts.insert(o.contact.value());
    EXPECT_EQ(o.attempt, attempt_of(o.contact, 1));
    EXPECT_FALSE(o.stored.has_value());
  }
  EXPECT_EQ(taken->contacts.size(), 13u);
  for (const auto& c : taken->contacts)
    EXPECT_FALSE(open_contacts.contains(c.id.value())) << "would be redialed";

  // Engine a, cut off, tries to dial another contact of the block: refused, not recorded.
  std::vector<attempt_to_record> late{rec(first->contacts[5].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, late, "simulated"));
  EXPECT_FALSE(late[0].id);
  EXPECT_FALSE(late[0].recorded_before) << "not this engine's to reconcile either";
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts"), 3);

  // Engine a's real outcome arrives first: the attempt keeps it, but the contact is engine b's to write.
  const auto a_outcome = outcome_of(placed[0], call_outcome::completed, rules::contact_state::done);
  ASSERT_TRUE(a->write_back(id, {.outcomes = std::span(&a_outcome, 1)}));
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'completed'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'done'"), 0);
  // Engine b reconciles it as unknown: the outcome already written stays, the contact ends.
  const auto b_outcome = outcome_of(placed[0], call_outcome::unknown, rules::contact_state::done);
  ASSERT_TRUE(b->write_back(id, {.outcomes = std::span(&b_outcome, 1)}));
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'completed'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'unknown'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'done' AND attempts = 1"), 1);
}

TEST_F(BlockClaims, AnOutcomeStoredWithoutItsContactIsSettledFromTheStoredOutcome) {
  const auto id = campaign("stored", 16);
  auto a = engine("engine-a");
  auto b = engine("engine-b");
  auto first = a->claim(id, 100, kLapsed);
  ASSERT_TRUE(first);
  std::vector<attempt_to_record> placed{rec(first->contacts[0].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, placed, "simulated"));
  auto taken = b->claim(id, 100, kLease);  // b takes the lapsed block
  ASSERT_TRUE(taken);
  // a's outcome lands after the block changed hands: stored on the attempt, contact untouched.
  const auto busy = outcome_of(placed[0], call_outcome::busy, rules::contact_state::pending);
  ASSERT_TRUE(a->write_back(id, {.outcomes = std::span(&busy, 1)}));
  // The next engine to recover the block (b lets its lease lapse) finds the stored outcome.
  std::vector<contact_return> back;
  for (const auto& c : taken->contacts)
    back.push_back({{}, c.id, c.attempts, std::chrono::system_clock::now(), "paused", {}});
  ASSERT_TRUE(b->write_back(id, {.returns = back}));
  {
    pqxx::work tx(*c_);
    tx.exec0(
        "UPDATE contact_blocks SET lease_until = now() - interval '1 second'");  // b dies: its lease runs out
    tx.commit();
  }
  auto again = a->claim(id, 100, kLease);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->open.size(), 1u);
  ASSERT_TRUE(again->open[0].stored.has_value());
  EXPECT_EQ(again->open[0].stored->outcome, call_outcome::busy);
}

TEST_F(BlockClaims, ReleaseRecomputesTheCountersThatProgressSums) {
  const auto id = campaign("counters", 2 * kBlock);  // two blocks of kBlock
  auto a = engine("engine-a");
  auto batch = a->claim(id, kBlock, kLease);
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->contacts.size(), static_cast<std::size_t>(kBlock));
  auto p = a->progress(id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->total, 2 * kBlock);
  EXPECT_EQ(p->in_progress, kBlock);
  EXPECT_EQ(p->pending, kBlock);

  std::vector<attempt_to_record> placed;
  for (int i = 0; i < 10; ++i) placed.push_back(rec(batch->contacts[i].id, 1));
  ASSERT_TRUE(a->record_attempts(id, placed, "simulated"));
  std::vector<attempt_outcome> outcomes;
  for (int i = 0; i < 8; ++i)
    outcomes.push_back(outcome_of(placed[i], call_outcome::completed, rules::contact_state::done));
  const auto later = std::chrono::system_clock::now() + 1h;
  for (int i = 8; i < 10; ++i) {
    auto o = outcome_of(placed[i], call_outcome::busy, rules::contact_state::pending);
    o.next_attempt_at = later;
    o.pending_reason = "retry";
    outcomes.push_back(o);
  }
  std::vector<contact_final> finals;
  for (int i = 10; i < 13; ++i)
    finals.push_back({{}, batch->contacts[i].id, 0, rules::contact_state::do_not_call, "do_not_call"});
  std::vector<contact_return> back;
  for (int i = 13; i < kBlock; ++i) back.push_back({{}, batch->contacts[i].id, 0, later, "outside_window", {}});
  const std::int64_t release[] = {batch->blocks[0].first};
  ASSERT_TRUE(
      a->write_back(id, {.outcomes = outcomes, .returns = back, .finals = finals, .release = release}));

  p = a->progress(id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->in_progress, 0);
  EXPECT_EQ(p->done, 8);
  EXPECT_EQ(p->do_not_call, 3);
  EXPECT_EQ(p->pending, kBlock + 2 + (kBlock - 13));  // the other block, two retries, the rest handed back
  EXPECT_EQ(p->total, 2 * kBlock);
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL"), 0);
  // The released block is due only when its earliest waiting contact is: the next claim takes the other
  // block.
  auto next = a->claim(id, 100, kLease);
  ASSERT_TRUE(next);
  ASSERT_EQ(next->blocks.size(), 1u);
  EXPECT_NE(next->blocks[0].first, batch->blocks[0].first);
  auto none = a->claim(id, 100, kLease);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->blocks.empty());
}

TEST_F(BlockClaims, CancelLeavesTheBlocksAnEngineHoldsToThatEngine) {
  const auto id = campaign("cancel", 2 * kBlock);
  auto a = engine("engine-a");
  auto held = a->claim(id, kBlock, kLease);
  ASSERT_TRUE(held);
  ASSERT_EQ(held->contacts.size(), static_cast<std::size_t>(kBlock));
  auto other = engine("engine-b");
  auto n = other->cancel_pending(id);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, kBlock);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'cancelled'"), kBlock);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'pending' AND id BETWEEN " +
                   std::to_string(held->blocks[0].first) + " AND " + std::to_string(held->blocks[0].last)),
            kBlock);
  auto p = other->progress(id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->cancelled, kBlock);
  EXPECT_EQ(p->in_progress, kBlock);
  EXPECT_EQ(p->pending, 0);
}

// Cancel is final when the engine holding a block dies just after the cancel: the cancel leaves its block
// (its lease is live), nobody runs a cancelled campaign, and once the lease lapses any engine's sweep ends
// its contacts.
TEST_F(BlockClaims, ABlockWhoseLeaseLapsesAfterTheCancelIsEndedByAnyEnginesSweep) {
  const auto id = campaign("cancel-then-die", 2 * kBlock);
  auto a = engine("engine-a");
  auto held = a->claim(id, kBlock, kLease);  // one of its two blocks
  ASSERT_TRUE(held);
  ASSERT_EQ(held->contacts.size(), static_cast<std::size_t>(kBlock));
  {
    pqxx::work tx(*c_);
    tx.exec_params0("UPDATE campaigns SET state = 'cancelled', finished_at = now() WHERE id = $1",
                    id.value());
    tx.commit();
  }
  auto other = engine("engine-b");
  auto now_cancelled = other->cancel_pending(id);  // what `dialer campaigns cancel` does
  ASSERT_TRUE(now_cancelled) << now_cancelled.error().message;
  EXPECT_EQ(*now_cancelled, kBlock) << "the block nobody held";
  auto early = other->cancel_orphaned();
  ASSERT_TRUE(early) << early.error().message;
  EXPECT_EQ(*early, 0) << "engine-a's lease is live: its block is still its own";
  {
    pqxx::work tx(*c_);  // engine-a dies; its lease runs out
    tx.exec0(
        "UPDATE contact_blocks SET lease_until = now() - interval '1 second' WHERE claimed_by = 'engine-a'");
    tx.commit();
  }
  auto swept = other->cancel_orphaned();
  ASSERT_TRUE(swept) << swept.error().message;
  EXPECT_EQ(*swept, kBlock);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'pending'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL"), 0);
}

// Cancel is final: a dead engine's block, with attempts it recorded and never wrote back, ends with every
// contact terminal; the unresolved attempt is settled `unknown` (never redialed), a stored outcome is kept.
TEST_F(BlockClaims, CancelEndsADeadEnginesBlockWithEveryContactTerminal) {
  const auto id = campaign("cancel-dead", 16);
  auto a = engine("engine-a");
  auto held = a->claim(id, 16, milliseconds{50});  // a lease that lapses at once: engine-a "dies"
  ASSERT_TRUE(held);
  std::vector<attempt_to_record> placed{rec(held->contacts[0].id, 1), rec(held->contacts[1].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, placed, "simulated"));
  ASSERT_TRUE(placed[0].id && placed[1].id);
  // The second call's outcome was stored, its contact not written back.
  {
    pqxx::work tx(*c_);
    tx.exec_params0(
        "UPDATE call_attempts SET outcome = 'busy', started_at = now(), ended_at = now() WHERE id = $1",
        placed[1].id.value());
    (void)tx.exec("SELECT pg_sleep(0.1)");  // the 50 ms lease lapses (server time)
    tx.commit();
  }
  {
    pqxx::work tx(*c_);
    tx.exec_params0("UPDATE campaigns SET state = 'cancelled' WHERE id = $1", id.value());
    tx.commit();
  }
  auto other = engine("engine-b");
  auto n = other->cancel_pending(id);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 16);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state <> 'cancelled'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE outcome IS NULL"), 0);
  EXPECT_EQ(scalar(fmt::format("SELECT count(*) FROM call_attempts WHERE id = {} AND outcome = 'unknown'",
                               placed[0].id.value())),
            1);
  EXPECT_EQ(scalar(fmt::format("SELECT count(*) FROM call_attempts WHERE id = {} AND outcome = 'busy'",
                               placed[1].id.value())),
            1);
  // The contacts' counters agree with their attempt rows, and the block is nobody's.
  EXPECT_EQ(
      scalar("SELECT count(*) FROM contacts c WHERE c.attempts <> (SELECT count(*) FROM call_attempts a "
             "WHERE a.contact_id = c.id)"),
      0);
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL"), 0);
}

TEST_F(BlockClaims, AnAttemptIsNeverRecordedTwice) {
  const auto id = campaign("twice", 16);
  auto a = engine("engine-a");
  auto batch = a->claim(id, 100, kLease);
  ASSERT_TRUE(batch);
  std::vector<attempt_to_record> once{rec(batch->contacts[0].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, once, "simulated"));
  ASSERT_TRUE(once[0].id);
  // The carrier took it: it has a call id now.
  const accepted_call placed[] = {{once[0].id, "CA0001"}};
  ASSERT_TRUE(a->write_back(id, {.accepted = placed}));
  std::vector<attempt_to_record> again{rec(batch->contacts[0].id, 1), rec(batch->contacts[1].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, again, "simulated"));
  EXPECT_FALSE(again[0].id) << "the same attempt was handed out for dialing twice";
  EXPECT_TRUE(again[0].recorded_before);
  EXPECT_TRUE(again[1].id);
  EXPECT_FALSE(again[1].recorded_before);
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts"), 2);
}

TEST_F(BlockClaims, EachContactGetsItsOwnOutcomeWhenABatchMixesLostAndHeldBlocks) {
  const auto id = campaign("mixed", 2 * kBlock);  // two blocks of kBlock
  auto a = engine("engine-a");
  auto held = a->claim(id, kBlock, kLease);
  auto lost = a->claim(id, kBlock, kLapsed);
  ASSERT_TRUE(held && lost);
  ASSERT_EQ(held->contacts.size(), static_cast<std::size_t>(kBlock));
  ASSERT_EQ(lost->contacts.size(), static_cast<std::size_t>(kBlock));
  std::vector<attempt_to_record> placed{rec(lost->contacts[0].id, 1), rec(held->contacts[0].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, placed, "simulated"));
  ASSERT_TRUE(placed[0].id && placed[1].id);
  auto b = engine("engine-b");
  ASSERT_TRUE(b->claim(id, 100, kLease));  // takes the lapsed block
  const std::vector<attempt_outcome> outcomes{
      outcome_of(placed[0], call_outcome::busy, rules::contact_state::pending),
      outcome_of(placed[1], call_outcome::completed, rules::contact_state::done)};
  ASSERT_TRUE(a->write_back(id, {.outcomes = outcomes}));
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'done' AND outcome = 'completed' AND id = " +
                   std::to_string(held->contacts[0].id.value())),
            1);
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE outcome IS NOT NULL"), 1)
      << "the lost block's contact is b's";
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'busy'"), 1);
}

TEST_F(BlockClaims, AStaleWriteBackChangesNothing) {
  const auto id = campaign("stale", 16);
  auto a = engine("engine-a");
  auto batch = a->claim(id, 100, kLease);
  ASSERT_TRUE(batch);
  const auto c = batch->contacts[0];
  std::vector<attempt_to_record> placed{rec(c.id, 1)};
  ASSERT_TRUE(a->record_attempts(id, placed, "simulated"));
  const auto done = outcome_of(placed[0], call_outcome::completed, rules::contact_state::done);
  ASSERT_TRUE(a->write_back(id, {.outcomes = std::span(&done, 1)}));
  // An older copy of the contact (attempt counter 0) comes back late: a return, a final, the same outcome
  // again.
  const std::vector<contact_return> back{{{}, c.id, 0, std::chrono::system_clock::now(), "paused", {}}};
  const std::vector<contact_final> finals{{{}, c.id, 0, rules::contact_state::do_not_call, "do_not_call"}};
  ASSERT_TRUE(a->write_back(id, {.returns = back, .finals = finals}));
  auto busy = outcome_of(placed[0], call_outcome::busy, rules::contact_state::pending);
  ASSERT_TRUE(a->write_back(id, {.outcomes = std::span(&busy, 1)}));
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE id = " + std::to_string(c.id.value()) +
                   " AND state = 'done' AND attempts = 1 AND outcome = 'completed'"),
            1);
}

TEST_F(BlockClaims, TheHeartbeatRenewsOnlyTheBlocksTheEngineTracks) {
  const auto id = campaign("heartbeat", 2 * kBlock);  // two blocks of kBlock
  auto a = engine("engine-a");
  auto one = a->claim(id, kBlock, kLease);
  auto two = a->claim(id, kBlock, kLapsed);
  ASSERT_TRUE(one && two);
  ASSERT_EQ(one->blocks.size(), 1u);
  ASSERT_EQ(two->blocks.size(), 1u);
  ASSERT_NE(one->blocks[0].first, two->blocks[0].first);
  // Engine a knows only of the first claim (the answer to the second was lost on the way). Its lapsed lease,
  // past half its life, would be renewed if the heartbeat renewed every block the database says is a's.
  const std::int64_t tracked[] = {one->blocks[0].first};
  ASSERT_TRUE(a->heartbeat(id, kLease, tracked));
  EXPECT_EQ(scalar("SELECT count(*) FROM contact_blocks WHERE lease_until > now()"), 1);
  // The untracked block lapses and goes to whoever claims next, as recovered.
  auto b = engine("engine-b");
  auto taken = b->claim(id, 100, kLease);
  ASSERT_TRUE(taken);
  ASSERT_EQ(taken->blocks.size(), 1u);
  EXPECT_EQ(taken->blocks[0].first, two->blocks[0].first);
  EXPECT_TRUE(taken->blocks[0].recovered);
}

// A slot remembers when its holder let it go: released, it cools for `quiet` from then; taken over after its
// lease ran out, it cools from when the lease ran out (the dead holder stopped dialing before that).
TEST_F(BlockClaims, SlotsAnotherEngineJustLetGoCoolFromWhenTheyWereLetGo) {
  const number_id numbers[] = {number_};
  const int in_use[] = {0};
  const auto lease = [&](engine_ports_on_pg& e, milliseconds lease_for, milliseconds quiet) {
    auto l = e.lease_slots(agent_, numbers, in_use, lease_for, quiet);
    EXPECT_TRUE(l) << l.error().message;
    return l ? l->at(0) : slot_lease{};
  };
  auto a = std::make_unique<engine_ports_on_pg>(url_, "engine-a");
  const auto fresh = lease(*a, kLease, 60s);
  EXPECT_EQ(fresh.held, 50);
  EXPECT_EQ(fresh.cooling, 0) << "slots nobody ever held do not cool";
  ASSERT_TRUE(a->release_engine());

  auto b = std::make_unique<engine_ports_on_pg>(url_, "engine-b");
  const auto taken = lease(*b, kLapsed, 60s);  // b's own lease runs out at once
  EXPECT_EQ(taken.held, 50);
  EXPECT_EQ(taken.cooling, 50) << "a released them a moment ago";
  EXPECT_GT(taken.cooled_in, 55s);
  EXPECT_LE(taken.cooled_in, 60s);
  EXPECT_EQ(lease(*b, kLapsed, 0ms).cooling, 0) << "with no quiet period nothing cools";

  // b's lease ran out a second ago: c takes the slots over, cooling from then, not from now.
  auto c = std::make_unique<engine_ports_on_pg>(url_, "engine-c");
  const auto over = lease(*c, kLease, 60s);
  EXPECT_EQ(over.held, 50);
  EXPECT_EQ(over.cooling, 50);
  EXPECT_LE(over.cooled_in, 59s + 100ms) << "cooling counts from when b's lease ran out";
  EXPECT_EQ(scalar("SELECT count(*) FROM number_slots WHERE freed_at < now() - interval '900 milliseconds'"),
            50);
  EXPECT_EQ(lease(*c, kLease, 500ms).cooling, 0) << "freed a second ago: past a half-second quiet period";
}

// A number's slots are shared among the live engines that use it: an engine that dials another number only
// does not halve this one's share.
TEST_F(BlockClaims, ANumbersShareCountsOnlyTheEnginesThatUseIt) {
  const auto other = add_number("+14155550101", 10);
  const int in_use[] = {0};
  const auto lease = [&](engine_ports_on_pg& e, number_id n) {
    const number_id numbers[] = {n};
    auto l = e.lease_slots(agent_, numbers, in_use, kLease, kQuiet);
    EXPECT_TRUE(l) << l.error().message;
    return l ? l->at(0) : slot_lease{};
  };
  auto elsewhere = std::make_unique<engine_ports_on_pg>(url_, "engine-elsewhere");
  EXPECT_EQ(lease(*elsewhere, other).target, 10);
  auto a = std::make_unique<engine_ports_on_pg>(url_, "engine-a");
  const auto alone = lease(*a, number_);
  EXPECT_EQ(alone.target, 50) << "the engine on the other number does not count";
  EXPECT_EQ(alone.held, 50);
  auto b = std::make_unique<engine_ports_on_pg>(url_, "engine-b");
  EXPECT_EQ(lease(*b, number_).target, 25) << "two engines use it now";
  ASSERT_TRUE(b->release_engine());
  EXPECT_EQ(lease(*a, number_).target, 50) << "an engine that left no longer counts";
  EXPECT_EQ(scalar("SELECT count(*) FROM engine_numbers WHERE engine_id = 'engine-b'"), 0);
}

// A campaign's concurrency is leased like a number's slots: shared among the engines that run it, the sum of
// what they hold never above the cap, and a slot in use never released. The cap is the stored campaign's: the
// engines here each pass another (9, from a campaign file edited since), and the stored 5 holds.
TEST_F(BlockClaims, ACampaignsConcurrencyIsSharedAmongTheEnginesThatRunIt) {
  const auto id = campaign("shared-cap", 16);
  {
    pqxx::work tx(*c_);
    tx.exec_params0(
        "UPDATE campaigns SET settings = jsonb_set(settings, '{max_concurrency}', '5') WHERE id = $1",
        id.value());
    tx.commit();
  }
  auto a = std::make_unique<engine_ports_on_pg>(url_, "engine-a");
  auto b = std::make_unique<engine_ports_on_pg>(url_, "engine-b");
  const auto lease = [&](engine_ports_on_pg& e, int in_use) {
    auto l = e.lease_campaign_slots(id, 9, in_use, kLease);
    EXPECT_TRUE(l) << l.error().message;
    return l ? *l : slot_lease{};
  };
  const auto alone = lease(*a, 0);
  EXPECT_EQ(alone.max, 5) << "the stored cap, not the caller's";
  EXPECT_EQ(alone.held, 5) << "alone, a holds the whole cap";
  auto joined = lease(*b, 0);
  EXPECT_EQ(joined.target, 3);
  EXPECT_EQ(joined.held, 0) << "a holds every slot";
  auto busy = lease(*a, 5);
  EXPECT_EQ(busy.held, 5) << "five calls in flight: none of their slots goes";
  EXPECT_EQ(busy.target, 3);
  EXPECT_EQ(lease(*a, 1).held, 3) << "down to its share once its calls ended";
  EXPECT_EQ(lease(*b, 0).held, 2) << "b gets what a let go, and no more than the cap allows";
  EXPECT_EQ(scalar(fmt::format("SELECT sum(held) FROM campaign_shares WHERE campaign_id = {}", id.value())),
            5);
  ASSERT_TRUE(a->release_engine());
  EXPECT_EQ(lease(*b, 2).held, 5) << "a left: b runs the campaign alone";
}

// A SIP trunk's channels are leased the same way, by the trunk's identity: the engines that use it share them,
// what they hold together never above the smallest limit any of them declares, a channel in use never released,
// and an engine without work on the trunk keeps only its calls' channels.
TEST_F(BlockClaims, ATrunksChannelsAreSharedAmongTheEnginesThatUseIt) {
  const std::string trunk = "sip:192.0.2.10:5060";
  auto a = std::make_unique<engine_ports_on_pg>(url_, "engine-a");
  auto b = std::make_unique<engine_ports_on_pg>(url_, "engine-b");
  const auto lease = [&](engine_ports_on_pg& e, int max, int in_use, bool wanted = true) {
    auto l = e.lease_trunk_channels(trunk, max, in_use, wanted, kLease);
    EXPECT_TRUE(l) << l.error().message;
    return l ? *l : slot_lease{};
  };
  const auto held_together = [&] {
    return scalar("SELECT coalesce(sum(held), 0) FROM carrier_channel_shares WHERE identity = '" + trunk + "'");
  };
  EXPECT_EQ(lease(*a, 6, 0).held, 6) << "alone, a holds every channel";
  const auto joined = lease(*b, 6, 0);
  EXPECT_EQ(joined.target, 3);
  EXPECT_EQ(joined.held, 0) << "a holds every channel";
  EXPECT_EQ(lease(*a, 6, 6).held, 6) << "six calls up on a's side: none of their channels goes";
  EXPECT_EQ(lease(*a, 6, 2).held, 3) << "down to its share once its calls ended";
  EXPECT_EQ(lease(*b, 6, 0).held, 3) << "b gets what a let go";
  EXPECT_EQ(held_together(), 6);
  // b's settings say 4: the smallest limit holds for both, a keeps what its calls hold until they end.
  EXPECT_EQ(lease(*b, 4, 0).max, 4);
  EXPECT_EQ(lease(*a, 6, 3).held, 3);
  EXPECT_EQ(lease(*a, 6, 0).held, 2);
  EXPECT_LE(lease(*b, 4, 0).held, 2);
  EXPECT_LE(held_together(), 4);
  // An engine without work on the trunk leaves the share: the other one may hold the whole limit.
  EXPECT_EQ(lease(*a, 6, 1, false).held, 1) << "its one call keeps its channel";
  EXPECT_EQ(lease(*b, 4, 0).target, 4);
  EXPECT_EQ(lease(*a, 6, 0, false).held, 0);
  EXPECT_EQ(lease(*b, 4, 0).held, 4);
  EXPECT_EQ(scalar("SELECT count(*) FROM carrier_channel_shares WHERE engine_id = 'engine-a'"), 0)
      << "a gave its row back";
  ASSERT_TRUE(b->release_engine());
  EXPECT_EQ(lease(*a, 6, 0).held, 6) << "b left: a uses the trunk alone";
}

// A database of schema 2 with a campaign in flight (claimed contacts, attempts without outcome) comes through
// the upgrade with its contacts in blocks, attempts renumbered to their natural keys, and the claimed
// contacts reconciled, not redialed, by the next engine.
TEST(SchemaUpgrade, ACampaignInFlightUnderSchemaTwoIsRecoveredAfterTheUpgrade) {
  const auto url = fresh_database("schema_upgrade", 2);
  auto c = connect_to(url);
  {
    pqxx::work tx(*c);
    tx.exec0("INSERT INTO agents (account_id, name) VALUES (1, 'old')");
    tx.exec0(
        "INSERT INTO numbers (account_id, e164, country, type, kind, provider, agent_id) "
        "VALUES (1, '+14155550100', 'US', 'local', 'managed', 'simulated', 1)");
    tx.exec0(
        "INSERT INTO campaigns (account_id, name, agent_id, carrier, settings, imported_at, import_accepted, "
        "state) VALUES (1, 'old', 1, 'simulated', '{}', now(), 40, 'running')");
    // 40 contacts: 1-20 done (one attempt each), 21-23 claimed with an attempt in flight, 24-40 pending.
    tx.exec0(
        "INSERT INTO contacts (campaign_id, row_number, e164, variables) "
        "SELECT 1, g, '+1212555' || lpad(g::text, 4, '0'), ('{\"n\": \"' || g || '\"}')::json FROM "
        "generate_series(1, 40) g");
    tx.exec0("UPDATE contacts SET state = 'done', attempts = 1, outcome = 'busy' WHERE id <= 20");
    tx.exec0(
        "UPDATE contacts SET state = 'in_progress', claimed_by = 'old-engine', lease_until = now() "
        "WHERE id BETWEEN 21 AND 23");
    tx.exec0(
        "INSERT INTO call_attempts (campaign_id, contact_id, attempt_no, number_id, caller_id, carrier, "
        "engine_id, "
        "outcome) SELECT 1, g, 1, 1, '+14155550100', 'simulated', 'old-engine', "
        "CASE WHEN g <= 20 THEN 'busy' END FROM generate_series(1, 23) g");
    tx.commit();
  }
  ASSERT_TRUE(pg::migrate(*c));
  pqxx::nontransaction tx(*c);
  EXPECT_EQ(tx.exec1("SELECT first_contact_id, last_contact_id FROM campaigns")[0].as<std::int64_t>(), 1);
  EXPECT_EQ(
      tx.exec1("SELECT count(*) FROM call_attempts WHERE id <> contact_id * 128 + attempt_no")[0].as<int>(),
      0);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM contacts WHERE state = 'pending'")[0].as<int>(), 20);
  EXPECT_EQ(tx.exec1("SELECT sum(pending), sum(done) FROM contact_blocks")[0].as<int>(), 20);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL")[0].as<int>(), 1);
  EXPECT_EQ(tx.exec1("SELECT variables FROM contacts WHERE id = 7")[0].as<std::string>(), "{\"n\": \"7\"}");

  engine_ports_on_pg store(url, "new-engine");
  std::set<std::int64_t> open, dialable;
  while (true) {
    auto batch = store.claim(campaign_id{1}, 100, kLease);
    ASSERT_TRUE(batch) << batch.error().message;
    if (batch->blocks.empty()) break;
    for (const auto& o : batch->open) open.insert(o.contact.value());
    for (const auto& x : batch->contacts) dialable.insert(x.id.value());
  }
  EXPECT_EQ(open, (std::set<std::int64_t>{21, 22, 23}));
  EXPECT_EQ(dialable.size(), 17u);
  EXPECT_EQ(*dialable.begin(), 24);
}

// A retry after a lost commit acknowledgement: the rows are there, recorded by this same engine, never placed
// (no outcome, no carrier call id). They count as recorded now, once; another engine's row still does not.
TEST_F(BlockClaims, ARetryAfterALostAcknowledgementRecordsTheSameAttemptsOnce) {
  const auto id = campaign("lost-ack", 16);
  auto a = engine("engine-a");
  auto batch = a->claim(id, 100, kLease);
  ASSERT_TRUE(batch);
  std::vector<attempt_to_record> first{rec(batch->contacts[0].id, 1), rec(batch->contacts[1].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, first, "simulated"));
  std::vector<attempt_to_record> retry{rec(batch->contacts[0].id, 1), rec(batch->contacts[1].id, 1),
                                       rec(batch->contacts[2].id, 1)};
  ASSERT_TRUE(a->record_attempts(id, retry, "simulated"));
  for (const auto& r : retry) {
    EXPECT_TRUE(r.id) << "contact " << r.contact.value()
                      << " was not handed out after the lost acknowledgement";
    EXPECT_FALSE(r.recorded_before);
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts"), 3);
}

// The last checks at record time: a callee put on the do-not-call list after its contact was claimed, and a
// caller ID whose slot lease this engine no longer holds (a stall outlived it), are not recorded, so never
// dialed.
// Invariant 1: a hung server cannot freeze the heartbeat. Another session holds every slot row locked (as a stuck
// migration or a runaway transaction would); the engine's slot renewal comes back with the server's statement
// timeout as its error instead of waiting for the lock, so the engine can count its lease as lapsing and stop
// dialing. (Were there no timeout, this test would hang until ctest's timeout failed it.)
TEST_F(BlockClaims, ASlotRenewalBehindAHeldLockFailsWithTheStatementTimeoutInsteadOfHanging) {
  auto a = engine("engine-a");
  auto locker = connect_to(url_);
  pqxx::work held(*locker);
  held.exec0("LOCK TABLE number_slots IN ACCESS EXCLUSIVE MODE");
  const number_id numbers[] = {number_};
  const int in_use[] = {0};
  auto renewed = a->lease_slots(agent_, numbers, in_use, kLease, kQuiet);
  held.abort();
  ASSERT_FALSE(renewed) << "the renewal waited for the lock and succeeded";
  EXPECT_NE(renewed.error().message.find("statement timeout"), std::string::npos) << renewed.error().message;
  // The lock gone, the next renewal succeeds on the same port (its connection survived the cancelled statement).
  auto again = a->lease_slots(agent_, numbers, in_use, kLease, kQuiet);
  EXPECT_TRUE(again) << again.error().message;
}

TEST_F(BlockClaims, RecordingRefusesACalleeListedSinceTheClaimAndACallerIdWithoutALiveSlotLease) {
  const auto id = campaign("late-checks", 16);
  auto a = engine("engine-a");
  auto batch = a->claim(id, 100, kLease);
  ASSERT_TRUE(batch);
  {
    pqxx::work tx(*c_);
    tx.exec_params0("INSERT INTO do_not_call (account_id, e164, source) VALUES (1, $1, 'test')",
                    batch->contacts[0].e164);
    tx.commit();
  }
  auto listed = rec(batch->contacts[0].id, 1);
  listed.callee = batch->contacts[0].e164;
  auto fine = rec(batch->contacts[1].id, 1);
  fine.callee = batch->contacts[1].e164;
  std::vector<attempt_to_record> attempts{listed, fine};
  ASSERT_TRUE(a->record_attempts(id, attempts, "simulated"));
  EXPECT_FALSE(attempts[0].id);
  EXPECT_TRUE(attempts[0].do_not_call);
  EXPECT_TRUE(attempts[1].id);
  // The slot leases lapse (as after a stall longer than the lease): nothing more is recorded on the number.
  {
    pqxx::work tx(*c_);
    tx.exec0(
        "UPDATE number_slots SET lease_until = now() - interval '1 second' WHERE engine_id = 'engine-a'");
    tx.commit();
  }
  auto late = rec(batch->contacts[2].id, 1);
  late.callee = batch->contacts[2].e164;
  std::vector<attempt_to_record> after{late};
  ASSERT_TRUE(a->record_attempts(id, after, "simulated"));
  EXPECT_FALSE(after[0].id) << "recorded on a caller ID whose slot lease lapsed";
  EXPECT_FALSE(after[0].recorded_before);
  EXPECT_FALSE(after[0].do_not_call);
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts"), 1);
}

}  // namespace
}  // namespace dialer::testing
