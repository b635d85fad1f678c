#pragma once
// Which claimed contact blocks this engine holds and how many of their contacts are still on their way through
// the pipeline (in the hopper, in flight, or queued for the writer). A block is released with the write-back of
// its last one, so that the database's block counters are recomputed exactly once per claim.

#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace dialer {

// Thread-safe: the claiming thread adds, the writing thread settles and, once committed, reports releases; the
// control thread reads what is held. One lock per call, not per contact; one map node per held block.
class block_tracker {
 public:
  // `units` contacts (and open attempts) of `block` enter the pipeline. False when the block is tracked
  // already (this engine retook its own block after its lease lapsed, or its release is not committed yet):
  // nothing is added, and the claim's contacts of that block must be left alone.
  bool add(std::int64_t block, std::int64_t units) {
    std::lock_guard lock(mutex_);
    if (releasing_.contains(block)) return false;
    return open_.emplace(block, units).second;
  }
  // One unit of each listed block was written back; appends the blocks that have none left. They stay tracked
  // (as releasing) until released(): a claim of one of them in between must not start it over.
  void settle(std::span<const std::int64_t> units, std::vector<std::int64_t>& releasing) {
    std::lock_guard lock(mutex_);
    for (auto block : units) {
      auto it = open_.find(block);
      if (it == open_.end()) continue;  // a block we lost: its new holder releases it
      if (--it->second == 0) {
        releasing.push_back(block);
        releasing_.insert(block);
        open_.erase(it);
      }
    }
  }
  // The release of these blocks is committed (or they were released at once): they are no longer tracked.
  void released(std::span<const std::int64_t> blocks) {
    std::lock_guard lock(mutex_);
    for (auto block : blocks) {
      open_.erase(block);
      releasing_.erase(block);
    }
  }
  // Every block tracked: the leases the heartbeat renews.
  [[nodiscard]] std::vector<std::int64_t> held() const {
    std::lock_guard lock(mutex_);
    std::vector<std::int64_t> out;
    out.reserve(open_.size() + releasing_.size());
    for (const auto& [block, units] : open_) out.push_back(block);
    out.insert(out.end(), releasing_.begin(), releasing_.end());
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, std::int64_t> open_;  // block -> units still in the pipeline
  std::unordered_set<std::int64_t> releasing_;            // no unit left; release not yet committed
};

}  // namespace dialer
