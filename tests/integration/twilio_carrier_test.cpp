// The Twilio carrier end to end: real `dialer serve` processes on a fresh PostgreSQL database place calls through
// the fake Twilio of tests/fakes (real HTTP on loopback, Twilio's published request, answer, callback and error
// shapes), which posts signed status callbacks back to an engine's HTTP server. The fake's own record of the calls
// it created is the outside check: no attempt placed twice, and every contact's outcome is what the fake did with
// its call, whatever REST and callback faults it met on the way.
#include <set>

#include "tests/fakes/fake_twilio.hpp"
#include "tests/integration/e2e_fixture.hpp"

#include "adapters/carriers/rest/http_pool.hpp"

namespace dialer::testing::e2e {
namespace {

using fakes::callback_fault;
using fakes::fake_twilio;
using fakes::fake_twilio_options;
using fakes::rest_fault;

// What the fake did with a call, as the engine must have recorded it.
std::string expected_outcome(const fakes::call_snapshot& c) {
  if (c.status == "completed")
    return c.answered_by.rfind("machine_", 0) == 0 || c.answered_by == "fax" ? "voicemail" : "completed";
  if (c.status == "no-answer") return "no_answer";
  return c.status;  // busy, failed, canceled
}

class TwilioCarrier : public campaign_test {
 protected:
  // Where the carrier is told to post callbacks: a load balancer's name; the fake posts to a real engine instead
  // (options.callback_authority) and signs over this URL, as Twilio signs the URL it was given.
  static constexpr const char* kPublicBase = "http://dialer-lb.test";

  // An engine (or `dialer campaigns launch`) holding the fake account's credentials.
  static std::map<std::string, std::string> env_for(const fake_twilio_options& o) {
    return {{"DIALER_TWILIO_ACCOUNT_SID", o.account_sid},
            {"DIALER_TWILIO_AUTH_TOKEN", o.auth_token},
            {"DIALER_PUBLIC_BASE_URL", kPublicBase},
            {"DIALER_CAMPAIGN_POLL_MS", "200"}};
  }

  serving_dialer serve(const std::string& tag, const std::map<std::string, std::string>& env) {
    return serve_on_any_port(tag, {}, env);
  }

  // `contacts` callees NPA-555-01XX (fictional), whose last digits, which decide the fake's outcome (0-5
  // answered, 6 busy, 7 no answer, 8 failed, 9 a machine), come equally often.
  fs::path twilio_campaign(const fake_twilio& fake, int contacts) {
    static constexpr const char* area_codes[] = {"415", "212", "312", "646", "213", "305", "404", "617", "206",
                                                 "512", "303", "702", "214", "503", "615", "202"};
    const auto csv = dir_ / "contacts.csv";
    std::ofstream out(csv);
    out << "phone,first_name\n";
    for (int i = 0; i < contacts; ++i)
      out << fmt::format("+1{}55501{:02d},caller{}\n", area_codes[(i / 100) % std::size(area_codes)], i % 100, i);
    out.close();
    return campaign_file("twilio.yaml", {{"BASE_URL", fake.base_url()}, {"CONTACTS", csv.string()}});
  }

