#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "engine/contacts/csv_reader.hpp"

namespace dialer::contacts {
namespace {

struct read_result {
  std::vector<std::vector<std::string>> records;
  std::vector<std::uint64_t> lines;
  std::optional<error> failure;
};

read_result read_all(csv_reader& reader) {
  read_result out;
  csv_record record;
  while (true) {
    auto more = reader.next(record);
    if (!more) {
      out.failure = more.error();
      return out;
    }
    if (!*more) return out;
    EXPECT_EQ(record.index, out.records.size());
    out.records.emplace_back(record.fields.begin(), record.fields.end());
    out.lines.push_back(record.line);
  }
}

read_result read_all(std::string text, csv_options options = {}) {
  auto reader = csv_reader::from_string(std::move(text), options);
  return read_all(reader);
}

using rows = std::vector<std::vector<std::string>>;

std::filesystem::path temp_file(std::string_view name, const std::string& content) {
  const auto path = std::filesystem::temp_directory_path() / fmt::format("{}-{}", ::getpid(), name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(CsvReader, ReadsRecordsNumberedFromZero) {
  auto r = read_all("phone,name\n+14155550123,Ana\n4155550134,Bo\n");
  ASSERT_FALSE(r.failure);
  EXPECT_EQ(r.records, (rows{{"phone", "name"}, {"+14155550123", "Ana"}, {"4155550134", "Bo"}}));
  EXPECT_EQ(r.lines, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(CsvReader, SkipsTheUtf8ByteOrderMark) {
  auto reader = csv_reader::from_string("\xEF\xBB\xBFphone\n1\n");
  auto r = read_all(reader);
  EXPECT_TRUE(reader.had_bom());
  EXPECT_EQ(r.records, (rows{{"phone"}, {"1"}}));
  auto plain = csv_reader::from_string("phone\n1\n");
  EXPECT_EQ(read_all(plain).records, r.records);
  EXPECT_FALSE(plain.had_bom());
}

TEST(CsvReader, CrlfAndLfGiveTheSameRecords) {
  auto lf = read_all("a,b\n1,\"x\"\n2,\n");
  auto crlf = read_all("a,b\r\n1,\"x\"\r\n2,\r\n");
  EXPECT_EQ(lf.records, (rows{{"a", "b"}, {"1", "x"}, {"2", ""}}));
  EXPECT_EQ(crlf.records, lf.records);
}

TEST(CsvReader, QuotedFieldsKeepCommasDoubledQuotesAndNewlines) {
  auto r = read_all("\"Acme, Inc.\",\"Caf\xC3\xA9 \"\"Central\"\"\",\"two\nlines\",\"crlf\r\ninside\"\n");
  ASSERT_FALSE(r.failure);
  EXPECT_EQ(r.records, (rows{{"Acme, Inc.", "Caf\xC3\xA9 \"Central\"", "two\nlines", "crlf\r\ninside"}}));
}

TEST(CsvReader, LineNumbersCountNewlinesInsideQuotes) {
  auto r = read_all("h\n\"a\nb\nc\"\nnext\n");
  EXPECT_EQ(r.lines, (std::vector<std::uint64_t>{1, 2, 5}));
}

TEST(CsvReader, EmptyLinesAreNotRecords) {
  auto r = read_all("h\n\n1\r\n\r\n\n2\n\n");
  EXPECT_EQ(r.records, (rows{{"h"}, {"1"}, {"2"}}));
  EXPECT_EQ(r.lines, (std::vector<std::uint64_t>{1, 3, 6}));
  EXPECT_EQ(read_all(",\n").records, (rows{{"", ""}}));  // a line of empty fields is a record
}

TEST(CsvReader, LastRecordNeedsNoLineEnd) {
  EXPECT_EQ(read_all("a,b\n1,2").records, (rows{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(read_all("a,b\n1,").records, (rows{{"a", "b"}, {"1", ""}}));
  EXPECT_EQ(read_all("a\n\"q\"").records, (rows{{"a"}, {"q"}}));
  EXPECT_TRUE(read_all("").records.empty());
}

TEST(CsvReader, RaggedRecordsAreReportedAsWritten) {
  EXPECT_EQ(read_all("a,b,c\n1\n1,2,3,4\n").records, (rows{{"a", "b", "c"}, {"1"}, {"1", "2", "3", "4"}}));
}

TEST(CsvReader, StrayQuotesAreDataNotErrors) {
  EXPECT_EQ(read_all("ab\"c,d\n").records, (rows{{"ab\"c", "d"}}));
  EXPECT_EQ(read_all("\"ab\"c,d\n").records, (rows{{"abc", "d"}}));
  EXPECT_EQ(read_all("\"\",\"\"\"\"\n").records, (rows{{"", "\""}}));
}

TEST(CsvReader, UnterminatedQuoteIsAnErrorAfterEveryEarlierRecord) {
  auto reader = csv_reader::from_string("h\n1\n2,\"open\nstill open\n");
  auto r = read_all(reader);
  EXPECT_EQ(r.records, (rows{{"h"}, {"1"}}));
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->code, errc::invalid_input);
  EXPECT_NE(r.failure->message.find("record 2 (line 3)"), std::string::npos) << r.failure->message;
  EXPECT_NE(r.failure->message.find("opened at line 3 is never closed"), std::string::npos)
      << r.failure->message;
  csv_record record;
  auto again = reader.next(record);  // errors are final
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, r.failure->message);
}

TEST(CsvReader, RecordLongerThanTheLimitIsAnError) {
  const std::string big = "h\n\"" + std::string(10000, 'x') + "\n";
  const auto path = temp_file("csv-big.csv", big);
  auto reader =
      csv_reader::open(path.string(), csv_options{.max_record_bytes = 4096, .read_chunk_bytes = 4096});
  ASSERT_TRUE(reader);
  auto r = read_all(*reader);
  std::filesystem::remove(path);
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->code, errc::invalid_input);
  EXPECT_NE(r.failure->message.find("record 1 (line 2)"), std::string::npos) << r.failure->message;
  EXPECT_EQ(r.records, (rows{{"h"}}));
}

TEST(CsvReader, FileStreamedInSmallChunksEqualsTheWholeBuffer) {
  // Records and huge quoted fields straddle many 4 KiB chunk boundaries.
  std::string text = "\xEF\xBB\xBFphone,notes\r\n";
  for (int i = 0; i < 3000; ++i)
    text += fmt::format("+1415555{:04},\"note {} with \"\"quotes\"\", commas\nand lines\"\r\n", i, i);
  std::string huge;
  for (int i = 0; i < 200000; ++i) huge += "\"\"ab";  // 800 KB of quotes to unescape
  text += "+14155550000,\"" + huge + "\"\r\nlast,row";
  const auto path = temp_file("csv-chunks.csv", text);
  auto reader = csv_reader::open(path.string(), csv_options{.read_chunk_bytes = 4096});
  ASSERT_TRUE(reader);
  auto streamed = read_all(*reader);
  std::filesystem::remove(path);
  auto whole = read_all(text);
  ASSERT_FALSE(streamed.failure);
  EXPECT_EQ(streamed.records, whole.records);
  EXPECT_EQ(streamed.lines, whole.lines);
  ASSERT_EQ(streamed.records.size(), 3003u);
  EXPECT_EQ(streamed.records[3001][1].size(), 600000u);
  EXPECT_EQ(streamed.records[2][1], "note 1 with \"quotes\", commas\nand lines");
}

TEST(CsvReader, MissingFileIsUnavailableNamingThePath) {
  auto reader = csv_reader::open("/nonexistent/contacts.csv");
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, errc::unavailable);
  EXPECT_NE(reader.error().message.find("/nonexistent/contacts.csv"), std::string::npos);
}

}  // namespace
}  // namespace dialer::contacts
