// The dialing engine, whole (every stage and thread of it), under a manual clock with an in-memory database
// behind its four ports and a carrier that logs every origination. Each invariant is checked from that
// carrier log (what was placed, from which caller ID, when it started and ended), never from the engine's own
// counters.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <date/tz.h>
#include <fmt/format.h>

#include "engine/dialing/dialing_engine.hpp"
#include "tests/unit/fakes/memory_engine_ports.hpp"
#include "tests/unit/fakes/recording_carrier.hpp"

namespace dialer::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// Wednesday 2026-12-02 15:00 UTC.
const auto kStart = std::chrono::sys_days{std::chrono::year{2026} / 12 / 2} + 15h;

// The carrier_source of one engine: its campaign's calls go through `target` (the test's carrier or an
// endpoint onto it). The engine owns what make() returns; a forwarding carrier keeps the engine's
// teardown from destroying what the test owns, and detaches from it at the end (calls still running then
// report nothing, like a cut connection).
class test_carriers final : public carrier_source {
 public:
  explicit test_carriers(carrier& target) : target_(target) {}
  std::string account_key(const campaign_record&) const override { return "recording"; }
  result<std::unique_ptr<carrier>> make(const campaign_record&) override {
    return std::unique_ptr<carrier>(std::make_unique<forwarding>(target_));
  }

 private:
  class forwarding final : public carrier {
   public:
    explicit forwarding(carrier& t) : t_(t) {}
    ~forwarding() override { t_.set_events(nullptr); }
    std::string_view name() const noexcept override { return t_.name(); }
    double account_cps() const noexcept override { return t_.account_cps(); }
    void set_events(carrier_events* sink) noexcept override { t_.set_events(sink); }
    void originate(std::span<const origination_request> r) noexcept override { t_.originate(r); }
    void cancel(attempt_id a) noexcept override { t_.cancel(a); }
    result<std::optional<call_event>> lookup(attempt_id a, std::string_view id) override {
      return t_.lookup(a, id);
    }
    void drain(std::chrono::milliseconds d) noexcept override { t_.drain(d); }

   private:
    carrier& t_;
  };
  carrier& target_;
};

class EngineInvariants : public ::testing::Test {
 protected:
  EngineInvariants() : db_(clock_) {}

  phone_number& add_number(const std::string& e164, int max_concurrent, double max_cps) {
    phone_number n;
    n.id = number_id{static_cast<std::int64_t>(numbers_.size() + 1)};
    n.account = account_id{1};
    n.e164 = e164;
    n.country = "US";
    n.max_concurrent_calls = max_concurrent;
    n.max_cps = max_cps;
    n.agent = agent_id{1};
    n.agent_name = "bot";
    numbers_.push_back(n);
    db_.add_number(n);
    return numbers_.back();
  }

  // `count` contacts with distinct US numbers; a window open all day, every day, unless the test sets one.
  void add_campaign(int count, int concurrency, std::optional<window_spec> window = std::nullopt) {
    std::vector<std::string> callees;
    for (int i = 0; i < count; ++i) callees.push_back(fmt::format("+1415555{:04d}", i));
    add_campaign(callees, concurrency, std::move(window));
  }
  void add_campaign(const std::vector<std::string>& callees, int concurrency,
                    std::optional<window_spec> window = std::nullopt, const std::string& variables = "{}") {
    campaign_.id = campaign_id{1};
    campaign_.name = "invariants";
    campaign_.agent = agent_id{1};
    campaign_.agent_name = "bot";
    campaign_.agent_handoff = "sip:bot@agents.example.com";
    campaign_.carrier = "recording";
    campaign_.spec.max_concurrency = concurrency;
    if (window) {
      campaign_.spec.window = *window;
    } else {
      campaign_.spec.window.start = 0s;
      campaign_.spec.window.end = 24h;
      campaign_.spec.window.days = rules::weekdays::every_day;
      campaign_.spec.window.us_holidays = false;
    }
    campaign_.blocks.size = 16;
    for (std::size_t i = 0; i < callees.size(); ++i) {
      claimed_contact c;
      c.id = contact_id{1000 + static_cast<std::int64_t>(i)};
      c.row = static_cast<int>(i) + 2;
      c.e164 = callees[i];
      c.variables = variables;
      contacts_.push_back(c);
    }
    campaign_.state = campaign_state::running;  // launched, as the campaign service leaves it
    campaign_ = db_.add_campaign(campaign_, contacts_);
  }

  // An engine scoped to the campaign, run as `dialer run` runs one: until the campaign completes, is
  // cancelled, or is paused here (request_pause). A pause from elsewhere waits for its resume. The test
  // thread moves simulated time (the engine's threads and the carrier's worker are the clock's participants,
  // and time moves whenever all of them wait).
  struct background_run {
    // `via`: the engine's own endpoint onto the shared carrier (several engines at once); the carrier itself
    // otherwise.
    background_run(EngineInvariants& t, engine_options options, const std::string& engine_id,
                   carrier_endpoint* via = nullptr)
        : test(t),
          clock(t.clock_),
          carriers(via ? static_cast<carrier&>(*via) : static_cast<carrier&>(*t.carrier_)),
          engine(memory_ports(t.db_, engine_id), carriers, t.clock_, options,
                 engine_scope{{t.campaign_.id}}) {
      engine.watch(t.campaign_.id);
      engine.start();
    }
    ~background_run() { stop(); }
    // The first Ctrl-C of `dialer run`: the campaign is paused (for every engine), this engine drains and
    // returns.
    void request_pause() {
      paused_here = true;
      test.db_.set_state(test.campaign_.id, campaign_state::paused);
      engine.wake();
    }
    // The second Ctrl-C: at once.
    void request_stop_now() { engine.request_stop(stop_mode::now); }
    // Stops the engine at once (if it still runs) and joins it.
    void stop() {
      if (joined) return;
      engine.request_stop(stop_mode::now);
      while (!engine.stopped())
        (void)clock.run_while_not([&] { return engine.stopped(); }, std::chrono::hours(1));
      engine.join();
      joined = true;
    }
    // Whether the campaign has left the engine the way `dialer run` waits for.
    bool settled() const {
      if (engine.stopped()) return true;
      const auto w = engine.watched(test.campaign_.id);
      if (!w || !w->settled) return false;
      return !*w->settled || **w->settled != campaign_state::paused || paused_here;
    }
    // Moves time until the run ends (false if `limit` of simulated time passes first), then stops the engine
    // and joins it; out holds the campaign's status as the engine last saw it.
    bool finish(nanoseconds limit) {
      if (!clock.run_while_not([&] { return settled(); }, limit)) return false;
      const auto w = engine.watched(test.campaign_.id);
      engine.request_stop(stop_mode::drain);
      while (!engine.stopped())
        (void)clock.run_while_not([&] { return engine.stopped(); }, std::chrono::hours(1));
      engine.join();
      joined = true;
      if (w && w->settled && !*w->settled) {
        out = w->settled->error();
      } else {
        run_status s = w ? w->status : run_status{};
        if (w && w->settled) s.state = **w->settled;
        out = s;
      }
      return true;
    }

