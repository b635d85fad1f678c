#include "adapters/config/campaign_file.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>
#include <tuple>

#include <fmt/format.h>

#include "adapters/config/yaml_fields.hpp"
#include "engine/inventory.hpp"
#include "engine/phone.hpp"

namespace dialer::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view top_keys[] = {
    "name",     "agent",       "create_agent", "agent_handoff", "numbers", "provision_numbers",
    "carrier",  "concurrency", "caller_id",    "window",        "retry",   "default_region",
    "contacts", "do_not_call"};
constexpr std::string_view number_keys[] = {"e164", "max_concurrent", "max_cps"};
constexpr std::string_view carrier_keys[] = {"name", "settings"};
constexpr std::string_view caller_id_keys[] = {"strategy", "sticky_retries"};
constexpr std::string_view window_keys[] = {"start", "end", "days", "holidays", "extra_holidays"};
constexpr std::string_view retry_keys[] = {"max_attempts", "busy", "no_answer", "failed", "voicemail"};
constexpr std::string_view rule_keys[] = {"retry", "delay"};
constexpr std::string_view contacts_keys[] = {"file", "generate", "seed"};
constexpr std::string_view strategy_names[] = {"round_robin", "least_loaded", "local_presence"};

constexpr int max_concurrency = 10'000;
constexpr int max_generate = 10'000'000;

constexpr std::string_view e164_example = "an E.164 phone number like \"+14155550100\"";

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return out;
}

std::string uppered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
  return out;
}

bool is_secret_key(std::string_view key) { return is_secret_setting(key); }

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; });
}

bool valid_campaign_name(std::string_view name) {
  return !name.empty() && name.size() <= 100 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

std::string list_of(std::span<const std::string_view> names) {
  std::string out;
  for (auto n : names) out += fmt::format("{}{}", out.empty() ? "" : ", ", n);
  return out;
}

// A plain (unquoted) YAML scalar as JSON: booleans, integers and numbers keep their type so the carrier's
// factory sees what the operator meant; everything else is a string.
json plain_scalar_to_json(const std::string& s) {
  const auto l = lowered(s);
  if (l == "true") return true;
  if (l == "false") return false;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (!s.empty() && s[0] == '+') ++first;
  std::int64_t i = 0;
  if (auto [end, ec] = std::from_chars(first, last, i); ec == std::errc() && end == last && first != last)
    return i;
  double d = 0;
  if (auto [end, ec] = std::from_chars(first, last, d);
      ec == std::errc() && end == last && first != last && std::isfinite(d)) {
    return d;
  }
  return s;
}

// Digits-and-unit groups ("400d", "1h30m"): the shape parse_duration accepts, so a refusal means "too long".
bool well_formed_duration(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t digits = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == digits || i == s.size() || std::string_view("smhd").find(s[i]) == std::string_view::npos)
      return false;
    ++i;
  }
  return !s.empty();
}

class campaign_reader {
 public:
  campaign_reader(const fs::path& base_dir, const load_options& opts, std::vector<diagnostic>& errors)
      : r_(errors), base_dir_(base_dir), opts_(opts) {}

  void read(const field& root, campaign_spec& spec) {
    const auto top =
        r_.open_mapping(root, top_keys, "a mapping of campaign settings (name, agent, contacts...)");
    if (!top) return;
    read_identity(*top, spec);
    read_region(top->get("default_region"), spec);
    read_numbers(*top, spec);
    read_carrier(top->get("carrier"), spec);
    if (const auto f = top->get("concurrency"); f.present()) {
      if (auto v = r_.integer(f, 1, max_concurrency)) spec.max_concurrency = static_cast<int>(*v);
    }
    read_caller_id(top->get("caller_id"), spec);
    read_window(top->get("window"), spec.window);
    read_retry(top->get("retry"), spec.retry);
    if (opts_.contacts_inline) {
      // The contacts come with the request; nothing may name a file of the server or act beyond the campaign.
      for (const char* key : {"contacts", "do_not_call", "create_agent", "agent_handoff", "provision_numbers"})
        if (const auto f = top->get(key); f.present())
          r_.error(f.mark, f.path, "is not accepted here (files, agents and numbers are managed on their own)");
      return;
    }
    read_contacts(*top, spec.contacts);
    if (const auto f = top->get("do_not_call"); f.present()) {
      if (auto text = r_.text(f, "the path of a do-not-call file")) {
        if (auto p = existing_file(f, *text, "")) spec.do_not_call_file = *p;
      }
    }
  }

