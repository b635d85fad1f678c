#pragma once
// PostgreSQL implementation of the slot_leases port. A number's concurrency: number_slots, one leased row per
// slot, shared among the live engines that use the number (engine_numbers); number_slots.freed_at is when a
// slot's holder let it go, and slots freed less than `quiet` ago are reported cooling. A campaign's
// concurrency: campaign_shares, one leased row per (campaign, engine) with the count it holds, shared among
// the live engines that run it (rows that want it), read and written for every campaign at once. A SIP trunk's
// channels: carrier_channel_shares, the same way per (identity, engine). Never is a slot in use released.
// Threading: one instance per thread; it owns its connection.

#include <memory>
#include <pqxx/connection>
#include <string>

#include "adapters/postgres/pg_link.hpp"
#include "engine/ports/slot_leases.hpp"

namespace dialer::pg {

class pg_slot_leases final : public slot_leases {
 public:
  pg_slot_leases(pg_link link, std::string engine_id)
      : link_(std::move(link)), engine_id_(std::move(engine_id)) {}

  result<std::vector<slot_lease>> lease_numbers(std::span<const number_lease_request> numbers,
                                                std::chrono::milliseconds lease,
                                                std::chrono::milliseconds quiet) override;
  result<std::vector<slot_lease>> lease_campaigns(std::span<const campaign_lease_request> campaigns,
                                                  std::chrono::milliseconds lease) override;
  result<std::vector<account_share>> lease_accounts(std::span<const std::string> identities,
                                                    std::chrono::milliseconds lease,
                                                    std::chrono::milliseconds quiet) override;
  result<std::vector<slot_lease>> lease_channels(std::span<const channel_lease_request> trunks,
                                                 std::chrono::milliseconds lease) override;
  result<void> release_all() override;

 private:
  pg_link link_;
  std::string engine_id_;
};

}  // namespace dialer::pg
