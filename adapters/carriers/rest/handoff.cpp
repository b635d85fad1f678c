#include "adapters/carriers/rest/handoff.hpp"

#include <cctype>

#include <nlohmann/json.hpp>

namespace dialer::carriers::rest {

handoff_fields handoff_fields_of(const origination_request& r) {
  handoff_fields f;
  f.ids = {{"attempt_id", std::to_string(r.attempt.value())},
           {"campaign_id", std::to_string(r.campaign.value())},
           {"contact_id", std::to_string(r.contact.value())}};
  if (r.variables_json.empty()) return f;
  const auto vars = nlohmann::json::parse(r.variables_json, nullptr, false);
  if (!vars.is_object()) return f;
  for (const auto& [k, v] : vars.items())
    f.variables.emplace_back(k, v.is_string() ? v.get<std::string>() : v.is_null() ? std::string() : v.dump());
  return f;
}

std::string x_header(std::string_view name) {
  std::string h = "X-";
  bool up = true;
  for (char c : name) {
    if (c == '_' || c == '-') {
      h += '-';
      up = true;
    } else if (std::isalnum(static_cast<unsigned char>(c))) {
      h += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      up = false;
    }
  }
  return h;
}

}  // namespace dialer::carriers::rest
