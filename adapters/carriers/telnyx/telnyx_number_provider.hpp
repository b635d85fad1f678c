#pragma once
// Telnyx's phone-number inventory (API v2): search /v2/available_phone_numbers, buy through a number order (placed,
// then followed until Telnyx completes it), release /v2/phone_numbers/{id}, and BYOC import: find the customer's
// number in the account and route it to this platform's Call Control application, whose webhook URL is made
// {public base}/v1/inbound/telnyx (on Telnyx, the inbound webhook belongs to the application, not the number).
// Credentials are the process's (DIALER_TELNYX_API_KEY, DIALER_TELNYX_CONNECTION_ID); DIALER_TELNYX_BASE_URL
// overrides https://api.telnyx.com.
// Threading: as number_provider (the caller serialises calls; each blocks on one HTTPS request at a time).

#include <chrono>
#include <string>

#include "adapters/carriers/rest/credentials.hpp"
#include "adapters/carriers/rest/provider_client.hpp"
#include "engine/ports/clock.hpp"
#include "engine/ports/number_provider.hpp"

namespace dialer::carriers::telnyx {

struct telnyx_numbers_settings {
  std::string authorization;  // Bearer <API key>
  std::string connection_id;
  std::string base_url = "https://api.telnyx.com";
  std::string webhook_url;    // {DIALER_PUBLIC_BASE_URL}/v1/inbound/telnyx
  std::chrono::milliseconds request_timeout{15'000};
  std::chrono::milliseconds order_timeout{60'000};  // how long a buy follows its number order
  std::chrono::milliseconds order_poll{250};
};

[[nodiscard]] result<telnyx_numbers_settings> telnyx_numbers_settings_from(const carrier_environment& env,
                                                                          std::string base_url = {});

class telnyx_number_provider final : public number_provider {
 public:
  telnyx_number_provider(telnyx_numbers_settings s, const dialer::clock& clock);
  [[nodiscard]] std::string name() const override { return "telnyx"; }
  [[nodiscard]] result<std::vector<available_number>> search(const number_search& query) override;
  // POST /v2/number_orders for the number on this platform's connection, followed until `success`; not_found when
  // Telnyx refuses the number, unavailable (with the order id) when the order is still pending at order_timeout.
  [[nodiscard]] result<purchased_number> buy(const std::string& e164) override;
  // DELETE /v2/phone_numbers/{id} (a number Telnyx no longer has counts as released).
  [[nodiscard]] result<void> release(const purchased_number& number) override;
  // GET /v2/phone_numbers?filter[phone_number]=..., PATCH its connection_id, and the application's webhook URL.
  [[nodiscard]] result<purchased_number> claim(const std::string& e164) override;

 private:
  [[nodiscard]] result<nlohmann::json> find_owned(const std::string& e164);
  [[nodiscard]] result<void> ensure_application_webhook();
  telnyx_numbers_settings s_;
  const dialer::clock& clock_;
  rest::provider_client client_;
  bool application_checked_ = false;
};

}  // namespace dialer::carriers::telnyx
