// dialer db status|start|stop: the embedded PostgreSQL cluster.
#include "adapters/postgres/embedded_cluster.hpp"
#include "app/commands.hpp"
#include "app/output.hpp"

namespace dialer::app {
namespace {

int print_status(const global_options& options, const pg::cluster_status& s) {
  if (options.json) {
    print_json({{"initialized", s.initialized},
                {"running", s.running},
                {"data_dir", s.data_dir.string()},
                {"socket_dir", s.socket_dir.string()},
                {"server_user", s.server_user},
                {"connection", s.connection_string}});
  } else {
    fmt::print("embedded PostgreSQL: {}\n", !s.initialized ? "not created yet" : s.running ? "running" : "stopped");
    fmt::print("data directory:      {}\n", s.data_dir.string());
    fmt::print("socket directory:    {}\n", s.socket_dir.string());
    if (!s.server_user.empty()) fmt::print("server runs as:      {}\n", s.server_user);
    fmt::print("connection:          {}\n", s.connection_string);
  }
  return exit_ok;
}

int external_database(const global_options& options) {
  if (auto r = pg::validate_database_url(options.database_url); !r) return report(r.error());
  return report(make_error(errc::invalid_input,
                           "'dialer db' manages the embedded cluster only; this process uses the external database "
                           "given by --database-url or DIALER_DATABASE_URL"));
}

}  // namespace

void add_db_commands(CLI::App& app, global_options& options, command_action& run) {
  auto* db = app.add_subcommand("db", "Control the embedded PostgreSQL cluster in the state directory");
  db->require_subcommand(1);
  db->add_subcommand("status", "Show whether the embedded cluster exists and runs")->callback([&] {
    run = [&] {
      if (!options.database_url.empty()) return external_database(options);
      pg::embedded_cluster cluster(options.state_dir);
      auto s = cluster.status();
      if (!s) return report(s.error());
      return print_status(options, *s);
    };
  });
  db->add_subcommand("start", "Create (once) and start the embedded cluster")->callback([&] {
    run = [&] {
      if (!options.database_url.empty()) return external_database(options);
      auto c = context::open(options);  // starts, creates the database and migrates
      if (!c) return report(c.error());
      pg::embedded_cluster cluster(options.state_dir);
      auto s = cluster.status();
      if (!s) return report(s.error());
      return print_status(options, *s);
    };
  });
  db->add_subcommand("stop", "Stop the embedded cluster (its data stays)")->callback([&] {
    run = [&] {
      if (!options.database_url.empty()) return external_database(options);
      pg::embedded_cluster cluster(options.state_dir);
      if (auto r = cluster.stop(); !r) return report(r.error());
      if (options.json)
        print_json({{"running", false}});
      else
        fmt::print("embedded PostgreSQL: stopped\n");
      return int{exit_ok};
    };
  });
}

}  // namespace dialer::app
