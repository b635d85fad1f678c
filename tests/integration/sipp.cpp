#include "tests/integration/sipp.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <gtest/gtest.h>
#include <iomanip>
#include <iostream>
#include <netinet/in.h>
#include <poll.h>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/support.hpp"

namespace dialer::testing {
namespace fs = std::filesystem;
namespace {

constexpr const char* kLoopback = "127.0.0.1";
constexpr std::string_view kSeparator = "-----------------------------------------------";  // 47 '-'

std::string sipp_binary() {
  if (const char* env = std::getenv("DIALER_SIPP_BINARY"); env && *env) return env;
  return "sipp";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool is_tcp(const std::string& transport) { return !transport.empty() && transport[0] == 't'; }

// True when a socket of `type` can be bound on 127.0.0.1:port right now.
bool bindable(int type, int port) {
  const int fd = ::socket(AF_INET, type, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, kLoopback, &a.sin_addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A port the kernel hands out for UDP on 127.0.0.1 that is also free for TCP there (SIPp's -t t1 listens on it).
int pick_free_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = 0;
    ::inet_pton(AF_INET, kLoopback, &a.sin_addr);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(fd);
    if (port != 0 && bindable(SOCK_DGRAM, port) && bindable(SOCK_STREAM, port)) return port;
  }
  throw std::runtime_error("no free port on 127.0.0.1");
}

// The inodes of the sockets on 127.0.0.1:port in /proc/net/udp (any state) or /proc/net/tcp (LISTEN only).
std::set<std::string> socket_inodes(bool tcp, int port) {
  std::ifstream in(tcp ? "/proc/net/tcp" : "/proc/net/udp");
  char want[32];
  std::snprintf(want, sizeof want, "0100007F:%04X", static_cast<unsigned>(port));
  std::set<std::string> inodes;
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    if (f.size() < 10 || f[1] != want) continue;
    if (tcp && f[3] != "0A") continue;
    inodes.insert(f[9]);
  }
  return inodes;
}

long long to_number(const std::map<std::string, std::string>& row, const std::string& column) {
  const auto it = row.find(column);
  if (it == row.end()) return 0;
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return 0;
  }
}

const std::map<std::string, std::string>& compact_forms() {
  // RFC 3261 section 7.3.3, and the compact forms registered since (RFC 3265, 3515, 3841, 3892, 4028, 4474).
  static const std::map<std::string, std::string> forms{
      {"i", "call-id"},        {"m", "contact"},        {"e", "content-encoding"}, {"l", "content-length"},
      {"c", "content-type"},   {"f", "from"},           {"s", "subject"},          {"k", "supported"},
      {"t", "to"},             {"v", "via"},            {"o", "event"},            {"u", "allow-events"},
      {"r", "refer-to"},       {"b", "referred-by"},    {"a", "accept-contact"},   {"j", "reject-contact"},
      {"d", "request-disposition"}, {"x", "session-expires"}, {"y", "identity"}, {"n", "identity-info"}};
  return forms;
}

}  // namespace

fs::path sip_scenario(const std::string& name) { return fs::path(DIALER_TEST_DATA_DIR) / "sip" / "scenarios" / name; }
fs::path sip_driver(const std::string& name) { return fs::path(DIALER_TEST_DATA_DIR) / "sip" / "drivers" / name; }

sipp_process::sipp_process(sipp_options o) : options_(std::move(o)) {
  std::string label = "sipp-" + (options_.scenario.empty() ? std::string("builtin") : options_.scenario.stem().string());
  dir_ = make_temp_dir(label);
  const bool pick = options_.port == 0;
  for (int attempt = 0;; ++attempt) {
    const int port = pick ? pick_free_port() : options_.port;
    if (start(port)) return;
    // SIPp exited before binding (or did not bind in time, then it is killed by now).
    const int code = exit_code_;
    const std::string out = output();
    const bool bind_failure = code == 254 || out.find("bind") != std::string::npos;
    if (pick && bind_failure && attempt < 4) {
      reaped_ = false;
      exit_code_ = -1;
      continue;
    }
    const std::string message = "SIPp did not start (exit code " + std::to_string(code) + ", port " +
                                std::to_string(port) + "): " + read_text(dir_ / "command") + out + "\n" + errors();
    // No destructor runs after a throw from here: clean up now (SIPp is reaped already).
    if (pidfd_ >= 0) ::close(pidfd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw std::runtime_error(message);
  }
}

bool sipp_process::start(int port) {
  port_ = port;
  std::vector<std::string> args;
  if (!options_.remote.empty()) args.push_back(options_.remote);
  if (!options_.scenario.empty()) {
    args.push_back("-sf");
    args.push_back(fs::absolute(options_.scenario).string());
  }
  const std::vector<std::string> common{
      "-i", kLoopback, "-p", std::to_string(port), "-t", options_.transport, "-m", std::to_string(options_.max_calls),
      "-nostdin", "-ci", kLoopback,
      "-trace_stat", "-stf", (dir_ / "stat.csv").string(), "-fd", "1",
      "-trace_msg", "-message_file", (dir_ / "messages.log").string(),
      "-trace_err", "-error_file", (dir_ / "errors.log").string(),
      "-trace_counts",  // <scenario>_<pid>_counts.csv, in the working directory: the run's directory
      "-timeout", std::to_string(options_.timeout.count()) + "s", "-timeout_error"};
  args.insert(args.end(), common.begin(), common.end());
  args.insert(args.end(), options_.extra.begin(), options_.extra.end());

  // spawn_program cannot set a working directory: a shell changes to the run's directory and becomes SIPp (exec),
  // so the pid is SIPp's own.
  std::vector<std::string> shell_args{"-c", "cd \"$0\" && exec \"$@\"", dir_.string(), sipp_binary()};
  shell_args.insert(shell_args.end(), args.begin(), args.end());
  {
    std::ofstream cmd(dir_ / "command");
    cmd << sipp_binary();
    for (const auto& a : args) cmd << " '" << a << "'";
    cmd << "\n";
  }
  pid_ = spawn_program("/bin/sh", shell_args, dir_ / "stdout", dir_ / "stderr");
  if (pid_ <= 0) throw std::runtime_error("cannot fork for SIPp");
  if (pidfd_ >= 0) ::close(pidfd_);
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));  // -1 on an old kernel: exited() then polls