  // The invariants, from the fake's record: no attempt created twice; every call it created is an attempt of the
  // database with the outcome the fake gave it; every contact finished, and no attempt left open or unknown.
  void expect_every_call_once_and_as_the_carrier_ended_it(const fake_twilio& fake) {
    const auto placed = fake.placed();
    ASSERT_FALSE(placed.empty());
    std::map<std::int64_t, int> per_attempt;
    for (const auto& p : placed) EXPECT_EQ(++per_attempt[p.attempt], 1) << "attempt " << p.attempt << " placed twice";
    std::map<std::int64_t, std::string> recorded;
    for (const auto& row : query("SELECT id, coalesce(outcome, '<open>'), coalesce(carrier_call_id, '') FROM call_attempts"))
      recorded[row[0].as<std::int64_t>()] = row[1].as<std::string>();
    int checked = 0;
    for (const auto& p : placed) {
      const auto now = fake.call(p.sid);
      ASSERT_TRUE(now);
      ASSERT_TRUE(recorded.contains(p.attempt)) << "call " << p.sid << " of attempt " << p.attempt
                                                << " is not in the database";
      EXPECT_EQ(recorded[p.attempt], expected_outcome(*now))
          << "attempt " << p.attempt << " (" << p.sid << ", fault " << fakes::to_string(p.fault) << ")";
      ++checked;
    }
    EXPECT_EQ(checked, static_cast<int>(placed.size()));
    EXPECT_EQ(open_attempts(), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'unknown'"), 0)
        << table("SELECT id, detail FROM call_attempts WHERE outcome = 'unknown'");
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state IN ('pending', 'in_progress')"), 0);
  }
};

TEST_F(TwilioCarrier, ACampaignEndsRightThroughEveryRestAndCallbackFault) {
  // The fake needs the engine's port for its callbacks, and the engine the fake's credentials (its defaults): the
  // engine starts first.
  fake_twilio_options o;
  o.auth_token = "tok-" + std::string(28, 'q');  // a value no log line could hold by chance
  auto debug = env_for(o);
  debug["DIALER_LOG_LEVEL"] = "debug";
  auto s = serve("serve-a", debug);
  o.callback_authority = "127.0.0.1:" + std::to_string(s.port);
  o.seed = 5;
  // A machine stays on 5 s unless hung up: the engine's hang-up (on detection, 3 ms after the answer) never races
  // the machine's own end, which at the default 50 ms it could lose under a sanitizer's load.
  o.machine_talk = std::chrono::milliseconds(5000);
  o.rates.throttle = 0.05;
  o.rates.error_unprocessed = 0.05;
  o.rates.timeout_created = 0.04;
  o.rates.timeout_not_created = 0.04;
  o.rates.reset_created = 0.04;
  o.rates.reset_not_created = 0.04;
  o.rates.late = 0.1;
  o.rates.twice = 0.1;
  o.rates.out_of_order = 0.1;
  o.rates.never = 0.05;
  o.rates.bad_signature = 0.05;
  fake_twilio fake(o);
  fake.start();

  const auto launched = dialer({"campaigns", "launch", twilio_campaign(fake, 150).string()}, env_for(o));
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  ASSERT_TRUE(eventually([&] { return campaign_state("e2e-twilio") == "completed"; }, s.process.get(), 180s))
      << "state " << campaign_state("e2e-twilio") << "\n"
      << table("SELECT state, count(*) FROM contacts GROUP BY 1") << s.process->err();
  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait(), 0) << s.process->err();

