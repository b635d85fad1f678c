#pragma once
// Which claimed contact blocks this engine holds and how many of their contacts are still on their way through
// the pipeline (in the hopper, in flight, or queued for the writer). A block is released with the write-back of
// its last one, so that the database's block counters are recomputed exactly once per claim.

#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

namespace dialer {

// Thread-safe: the claiming thread adds (and forgets a block it released at once), the writing thread settles.
// One lock per call, not per contact; allocates one map node per held block.
class block_tracker {
 public:
  // `units` contacts (and open attempts) of `block` enter the pipeline. False when the block is tracked
  // already (this engine retook its own block after its lease lapsed): nothing is added.
  bool add(std::int64_t block, std::int64_t units) {
    std::lock_guard lock(mutex_);
    return open_.emplace(block, units).second;
  }
  void forget(std::int64_t block) {
    std::lock_guard lock(mutex_);
    open_.erase(block);
  }
  // One unit of each listed block was written back; appends the blocks that have none left, and forgets them.
  void settle(std::span<const std::int64_t> units, std::vector<std::int64_t>& released) {
    std::lock_guard lock(mutex_);
    for (auto block : units) {
      auto it = open_.find(block);
      if (it == open_.end()) continue;  // a block we lost: its new holder releases it
      if (--it->second == 0) {
        released.push_back(block);
        open_.erase(it);
      }
    }
  }
  [[nodiscard]] std::size_t held() const {
    std::lock_guard lock(mutex_);
    return open_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, std::int64_t> open_;
};

}  // namespace dialer
