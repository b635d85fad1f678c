// Event webhooks end to end: the events a campaign's run writes (the outbox, filled by the database in the
// transaction of each change), delivered by `dialer serve` or by the dispatcher under a manual clock, to a receiver
// that verifies every request with the `standardwebhooks` library (tests/lint/webhook-receiver.js) and logs what
// it saw. The receiver's log is the outside record every assertion reads.
#include <gtest/gtest.h>

#include <csignal>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include "adapters/http/signatures.hpp"
#include "adapters/postgres/pg_webhook_endpoints.hpp"
#include "adapters/postgres/pg_webhook_outbox.hpp"
#include "adapters/webhooks/http_sender.hpp"
#include "engine/webhook_dispatcher.hpp"
#include "tests/integration/e2e_fixture.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/webhook_receiver.hpp"

namespace dialer::testing::e2e {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class Webhooks : public campaign_test {
 public:
  using campaign_test::query;
  [[nodiscard]] const std::string& url() const { return url_; }

 protected:
  void SetUp() override {
    campaign_test::SetUp();
    secret_ = http::new_webhook_secret();
  }

  std::int64_t add_endpoint(const std::string& url, const std::string& secret) {
    return query("INSERT INTO webhook_endpoints (account_id, url, secret) VALUES (1, '" + url + "', '" + secret +
                 "') RETURNING id")[0][0]
        .as<std::int64_t>();
  }

