#pragma once
// The Telnyx carrier: places calls through Call Control v2 (POST /v2/calls, JSON, a Bearer API key), hands the
// callee to the agent (a media stream on the dial for a wss:// hand-off, a transfer on answer for a SIP one), and
// learns each call's end from Telnyx's ed25519-signed webhooks.
//
// - Placing: one JSON POST per call on a keep-alive HTTPS pool (rest::http_pool). `client_state` names this
//   adapter instance, the attempt and the placement (signed with the webhook body, unlike a URL); `command_id` is
//   the attempt's idempotency key. Webhooks go to {public base}/v1/carriers/telnyx/events.
// - A dial whose answer was lost, or that met a 5xx, is sent again with the same command_id (Telnyx ignores a
//   repeated one: at most one call per attempt), up to `dial_resends` times; then it is `indeterminate`, and
//   lookup() sends it once more while `redial_window` lasts. Once an answer was lost nothing refuses the dial: only
//   a call id settles it (past the window, without one, it is `unknown`). The command_id is scoped by the
//   database's installation id, so two databases on one account never share one.
// - Webhooks: any engine's HTTP server verifies the signature and stores call.initiated / call.answered /
//   call.machine.detection.ended / call.hangup in the callback inbox (one row per call and step: a repeat changes
//   nothing); this instance takes the ones meant for it and reports each outcome once. A call whose call.hangup has
//   not come `status_poll_after` after it was placed is fetched (GET /v2/calls/{id}): Telnyx's status says whether
//   the call is alive, not whether it was answered nor why it ended (an ended call whose call.answered was seen is
//   `completed`; one with no webhook at all is `unknown`, and says so).
// - Slowing down: a 429 (code 10011) or a "channel limit" error refuses the call `throttled` (with
//   x-ratelimit-reset); a SIP 403 before the answer (Telnyx's channel limit) holds this instance's next dials for
//   `channel_limit_backoff`, doubling while it repeats, and they are refused `throttled` meanwhile.
// - Answering-machine detection per campaign (answering_machine_detection); a machine is the `voicemail` outcome;
//   `on_machine: hangup` ends the call at once.
//
// Threading: originate(), cancel(), lookup() and drain() from any engine thread (lookup and drain block; the
// others queue and return). Events reach the sink from the pool's I/O thread and the callback thread, never under
// this adapter's lock.

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "adapters/carriers/rest/credentials.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"

namespace dialer::carriers::telnyx {

struct telnyx_settings {
  secret api_key;
  std::string connection_id;  // the Call Control application placing the calls
  std::string base_url = "https://api.telnyx.com";
  double account_cps = 30;    // Telnyx's default dials per second for an account
  int ring_timeout_s = 30;    // timeout_secs, 5..600
  std::chrono::milliseconds request_timeout{15'000};
  std::size_t max_connections = 64;
  std::chrono::milliseconds status_poll_after{120'000};
  std::chrono::milliseconds inbox_poll{250};
  int dial_resends = 3;                            // same command_id, after a lost answer or a 5xx (0..5)
  // How long after the first send lookup() may send it again: under Telnyx's 60 s memory of a command_id (at most
  // 50 s), or a resend could be a second call.
  std::chrono::milliseconds redial_window{45'000};
  std::chrono::milliseconds channel_limit_backoff{2'000};
  std::string machine_detection = "disabled";      // premium | detect | detect_beep | detect_words | greeting_end
  bool hang_up_on_machine = true;
  std::string stream_track = "both_tracks";        // inbound_track | outbound_track | both_tracks
  std::string stream_mode = "rtp";                 // stream_bidirectional_mode: rtp | mp3
  std::string stream_codec;                        // stream_bidirectional_codec (PCMU, PCMA, G722, OPUS, ...)
  std::string ca_file;
  std::string public_base_url;                     // from the environment: where Telnyx posts webhooks
  std::string installation;                        // from the database: scopes command ids (carrier_environment)
};

// The campaign's `carrier.settings` with the process's credentials (DIALER_TELNYX_API_KEY,
// DIALER_TELNYX_CONNECTION_ID). invalid_input names the field; a secret's value is never quoted.
[[nodiscard]] result<telnyx_settings> parse_telnyx_settings(const nlohmann::json& settings,
                                                            const carrier_environment& env);

struct telnyx_statistics {
  std::uint64_t placed = 0;     // dials answered with a call id (a repeated command_id's answer included)
  std::uint64_t resent = 0;     // dials sent again with the same command_id
  std::uint64_t refused = 0;
  std::uint64_t indeterminate = 0;
  std::uint64_t webhooks = 0;   // taken from the inbox
  std::uint64_t polled = 0;
  std::uint64_t outcomes = 0;
  std::uint64_t channel_limited = 0;
};

class telnyx_carrier final : public carrier {
 public:
  [[nodiscard]] static result<std::unique_ptr<telnyx_carrier>> make(telnyx_settings settings,
                                                                    const carrier_environment& env,
                                                                    dialer::clock& clock);
  ~telnyx_carrier() override;

  [[nodiscard]] std::string_view name() const noexcept override { return "telnyx"; }
  [[nodiscard]] double account_cps() const noexcept override;
  // "telnyx:<first 16 hex digits of the API key's SHA-256>": the key names the account; every engine and campaign
  // using it shares its dials per second.
  [[nodiscard]] std::string account_identity() const override;
  void set_events(carrier_events* sink) noexcept override;
  void originate(std::span<const origination_request> requests) noexcept override;
  void cancel(attempt_id attempt) noexcept override;
  [[nodiscard]] result<std::optional<call_event>> lookup(attempt_id attempt,
                                                         std::string_view carrier_call_id) override;
  void drain(std::chrono::milliseconds deadline) noexcept override;

  [[nodiscard]] telnyx_statistics statistics() const;
  [[nodiscard]] const std::string& instance() const noexcept;

  struct impl;

 private:
  explicit telnyx_carrier(std::shared_ptr<impl> i);
  std::shared_ptr<impl> impl_;
};

// "telnyx:" + 16 hex digits of SHA-256(api key).
[[nodiscard]] std::string telnyx_account_identity(const secret& api_key);

}  // namespace dialer::carriers::telnyx
