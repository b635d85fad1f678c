// The phone-number inventory through the real `dialer` binary on a real PostgreSQL database.
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "tests/integration/support.hpp"

namespace dialer::testing {
namespace {

using nlohmann::json;

class InventoryCli : public ::testing::Test {
 protected:
  void SetUp() override { url_ = fresh_database(::testing::UnitTest::GetInstance()->current_test_info()->name()); }

  run_result dialer(std::vector<std::string> args) {
    args.insert(args.begin(), {"--database-url", url_});
    return run_dialer(args);
  }
  json dialer_json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto r = dialer(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  }
  long count(const std::string& sql) {
    auto c = connect_to(url_);
    pqxx::nontransaction tx(*c);
    return tx.exec1(sql)[0].as<long>();
  }

  std::string url_;
};

TEST_F(InventoryCli, SearchFindsUsLocalNumbersInTheAreaCode) {
  auto found = dialer_json({"numbers", "search", "--country", "US", "--type", "local", "--area-code", "415",
                            "--limit", "5"});
  ASSERT_EQ(found.size(), 5u);
  for (const auto& n : found) {
    EXPECT_EQ(n["e164"].get<std::string>().substr(0, 5), "+1415");
    EXPECT_EQ(n["type"], "local");
    EXPECT_EQ(n["country"], "US");
  }
}

TEST_F(InventoryCli, SearchHidesNumbersAlreadyBought) {
  auto before = dialer_json({"numbers", "search", "--country", "US", "--area-code", "415", "--limit", "3"});
  const std::string first = before[0]["e164"];
  ASSERT_EQ(dialer({"numbers", "buy", first}).exit_code, 0);
  auto after = dialer_json({"numbers", "search", "--country", "US", "--area-code", "415", "--limit", "3"});
  for (const auto& n : after) EXPECT_NE(n["e164"], first);
}

TEST_F(InventoryCli, BuyStoresAManagedNumberWithItsLimitsAndFee) {
  auto n = dialer_json({"numbers", "buy", "+14155550101", "--max-concurrent", "3", "--max-cps", "2"});
  EXPECT_EQ(n["e164"], "+14155550101");
  EXPECT_EQ(n["kind"], "managed");
  EXPECT_EQ(n["provider"], "simulated");
  EXPECT_EQ(n["max_concurrent_calls"], 3);
  EXPECT_EQ(n["max_cps"], 2.0);
  EXPECT_EQ(n["status"], "active");
  EXPECT_EQ(n["monthly_fee"], "1.1500");
  auto list = dialer_json({"numbers", "list"});
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], n["id"]);
}

TEST_F(InventoryCli, BuyingTheSameNumberTwiceIsAConflict) {
  ASSERT_EQ(dialer({"numbers", "buy", "+14155550102"}).exit_code, 0);
  auto again = dialer({"numbers", "buy", "+14155550102"});
  EXPECT_EQ(again.exit_code, 4);
  EXPECT_NE(again.err.find("already"), std::string::npos) << again.err;
  EXPECT_EQ(count("SELECT count(*) FROM numbers"), 1);
}

