#pragma once
// Running helper programs (initdb, pg_ctl) at start-up, optionally as another user.
// Not for hot paths: it forks, waits and reads the output from a temporary file.

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace dialer::pg {

struct run_as {
  uid_t uid;
  gid_t gid;
  std::string name;
};

struct process_result {
  int exit_code = -1;  // -1 when the program could not be started or was killed
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (a full path) with argv, as `user` when given (requires root), with stdin from /dev/null.
// Output goes to a temporary file rather than a pipe because pg_ctl's server keeps inherited pipes open.
[[nodiscard]] process_result run_process(const std::vector<std::string>& argv, const std::optional<run_as>& user);

}  // namespace dialer::pg
