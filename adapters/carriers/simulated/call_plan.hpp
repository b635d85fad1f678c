#pragma once
// The deterministic heart of the simulated carrier: what happens to a call is a pure function of
// (settings, seed, idempotency key). Thread interleaving cannot change it, and a new process can
// recompute it to reconcile an attempt placed before a crash.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "adapters/carriers/simulated/settings.hpp"
#include "engine/ports/carrier.hpp"

namespace dialer::carriers {

struct call_plan {
  call_outcome outcome = call_outcome::completed;  // what happens if nobody cancels
  std::chrono::milliseconds ring{0};  // start to answer (answered calls) or start to end (the others)
  std::chrono::milliseconds talk{0};  // answer to hang-up; 0 unless answered

  [[nodiscard]] bool answered() const noexcept {
    return outcome == call_outcome::completed || outcome == call_outcome::voicemail;
  }
  [[nodiscard]] std::chrono::milliseconds total() const noexcept { return ring + talk; }
};

// Seed-independent 64-bit hash of an idempotency key (FNV-1a with a strong finaliser).
// Thread-safe, never allocates.
[[nodiscard]] std::uint64_t hash_idempotency_key(std::string_view key) noexcept;

// Draws the call's fate from a PRNG seeded with (settings.seed, key_hash). Thread-safe, never allocates.
[[nodiscard]] call_plan plan_call(const simulated_carrier_settings& settings,
                                  std::uint64_t key_hash) noexcept;

}  // namespace dialer::carriers