    EngineInvariants& test;
    manual_clock& clock;
    test_carriers carriers;
    dialing_engine engine;
    bool paused_here = false;
    bool joined = false;
    std::optional<result<run_status>> out;
  };

  // Runs an engine to the campaign's end in simulated time (at most `limit` of it).
  result<run_status> run(engine_options options = {}, const std::string& engine = "engine-a",
                         nanoseconds limit = std::chrono::hours(2)) {
    background_run r(*this, options, engine);
    const bool finished = r.finish(limit);
    EXPECT_TRUE(finished) << "the campaign did not finish within " << limit.count() / 1e9
                          << " s of simulated time";
    if (!finished) {
      r.stop();
      return make_error(errc::internal, "not finished");
    }
    return std::move(*r.out);
  }

  // Two numbers with room for 20 calls, and a campaign of 40 contacts at concurrency 4.
  void two_numbers_and_a_campaign_of_four() {
    add_number("+14155550100", 10, 50);
    add_number("+14155550101", 10, 50);
    add_campaign(40, 4);
  }
  // Cadences for runs of simulated minutes: idle threads look again every half second (events still wake
  // them).
  static engine_options in_minutes() {
    engine_options o;
    o.tick = o.campaign_poll = o.status_poll = o.idle_wait = 500ms;
    o.idle_poll = 1s;
    return o;
  }
  // Every call completes after `d`.
  static recording_carrier::planner lasting(nanoseconds d) {
    return [d](const origination_request&) {
      call_plan p;
      p.duration = d;
      return p;
    };
  }
  void make_carrier(recording_carrier::planner plan = {}, double account_cps = unlimited_cps) {
    if (!plan) plan = [](const origination_request&) { return call_plan{}; };
    carrier_ = std::make_unique<recording_carrier>(clock_, std::move(plan), account_cps);
  }

  // Invariant 4 (brief, invariant 7): two numbers; the first is reassigned to another agent, unassigned or
  // released once six calls have gone out. No call leaves on it more than a heartbeat later; the campaign
  // completes on the other.
  enum class withdrawal { reassigned, unassigned, released };
  void expect_no_call_after(withdrawal what) {
    add_number("+14155550100", 2, 10);
    add_number("+14155550101", 2, 10);
    add_campaign(40, 4);
    make_carrier();
    background_run r(*this, engine_options{}, "engine-a");
    ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 6; }, 1min));
    if (what == withdrawal::reassigned) db_.assign_number(numbers_[0].id, agent_id{2});
    if (what == withdrawal::unassigned) db_.assign_number(numbers_[0].id, agent_id{});
    if (what == withdrawal::released) db_.release_number(numbers_[0].id);
    const auto changed_at = clock_.monotonic();
    ASSERT_TRUE(r.finish(1h));
    ASSERT_TRUE(*r.out) << r.out->error().message;
    const engine_options defaults;
    int before = 0, after = 0, other = 0;
    for (const auto& c : carrier_->log()) {
      if (c.from == numbers_[0].e164) ++(c.placed_at > changed_at + defaults.heartbeat ? after : before);
      if (c.from == numbers_[1].e164) ++other;
    }
    EXPECT_GT(before, 0) << "the number took calls before it was withdrawn";
    EXPECT_EQ(after, 0) << "calls placed on the number more than a heartbeat after it was withdrawn";
    EXPECT_EQ(by_state()["done"], 40);
    EXPECT_GT(other, 20);
    EXPECT_EQ(dialed_twice(carrier_->log()), "");
  }

  std::map<std::string, std::int64_t> by_state() const {
    std::map<std::string, std::int64_t> out;
    for (const auto& c : db_.contacts()) ++out[c.state];
    return out;
  }

  manual_clock clock_{kStart};
  memory_database db_;
  std::unique_ptr<recording_carrier> carrier_;
  campaign_record campaign_;
  std::vector<phone_number> numbers_;
  std::vector<claimed_contact> contacts_;
};

TEST_F(EngineInvariants, ACampaignCompletesWithinEveryCapAsTheCarrierCountsIt) {
  add_number("+14155550100", 4, 2);
  add_number("+14155550101", 4, 2);
  add_campaign(80, 20);
  make_carrier();
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  EXPECT_EQ(by_state()["done"], 80);
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 80u);
  EXPECT_EQ(dialed_twice(log), "");
  for (const auto& [from, peak] : peak_concurrency(log)) EXPECT_LE(peak, 4) << from;
  for (const auto& n : numbers_) EXPECT_LE(max_in_window(log, n.e164), 2) << n.e164;
}

// Invariant 1 and 15: decisions that waited through a database stall are paced again before they are placed.
// The stall holds the attempt journal for 3 s while the scheduler keeps deciding at 2 calls/s per number.
TEST_F(EngineInvariants, AfterADatabaseStallNoCallerIdBurstsAboveItsCps) {
  add_number("+14155550100", 10, 2);
  add_campaign(40, 20);
  make_carrier();
  db_.set_fault(store_call::record_attempts, fault{.stall = 3s, .times = 2, .before = {}});
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 40u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(max_in_window(log, "+14155550100"), 2);
}

// Invariant 15, per carrier account: two caller IDs of 10 calls/s each on an account the carrier lets place 5
// calls/s. The carrier counts arrivals on the account as a whole; no second of its log holds more than 5.
TEST_F(EngineInvariants, TheCarrierAccountsCpsHoldsOverAllItsCallerIds) {
  add_number("+14155550100", 10, 10);
  add_number("+14155550101", 10, 10);
  add_campaign(60, 20);
  make_carrier({}, 5);
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 60u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(max_in_window(log, ""), 5) << "the account's 5 calls/s, both caller IDs together";
  std::set<std::string> used;
  for (const auto& c : log) used.insert(c.from);
  EXPECT_EQ(used.size(), 2u) << "both caller IDs took calls";
}

