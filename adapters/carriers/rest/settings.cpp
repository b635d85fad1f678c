#include "adapters/carriers/rest/settings.hpp"

#include <algorithm>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "adapters/webhooks/http_sender.hpp"

namespace dialer::carriers::rest {

namespace {
const nlohmann::json& empty_object() {
  static const nlohmann::json e = nlohmann::json::object();
  return e;
}
}  // namespace

bad_setting settings_reader::fail(std::string_view message) const {
  return bad_setting(fmt::format("{} carrier: {}", carrier_, message));
}

const nlohmann::json* settings_reader::member(std::string_view key) const {
  if (!o_.is_object()) return nullptr;
  auto it = o_.find(key);
  return it == o_.end() || it->is_null() ? nullptr : &*it;
}

void settings_reader::only_known(std::span<const std::string_view> known, std::string_view) const {
  if (o_.is_null()) return;
  if (!o_.is_object())
    throw fail(prefix_.empty() ? "settings must be an object"
                               : fmt::format("'{}' must be an object", prefix_.substr(0, prefix_.size() - 1)));
  for (const auto& item : o_.items())
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      throw fail(fmt::format("unknown setting '{}'; known settings: {}", name(item.key()), fmt::join(known, ", ")));
}

std::string settings_reader::text(std::string_view key, bool secret_value) const {
  const auto* n = member(key);
  if (!n) return {};
  if (!n->is_string())
    throw fail(fmt::format("setting '{}' must be a string{}", name(key),
                           secret_value ? "" : fmt::format(", got {}", n->dump())));
  return n->get<std::string>();
}

double settings_reader::number(std::string_view key, double fallback, double lo, double hi) const {
  const auto* n = member(key);
  if (!n) return fallback;
  const auto bad = [&] { return fail(fmt::format("setting '{}' must be a number, got {}", name(key), n->dump())); };
  double v = 0;
  if (n->is_number()) {
    v = n->get<double>();
  } else if (n->is_string()) {
    try {
      std::size_t used = 0;
      v = std::stod(n->get<std::string>(), &used);
      if (used != n->get<std::string>().size()) throw bad();
    } catch (const bad_setting&) {
      throw;
    } catch (...) {
      throw bad();
    }
  } else {
    throw bad();
  }
  if (!(v >= lo && v <= hi))
    throw fail(fmt::format("setting '{}' must be from {} to {}, got {}", name(key), lo, hi, n->dump()));
  return v;
}

std::chrono::milliseconds settings_reader::duration(std::string_view key, std::chrono::milliseconds fallback,
                                                    std::chrono::milliseconds lo,
                                                    std::chrono::milliseconds hi) const {
  const auto* n = member(key);
  if (!n) return fallback;
  const auto bad = [&] {
    return fail(fmt::format("setting '{}' must be a duration from {} ms to {} ms (like 15s, 500ms, 2m), got {}",
                            name(key), lo.count(), hi.count(), n->dump()));
  };
  double ms = 0;
  if (n->is_number()) {
    ms = n->get<double>() * 1000;
  } else if (n->is_string()) {
    static const std::regex form(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$)");
    std::smatch m;
    const auto text = n->get<std::string>();
    if (!std::regex_match(text, m, form)) throw bad();
    const double v = std::stod(m[1].str());
    const auto unit = m[2].str();
    ms = unit == "ms" ? v : unit == "m" ? v * 60'000 : unit == "h" ? v * 3'600'000 : v * 1000;
  } else {
    throw bad();
  }
  const auto out = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
  if (out < lo || out > hi) throw bad();
  return out;
}

bool settings_reader::flag(std::string_view key, bool fallback) const {
  const auto* n = member(key);
  if (!n) return fallback;
  if (!n->is_boolean()) throw fail(fmt::format("setting '{}' must be true or false, got {}", name(key), n->dump()));
  return n->get<bool>();
}

std::string settings_reader::choice(std::string_view key, std::string_view fallback,
                                    std::span<const std::string_view> allowed) const {
  auto v = text(key);
  if (v.empty()) return std::string(fallback);
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
    throw fail(fmt::format("setting '{}' must be one of {}, got \"{}\"", name(key), fmt::join(allowed, ", "),
                           v.substr(0, 100)));
  return v;
}

settings_reader settings_reader::nested(std::string_view key) const {
  const auto* n = member(key);
  if (n && !n->is_object()) throw fail(fmt::format("'{}' must be an object, got {}", name(key), n->dump()));
  return settings_reader(carrier_, name(key) + ".", n ? *n : empty_object());
}

std::string base_url_setting(const settings_reader& r, std::string_view key, std::string fallback) {
  auto b = r.text(key);
  if (b.empty()) return fallback;
  while (!b.empty() && b.back() == '/') b.pop_back();
  const auto u = webhooks::parse_webhook_url(b);
  if (!u || u->target != "/")
    throw r.fail(fmt::format("'{}' must be http(s)://host[:port], got \"{}\"", key, b.substr(0, 200)));
  return b;
}

}  // namespace dialer::carriers::rest
