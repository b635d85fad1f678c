#pragma once
// Shared by the end-to-end campaign tests (campaign_run_test.cpp, crash_safety_test.cpp): a fresh database
// and a scratch folder per test, campaign files made from the templates in tests/data/e2e, dialer processes
// run in the foreground or the background, polling the database for an event with a deadline, and the
// invariants every finished campaign must satisfy.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/support.hpp"

namespace dialer::testing::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline const fs::path data_dir = fs::path(DIALER_TEST_DATA_DIR) / "e2e";

// The simulated carrier's own record of what it placed (one line per call placed and ended, in every process
// that ran the campaign), read back as calls with their real start and end times.
struct carrier_call {
  std::int64_t attempt = 0;
  std::string key;
  std::int64_t contact = 0;
  std::string from, to;
  std::int64_t placed_ns = 0;
  std::optional<std::int64_t> ended_ns;  // nullopt: its process died (or stopped at once) while it ran
  std::int64_t plan_ends_ns =
      0;        // when the carrier's plan for it ends: it talks on at the carrier until then
  int pid = 0;  // the process whose simulated carrier placed it
};

inline std::vector<carrier_call> read_carrier_log(const fs::path& path) {
  std::vector<carrier_call> calls;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      ADD_FAILURE() << "carrier log line is not JSON: " << line;
      continue;
    }
    if (j["event"] == "placed") {
      calls.push_back({j["attempt"].get<std::int64_t>(),
                       j["key"].get<std::string>(),
                       j["contact"].get<std::int64_t>(),
                       j["from"].get<std::string>(),
                       j["to"].get<std::string>(),
                       j["at_ns"].get<std::int64_t>(),
                       {},
                       j["ends_ns"].get<std::int64_t>(),
                       j["pid"].get<int>()});
    } else {
      // The latest placement of that key without an end.
      for (auto it = calls.rbegin(); it != calls.rend(); ++it)
        if (it->key == j["key"].get<std::string>() && !it->ended_ns) {
          it->ended_ns = j["at_ns"].get<std::int64_t>();
          break;
        }
    }
  }
  return calls;
}

// A dialer started in the background. If the test ends without waiting for it, it is killed and reaped, so a
// failed test never leaves a process dialing behind it.
class background_dialer {
 public:
  background_dialer(int pid, fs::path out, fs::path err)
      : pid_(pid), out_(std::move(out)), err_(std::move(err)) {}
  ~background_dialer() {
    if (!code_) {
      ::kill(pid_, SIGKILL);
      (void)wait();
    }
  }
  background_dialer(const background_dialer&) = delete;
  background_dialer& operator=(const background_dialer&) = delete;

  [[nodiscard]] int pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }
  // The exit code (128 + signal when killed) once the process has ended; nullopt while it runs.
  std::optional<int> exited() {
    if (code_) return code_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) code_ = decode(status);
    return code_;
  }
  int wait() {
    if (code_) return *code_;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    code_ = decode(status);
    return *code_;
  }
  [[nodiscard]] std::string out() const { return read_text(out_); }
  [[nodiscard]] std::string err() const { return read_text(err_); }

 private:
  static int decode(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }
  int pid_;
  fs::path out_, err_;
  std::optional<int> code_;
};

// A `dialer serve` with its HTTP port (the one it printed once it listened).
struct serving_dialer {
  std::unique_ptr<background_dialer> process;
  unsigned short port = 0;
};

