// The YAML campaign file: the example files load, and every mistake is reported at once with its position.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "adapters/carriers/simulated/settings.hpp"
#include "adapters/carriers/simulated/simulated_number_provider.hpp"
#include "adapters/config/campaign_file.hpp"

namespace dialer::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path data_dir = fs::path(DIALER_TEST_DATA_DIR) / "campaigns";  // holds contacts.csv and dnc.txt
const fs::path config_dir = fs::path(DIALER_TEST_DATA_DIR).parent_path().parent_path() / "config";

load_options options(std::map<std::string, std::string, std::less<>> env = {}) {
  load_options o;
  o.known_carriers = {"simulated", "sip", "telnyx", "twilio"};
  o.env = [env = std::move(env)](std::string_view name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  return o;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr std::string_view minimal = "name: t\nagent: a\ncontacts:\n  file: contacts.csv\n";

check_result check(std::string_view yaml, const load_options& o = options()) {
  return check_campaign_text(yaml, data_dir, o);
}

// Every error, formatted as the operator sees it.
std::string errors_of(std::string_view yaml, const load_options& o = options()) {
  auto r = load_campaign_text(yaml, "t.yaml", data_dir, o);
  return r ? std::string() : r.error().message;
}

// The minimal valid file plus `extra` lines (which start at line 5).
std::string with(std::string_view extra) {
  return std::string(minimal) + std::string(extra);
}

// --- the example files -----------------------------------------------------------------------------------

TEST(campaign_file, demo_loads_with_every_setting) {
  auto spec = load_campaign_file(config_dir / "demo.yaml", options());
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->name, "demo");
  EXPECT_EQ(spec->source, config_dir / "demo.yaml");
  EXPECT_EQ(spec->agent, "demo-agent");
  EXPECT_TRUE(spec->create_agent);
  EXPECT_TRUE(spec->provision_numbers);
  ASSERT_EQ(spec->numbers.size(), 4U);
  EXPECT_EQ(spec->numbers[0].e164, "+14155550100");
  EXPECT_EQ(spec->carrier, "simulated");
  EXPECT_EQ(spec->strategy, sched::caller_id_strategy::local_presence);
  EXPECT_EQ(spec->window.start, 0s);
  EXPECT_EQ(spec->window.end, 24h);
  EXPECT_EQ(spec->window.days, rules::weekdays::every_day);
  EXPECT_FALSE(spec->window.us_holidays);
  EXPECT_EQ(spec->retry.max_attempts(), 2);
  EXPECT_EQ(spec->retry.rule_for(call_outcome::busy).delay, 2s);
  EXPECT_EQ(spec->retry.rule_for(call_outcome::no_answer).delay, 3s);
  EXPECT_FALSE(spec->retry.rule_for(call_outcome::voicemail).retry);
  EXPECT_EQ(spec->contacts.file, config_dir / "demo-contacts.csv");
  EXPECT_EQ(spec->contacts.generate, 10000);
  EXPECT_EQ(spec->contacts.seed, 42U);
}

TEST(campaign_file, demo_carrier_settings_are_valid_simulated_settings) {
  auto spec = load_campaign_file(config_dir / "demo.yaml", options());
  ASSERT_TRUE(spec) << spec.error().message;
  auto settings = carriers::parse_simulated_carrier_settings(spec->carrier_settings);
  ASSERT_TRUE(settings) << settings.error().message;
  EXPECT_GE(settings->time_acceleration, 100.0);
}

TEST(campaign_file, demo_numbers_are_in_the_simulated_inventory) {
  auto spec = load_campaign_file(config_dir / "demo.yaml", options());
  ASSERT_TRUE(spec) << spec.error().message;
  const auto inventory = carriers::simulated_inventory();
  for (const auto& n : spec->numbers) {
    EXPECT_TRUE(std::any_of(inventory.begin(), inventory.end(), [&](const auto& e) {
      return e.e164 == n.e164;
    })) << n.e164;
  }
}

// The per-number limits must not be what keeps the demo from finishing in well under a minute.
TEST(campaign_file, demo_number_limits_allow_every_attempt_within_half_a_minute) {
  auto spec = load_campaign_file(config_dir / "demo.yaml", options());
  ASSERT_TRUE(spec) << spec.error().message;
  double cps = 0;
  int slots = 0;
  for (const auto& n : spec->numbers) {
    cps += n.max_cps.value_or(1.0);
    slots += n.max_concurrent_calls.value_or(1);
  }
  const double worst_case_attempts = *spec->contacts.generate * spec->retry.max_attempts();
  EXPECT_LE(worst_case_attempts / cps, 30.0);
  EXPECT_GE(slots, spec->max_concurrency);
}

TEST(campaign_file, templates_load_when_their_variables_are_set) {
  const auto o = options({{"TWILIO_ACCOUNT_SID", "AC123"},
                          {"TWILIO_AUTH_TOKEN", "tw-token"},
                          {"TELNYX_API_KEY", "KEY123"},
                          {"SIP_USERNAME", "trunk-user"},
                          {"SIP_PASSWORD", "trunk-pass"}});
  const std::pair<const char*, const char*> templates[] = {
      {"twilio.yaml", "twilio"}, {"telnyx.yaml", "telnyx"}, {"sip-trunk.yaml", "sip"}};
  for (const auto& [file, carrier] : templates) {
    // Loaded from the test data folder, which holds the contacts.csv and dnc.txt the templates name.
    auto spec = load_campaign_text(read_text(config_dir / file), file, data_dir, o);
    ASSERT_TRUE(spec) << spec.error().message;
    EXPECT_EQ(spec->carrier, carrier);
    EXPECT_EQ(spec->do_not_call_file, data_dir / "dnc.txt");
  }
}

TEST(campaign_file, template_secrets_are_resolved_from_the_environment) {
  auto r = check(read_text(config_dir / "sip-trunk.yaml"),
                 options({{"SIP_USERNAME", "trunk-user"}, {"SIP_PASSWORD", "trunk-pass"}}));
  ASSERT_TRUE(r.ok()) << format_diagnostic("sip-trunk.yaml", r.errors.front());
  EXPECT_EQ(r.spec.carrier_settings["username"], "trunk-user");
  EXPECT_EQ(r.spec.carrier_settings["password"], "trunk-pass");
}

// The Twilio template holds no credential at all: they are the serving processes' (DIALER_TWILIO_*).
TEST(campaign_file, the_twilio_template_needs_no_secret_to_load) {
  auto r = check(read_text(config_dir / "twilio.yaml"), options());
  ASSERT_TRUE(r.ok()) << format_diagnostic("twilio.yaml", r.errors.front());
  EXPECT_FALSE(r.spec.carrier_settings.contains("auth_token"));
  EXPECT_EQ(r.spec.carrier_settings["base_url"], "https://api.twilio.com");
  auto t = check(read_text(config_dir / "telnyx.yaml"), options());
  ASSERT_TRUE(t.ok()) << format_diagnostic("telnyx.yaml", t.errors.front());
  EXPECT_FALSE(t.spec.carrier_settings.contains("api_key"));
}

// --- all errors at once, with positions -------------------------------------------------------------------

TEST(campaign_file, reports_every_error_of_a_file_with_its_line_and_column) {
  const auto file = data_dir / "many-errors.yaml";
  auto r = load_campaign_file(file, options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_input);
  const auto f = file.string();
  EXPECT_EQ(
      r.error().message,
      f +
          ":1:7: name: expected a campaign name of 1 to 100 letters, digits, '.', '_' or '-', got \"spring "
          "renewals\"\n" +
          f + ":3:1: concurency: expected a known key, got \"concurency\"; did you mean \"concurrency\"?\n" +
          f +
          ":6:11: numbers[1].e164: expected an E.164 phone number like \"+14155550100\", got \"+1555\"\n" +
          f +
          ":8:10: window.start: expected a time of day like \"08:00\" (HH:MM from 00:00 to 24:00), got "
          "\"8am\"\n" +
          f +
          ":9:9: window.days: expected days like mon-fri, \"mon,wed,fri\" or every day, got "
          "\"mon-funday\"\n" +
          f + ":11:30: retry.busy.delay: expected a duration like 10m, got \"soon\"\n" + f +
          ":13:9: contacts.file: expected an existing file or contacts.generate to create it, got "
          "\"missing.csv\" "
          "(not found: " +
          (data_dir / "missing.csv").string() + ")");
}

TEST(campaign_file, structured_errors_carry_line_column_path_and_message) {
  auto r = check(with("concurrency: lots\n"));
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors[0],
            (diagnostic{5, 14, "concurrency", "expected an integer from 1 to 10000, got \"lots\""}));
}

