#include "engine/inbound_routes.hpp"

#include <mutex>

namespace dialer {

std::optional<inbound_route> route_table::pick(const std::vector<inbound_route>& rows) {
  for (const auto& r : rows)
    if (r.managed) return r.agent ? std::optional<inbound_route>(r) : std::nullopt;
  const inbound_route* chosen = nullptr;
  for (const auto& r : rows) {
    if (!r.agent) continue;
    if (chosen) return std::nullopt;  // two accounts' agents claim it
    chosen = &r;
  }
  if (!chosen) return std::nullopt;
  return *chosen;
}

void route_table::replace_all(const std::vector<inbound_route>& routes) {
  std::unordered_map<std::string, std::vector<inbound_route>> by_number;
  for (const auto& r : routes) by_number[r.e164].push_back(r);
  std::unordered_map<std::string, std::shared_ptr<const inbound_route>> next;
  next.reserve(by_number.size());
  for (const auto& [e164, rows] : by_number)
    if (auto r = pick(rows)) next.emplace(e164, std::make_shared<const inbound_route>(std::move(*r)));
  std::unique_lock lock(mutex_);
  routes_.swap(next);
  loaded_ = true;
}

void route_table::replace_number(const std::string& e164, const std::vector<inbound_route>& rows) {
  auto r = pick(rows);
  std::unique_lock lock(mutex_);
  if (r)
    routes_.insert_or_assign(e164, std::make_shared<const inbound_route>(std::move(*r)));
  else
    routes_.erase(e164);
}

std::shared_ptr<const inbound_route> route_table::find(const std::string& e164) const {
  std::shared_lock lock(mutex_);
  auto it = routes_.find(e164);
  if (it == routes_.end()) return nullptr;
  return it->second;
}

std::size_t route_table::size() const {
  std::shared_lock lock(mutex_);
  return routes_.size();
}

bool route_table::loaded() const {
  std::shared_lock lock(mutex_);
  return loaded_;
}

}  // namespace dialer
