// The first run of a campaign file through the real `dialer` binary: a run that fails leaves nothing behind
// (no agent, no number bought, no campaign, no do-not-call entries, nothing billed), and two first runs
// started at once both succeed while the contacts are imported once.
#include <nlohmann/json.hpp>

#include "tests/integration/e2e_fixture.hpp"

namespace dialer::testing::e2e {
namespace {

using nlohmann::json;

class FirstRun : public campaign_test {
 protected:
  // provisioning.yaml with its tokens; the do-not-call file lists one number that is not among the contacts.
  fs::path provisioning_file(const std::string& name, const std::string& number,
                             const fs::path& contacts) const {
    const auto dnc = dir_ / "dnc.txt";
    std::ofstream(dnc) << "phone\n+13125550199\n";
    return campaign_file(
        "provisioning.yaml",
        {{"NAME", name}, {"NUMBER", number}, {"CONTACTS", contacts.string()}, {"DNC", dnc.string()}});
  }

  // Everything a first run creates, and what billing would charge for.
  void expect_nothing_left_behind() const {
    EXPECT_EQ(scalar("SELECT count(*) FROM agents"), 0) << table("SELECT id, name FROM agents");
    EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), 0) << table("SELECT e164, status FROM numbers");
    EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 0) << table("SELECT name, state FROM campaigns");
    EXPECT_EQ(scalar("SELECT count(*) FROM campaign_numbers"), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts"), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM do_not_call"), 0) << table("SELECT e164, source FROM do_not_call");
    EXPECT_EQ(attempts(), 0);
    auto billing = dialer_json({"billing"});
    ASSERT_EQ(billing.exit_code, 0) << billing.err;
    const auto lines = json::parse(billing.out)["lines"];
    EXPECT_TRUE(lines.empty()) << lines.dump();
  }
};

TEST_F(FirstRun, AContactFileThatCannotBeReadFailsBeforeAnythingIsCreatedOrBilled) {
  // Semicolons: the header is one column, "phone;first_name", so there is no phone column.
  const auto contacts = dir_ / "semicolons.csv";
  std::ofstream(contacts) << "phone;first_name\n+12025550143;Ada\n+13125550144;Grace\n";
  const auto file = provisioning_file("e2e-semicolons", "+14155550100", contacts);
  auto r = dialer({"run", file.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(contacts.string()), std::string::npos) << "the error must name the file:\n" << r.err;
  expect_nothing_left_behind();
}

TEST_F(FirstRun, ANumberTheInventoryDoesNotOfferFailsBeforeTheAgentIsCreated) {
  // The simulated inventory offers +1415555 0100 to 0199 only.
  const auto file = provisioning_file("e2e-unbuyable", "+14155550999", data_dir / "few-contacts.csv");
  auto r = dialer({"run", file.string()});
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("+14155550999"), std::string::npos) << r.err;
  expect_nothing_left_behind();
}

TEST_F(FirstRun, AnAgentTheRunWouldCreateWithoutAnyNumberIsNotCreated) {
  auto r = dialer({"run", (data_dir / "no-numbers.yaml").string()});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("e2e-lonely-agent"), std::string::npos) << r.err;
  expect_nothing_left_behind();
}

TEST_F(FirstRun, InvalidCarrierSettingsFailBeforeAnythingIsCreated) {
  // carrier.settings are the carrier's to check; the run must ask it before it buys or creates anything.
  auto file = provisioning_file("e2e-bad-settings", "+14155550100", data_dir / "few-contacts.csv");
  std::string text = read_text(file);
  const std::string from = "time_acceleration: 500";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), "time_acceleration: -5");
  std::ofstream(file) << text;
  auto r = dialer({"run", file.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("time_acceleration"), std::string::npos) << r.err;
  expect_nothing_left_behind();
}

TEST_F(FirstRun, TwoFirstRunsStartedAtOnceBothSucceedAndTheContactsAreImportedOnce) {
  const auto contacts = data_dir / "few-contacts.csv";
  // Five rounds on one database, each a new campaign file with its own caller ID: the first round races on
  // creating the agent too, every round on buying the number, creating the campaign and importing.
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    const std::string name = fmt::format("e2e-twice-{}", round);
    const auto file = provisioning_file(name, fmt::format("+1415555010{}", round), contacts);
    // How many rows the file yields, from the importer itself (a dry run writes nothing).
    auto dry = dialer_json({"run", file.string(), "--dry-run"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    const auto accepted = json::parse(dry.out)["import"]["accepted"].get<std::int64_t>();
    ASSERT_GT(accepted, 0);
    ASSERT_EQ(scalar(fmt::format("SELECT count(*) FROM campaigns WHERE name = '{}'", name)), 0);

    auto a = start({"run", file.string()}, name + "-a");
    auto b = start({"run", file.string()}, name + "-b");
    ASSERT_TRUE(eventually([&] { return a->exited() && b->exited(); }, nullptr, 120s))
        << "the runs did not end:\n"
        << a->err() << "\n"
        << b->err();
    EXPECT_EQ(a->wait(), 0) << a->err();
    EXPECT_EQ(b->wait(), 0) << b->err();
    for (auto* run : {a.get(), b.get()}) {
      json report;
      ASSERT_NO_THROW(report = json::parse(run->out())) << run->out() << run->err();
      EXPECT_EQ(report["campaign"]["state"], "completed") << report.dump();
      EXPECT_EQ(report["import"]["accepted"], accepted);
    }
    EXPECT_EQ(scalar(fmt::format("SELECT count(*) FROM campaigns WHERE name = '{}'", name)), 1);
    const std::string of_campaign =
        fmt::format("FROM contacts WHERE campaign_id = (SELECT id FROM campaigns WHERE name = '{}')", name);
    EXPECT_EQ(scalar("SELECT count(*) " + of_campaign), accepted);
    EXPECT_EQ(scalar("SELECT count(DISTINCT row_number) " + of_campaign), accepted);
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM agents"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), 5);
  expect_settled(2);
}

}  // namespace
}  // namespace dialer::testing::e2e
