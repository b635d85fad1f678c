#include "adapters/carriers/sip/sip_wire.hpp"

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <vector>

namespace dialer::carriers::sip {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kEndOfHead = "\r\n\r\n";
constexpr std::uint64_t kCseqLimit = 1ull << 31;  // RFC 3261 §8.1.1.5: "MUST be less than 2**31"
constexpr std::size_t kSnippet = 40;              // message bytes quoted in a reason, at most

// ---- characters and small text helpers --------------------------------------------------------------------

// RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
bool is_token_char(unsigned char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '-':
    case '.':
    case '!':
    case '%':
    case '*':
    case '_':
    case '+':
    case '`':
    case '\'':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) noexcept {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return is_token_char(static_cast<unsigned char>(c)); });
}

bool is_wsp(char c) noexcept {
  return c == ' ' || c == '\t';
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ctl(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Trims SP, HT and the CR LF of a fold: what RFC 3261's LWS allows around a value.
std::string_view trim(std::string_view s) noexcept {
  const auto is_lws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_lws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_lws(s.back())) s.remove_suffix(1);
  return s;
}

// A value with its folds undone (CRLF removed; the SP or HT after it stays, and LWS is one SP anyway),
// trimmed.
std::string unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;
      continue;
    }
    out.push_back(value[i]);
  }
  return std::string(trim(out));
}

// Message bytes as they may appear in a log line: printable ASCII only, and short.
std::string printable(std::string_view s, std::size_t max = kSnippet) {
  std::string out;
  const auto n = std::min(s.size(), max);
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (s.size() > max) out += "...";
  return out;
}

