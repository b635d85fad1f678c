#pragma once
// Which claimed contact blocks this engine holds and how many of their contacts are still on their way
// through the pipeline (in the hopper, in flight, or queued for the writer). A block is released with the
// write-back of its last one, so that the database's block counters are recomputed exactly once per claim. It
// also counts the bytes the held blocks' contacts occupy (the claim's contact data, wherever in the pipeline
// it is): the engine's memory bound.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

namespace dialer {

// Thread-safe: the claiming thread adds, the writing thread settles and, once committed, reports releases;
// the control thread reads what is held. One lock per call, not per contact; one map node per held block.
class block_tracker {
 public:
  // `units` contacts (and open attempts) of `block` enter the pipeline. False when the block is open already
  // (this engine retook its own block after its lease lapsed): nothing is added, and the claim's contacts of
  // that block must be left alone. A block whose release committed while released() has not run yet (the
  // database let this engine claim it again) takes the new units: released() opens it again with them. The
  // writer calls released() before it settles anything of a later claim, so no unit of the new claim is
  // settled early.
  bool add(std::int64_t block, std::int64_t units, std::size_t bytes = 0) {
    std::lock_guard lock(mutex_);
    if (releasing_.contains(block)) {
      // Its release committed (the database let it be claimed again) but released() has not run yet: the new
      // claim's units wait here and open the block again when it does.
      if (!reclaimed_.emplace(block, open_block{units, bytes}).second) return false;
      bytes_ += bytes;
      units_ += units;
      return true;
    }
    if (!open_.emplace(block, open_block{units, bytes}).second) return false;
    bytes_ += bytes;
    units_ += units;
    return true;
  }
  // Units (claimed contacts and open attempts) still in the pipeline, across the blocks tracked.
  [[nodiscard]] std::int64_t units() const {
    std::lock_guard lock(mutex_);
    return units_;
  }
  // Nothing tracked: every claimed block's release is committed.
  [[nodiscard]] bool empty() const {
    std::lock_guard lock(mutex_);
    return open_.empty() && releasing_.empty();
  }
  // The bytes of every block tracked (open or being released): they are freed when the release is committed.
  [[nodiscard]] std::size_t bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
  }
  // One unit of each listed block was written back; appends the blocks that have none left. They stay tracked
  // (as releasing) until released(): a claim of one of them in between must not start it over.
  void settle(std::span<const std::int64_t> units, std::vector<std::int64_t>& releasing) {
    std::lock_guard lock(mutex_);
    for (auto block : units) {
      auto it = open_.find(block);
      if (it == open_.end()) continue;  // a block we lost: its new holder releases it
      --units_;
      if (--it->second.units == 0) {
        releasing.push_back(block);
        releasing_.emplace(block, it->second.bytes);
        open_.erase(it);
      }
    }
  }
  // The release of these blocks is committed (or they were released at once): they are no longer tracked.
  void released(std::span<const std::int64_t> blocks) {
    std::lock_guard lock(mutex_);
    for (auto block : blocks) {
      if (auto it = open_.find(block); it != open_.end()) {
        bytes_ -= it->second.bytes;
        units_ -= it->second.units;
        open_.erase(it);
      }
      if (auto it = releasing_.find(block); it != releasing_.end()) {
        bytes_ -= it->second;
        releasing_.erase(it);
      }
      if (auto it = reclaimed_.find(block); it != reclaimed_.end()) {
        open_.emplace(block, it->second);  // claimed again meanwhile: open, with the new claim's units
        reclaimed_.erase(it);
      }
    }
  }
  // Every block tracked: the leases the heartbeat renews.
  [[nodiscard]] std::vector<std::int64_t> held() const {
    std::lock_guard lock(mutex_);
    std::vector<std::int64_t> out;
    out.reserve(open_.size() + releasing_.size());
    for (const auto& [block, b] : open_) out.push_back(block);
    for (const auto& [block, bytes] : releasing_) out.push_back(block);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  struct open_block {
    std::int64_t units = 0;  // still in the pipeline
    std::size_t bytes = 0;
  };
  std::unordered_map<std::int64_t, open_block> open_;
  // No unit left; release not yet committed (-> bytes).
  std::unordered_map<std::int64_t, std::size_t> releasing_;
  std::unordered_map<std::int64_t, open_block> reclaimed_;  // releasing, and claimed again since its commit
  std::size_t bytes_ = 0;
  std::int64_t units_ = 0;
};

}  // namespace dialer