 private:
  void read_identity(const mapping& top, campaign_spec& spec) {
    constexpr std::string_view name_expected = "a campaign name of 1 to 100 letters, digits, '.', '_' or '-'";
    if (const auto f = top.get("name"); !f.present()) {
      r_.missing(top, "name", name_expected);
    } else if (auto name = r_.text(f, name_expected)) {
      if (valid_campaign_name(*name)) {
        spec.name = *name;
      } else {
        r_.expected(f, name_expected);
      }
    }

    constexpr std::string_view agent_expected =
        "an agent name (letters, digits, space, '.', '_', '-' or '@', starting with a letter or digit, at "
        "most 100 "
        "characters, not only digits)";
    if (const auto f = top.get("agent"); !f.present()) {
      r_.missing(top, "agent", "an agent name");
    } else if (auto agent = r_.text(f, agent_expected)) {
      if (validate_agent_name(*agent)) {
        spec.agent = *agent;
      } else {
        r_.expected(f, agent_expected);
      }
    }
    if (const auto f = top.get("create_agent"); f.present()) {
      if (auto v = r_.boolean(f)) spec.create_agent = *v;
    }
    if (const auto f = top.get("agent_handoff"); f.present()) {
      constexpr std::string_view expected =
          "a media-stream URL (wss://, https://) or a SIP URI (sip:, sips:)";
      if (auto handoff = r_.text(f, expected)) {
        if (validate_handoff(*handoff)) {
          spec.agent_handoff = *handoff;
        } else {
          r_.expected(f, expected);
        }
      }
    }
  }

  void read_region(const field& f, campaign_spec& spec) {
    if (!f.present()) return;
    constexpr std::string_view expected = "an ISO 3166-1 alpha-2 region code like US or GB";
    auto region = r_.text(f, expected);
    if (!region) return;
    if (region->size() != 2 || !is_supported_region(*region)) {
      r_.expected(f, expected);
      return;
    }
    spec.default_region = normalize_region(*region);
  }

