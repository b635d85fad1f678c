#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>
#include <nlohmann/json.hpp>

#include "engine/contacts/contact_import.hpp"
#include "engine/contacts/synthetic.hpp"
#include "engine/phone.hpp"

namespace dialer::contacts {
namespace {

// One row of output, owned (the sink's views die with the batch).
struct outcome {
  std::uint64_t row = 0;
  bool accepted = false;
  std::string e164, timezone, variables, country, input;
  std::uint16_t area_code = 0;
  reject_reason reason = reject_reason::invalid_number;
};

class collecting_sink final : public contact_sink {
 public:
  result<void> write(const contact_batch& batch) override {
    batch_sizes.push_back(batch.accepted.size() + batch.rejected.size());
    std::vector<outcome> rows;
    for (const auto& a : batch.accepted) {
      rows.push_back({a.row,
                      true,
                      std::string(a.e164),
                      std::string(a.timezone),
                      std::string(a.variables_json),
                      std::string(a.country),
                      {},
                      a.area_code});
    }
    for (const auto& r : batch.rejected)
      rows.push_back({r.row, false, {}, {}, {}, {}, std::string(r.input), 0, r.reason});
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.row < b.row; });
    for (auto& o : rows) {
      if (!all.empty()) {
        EXPECT_LT(all.back().row, o.row) << "rows must arrive once, in order";
      }
      all.push_back(std::move(o));
    }
    if (fail_after_batches && batch_sizes.size() >= *fail_after_batches) {
      return make_error(errc::unavailable, "database went away");
    }
    return ok();
  }

  const outcome& row(std::uint64_t n) const {
    for (const auto& o : all) {
      if (o.row == n) return o;
    }
    throw std::out_of_range(fmt::format("row {} never reached the sink", n));
  }

  std::vector<outcome> all;
  std::vector<std::size_t> batch_sizes;
  std::optional<std::size_t> fail_after_batches;
};

