#include "adapters/postgres/process.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

namespace dialer::pg {

process_result run_process(const std::vector<std::string>& argv, const std::optional<run_as>& user) {
  process_result out;
  char path[] = "/tmp/dialer-proc-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) {
    out.output = std::string("cannot create a temporary file: ") + std::strerror(errno);
    return out;
  }
  ::unlink(path);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    out.output = std::string("fork failed: ") + std::strerror(errno);
    return out;
  }
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    // Only the three standard descriptors survive into the child program.
    for (int i = 3; i < 1024; ++i) ::close(i);
    ::setsid();
    if (user) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(user->gid) != 0 || ::setuid(user->uid) != 0) {
        std::fprintf(stderr, "cannot switch to user %s: %s\n", user->name.c_str(), std::strerror(errno));
        ::_exit(126);
      }
      ::setenv("USER", user->name.c_str(), 1);
      ::setenv("LOGNAME", user->name.c_str(), 1);
    }
    ::setenv("LC_ALL", "C.UTF-8", 1);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ::lseek(fd, 0, SEEK_SET);
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.output.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  while (!out.output.empty() && (out.output.back() == '\n' || out.output.back() == ' ')) out.output.pop_back();
  return out;
}

}  // namespace dialer::pg
