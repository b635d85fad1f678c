#pragma once
// Shared set-up for the scheduler tests: a manual clock, a scheduler, and terse registration helpers.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/ports/clock.hpp"
#include "scheduler/scheduler.hpp"

namespace dialer::sched::testing {

using namespace std::chrono_literals;

inline constexpr double unlimited_cps = std::numeric_limits<double>::infinity();
inline constexpr agent_id sales_bot{1};
inline constexpr agent_id other_bot{2};

class scheduler_test : public ::testing::Test {
 protected:
  explicit scheduler_test(scheduler_options options = test_options()) : sched_(clock_, options) {}

  static scheduler_options test_options() {
    scheduler_options options;
    options.hopper_capacity = 1024;
    options.abort_on_double_release = false;
    return options;
  }

  // A number of sales-bot with no CPS cap unless told otherwise.
  void add_number(std::int64_t id, std::int32_t max_concurrent = 1, double cps = unlimited_cps,
                  std::uint16_t area = 0, std::string region = "", agent_id agent = sales_bot,
                  carrier_account_id account = {}) {
    number_config n;
    n.id = number_id{id};
    n.e164 = "+1415555" + std::to_string(1000 + id);
    n.agent = agent;
    n.agent_name = agent == sales_bot ? "sales-bot" : "other-bot";
    n.carrier_account = account;
    n.max_concurrent_calls = max_concurrent;
    n.max_cps = cps;
    n.area_code = area;
    n.region = std::move(region);
    ASSERT_TRUE(sched_.add_number(n)) << "number " << id;
  }

  void add_campaign(std::int64_t id, caller_id_strategy strategy = caller_id_strategy::round_robin,
                    std::int32_t max_in_flight = 1000, std::vector<number_id> numbers = {}) {
    campaign_config c;
    c.id = campaign_id{id};
    c.agent = sales_bot;
    c.agent_name = "sales-bot";
    c.numbers = std::move(numbers);
    c.strategy = strategy;
    c.max_in_flight = max_in_flight;
    ASSERT_TRUE(sched_.add_campaign(c)) << "campaign " << id;
  }

  static contact_item contact(std::int64_t id, std::int64_t campaign = 1, std::uint16_t area = 0,
                              std::string_view region = "", std::int64_t sticky = 0) {
    contact_item item;
    item.contact = contact_id{id};
    item.campaign = campaign_id{campaign};
    item.payload = sched::payload_ref{static_cast<std::uint64_t>(id) * 10};
    item.area_code = area;
    item.region = region_code::from(region);
    item.sticky_number = number_id{sticky};
    return item;
  }

  // Enqueues contacts first..last (inclusive) of a campaign.
  void enqueue_range(std::int64_t first, std::int64_t last, std::int64_t campaign = 1) {
    std::vector<contact_item> items;
    for (std::int64_t id = first; id <= last; ++id) items.push_back(contact(id, campaign));
    ASSERT_EQ(sched_.enqueue(items), items.size());
  }

  void enqueue_one(const contact_item& item) { ASSERT_EQ(sched_.enqueue(std::span(&item, 1)), 1u); }

  std::vector<decision> dispatch(std::size_t max = 64) {
    std::vector<decision> out(max);
    out.resize(sched_.dispatch(out));
    return out;
  }

  static std::vector<std::int64_t> numbers_of(const std::vector<decision>& decisions) {
    std::vector<std::int64_t> out;
    for (const auto& d : decisions) out.push_back(d.number.value());
    return out;
  }
  static std::vector<std::int64_t> contacts_of(const std::vector<decision>& decisions) {
    std::vector<std::int64_t> out;
    for (const auto& d : decisions) out.push_back(d.contact.value());
    return out;
  }

  number_stats stats_of(std::int64_t number) {
    for (const auto& n : sched_.stats().numbers) {
      if (n.id == number_id{number}) return n;
    }
    ADD_FAILURE() << "no stats for number " << number;
    return {};
  }
  campaign_stats stats_of_campaign(std::int64_t campaign) {
    for (const auto& c : sched_.stats().campaigns) {
      if (c.id == campaign_id{campaign}) return c;
    }
    ADD_FAILURE() << "no stats for campaign " << campaign;
    return {};
  }

  manual_clock clock_;
  scheduler sched_;
};

}  // namespace dialer::sched::testing
