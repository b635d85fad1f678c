#pragma once
// An in-memory database for dialing-engine tests, behind the engine's four ports (contact_claims,
// attempt_journal, slot_leases, engine_registry): the same contract as adapters/postgres (claims of contact
// blocks under leases, attempts recorded before they are placed, batched write-back, slot leases shared by
// the engines that use a number, cancel, a change feed), with time from the test's clock. Several engines can
// share one database, each through its own engine id, and one database holds several campaigns. Faults are
// injected per call: a stall (the call waits on the clock, as a hung server would), a failure (the database
// is away), or a lost commit acknowledgement (the change is applied, the caller is told it failed).
//
// Threading: memory_database is thread-safe (one mutex); a port instance is used by one thread at a time,
// like a real connection. Stalls wait through the clock port, so a manual clock sees the stalled thread as
// idle.

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/dialing/engine_options.hpp"
#include "engine/ports/attempt_journal.hpp"
#include "engine/ports/clock.hpp"
#include "engine/ports/contact_claims.hpp"
#include "engine/ports/engine_registry.hpp"
#include "engine/ports/slot_leases.hpp"

namespace dialer::testing {

// Which port call a fault applies to.
enum class store_call : std::uint8_t {
  // engine_registry
  load,
  campaigns,
  changes,
  numbers_of,
  transition,
  heartbeat,
  deregister,
  // contact_claims
  claim,
  renew,
  progress,
  cancel_pending,
  // attempt_journal
  record_attempts,
  write_back,
  // slot_leases
  lease_numbers,
  lease_campaigns,
  release_all
};

struct fault {
  std::chrono::nanoseconds stall{0};  // wait this long (clock time) before doing anything
  bool fail = false;                  // then fail with errc::unavailable, changing nothing
  bool lose_ack = false;              // then apply the change but report errc::unavailable
  int times = -1;                     // on this many calls (-1: every call until cleared)
  std::function<void()> before;  // run first (outside the database lock): what happens meanwhile elsewhere
};

class memory_database {
 public:
  struct contact_row {
    claimed_contact data;  // id, row, e164, timezone, variables
    std::string state = "pending";
    int attempts = 0;
    timestamp next_attempt_at{};
    std::string reason;
    number_id sticky;
  };
  struct attempt_row {
    attempt_id id;
    contact_id contact;
    int attempt_no = 0;
    number_id number;
    std::string engine;
    std::string carrier_call_id;
    std::optional<call_event> outcome;
  };
  struct block_row {
    std::int64_t first = 0, last = 0;
    std::string claimed_by;
    timestamp lease_until{};
  };
  struct slot_row {
    std::string engine;
    timestamp lease_until{};
    std::optional<timestamp> freed_at;  // when its last holder let it go (released, or its lease ran out)
  };

  explicit memory_database(const clock& clk) : clock_(clk) {}

  // Setup (test thread, before any runner starts).
  // Returns the campaign as stored (its contacts' id range and blocks filled in).
  campaign_record add_campaign(campaign_record c, const std::vector<claimed_contact>& contacts) {
    std::lock_guard g(mutex_);
    c.imported = true;
    c.import_accepted = static_cast<int>(contacts.size());
    c.blocks.first = contacts.empty() ? 0 : contacts.front().id.value();
    c.blocks.last = contacts.empty() ? 0 : contacts.back().id.value();
    if (c.blocks.size <= 0) c.blocks.size = 16;
    for (std::int64_t b = c.blocks.first; b > 0 && b <= c.blocks.last; b += c.blocks.size)
      blocks_[c.id.value()].push_back({b, std::min(c.blocks.last, b + c.blocks.size - 1), {}, {}});
    for (const auto& k : contacts)
      contacts_[k.id.value()] = contact_row{k, "pending", k.attempts, {}, {}, {}};
    campaigns_[c.id.value()] = c;
    return c;
  }
  void add_number(const phone_number& n) {
    std::lock_guard g(mutex_);
    numbers_[n.id.value()] = n;
  }
  // Any thread: the account's do-not-call list, and the number inventory as an operator changes it.
  void add_do_not_call(const std::string& e164) {
    std::lock_guard g(mutex_);
    dnc_.insert(e164);
  }
  void set_number_max(number_id n, int max) {
    std::lock_guard g(mutex_);
    numbers_[n.value()].max_concurrent_calls = max;
  }
  // The number now belongs to another agent (or none), as after `numbers assign --reassign` or `unassign`.
  void assign_number(number_id n, agent_id agent) {
    std::lock_guard g(mutex_);
    numbers_[n.value()].agent = agent;
  }
  // The number is released (`dialer numbers release`): no agent, status released.
  void release_number(number_id n) {
    std::lock_guard g(mutex_);
    auto& num = numbers_[n.value()];
    num.agent = agent_id{};
    num.status = number_status::released;
    num.released_at = now();
  }
  // A stored attempt without outcome, as a crashed engine leaves it (its block's lease lapsed long ago).
  void add_open_attempt(contact_id c, int attempt_no, number_id n, std::string carrier_call_id,
                        const std::string& dead_engine) {
    std::lock_guard g(mutex_);
    const auto id = attempt_of(c, attempt_no);
    attempts_[id.value()] = attempt_row{id, c, attempt_no, n, dead_engine, std::move(carrier_call_id), {}};
    for (auto& [campaign, blocks] : blocks_)
      for (auto& b : blocks)
        if (c.value() >= b.first && c.value() <= b.last) {
          b.claimed_by = dead_engine;
          b.lease_until = clock_.wall() - std::chrono::seconds(1);
        }
  }

