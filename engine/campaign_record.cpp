#include "engine/campaign_record.hpp"

namespace dialer {

std::string_view to_string(campaign_state s) noexcept {
  switch (s) {
    case campaign_state::draft:
      return "draft";
    case campaign_state::running:
      return "running";
    case campaign_state::paused:
      return "paused";
    case campaign_state::completed:
      return "completed";
    case campaign_state::cancelled:
      return "cancelled";
  }
  return "draft";
}

std::optional<campaign_state> parse_campaign_state(std::string_view text) noexcept {
  for (auto s : {campaign_state::draft, campaign_state::running, campaign_state::paused,
                 campaign_state::completed, campaign_state::cancelled})
    if (to_string(s) == text) return s;
  return std::nullopt;
}

std::int32_t block_size_for(std::int64_t contacts) noexcept {
  std::int32_t size = 256;
  while (size < 1024 && static_cast<std::int64_t>(size) * 16 < contacts) size *= 2;
  return size;
}

}  // namespace dialer
