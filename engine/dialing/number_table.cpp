#include "engine/dialing/number_table.hpp"

#include <algorithm>

#include "engine/rules/nanp.hpp"

namespace dialer::dialing {

result<void> number_table::use(const phone_number& n, carrier_account_id account) {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.id.value());
  if (it == numbers_.end()) {
    sched::number_config c;
    c.id = n.id;
    c.e164 = n.e164;
    c.agent = n.agent;
    c.agent_name = n.agent_name;
    c.carrier_account = account;
    c.max_concurrent_calls = 0;  // until this engine leases slots
    c.max_cps = n.max_cps > 0 ? n.max_cps : std::numeric_limits<double>::infinity();
    const int npa = rules::nanp_npa_of(n.e164);
    c.area_code = static_cast<std::uint16_t>(npa > 0 ? npa : 0);
    const auto* area = npa > 0 ? rules::find_nanp_area(npa) : nullptr;
    c.region = area ? std::string(area->region) : n.country;
    if (auto r = scheduler_.add_number(c); !r) return r;
    it = numbers_.emplace(n.id.value(), entry{n, 0, 0, 0, 0, 0}).first;
  } else if (it->second.info.agent != n.agent) {
    (void)scheduler_.assign_number(n.id, n.agent, n.agent_name);
  }
  it->second.info = n;
  ++it->second.users;
  return ok();
}

void number_table::unuse(number_id n) {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.value());
  if (it == numbers_.end() || it->second.users == 0) return;
  if (--it->second.users == 0) {
    // No campaign of this engine dials on it any more: no new hand-out, and its slots go as its calls end.
    it->second.usable = 0;
    apply_locked(n, it->second);
  }
}

void number_table::refresh(const phone_number& n) {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.id.value());
  if (it == numbers_.end()) return;
  if (it->second.info.agent != n.agent) (void)scheduler_.assign_number(n.id, n.agent, n.agent_name);
  const int users = it->second.users;
  it->second.info = n;
  it->second.users = users;
}

std::vector<number_lease_request> number_table::lease_requests(const sched::scheduler_stats& stats) {
  std::unordered_map<std::int64_t, int> in_flight;
  for (const auto& s : stats.numbers) in_flight[s.id.value()] = s.in_flight;
  std::lock_guard lock(mutex_);
  std::vector<number_lease_request> out;
  out.reserve(numbers_.size());
  for (auto it = numbers_.begin(); it != numbers_.end();) {
    const auto& e = it->second;
    const int busy = in_flight[it->first] + e.recovered;
    if (e.users == 0 && busy == 0 && e.held == 0) {
      ++it;  // dormant: registered with the scheduler (it cannot forget a number) with no slots; not leased
      continue;
    }
    number_lease_request r;
    r.number = number_id{it->first};
    r.agent = e.info.agent;
    r.wanted = e.users > 0;
    // In use: calls in flight here and recovered calls of a dead engine that may still be talking; or, when
    // more, the slots the scheduler may fill now (it hands out calls up to its limit between this reading and
    // the release).
    r.in_use = std::max(busy, e.usable);
    out.push_back(r);
    ++it;
  }
  // In id order: two engines leasing the same new numbers insert and lock their slot rows in the same order.
  std::sort(out.begin(), out.end(),
            [](const number_lease_request& a, const number_lease_request& b) { return a.number < b.number; });
  return out;
}

std::optional<std::chrono::milliseconds> number_table::apply(std::span<const slot_lease> leases) {
  std::optional<std::chrono::milliseconds> cooled_in;
  std::lock_guard lock(mutex_);
  for (const auto& l : leases) {
    auto it = numbers_.find(l.number.value());
    if (it == numbers_.end()) continue;
    auto& e = it->second;
    e.held = l.held;
    // Slots held above the fair share (kept only because their calls were still running) take no new calls:
    // they drain and the next renewal hands them to the other engines. Cooling slots take none either, until
    // the renewal after they cooled. A number no campaign here uses takes none at all.
    e.usable = e.users > 0 ? std::max(0, std::min(l.held - l.cooling, l.target)) : 0;
    // CPS share in proportion to the usable slots, so that the engines together never exceed the number's
    // cap.
    const double share = l.max > 0 ? e.info.max_cps * e.usable / l.max : 0;
    e.cps = share > 0 ? share : e.info.max_cps;
    if (l.cooling > 0) cooled_in = cooled_in ? std::min(*cooled_in, l.cooled_in) : l.cooled_in;
    apply_locked(l.number, e);
  }
  return cooled_in;
}

