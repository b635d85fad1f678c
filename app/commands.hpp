#pragma once
// Each command group adds its subcommands to the CLI and, when one of them is chosen, leaves the action
// to run in `run` (so parsing finishes, and global options are known, before anything touches a database).

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>

#include "app/context.hpp"
#include "engine/ports/number_provider.hpp"

namespace dialer::app {

using command_action = std::function<int()>;

void add_db_commands(CLI::App& app, global_options& options, command_action& run);
void add_inventory_commands(CLI::App& app, global_options& options, command_action& run);
void add_campaign_commands(CLI::App& app, global_options& options, command_action& run);
void add_api_commands(CLI::App& app, global_options& options, command_action& run);

// The embedded default number inventory (the simulated provider).
[[nodiscard]] std::unique_ptr<number_provider> make_default_number_provider();

}  // namespace dialer::app