// 1*DIGIT that fits in 64 bits; nullopt for anything else (a sign, a space, no digit, too many digits).
std::optional<std::uint64_t> decimal(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::size_t leading_line_breaks(std::string_view s) noexcept {
  std::size_t n = 0;
  while (n < s.size() && (s[n] == '\r' || s[n] == '\n')) ++n;
  return n;
}

wire_error fail(int status, std::string reason) {
  return wire_error{status, std::move(reason)};
}

std::string bytes_text(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

// ---- the header section -----------------------------------------------------------------------------------

// One logical header line (folds included): `line` runs from the name to the end of the value, without the
// final CRLF; `colon` is the position of the first ':' in it, npos when there is none.
struct field {
  std::string_view line;
  std::size_t colon = std::string_view::npos;

  [[nodiscard]] std::string_view name() const noexcept {
    return colon == std::string_view::npos ? std::string_view{} : trim(line.substr(0, colon));
  }
  [[nodiscard]] std::string_view raw_value() const noexcept {
    return colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
  }
};

struct head_view {
  std::string_view start_line;
  std::vector<field> fields;
  bool fold_before_first_field = false;  // a line starting with SP/HT right after the start line
  bool truncated = false;                // more than max_fields logical lines: the rest was not split
};

// Splits CRLF-terminated lines (stopping at an empty line or at the end) into the start line and logical
// header lines, a line that starts with SP or HT continuing the one before (RFC 3261 §7.3.1). Reads only
// `head`.
head_view split_head(std::string_view head, std::size_t max_fields) {
  head_view v;
  std::size_t at = 0;
  bool first = true;
  while (at < head.size()) {
    const auto eol = head.find(kCrlf, at);
    if (eol == std::string_view::npos || eol == at) break;  // no more whole lines, or the empty line
    const auto line = head.substr(at, eol - at);
    if (first) {
      v.start_line = line;
      first = false;
    } else if (is_wsp(line.front())) {
      if (v.fields.empty()) {
        v.fold_before_first_field = true;
      } else {
        // The views are contiguous: the field now runs to the end of this continuation line.
        auto& f = v.fields.back();
        f.line = std::string_view(f.line.data(),
                                  static_cast<std::size_t>(line.data() + line.size() - f.line.data()));
      }
    } else {
      if (v.fields.size() == max_fields) {
        v.truncated = true;
        break;
      }
      v.fields.push_back(field{line, line.find(':')});
    }
    at = eol + kCrlf.size();
  }
  return v;
}

// Logical lines begun so far in `text` (a header section still arriving): each CRLF not followed by SP or HT
// ends one. The start line counts.
std::size_t logical_lines(std::string_view text) noexcept {
  std::size_t n = 0;
  for (auto at = text.find(kCrlf); at != std::string_view::npos; at = text.find(kCrlf, at + 2)) {
    if (at + 2 < text.size() && is_wsp(text[at + 2])) continue;
    ++n;
  }
  return n;
}

// The headers this layer looks at, compact forms folded in (RFC 3261 §7.3.3).
enum class known : std::uint8_t {
  other,
  via,
  from,
  to,
  call_id,
  cseq,
  content_length,
  content_type,
  max_forwards,
  contact,
  date
};

known kind_of(std::string_view name) noexcept {
  if (name.size() == 1) {
    switch (lower(name.front())) {
      case 'v':
        return known::via;
      case 'f':
        return known::from;
      case 't':
        return known::to;
      case 'i':
        return known::call_id;
      case 'l':
        return known::content_length;
      case 'c':
        return known::content_type;
      case 'm':
        return known::contact;
      default:
        return known::other;
    }
  }
  if (iequals(name, "Via")) return known::via;
  if (iequals(name, "From")) return known::from;
  if (iequals(name, "To")) return known::to;
  if (iequals(name, "Call-ID")) return known::call_id;
  if (iequals(name, "CSeq")) return known::cseq;
  if (iequals(name, "Content-Length")) return known::content_length;
  if (iequals(name, "Content-Type")) return known::content_type;
  if (iequals(name, "Max-Forwards")) return known::max_forwards;
  if (iequals(name, "Contact")) return known::contact;
  if (iequals(name, "Date")) return known::date;
  return known::other;
}

const char* name_of(known k) noexcept {
  switch (k) {
    case known::via:
      return "Via";
    case known::from:
      return "From";
    case known::to:
      return "To";
    case known::call_id:
      return "Call-ID";
    case known::cseq:
      return "CSeq";
    case known::content_length:
      return "Content-Length";
    case known::content_type:
      return "Content-Type";
    case known::max_forwards:
      return "Max-Forwards";
    case known::contact:
      return "Contact";
    case known::date:
      return "Date";
    case known::other:
      break;
  }
  return "?";
}

// The Content-Length of a header section: nullopt when absent; a wire_error when repeated or not a decimal
// number.
std::variant<std::optional<std::uint64_t>, wire_error> content_length_of(const head_view& v) {
  std::optional<std::uint64_t> length;
  std::size_t seen = 0;
  for (const auto& f : v.fields) {
    if (kind_of(f.name()) != known::content_length) continue;
    if (++seen > 1) return fail(400, "more than one Content-Length header, so the body's length is unknown");
    const auto text = unfold(f.raw_value());
    length = decimal(text);
    if (!length) {
      return fail(400,
                  "Content-Length '" + printable(text) + "' is not a non-negative decimal number that fits");
    }
  }
  return length;
}

// ---- the raw checks ---------------------------------------------------------------------------------------

// oSIP reads the header section as a C string and splits it at CR or LF alone: a NUL or a stray CR or LF
// would make it see other lines than these checks saw.
std::optional<wire_error> check_head_bytes(std::string_view head) {
  const auto body_of_head =
      head.substr(0, head.size() - kEndOfHead.size() + kCrlf.size());  // keeps the last CRLF
  for (std::size_t i = 0; i < body_of_head.size(); ++i) {
    const char c = body_of_head[i];
    if (c == '\0') {
      return fail(400, "a NUL byte in the header section at offset " + std::to_string(i) +
                           " (oSIP reads the header section as a C string)");
    }
    if (c == '\r') {
      if (i + 1 < body_of_head.size() && body_of_head[i + 1] == '\n') {
        ++i;
        continue;
      }
      return fail(400, "a CR without LF in the header section at offset " + std::to_string(i));
    }
    if (c == '\n') return fail(400, "an LF without CR in the header section at offset " + std::to_string(i));
  }
  return std::nullopt;
}

// SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, "SIP" case-insensitive (RFC 3261 §7.1).
bool is_sip_version(std::string_view s) noexcept {
  if (!istarts_with(s, "SIP/")) return false;
  s.remove_prefix(4);
  const auto dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == s.size()) return false;
  const auto digits = [](std::string_view d) { return std::all_of(d.begin(), d.end(), is_digit); };
  return digits(s.substr(0, dot)) && digits(s.substr(dot + 1));
}

bool is_sip_2_0(std::string_view s) noexcept {
  return iequals(s, "SIP/2.0");
}

// A Request-URI as the request line can carry it: scheme ":" then visible ASCII without the characters that
// mark a name-addr or a quoted string (RFC 3261 §7.1, §25.1: absoluteURI / SIP-URI / SIPS-URI).
bool is_request_uri(std::string_view s) noexcept {
  const auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size() || !is_alpha(s.front()))
    return false;
  for (char c : s.substr(0, colon)) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '<' && c != '>' && c != '"';
  });
}

