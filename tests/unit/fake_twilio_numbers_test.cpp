// The fake Twilio's phone numbers (tests/fakes/fake_twilio.hpp) over real HTTP on loopback: searching the
// inventory (AvailablePhoneNumbers), buying, listing, fetching, updating and releasing the account's numbers
// (IncomingPhoneNumbers), in the shapes of twilio/twilio-oai's api.v2010 spec, and their errors.
#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <stdexcept>

#include "adapters/http/signatures.hpp"
#include "adapters/http/url.hpp"
#include "tests/fakes/fake_twilio.hpp"

namespace dialer::fakes {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using http::query_params;
using namespace std::chrono_literals;

struct answer {
  unsigned status = 0;
  std::string body;
  [[nodiscard]] json body_json() const { return json::parse(body, nullptr, false); }
  [[nodiscard]] int code() const {
    const json j = body_json();
    return j.is_object() ? j.value("code", 0) : 0;
  }
};

// One blocking HTTP/1.1 request on its own connection.
answer request(unsigned short port, bhttp::verb method, const std::string& target, const std::string& body,
               const std::string& authorization) {
  net::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  bhttp::request<bhttp::string_body> req{method, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!authorization.empty()) req.set(bhttp::field::authorization, authorization);
  if (method == bhttp::verb::post) req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
  req.body() = body;
  req.prepare_payload();
  bhttp::write(socket, req);
  boost::beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  boost::beast::error_code ec;
  bhttp::read(socket, buffer, res, ec);
  if (ec) return {};
  return {res.result_int(), res.body()};
}

std::string form(const query_params& params) {
  std::string out;
  for (const auto& [k, v] : params)
    out += (out.empty() ? "" : "&") + http::percent_encode(k) + "=" + http::percent_encode(v);
  return out;
}

const std::regex rfc2822_date(R"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000)");
const std::regex pn_sid("PN[0-9a-f]{32}");

// Every property of api.v2010.account.incoming_phone_number in twilio-oai's spec.
const std::set<std::string> incoming_phone_number_fields{"account_sid",
                                                         "address_sid",
                                                         "address_requirements",
                                                         "api_version",
                                                         "beta",
                                                         "capabilities",
                                                         "date_created",
                                                         "date_updated",
                                                         "friendly_name",
                                                         "identity_sid",
                                                         "phone_number",
                                                         "origin",
                                                         "sid",
                                                         "sms_application_sid",
                                                         "sms_fallback_method",
                                                         "sms_fallback_url",
                                                         "sms_method",
                                                         "sms_url",
                                                         "status_callback",
                                                         "status_callback_method",
                                                         "trunk_sid",
                                                         "uri",
                                                         "voice_receive_mode",
                                                         "voice_application_sid",
                                                         "voice_caller_id_lookup",
                                                         "voice_fallback_method",
                                                         "voice_fallback_url",
                                                         "voice_method",
                                                         "voice_url",
                                                         "emergency_status",
                                                         "emergency_address_sid",
                                                         "emergency_address_status",
                                                         "bundle_sid",
                                                         "status",
                                                         "type"};

// Every property of api.v2010.account.available_phone_number_country.available_phone_number_local.
const std::set<std::string> available_phone_number_fields{
    "friendly_name", "phone_number", "lata",        "locality",    "rate_center",          "latitude",
    "longitude",     "region",       "postal_code", "iso_country", "address_requirements", "beta",
    "capabilities"};

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

class FakeTwilioNumbers : public ::testing::Test {
 protected:
  fake_twilio& start(fake_twilio_options o = {}) {
    fake_ = std::make_unique<fake_twilio>(std::move(o));
    fake_->start();
    return *fake_;
  }
  [[nodiscard]] std::string account() const { return "/2010-04-01/Accounts/" + fake_->account_sid(); }
  [[nodiscard]] std::string available(const std::string& type_and_query,
                                      const std::string& country = "US") const {
    return account() + "/AvailablePhoneNumbers/" + country + "/" + type_and_query;
  }
  [[nodiscard]] std::string incoming(const std::string& rest = ".json") const {
    return account() + "/IncomingPhoneNumbers" + rest;
  }
  [[nodiscard]] std::string number_path(const std::string& sid) const {
    return incoming("/" + sid + ".json");
  }
  [[nodiscard]] std::string auth() const {
    return "Basic " + http::base64(fake_->account_sid() + ":" + fake_->auth_token());
  }
  answer get(const std::string& target, const std::string& authorization = {}) {
    return request(fake_->port(), bhttp::verb::get, target, {},
                   authorization.empty() ? auth() : authorization);
  }
  answer post(const std::string& target, const query_params& params, const std::string& authorization = {}) {
    return request(fake_->port(), bhttp::verb::post, target, form(params),
                   authorization.empty() ? auth() : authorization);
  }
  answer del(const std::string& target) {
    return request(fake_->port(), bhttp::verb::delete_, target, {}, auth());
  }

