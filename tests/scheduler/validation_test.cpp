// Fail fast: a campaign or a call that cannot place a single legal call is refused before anything is queued,
// with a message that names the agent and the number. Bad registrations get clear errors too.

#include "tests/scheduler/fixture.hpp"

namespace dialer::sched::testing {
namespace {

using validation_test = scheduler_test;

campaign_config campaign_of(std::int64_t id, std::vector<number_id> numbers = {}) {
  campaign_config c;
  c.id = campaign_id{id};
  c.agent = sales_bot;
  c.agent_name = "sales-bot";
  c.numbers = std::move(numbers);
  c.max_in_flight = 10;
  return c;
}

TEST_F(validation_test, AgentWithoutOutboundNumberCannotLaunch) {
  add_number(1, 1, unlimited_cps, 0, "", other_bot);
  const auto launched = sched_.add_campaign(campaign_of(1));
  ASSERT_FALSE(launched);
  EXPECT_EQ(launched.error().code, errc::launch_failed);
  EXPECT_EQ(launched.error().message, "agent 'sales-bot' has no outbound number");
}

TEST_F(validation_test, ListedNumberOfAnotherAgentCannotLaunch) {
  add_number(1, 1);
  add_number(2, 1, unlimited_cps, 0, "", other_bot);
  const auto launched = sched_.add_campaign(campaign_of(1, {number_id{1}, number_id{2}}));
  ASSERT_FALSE(launched);
  EXPECT_EQ(launched.error().code, errc::launch_failed);
  EXPECT_EQ(launched.error().message,
            "number +14155551002 is assigned to agent 'other-bot', not to campaign agent 'sales-bot'");
}

TEST_F(validation_test, ListedUnassignedNumberCannotLaunch) {
  add_number(1, 1, unlimited_cps, 0, "", agent_id{});
  const auto launched = sched_.add_campaign(campaign_of(1, {number_id{1}}));
  ASSERT_FALSE(launched);
  EXPECT_EQ(launched.error().message,
            "number +14155551001 is not assigned to any agent, not to campaign agent 'sales-bot'");
}

TEST_F(validation_test, ListedUnknownNumberCannotLaunch) {
  add_number(1, 1);
  const auto launched = sched_.add_campaign(campaign_of(1, {number_id{1}, number_id{77}}));
  ASSERT_FALSE(launched);
  EXPECT_EQ(launched.error().code, errc::launch_failed);
  EXPECT_EQ(launched.error().message,
            "number #77 listed for agent 'sales-bot' is not a registered outbound number");
}

TEST_F(validation_test, FailedLaunchQueuesNothing) {
  ASSERT_FALSE(sched_.add_campaign(campaign_of(1)));
  enqueue_range(1, 2);
  EXPECT_TRUE(dispatch().empty());
  std::vector<contact_item> rejected;
  EXPECT_EQ(sched_.take_rejected(rejected), 2u);
  EXPECT_TRUE(sched_.stats().campaigns.empty());
}

TEST_F(validation_test, SingleCallIsCheckedTheSameWay) {
  add_number(1, 1, unlimited_cps, 0, "", other_bot);
  const auto checked = sched_.check_outbound(sales_bot, "sales-bot", {});
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().message, "agent 'sales-bot' has no outbound number");
  const number_id numbers[] = {number_id{1}};
  EXPECT_TRUE(sched_.check_outbound(other_bot, "other-bot", numbers));
}

TEST_F(validation_test, CampaignIdCannotBeScheduledTwice) {
  add_number(1, 1);
  add_campaign(1);
  const auto again = sched_.add_campaign(campaign_of(1));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::conflict);
}

TEST_F(validation_test, CampaignCapBelowOneIsInvalid) {
  add_number(1, 1);
  auto c = campaign_of(1);
  c.max_in_flight = 0;
  const auto launched = sched_.add_campaign(c);
  ASSERT_FALSE(launched);
  EXPECT_EQ(launched.error().code, errc::invalid_input);
}

TEST_F(validation_test, NumberLimitsMustBeSane) {
  number_config n;
  n.id = number_id{1};
  n.e164 = "+14155550100";
  n.max_cps = 0;
  auto added = sched_.add_number(n);
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().code, errc::invalid_input);
  EXPECT_EQ(added.error().message, "number +14155550100: max_cps must be > 0, got 0");
  n.max_cps = 1;
  n.max_concurrent_calls = -1;
  EXPECT_FALSE(sched_.add_number(n));
  n.max_concurrent_calls = 1;
  n.area_code = 4155;
  EXPECT_FALSE(sched_.add_number(n));
}

TEST_F(validation_test, NumberOfAnUnknownCarrierAccountIsRefused) {
  number_config n;
  n.id = number_id{1};
  n.e164 = "+14155550100";
  n.carrier_account = carrier_account_id{5};
  const auto added = sched_.add_number(n);
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().code, errc::not_found);
  EXPECT_EQ(added.error().message, "number +14155550100: carrier account 5 is not registered");
}

TEST_F(validation_test, NumberIdCannotBeRegisteredTwice) {
  add_number(1, 1);
  number_config n;
  n.id = number_id{1};
  const auto again = sched_.add_number(n);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::conflict);
}

TEST_F(validation_test, ControlOfAnUnknownNumberOrCampaignIsNotFound) {
  EXPECT_EQ(sched_.set_number_rotation(number_id{3}, false).error().code, errc::not_found);
  EXPECT_EQ(sched_.pause_campaign(campaign_id{3}).error().code, errc::not_found);
  EXPECT_EQ(sched_.remove_campaign(campaign_id{3}).error().code, errc::not_found);
  EXPECT_EQ(sched_.throttle_carrier_account(carrier_account_id{3}, 1s).error().code, errc::not_found);
}

}  // namespace
}  // namespace dialer::sched::testing
