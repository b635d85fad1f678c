#pragma once
// The number-inventory port: search, buy and release numbers at a carrier partner.
// Implemented by the simulated provider (the embedded default), Twilio and Telnyx. A process buys from one provider
// (DIALER_NUMBER_PROVIDER) and imports BYOC numbers through the provider of the carrier that holds them.
// Threading: callers serialise calls per provider instance; implementations may block on I/O.

#include <optional>
#include <string>
#include <vector>

#include "engine/result.hpp"
#include "engine/telephony.hpp"

namespace dialer {

struct number_search {
  std::string country;  // ISO alpha-2, upper case; required
  std::optional<number_type> type;
  std::optional<std::string> area_code;  // national destination code, e.g. "415"
  std::optional<std::string> contains;   // digits that must appear in the E.164 string
  int limit = 20;
};

struct available_number {
  std::string e164;
  std::string country;
  number_type type = number_type::local;
  std::string region;  // state or region, e.g. "CA"; may be empty
  std::string provider;
};

struct purchased_number {
  std::string e164;
  std::string country;
  number_type type = number_type::local;
  std::string provider;
  std::string provider_ref;  // the provider's id for the number (e.g. a Twilio PN SID)
};

class number_provider {
 public:
  virtual ~number_provider() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  // Numbers the provider offers now, not filtered against what this platform already owns.
  [[nodiscard]] virtual result<std::vector<available_number>> search(const number_search& query) = 0;
  // not_found when the number is not in the provider's inventory.
  [[nodiscard]] virtual result<purchased_number> buy(const std::string& e164) = 0;
  [[nodiscard]] virtual result<void> release(const purchased_number& number) = 0;
  // BYOC: the number is already the customer's at this provider. Finds it in the account and points its inbound
  // calls at this platform's inbound endpoint. not_found when the account has no such number; conflict when the
  // number is bound to something that pointing it would break (a SIP trunk). An error before the number was
  // pointed here changes nothing; one after it (a later step failed) leaves it pointed here, which importing it
  // again completes.
  [[nodiscard]] virtual result<purchased_number> claim(const std::string& e164) {
    return make_error(errc::invalid_input, "number provider '{}' cannot import numbers ({})", name(), e164);
  }
};

}  // namespace dialer
