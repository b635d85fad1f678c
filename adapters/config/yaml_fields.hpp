#pragma once
// Positioned reading of a yaml-cpp tree: each accessor either returns a value or records a diagnostic that
// names the node's line, column and field path, then lets the caller carry on, so one pass reports every
// problem of a file. Shared by the campaign loader and any later YAML file of ours.
//
// Not thread-safe (one reader per file); allocates freely (start-up code).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "adapters/config/campaign_file.hpp"

namespace dialer::config {

// A node, where it is, and what it is called.
struct field {
  YAML::Node node;   // undefined when the key is absent
  YAML::Mark mark;   // the node's; for an absent or empty value, the key's or the parent mapping's
  std::string path;  // "retry.busy.delay"

  [[nodiscard]] bool present() const { return node.IsDefined(); }
};

// A mapping whose keys were checked: known, scalar, each once.
struct mapping {
  field self;
  std::vector<std::pair<std::string, field>> entries;  // document order, first occurrence of each key

  // The value under `key`; when absent, an undefined node marked at the mapping itself.
  [[nodiscard]] field get(std::string_view key) const;
  [[nodiscard]] bool has(std::string_view key) const { return get(key).present(); }
};

[[nodiscard]] std::string join_path(std::string_view parent, std::string_view key);
[[nodiscard]] std::string index_path(std::string_view parent, std::size_t index);

// What a node is, for "got ...": "\"soon\"" (quoted, escaped, shortened), "a mapping", "a list", "nothing".
[[nodiscard]] std::string describe(const YAML::Node& node);
// The scalar quoted and escaped like describe() does, for values that are not nodes.
[[nodiscard]] std::string quote(std::string_view text);

// The candidate closest to `word` (case-insensitive optimal-string-alignment distance), when it is close
// enough to be a likely typo: at most 1 edit for short words, 2 for words of 6 letters or more.
[[nodiscard]] std::optional<std::string_view> closest_match(std::string_view word,
                                                            std::span<const std::string_view> candidates);

class field_reader {
 public:
  explicit field_reader(std::vector<diagnostic>& out) : out_(out) {}

  void error(const YAML::Mark& mark, std::string path, std::string message);
  // "expected <what>, got <describe(node)>" at the field.
  void expected(const field& f, std::string_view what);
  // "expected <what>, got nothing" at the mapping that lacks `key`.
  void missing(const mapping& parent, std::string_view key, std::string_view what);

  // Unknown keys are errors with a did-you-mean; duplicates and non-scalar keys too. Returns nullopt (after
  // reporting) when the node is not a mapping; an empty value is an empty mapping.
  [[nodiscard]] std::optional<mapping> open_mapping(const field& f, std::span<const std::string_view> known,
                                                    std::string_view what);
  // Like open_mapping but any key is accepted (free-form settings).
  [[nodiscard]] std::optional<mapping> open_any_mapping(const field& f, std::string_view what);
  // The items of a list, each with its [index] path. Returns nullopt (after reporting) for a non-list;
  // an empty value is an empty list.
  [[nodiscard]] std::optional<std::vector<field>> open_list(const field& f, std::string_view what);

  // A non-empty scalar.
  [[nodiscard]] std::optional<std::string> text(const field& f, std::string_view what);
  // A decimal integer within [lo, hi]; the error says "expected an integer from lo to hi".
  [[nodiscard]] std::optional<std::int64_t> integer(const field& f, std::int64_t lo, std::int64_t hi);
  [[nodiscard]] std::optional<std::uint64_t> unsigned_integer(const field& f);
  // A finite number in (0, hi].
  [[nodiscard]] std::optional<double> positive_number(const field& f, double hi);
  // true or false (yes and no are accepted too).
  [[nodiscard]] std::optional<bool> boolean(const field& f);

 private:
  std::optional<mapping> open(const field& f, std::span<const std::string_view> known, bool check_known,
                              std::string_view what);
  std::vector<diagnostic>& out_;
};

}  // namespace dialer::config
