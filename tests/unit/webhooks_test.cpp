// Event webhooks' pure parts: the Standard Webhooks signature, the retry schedule and what a receiver's answer
// leads to, the SSRF address policy and the endpoint URL's parsing.
#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include "adapters/http/signatures.hpp"
#include "adapters/postgres/sql_arrays.hpp"
#include "adapters/webhooks/http_sender.hpp"
#include "engine/webhook_dispatcher.hpp"

#include <atomic>
#include <mutex>
#include <set>
#include <random>
#include <thread>

namespace dialer {
namespace {

using namespace std::chrono_literals;

// The example of the Standard Webhooks specification (and of its reference libraries).
TEST(StandardWebhooks, TheSpecificationsExampleSignsAlike) {
  EXPECT_EQ(http::standard_webhook_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                             1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_FALSE(http::standard_webhook_signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}")) << "no prefix";
  EXPECT_FALSE(http::standard_webhook_signature("whsec_c2hvcnQ=", "m", 1, "{}")) << "fewer than 24 bytes";
  const auto fresh = http::new_webhook_secret();
  EXPECT_EQ(fresh.rfind("whsec_", 0), 0u);
  EXPECT_TRUE(http::standard_webhook_signature(fresh, "m", 1, "{}"));
  EXPECT_NE(fresh, http::new_webhook_secret());
}

// Dialing first: while `busy` holds, only the first of the dispatcher's threads claims, and after each batch it
// waits nine times as long as the batch took (10 %); once the engine has room, every thread claims again.
TEST(WebhookDispatcher, YieldsToASaturatedEngine) {
  manual_clock clk;
  struct claim_log {
    std::mutex m;
    std::vector<std::pair<int, std::chrono::nanoseconds>> claims;  // thread, when
  } log;
  struct one_at_a_time final : webhook_outbox {
    one_at_a_time(int i, claim_log& l, const clock& c) : index(i), log(l), clk(c) {}
    result<std::vector<webhook_delivery>> claim(std::chrono::system_clock::time_point, std::chrono::seconds,
                                                std::size_t, int) override {
      std::lock_guard lock(log.m);
      log.claims.emplace_back(index, clk.monotonic());
      webhook_delivery d;
      d.event_id = static_cast<std::int64_t>(log.claims.size());
      return std::vector<webhook_delivery>{d};
    }
    result<void> record(const std::vector<webhook_try>&) override { return ok(); }
    result<std::int64_t> expire(std::chrono::system_clock::time_point) override { return 0; }
    int index;
    claim_log& log;
    const clock& clk;
  };
  struct slow_receiver final : webhook_sender {  // each post takes 20 ms of the clock's time
    explicit slow_receiver(const clock& c) : clk(c) {}
    webhook_response post(const webhook_request&) override {
      clk.sleep_for(20ms);
      webhook_response r;
      r.status = 200;
      return r;
    }
    const clock& clk;
  };
  std::atomic<bool> busy{true};
  webhook_dispatcher_options opts;
  opts.threads = 4;
  opts.idle_poll = 50ms;
  opts.busy = [&busy] { return busy.load(); };
  webhook_dispatcher dispatcher(
      [&](int index) -> result<std::unique_ptr<webhook_outbox>> {
        return std::unique_ptr<webhook_outbox>(std::make_unique<one_at_a_time>(index, log, clk));
      },
      [&]() -> std::unique_ptr<webhook_sender> { return std::make_unique<slow_receiver>(clk); }, clk, opts);
  dispatcher.start();
  ASSERT_TRUE(clk.run_until(2s));
  std::vector<std::pair<int, std::chrono::nanoseconds>> saturated;
  {
    std::lock_guard lock(log.m);
    saturated = log.claims;
  }
  busy = false;
  ASSERT_TRUE(clk.run_until(3s));
  // Stopped while the clock moves on: a thread may be in the middle of a post that waits for the clock's time.
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    dispatcher.stop();
    stopped = true;
  });
  // Until stopped, however long: the stopper is not in the clock's time, and a slow one must not find the clock
  // given up on (a dispatcher thread in a clock wait would then never wake).
  while (!clk.run_while_not([&] { return stopped.load(); }, 10s)) {
  }
  stopper.join();