class campaign_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    url_ = fresh_database(name);
    dir_ = make_temp_dir(name);
  }
  void TearDown() override {
    if (HasFailure())
      std::fprintf(stderr, "files of the failed test kept in %s\n", dir_.c_str());
    else
      fs::remove_all(dir_);
  }

  // Global options first: `dialer --database-url URL [--json] COMMAND ...`.
  std::vector<std::string> with_database(std::vector<std::string> args, bool json = false) const {
    if (json) args.insert(args.begin(), "--json");
    args.insert(args.begin(), {"--database-url", url_});
    return args;
  }
  run_result dialer(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) const {
    return run_dialer(with_database(std::move(args)), env);
  }
  run_result dialer_json(std::vector<std::string> args,
                         const std::map<std::string, std::string>& env = {}) const {
    return run_dialer(with_database(std::move(args), true), env);
  }
  std::unique_ptr<background_dialer> start(std::vector<std::string> args, const std::string& tag,
                                           const std::map<std::string, std::string>& env = {}) const {
    const auto out = dir_ / (tag + ".out");
    const auto err = dir_ / (tag + ".err");
    const int pid = spawn_dialer(with_database(std::move(args), true), out, err, env);
    return std::make_unique<background_dialer>(pid, out, err);
  }

  // `dialer serve --listen 127.0.0.1:0 ARGS...`, once it says where it listens.
  serving_dialer serve_on_any_port(const std::string& tag, const std::vector<std::string>& extra = {},
                                   const std::map<std::string, std::string>& env = {}) const {
    std::vector<std::string> args{"serve", "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    serving_dialer s{start(args, tag, env), 0};
    static const std::regex listening(R"(listening on http://127\.0\.0\.1:([0-9]+))");
    const bool up = eventually(
        [&] {
          std::smatch m;
          const auto out = s.process->out();
          if (!std::regex_search(out, m, listening)) return false;
          s.port = static_cast<unsigned short>(std::stoi(m[1]));
          return true;
        },
        s.process.get(), std::chrono::seconds(30));
    EXPECT_TRUE(up) << "the server never said where it listens: " << s.process->err();
    return s;
  }

  // A template from tests/data/e2e copied into the test's folder with every @TOKEN@ replaced (@DATA@ is the
  // template folder). A token left over is a test bug and fails here.
  fs::path campaign_file(const std::string& template_name, std::map<std::string, std::string> tokens) const {
    std::string text = read_text(data_dir / template_name);
    tokens.emplace("DATA", data_dir.string());
    tokens.emplace("CALL_LOG", carrier_log().string());
    for (const auto& [key, value] : tokens) {
      const std::string token = "@" + key + "@";
      for (auto at = text.find(token); at != std::string::npos; at = text.find(token, at + value.size()))
        text.replace(at, token.size(), value);
    }
    EXPECT_EQ(text.find('@'), std::string::npos) << template_name << " has a token the test did not fill:\n"
                                                 << text;
    const auto path = dir_ / template_name;
    std::ofstream(path) << text;
    return path;
  }

  std::int64_t scalar(const std::string& sql) const {
    auto c = connect_to(url_);
    pqxx::nontransaction tx(*c);
    auto row = tx.exec1(sql);
    return row[0].is_null() ? 0 : row[0].as<std::int64_t>();
  }
  pqxx::result query(const std::string& sql) const {
    auto c = connect_to(url_);
    pqxx::nontransaction tx(*c);
    return tx.exec(sql);
  }
  // A small table as text, for failure messages.
  std::string table(const std::string& sql) const {
    std::string out;
    for (const auto& row : query(sql)) {
      for (const auto& field : row) out += std::string(field.is_null() ? "NULL" : field.c_str()) + "\t";
      out += "\n";
    }
    return out;
  }

  // Polls `condition` (a few database reads) every 20 ms until it holds. False when `deadline` passes first
  // or when `process` (if given) exits meanwhile; the caller fails with its own message.
  static bool eventually(const std::function<bool()>& condition, background_dialer* process = nullptr,
                         std::chrono::seconds deadline = 60s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      if (condition()) return true;
      if (process && process->exited()) return condition();
      std::this_thread::sleep_for(
          20ms);  // polling interval of the condition, not a guess at how long it takes
    }
    return false;
  }

  std::int64_t attempts() const { return scalar("SELECT count(*) FROM call_attempts"); }
  std::int64_t open_attempts() const {
    return scalar("SELECT count(*) FROM call_attempts WHERE outcome IS NULL");
  }
  // Contact blocks an engine holds (claimed, lease not given back).
  std::int64_t held_blocks() const {
    return scalar("SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL");
  }
  std::string campaign_state(const std::string& name) const {
    auto rows = query("SELECT state FROM campaigns WHERE name = '" + name + "'");
    return rows.empty() ? std::string("<none>") : rows[0][0].as<std::string>();
  }

  fs::path carrier_log() const { return dir_ / "carrier.log"; }
  std::vector<carrier_call> carrier_calls() const { return read_carrier_log(carrier_log()); }
  // What the carrier saw must keep the invariants, whatever the engine believed: no idempotency key (attempt)
  // placed twice, no contact in two calls at once, and per caller ID no more calls at once than its
  // max_concurrent_calls nor more starts in any one-second window than its max_cps (from the numbers table).
  // A call whose process was killed (or stopped at once) has no ended line: it talks on at the carrier until
  // its plan ends, as the carrier's lookup reports it to the next run, and holds its caller ID's slot until
  // then.
  void expect_carrier_kept_the_limits() const {
    auto calls = carrier_calls();
    ASSERT_FALSE(calls.empty()) << "the carrier log " << carrier_log() << " is empty";
    for (auto& c : calls)
      if (!c.ended_ns) c.ended_ns = c.plan_ends_ns;
    const std::int64_t last = 0;  // every call has an end now
    std::map<std::string, int> keys;
    for (const auto& c : calls) EXPECT_EQ(++keys[c.key], 1) << "attempt " << c.attempt << " was placed twice";
    std::map<std::int64_t, std::vector<const carrier_call*>> by_contact;
    for (const auto& c : calls) by_contact[c.contact].push_back(&c);
    for (const auto& [contact, list] : by_contact)
      for (std::size_t i = 0; i + 1 < list.size(); ++i)
        EXPECT_GE(list[i + 1]->placed_ns, list[i]->ended_ns.value_or(last))
            << "contact " << contact << " had two calls at once";
    for (const auto& row : query("SELECT e164, max_concurrent_calls, max_cps FROM numbers")) {
      const auto e164 = row[0].as<std::string>();
      const int cap = row[1].as<int>();
      const double cps = row[2].as<double>();
      std::vector<std::pair<std::int64_t, int>> edges;
      std::vector<std::int64_t> starts;
      for (const auto& c : calls) {
        if (c.from != e164) continue;
        edges.emplace_back(c.placed_ns, +1);
        edges.emplace_back(c.ended_ns.value_or(last), -1);
        starts.push_back(c.placed_ns);
      }
      std::sort(edges.begin(), edges.end());  // an end sorts before a start at the same instant
      int now = 0, peak = 0;
      for (const auto& [t, d] : edges) peak = std::max(peak, now += d);
      EXPECT_LE(peak, cap) << e164 << ": " << peak << " calls at once, limit " << cap;
      std::sort(starts.begin(), starts.end());
      const int per_second = std::max(1, static_cast<int>(cps));
      for (std::size_t i = per_second; i < starts.size(); ++i)
        if (cps >= 1) {
          EXPECT_GE(starts[i] - starts[i - per_second], 1'000'000'000)
              << e164 << ": " << per_second + 1 << " starts within one second, max_cps " << cps;
        }
    }
  }

  // The invariants of a finished campaign, read from the database: every imported contact is in one terminal
  // state, no (contact, attempt_no) was dialed twice, every attempt has an outcome, no contact exceeded
  // max_attempts, and nothing was dialed after an outcome that ends a contact.
  void expect_settled(int max_attempts) const {
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state NOT IN ('done', 'cancelled', 'do_not_call', "
                     "'invalid')"),
              0)
        << table("SELECT state, pending_reason, count(*) FROM contacts GROUP BY 1, 2");
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts"), scalar("SELECT sum(import_accepted) FROM campaigns"));
    // Never dialed twice, and every cap kept: from the carrier's own log, not from the attempts' primary key.
    expect_carrier_kept_the_limits();
    EXPECT_EQ(open_attempts(), 0) << table(
        "SELECT id, contact_id, attempt_no, engine_id FROM call_attempts "
        "WHERE outcome IS NULL LIMIT 20");
    EXPECT_EQ(scalar(fmt::format("SELECT count(*) FROM (SELECT 1 FROM call_attempts GROUP BY contact_id "
                                 "HAVING count(*) > {}) over_cap",
                                 max_attempts)),
              0);
    // The contact's counter agrees with its attempt rows, and those are numbered 1..n with no gap.
    EXPECT_EQ(
        scalar("SELECT count(*) FROM contacts c LEFT JOIN (SELECT contact_id, count(*) AS n, max(attempt_no) "
               "AS top FROM call_attempts GROUP BY 1) a ON a.contact_id = c.id "
               "WHERE c.attempts <> coalesce(a.n, 0) OR coalesce(a.top, 0) <> coalesce(a.n, 0)"),
        0)
        << table(
               "SELECT c.id, c.state, c.attempts, array_agg(a.attempt_no) FROM contacts c JOIN call_attempts "
               "a "
               "ON a.contact_id = c.id GROUP BY 1, 2, 3 HAVING c.attempts <> count(*) LIMIT 10");
    EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts a JOIN call_attempts later ON later.contact_id = "
                     "a.contact_id AND later.attempt_no > a.attempt_no "
                     "WHERE a.outcome IN ('completed', 'voicemail', 'canceled', 'unknown')"),
              0);
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'done' AND attempts = 0"), 0);
    EXPECT_EQ(
        scalar("SELECT count(*) FROM contacts WHERE state IN ('do_not_call', 'invalid') AND attempts > 0"),
        0);
  }

  std::string url_;
  fs::path dir_;
};

}  // namespace dialer::testing::e2e