struct start_line {
  bool response = false;
  std::string_view method;  // requests only
};

std::variant<start_line, wire_error> check_start_line(std::string_view line) {
  start_line s;
  if (istarts_with(line, "SIP/")) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2). oSIP reads the code with
    // sscanf("%d"), so a code of 4294967301 wraps to 5; and it looks for the SP before the reason across line
    // ends.
    s.response = true;
    const auto sp = line.find(' ');
    const auto version = line.substr(0, sp);
    if (sp == std::string_view::npos || !is_sip_version(version)) {
      return fail(400, "the status line does not start with a SIP-Version and SP");
    }
    if (!is_sip_2_0(version)) return fail(505, "SIP version '" + printable(version) + "' is not supported");
    const auto rest = line.substr(sp + 1);
    if (rest.size() < 4 || !is_digit(rest[0]) || !is_digit(rest[1]) || !is_digit(rest[2]) || rest[3] != ' ') {
      return fail(400,
                  "the status line's code is not three digits followed by SP: '" + printable(line) + "'");
    }
    if (rest[0] < '1' || rest[0] > '6') {
      return fail(400, "status code " + std::string(rest.substr(0, 3)) + " is outside 100..699");
    }
    const auto reason = rest.substr(4);
    if (std::any_of(reason.begin(), reason.end(), [](char c) { return is_ctl(c) && c != '\t'; })) {
      return fail(400, "the reason phrase holds a control character");
    }
    return s;
  }
  // Request-Line = Method SP Request-URI SP SIP-Version (§7.1): exactly two single SPs.
  if (line.empty() || is_wsp(line.front())) return fail(400, "the request line starts with whitespace");
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return fail(400,
                "the request line is not Method SP Request-URI SP SIP-Version: '" + printable(line) + "'");
  }
  if (sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "the request line's elements are not separated by exactly one SP each");
  }
  s.method = line.substr(0, sp1);
  const auto uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  if (!is_token(s.method)) return fail(400, "the method '" + printable(s.method) + "' is not a token");
  if (!is_request_uri(uri)) return fail(400, "the Request-URI '" + printable(uri) + "' is not a bare URI");
  if (!is_sip_version(version))
    return fail(400, "the request line ends in '" + printable(version) + "', not a SIP-Version");
  if (!is_sip_2_0(version)) return fail(505, "SIP version '" + printable(version) + "' is not supported");
  return s;
}

// RFC 3261 §20: a URI holding a comma, question mark or semicolon must be in angle brackets; a `?` in the
// addr-spec form can only be URI headers that the header field cannot carry there (RFC 4475 §3.1.2.13). Walks
// the comma-separated values outside quoted strings and angle brackets.
bool has_bare_uri_with_headers(std::string_view value) noexcept {
  bool quoted = false, in_angle = false, angle = false, question = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
      continue;
    }
    if (in_angle) {
      if (c == '>') in_angle = false;
      continue;
    }
    switch (c) {
      case '"':
        quoted = true;
        break;
      case '<':
        in_angle = angle = true;
        break;
      case '?':
        question = true;
        break;
      case ',':
        if (question && !angle) return true;
        question = angle = false;
        break;
      default:
        break;
    }
  }
  return question && !angle;
}

