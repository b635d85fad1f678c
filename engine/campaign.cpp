#include "engine/campaign.hpp"

namespace dialer {
namespace {

constexpr call_outcome kRetryable[] = {call_outcome::busy, call_outcome::no_answer, call_outcome::failed,
                                       call_outcome::voicemail};

std::string iso_date(std::chrono::year_month_day d) {
  return fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                     static_cast<unsigned>(d.day()));
}

nlohmann::json redacted(const nlohmann::json& j, bool secret) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) out[k] = redacted(v, secret || is_secret_setting(k));
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(redacted(v, secret));
    return out;
  }
  return secret ? nlohmann::json("<redacted>") : j;
}

}  // namespace

bool is_secret_setting(std::string_view key) {
  static constexpr std::string_view markers[] = {"token", "secret", "password", "api_key", "apikey", "key_id", "auth"};
  std::string k(key);
  for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto m : markers)
    if (k.find(m) != std::string::npos) return true;
  return false;
}

result<rules::calling_window> campaign_spec::make_window() const {
  rules::holiday_calendar holidays;
  holidays.us_federal = window.us_holidays;
  holidays.extra_dates = window.extra_holidays;
  return rules::calling_window::make(window.start, window.end, window.days, holidays);
}

nlohmann::json to_json(const campaign_spec& s) {
  nlohmann::json numbers = nlohmann::json::array();
  for (const auto& n : s.numbers) {
    nlohmann::json j{{"e164", n.e164}};
    if (n.max_concurrent_calls) j["max_concurrent"] = *n.max_concurrent_calls;
    if (n.max_cps) j["max_cps"] = *n.max_cps;
    numbers.push_back(j);
  }
  nlohmann::json extra = nlohmann::json::array();
  for (const auto& d : s.window.extra_holidays) extra.push_back(iso_date(d));
  nlohmann::json retry{{"max_attempts", s.retry.max_attempts()}};
  for (auto o : kRetryable) {
    const auto rule = s.retry.rule_for(o);
    retry[std::string(to_string(o))] = {{"retry", rule.retry}, {"delay_s", rule.delay.count()}};
  }
  nlohmann::json j{{"name", s.name},
                   {"source", s.source.string()},
                   {"agent", s.agent},
                   {"create_agent", s.create_agent},
                   {"agent_handoff", s.agent_handoff},
                   {"numbers", numbers},
                   {"provision_numbers", s.provision_numbers},
                   {"carrier", s.carrier},
                   {"carrier_settings", redacted(s.carrier_settings, false)},
                   {"max_concurrency", s.max_concurrency},
                   {"strategy", std::string(sched::to_string(s.strategy))},
                   {"sticky_retries", s.sticky_retries},
                   {"window",
                    {{"start_s", s.window.start.count()},
                     {"end_s", s.window.end.count()},
                     {"days", rules::format_weekdays(s.window.days)},
                     {"us_holidays", s.window.us_holidays},
                     {"extra_holidays", extra}}},
                   {"retry", retry},
                   {"default_region", s.default_region},
                   {"contacts", {{"file", s.contacts.file.string()}, {"seed", s.contacts.seed}}}};
  if (s.contacts.generate) j["contacts"]["generate"] = *s.contacts.generate;
  if (s.do_not_call_file) j["do_not_call"] = s.do_not_call_file->string();
  return j;
}

result<campaign_spec> campaign_spec_from_json(const nlohmann::json& j) {
  try {
    campaign_spec s;
    s.name = j.at("name").get<std::string>();
    s.source = j.value("source", std::string());
    s.agent = j.at("agent").get<std::string>();
    s.create_agent = j.value("create_agent", false);
    s.agent_handoff = j.value("agent_handoff", std::string());
    for (const auto& n : j.value("numbers", nlohmann::json::array())) {
      campaign_number_spec ns;
      ns.e164 = n.at("e164").get<std::string>();
      if (n.contains("max_concurrent")) ns.max_concurrent_calls = n["max_concurrent"].get<int>();
      if (n.contains("max_cps")) ns.max_cps = n["max_cps"].get<double>();
      s.numbers.push_back(ns);
    }
    s.provision_numbers = j.value("provision_numbers", false);
    s.carrier = j.value("carrier", std::string("simulated"));
    s.carrier_settings = j.value("carrier_settings", nlohmann::json::object());
    s.max_concurrency = j.value("max_concurrency", 10);
    auto strategy = sched::parse_caller_id_strategy(j.value("strategy", std::string("round_robin")));
    if (!strategy) return make_error(errc::invalid_input, "stored campaign has an unknown caller-ID strategy");
    s.strategy = *strategy;
    s.sticky_retries = j.value("sticky_retries", true);
    const auto& w = j.at("window");
    s.window.start = std::chrono::seconds(w.at("start_s").get<std::int64_t>());
    s.window.end = std::chrono::seconds(w.at("end_s").get<std::int64_t>());
    auto days = rules::parse_weekdays(w.at("days").get<std::string>());
    if (!days) return std::move(days).error();
    s.window.days = *days;
    s.window.us_holidays = w.value("us_holidays", true);
    for (const auto& d : w.value("extra_holidays", nlohmann::json::array())) {
      auto date = rules::parse_date(d.get<std::string>());
      if (!date) return std::move(date).error();
      s.window.extra_holidays.push_back(*date);
    }
    const auto& r = j.at("retry");
    if (auto m = s.retry.set_max_attempts(r.at("max_attempts").get<int>()); !m) return std::move(m).error();
    for (auto o : kRetryable) {
      const auto key = std::string(to_string(o));
      if (!r.contains(key)) continue;
      rules::retry_rule rule{r[key].at("retry").get<bool>(), std::chrono::seconds(r[key].at("delay_s").get<std::int64_t>())};
      if (auto set = s.retry.set_rule(o, rule); !set) return std::move(set).error();
    }
    s.default_region = j.value("default_region", std::string("US"));
    const auto& c = j.at("contacts");
    s.contacts.file = c.value("file", std::string());
    if (c.contains("generate")) s.contacts.generate = c["generate"].get<int>();
    s.contacts.seed = c.value("seed", std::uint64_t{1});
    if (j.contains("do_not_call")) s.do_not_call_file = j["do_not_call"].get<std::string>();
    return s;
  } catch (const std::exception& e) {
    return make_error(errc::internal, "stored campaign settings cannot be read: {}", e.what());
  }
}

}  // namespace dialer
