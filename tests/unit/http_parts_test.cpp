// The HTTP adapter's pure parts: routing, %-decoding and forms, multipart uploads, carriers' signatures, API keys,
// and the inbound route table's choice.
#include <gtest/gtest.h>

#include "adapters/http/api_key.hpp"
#include "adapters/http/multipart.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"
#include "engine/inbound_routes.hpp"

namespace dialer::http {
namespace {

using boost::beast::http::verb;

TEST(Router, ALiteralSegmentBeatsAParameterAndParametersAreDecoded) {
  router<int> r;
  r.add(verb::get, "/v1/numbers/{id}", 1);
  r.add(verb::get, "/v1/numbers/available", 2);
  r.add(verb::post, "/v1/numbers/{id}/assign", 3);
  EXPECT_EQ(r.match(verb::get, "/v1/numbers/available").found->handler, 2);
  auto m = r.match(verb::get, "/v1/numbers/a%20b");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.found->handler, 1);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0], (std::pair<std::string, std::string>{"id", "a b"}));
  EXPECT_EQ(r.match(verb::post, "/v1/numbers/7/assign").params[0].second, "7");
}

TEST(Router, AKnownPathWithAnotherMethodSaysWhichAreAllowed) {
  router<int> r;
  r.add(verb::get, "/v1/agents", 1);
  r.add(verb::post, "/v1/agents", 2);
  auto m = r.match(verb::put, "/v1/agents");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "POST"}));
  auto none = r.match(verb::get, "/v1/nothing");
  EXPECT_EQ(none.found, nullptr);
  EXPECT_TRUE(none.allowed.empty());
  EXPECT_EQ(r.match(verb::get, "/v1/numbers/%zz").found, nullptr) << "a malformed escape matches nothing";
  EXPECT_EQ(r.match(verb::get, std::string(40, '/') + "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r").found, nullptr);
}

TEST(Url, PercentDecodingRefusesMalformedEscapesAndFormsDecodePlus) {
  EXPECT_EQ(percent_decode("a%2Fb%20c"), "a/b c");
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("%4"));
  EXPECT_FALSE(percent_decode("%G0"));
  auto form = parse_form("To=%2B14155550100&From=+1+2&Empty=&flag");
  ASSERT_TRUE(form);
  EXPECT_EQ(*form, (query_params{{"To", "+14155550100"}, {"From", " 1 2"}, {"Empty", ""}, {"flag", ""}}));
  EXPECT_FALSE(parse_form("a=%2"));
  auto t = split_target("/v1/numbers?limit=2&cursor=10");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/v1/numbers");
  EXPECT_EQ(t->query.size(), 2u);
  EXPECT_EQ(percent_encode("+1 (415)"), "%2B1%20%28415%29");
}

TEST(Multipart, PartsAreFoundByNameAndABrokenBodyIsRefused) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"xyz\""), "xyz");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=abc"), "abc");
  EXPECT_FALSE(multipart_boundary("application/json"));
  const std::string body =
      "preamble\r\n--b\r\nContent-Disposition: form-data; name=\"campaign\"\r\nContent-Type: application/json\r\n\r\n"
      "{\"a\":1}\r\n--b\r\nContent-Disposition: form-data; name=\"contacts\"; filename=\"c.csv\"\r\n\r\nphone\r\n+1\r\n"
      "--b--\r\n";
  auto parts = parse_multipart(body, "b");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "campaign");
  EXPECT_EQ((*parts)[0].content_type, "application/json");
  EXPECT_EQ((*parts)[0].data, "{\"a\":1}");
  EXPECT_EQ((*parts)[1].filename, "c.csv");
  EXPECT_EQ((*parts)[1].data, "phone\r\n+1");
  EXPECT_FALSE(parse_multipart("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nno end", "b"));
  EXPECT_FALSE(parse_multipart("nothing here", "b"));
}