  ASSERT_GE(saturated.size(), 5u);
  for (const auto& [thread, at] : saturated) EXPECT_EQ(thread, 0) << "only the first thread while saturated";
  for (std::size_t i = 1; i < saturated.size(); ++i)
    EXPECT_GE(saturated[i].second - saturated[i - 1].second, 200ms) << "20 ms of posting, then 180 ms of rest";
  EXPECT_LE(saturated.size(), 11u) << "2 s at 10 % of 20 ms batches";
  std::set<int> after;
  for (std::size_t i = saturated.size(); i < log.claims.size(); ++i) after.insert(log.claims[i].first);
  EXPECT_EQ(after.size(), 4u) << "every thread once the engine has room";
}

// A batch posts in order, but never past half its lease: what is left then is released untried (no try counted),
// for the next claim, before another engine could take the lease over and post the same events beside it.
TEST(WebhookDispatcher, ABatchStopsAtHalfItsLeaseAndReleasesTheRestUntried) {
  manual_clock clk;
  struct batch_of_five final : webhook_outbox {
    result<std::vector<webhook_delivery>> claim(std::chrono::system_clock::time_point, std::chrono::seconds,
                                                std::size_t, int) override {
      std::vector<webhook_delivery> out(5);
      for (std::size_t i = 0; i < out.size(); ++i) out[i].event_id = static_cast<std::int64_t>(i + 1);
      return out;
    }
    result<void> record(const std::vector<webhook_try>& t) override {
      recorded = t;
      return ok();
    }
    result<std::int64_t> expire(std::chrono::system_clock::time_point) override { return 0; }
    std::vector<webhook_try> recorded;
  } outbox;
  struct slow final : webhook_sender {  // each answer takes 600 ms
    explicit slow(manual_clock& c) : clk(c) {}
    webhook_response post(const webhook_request&) override {
      clk.advance(600ms);
      ++posted;
      webhook_response r;
      r.status = 204;
      return r;
    }
    manual_clock& clk;
    int posted = 0;
  } sender(clk);
  webhook_dispatcher_options opts;
  opts.lease = 2s;
  std::mt19937_64 rng(1);
  auto n = webhook_dispatcher::deliver_due(outbox, sender, clk, opts, rng);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u) << "1.2 s of posting is past half of the 2 s lease";
  EXPECT_EQ(sender.posted, 2);
  ASSERT_EQ(outbox.recorded.size(), 5u) << "every leased delivery is recorded or released";
  using kind = webhook_outcome::kind;
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(outbox.recorded[i].delivery.event_id, static_cast<std::int64_t>(i + 1)) << "in order";
    EXPECT_EQ(outbox.recorded[i].outcome.what, i < 2 ? kind::delivered : kind::untried) << i;
  }
}

// The outbox reads its id arrays (segments, log slices) as PostgreSQL prints a bigint[].
TEST(SqlArrays, ABigintArrayAsPrintedIsReadBack) {
  EXPECT_EQ(pg::parse_int_array("{}"), std::vector<std::int64_t>{});
  EXPECT_EQ(pg::parse_int_array("{7}"), std::vector<std::int64_t>{7});
  EXPECT_EQ(pg::parse_int_array("{1,-22,9223372036854775807}"),
            (std::vector<std::int64_t>{1, -22, 9223372036854775807LL}));
  EXPECT_EQ(pg::parse_int_array("{3,NULL,4}"), (std::vector<std::int64_t>{3, 4})) << "NULL elements skipped";
}

TEST(WebhookRetries, FollowTheStandardScheduleThenStop) {
  const std::vector<std::chrono::seconds> expected{5s, 5min, 30min, 2h, 5h, 10h, 14h, 20h, 24h};
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(webhook_retry_delay(static_cast<int>(i) + 1), expected[i]);
  EXPECT_FALSE(webhook_retry_delay(10)) << "ten tries in all";
  EXPECT_FALSE(webhook_retry_delay(0));
}

