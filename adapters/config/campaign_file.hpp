#pragma once
// The YAML campaign file: `dialer run campaign.yaml`. Loads a file into a campaign_spec and validates all of
// it before anything is dialed. Every problem of a file is reported at once, each with its position:
//
//   campaign.yaml:12:5: retry.busy.delay: expected a duration like 10m, got "soon"
//
// The format is documented in config/README.md. Secrets never appear in a file: keys of carrier.settings that
// look like secrets must be `${ENV_VAR}` references, resolved here through load_options::env.
//
// Start-up code, not a hot path: everything allocates. Thread-safe as long as load_options::env is (the
// default reads the process environment with std::getenv, which races only with a concurrent setenv).

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/campaign.hpp"
#include "engine/result.hpp"

namespace dialer::config {

// One problem in a file. line and column are 1-based and point at the offending node (for a missing field:
// at the mapping that lacks it; for an unknown key: at the key).
struct diagnostic {
  int line = 1;
  int column = 1;
  std::string path;     // "retry.busy.delay", "numbers[1].e164"; empty for the document itself
  std::string message;  // "expected a duration like 10m, got \"soon\""

  friend bool operator==(const diagnostic&, const diagnostic&) = default;
};

// "<display name>:<line>:<column>: <path>: <message>" (no "<path>: " when the path is empty).
[[nodiscard]] std::string format_diagnostic(std::string_view display_name, const diagnostic& d);

using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;

// std::getenv: nullopt when the variable is unset.
[[nodiscard]] std::optional<std::string> process_environment(std::string_view name);

struct load_options {
  // Names accepted for carrier.name (the composition root passes registry::carrier_names()).
  std::vector<std::string> known_carriers{"simulated"};
  // Resolves ${NAME} in carrier.settings; tests pass a fake to stay hermetic.
  env_lookup env = process_environment;
  // The HTTP API's form: the contacts come with the request, so there is no contacts key, and keys that name
  // a file of the server (contacts, do_not_call) or act beyond the campaign (create_agent, agent_handoff,
  // provision_numbers) are errors.
  bool contacts_inline = false;
};

struct check_result {
  campaign_spec spec;              // complete only when errors is empty
  std::vector<diagnostic> errors;  // sorted by position

  [[nodiscard]] bool ok() const noexcept { return errors.empty(); }
};

// The structured form: every diagnostic of the text. Relative paths (contacts.file, do_not_call) are resolved
// against base_dir, which is made absolute first; files are checked for existence. spec.source stays empty.
[[nodiscard]] check_result check_campaign_text(std::string_view yaml, const std::filesystem::path& base_dir,
                                               const load_options& opts);

// As check_campaign_text; on any problem, errc::invalid_input whose message is every diagnostic formatted
// with display_name, one per line (no trailing newline).
[[nodiscard]] result<campaign_spec> load_campaign_text(std::string_view yaml, std::string_view display_name,
                                                       const std::filesystem::path& base_dir,
                                                       const load_options& opts);

// Reads `file` (errc::not_found when it does not exist, errc::unavailable when it cannot be read), then
// load_campaign_text with the path as given for display, its folder as base_dir, and spec.source set to the
// absolute path.
[[nodiscard]] result<campaign_spec> load_campaign_file(const std::filesystem::path& file,
                                                       const load_options& opts);

}  // namespace dialer::config