TEST(campaign_file, yaml_syntax_error_is_reported_with_its_position) {
  // An unclosed flow list is noticed where the input ends.
  EXPECT_EQ(errors_of("name: t\nagent: [a,\n  b: c\n"),
            "t.yaml:4:1: expected valid YAML, got a syntax error: end of sequence flow not found");
  EXPECT_EQ(errors_of("name: t\n  agent: a\n"),
            "t.yaml:2:8: expected valid YAML, got a syntax error: illegal map value");
}

TEST(campaign_file, empty_file_is_an_error) {
  EXPECT_EQ(errors_of(""),
            "t.yaml:1:1: expected a mapping of campaign settings (name, agent, contacts...), got an "
            "empty file");
}

TEST(campaign_file, missing_required_fields_point_at_the_parent_mapping) {
  EXPECT_EQ(
      errors_of("create_agent: true\ncontacts:\n  generate: 5\n"),
      "t.yaml:1:1: name: expected a campaign name of 1 to 100 letters, digits, '.', '_' or '-', got nothing\n"
      "t.yaml:1:1: agent: expected an agent name, got nothing\n"
      "t.yaml:3:3: contacts.file: expected the path of the contacts CSV file, got nothing");
  EXPECT_EQ(errors_of("name: t\nagent: a\n"),
            "t.yaml:1:1: contacts: expected a mapping with file (the contacts CSV), got nothing");
}

