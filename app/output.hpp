#pragma once
// Human and machine output for the CLI: aligned tables and JSON documents on stdout; errors on stderr.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapters/json/views.hpp"
#include "engine/billing.hpp"
#include "engine/ports/number_provider.hpp"
#include "engine/result.hpp"
#include "engine/telephony.hpp"

namespace dialer::app {

// Exit codes: a contract for scripts. Documented in README.md.
enum exit_code : int {
  exit_ok = 0,
  exit_internal = 1,
  exit_invalid_input = 2,
  exit_not_found = 3,
  exit_conflict = 4,
  exit_unavailable = 5,
  exit_launch_failed = 6,
  exit_interrupted = 130,
};

[[nodiscard]] int exit_code_for(errc code) noexcept;
// Prints "dialer: <message>" to stderr and returns the exit code for the error.
int report(const error& e);

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows);
void print_json(const nlohmann::json& document);

// The JSON shapes are the HTTP API's too (adapters/json/views.hpp).
using views::iso8601;
using views::to_json;

}  // namespace dialer::app