  // The phone numbers a search offers.
  std::vector<std::string> offered(const std::string& type_and_query) {
    const answer a = get(available(type_and_query));
    EXPECT_EQ(a.status, 200u) << type_and_query << ": " << a.body;
    std::vector<std::string> out;
    const json page = a.body_json();
    for (const auto& n : page.at("available_phone_numbers")) out.push_back(n.at("phone_number"));
    return out;
  }
  // The phone numbers the account's list shows for a query.
  std::vector<std::string> listed(const std::string& query) {
    const answer a = get(incoming(".json" + query));
    EXPECT_EQ(a.status, 200u) << query << ": " << a.body;
    std::vector<std::string> out;
    const json page = a.body_json();
    for (const auto& n : page.at("incoming_phone_numbers")) out.push_back(n.at("phone_number"));
    return out;
  }
  // Buys a number; its resource.
  json buy(const query_params& params) {
    const answer a = post(incoming(), params);
    EXPECT_EQ(a.status, 201u) << a.body;
    return a.body_json();
  }

  std::unique_ptr<fake_twilio> fake_;
};

// ---- AvailablePhoneNumbers ----

TEST_F(FakeTwilioNumbers, SearchAnswersTheDefaultInventoryInTheSpecsShape) {
  start();
  const std::string target = available("Local.json?AreaCode=415&PageSize=3");
  const answer a = get(target);
  ASSERT_EQ(a.status, 200u) << a.body;
  const json j = a.body_json();
  EXPECT_EQ(keys_of(j),
            (std::set<std::string>{"available_phone_numbers", "uri", "first_page_uri", "next_page_uri",
                                   "previous_page_uri", "page", "page_size", "start", "end"}));
  EXPECT_EQ(j.at("uri"), target);
  EXPECT_EQ(j.at("page"), 0);
  EXPECT_EQ(j.at("page_size"), 3);
  EXPECT_EQ(j.at("start"), 0);
  EXPECT_EQ(j.at("end"), 2);
  EXPECT_TRUE(j.at("next_page_uri").is_null());
  EXPECT_TRUE(j.at("previous_page_uri").is_null());
  EXPECT_EQ(j.at("first_page_uri"), available("Local.json?AreaCode=415&PageSize=3&Page=0"));

  const json& numbers = j.at("available_phone_numbers");
  ASSERT_EQ(numbers.size(), 3u);
  const json& n = numbers[0];
  EXPECT_EQ(keys_of(n), available_phone_number_fields);
  EXPECT_EQ(n.at("phone_number"), "+14155550100");
  EXPECT_EQ(n.at("friendly_name"), "(415) 555-0100");
  EXPECT_EQ(n.at("region"), "CA");
  EXPECT_EQ(n.at("locality"), "San Francisco");
  EXPECT_EQ(n.at("iso_country"), "US");
  EXPECT_EQ(n.at("address_requirements"), "none");
  EXPECT_EQ(n.at("beta"), false);
  EXPECT_TRUE(n.at("latitude").is_string());  // as Twilio sends them (the spec says number: twilio-oai#45)
  EXPECT_TRUE(n.at("longitude").is_string());
  EXPECT_TRUE(n.at("lata").is_string());
  EXPECT_TRUE(n.at("rate_center").is_string());
  EXPECT_TRUE(n.at("postal_code").is_string());
  EXPECT_EQ(n.at("capabilities"), (json{{"voice", true}, {"sms", true}, {"mms", true}, {"fax", false}}));
  EXPECT_EQ(numbers[1].at("phone_number"), "+14155550101");
  EXPECT_EQ(numbers[2].at("phone_number"), "+14155550102");

  EXPECT_EQ(offered("Local.json").size(), 50u);  // the default PageSize
  EXPECT_EQ(offered("Local.json?PageSize=1000").size(), 500u);
  EXPECT_EQ(fake_->counters().requests.at("search_numbers"), 3);
}

TEST_F(FakeTwilioNumbers, SearchFiltersByAreaCodeContainsAndRegion) {
  start();
  EXPECT_EQ(offered("Local.json?Contains=5550123"),
            (std::vector<std::string>{"+12125550123", "+13125550123", "+14155550123", "+15125550123",
                                      "+16175550123"}));
  EXPECT_EQ(offered("Local.json?Contains=5550123&AreaCode=617"), (std::vector<std::string>{"+16175550123"}));
  const auto wildcard = offered("Local.json?Contains=617555012*");
  ASSERT_EQ(wildcard.size(), 10u);
  EXPECT_EQ(wildcard.front(), "+16175550120");
  EXPECT_EQ(wildcard.back(), "+16175550129");
  EXPECT_EQ(offered("Local.json?Contains=%2B1512*&PageSize=1000").size(), 100u);  // '+': from the start
  EXPECT_EQ(offered("Local.json?Contains=+1512*&PageSize=1000").size(), 100u);    // '+' sent unencoded
  EXPECT_EQ(offered("Local.json?Contains=1512*&PageSize=1000").size(), 100u);
  EXPECT_EQ(offered("Local.json?Contains=%2B512&PageSize=1000").size(), 0u);  // no US number starts +512
  EXPECT_EQ(offered("Local.json?Contains=415JKL0100"), (std::vector<std::string>{"+14155550100"}));  // keypad
  EXPECT_EQ(offered("Local.json?Contains=0199%24"),  // '$': at the end
            (std::vector<std::string>{"+12125550199", "+13125550199", "+14155550199", "+15125550199",
                                      "+16175550199"}));
  EXPECT_TRUE(offered("Local.json?Contains=5550%24").empty());
  EXPECT_EQ(offered("Local.json?Contains=5550").size(), 50u);

  const auto texas = offered("Local.json?InRegion=TX&PageSize=1000");
  EXPECT_EQ(texas.size(), 100u);
  EXPECT_TRUE(
      std::all_of(texas.begin(), texas.end(), [](const std::string& n) { return n.starts_with("+1512"); }));
  EXPECT_TRUE(offered("Local.json?InRegion=TX&AreaCode=415").empty());
  EXPECT_TRUE(offered("Local.json?InRegion=WA").empty());
  EXPECT_TRUE(offered("Local.json?FaxEnabled=true").empty());
  EXPECT_EQ(offered("Local.json?VoiceEnabled=true&SmsEnabled=true&PageSize=5").size(), 5u);

  const auto toll_free = offered("TollFree.json?PageSize=1000");
  EXPECT_EQ(toll_free.size(), 200u);
  EXPECT_EQ(toll_free.front(), "+18885550100");
  EXPECT_EQ(offered("TollFree.json?AreaCode=877&PageSize=1000").size(), 100u);
  const json tf = get(available("TollFree.json?PageSize=1")).body_json().at("available_phone_numbers")[0];
  EXPECT_EQ(tf.at("friendly_name"), "(888) 555-0100");
  EXPECT_TRUE(tf.at("locality").is_null());
  EXPECT_TRUE(tf.at("region").is_null());
  EXPECT_EQ(tf.at("iso_country"), "US");

  EXPECT_TRUE(offered("Mobile.json").empty());
  EXPECT_TRUE(offered("Local.json?PageSize=5&Page=1").empty());  // a search has one page
  const answer gb = get(available("Local.json", "GB"));
  EXPECT_EQ(gb.status, 200u);
  EXPECT_TRUE(gb.body_json().at("available_phone_numbers").empty());
  EXPECT_EQ(get(available("Nonsense.json")).code(), 20404);

  for (const char* bad :
       {"PageSize=0", "PageSize=1001", "PageSize=many", "Page=-1", "AreaCode=41", "AreaCode=abc",
        "Contains=5", "Contains=55%3F5", "Contains=**", "FaxEnabled=maybe"}) {
    const answer a = get(available(std::string("Local.json?") + bad));
    EXPECT_EQ(a.status, 400u) << bad;
    EXPECT_EQ(a.code(), 21218) << bad;
  }
}

// ---- buying ----

TEST_F(FakeTwilioNumbers, BuysANumberByPhoneNumberWithItsVoiceSettings) {
  start();
  const answer a = post(incoming(), {{"PhoneNumber", "+14155550123"},
                                     {"VoiceUrl", "https://dialer.example/voice"},
                                     {"VoiceMethod", "GET"},
                                     {"FriendlyName", "campaign 7"},
                                     {"SmsUrl", "https://tolerated.example/"}});
  ASSERT_EQ(a.status, 201u) << a.body;
  const json j = a.body_json();
  EXPECT_EQ(keys_of(j), incoming_phone_number_fields);
  const std::string sid = j.at("sid");
  EXPECT_TRUE(std::regex_match(sid, pn_sid)) << sid;
  EXPECT_EQ(j.at("account_sid"), fake_->account_sid());
  EXPECT_EQ(j.at("phone_number"), "+14155550123");
  EXPECT_EQ(j.at("friendly_name"), "campaign 7");
  EXPECT_EQ(j.at("voice_url"), "https://dialer.example/voice");
  EXPECT_EQ(j.at("voice_method"), "GET");
  EXPECT_TRUE(j.at("voice_application_sid").is_null());
  EXPECT_TRUE(j.at("trunk_sid").is_null());
  EXPECT_EQ(j.at("status"), "in-use");
  EXPECT_EQ(j.at("origin"), "twilio");
  EXPECT_EQ(j.at("type"), "local");
  EXPECT_EQ(j.at("beta"), false);
  EXPECT_EQ(j.at("api_version"), "2010-04-01");
  EXPECT_EQ(j.at("uri"), number_path(sid));
  EXPECT_EQ(j.at("capabilities"), (json{{"voice", true}, {"sms", true}, {"mms", true}, {"fax", false}}));
  EXPECT_TRUE(std::regex_match(j.at("date_created").get<std::string>(), rfc2822_date))
      << j.at("date_created");
  EXPECT_TRUE(std::regex_match(j.at("date_updated").get<std::string>(), rfc2822_date));

  EXPECT_EQ(get(number_path(sid)).body_json(), j);
  EXPECT_TRUE(offered("Local.json?Contains=4155550123").empty());  // no longer on offer
  const auto held = fake_->incoming_numbers();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].sid, sid);
  EXPECT_EQ(held[0].phone_number, "+14155550123");
  EXPECT_EQ(held[0].voice_url, "https://dialer.example/voice");
  EXPECT_EQ(held[0].voice_method, "GET");
  EXPECT_EQ(held[0].friendly_name, "campaign 7");
  const auto counted = fake_->counters();
  EXPECT_EQ(counted.requests.at("buy_number"), 1);
  EXPECT_EQ(counted.requests.at("get_number"), 1);
}

