#pragma once
// Each command group adds its subcommands to the CLI and, when one of them is chosen, leaves the action
// to run in `run` (so parsing finishes, and global options are known, before anything touches a database).

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string_view>

#include "app/context.hpp"
#include "app/providers.hpp"

namespace dialer::app {

using command_action = std::function<int()>;

void add_db_commands(CLI::App& app, global_options& options, command_action& run);
void add_inventory_commands(CLI::App& app, global_options& options, command_action& run);
void add_campaign_commands(CLI::App& app, global_options& options, command_action& run);
void add_api_commands(CLI::App& app, global_options& options, command_action& run);


}  // namespace dialer::app
