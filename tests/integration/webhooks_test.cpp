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

  std::string secret_;
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
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_deliveries"), scalar("SELECT count(*) FROM webhook_events"))
      << "one delivery per event for the one endpoint";
  // A call.ended carries what the platform needs, read back from the attempt it describes.
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_events v JOIN call_attempts a ON a.id = (v.data->'attempt'->>'id')::bigint "
                   "JOIN contacts k ON k.id = a.contact_id WHERE v.type = 'call.ended' AND v.data->>'outcome' = a.outcome "
                   "AND v.data->>'from' = a.caller_id AND v.data->>'to' = k.e164 AND v.data->'contact'->'variables' ? 'first_name' "
                   "AND (v.data->>'cost')::numeric = a.cost AND v.data ? 'duration_s' AND v.data ? 'ended_at'"),
            count("call.ended"));

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
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'"), 0);
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

  manual_clock clk(std::chrono::system_clock::now());
  pg::pg_webhook_outbox outbox(url_, "test-dispatcher", 0);
  webhooks::sender_options so;
  so.allow.loopback = true;
  webhooks::http_sender sender(so);
  webhook_dispatcher_options opts;
  opts.batch = 1000;
  opts.timeout = 5s;
  std::mt19937_64 rng(7);
  // Passes of the dispatcher, each time moved on to the next due delivery (or `until`).
  const auto pass_until = [&](std::chrono::nanoseconds until) {
    while (clk.monotonic() < until) {
      auto tried = webhook_dispatcher::deliver_due(outbox, sender, clk, opts, rng);
      EXPECT_TRUE(tried) << (tried ? "" : tried.error().message);
      if (!tried) return;
      const auto due = query("SELECT extract(epoch FROM min(next_attempt_at)) FROM webhook_deliveries "
                             "WHERE state = 'pending'")[0][0];
      auto next = until;
      if (!due.is_null()) {
        const auto at = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(due.as<double>()) - clk.wall().time_since_epoch());
        next = std::min(until, clk.monotonic() + std::max<std::chrono::nanoseconds>(at, 1ms));
      }
      clk.advance(next - clk.monotonic());
    }
  };
  pass_until(10h);
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
  pass_until(10h + 24h);
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
    return scalar("SELECT count(*) FROM webhook_deliveries WHERE leased_by IS NOT NULL") > 0 && !platform.log().empty();
  }, first.get()));
  const auto held_by_first = scalar("SELECT count(*) FROM webhook_deliveries WHERE leased_by IS NOT NULL");
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
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'"), 0);
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
    return scalar("SELECT count(*) FROM webhook_deliveries WHERE leased_by IS NOT NULL") == 0;
  }, server.get()));
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"),
            scalar("SELECT count(*) FROM webhook_events"));
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

  (void)query("UPDATE webhook_deliveries SET next_attempt_at = '-infinity'");  // due now, not at the next retry
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
// old, and so do recent ones.
TEST_F(Webhooks, OldEventsAreForgottenUnlessADeliveryStillWaits) {
  const auto endpoint = add_endpoint("https://h.example/x", secret_);
  (void)query("INSERT INTO webhook_events (id, account_id, type, data, occurred_at) VALUES "
              "(1, 1, 'campaign.paused', '{}', now() - interval '10 days'), "
              "(2, 1, 'campaign.paused', '{}', now() - interval '10 days'), "
              "(3, 1, 'campaign.paused', '{}', now() - interval '1 day')");
  (void)query("INSERT INTO webhook_deliveries (event_id, endpoint_id, state) VALUES (1, " + std::to_string(endpoint) +
              ", 'delivered'), (2, " + std::to_string(endpoint) + ", 'pending'), (3, " + std::to_string(endpoint) +
              ", 'delivered')");
  pg::pg_webhook_outbox outbox(url_, "test", 0);
  auto gone = outbox.expire(std::chrono::system_clock::now() - std::chrono::hours(24 * 7));
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(*gone, 1);
  EXPECT_EQ(table("SELECT id FROM webhook_events ORDER BY id"), "2\t\n3\t\n");
}

}  // namespace
}  // namespace dialer::testing::e2e