TEST_F(FakeTwilioNumbers, BuysTheFirstAvailableNumberOfAnAreaCode) {
  start();
  const json first = buy({{"AreaCode", "312"}});
  EXPECT_EQ(first.at("phone_number"), "+13125550100");
  EXPECT_EQ(first.at("friendly_name"), "(312) 555-0100");
  EXPECT_EQ(first.at("voice_url"), "");
  EXPECT_EQ(first.at("voice_method"), "POST");
  EXPECT_EQ(buy({{"AreaCode", "312"}}).at("phone_number"), "+13125550101");
  const json toll_free = buy({{"AreaCode", "888"}});
  EXPECT_EQ(toll_free.at("phone_number"), "+18885550100");
  EXPECT_EQ(toll_free.at("type"), "toll-free");
  // The kinds' own collections take a PhoneNumber of their kind.
  const answer local = post(incoming("/Local.json"), {{"PhoneNumber", "+16175550100"}});
  EXPECT_EQ(local.status, 201u) << local.body;
  const answer tf = post(incoming("/TollFree.json"), {{"PhoneNumber", "+18775550100"}});
  EXPECT_EQ(tf.status, 201u) << tf.body;
  EXPECT_EQ(fake_->incoming_numbers().size(), 5u);
}

TEST_F(FakeTwilioNumbers, AnUnavailableOrOwnedNumberIsRefusedWith21422) {
  fake_twilio_options o;
  o.owned_numbers = {"+15125550150"};
  start(o);
  buy({{"PhoneNumber", "+14155550100"}});
  for (const char* n : {"+15125550150",     // already the account's (pre-owned)
                        "+14155550100",     // already bought
                        "+19995550100"}) {  // never on offer
    const answer a = post(incoming(), {{"PhoneNumber", n}});
    EXPECT_EQ(a.status, 400u) << n;
    EXPECT_EQ(a.code(), 21422) << n << ": " << a.body;
    EXPECT_EQ(a.body_json().value("more_info", ""), "https://www.twilio.com/docs/errors/21422");
  }
  // A number of another kind than the collection's.
  EXPECT_EQ(post(incoming("/Local.json"), {{"PhoneNumber", "+18885550100"}}).code(), 21422);
  EXPECT_EQ(post(incoming("/TollFree.json"), {{"PhoneNumber", "+14155550101"}}).code(), 21422);
  EXPECT_EQ(post(incoming("/Mobile.json"), {{"PhoneNumber", "+14155550101"}}).code(), 21422);

  fake_twilio_options small;
  small.available_numbers = {"+12065550100"};
  start(small);
  EXPECT_EQ(post(incoming(), {{"AreaCode", "415"}}).code(), 21452);  // none in that area code
  EXPECT_EQ(buy({{"AreaCode", "206"}}).at("phone_number"), "+12065550100");
  EXPECT_EQ(post(incoming(), {{"AreaCode", "206"}}).code(), 21452);
}