std::optional<wire_error> check_fields(const head_view& v) {
  if (v.fold_before_first_field) return fail(400, "a folded line comes before the first header");
  std::array<std::size_t, 11> count{};
  for (std::size_t i = 0; i < v.fields.size(); ++i) {
    const auto& f = v.fields[i];
    // field-name *WSP ":" (RFC 3261 §7.3.1, HCOLON): the name is a token, only SP or HT between it and the
    // colon.
    if (f.colon == std::string_view::npos) {
      return fail(400, "header line " + std::to_string(i + 1) + " has no colon: '" + printable(f.line) + "'");
    }
    const auto before_colon = f.line.substr(0, f.colon);
    const auto name_end = std::min(before_colon.find(' '), before_colon.find('\t'));
    const auto name = before_colon.substr(0, name_end);
    if (!is_token(name) || (name_end != std::string_view::npos &&
                            !std::all_of(before_colon.begin() + static_cast<std::ptrdiff_t>(name_end),
                                         before_colon.end(), is_wsp))) {
      return fail(400, "header line " + std::to_string(i + 1) +
                           " does not start with a token name and a colon: '" + printable(f.line) + "'");
    }
    const auto k = kind_of(name);
    ++count[static_cast<std::size_t>(k)];
    switch (k) {
      case known::from:
      case known::to:
      case known::call_id:
      case known::cseq:
      case known::content_length:
      case known::content_type:
      case known::max_forwards:
        // Single-valued header fields (RFC 3261 §7.3.1, RFC 4475 §3.3.8, §3.3.9).
        if (count[static_cast<std::size_t>(k)] > 1) {
          return fail(400, std::string("more than one ") + name_of(k) + " header");
        }
        break;
      default:
        break;
    }
    if (k == known::max_forwards) {
      const auto text = unfold(f.raw_value());
      const auto hops = decimal(text);
      if (!hops || *hops > 255)
        return fail(400, "Max-Forwards '" + printable(text) + "' is not a number in 0..255");
    } else if (k == known::date) {
      // rfc1123-date ends in "GMT" (RFC 3261 §20.17); RFC 4475 §3.1.2.12 allows refusing any other zone.
      const auto text = unfold(f.raw_value());
      if (text.size() < 4 || std::string_view(text).substr(text.size() - 4) != " GMT") {
        return fail(400, "the Date header is not in GMT");
      }
    }
    if ((k == known::from || k == known::to || k == known::contact) &&
        has_bare_uri_with_headers(unfold(f.raw_value()))) {
      return fail(400, std::string("a ") + name_of(k) + " URI with headers ('?') is not in angle brackets");
    }
  }
  return std::nullopt;
}

// ---- oSIP -------------------------------------------------------------------------------------------------

// oSIP explains a refusal only in its trace. While parse_message runs oSIP on this thread, the trace's first
// warning- or error-level line is kept here (the parser's three warnings all come with a refusal, and the
// first line is the most precise: "Could not set header: to: ..." before "End of header Not found"); at any
// other time, and on other threads, oSIP's trace goes nowhere.
thread_local std::string* osip_error_line = nullptr;

void on_osip_trace(const char* /*file*/, int /*line*/, osip_trace_level_t level, const char* format,
                   va_list args) {
  std::string* sink = osip_error_line;
  if (sink == nullptr || (level != OSIP_ERROR && level != OSIP_WARNING) || !sink->empty() ||
      format == nullptr)
    return;
  std::array<char, 160> text{};
  const int n = std::vsnprintf(text.data(), text.size(), format, args);
  if (n <= 0) return;
  *sink = printable(trim(std::string_view(
                        text.data(), std::min<std::size_t>(static_cast<std::size_t>(n), text.size() - 1))),
                    120);
}

class osip_error_capture {
 public:
  explicit osip_error_capture(std::string& sink) noexcept { osip_error_line = &sink; }
  ~osip_error_capture() { osip_error_line = nullptr; }
  osip_error_capture(const osip_error_capture&) = delete;
  osip_error_capture& operator=(const osip_error_capture&) = delete;
};

bool has_branch(const osip_via_t* via) noexcept {
  if (via == nullptr) return false;
  for (int i = 0; i < osip_list_size(&via->via_params); ++i) {
    const auto* p = static_cast<const osip_generic_param_t*>(osip_list_get(&via->via_params, i));
    if (p != nullptr && p->gname != nullptr && iequals(p->gname, "branch")) {
      return p->gvalue != nullptr && p->gvalue[0] != '\0';
    }
  }
  return false;
}

