#pragma once
// SIPp 3.6.1 as a peer in the integration tests: a trunk or an agent (a UAS) on 127.0.0.1, or a small UAC that imitates
// the controller (tests/data/sip/README.md). Each process keeps all its output in its own temporary directory (removed
// when the process object goes, unless the running test has failed or DIALER_KEEP_SIPP_DIRS is set): the statistics
// CSV, the message log, the error log, the per-message counts, stdout and stderr (the final screens).
//
//   sipp_process trunk({.scenario = sip_scenario("trunk_answer.xml")});     // returns once its port is bound
//   ... point the adapter at trunk.address() and dial ...
//   EXPECT_EQ(trunk.wait(std::chrono::seconds(20)), 0) << trunk.report();   // 0: every call successful
//   EXPECT_EQ(trunk.final_statistics().successful, 1);
//   for (const auto& m : trunk.received()) ...                             // what the adapter sent
//
// SIPp's exit codes: 0 every call successful, 1 at least one failed, 97 exit on an internal command, 99 normal exit
// without any call processed, 255 fatal (also the -timeout_error timeout), 254 fatal while binding a socket.
// wait() answers 128 + signal when it had to kill SIPp.

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace dialer::testing {

std::filesystem::path sip_scenario(const std::string& name);  // DIALER_TEST_DATA_DIR "/sip/scenarios/" + name
std::filesystem::path sip_driver(const std::string& name);     // DIALER_TEST_DATA_DIR "/sip/drivers/" + name

struct sipp_options {
  std::filesystem::path scenario;    // a file in tests/data/sip/scenarios (sip_scenario()); empty: give -sn in extra
  int port = 0;                      // 0: pick a free port on 127.0.0.1 (checked free), reported by port()
  std::string transport = "u1";      // u1 | t1
  int max_calls = 1;                 // -m
  std::vector<std::string> extra;    // extra args (e.g. -set hold 500, -key attempt 42, -inf file.csv)
  std::chrono::seconds timeout{60};  // -timeout Ns -timeout_error
  // Beyond the UAS: "host:port" makes this SIPp a UAC calling that address (the drivers of tests/data/sip/drivers).
  // The constructor then returns as soon as SIPp is started, since a short call may be over before it could look.
  std::string remote;
};

class sipp_process {
 public:
  // Starts SIPp (-nostdin -i 127.0.0.1 -ci 127.0.0.1, statistics every second, message, error and counts traces)
  // and, for a UAS, returns once its SIP socket is bound (a socket of SIPp's own in /proc/net/udp, or listening in
  // /proc/net/tcp, within 10 s). With port 0, a port taken by someone else in between is retried with another one.
  // Throws std::runtime_error (with SIPp's output) when SIPp exits or does not bind in time.
  explicit sipp_process(sipp_options o);
  ~sipp_process();  // kills SIPp if it is still running
  sipp_process(const sipp_process&) = delete;
  sipp_process& operator=(const sipp_process&) = delete;

  int port() const;
  std::string address() const;  // "127.0.0.1:<port>"
  int pid() const;
  const std::filesystem::path& directory() const;

  // Waits for SIPp to exit; after `deadline`, a soft stop (SIGUSR1: no new calls, finish the running ones) and 5 s
  // more, then SIGKILL. Returns SIPp's exit code (0 = every call successful). Later calls return the same code.
  int wait(std::chrono::seconds deadline);
  void stop();  // SIGUSR1, a soft stop
  bool running() const;

  struct statistics {
    long long incoming = 0, outgoing = 0, successful = 0, failed = 0, retransmissions = 0, unexpected = 0,
              regexp_failed = 0;  // regexp_failed: FailedRegexpDoesntMatch + FailedRegexpShouldntMatch + ...HdrNotFound
    std::map<std::string, std::string> last_row;  // every column of the last row, by its header ("FailedCall(C)")
  };
  // The last row of the statistics CSV (written again when SIPp exits), its cumulative (C) columns. SIPp counts a
  // failed call under its last failed check only.
  statistics final_statistics() const;
  std::string messages() const;  // the -trace_msg log
  std::string errors() const;    // the -trace_err log (the failed checks are there, with what was looked at)
  std::string output() const;    // stdout and stderr (SIPp's final screens)
  // A summary for assertion messages: directory, exit code, non-zero (C) counters, the head of the error log.
  std::string report() const;

  // Every SIP message SIPp received, from the message log: the start line, the headers (name lower-cased, compact
  // forms expanded: "i" -> "call-id"; each header line one value, not split at commas; folded lines joined) and the
  // body (the bytes after the empty line).
  struct received_message {
    std::string start_line;
    std::multimap<std::string, std::string> headers;
    std::string body;
    bool sent = false;  // a message SIPp sent (exchanged() only)
    double at = 0;      // when SIPp logged it: seconds since the epoch, read from the entry's local time
    std::string header(const std::string& lower_case_name) const;  // the first value, "" without one
    std::string method() const;                                     // "INVITE", or "" for a response
    int status() const;                                             // 486, or 0 for a request
  };
  std::vector<received_message> received() const;
  // Every message SIPp received or sent, in the log's order (retransmissions included).
  std::vector<received_message> exchanged() const;
  // The parser behind received(), for any SIPp 3.6.1 message log. Each entry starts with a line of 47 '-' (and a
  // timestamp), then "<TRANSPORT> message received [N] bytes :", an empty line and the N bytes of the message.
  // Entries of sent messages ("message sent (N bytes):") and the others ("Unexpected UDP message received:", ...)
  // are skipped.
  static std::vector<received_message> parse_message_log(const std::string& log, bool with_sent = false);
  static received_message parse_sip_message(const std::string& text);

 private:
  bool start(int port);
  bool exited(int timeout_ms);  // true once SIPp has exited (not reaped)
  bool port_bound() const;
  int reap();

  sipp_options options_;
  std::filesystem::path dir_;
  int port_ = 0;
  int pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
};

}  // namespace dialer::testing
