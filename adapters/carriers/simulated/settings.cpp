#include "adapters/carriers/simulated/settings.hpp"

#include <charconv>
#include <cmath>
#include <initializer_list>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dialer::carriers {
namespace {

constexpr std::string_view who = "simulated carrier";

// Parsing happens once at start-up, so an exception carries the first bad field out of the nested
// readers; parse_simulated_carrier_settings() turns it back into an error value.
struct bad_setting {
  std::string message;
};

[[noreturn]] void fail(const std::string& path, std::string_view expected, const nlohmann::json& got) {
  throw bad_setting{fmt::format("{}: setting '{}' must be {}, got {}", who, path, expected, got.dump())};
}

std::string join(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
}

void reject_unknown_keys(const nlohmann::json& object, std::string_view prefix,
                         std::initializer_list<std::string_view> known) {
  for (const auto& item : object.items()) {
    bool found = false;
    for (auto k : known) found = found || item.key() == k;
    if (found) continue;
    std::string list;
    for (auto k : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
    throw bad_setting{fmt::format("{}: unknown setting '{}'; known settings{}: {}", who,
                                  join(prefix, item.key()),
                                  prefix.empty() ? "" : fmt::format(" under '{}'", prefix), list)};
  }
}

const nlohmann::json* member(const nlohmann::json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> to_double(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

void read_number(const nlohmann::json& object, std::string_view key, std::string_view prefix,
                 std::string_view expected, double& out) {
  const auto* node = member(object, key);
  if (node == nullptr) return;
  if (node->is_number()) {
    out = node->get<double>();
    return;
  }
  if (node->is_string()) {  // YAML scalars may arrive as strings
    if (auto v = to_double(node->get_ref<const std::string&>())) {
      out = *v;
      return;
    }
  }
  fail(join(prefix, key), expected, *node);
}

void read_duration(const nlohmann::json& object, std::string_view key, std::string_view prefix,
                   std::chrono::milliseconds& out) {
  constexpr std::string_view expected = R"(a duration: seconds as a number, or "500ms", "8s", "2m", "1h")";
  const auto* node = member(object, key);
  if (node == nullptr) return;
  std::optional<double> ms;
  if (node->is_number()) {
    ms = node->get<double>() * 1000.0;
  } else if (node->is_string()) {
    std::string_view text = node->get_ref<const std::string&>();
    struct unit {
      std::string_view suffix;
      double ms;
    };
    // "ms" before "s" and "m", so the longest suffix wins.
    for (auto u : {unit{"ms", 1.0}, unit{"s", 1000.0}, unit{"m", 60'000.0}, unit{"h", 3'600'000.0}}) {
      if (text.size() > u.suffix.size() && text.ends_with(u.suffix)) {
        if (auto v = to_double(text.substr(0, text.size() - u.suffix.size()))) ms = *v * u.ms;
        break;
      }
    }
    if (!ms) {
      if (auto v = to_double(text)) ms = *v * 1000.0;
    }
  }
  if (!ms || !std::isfinite(*ms) || *ms < 0 || *ms > 1e12) fail(join(prefix, key), expected, *node);
  out = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(*ms)));
}

void read_strings(const nlohmann::json& object, std::string_view key, std::string_view prefix,
                  std::vector<std::string>& out) {
  const auto* node = member(object, key);
  if (node == nullptr) return;
  if (!node->is_array()) fail(join(prefix, key), "a list of E.164 strings", *node);
  out.clear();
  for (const auto& item : *node) {
    if (!item.is_string()) fail(join(prefix, key), "a list of E.164 strings", *node);
    out.push_back(item.get<std::string>());
  }
}

template <class Enum>
void read_enum(const nlohmann::json& object, std::string_view key, std::string_view prefix,
               std::initializer_list<std::pair<std::string_view, Enum>> names, Enum& out) {
  const auto* node = member(object, key);
  if (node == nullptr) return;
  std::string expected = "one of";
  for (const auto& [name, value] : names) {
    expected += fmt::format(" \"{}\"", name);
    if (node->is_string() && node->get_ref<const std::string&>() == name) {
      out = value;
      return;
    }
  }
  fail(join(prefix, key), expected, *node);
}

const nlohmann::json* section(const nlohmann::json& object, std::string_view key) {
  const auto* node = member(object, key);
  if (node != nullptr && !node->is_object()) fail(std::string(key), "a mapping", *node);
  return node;
}

simulated_carrier_settings parse(const nlohmann::json& json) {
  simulated_carrier_settings s;
  if (json.is_null()) return s;
  if (!json.is_object())
    throw bad_setting{fmt::format("{}: settings must be a mapping, got {}", who, json.dump())};
  reject_unknown_keys(json, "",
                      {"seed", "mode", "time_acceleration", "rates", "ring", "talk", "faults", "account_cps",
                       "dedup_window", "call_log"});

  if (const auto* node = member(json, "seed")) {
    constexpr std::string_view expected = "a non-negative integer";
    if (node->is_number_unsigned() || (node->is_number_integer() && node->get<std::int64_t>() >= 0)) {
      s.seed = node->get<std::uint64_t>();
    } else if (node->is_string()) {
      const auto& text = node->get_ref<const std::string&>();
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s.seed);
      if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        fail("seed", expected, *node);
    } else {
      fail("seed", expected, *node);
    }
  }
  read_enum<bool>(json, "mode", "", {{"timed", false}, {"instant", true}}, s.instant);
  read_number(json, "time_acceleration", "", "a number greater than 0 (60: one simulated minute per second)",
              s.time_acceleration);
  read_number(json, "account_cps", "", "a number >= 0", s.account_cps);
  if (const auto* node = member(json, "call_log")) {
    if (!node->is_string() || node->get_ref<const std::string&>().empty())
      fail("call_log", "a file path", *node);
    s.call_log = node->get<std::string>();
  }
  if (const auto* node = member(json, "dedup_window")) {
    if (!node->is_number_integer() || node->get<std::int64_t>() < 0)
      fail("dedup_window", "a non-negative integer", *node);
    s.dedup_window = node->get<std::size_t>();
  }

  if (const auto* rates = section(json, "rates")) {
    reject_unknown_keys(*rates, "rates", {"busy", "no_answer", "failed", "voicemail"});
    constexpr std::string_view expected = "a number in [0, 1] (answered is the remainder)";
    read_number(*rates, "busy", "rates", expected, s.busy_rate);
    read_number(*rates, "no_answer", "rates", expected, s.no_answer_rate);
    read_number(*rates, "failed", "rates", expected, s.failed_rate);
    read_number(*rates, "voicemail", "rates", expected, s.voicemail_rate);
  }
  if (const auto* ring = section(json, "ring")) {
    reject_unknown_keys(*ring, "ring", {"distribution", "mean", "spread", "no_answer_after", "busy_after"});
    read_enum(*ring, "distribution", "ring",
              {{"uniform", ring_distribution::uniform}, {"normal", ring_distribution::normal}}, s.ring);
    read_duration(*ring, "mean", "ring", s.ring_mean);
    read_duration(*ring, "spread", "ring", s.ring_spread);
    read_duration(*ring, "no_answer_after", "ring", s.no_answer_after);
    read_duration(*ring, "busy_after", "ring", s.busy_after);
  }
  if (const auto* talk = section(json, "talk")) {
    reject_unknown_keys(*talk, "talk", {"distribution", "mean", "sigma", "max", "voicemail_mean"});
    read_enum(*talk, "distribution", "talk",
              {{"lognormal", talk_distribution::lognormal}, {"exponential", talk_distribution::exponential}},
              s.talk);
    read_duration(*talk, "mean", "talk", s.talk_mean);
    read_number(*talk, "sigma", "talk", "a number in (0, 3]", s.talk_sigma);
    read_duration(*talk, "max", "talk", s.talk_max);
    read_duration(*talk, "voicemail_mean", "talk", s.voicemail_mean);
  }
  if (const auto* faults = section(json, "faults")) {
    reject_unknown_keys(*faults, "faults",
                        {"unverified_caller_ids", "invalid_destination_prefixes", "throttle_cps",
                         "not_placed_rate", "indeterminate_rate"});
    read_strings(*faults, "unverified_caller_ids", "faults", s.unverified_caller_ids);
    read_strings(*faults, "invalid_destination_prefixes", "faults", s.invalid_destination_prefixes);
    read_number(*faults, "throttle_cps", "faults", "a number >= 0 (0: no throttling)", s.throttle_cps);
    read_number(*faults, "not_placed_rate", "faults", "a fraction in [0, 1]", s.not_placed_rate);
    read_number(*faults, "indeterminate_rate", "faults", "a fraction in [0, 1]", s.indeterminate_rate);
  }
  return s;
}

bool looks_like_e164_prefix(std::string_view text) {
  if (text.size() < 2 || text.size() > 16 || text[0] != '+') return false;
  for (char c : text.substr(1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

result<void> validate(const simulated_carrier_settings& s) {
  auto bad = [](std::string_view field, std::string_view expected, auto got) {
    return make_error(errc::invalid_input, "{}: setting '{}' must be {}, got {}", who, field, expected, got);
  };
  struct rate {
    std::string_view field;
    double value;
  };
  const rate rates[] = {{"rates.busy", s.busy_rate},
                        {"rates.no_answer", s.no_answer_rate},
                        {"rates.failed", s.failed_rate},
                        {"rates.voicemail", s.voicemail_rate}};
  double sum = 0;
  for (const auto& r : rates) {
    if (!(r.value >= 0.0 && r.value <= 1.0))
      return bad(r.field, "a number in [0, 1] (answered is the remainder)", r.value);
    sum += r.value;
  }
  if (sum > 1.0 + 1e-9) {
    return make_error(
        errc::invalid_input,
        "{}: rates must sum to at most 1 (the remainder is answered), got busy {} + no_answer {} + "
        "failed {} + voicemail {} = {:.6g}",
        who, s.busy_rate, s.no_answer_rate, s.failed_rate, s.voicemail_rate, sum);
  }
  using std::chrono::milliseconds;
  auto non_negative = [](milliseconds d) { return d.count() >= 0; };
  if (!non_negative(s.ring_mean)) return bad("ring.mean", "a duration >= 0", s.ring_mean.count());
  if (!non_negative(s.ring_spread)) return bad("ring.spread", "a duration >= 0", s.ring_spread.count());
  if (s.ring == ring_distribution::uniform && s.ring_spread > s.ring_mean) {
    return make_error(
        errc::invalid_input,
        "{}: setting 'ring.spread' must not exceed 'ring.mean' for a uniform ring time, got spread {} "
        "ms and mean {} ms",
        who, s.ring_spread.count(), s.ring_mean.count());
  }
  if (s.no_answer_after.count() <= 0)
    return bad("ring.no_answer_after", "a duration > 0", s.no_answer_after.count());
  if (!non_negative(s.busy_after)) return bad("ring.busy_after", "a duration >= 0", s.busy_after.count());
  if (!non_negative(s.talk_mean)) return bad("talk.mean", "a duration >= 0", s.talk_mean.count());
  if (!(s.talk_sigma > 0.0 && s.talk_sigma <= 3.0))
    return bad("talk.sigma", "a number in (0, 3]", s.talk_sigma);
  if (s.talk_max.count() <= 0 || s.talk_max < s.talk_mean) {
    return make_error(
        errc::invalid_input,
        "{}: setting 'talk.max' must be a duration > 0 and at least 'talk.mean' ({} ms), got {} ms", who,
        s.talk_mean.count(), s.talk_max.count());
  }
  if (!non_negative(s.voicemail_mean) || s.voicemail_mean > s.talk_max) {
    return bad("talk.voicemail_mean", "a duration >= 0 and at most 'talk.max'", s.voicemail_mean.count());
  }
  if (!(s.time_acceleration > 0.0 && std::isfinite(s.time_acceleration))) {
    return bad("time_acceleration", "a number greater than 0 (60: one simulated minute per second)",
               s.time_acceleration);
  }
  if (!(s.throttle_cps >= 0.0 && std::isfinite(s.throttle_cps))) {
    return bad("faults.throttle_cps", "a number >= 0 (0: no throttling)", s.throttle_cps);
  }
  if (!(s.not_placed_rate >= 0.0 && s.not_placed_rate <= 1.0))
    return bad("faults.not_placed_rate", "a fraction in [0, 1]", s.not_placed_rate);
  if (!(s.indeterminate_rate >= 0.0 && s.indeterminate_rate <= 1.0 - s.not_placed_rate))
    return bad("faults.indeterminate_rate", "a fraction in [0, 1 - not_placed_rate]", s.indeterminate_rate);
  if (!(s.account_cps >= 0.0 && std::isfinite(s.account_cps)))
    return bad("account_cps", "a number >= 0", s.account_cps);
  if (s.dedup_window > (std::size_t{1} << 24)) return bad("dedup_window", "at most 16777216", s.dedup_window);
  for (const auto& id : s.unverified_caller_ids) {
    if (!looks_like_e164_prefix(id)) {
      return bad("faults.unverified_caller_ids", "a list of E.164 numbers like \"+14155550100\"",
                 nlohmann::json(id).dump());
    }
  }
  for (const auto& prefix : s.invalid_destination_prefixes) {
    if (!looks_like_e164_prefix(prefix)) {
      return bad("faults.invalid_destination_prefixes", "a list of E.164 prefixes like \"+1900\"",
                 nlohmann::json(prefix).dump());
    }
  }
  return ok();
}

result<simulated_carrier_settings> parse_simulated_carrier_settings(const nlohmann::json& json) {
  simulated_carrier_settings settings;
  try {
    settings = parse(json);
  } catch (const bad_setting& e) {
    return error{errc::invalid_input, e.message, {}};
  } catch (const nlohmann::json::exception& e) {  // e.g. an integer that does not fit
    return make_error(errc::invalid_input, "{}: unreadable settings: {}", who, e.what());
  }
  if (auto valid = validate(settings); !valid) return std::move(valid).error();
  return settings;
}

}  // namespace dialer::carriers