  // `f` applies to the calls of `engine` only (empty: of every engine).
  void set_fault(store_call call, fault f, std::string engine = {}) {
    std::lock_guard g(mutex_);
    faults_[call] = f;
    fault_engine_[call] = std::move(engine);
  }
  void clear_faults() {
    std::lock_guard g(mutex_);
    faults_.clear();
  }

  // Reads for assertions. Any thread.
  std::vector<contact_row> contacts() const {
    std::lock_guard g(mutex_);
    std::vector<contact_row> out;
    for (const auto& [id, c] : contacts_) out.push_back(c);
    return out;
  }
  std::vector<attempt_row> attempts() const {
    std::lock_guard g(mutex_);
    std::vector<attempt_row> out;
    for (const auto& [id, a] : attempts_) out.push_back(a);
    return out;
  }
  campaign_state state_of(campaign_id id) const {
    std::lock_guard g(mutex_);
    return campaigns_.at(id.value()).state;
  }
  // When the last of `engine`'s slot leases on number `n` runs out (nullopt: it holds none).
  std::optional<timestamp> lease_until(number_id n, const std::string& engine) const {
    std::lock_guard g(mutex_);
    std::optional<timestamp> out;
    if (auto it = slots_.find(n.value()); it != slots_.end())
      for (const auto& s : it->second)
        if (s.engine == engine) out = std::max(out.value_or(timestamp::min()), s.lease_until);
    return out;
  }
  // As another process would (`dialer campaigns pause` ...). `announce`: on the change feed, as the trigger
  // does (false: the engines learn it only from a full read, as when a notification is lost).
  void set_state(campaign_id id, campaign_state s, bool announce = true) {
    std::lock_guard g(mutex_);
    campaigns_.at(id.value()).state = s;
    if (announce) announce_locked(id);
  }
  // The campaign's settings as stored (what an engine loads when it takes the campaign on).
  void set_spec(campaign_id id, const campaign_spec& spec) {
    std::lock_guard g(mutex_);
    campaigns_.at(id.value()).spec = spec;
  }
  // The campaign's contacts that no engine holds are cancelled, as `dialer campaigns cancel` does after its
  // transition.
  std::int64_t cancel_waiting(campaign_id id);

 private:
  friend class memory_engine_port;
  friend class memory_contact_claims;
  friend class memory_attempt_journal;
  friend class memory_slot_leases;
  friend class memory_engine_registry;

  void announce_locked(campaign_id id) {
    for (auto& [engine, heard] : heard_) heard.push_back(id);
  }

