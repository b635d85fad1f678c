// /v1/numbers, /v1/agents and /v1/billing: the phone-number inventory over HTTP. Every rule is the inventory
// service's (engine/inventory.hpp); these routes only translate.
#include <date/date.h>

#include "adapters/http/api/api_internal.hpp"

namespace dialer::http {

namespace bhttp = boost::beast::http;

namespace {

number_limits limits_of(const nlohmann::json& body) {
  number_limits l;
  if (auto v = int_field(body, "max_concurrent_calls", false)) {
    if (*v < 1 || *v > 10000)
      throw api_error(422, "invalid_input", "max_concurrent_calls must be between 1 and 10000",
                      {{"field", "max_concurrent_calls"}});
    l.max_concurrent_calls = static_cast<int>(*v);
  }
  l.max_cps = number_field(body, "max_cps", false);
  return l;
}

template <class Enum>
std::optional<Enum> enum_query(const api_call& c, std::string_view name, std::optional<Enum> (*parse)(std::string_view),
                               std::string_view allowed) {
  auto v = c.query_value(name);
  if (!v) return std::nullopt;
  auto e = parse(*v);
  if (!e)
    throw api_error(400, "invalid_parameter", fmt::format("query parameter {} must be one of {}", name, allowed),
                    {{"parameter", name}});
  return e;
}

std::string id_text(std::int64_t id) { return std::to_string(id); }

reply search(api_call& c) {
  number_search q;
  auto country = c.query_value("country");
  if (!country)
    throw api_error(400, "invalid_parameter", "query parameter country is required (ISO code, e.g. US)",
                    {{"parameter", "country"}});
  q.country = *country;
  q.type = enum_query<number_type>(c, "type", &parse_number_type, "local, toll_free, mobile");
  q.area_code = c.query_value("area_code");
  q.contains = c.query_value("contains");
  q.limit = static_cast<int>(c.query_int("limit", 1, 1000).value_or(20));
  auto found = take(c.inventory().search(q));
  nlohmann::json data = nlohmann::json::array();
  for (const auto& n : found) data.push_back(to_json(n));
  return json_reply({{"data", std::move(data)}});
}

// Buying or importing may name the agent at once: the number is assigned in the same request (not
// atomically: a failed assignment leaves the number bought and says so).
reply assign_after(api_call& c, phone_number n, const std::optional<std::int64_t>& agent) {
  if (!agent) return json_reply(to_json(n), 201);
  auto assigned = c.inventory().assign(id_text(n.id.value()), id_text(*agent), false);
  if (!assigned) {
    auto e = to_api_error(assigned.error());
    e.message = fmt::format("number {} was added (id {}), but not assigned: {}", n.e164, n.id.value(), e.message);
    e.details = {{"number", to_json(n)}};
    throw e;
  }
  return json_reply(to_json(*assigned), 201);
}

reply buy(api_call& c) {
  const auto body = c.json_body({"e164", "max_concurrent_calls", "max_cps", "agent_id"});
  const auto e164 = string_field(body, "e164", true);
  const auto agent = int_field(body, "agent_id", false);
  // The agent first: a purchase starts billing, and must not happen for a request that is then refused.
  if (agent) (void)take(c.inventory().find_agent(agent_id{*agent}));
  auto n = take(c.inventory().buy(*e164, limits_of(body)));
  return assign_after(c, std::move(n), agent);
}

reply import_byoc(api_call& c) {
  const auto body = c.json_body({"e164", "provider", "max_concurrent_calls", "max_cps", "agent_id", "record_only"});
  const auto e164 = string_field(body, "e164", true);
  const auto provider = string_field(body, "provider", true);
  const auto agent = int_field(body, "agent_id", false);
  const auto record_only = bool_field(body, "record_only", false).value_or(false);
  if (agent) (void)take(c.inventory().find_agent(agent_id{*agent}));
  auto n = take(c.inventory().import_byoc(*e164, *provider, limits_of(body), record_only));
  return assign_after(c, std::move(n), agent);
}

reply list_numbers(api_call& c) {
  number_filter f;
  if (auto a = c.query_int("agent_id", 1, std::numeric_limits<std::int64_t>::max())) f.agent = agent_id{*a};
  f.status = enum_query<number_status>(c, "status", &parse_number_status, "active, released");
  f.type = enum_query<number_type>(c, "type", &parse_number_type, "local, toll_free, mobile");
  if (auto country = c.query_value("country")) {
    if (country->size() != 2 || !std::isalpha(static_cast<unsigned char>((*country)[0])) ||
        !std::isalpha(static_cast<unsigned char>((*country)[1])))
      throw api_error(400, "invalid_parameter", "country must be a two-letter ISO code such as US",
                      {{"parameter", "country"}});
    std::string upper;
    for (char ch : *country) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    f.country = upper;
  }
  const auto page = c.page();
  return json_reply(page_of(take(c.inventory().page_numbers(f, page)), page.limit));
}

reply get_number(api_call& c) {
  return json_reply(to_json(take(c.inventory().find_number(number_id{c.id_param("id", "number")}))));
}

reply update_number(api_call& c) {
  const auto id = c.id_param("id", "number");
  const auto body = c.json_body({"max_concurrent_calls", "max_cps"});
  return json_reply(to_json(take(c.inventory().update_limits(number_id{id}, limits_of(body)))));
}

reply assign(api_call& c) {
  const auto id = c.id_param("id", "number");
  const auto body = c.json_body({"agent_id", "reassign"});
  const auto agent = int_field(body, "agent_id", true);
  const auto reassign = bool_field(body, "reassign", false).value_or(false);
  // The number first: another account's number is 404 whatever the agent.
  (void)take(c.inventory().find_number(number_id{id}));
  (void)take(c.inventory().find_agent(agent_id{*agent}));
  return json_reply(to_json(take(c.inventory().assign(id_text(id), id_text(*agent), reassign))));
}

reply unassign(api_call& c) {
  const auto id = c.id_param("id", "number");
  (void)c.json_body({}, true);
  (void)take(c.inventory().find_number(number_id{id}));
  return json_reply(to_json(take(c.inventory().unassign(id_text(id)))));
}

reply release(api_call& c) {
  const auto id = c.id_param("id", "number");
  (void)c.json_body({}, true);
  (void)take(c.inventory().find_number(number_id{id}));
  return json_reply(to_json(take(c.inventory().release(id_text(id)))));
}

reply create_agent(api_call& c) {
  const auto body = c.json_body({"name", "handoff"});
  const auto name = string_field(body, "name", true);
  const auto handoff = string_field(body, "handoff", true);
  return json_reply(to_json(take(c.inventory().create_agent(*name, *handoff))), 201);
}

reply list_agents(api_call& c) {
  const auto page = c.page();
  return json_reply(page_of(take(c.inventory().page_agents(page)), page.limit));
}

reply get_agent(api_call& c) {
  return json_reply(to_json(take(c.inventory().find_agent(agent_id{c.id_param("id", "agent")}))));
}

reply update_agent(api_call& c) {
  const auto id = c.id_param("id", "agent");
  const auto body = c.json_body({"name", "handoff"});
  return json_reply(to_json(take(
      c.inventory().update_agent(agent_id{id}, string_field(body, "name", false), string_field(body, "handoff", false)))));
}

reply delete_agent(api_call& c) {
  take(c.inventory().delete_agent(agent_id{c.id_param("id", "agent")}));
  return reply{204, nullptr, {}, "application/json", {}};
}

date::sys_days day_param(const api_call& c, std::string_view name) {
  auto v = c.query_value(name);
  if (!v)
    throw api_error(400, "invalid_parameter", fmt::format("query parameter {} is required (YYYY-MM-DD)", name),
                    {{"parameter", name}});
  auto d = parse_calendar_day(*v);
  if (!d)
    throw api_error(400, "invalid_parameter", fmt::format("query parameter {}: {}", name, d.error().message),
                    {{"parameter", name}});
  return *d;
}

reply usage(api_call& c) {
  const billing_period period{day_param(c, "from"), day_param(c, "to")};
  const auto lines = take(c.inventory().billing(period));
  nlohmann::json data = nlohmann::json::array();
  for (const auto& l : lines) data.push_back(to_json(l));
  return json_reply({{"data", std::move(data)},
                     {"from", date::format("%F", period.from)},
                     {"to", date::format("%F", period.to)},
                     {"currency", "USD"},
                     {"total", format_money(total(lines))}});
}

}  // namespace

void add_inventory_routes(api_router& r) {
  using bhttp::verb;
  r.add(verb::get, "/v1/numbers/available", {search});
  r.add(verb::post, "/v1/numbers", {buy});
  r.add(verb::post, "/v1/numbers/import", {import_byoc});
  r.add(verb::get, "/v1/numbers", {list_numbers});
  r.add(verb::get, "/v1/numbers/{id}", {get_number});
  r.add(verb::patch, "/v1/numbers/{id}", {update_number});
  r.add(verb::post, "/v1/numbers/{id}/assign", {assign});
  r.add(verb::post, "/v1/numbers/{id}/unassign", {unassign});
  r.add(verb::post, "/v1/numbers/{id}/release", {release});
  r.add(verb::post, "/v1/agents", {create_agent});
  r.add(verb::get, "/v1/agents", {list_agents});
  r.add(verb::get, "/v1/agents/{id}", {get_agent});
  r.add(verb::patch, "/v1/agents/{id}", {update_agent});
  r.add(verb::delete_, "/v1/agents/{id}", {delete_agent});
  r.add(verb::get, "/v1/billing/usage", {usage});
}

}  // namespace dialer::http