  if (!options_.remote.empty()) return true;  // a UAC: do not wait for anything
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (port_bound()) return true;
    if (exited(2)) {  // waits at most 2 ms for an exit: the polling interval
      reap();
      return false;
    }
  }
  ::kill(pid_, SIGKILL);
  reap();
  return false;
}

sipp_process::~sipp_process() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    reap();
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const bool keep = std::getenv("DIALER_KEEP_SIPP_DIRS") != nullptr || (info && ::testing::Test::HasFailure());
  if (keep) {
    std::cerr << "SIPp run kept in " << dir_ << "\n";
  } else {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

int sipp_process::port() const { return port_; }
std::string sipp_process::address() const { return std::string(kLoopback) + ":" + std::to_string(port_); }
int sipp_process::pid() const { return pid_; }
const fs::path& sipp_process::directory() const { return dir_; }

bool sipp_process::port_bound() const {
  const auto inodes = socket_inodes(is_tcp(options_.transport), port_);
  if (inodes.empty()) return false;
  // The socket must be SIPp's own, not another process's that took the port meanwhile.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/fd", ec)) {
    std::error_code lec;
    const auto target = fs::read_symlink(entry.path(), lec).string();
    if (lec || target.rfind("socket:[", 0) != 0) continue;
    if (inodes.count(target.substr(8, target.size() - 9))) return true;
  }
  return false;
}