  timestamp now() const { return clock_.wall(); }
  static bool terminal(const std::string& s) { return s != "pending"; }
  bool held_by(const block_row& b, const std::string& engine) const { return b.claimed_by == engine; }
  block_row* block_of(campaign_id id, contact_id c) {
    for (auto& b : blocks_[id.value()])
      if (c.value() >= b.first && c.value() <= b.last) return &b;
    return nullptr;
  }
  bool has_open_attempt(const contact_row& c) const {
    for (int n = c.attempts + 1; n <= kMaxAttemptNo; ++n)
      if (attempts_.contains(attempt_of(c.data.id, n).value())) return true;
    return false;
  }
  // Contacts an engine has claimed and not yet written back: what it must hold in memory meanwhile.
  void hand_out(const std::string& engine, const claimed_contact& c) {
    auto& held = held_[engine];
    const auto bytes = c.e164.size() + c.timezone.size() + c.variables.size();
    if (held.emplace(c.id.value(), bytes).second) held_bytes_[engine] += bytes;
    peak_held_bytes_[engine] = std::max(peak_held_bytes_[engine], held_bytes_[engine]);
  }
  void written_back(const std::string& engine, contact_id c) {
    auto& held = held_[engine];
    if (auto it = held.find(c.value()); it != held.end()) {
      held_bytes_[engine] -= it->second;
      held.erase(it);
    }
  }

 public:
  // The most bytes of contact data (phone, time zone, variables) `engine` had claimed and not yet written
  // back.
  std::size_t peak_held_bytes(const std::string& engine) const {
    std::lock_guard g(mutex_);
    auto it = peak_held_bytes_.find(engine);
    return it == peak_held_bytes_.end() ? 0 : it->second;
  }

 private:
  int live_engines_using(number_id n) {
    // Engines whose registration is live and that hold or asked for this number's slots.
    std::set<std::string> live;
    for (const auto& [engine, expires] : engines_)
      if (expires > now() && users_[n.value()].contains(engine)) live.insert(engine);
    return std::max<int>(1, static_cast<int>(live.size()));
  }

  const clock& clock_;
  mutable std::mutex mutex_;
  std::map<std::int64_t, campaign_record> campaigns_;
  std::map<std::int64_t, std::vector<block_row>> blocks_;
  std::map<std::int64_t, contact_row> contacts_;
  std::map<std::int64_t, attempt_row> attempts_;
  std::map<std::int64_t, phone_number> numbers_;
  std::map<std::int64_t, std::vector<slot_row>> slots_;
  std::map<std::int64_t, std::set<std::string>> users_;           // number -> engines that lease it
  std::map<std::int64_t, std::vector<slot_row>> campaign_slots_;  // the units of each campaign's concurrency
  std::map<std::int64_t, std::set<std::string>> runners_;         // campaign -> engines that run it
  std::map<std::string, timestamp> engines_;                      // engine -> registration expiry
  std::set<std::string> dnc_;
  std::map<store_call, fault> faults_;
  std::map<store_call, std::string> fault_engine_;
  std::map<std::string, std::map<std::int64_t, std::size_t>> held_;  // engine -> contact -> bytes
  std::map<std::string, std::size_t> held_bytes_, peak_held_bytes_;
  std::map<std::string, std::vector<campaign_id>> heard_;  // change feed: engine -> announced, not yet read
};

// What every memory port shares: the database, the engine it speaks for, and fault injection.
class memory_engine_port {
 public:
  memory_engine_port(memory_database& db, std::string engine) : db_(db), engine_(std::move(engine)) {}
  [[nodiscard]] const std::string& engine() const noexcept { return engine_; }

 protected:
  template <class Fn>
  auto call(store_call which, Fn&& fn) -> decltype(fn()) {
    fault f;
    {
      std::lock_guard g(db_.mutex_);
      const auto& only = db_.fault_engine_[which];
      if (auto it = db_.faults_.find(which);
          it != db_.faults_.end() && it->second.times != 0 && (only.empty() || only == engine_)) {
        f = it->second;
        if (it->second.times > 0) --it->second.times;
      }
    }
    if (f.before) f.before();
    if (f.stall > std::chrono::nanoseconds(0)) db_.clock_.sleep_for(f.stall);
    if (f.fail) return make_error(errc::unavailable, "memory database: unavailable (injected)");
    std::lock_guard g(db_.mutex_);
    auto r = fn();
    if (f.lose_ack && r)
      return make_error(errc::unavailable, "memory database: commit acknowledgement lost (injected)");
    return r;
  }

  memory_database& db_;
  std::string engine_;
};

// contact_claims over the memory database.
class memory_contact_claims final : public contact_claims, memory_engine_port {
 public:
  using memory_engine_port::memory_engine_port;

