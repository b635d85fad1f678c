#pragma once
// Shared by the end-to-end campaign tests (campaign_run_test.cpp, crash_safety_test.cpp): a fresh database and
// a scratch folder per test, campaign files made from the templates in tests/data/e2e, dialer processes run in
// the foreground or the background, polling the database for an event with a deadline, and the invariants every
// finished campaign must satisfy.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

#include "tests/integration/support.hpp"

namespace dialer::testing::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline const fs::path data_dir = fs::path(DIALER_TEST_DATA_DIR) / "e2e";

// A dialer started in the background. If the test ends without waiting for it, it is killed and reaped, so a
// failed test never leaves a process dialing behind it.
class background_dialer {
 public:
  background_dialer(int pid, fs::path out, fs::path err) : pid_(pid), out_(std::move(out)), err_(std::move(err)) {}
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

class campaign_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    url_ = fresh_database(name);
    dir_ = make_temp_dir(name);
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "files of the failed test kept in %s\n", dir_.c_str());
    else fs::remove_all(dir_);
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
  run_result dialer_json(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) const {
    return run_dialer(with_database(std::move(args), true), env);
  }
  std::unique_ptr<background_dialer> start(std::vector<std::string> args, const std::string& tag,
                                           const std::map<std::string, std::string>& env = {}) const {
    const auto out = dir_ / (tag + ".out");
    const auto err = dir_ / (tag + ".err");
    const int pid = spawn_dialer(with_database(std::move(args), true), out, err, env);
    return std::make_unique<background_dialer>(pid, out, err);
  }

  // A template from tests/data/e2e copied into the test's folder with every @TOKEN@ replaced (@DATA@ is the
  // template folder). A token left over is a test bug and fails here.
  fs::path campaign_file(const std::string& template_name, std::map<std::string, std::string> tokens) const {
    std::string text = read_text(data_dir / template_name);
    tokens.emplace("DATA", data_dir.string());
    for (const auto& [key, value] : tokens) {
      const std::string token = "@" + key + "@";
      for (auto at = text.find(token); at != std::string::npos; at = text.find(token, at + value.size()))
        text.replace(at, token.size(), value);
    }
    EXPECT_EQ(text.find('@'), std::string::npos) << template_name << " has a token the test did not fill:\n" << text;
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

  // Polls `condition` (a few database reads) every 20 ms until it holds. False when `deadline` passes first or
  // when `process` (if given) exits meanwhile; the caller fails with its own message.
  static bool eventually(const std::function<bool()>& condition, background_dialer* process = nullptr,
                         std::chrono::seconds deadline = 60s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      if (condition()) return true;
      if (process && process->exited()) return condition();
      std::this_thread::sleep_for(20ms);  // polling interval of the condition, not a guess at how long it takes
    }
    return false;
  }

  std::int64_t attempts() const { return scalar("SELECT count(*) FROM call_attempts"); }
  std::int64_t open_attempts() const { return scalar("SELECT count(*) FROM call_attempts WHERE outcome IS NULL"); }
  // Contact blocks an engine holds (claimed, lease not given back).
  std::int64_t held_blocks() const { return scalar("SELECT count(*) FROM contact_blocks WHERE claimed_by IS NOT NULL"); }
  std::string campaign_state(const std::string& name) const {
    auto rows = query("SELECT state FROM campaigns WHERE name = '" + name + "'");
    return rows.empty() ? std::string("<none>") : rows[0][0].as<std::string>();
  }

  // The invariants of a finished campaign, read from the database: every imported contact is in one terminal
  // state, no (contact, attempt_no) was dialed twice, every attempt has an outcome, no contact exceeded
  // max_attempts, and nothing was dialed after an outcome that ends a contact.
  void expect_settled(int max_attempts) const {
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state NOT IN ('done', 'cancelled', 'do_not_call', 'invalid')"), 0)
        << table("SELECT state, pending_reason, count(*) FROM contacts GROUP BY 1, 2");
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts"), scalar("SELECT sum(import_accepted) FROM campaigns"));
    EXPECT_EQ(scalar("SELECT count(*) FROM (SELECT 1 FROM call_attempts GROUP BY contact_id, attempt_no "
                     "HAVING count(*) > 1) twice"), 0);
    EXPECT_EQ(open_attempts(), 0) << table("SELECT id, contact_id, attempt_no, engine_id FROM call_attempts "
                                           "WHERE outcome IS NULL LIMIT 20");
    EXPECT_EQ(scalar(fmt::format("SELECT count(*) FROM (SELECT 1 FROM call_attempts GROUP BY contact_id "
                                 "HAVING count(*) > {}) over_cap", max_attempts)), 0);
    // The contact's counter agrees with its attempt rows, and those are numbered 1..n with no gap.
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts c LEFT JOIN (SELECT contact_id, count(*) AS n, max(attempt_no) "
                     "AS top FROM call_attempts GROUP BY 1) a ON a.contact_id = c.id "
                     "WHERE c.attempts <> coalesce(a.n, 0) OR coalesce(a.top, 0) <> coalesce(a.n, 0)"), 0)
        << table("SELECT c.id, c.state, c.attempts, array_agg(a.attempt_no) FROM contacts c JOIN call_attempts a "
                 "ON a.contact_id = c.id GROUP BY 1, 2, 3 HAVING c.attempts <> count(*) LIMIT 10");
    EXPECT_EQ(scalar("SELECT count(*) FROM call_attempts a JOIN call_attempts later ON later.contact_id = "
                     "a.contact_id AND later.attempt_no > a.attempt_no "
                     "WHERE a.outcome IN ('completed', 'voicemail', 'canceled', 'unknown')"), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state = 'done' AND attempts = 0"), 0);
    EXPECT_EQ(scalar("SELECT count(*) FROM contacts WHERE state IN ('do_not_call', 'invalid') AND attempts > 0"), 0);
  }

  std::string url_;
  fs::path dir_;
};

}  // namespace dialer::testing::e2e