// Invariant 1, the calling window: decisions taken a few seconds before the callees' window closes are held
// up by a 40 s stall of the attempt journal; by the time they could be placed the window has closed, and they
// must wait for it to open again (tomorrow), not go out late.
TEST_F(EngineInvariants, ADecisionHeldUpAcrossTheWindowsCloseIsNotPlacedAfterIt) {
  add_number("+14155550100", 10, 1);
  // The callees are in New York, where the run starts at 10:00 (15:00 UTC); their window closes at 10:01.
  window_spec window;
  window.start = 0h;
  window.end = 10h + 1min;
  window.days = rules::weekdays::every_day;
  window.us_holidays = false;
  std::vector<std::string> callees;
  for (int i = 0; i < 120; ++i) callees.push_back(fmt::format("+1212555{:04d}", i));
  add_campaign(callees, 10, window);
  make_carrier(lasting(1s));
  const auto closes = std::chrono::nanoseconds(1min);  // from the start of simulated time
  background_run r(*this, in_minutes(), "engine-a");
  ASSERT_TRUE(clock_.run_until(closes - 5s));
  const auto before_stall = carrier_->log().size();
  ASSERT_GT(before_stall, 40u) << "one call a second went out until now";
  db_.set_fault(store_call::record_attempts, fault{.stall = 40s, .times = 1, .before = {}});
  ASSERT_TRUE(clock_.run_until(closes + 2min));
  const auto log = carrier_->log();
  for (const auto& c : log) EXPECT_LT(c.placed_at, closes) << c.to << " placed after the window closed";
  EXPECT_LT(log.size(), callees.size()) << "the window closed before every callee was reached";
  EXPECT_EQ(dialed_twice(log), "");
  r.request_stop_now();
  ASSERT_TRUE(r.finish(1h));
}

// Invariant 1, the slot lease: the engine's slot-lease renewals hang for a minute while calls wait for their
// turn (one a second). Once its lease on the number has run out nothing is placed on it, although decisions
// taken before are still waiting; after the renewal comes back the campaign goes on and completes.
TEST_F(EngineInvariants, NothingIsPlacedOnASlotWhoseLeaseRanOutDuringAStall) {
  add_number("+14155550100", 10, 1);
  add_campaign(60, 10);
  make_carrier(lasting(1s));
  engine_options options;
  options.lease = 10s;
  background_run r(*this, options, "engine-a");
  ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 5; }, 1min));
  db_.set_fault(store_call::lease_numbers, fault{.stall = 60s, .times = 1, .before = {}});
  const auto stalled_at = clock_.monotonic();
  ASSERT_TRUE(clock_.run_until(stalled_at + 20s));
  const auto lapsed = db_.lease_until(numbers_[0].id, "engine-a");
  ASSERT_TRUE(lapsed.has_value());
  ASSERT_LT(*lapsed, clock_.wall()) << "the lease should have run out during the stall";
  const auto lapsed_at = std::chrono::duration_cast<nanoseconds>(*lapsed - kStart);
  ASSERT_TRUE(r.finish(2h));
  ASSERT_TRUE(*r.out) << r.out->error().message;
  EXPECT_EQ((*r.out)->state, campaign_state::completed);
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 60u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(max_in_window(log, "+14155550100"), 1);
  for (const auto& c : log)
    EXPECT_FALSE(c.placed_at >= lapsed_at && c.placed_at < stalled_at + 60s)
        << c.to << " placed at " << c.placed_at.count() / 1e9 << " s, while the lease had lapsed (at "
        << lapsed_at.count() / 1e9 << " s) and its renewal hung";
}

// Invariant 7, `not_placed`: the carrier says it placed nothing (a 503 before the request was processed). The
// contact is tried again later; the refusal is not an attempt (no attempt row stays, the contact's attempt
// count does not move), so every contact is placed once, as attempt 1.
TEST_F(EngineInvariants, ARefusalThatPlacedNothingIsRetriedAndIsNotAnAttempt) {
  add_number("+14155550100", 4, 10);
  add_campaign(30, 4);
  ASSERT_TRUE(campaign_.spec.retry.set_max_attempts(1));
  db_.set_spec(campaign_.id, campaign_.spec);
  std::mutex m;
  std::set<std::int64_t> refused_once;  // contacts refused on their first try
  make_carrier([&](const origination_request& r) {
    call_plan p;
    std::lock_guard g(m);
    if (refused_once.insert(r.contact.value()).second) p.refuse = origination_refusal::not_placed;
    return p;
  });
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  EXPECT_EQ(refused_once.size(), 30u);
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 30u) << "every contact placed once, after its refusal";
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_EQ(by_state()["done"], 30);
  for (const auto& c : db_.contacts()) EXPECT_EQ(c.attempts, 1) << c.data.e164;
  const auto attempts = db_.attempts();
  EXPECT_EQ(attempts.size(), 30u);
  for (const auto& a : attempts) {
    EXPECT_EQ(a.attempt_no, 1) << "attempt " << a.id.value();
    ASSERT_TRUE(a.outcome.has_value()) << a.id.value();
    EXPECT_EQ(a.outcome->outcome, call_outcome::completed);
  }
}

// Invariant 1: CPS spacing counts from when the carrier took a call, not from when the engine let it go. The
// first batch reaches the carrier 30 ms late; the next call leaves a second after the batch was let go and
// arrives at once, so spacing from the earlier time put five arrivals inside one second at max_cps 4.
TEST_F(EngineInvariants, ALateHandOverDoesNotLetTheNextCallsCrowdIntoItsSecond) {
  add_number("+14155550100", 10, 4);
  add_campaign(12, 10);
  make_carrier();
  carrier_->slow_intake(30ms, 1);
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 12u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(max_in_window(log, "+14155550100"), 4);
}

// Invariant 1, across engines: a number's CPS is one budget at the carrier. Engine A dials at the full 4
// calls/s, is paused and lets its slots go the moment its short calls end; engine B takes them at once.
// Without a quiet second on slots another engine has just let go, B's first calls joined A's last four inside
// one second.
TEST_F(EngineInvariants, SlotsAnotherEngineJustLetGoWaitOutTheirSecond) {
  add_number("+14155550100", 4, 4);
  add_campaign(24, 4);
  make_carrier(lasting(50ms));
  {
    background_run a(*this, engine_options{}, "engine-a");
    ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 8; }, 1min));
    a.request_pause();
    ASSERT_TRUE(a.finish(1h));
    ASSERT_TRUE(*a.out) << a.out->error().message;
    ASSERT_EQ((*a.out)->state, campaign_state::paused);
  }
  const auto a_calls = carrier_->log().size();
  ASSERT_LT(a_calls, 24u);
  db_.set_state(campaign_.id, campaign_state::running);  // resumed, as `dialer campaign resume` would
  auto status = run(engine_options{}, "engine-b");
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 24u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(max_in_window(log, "+14155550100"), 4) << a_calls << " calls by engine A, then engine B";
}

