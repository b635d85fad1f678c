#pragma once
// The carrier callback inbox: how a carrier's status callback reaches the engine that placed the call, exactly
// once, whichever engine's HTTP server it arrived at (a load balancer spreads them). The server that receives a
// verified callback stores it (put); the carrier adapter instance that placed the call takes the callbacks meant
// for it (take), each once, ever; when that instance is gone (its process died), reconciliation in another
// process takes what arrived for the attempt (take_attempt) before it asks the carrier.
//
// One callback per (carrier, call, event): a duplicate (the carrier retried, the same callback twice) is not
// stored again, so a late or repeated callback cannot change anything twice.
//
// Threading: one instance per thread (an implementation holds a database connection).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ids.hpp"
#include "engine/result.hpp"

namespace dialer {

struct carrier_callback {
  std::int64_t id = 0;       // assigned when stored
  std::string carrier;       // "twilio", "telnyx"
  std::string instance;      // the adapter instance that placed the call (named in the callback URL)
  attempt_id attempt;
  std::string placement;     // which placement of the attempt (a nonce in the callback URL; an attempt whose
                             // call was not placed is placed again under the same id)
  std::string call_id;       // the carrier's call id (CallSid, call_control_id)
  std::string event;         // the adapter's own name for the step: "answered", "final", "amd"
  std::string params_json;   // the callback's fields, as a JSON object of strings
  std::chrono::system_clock::time_point received_at{};
};

class carrier_callback_inbox {
 public:
  virtual ~carrier_callback_inbox() = default;
  // Stores a verified callback; false when the same (carrier, call, event) was stored before.
  [[nodiscard]] virtual result<bool> put(const carrier_callback& callback) = 0;
  // The callbacks meant for `instance` not taken yet (at most `max`, oldest first); each is returned once.
  [[nodiscard]] virtual result<std::vector<carrier_callback>> take(std::string_view carrier, std::string_view instance,
                                                                   std::size_t max) = 0;
  // The callbacks of one attempt not taken yet, whichever instance they were meant for (reconciliation): taken
  // only when a final one is among them (the call has ended: they settle it); otherwise left for a later look
  // (they still tell the call's id, and that it exists).
  [[nodiscard]] virtual result<std::vector<carrier_callback>> take_attempt(std::string_view carrier,
                                                                           attempt_id attempt) = 0;
  // Forgets callbacks taken more than `age` ago, and any older than `abandoned` (their instance never took them
  // and no reconciliation asked). Returns how many.
  [[nodiscard]] virtual result<std::int64_t> purge(std::chrono::hours age, std::chrono::hours abandoned) = 0;
};

}  // namespace dialer
