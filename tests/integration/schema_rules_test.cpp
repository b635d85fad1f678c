// The telephony rules hold in the database itself, not only in our code: raw SQL cannot break them.
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "adapters/postgres/migrations.hpp"
#include "tests/integration/support.hpp"

namespace dialer::testing {
namespace {

class SchemaRules : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = fresh_database(::testing::UnitTest::GetInstance()->current_test_info()->name());
    c_ = connect_to(url_);
    pqxx::work tx(*c_);
    tx.exec0("INSERT INTO accounts (name) VALUES ('other')");
    tx.exec0("INSERT INTO agents (account_id, name) VALUES (1, 'a1'), (1, 'a2'), (2, 'foreign')");
    tx.exec0(
        "INSERT INTO numbers (account_id, e164, country, type, kind, provider) "
        "VALUES (1, '+14155550101', 'US', 'local', 'managed', 'simulated')");
    tx.commit();
  }
  // Runs a statement expecting the database to refuse it.
  void expect_refused(const std::string& sql) {
    pqxx::work tx(*c_);
    EXPECT_THROW(tx.exec0(sql), pqxx::sql_error) << sql;
  }
  std::string url_;
  std::unique_ptr<pqxx::connection> c_;
};

TEST_F(SchemaRules, SameE164CannotBeActiveTwiceInOneAccount) {
  expect_refused(
      "INSERT INTO numbers (account_id, e164, country, type, kind, provider) "
      "VALUES (1, '+14155550101', 'US', 'local', 'byoc', 'twilio')");
}

TEST_F(SchemaRules, AManagedNumberHasOneOwnerPlatformWide) {
  expect_refused(
      "INSERT INTO numbers (account_id, e164, country, type, kind, provider) "
      "VALUES (2, '+14155550101', 'US', 'local', 'managed', 'simulated')");
}

TEST_F(SchemaRules, ReleasedNumberCannotBeAssignedOrReactivated) {
  {
    pqxx::work tx(*c_);
    tx.exec0("UPDATE numbers SET status = 'released', released_at = now() WHERE id = 1");
    tx.commit();
  }
  expect_refused("UPDATE numbers SET agent_id = 1 WHERE id = 1");
  expect_refused("UPDATE numbers SET status = 'active', released_at = NULL WHERE id = 1");
}

TEST_F(SchemaRules, ReleasedNumberCannotKeepAnAgent) {
  expect_refused("UPDATE numbers SET agent_id = 1, status = 'released', released_at = now() WHERE id = 1");
}

TEST_F(SchemaRules, AgentMustBelongToTheNumbersAccount) {
  expect_refused("UPDATE numbers SET agent_id = 3 WHERE id = 1");
}

TEST_F(SchemaRules, MalformedValuesAreRefused) {
  expect_refused(
      "INSERT INTO numbers (account_id, e164, country, type, kind, provider) "
      "VALUES (1, '4155550101', 'US', 'local', 'managed', 'simulated')");
  expect_refused(
      "INSERT INTO numbers (account_id, e164, country, type, kind, provider, max_concurrent_calls) "
      "VALUES (1, '+14155550109', 'US', 'local', 'managed', 'simulated', 0)");
  expect_refused(
      "INSERT INTO numbers (account_id, e164, country, type, kind, provider, monthly_fee) "
      "VALUES (1, '+14155550109', 'US', 'local', 'byoc', 'twilio', 1)");
}

TEST(Migrations, ApplyExactlyOnce) {
  const auto url = fresh_database("migrations_once");
  auto c = connect_to(url);
  auto again = pg::migrate(*c);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, 0);
  pqxx::nontransaction tx(*c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<std::size_t>(),
            pg::all_migrations().size());
}

// Migration 7 moves each campaign's rejected rows out of its jsonb value into import_rejections, keeping
// every row and its reason, and leaves their count by reason on the campaign.
TEST(Migrations, RejectedRowsMoveFromTheCampaignIntoRows) {
  const auto url = fresh_database("migrations_rejections", 6);
  auto c = connect_to(url);
  {
    pqxx::work tx(*c);
    tx.exec0("INSERT INTO agents (account_id, name) VALUES (1, 'a')");
    tx.exec0(
        "INSERT INTO campaigns (account_id, name, agent_id, carrier, settings, import_rejected) VALUES "
        "(1, 'bad-rows', 1, 'simulated', '{}', "
        " '[{\"row\": 3, \"reason\": \"invalid_number\"}, {\"row\": 9, \"reason\": \"duplicate\"}, "
        "   {\"row\": 12, \"reason\": \"invalid_number\"}]'), "
        "(1, 'clean', 1, 'simulated', '{}', '[]')");
    tx.commit();
  }
  auto applied = pg::migrate(*c);
  ASSERT_TRUE(applied) << applied.error().message;
  pqxx::nontransaction tx(*c);
  const auto rows = tx.exec(
      "SELECT k.name, r.row_number, r.reason FROM import_rejections r JOIN campaigns k ON k.id = "
      "r.campaign_id "
      "ORDER BY 1, 2");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][1].as<int>(), 3);
  EXPECT_EQ(rows[1][1].as<int>(), 9);
  EXPECT_EQ(rows[1][2].as<std::string>(), "duplicate");
  EXPECT_EQ(rows[2][1].as<int>(), 12);
  EXPECT_EQ(tx.exec1("SELECT import_rejected_by_reason FROM campaigns WHERE name = 'bad-rows'")[0]
                .as<std::string>(),
            R"({"duplicate": 1, "invalid_number": 2})");
  EXPECT_EQ(
      tx.exec1("SELECT import_rejected_by_reason FROM campaigns WHERE name = 'clean'")[0].as<std::string>(),
      "{}");
}

TEST(Migrations, AFailingMigrationLeavesNoTrace) {
  const auto url = fresh_database("migrations_fail");
  auto c = connect_to(url);
  const pg::migration broken[] = {
      {9001, "half of this would apply", "CREATE TABLE half_applied (x int); SELECT no_such_function();"}};
  auto r = pg::migrate(*c, broken);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("9001"), std::string::npos);
  pqxx::nontransaction tx(*c);
  EXPECT_TRUE(tx.exec("SELECT 1 FROM pg_tables WHERE tablename = 'half_applied'").empty());
  EXPECT_TRUE(tx.exec("SELECT 1 FROM schema_migrations WHERE version = 9001").empty());
}

}  // namespace
}  // namespace dialer::testing
