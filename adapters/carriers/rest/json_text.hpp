#pragma once
// Reading a carrier's JSON answers, where every field may be absent, null or of another type than documented.
// Threading: pure functions.

#include <string>

#include <nlohmann/json.hpp>

namespace dialer::carriers::rest {

// The string member `key` of `j`; "" when `j` is not an object or the member is absent, null or not a string.
[[nodiscard]] inline std::string text_of(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace dialer::carriers::rest
