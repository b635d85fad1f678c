#pragma once
// What a REST carrier's error answer to a call request means for the engine (each carrier's protocol decides).
// Threading: a plain value.

#include <chrono>
#include <optional>
#include <string>

#include "engine/ports/carrier.hpp"

namespace dialer::carriers::rest {

struct refusal_decision {
  origination_refusal why = origination_refusal::not_placed;
  std::optional<std::chrono::milliseconds> retry_after;
  std::string detail;  // "twilio 21211: The 'To' number ... (HTTP 400)"
};

}  // namespace dialer::carriers::rest
