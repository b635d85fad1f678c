#pragma once
// The REST carriers' credentials and what the adapters need from the process around them.
//
// Credentials belong to the serving process, not to a campaign: they come from the environment
// (DIALER_TWILIO_ACCOUNT_SID, DIALER_TWILIO_AUTH_TOKEN or DIALER_TWILIO_API_KEY_SID + DIALER_TWILIO_API_KEY_SECRET,
// DIALER_TELNYX_API_KEY, DIALER_TELNYX_CONNECTION_ID, DIALER_SIP_USERNAME, DIALER_SIP_PASSWORD) or from a secrets
// file the configuration names (DIALER_CARRIER_SECRETS_FILE, JSON: {"twilio": {"account_sid", "auth_token",
// "api_key_sid", "api_key_secret"}, "telnyx": {"api_key", "connection_id"}, "sip": {"username", "password"}}), the file
// winning nothing over the environment: a value set in both is an error, so nobody wonders which applies. A
// campaign file run by `dialer run` may also give them in its carrier settings (as ${ENV} references); stored
// campaign settings never hold them (they are redacted).
//
// A secret is held in a `secret` whose formatting prints "<redacted>": it cannot reach a log line by accident.
// Threading: plain values.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "engine/ports/carrier_callbacks.hpp"
#include "engine/result.hpp"

namespace dialer::carriers {

class secret {
 public:
  secret() = default;
  explicit secret(std::string value) : value_(std::move(value)) {}
  [[nodiscard]] const std::string& reveal() const noexcept { return value_; }
  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }

 private:
  std::string value_;
};

struct carrier_credentials {
  std::map<std::string, secret, std::less<>> values;  // "twilio.account_sid", "twilio.auth_token", "telnyx.api_key"
  [[nodiscard]] const secret* find(std::string_view key) const {
    auto it = values.find(key);
    return it == values.end() || it->second.empty() ? nullptr : &it->second;
  }
};

// Reads the environment and DIALER_CARRIER_SECRETS_FILE. invalid_input names the variable or the file's field.
[[nodiscard]] result<carrier_credentials> credentials_from_environment();

// What the REST carriers need from the process: where their callbacks are received, the credentials, and the inbox
// through which a callback reaches the instance that placed the call.
struct carrier_environment {
  std::string public_base_url;  // DIALER_PUBLIC_BASE_URL: https://host[:port], what the carriers call
  carrier_credentials credentials;
  std::function<result<std::unique_ptr<carrier_callback_inbox>>()> open_inbox;  // one per adapter instance
  // The database's own random id (table `installation`): what makes an id the carrier account remembers (Telnyx's
  // command_id) unique across the databases using one account. Empty in a process that only checks settings.
  std::string installation;
};

}  // namespace dialer::carriers

template <>
struct fmt::formatter<dialer::carriers::secret> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const dialer::carriers::secret&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("<redacted>", ctx);
  }
};
