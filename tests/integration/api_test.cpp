// The HTTP API of `dialer serve`, through the real binary on a fresh PostgreSQL database per test and real HTTP on
// loopback. Every answer is checked against the OpenAPI description (adapters/http/openapi.yaml): its status must
// be declared for the operation and its body must match the declared schema.
#include <openssl/evp.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <regex>
#include <sstream>

#include "adapters/http/api/api.hpp"
#include "tests/integration/e2e_fixture.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/openapi_contract.hpp"
#include "tests/integration/webhook_receiver.hpp"

namespace dialer::testing::e2e {
namespace {

using boost::beast::http::verb;

const openapi_contract& contract() {
  static const openapi_contract c(std::string(DIALER_TEST_DATA_DIR) + "/../../adapters/http/openapi.yaml");
  return c;
}

using api_server_process = serving_dialer;

class Api : public campaign_test {
 protected:
  void SetUp() override {
    campaign_test::SetUp();
    key_ = create_key("default");
    server_ = serve("api");
  }

  // A `dialer serve` on any free port; the port is the one it prints on stdout once it listens.
  api_server_process serve(const std::string& tag, std::vector<std::string> extra = {},
                           const std::map<std::string, std::string>& env = {}) {
    extra.insert(extra.begin(), {"--max-body", "65536"});
    return serve_on_any_port(tag, extra, env);
  }

  std::string create_key(const std::string& account) {
    if (account != "default") {
      auto made = dialer({"accounts", "create", account});
      EXPECT_EQ(made.exit_code, 0) << made.err;
    }
    auto r = dialer_json({"--account", account, "apikeys", "create", "--name", "test"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out)["key"].get<std::string>();
  }

  // One request; the answer must be what the description declares.
  // `raw_body` (with `raw_headers`) is sent as it is, instead of `body` as JSON.
  http_reply call(verb method, const std::string& target, const nlohmann::json& body = nullptr,
                  const std::string& key = "", std::map<std::string, std::string> headers = {},
                  unsigned short port = 0, const std::string& raw_body = {},
                  const std::map<std::string, std::string>& raw_headers = {}) {
    if (!key.empty()) headers["Authorization"] = "Bearer " + key;
    for (const auto& [k, v] : raw_headers) headers[k] = v;
    const http_client client(port ? port : server_.port);
    auto r = client.request(method, target, raw_body.empty() ? (body.is_null() ? std::string() : body.dump()) : raw_body,
                            headers);
    EXPECT_NE(r.status, 0u) << "no answer to " << target;
    if (r.status != 0) {
      for (const auto& p : contract().check(std::string(boost::beast::http::to_string(method)), target, r.status,
                                            r.header("content-type"), r.body))
        ADD_FAILURE() << target << " -> " << r.status << ": " << p << "\n" << r.body;
      EXPECT_NE(r.status, 500u) << target << ": " << r.body;
      if (r.status >= 400) {
        auto j = r.json();
        EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].contains("code") &&
                    j["error"].contains("message") && j["error"].contains("details"))
            << "not the error shape: " << r.body;
      }
    }
    return r;
  }
  http_reply get(const std::string& target, const std::string& key) { return call(verb::get, target, nullptr, key); }
  http_reply post(const std::string& target, const nlohmann::json& body, const std::string& key,
                  std::map<std::string, std::string> headers = {}) {
    if (!body.is_null()) headers.emplace("Content-Type", "application/json");
    return call(verb::post, target, body, key, headers);
  }
  http_reply patch(const std::string& target, const nlohmann::json& body, const std::string& key) {
    return call(verb::patch, target, body, key, {{"Content-Type", "application/json"}});
  }

  // An agent and a bought number of the account of `key`; returns (agent id, number id).
  std::pair<std::int64_t, std::int64_t> agent_with_number(const std::string& key, const std::string& name) {
    auto a = post("/v1/agents", {{"name", name}, {"handoff", "wss://agents.example/" + name}}, key);
    EXPECT_EQ(a.status, 201u) << a.body;
    auto offered = get("/v1/numbers/available?country=US&limit=1", key);
    EXPECT_EQ(offered.status, 200u) << offered.body;
    const auto e164 = offered.json()["data"][0]["e164"].get<std::string>();
    auto n = post("/v1/numbers", {{"e164", e164}, {"agent_id", a.json()["id"]}}, key);
    EXPECT_EQ(n.status, 201u) << n.body;
    return {a.json()["id"].get<std::int64_t>(), n.json()["id"].get<std::int64_t>()};
  }

