#include "adapters/json/views.hpp"

#include <date/date.h>

namespace dialer::views {

std::string iso8601(timestamp t) {
  return date::format("%FT%TZ", date::floor<std::chrono::seconds>(t));
}

nlohmann::json to_json(const phone_number& n) {
  nlohmann::json j{{"id", n.id.value()},
                   {"e164", n.e164},
                   {"country", n.country},
                   {"type", to_string(n.type)},
                   {"kind", to_string(n.kind)},
                   {"provider", n.provider},
                   {"max_concurrent_calls", n.max_concurrent_calls},
                   {"max_cps", n.max_cps},
                   {"status", to_string(n.status)},
                   {"monthly_fee", format_money(n.monthly_fee)},
                   {"purchased_at", iso8601(n.purchased_at)},
                   {"released_at", n.released_at ? nlohmann::json(iso8601(*n.released_at)) : nlohmann::json()}};
  j["agent"] = n.agent ? nlohmann::json{{"id", n.agent.value()}, {"name", n.agent_name}} : nlohmann::json();
  return j;
}

nlohmann::json to_json(const agent& a) {
  return {{"id", a.id.value()}, {"name", a.name}, {"handoff", a.handoff}, {"created_at", iso8601(a.created_at)}};
}

nlohmann::json to_json(const available_number& n) {
  return {{"e164", n.e164}, {"country", n.country}, {"type", to_string(n.type)}, {"region", n.region},
          {"provider", n.provider}};
}

nlohmann::json to_json(const billing_line& l) {
  return {{"item", l.item},
          {"number_id", l.number.value()},
          {"e164", l.e164},
          {"description", l.description},
          {"from", date::format("%F", l.from)},
          {"to", date::format("%F", l.to)},
          {"quantity", l.quantity},
          {"amount", format_money(l.amount)}};
}

}  // namespace dialer::views
