#pragma once
// Which number providers this process holds (app/providers.cpp).

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "app/context.hpp"
#include "engine/inventory.hpp"
#include "engine/ports/number_provider.hpp"

namespace dialer::app {

// The process's number providers: the one that searches and buys (DIALER_NUMBER_PROVIDER: simulated, the
// default, twilio or telnyx), and each carrier's whose credentials the process holds (DIALER_TWILIO_*,
// DIALER_TELNYX_API_KEY + DIALER_TELNYX_CONNECTION_ID, with DIALER_PUBLIC_BASE_URL), for BYOC imports and for
// releasing numbers bought there. DIALER_TWILIO_BASE_URL / DIALER_TELNYX_BASE_URL point them elsewhere (tests).
// Threading: one instance per thread, like the services that use it.
class number_providers {
 public:
  // invalid_input for an unknown DIALER_NUMBER_PROVIDER, or one whose credentials are missing (saying which).
  [[nodiscard]] static result<std::unique_ptr<number_providers>> from_environment();
  [[nodiscard]] number_provider& buying() noexcept { return *buying_; }
  [[nodiscard]] number_provider* find(std::string_view name) noexcept;
  // Lets `inventory` import and release through the carriers' providers.
  void wire(inventory_service& inventory);

 private:
  number_providers() = default;
  system_clock clock_;
  std::map<std::string, std::unique_ptr<number_provider>, std::less<>> all_;
  number_provider* buying_ = nullptr;
};

}  // namespace dialer::app