  expect_every_call_once_and_as_the_carrier_ended_it(fake);
  const auto placed = fake.placed();
  std::set<rest_fault> met;
  for (const auto& p : placed) met.insert(p.fault);
  EXPECT_TRUE(met.contains(rest_fault::timeout_created) || met.contains(rest_fault::reset_created))
      << "the run should include calls whose create answer was lost";
  const auto counters = fake.counters();
  EXPECT_GT(counters.answers.count(429) ? counters.answers.at(429) : 0, 0) << "the run met throttling";
  EXPECT_GT(counters.callbacks_bad_signed, 0);
  // Callbacks signed with the wrong token were refused (403), and those calls were settled by fetching them.
  EXPECT_GT(counters.requests.count("get_call") ? counters.requests.at("get_call") : 0, 0);
  // Machine answers were hung up by the engine (on_machine: hangup; a machine stays on 5 s otherwise), and
  // recorded as voicemail.
  EXPECT_GT(scalar("SELECT count(*) FROM call_attempts WHERE outcome = 'voicemail'"), 0);
  EXPECT_GT(counters.hangups, 0);
  // The auth token appears in no log line, no answer, no stored row.
  for (const auto& text : {s.process->err(), s.process->out(), launched.out, launched.err})
    EXPECT_EQ(text.find(o.auth_token), std::string::npos) << "the auth token leaked into the output";
  for (const auto& sql : {"SELECT coalesce(string_agg(settings::text, ''), '') FROM campaigns",
                          "SELECT coalesce(string_agg(params::text, ''), '') FROM carrier_callbacks",
                          "SELECT coalesce(string_agg(coalesce(detail, ''), ''), '') FROM call_attempts"})
    EXPECT_EQ(query(sql)[0][0].as<std::string>().find(o.auth_token), std::string::npos) << sql;
  // The inbox holds one final callback per call that sent one, however often it came.
  EXPECT_EQ(scalar("SELECT count(*) FROM (SELECT call_id FROM carrier_callbacks WHERE event = 'final' "
                   "GROUP BY call_id HAVING count(*) > 1) d"),
            0);
}

// Two engines behind one load balancer: every callback reaches engine B, whichever engine placed the call; each is
// applied once by the engine that placed it.
TEST_F(TwilioCarrier, CallbacksThatReachTheOtherEngineAreAppliedOnceByThePlacingEngine) {
  fake_twilio_options o;
  const auto env = env_for(o);
  auto a = serve("serve-a", env);
  auto b = serve("serve-b", env);
  ASSERT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= 2; }, a.process.get()));
  o.callback_authority = "127.0.0.1:" + std::to_string(b.port);
  o.seed = 9;
  o.rates.twice = 0.3;
  o.rates.out_of_order = 0.2;
  o.talk = std::chrono::milliseconds(100);
  fake_twilio fake(o);
  fake.start();

  const auto launched = dialer({"campaigns", "launch", twilio_campaign(fake, 1000).string()}, env);
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  ASSERT_TRUE(eventually([&] { return campaign_state("e2e-twilio") == "completed"; }, a.process.get(), 180s))
      << "state " << campaign_state("e2e-twilio") << "\n" << a.process->err() << b.process->err();
  a.process->signal(SIGTERM);
  b.process->signal(SIGTERM);
  EXPECT_EQ(a.process->wait(), 0) << a.process->err();
  EXPECT_EQ(b.process->wait(), 0) << b.process->err();

  expect_every_call_once_and_as_the_carrier_ended_it(fake);
  // Both engines placed calls (two adapter instances named in the callback URLs), and every callback went to B.
  std::set<std::string> instances;
  for (const auto& p : fake.placed()) {
    const auto at = p.status_callback.find("instance=");
    ASSERT_NE(at, std::string::npos) << p.status_callback;
    instances.insert(p.status_callback.substr(at + 9, p.status_callback.find('&', at) - at - 9));
  }
  EXPECT_EQ(instances.size(), 2u) << "both engines placed calls";
  EXPECT_EQ(scalar("SELECT count(DISTINCT instance) FROM carrier_callbacks"), 2);
  EXPECT_EQ(scalar("SELECT count(*) FROM carrier_callbacks WHERE taken_at IS NULL"), 0)
      << "every stored callback was taken by its engine";
  const auto counters = fake.counters();
  EXPECT_GT(counters.callbacks_sent, static_cast<std::int64_t>(fake.placed().size()))
      << "duplicates were sent (and changed nothing: the outcomes above are the fake's)";
}

// The account's calls per second (account_cps) is the account's, not each engine's: two engines on one account
// place, between them, no more creates in any second than it allows, as the fake saw them arrive.
TEST_F(TwilioCarrier, TwoEnginesShareTheAccountsCallsPerSecond) {
  fake_twilio_options o;
  const auto env = env_for(o);
  auto a = serve("serve-a", env);
  auto b = serve("serve-b", env);
  ASSERT_TRUE(eventually([&] { return scalar("SELECT count(*) FROM engines") >= 2; }, a.process.get()));
  o.callback_authority = "127.0.0.1:" + std::to_string(a.port);
  fake_twilio fake(o);
  fake.start();
  constexpr int kAccountCps = 4;
  auto file = twilio_campaign(fake, 1600);  // more than one engine's blocks: both have work
  {
    auto text = read_text(file);
    const std::string from = "account_cps: 500";
    text.replace(text.find(from), from.size(), "account_cps: " + std::to_string(kAccountCps));
    std::ofstream(file) << text;
  }
  const auto launched = dialer({"campaigns", "launch", file.string()}, env);
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  // Until both engines have placed calls, and enough of them to see the rate.
  const auto placers = [&] {
    std::set<std::string> instances;
    for (const auto& p : fake.placed())
      instances.insert(p.status_callback.substr(p.status_callback.find("instance=") + 9, 16));
    return instances.size();
  };
  ASSERT_TRUE(eventually([&] { return fake.placed().size() >= 60 && placers() >= 2; }, a.process.get(), 120s))
      << fake.placed().size() << " placed by " << placers() << " engines\n" << a.process->err() << b.process->err();
  ASSERT_EQ(dialer({"campaigns", "cancel", "e2e-twilio"}).exit_code, 0);
  a.process->signal(SIGTERM);
  b.process->signal(SIGTERM);
  EXPECT_EQ(a.process->wait(), 0) << a.process->err();
  EXPECT_EQ(b.process->wait(), 0) << b.process->err();

  auto placed = fake.placed();
  std::vector<std::chrono::system_clock::time_point> at;
  for (const auto& p : placed) at.push_back(p.created_at);
  std::sort(at.begin(), at.end());
  std::size_t worst = 0;
  for (std::size_t i = 0, j = 0; i < at.size(); ++i) {
    while (at[i] - at[j] >= std::chrono::seconds(1)) ++j;
    worst = std::max(worst, i - j + 1);
  }
  std::map<std::string, std::map<std::int64_t, int>> per_second;  // by engine instance: creates per second
  for (const auto& p : placed)
    ++per_second[p.status_callback.substr(p.status_callback.find("instance=") + 9, 16)]
                [std::chrono::duration_cast<std::chrono::seconds>(p.created_at - at.front()).count()];
  std::string timeline;
  for (const auto& [instance, seconds] : per_second) {
    timeline += instance + ":";
    for (const auto& [second, n] : seconds) timeline += fmt::format(" {}s:{}", second, n);
    timeline += "\n";
  }
  EXPECT_LE(worst, static_cast<std::size_t>(kAccountCps)) << "creates in one second, both engines together\n"
                                                         << timeline;
  // The check means something only if the engines dialed at the same time: some second holds creates of both.
  std::map<std::int64_t, std::set<std::string>> engines_in_second;
  for (const auto& [instance, seconds] : per_second)
    for (const auto& [second, n] : seconds) engines_in_second[second].insert(instance);
  EXPECT_TRUE(std::any_of(engines_in_second.begin(), engines_in_second.end(),
                          [](const auto& e) { return e.second.size() == 2; }))
      << "the two engines never dialed in the same second\n" << timeline;
}

