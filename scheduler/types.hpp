#pragma once
// The scheduler's public value types: what goes in (contacts, registrations), what comes out (decisions),
// how a slot is given back, and what can be observed. Plain structs, no behaviour beyond packing.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ids.hpp"

namespace dialer::sched {

// A region or state code ("CA", "GB", "NSW", "US-CA") packed into 8 bytes, so a queued contact stays small
// and a comparison is one instruction. Upper-cased; text longer than 8 characters means "no region".
class region_code {
 public:
  constexpr region_code() noexcept = default;

  [[nodiscard]] static constexpr region_code from(std::string_view text) noexcept {
    region_code code;
    if (text.size() > 8) return code;
    for (std::size_t i = 0; i < text.size(); ++i) {
      auto c = static_cast<unsigned char>(text[i]);
      if (c >= 'a' && c <= 'z') c = static_cast<unsigned char>(c - 'a' + 'A');
      code.packed_ |= static_cast<std::uint64_t>(c) << (8 * i);
    }
    return code;
  }
  [[nodiscard]] static constexpr region_code from_packed(std::uint64_t packed) noexcept {
    region_code code;
    code.packed_ = packed;
    return code;
  }

  [[nodiscard]] constexpr bool empty() const noexcept { return packed_ == 0; }
  [[nodiscard]] constexpr std::uint64_t packed() const noexcept { return packed_; }
  [[nodiscard]] std::string to_string() const {
    std::string text;
    for (auto p = packed_; p != 0; p >>= 8) text.push_back(static_cast<char>(p & 0xff));
    return text;
  }

  friend constexpr bool operator==(region_code, region_code) noexcept = default;

 private:
  std::uint64_t packed_ = 0;
};

// Where the engine keeps a queued contact's data (its phone, zones, variables): a typed reference the scheduler
// carries from enqueue() to the decision without reading it. Never owning: the engine keeps the data in its own
// store (engine/dialing/contact_arena.hpp), so a contact the scheduler drops or hands back leaks nothing.
class payload_ref {
 public:
  constexpr payload_ref() noexcept = default;
  constexpr explicit payload_ref(std::uint64_t value) noexcept : value_(value) {}
  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return value_; }
  friend constexpr bool operator==(payload_ref, payload_ref) noexcept = default;

 private:
  std::uint64_t value_ = 0;
};

// One contact to call, as the feeder hands it over. Trivially copyable: it travels through a lock-free queue.
struct contact_item {
  contact_id contact;
  campaign_id campaign;
  number_id sticky_number;      // caller ID of the contact's earlier attempt; invalid when none
  payload_ref payload;          // the engine's reference to the contact's data, opaque to the scheduler
  region_code region;           // callee's state or region, for local presence
  std::uint16_t area_code = 0;  // callee's NANP area code, 0 when none
};

// A taken concurrency slot. Must be given back exactly once (complete() or give_back()); a second release of
// the same handle is detected and counted, never applied. Only meaningful to the scheduler that issued it.
class slot_handle {
 public:
  constexpr slot_handle() noexcept = default;
  constexpr explicit slot_handle(std::uint64_t value) noexcept : value_(value) {}
  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return value_; }
  [[nodiscard]] constexpr bool valid() const noexcept { return value_ != 0; }
  friend constexpr bool operator==(slot_handle, slot_handle) noexcept = default;

 private:
  std::uint64_t value_ = 0;
};

// One origination decision: call `contact` for `campaign` with caller ID `number`.
struct decision {
  contact_id contact;
  campaign_id campaign;
  number_id number;
  carrier_account_id carrier_account;  // the number's account; invalid when the number has none
  payload_ref payload;
  slot_handle slot;
};

// Why a slot comes back without a finished call.
enum class release_reason : std::uint8_t {
  completed,      // the call ended: the slot frees
  not_attempted,  // the engine decided not to call (outside its window...): slot frees, contact NOT re-queued
  number_unusable,  // the carrier refused the caller ID: the number leaves rotation, the contact is re-queued
  throttled,        // carrier back-pressure: the contact is re-queued (throttle the account separately)
};