TEST_F(FakeTwilioNumbers, RefusesInvalidBuyParameters) {
  start();
  const std::string n = "+14155550100";
  const struct {
    const char* why;
    query_params params;
    int code;
  } cases[] = {
      {"neither PhoneNumber nor AreaCode", {{"FriendlyName", "x"}}, 21421},
      {"PhoneNumber not a number", {{"PhoneNumber", "call-me"}}, 21421},
      {"both PhoneNumber and AreaCode", {{"PhoneNumber", n}, {"AreaCode", "415"}}, 21218},
      {"AreaCode not three digits", {{"AreaCode", "41"}}, 21451},
      {"VoiceUrl not http(s)", {{"PhoneNumber", n}, {"VoiceUrl", "ftp://example.com/x"}}, 21402},
      {"VoiceMethod", {{"PhoneNumber", n}, {"VoiceMethod", "PUT"}}, 21218},
      {"FriendlyName over 64", {{"PhoneNumber", n}, {"FriendlyName", std::string(65, 'f')}}, 21218},
      {"VoiceApplicationSid", {{"PhoneNumber", n}, {"VoiceApplicationSid", "AP123"}}, 21218},
      {"TrunkSid", {{"PhoneNumber", n}, {"TrunkSid", "TKnothex"}}, 21218},
  };
  for (const auto& c : cases) {
    const answer a = post(incoming(), c.params);
    EXPECT_EQ(a.status, 400u) << c.why;
    EXPECT_EQ(a.code(), c.code) << c.why << ": " << a.body;
  }
  // A Local.json buy takes PhoneNumber alone.
  EXPECT_EQ(post(incoming("/Local.json"), {{"AreaCode", "415"}}).code(), 21421);
  EXPECT_TRUE(fake_->incoming_numbers().empty());
  // Without its '+', or with the space an unencoded '+' becomes, a PhoneNumber is still that number.
  EXPECT_EQ(buy({{"PhoneNumber", "14155550100"}}).at("phone_number"), n);
  const answer raw =
      request(fake_->port(), bhttp::verb::post, incoming(), "PhoneNumber=+14155550101", auth());
  EXPECT_EQ(raw.status, 201u) << raw.body;
  EXPECT_EQ(raw.body_json().value("phone_number", ""), "+14155550101");
}

