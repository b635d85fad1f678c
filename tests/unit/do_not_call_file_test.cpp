#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "engine/contacts/do_not_call_file.hpp"

namespace dialer::contacts {
namespace {

std::filesystem::path write_file(std::string_view name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / fmt::format("{}-{}", ::getpid(), name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(DoNotCallFile, ReadsNumbersAndCsvFirstFieldsSkippingHeaderCommentsAndBlankLines) {
  const auto path = write_file("dnc-ok.txt",
                               "phone,source\r\n(415) 555-0123,complaint\r\n\r\n# a comment, with \"quotes\n"
                               "+1 312 555 0177\n  2025550143  \n");
  auto r = read_do_not_call_file(path, "us");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->e164s, (std::vector<std::string>{"+14155550123", "+13125550177", "+12025550143"}));
  EXPECT_TRUE(r->skipped.empty()) << r->skipped.front();
  std::filesystem::remove(path);
}

TEST(DoNotCallFile, ReportsEachInvalidLineWithItsLineNumber) {
  const auto path = write_file("dnc-bad.txt", "4155550123\nnot a number\n\n+1555\n");
  auto r = read_do_not_call_file(path, "US");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->e164s, std::vector<std::string>{"+14155550123"});
  ASSERT_EQ(r->skipped.size(), 2u);
  EXPECT_EQ(r->skipped[0].rfind(path.string() + ":2: 'not a number' is not a valid phone number", 0), 0u)
      << r->skipped[0];
  EXPECT_EQ(r->skipped[1].rfind(path.string() + ":4: '+1555'", 0), 0u) << r->skipped[1];
  std::filesystem::remove(path);
}

TEST(DoNotCallFile, OverlongLinesAndNumbersAreReportedUnparsedAndTheNextLinesStillRead) {
  const auto path = write_file("dnc-long.txt",
                               std::string(1 << 20, '7') + "\n" + std::string(200, '5') + ",x\n4155550123\n");
  auto r = read_do_not_call_file(path, "US");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->e164s, std::vector<std::string>{"+14155550123"});
  ASSERT_EQ(r->skipped.size(), 2u);
  EXPECT_NE(r->skipped[0].find(":1: the line is longer than"), std::string::npos) << r->skipped[0];
  EXPECT_NE(r->skipped[1].find(":2: the number is longer than 64 characters"), std::string::npos)
      << r->skipped[1];
  std::filesystem::remove(path);
}

TEST(DoNotCallFile, AFileThatCannotBeOpenedIsInvalidInputNamingIt) {
  auto r = read_do_not_call_file("/nonexistent/dnc.txt", "US");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_input);
  EXPECT_NE(r.error().message.find("/nonexistent/dnc.txt"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace dialer::contacts