  result<std::vector<claim_batch>> claim(std::span<const claim_request> requests,
                                         std::chrono::milliseconds lease) override {
    return call(store_call::claim, [&]() -> result<std::vector<claim_batch>> {
      std::vector<claim_batch> all;
      for (const auto& request : requests) all.push_back(claim_one(request.campaign, request.max, lease));
      return all;
    });
  }

 private:
  claim_batch claim_one(campaign_id id, int max, std::chrono::milliseconds lease) {
    {
      claim_batch out;
      out.campaign = id;
      const auto now = db_.now();
      int taken = 0;
      // As in PostgreSQL: only while the campaign runs.
      if (db_.campaigns_.at(id.value()).state != campaign_state::running) return out;
      for (auto& b : db_.blocks_[id.value()]) {
        if (taken >= max) break;
        if (!b.claimed_by.empty() && b.lease_until >= now) continue;
        std::vector<const memory_database::contact_row*> due;
        std::vector<open_attempt> open;
        const bool recovered = !b.claimed_by.empty();
        for (auto it = db_.contacts_.lower_bound(b.first); it != db_.contacts_.end() && it->first <= b.last;
             ++it) {
          const auto& c = it->second;
          if (c.state != "pending") continue;
          if (recovered && db_.has_open_attempt(c)) {
            for (int n = c.attempts + 1; n <= kMaxAttemptNo; ++n) {
              auto a = db_.attempts_.find(attempt_of(c.data.id, n).value());
              if (a == db_.attempts_.end()) continue;
              open_attempt o;
              o.attempt = a->second.id;
              o.contact = c.data.id;
              o.attempt_no = n;
              o.number = a->second.number;
              o.carrier_call_id = a->second.carrier_call_id;
              o.stored = a->second.outcome;
              open.push_back(std::move(o));
            }
            continue;
          }
          if (c.next_attempt_at <= now) due.push_back(&c);
        }
        if (due.empty() && open.empty()) continue;
        if (taken > 0 && taken + static_cast<int>(due.size()) > max) break;
        b.claimed_by = engine_;
        b.lease_until = now + lease;
        out.blocks.push_back({b.first, b.last, recovered});
        for (auto& o : open) out.open.push_back(std::move(o));
        for (const auto* c : due) {
          if (taken >= max) break;
          claimed_contact k = c->data;
          k.attempts = c->attempts;
          k.sticky = c->sticky;
          k.do_not_call = db_.dnc_.contains(k.e164);
          db_.hand_out(engine_, k);
          out.contacts.push_back(std::move(k));
          ++taken;
        }
      }
      if (out.blocks.empty()) {
        // Nothing claimable: the earliest due contact in a block nobody holds.
        for (const auto& b : db_.blocks_[id.value()]) {
          if (!b.claimed_by.empty()) continue;
          for (auto it = db_.contacts_.lower_bound(b.first); it != db_.contacts_.end() && it->first <= b.last;
               ++it)
            if (it->second.state == "pending" &&
                (!out.next_due || it->second.next_attempt_at < *out.next_due))
              out.next_due = it->second.next_attempt_at;
        }
      }
      return out;
    }
  }

 public:
  result<std::int64_t> cancel_orphaned() override {
    std::vector<campaign_id> cancelled;
    {
      std::lock_guard g(db_.mutex_);
      for (const auto& [id, c] : db_.campaigns_)
        if (c.state == campaign_state::cancelled) cancelled.push_back(c.id);
    }
    std::int64_t n = 0;
    for (auto id : cancelled) {
      auto r = cancel_pending(id);
      if (!r) return r;
      n += *r;
    }
    return n;
  }

  result<void> renew(std::span<const held_blocks> held, std::chrono::milliseconds lease) override {
    return call(store_call::renew, [&]() -> result<void> {
      for (const auto& h : held)
        for (auto& b : db_.blocks_[h.campaign.value()])
          if (b.claimed_by == engine_ &&
              std::find(h.blocks.begin(), h.blocks.end(), b.first) != h.blocks.end())
            b.lease_until = db_.now() + lease;
      return ok();
    });
  }