  std::string key_;
  api_server_process server_;
};

TEST_F(Api, TheServerAndTheDescriptionDeclareTheSameOperations) {
  std::set<std::pair<std::string, std::string>> served;
  for (const auto& [method, path] : http::api_server::routes()) served.emplace(method, path);
  const auto declared = contract().operations();
  for (const auto& op : served) EXPECT_TRUE(declared.contains(op)) << op.first << " " << op.second << " is not described";
  for (const auto& op : declared) EXPECT_TRUE(served.contains(op)) << op.first << " " << op.second << " is not served";
  EXPECT_GE(served.size(), 15u);
}

TEST_F(Api, HealthReadinessAndMetricsNeedNoKey) {
  EXPECT_EQ(get("/healthz", "").status, 200u);
  EXPECT_EQ(get("/readyz", "").status, 200u);
  (void)get("/v1/agents", key_);
  auto m = get("/metrics", "");
  ASSERT_EQ(m.status, 200u);
  EXPECT_NE(m.body.find(R"(dialer_http_requests_total{method="GET",route="/v1/agents",status="200"} 1)"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("dialer_http_request_duration_seconds_bucket"), std::string::npos);
}

TEST_F(Api, RequestsWithoutAValidKeyAreRefusedAndARevokedKeyStopsAtOnce) {
  EXPECT_EQ(get("/v1/agents", "").status, 401u);
  EXPECT_EQ(call(verb::get, "/v1/agents", nullptr, "", {{"Authorization", "Basic dXNlcjpwYXNz"}}).status, 401u);
  EXPECT_EQ(get("/v1/agents", "dk_short").status, 401u);
  EXPECT_EQ(get("/v1/agents", "dk_" + std::string(32, 'A')).status, 401u) << "a well-formed key nobody was given";
  EXPECT_EQ(get("/v1/agents", key_).status, 200u);
  // The key is stored only as a hash: nothing in the database holds it.
  EXPECT_EQ(scalar("SELECT count(*) FROM api_keys WHERE position('" + key_.substr(3) + "' IN prefix || name) > 0"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM api_keys WHERE length(prefix) > 9"), 0);
  auto listed = dialer_json({"apikeys", "list"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_EQ(listed.out.find(key_), std::string::npos) << "a listing shows prefixes only";
  const auto id = nlohmann::json::parse(listed.out)[0]["id"].get<std::int64_t>();
  ASSERT_EQ(dialer({"apikeys", "revoke", std::to_string(id)}).exit_code, 0);
  EXPECT_EQ(get("/v1/agents", key_).status, 401u);
  EXPECT_EQ(dialer({"apikeys", "revoke", "999"}).exit_code, 3) << "not found";
}

// 404, not 403: ids of another account do not leak, and nothing of it can be changed.
TEST_F(Api, AnotherAccountsNumbersAndAgentsAreNotFoundAndCannotBeChanged) {
  const auto [agent_a, number_a] = agent_with_number(key_, "alpha");
  const auto other = create_key("other");
  const auto [agent_b, number_b] = agent_with_number(other, "bravo");
  const auto n = "/v1/numbers/" + std::to_string(number_a);
  const auto a = "/v1/agents/" + std::to_string(agent_a);
  EXPECT_EQ(get(n, other).status, 404u);
  EXPECT_EQ(get(a, other).status, 404u);
  EXPECT_EQ(patch(n, {{"max_cps", 5}}, other).status, 404u);
  EXPECT_EQ(patch(a, {{"name", "stolen"}}, other).status, 404u);
  EXPECT_EQ(post(n + "/assign", {{"agent_id", agent_b}, {"reassign", true}}, other).status, 404u);
  EXPECT_EQ(post(n + "/unassign", nullptr, other).status, 404u);
  EXPECT_EQ(post(n + "/release", nullptr, other).status, 404u);
  EXPECT_EQ(call(verb::delete_, a, nullptr, other).status, 404u);
  // Its own number to the other account's agent: the agent does not exist here.
  EXPECT_EQ(post("/v1/numbers/" + std::to_string(number_b) + "/assign", {{"agent_id", agent_a}}, other).status, 404u);
  auto mine = get("/v1/numbers", other).json()["data"];
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]["id"], number_b);
  EXPECT_EQ(get("/v1/agents", other).json()["data"].size(), 1u);
  // Unchanged, seen from its own account.
  auto still = get(n, key_).json();
  EXPECT_EQ(still["status"], "active");
  EXPECT_EQ(still["agent"]["id"], agent_a);
  EXPECT_EQ(still["max_cps"], 1.0);
}

TEST_F(Api, ANumberIsBoughtListedPagedAssignedLimitedAndReleased) {
  auto agent = post("/v1/agents", {{"name", "sales"}, {"handoff", "sip:agent@example.com"}}, key_);
  ASSERT_EQ(agent.status, 201u) << agent.body;
  const auto agent_id = agent.json()["id"].get<std::int64_t>();
  auto offered = get("/v1/numbers/available?country=us&type=local&limit=3", key_);
  ASSERT_EQ(offered.status, 200u) << offered.body;
  const auto offered_list = offered.json()["data"];  // a copy: json() returns a temporary
  ASSERT_EQ(offered_list.size(), 3u);
  std::vector<std::int64_t> ids;
  for (const auto& o : offered_list) {
    auto bought = post("/v1/numbers", {{"e164", o["e164"]}, {"max_concurrent_calls", 4}}, key_);
    ASSERT_EQ(bought.status, 201u) << bought.body;
    EXPECT_EQ(bought.json()["max_concurrent_calls"], 4);
    EXPECT_TRUE(bought.json()["agent"].is_null());
    ids.push_back(bought.json()["id"].get<std::int64_t>());
  }
  // Bought once: a second buyer of the same number is refused.
  EXPECT_EQ(post("/v1/numbers", {{"e164", offered_list[0]["e164"]}}, key_).status, 409u);
  // Pages of two: the cursor walks all three, then says there is no more.
  auto first = get("/v1/numbers?limit=2", key_).json();
  ASSERT_EQ(first["data"].size(), 2u);
  ASSERT_TRUE(first["next_cursor"].is_string());
  auto second = get("/v1/numbers?limit=2&cursor=" + first["next_cursor"].get<std::string>(), key_).json();
  ASSERT_EQ(second["data"].size(), 1u);
  EXPECT_EQ(second["data"][0]["id"], ids[2]);
  EXPECT_TRUE(second["next_cursor"].is_null());

  const auto n = "/v1/numbers/" + std::to_string(ids[0]);
  auto assigned = post(n + "/assign", {{"agent_id", agent_id}}, key_);
  ASSERT_EQ(assigned.status, 200u) << assigned.body;
  EXPECT_EQ(assigned.json()["agent"]["id"], agent_id);
  EXPECT_EQ(get("/v1/numbers?agent_id=" + std::to_string(agent_id), key_).json()["data"].size(), 1u);
  auto other = post("/v1/agents", {{"name", "support"}, {"handoff", "wss://agents.example/s"}}, key_);
  const auto other_id = other.json()["id"].get<std::int64_t>();
  auto taken = post(n + "/assign", {{"agent_id", other_id}}, key_);
  EXPECT_EQ(taken.status, 409u) << "held by another agent";
  EXPECT_EQ(post(n + "/assign", {{"agent_id", other_id}, {"reassign", true}}, key_).json()["agent"]["id"], other_id);
  EXPECT_TRUE(post(n + "/unassign", nullptr, key_).json()["agent"].is_null());

  auto limited = patch(n, {{"max_concurrent_calls", 9}, {"max_cps", 2.5}}, key_);
  ASSERT_EQ(limited.status, 200u) << limited.body;
  EXPECT_EQ(limited.json()["max_concurrent_calls"], 9);
  EXPECT_EQ(limited.json()["max_cps"], 2.5);
  EXPECT_EQ(patch(n, {{"max_cps", 0}}, key_).status, 422u);
  EXPECT_EQ(patch(n, nlohmann::json::object(), key_).status, 422u) << "nothing to change";

  auto released = post(n + "/release", nullptr, key_);
  ASSERT_EQ(released.status, 200u) << released.body;
  EXPECT_EQ(released.json()["status"], "released");
  EXPECT_FALSE(released.json()["released_at"].is_null());
  EXPECT_EQ(post(n + "/release", nullptr, key_).status, 409u);
  EXPECT_EQ(post(n + "/assign", {{"agent_id", agent_id}}, key_).status, 409u);
  EXPECT_EQ(patch(n, {{"max_cps", 3}}, key_).status, 409u);
  EXPECT_EQ(get("/v1/numbers?status=released", key_).json()["data"].size(), 1u);
  EXPECT_EQ(get("/v1/numbers?status=active", key_).json()["data"].size(), 2u);

  auto byoc = post("/v1/numbers/import", {{"e164", "+1 (415) 555-0199"}, {"provider", "twilio"}, {"agent_id", agent_id}, {"record_only", true}}, key_);
  ASSERT_EQ(byoc.status, 201u) << byoc.body;
  EXPECT_EQ(byoc.json()["kind"], "byoc");
  EXPECT_EQ(byoc.json()["e164"], "+14155550199");
  EXPECT_EQ(byoc.json()["agent"]["id"], agent_id);
  EXPECT_EQ(post("/v1/numbers/import", {{"e164", "+14155550198"}, {"provider", "acme"}}, key_).status, 422u);

  auto usage = get("/v1/billing/usage?from=2026-01-01&to=2026-12-31", key_);
  ASSERT_EQ(usage.status, 200u) << usage.body;
  EXPECT_EQ(usage.json()["currency"], "USD");
}

TEST_F(Api, AgentsAreCreatedRenamedAndDeletedOnlyWhenTheyHoldNothing) {
  auto made = post("/v1/agents", {{"name", "closer"}, {"handoff", "wss://agents.example/c"}}, key_);
  ASSERT_EQ(made.status, 201u) << made.body;
  const auto a = "/v1/agents/" + std::to_string(made.json()["id"].get<std::int64_t>());
  EXPECT_EQ(post("/v1/agents", {{"name", "closer"}, {"handoff", "wss://x.example"}}, key_).status, 409u);
  EXPECT_EQ(post("/v1/agents", {{"name", "bad"}, {"handoff", "ftp://x"}}, key_).code(), "invalid_input");
  EXPECT_EQ(post("/v1/agents", {{"name", "12345"}, {"handoff", "wss://x.example"}}, key_).status, 422u);
  auto renamed = patch(a, {{"name", "closer-2"}, {"handoff", "sips:closer@example.com"}}, key_);
  ASSERT_EQ(renamed.status, 200u) << renamed.body;
  EXPECT_EQ(renamed.json()["name"], "closer-2");
  EXPECT_EQ(renamed.json()["handoff"], "sips:closer@example.com");

  const auto offered = get("/v1/numbers/available?country=US&limit=1", key_).json()["data"][0]["e164"];
  auto n = post("/v1/numbers", {{"e164", offered}, {"agent_id", made.json()["id"]}}, key_);
  ASSERT_EQ(n.status, 201u) << n.body;
  auto refused = call(verb::delete_, a, nullptr, key_);
  EXPECT_EQ(refused.status, 409u) << "it holds a number";
  ASSERT_EQ(post("/v1/numbers/" + std::to_string(n.json()["id"].get<std::int64_t>()) + "/unassign", nullptr, key_).status,
            200u);
  EXPECT_EQ(call(verb::delete_, a, nullptr, key_).status, 204u);
  EXPECT_EQ(get(a, key_).status, 404u);
  EXPECT_EQ(call(verb::delete_, a, nullptr, key_).status, 404u);
  EXPECT_EQ(post("/v1/agents", {{"name", "closer-2"}, {"handoff", "wss://x.example"}}, key_).status, 201u)
      << "a deleted agent's name is free again";
}

// Each refusal the API makes, with its status and the error shape; none is a 500, and the server goes on.
TEST_F(Api, EveryKindOfBadRequestGetsItsOwnStatusAndNeverA500) {
  const auto json = std::map<std::string, std::string>{{"Content-Type", "application/json"}};
  http_client raw(server_.port);
  auto malformed = raw.request(verb::post, "/v1/agents", "{\"name\": ", {{"Authorization", "Bearer " + key_}, {"Content-Type", "application/json"}});
  EXPECT_EQ(malformed.status, 400u);
  EXPECT_EQ(malformed.code(), "malformed_json");
  EXPECT_EQ(get("/v1/numbers?limit=abc", key_).status, 400u);
  EXPECT_EQ(get("/v1/numbers?limit=0", key_).status, 400u);
  EXPECT_EQ(get("/v1/numbers?cursor=x1", key_).status, 400u);
  EXPECT_EQ(get("/v1/numbers?status=gone", key_).status, 400u);
  EXPECT_EQ(get("/v1/numbers/available", key_).status, 400u) << "country is required";
  EXPECT_EQ(get("/v1/billing/usage?from=2026-02-30&to=2026-03-01", key_).status, 400u);
  EXPECT_EQ(get("/v1/numbers?x=%zz", key_).status, 400u);
  EXPECT_EQ(get("/v1/nothing", key_).status, 404u);
  EXPECT_EQ(get("/v1/numbers/abc", key_).status, 404u);
  EXPECT_EQ(get("/v1/numbers/99999999999999999999999", key_).status, 404u);
  auto not_allowed = call(verb::put, "/v1/agents", nullptr, key_);
  EXPECT_EQ(not_allowed.status, 405u);
  EXPECT_NE(not_allowed.header("allow").find("POST"), std::string::npos);
  // 413: a body over the server's limit (64 KiB here), refused before it is read.
  auto big = raw.request(verb::post, "/v1/agents", std::string(200 * 1024, 'x'),
                         {{"Authorization", "Bearer " + key_}, {"Content-Type", "application/json"}});
  EXPECT_EQ(big.status, 413u);
  EXPECT_EQ(big.code(), "body_too_large");
  auto form = raw.request(verb::post, "/v1/agents", "name=x", {{"Authorization", "Bearer " + key_}, {"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(form.status, 415u);
  EXPECT_EQ(post("/v1/agents", nlohmann::json::array({1, 2}), key_).status, 422u) << "not an object";
  auto missing = post("/v1/agents", {{"name", "x"}}, key_);
  EXPECT_EQ(missing.status, 422u);
  EXPECT_EQ(missing.json()["error"]["details"]["field"], "handoff");
  auto typed = post("/v1/agents", {{"name", 7}, {"handoff", "wss://x.example"}}, key_);
  EXPECT_EQ(typed.status, 422u);
  EXPECT_EQ(typed.json()["error"]["details"]["field"], "name");
  auto unknown = post("/v1/agents", {{"name", "x"}, {"handoff", "wss://x.example"}, {"color", "red"}}, key_);
  EXPECT_EQ(unknown.status, 422u);
  EXPECT_EQ(unknown.json()["error"]["details"]["field"], "color");
  EXPECT_EQ(post("/v1/numbers", {{"e164", "not a number"}}, key_).status, 422u);
  EXPECT_EQ(post("/v1/numbers", {{"e164", "+14155550100"}, {"max_concurrent_calls", 0}}, key_).status, 422u);
  // 431: headers over 16 KiB.
  auto huge = raw.request(verb::get, "/v1/agents", {}, {{"Authorization", "Bearer " + key_}, {"X-Filler", std::string(20 * 1024, 'y')}});
  EXPECT_EQ(huge.status, 431u);
  EXPECT_EQ(huge.code(), "headers_too_large");
  // Not HTTP at all: a 400, and the server is still there.
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), server_.port});
    boost::asio::write(s, boost::asio::buffer(std::string("HELLO THERE\r\n\r\n")));
    std::string answer(512, '\0');
    boost::system::error_code ec;
    const auto n = s.read_some(boost::asio::buffer(answer), ec);
    EXPECT_EQ(answer.substr(0, std::min<std::size_t>(n, 12)), "HTTP/1.1 400");
  }
  EXPECT_EQ(get("/v1/agents", key_).status, 200u);
  EXPECT_EQ(scalar("SELECT count(*) FROM agents"), 0) << "no refused request created anything";
  auto metrics = get("/metrics", "").body;
  EXPECT_EQ(metrics.find("status=\"500\""), std::string::npos) << metrics;
}

TEST_F(Api, AKeyOverItsRateIsAnsweredTooManyRequestsWithRetryAfter) {
  auto slow = serve("limited", {"--key-rate", "0.5"});  // a burst of one, then one every two seconds
  auto first = call(verb::get, "/v1/agents", nullptr, key_, {}, slow.port);
  EXPECT_EQ(first.status, 200u);
  auto second = call(verb::get, "/v1/agents", nullptr, key_, {}, slow.port);
  EXPECT_EQ(second.status, 429u);
  EXPECT_EQ(second.code(), "rate_limited");
  EXPECT_EQ(second.header("retry-after"), "2");
  // Per key: another key of the same account is not held back.
  EXPECT_EQ(call(verb::get, "/v1/agents", nullptr, create_key("default"), {}, slow.port).status, 200u);
}

// The same key and body answer the first response again, from another process too; another body is refused;
// a refusal is kept like any answer.
TEST_F(Api, AnIdempotencyKeyReplaysTheFirstAnswerAcrossServersAndRefusesAnotherBody) {
  auto second_server = serve("api-2");
  const nlohmann::json body{{"name", "once"}, {"handoff", "wss://agents.example/once"}};
  auto first = post("/v1/agents", body, key_, {{"Idempotency-Key", "create-once-1"}});
  ASSERT_EQ(first.status, 201u) << first.body;
  EXPECT_TRUE(first.header("idempotent-replayed").empty());
  auto again = call(verb::post, "/v1/agents", body, key_,
                    {{"Idempotency-Key", "create-once-1"}, {"Content-Type", "application/json"}}, second_server.port);
  EXPECT_EQ(again.status, 201u);
  EXPECT_EQ(again.json(), first.json()) << "the first answer, not a second agent";
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(scalar("SELECT count(*) FROM agents WHERE name = 'once'"), 1);
  auto reused = post("/v1/agents", {{"name", "twice"}, {"handoff", "wss://agents.example/t"}}, key_,
                     {{"Idempotency-Key", "create-once-1"}});
  EXPECT_EQ(reused.status, 422u);
  EXPECT_EQ(reused.code(), "idempotency_key_reused");
  // Keys are per account: another account's same key is its own.
  const auto other = create_key("other");
  EXPECT_EQ(post("/v1/agents", body, other, {{"Idempotency-Key", "create-once-1"}}).status, 201u);
  // A validation refusal is replayed too.
  auto bad = post("/v1/agents", {{"name", "x"}}, key_, {{"Idempotency-Key", "bad-1"}});
  EXPECT_EQ(bad.status, 422u);
  EXPECT_EQ(post("/v1/agents", {{"name", "x"}}, key_, {{"Idempotency-Key", "bad-1"}}).header("idempotent-replayed"),
            "true");
  EXPECT_EQ(post("/v1/agents", body, key_, {{"Idempotency-Key", std::string(300, 'k')}}).status, 400u);
  // After a restart of both servers the answer is still there.
  server_.process->signal(SIGTERM);
  second_server.process->signal(SIGTERM);
  EXPECT_EQ(server_.process->wait(), 0) << server_.process->err();
  EXPECT_EQ(second_server.process->wait(), 0);
  server_ = serve("api-3");
  auto after = post("/v1/agents", body, key_, {{"Idempotency-Key", "create-once-1"}});
  EXPECT_EQ(after.status, 201u);
  EXPECT_EQ(after.json(), first.json());
}

// A client that sends half a request is cut off after the request timeout, and others are served meanwhile.
TEST_F(Api, ASlowClientIsCutOffAndDoesNotHoldTheServer) {
  auto strict = serve("strict", {"--request-timeout", "0.5"});
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket slow(io);
  slow.connect({boost::asio::ip::make_address("127.0.0.1"), strict.port});
  boost::asio::write(slow, boost::asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n")));
  EXPECT_EQ(call(verb::get, "/healthz", nullptr, "", {}, strict.port).status, 200u);
  // The server closes it: the read ends (end of file), with no answer.
  std::string buf(64, '\0');
  boost::system::error_code ec;
  const auto started = std::chrono::steady_clock::now();
  const auto n = slow.read_some(boost::asio::buffer(buf), ec);
  EXPECT_EQ(ec, boost::asio::error::eof) << ec.message();
  EXPECT_EQ(n, 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "cut off by the request timeout, not by luck";
}

// SIGTERM: the server stops accepting and exits cleanly; the campaigns stay for other engines.
TEST_F(Api, SigtermStopsAcceptingAndExitsCleanly) {
  EXPECT_EQ(get("/healthz", "").status, 200u);
  server_.process->signal(SIGTERM);
  EXPECT_EQ(server_.process->wait(), 0) << server_.process->err();
  EXPECT_EQ(http_client(server_.port).get("/healthz").status, 0u) << "nothing listens any more";
  EXPECT_EQ(scalar("SELECT count(*) FROM engines"), 0) << "its engine left the registry";
}

// SIGTERM finishes a request in flight: one whose body is still arriving when the signal comes gets its answer
// (and `Connection: close`), its effect is kept, while new connections are refused and idle keep-alive
// connections close at once. Three I/O threads: the connections are spread over them.
TEST_F(Api, SigtermFinishesARequestWhoseBodyIsStillArrivingAndClosesIdleConnections) {
  auto server = serve("drain", {"--io-threads", "3"});
  boost::asio::io_context io;
  const boost::asio::ip::tcp::endpoint at{boost::asio::ip::make_address("127.0.0.1"), server.port};
  // Idle keep-alive connections, each having been answered once.
  std::vector<boost::asio::ip::tcp::socket> idle;
  for (int i = 0; i < 4; ++i) {
    auto& c = idle.emplace_back(io);
    c.connect(at);
    boost::asio::write(c, boost::asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")));
    std::string answer;
    char buf[1024];
    while (answer.find("\"ok\"}") == std::string::npos) answer.append(buf, c.read_some(boost::asio::buffer(buf)));
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  }
  const std::string body = nlohmann::json{{"name", "late"}, {"handoff", "wss://agents.example/late"}}.dump();
  boost::asio::ip::tcp::socket client(io);
  client.connect(at);
  boost::asio::write(client, boost::asio::buffer(fmt::format(
                                 "POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
                                 "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                                 key_, body.size(), body.substr(0, 10))));
  // The server has its headers: in flight are this request and the scrape that reads the gauge.
  ASSERT_TRUE(eventually([&] {
    return call(verb::get, "/metrics", nullptr, "", {}, server.port).body.find("dialer_http_requests_in_flight 2") !=
           std::string::npos;
  }, server.process.get()));
  server.process->signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return http_client(server.port).get("/healthz").status == 0; }, server.process.get()))
      << "new connections are still accepted";
  // The idle connections close while the request in flight still waits for its body.
  for (auto& c : idle) {
    char buf[64];
    boost::system::error_code ec;
    const auto n = c.read_some(boost::asio::buffer(buf), ec);
    EXPECT_EQ(ec, boost::asio::error::eof) << ec.message();
    EXPECT_EQ(n, 0u);
  }
  boost::asio::write(client, boost::asio::buffer(body.substr(10)));
  std::string answer;
  char buf[4096];
  boost::system::error_code ec;
  while (!ec) answer.append(buf, client.read_some(boost::asio::buffer(buf), ec));  // until the server closes
  EXPECT_EQ(answer.rfind("HTTP/1.1 201", 0), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  EXPECT_EQ(server.process->wait(), 0) << server.process->err();
  EXPECT_EQ(scalar("SELECT count(*) FROM agents WHERE name = 'late'"), 1);
}

}  // namespace
}  // namespace dialer::testing::e2e

namespace dialer::testing::e2e {
namespace {

class ApiCampaigns : public Api {
 protected:
  // Open all day, every day; the simulated carrier at 1000x (a call takes tens of milliseconds).
  nlohmann::json settings(const std::string& name, std::int64_t agent) {
    return {{"name", name},
            {"agent_id", agent},
            {"window", {{"start", "00:00"}, {"end", "24:00"}, {"days", "every day"}, {"holidays", "none"}}},
            {"carrier", {{"name", "simulated"}, {"settings", {{"seed", 7}, {"time_acceleration", 1000}}}}},
            {"retry", {{"max_attempts", 1}}}};
  }
  std::string campaign_state_of(std::int64_t id) {
    return get("/v1/campaigns/" + std::to_string(id), key_).json()["campaign"]["state"].get<std::string>();
  }
};

TEST_F(ApiCampaigns, ACampaignFromJsonContactsIsValidatedLaunchedAndDialedToCompletion) {
  const auto [agent, number] = agent_with_number(key_, "dialer-bot");
  auto body = settings("spring", agent);
  body["contacts"] = nlohmann::json::array({{{"phone", "+1 415 555 0101"}, {"first_name", "Ann"}},
                                            {{"phone", "not a phone"}},
                                            {{"phone", "+14155550102"}, {"first_name", "Bo, Jr"}, {"vip", true}},
                                            {{"phone", "(415) 555-0101"}},
                                            {{"first_name", "nobody"}}});
  auto made = post("/v1/campaigns", body, key_);
  ASSERT_EQ(made.status, 201u) << made.body;
  const auto c = made.json();
  const auto id = c["campaign"]["id"].get<std::int64_t>();
  EXPECT_EQ(c["campaign"]["state"], "draft");
  EXPECT_EQ(c["import"]["accepted"], 2);
  EXPECT_EQ(c["import"]["rejected_total"], 3);
  std::map<std::int64_t, std::string> reasons;
  for (const auto& r : c["import"]["rejected"]) reasons[r["row"].get<std::int64_t>()] = r["reason"];
  EXPECT_EQ(reasons[2], "invalid_number");
  EXPECT_EQ(reasons[4], "duplicate");
  EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts"), 0) << "a draft dials nothing";
  EXPECT_EQ(post("/v1/campaigns", body, key_).status, 409u) << "the name is taken";

  auto launched = post("/v1/campaigns/" + std::to_string(id) + "/launch", nullptr, key_);
  ASSERT_EQ(launched.status, 200u) << launched.body;
  EXPECT_EQ(launched.json()["campaign"]["state"], "running");
  EXPECT_EQ(post("/v1/campaigns/" + std::to_string(id) + "/launch", nullptr, key_).status, 409u) << "not a draft";
  ASSERT_TRUE(eventually([&] { return campaign_state_of(id) == "completed"; }, server_.process.get()))
      << server_.process->err();
  auto done = get("/v1/campaigns/" + std::to_string(id), key_).json();
  EXPECT_EQ(done["contacts"]["by_state"]["done"], 2);
  EXPECT_EQ(done["attempts"], 2);
  ASSERT_EQ(done["numbers"].size(), 1u);
  EXPECT_EQ(done["numbers"][0]["in_flight"], 0);
  auto attempts = get("/v1/campaigns/" + std::to_string(id) + "/attempts?limit=1", key_).json();
  ASSERT_EQ(attempts["data"].size(), 1u);
  auto rest = get("/v1/campaigns/" + std::to_string(id) + "/attempts?cursor=" +
                      attempts["next_cursor"].get<std::string>(),
                  key_)
                  .json();
  ASSERT_EQ(rest["data"].size(), 1u);
  std::set<std::string> called{attempts["data"][0]["to"], rest["data"][0]["to"]};
  EXPECT_EQ(called, (std::set<std::string>{"+14155550101", "+14155550102"}));
  // The variables went in as written, the comma too.
  EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE variables LIKE '%Bo, Jr%'"), 1);
  auto contacts = get("/v1/campaigns/" + std::to_string(id) + "/contacts", key_).json();
  EXPECT_EQ(contacts["data"].size(), 2u);
  auto listed = get("/v1/campaigns?state=completed", key_).json();
  ASSERT_EQ(listed["data"].size(), 1u);
  EXPECT_EQ(listed["data"][0]["name"], "spring");

  // The engine's metrics: two calls ended (by outcome), two contacts claimed, two carrier answers timed, the
  // number's limit beside its calls in flight.
  const auto metrics = get("/metrics", "").body;
  const auto sum_of = [&](const std::string& prefix) {
    double sum = 0;
    std::istringstream in(metrics);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(prefix, 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
    return sum;
  };
  EXPECT_EQ(sum_of("dialer_calls_total{"), 2) << metrics;
  EXPECT_EQ(sum_of("dialer_contacts_claimed_total"), 2);
  EXPECT_EQ(sum_of("dialer_carrier_answer_seconds_count"), 2);
  const auto e164 = done["numbers"][0]["e164"].get<std::string>();
  EXPECT_EQ(sum_of("dialer_number_max_concurrent_calls{number=\"" + e164 + "\"}"), 1);
  EXPECT_EQ(sum_of("dialer_number_calls_in_flight{number=\"" + e164 + "\"}"), 0);
  EXPECT_NE(metrics.find("dialer_hopper_contacts"), std::string::npos);
}

// Event webhook endpoints through the API: validated, scoped to the account, their secret shown once, deliveries
// and tries readable, a rotation signing with both secrets while it overlaps, replays, disable and delete.
TEST_F(ApiCampaigns, WebhookEndpointsAreManagedAndTheirDeliveriesReadReplayedAndSignedThroughARotation) {
  // Loopback refused where it is not allowed (the fixture's server); then that server gives way to one that allows
  // it, the only one delivering.
  EXPECT_EQ(post("/v1/webhook_endpoints", {{"url", "http://127.0.0.1:9/x"}}, key_).status, 422u);
  server_.process->signal(SIGTERM);
  ASSERT_EQ(server_.process->wait(), 0);
  server_ = serve("hooks", {}, {{"DIALER_WEBHOOK_ALLOW", "loopback"}});
  auto& hooks = server_;
  const auto on = [&](verb m, const std::string& target, const nlohmann::json& body, const std::string& key) {
    return call(m, target, body, key, body.is_null() ? std::map<std::string, std::string>{}
                                                     : std::map<std::string, std::string>{{"Content-Type", "application/json"}},
                hooks.port);
  };
  // Refusals, each with its reason.
  EXPECT_EQ(on(verb::post, "/v1/webhook_endpoints", {{"url", "ftp://example.com/x"}}, key_).status, 422u);
  EXPECT_EQ(on(verb::post, "/v1/webhook_endpoints", {{"url", "https://h.example/x"}, {"event_types", {"call.nope"}}}, key_).status, 422u);
  EXPECT_EQ(on(verb::post, "/v1/webhook_endpoints", {{"url", "https://h.example/x"}, {"max_in_flight", 0}}, key_).status, 422u);
  EXPECT_EQ(on(verb::post, "/v1/webhook_endpoints", {{"url", "https://h.example/x"}, {"secret", "mine"}}, key_).status, 422u);
  auto internal = post("/v1/webhook_endpoints", {{"url", "http://169.254.169.254/latest"}}, key_);
  EXPECT_EQ(internal.status, 422u);
  EXPECT_NE(internal.body.find("internal address"), std::string::npos) << internal.body;

  auto made = on(verb::post, "/v1/webhook_endpoints", {{"url", "http://127.0.0.1:9/nowhere"}, {"description", "platform"}}, key_);
  ASSERT_EQ(made.status, 201u) << made.body;
  const auto endpoint = made.json()["id"].get<std::int64_t>();
  const auto old_secret = made.json()["secret"].get<std::string>();
  const auto path = "/v1/webhook_endpoints/" + std::to_string(endpoint);
  EXPECT_FALSE(on(verb::get, path, nullptr, key_).json().contains("secret")) << "shown once";
  EXPECT_EQ(on(verb::get, "/v1/webhook_endpoints", nullptr, key_).json()["data"].size(), 1u);
  const auto other = create_key("other-account");
  EXPECT_EQ(on(verb::get, path, nullptr, other).status, 404u);
  EXPECT_EQ(on(verb::patch, path, {{"enabled", false}}, other).status, 404u);
  EXPECT_EQ(on(verb::get, "/v1/webhook_endpoints", nullptr, other).json()["data"].size(), 0u);

  // The receiver knows the first secret; events of a campaign's run reach it.
  receiver first(dir_ / "first", {old_secret});
  ASSERT_EQ(on(verb::patch, path, {{"url", first.url()}}, key_).status, 200u);
  const auto [agent, number] = agent_with_number(key_, "hook-bot");
  auto body = settings("hooked", agent);
  body["contacts"] = nlohmann::json::array({{{"phone", "+14155550111"}}, {{"phone", "+14155550112"}}});
  const auto campaign = post("/v1/campaigns", body, key_).json()["campaign"]["id"].get<std::int64_t>();
  ASSERT_EQ(post("/v1/campaigns/" + std::to_string(campaign) + "/launch", nullptr, key_).status, 200u);
  ASSERT_TRUE(eventually([&] { return campaign_state_of(campaign) == "completed"; }, server_.process.get()));
  const auto events = scalar("SELECT count(*) FROM webhook_events");
  ASSERT_GE(events, 6) << "launched, 2 call.ended, 2 contact.finished, completed";
  ASSERT_TRUE(eventually([&] { return static_cast<std::int64_t>(first.processed().size()) == events; }, hooks.process.get()));
  // The receiver answers before the dispatcher records its batch: the API shows them once recorded.
  ASSERT_TRUE(eventually([&] { return on(verb::get, path, nullptr, key_).json()["deliveries"]["delivered"] == events; },
                         hooks.process.get()));
  auto delivered = on(verb::get, path + "/deliveries?state=delivered&limit=2", nullptr, key_).json();
  ASSERT_EQ(delivered["data"].size(), 2u);
  EXPECT_EQ(delivered["data"][0]["last_status"], 200);
  ASSERT_FALSE(delivered["next_cursor"].is_null());
  EXPECT_EQ(on(verb::get, path + "/deliveries?state=delivered&cursor=" + delivered["next_cursor"].get<std::string>(),
               nullptr, key_).json()["data"].size(),
            static_cast<std::size_t>(events - 2));
  EXPECT_EQ(on(verb::get, path + "/deliveries?state=nope", nullptr, key_).status, 400u);
  // The history keeps tries that did not deliver (and every try of a delivery that was retried): none here.
  EXPECT_EQ(on(verb::get, path + "/attempts", nullptr, key_).json()["data"].size(), 0u);

  // Rotation: both secrets sign while it overlaps, so a receiver that knows either verifies a replay.
  auto rotated = on(verb::post, path + "/rotate_secret", {{"overlap_seconds", 3600}}, key_);
  ASSERT_EQ(rotated.status, 200u) << rotated.body;
  const auto new_secret = rotated.json()["secret"].get<std::string>();
  EXPECT_NE(new_secret, old_secret);
  EXPECT_FALSE(rotated.json()["previous_secret_expires_at"].is_null());
  receiver second(dir_ / "second", {new_secret});
  ASSERT_EQ(on(verb::patch, path, {{"url", second.url()}}, key_).status, 200u);
  const std::string some = delivered["data"][0]["event_id"];
  auto replayed = on(verb::post, path + "/replay", {{"event_ids", {some}}}, key_);
  ASSERT_EQ(replayed.status, 202u) << replayed.body;
  EXPECT_EQ(replayed.json()["replayed"], 1);
  ASSERT_TRUE(eventually([&] { return second.processed().count(some) == 1; }, hooks.process.get()));
  ASSERT_EQ(on(verb::patch, path, {{"url", first.url()}}, key_).status, 200u);
  // Replayed again once the second delivery is recorded (a delivery held by a try is not replayed).
  ASSERT_TRUE(eventually([&] {
    return on(verb::post, path + "/replay", {{"event_ids", {some}}}, key_).json()["replayed"] == 1;
  }, hooks.process.get()));
  ASSERT_TRUE(eventually([&] {
    std::size_t n = 0;
    for (const auto& e : first.log()) n += e.value("id", "") == some && e.value("answer", nlohmann::json()) == 200;
    return n == 2;
  }, hooks.process.get())) << "the old secret still verifies during the overlap";
  EXPECT_TRUE(first.invalid().empty());
  EXPECT_TRUE(second.invalid().empty());
  EXPECT_EQ(on(verb::post, path + "/replay", {{"event_ids", {"12"}}}, key_).status, 422u);
  EXPECT_EQ(on(verb::post, path + "/rotate_secret", {{"overlap_seconds", 999999999}}, key_).status, 422u);

  // Disabled through the API, with the reason; enabled again, without.
  auto off = on(verb::patch, path, {{"enabled", false}}, key_).json();
  EXPECT_EQ(off["enabled"], false);
  EXPECT_EQ(off["disabled_reason"], "disabled through the API");
  EXPECT_TRUE(on(verb::patch, path, {{"enabled", true}}, key_).json()["disabled_reason"].is_null());
  EXPECT_EQ(on(verb::delete_, path, nullptr, key_).status, 204u);
  EXPECT_EQ(on(verb::get, path, nullptr, key_).status, 404u);
  EXPECT_EQ(scalar("SELECT count(*) FROM webhook_deliveries"), 0) << "its deliveries went with it";
  // At most 20 endpoints per account (each event fans out to every one inside its change's transaction).
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(on(verb::post, "/v1/webhook_endpoints", {{"url", "https://h" + std::to_string(i) + ".example/x"}}, key_).status,
              201u);
  auto over = on(verb::post, "/v1/webhook_endpoints", {{"url", "https://h20.example/x"}}, key_);
  EXPECT_EQ(over.status, 409u);
  EXPECT_EQ(over.code(), "too_many_endpoints");
  EXPECT_EQ(on(verb::post, "/v1/webhook_endpoints", {{"url", "https://h.example/x"}}, other).status, 201u)
      << "another account's are its own";
}

TEST_F(ApiCampaigns, AnUploadedCsvIsImportedWithEveryRejectedRowPagedByRow) {
  const auto [agent, number] = agent_with_number(key_, "csv-bot");
  std::string csv = "phone,name\n";
  for (int i = 0; i < 30; ++i) csv += (i % 3 == 0 ? "bad" + std::to_string(i) : fmt::format("+1415555{:04}", 200 + i)) + ",x\n";
  const std::string boundary = "dialer-test-boundary";
  std::string body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"campaign\"\r\n" +
                     "Content-Type: application/json\r\n\r\n" + settings("upload", agent).dump() + "\r\n--" + boundary +
                     "\r\nContent-Disposition: form-data; name=\"contacts\"; filename=\"c.csv\"\r\n" +
                     "Content-Type: text/csv\r\n\r\n" + csv + "\r\n--" + boundary + "--\r\n";
  http_client raw(server_.port);
  auto made = raw.request(verb::post, "/v1/campaigns", body,
                          {{"Authorization", "Bearer " + key_},
                           {"Content-Type", "multipart/form-data; boundary=" + boundary}});
  ASSERT_EQ(made.status, 201u) << made.body;
  for (const auto& p : contract().check("POST", "/v1/campaigns", made.status, made.header("content-type"), made.body))
    ADD_FAILURE() << p;
  const auto id = made.json()["campaign"]["id"].get<std::int64_t>();
  EXPECT_EQ(made.json()["import"]["accepted"], 20);
  EXPECT_EQ(made.json()["import"]["rejected_total"], 10);
  std::vector<std::int64_t> rows;
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = get("/v1/campaigns/" + std::to_string(id) + "/rejected?limit=4" + (cursor.empty() ? "" : "&cursor=" + cursor), key_).json();
    for (const auto& r : page["data"]) {
      rows.push_back(r["row"].get<std::int64_t>());
      EXPECT_EQ(r["input"].get<std::string>().substr(0, 3), "bad");
    }
    if (page["next_cursor"].is_null()) break;
    cursor = page["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(rows, (std::vector<std::int64_t>{1, 4, 7, 10, 13, 16, 19, 22, 25, 28}));
  // A malformed upload, a missing part, a file that is not a contacts CSV: refused, nothing created.
  auto broken = raw.request(verb::post, "/v1/campaigns", "--" + boundary + "\r\nno end",
                            {{"Authorization", "Bearer " + key_}, {"Content-Type", "multipart/form-data; boundary=" + boundary}});
  EXPECT_EQ(broken.status, 400u);
  std::string one_part = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"contacts\"\r\n\r\n" + csv + "\r\n--" + boundary + "--\r\n";
  auto half = raw.request(verb::post, "/v1/campaigns", one_part,
                          {{"Authorization", "Bearer " + key_}, {"Content-Type", "multipart/form-data; boundary=" + boundary}});
  EXPECT_EQ(half.status, 422u);
  auto no_phone = settings("no-phone", agent);
  no_phone["contacts"] = nlohmann::json::array({{{"name", "x"}}});
  EXPECT_EQ(post("/v1/campaigns", no_phone, key_).status, 201u) << "a row without a phone is a rejected row";
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 2);
}

TEST_F(ApiCampaigns, AnAgentWithoutANumberFailsAtOnceWithNoOutboundNumber) {
  auto agent = post("/v1/agents", {{"name", "lonely"}, {"handoff", "wss://agents.example/l"}}, key_);
  ASSERT_EQ(agent.status, 201u);
  const auto agent_id = agent.json()["id"].get<std::int64_t>();
  auto call = post("/v1/calls", {{"agent_id", agent_id}, {"to", "+14155550123"}}, key_);
  EXPECT_EQ(call.status, 422u);
  EXPECT_EQ(call.code(), "no_outbound_number");
  auto body = settings("lonely-campaign", agent_id);
  body["contacts"] = nlohmann::json::array({{{"phone", "+14155550123"}}});
  auto made = post("/v1/campaigns", body, key_);
  EXPECT_EQ(made.status, 422u);
  EXPECT_EQ(made.code(), "no_outbound_number");
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 0) << "nothing is left behind";
  EXPECT_EQ(post("/v1/calls", {{"agent_id", 999}, {"to", "+14155550123"}}, key_).status, 404u);
}

TEST_F(ApiCampaigns, ACallIsPlacedThroughThePipelineAndItsAttemptIsShown) {
  const auto [agent, number] = agent_with_number(key_, "caller");
  auto placed = post("/v1/calls", {{"agent_id", agent}, {"to", "(415) 555-0199"}}, key_);
  ASSERT_EQ(placed.status, 201u) << placed.body;
  const auto id = placed.json()["id"].get<std::int64_t>();
  ASSERT_TRUE(eventually([&] { return get("/v1/calls/" + std::to_string(id), key_).json()["state"] == "completed"; },
                         server_.process.get()))
      << server_.process->err();
  auto call = get("/v1/calls/" + std::to_string(id), key_).json();
  ASSERT_TRUE(call["attempt"].is_object());
  EXPECT_EQ(call["attempt"]["to"], "+14155550199");
  EXPECT_FALSE(call["attempt"]["outcome"].is_null());
  EXPECT_EQ(post("/v1/calls", {{"agent_id", agent}, {"to", "+14155550199"}, {"from", "+19995550100"}}, key_).status, 422u)
      << "a from that is not one of the agent's";
}

TEST_F(ApiCampaigns, StateChangesFollowTheLifeCycleAndAnotherAccountSeesNothing) {
  const auto [agent, number] = agent_with_number(key_, "cycle");
  auto body = settings("cycle", agent);
  body["contacts"] = nlohmann::json::array({{{"phone", "+14155550111"}}});
  auto made = post("/v1/campaigns", body, key_);
  ASSERT_EQ(made.status, 201u) << made.body;
  const auto c = "/v1/campaigns/" + std::to_string(made.json()["campaign"]["id"].get<std::int64_t>());
  EXPECT_EQ(post(c + "/pause", nullptr, key_).status, 409u) << "a draft is not running";
  EXPECT_EQ(post(c + "/resume", nullptr, key_).status, 409u);
  const auto other = create_key("other");
  EXPECT_EQ(get(c, other).status, 404u);
  EXPECT_EQ(post(c + "/cancel", nullptr, other).status, 404u);
  EXPECT_EQ(get(c + "/contacts", other).status, 404u);
  EXPECT_EQ(get("/v1/campaigns", other).json()["data"].size(), 0u);
  auto cancelled = post(c + "/cancel", nullptr, key_);
  ASSERT_EQ(cancelled.status, 200u) << cancelled.body;
  EXPECT_EQ(cancelled.json()["campaign"]["state"], "cancelled");
  EXPECT_EQ(post(c + "/launch", nullptr, key_).status, 409u) << "cancel is final";
  auto bad = settings("bad-settings", agent);
  bad["contacts"] = nlohmann::json::array({{{"phone", "+14155550111"}}});
  bad["concurrency"] = 0;
  bad["window"]["start"] = "25:00";
  auto refused = post("/v1/campaigns", bad, key_);
  EXPECT_EQ(refused.status, 422u);
  EXPECT_EQ(refused.json()["error"]["details"]["errors"].size(), 2u) << refused.body;
  auto file = settings("file", agent);
  file["contacts"] = {{"file", "/etc/passwd"}};
  EXPECT_EQ(post("/v1/campaigns", file, key_).status, 422u);
  auto log = settings("log", agent);
  log["contacts"] = nlohmann::json::array({{{"phone", "+14155550111"}}});
  log["carrier"]["settings"]["call_log"] = "/tmp/anything";
  EXPECT_EQ(post("/v1/campaigns", log, key_).status, 422u);
  EXPECT_EQ(scalar("SELECT count(*) FROM campaigns"), 1);
}

}  // namespace
}  // namespace dialer::testing::e2e

namespace dialer::testing::e2e {
namespace {

std::string b64(const unsigned char* p, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  out.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n))));
  return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    for (const auto* part : {&k, &v}) {
      for (unsigned char c : *part) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
        else out += fmt::format("%{:02X}", c);
      }
      if (part == &k) out += '=';
    }
  }
  return out;
}

// Inbound calls: the carriers' signed webhooks, routed from the in-memory number -> agent table. Twilio's
// signatures are computed by Twilio's own helper library (npm `twilio`, installed by scripts/test-tools.sh);
// Telnyx's with a fresh ed25519 key pair made here.
class ApiInbound : public Api {
 protected:
  static constexpr const char* kToken = "twilio-test-auth-token";
  static constexpr const char* kBase = "https://dialer.example.com";