// ---- the account's numbers ----

TEST_F(FakeTwilioNumbers, ListsByPhoneNumberEncodedOrNot) {
  start();
  const std::string a = buy({{"PhoneNumber", "+14155550123"}}).at("sid");
  buy({{"PhoneNumber", "+14155550124"}});
  buy({{"PhoneNumber", "+13125550123"}});
  const std::vector<std::string> just_a{"+14155550123"};
  EXPECT_EQ(listed("?PhoneNumber=%2B14155550123"), just_a);
  EXPECT_EQ(listed("?PhoneNumber=+14155550123"), just_a);  // a literal '+', decoded as a space
  EXPECT_EQ(listed("?PhoneNumber=14155550123"), just_a);
  EXPECT_TRUE(listed("?PhoneNumber=%2B19995550123").empty());
  EXPECT_TRUE(listed("?PhoneNumber=nonsense").empty());
  EXPECT_EQ(listed("?PhoneNumber=%2B1415555012*"),
            (std::vector<std::string>{"+14155550123", "+14155550124"}));
  EXPECT_EQ(listed(""), (std::vector<std::string>{"+14155550123", "+14155550124", "+13125550123"}));
  EXPECT_EQ(listed("?FriendlyName=%28312%29%20555-0123"), (std::vector<std::string>{"+13125550123"}));
  EXPECT_TRUE(listed("?Origin=hosted").empty());
  EXPECT_EQ(
      get(incoming(".json?PhoneNumber=%2B14155550123")).body_json().at("incoming_phone_numbers")[0].at("sid"),
      a);

  // Pages that carry the filters.
  const json p0 = get(incoming(".json?PageSize=2")).body_json();
  EXPECT_EQ(keys_of(p0),
            (std::set<std::string>{"incoming_phone_numbers", "uri", "first_page_uri", "next_page_uri",
                                   "previous_page_uri", "page", "page_size", "start", "end"}));
  EXPECT_EQ(p0.at("incoming_phone_numbers").size(), 2u);
  EXPECT_EQ(p0.at("uri"), incoming(".json?PageSize=2&Page=0"));
  EXPECT_EQ(p0.at("end"), 1);
  ASSERT_TRUE(p0.at("next_page_uri").is_string());
  const json p1 = get(p0.at("next_page_uri")).body_json();
  ASSERT_EQ(p1.at("incoming_phone_numbers").size(), 1u);
  EXPECT_EQ(p1.at("incoming_phone_numbers")[0].at("phone_number"), "+13125550123");
  EXPECT_EQ(p1.at("page"), 1);
  EXPECT_EQ(p1.at("start"), 2);
  EXPECT_TRUE(p1.at("next_page_uri").is_null());
  EXPECT_EQ(p1.at("previous_page_uri"), incoming(".json?PageSize=2&Page=0"));
  EXPECT_EQ(get(incoming(".json?PageSize=0")).code(), 21218);
  // A kind's own collection lists only that kind.
  EXPECT_EQ(get(incoming("/TollFree.json")).body_json().at("incoming_phone_numbers").size(), 0u);
  EXPECT_EQ(get(incoming("/Local.json")).body_json().at("incoming_phone_numbers").size(), 3u);
  EXPECT_EQ(fake_->counters().requests.at("list_numbers"), 15);
}

