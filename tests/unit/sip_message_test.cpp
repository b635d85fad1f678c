// The SIP message helpers the carrier and the proxy build on: URIs, the called number of an inbound INVITE, the
// answer that refuses every stream, responses written from a request.
#include <gtest/gtest.h>

#include "adapters/carriers/sip/sip_message.hpp"
#include "adapters/carriers/sip/sip_proxy.hpp"

namespace dialer::carriers::sip {
namespace {

TEST(SipMessage, ReadsTheUserHostPortAndParamsOfASipUri) {
  auto u = parse_sip_uri("<sip:+14155550100@10.0.0.5:5080;transport=tcp;lr>");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "sip");
  EXPECT_EQ(u->user, "+14155550100");
  EXPECT_EQ(u->host, "10.0.0.5");
  EXPECT_EQ(u->port, 5080);
  EXPECT_EQ(transport_of(*u), transport::tcp);
  auto v6 = parse_sip_uri("sips:agent@[2001:db8::1]");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 0);
  EXPECT_EQ(transport_of(*v6), transport::udp);
  EXPECT_FALSE(parse_sip_uri("wss://agents.example.com/x"));
  EXPECT_FALSE(parse_sip_uri("sip:host:99999"));
  EXPECT_FALSE(parse_sip_uri("sip:"));
}

TEST(SipMessage, TheCalledNumberIsReadAsE164OrNotAtAll) {
  EXPECT_EQ(called_number("sip:+14155550100@10.0.0.1"), "+14155550100");
  EXPECT_EQ(called_number("sip:14155550100@10.0.0.1:5060;user=phone"), "+14155550100");
  EXPECT_EQ(called_number("<sip:+1-415-555-0100@trunk>;tag=x"), "+14155550100");
  EXPECT_EQ(called_number("tel:+14155550100;phone-context=x"), "+14155550100");
  EXPECT_FALSE(called_number("sip:alice@10.0.0.1"));
  EXPECT_FALSE(called_number("sip:0155550100@10.0.0.1"));     // a national form: no country code, no guess
  EXPECT_FALSE(called_number("sip:+1234@10.0.0.1"));           // too short
  EXPECT_FALSE(called_number("sip:+1415555010099999@10.0.0.1"));  // too long
}

TEST(SipMessage, TheRefusingAnswerHasEveryMediaLineAtPortZero) {
  const std::string offer =
      "v=0\r\no=trunk 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\nm=video 40002 RTP/AVP 96\r\n";
  const auto answer = refusing_answer(offer);
  EXPECT_NE(answer.find("m=audio 0 RTP/AVP 0 8 101\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("m=video 0 RTP/AVP 96\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("40000"), std::string::npos);
  EXPECT_EQ(answer.find("a=rtpmap"), std::string::npos);
  EXPECT_EQ(answer.find("o=trunk"), std::string::npos) << "the answer's origin is ours, not the offerer's";
  EXPECT_EQ(answer.rfind("v=0\r\n", 0), 0u);
}

TEST(SipMessage, AResponseCopiesTheRequestAndAddsAToTagOnlyWhenItHasNone) {
  init_osip_once();
  const std::string request =
      "BYE sip:dialer@10.0.0.9:5060 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport=5061;received=10.0.0.2\r\n"
      "Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKb\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=f1\r\nTo: <sip:b@10.0.0.9>;tag=t1\r\n"
      "Call-ID: c1@x\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
  auto m = parse_text(request);
  ASSERT_TRUE(m);
  const auto ok = write_response(*m, plain(200, "ours"));
  EXPECT_EQ(ok.rfind("SIP/2.0 200 OK\r\n", 0), 0u) << ok;
  EXPECT_LT(ok.find("branch=z9hG4bKa"), ok.find("branch=z9hG4bKb")) << "Vias in order";
  EXPECT_NE(ok.find("received=10.0.0.2"), std::string::npos);
  EXPECT_NE(ok.find("tag=t1"), std::string::npos);
  EXPECT_EQ(ok.find("tag=ours"), std::string::npos) << "a To that has a tag keeps it";
  EXPECT_NE(ok.find("CSeq: 7 BYE"), std::string::npos);
  auto again = parse_text(ok);
  ASSERT_TRUE(again) << ok;
  EXPECT_EQ(status_of(*again), 200);
  EXPECT_EQ(call_id_of(*again), "c1@x");
}

}  // namespace
}  // namespace dialer::carriers::sip
