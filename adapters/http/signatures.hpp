#pragma once
// Checking that a webhook comes from the carrier that signs it.
// - Twilio: X-Twilio-Signature is base64(HMAC-SHA1(auth token, the full URL Twilio requested, followed by every
//   POST parameter as name then value, sorted by name)).
// - Telnyx: telnyx-signature-ed25519 is base64(ed25519 signature of "<telnyx-timestamp>|<raw body>"), checked
//   with the account's public key (base64 of the 32 raw bytes), within a tolerance of the timestamp.
// - Standard Webhooks (what we send to the platform): webhook-signature is "v1," + base64(HMAC-SHA256(the
//   secret's bytes, "<webhook-id>.<webhook-timestamp>.<body>")); a secret is "whsec_" + base64 of its bytes.
// Comparisons take constant time. Threading: pure functions.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/http/url.hpp"

namespace dialer::http {

[[nodiscard]] std::string twilio_signature(std::string_view auth_token, std::string_view url, const query_params& params);
[[nodiscard]] bool twilio_signature_ok(std::string_view auth_token, std::string_view url, const query_params& params,
                                       std::string_view signature);

[[nodiscard]] bool ed25519_ok(std::string_view public_key_base64, std::string_view message,
                              std::string_view signature_base64);

// "v1,<base64>" for one secret ("whsec_" + base64 of at least 24 bytes); nullopt for a malformed secret.
[[nodiscard]] std::optional<std::string> standard_webhook_signature(std::string_view secret, std::string_view id,
                                                                    std::int64_t timestamp, std::string_view body);
// A new secret: "whsec_" + base64 of 32 random bytes.
[[nodiscard]] std::string new_webhook_secret();

[[nodiscard]] std::string base64(std::string_view bytes);
[[nodiscard]] std::optional<std::string> unbase64(std::string_view text);

}  // namespace dialer::http
