#include "engine/dialing/engine_options.hpp"

#include <algorithm>

namespace dialer {

std::size_t high_water_mark(std::size_t usable_slots, const engine_options& options,
                            std::int32_t block_size) noexcept {
  const auto block = static_cast<std::size_t>(std::max(1, block_size));
  const auto wanted = std::max(usable_slots * std::max<std::size_t>(1, options.hopper_per_slot), block);
  return std::max<std::size_t>(1, std::min(wanted, options.hopper_capacity));
}

int claim_size(std::size_t queued, std::size_t high_water, const engine_options& options,
               std::int32_t block_size) noexcept {
  if (queued >= high_water || queued > high_water / 2) return 0;  // still above the low-water mark
  const auto room = high_water - queued;
  const auto batch = static_cast<std::size_t>(std::max({1, options.claim_batch, block_size}));
  return static_cast<int>(std::min(room, batch));
}

}  // namespace dialer
