#include "adapters/http/api_key.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace dialer::http {

namespace {
constexpr std::string_view kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::size_t kRandomChars = 32;
constexpr std::string_view kPrefix = "dk_";
}  // namespace

std::string new_api_key() {
  std::string key(kPrefix);
  while (key.size() < kPrefix.size() + kRandomChars) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("OpenSSL could not produce random bytes");
    for (unsigned char b : buf) {
      if (b >= 248) continue;  // 248 = 4 * 62: rejection keeps every character equally likely
      key.push_back(kAlphabet[b % 62]);
      if (key.size() == kPrefix.size() + kRandomChars) break;
    }
  }
  return key;
}

sha256_digest sha256(std::string_view data) {
  sha256_digest out{};
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr) != 1 || n != out.size())
    throw std::runtime_error("OpenSSL SHA-256 failed");
  return out;
}

std::string api_key_prefix(std::string_view key) { return std::string(key.substr(0, kPrefix.size() + 6)); }

bool looks_like_api_key(std::string_view key) noexcept {
  if (key.size() != kPrefix.size() + kRandomChars || key.substr(0, kPrefix.size()) != kPrefix) return false;
  for (char c : key.substr(kPrefix.size()))
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  return true;
}

}  // namespace dialer::http
