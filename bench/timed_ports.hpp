#pragma once
// The dialing engine's PostgreSQL ports, each call forwarded and counted (calls, rows, time spent waiting,
// errors), and the table that prints them: where each engine stage waits on the database. Shared by bench_e2e
// and bench_campaigns.

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "adapters/postgres/pg_attempt_journal.hpp"
#include "adapters/postgres/pg_contact_claims.hpp"
#include "adapters/postgres/pg_engine_registry.hpp"
#include "adapters/postgres/pg_slot_leases.hpp"
#include "bench/bench_support.hpp"
#include "engine/dialing/engine_options.hpp"

namespace dialer::bench {

using std::chrono::milliseconds;

struct op_counter {
  std::atomic<std::int64_t> calls{0};
  std::atomic<std::int64_t> nanos{0};
  std::atomic<std::int64_t> rows{0};
  std::atomic<std::int64_t> errors{0};
};

struct store_timings {
  op_counter claim, record_attempts, write_back, progress, heartbeat, lease_slots, other;
  // What the engine did besides the one outcome per contact: returns by reason, finals, errors seen.
  std::mutex m;
  std::map<std::string, std::int64_t> returns;
  std::int64_t outcomes = 0, finals = 0;
  std::map<std::string, std::int64_t> errors;

  template <class T>
  const result<T>& note(const result<T>& r, op_counter& c) {
    if (!r) {
      c.errors.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(m);
      // One line per kind of error: the first line, digits (pids, transaction ids) folded.
      std::string key = r.error().message.substr(0, r.error().message.find('\n'));
      for (auto& ch : key)
        if (ch >= '0' && ch <= '9') ch = '#';
      ++errors[key.substr(0, 160)];
    }
    return r;
  }
};

class op_timer {
 public:
  op_timer(op_counter& c, std::int64_t rows = 0) : c_(c), start_(steady::now()), rows_(rows) {}
  ~op_timer() {
    c_.calls.fetch_add(1, std::memory_order_relaxed);
    c_.nanos.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - start_).count(),
                       std::memory_order_relaxed);
    c_.rows.fetch_add(rows_, std::memory_order_relaxed);
  }
  void rows(std::int64_t n) { rows_ = n; }

 private:
  op_counter& c_;
  steady::time_point start_;
  std::int64_t rows_;
};

// The engine's ports on PostgreSQL, each call forwarded and counted: calls, rows and the time spent waiting.
class timed_claims final : public contact_claims {
 public:
  timed_claims(std::unique_ptr<contact_claims> inner, store_timings& t) : inner_(std::move(inner)), t_(t) {}
  result<std::vector<claim_batch>> claim(std::span<const claim_request> requests,
                                         milliseconds lease) override {
    op_timer t(t_.claim);
    auto r = inner_->claim(requests, lease);
    if (r) {
      std::int64_t rows = 0;
      for (const auto& b : *r) rows += static_cast<std::int64_t>(b.contacts.size());
      t.rows(rows);
    }
    t_.note(r, t_.claim);
    return r;
  }
  result<void> renew(std::span<const held_blocks> held, milliseconds lease) override {
    op_timer t(t_.heartbeat);
    return t_.note(inner_->renew(held, lease), t_.heartbeat);
  }
  result<campaign_progress> progress(campaign_id id) override {
    op_timer t(t_.progress);
    return t_.note(inner_->progress(id), t_.progress);
  }
  result<std::int64_t> cancel_pending(campaign_id id) override {
    op_timer t(t_.other);
    return t_.note(inner_->cancel_pending(id), t_.other);
  }
  result<std::int64_t> cancel_orphaned() override {
    op_timer t(t_.other);
    return t_.note(inner_->cancel_orphaned(), t_.other);
  }

 private:
  std::unique_ptr<contact_claims> inner_;
  store_timings& t_;
};

class timed_journal final : public attempt_journal {
 public:
  timed_journal(std::unique_ptr<attempt_journal> inner, store_timings& t) : inner_(std::move(inner)), t_(t) {}
  result<void> record(std::span<attempt_to_record> attempts) override {
    op_timer t(t_.record_attempts, static_cast<std::int64_t>(attempts.size()));
    return t_.note(inner_->record(attempts), t_.record_attempts);
  }
  result<void> write_back(const write_batch& batch) override {
    const auto& [outcomes, returns, finals, accepted, release] = batch;
    op_timer t(t_.write_back, static_cast<std::int64_t>(outcomes.size() + returns.size() + finals.size()));
    auto r = inner_->write_back(batch);
    t_.note(r, t_.write_back);
    if (r) {
      std::lock_guard lock(t_.m);
      t_.outcomes += static_cast<std::int64_t>(outcomes.size());
      t_.finals += static_cast<std::int64_t>(finals.size());
      for (const auto& x : returns) ++t_.returns[x.reason];
    }
    return r;
  }

 private:
  std::unique_ptr<attempt_journal> inner_;
  store_timings& t_;
};

