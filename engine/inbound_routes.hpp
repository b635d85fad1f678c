#pragma once
// Where an inbound call to one of our numbers goes: the number -> agent table that inbound routing reads from
// memory. It is filled and kept coherent with the database by a feed (adapters/postgres/pg_route_feed: a full
// load, then each number the database announces as changed, and a full load again after the feed's connection
// was lost). A number that is not here (unknown, released) or has no agent is not routed.
//
// Threading: any thread; readers (the HTTP I/O threads) share a lock, the feed's updates take it alone.

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/ids.hpp"

namespace dialer {

struct inbound_route {
  number_id number;
  account_id account;
  std::string e164;
  agent_id agent;           // invalid: the number is active but not assigned
  std::string agent_name;
  std::string handoff;      // the agent's: wss:// or https:// (media stream) or sip: / sips:
  bool managed = false;     // bought through the platform (a BYOC row only claims the number)
};

class route_table {
 public:
  // Every active number. Several active rows of one E.164 (BYOC claims beside each other or beside the managed
  // number): a managed row decides alone (its agent, or nowhere when it has none: a claim cannot take over a
  // number the platform sold); among BYOC rows the assigned one wins, and two assigned ones route nowhere, as the
  // call cannot say which account it is for.
  void replace_all(const std::vector<inbound_route>& routes);
  // The active rows of one E.164 as they are now (none: it is gone).
  void replace_number(const std::string& e164, const std::vector<inbound_route>& rows);
  // Shared, not copied: a reader holds the route as it was, whatever replaces it meanwhile.
  [[nodiscard]] std::shared_ptr<const inbound_route> find(const std::string& e164) const;
  [[nodiscard]] std::size_t size() const;
  // Whether a full load has been done (routing before it would reject every call).
  [[nodiscard]] bool loaded() const;

 private:
  static std::optional<inbound_route> pick(const std::vector<inbound_route>& rows);
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const inbound_route>> routes_;  // only numbers that route somewhere
  bool loaded_ = false;
};

}  // namespace dialer