enum class caller_id_strategy : std::uint8_t {
  round_robin,     // the next usable number in the campaign's list, in turn
  least_loaded,    // the usable number with the most free slots
  local_presence,  // same area code, else same region, else any; ties by fewest hand-outs today
};

[[nodiscard]] std::string_view to_string(caller_id_strategy s) noexcept;
[[nodiscard]] std::optional<caller_id_strategy> parse_caller_id_strategy(std::string_view text) noexcept;
[[nodiscard]] std::string_view to_string(release_reason r) noexcept;

struct carrier_account_config {
  carrier_account_id id;
  std::string name;             // for messages
  double max_cps = 1.0;         // > 0; +infinity means no cap
  std::uint32_t cps_burst = 1;  // originations allowed back to back; 1 = strictly spaced
};

struct number_config {
  number_id id;
  std::string e164;                       // for messages and stats; may be empty
  agent_id agent;                         // invalid when unassigned
  std::string agent_name;                 // for messages
  carrier_account_id carrier_account;     // invalid when the number has no account-level cap
  std::int32_t max_concurrent_calls = 1;  // >= 0; 0 parks the number (a process whose lease share is empty)
  double max_cps = 1.0;                   // > 0, may be < 1 (0.5 = one call per two seconds); +inf = no cap
  std::uint32_t cps_burst = 1;            // see carrier_account_config
  std::uint16_t area_code = 0;            // NANP area code for local presence, 0 when none
  std::string region;                     // state or region ("CA", "GB"), may be empty
  bool in_rotation = true;
};

struct campaign_config {
  campaign_id id;
  agent_id agent;
  std::string agent_name;          // for messages
  std::vector<number_id> numbers;  // explicit caller IDs; empty means "all of the agent's numbers"
  caller_id_strategy strategy = caller_id_strategy::round_robin;
  bool sticky_retries = true;      // a retry keeps its earlier caller ID while that number is usable
  std::int32_t max_in_flight = 1;  // >= 1
  bool paused = false;             // start paused
};

struct scheduler_options {
  std::size_t hopper_capacity = 65536;  // high-water mark of queued contacts, across campaigns
  std::uint32_t campaign_quantum = 32;  // hand-outs per campaign per round, for fairness between campaigns
  // Most polls (one `pause` each, 27-50 ns on Zen 3) of the wake-up counter before an idle dispatcher sleeps.
  // It spins only while contacts are parked and no other dispatcher spins, and the actual spin adapts between
  // 16 polls and this: longer while spins end with work, shorter while they end in sleep. 0: never spin.
  std::uint32_t spin_before_sleep = 2048;
#ifdef NDEBUG
  bool abort_on_double_release = false;
#else
  bool abort_on_double_release = true;  // debug builds stop at the bug; release builds count it
#endif
};

struct number_stats {
  number_id id;
  std::int32_t in_flight = 0;
  std::int32_t peak_in_flight = 0;
  std::int32_t max_concurrent_calls = 0;
  std::uint64_t handouts = 0;
  std::uint64_t handouts_today = 0;
  std::size_t parked = 0;  // sticky retries waiting for this number
  bool in_rotation = false;
};

struct campaign_stats {
  campaign_id id;
  std::int32_t in_flight = 0;
  std::int32_t max_in_flight = 0;
  std::size_t queued = 0;  // in its queue or parked on a sticky number
  std::uint64_t handouts = 0;
  std::size_t numbers = 0;              // eligible numbers (assigned to the campaign's agent)
  std::size_t numbers_in_rotation = 0;  // of which usable now
  bool paused = false;
};

struct scheduler_stats {
  std::size_t hopper_size = 0;
  std::size_t hopper_room = 0;
  std::size_t hopper_capacity = 0;
  std::uint64_t handouts = 0;
  std::uint64_t completed = 0;
  std::uint64_t not_attempted = 0;
  std::uint64_t number_unusable = 0;
  std::uint64_t throttled = 0;
  std::uint64_t double_releases = 0;  // releases of a handle that was not held: a bug in the caller
  std::uint64_t rejected = 0;         // contacts for an unknown or removed campaign (see take_rejected)
  std::size_t slots_in_use = 0;
  std::vector<number_stats> numbers;
  std::vector<campaign_stats> campaigns;
};

}  // namespace dialer::sched