TEST_F(FakeTwilioNumbers, UpdateSetsTheVoiceUrlAndOneOfApplicationOrTrunk) {
  start();
  const std::string sid =
      buy({{"PhoneNumber", "+14155550123"}, {"VoiceUrl", "https://old.example/voice"}}).at("sid");
  const answer a =
      post(number_path(sid), {{"VoiceUrl", "https://new.example/voice"}, {"VoiceMethod", "GET"}});
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body_json().at("voice_url"), "https://new.example/voice");
  EXPECT_EQ(a.body_json().at("voice_method"), "GET");
  EXPECT_EQ(a.body_json().at("friendly_name"), "(415) 555-0123");  // untouched
  EXPECT_EQ(get(number_path(sid)).body_json().at("voice_url"), "https://new.example/voice");
  EXPECT_EQ(fake_->incoming_numbers().at(0).voice_url, "https://new.example/voice");

  const std::string trunk = "TK" + std::string(32, 'a'), app = "AP" + std::string(32, 'b');
  json j = post(number_path(sid), {{"TrunkSid", trunk}}).body_json();
  EXPECT_EQ(j.at("trunk_sid"), trunk);
  EXPECT_TRUE(j.at("voice_application_sid").is_null());
  j = post(number_path(sid), {{"VoiceApplicationSid", app}}).body_json();
  EXPECT_EQ(j.at("voice_application_sid"), app);
  EXPECT_TRUE(j.at("trunk_sid").is_null());  // setting one clears the other
  EXPECT_EQ(fake_->incoming_numbers().at(0).voice_application_sid, app);
  EXPECT_EQ(fake_->incoming_numbers().at(0).trunk_sid, "");
  j = post(number_path(sid), {{"TrunkSid", trunk}}).body_json();
  EXPECT_EQ(j.at("trunk_sid"), trunk);
  EXPECT_TRUE(j.at("voice_application_sid").is_null());

  EXPECT_EQ(post(number_path(sid), {{"VoiceUrl", "not a url"}}).code(), 21402);
  EXPECT_EQ(post(number_path(sid), {{"VoiceMethod", "DELETE"}}).code(), 21218);
  const answer unknown = post(number_path("PN" + std::string(32, '0')), {{"VoiceUrl", "https://x.example/"}});
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(unknown.code(), 20404);
  EXPECT_EQ(fake_->counters().requests.at("update_number"), 7);
}