// --- unknown and duplicate keys ----------------------------------------------------------------------------

TEST(campaign_file, unknown_key_suggests_the_closest_known_key) {
  EXPECT_EQ(
      errors_of(with("concurency: 5\n")),
      "t.yaml:5:1: concurency: expected a known key, got \"concurency\"; did you mean \"concurrency\"?");
  EXPECT_EQ(
      errors_of(with("caller_id: {stratgey: round_robin}\n")),
      "t.yaml:5:13: caller_id.stratgey: expected a known key, got \"stratgey\"; did you mean \"strategy\"?");
}

TEST(campaign_file, unknown_key_far_from_any_known_key_lists_the_known_keys) {
  EXPECT_EQ(
      errors_of(with("retry:\n  completed: {retry: true}\n")),
      "t.yaml:6:3: retry.completed: expected one of max_attempts, busy, no_answer, failed, voicemail, got "
      "unknown key \"completed\"");
}

TEST(campaign_file, duplicate_key_is_an_error) {
  EXPECT_EQ(errors_of(with("concurrency: 5\nconcurrency: 6\n")),
            "t.yaml:6:1: concurrency: expected each key once, got \"concurrency\" again (first at line 5)");
}

// --- secrets and environment references --------------------------------------------------------------------

TEST(campaign_file, inline_secret_is_rejected_without_echoing_it) {
  const auto message =
      errors_of(with("carrier:\n  name: twilio\n  settings:\n    auth_token: sup3r-s3cret\n"));
  EXPECT_EQ(
      message,
      "t.yaml:8:17: carrier.settings.auth_token: expected an environment variable reference like "
      "${AUTH_TOKEN}, got an inline value (secrets are never written in campaign files: set an environment "
      "variable and reference it)");
  EXPECT_EQ(message.find("sup3r"), std::string::npos);
}

TEST(campaign_file, secret_key_names_match_case_insensitively_and_cover_nested_values) {
  auto r = check(
      with("carrier:\n  name: sip\n  settings:\n    API_KEY: abc\n    credentials:\n      Authorization: "
           "def\n    digest:\n      password: [\"x\"]\n"));
  ASSERT_EQ(r.errors.size(), 3U);
  EXPECT_EQ(r.errors[0].path, "carrier.settings.API_KEY");
  EXPECT_EQ(r.errors[1].path, "carrier.settings.credentials.Authorization");
  EXPECT_EQ(r.errors[2].path, "carrier.settings.digest.password[0]");
  for (const auto& e : r.errors) EXPECT_NE(e.message.find("inline value"), std::string::npos) << e.message;
}

