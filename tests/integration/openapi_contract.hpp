#pragma once
// The API's OpenAPI description as the tests read it: the set of (method, path) it declares, and a check of a
// response (status and JSON body) against the schema the description gives for it. The schema check covers the
// JSON Schema keywords the description uses: $ref, type (one or a list), properties, required,
// additionalProperties: false, items, enum, oneOf, pattern, minimum/maximum. A keyword it does not know is a
// test failure, not silently ignored, so the description cannot outgrow the check.

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace dialer::testing {

class openapi_contract {
 public:
  explicit openapi_contract(const std::string& file) : doc_(to_json(YAML::LoadFile(file))) {}

  // Every (METHOD, path) the description declares.
  [[nodiscard]] std::set<std::pair<std::string, std::string>> operations() const {
    std::set<std::pair<std::string, std::string>> out;
    for (const auto& [path, item] : doc_["paths"].items())
      for (const auto& [method, op] : item.items()) {
        (void)op;
        if (method == "parameters") continue;
        std::string upper;
        for (char c : method) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out.emplace(upper, path);
      }
    return out;
  }

  // The declared path template that `path` (no query) matches, "" when none.
  [[nodiscard]] std::string template_of(const std::string& path) const {
    const auto parts = split(path);
    std::string best;
    int best_literals = -1;
    for (const auto& [tmpl, item] : doc_["paths"].items()) {
      (void)item;
      const auto t = split(tmpl);
      if (t.size() != parts.size()) continue;
      int literals = 0;
      bool ok = true;
      for (std::size_t i = 0; i < t.size() && ok; ++i) {
        if (t[i].front() == '{') continue;
        if (t[i] == parts[i]) ++literals;
        else ok = false;
      }
      if (ok && literals > best_literals) best = tmpl, best_literals = literals;
    }
    return best;
  }

  // Problems with a response: its status not declared for the operation, or its body not matching the schema.
  [[nodiscard]] std::vector<std::string> check(const std::string& method, const std::string& path, unsigned status,
                                               const std::string& content_type, const std::string& body) const {
    std::vector<std::string> problems;
    const auto tmpl = template_of(path.substr(0, path.find('?')));
    std::string lower;
    for (char c : method) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (tmpl.empty() || !doc_["paths"][tmpl].contains(lower)) {
      if (status == 404 || status == 405) return problems;  // no such operation: the router's own answer
      return {method + " " + path + " is not in the description"};
    }
    const auto& responses = doc_["paths"][tmpl][lower]["responses"];
    const auto key = std::to_string(status);
    if (!responses.contains(key)) {
      // Answers the dispatcher gives on any operation before it runs.
      static const std::set<unsigned> generic{400, 401, 413, 415, 429, 431, 503};
      if (generic.contains(status)) return problems;
      return {method + " " + tmpl + " answered " + key + ", which the description does not declare"};
    }
    auto response = resolve(responses[key]);
    if (!response.contains("content")) {
      if (!body.empty()) problems.push_back(key + " has a body but the description declares none");
      return problems;
    }
    const auto media = content_type.substr(0, content_type.find(';'));
    if (!response["content"].contains(media)) return {key + " is " + media + ", not a declared content type"};
    if (media != "application/json") return problems;
    auto value = nlohmann::json::parse(body, nullptr, false);
    if (value.is_discarded()) return {"the body is not JSON: " + body.substr(0, 200)};
    validate(response["content"][media]["schema"], value, "$", problems);
    return problems;
  }

 private:
  static std::vector<std::string> split(const std::string& path) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < path.size()) {
      if (path[i] == '/') {
        ++i;
        continue;
      }
      auto j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      out.push_back(path.substr(i, j - i));
      i = j;
    }
    return out;
  }

  nlohmann::json resolve(const nlohmann::json& node) const {
    if (!node.is_object() || !node.contains("$ref")) return node;
    const auto ref = node["$ref"].get<std::string>();
    nlohmann::json::json_pointer ptr(ref.substr(1));
    return resolve(doc_.at(ptr));
  }

  static bool has_type(const nlohmann::json& v, const std::string& t) {
    if (t == "null") return v.is_null();
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_boolean();
    if (t == "integer") return v.is_number_integer();
    if (t == "number") return v.is_number();
    return false;
  }

  void validate(const nlohmann::json& schema_in, const nlohmann::json& v, const std::string& at,
                std::vector<std::string>& problems) const {
    const auto schema = resolve(schema_in);
    static const std::set<std::string> known{"type", "properties", "required", "additionalProperties", "items",
                                             "enum", "oneOf", "pattern", "minimum", "maximum", "exclusiveMinimum",
                                             "description", "format", "example", "default", "minLength",
                                             "maxLength"};
    for (const auto& [k, unused] : schema.items()) {
      (void)unused;
      if (!known.contains(k)) problems.push_back(at + ": the check does not know the keyword '" + k + "'");
    }
    if (schema.contains("oneOf")) {
      int matches = 0;
      for (const auto& alt : schema["oneOf"]) {
        std::vector<std::string> p;
        validate(alt, v, at, p);
        if (p.empty()) ++matches;
      }
      if (matches != 1) problems.push_back(at + ": matches " + std::to_string(matches) + " of oneOf, not 1");
      return;
    }
    if (schema.contains("type")) {
      bool ok = false;
      if (schema["type"].is_array()) {
        for (const auto& t : schema["type"]) ok = ok || has_type(v, t.get<std::string>());
      } else {
        ok = has_type(v, schema["type"].get<std::string>());
      }
      if (!ok) {
        problems.push_back(at + ": " + v.dump() + " is not of type " + schema["type"].dump());
        return;
      }
    }
    if (schema.contains("enum") && std::find(schema["enum"].begin(), schema["enum"].end(), v) == schema["enum"].end())
      problems.push_back(at + ": " + v.dump() + " is not one of " + schema["enum"].dump());
    if (schema.contains("pattern") && v.is_string() &&
        !std::regex_search(v.get<std::string>(), std::regex(schema["pattern"].get<std::string>())))
      problems.push_back(at + ": " + v.dump() + " does not match " + schema["pattern"].get<std::string>());
    if (v.is_number() && schema.contains("minimum") && v.get<double>() < schema["minimum"].get<double>())
      problems.push_back(at + ": below the minimum");
    if (v.is_number() && schema.contains("maximum") && v.get<double>() > schema["maximum"].get<double>())
      problems.push_back(at + ": above the maximum");
    if (v.is_object()) {
      if (schema.contains("required"))
        for (const auto& r : schema["required"])
          if (!v.contains(r.get<std::string>())) problems.push_back(at + ": missing " + r.get<std::string>());
      const auto props = schema.value("properties", nlohmann::json::object());
      for (const auto& [k, x] : v.items()) {
        if (props.contains(k)) validate(props[k], x, at + "." + k, problems);
        else if (schema.contains("additionalProperties") && schema["additionalProperties"] == false)
          problems.push_back(at + ": property '" + k + "' is not in the description");
        else if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object())
          validate(schema["additionalProperties"], x, at + "." + k, problems);
      }
    }
    if (v.is_array() && schema.contains("items"))
      for (std::size_t i = 0; i < v.size(); ++i) validate(schema["items"], v[i], at + "[" + std::to_string(i) + "]", problems);
  }

  // YAML to JSON: scalars become booleans, integers and numbers where they read as such (plain scalars only),
  // strings otherwise.
  static nlohmann::json to_json(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map: {
        auto out = nlohmann::json::object();
        for (const auto& kv : n) out[kv.first.as<std::string>()] = to_json(kv.second);
        return out;
      }
      case YAML::NodeType::Sequence: {
        auto out = nlohmann::json::array();
        for (const auto& x : n) out.push_back(to_json(x));
        return out;
      }
      case YAML::NodeType::Scalar: {
        const auto s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted
        if (s == "true") return true;
        if (s == "false") return false;
        if (s == "null" || s == "~") return nullptr;
        static const std::regex integer("^-?[0-9]+$"), number("^-?[0-9]+\\.[0-9]+([eE][-+]?[0-9]+)?$");
        if (std::regex_match(s, integer)) return std::stoll(s);
        if (std::regex_match(s, number)) return std::stod(s);
        return s;
      }
      default: return nullptr;
    }
  }

  nlohmann::json doc_;
};

}  // namespace dialer::testing