// Invariant 10: calling windows end to end. Contacts in five zones (New York, Los Angeles, Anchorage,
// Honolulu and London), a 09:00-17:00 weekday window with Thursday 2026-12-03 a holiday, and every call
// unanswered and retried 3 h later until the fourth attempt: the campaign starts on Wednesday at 15:00 UTC
// with only New York and London open, opens the others one by one, closes each in turn, skips the holiday and
// finishes on Friday. Each call's start is checked in its callee's own zone, which the test names itself (not
// the runner's zone lookup).
TEST_F(EngineInvariants, CallsLeaveOnlyInsideEachCalleesWindowAcrossOpeningsClosingsAndAHoliday) {
  add_number("+14155550100", 10, 5);
  struct zone_case {
    const char* format;
    const char* zone;
  };
  const zone_case zones[] = {{"+121255501{:02d}", "America/New_York"},
                             {"+141555501{:02d}", "America/Los_Angeles"},
                             {"+190755501{:02d}", "America/Anchorage"},
                             {"+180855501{:02d}", "Pacific/Honolulu"},
                             {"+4420794600{:02d}", "Europe/London"}};
  std::vector<std::string> callees;
  std::map<std::string, const date::time_zone*> zone_of;
  for (const auto& z : zones)
    for (int i = 0; i < 4; ++i) {
      callees.push_back(fmt::format(fmt::runtime(z.format), i));
      zone_of[callees.back()] = date::locate_zone(z.zone);
    }
  window_spec window;
  window.start = 9h;
  window.end = 17h;
  window.days = rules::weekdays::mon_fri;
  window.us_holidays = false;
  window.extra_holidays = {std::chrono::year{2026} / 12 / 3};
  add_campaign(callees, 10, window);
  ASSERT_TRUE(campaign_.spec.retry.set_rule(call_outcome::no_answer, {true, 3h}));
  ASSERT_TRUE(campaign_.spec.retry.set_max_attempts(4));
  db_.set_spec(campaign_.id, campaign_.spec);
  make_carrier([](const origination_request&) {
    call_plan p;
    p.duration = 20s;
    p.outcome = call_outcome::no_answer;
    return p;
  });
  // Two and a half simulated days: idle threads look again every few seconds instead of every few
  // milliseconds (events still wake them at once), so that the run takes seconds of real time.
  engine_options days;
  days.tick = days.heartbeat = days.campaign_poll = days.status_poll = days.idle_wait = days.idle_poll = 30s;
  days.lease = 5min;
  auto status = run(days, "engine-a", std::chrono::hours(96));
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  const auto log = carrier_->log();
  std::map<std::string, std::vector<std::string>> calls_to;
  for (const auto& c : log)
    calls_to[c.to].push_back(date::format(
        "%a %T", std::chrono::time_point_cast<std::chrono::seconds>(
                     kStart + std::chrono::duration_cast<std::chrono::system_clock::duration>(c.placed_at))));
  for (const auto& callee : callees)
    EXPECT_EQ(calls_to[callee].size(), 4u)
        << callee << " was called at (UTC) " << fmt::format("{}", fmt::join(calls_to[callee], ", "));
  EXPECT_EQ(dialed_twice(log), "");
  std::map<std::string, std::set<std::string>> local_days;  // zone -> local dates with calls
  for (const auto& c : log) {
    const auto it = zone_of.find(c.to);
    ASSERT_NE(it, zone_of.end()) << c.to;
    const auto wall = std::chrono::time_point_cast<std::chrono::seconds>(
        kStart + std::chrono::duration_cast<std::chrono::system_clock::duration>(c.placed_at));
    const auto local = date::make_zoned(it->second, wall).get_local_time();
    const auto day = date::floor<date::days>(local);
    const date::year_month_day ymd{day};
    const date::weekday wd{day};
    const auto time_of_day = local - day;
    const auto where =
        fmt::format("{} called at {} local ({})", c.to, date::format("%a %F %T", local), it->second->name());
    EXPECT_GE(time_of_day, 9h) << where;
    EXPECT_LT(time_of_day, 17h) << where;
    EXPECT_TRUE(wd != date::Saturday && wd != date::Sunday) << where;
    EXPECT_NE(ymd, date::year{2026} / 12 / 3) << where << ": a holiday";
    local_days[it->second->name()].insert(date::format("%F", ymd));
  }
  // The run crossed what it was meant to: every zone called on Wednesday and again on Friday.
  for (const auto& z : zones)
    EXPECT_EQ(local_days[z.zone], (std::set<std::string>{"2026-12-02", "2026-12-04"})) << z.zone;
}

// Invariant 2: a share that shrinks never releases a slot in use. Engine A holds all four slots of a number
// when engine B joins; A's next renewal reads what it has in flight (nothing: the window opens 30 s later)
// and is then held up for 40 s, while the window opens and A, still at its old limit, places four long calls.
// Releasing what the stale reading allowed handed two of those busy slots to B: six calls at once on a number
// limited to four.
TEST_F(EngineInvariants, AShareThatShrinksWhileCallsStartNeverReleasesASlotInUse) {
  add_number("+14155550100", 4, 1);
  window_spec window;  // the callees are in Los Angeles, where the run starts at 07:00
  window.start = 7h + 30s;
  window.end = 24h;
  window.days = rules::weekdays::every_day;
  window.us_holidays = false;
  add_campaign(24, 20, window);
  make_carrier(lasting(120s));
  auto options = in_minutes();
  options.lease = 120s;  // the held-up renewal must not let A's lease lapse
  carrier_endpoint to_a(*carrier_), to_b(*carrier_);
  background_run a(*this, options, "engine-a", &to_a);
  ASSERT_TRUE(clock_.run_until(clock_.monotonic() + 500ms));
  background_run b(*this, options, "engine-b", &to_b);
  db_.set_fault(store_call::lease_numbers, fault{.stall = 40s, .times = 1, .before = {}}, "engine-a");
  ASSERT_TRUE(a.finish(2h));
  ASSERT_TRUE(b.finish(2h));
  ASSERT_TRUE(*a.out) << a.out->error().message;
  ASSERT_TRUE(*b.out) << b.out->error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 24u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(peak_concurrency(log)["+14155550100"], 4);
  EXPECT_EQ(by_state()["done"], 24);
}