  void read_numbers(const mapping& top, campaign_spec& spec) {
    const auto provision = top.get("provision_numbers");
    if (provision.present()) {
      if (auto v = r_.boolean(provision)) spec.provision_numbers = *v;
    }
    const auto list =
        r_.open_list(top.get("numbers"), fmt::format("a list of numbers, each {}", e164_example));
    if (!list) return;
    std::vector<std::string> seen_at;  // path of each accepted number, parallel to spec.numbers
    for (const auto& item : *list) {
      campaign_number_spec number;
      field e164 = item;
      if (item.node.IsMap()) {
        const auto m = r_.open_mapping(item, number_keys, "");
        if (!m) continue;
        e164 = m->get("e164");
        if (!e164.present()) {
          r_.missing(*m, "e164", e164_example);
          continue;
        }
        if (const auto f = m->get("max_concurrent"); f.present()) {
          if (auto v = r_.integer(f, 1, 10'000)) number.max_concurrent_calls = static_cast<int>(*v);
        }
        if (const auto f = m->get("max_cps"); f.present()) number.max_cps = r_.positive_number(f, 1000);
      } else if (!item.node.IsScalar()) {
        r_.expected(item, fmt::format("{} or a mapping with e164, max_concurrent and max_cps", e164_example));
        continue;
      }
      auto text = r_.text(e164, e164_example);
      if (!text) continue;
      auto parsed = parse_phone(*text, spec.default_region);
      if (!parsed) {
        r_.expected(e164, e164_example);
        continue;
      }
      const auto dup = std::find_if(spec.numbers.begin(), spec.numbers.end(),
                                    [&](const campaign_number_spec& n) { return n.e164 == parsed->e164; });
      if (dup != spec.numbers.end()) {
        r_.error(e164.mark, e164.path,
                 fmt::format("expected each number once, got {} again (first at {})", quote(parsed->e164),
                             seen_at[static_cast<std::size_t>(dup - spec.numbers.begin())]));
        continue;
      }
      number.e164 = parsed->e164;
      spec.numbers.push_back(std::move(number));
      seen_at.push_back(e164.path);
    }
    if (spec.provision_numbers && list->empty()) {
      const auto numbers = top.get("numbers");
      r_.error(numbers.present() ? numbers.mark : provision.mark, numbers.path,
               "expected at least one number to buy when provision_numbers is true, got none");
    }
  }

  void read_carrier(const field& f, campaign_spec& spec) {
    if (!f.present()) return;
    const auto m = r_.open_mapping(f, carrier_keys, "a mapping with the carrier's name and settings");
    if (!m) return;
    if (const auto name_field = m->get("name"); !name_field.present()) {
      r_.missing(*m, "name", fmt::format("a carrier name ({})", known_carriers()));
    } else if (auto name = r_.text(name_field, "a carrier name")) {
      const auto& known = opts_.known_carriers;
      if (std::find(known.begin(), known.end(), *name) != known.end()) {
        spec.carrier = *name;
      } else {
        std::vector<std::string_view> views(known.begin(), known.end());
        const auto near = closest_match(*name, views);
        r_.error(name_field.mark, name_field.path,
                 fmt::format("expected one of {}, got {}{}", known_carriers(), quote(*name),
                             near ? fmt::format("; did you mean \"{}\"?", *near) : std::string()));
      }
    }
    const auto settings = m->get("settings");
    if (!settings.present() || settings.node.IsNull()) return;
    if (!settings.node.IsMap()) {
      r_.expected(settings, "a mapping of carrier settings");
      return;
    }
    if (auto j = settings_to_json(settings, false)) spec.carrier_settings = std::move(*j);
  }

  std::string known_carriers() const {
    std::vector<std::string_view> views(opts_.known_carriers.begin(), opts_.known_carriers.end());
    return list_of(views);
  }

  // Carrier settings are free-form (the carrier's factory validates them); here only secrets and ${NAME}
  // references are checked. Everything under a secret key is secret too.
  std::optional<json> settings_to_json(const field& f, bool secret) {
    if (f.node.IsMap()) {
      const auto m = r_.open_any_mapping(f, "a mapping");
      if (!m) return std::nullopt;
      json out = json::object();
      bool ok = true;
      for (const auto& [key, value] : m->entries) {
        auto j = settings_to_json(value, secret || is_secret_key(key));
        if (j) {
          out[key] = std::move(*j);
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return out;
    }
    if (f.node.IsSequence()) {
      json out = json::array();
      bool ok = true;
      std::size_t i = 0;
      for (const auto& item : f.node) {
        const field child{item, item.IsNull() ? f.mark : item.Mark(), index_path(f.path, i++)};
        auto j = settings_to_json(child, secret);
        if (j) {
          out.push_back(std::move(*j));
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return out;
    }
    const std::string reference_example = fmt::format("${{{}}}", uppered(leaf_name(f.path)));
    if (secret) {
      // Never echo what was written: it may be the secret itself.
      if (!f.node.IsScalar() || f.node.Scalar().empty()) {
        r_.expected(f, fmt::format("an environment variable reference like {}", reference_example));
        return std::nullopt;
      }
      const std::string& s = f.node.Scalar();
      if (s.size() < 4 || !s.starts_with("${") || !s.ends_with("}") ||
          !valid_env_name(s.substr(2, s.size() - 3))) {
        r_.error(f.mark, f.path,
                 fmt::format(
                     "expected an environment variable reference like {}, got an inline value (secrets are "
                     "never written in campaign files: set an environment variable and reference it)",
                     reference_example));
        return std::nullopt;
      }
    }
    if (f.node.IsNull()) return json(nullptr);
    const std::string& s = f.node.Scalar();
    if (s.find("${") == std::string::npos) {
      if (f.node.Tag() == "!") return json(s);  // quoted: a string even when it looks like a number
      return plain_scalar_to_json(s);
    }
    return resolve_references(f, s, secret);
  }

  static std::string_view leaf_name(std::string_view path) {
    const auto dot = path.rfind('.');
    auto leaf = dot == std::string_view::npos ? path : path.substr(dot + 1);
    if (const auto bracket = leaf.find('['); bracket != std::string_view::npos)
      leaf = leaf.substr(0, bracket);
    return leaf;
  }

  std::optional<json> resolve_references(const field& f, const std::string& s, bool secret) {
    std::string out;
    std::size_t pos = 0;
    while (pos < s.size()) {
      const auto open = s.find("${", pos);
      if (open == std::string::npos) {
        out += s.substr(pos);
        break;
      }
      out += s.substr(pos, open - pos);
      const auto close = s.find('}', open + 2);
      const std::string name =
          close == std::string::npos ? std::string() : s.substr(open + 2, close - open - 2);
      if (close == std::string::npos || !valid_env_name(name)) {
        r_.error(
            f.mark, f.path,
            fmt::format("expected ${{NAME}} references with NAME made of letters, digits and '_', got {}",
                        secret ? std::string("a malformed reference") : quote(s)));
        return std::nullopt;
      }
      const auto value = opts_.env ? opts_.env(name) : std::nullopt;
      if (!value || (secret && value->empty())) {
        r_.error(f.mark, f.path,
                 fmt::format("expected environment variable {} to be set, got {}", name,
                             value ? "it set to an empty value" : "it unset"));
        return std::nullopt;
      }
      out += *value;
      pos = close + 1;
    }
    return json(std::move(out));
  }

  void read_caller_id(const field& f, campaign_spec& spec) {
    if (!f.present()) return;
    const auto m = r_.open_mapping(f, caller_id_keys, "a mapping with strategy and sticky_retries");
    if (!m) return;
    if (const auto s = m->get("strategy"); s.present()) {
      const std::string expected = fmt::format("one of {}", list_of(strategy_names));
      if (auto text = r_.text(s, expected)) {
        if (auto strategy = sched::parse_caller_id_strategy(*text)) {
          spec.strategy = *strategy;
        } else {
          const auto near = closest_match(*text, strategy_names);
          r_.error(s.mark, s.path,
                   fmt::format("expected {}, got {}{}", expected, quote(*text),
                               near ? fmt::format("; did you mean \"{}\"?", *near) : std::string()));
        }
      }
    }
    if (const auto s = m->get("sticky_retries"); s.present()) {
      if (auto v = r_.boolean(s)) spec.sticky_retries = *v;
    }
  }

  std::optional<std::chrono::seconds> time_of_day(const field& f) {
    constexpr std::string_view expected = "a time of day like \"08:00\" (HH:MM from 00:00 to 24:00)";
    auto text = r_.text(f, expected);
    if (!text) return std::nullopt;
    auto t = rules::parse_time_of_day(*text);
    if (!t) {
      r_.expected(f, expected);
      return std::nullopt;
    }
    return *t;
  }

  std::optional<rules::weekday_mask> weekdays(const field& f) {
    constexpr std::string_view expected = "days like mon-fri, \"mon,wed,fri\" or every day";
    auto text = r_.text(f, expected);
    if (!text) return std::nullopt;
    const auto l = lowered(*text);
    if (l == "every day" || l == "everyday" || l == "daily") return rules::weekdays::every_day;
    auto days = rules::parse_weekdays(*text);
    if (!days) {
      r_.expected(f, expected);
      return std::nullopt;
    }
    return *days;
  }

  void read_window(const field& f, window_spec& window) {
    if (!f.present()) return;
    const auto m =
        r_.open_mapping(f, window_keys, "a mapping with start, end, days, holidays and extra_holidays");
    if (!m) return;
    const auto start_field = m->get("start");
    const auto end_field = m->get("end");
    const auto start = start_field.present() ? time_of_day(start_field) : std::optional(window.start);
    const auto end = end_field.present() ? time_of_day(end_field) : std::optional(window.end);
    if (start) window.start = *start;
    if (end) window.end = *end;
    if (start && end && *start >= *end) {
      if (end_field.present()) {
        r_.error(end_field.mark, end_field.path,
                 fmt::format("expected a time after window.start ({}), got {}",
                             rules::format_time_of_day(*start), describe(end_field.node)));
      } else {
        r_.error(start_field.mark, start_field.path,
                 fmt::format("expected a time before window.end (default {}), got {}",
                             rules::format_time_of_day(*end), describe(start_field.node)));
      }
    }
    if (const auto d = m->get("days"); d.present()) {
      if (d.node.IsSequence()) {
        rules::weekday_mask mask = 0;
        bool ok = true;
        const auto items = r_.open_list(d, "");
        for (const auto& item : *items) {
          if (auto days = weekdays(item)) {
            mask = static_cast<rules::weekday_mask>(mask | *days);
          } else {
            ok = false;
          }
        }
        if (items->empty()) {
          r_.error(d.mark, d.path, "expected at least one day, got an empty list");
        } else if (ok) {
          window.days = mask;
        }
      } else if (auto days = weekdays(d)) {
        window.days = *days;
      }
    }
    if (const auto h = m->get("holidays"); h.present()) {
      if (auto text = r_.text(h, "us or none")) {
        if (*text == "us" || *text == "none") {
          window.us_holidays = *text == "us";
        } else {
          r_.expected(h, "us or none");
        }
      }
    }
    const auto extra = r_.open_list(m->get("extra_holidays"), "a list of dates like [2026-12-24]");
    if (!extra) return;
    for (const auto& item : *extra) {
      constexpr std::string_view expected = "a date like 2026-12-24 (YYYY-MM-DD)";
      auto text = r_.text(item, expected);
      if (!text) continue;
      auto date = rules::parse_date(*text);
      if (!date) {
        r_.expected(item, expected);
        continue;
      }
      window.extra_holidays.push_back(*date);
    }
  }

  void read_retry(const field& f, rules::retry_policy& policy) {
    if (!f.present()) return;
    const auto m =
        r_.open_mapping(f, retry_keys, "a mapping with max_attempts, busy, no_answer, failed, voicemail");
    if (!m) return;
    if (const auto a = m->get("max_attempts"); a.present()) {
      if (auto v = r_.integer(a, 1, 100)) {
        if (auto set = policy.set_max_attempts(static_cast<int>(*v)); !set)
          r_.error(a.mark, a.path, set.error().message);
      }
    }
    constexpr std::pair<std::string_view, call_outcome> outcomes[] = {{"busy", call_outcome::busy},
                                                                      {"no_answer", call_outcome::no_answer},
                                                                      {"failed", call_outcome::failed},
                                                                      {"voicemail", call_outcome::voicemail}};
    for (const auto& [key, outcome] : outcomes) {
      const auto rf = m->get(key);
      if (!rf.present()) continue;
      const auto rule_map = r_.open_mapping(rf, rule_keys, "a mapping like {retry: true, delay: 10m}");
      if (!rule_map) continue;
      auto rule = policy.rule_for(outcome);
      bool ok = true;
      if (const auto r = rule_map->get("retry"); r.present()) {
        if (auto v = r_.boolean(r)) {
          rule.retry = *v;
        } else {
          ok = false;
        }
      }
      const auto d = rule_map->get("delay");
      if (d.present()) {
        constexpr std::string_view expected = "a duration like 10m";
        if (auto text = r_.text(d, expected); !text) {
          ok = false;
        } else if (auto delay = rules::parse_duration(*text)) {
          rule.delay = *delay;
        } else {
          r_.expected(d, well_formed_duration(*text) ? "a duration of at most 366d" : expected);
          ok = false;
        }
      } else if (rule.retry && rule.delay == std::chrono::seconds{0}) {
        r_.missing(*rule_map, "delay", "a duration like 10m when retry is true");
        ok = false;
      }
      if (!ok) continue;
      if (auto set = policy.set_rule(outcome, rule); !set) r_.error(rf.mark, rf.path, set.error().message);
    }
  }

  void read_contacts(const mapping& top, contacts_spec& contacts) {
    const auto f = top.get("contacts");
    if (!f.present()) {
      r_.missing(top, "contacts", "a mapping with file (the contacts CSV)");
      return;
    }
    const auto m = r_.open_mapping(f, contacts_keys, "a mapping with file, generate and seed");
    if (!m) return;
    if (const auto g = m->get("generate"); g.present()) {
      if (auto v = r_.integer(g, 1, max_generate)) contacts.generate = static_cast<int>(*v);
    }
    if (const auto s = m->get("seed"); s.present()) {
      if (auto v = r_.unsigned_integer(s)) contacts.seed = *v;
    }
    const auto file = m->get("file");
    if (!file.present()) {
      r_.missing(*m, "file", "the path of the contacts CSV file");
      return;
    }
    auto text = r_.text(file, "the path of the contacts CSV file");
    if (!text) return;
    if (m->has("generate")) {
      // Generated on first run: the file may be missing, but its folder must exist.
      const auto path = resolve(*text);
      std::error_code ec;
      const auto status = fs::status(path, ec);
      if (fs::is_directory(status)) {
        r_.error(file.mark, file.path,
                 fmt::format("expected a file, got {} (a folder: {})", quote(*text), path.string()));
      } else if (!fs::is_directory(path.parent_path(), ec)) {
        r_.error(file.mark, file.path,
                 fmt::format("expected a file in an existing folder, got {} (no folder {})", quote(*text),
                             path.parent_path().string()));
      } else {
        contacts.file = path;
      }
      return;
    }
    if (auto p = existing_file(file, *text, " or contacts.generate to create it")) contacts.file = *p;
  }

  fs::path resolve(std::string_view text) const {
    const fs::path p(text);
    return (p.is_absolute() ? p : base_dir_ / p).lexically_normal();
  }

  std::optional<fs::path> existing_file(const field& f, const std::string& text,
                                        std::string_view alternative) {
    const auto path = resolve(text);
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (fs::is_regular_file(status)) return path;
    if (fs::is_directory(status)) {
      r_.error(f.mark, f.path,
               fmt::format("expected a file, got {} (a folder: {})", quote(text), path.string()));
    } else {
      r_.error(f.mark, f.path,
               fmt::format("expected an existing file{}, got {} (not found: {})", alternative, quote(text),
                           path.string()));
    }
    return std::nullopt;
  }

  field_reader r_;
  fs::path base_dir_;
  const load_options& opts_;
};

std::string join_lines(std::string_view display_name, const std::vector<diagnostic>& errors) {
  std::string out;
  for (const auto& d : errors) {
    if (!out.empty()) out += '\n';
    out += format_diagnostic(display_name, d);
  }
  return out;
}

}  // namespace

std::optional<std::string> process_environment(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());  // NOLINT(concurrency-mt-unsafe): start-up only
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

check_result check_campaign_text(std::string_view yaml, const std::filesystem::path& base_dir,
                                 const load_options& opts) {
  check_result out;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    out.errors.push_back(diagnostic{e.mark.line < 0 ? 1 : e.mark.line + 1,
                                    e.mark.column < 0 ? 1 : e.mark.column + 1, "",
                                    fmt::format("expected valid YAML, got a syntax error: {}", e.msg)});
    return out;
  }
  if (docs.empty() || docs.front().IsNull()) {
    out.errors.push_back(diagnostic{1, 1, "",
                                    "expected a mapping of campaign settings (name, agent, contacts...), "
                                    "got an empty file"});
    return out;
  }
  field_reader reader(out.errors);
  if (docs.size() > 1) {
    reader.error(docs[1].Mark(), "", fmt::format("expected one YAML document, got {}", docs.size()));
  }
  std::error_code ec;
  auto base = std::filesystem::absolute(base_dir, ec);
  if (ec) base = base_dir;
  try {
    campaign_reader(base, opts, out.errors).read(field{docs.front(), docs.front().Mark(), ""}, out.spec);
  } catch (const YAML::Exception& e) {
    // Not expected (every access checks the node type first); reported like any other problem, not thrown.
    reader.error(e.mark, "", fmt::format("expected a readable document, got an error: {}", e.msg));
  }
  std::stable_sort(out.errors.begin(), out.errors.end(), [](const diagnostic& a, const diagnostic& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return out;
}

result<campaign_spec> load_campaign_text(std::string_view yaml, std::string_view display_name,
                                         const std::filesystem::path& base_dir, const load_options& opts) {
  auto checked = check_campaign_text(yaml, base_dir, opts);
  if (!checked.ok()) return error{errc::invalid_input, join_lines(display_name, checked.errors), {}};
  return std::move(checked.spec);
}

result<campaign_spec> load_campaign_file(const std::filesystem::path& file, const load_options& opts) {
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(file, ec).lexically_normal();
  if (ec || !std::filesystem::exists(absolute, ec)) {
    return make_error(errc::not_found, "{}: campaign file not found", file.string());
  }
  if (std::filesystem::is_directory(absolute, ec)) {
    return make_error(errc::invalid_input, "{}: expected a campaign file, got a folder", file.string());
  }
  std::ifstream in(absolute, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return make_error(errc::unavailable, "{}: cannot read the campaign file", file.string());
  auto spec = load_campaign_text(text.str(), file.string(), absolute.parent_path(), opts);
  if (!spec) return spec;
  spec->source = absolute;
  return spec;
}

}  // namespace dialer::config