TEST_F(FakeTwilioNumbers, ReleaseAnswers204AndTheNumberIsOnOfferAgain) {
  start();
  const std::string sid = buy({{"PhoneNumber", "+14155550123"}}).at("sid");
  const answer gone = del(number_path(sid));
  EXPECT_EQ(gone.status, 204u);
  EXPECT_TRUE(gone.body.empty());
  EXPECT_TRUE(fake_->incoming_numbers().empty());
  EXPECT_EQ(get(number_path(sid)).code(), 20404);
  const answer again = del(number_path(sid));
  EXPECT_EQ(again.status, 404u);
  EXPECT_EQ(again.code(), 20404);
  EXPECT_EQ(offered("Local.json?Contains=4155550123"), (std::vector<std::string>{"+14155550123"}));
  const std::string rebought = buy({{"PhoneNumber", "+14155550123"}}).at("sid");
  EXPECT_NE(rebought, sid);
  EXPECT_EQ(fake_->counters().requests.at("release_number"), 2);
}

TEST_F(FakeTwilioNumbers, APreOwnedNumberIsListedAndNotOffered) {
  fake_twilio_options o;
  o.owned_numbers = {"+14155550100", "+13105550199"};  // the second was never in the inventory
  start(o);
  const auto held = fake_->incoming_numbers();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_NE(held[0].sid, held[1].sid);
  for (const auto& n : held) {
    EXPECT_TRUE(std::regex_match(n.sid, pn_sid)) << n.sid;
    EXPECT_EQ(n.voice_url, "");
    EXPECT_EQ(n.voice_method, "POST");
  }
  EXPECT_EQ(held[0].phone_number, "+14155550100");
  EXPECT_EQ(held[0].friendly_name, "(415) 555-0100");
  EXPECT_EQ(listed(""), (std::vector<std::string>{"+14155550100", "+13105550199"}));
  const json fetched = get(number_path(held[1].sid)).body_json();
  EXPECT_EQ(fetched.at("phone_number"), "+13105550199");
  EXPECT_EQ(keys_of(fetched), incoming_phone_number_fields);

  EXPECT_EQ(offered("Local.json?AreaCode=415&PageSize=1"), (std::vector<std::string>{"+14155550101"}));
  EXPECT_EQ(post(incoming(), {{"PhoneNumber", "+14155550100"}}).code(), 21422);
  // Released, even a number bought elsewhere goes on offer.
  EXPECT_EQ(del(number_path(held[1].sid)).status, 204u);
  EXPECT_EQ(offered("Local.json?AreaCode=310"), (std::vector<std::string>{"+13105550199"}));
  EXPECT_EQ(buy({{"PhoneNumber", "+13105550199"}}).at("phone_number"), "+13105550199");
}

