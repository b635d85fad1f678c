#pragma once
// The Twilio carrier: places calls through Programmable Voice's REST API (POST .../Calls.json), hands the answered
// callee to the agent with TwiML, and learns each call's end from Twilio's signed status callbacks.
//
// - Placing: a form POST per call on a keep-alive HTTPS pool (rest::http_pool), as many in flight as the pool's
//   connections; the StatusCallback URL names this adapter instance and the attempt:
//   {public base}/v1/carriers/twilio/status?attempt=<id>&instance=<token>.
// - Callbacks: any engine's HTTP server verifies X-Twilio-Signature and stores the callback in the inbox
//   (carrier_callback_inbox, one row per call and step, so a repeat changes nothing); this instance takes the
//   ones meant for it (at once when its own process received them, otherwise within `inbox_poll`) and reports the
//   outcome once per attempt. A call whose final callback has not come `status_poll_after` after it was placed is
//   fetched (GET .../Calls/{Sid}.json), and again every `status_poll_after` until it has ended.
// - Lost answers: a create whose answer was lost is `indeterminate`; lookup() then takes any callback the inbox
//   holds for the attempt, or lists Calls.json by To, From and start date and matches the call by its creation
//   time; only when Twilio has no such call does the engine dial the contact again.
// - Answering-machine detection (per campaign): MachineDetection with AsyncAmd; a machine answer is the
//   `voicemail` outcome; `on_machine: hangup` ends the call at once (the campaign's retry.voicemail decides whether
//   to call again), `leave_message` lets the agent talk to the machine.
//
// Threading: originate(), cancel(), lookup() and drain() from any engine thread (lookup and drain block; the
// others queue and return). Events reach the sink from the pool's I/O thread and the callback thread, never
// under this adapter's lock.

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "adapters/carriers/rest/credentials.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"

namespace dialer::carriers::twilio {

struct twilio_settings {
  std::string account_sid;       // AC + 32 hex
  secret auth_token;             // or an API key:
  std::string api_key_sid;       // SK + 32 hex
  secret api_key_secret;
  std::string base_url = "https://api.twilio.com";
  double account_cps = 1;        // Twilio's default for an account
  int ring_timeout_s = 30;       // Timeout: seconds of ringing, 5..600
  std::chrono::milliseconds request_timeout{15'000};
  std::size_t max_connections = 64;
  std::chrono::milliseconds status_poll_after{120'000};
  std::chrono::milliseconds inbox_poll{250};
  // A call whose create answer was lost and that Twilio does not list is "never placed" only once the create's
  // deadline and this margin have passed (Twilio may still be creating it).
  std::chrono::milliseconds lookup_margin{30'000};
  std::string machine_detection = "off";  // off | Enable | DetectMessageEnd
  bool async_amd = true;
  bool hang_up_on_machine = true;         // on_machine: hangup (true) | leave_message
  std::string ca_file;                    // PEM of trusted CAs (empty: the system's store)
  std::string public_base_url;            // from the environment: where Twilio posts callbacks
};

// The campaign's `carrier.settings` with the process's credentials. invalid_input names the field; a secret's value
// is never quoted.
[[nodiscard]] result<twilio_settings> parse_twilio_settings(const nlohmann::json& settings,
                                                            const carrier_environment& env);

struct twilio_statistics {
  std::uint64_t placed = 0;         // 201 answers
  std::uint64_t refused = 0;
  std::uint64_t indeterminate = 0;
  std::uint64_t callbacks = 0;      // taken from the inbox
  std::uint64_t polled = 0;         // calls fetched because their final callback was late
  std::uint64_t outcomes = 0;
};

class twilio_carrier final : public carrier {
 public:
  // unavailable when the HTTP pool or the inbox cannot be opened.
  [[nodiscard]] static result<std::unique_ptr<twilio_carrier>> make(twilio_settings settings,
                                                                    const carrier_environment& env,
                                                                    dialer::clock& clock);
  ~twilio_carrier() override;

  [[nodiscard]] std::string_view name() const noexcept override { return "twilio"; }
  [[nodiscard]] double account_cps() const noexcept override;
  // "twilio:<AccountSid>": every engine and campaign on the account shares its calls per second.
  [[nodiscard]] std::string account_identity() const override;
  void set_events(carrier_events* sink) noexcept override;
  void originate(std::span<const origination_request> requests) noexcept override;
  void cancel(attempt_id attempt) noexcept override;
  [[nodiscard]] result<std::optional<call_event>> lookup(attempt_id attempt,
                                                         std::string_view carrier_call_id) override;
  void drain(std::chrono::milliseconds deadline) noexcept override;

  [[nodiscard]] twilio_statistics statistics() const;
  [[nodiscard]] const std::string& instance() const noexcept;

  struct impl;

 private:
  explicit twilio_carrier(std::shared_ptr<impl> i);
  std::shared_ptr<impl> impl_;
};

}  // namespace dialer::carriers::twilio