TEST(campaign_file, unset_environment_variable_is_named) {
  EXPECT_EQ(
      errors_of(with("carrier:\n  name: telnyx\n  settings:\n    api_key: ${TELNYX_API_KEY}\n")),
      "t.yaml:8:14: carrier.settings.api_key: expected environment variable TELNYX_API_KEY to be set, got it "
      "unset");
}

TEST(campaign_file, references_in_any_settings_string_are_resolved) {
  auto r =
      check(with("carrier:\n  name: telnyx\n  settings:\n    base_url: \"https://${HOST}:${PORT}/v2\"\n"),
            options({{"HOST", "fake.local"}, {"PORT", "8080"}}));
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  EXPECT_EQ(r.spec.carrier_settings["base_url"], "https://fake.local:8080/v2");
}

TEST(campaign_file, settings_keep_yaml_scalar_types) {
  auto r =
      check(with("carrier:\n  name: simulated\n  settings:\n    time_acceleration: 60\n    seed: \"7\"\n"
                 "    rates: {busy: 0.5}\n    instant: true\n    mode: timed\n"));
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  EXPECT_EQ(
      r.spec.carrier_settings,
      nlohmann::json::parse(
          R"({"time_acceleration": 60, "seed": "7", "rates": {"busy": 0.5}, "instant": true, "mode": "timed"})"));
}

TEST(campaign_file, unknown_carrier_name_lists_the_known_ones) {
  EXPECT_EQ(errors_of(with("carrier:\n  name: twillio\n")),
            "t.yaml:6:9: carrier.name: expected one of simulated, sip, telnyx, twilio, got \"twillio\"; did "
            "you mean "
            "\"twilio\"?");
}

// --- values
// --------------------------------------------------------------------------------------------------

TEST(campaign_file, bad_duration_names_the_field_and_the_expected_form) {
  EXPECT_EQ(errors_of(with("retry:\n  busy:\n    retry: true\n    delay: soon\n")),
            "t.yaml:8:12: retry.busy.delay: expected a duration like 10m, got \"soon\"");
}

TEST(campaign_file, duration_beyond_the_policy_limit_says_so) {
  EXPECT_EQ(errors_of(with("retry:\n  no_answer: {retry: true, delay: 400d}\n")),
            "t.yaml:6:35: retry.no_answer.delay: expected a duration of at most 366d, got \"400d\"");
}

TEST(campaign_file, provisioning_needs_listed_numbers) {
  EXPECT_EQ(
      errors_of(with("provision_numbers: true\n")),
      "t.yaml:5:20: numbers: expected at least one number to buy when provision_numbers is true, got none");
}

TEST(campaign_file, retry_without_a_delay_needs_one_when_the_default_is_zero) {
  EXPECT_EQ(
      errors_of(with("retry:\n  voicemail: {retry: true}\n")),
      "t.yaml:6:14: retry.voicemail.delay: expected a duration like 10m when retry is true, got nothing");
}

TEST(campaign_file, bad_time_of_day_is_rejected) {
  EXPECT_EQ(errors_of(with("window:\n  end: \"25:00\"\n")),
            "t.yaml:6:8: window.end: expected a time of day like \"08:00\" (HH:MM from 00:00 to 24:00), got "
            "\"25:00\"");
}

TEST(campaign_file, window_end_must_follow_its_start) {
  EXPECT_EQ(errors_of(with("window:\n  start: \"09:00\"\n  end: \"08:00\"\n")),
            "t.yaml:7:8: window.end: expected a time after window.start (09:00), got \"08:00\"");
}

