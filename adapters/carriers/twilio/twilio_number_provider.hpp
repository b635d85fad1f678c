#pragma once
// Twilio's phone-number inventory (2010-04-01 API): search AvailablePhoneNumbers, buy and release
// IncomingPhoneNumbers, and BYOC import: find the customer's number in the account and point its VoiceUrl at this
// platform's inbound endpoint ({public base}/v1/inbound/twilio). A number bought here gets that VoiceUrl at once.
// Credentials are the process's (DIALER_TWILIO_*); DIALER_TWILIO_BASE_URL overrides https://api.twilio.com.
// Threading: as number_provider (the caller serialises calls; each blocks on one HTTPS request at a time).

#include <memory>
#include <string>

#include "adapters/carriers/rest/credentials.hpp"
#include "adapters/carriers/rest/provider_client.hpp"
#include "engine/ports/number_provider.hpp"

namespace dialer::carriers::twilio {

struct twilio_numbers_settings {
  std::string account_sid;
  std::string authorization;  // Basic: the account SID and auth token, or an API key
  std::string base_url = "https://api.twilio.com";
  std::string voice_url;      // {DIALER_PUBLIC_BASE_URL}/v1/inbound/twilio
  std::chrono::milliseconds request_timeout{15'000};
};

// From the process's credentials; invalid_input names what is missing (never a secret's value).
[[nodiscard]] result<twilio_numbers_settings> twilio_numbers_settings_from(const carrier_environment& env,
                                                                          std::string base_url = {});

class twilio_number_provider final : public number_provider {
 public:
  explicit twilio_number_provider(twilio_numbers_settings s);
  [[nodiscard]] std::string name() const override { return "twilio"; }
  // AvailablePhoneNumbers/{country}/{Local|TollFree|Mobile}.json with AreaCode, Contains and PageSize.
  [[nodiscard]] result<std::vector<available_number>> search(const number_search& query) override;
  // POST IncomingPhoneNumbers.json with the VoiceUrl; not_found when Twilio says the number is not available.
  [[nodiscard]] result<purchased_number> buy(const std::string& e164) override;
  // DELETE IncomingPhoneNumbers/{PN}.json (a number Twilio no longer has counts as released).
  [[nodiscard]] result<void> release(const purchased_number& number) override;
  // IncomingPhoneNumbers.json?PhoneNumber=..., then its VoiceUrl (and an application SID that would override it,
  // cleared). conflict for a number on an Elastic SIP trunk (import it as a `sip` number instead).
  [[nodiscard]] result<purchased_number> claim(const std::string& e164) override;

 private:
  [[nodiscard]] std::string path(std::string_view rest) const;
  twilio_numbers_settings s_;
  rest::provider_client client_;
};

}  // namespace dialer::carriers::twilio
