// libFuzzer target for the SIP wire layer (adapters/carriers/sip/sip_wire, sip_digest): every input goes
// through parse_message on UDP and TCP, through frame_stream as a connection's buffer would (frame by frame),
// through error_response for whatever was refused, and read_challenge / authorization_value for whatever was
// accepted; once with the default limits and once with small ones, so that short inputs reach every limit.
// Besides crashes, leaks and undefined behaviour, it aborts when an outcome breaks a promise of sip_wire.hpp
// (an accepted message without Call-ID, a frame outside the buffer, a response that is not one message, ...).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/carriers/sip/sip_digest.hpp"
#include "adapters/carriers/sip/sip_wire.hpp"

namespace {

namespace sip = dialer::carriers::sip;

[[noreturn]] void broken(const char* promise) {
  std::fprintf(stderr, "sip_parse_fuzz: broken promise: %s\n", promise);
  std::abort();
}

bool is_status(int s) noexcept {
  return s == 400 || s == 413 || s == 505 || s == 513;
}

// error_response's answer is exactly one message: a status line, CRLF line ends only, no NUL, and the empty
// line only at its end (anything we copied could otherwise smuggle a second message or header).
void check_answer(const std::string& answer) {
  if (answer.rfind("SIP/2.0 ", 0) != 0) broken("an error response starts with SIP/2.0");
  if (answer.size() < 4 || answer.compare(answer.size() - 4, 4, "\r\n\r\n") != 0)
    broken("it ends in CRLFCRLF");
  if (answer.find("\r\n\r\n") != answer.size() - 4) broken("it holds one empty line, at its end");
  for (std::size_t i = 0; i < answer.size(); ++i) {
    const char c = answer[i];
    if (c == '\0') broken("it holds no NUL");
    if (c == '\r' && (i + 1 == answer.size() || answer[i + 1] != '\n')) broken("it holds no lone CR");
    if (c == '\n' && (i == 0 || answer[i - 1] != '\r')) broken("it holds no lone LF");
  }
}

void check_accepted(const osip_message_t& m) {
  if (osip_list_size(&m.vias) < 1) broken("an accepted message has a Via");
  if (m.from == nullptr || m.to == nullptr) broken("an accepted message has From and To");
  if (m.call_id == nullptr || m.call_id->number == nullptr) broken("an accepted message has a Call-ID");
  if (m.cseq == nullptr || m.cseq->number == nullptr || m.cseq->method == nullptr) broken("it has a CSeq");
  if (m.sip_method == nullptr && (m.status_code < 100 || m.status_code > 699)) broken("a status is 100..699");
  if (const auto challenge = sip::read_challenge(&m)) {
    const auto value = sip::authorization_value(*challenge, {"user", "secret"}, "INVITE",
                                                "sip:bob@example.com", "0a4f113b", 1);
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      broken("an Authorization value holds no line break or NUL");
    }
  }
}

void parse_one(std::string_view bytes, sip::transport t, const sip::wire_limits& limits, bool exact_frame) {
  auto result = sip::parse_message(bytes, t, limits);
  if (const auto* m = std::get_if<sip::message_ptr>(&result)) {
    if (!*m) broken("an accepted message is not null");
    check_accepted(**m);
    return;
  }
  const auto& e = std::get<sip::wire_error>(result);
  if (!is_status(e.status)) broken("a wire_error is 400, 413, 505 or 513");
  if (e.reason.empty()) broken("a wire_error says why");
  // (Reasons may quote message bytes, so the mismatch is recognised by the reason's fixed start.)
  if (exact_frame && e.reason.rfind("Content-Length ", 0) == 0 && e.reason.size() > 15 &&
      e.reason[15] >= '0' && e.reason[15] <= '9' &&
      e.reason.find(" but the frame holds ") != std::string::npos) {
    broken("frame_stream's frame has exactly Content-Length body bytes");
  }
  if (const auto answer = sip::error_response(bytes, e, "fuzz1")) check_answer(*answer);
}

void exercise(std::string_view bytes, const sip::wire_limits& limits) {
  parse_one(bytes, sip::transport::udp, limits, false);
  parse_one(bytes, sip::transport::tcp, limits, false);

  // A connection's buffer: frame after frame, as many as it holds.
  auto rest = bytes;
  for (int frames = 0; frames < 64 && !rest.empty(); ++frames) {
    auto framed = sip::frame_stream(rest, limits);
    if (const auto* e = std::get_if<sip::wire_error>(&framed)) {
      if (!is_status(e->status)) broken("a framing error is 400, 413, 505 or 513");
      if (const auto answer = sip::error_response(rest, *e, "fuzz2")) check_answer(*answer);
      break;
    }
    const auto f = std::get<sip::stream_frame>(framed);
    if (f.skip > rest.size() || f.length > rest.size() - f.skip) broken("a frame lies inside the buffer");
    if (f.length == 0) break;  // incomplete: a connection would read more
    parse_one(rest.substr(f.skip, f.length), sip::transport::tcp, limits, true);
    rest.remove_prefix(f.skip + f.length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  sip::init_osip_once();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  exercise(bytes, sip::wire_limits{});
  sip::wire_limits small;
  small.max_message_bytes = 600;
  small.max_header_bytes = 400;
  small.max_headers = 8;
  small.max_body_bytes = 160;
  exercise(bytes, small);
  return 0;
}
