#pragma once
// A campaign as the system of record holds it: its state, its stored spec, its agent, and how its contacts
// are laid out for claiming. Plain values, shared by the engine's ports, the engine and the campaign service.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/campaign.hpp"
#include "engine/ids.hpp"
#include "engine/telephony.hpp"

namespace dialer {

// draft -> running <-> paused -> completed | cancelled. Cancel is final: nothing moves a cancelled campaign.
enum class campaign_state : std::uint8_t { draft, running, paused, completed, cancelled };
[[nodiscard]] std::string_view to_string(campaign_state s) noexcept;
[[nodiscard]] std::optional<campaign_state> parse_campaign_state(std::string_view text) noexcept;
[[nodiscard]] constexpr bool is_terminal(campaign_state s) noexcept {
  return s == campaign_state::completed || s == campaign_state::cancelled;
}

// A campaign's contacts have consecutive ids (one range, allocated at import), cut into blocks of `size`:
// the unit an engine claims, under a lease. Memory: a block is only a range; nothing per contact.
struct contact_blocks {
  std::int64_t first = 0;  // first contact id of the campaign (0: no contacts)
  std::int64_t last = 0;   // last contact id
  std::int32_t size = 1024;

  [[nodiscard]] bool empty() const noexcept {
    return first <= 0;
  }  // not imported yet (or no contact accepted)
  // The first contact id of the block that holds `c`: its key. Pure, thread-safe.
  [[nodiscard]] std::int64_t block_of(contact_id c) const noexcept {
    return first + (c.value() - first) / size * size;
  }
};

// Blocks of about 1/16 of the campaign, 256 to 1024 contacts: a large campaign spreads over up to sixteen
// engines, large ones claim in big steps, and no block is so small that its claim, lock and release cost more
// than its contacts (a thousand campaigns of a thousand contacts ran at 0.5 of one large one's rate with blocks
// of 16, 0.6 with 64, 0.7 to 0.8 with 256: bench_campaigns). A campaign under 256 contacts is one block, dialed
// by one engine at a time.
[[nodiscard]] std::int32_t block_size_for(std::int64_t contacts) noexcept;

struct campaign_record {
  campaign_id id;
  account_id account;
  std::string name;
  agent_id agent;
  std::string agent_name;
  std::string agent_handoff;
  campaign_state state = campaign_state::draft;
  std::string carrier;
  campaign_spec spec;
  bool imported = false;
  std::int64_t import_accepted = 0;
  // Rows the import turned away, by reason (reasons in the import's precedence order, none with 0); the rows
  // themselves are paged with campaign_repository::rejected_rows.
  std::vector<std::pair<std::string, std::int64_t>> import_rejected_by_reason;
  [[nodiscard]] std::int64_t import_rejected() const noexcept {
    std::int64_t n = 0;
    for (const auto& r : import_rejected_by_reason) n += r.second;
    return n;
  }
  std::vector<number_id> numbers;  // explicit caller IDs (empty: all of the agent's)
  contact_blocks blocks;           // its contacts' id range (set by the import)
  timestamp created_at{};
  std::optional<timestamp> started_at;
  std::optional<timestamp> finished_at;
};

struct campaign_progress {
  std::int64_t total = 0;
  std::int64_t pending = 0;  // waiting in blocks nobody holds
  // Not yet terminal, in blocks an engine holds (or held until its lease lapsed).
  std::int64_t in_progress = 0;
  std::int64_t done = 0;
  std::int64_t cancelled = 0;
  std::int64_t do_not_call = 0;
  std::int64_t invalid = 0;
  std::int64_t attempts = 0;
  std::int64_t answered = 0;          // attempts with outcome completed
  std::optional<timestamp> next_due;  // earliest next attempt of a pending contact in a block nobody holds
  [[nodiscard]] std::int64_t terminal() const noexcept { return done + cancelled + do_not_call + invalid; }
};

}  // namespace dialer