  // A finished run of tests/data/e2e/small.yaml (6 contacts, up to 2 attempts each): its changes are the events.
  void run_small_campaign() {
    auto r = dialer_json({"run", campaign_file("small.yaml", {{"MAX_CPS", "100"}}).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::set<std::string> event_ids() const {
    std::set<std::string> ids;
    for (const auto& row : query("SELECT 'evt_' || id FROM webhook_events")) ids.insert(row[0].as<std::string>());
    return ids;
  }

  // "" when every event has reached every endpoint: no delivery waiting, no first try under way, no endpoint
  // cursor short of the end of the log; otherwise what still waits.
  std::string nothing_waits() const {
    return table("SELECT 'delivery', event_id, state FROM webhook_deliveries WHERE state <> 'delivered' "
                 "UNION ALL SELECT 'segment', id, leased_by FROM webhook_segments WHERE delivered_at IS NULL "
                 "UNION ALL SELECT 'log', l.id, l.type FROM webhook_log l JOIN webhook_endpoints e "
                 "  ON e.account_id = l.account_id WHERE (e.event_types = '{}' OR l.type = ANY (e.event_types)) "
                 "  AND ((l.xid, l.id) > (e.cursor_xid, e.cursor_log) OR (l.xid = e.cursor_xid "
                 "    AND l.id = e.cursor_log AND e.cursor_index < cardinality(l.ids)))");
  }

  std::string secret_;
};

// One dispatcher thread's passes (deliver_due) under a manual clock, which each pass moves on to the next moment a
// try can happen: an enabled endpoint's earliest pending retry, not before its pause ends (or `until`).
struct simulated_dispatcher {
  simulated_dispatcher(Webhooks& t, std::uint64_t seed)
      : test(t), clk(std::chrono::system_clock::now()), outbox(t.url(), "test-dispatcher", 0), sender(loopback()),
        rng(seed) {
    opts.batch = 1000;
    opts.timeout = 5s;
  }
  static webhooks::sender_options loopback() {
    webhooks::sender_options so;
    so.allow.loopback = true;
    return so;
  }
  void pass_until(std::chrono::nanoseconds until) {
    while (clk.monotonic() < until) {
      auto tried = webhook_dispatcher::deliver_due(outbox, sender, clk, opts, rng);
      ASSERT_TRUE(tried) << tried.error().message;
      const auto due = test.query(
          "SELECT extract(epoch FROM min(greatest(d.next, e.paused_until))) FROM webhook_endpoints e "
          "JOIN (SELECT endpoint_id, min(next_attempt_at) AS next FROM webhook_deliveries WHERE state = 'pending' "
          "GROUP BY endpoint_id) d ON d.endpoint_id = e.id WHERE e.enabled")[0][0];
      auto next = until;
      if (!due.is_null()) {
        const auto at = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(due.as<double>()) - clk.wall().time_since_epoch());
        next = std::min(until, clk.monotonic() + std::max<std::chrono::nanoseconds>(at, 1ms));
      }
      clk.advance(next - clk.monotonic());
    }
  }
  Webhooks& test;
  manual_clock clk;
  pg::pg_webhook_outbox outbox;
  webhooks::http_sender sender;
  webhook_dispatcher_options opts;
  std::mt19937_64 rng;
};

// The outbox holds one event per change, written with the change: every attempt's end, every answer, every
// contact's terminal state and the campaign's launch and completion, counted here against the tables themselves.
TEST_F(Webhooks, EveryChangeOfARunIsAnEventAndEveryEventReachesTheReceiverSignedAndOnce) {
  receiver platform(dir_, {secret_});
  add_endpoint(platform.url(), secret_);
  run_small_campaign();

  const auto count = [&](const std::string& type) {
    return scalar("SELECT count(*) FROM webhook_events WHERE type = '" + type + "'");
  };
  EXPECT_EQ(count("call.ended"), scalar("SELECT count(*) FROM call_attempts WHERE outcome IS NOT NULL"));
  EXPECT_EQ(count("call.answered"), scalar("SELECT count(*) FROM call_attempts WHERE answered_at IS NOT NULL"));
  EXPECT_EQ(count("contact.finished"),
            scalar("SELECT count(*) FROM contacts WHERE state IN ('done', 'cancelled', 'do_not_call', 'invalid')"));
  EXPECT_EQ(count("campaign.launched"), 1);
  EXPECT_EQ(count("campaign.completed"), 1);
  EXPECT_GT(count("call.ended"), 0);
  const auto ids = event_ids();
  auto server = start({"serve", "--listen", "none"}, "serve", {{"DIALER_WEBHOOK_ALLOW", "loopback"}});
  EXPECT_TRUE(eventually([&] { return platform.processed().size() >= ids.size(); }, server.get()))
      << platform.processed().size() << " of " << ids.size() << " processed; serve: " << server->err();
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(), 0) << server->err();

  const auto processed = platform.processed();
  EXPECT_EQ(std::set<std::string>(processed.begin(), processed.end()), ids) << "every event, nothing else";
  for (const auto& id : ids) EXPECT_EQ(processed.count(id), 1u) << id << " processed more than once";
  EXPECT_TRUE(platform.invalid().empty()) << platform.invalid().front().dump();
  EXPECT_EQ(nothing_waits(), "");
  // A call.ended carries what the platform needs: compared, as the receiver got it, with the attempt it describes.
  std::size_t ended = 0;
  for (const auto& e : platform.log()) {
    if (e.value("answer", json()) != 200 || e["type"] != "call.ended") continue;
    ++ended;
    const auto& d = e["data"];
    const auto row = query("SELECT a.outcome, a.caller_id, k.e164, a.cost::text, k.id FROM call_attempts a "
                           "JOIN contacts k ON k.id = a.contact_id WHERE a.id = " +
                           std::to_string(d["attempt"]["id"].get<std::int64_t>()));
    ASSERT_EQ(row.size(), 1u) << d.dump();
    EXPECT_EQ(d["outcome"], row[0][0].as<std::string>());
    EXPECT_EQ(d["from"], row[0][1].as<std::string>());
    EXPECT_EQ(d["to"], row[0][2].as<std::string>());
    EXPECT_EQ(std::stod(d["cost"].dump()), std::stod(row[0][3].as<std::string>()));
    EXPECT_EQ(e["contact"], row[0][4].as<std::int64_t>());
    EXPECT_TRUE(d["contact"]["variables"].contains("first_name")) << d.dump();
    EXPECT_TRUE(d.contains("duration_s") && d.contains("ended_at") && d.contains("started_at")) << d.dump();
  }
  EXPECT_EQ(static_cast<std::int64_t>(ended), count("call.ended"));
  // Per contact, the receiver can order: sequence numbers are distinct and an attempt's end precedes the
  // contact's end.
  std::map<std::int64_t, std::map<std::int64_t, std::string>> by_contact;
  for (const auto& e : platform.log())
    if (e.value("answer", json()) == 200 && !e["contact"].is_null())
      by_contact[e["contact"].get<std::int64_t>()][e["sequence"].get<std::int64_t>()] = e["type"].get<std::string>();
  EXPECT_EQ(by_contact.size(), static_cast<std::size_t>(scalar("SELECT count(*) FROM contacts")));
  for (const auto& [contact, seq] : by_contact) {
    ASSERT_FALSE(seq.empty());
    EXPECT_EQ(seq.rbegin()->second, "contact.finished") << "contact " << contact;
  }
}

// Every writer's changes are events, not only the engine's write-back (which logs its own): a campaign launched and
// cancelled through the CLI with no engine serving it gives campaign.launched, a contact.finished (cancelled) for
// each contact and campaign.cancelled, written by the triggers.
TEST_F(Webhooks, ChangesMadeOutsideTheEngineAreEventsToo) {
  receiver platform(dir_, {secret_});
  add_endpoint(platform.url(), secret_);
  auto launched = dialer_json({"campaigns", "launch", campaign_file("small.yaml", {{"MAX_CPS", "100"}}).string()});
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  auto cancelled = dialer_json({"campaigns", "cancel", "e2e-small"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  const auto contacts = scalar("SELECT count(*) FROM contacts");
  ASSERT_GT(contacts, 0);
  ASSERT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'cancelled'"), contacts);

  auto server = start({"serve", "--listen", "none"}, "serve", {{"DIALER_WEBHOOK_ALLOW", "loopback"}});
  EXPECT_TRUE(eventually([&] { return static_cast<std::int64_t>(platform.processed().size()) >= contacts + 2; },
                         server.get()))
      << platform.processed().size() << " processed";
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(), 0) << server->err();
  std::map<std::string, std::int64_t> by_type;
  std::set<std::int64_t> finished;
  for (const auto& e : platform.log()) {
    if (e.value("answer", json()) != 200) continue;
    ++by_type[e["type"].get<std::string>()];
    if (e["type"] == "contact.finished") {
      EXPECT_EQ(e["data"]["state"], "cancelled") << e.dump();
      finished.insert(e["data"]["contact"]["id"].get<std::int64_t>());
    }
  }
  EXPECT_EQ(by_type["campaign.launched"], 1);
  EXPECT_EQ(by_type["campaign.cancelled"], 1);
  EXPECT_EQ(by_type["contact.finished"], contacts);
  EXPECT_EQ(static_cast<std::int64_t>(finished.size()), contacts) << "one per contact";
  EXPECT_EQ(by_type.count("call.ended"), 0u);
  EXPECT_TRUE(platform.invalid().empty());
  EXPECT_EQ(nothing_waits(), "");
}

// Claims serve only endpoints with something to send: forty quiet endpoints (they want an event that never
// happens) do not crowd out the one that has events waiting.
TEST_F(Webhooks, QuietEndpointsDoNotCrowdOutOneWithEventsWaiting) {
  receiver platform(dir_, {secret_});
  (void)query("INSERT INTO webhook_endpoints (account_id, url, secret, event_types) SELECT 1, "
              "'https://quiet' || g || '.example/x', '" + secret_ + "', '{campaign.resumed}' FROM generate_series(1, 40) g");
  add_endpoint(platform.url(), secret_);
  run_small_campaign();
  const auto ids = event_ids();
  simulated_dispatcher d(*this, 3);
  for (int pass = 0; pass < 20 && platform.processed().size() < ids.size(); ++pass) {
    auto tried = webhook_dispatcher::deliver_due(d.outbox, d.sender, d.clk, d.opts, d.rng);
    ASSERT_TRUE(tried) << tried.error().message;
  }
  const auto processed = platform.processed();
  EXPECT_EQ(std::set<std::string>(processed.begin(), processed.end()), ids);
}

// Under a manual clock: the receiver is unreachable for 10 simulated hours, then comes back. While it is down, the
// batch's first delivery is tried on the schedule (at once, 5 s, 5 min, 30 min, 2 h, 5 h later: six tries before
// the 10th hour, give or take the jitter) and the rest of the batch waits with it, untried; once it is back every
// event arrives and is processed once.
TEST_F(Webhooks, AReceiverDownForTenHoursGetsEveryEventOnceItIsBack) {
  receiver platform(dir_, {secret_}, true);
  add_endpoint(platform.url(), secret_);
  run_small_campaign();
  const auto ids = event_ids();
  ASSERT_FALSE(ids.empty());
  platform.mode("down");

  simulated_dispatcher d(*this, 7);
  d.pass_until(10h);
  std::map<std::string, int> dropped;
  for (const auto& e : platform.log())
    if (e.value("answer", json()) == "dropped") ++dropped[e["id"].get<std::string>()];
  ASSERT_EQ(dropped.size(), 1u) << "one delivery tried for the batch";
  EXPECT_EQ(dropped.begin()->second, 6);
  EXPECT_TRUE(platform.processed().empty());
  // The tries' spacing, in simulated time (the history the API shows): the schedule, +-10 %.
  std::vector<double> at;
  for (const auto& row : query("SELECT extract(epoch FROM attempted_at) FROM webhook_attempts ORDER BY id"))
    at.push_back(row[0].as<double>());
  ASSERT_EQ(at.size(), 6u);
  const double schedule[] = {5, 300, 1800, 7200, 18000};
  for (std::size_t i = 0; i + 1 < at.size(); ++i) {
    EXPECT_GE(at[i + 1] - at[i], schedule[i] * 0.9) << "try " << i + 2;
    EXPECT_LE(at[i + 1] - at[i], schedule[i] * 1.1 + 1) << "try " << i + 2;
  }

  platform.mode("up");
  d.pass_until(10h + 24h);
  const auto processed = platform.processed();
  EXPECT_EQ(std::set<std::string>(processed.begin(), processed.end()), ids);
  for (const auto& id : ids) EXPECT_EQ(processed.count(id), 1u) << id;
  EXPECT_TRUE(platform.invalid().empty());
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"),
            static_cast<std::int64_t>(ids.size()))
      << table("SELECT event_id, state, attempts, last_error FROM webhook_deliveries");
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_attempts"), static_cast<std::int64_t>(ids.size() + 6))
      << "the endpoint's history holds every try";
}

// A receiver that never answers: its first delivery's schedule is spent after about 3.3 days (failed, until
// replayed); the endpoint is paused between tries, so a backlog costs one request per retry step. New events keep
// it tried; once every try has failed for 5 days, the endpoint is disabled with the reason, and nothing more is
// sent to it.
TEST_F(Webhooks, AReceiverThatFailsEveryTryForFiveDaysHasItsEndpointDisabled) {
  receiver platform(dir_, {secret_}, true);
  const auto endpoint = std::to_string(add_endpoint(platform.url(), secret_));
  run_small_campaign();
  platform.mode("down");

  simulated_dispatcher d(*this, 11);
  for (int day = 1; day <= 6; ++day) {
    d.pass_until(std::chrono::hours(24 * day));
    // Another event: the campaign paused (an operator's change, through its trigger).
    (void)query("UPDATE campaigns SET state = CASE state WHEN 'paused' THEN 'running' ELSE 'paused' END");
  }
  d.pass_until(std::chrono::hours(24 * 6 + 1));
  EXPECT_EQ(query("SELECT enabled FROM webhook_endpoints")[0][0].as<bool>(), false);
  const auto reason = query("SELECT disabled_reason FROM webhook_endpoints")[0][0].as<std::string>();
  EXPECT_NE(reason.find("every try failed for 5 days"), std::string::npos) << reason;
  EXPECT_GE(scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'failed' AND endpoint_id = " + endpoint), 1)
      << "the first delivery's schedule was spent";
  // The receiver saw one request per try, never one per waiting event: far fewer requests than events x tries.
  const auto requests = static_cast<std::int64_t>(platform.log().size());
  EXPECT_EQ(requests, scalar("SELECT count(*) FROM webhook_attempts"));
  EXPECT_LT(requests, 10 * 7) << "at most a schedule's tries per event that led its batch";
  // Disabled: nothing more is sent, whatever is due.
  (void)query("UPDATE webhook_deliveries SET next_attempt_at = '-infinity'");
  auto tried = webhook_dispatcher::deliver_due(d.outbox, d.sender, d.clk, d.opts, d.rng);
  ASSERT_TRUE(tried);
  EXPECT_EQ(*tried, 0u);
  EXPECT_EQ(static_cast<std::int64_t>(platform.log().size()), requests);
  EXPECT_TRUE(platform.processed().empty());
}

// Deliveries leased to an engine: first tries (segments) and retries.
constexpr const char* kLeased =
    "SELECT (SELECT count(*) FROM webhook_segments WHERE delivered_at IS NULL) + "
    "(SELECT count(*) FROM webhook_deliveries WHERE leased_by IS NOT NULL)";

// kill -9 of the engine that holds deliveries in flight: another engine takes them once their leases run out,
// and nothing is lost.
TEST_F(Webhooks, AnEngineKilledMidDeliveryLosesNothing) {
  receiver platform(dir_, {secret_});
  add_endpoint(platform.url(), secret_);
  run_small_campaign();
  const auto ids = event_ids();
  platform.mode("hold");  // requests arrive and wait for an answer that does not come
  const std::map<std::string, std::string> env{{"DIALER_WEBHOOK_ALLOW", "loopback"}};
  auto first = start({"serve", "--listen", "none", "--webhook-lease", "2"}, "first", env);
  ASSERT_TRUE(eventually([&] {
    return scalar(kLeased) > 0 && !platform.log().empty();
  }, first.get()));
  const auto held_by_first = scalar(kLeased);
  first->signal(SIGKILL);
  EXPECT_EQ(first->wait(), 128 + SIGKILL);
  platform.mode("up");  // the dead engine's requests were cut with it: they are answered to nobody
  auto second = start({"serve", "--listen", "none", "--webhook-lease", "2"}, "second", env);
  EXPECT_TRUE(eventually([&] { return platform.processed().size() >= ids.size(); }, second.get()))
      << platform.processed().size() << " of " << ids.size();
  second->signal(SIGTERM);
  EXPECT_EQ(second->wait(), 0);
  const auto processed = platform.processed();
  EXPECT_EQ(std::set<std::string>(processed.begin(), processed.end()), ids);
  EXPECT_GT(held_by_first, 0);
  EXPECT_EQ(nothing_waits(), "");
}

// 410 Gone: the endpoint is disabled with the reason, its deliveries wait (nothing is dropped), and no further
// request is made to it.
TEST_F(Webhooks, AGoneReceiverDisablesItsEndpointAndItsEventsWait) {
  receiver platform(dir_, {secret_});
  const auto endpoint = add_endpoint(platform.url(), secret_);
  run_small_campaign();
  platform.mode("gone");
  auto server = start({"serve", "--listen", "none"}, "serve", {{"DIALER_WEBHOOK_ALLOW", "loopback"}});
  ASSERT_TRUE(eventually([&] {
    return scalar("SELECT count(*) FROM webhook_endpoints WHERE NOT enabled AND id = " + std::to_string(endpoint)) == 1;
  }, server.get()));
  // The tries already on their way when the first 410 came end; nothing new is leased for a disabled endpoint.
  ASSERT_TRUE(eventually([&] {
    return scalar(kLeased) == 0;
  }, server.get()));
  // Every event still waits for it: the endpoint's pending count (as the API shows it) is all of them.
  pqxx::connection c(url_);
  pg::pg_webhook_endpoints store(c);
  auto shown = store.get(account_id{1}, endpoint);
  ASSERT_TRUE(shown) << shown.error().message;
  EXPECT_EQ(shown->pending, scalar("SELECT count(*) FROM webhook_events"));
  EXPECT_EQ(shown->delivered, 0);
  EXPECT_NE(query("SELECT disabled_reason FROM webhook_endpoints")[0][0].as<std::string>().find("410"), std::string::npos);
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait(), 0);
  EXPECT_GE(platform.log().size(), 1u);
  EXPECT_LE(platform.log().size(), 4u) << "more than the max_in_flight that could be on their way at the first 410";
}

// https: the receiver's certificate is checked. Not trusted (the system's CAs), nothing is delivered and the history
// says why; trusted through DIALER_WEBHOOK_CA_FILE, everything is.
TEST_F(Webhooks, AnHttpsReceiverIsDeliveredToOnlyWhenItsCertificateIsTrusted) {
  const auto cert = dir_ / "cert.pem";
  const auto key = dir_ / "key.pem";
  const auto cmd = fmt::format(
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout '{}' -out '{}' -days 2 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null",
      key.string(), cert.string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  receiver platform(dir_, {secret_}, false, std::make_pair(cert, key));
  ASSERT_EQ(platform.url().rfind("https://", 0), 0u);
  add_endpoint(platform.url(), secret_);
  run_small_campaign();
  const auto ids = event_ids();

  auto untrusting = start({"serve", "--listen", "none"}, "untrusting", {{"DIALER_WEBHOOK_ALLOW", "loopback"}});
  ASSERT_TRUE(eventually([&] {
    return scalar("SELECT count(*) FROM webhook_attempts WHERE error LIKE '%TLS%'") > 0;
  }, untrusting.get())) << table("SELECT status, error FROM webhook_attempts");
  untrusting->signal(SIGTERM);
  EXPECT_EQ(untrusting->wait(), 0);
  EXPECT_TRUE(platform.processed().empty()) << "nothing reaches a receiver whose certificate is not trusted";

  // Due now, not at the next retry.
  (void)query("UPDATE webhook_deliveries SET next_attempt_at = '-infinity'");
  (void)query("UPDATE webhook_endpoints SET paused_until = '-infinity'");
  auto trusting = start({"serve", "--listen", "none"}, "trusting",
                        {{"DIALER_WEBHOOK_ALLOW", "loopback"}, {"DIALER_WEBHOOK_CA_FILE", cert.string()}});
  EXPECT_TRUE(eventually([&] { return platform.processed().size() >= ids.size(); }, trusting.get()))
      << platform.processed().size() << " of " << ids.size() << ": " << trusting->err();
  trusting->signal(SIGTERM);
  EXPECT_EQ(trusting->wait(), 0);
  const auto processed = platform.processed();
  EXPECT_EQ(std::set<std::string>(processed.begin(), processed.end()), ids);
  EXPECT_TRUE(platform.invalid().empty());
}

// Retention: events older than the cut that no endpoint still waits for are forgotten; a pending one stays, however
// old, and so do recent ones and those an enabled endpoint has not read yet.
TEST_F(Webhooks, OldEventsAreForgottenUnlessADeliveryStillWaits) {
  const auto endpoint = std::to_string(add_endpoint("https://h.example/x", secret_));
  (void)query("INSERT INTO webhook_log (id, account_id, type, ids, data, occurred_at) VALUES "
              "(1, 1, 'campaign.paused', '{1}', '{}', now() - interval '10 days'), "
              "(2, 1, 'campaign.paused', '{1}', '{}', now() - interval '10 days'), "
              "(3, 1, 'campaign.paused', '{1}', '{}', now() - interval '1 day'), "
              "(4, 1, 'campaign.resumed', '{1}', '{}', now() - interval '10 days')");
  // 1: delivered after a retry, 10 days ago; 2: still pending; 3: recent; 4: delivered at its first try.
  (void)query("INSERT INTO webhook_deliveries (event_id, endpoint_id, log_id, state) VALUES (9, " + endpoint +
              ", 1, 'delivered'), (17, " + endpoint + ", 2, 'pending'), (25, " + endpoint + ", 3, 'delivered')");
  (void)query("INSERT INTO webhook_segments (endpoint_id, event_ids, log_ids, statuses, delivered_at) VALUES (" +
              endpoint + ", '{34}', '{4}', '{200}', now() - interval '10 days')");
  // The endpoint has read all of those (its cursor just past row 4, in the order of the log; not the cluster's
  // oldest running transaction, which a parallel test may hold back); 5 (old too) it has not: an enabled
  // endpoint's unread events are kept, however far behind it is.
  (void)query("UPDATE webhook_endpoints SET cursor_xid = (SELECT xid FROM webhook_log WHERE id = 4), cursor_log = 5, "
              "cursor_index = 0");
  (void)query("INSERT INTO webhook_log (id, account_id, type, ids, data, occurred_at) VALUES "
              "(5, 1, 'campaign.paused', '{1}', '{}', now() - interval '10 days')");
  pg::pg_webhook_outbox outbox(url_, "test", 0);
  auto gone = outbox.expire(std::chrono::system_clock::now() - std::chrono::hours(24 * 7));
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(*gone, 2);
  EXPECT_EQ(table("SELECT id FROM webhook_log ORDER BY id"), "2\t\n3\t\n5\t\n");
  EXPECT_EQ(table("SELECT event_id FROM webhook_deliveries ORDER BY event_id"), "17\t\n25\t\n");
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_segments"), 0);
}

}  // namespace
}  // namespace dialer::testing::e2e