// The example of Twilio's security documentation, whose signature Twilio's helper library computes as
// 0/KCTR6DLpKmkAf8muzZqo1nDgQ= (tests/lint/twilio-signature.js).
TEST(Signatures, TwilioSignaturesMatchTwilios) {
  const query_params params{{"To", "+18005551212"}, {"CallSid", "CA1234567890ABCDE"}, {"Caller", "+12349013030"},
                            {"Digits", "1234"}, {"From", "+12349013030"}};
  const std::string url = "https://mycompany.com/myapp.php?foo=1&bar=2";
  EXPECT_EQ(twilio_signature("12345", url, params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
  EXPECT_TRUE(twilio_signature_ok("12345", url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
  EXPECT_FALSE(twilio_signature_ok("12346", url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
  EXPECT_FALSE(twilio_signature_ok("12345", url + "&x=1", params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
  EXPECT_FALSE(twilio_signature_ok("12345", url, params, ""));
}

TEST(Signatures, Ed25519RefusesMalformedKeysAndSignatures) {
  EXPECT_FALSE(ed25519_ok("", "m", ""));
  EXPECT_FALSE(ed25519_ok("not base64!", "m", "AAAA"));
  EXPECT_FALSE(ed25519_ok(base64(std::string(32, 'k')), "m", base64(std::string(64, 's'))));
  EXPECT_EQ(unbase64(base64("hello, world")), "hello, world");
  EXPECT_EQ(unbase64(base64("ab")), "ab");
  EXPECT_FALSE(unbase64("abc"));
}

TEST(ApiKeys, KeysAreRandomWellFormedAndHashedNotStored) {
  const auto a = new_api_key(), b = new_api_key();
  EXPECT_NE(a, b);
  EXPECT_TRUE(looks_like_api_key(a));
  EXPECT_EQ(a.size(), 35u);
  EXPECT_FALSE(looks_like_api_key("dk_short"));
  EXPECT_FALSE(looks_like_api_key("xx_" + a.substr(3)));
  EXPECT_FALSE(looks_like_api_key(a.substr(0, 34) + "!"));
  EXPECT_EQ(api_key_prefix(a), a.substr(0, 9));
  EXPECT_NE(sha256(a), sha256(b));
}

}  // namespace
}  // namespace dialer::http

namespace dialer {
namespace {

inbound_route row(std::int64_t number, std::int64_t account, std::int64_t agent, bool managed = false) {
  return {number_id{number}, account_id{account}, "+14155550100", agent_id{agent}, "a", "wss://x", managed};
}

TEST(RouteTable, OnlyAnAssignedNumberRoutesAndTwoAccountsAgentsRouteNowhere) {
  route_table t;
  EXPECT_FALSE(t.loaded());
  t.replace_all({row(1, 1, 0)});
  EXPECT_TRUE(t.loaded());
  EXPECT_EQ(t.find("+14155550100"), nullptr) << "active, but no agent";
  t.replace_number("+14155550100", {row(1, 1, 5), row(2, 2, 0)});
  ASSERT_NE(t.find("+14155550100"), nullptr);
  EXPECT_EQ(t.find("+14155550100")->agent.value(), 5);
  t.replace_number("+14155550100", {row(1, 1, 5), row(2, 2, 6)});
  EXPECT_EQ(t.find("+14155550100"), nullptr) << "BYOC in two accounts, both assigned: the call cannot say which";
  t.replace_number("+14155550100", {row(1, 1, 0, true), row(2, 2, 6)});
  EXPECT_EQ(t.find("+14155550100"), nullptr) << "a BYOC claim cannot take over a number the platform sold";
  t.replace_number("+14155550100", {row(2, 2, 6), row(1, 1, 5, true)});
  ASSERT_NE(t.find("+14155550100"), nullptr);
  EXPECT_EQ(t.find("+14155550100")->account.value(), 1) << "the managed row decides";
  t.replace_number("+14155550100", {});
  EXPECT_EQ(t.find("+14155550100"), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace dialer
