#pragma once
// Integration test support: a throwaway PostgreSQL cluster per test run (started by the ctest fixture
// `pg_cluster_start` through our own `dialer db start`, or by this file when a test binary runs alone),
// one fresh database per test, and a way to run the real `dialer` binary.

#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <pqxx/connection>
#include <string>
#include <vector>

namespace dialer::testing {

// Creates a new database in the run's cluster, migrated up to `schema_version` (every migration by default),
// and returns its libpq URL.
std::string fresh_database(const std::string& label, int schema_version = std::numeric_limits<int>::max());
std::unique_ptr<pqxx::connection> connect_to(const std::string& url);

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the dialer binary with the given arguments (and extra environment), waiting for it to exit.
run_result run_dialer(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});

// Starts the dialer binary without waiting; returns the pid. Output goes to files in `dir`.
int spawn_dialer(const std::vector<std::string>& args, const std::filesystem::path& out_file,
                 const std::filesystem::path& err_file, const std::map<std::string, std::string>& env = {});
// Any program (found on PATH when the name has no '/'), the same way.
int spawn_program(const std::string& program, const std::vector<std::string>& args,
                  const std::filesystem::path& out_file, const std::filesystem::path& err_file,
                  const std::map<std::string, std::string>& env = {});
// Waits for a spawned process; returns its exit code (or 128 + signal).
int wait_for(int pid);

std::filesystem::path make_temp_dir(const std::string& label);
std::string read_text(const std::filesystem::path& p);

}  // namespace dialer::testing
