#pragma once
// The SIP wire layer: what stands between bytes from the network and oSIP. It frames TCP streams, bounds
// every message, runs oSIP's parser, then refuses what oSIP lets through but RFC 3261 does not (oSIP is a
// lenient parser: it reads a status code of 4294967301 as 5, takes SIP/7.0, a negative Content-Length, a
// missing Call-ID). It also answers a request it refused, from the raw bytes alone, since such a request may
// be beyond oSIP.
//
// Threading: pure functions. After init_osip_once() every function here may run on any thread at the same
// time; each call allocates (oSIP's message tree, a few small vectors) and never blocks.
//
// Statuses a wire_error carries (what a request gets; a refused response is dropped, nothing answers it):
//   400 any syntax or consistency fault (RFC 3261 §21.4.1), also when oSIP refuses the message;
//   413 a body over max_body_bytes (§21.4.11);
//   505 a SIP-Version other than 2.0 (§21.5.6);
//   513 a message, header section or header count over its limit (§21.5.7). Too many header lines is a
//       size limit of ours, not a syntax fault, so it is 513 like the other size limits, not 400.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <osipparser2/osip_parser.h>

namespace dialer::carriers::sip {

enum class transport : std::uint8_t { udp, tcp };

// ASCII case folding, as SIP compares tokens and header names (RFC 3261 §7.3.1).
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;
[[nodiscard]] std::string ascii_lower(std::string s);

// Bounds on what a peer may make us hold or parse. oSIP sets none (its 8000-byte constant only sizes its own
// writer's first buffer), so without these a peer chooses how much memory and parsing time one message costs.
// 65 535 is the largest UDP payload; a stream is held to the same so that UDP and TCP accept the same
// messages.
struct wire_limits {
  std::size_t max_message_bytes = 65'535;  // whole message
  std::size_t max_header_bytes = 16'384;   // start line + header section, the empty line included
  std::size_t max_headers = 100;           // header lines (after unfolding)
  std::size_t max_body_bytes = 32'768;
};

struct wire_error {
  int status = 400;  // what a request gets: 400, 413 (body too large), 505 (version), 513 (message too large)
  std::string reason;  // one sentence for logs; message bytes in it are made printable and short
};

// Runs oSIP's parser_init() once per process (std::call_once) and silences oSIP's trace: nothing reaches
// stdout or stderr; oSIP's warning and error lines are kept only while parse_message runs, on its own thread,
// to name oSIP's reason for a refusal. Replacing oSIP's trace function later (osip_trace_initialize_func)
// loses those reasons. parse_message calls it itself; call it before starting threads that use oSIP in other
// ways. oSIP's osip_init() runs parser_init() again on its first call, unguarded: create every osip_t before
// any thread parses.
void init_osip_once();

struct message_deleter {
  void operator()(osip_message_t* m) const noexcept;
};
using message_ptr = std::unique_ptr<osip_message_t, message_deleter>;

// TCP framing: skips leading CRLFs (RFC 5626 keep-alives; RFC 3261 §7.5) and finds the first whole message: a
// header section ending in CRLFCRLF, then exactly Content-Length body bytes (Content-Length or its compact
// form `l` is required on a stream, §18.3: missing -> wire_error). length == 0 means "not complete yet, read
// more" (skip may still be > 0: drop those bytes). The frame is buffered[skip, skip + length). Bounds are
// enforced while incomplete too: a header section reaching max_header_bytes without CRLFCRLF, or max_headers
// lines, is an error, not "incomplete". Only framing is checked here; parse_message judges the frame's
// syntax, so a malformed message that frames cleanly is answered with 400 and the connection carries on. An
// error here means the stream cannot be resynchronised: answer it (error_response) and close the connection.
struct stream_frame {
  std::size_t skip = 0;
  std::size_t length = 0;
};
[[nodiscard]] std::variant<stream_frame, wire_error> frame_stream(std::string_view buffered,
                                                                  const wire_limits& limits = {});

// The whole receive pipeline for one message (a UDP datagram, or one frame from frame_stream): raw checks,
// oSIP's parse, then the checks oSIP does not make. Returns the parsed message or why it was refused. Takes
// any bytes (NULs included) and reads none outside `bytes`.
//
// Raw checks, before oSIP (oSIP reads the header section as a C string and trusts it):
//   - the size limits above; no NUL, bare CR or bare LF in the header section, which ends at the first
//     CRLFCRLF;
//   - the start line: `METHOD SP Request-URI SP SIP/2.0` (METHOD a token, single SPs, a URI with a scheme
//     and no space, quote or angle bracket) or `SIP/2.0 SP 3DIGIT SP Reason-Phrase` with a status of
//     100..699 read from the text; another SIP-Version is 505;
//   - every header line is `token *WSP ":" value`; From, To, Call-ID, CSeq, Content-Length, Content-Type and
//     Max-Forwards appear at most once (compact forms counted);
//   - Content-Length: a decimal number; on UDP a body shorter than it is refused and a longer one cut to it
//     (§18.3), without it the body is the rest of the datagram; on TCP it is required and the frame's body
//     must equal it;
//   - Max-Forwards 0..255 (§20.22); a Date in GMT (§20.17; RFC 4475 §3.1.2.12); From, To and Contact put a
//     URI holding `?` in angle brackets (§20, RFC 4475 §3.1.2.13);
//   - a multipart body part holds "Content-Type" at most once (oSIP 5.3 leaks the first of two).
// oSIP's parse: refused -> 400 with oSIP's own first warning or error line as the reason.
// Checks after oSIP: a top Via with a branch, From, To, Call-ID, CSeq (number < 2^31, §8.1.1.5; a request's
// CSeq method equal to its method, §8.1.1.5); no headers (`?`) in a request's Request-URI (§19.1.1).
// Max-Forwards is not required (a proxy adds it, §16.6).
//
// RFC 4475 verdicts that differ from the RFC's (tests/unit/sip_wire_test.cpp lists all fifty):
//   - intmeth (§3.1.1.2, valid) is refused: its To display name holds a NUL as a quoted-pair, and oSIP
//     stops at the NUL (it reads headers as C strings), so we refuse a NUL in the header section first;
//   - novelsc (§3.3.3, valid) is refused by oSIP, whose URI parser does not take the scheme `soap.beep`;
//   - longreq (§3.1.1.7, valid) and inv2543 (§3.4.1, RFC 2543 compatibility) are refused: their top Via has
//     no branch. RFC 3261 §8.1.1.7 requires one, and transactions are matched by it (§17.2.3); we keep no
//     RFC 2543 compatibility (longreq's top 33 Vias come from RFC 2543 hops).
[[nodiscard]] std::variant<message_ptr, wire_error> parse_message(std::string_view bytes, transport t,
                                                                  const wire_limits& limits = {});

// A text response to a request that failed parse_message, built from the raw bytes only (no oSIP): the
// status line with the error's status and its standard reason phrase, every Via line copied in order, From,
// To (adding ";tag=<to_tag>" when it has no tag and to_tag is a token; RFC 3261 §8.2.6.2), Call-ID, CSeq,
// `Content-Length: 0`. Header names are written in their long form; a folded value is unfolded. nullopt when
// nothing can be answered and the message is dropped: the bytes are not a request (a response, or garbage),
// the request is an ACK (never answered, §17.2.1), a Via, Call-ID or CSeq line is missing, or a value to copy
// holds a control character (a response must not carry what could split it). Compact header forms (v, f, t,
// i) are recognised. Reads only the header section, and at most the default wire_limits' max_header_bytes
// and max_headers of it.
[[nodiscard]] std::optional<std::string> error_response(std::string_view raw_request, const wire_error& error,
                                                        std::string_view to_tag);

// The standard reason phrase of a status code (RFC 3261 §21 and later registrations), "Unknown" when unnamed.
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

}  // namespace dialer::carriers::sip