  void SetUp() override {
    campaign_test::SetUp();
    key_ = create_key("default");
    // An ed25519 key pair, as a Telnyx account has; the server gets the public half.
    EVP_PKEY* raw = nullptr;
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> kctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr),
                                                                     EVP_PKEY_CTX_free);
    ASSERT_EQ(EVP_PKEY_keygen_init(kctx.get()), 1);
    ASSERT_EQ(EVP_PKEY_keygen(kctx.get(), &raw), 1);
    telnyx_key_.reset(raw);
    unsigned char pub[32];
    std::size_t len = sizeof pub;
    ASSERT_EQ(EVP_PKEY_get_raw_public_key(raw, pub, &len), 1);
    env_ = {{"DIALER_PUBLIC_BASE_URL", std::string(kBase) + "/"},
            {"DIALER_TWILIO_AUTH_TOKEN", kToken},
            {"DIALER_TELNYX_PUBLIC_KEY", b64(pub, len)},
            // The decisions are also issued through Call Control; nothing listens there in these tests (the
            // carrier tests check the commands against the fake Telnyx).
            {"DIALER_TELNYX_API_KEY", "KEY-inbound-test"},
            {"DIALER_TELNYX_BASE_URL", "http://127.0.0.1:9"}};
    server_ = serve("inbound", {}, env_);
  }

  std::string twilio_signature(const std::string& url, const std::vector<std::pair<std::string, std::string>>& params) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : params) j[k] = v;
    const auto file = dir_ / "twilio-params.json";
    std::ofstream(file) << j.dump();
    const auto script = std::string(DIALER_TEST_DATA_DIR) + "/../lint/twilio-signature.js";
    const auto cmd = fmt::format("node '{}' '{}' '{}' '{}'", script, kToken, url, file.string());
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      EXPECT_EQ(::pclose(p), 0) << "Twilio's helper library did not run (scripts/test-tools.sh installs it): " << cmd;
    }
    EXPECT_FALSE(out.empty());
    return out;
  }

  http_reply twilio_call(unsigned short port, const std::string& to, bool tamper = false) {
    const std::vector<std::pair<std::string, std::string>> params{
        {"CallSid", "CA0123456789abcdef0123456789abcdef"}, {"AccountSid", "AC0123456789abcdef0123456789abcdef"},
        {"From", "+12125550199"}, {"To", to}, {"CallStatus", "ringing"}, {"Direction", "inbound"}};
    const std::string target = "/v1/inbound/twilio?tenant=a%20b";
    const auto signature = twilio_signature(std::string(kBase) + target, params);
    auto sent = params;
    if (tamper) sent[2].second = "+19995550100";  // a From the signature does not cover
    return call(verb::post, target, nullptr, "", {}, port, form_encode(sent),
                {{"Content-Type", "application/x-www-form-urlencoded"}, {"X-Twilio-Signature", signature}});
  }

  http_reply telnyx_call(const std::string& to, std::int64_t timestamp, bool tamper = false, unsigned short port = 0) {
    const nlohmann::json body{{"data",
                               {{"id", "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"},
                                {"event_type", "call.initiated"},
                                {"record_type", "event"},
                                {"payload",
                                 {{"call_control_id", "v3:abc"}, {"direction", "incoming"}, {"from", "+12125550199"}, {"to", to}}}}}};
    const auto text = body.dump();
    const auto message = std::to_string(timestamp) + "|" + text;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, telnyx_key_.get()), 1);
    unsigned char sig[64];
    std::size_t sig_len = sizeof sig;
    EXPECT_EQ(EVP_DigestSign(ctx.get(), sig, &sig_len, reinterpret_cast<const unsigned char*>(message.data()), message.size()), 1);
    return call(verb::post, "/v1/inbound/telnyx", nullptr, "", {}, port != 0 ? port : server_.port, tamper ? text + " " : text,
                {{"Content-Type", "application/json"},
                 {"telnyx-timestamp", std::to_string(timestamp)},
                 {"telnyx-signature-ed25519", b64(sig, sig_len)}});
  }

  // A number of an agent with this hand-off; returns the number's E.164.
  std::string number_for(const std::string& agent_name, const std::string& handoff) {
    auto a = post("/v1/agents", {{"name", agent_name}, {"handoff", handoff}}, key_);
    EXPECT_EQ(a.status, 201u) << a.body;
    const auto e164 = get("/v1/numbers/available?country=US&limit=1", key_).json()["data"][0]["e164"].get<std::string>();
    auto n = post("/v1/numbers", {{"e164", e164}, {"agent_id", a.json()["id"]}}, key_);
    EXPECT_EQ(n.status, 201u) << n.body;
    return e164;
  }

  bool routes_to(unsigned short port, const std::string& e164, const std::string& needle) {
    const auto r = twilio_call(port, e164);
    return r.status == 200 && r.body.find(needle) != std::string::npos;
  }

  std::string scalar_text(const std::string& sql) const { return query(sql)[0][0].as<std::string>(); }

  std::map<std::string, std::string> env_;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> telnyx_key_{nullptr, EVP_PKEY_free};
};

