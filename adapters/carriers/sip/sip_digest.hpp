#pragma once
// Digest authentication of our requests (RFC 2617, as RFC 3261 §22.4 adopts it): reading a 401/407 challenge
// and writing the Authorization or Proxy-Authorization value that answers it. MD5 only, qop "auth" or none.
// Threading: pure functions; any thread. md5_hex and authorization_value allocate only their result.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <osipparser2/osip_parser.h>

namespace dialer::carriers::sip {

struct digest_challenge {
  // 407 Proxy-Authenticate (answer with Proxy-Authorization) vs 401 WWW-Authenticate (Authorization).
  bool proxy = false;
  // Unquoted. algorithm as the challenge spelled it, "" when absent.
  std::string realm, nonce, opaque, algorithm;
  bool qop_auth = false;  // the challenge offers qop "auth" (we then choose it)
  bool stale = false;     // the nonce expired, not the credentials: retry with the new one (RFC 2617 §3.2.1)
};

// The first Digest challenge we can answer in a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) response:
// algorithm MD5 or none, a realm and a nonce, and a qop that is absent or offers "auth". nullopt when there
// is none (not a 401/407, or only MD5-sess, AKA, auth-int or Basic challenges): we answer nothing then, and
// the request fails with the response as it is. oSIP keeps the quotes of quoted values; they are removed
// here, quoted-pairs undone.
[[nodiscard]] std::optional<digest_challenge> read_challenge(const osip_message_t* response);

struct digest_credentials {
  std::string username;
  std::string password;
};

// The header value: `Digest username="..", realm="..", nonce="..", uri="..", response="<32 lowercase hex>",
// algorithm=MD5[, cnonce="..", nc=00000001, qop=auth][, opaque=".."]`. method and uri are the request's (the
// uri exactly as in the Request-URI); cnonce and nc are used only with qop=auth (nc counts the requests sent
// with this nonce, from 1). Quoted values get '"' and '\' escaped; a CR or LF in them is dropped (it could
// split the header), which makes the response wrong and the request refused: fail closed.
[[nodiscard]] std::string authorization_value(const digest_challenge& challenge,
                                              const digest_credentials& credentials, std::string_view method,
                                              std::string_view uri, std::string_view cnonce,
                                              std::uint32_t nc);

// MD5 of the bytes as 32 lowercase hex digits, through OpenSSL 3's EVP interface. "" when OpenSSL offers no
// MD5 (a FIPS-only configuration).
[[nodiscard]] std::string md5_hex(std::string_view text);

}  // namespace dialer::carriers::sip