TEST(campaign_file, bad_weekday_is_rejected_in_a_string_and_in_a_list) {
  EXPECT_EQ(
      errors_of(with("window:\n  days: mon-fry\n")),
      "t.yaml:6:9: window.days: expected days like mon-fri, \"mon,wed,fri\" or every day, got \"mon-fry\"");
  EXPECT_EQ(errors_of(with("window:\n  days: [mon, thurs-day]\n")),
            "t.yaml:6:15: window.days[1]: expected days like mon-fri, \"mon,wed,fri\" or every day, got "
            "\"thurs-day\"");
}

TEST(campaign_file, window_accepts_day_lists_every_day_and_extra_holidays) {
  auto r = check(with("window:\n  days: [mon, wed-thu]\n  holidays: none\n  extra_holidays: [2026-12-24]\n"));
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  EXPECT_EQ(r.spec.window.days,
            rules::weekdays::monday | rules::weekdays::wednesday | rules::weekdays::thursday);
  EXPECT_FALSE(r.spec.window.us_holidays);
  ASSERT_EQ(r.spec.window.extra_holidays.size(), 1U);
  EXPECT_EQ(r.spec.window.extra_holidays[0], std::chrono::year{2026} / 12 / 24);
  EXPECT_EQ(check(with("window: {days: every day}\n")).spec.window.days, rules::weekdays::every_day);
}

TEST(campaign_file, bad_holiday_date_is_rejected) {
  EXPECT_EQ(errors_of(with("window:\n  extra_holidays: [2026-02-30]\n")),
            "t.yaml:6:20: window.extra_holidays[0]: expected a date like 2026-12-24 (YYYY-MM-DD), got "
            "\"2026-02-30\"");
}

TEST(campaign_file, bad_e164_is_reported_at_its_list_item) {
  EXPECT_EQ(errors_of(with("numbers:\n  - \"+14155550100\"\n  - \"+1415\"\n")),
            "t.yaml:7:5: numbers[1]: expected an E.164 phone number like \"+14155550100\", got \"+1415\"");
}

TEST(campaign_file, numbers_are_stored_as_normalised_e164) {
  auto r = check(
      with("numbers:\n  - \"(415) 555-0100\"\n  - {e164: \"+1 212 555 0100\", max_concurrent: 3, max_cps: "
           "0.5}\n"));
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  ASSERT_EQ(r.spec.numbers.size(), 2U);
  EXPECT_EQ(r.spec.numbers[0].e164, "+14155550100");
  EXPECT_EQ(r.spec.numbers[1].e164, "+12125550100");
  EXPECT_EQ(r.spec.numbers[1].max_concurrent_calls, 3);
  EXPECT_EQ(r.spec.numbers[1].max_cps, 0.5);
}

TEST(campaign_file, a_number_listed_twice_is_an_error) {
  EXPECT_EQ(
      errors_of(with("numbers: [\"+14155550100\", \"+1 415 555 0100\"]\n")),
      "t.yaml:5:27: numbers[1]: expected each number once, got \"+14155550100\" again (first at numbers[0])");
}

TEST(campaign_file, bad_strategy_lists_the_strategies) {
  EXPECT_EQ(errors_of(with("caller_id:\n  strategy: local-presence\n")),
            "t.yaml:6:13: caller_id.strategy: expected one of round_robin, least_loaded, local_presence, got "
            "\"local-presence\"; did you mean \"local_presence\"?");
}

TEST(campaign_file, concurrency_out_of_range_or_of_the_wrong_type_is_rejected) {
  EXPECT_EQ(errors_of(with("concurrency: 0\n")),
            "t.yaml:5:14: concurrency: expected an integer from 1 to 10000, got \"0\"");
  EXPECT_EQ(errors_of(with("concurrency: 10001\n")),
            "t.yaml:5:14: concurrency: expected an integer from 1 to 10000, got \"10001\"");
  EXPECT_EQ(errors_of(with("concurrency: [5]\n")),
            "t.yaml:5:14: concurrency: expected an integer from 1 to 10000, got a list");
  EXPECT_EQ(errors_of(with("concurrency: 2.5\n")),
            "t.yaml:5:14: concurrency: expected an integer from 1 to 10000, got \"2.5\"");
}