// Invariant 3: the campaign's concurrency cap holds across engines. Two engines run one campaign of
// concurrency 4 over two numbers with room for 20 calls; the carrier never has more than 4 of its calls at
// once.
TEST_F(EngineInvariants, TheCampaignConcurrencyCapHoldsAcrossEngines) {
  two_numbers_and_a_campaign_of_four();
  make_carrier(lasting(30s));
  const auto options = in_minutes();
  carrier_endpoint to_a(*carrier_), to_b(*carrier_);
  background_run a(*this, options, "engine-a", &to_a);
  background_run b(*this, options, "engine-b", &to_b);
  ASSERT_TRUE(a.finish(2h));
  ASSERT_TRUE(b.finish(2h));
  ASSERT_TRUE(*a.out) << a.out->error().message;
  ASSERT_TRUE(*b.out) << b.out->error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 40u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(peak_concurrency_of_all(log), 4);  // every call of the campaign, whichever number it came from
  EXPECT_EQ(by_state()["done"], 40);
}

// Invariant 3, while draining: engine A is paused here (its own request) with four long calls in flight, and
// engine B joins the campaign. A's share of the cap shrinks to two, but its calls still hold four: a drained
// campaign is no longer in the scheduler's campaign list, and counting its calls from there gave two of their
// slots to B (six calls at once on a cap of four).
TEST_F(EngineInvariants, APausedEngineKeepsTheCampaignSlotsOfTheCallsItDrains) {
  two_numbers_and_a_campaign_of_four();
  make_carrier(lasting(120s));
  const auto options = in_minutes();
  carrier_endpoint to_a(*carrier_), to_b(*carrier_);
  background_run a(*this, options, "engine-a", &to_a);
  ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 4; }, 1min));
  a.request_pause();
  background_run b(*this, options, "engine-b", &to_b);
  ASSERT_TRUE(a.finish(2h));
  ASSERT_TRUE(*a.out) << a.out->error().message;
  db_.set_state(campaign_.id, campaign_state::running);  // resumed: B, which waited on the pause, finishes it
  ASSERT_TRUE(b.finish(2h));
  ASSERT_TRUE(*b.out) << b.out->error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(peak_concurrency_of_all(log), 4);
  EXPECT_EQ(by_state()["done"], 40) << "B finished what A left";
}

// Invariant 13: memory is bounded in bytes. Contacts carry 16 KB of variables each (the import's largest),
// the budget is 1 MiB, and the writer stalls three times for 5 s while calls keep ending: what the engine has
// claimed and not yet written back (the store's own count) never exceeds the budget. Counted in contacts
// alone, the hopper (four per slot of 50) and the writer's backlog held several MiB.
TEST_F(EngineInvariants, ClaimedContactsNeverOccupyMoreThanTheMemoryBudget) {
  add_number("+14155550100", 50, 100);
  std::vector<std::string> callees;
  for (int i = 0; i < 300; ++i) callees.push_back(fmt::format("+1415555{:04d}", i));
  const std::string variables = R"({"note": ")" + std::string(16000, 'x') + R"("})";
  add_campaign(callees, 50, std::nullopt, variables);
  make_carrier(lasting(2s));
  db_.set_fault(store_call::write_back, fault{.stall = 5s, .times = 3, .before = {}});
  engine_options options;
  options.memory_budget = 1u << 20;
  auto status = run(options);
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 300u);
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_EQ(by_state()["done"], 300);
  EXPECT_GT(db_.peak_held_bytes("engine-a"), 16000u * 16) << "the test must fill the budget to mean anything";
  EXPECT_LE(db_.peak_held_bytes("engine-a"), options.memory_budget);
}

// Invariant 14: calls of a crashed engine that the carrier still runs keep their slots until they end.
TEST_F(EngineInvariants, RecoveredCallsStillTalkingKeepTheirSlots) {
  add_number("+14155550100", 5, 50);
  add_campaign(40, 20);
  make_carrier();
  // The dead engine placed the first five contacts' first attempts; the carrier runs them for 30 s more. They
  // are adopted while the carrier's worker already waits (the order that once left them talking for ever).
  ASSERT_TRUE(clock_.run_until(clock_.monotonic()));
  for (int i = 0; i < 5; ++i) {
    const auto& c = contacts_[static_cast<std::size_t>(i)];
    db_.add_open_attempt(c.id, 1, numbers_[0].id, "rec-" + std::to_string(attempt_of(c.id, 1).value()),
                         "dead");
    carrier_->adopt(attempt_of(c.id, 1), c.id, numbers_[0].id, numbers_[0].e164, c.e164,
                    clock_.monotonic() + 30s);
  }
  engine_options options;
  options.lease = 2s;
  auto status = run(options);
  ASSERT_TRUE(status) << status.error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_LE(peak_concurrency(log)["+14155550100"], 5);
  // The recovered calls' outcomes were taken, not lost: every contact is done, the first five after one
  // attempt.
  EXPECT_EQ(by_state()["done"], 40);
  for (const auto& a : db_.attempts()) EXPECT_TRUE(a.outcome.has_value()) << a.id.value();
}

// Invariant 9: a number added to the do-not-call list during a run is not dialed, even when its contact was
// already claimed and waiting in the hopper.
TEST_F(EngineInvariants, DoNotCallIsCheckedAtDialTime) {
  add_number("+14155550100", 1, 1);
  add_campaign(16, 1);
  make_carrier();
  background_run r(*this, engine_options{}, "engine-a");
  // The whole block is claimed before the first call; then the last eight contacts go on the list.
  ASSERT_TRUE(clock_.run_while_not([&] { return !carrier_->log().empty(); }, 1min));
  std::set<std::string> listed;
  for (std::size_t i = 8; i < contacts_.size(); ++i) {
    db_.add_do_not_call(contacts_[i].e164);
    listed.insert(contacts_[i].e164);
  }
  ASSERT_TRUE(r.finish(1h));
  ASSERT_TRUE(*r.out) << r.out->error().message;
  for (const auto& c : carrier_->log()) EXPECT_FALSE(listed.contains(c.to)) << c.to << " was dialed";
  EXPECT_EQ(by_state()["do_not_call"], 8);
}

// Invariant 5: the database committed a batch of attempts but its acknowledgement was lost. The retry finds
// them recorded by this same engine and never placed: they are dialed, not turned into `unknown`.
TEST_F(EngineInvariants, ALostCommitAcknowledgementTurnsNothingIntoUnknown) {
  add_number("+14155550100", 4, 10);
  add_campaign(30, 4);
  make_carrier();
  db_.set_fault(store_call::record_attempts, fault{.lose_ack = true, .times = 1, .before = {}});
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(dialed_twice(log), "");
  EXPECT_EQ(log.size(), 30u);
  EXPECT_EQ(by_state()["done"], 30);
  for (const auto& a : db_.attempts()) {
    ASSERT_TRUE(a.outcome.has_value()) << a.id.value();
    EXPECT_NE(a.outcome->outcome, call_outcome::unknown) << "attempt " << a.id.value();
  }
}