void number_table::drop_capacity() {
  std::lock_guard lock(mutex_);
  for (auto& [id, e] : numbers_) {
    e.usable = 0;
    apply_locked(number_id{id}, e);
  }
}

bool number_table::hold_recovered(number_id n, int delta) {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.value());
  if (it == numbers_.end()) return false;
  it->second.recovered = std::max(0, it->second.recovered + delta);
  apply_locked(n, it->second);
  return true;
}

void number_table::out_of_rotation(number_id n) {
  (void)scheduler_.set_number_rotation(n, false);
  std::lock_guard lock(mutex_);
  out_of_rotation_.emplace(n.value(), std::nullopt);  // stamped by the control stage, which has the clock
}

void number_table::restore_rotation(std::chrono::nanoseconds now, std::chrono::nanoseconds cooloff) {
  std::vector<number_id> back;
  {
    std::lock_guard lock(mutex_);
    for (auto it = out_of_rotation_.begin(); it != out_of_rotation_.end();) {
      if (!it->second) it->second = now;
      if (now - *it->second >= cooloff) {
        back.emplace_back(it->first);
        it = out_of_rotation_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto n : back) (void)scheduler_.set_number_rotation(n, true);
}

bool number_table::usable(number_id n) const {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.value());
  return it != numbers_.end() && it->second.usable > 0;
}

bool number_table::usable_for(number_id n, agent_id agent) const {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.value());
  return it != numbers_.end() && it->second.usable > 0 && it->second.info.agent == agent;
}

double number_table::cps(number_id n) const {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.value());
  return it == numbers_.end() ? 0 : it->second.cps;
}

int number_table::usable_slots(std::span<const number_id> numbers) const {
  std::lock_guard lock(mutex_);
  int total = 0;
  for (auto n : numbers)
    if (auto it = numbers_.find(n.value()); it != numbers_.end())
      total += std::max(0, it->second.usable - it->second.recovered);
  return total;
}

std::optional<phone_number> number_table::info(number_id n) const {
  std::lock_guard lock(mutex_);
  auto it = numbers_.find(n.value());
  if (it == numbers_.end()) return std::nullopt;
  return it->second.info;
}

std::vector<number_id> number_table::known() const {
  std::lock_guard lock(mutex_);
  std::vector<number_id> out;
  out.reserve(numbers_.size());
  for (const auto& [id, e] : numbers_) out.emplace_back(id);
  return out;
}

std::vector<number_usage> number_table::usage(std::span<const number_id> numbers,
                                              const sched::scheduler_stats& stats) const {
  std::vector<number_usage> out;
  std::lock_guard lock(mutex_);
  for (auto n : numbers) {
    auto it = numbers_.find(n.value());
    if (it == numbers_.end()) continue;
    number_usage u;
    u.id = n;
    u.e164 = it->second.info.e164;
    u.max_concurrent_calls = it->second.info.max_concurrent_calls;
    u.leased = it->second.held;
    for (const auto& s : stats.numbers) {
      if (s.id != n) continue;
      u.in_flight = s.in_flight;
      u.peak_in_flight = s.peak_in_flight;
      u.calls = s.handouts;
    }
    out.push_back(u);
  }
  return out;
}

void number_table::apply_locked(number_id id, entry& e) {
  (void)scheduler_.set_number_limits(id, std::max(0, e.usable - e.recovered),
                                     e.cps > 0 ? e.cps : std::numeric_limits<double>::infinity());
}

}  // namespace dialer::dialing