TEST_F(InventoryCli, BuyingANumberNotInTheInventoryFailsAndStoresNothing) {
  auto r = dialer({"numbers", "buy", "+14155550999"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("+14155550999"), std::string::npos) << r.err;
  EXPECT_EQ(count("SELECT count(*) FROM numbers"), 0);
}

TEST_F(InventoryCli, InvalidE164IsRejectedWithInvalidInput) {
  for (std::string bad : {"+1234", "abc", "+1 555 555 5555", ""}) {
    auto r = dialer({"numbers", "buy", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_EQ(count("SELECT count(*) FROM numbers"), 0);
}

TEST_F(InventoryCli, InvalidLimitsAreRejected) {
  EXPECT_EQ(dialer({"numbers", "buy", "+14155550103", "--max-concurrent", "0"}).exit_code, 2);
  EXPECT_EQ(dialer({"numbers", "buy", "+14155550103", "--max-cps", "-1"}).exit_code, 2);
  EXPECT_EQ(count("SELECT count(*) FROM numbers"), 0);
}

TEST_F(InventoryCli, AgentNamesAreUniqueAndValidated) {
  auto a = dialer_json({"agents", "create", "sales-bot", "--handoff", "wss://agents.example/sales"});
  EXPECT_EQ(a["name"], "sales-bot");
  auto dup = dialer({"agents", "create", "sales-bot"});
  EXPECT_EQ(dup.exit_code, 4) << dup.err;
  EXPECT_EQ(dialer({"agents", "create", "12345"}).exit_code, 2);
  EXPECT_EQ(dialer({"agents", "create", "x", "--handoff", "ftp://nope"}).exit_code, 2);
  EXPECT_EQ(dialer_json({"agents", "list"}).size(), 1u);
}

TEST_F(InventoryCli, AssigningToAnUnknownAgentIsNotFound) {
  ASSERT_EQ(dialer({"numbers", "buy", "+14155550104"}).exit_code, 0);
  auto r = dialer({"numbers", "assign", "+14155550104", "--agent", "ghost"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("ghost"), std::string::npos) << r.err;
  EXPECT_EQ(count("SELECT count(*) FROM numbers WHERE agent_id IS NOT NULL"), 0);
}

TEST_F(InventoryCli, AssigningAHeldNumberNeedsReassignAndNamesTheHolder) {
  ASSERT_EQ(dialer({"agents", "create", "alpha"}).exit_code, 0);
  ASSERT_EQ(dialer({"agents", "create", "beta"}).exit_code, 0);
  auto n = dialer_json({"numbers", "buy", "+14155550105"});
  const std::string id = std::to_string(n["id"].get<long>());
  EXPECT_EQ(dialer_json({"numbers", "assign", id, "--agent", "alpha"})["agent"]["name"], "alpha");

  auto clash = dialer({"numbers", "assign", "+14155550105", "--agent", "beta"});
  EXPECT_EQ(clash.exit_code, 4);
  EXPECT_NE(clash.err.find("alpha"), std::string::npos) << clash.err;
  EXPECT_EQ(dialer_json({"numbers", "list", "--agent", "alpha"}).size(), 1u);

  EXPECT_EQ(dialer_json({"numbers", "assign", id, "--agent", "beta", "--reassign"})["agent"]["name"], "beta");
  EXPECT_EQ(dialer_json({"numbers", "list", "--agent", "alpha"}).size(), 0u);
  EXPECT_EQ(dialer_json({"numbers", "list", "--agent", "beta"}).size(), 1u);
}

TEST_F(InventoryCli, AnAgentMayHoldManyNumbers) {
  ASSERT_EQ(dialer({"agents", "create", "many"}).exit_code, 0);
  for (std::string e : {"+14155550106", "+14155550107", "+12125550106"}) {
    ASSERT_EQ(dialer({"numbers", "buy", e}).exit_code, 0);
    ASSERT_EQ(dialer({"numbers", "assign", e, "--agent", "many"}).exit_code, 0);
  }
  EXPECT_EQ(dialer_json({"numbers", "list", "--agent", "many"}).size(), 3u);
}

TEST_F(InventoryCli, ReleaseIsFinalAndCannotBeRepeatedOrAssigned) {
  ASSERT_EQ(dialer({"agents", "create", "alpha"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "buy", "+14155550108"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "assign", "+14155550108", "--agent", "alpha"}).exit_code, 0);
  auto released = dialer_json({"numbers", "release", "+14155550108"});
  EXPECT_EQ(released["status"], "released");
  EXPECT_TRUE(released["agent"].is_null());
  EXPECT_FALSE(released["released_at"].is_null());

  auto twice = dialer({"numbers", "release", "+14155550108"});
  EXPECT_EQ(twice.exit_code, 4);
  EXPECT_NE(twice.err.find("already released"), std::string::npos) << twice.err;
  auto assign = dialer({"numbers", "assign", "+14155550108", "--agent", "alpha"});
  EXPECT_EQ(assign.exit_code, 4);
  EXPECT_NE(assign.err.find("released"), std::string::npos) << assign.err;
  EXPECT_EQ(dialer_json({"numbers", "list"}).size(), 0u);
  EXPECT_EQ(dialer_json({"numbers", "list", "--all"}).size(), 1u);
  // Released numbers go back to the inventory and can be bought again.
  EXPECT_EQ(dialer({"numbers", "buy", "+14155550108"}).exit_code, 0);
}

TEST_F(InventoryCli, UnknownNumberIsNotFound) {
  EXPECT_EQ(dialer({"numbers", "release", "999"}).exit_code, 3);
  EXPECT_EQ(dialer({"numbers", "unassign", "+14155550199"}).exit_code, 3);
}

TEST_F(InventoryCli, ByocImportRecordsKindAndProviderWithNoFee) {
  auto n = dialer_json({"numbers", "import", "+1 (312) 555-0177", "--provider", "twilio", "--record-only", "--max-concurrent", "5"});
  EXPECT_EQ(n["e164"], "+13125550177");
  EXPECT_EQ(n["kind"], "byoc");
  EXPECT_EQ(n["provider"], "twilio");
  EXPECT_EQ(n["monthly_fee"], "0.0000");
  EXPECT_EQ(dialer({"numbers", "import", "+13125550178", "--provider", "acme"}).exit_code, 2);
  EXPECT_EQ(dialer({"numbers", "import", "+13125550177", "--provider", "telnyx", "--record-only"}).exit_code, 4);
  // Without the carrier's credentials an import that would ask the carrier is refused, and records nothing.
  auto refused = dialer({"numbers", "import", "+13125550180", "--provider", "telnyx"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--record-only"), std::string::npos) << refused.err;
  EXPECT_EQ(dialer_json({"numbers", "list"}).dump().find("+13125550180"), std::string::npos);
}

TEST_F(InventoryCli, BillingChargesManagedNumbersPerDayAndNotByoc) {
  ASSERT_EQ(dialer({"numbers", "buy", "+14155550109"}).exit_code, 0);
  ASSERT_EQ(dialer({"numbers", "import", "+13125550179", "--provider", "sip"}).exit_code, 0);
  auto bill = dialer_json({"billing"});
  ASSERT_EQ(bill["lines"].size(), 1u) << bill.dump();
  EXPECT_EQ(bill["lines"][0]["e164"], "+14155550109");
  EXPECT_EQ(bill["lines"][0]["quantity"], 1.0);
  EXPECT_NE(bill["total"], "0.0000");
  // Released today: still one day, and nothing for the days after.
  ASSERT_EQ(dialer({"numbers", "release", "+14155550109"}).exit_code, 0);
  auto after = dialer_json({"billing", "--to", "2099-12-31"});
  ASSERT_EQ(after["lines"].size(), 1u) << after.dump();
  EXPECT_EQ(after["lines"][0]["quantity"], 1.0);
}

TEST_F(InventoryCli, BillingRejectsMalformedDates) {
  EXPECT_EQ(dialer({"billing", "--from", "2026-13-01"}).exit_code, 2);
  EXPECT_EQ(dialer({"billing", "--from", "yesterday"}).exit_code, 2);
  EXPECT_EQ(dialer({"billing", "--from", "2026-11-10", "--to", "2026-11-01"}).exit_code, 2);
}

TEST(InventoryCliEnvironment, MalformedDatabaseUrlIsInvalidInput) {
  auto r = run_dialer({"--database-url", "postgresql://%zz:badport/x?sslmode=nope", "numbers", "list"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("database URL"), std::string::npos) << r.err;
  auto r2 = run_dialer({"--database-url", "this is not a url", "agents", "list"});
  EXPECT_EQ(r2.exit_code, 2) << r2.err;
}

TEST(InventoryCliEnvironment, UnwritableStateDirectoryIsInvalidInputAndCreatesNothing) {
  const auto dir = make_temp_dir("unwritable");
  const auto file = dir / "a-file";
  { std::ofstream(file) << "x"; }
  auto r = run_dialer({"--state-dir", (file / "state").string(), "numbers", "list"}, {{"DIALER_DATABASE_URL", ""}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("state directory"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::is_regular_file(file));
  std::filesystem::remove_all(dir);
}

TEST(InventoryCliEnvironment, UnknownCommandIsUsageError) {
  auto r = run_dialer({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(r.err.empty());
}

}  // namespace
}  // namespace dialer::testing