// Invariant 7: an origination whose answer was lost may have placed the call. It is never redialed blindly:
// the engine takes the outcome if the carrier reports one, asks lookup() otherwise, and dials the contact
// again only when the carrier says there is no such call.
TEST_F(EngineInvariants, AnIndeterminateOriginationIsReconciledNeverRedialedBlindly) {
  add_number("+14155550100", 4, 10);
  add_campaign(30, 4);
  std::mutex m;
  std::set<std::int64_t> first_try;  // attempts already asked once
  make_carrier([&](const origination_request& r) {
    call_plan p;
    std::lock_guard g(m);
    const bool first = first_try.insert(r.attempt.value()).second;
    const auto k = r.contact.value() % 3;
    if (k == 0) p.lose_answer = true;                                    // placed, answer lost
    if (k == 1 && first) p.refuse = origination_refusal::indeterminate;  // not placed, answer lost
    return p;
  });
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  const auto log = carrier_->log();
  EXPECT_EQ(dialed_twice(log), "");
  std::map<std::int64_t, int> per_contact;
  for (const auto& c : log) ++per_contact[c.contact.value()];
  EXPECT_EQ(per_contact.size(), 30u);
  for (const auto& [contact, n] : per_contact)
    EXPECT_EQ(n, 1) << "contact " << contact << " was placed " << n << " times";
  EXPECT_EQ(by_state()["done"], 30);
  for (const auto& a : db_.attempts()) {
    ASSERT_TRUE(a.outcome.has_value()) << a.id.value();
    EXPECT_EQ(a.outcome->outcome, call_outcome::completed) << "attempt " << a.id.value();
  }
}

// Invariant 4 (brief, invariant 7): a number reassigned to another agent, unassigned or released mid-campaign
// places no further call for the old agent after the next heartbeat; the campaign goes on with its other
// number. Two numbers; the first is taken from the campaign's agent once six calls have gone out. No call
// leaves on it more than a heartbeat later; the campaign completes on the other.
TEST_F(EngineInvariants, ANumberReassignedMidCampaignStopsCallingWithinOneHeartbeat) {
  expect_no_call_after(withdrawal::reassigned);
}
TEST_F(EngineInvariants, ANumberUnassignedMidCampaignStopsCallingWithinOneHeartbeat) {
  expect_no_call_after(withdrawal::unassigned);
}
TEST_F(EngineInvariants, ANumberReleasedMidCampaignStopsCallingWithinOneHeartbeat) {
  expect_no_call_after(withdrawal::released);
}

// One engine, many campaigns: three campaigns of one agent run at once through one scheduler on the agent's
// two numbers. Together they want 18 calls at once; the numbers allow 8. The carrier sees every number within
// its cap and every campaign within its own, every contact called once, and each campaign under way from the
// start (turns, not one campaign after another).
TEST_F(EngineInvariants, CampaignsOfOneAgentShareItsNumbersWithinEveryCapAndTakeTurns) {
  add_number("+14155550100", 4, 20);
  add_number("+14155550101", 4, 20);
  std::vector<campaign_record> campaigns;
  for (int k = 0; k < 3; ++k) {
    campaign_record c;
    c.id = campaign_id{10 + k};
    c.name = fmt::format("shared-{}", k);
    c.agent = agent_id{1};
    c.agent_name = "bot";
    c.agent_handoff = "sip:bot@agents.example.com";
    c.carrier = "recording";
    c.state = campaign_state::running;
    c.spec.max_concurrency = 6;
    c.spec.window.start = 0s;
    c.spec.window.end = 24h;
    c.spec.window.days = rules::weekdays::every_day;
    c.spec.window.us_holidays = false;
    c.blocks.size = 16;
    std::vector<claimed_contact> contacts;
    for (int i = 0; i < 30; ++i) {
      claimed_contact x;
      x.id = contact_id{10'000 * (k + 1) + i};
      x.row = i + 2;
      x.e164 = fmt::format("+1415{}55{:04d}", 2 + k, i);
      x.variables = "{}";
      contacts.push_back(x);
    }
    campaigns.push_back(db_.add_campaign(c, contacts));
  }
  make_carrier(lasting(20s));
  test_carriers carriers(*carrier_);
  dialing_engine engine(memory_ports(db_, "engine-a"), carriers, clock_, in_minutes(), engine_scope{});
  for (const auto& c : campaigns) engine.watch(c.id);
  engine.start();
  const auto all_completed = [&] {
    for (const auto& c : campaigns) {
      const auto w = engine.watched(c.id);
      if (!w || !w->settled || !*w->settled || **w->settled != campaign_state::completed) return false;
    }
    return true;
  };
  const auto started = clock_.monotonic();
  ASSERT_TRUE(clock_.run_while_not(all_completed, 2h));
  engine.request_stop(stop_mode::drain);
  ASSERT_TRUE(clock_.run_while_not([&] { return engine.stopped(); }, 1h));
  engine.join();
  const auto log = carrier_->log();
  EXPECT_EQ(log.size(), 90u);
  EXPECT_EQ(dialed_twice(log), "");
  for (const auto& [from, peak] : peak_concurrency(log)) EXPECT_LE(peak, 4) << from;
  for (int k = 0; k < 3; ++k) {
    std::vector<placed_call> mine;
    std::optional<nanoseconds> first;
    for (const auto& c : log)
      if (c.contact.value() / 10'000 == k + 1) {
        mine.push_back(c);
        first = std::min(first.value_or(c.placed_at), c.placed_at);
      }
    EXPECT_EQ(mine.size(), 30u) << "campaign " << k;
    EXPECT_LE(peak_concurrency_of_all(mine), 6) << "campaign " << k;
    ASSERT_TRUE(first.has_value());
    // 90 calls of 20 s over 8 slots take about 4 minutes; each campaign starts within the first minute.
    EXPECT_LT(*first - started, 1min) << "campaign " << k << " waited for the others";
  }
  EXPECT_EQ(by_state()["done"], 90);
}

// One engine serves every running campaign of its database (`dialer serve`), and takes on a campaign launched
// by any other process within a second, from the change feed alone: here it reads every campaign in full only
// once in ten hours.
TEST_F(EngineInvariants, ACampaignLaunchedElsewhereIsTakenOnFromTheChangeFeedWithinASecond) {
  add_number("+14155550100", 4, 10);
  add_campaign(16, 4);
  db_.set_state(campaign_.id, campaign_state::draft, /*announce=*/false);  // created, not launched yet
  make_carrier();
  test_carriers carriers(*carrier_);
  engine_options options;
  options.campaign_poll = 10h;
  dialing_engine engine(memory_ports(db_, "engine-a"), carriers, clock_, options, engine_scope{});
  engine.start();
  ASSERT_TRUE(clock_.run_until(clock_.monotonic() + 5s));
  EXPECT_TRUE(carrier_->log().empty()) << "a draft campaign was dialed";
  const auto launched = clock_.monotonic();
  db_.set_state(campaign_.id, campaign_state::running);  // launched elsewhere, announced
  ASSERT_TRUE(clock_.run_while_not([&] { return !carrier_->log().empty(); }, 1min));
  EXPECT_LT(carrier_->log().front().placed_at - launched, 1s);
  ASSERT_TRUE(
      clock_.run_while_not([&] { return db_.state_of(campaign_.id) == campaign_state::completed; }, 1h));
  engine.request_stop(stop_mode::drain);
  ASSERT_TRUE(clock_.run_while_not([&] { return engine.stopped(); }, 1h));
  engine.join();
  EXPECT_EQ(by_state()["done"], 16);
}

// The fallback: an announcement lost (a reconnection) is made up for by the full read every campaign_poll (1
// s).
TEST_F(EngineInvariants, ACampaignWhoseAnnouncementWasLostIsTakenOnByTheNextFullRead) {
  add_number("+14155550100", 4, 10);
  add_campaign(16, 4);
  db_.set_state(campaign_.id, campaign_state::draft, /*announce=*/false);
  make_carrier();
  test_carriers carriers(*carrier_);
  const engine_options options;
  dialing_engine engine(memory_ports(db_, "engine-a"), carriers, clock_, options, engine_scope{});
  engine.start();
  ASSERT_TRUE(clock_.run_until(clock_.monotonic() + 5s));
  const auto launched = clock_.monotonic();
  db_.set_state(campaign_.id, campaign_state::running, /*announce=*/false);
  ASSERT_TRUE(clock_.run_while_not([&] { return !carrier_->log().empty(); }, 1min));
  EXPECT_LE(carrier_->log().front().placed_at - launched, options.campaign_poll + options.tick);
  engine.request_stop(stop_mode::now);
  ASSERT_TRUE(clock_.run_while_not([&] { return engine.stopped(); }, 1h));
  engine.join();
}

// Invariant 6: cancel is final. The campaign is paused here and, while this engine drains its calls, another
// process cancels it: it ends cancelled, every contact terminal (those it still held cancelled as it
// drained).
TEST_F(EngineInvariants, ACancelRacingAPauseEndsCancelled) {
  add_number("+14155550100", 2, 10);
  add_campaign(40, 2);
  make_carrier(lasting(20s));
  background_run r(*this, engine_options{}, "engine-a");
  ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 4; }, 1min));
  r.request_pause();
  db_.set_state(campaign_.id, campaign_state::cancelled);  // as `dialer campaigns cancel` does, then:
  (void)db_.cancel_waiting(campaign_.id);
  ASSERT_TRUE(r.finish(1h));
  ASSERT_TRUE(*r.out) << r.out->error().message;
  EXPECT_EQ(db_.state_of(campaign_.id), campaign_state::cancelled);
  EXPECT_EQ((*r.out)->state, campaign_state::cancelled);
  const auto states = by_state();
  EXPECT_EQ(states.count("pending"), 0u) << states.at("pending") << " contacts left pending";
  EXPECT_EQ(states.at("done") + states.at("cancelled"), 40);
}

