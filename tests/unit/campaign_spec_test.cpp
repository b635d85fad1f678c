#include <gtest/gtest.h>

#include "engine/campaign.hpp"

namespace dialer {
namespace {

TEST(CampaignSpec, StoredFormRoundTripsEverySetting) {
  campaign_spec s;
  s.name = "spring";
  s.agent = "bot";
  s.numbers.push_back({"+14155550100", 3, 2.5});
  s.max_concurrency = 42;
  s.strategy = sched::caller_id_strategy::local_presence;
  s.window.start = std::chrono::hours{9};
  s.window.days = rules::weekdays::every_day;
  ASSERT_TRUE(s.retry.set_max_attempts(5));
  ASSERT_TRUE(s.retry.set_rule(call_outcome::busy, {true, std::chrono::minutes{7}}));
  s.contacts.file = "/tmp/c.csv";
  s.contacts.generate = 10;
  auto back = campaign_spec_from_json(to_json(s));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->name, "spring");
  EXPECT_EQ(back->numbers.at(0).max_concurrent_calls, 3);
  EXPECT_EQ(back->max_concurrency, 42);
  EXPECT_EQ(back->strategy, sched::caller_id_strategy::local_presence);
  EXPECT_EQ(back->window.start, std::chrono::hours{9});
  EXPECT_EQ(back->window.days, rules::weekdays::every_day);
  EXPECT_EQ(back->retry.max_attempts(), 5);
  EXPECT_EQ(back->retry.rule_for(call_outcome::busy).delay, std::chrono::minutes{7});
  EXPECT_EQ(back->contacts.generate, 10);
}

TEST(CampaignSpec, SecretsAreNeverStored) {
  campaign_spec s;
  s.name = "x";
  s.agent = "bot";
  s.carrier_settings = {{"account_sid", "AC123"}, {"auth_token", "s3cr3t"}, {"nested", {{"password", "pw"}}}};
  const auto stored = to_json(s).dump();
  EXPECT_EQ(stored.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(stored.find("\"pw\""), std::string::npos);
  EXPECT_NE(stored.find("AC123"), std::string::npos);
}

TEST(CampaignSpec, SecretKeysAreRecognisedByName) {
  EXPECT_TRUE(is_secret_setting("auth_token"));
  EXPECT_TRUE(is_secret_setting("API_KEY"));
  EXPECT_TRUE(is_secret_setting("password"));
  EXPECT_FALSE(is_secret_setting("account_sid"));
  EXPECT_FALSE(is_secret_setting("base_url"));
}

}  // namespace
}  // namespace dialer