bool sipp_process::exited(int timeout_ms) {
  if (reaped_) return true;
  if (pidfd_ >= 0) {
    pollfd p{pidfd_, POLLIN, 0};
    int r;
    while ((r = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    return r > 0;
  }
  // No pidfd: look without reaping, every 2 ms.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    siginfo_t si{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid_)
      return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    ::poll(nullptr, 0, 2);
  }
}

int sipp_process::reap() {
  if (!reaped_) {
    exit_code_ = wait_for(pid_);
    reaped_ = true;
  }
  return exit_code_;
}

int sipp_process::wait(std::chrono::seconds deadline) {
  if (reaped_) return exit_code_;
  const auto ms = [](auto d) { return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
  if (!exited(ms(deadline))) {
    stop();
    if (!exited(5000)) ::kill(pid_, SIGKILL);
  }
  return reap();
}

void sipp_process::stop() {
  if (pid_ > 0 && !reaped_) ::kill(pid_, SIGUSR1);
}

bool sipp_process::running() const {
  if (reaped_) return false;
  siginfo_t si{};
  return !(::waitid(P_PID, static_cast<id_t>(pid_), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid_);
}

sipp_process::statistics sipp_process::final_statistics() const {
  statistics s;
  std::ifstream in(dir_ / "stat.csv");
  std::string header, line, last;
  if (!std::getline(in, header)) return s;
  while (std::getline(in, line))
    if (!trim(line).empty()) last = line;
  const auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::string cell;
    std::istringstream is(l);
    while (std::getline(is, cell, ';')) out.push_back(cell);
    return out;
  };
  const auto names = split(header);
  const auto values = split(last);
  for (size_t i = 0; i < names.size() && i < values.size(); ++i)
    if (!names[i].empty()) s.last_row[names[i]] = values[i];
  s.incoming = to_number(s.last_row, "IncomingCall(C)");
  s.outgoing = to_number(s.last_row, "OutgoingCall(C)");
  s.successful = to_number(s.last_row, "SuccessfulCall(C)");
  s.failed = to_number(s.last_row, "FailedCall(C)");
  s.retransmissions = to_number(s.last_row, "Retransmissions(C)");
  s.unexpected = to_number(s.last_row, "FailedUnexpectedMessage(C)");
  s.regexp_failed = to_number(s.last_row, "FailedRegexpDoesntMatch(C)") +
                    to_number(s.last_row, "FailedRegexpShouldntMatch(C)") +
                    to_number(s.last_row, "FailedRegexpHdrNotFound(C)");
  return s;
}

std::string sipp_process::messages() const { return read_text(dir_ / "messages.log"); }
std::string sipp_process::errors() const { return read_text(dir_ / "errors.log"); }
std::string sipp_process::output() const { return read_text(dir_ / "stdout") + read_text(dir_ / "stderr"); }

std::string sipp_process::report() const {
  std::ostringstream r;
  r << "SIPp " << (options_.scenario.empty() ? std::string("(built-in)") : options_.scenario.filename().string())
    << " on " << address() << ", exit code " << (reaped_ ? std::to_string(exit_code_) : std::string("(running)"))
    << ", directory " << dir_.string() << "\n  counters:";
  for (const auto& [name, value] : final_statistics().last_row) {
    if (name.size() < 3 || name.compare(name.size() - 3, 3, "(C)") != 0) continue;
    if (name.rfind("Elapsed", 0) == 0 || name.rfind("CallRate", 0) == 0 || name.rfind("CallLength", 0) == 0 ||
        name.rfind("ResponseTime", 0) == 0 || value.empty() || value == "0")
      continue;
    r << " " << name << "=" << value;
  }
  std::string errs = errors();
  if (errs.size() > 4000) errs = errs.substr(0, 4000) + "\n[...]";
  if (!errs.empty()) r << "\n  errors:\n" << errs;
  std::string err = read_text(dir_ / "stderr");  // a scenario that does not load, a socket that does not bind
  if (err.size() > 2000) err = "[...]" + err.substr(err.size() - 2000);
  if (!err.empty()) r << "\n  stderr:\n" << err;
  return r.str();
}

std::vector<sipp_process::received_message> sipp_process::received() const { return parse_message_log(messages()); }

std::vector<sipp_process::received_message> sipp_process::exchanged() const {
  return parse_message_log(messages(), true);
}

std::string sipp_process::received_message::header(const std::string& lower_case_name) const {
  const auto it = headers.find(lower_case_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string sipp_process::received_message::method() const {
  if (start_line.rfind("SIP/", 0) == 0) return {};
  return start_line.substr(0, start_line.find(' '));
}

int sipp_process::received_message::status() const {
  if (start_line.rfind("SIP/", 0) != 0) return 0;
  const auto sp = start_line.find(' ');
  if (sp == std::string::npos) return 0;
  try {
    return std::stoi(start_line.substr(sp + 1, 3));
  } catch (const std::exception&) {
    return 0;
  }
}

sipp_process::received_message sipp_process::parse_sip_message(const std::string& text) {
  received_message m;
  size_t head_end = text.find("\r\n\r\n");
  size_t body_start = head_end == std::string::npos ? std::string::npos : head_end + 4;
  if (head_end == std::string::npos) {
    head_end = text.find("\n\n");
    body_start = head_end == std::string::npos ? std::string::npos : head_end + 2;
  }
  const std::string head = text.substr(0, head_end);
  if (body_start != std::string::npos && body_start <= text.size()) m.body = text.substr(body_start);

  std::vector<std::string> lines;
  std::istringstream in(head);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (!lines.empty() && !l.empty() && (l[0] == ' ' || l[0] == '\t')) {
      lines.back() += " " + trim(l);  // a folded header line (RFC 3261 section 7.3.1)
      continue;
    }
    lines.push_back(l);
  }
  size_t i = 0;
  while (i < lines.size() && trim(lines[i]).empty()) ++i;  // tolerate leading CRLFs (keep-alives)
  if (i < lines.size()) m.start_line = lines[i++];
  for (; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(trim(std::string_view(lines[i]).substr(0, colon)));
    if (const auto it = compact_forms().find(name); it != compact_forms().end()) name = it->second;
    m.headers.emplace(name, trim(std::string_view(lines[i]).substr(colon + 1)));
  }
  return m;
}

// "2026-12-07 19:03:09.623610", after the separator: seconds since the epoch (the local time read as UTC: only
// differences between entries matter). 0 when it does not parse.
namespace {
double entry_time(std::string_view stamp) {
  std::tm tm{};
  std::istringstream in{std::string(stamp)};
  in >> std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
  if (in.fail()) return 0;
  double fraction = 0;
  if (in.peek() == '.') in >> fraction;
  return static_cast<double>(::timegm(&tm)) + fraction;
}
}  // namespace

std::vector<sipp_process::received_message> sipp_process::parse_message_log(const std::string& log,
                                                                             bool with_sent) {
  std::vector<received_message> out;
  // The start of the next entry at or after `from`: a line that begins with the separator.
  const auto next_entry = [&](size_t from) {
    for (size_t p = from; p < log.size();) {
      if ((p == 0 || log[p - 1] == '\n') && log.compare(p, kSeparator.size(), kSeparator) == 0) return p;
      const auto nl = log.find('\n', p);
      if (nl == std::string::npos) break;
      p = nl + 1;
    }
    return std::string::npos;
  };
  size_t pos = next_entry(0);
  while (pos != std::string::npos) {
    const size_t first_nl = log.find('\n', pos);
    if (first_nl == std::string::npos) break;
    const size_t second_nl = log.find('\n', first_nl + 1);
    if (second_nl == std::string::npos) break;
    const std::string title = log.substr(first_nl + 1, second_nl - first_nl - 1);
    // "UDP message received [330] bytes :" / "TCP message sent (244 bytes):" / "Unexpected UDP message received:"
    const bool is_received = title.find(" message received [") != std::string::npos;
    const bool is_sent = title.find(" message sent (") != std::string::npos;
    size_t count = std::string::npos;
    if (is_received || is_sent) {
      const auto open = title.find(is_received ? '[' : '(');
      try {
        count = std::stoul(title.substr(open + 1));
      } catch (const std::exception&) {
        count = std::string::npos;
      }
    }
    const size_t text_start = second_nl + 1 + (log.compare(second_nl + 1, 1, "\n") == 0 ? 1 : 0);
    size_t text_end;  // one past the message
    if (count != std::string::npos && text_start + count <= log.size() &&
        (text_start + count == log.size() || log[text_start + count] == '\n')) {
      text_end = text_start + count;  // exactly the bytes SIPp counted, even if the body holds a line of dashes
    } else {
      const size_t next = next_entry(text_start);
      text_end = next == std::string::npos ? log.size() : next;
      if (text_end > text_start && log[text_end - 1] == '\n') --text_end;  // the newline SIPp adds after the message
    }
    if ((is_received || (with_sent && is_sent)) && title.rfind("Unexpected", 0) != 0) {
      out.push_back(parse_sip_message(log.substr(text_start, text_end - text_start)));
      out.back().sent = is_sent;
      const size_t stamp = pos + kSeparator.size() + 1;  // after the separator and a space
      if (stamp < first_nl) out.back().at = entry_time(std::string_view(log).substr(stamp, first_nl - stamp));
    }
    pos = next_entry(text_end);
  }
  return out;
}

}  // namespace dialer::testing
