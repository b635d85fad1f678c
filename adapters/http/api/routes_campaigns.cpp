// /v1/campaigns and /v1/calls: campaigns over HTTP. A campaign is created with its settings (the campaign file's
// fields, as JSON) and its contacts (a JSON array, or an uploaded CSV in a multipart/form-data body), validated and
// imported exactly as `dialer run` does, and left a draft; launch, pause, resume and cancel move it. Every rule is
// the campaign service's (engine/campaign_service.hpp).
#include <random>
#include <set>

#include "adapters/config/campaign_file.hpp"
#include "adapters/http/api/api_internal.hpp"
#include "adapters/http/multipart.hpp"

namespace dialer::http {

namespace bhttp = boost::beast::http;

namespace {

std::string csv_cell(std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A JSON array of contacts as the CSV the importer reads: "phone" first, then every other field in the order
// first seen. Values are text; numbers and booleans are written as JSON writes them.
std::string contacts_csv(const nlohmann::json& contacts) {
  if (!contacts.is_array())
    throw api_error(422, "invalid_input", "contacts must be an array of objects with a phone field",
                    {{"field", "contacts"}});
  if (contacts.empty()) throw api_error(422, "invalid_input", "contacts is empty", {{"field", "contacts"}});
  // Columns are the union of the contacts' fields: bounded, so that a small body cannot ask for a huge table.
  constexpr std::size_t kMaxColumns = 64;
  std::vector<std::string> columns{"phone"};
  std::set<std::string, std::less<>> known{"phone"};
  for (std::size_t i = 0; i < contacts.size(); ++i) {
    const auto& c = contacts[i];
    if (!c.is_object())
      throw api_error(422, "invalid_input", fmt::format("contacts[{}] must be an object", i),
                      {{"field", fmt::format("contacts[{}]", i)}});
    for (const auto& [k, v] : c.items()) {
      if (v.is_object() || v.is_array())
        throw api_error(422, "invalid_input", fmt::format("contacts[{}] has a field that is not text, a number or true/false", i),
                        {{"field", fmt::format("contacts[{}]", i)}});
      if (known.contains(k)) continue;
      if (columns.size() == kMaxColumns)
        throw api_error(422, "invalid_input",
                        fmt::format("contacts have more than {} different fields in all", kMaxColumns),
                        {{"field", "contacts"}});
      known.insert(k);
      columns.push_back(k);
    }
  }
  std::string out;
  for (std::size_t i = 0; i < columns.size(); ++i) out += (i ? "," : "") + csv_cell(columns[i]);
  out += '\n';
  for (const auto& c : contacts) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (i) out += ',';
      auto it = c.find(columns[i]);
      if (it == c.end() || it->is_null()) continue;
      out += csv_cell(it->is_string() ? it->get<std::string>() : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    out += '\n';
  }
  return out;
}

nlohmann::json parse_object(std::string_view text, std::string_view what) {
  if (json_depth(text) > kMaxJsonDepth)
    throw api_error(422, "invalid_input", fmt::format("{} nests deeper than {} levels", what, kMaxJsonDepth));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw api_error(400, "malformed_json", fmt::format("{} is not valid JSON", what));
  if (!j.is_object()) throw api_error(422, "invalid_input", fmt::format("{} must be a JSON object", what));
  return j;
}

reply create(api_call& c) {
  const auto type_field = c.req[bhttp::field::content_type];
  const std::string_view type(type_field.data(), type_field.size());
  nlohmann::json settings;
  std::string csv;
  if (auto boundary = multipart_boundary(type)) {
    auto parts = parse_multipart(c.req.body(), *boundary);
    if (!parts) throw api_error(400, "malformed_multipart", "the multipart/form-data body is not well formed");
    const form_part* campaign = nullptr;
    const form_part* contacts = nullptr;
    for (const auto& p : *parts) {
      if (p.name == "campaign") campaign = &p;
      else if (p.name == "contacts") contacts = &p;
      else
        throw api_error(422, "invalid_input", fmt::format("unknown part '{}': send campaign and contacts", p.name),
                        {{"field", p.name}});
    }
    if (!campaign || !contacts)
      throw api_error(422, "invalid_input", "send two parts: campaign (JSON settings) and contacts (a CSV file)",
                      {{"field", campaign ? "contacts" : "campaign"}});
    settings = parse_object(campaign->data, "the campaign part");
    csv = std::string(contacts->data);
  } else {
    settings = c.json_body({}, false, true);
    auto it = settings.find("contacts");
    if (it == settings.end())
      throw api_error(422, "invalid_input", "field 'contacts' is required (an array of objects with a phone field)",
                      {{"field", "contacts"}});
    csv = contacts_csv(*it);
    settings.erase(it);
  }
  // The agent by id, as everywhere in the API (the campaign file names it).
  if (auto id = int_field(settings, "agent_id", false)) {
    if (settings.contains("agent"))
      throw api_error(422, "invalid_input", "give agent_id or agent, not both", {{"field", "agent"}});
    settings["agent"] = take(c.inventory().find_agent(agent_id{*id})).name;
    settings.erase("agent_id");
  }
  // The simulated carrier's call_log names a file of the server: an operator's setting, not an API client's.
  if (settings.contains("carrier") && settings["carrier"].is_object() && settings["carrier"].contains("settings") &&
      settings["carrier"]["settings"].is_object() && settings["carrier"]["settings"].contains("call_log"))
    throw api_error(422, "invalid_input", "carrier.settings.call_log is not accepted here (it names a file of the server)",
                    {{"field", "carrier.settings.call_log"}});
  config::load_options opts;
  opts.known_carriers = c.options.carriers;
  opts.contacts_inline = true;
  opts.env = [](std::string_view) { return std::optional<std::string>{}; };  // never the server's environment
  auto checked = config::check_campaign_text(settings.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "/", opts);
  if (!checked.ok()) {
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& d : checked.errors) errors.push_back({{"field", d.path}, {"message", d.message}});
    const auto& first = checked.errors.front();
    throw api_error(422, "invalid_input",
                    fmt::format("{}{}{}", first.path, first.path.empty() ? "" : ": ", first.message),
                    {{"field", first.path}, {"errors", errors}});
  }
  take(checked.spec.make_window());
  launch_inputs inputs;
  inputs.contacts_csv = std::move(csv);
  launch_options options;
  options.start = false;
  options.must_be_new = true;
  const auto made = take(c.campaigns().launch(checked.spec, inputs, options));
  return json_reply(to_json(take(c.campaigns().status(made.id))), 201);
}

campaign_id campaign_of(const api_call& c) {
  const auto id = c.id_param("id", "campaign");
  auto found = take(c.campaigns().find(std::to_string(id)));
  return found;
}

reply get_campaign(api_call& c) { return json_reply(to_json(take(c.campaigns().status(campaign_of(c))))); }

reply list_campaigns(api_call& c) {
  const auto page = c.page();
  const auto state = c.query_value("state");
  if (state && !parse_campaign_state(*state))
    throw api_error(400, "invalid_parameter", "state must be draft, running, paused, completed or cancelled",
                    {{"parameter", "state"}});
  auto all = take(c.campaigns().list());
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  nlohmann::json data = nlohmann::json::array();
  std::int64_t last = 0;
  for (const auto& r : all) {
    if (r.id.value() <= page.after || (state && to_string(r.state) != *state)) continue;
    if (static_cast<int>(data.size()) == page.limit) break;
    data.push_back({{"id", r.id.value()},
                    {"name", r.name},
                    {"state", to_string(r.state)},
                    {"agent", {{"id", r.agent.value()}, {"name", r.agent_name}}},
                    {"carrier", r.carrier},
                    {"concurrency", r.spec.max_concurrency},
                    {"contacts", r.import_accepted},
                    {"created_at", views::iso8601(r.created_at)}});
    last = r.id.value();
  }
  nlohmann::json out{{"data", data}, {"next_cursor", nullptr}};
  if (static_cast<int>(data.size()) == page.limit) out["next_cursor"] = std::to_string(last);
  return json_reply(out);
}

template <campaign_state To>
reply move(api_call& c) {
  const auto id = campaign_of(c);
  (void)c.json_body({}, true);
  auto& s = c.campaigns();
  if constexpr (To == campaign_state::running) take(s.start_draft(id));
  if constexpr (To == campaign_state::paused) take(s.pause(id));
  if constexpr (To == campaign_state::cancelled) take(s.cancel(id));
  return json_reply(to_json(take(s.status(id))));
}

reply resume(api_call& c) {
  const auto id = campaign_of(c);
  (void)c.json_body({}, true);
  take(c.campaigns().resume(id));
  return json_reply(to_json(take(c.campaigns().status(id))));
}

reply contacts(api_call& c) {
  const auto id = campaign_of(c);
  const auto page = c.page();
  auto got = take(c.campaigns().results(id, page.after ? std::optional<contact_id>(contact_id{page.after}) : std::nullopt,
                                        page.limit));
  nlohmann::json data = nlohmann::json::array();
  for (const auto& r : got.contacts) data.push_back(to_json(r));
  return json_reply({{"data", data},
                     {"next_cursor", got.next_after ? nlohmann::json(std::to_string(got.next_after->value())) : nullptr}});
}

// A page whose cursor is the last item's key when the page is full.
template <class Item, class ToJson, class Key>
reply cursor_page(const std::vector<Item>& items, int limit, ToJson to_json_of, Key key_of) {
  nlohmann::json data = nlohmann::json::array();
  for (const auto& i : items) data.push_back(to_json_of(i));
  nlohmann::json out{{"data", data}, {"next_cursor", nullptr}};
  if (static_cast<int>(items.size()) == limit) out["next_cursor"] = std::to_string(key_of(items.back()));
  return json_reply(out);
}

reply rejected(api_call& c) {
  const auto id = campaign_of(c);
  const auto page = c.page();
  return cursor_page(take(c.campaigns().rejected_rows(id, page.after, page.limit)), page.limit,
                     [](const rejected_row& r) { return to_json(r); }, [](const rejected_row& r) { return r.row; });
}

nlohmann::json attempt_json(const attempt_report& a) {
  const auto at = [](const std::optional<timestamp>& t) { return t ? nlohmann::json(views::iso8601(*t)) : nlohmann::json(); };
  return {{"id", a.id},
          {"campaign_id", a.campaign.value()},
          {"attempt_no", a.attempt_no},
          {"from", a.caller_id},
          {"to", a.callee},
          {"outcome", a.outcome == "unknown" ? nlohmann::json() : nlohmann::json(a.outcome)},
          {"duration_s", static_cast<double>(a.billable_ms) / 1000.0},
          {"carrier_call_id", a.carrier_call_id.empty() ? nlohmann::json() : nlohmann::json(a.carrier_call_id)},
          {"started_at", at(a.started_at)},
          {"answered_at", at(a.answered_at)},
          {"ended_at", at(a.ended_at)}};
}

reply attempts(api_call& c) {
  const auto id = campaign_of(c);
  const auto page = c.page();
  return cursor_page(take(c.campaigns().attempts(id, page.after, page.limit)), page.limit, attempt_json,
                     [](const attempt_report& a) { return a.id; });
}

nlohmann::json call_json(api_call& c, campaign_id id) {
  const auto summary = take(c.campaigns().status(id));
  const auto last = take(c.campaigns().last_attempt(id));
  return {{"id", id.value()},
          {"state", to_string(summary.campaign.state)},
          {"agent", summary.campaign.agent_name},
          {"attempt", last ? attempt_json(*last) : nlohmann::json()}};
}

// One call for an agent, through the same pipeline as a campaign (a campaign of one contact); its id is that
// campaign's.
reply place_call(api_call& c) {
  const auto body = c.json_body({"agent_id", "to", "from"});
  single_call_request r;
  r.agent = std::to_string(*int_field(body, "agent_id", true));
  r.to = *string_field(body, "to", true);
  r.from = string_field(body, "from", false).value_or("");
  std::random_device rd;
  r.name_suffix = fmt::format("{:08x}", rd());
  (void)take(c.inventory().find_agent(agent_id{std::stoll(r.agent)}));
  const auto id = take(c.campaigns().place_call(r));
  return json_reply(call_json(c, id), 201);
}

reply get_call(api_call& c) { return json_reply(call_json(c, campaign_of(c))); }

}  // namespace

void add_campaign_routes(api_router& r) {
  using bhttp::verb;
  r.add(verb::post, "/v1/campaigns", {create});
  r.add(verb::get, "/v1/campaigns", {list_campaigns});
  r.add(verb::get, "/v1/campaigns/{id}", {get_campaign});
  r.add(verb::post, "/v1/campaigns/{id}/launch", {move<campaign_state::running>});
  r.add(verb::post, "/v1/campaigns/{id}/pause", {move<campaign_state::paused>});
  r.add(verb::post, "/v1/campaigns/{id}/resume", {resume});
  r.add(verb::post, "/v1/campaigns/{id}/cancel", {move<campaign_state::cancelled>});
  r.add(verb::get, "/v1/campaigns/{id}/contacts", {contacts});
  r.add(verb::get, "/v1/campaigns/{id}/rejected", {rejected});
  r.add(verb::get, "/v1/campaigns/{id}/attempts", {attempts});
  r.add(verb::post, "/v1/calls", {place_call});
  r.add(verb::get, "/v1/calls/{id}", {get_call});
}

}  // namespace dialer::http