  result<campaign_progress> progress(campaign_id id) override {
    return call(store_call::progress, [&]() -> result<campaign_progress> {
      campaign_progress p;
      for (const auto& b : db_.blocks_[id.value()]) {
        for (auto it = db_.contacts_.lower_bound(b.first); it != db_.contacts_.end() && it->first <= b.last;
             ++it) {
          const auto& c = it->second;
          ++p.total;
          if (c.state == "pending") {
            if (b.claimed_by.empty()) {
              ++p.pending;
              if (!p.next_due || c.next_attempt_at < *p.next_due) p.next_due = c.next_attempt_at;
            } else {
              ++p.in_progress;
            }
          } else if (c.state == "done") {
            ++p.done;
          } else if (c.state == "cancelled") {
            ++p.cancelled;
          } else if (c.state == "do_not_call") {
            ++p.do_not_call;
          } else if (c.state == "invalid") {
            ++p.invalid;
          }
        }
      }
      p.attempts = static_cast<std::int64_t>(db_.attempts_.size());
      return p;
    });
  }

  result<std::int64_t> cancel_pending(campaign_id id) override {
    return call(store_call::cancel_pending, [&]() -> result<std::int64_t> {
      std::int64_t n = 0;
      const auto now = db_.now();
      for (auto& b : db_.blocks_[id.value()]) {
        const bool lapsed = !b.claimed_by.empty() && b.lease_until < now;
        if (!b.claimed_by.empty() && !lapsed) continue;
        bool left = false;
        for (auto it = db_.contacts_.lower_bound(b.first); it != db_.contacts_.end() && it->first <= b.last;
             ++it) {
          auto& c = it->second;
          if (c.state != "pending") continue;
          if (lapsed && db_.has_open_attempt(c)) {
            left = true;
            continue;
          }
          c.state = "cancelled";
          c.reason = "cancelled";
          ++n;
        }
        if (lapsed && !left) b.claimed_by.clear();
      }
      return n;
    });
  }
};

// attempt_journal over the memory database.
class memory_attempt_journal final : public attempt_journal, memory_engine_port {
 public:
  using memory_engine_port::memory_engine_port;

  result<void> record(std::span<attempt_to_record> attempts) override {
    return call(store_call::record_attempts, [&]() -> result<void> {
      for (auto& a : attempts) {
        const auto id = a.campaign;
        const bool running = db_.campaigns_.at(id.value()).state == campaign_state::running;
        a.id = attempt_id{};
        a.recorded_before = false;
        a.do_not_call = false;
        auto* b = db_.block_of(id, a.contact);
        if (!running || !b || b->claimed_by != engine_) continue;
        if (db_.dnc_.contains(a.callee)) {
          a.do_not_call = true;
          continue;
        }
        // As in PostgreSQL: only on a caller ID where this engine still holds a live slot lease (a decision
        // taken on a slot whose lease lapsed since is not recorded, so it is never placed).
        const auto& slots = db_.slots_[a.number.value()];
        const auto now = db_.now();
        if (std::none_of(slots.begin(), slots.end(), [&](const memory_database::slot_row& s) {
              return s.engine == engine_ && s.lease_until > now;
            }))
          continue;
        const auto key = attempt_of(a.contact, a.attempt_no);
        if (auto it = db_.attempts_.find(key.value()); it != db_.attempts_.end()) {
          const auto& row = it->second;
          if (row.engine == engine_ && !row.outcome && row.carrier_call_id.empty()) {
            a.id = key;  // ours, after a lost acknowledgement: never placed
            continue;
          }
          a.recorded_before = true;
          continue;
        }
        db_.attempts_[key.value()] =
            memory_database::attempt_row{key, a.contact, a.attempt_no, a.number, engine_, {}, {}};
        a.id = key;
      }
      return ok();
    });
  }