// Invariant 6: a completion never overwrites a cancel that committed just before it. The cancel lands between
// the engine's last write-back and its completing transition: the campaign stays cancelled.
TEST_F(EngineInvariants, ACompletionRacingACancelLeavesItCancelled) {
  add_number("+14155550100", 2, 10);
  add_campaign(8, 2);
  make_carrier();
  db_.set_fault(store_call::transition,
                fault{.times = 1, .before = [&] { db_.set_state(campaign_.id, campaign_state::cancelled); }});
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(db_.state_of(campaign_.id), campaign_state::cancelled);
  EXPECT_EQ(status->state, campaign_state::cancelled);
  EXPECT_EQ(by_state()["done"], 8);
}

// Cancel is final, even when the engine that holds the campaign's blocks is draining for another reason
// (SIGTERM to `dialer serve`) as the cancel commits: it hands its queued contacts back as it stops, and the
// write-back that releases their blocks cancels them, since no engine will run the campaign again.
TEST_F(EngineInvariants, ACampaignCancelledWhileItsEngineStopsEndsWithEveryContactTerminal) {
  add_number("+14155550100", 4, 10);
  add_campaign(200, 4);
  make_carrier(lasting(20s));
  test_carriers carriers(*carrier_);
  dialing_engine engine(memory_ports(db_, "engine-a"), carriers, clock_, in_minutes(), engine_scope{});
  engine.start();
  ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 4; }, 1min));
  engine.request_stop(stop_mode::drain);  // the engine drains: it no longer reads the campaigns' states
  db_.set_state(campaign_.id, campaign_state::cancelled);
  (void)db_.cancel_waiting(
      campaign_.id);  // what `dialer campaigns cancel` does: the blocks the engine holds wait
  ASSERT_TRUE(clock_.run_while_not([&] { return engine.stopped(); }, 1h));
  engine.join();
  const auto states = by_state();
  EXPECT_EQ(states.count("pending"), 0u)
      << states.at("pending") << " contacts left pending in a cancelled campaign";
  EXPECT_EQ(states.at("done") + states.at("cancelled"), 200);
}

// A call whose outcome never comes (its status callback was lost) is asked of the carrier once it is overdue,
// instead of holding its slot, and its campaign, for ever.
TEST_F(EngineInvariants, ACallWhoseOutcomeNeverComesIsAskedOfTheCarrierOnceOverdue) {
  add_number("+14155550100", 4, 10);
  add_campaign(20, 4);
  make_carrier([](const origination_request& r) {
    call_plan p;
    p.duration = 30s;
    p.lose_outcome = r.contact.value() % 4 == 0;
    return p;
  });
  auto options = in_minutes();
  options.outcome_overdue = 5min;
  auto status = run(options);
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  EXPECT_EQ(by_state()["done"], 20);
  for (const auto& a : db_.attempts()) {
    ASSERT_TRUE(a.outcome.has_value()) << a.id.value();
    EXPECT_EQ(a.outcome->outcome, call_outcome::completed)
        << "attempt " << a.id.value() << ": the carrier's answer";
  }
}

