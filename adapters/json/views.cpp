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

nlohmann::json to_json(const rejected_row& r) { return {{"row", r.row}, {"reason", r.reason}, {"input", r.input}}; }

nlohmann::json to_json(const contact_result& c) {
  nlohmann::json j{{"id", c.id.value()},
                   {"row", c.row},
                   {"e164", c.e164},
                   {"state", c.state},
                   {"reason", c.reason},
                   {"attempts", c.attempts},
                   {"outcome", c.outcome.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.outcome)},
                   {"next_attempt_at", c.next_attempt_at ? nlohmann::json(iso8601(*c.next_attempt_at)) : nlohmann::json()}};
  return j;
}

nlohmann::json to_json(const campaign_summary& s) {
  nlohmann::json by_state{{"pending", s.progress.pending},
                          {"in_progress", s.progress.in_progress},
                          {"done", s.progress.done},
                          {"cancelled", s.progress.cancelled},
                          {"do_not_call", s.progress.do_not_call},
                          {"invalid", s.progress.invalid}};
  nlohmann::json outcomes = nlohmann::json::object();
  for (const auto& o : s.outcomes) outcomes[o.outcome] = o.count;
  nlohmann::json rejected = nlohmann::json::array();
  for (const auto& r : s.first_rejected) rejected.push_back(to_json(r));
  nlohmann::json by_reason = nlohmann::json::object();
  for (const auto& [reason, n] : s.campaign.import_rejected_by_reason) by_reason[reason] = n;
  nlohmann::json numbers = nlohmann::json::array();
  for (const auto& n : s.numbers)
    numbers.push_back({{"e164", n.e164},
                       {"calls", n.calls},
                       {"in_flight", n.in_flight},
                       {"peak_in_flight", n.peak_in_flight},
                       {"max_concurrent_calls", n.max_concurrent_calls}});
  return {{"campaign",
           {{"id", s.campaign.id.value()},
            {"name", s.campaign.name},
            {"state", to_string(s.campaign.state)},
            {"agent", s.campaign.agent_name}}},
          {"contacts", {{"total", s.progress.total}, {"by_state", by_state}}},
          {"outcomes", outcomes},
          {"attempts", s.progress.attempts},
          {"import",
           {{"accepted", s.campaign.import_accepted},
            {"rejected", rejected},
            {"rejected_total", s.campaign.import_rejected()},
            {"rejected_by_reason", by_reason}}},
          {"numbers", numbers},
          {"duration_s", s.duration_s},
          {"talk_minutes", s.talk_minutes},
          {"cost", format_money(s.cost)}};
}

}  // namespace dialer::views