  result<void> write_back(const write_batch& batch) override {
    return call(store_call::write_back, [&]() -> result<void> {
      for (const auto& o : batch.outcomes) db_.written_back(engine_, o.contact);
      for (const auto& r : batch.returns) db_.written_back(engine_, r.contact);
      for (const auto& f : batch.finals) db_.written_back(engine_, f.contact);
      const auto ours = [&](campaign_id id, contact_id c) {
        auto* b = db_.block_of(id, c);
        return b && b->claimed_by == engine_;
      };
      for (const auto& o : batch.outcomes) {
        auto a = db_.attempts_.find(o.attempt.value());
        if (a != db_.attempts_.end() && !a->second.outcome) {
          a->second.outcome = o.event;
          a->second.carrier_call_id = o.event.carrier_call_id;
        }
        if (!ours(o.campaign, o.contact)) continue;
        auto& c = db_.contacts_.at(o.contact.value());
        if (c.state != "pending" || c.attempts != o.attempt_no - 1) continue;
        c.state = std::string(rules::to_string(o.next_state));
        c.attempts = o.attempt_no;
        if (o.next_attempt_at) c.next_attempt_at = *o.next_attempt_at;
        c.reason = o.pending_reason;
        if (!c.sticky) c.sticky = o.number;
      }
      for (const auto& a : batch.accepted) {
        auto it = db_.attempts_.find(a.attempt.value());
        if (it != db_.attempts_.end() && !it->second.outcome) it->second.carrier_call_id = a.carrier_call_id;
      }
      for (const auto& r : batch.returns) {
        if (!ours(r.campaign, r.contact)) continue;
        if (r.refused_attempt) db_.attempts_.erase(r.refused_attempt.value());
        auto& c = db_.contacts_.at(r.contact.value());
        if (c.state != "pending" || c.attempts != r.attempts) continue;
        c.next_attempt_at = r.next_attempt_at;
        c.reason = r.reason;
      }
      for (const auto& f : batch.finals) {
        if (!ours(f.campaign, f.contact)) continue;
        auto& c = db_.contacts_.at(f.contact.value());
        if (c.state != "pending" || c.attempts != f.attempts) continue;
        c.state = std::string(rules::to_string(f.state));
        c.reason = f.reason;
      }
      for (const auto& rel : batch.release)
        for (auto& b : db_.blocks_[rel.campaign.value()])
          if (b.first == rel.first && b.claimed_by == engine_) {
            b.claimed_by.clear();
            // As in PostgreSQL: a block released after its campaign was cancelled has its waiting contacts
            // cancelled.
            if (db_.campaigns_.at(rel.campaign.value()).state != campaign_state::cancelled) continue;
            for (auto it = db_.contacts_.lower_bound(b.first);
                 it != db_.contacts_.end() && it->first <= b.last; ++it)
              if (it->second.state == "pending") {
                it->second.state = "cancelled";
                it->second.reason = "cancelled";
              }
          }
      return ok();
    });
  }
};

// slot_leases over the memory database.
class memory_slot_leases final : public slot_leases, memory_engine_port {
 public:
  using memory_engine_port::memory_engine_port;

