#include "adapters/carriers/rest/credentials.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace dialer::carriers {

namespace {

struct source {
  const char* variable;
  const char* carrier;
  const char* field;
};

constexpr source kSources[] = {
    {"DIALER_TWILIO_ACCOUNT_SID", "twilio", "account_sid"},
    {"DIALER_TWILIO_AUTH_TOKEN", "twilio", "auth_token"},
    {"DIALER_TWILIO_API_KEY_SID", "twilio", "api_key_sid"},
    {"DIALER_TWILIO_API_KEY_SECRET", "twilio", "api_key_secret"},
    {"DIALER_TELNYX_API_KEY", "telnyx", "api_key"},
    // Not a secret, but the account's: the Call Control application the process places calls with.
    {"DIALER_TELNYX_CONNECTION_ID", "telnyx", "connection_id"},
    // A SIP trunk's digest credentials (RFC 3261 §22), answered to a 401/407.
    {"DIALER_SIP_USERNAME", "sip", "username"},
    {"DIALER_SIP_PASSWORD", "sip", "password"},
};

}  // namespace

result<carrier_credentials> credentials_from_environment() {
  carrier_credentials out;
  for (const auto& s : kSources)
    if (const char* v = std::getenv(s.variable); v != nullptr && *v != '\0')
      out.values[std::string(s.carrier) + "." + s.field] = secret(v);
  const char* file = std::getenv("DIALER_CARRIER_SECRETS_FILE");
  if (file == nullptr || *file == '\0') return out;
  std::ifstream in(file);
  if (!in) return make_error(errc::invalid_input, "DIALER_CARRIER_SECRETS_FILE: cannot read '{}'", file);
  std::stringstream text;
  text << in.rdbuf();
  // The parser's message may quote the file: it is not repeated.
  const auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object())
    return make_error(errc::invalid_input, "DIALER_CARRIER_SECRETS_FILE '{}': not a JSON object", file);
  for (const auto& [carrier, fields] : j.items()) {
    if (carrier != "twilio" && carrier != "telnyx" && carrier != "sip")
      return make_error(errc::invalid_input,
                        "DIALER_CARRIER_SECRETS_FILE '{}': unknown carrier '{}' (twilio, telnyx, sip)",
                        file, carrier);
    if (!fields.is_object())
      return make_error(errc::invalid_input, "DIALER_CARRIER_SECRETS_FILE '{}': '{}' must be an object", file, carrier);
    for (const auto& [field, value] : fields.items()) {
      const auto* known = std::find_if(std::begin(kSources), std::end(kSources),
                                       [&](const source& s) { return s.carrier == carrier && s.field == field; });
      if (known == std::end(kSources))
        return make_error(errc::invalid_input, "DIALER_CARRIER_SECRETS_FILE '{}': unknown field '{}.{}'", file,
                          carrier, field);
      if (!value.is_string() || value.get<std::string>().empty())
        return make_error(errc::invalid_input, "DIALER_CARRIER_SECRETS_FILE '{}': '{}.{}' must be a non-empty string",
                          file, carrier, field);
      const auto key = carrier + "." + field;
      if (out.values.contains(key))
        return make_error(errc::invalid_input,
                          "'{}.{}' is set both by {} and by DIALER_CARRIER_SECRETS_FILE '{}': keep one", carrier,
                          field, known->variable, file);
      out.values[key] = secret(value.get<std::string>());
    }
  }
  return out;
}

}  // namespace dialer::carriers