std::optional<wire_error> check_parsed(const osip_message_t& m, const start_line& s) {
  if (osip_list_size(&m.vias) < 1) return fail(400, "no Via header");
  if (!has_branch(static_cast<const osip_via_t*>(osip_list_get(&m.vias, 0)))) {
    return fail(400, "the top Via has no branch (RFC 2543 style requests are not supported)");
  }
  if (m.from == nullptr) return fail(400, "no From header");
  if (m.to == nullptr) return fail(400, "no To header");
  if (m.call_id == nullptr || m.call_id->number == nullptr || m.call_id->number[0] == '\0') {
    return fail(400, "no Call-ID header");
  }
  if (m.cseq == nullptr || m.cseq->number == nullptr || m.cseq->method == nullptr)
    return fail(400, "no CSeq header");
  const auto number = decimal(m.cseq->number);
  if (!number || *number >= kCseqLimit) {
    return fail(400, "CSeq number '" + printable(m.cseq->number) + "' is not a decimal number below 2^31");
  }
  if (!s.response) {
    if (m.sip_method == nullptr || s.method != m.sip_method)
      return fail(400, "oSIP read another method than the request line's");
    if (s.method != std::string_view(m.cseq->method)) {
      return fail(400, "CSeq method '" + printable(m.cseq->method) + "' differs from the request method '" +
                           printable(s.method) + "'");
    }
    if (m.req_uri != nullptr && osip_list_size(&m.req_uri->url_headers) > 0) {
      return fail(400, "the Request-URI carries headers ('?'), which RFC 3261 §19.1.1 forbids there");
    }
  } else if (m.status_code < 100 || m.status_code > 699) {
    return fail(400, "oSIP read another status code than the status line's");
  }
  return std::nullopt;
}

// oSIP 5.3 leaks the first Content-Type of a multipart body part that has two (osip_body_set_contenttype
// replaces it without freeing it): any peer could drain our memory with such messages. So the parts are found
// as oSIP finds them (the boundary read by oSIP's own Content-Type parser from the value oSIP would give it;
// a part runs from one "\n--boundary" to the next), and a part in which "Content-Type" occurs twice is
// refused. Counting anywhere in the part, not only in its header lines, refuses a few harmless bodies (a part
// whose content quotes a Content-Type, such as message/sipfrag) but cannot miss what oSIP would read as a
// header, however it splits the lines.
std::optional<wire_error> check_multipart(std::string_view text, std::size_t empty_line, const head_view& v) {
  const field* type_field = nullptr;
  for (const auto& f : v.fields) {
    if (kind_of(f.name()) == known::content_type) type_field = &f;
  }
  if (type_field == nullptr) return std::nullopt;
  // The value as oSIP parses it: each fold's CRLF and the SP/HT after it turned into spaces
  // (osip_util_replace_all_lws), then trimmed (osip_clrncpy). The header section holds no other CR or LF.
  const auto raw_value = type_field->raw_value();
  std::string value;
  value.reserve(raw_value.size());
  for (std::size_t i = 0; i < raw_value.size(); ++i) {
    if (raw_value[i] == '\r' && i + 1 < raw_value.size() && raw_value[i + 1] == '\n') {
      value += "  ";
      for (i += 2; i < raw_value.size() && is_wsp(raw_value[i]); ++i) value += ' ';
      --i;
      continue;
    }
    value += raw_value[i];
  }
  const auto trimmed = std::string(trim(value));
  if (trimmed.empty()) return std::nullopt;

  osip_content_type_t* raw = nullptr;
  if (osip_content_type_init(&raw) != OSIP_SUCCESS || raw == nullptr)
    return fail(400, "oSIP could not allocate");
  const std::unique_ptr<osip_content_type_t, void (*)(osip_content_type_t*)> type(raw,
                                                                                  &osip_content_type_free);
  if (osip_content_type_parse(type.get(), trimmed.c_str()) != OSIP_SUCCESS)
    return std::nullopt;  // oSIP refuses it
  if (type->type == nullptr || type->subtype == nullptr || !iequals(type->type, "multipart"))
    return std::nullopt;
  const char* boundary_value = nullptr;
  for (int i = 0; i < osip_list_size(&type->gen_params); ++i) {
    const auto* p = static_cast<const osip_generic_param_t*>(osip_list_get(&type->gen_params, i));
    if (p != nullptr && p->gname != nullptr && iequals(p->gname, "boundary")) {
      boundary_value = p->gvalue;
      break;
    }
  }
  if (boundary_value == nullptr) return std::nullopt;  // oSIP refuses a multipart body without a boundary
  std::string_view boundary(boundary_value);
  if (!boundary.empty() && boundary.front() == '"' && boundary.back() == '"') {
    boundary = boundary.size() >= 2 ? boundary.substr(1, boundary.size() - 2) : std::string_view{};
  }
  const std::string separator = "\n--" + std::string(boundary);

  const auto area = text.substr(empty_line);
  constexpr std::string_view kContentType = "content-type";
  auto at = area.find(separator);
  while (at != std::string_view::npos) {
    const auto next = area.find(separator, at + separator.size());
    const auto part = area.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at);
    int seen = 0;
    for (std::size_t i = 0; i + kContentType.size() <= part.size(); ++i) {
      if (iequals(part.substr(i, kContentType.size()), kContentType) && ++seen > 1) {
        return fail(400, "a multipart body part holds Content-Type twice (oSIP would leak the first)");
      }
    }
    at = next;
  }
  return std::nullopt;
}