  result<std::vector<slot_lease>> lease_numbers(std::span<const number_lease_request> numbers,
                                                std::chrono::milliseconds lease,
                                                std::chrono::milliseconds quiet) override {
    return call(store_call::lease_numbers, [&]() -> result<std::vector<slot_lease>> {
      const auto now = db_.now();
      db_.engines_[engine_] = now + lease;
      std::vector<slot_lease> out;
      for (std::size_t i = 0; i < numbers.size(); ++i) {
        const auto n = numbers[i].number;
        auto& slots = db_.slots_[n.value()];
        const auto& num = db_.numbers_[n.value()];
        const int max = num.status == number_status::active && num.agent == numbers[i].agent
                            ? num.max_concurrent_calls
                            : 0;
        // As in PostgreSQL: an engine counts in the share of the numbers it wants and may use, and only
        // those.
        if (max > 0 && numbers[i].wanted)
          db_.users_[n.value()].insert(engine_);
        else
          db_.users_[n.value()].erase(engine_);
        if (static_cast<int>(slots.size()) < max) slots.resize(static_cast<std::size_t>(max));
        // Slots above a lowered limit go once nobody holds them.
        while (static_cast<int>(slots.size()) > max &&
               (slots.back().engine.empty() || slots.back().lease_until < now))
          slots.pop_back();
        const auto cooling = [&](const memory_database::slot_row& s) {
          return s.freed_at && *s.freed_at + quiet > now;
        };
        int held = 0;
        for (auto& s : slots)
          if (s.engine == engine_) {
            s.lease_until = now + lease;
            ++held;
          }
        const int live = db_.live_engines_using(n);
        const int target = max == 0 || !numbers[i].wanted ? 0 : (max + live - 1) / live;
        const int busy = numbers[i].in_use;
        const int keep = std::max(target, busy);
        // As in PostgreSQL: cooling slots go first (they carry no call), then the highest; cold slots are
        // taken before recently freed ones.
        std::vector<std::size_t> order(slots.size());
        for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
          if (cooling(slots[x]) != cooling(slots[y])) return cooling(slots[x]);
          return x > y;
        });
        for (auto k : order) {
          if (held <= keep) break;
          auto& s = slots[k];
          if (s.engine == engine_) {
            s.engine.clear();
            s.freed_at = now;
            --held;
          }
        }
        const auto let_go_at = [&](const memory_database::slot_row& s) {
          return !s.engine.empty() ? s.lease_until : s.freed_at.value_or(timestamp::min());
        };
        std::vector<std::size_t> cold(static_cast<std::size_t>(std::max(max, 0)));
        for (std::size_t k = 0; k < cold.size(); ++k) cold[k] = k;
        std::stable_sort(cold.begin(), cold.end(), [&](std::size_t x, std::size_t y) {
          return let_go_at(slots[x]) < let_go_at(slots[y]);
        });
        for (auto k : cold) {
          if (held >= target) break;
          auto& s = slots[k];
          if (s.engine.empty() || s.lease_until < now) {
            if (!s.engine.empty())
              s.freed_at = std::min(s.lease_until, now);  // a lapsed lease was let go then
            s.engine = engine_;
            s.lease_until = now + lease;
            ++held;
          }
        }
        slot_lease l;
        l.number = n;
        l.held = held;
        l.target = target;
        l.max = max;
        for (const auto& s : slots)
          if (s.engine == engine_ && cooling(s)) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*s.freed_at + quiet - now);
            l.cooled_in = l.cooling++ == 0 ? left : std::min(l.cooled_in, left);
          }
        out.push_back(l);
      }
      return out;
    });
  }

  result<std::vector<slot_lease>> lease_campaigns(std::span<const campaign_lease_request> campaigns,
                                                  std::chrono::milliseconds lease) override {
    return call(store_call::lease_campaigns, [&]() -> result<std::vector<slot_lease>> {
      std::vector<slot_lease> out;
      for (const auto& request : campaigns) out.push_back(lease_one(request, lease));
      return out;
    });
  }

 private:
  slot_lease lease_one(const campaign_lease_request& request, std::chrono::milliseconds lease) {
    const auto id = request.campaign;
    int max = request.max;
    const int in_use = request.in_use;
    {
      const auto now = db_.now();
      // The stored campaign's cap, as in PostgreSQL.
      if (auto c = db_.campaigns_.find(id.value());
          c != db_.campaigns_.end() && c->second.spec.max_concurrency > 0)
        max = c->second.spec.max_concurrency;
      db_.engines_[engine_] = now + lease;
      if (request.wanted)
        db_.runners_[id.value()].insert(engine_);
      else
        db_.runners_[id.value()].erase(engine_);
      auto& slots = db_.campaign_slots_[id.value()];
      if (static_cast<int>(slots.size()) < max) slots.resize(static_cast<std::size_t>(std::max(max, 0)));
      while (static_cast<int>(slots.size()) > max &&
             (slots.back().engine.empty() || slots.back().lease_until < now))
        slots.pop_back();
      int held = 0;
      for (auto& s : slots)
        if (s.engine == engine_) {
          s.lease_until = now + lease;
          ++held;
        }
      int live = 0;
      for (const auto& e : db_.runners_[id.value()])
        if (auto it = db_.engines_.find(e); it != db_.engines_.end() && it->second > now) ++live;
      live = std::max(live, 1);
      const int target = max <= 0 || !request.wanted ? 0 : (max + live - 1) / live;
      const int keep = std::max(target, in_use);
      for (auto it = slots.rbegin(); it != slots.rend() && held > keep; ++it)
        if (it->engine == engine_) {
          it->engine.clear();
          --held;
        }
      for (int k = 0; k < max && held < target; ++k) {
        auto& s = slots[static_cast<std::size_t>(k)];
        if (s.engine.empty() || s.lease_until < now) {
          s.engine = engine_;
          s.lease_until = now + lease;
          ++held;
        }
      }
      slot_lease l;
      l.campaign = id;
      l.held = held;
      l.target = target;
      l.max = max;
      return l;
    }
  }

 public:
  result<void> release_all() override {
    return call(store_call::release_all, [&]() -> result<void> {
      for (auto& [c, slots] : db_.campaign_slots_)
        for (auto& s : slots)
          if (s.engine == engine_) s.engine.clear();
      for (auto& [c, engines] : db_.runners_) engines.erase(engine_);
      for (auto& [n, slots] : db_.slots_)
        for (auto& s : slots)
          if (s.engine == engine_) {
            s.engine.clear();
            s.freed_at = db_.now();
          }
      for (auto& [n, users] : db_.users_) users.erase(engine_);
      return ok();
    });
  }
};

