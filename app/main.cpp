// The composition root: parses the command line and runs the chosen command.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/output.hpp"

int main(int argc, char** argv) {
  using namespace dialer::app;
  // Logs go to stderr so stdout stays clean for tables and JSON.
  spdlog::set_default_logger(spdlog::stderr_color_mt("dialer"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (const char* level = std::getenv("DIALER_LOG_LEVEL")) spdlog::set_level(spdlog::level::from_str(level));

  CLI::App app{"dialer: the outbound campaign dialer engine and phone-number inventory", "dialer"};
  app.require_subcommand(1);
  // Global options work where users type them, after the command too ("dialer run FILE --json"): an option a
  // subcommand does not know falls through to its parent. Subcommands inherit this when they are added.
  app.fallthrough();
  app.set_version_flag("--version", "dialer " DIALER_VERSION, "Print the version and exit");
  global_options options;
  app.add_option("--state-dir", options.state_dir, "State directory (default: $DIALER_STATE_DIR or ./.dialer)");
  app.add_option("--database-url", options.database_url,
                 "PostgreSQL URL (default: $DIALER_DATABASE_URL, else a private cluster in the state directory)");
  app.add_flag("--json", options.json, "Print machine-readable JSON");
  app.add_option("--account", options.account, "Account to act in (default: $DIALER_ACCOUNT, else 'default')");

  command_action run;
  add_db_commands(app, options, run);
  add_inventory_commands(app, options, run);
  add_campaign_commands(app, options, run);
  add_api_commands(app, options, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    fmt::print(stderr, "dialer: {}\nRun 'dialer --help' for usage.\n", message);
    return exit_invalid_input;
  }
  apply_environment(options);
  if (!run) return exit_invalid_input;
  try {
    return run();
  } catch (const dialer::dialer_exception& e) {
    return report(e.err());
  } catch (const std::exception& e) {
    return report(dialer::make_error(dialer::errc::internal, "unexpected error: {}", e.what()));
  }
}