// The database away for a moment as an engine takes a campaign on is retried, not reported to the campaign's
// watchers as a failure (`dialer run` would pause the campaign and exit).
TEST_F(EngineInvariants, ADatabaseHiccupWhileACampaignIsTakenOnIsRetried) {
  add_number("+14155550100", 4, 10);
  add_campaign(20, 4);
  make_carrier();
  db_.set_fault(store_call::load, fault{.fail = true, .times = 2, .before = {}});
  auto status = run();
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, campaign_state::completed);
  EXPECT_EQ(by_state()["done"], 20);
}

// Invariant 4 across agents: a number moved from one agent to another that this engine also dials for is
// usable again soon, for the new agent's campaign; the old agent's calls still queued on it do not leave. The
// move happens as the attempt journal stalls for 20 s with the old agent's decisions on the number waiting to
// be recorded; by the time they are, the engine has read the move and leased the number for the new agent.
TEST_F(EngineInvariants, ANumberMovedToAnotherAgentsCampaignCarriesNoCallOfTheOldAgent) {
  add_number("+14155550100", 4, 10);
  add_number("+14155550101", 4, 10);
  add_campaign(40, 8);
  phone_number b_number;
  b_number.id = number_id{3};
  b_number.account = account_id{1};
  b_number.e164 = "+14155550199";
  b_number.country = "US";
  b_number.max_concurrent_calls = 4;
  b_number.max_cps = 10;
  b_number.agent = agent_id{2};
  b_number.agent_name = "other";
  db_.add_number(b_number);
  campaign_record other = campaign_;
  other.id = campaign_id{2};
  other.name = "other";
  other.agent = agent_id{2};
  other.agent_name = "other";
  std::vector<claimed_contact> theirs;
  for (int i = 0; i < 40; ++i) {
    claimed_contact x;
    x.id = contact_id{50'000 + i};
    x.row = i + 2;
    x.e164 = fmt::format("+1212555{:04d}", i);
    x.variables = "{}";
    theirs.push_back(x);
  }
  (void)db_.add_campaign(other, theirs);
  make_carrier(lasting(60s));
  test_carriers carriers(*carrier_);
  auto options = in_minutes();
  options.lease = 120s;  // the stall must not let the slot leases lapse
  options.heartbeat = 5s;
  std::optional<nanoseconds> moved_at;
  db_.set_fault(store_call::record_attempts, fault{.stall = 20s, .times = 1, .before = [&] {
                                                     db_.assign_number(numbers_[0].id, agent_id{2});
                                                     moved_at = clock_.monotonic();
                                                   }});
  dialing_engine engine(memory_ports(db_, "engine-a"), carriers, clock_, options, engine_scope{});
  engine.start();
  ASSERT_TRUE(clock_.run_until(clock_.monotonic() + 5min));
  engine.request_stop(stop_mode::now);
  ASSERT_TRUE(clock_.run_while_not([&] { return engine.stopped(); }, 1h));
  engine.join();
  ASSERT_TRUE(moved_at.has_value());
  int old_agent_after = 0, new_agent_on_it = 0;
  for (const auto& c : carrier_->log()) {
    if (c.from != numbers_[0].e164) continue;
    if (c.contact.value() < 50'000 && c.placed_at > *moved_at + options.heartbeat) ++old_agent_after;
    if (c.contact.value() >= 50'000) ++new_agent_on_it;
  }
  EXPECT_EQ(old_agent_after, 0) << "calls of the old agent's campaign left from the moved number";
  EXPECT_GT(new_agent_on_it, 0) << "the new agent's campaign never used the number: the test proves nothing";
}

// Invariant 6: once the cancel is committed, nothing more is recorded, so nothing more is placed, even by an
// engine that has not polled the state yet.
TEST_F(EngineInvariants, NothingIsPlacedAfterACancelIsCommitted) {
  add_number("+14155550100", 2, 10);
  add_campaign(40, 2);
  make_carrier();
  engine_options slow_poll;
  // This engine would not see the cancel for ten minutes:
  slow_poll.campaign_poll = std::chrono::minutes(10);
  background_run r(*this, slow_poll, "engine-a");
  ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 4; }, 1min));
  db_.set_state(campaign_.id, campaign_state::cancelled, /*announce=*/false);  // its notification was lost
  const auto cancelled_at = clock_.monotonic();
  ASSERT_TRUE(clock_.run_until(cancelled_at + std::chrono::minutes(2)));
  for (const auto& c : carrier_->log())
    EXPECT_LE(c.placed_at, cancelled_at) << c.to << " placed after the cancel";
  r.request_stop_now();
  ASSERT_TRUE(r.finish(1h));
}

// Invariant 6, an engine cut off when the cancel commits: it cannot hear of it, and a batch of decisions held
// up by a stalled journal is recorded just before the cancel and leaves one a second (max_cps 1). Once the
// cancel is committed nothing more is recorded; a call that leaves after it is one whose attempt was recorded
// before it (a call in flight: its outcome is kept, a retry it earns is cancelled), and it leaves within its
// CPS turn.
TEST_F(EngineInvariants, AfterACancelOnlyCallsRecordedBeforeItLeaveEvenFromACutOffEngine) {
  add_number("+14155550100", 10, 1);
  add_campaign(40, 10);
  make_carrier(lasting(2s));
  engine_options slow_poll;
  slow_poll.campaign_poll = std::chrono::minutes(10);  // it would not see the cancel for ten minutes
  background_run r(*this, slow_poll, "engine-a");
  ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() >= 2; }, 1min));
  db_.set_fault(store_call::record_attempts, fault{.stall = 5s, .times = 1, .before = {}});
  const auto placed_before = carrier_->log().size();
  ASSERT_TRUE(clock_.run_while_not([&] { return carrier_->log().size() > placed_before; }, 1min))
      << "the held-up batch never left";
  db_.set_state(campaign_.id, campaign_state::cancelled, /*announce=*/false);
  const auto cancelled_at = clock_.monotonic();
  std::set<std::int64_t> recorded_before;  // the journal refuses every record from now on
  for (const auto& a : db_.attempts()) recorded_before.insert(a.id.value());
  ASSERT_TRUE(clock_.run_until(cancelled_at + std::chrono::minutes(2)));
  int after = 0;
  for (const auto& c : carrier_->log()) {
    if (c.placed_at <= cancelled_at) continue;
    ++after;
    EXPECT_TRUE(recorded_before.contains(c.attempt.value()))
        << c.to << " placed after the cancel on an attempt recorded after it";
  }
  EXPECT_EQ(db_.attempts().size(), recorded_before.size()) << "attempts recorded after the cancel";
  EXPECT_LE(max_in_window(carrier_->log(), "+14155550100"), 1);
  std::printf("%d calls recorded before the cancel left after it\n", after);
  r.request_stop_now();
  ASSERT_TRUE(r.finish(1h));
}

}  // namespace
}  // namespace dialer::testing