// engine_registry over the memory database.
class memory_engine_registry final : public engine_registry, memory_engine_port {
 public:
  using memory_engine_port::memory_engine_port;

  result<void> heartbeat(std::chrono::milliseconds lease) override {
    return call(store_call::heartbeat, [&]() -> result<void> {
      db_.engines_[engine_] = db_.now() + lease;
      return ok();
    });
  }
  result<void> deregister() override {
    return call(store_call::deregister, [&]() -> result<void> {
      db_.engines_.erase(engine_);
      for (auto& [c, engines] : db_.runners_) engines.erase(engine_);
      for (auto& [n, users] : db_.users_) users.erase(engine_);
      return ok();
    });
  }
  result<std::vector<campaign_brief>> campaigns(std::span<const campaign_id> only,
                                                std::span<const campaign_id> watched) override {
    return call(store_call::campaigns, [&]() -> result<std::vector<campaign_brief>> {
      std::vector<campaign_brief> out;
      for (const auto& [id, c] : db_.campaigns_) {
        const bool in_only = only.empty() || std::find(only.begin(), only.end(), c.id) != only.end();
        const bool is_watched = std::find(watched.begin(), watched.end(), c.id) != watched.end();
        if ((c.state == campaign_state::running && in_only) || is_watched) out.push_back({c.id, c.state});
      }
      return out;
    });
  }
  result<std::vector<campaign_id>> changes() override {
    return call(store_call::changes,
                [&]() -> result<std::vector<campaign_id>> { return std::exchange(db_.heard_[engine_], {}); });
  }
  result<campaign_record> load(campaign_id id) override {
    return call(store_call::load, [&]() -> result<campaign_record> {
      auto it = db_.campaigns_.find(id.value());
      if (it == db_.campaigns_.end())
        return make_error(errc::not_found, "campaign {} does not exist", id.value());
      return it->second;
    });
  }
  result<std::vector<phone_number>> numbers_of(const campaign_record& campaign) override {
    return call(store_call::numbers_of, [&]() -> result<std::vector<phone_number>> {
      std::vector<phone_number> out;
      for (const auto& [id, n] : db_.numbers_) {
        const bool listed =
            std::find(campaign.numbers.begin(), campaign.numbers.end(), n.id) != campaign.numbers.end();
        if (campaign.numbers.empty() ? (n.agent == campaign.agent && n.status == number_status::active)
                                     : listed)
          out.push_back(n);
      }
      return out;
    });
  }
  result<campaign_state> transition(campaign_id id, std::span<const campaign_state> from,
                                    campaign_state to) override {
    return call(store_call::transition, [&]() -> result<campaign_state> {
      auto& c = db_.campaigns_.at(id.value());
      if (c.state == to) return to;
      if (std::find(from.begin(), from.end(), c.state) == from.end())
        return make_error(errc::conflict, "campaign is {} and cannot become {}", to_string(c.state),
                          to_string(to));
      c.state = to;
      db_.announce_locked(id);
      return to;
    });
  }
};

inline std::int64_t memory_database::cancel_waiting(campaign_id id) {
  memory_contact_claims claims(*this, "cancel");
  return claims.cancel_pending(id).value();
}

// One engine's ports on the memory database (a new instance for every stage that opens one, as with
// connections).
inline engine_ports memory_ports(memory_database& db, std::string engine) {
  engine_ports p;
  p.claims = [&db, engine]() -> result<std::unique_ptr<contact_claims>> {
    return std::unique_ptr<contact_claims>(std::make_unique<memory_contact_claims>(db, engine));
  };
  p.journal = [&db, engine]() -> result<std::unique_ptr<attempt_journal>> {
    return std::unique_ptr<attempt_journal>(std::make_unique<memory_attempt_journal>(db, engine));
  };
  p.leases = [&db, engine]() -> result<std::unique_ptr<slot_leases>> {
    return std::unique_ptr<slot_leases>(std::make_unique<memory_slot_leases>(db, engine));
  };
  p.registry = [&db, engine]() -> result<std::unique_ptr<engine_registry>> {
    return std::unique_ptr<engine_registry>(std::make_unique<memory_engine_registry>(db, engine));
  };
  return p;
}

}  // namespace dialer::testing