class timed_leases final : public slot_leases {
 public:
  timed_leases(std::unique_ptr<slot_leases> inner, store_timings& t) : inner_(std::move(inner)), t_(t) {}
  result<std::vector<slot_lease>> lease_numbers(std::span<const number_lease_request> numbers,
                                                milliseconds lease, milliseconds quiet) override {
    op_timer t(t_.lease_slots);
    return t_.note(inner_->lease_numbers(numbers, lease, quiet), t_.lease_slots);
  }
  result<std::vector<slot_lease>> lease_campaigns(std::span<const campaign_lease_request> campaigns,
                                                  milliseconds lease) override {
    op_timer t(t_.lease_slots);
    return t_.note(inner_->lease_campaigns(campaigns, lease), t_.lease_slots);
  }
  result<void> release_all() override {
    op_timer t(t_.other);
    return t_.note(inner_->release_all(), t_.other);
  }

 private:
  std::unique_ptr<slot_leases> inner_;
  store_timings& t_;
};

class timed_registry final : public engine_registry {
 public:
  timed_registry(std::unique_ptr<engine_registry> inner, store_timings& t)
      : inner_(std::move(inner)), t_(t) {}
  result<void> heartbeat(milliseconds lease) override {
    op_timer t(t_.heartbeat);
    return t_.note(inner_->heartbeat(lease), t_.heartbeat);
  }
  result<void> deregister() override {
    op_timer t(t_.other);
    return t_.note(inner_->deregister(), t_.other);
  }
  result<std::vector<campaign_brief>> campaigns(std::span<const campaign_id> only,
                                                std::span<const campaign_id> watched) override {
    op_timer t(t_.other);
    return t_.note(inner_->campaigns(only, watched), t_.other);
  }
  result<std::vector<campaign_id>> changes() override { return inner_->changes(); }  // no round trip
  result<campaign_record> load(campaign_id id) override {
    op_timer t(t_.other);
    return t_.note(inner_->load(id), t_.other);
  }
  result<std::vector<phone_number>> numbers_of(const campaign_record& c) override {
    op_timer t(t_.other);
    return t_.note(inner_->numbers_of(c), t_.other);
  }
  result<campaign_state> transition(campaign_id id, std::span<const campaign_state> from,
                                    campaign_state to) override {
    op_timer t(t_.other);
    return t_.note(inner_->transition(id, from, to), t_.other);
  }

 private:
  std::unique_ptr<engine_registry> inner_;
  store_timings& t_;
};

// The engine's ports on the phase's database, timed.
inline engine_ports timed_ports(const std::string& url, const std::string& engine_id,
                                store_timings& timings) {
  const auto conn = [url] { return pg::pg_link(url, pg::engine_connection); };
  engine_ports p;
  p.claims = [=, &timings]() -> result<std::unique_ptr<contact_claims>> {
    return std::unique_ptr<contact_claims>(
        std::make_unique<timed_claims>(std::make_unique<pg::pg_contact_claims>(conn(), engine_id), timings));
  };
  p.journal = [=, &timings]() -> result<std::unique_ptr<attempt_journal>> {
    return std::unique_ptr<attempt_journal>(std::make_unique<timed_journal>(
        std::make_unique<pg::pg_attempt_journal>(conn(), engine_id), timings));
  };
  p.leases = [=, &timings]() -> result<std::unique_ptr<slot_leases>> {
    return std::unique_ptr<slot_leases>(
        std::make_unique<timed_leases>(std::make_unique<pg::pg_slot_leases>(conn(), engine_id), timings));
  };
  p.registry = [=, &timings]() -> result<std::unique_ptr<engine_registry>> {
    return std::unique_ptr<engine_registry>(std::make_unique<timed_registry>(
        std::make_unique<pg::pg_engine_registry>(conn(), engine_id), timings));
  };
  return p;
}

inline void print_timings(store_timings& t, double wall) {
  const auto line = [&](const char* name, const op_counter& c, const char* thread) {
    const auto calls = c.calls.load();
    if (calls == 0) return;
    const double s = static_cast<double>(c.nanos.load()) / 1e9;
    fmt::print("    {:<16} {:>7} calls {:>9} rows {:>8.2f} s ({:>3.0f}% of wall) {:>8.2f} ms/call  [{}]{}\n",
               name, calls, c.rows.load(), s, 100 * s / wall, 1e3 * s / static_cast<double>(calls), thread,
               c.errors.load() ? fmt::format(" {} FAILED", c.errors.load()) : std::string());
  };
  line("claim", t.claim, "claim");
  line("record_attempts", t.record_attempts, "origination");
  line("write_back", t.write_back, "write-back");
  line("progress", t.progress, "control");
  line("heartbeat", t.heartbeat, "lease");
  line("lease_slots", t.lease_slots, "lease");
  line("other", t.other, "control");
  std::lock_guard lock(t.m);
  if (t.outcomes == 0) return;  // the ceiling counts its own statements only
  std::string extra;
  for (const auto& [reason, n] : t.returns) extra += fmt::format(", {} returned ({})", n, reason);
  fmt::print("    written back: {} outcomes, {} finals{}\n", t.outcomes, t.finals, extra);
  for (const auto& [message, n] : t.errors) fmt::print("    error x{}: {}\n", n, message);
}

}  // namespace dialer::bench
