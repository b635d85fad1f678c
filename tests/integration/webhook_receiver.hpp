#pragma once
// The platform's side of event webhooks, for the tests: node tests/lint/webhook-receiver.js (the `standardwebhooks`
// library verifies every request) on a free loopback port, its mode switched over HTTP, its log read back.
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/e2e_fixture.hpp"
#include "tests/integration/http_client.hpp"

namespace dialer::testing::e2e {

// The receiving platform: node tests/lint/webhook-receiver.js on a free loopback port.
class receiver {
  using json = nlohmann::json;

 public:
  // `tls`: certificate and key files (PEM) to serve https with.
  receiver(const fs::path& dir, const std::vector<std::string>& secrets, bool simulated_time = false,
           std::optional<std::pair<fs::path, fs::path>> tls = std::nullopt)
      : log_(dir / "receiver.log") {
    fs::create_directories(dir);
    std::string joined;
    for (const auto& s : secrets) joined += (joined.empty() ? "" : ",") + s;
    std::vector<std::string> args{std::string(DIALER_TEST_DATA_DIR) + "/../lint/webhook-receiver.js", log_.string(),
                                  joined};
    if (simulated_time) args.push_back("--simulated-time");
    if (tls) args.insert(args.end(), {"--tls", tls->first.string(), tls->second.string()});
    tls_ = tls.has_value();
    process_ = std::make_unique<background_dialer>(
        spawn_program("node", args, dir / "receiver.out", dir / "receiver.err"), dir / "receiver.out",
        dir / "receiver.err");
    static const std::regex listening(R"(listening on ([0-9]+))");
    const bool up = campaign_test_eventually([&] {
      std::smatch m;
      const auto out = process_->out();
      if (!std::regex_search(out, m, listening)) return false;
      port_ = static_cast<unsigned short>(std::stoi(m[1]));
      return true;
    });
    EXPECT_TRUE(up) << "the receiver did not start (scripts/test-tools.sh installs its npm library): "
                    << process_->err();
  }

  [[nodiscard]] std::string url() const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_) + "/hooks";
  }
  void mode(const std::string& m) const {
    EXPECT_FALSE(tls_) << "modes are switched over plain HTTP only";
    const auto r = http_client(port_).request(boost::beast::http::verb::post, "/__mode", m);
    EXPECT_EQ(r.status, 204u) << "the receiver's mode";
  }
  [[nodiscard]] std::vector<json> log() const {
    std::vector<json> out;
    std::istringstream in(read_text(log_));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }
  // The ids the receiver processed (verified, first time), and any request that did not verify.
  [[nodiscard]] std::multiset<std::string> processed() const {
    std::multiset<std::string> ids;
    for (const auto& e : log())
      if (e.value("answer", json()) == 200 && !e.value("duplicate", false)) ids.insert(e["id"].get<std::string>());
    return ids;
  }
  [[nodiscard]] std::vector<json> invalid() const {
    std::vector<json> out;
    for (const auto& e : log())
      if (e.contains("valid") && !e["valid"].get<bool>()) out.push_back(e);
    return out;
  }

 private:
  template <class F>
  static bool campaign_test_eventually(F f) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      if (f()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling interval of the condition
    }
    return false;
  }
  fs::path log_;
  std::unique_ptr<background_dialer> process_;
  unsigned short port_ = 0;
  bool tls_ = false;
};

}  // namespace dialer::testing::e2e