TEST(campaign_file, booleans_must_be_true_or_false) {
  EXPECT_EQ(errors_of(with("create_agent: maybe\n")),
            "t.yaml:5:15: create_agent: expected true or false, got \"maybe\"");
}

TEST(campaign_file, optional_fields_take_their_documented_defaults) {
  auto r = check(minimal);
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  EXPECT_EQ(r.spec.carrier, "simulated");
  EXPECT_TRUE(r.spec.carrier_settings.empty());
  EXPECT_EQ(r.spec.max_concurrency, 10);
  EXPECT_EQ(r.spec.strategy, sched::caller_id_strategy::round_robin);
  EXPECT_TRUE(r.spec.sticky_retries);
  EXPECT_EQ(r.spec.window.start, 8h);
  EXPECT_EQ(r.spec.window.end, 21h);
  EXPECT_EQ(r.spec.window.days, rules::weekdays::mon_fri);
  EXPECT_TRUE(r.spec.window.us_holidays);
  EXPECT_EQ(r.spec.retry.max_attempts(), 3);
  EXPECT_EQ(r.spec.default_region, "US");
  EXPECT_TRUE(r.spec.numbers.empty());
  EXPECT_FALSE(r.spec.create_agent);
  EXPECT_FALSE(r.spec.do_not_call_file.has_value());
}

TEST(campaign_file, default_region_must_be_a_known_region) {
  EXPECT_EQ(
      errors_of(with("default_region: XX\n")),
      "t.yaml:5:17: default_region: expected an ISO 3166-1 alpha-2 region code like US or GB, got \"XX\"");
  EXPECT_EQ(check(with("default_region: gb\n")).spec.default_region, "GB");
}

// --- paths -------------------------------------------------------------------------------------------------

TEST(campaign_file, contacts_path_is_resolved_against_the_yaml_folder) {
  auto r = check("name: t\nagent: a\ncontacts:\n  file: ../campaigns/./contacts.csv\ndo_not_call: dnc.txt\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  EXPECT_EQ(r.spec.contacts.file, data_dir / "contacts.csv");
  EXPECT_EQ(r.spec.do_not_call_file, data_dir / "dnc.txt");
}

TEST(campaign_file, absolute_contacts_path_stays_absolute) {
  const auto absolute = (data_dir / "contacts.csv").string();
  auto r = check_campaign_text("name: t\nagent: a\ncontacts:\n  file: " + absolute + "\n", "/nonexistent",
                               options());
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  EXPECT_EQ(r.spec.contacts.file, absolute);
}

TEST(campaign_file, missing_contacts_file_is_an_error_only_without_generate) {
  EXPECT_EQ(errors_of("name: t\nagent: a\ncontacts:\n  file: nope.csv\n"),
            "t.yaml:4:9: contacts.file: expected an existing file or contacts.generate to create it, got "
            "\"nope.csv\" "
            "(not found: " +
                (data_dir / "nope.csv").string() + ")");
  auto r = check("name: t\nagent: a\ncontacts:\n  file: nope.csv\n  generate: 100\n  seed: 9\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().message;
  EXPECT_EQ(r.spec.contacts.file, data_dir / "nope.csv");
  EXPECT_EQ(r.spec.contacts.generate, 100);
  EXPECT_EQ(r.spec.contacts.seed, 9U);
}

TEST(campaign_file, generated_contacts_need_an_existing_folder) {
  EXPECT_EQ(
      errors_of("name: t\nagent: a\ncontacts:\n  file: no-dir/c.csv\n  generate: 100\n"),
      "t.yaml:4:9: contacts.file: expected a file in an existing folder, got \"no-dir/c.csv\" (no folder " +
          (data_dir / "no-dir").string() + ")");
}

TEST(campaign_file, missing_do_not_call_file_is_an_error) {
  EXPECT_EQ(errors_of(with("do_not_call: gone.txt\n")),
            "t.yaml:5:14: do_not_call: expected an existing file, got \"gone.txt\" (not found: " +
                (data_dir / "gone.txt").string() + ")");
}

TEST(campaign_file, missing_campaign_file_is_not_found) {
  auto r = load_campaign_file(data_dir / "no-such.yaml", options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_found);
}

}  // namespace
}  // namespace dialer::config
