#include <gtest/gtest.h>

#include "engine/inventory.hpp"

namespace dialer {
namespace {

TEST(InventoryValidation, AgentNamesMustBePrintableAndNotAllDigits) {
  EXPECT_TRUE(validate_agent_name("sales-bot"));
  EXPECT_TRUE(validate_agent_name("Support Agent 2"));
  EXPECT_EQ(validate_agent_name("").error().code, errc::invalid_input);
  EXPECT_EQ(validate_agent_name("42").error().code, errc::invalid_input);
  EXPECT_EQ(validate_agent_name("-dash").error().code, errc::invalid_input);
  EXPECT_EQ(validate_agent_name("semi;colon").error().code, errc::invalid_input);
}

TEST(InventoryValidation, HandoffIsAMediaStreamUrlOrSipUri) {
  EXPECT_TRUE(validate_handoff(""));
  EXPECT_TRUE(validate_handoff("wss://agents.example.com/stream/1"));
  EXPECT_TRUE(validate_handoff("sip:agent@pbx.example.com"));
  EXPECT_FALSE(validate_handoff("ftp://example.com"));
  EXPECT_FALSE(validate_handoff("sip:"));
  EXPECT_FALSE(validate_handoff("wss://a b"));
}

TEST(InventoryValidation, LimitsMustBePositiveAndBounded) {
  EXPECT_TRUE(validate_limits({5, 2.5}));
  EXPECT_TRUE(validate_limits({std::nullopt, 0.5}));
  EXPECT_FALSE(validate_limits({0, std::nullopt}));
  EXPECT_FALSE(validate_limits({10001, std::nullopt}));
  EXPECT_FALSE(validate_limits({std::nullopt, 0.0}));
  EXPECT_FALSE(validate_limits({std::nullopt, 1001.0}));
}

}  // namespace
}  // namespace dialer