// The REST client: keep-alive connections are reused, and where a request failed decides what the engine may do.
TEST(RestClient, KeepsConnectionsAliveAndSaysWhetherAFailedRequestCanHaveArrived) {
  fake_twilio fake;
  fake.start();
  carriers::rest::pool_options po;
  po.base_url = fake.base_url();
  po.max_connections = 4;
  po.timeout = std::chrono::seconds(5);  // the plain GETs: time enough under a sanitizer's load
  auto pool = carriers::rest::http_pool::make(po);
  ASSERT_TRUE(pool) << pool.error().message;
  carriers::rest::http_request get;
  get.target = "/2010-04-01/Accounts/" + fake.account_sid() + "/Calls.json";
  get.authorization = carriers::rest::basic_authorization(fake.account_sid(), fake.auth_token());
  for (int i = 0; i < 20; ++i) {
    const auto r = (*pool)->send_sync(get);
    ASSERT_EQ(r.fail, carriers::rest::failure::none) << r.error;
    EXPECT_EQ(r.status, 200u);
  }
  const auto stats = (*pool)->statistics();
  EXPECT_EQ(stats.connections_opened, 1u);
  EXPECT_EQ(stats.reused, 19u);
  EXPECT_EQ(fake.counters().connections_accepted, 1);

  // A create the fake receives and never answers: the call may exist (a pool of its own, that gives up soon).
  po.timeout = std::chrono::milliseconds(500);
  auto lossy = carriers::rest::http_pool::make(po);
  ASSERT_TRUE(lossy) << lossy.error().message;
  fake.fail_next(rest_fault::timeout_not_created);
  carriers::rest::http_request create;
  create.method = "POST";
  create.target = "/2010-04-01/Accounts/" + fake.account_sid() + "/Calls.json";
  create.content_type = "application/x-www-form-urlencoded";
  create.body = "To=%2B14155550123&From=%2B14155550100&Twiml=%3CResponse%2F%3E";
  create.authorization = get.authorization;
  auto lost = (*lossy)->send_sync(create);
  EXPECT_EQ(lost.fail, carriers::rest::failure::lost) << lost.error;
  fake.fail_next(rest_fault::reset_not_created);
  lost = (*lossy)->send_sync(create);
  EXPECT_EQ(lost.fail, carriers::rest::failure::lost) << lost.error;

  // Nothing listens: nothing can have arrived.
  const auto port = fake.port();
  fake.stop();
  carriers::rest::pool_options closed = po;
  closed.base_url = "http://127.0.0.1:" + std::to_string(port);
  auto nowhere = carriers::rest::http_pool::make(closed);
  ASSERT_TRUE(nowhere);
  const auto refused = (*nowhere)->send_sync(get);
  EXPECT_EQ(refused.fail, carriers::rest::failure::not_sent) << refused.error;
}

}  // namespace
}  // namespace dialer::testing::e2e
