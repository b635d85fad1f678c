#pragma once
// PostgreSQL implementation of the engine_registry port: the engines table (registration and heartbeat), the
// campaigns to run, and the change feed: a trigger on campaigns announces every state change with
// pg_notify('dialer_campaigns', id) (migration 5), and this connection LISTENs on it (libpqxx listens again
// after a reconnection). changes() reads what arrived without blocking. Threading: one instance per thread;
// it owns its connection.

#include <memory>
#include <pqxx/connection>

#include <pqxx/notification>
#include <string>
#include <vector>
#include "adapters/postgres/pg_link.hpp"

#include "engine/ports/engine_registry.hpp"

namespace dialer::pg {

// The channel the campaigns trigger announces on.
inline constexpr const char* kCampaignChannel = "dialer_campaigns";

class pg_engine_registry final : public engine_registry {
 public:
  pg_engine_registry(pg_link link, std::string engine_id);
  ~pg_engine_registry() override;

  result<void> heartbeat(std::chrono::milliseconds lease) override;
  result<void> deregister() override;
  result<std::vector<campaign_brief>> campaigns(std::span<const campaign_id> only,
                                                std::span<const campaign_id> watched) override;
  result<std::vector<campaign_id>> changes() override;
  result<campaign_record> load(campaign_id id) override;
  result<std::vector<phone_number>> numbers_of(const campaign_record& campaign) override;
  result<campaign_state> transition(campaign_id id, std::span<const campaign_state> from,
                                    campaign_state to) override;

 private:
  class listener;
  // link_.fail(), and the listener dropped with a lost connection.
  [[nodiscard]] error lost(const std::string& what);
  // link_.get(), the listener dropped first when the connection is to be replaced.
  [[nodiscard]] pqxx::connection& conn();

  pg_link link_;
  std::string engine_id_;
  std::vector<campaign_id> heard_;         // filled by the listener during get_notifs()
  std::unique_ptr<listener> listener_;     // created by changes(), on each connection (declared after heard_)
  std::uint64_t listener_generation_ = 0;  // the connection it listens on
};

// Moves a campaign's state only from one of `from` (already at `to`: success), in one transaction that takes
// the campaign row FOR UPDATE (so that attempts being recorded for it, which hold it FOR KEY SHARE, commit
// first or see the change). started_at is set on the first run, finished_at on completion or cancellation.
// `account` invalid: whatever its account. conflict names the current state; not_found when there is no such
// campaign.
[[nodiscard]] result<campaign_state> transition_campaign(pqxx::connection& c, account_id account,
                                                         campaign_id id, std::span<const campaign_state> from,
                                                         campaign_state to);

}  // namespace dialer::pg
