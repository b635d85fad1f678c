// fake_twilio: the fake Twilio REST API as a process, for the tests that start real `dialer serve` engines.
// Prints "listening on 127.0.0.1:PORT" once bound, runs until SIGTERM or SIGINT, then prints its counters as
// one JSON line and exits 0. Exit 1 when it cannot start, 2 for bad flags.
#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "tests/fakes/fake_twilio.hpp"

namespace {

nlohmann::json to_json(const dialer::fakes::fake_counters& c) {
  nlohmann::json answers = nlohmann::json::object();
  for (const auto& [status, n] : c.answers) answers[std::to_string(status)] = n;
  return {{"requests", c.requests},
          {"answers", answers},
          {"connections_accepted", c.connections_accepted},
          {"silent", c.silent},
          {"resets", c.resets},
          {"delayed_peak", c.delayed_peak},
          {"calls_created", c.calls_created},
          {"calls_ended", c.calls_ended},
          {"calls_settled", c.calls_settled},
          {"finals_delivered", c.finals_delivered},
          {"callback_posts", c.callback_posts},
          {"callbacks_sent", c.callbacks_sent},
          {"callback_retries", c.callback_retries},
          {"callbacks_failed", c.callbacks_failed},
          {"callbacks_bad_signed", c.callbacks_bad_signed},
          {"amd_callbacks_sent", c.amd_callbacks_sent},
          {"cancels", c.cancels},
          {"hangups", c.hangups}};
}

}  // namespace

int main(int argc, char** argv) {
  dialer::fakes::fake_twilio_options o;
  CLI::App app{"A fake of Twilio's Programmable Voice REST API (the Calls resource), for the tests"};
  int latency_ms = 0, ring_ms = static_cast<int>(o.ring.count()), talk_ms = static_cast<int>(o.talk.count());
  int late_ms = static_cast<int>(o.late_by.count());
  auto& r = o.rates;
  app.add_option("--port", o.port, "Port on 127.0.0.1 (0: an ephemeral one)")->capture_default_str();
  app.add_option("--auth-token", o.auth_token, "The account's auth token (also signs the callbacks)");
  app.add_option("--account-sid", o.account_sid, "The account SID (AC...)")->capture_default_str();
  app.add_option("--log", o.log_path, "Append one JSON line per created call to this file");
  app.add_option("--threads", o.threads, "I/O threads")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--latency-ms", latency_ms, "Delay of every REST answer")->check(CLI::NonNegativeNumber);
  app.add_option("--ring-ms", ring_ms, "Create -> ringing, and ringing -> no-answer")->capture_default_str();
  app.add_option("--talk-ms", talk_ms, "Answered -> completed")->capture_default_str();
  app.add_option("--late-ms", late_ms, "Delay of a late final callback")->capture_default_str();
  app.add_option("--time-scale", o.time_scale, "Reported seconds = real ms * scale / 1000")
      ->capture_default_str();
  app.add_option("--callback-authority", o.callback_authority, "host:port to post every callback to");
  app.add_option("--verified-from", o.verified_from, "A verified caller ID (repeatable; none: any From)");
  app.add_option("--seed", o.seed, "Seed of the fault decisions")->capture_default_str();
  app.add_flag("--resend-after-bad-signature", o.resend_after_bad_signature,
               "Resend each badly signed callback rightly signed");
  const auto rate = [&](const char* flag, double& value, const char* what) {
    app.add_option(flag, value, what)->check(CLI::Range(0.0, 1.0));
  };
  rate("--throttle", r.throttle, "Rate of 429 answers to a create");
  rate("--error-unprocessed", r.error_unprocessed, "Rate of 500/503 answers to a create, nothing created");
  rate("--timeout-created", r.timeout_created, "Rate of creates answered never, the call created");
  rate("--timeout-not-created", r.timeout_not_created, "Rate of creates answered never, nothing created");
  rate("--reset-created", r.reset_created, "Rate of creates reset, the call created");
  rate("--reset-not-created", r.reset_not_created, "Rate of creates reset, nothing created");
  rate("--late", r.late, "Rate of calls whose final callback is late");
  rate("--twice", r.twice, "Rate of calls whose callbacks are all sent twice");
  rate("--out-of-order", r.out_of_order, "Rate of calls whose final callback comes before ringing/answered");
  rate("--never", r.never, "Rate of calls without any callback");
  rate("--bad-signature", r.bad_signature, "Rate of calls whose callbacks are badly signed");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  o.latency = std::chrono::milliseconds(latency_ms);
  o.ring = std::chrono::milliseconds(ring_ms);
  o.talk = std::chrono::milliseconds(talk_ms);
  o.late_by = std::chrono::milliseconds(late_ms);

  // The fake's threads inherit the mask: the signals reach sigwait() below only.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    dialer::fakes::fake_twilio fake(o);
    fake.start();
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(fake.port()));
    std::fflush(stdout);
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    fake.stop();
    std::printf("%s\n", to_json(fake.counters()).dump().c_str());
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::cerr << "fake_twilio: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