// ---- error_response ---------------------------------------------------------------------------------------

// Whether a To value already has a tag parameter: the parameters follow the '>' of a name-addr, or the first
// ';' of an addr-spec (whose ';' parameters are header parameters, RFC 3261 §20.10).
bool has_tag(std::string_view value) noexcept {
  std::size_t params = std::string_view::npos;
  bool quoted = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      const auto gt = value.find('>', i);
      if (gt == std::string_view::npos) return false;
      params = gt + 1;
      break;
    } else if (c == ';') {
      params = i;
      break;
    }
  }
  if (params == std::string_view::npos) return false;
  auto rest = value.substr(params);
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    const auto param = rest.substr(0, semi);
    if (iequals(trim(param.substr(0, param.find('='))), "tag")) return true;
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  return false;
}

// A value fit to copy into our response: no control character but HT once unfolded.
std::optional<std::string> copyable(std::string_view raw_value) {
  auto text = unfold(raw_value);
  if (std::any_of(text.begin(), text.end(), [](char c) { return is_ctl(c) && c != '\t'; }))
    return std::nullopt;
  return text;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string ascii_lower(std::string s) {
  for (char& c : s) c = lower(c);
  return s;
}

// ---- public -----------------------------------------------------------------------------------------------

void init_osip_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    parser_init();
    // A trace function keeps oSIP off stdout/stderr (without one, its first trace opens stdout at WARNING
    // level). Only the warning and error levels stay on, for parse_message's reasons (on_osip_trace): a
    // disabled level costs nothing, an enabled one a clock read and a localtime_r per line, which oSIP does
    // before calling us.
    osip_trace_initialize_func(END_TRACE_LEVEL, &on_osip_trace);
    for (int level = TRACE_LEVEL0; level < END_TRACE_LEVEL; ++level) {
      if (level != OSIP_ERROR && level != OSIP_WARNING)
        osip_trace_disable_level(static_cast<osip_trace_level_t>(level));
    }
  });
}

void message_deleter::operator()(osip_message_t* m) const noexcept {
  if (m != nullptr) osip_message_free(m);
}

std::variant<stream_frame, wire_error> frame_stream(std::string_view buffered, const wire_limits& limits) {
  stream_frame frame;
  frame.skip = leading_line_breaks(buffered);
  const auto rest = buffered.substr(frame.skip);
  if (rest.empty()) return frame;
  const auto window = rest.substr(0, std::min(rest.size(), limits.max_header_bytes));
  const auto end = window.find(kEndOfHead);
  if (end == std::string_view::npos) {
    if (rest.size() >= limits.max_header_bytes) {
      return fail(
          513, "no empty line within the header section's limit of " + bytes_text(limits.max_header_bytes));
    }
    if (const auto lines = logical_lines(window); lines > limits.max_headers + 1) {
      return fail(513, "more than " + std::to_string(limits.max_headers) + " header lines");
    }
    return frame;
  }
  const auto head = rest.substr(0, end + kEndOfHead.size());
  const auto view = split_head(head, limits.max_headers);
  if (view.truncated) return fail(513, "more than " + std::to_string(limits.max_headers) + " header lines");
  auto length = content_length_of(view);
  if (auto* e = std::get_if<wire_error>(&length)) return std::move(*e);
  const auto body = std::get<std::optional<std::uint64_t>>(length);
  if (!body) return fail(400, "no Content-Length header, which a stream transport requires (RFC 3261 §18.3)");
  if (*body > limits.max_body_bytes) {
    return fail(413, "Content-Length " + std::to_string(*body) + " exceeds the body limit of " +
                         bytes_text(limits.max_body_bytes));
  }
  const auto total = head.size() + static_cast<std::size_t>(*body);
  if (total > limits.max_message_bytes) {
    return fail(513, "a message of " + bytes_text(total) + " exceeds the limit of " +
                         bytes_text(limits.max_message_bytes));
  }
  if (rest.size() >= total) frame.length = total;
  return frame;
}

