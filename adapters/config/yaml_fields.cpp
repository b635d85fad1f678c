#include "adapters/config/yaml_fields.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace dialer::config {
namespace {

constexpr std::size_t max_quoted = 60;

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

// Optimal string alignment: Levenshtein plus adjacent transpositions ("deafult" is one edit from "default").
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::size_t> d((n + 1) * (m + 1));
  const auto at = [&](std::size_t i, std::size_t j) -> std::size_t& { return d[i * (m + 1) + j]; };
  for (std::size_t i = 0; i <= n; ++i) at(i, 0) = i;
  for (std::size_t j = 0; j <= m; ++j) at(0, j) = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(n, m);
}

// yaml-cpp marks are 0-based and -1 when there is no position (an empty document).
int one_based(int v) {
  return v < 0 ? 1 : v + 1;
}

std::string list_of(std::span<const std::string_view> names) {
  std::string out;
  for (auto n : names) out += fmt::format("{}{}", out.empty() ? "" : ", ", n);
  return out;
}

bool plain_integer_text(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

field mapping::get(std::string_view key) const {
  for (const auto& [name, value] : entries) {
    if (name == key) return value;
  }
  return field{YAML::Node(YAML::NodeType::Undefined), self.mark, join_path(self.path, key)};
}

std::string join_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string index_path(std::string_view parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == max_quoted) {
      out += "...";
      break;
    }
    const char c = text[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  return quote(node.Scalar());
}

std::optional<std::string_view> closest_match(std::string_view word,
                                              std::span<const std::string_view> candidates) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 0;
  for (auto c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (!best) return std::nullopt;
  const std::size_t allowed = std::max(word.size(), best->size()) >= 6 ? 2 : 1;
  if (best_distance > allowed || best_distance >= word.size()) return std::nullopt;
  return best;
}

std::string format_diagnostic(std::string_view display_name, const diagnostic& d) {
  if (d.path.empty()) return fmt::format("{}:{}:{}: {}", display_name, d.line, d.column, d.message);
  return fmt::format("{}:{}:{}: {}: {}", display_name, d.line, d.column, d.path, d.message);
}

void field_reader::error(const YAML::Mark& mark, std::string path, std::string message) {
  out_.push_back(
      diagnostic{one_based(mark.line), one_based(mark.column), std::move(path), std::move(message)});
}

void field_reader::expected(const field& f, std::string_view what) {
  error(f.mark, f.path, fmt::format("expected {}, got {}", what, describe(f.node)));
}

void field_reader::missing(const mapping& parent, std::string_view key, std::string_view what) {
  error(parent.self.mark, join_path(parent.self.path, key), fmt::format("expected {}, got nothing", what));
}

std::optional<mapping> field_reader::open_mapping(const field& f, std::span<const std::string_view> known,
                                                  std::string_view what) {
  return open(f, known, true, what);
}

std::optional<mapping> field_reader::open_any_mapping(const field& f, std::string_view what) {
  return open(f, {}, false, what);
}

std::optional<mapping> field_reader::open(const field& f, std::span<const std::string_view> known,
                                          bool check_known, std::string_view what) {
  mapping m{f, {}};
  if (!f.present() || f.node.IsNull()) return m;
  if (!f.node.IsMap()) {
    expected(f, what);
    return std::nullopt;
  }
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(key.Mark(), f.path, fmt::format("expected a key name, got {}", describe(key)));
      continue;
    }
    const std::string name = key.Scalar();
    const std::string path = join_path(f.path, name);
    if (check_known && std::find(known.begin(), known.end(), name) == known.end()) {
      if (auto near = closest_match(name, known)) {
        error(key.Mark(), path,
              fmt::format("expected a known key, got {}; did you mean \"{}\"?", quote(name), *near));
      } else {
        error(key.Mark(), path,
              fmt::format("expected one of {}, got unknown key {}", list_of(known), quote(name)));
      }
      continue;
    }
    const auto first =
        std::find_if(m.entries.begin(), m.entries.end(), [&](const auto& e) { return e.first == name; });
    if (first != m.entries.end()) {
      error(key.Mark(), path,
            fmt::format("expected each key once, got {} again (first at line {})", quote(name),
                        one_based(first->second.mark.line)));
      continue;
    }
    const YAML::Node value = it->second;
    // An empty value's mark is where the next token starts, often the next line: point at the key instead.
    const YAML::Mark mark = value.IsNull() ? key.Mark() : value.Mark();
    m.entries.emplace_back(name, field{value, mark, path});
  }
  return m;
}

std::optional<std::vector<field>> field_reader::open_list(const field& f, std::string_view what) {
  std::vector<field> items;
  if (!f.present() || f.node.IsNull()) return items;
  if (!f.node.IsSequence()) {
    expected(f, what);
    return std::nullopt;
  }
  std::size_t i = 0;
  for (const auto& item : f.node) {
    items.push_back(field{item, item.IsNull() ? f.mark : item.Mark(), index_path(f.path, i)});
    ++i;
  }
  return items;
}

std::optional<std::string> field_reader::text(const field& f, std::string_view what) {
  if (!f.node.IsScalar() || f.node.Scalar().empty()) {
    expected(f, what);
    return std::nullopt;
  }
  return f.node.Scalar();
}

std::optional<std::int64_t> field_reader::integer(const field& f, std::int64_t lo, std::int64_t hi) {
  const auto bad = [&] {
    expected(f, fmt::format("an integer from {} to {}", lo, hi));
    return std::nullopt;
  };
  if (!f.node.IsScalar()) return bad();
  std::string_view s = f.node.Scalar();
  if (!plain_integer_text(s)) return bad();
  if (s[0] == '+') s.remove_prefix(1);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return bad();
  return v;
}

std::optional<std::uint64_t> field_reader::unsigned_integer(const field& f) {
  const auto bad = [&] {
    expected(f, "a non-negative integer");
    return std::nullopt;
  };
  if (!f.node.IsScalar()) return bad();
  std::string_view s = f.node.Scalar();
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bad();
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return bad();
  return v;
}

std::optional<double> field_reader::positive_number(const field& f, double hi) {
  const auto bad = [&] {
    expected(f, fmt::format("a number above 0 and at most {}", hi));
    return std::nullopt;
  };
  if (!f.node.IsScalar()) return bad();
  std::string_view s = f.node.Scalar();
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || !(v > 0) ||
      v > hi) {
    return bad();
  }
  return v;
}

std::optional<bool> field_reader::boolean(const field& f) {
  if (f.node.IsScalar()) {
    const auto v = lowered(f.node.Scalar());
    if (v == "true" || v == "yes") return true;
    if (v == "false" || v == "no") return false;
  }
  expected(f, "true or false");
  return std::nullopt;
}

}  // namespace dialer::config
