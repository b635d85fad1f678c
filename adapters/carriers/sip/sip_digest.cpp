#include "adapters/carriers/sip/sip_digest.hpp"

#include "adapters/carriers/sip/sip_wire.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>

#include <openssl/evp.h>

namespace dialer::carriers::sip {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A parameter value as oSIP stores it ("\"biloxi.com\"" for a quoted-string, MD5 for a token) made plain.
std::string unquote(const char* stored) {
  if (stored == nullptr) return {};
  const auto s = trim(stored);
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return std::string(s);
  std::string out;
  const auto inner = s.substr(1, s.size() - 2);
  out.reserve(inner.size());
  for (std::size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] == '\\' && i + 1 < inner.size()) ++i;  // quoted-pair
    out.push_back(inner[i]);
  }
  return out;
}

std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    if (c == '\r' || c == '\n') continue;
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// qop-options is a quoted, comma-separated list ("auth,auth-int").
bool offers(std::string_view options, std::string_view wanted) {
  while (true) {
    const auto comma = options.find(',');
    if (iequals(trim(options.substr(0, comma)), wanted)) return true;
    if (comma == std::string_view::npos) return false;
    options.remove_prefix(comma + 1);
  }
}

std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out.push_back(':');
    out.append(p);
  }
  return out;
}

}  // namespace

std::optional<digest_challenge> read_challenge(const osip_message_t* response) {
  if (response == nullptr || response->sip_method != nullptr) return std::nullopt;
  const bool proxy = response->status_code == 407;
  if (!proxy && response->status_code != 401) return std::nullopt;
  // RFC 3261 §22.2/§22.3: a 401 challenges with WWW-Authenticate, a 407 with Proxy-Authenticate (same shape).
  const osip_list_t* challenges = proxy ? &response->proxy_authenticates : &response->www_authenticates;
  for (int i = 0; i < osip_list_size(challenges); ++i) {
    const auto* c = static_cast<const osip_www_authenticate_t*>(osip_list_get(challenges, i));
    if (c == nullptr || c->auth_type == nullptr || !iequals(trim(c->auth_type), "Digest")) continue;
    if (c->realm == nullptr || c->nonce == nullptr) continue;
    auto algorithm = unquote(c->algorithm);
    if (!algorithm.empty() && !iequals(algorithm, "MD5")) continue;  // MD5-sess, AKAv1-MD5, ...
    const bool has_qop = c->qop_options != nullptr;
    const bool qop_auth = has_qop && offers(unquote(c->qop_options), "auth");
    if (has_qop && !qop_auth) continue;  // auth-int only: we never hash bodies
    digest_challenge d;
    d.proxy = proxy;
    d.realm = unquote(c->realm);
    d.nonce = unquote(c->nonce);
    d.opaque = unquote(c->opaque);
    d.algorithm = std::move(algorithm);
    d.qop_auth = qop_auth;
    d.stale = iequals(unquote(c->stale), "true");
    return d;
  }
  return std::nullopt;
}

std::string authorization_value(const digest_challenge& challenge, const digest_credentials& credentials,
                                std::string_view method, std::string_view uri, std::string_view cnonce,
                                std::uint32_t nc) {
  // RFC 2617 §3.2.2.1-3: HA1 = MD5(user:realm:password), HA2 = MD5(method:digest-uri); with qop=auth
  // response = MD5(HA1:nonce:nc:cnonce:qop:HA2), without qop (RFC 2069) MD5(HA1:nonce:HA2).
  const auto ha1 = md5_hex(join({credentials.username, challenge.realm, credentials.password}));
  const auto ha2 = md5_hex(join({method, uri}));
  std::array<char, 9> nc_text{};
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) nc_text[static_cast<std::size_t>(i)] = kHex[(nc >> (28 - 4 * i)) & 0xfu];
  const std::string_view nc_hex(nc_text.data(), 8);
  const auto response = challenge.qop_auth
                            ? md5_hex(join({ha1, challenge.nonce, nc_hex, cnonce, "auth", ha2}))
                            : md5_hex(join({ha1, challenge.nonce, ha2}));
  std::string out = "Digest username=" + quoted(credentials.username) + ", realm=" + quoted(challenge.realm) +
                    ", nonce=" + quoted(challenge.nonce) + ", uri=" + quoted(uri) + ", response=\"" +
                    response + "\", algorithm=MD5";
  if (challenge.qop_auth) {
    out.append(", cnonce=").append(quoted(cnonce)).append(", nc=").append(nc_hex).append(", qop=auth");
  }
  if (!challenge.opaque.empty()) out.append(", opaque=").append(quoted(challenge.opaque));
  return out;
}

std::string md5_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_md5(), nullptr) != 1 || length != 16)
    return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace dialer::carriers::sip