TEST_F(ApiInbound, ASignedTwilioCallToAnAssignedNumberIsHandedToItsAgentAndOthersAreRejected) {
  const auto stream = number_for("streamer", "wss://agents.example.com/stream?x=1&y=2");
  ASSERT_TRUE(eventually([&] { return routes_to(server_.port, stream, "<Connect>"); }, server_.process.get()));
  auto r = twilio_call(server_.port, stream);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/xml");
  EXPECT_NE(r.body.find(R"(<Stream url="wss://agents.example.com/stream?x=1&amp;y=2">)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"(<Parameter name="number" value=")" + stream + "\"/>"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"(<Parameter name="call_sid" value="CA0123456789abcdef0123456789abcdef"/>)"), std::string::npos);
  EXPECT_NE(r.body.find(R"(<Parameter name="agent" value="streamer"/>)"), std::string::npos);

  const auto sip = number_for("sipper", "sip:agent@pbx.example.com");
  ASSERT_TRUE(eventually([&] { return routes_to(server_.port, sip, "<Dial><Sip>sip:agent@pbx.example.com</Sip></Dial>"); },
                         server_.process.get()));

  auto unknown = twilio_call(server_.port, "+14155559999");
  EXPECT_EQ(unknown.status, 200u);
  EXPECT_NE(unknown.body.find("<Reject/>"), std::string::npos) << unknown.body;

  auto forged = twilio_call(server_.port, stream, true);
  EXPECT_EQ(forged.status, 403u);
  EXPECT_EQ(forged.code(), "bad_signature");
  auto unsigned_call = call(verb::post, "/v1/inbound/twilio", nullptr, "", {}, server_.port, "To=%2B14155550100",
                            {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(unsigned_call.status, 403u);

  const auto metrics = get("/metrics", "").body;
  EXPECT_NE(metrics.find(R"(dialer_inbound_calls_total{carrier="twilio",result="rejected"} 1)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(dialer_inbound_calls_total{carrier="twilio",result="bad_signature"} 2)"), std::string::npos);
}

TEST_F(ApiInbound, ASignedTelnyxWebhookGetsTheCommandThatHandsTheCallToItsAgent) {
  const auto stream = number_for("t-streamer", "wss://agents.example.com/t");
  const auto now = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  ASSERT_TRUE(eventually([&] { return telnyx_call(stream, now()).json().value("action", "") == "answer"; }, server_.process.get()));
  auto r = telnyx_call(stream, now()).json();
  EXPECT_EQ(r["stream_url"], "wss://agents.example.com/t");
  EXPECT_EQ(r["call_control_id"], "v3:abc");
  EXPECT_EQ(telnyx_call("+14155559999", now()).json()["action"], "reject");
  EXPECT_EQ(telnyx_call(stream, now(), true).status, 403u) << "a body the signature does not cover";
  EXPECT_EQ(telnyx_call(stream, now() - 301).status, 403u) << "a timestamp over five minutes old";
  // A server that could not answer the call through Call Control (no API key) says 503, so that Telnyx retries or
  // fails over, instead of a 200 after which nobody answers.
  auto keyless_env = env_;
  keyless_env.erase("DIALER_TELNYX_API_KEY");
  auto keyless = serve("inbound-keyless", {}, keyless_env);
  const auto refused = telnyx_call(stream, now(), false, keyless.port);
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_EQ(refused.code(), "inbound_not_configured");
  EXPECT_NE(refused.body.find("DIALER_TELNYX_API_KEY"), std::string::npos) << refused.body;
}

// The lookup is in memory in every server, and follows a change made through another server: announced by the
// database (LISTEN/NOTIFY), not polled.
TEST_F(ApiInbound, AnAssignmentChangedThroughOneServerRoutesTheOtherAccordingly) {
  auto other = serve("inbound-2", {}, env_);
  const auto e164 = number_for("first-agent", "wss://agents.example.com/first");
  auto second = post("/v1/agents", {{"name", "second-agent"}, {"handoff", "sip:second@pbx.example.com"}}, key_);
  ASSERT_EQ(second.status, 201u);
  const auto number_id = get("/v1/numbers", key_).json()["data"][0]["id"].get<std::int64_t>();
  const auto n = "/v1/numbers/" + std::to_string(number_id);
  ASSERT_TRUE(eventually([&] { return routes_to(other.port, e164, "agents.example.com/first"); }, other.process.get()));
  const auto first_id = get("/v1/numbers", key_).json()["data"][0]["agent"]["id"].get<std::int64_t>();
  ASSERT_EQ(patch("/v1/agents/" + std::to_string(first_id), {{"name", "renamed-agent"}}, key_).status, 200u);
  EXPECT_TRUE(eventually([&] { return routes_to(other.port, e164, R"(<Parameter name="agent" value="renamed-agent"/>)"); },
                         other.process.get()))
      << "a rename is announced too";
  ASSERT_EQ(post(n + "/assign", {{"agent_id", second.json()["id"]}, {"reassign", true}}, key_).status, 200u);
  EXPECT_TRUE(eventually([&] { return routes_to(other.port, e164, "sip:second@pbx.example.com"); }, other.process.get()))
      << "the other server still routes to the first agent";
  ASSERT_EQ(patch("/v1/agents/" + std::to_string(second.json()["id"].get<std::int64_t>()),
                  {{"handoff", "sip:moved@pbx.example.com"}}, key_).status,
            200u);
  EXPECT_TRUE(eventually([&] { return routes_to(other.port, e164, "sip:moved@pbx.example.com"); }, other.process.get()))
      << "a hand-off change is announced too";
  ASSERT_EQ(post(n + "/unassign", nullptr, key_).status, 200u);
  EXPECT_TRUE(eventually([&] { return routes_to(other.port, e164, "<Reject/>"); }, other.process.get()));
  ASSERT_EQ(post(n + "/assign", {{"agent_id", second.json()["id"]}}, key_).status, 200u);
  EXPECT_TRUE(eventually([&] { return routes_to(other.port, e164, "sip:moved"); }, other.process.get()));
  ASSERT_EQ(post(n + "/release", nullptr, key_).status, 200u);
  EXPECT_TRUE(eventually([&] { return routes_to(other.port, e164, "<Reject/>"); }, other.process.get()))
      << "a released number routes nowhere";
}

// The feed reloads the whole table after it lost its connection: a change committed while it could not listen
// (its announcement went nowhere) is routed once it is back.
TEST_F(ApiInbound, TheRouteFeedReloadsEverythingAfterLosingItsConnection) {
  // One API worker: connected by the first request, it can still serve while new connections are refused.
  auto one = serve("feed", {"--api-workers", "1"}, env_);
  const auto e164 = number_for("before", "wss://agents.example.com/before");
  auto after = call(verb::post, "/v1/agents", {{"name", "after"}, {"handoff", "sip:after@pbx.example.com"}}, key_,
                    {{"Content-Type", "application/json"}}, one.port);
  ASSERT_EQ(after.status, 201u);
  const auto number_id = get("/v1/numbers", key_).json()["data"][0]["id"].get<std::int64_t>();
  ASSERT_TRUE(eventually([&] { return routes_to(one.port, e164, "agents.example.com/before"); }, one.process.get()));

  // While the database refuses new connections, the feed cannot come back (changed from another database: a
  // database cannot refuse its own).
  const auto db_name = scalar_text("SELECT current_database()");
  auto admin = connect_to(std::regex_replace(url_, std::regex(R"(dbname=\S+)"), "dbname=postgres"));
  pqxx::nontransaction sql(*admin);
  const auto db = sql.quote_name(db_name);
  sql.exec0("ALTER DATABASE " + db + " ALLOW_CONNECTIONS false");
  struct allow_again {  // whatever the outcome, the database accepts connections again (teardown needs it)
    pqxx::nontransaction& sql;
    std::string db;
    ~allow_again() { sql.exec0("ALTER DATABASE " + db + " ALLOW_CONNECTIONS true"); }
  } guard{sql, db};
  // Every server's feed (the fixture's and this one's).
  const auto cut = sql.exec_params1("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE application_name = 'dialer route feed' AND datname = $1", db_name);
  ASSERT_GE(cut[0].as<int>(), 1) << "no feed connection in pg_stat_activity";
  ASSERT_TRUE(eventually([&] { return one.process->err().find("the feed lost the database") != std::string::npos; },
                         one.process.get()));
  // Through the API (its worker is connected): announced while nobody listens.
  ASSERT_EQ(call(verb::post, "/v1/numbers/" + std::to_string(number_id) + "/assign",
                 {{"agent_id", after.json()["id"]}, {"reassign", true}}, key_, {{"Content-Type", "application/json"}},
                 one.port)
                .status,
            200u);
  sql.exec0("ALTER DATABASE " + db + " ALLOW_CONNECTIONS true");
  EXPECT_TRUE(eventually([&] { return routes_to(one.port, e164, "sip:after@pbx.example.com"); }, one.process.get()))
      << "the change made while the feed was away was never loaded";
}

}  // namespace
}  // namespace dialer::testing::e2e

namespace dialer::testing::e2e {
namespace {

std::string raw_exchange(unsigned short port, const std::string& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::system::error_code ec;
  boost::asio::write(s, boost::asio::buffer(bytes), ec);
  std::string answer;
  char buf[4096];
  for (;;) {
    const auto n = s.read_some(boost::asio::buffer(buf), ec);
    answer.append(buf, n);
    if (ec || answer.find("\r\n\r\n") != std::string::npos) break;
  }
  return answer;
}

// What a hostile review of the API found, each tried: none may crash the server, leak across accounts or act.
TEST_F(Api, HostileInputIsRefusedWithoutHarm) {
  // Bytes that are not UTF-8, in a path and a query: a clear refusal, and the server goes on.
  EXPECT_EQ(get("/v1/numbers/%FF%FE", key_).status, 404u);
  EXPECT_EQ(get("/v1/numbers?country=%FF", key_).status, 400u);
  EXPECT_EQ(get("/v1/campaigns/%C3%28", key_).status, 404u);
  // JSON nested deeper than anything the API takes.
  std::string deep = std::string(5000, '[') + std::string(5000, ']');
  auto nested = call(verb::post, "/v1/campaigns", nullptr, key_, {}, 0,
                     R"({"name":"x","contacts":[{"phone":"+14155550100"}],"x":)" + deep + "}",
                     {{"Content-Type", "application/json"}});
  EXPECT_EQ(nested.status, 422u);
  // Contacts asking for a huge table (a new field in every row).
  nlohmann::json wide = nlohmann::json::array();
  for (int i = 0; i < 100; ++i) wide.push_back({{"phone", "+14155550100"}, {"f" + std::to_string(i), "v"}});
  auto a = post("/v1/agents", {{"name", "hostile"}, {"handoff", "wss://x.example"}}, key_);
  auto too_wide = post("/v1/campaigns", {{"name", "wide"}, {"agent_id", a.json()["id"]}, {"contacts", wide}}, key_);
  EXPECT_EQ(too_wide.status, 422u) << too_wide.body;
  // A hand-off with control characters.
  EXPECT_EQ(post("/v1/agents", {{"name", "nul"}, {"handoff", std::string("wss://x\x01y")}}, key_).status, 422u);
  // A number bought here cannot be claimed as BYOC by another account (it would take its inbound calls).
  const auto [agent, number] = agent_with_number(key_, "owner");
  const auto e164 = get("/v1/numbers/" + std::to_string(number), key_).json()["e164"].get<std::string>();
  const auto other = create_key("other");
  EXPECT_EQ(post("/v1/numbers/import", {{"e164", e164}, {"provider", "twilio"}, {"record_only", true}}, other).status, 409u);
  // Buying for an agent of another account: refused before anything is bought.
  const auto offered = get("/v1/numbers/available?country=US&limit=1", other).json()["data"][0]["e164"];
  const auto before = scalar("SELECT count(*) FROM numbers");
  EXPECT_EQ(post("/v1/numbers", {{"e164", offered}, {"agent_id", agent}}, other).status, 404u);
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), before) << "nothing was bought";
  // A chunked body whose trailer never ends: cut off at the header limit.
  auto flood = raw_exchange(server_.port, "POST /v1/agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" +
                                              std::string("X-Trailer: ") + std::string(200 * 1024, 'z'));
  EXPECT_EQ(flood.substr(0, 12), "HTTP/1.1 431") << flood.substr(0, 200);
  // HEAD: the GET's headers without a body.
  auto head = raw_exchange(server_.port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 200");
  EXPECT_NE(head.find("Content-Length: 15"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "") << "no body after the headers";
  // A method nobody knows: refused, and counted under "other", not under a label the client chose.
  auto odd = raw_exchange(server_.port, "FROB123 /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(odd.substr(0, 12), "HTTP/1.1 405");
  const auto metrics = get("/metrics", "").body;
  EXPECT_EQ(metrics.find("FROB123"), std::string::npos);
  EXPECT_NE(metrics.find(R"(method="other")"), std::string::npos);
  EXPECT_EQ(metrics.find("status=\"500\""), std::string::npos) << metrics;
  EXPECT_EQ(get("/healthz", "").status, 200u) << "still serving";
}

TEST_F(Api, MetricsCanBeGuardedByAToken) {
  auto guarded = serve("guarded", {}, {{"DIALER_METRICS_TOKEN", "metrics-secret"}});
  EXPECT_EQ(call(verb::get, "/metrics", nullptr, "", {}, guarded.port).status, 401u);
  EXPECT_EQ(call(verb::get, "/metrics", nullptr, "", {{"Authorization", "Bearer wrong"}}, guarded.port).status, 401u);
  auto ok = call(verb::get, "/metrics", nullptr, "", {{"Authorization", "Bearer metrics-secret"}}, guarded.port);
  EXPECT_EQ(ok.status, 200u);
  EXPECT_NE(ok.body.find("dialer_http_requests_total"), std::string::npos);
}

}  // namespace
}  // namespace dialer::testing::e2e