TEST(WebhookRetries, AnAnswerDecidesTheNextStep) {
  const auto t0 = std::chrono::system_clock::time_point(std::chrono::hours(500'000));
  webhook_delivery d;
  d.attempts = 0;
  using kind = webhook_outcome::kind;
  EXPECT_EQ(decide_webhook_outcome(d, {204, {}, {}}, t0, 3ms, 0.5).what, kind::delivered);
  EXPECT_EQ(decide_webhook_outcome(d, {410, {}, {}}, t0, 3ms, 0.5).what, kind::gone);
  // A failed first try: again after 5 s, +-10 %.
  auto o = decide_webhook_outcome(d, {500, {}, {}}, t0, 3ms, 0.0);
  EXPECT_EQ(o.what, kind::retry);
  EXPECT_EQ(o.next_attempt_at - t0, 4500ms);
  EXPECT_EQ(decide_webhook_outcome(d, {0, {}, "connection refused"}, t0, 3ms, 1.0).next_attempt_at - t0, 5500ms);
  EXPECT_EQ(decide_webhook_outcome(d, {0, {}, "connection refused"}, t0, 3ms, 1.0).error, "connection refused");
  // Retry-After of a 429 or 503 is honoured when longer, bounded to a day; a 500's is not.
  EXPECT_EQ(decide_webhook_outcome(d, {429, 120s, {}}, t0, 3ms, 0.5).next_attempt_at - t0, 120s);
  EXPECT_EQ(decide_webhook_outcome(d, {503, 1s, {}}, t0, 3ms, 0.5).next_attempt_at - t0, 5s) << "shorter: the schedule";
  EXPECT_EQ(decide_webhook_outcome(d, {503, std::chrono::seconds(1'000'000), {}}, t0, 3ms, 0.5).next_attempt_at - t0, 24h);
  EXPECT_EQ(decide_webhook_outcome(d, {500, 120s, {}}, t0, 3ms, 0.5).next_attempt_at - t0, 5s);
  // The tenth failed try ends it.
  d.attempts = 9;
  EXPECT_EQ(decide_webhook_outcome(d, {500, {}, {}}, t0, 3ms, 0.5).what, kind::exhausted);
  d.attempts = 8;
  EXPECT_EQ(decide_webhook_outcome(d, {500, {}, {}}, t0, 3ms, 0.5).next_attempt_at - t0, 24h);
}

TEST(WebhookAddresses, InternalAddressesAreRefusedUnlessAllowed) {
  const auto addr = [](const char* a) { return boost::asio::ip::make_address(a); };
  const webhooks::address_policy none;
  webhooks::address_policy loopback;
  loopback.loopback = true;
  webhooks::address_policy both;
  both.loopback = both.private_ranges = true;
  for (const char* a : {"8.8.8.8", "1.1.1.1", "2606:4700::1111", "172.32.0.1", "100.128.0.1"})
    EXPECT_TRUE(webhooks::address_allowed(addr(a), none)) << a;
  for (const char* a : {"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1"}) {
    EXPECT_FALSE(webhooks::address_allowed(addr(a), none)) << a;
    EXPECT_TRUE(webhooks::address_allowed(addr(a), loopback)) << a;
  }
  for (const char* a : {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "fd00::1",
                        "::ffff:10.0.0.1", "::10.0.0.1", "2002:0a00:0001::1", "64:ff9b:1::1"}) {
    EXPECT_FALSE(webhooks::address_allowed(addr(a), loopback)) << a;
    EXPECT_TRUE(webhooks::address_allowed(addr(a), both)) << a;
  }
  // Never, whatever is allowed: link-local (with the cloud metadata addresses), unspecified, multicast, reserved.
  for (const char* a : {"169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254",
                        "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "255.255.255.255", "ff02::1", "192.0.2.1", "2001:db8::1"})
    EXPECT_FALSE(webhooks::address_allowed(addr(a), both)) << a;
  EXPECT_TRUE(webhooks::address_policy::parse("loopback, private")->private_ranges);
  EXPECT_FALSE(webhooks::address_policy::parse("")->loopback);
  EXPECT_FALSE(webhooks::address_policy::parse("everything"));
}

TEST(WebhookUrls, AbsoluteHttpUrlsAreTakenApartAndOthersRefusedWithTheReason) {
  auto u = webhooks::parse_webhook_url("https://hooks.example.com/v1/dialer?x=1");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.example.com");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/v1/dialer?x=1");
  u = webhooks::parse_webhook_url("HTTP://[::1]:8081");
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8081");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(webhooks::parse_webhook_url("http://h?q")->target, "/?q");
  for (const char* bad : {"ftp://h/", "hooks.example.com/x", "https://user:pw@h/", "https://h/#frag", "https:///x",
                          "https://h:0/", "https://h:99999/", "https://h x/", "https://[::1/", "https://h_1/"}) {
    auto r = webhooks::parse_webhook_url(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message.find("webhook URL"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace dialer
