#pragma once
// API keys: "dk_" and 32 base62 characters (190 random bits from OpenSSL's CSPRNG). Only the SHA-256 of a key
// is stored; a key is shown once, at creation. The prefix ("dk_" and 6 more) tells keys apart in listings.
// Threading: pure functions (OpenSSL's RNG is thread-safe).

#include <string>
#include <string_view>

#include "engine/ports/api_store.hpp"

namespace dialer::http {

[[nodiscard]] std::string new_api_key();
[[nodiscard]] sha256_digest sha256(std::string_view data);
[[nodiscard]] std::string api_key_prefix(std::string_view key);
// A string that can be a key at all (shape only): anything else is refused before any lookup.
[[nodiscard]] bool looks_like_api_key(std::string_view key) noexcept;

}  // namespace dialer::http