result<import_summary> run_import(std::string csv, collecting_sink& sink, import_options options = {}) {
  auto reader = csv_reader::from_string(std::move(csv));
  return import_contacts(reader, options, sink);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::filesystem::path temp_path(std::string_view name) {
  return std::filesystem::temp_directory_path() / fmt::format("{}-{}", ::getpid(), name);
}

// --- The acceptance file -------------------------------------------------------------------------

class MessyFile : public ::testing::TestWithParam<unsigned> {};

TEST_P(MessyFile, EveryRowMatchesTheExpectedFile) {
  const std::filesystem::path dir = DIALER_TEST_DATA_DIR;
  const auto expected = nlohmann::json::parse(read_file(dir / "contacts-messy.expected.json"));
  e164_set do_not_call;
  for (const auto& n : expected["do_not_call"]) ASSERT_TRUE(do_not_call.add(n.get<std::string>()));
  import_options options;
  options.default_region = expected["default_region"].get<std::string>();
  options.do_not_call = &do_not_call;
  options.validator_threads = GetParam();
  options.batch_rows = 4;  // several batches, so ordering across batches is exercised too
  collecting_sink sink;
  auto summary = import_contacts_file((dir / expected["file"].get<std::string>()).string(), options, sink);
  ASSERT_TRUE(summary) << summary.error().message;

  ASSERT_EQ(sink.all.size(), expected["rows"].size());
  EXPECT_EQ(summary->rows, expected["rows"].size());
  for (const auto& want : expected["rows"]) {
    const outcome& got = sink.row(want["row"].get<std::uint64_t>());
    SCOPED_TRACE(fmt::format("row {} '{}'", want["row"].get<int>(), want["input"].get<std::string>()));
    if (want["result"] == "ok") {
      ASSERT_TRUE(got.accepted) << to_string(got.reason);
      EXPECT_EQ(got.e164, want["e164"].get<std::string>());
    } else {
      ASSERT_FALSE(got.accepted) << got.e164;
      EXPECT_EQ(to_string(got.reason), want["reason"].get<std::string>());
      EXPECT_EQ(got.input, want["input"].get<std::string>());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ValidatorThreads, MessyFile, ::testing::Values(0u, 1u, 2u));

TEST(ContactImport, MessyFileKeepsVariablesTimezonesAndAreaCodes) {
  collecting_sink sink;
  ASSERT_TRUE(import_contacts_file(std::string(DIALER_TEST_DATA_DIR) + "/contacts-messy.csv", {}, sink));
  const auto& jose = sink.row(5);
  EXPECT_EQ(nlohmann::json::parse(jose.variables),
            (nlohmann::json{{"first_name", "Jos\xC3\xA9"}, {"company", "Caf\xC3\xA9 \"Central\""}}));
  EXPECT_EQ(jose.area_code, 212);
  EXPECT_EQ(sink.row(3).timezone, "America/Los_Angeles");
  EXPECT_EQ(sink.row(6).country, "GB");
  EXPECT_EQ(nlohmann::json::parse(sink.row(24).variables)["first_name"], "Ugo\nNewline");
}

// --- Encodings and line ends -----------------------------------------------------------------------

TEST(ContactImport, BomAndNoBomImportTheSame) {
  collecting_sink with_bom, without_bom;
  ASSERT_TRUE(run_import("\xEF\xBB\xBFphone,name\n4155550123,Ana\n", with_bom));
  ASSERT_TRUE(run_import("phone,name\n4155550123,Ana\n", without_bom));
  ASSERT_EQ(with_bom.all.size(), 1u);
  EXPECT_TRUE(with_bom.row(1).accepted);
  EXPECT_EQ(with_bom.row(1).variables, without_bom.row(1).variables);
  EXPECT_EQ(with_bom.row(1).variables, R"({"name":"Ana"})");
}

TEST(ContactImport, CrlfAndLfImportTheSame) {
  collecting_sink lf, crlf;
  ASSERT_TRUE(run_import("phone,name\n4155550123,Ana\n4155550134,\"B\no\"\n", lf));
  ASSERT_TRUE(run_import("phone,name\r\n4155550123,Ana\r\n4155550134,\"B\no\"\r\n", crlf));
  ASSERT_EQ(lf.all.size(), 2u);
  for (std::uint64_t row : {1, 2}) {
    EXPECT_EQ(lf.row(row).e164, crlf.row(row).e164);
    EXPECT_EQ(lf.row(row).variables, crlf.row(row).variables);
  }
  EXPECT_EQ(nlohmann::json::parse(crlf.row(2).variables)["name"], "B\no");
}

TEST(ContactImport, InvalidUtf8RowIsRejectedWithAReadableInput) {
  collecting_sink sink;
  auto summary = run_import(
      "phone,name\n4155550123,Jos\xE9\n\xFF"
      "4155550134,Bo\n4155550145,Chen\n",
      sink);
  ASSERT_TRUE(summary);
  EXPECT_EQ(sink.row(1).reason, reject_reason::invalid_encoding);
  EXPECT_EQ(sink.row(1).input, "4155550123");
  EXPECT_EQ(sink.row(2).reason, reject_reason::invalid_encoding);
  EXPECT_EQ(sink.row(2).input,
            "\xEF\xBF\xBD"
            "4155550134");
  EXPECT_TRUE(sink.row(3).accepted);
  EXPECT_EQ(summary->count(reject_reason::invalid_encoding), 2u);
}

// --- Header mapping --------------------------------------------------------------------------------

TEST(ContactImport, EveryPhoneAliasIsFoundIgnoringCaseAndSpaces) {
  for (const char* header :
       {"phone", "PHONE", " Phone ", "phone_number", "Phone Number", "number", "To", " to "}) {
    collecting_sink sink;
    auto summary = run_import(fmt::format("name,{}\nAna,4155550123\n", header), sink);
    ASSERT_TRUE(summary) << header << ": " << summary.error().message;
    EXPECT_TRUE(sink.row(1).accepted) << header;
    EXPECT_EQ(sink.row(1).variables, R"({"name":"Ana"})") << header;
  }
}

TEST(ContactImport, PhoneColumnWinsOverLaterAliases) {
  collecting_sink sink;
  ASSERT_TRUE(run_import("to,number,Phone\n4155550123,4155550134,4155550145\n", sink));
  EXPECT_EQ(sink.row(1).e164, "+14155550145");
  EXPECT_EQ(sink.row(1).variables, R"({"to":"4155550123","number":"4155550134"})");
}

TEST(ContactImport, MissingPhoneColumnIsAnErrorNamingWhatWasFound) {
  collecting_sink sink;
  auto summary = run_import("name,email,mobile\nAna,a@x,4155550123\n", sink);
  ASSERT_FALSE(summary);
  EXPECT_EQ(summary.error().code, errc::invalid_input);
  for (const char* part : {"'name', 'email', 'mobile'", "phone, phone_number, number, to"}) {
    EXPECT_NE(summary.error().message.find(part), std::string::npos) << summary.error().message;
  }
  EXPECT_TRUE(sink.all.empty());
}

TEST(ContactImport, EmptyFileIsAnError) {
  collecting_sink sink;
  auto summary = run_import("", sink);
  ASSERT_FALSE(summary);
  EXPECT_EQ(summary.error().code, errc::invalid_input);
  EXPECT_NE(summary.error().message.find("empty"), std::string::npos);
}

TEST(ContactImport, UnknownDefaultRegionIsAnError) {
  collecting_sink sink;
  import_options options;
  options.default_region = "XX";
  auto summary = run_import("phone\n4155550123\n", sink, options);
  ASSERT_FALSE(summary);
  EXPECT_NE(summary.error().message.find("'XX'"), std::string::npos);
}

TEST(ContactImport, DefaultRegionDecidesNationalNumbers) {
  collecting_sink sink;
  import_options options;
  options.default_region = "gb";
  ASSERT_TRUE(run_import("phone\n020 7946 0958\n+1 415 555 0123\n", sink, options));
  EXPECT_EQ(sink.row(1).e164, "+442079460958");
  EXPECT_EQ(sink.row(2).e164, "+14155550123");
}

// --- Variables -------------------------------------------------------------------------------------

TEST(ContactImport, VariablesJsonKeepsUnicodeAndEscapesQuotesAndControls) {
  collecting_sink sink;
  ASSERT_TRUE(run_import(
      "phone,name,quote,note\n4155550123,Zo\xC3\xAB \xE2\x9C\x93,\"say \"\"hi\"\"\",\"a\\b\tc\"\n", sink));
  const std::string& json = sink.row(1).variables;
  EXPECT_NE(json.find("Zo\xC3\xAB \xE2\x9C\x93"), std::string::npos)
      << "UTF-8 is kept, not \\u-escaped: " << json;
  const auto parsed = nlohmann::json::parse(json);
  EXPECT_EQ(parsed["name"], "Zo\xC3\xAB \xE2\x9C\x93");
  EXPECT_EQ(parsed["quote"], "say \"hi\"");
  EXPECT_EQ(parsed["note"], "a\\b\tc");
  EXPECT_EQ(json, R"({"name":"Zoë ✓","quote":"say \"hi\"","note":"a\\b\tc"})");
}

TEST(ContactImport, EmptyAndRepeatedHeadersGetDistinctKeys) {
  const std::vector<std::string_view> header{"phone", "name", "", "name", " name "};
  auto map = map_columns(header);
  ASSERT_TRUE(map);
  ASSERT_EQ(map->variables.size(), 4u);
  EXPECT_EQ(map->variables[0].key, "name");
  EXPECT_EQ(map->variables[1].key, "column_3");
  EXPECT_EQ(map->variables[2].key, "name_2");
  EXPECT_EQ(map->variables[3].key, "name_3");
}

TEST(ContactImport, ShortRowsArePaddedAndExtraFieldsAreKept) {
  collecting_sink sink;
  ASSERT_TRUE(run_import("phone,a,b\n4155550123\n4155550134,1,2,3,,5\n", sink));
  EXPECT_EQ(sink.row(1).variables, R"({"a":"","b":""})");
  EXPECT_EQ(sink.row(2).variables, R"({"a":"1","b":"2","column_4":"3","column_6":"5"})");
}

// --- Rejections ------------------------------------------------------------------------------------

TEST(ContactImport, InvalidTimezoneIsRejectedAndValidOnesAreTrimmed) {
  collecting_sink sink;
  auto summary = run_import(
      "phone,timezone\n4155550123,Mars/Olympus_Mons\n4155550134, America/Chicago \n4155550145,\n", sink);
  ASSERT_TRUE(summary);
  EXPECT_EQ(sink.row(1).reason, reject_reason::invalid_timezone);
  EXPECT_EQ(sink.row(2).timezone, "America/Chicago");
  EXPECT_EQ(sink.row(3).timezone, "");
  EXPECT_TRUE(sink.row(3).accepted);
  EXPECT_EQ(summary->count(reject_reason::invalid_timezone), 1u);
}

TEST(ContactImport, DuplicateKeepsTheFirstAcceptedRow) {
  collecting_sink sink;
  auto summary =
      run_import("phone,name\n(415) 555-0123,first\n+1 415 555 0123,second\n4155550123,third\n", sink);
  ASSERT_TRUE(summary);
  EXPECT_TRUE(sink.row(1).accepted);
  EXPECT_EQ(sink.row(1).variables, R"({"name":"first"})");
  EXPECT_EQ(sink.row(2).reason, reject_reason::duplicate);
  EXPECT_EQ(sink.row(3).reason, reject_reason::duplicate);
  EXPECT_EQ(summary->accepted, 1u);
  EXPECT_EQ(summary->count(reject_reason::duplicate), 2u);
}

TEST(ContactImport, RejectedRowDoesNotClaimItsNumber) {
  collecting_sink sink;
  ASSERT_TRUE(run_import("phone,timezone\n4155550123,Nowhere/Land\n4155550123,America/New_York\n", sink));
  EXPECT_EQ(sink.row(1).reason, reject_reason::invalid_timezone);
  EXPECT_TRUE(sink.row(2).accepted);
}

TEST(ContactImport, DoNotCallNumbersAreRejectedEveryTime) {
  e164_set dnc;
  ASSERT_TRUE(dnc.add("+14155550123"));
  import_options options;
  options.do_not_call = &dnc;
  collecting_sink sink;
  auto summary = run_import("phone\n415-555-0123\n+14155550123\n4155550134\n", sink, options);
  ASSERT_TRUE(summary);
  EXPECT_EQ(sink.row(1).reason, reject_reason::do_not_call);
  EXPECT_EQ(sink.row(2).reason, reject_reason::do_not_call);  // not "duplicate": it was never accepted
  EXPECT_TRUE(sink.row(3).accepted);
  EXPECT_EQ(summary->count(reject_reason::do_not_call), 2u);
}

TEST(ContactImport, MissingPhoneAndInvalidNumberKeepTheRawInput) {
  collecting_sink sink;
  ASSERT_TRUE(run_import("phone,name\n   ,blank\nnot a number,bad\n,empty\n", sink));
  EXPECT_EQ(sink.row(1).reason, reject_reason::missing_phone);
  EXPECT_EQ(sink.row(1).input, "   ");
  EXPECT_EQ(sink.row(2).reason, reject_reason::invalid_number);
  EXPECT_EQ(sink.row(2).input, "not a number");
  EXPECT_EQ(sink.row(3).reason, reject_reason::missing_phone);
}

// --- Bounded input ---------------------------------------------------------------------------------
// Field, row and variables sizes are capped before anything parses them (libphonenumber's Parse is quadratic
// in its input: 32 000 digits take seconds). Reasons are compared as text: they are the names reports show.

// "accepted", or the reason a row was rejected.
std::string outcome_of(const outcome& o) {
  return o.accepted ? "accepted" : std::string(to_string(o.reason));
}

TEST(ContactImport, AMegabytePhoneFieldIsRejectedAsTooLongAndTheRestOfTheFileImports) {
  for (unsigned threads : {0u, 2u}) {
    SCOPED_TRACE(fmt::format("{} validator threads", threads));
    std::string csv = "phone,name\n4155550123,before\n";
    csv += std::string(std::size_t{1} << 20, '5') + ",huge\n";
    csv += "4155550134,after\n";
    import_options options;
    options.validator_threads = threads;
    collecting_sink sink;
    auto summary = run_import(std::move(csv), sink, options);
    ASSERT_TRUE(summary) << summary.error().message;
    ASSERT_EQ(sink.all.size(), 3u);
    EXPECT_TRUE(sink.row(1).accepted);
    EXPECT_FALSE(sink.row(2).accepted);
    EXPECT_EQ(outcome_of(sink.row(2)), "phone_too_long");
    EXPECT_LE(sink.row(2).input.size(), 64u) << "a rejected row reports a bounded prefix of its input";
    EXPECT_TRUE(sink.row(3).accepted);
    EXPECT_EQ(sink.row(3).variables, R"({"name":"after"})");
    EXPECT_EQ(summary->accepted, 2u);
    EXPECT_EQ(summary->rejected, 1u);
  }
}

TEST(ContactImport, AnOverlongOtherFieldIsRejectedAsFieldTooLong) {
  collecting_sink sink;
  auto summary = run_import("phone,notes,timezone\n4155550123," + std::string(5000, 'x') +
                                ",\n4155550134,short,\n4155550145,ok," + std::string(5000, 'z') + "\n",
                            sink);
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(outcome_of(sink.row(1)), "field_too_long");
  EXPECT_TRUE(sink.row(2).accepted);
  EXPECT_EQ(outcome_of(sink.row(3)), "field_too_long") << "the timezone field is capped too";
}

TEST(ContactImport, ARowOfManyFieldsEachUnderTheCapIsRejectedAsRowTooLong) {
  std::string header = "phone", row = "4155550123";
  for (int i = 0; i < 12; ++i) {
    header += fmt::format(",c{}", i);
    row += "," + std::string(3000, 'a');  // 12 * 3000 bytes: under the per-field cap, over the row cap
  }
  collecting_sink sink;
  auto summary = run_import(header + "\n" + row + "\n4155550134\n", sink);
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(outcome_of(sink.row(1)), "row_too_long");
  EXPECT_TRUE(sink.row(2).accepted);
}

TEST(ContactImport, VariablesThatGrowPastTheCapWhenEscapedAreRejected) {
  // Control characters become six bytes each in JSON: 4 * 1000 raw bytes are 24 000 bytes of variables.
  const std::string controls(1000, '\x01');
  collecting_sink sink;
  auto summary = run_import("phone,a,b,c,d\n4155550123," + controls + "," + controls + "," + controls + "," +
                                controls + "\n4155550134,1,2,3,4\n",
                            sink);
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(outcome_of(sink.row(1)), "variables_too_large");
  EXPECT_TRUE(sink.row(2).accepted);
  EXPECT_EQ(sink.row(2).variables, R"({"a":"1","b":"2","c":"3","d":"4"})");
}

TEST(ContactImport, EveryOtherBadRowKeepsItsOwnReasonNextToAnOverlongOne) {
  collecting_sink sink;
  auto summary = run_import("phone,timezone\n" + std::string(2000, '9') +
                                ",\n,\nnot a number,\n4155550123,Mars/Base\n4155550134,\n4155550134,\n",
                            sink);
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(outcome_of(sink.row(1)), "phone_too_long");
  EXPECT_EQ(outcome_of(sink.row(2)), "missing_phone");
  EXPECT_EQ(outcome_of(sink.row(3)), "invalid_number");
  EXPECT_EQ(outcome_of(sink.row(4)), "invalid_timezone");
  EXPECT_TRUE(sink.row(5).accepted);
  EXPECT_EQ(outcome_of(sink.row(6)), "duplicate");
}

TEST(ContactImport, AnOverlongHeaderIsAnErrorNamingTheColumn) {
  collecting_sink sink;
  auto summary = run_import("phone," + std::string(5000, 'h') + "\n4155550123,x\n", sink);
  ASSERT_FALSE(summary);
  EXPECT_EQ(summary.error().code, errc::invalid_input);
  EXPECT_NE(summary.error().message.find("column 2"), std::string::npos) << summary.error().message;
}

// --- Extensions ------------------------------------------------------------------------------------

TEST(ContactImport, APhoneExtensionIsKeptAsTheExtensionVariable) {
  collecting_sink sink;
  auto summary = run_import(
      "phone,name\n"
      "+1 415 555 0123 ext. 5,a\n"
      "+1 415 555 0134 x12,b\n"
      "+1 415 555 0145 #7,c\n"
      "+1-415-555-0156;ext=89,d\n"
      "4155550167,e\n",
      sink);
  ASSERT_TRUE(summary) << summary.error().message;
  const std::pair<const char*, const char*> want[] = {
      {"+14155550123", "5"}, {"+14155550134", "12"}, {"+14155550145", "7"}, {"+14155550156", "89"}};
  for (std::uint64_t row = 1; row <= 4; ++row) {
    const outcome& o = sink.row(row);
    SCOPED_TRACE(fmt::format("row {}", row));
    ASSERT_TRUE(o.accepted) << to_string(o.reason);
    EXPECT_EQ(o.e164, want[row - 1].first);
    const auto variables = nlohmann::json::parse(o.variables);
    EXPECT_EQ(variables.value("extension", std::string("<dropped>")), want[row - 1].second) << o.variables;
  }
  EXPECT_EQ(sink.row(5).variables, R"({"name":"e"})") << "no extension, no extension variable";
}

TEST(ContactImport, AnExtensionNextToAnExtensionColumnGetsItsOwnKey) {
  collecting_sink sink;
  ASSERT_TRUE(run_import("phone,extension\n+1 415 555 0123 ext. 5,desk\n", sink));
  const auto variables = nlohmann::json::parse(sink.row(1).variables);
  EXPECT_EQ(variables["extension"], "desk");
  EXPECT_EQ(variables.value("extension_2", std::string("<dropped>")), "5") << sink.row(1).variables;
}

// --- Streaming and failure -------------------------------------------------------------------------

TEST(ContactImport, UnterminatedQuoteFailsAfterWritingEveryEarlierRow) {
  for (unsigned threads : {0u, 2u}) {
    collecting_sink sink;
    import_options options;
    options.batch_rows = 2;
    options.validator_threads = threads;
    auto summary =
        run_import("phone,name\n4155550123,a\n4155550134,b\n4155550145,c\n4155550156,\"d\n4155550167,e\n",
                   sink, options);
    ASSERT_FALSE(summary);
    EXPECT_EQ(summary.error().code, errc::invalid_input);
    EXPECT_NE(summary.error().message.find("record 4 (line 5)"), std::string::npos)
        << summary.error().message;
    ASSERT_EQ(sink.all.size(), 3u) << "rows 1-3 were read before the bad record and must not be lost";
    EXPECT_EQ(sink.all.back().row, 3u);
  }
}

TEST(ContactImport, SinkErrorStopsTheImportAndIsReturned) {
  collecting_sink sink;
  sink.fail_after_batches = 2;
  import_options options;
  options.batch_rows = 1;
  options.validator_threads = 2;
  std::string csv = "phone\n";
  for (int i = 0; i < 100; ++i) csv += fmt::format("415555{:04}\n", 100 + i);
  auto summary = run_import(csv, sink, options);
  ASSERT_FALSE(summary);
  EXPECT_EQ(summary.error().code, errc::unavailable);
  EXPECT_EQ(summary.error().message, "database went away");
  EXPECT_EQ(sink.batch_sizes.size(), 2u);
}

TEST(ContactImport, BatchesAreBoundedAndCoverEveryRowOnce) {
  collecting_sink sink;
  import_options options;
  options.batch_rows = 3;
  std::string csv = "phone\n";
  for (int i = 0; i < 10; ++i) csv += fmt::format("415555{:04}\n", 100 + i);
  auto summary = run_import(csv, sink, options);
  ASSERT_TRUE(summary);
  EXPECT_EQ(sink.batch_sizes, (std::vector<std::size_t>{3, 3, 3, 1}));
  EXPECT_EQ(sink.all.size(), 10u);
}

// --- Synthetic files -------------------------------------------------------------------------------

TEST(SyntheticContacts, ImportToExactlyTheirOwnSummaryWithAnyThreadCount) {
  const auto path = temp_path("synthetic.csv");
  auto expected = write_synthetic_contacts(path.string(), 30000, 11, "US", synthetic_options{.crlf = true});
  ASSERT_TRUE(expected) << expected.error().message;
  std::vector<std::string> first_run;
  for (unsigned threads : {0u, 1u, 3u}) {
    collecting_sink sink;
    import_options options;
    options.validator_threads = threads;
    options.batch_rows = 1000;
    auto summary = import_contacts_file(path.string(), options, sink);
    ASSERT_TRUE(summary) << summary.error().message;
    EXPECT_EQ(summary->rows, expected->rows);
    EXPECT_EQ(summary->accepted, expected->valid);
    EXPECT_EQ(summary->count(reject_reason::duplicate), expected->duplicates);
    EXPECT_EQ(summary->count(reject_reason::invalid_number), expected->invalid_numbers);
    EXPECT_EQ(summary->count(reject_reason::missing_phone), expected->missing_phones);
    EXPECT_EQ(summary->count(reject_reason::invalid_timezone), expected->invalid_timezones);
    EXPECT_GT(expected->duplicates, 0u);
    EXPECT_GT(expected->invalid_numbers, 0u);
    std::vector<std::string> outcomes;
    for (const auto& o : sink.all)
      outcomes.push_back(o.accepted ? o.e164 + o.variables : std::string(to_string(o.reason)));
    if (first_run.empty()) {
      first_run = std::move(outcomes);
    } else {
      EXPECT_EQ(outcomes, first_run) << "results must not depend on the thread count";
    }
  }
  std::filesystem::remove(path);
}

TEST(SyntheticContacts, CleanDemoFileHasOnlyFictionalNumbersLibphonenumberAccepts) {
  const auto path = temp_path("demo.csv");
  synthetic_options clean{.duplicate_fraction = 0,
                          .invalid_fraction = 0,
                          .missing_fraction = 0,
                          .international_fraction = 0,
                          .bad_timezone_fraction = 0};
  auto expected = write_synthetic_contacts(path.string(), 2000, 1, "US", clean);
  ASSERT_TRUE(expected);
  EXPECT_EQ(expected->valid, 2000u);
  collecting_sink sink;
  auto summary = import_contacts_file(path.string(), {}, sink);
  std::filesystem::remove(path);
  ASSERT_TRUE(summary);
  ASSERT_EQ(summary->accepted, 2000u);
  for (const auto& o : sink.all) {
    ASSERT_TRUE(parse_phone(o.e164, "US")) << o.e164;  // the reference path, not the fast one
    EXPECT_EQ(o.e164.substr(5, 5), "55501") << o.e164 << " should be in NPA-555-01XX";
  }
}

TEST(SyntheticContacts, SameSeedWritesTheSameFile) {
  const auto a = temp_path("seed-a.csv"), b = temp_path("seed-b.csv");
  ASSERT_TRUE(write_synthetic_contacts(a.string(), 500, 42, "US"));
  ASSERT_TRUE(write_synthetic_contacts(b.string(), 500, 42, "US"));
  EXPECT_EQ(read_file(a), read_file(b));
  std::filesystem::remove(a);
  std::filesystem::remove(b);
}

TEST(SyntheticContacts, NonNanpRegionIsRefused) {
  auto r = write_synthetic_contacts(temp_path("gb.csv").string(), 10, 1, "GB");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_input);
}

// --- e164_set --------------------------------------------------------------------------------------

TEST(E164Set, InsertReportsDuplicatesAndSurvivesGrowth) {
  e164_set set;
  for (std::uint64_t i = 0; i < 10000; ++i) ASSERT_TRUE(set.insert(14155550000 + i));
  for (std::uint64_t i = 0; i < 10000; ++i) ASSERT_FALSE(set.insert(14155550000 + i));
  EXPECT_EQ(set.size(), 10000u);
  EXPECT_TRUE(set.contains("+14155559999"));
  EXPECT_FALSE(set.contains("+14155560000"));
}

// At most 15 bytes a number once it holds a million, however it got there: grown one insert at a time or
// reserved (then about 11). One table doubling at 50 % load held 16-32 bytes a number, and two copies while
// it grew.
TEST(E164Set, HoldsAMillionNumbersInAtMostFifteenBytesEach) {
  constexpr std::uint64_t count = 1'000'000;
  e164_set grown;
  for (std::uint64_t i = 0; i < count; ++i) ASSERT_TRUE(grown.insert(12122010000 + i * 7));
  e164_set reserved(count);
  const std::size_t reserved_bytes = reserved.bytes();
  for (std::uint64_t i = 0; i < count; ++i) ASSERT_TRUE(reserved.insert(12122010000 + i * 7));
  EXPECT_EQ(reserved.bytes(), reserved_bytes) << "reserve() left too little room: a shard grew";
  EXPECT_LE(reserved.bytes(), count * 12);
  for (const e164_set* set : {&grown, &reserved}) {
    EXPECT_EQ(set->size(), count);
    EXPECT_LE(set->bytes(), count * 15);
    for (std::uint64_t i = 0; i < count; i += 997) EXPECT_FALSE(set->contains(12122010000 + i * 7 + 1));
    EXPECT_TRUE(set->contains(12122010000 + (count - 1) * 7));
  }
}

TEST(E164Set, RejectsStringsThatAreNotE164) {
  e164_set set;
  auto r = set.add("415-555-0123");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'415-555-0123'"), std::string::npos);
  EXPECT_FALSE(e164_set::key_of("+0123"));
  EXPECT_EQ(e164_set::key_of("+442079460958"), 442079460958u);
  EXPECT_FALSE(set.contains("garbage"));
}

}  // namespace
}  // namespace dialer::contacts