std::variant<message_ptr, wire_error> parse_message(std::string_view bytes, transport t,
                                                    const wire_limits& limits) {
  init_osip_once();
  if (bytes.size() > limits.max_message_bytes) {
    return fail(513, "a message of " + bytes_text(bytes.size()) + " exceeds the limit of " +
                         bytes_text(limits.max_message_bytes));
  }
  const auto rest = bytes.substr(leading_line_breaks(bytes));
  if (rest.empty()) return fail(400, "the message is empty (line breaks only)");

  // The header section: up to the first CRLFCRLF, which must come within max_header_bytes.
  const auto window = rest.substr(0, std::min(rest.size(), limits.max_header_bytes));
  const auto end = window.find(kEndOfHead);
  if (end == std::string_view::npos) {
    if (rest.size() >= limits.max_header_bytes) {
      return fail(
          513, "no empty line within the header section's limit of " + bytes_text(limits.max_header_bytes));
    }
    return fail(400, "no empty line (CRLFCRLF) ends the header section");
  }
  const auto head = rest.substr(0, end + kEndOfHead.size());
  if (auto e = check_head_bytes(head)) return std::move(*e);
  const auto view = split_head(head, limits.max_headers);
  if (view.truncated) return fail(513, "more than " + std::to_string(limits.max_headers) + " header lines");
  auto start = check_start_line(view.start_line);
  if (auto* e = std::get_if<wire_error>(&start)) return std::move(*e);
  const auto line = std::get<start_line>(start);
  if (auto e = check_fields(view)) return std::move(*e);

  // The body (RFC 3261 §18.3): Content-Length frames it; on a datagram, without it, the body is the rest.
  auto length = content_length_of(view);
  if (auto* e = std::get_if<wire_error>(&length)) return std::move(*e);
  const auto declared = std::get<std::optional<std::uint64_t>>(length);
  auto body = rest.substr(head.size());
  if (t == transport::tcp) {
    if (!declared)
      return fail(400, "no Content-Length header, which a stream transport requires (RFC 3261 §18.3)");
    if (body.size() != *declared) {
      return fail(400, "Content-Length " + std::to_string(*declared) + " but the frame holds " +
                           bytes_text(body.size()) + " of body");
    }
  } else if (declared) {
    if (body.size() < *declared) {
      return fail(400, "Content-Length " + std::to_string(*declared) + " but the datagram holds " +
                           bytes_text(body.size()) + " of body");
    }
    body = body.substr(0, static_cast<std::size_t>(*declared));  // what follows is not part of it (§18.3)
  }
  if (body.size() > limits.max_body_bytes) {
    return fail(413, "a body of " + bytes_text(body.size()) + " exceeds the limit of " +
                         bytes_text(limits.max_body_bytes));
  }

  const auto text = rest.substr(0, head.size() + body.size());
  if (!body.empty()) {
    if (auto e = check_multipart(text, head.size() - kCrlf.size(), view)) return std::move(*e);
  }
  osip_message_t* raw = nullptr;
  if (osip_message_init(&raw) != OSIP_SUCCESS || raw == nullptr)
    return fail(400, "oSIP could not allocate a message");
  message_ptr message(raw);
  std::string osip_reason;
  int rc = 0;
  {
    osip_error_capture capture(osip_reason);
    rc = osip_message_parse(message.get(), text.data(), text.size());
  }
  if (rc != OSIP_SUCCESS) {
    if (osip_reason.empty())
      osip_reason = osip_strerror(rc) != nullptr ? osip_strerror(rc) : "no reason given";
    return fail(400, "oSIP refused the message: " + osip_reason + " (" + std::to_string(rc) + ")");
  }
  if (auto e = check_parsed(*message, line)) return std::move(*e);
  return message;
}

