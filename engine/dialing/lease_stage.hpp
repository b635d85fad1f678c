#pragma once
// The lease stage: keeps this engine's leases alive and its shares current, every heartbeat (and at once when
// a campaign starts or a cooling slot cools): the engine's registration, the leases of every contact block it
// holds, its share of each number's slots, of each campaign's concurrency cap and of each trunk's channels. It
// gives the scheduler exactly what the engine holds (the number table and the campaigns' caps), the carriers
// their channels, and tells the origination stage's gate when it last renewed. When renewals fail for half a
// lease, every capacity drops to zero until one succeeds: past its lease, another engine may own these slots.
//
// Thread: the lease thread alone runs it (run() until the engine stops). It owns its three database ports, so
// a slow claim or write-back never delays a heartbeat (every engine connection also has a statement timeout).

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/dialing/engine_context.hpp"

namespace dialer::dialing {

class lease_stage {
 public:
  lease_stage(engine_context& ctx, const engine_ports& ports);
  // Lease thread: until ctx.stopping.
  void run();
  // After run() returned (the caller joined the lease thread): gives every slot and the registration back (a
  // clean exit with no call left in flight).
  void release_all();

 private:
  bool renew();
  bool failed(const error& e);  // notes it; false
  // The trunks' channels (a carrier's max_channels), shared with the other engines that use each trunk.
  bool renew_channels(const std::vector<campaign_ptr>& campaigns, const std::vector<carrier_link*>& working);

  engine_context& ctx_;
  const engine_ports& ports_;
  std::unique_ptr<engine_registry> registry_;
  std::unique_ptr<contact_claims> claims_;
  std::unique_ptr<slot_leases> leases_;
  std::set<std::int64_t> leased_campaigns_;  // campaigns whose slots this engine may still hold
  std::chrono::nanoseconds cooled_at_ = clock::never;
  bool had_accounts_ = false;  // shared carrier accounts were registered: an empty list must unregister them
  // Every link with a channel limit this engine used, by account identity, until its channels are given back
  // (links live until the engine stops).
  std::map<std::string, std::vector<carrier_link*>> trunks_;
};

}  // namespace dialer::dialing