TEST_F(FakeTwilioNumbers, AvailableNumbersReplaceTheDefaultInventory) {
  fake_twilio_options o;
  o.available_numbers = {"+12065550100", "+18005550100"};
  start(o);
  EXPECT_EQ(offered("Local.json"), (std::vector<std::string>{"+12065550100"}));
  EXPECT_EQ(offered("TollFree.json"), (std::vector<std::string>{"+18005550100"}));
  const json n = get(available("Local.json")).body_json().at("available_phone_numbers")[0];
  EXPECT_TRUE(n.at("locality").is_null());  // an area code the fake knows no place of
  EXPECT_EQ(n.at("friendly_name"), "(206) 555-0100");

  fake_twilio_options bad_available;
  bad_available.available_numbers = {"+442071838750"};
  EXPECT_THROW(fake_twilio{bad_available}, std::invalid_argument);
  fake_twilio_options bad_owned;
  bad_owned.owned_numbers = {"4155550100"};
  EXPECT_THROW(fake_twilio{bad_owned}, std::invalid_argument);
}

TEST_F(FakeTwilioNumbers, WrongCredentialsOrAnotherAccountAreRefused) {
  start();
  const std::string wrong = "Basic " + http::base64(fake_->account_sid() + ":not-the-token");
  for (const answer& a : {get(available("Local.json"), wrong), get(incoming(), wrong),
                          post(incoming(), {{"PhoneNumber", "+14155550100"}}, wrong)}) {
    EXPECT_EQ(a.status, 401u);
    EXPECT_EQ(a.code(), 20003);
  }
  const std::string other = "/2010-04-01/Accounts/AC" + std::string(32, 'f');
  const answer a = post(other + "/IncomingPhoneNumbers.json", {{"PhoneNumber", "+14155550100"}});
  EXPECT_EQ(a.status, 404u);
  EXPECT_EQ(a.code(), 20404);
  EXPECT_TRUE(fake_->incoming_numbers().empty());
  const answer not_allowed = request(fake_->port(), bhttp::verb::delete_, incoming(), {}, auth());
  EXPECT_EQ(not_allowed.status, 405u);
}

TEST_F(FakeTwilioNumbers, LatencyDelaysTheirAnswersToo) {
  fake_twilio_options o;
  o.latency = 100ms;
  start(o);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(get(available("Local.json?PageSize=1")).status, 200u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
}

}  // namespace
}  // namespace dialer::fakes