std::optional<std::string> error_response(std::string_view raw_request, const wire_error& error,
                                          std::string_view to_tag) {
  const wire_limits bounds{};
  auto rest = raw_request.substr(leading_line_breaks(raw_request));
  rest = rest.substr(0, std::min(rest.size(), bounds.max_header_bytes));
  // Whole lines only: up to the empty line, else up to the last CRLF inside the bound.
  const auto end = rest.find(kEndOfHead);
  const auto last = end != std::string_view::npos ? end : rest.rfind(kCrlf);
  if (last == std::string_view::npos) return std::nullopt;
  const auto view = split_head(rest.substr(0, last + kCrlf.size()), bounds.max_headers);

  // A request line, however broken its URI or version: a token, SP, and "SIP/" somewhere after it.
  const auto& line = view.start_line;
  if (istarts_with(line, "SIP/")) return std::nullopt;  // a response: never answered
  const auto sp = line.find(' ');
  if (sp == std::string_view::npos || !is_token(line.substr(0, sp))) return std::nullopt;
  const auto after = line.substr(sp + 1);
  bool sip = false;
  for (std::size_t i = 0; !sip && i + 4 <= after.size(); ++i) sip = istarts_with(after.substr(i), "SIP/");
  if (!sip || line.substr(0, sp) == "ACK") return std::nullopt;

  std::vector<std::string> vias;
  std::optional<std::string> from, to, call_id, cseq;
  for (const auto& f : view.fields) {
    const auto k = kind_of(f.name());
    std::optional<std::string>* single = nullptr;
    switch (k) {
      case known::via: {
        auto value = copyable(f.raw_value());
        if (!value) return std::nullopt;
        if (!value->empty()) vias.push_back(std::move(*value));
        continue;
      }
      case known::from:
        single = &from;
        break;
      case known::to:
        single = &to;
        break;
      case known::call_id:
        single = &call_id;
        break;
      case known::cseq:
        single = &cseq;
        break;
      default:
        continue;
    }
    if (single->has_value()) continue;  // the first one counts
    auto value = copyable(f.raw_value());
    if (!value) return std::nullopt;
    *single = std::move(*value);
  }
  if (vias.empty() || !call_id || call_id->empty() || !cseq || cseq->empty()) return std::nullopt;

  const int status = error.status >= 400 && error.status <= 699 ? error.status : 400;
  std::string out;
  out.reserve(256);
  out += "SIP/2.0 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += kCrlf;
  for (const auto& via : vias) out.append("Via: ").append(via).append(kCrlf);
  if (from && !from->empty()) out.append("From: ").append(*from).append(kCrlf);
  if (to && !to->empty()) {
    out.append("To: ").append(*to);
    if (!has_tag(*to) && is_token(to_tag)) out.append(";tag=").append(to_tag);
    out += kCrlf;
  }
  out.append("Call-ID: ").append(*call_id).append(kCrlf);
  out.append("CSeq: ").append(*cseq).append(kCrlf);
  out.append("Content-Length: 0").append(kCrlf).append(kCrlf);
  return out;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Trying";
    case 180:
      return "Ringing";
    case 181:
      return "Call Is Being Forwarded";
    case 182:
      return "Queued";
    case 183:
      return "Session Progress";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Moved Temporarily";
    case 305:
      return "Use Proxy";
    case 380:
      return "Alternative Service";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 413:
      return "Request Entity Too Large";
    case 414:
      return "Request-URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Unsupported URI Scheme";
    case 420:
      return "Bad Extension";
    case 421:
      return "Extension Required";
    case 423:
      return "Interval Too Brief";
    case 480:
      return "Temporarily Unavailable";
    case 481:
      return "Call/Transaction Does Not Exist";
    case 482:
      return "Loop Detected";
    case 483:
      return "Too Many Hops";
    case 484:
      return "Address Incomplete";
    case 485:
      return "Ambiguous";
    case 486:
      return "Busy Here";
    case 487:
      return "Request Terminated";
    case 488:
      return "Not Acceptable Here";
    case 491:
      return "Request Pending";
    case 493:
      return "Undecipherable";
    case 500:
      return "Server Internal Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Server Time-out";
    case 505:
      return "Version Not Supported";
    case 513:
      return "Message Too Large";
    case 600:
      return "Busy Everywhere";
    case 603:
      return "Decline";
    case 604:
      return "Does Not Exist Anywhere";
    case 606:
      return "Not Acceptable";
    default:
      return "Unknown";
  }
}

}  // namespace dialer::carriers::sip
