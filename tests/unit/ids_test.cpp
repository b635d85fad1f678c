#include <gtest/gtest.h>

#include "engine/ids.hpp"
#include "engine/result.hpp"

namespace dialer {
namespace {

TEST(StrongId, DefaultIsInvalidAndPositiveIsValid) {
  EXPECT_FALSE(number_id{}.valid());
  EXPECT_TRUE(number_id{7}.valid());
  EXPECT_EQ(number_id{7}, number_id{7});
  EXPECT_LT(number_id{3}, number_id{7});
}

TEST(Result, ValueOrErrorAndValueThrowsOnError) {
  result<int> good = 5;
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 5);
  result<int> bad = make_error(errc::not_found, "no agent named {}", "bob");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::not_found);
  EXPECT_EQ(bad.error().message, "no agent named bob");
  EXPECT_THROW((void)bad.value(), dialer_exception);
}

}  // namespace
}  // namespace dialer
