#pragma once
// The SIP trunk carrier: places calls on a SIP trunk and connects each callee to its agent by third-party call
// control (RFC 3725 flow I), signaling only: the media flows between the trunk and the agent, never through us.
//
//   trunk (callee)                    this adapter                         agent
//        <---- INVITE, no SDP ------------|
//        ----- 1xx, 200 with offer ------>|
//                                          |---- INVITE, the offer, X- headers --->
//                                          |<--- 200 with the answer --------------
//                                          |---- ACK ----------------------------->
//        <---- ACK with the answer -------|
//   A BYE from either side is answered and relayed to the other; a re-INVITE is relayed (answer back in the 2xx,
//   or in the ACK for an offerless one). If the agent refuses or never answers, the trunk's 200 is ACKed with an
//   answer refusing every stream (port 0) and the trunk gets a BYE.
//   delayed_offer: false (a trunk that refuses an INVITE without SDP) swaps the legs: the agent first without SDP,
//   its 200's offer in the trunk's INVITE, the trunk's answer in the agent's ACK; a callee not reached leaves the
//   agent's 200 ACKed with every stream refused, then a BYE.
//
// Outcomes (the trunk's final response to our INVITE):
//   486 / 600 busy; 408 / 480 no_answer, and 487 after our CANCEL at ring_timeout; 404 / 484 / 604 refused
//   invalid_destination (terminal; after a 180 they are `failed`); 503 refused not_placed, the trunk backed off
//   for its Retry-After (every dial meanwhile is refused at once, nothing sent); 403 refused throttled (the trunk's
//   channel limit); no response at all within timer B (32 s on UDP) `indeterminate`: the INVITE left and may
//   have rung the callee, so the engine keeps the attempt and lookup() cannot tell (`unknown`, never redialed);
//   401 / 407 answered once with digest credentials (MD5, qop=auth, CSeq + 1); other 3xx-6xx `failed`. A call
//   is `accepted` (its Call-ID becomes the carrier call id) at the first 180/183/2xx or at a busy/no-answer final.
//
// max_channels: calls held on the trunk at once (trunk INVITE sent, not yet ended), the trunk's: every engine using
// it (account_identity "sip:[<username>@]<host>:<port>") leases its share (allow_channels(), from the engine's lease stage);
// past its share, or past max_channels alone outside an engine, a dial is refused throttled. account_cps, the
// trunk's dial rate, is shared by the same engines.
//
// Threading: `threads` workers, each an endpoint thread with its own socket, oSIP shards and calls; an attempt
// always goes to the same worker (attempt id modulo the workers). originate(), cancel() and drain() from any engine
// thread (they post to the workers' threads and return; drain waits); lookup() from any thread; events reach the
// sink from the workers' threads. A call lives on its worker's thread only.

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "adapters/carriers/rest/credentials.hpp"
#include "adapters/carriers/sip/sip_message.hpp"
#include "engine/ports/carrier.hpp"
#include "engine/ports/clock.hpp"

namespace dialer::carriers::sip {

struct sip_settings {
  peer trunk;                      // numeric address, port, transport
  std::string trunk_domain;        // host part of the Request-URI, From and To (default: the trunk's address)
  std::string local_host;          // our address in Via/Contact and the bind address (default: toward the trunk)
  int local_port = 0;              // 0: ephemeral
  std::string username;            // digest credentials (DIALER_SIP_USERNAME / DIALER_SIP_PASSWORD)
  secret password;
  int max_channels = 0;            // 0: no limit of ours
  double account_cps = 10;
  std::chrono::milliseconds ring_timeout{30'000};
  std::chrono::milliseconds agent_answer_timeout{8'000};  // far inside the trunk's 32 s of un-ACKed 200s
  std::chrono::milliseconds cancel_timeout{32'000};       // 64*T1: no final response after our CANCEL
  bool delayed_offer = true;       // false: the trunk refuses an INVITE without SDP (see the README)
  // Endpoint threads (each its own socket and osip_t shards); calls are spread over them by attempt. 1 when
  // local_port is fixed (one port, one socket).
  int threads = 2;
  wire_limits limits;
};

// The campaign's `carrier.settings` (trunk, transport, trunk_domain, local_host, local_port, max_channels,
// account_cps, ring_timeout, agent_answer_timeout, delayed_offer, threads) with the process's SIP credentials.
[[nodiscard]] result<sip_settings> parse_sip_settings(const nlohmann::json& settings, const carrier_environment& env);

struct sip_statistics {
  std::uint64_t invites = 0;         // trunk INVITEs sent, first sends only (a digest retry counts)
  std::uint64_t agent_invites = 0;
  std::uint64_t connected = 0;       // both legs answered
  std::uint64_t refused = 0;
  std::uint64_t outcomes = 0;
  std::uint64_t cancels = 0;
  std::uint64_t relayed_byes = 0;
  std::uint64_t relayed_reinvites = 0;
  std::uint64_t stray_answers = 0;   // 2xx no call wanted (a second fork, an abandoned INVITE): ACKed and hung up
  std::size_t live_calls = 0;
  std::size_t live_transactions = 0;
};

class sip_carrier final : public carrier {
 public:
  [[nodiscard]] static result<std::unique_ptr<sip_carrier>> make(sip_settings settings, dialer::clock& clock);
  ~sip_carrier() override;

  [[nodiscard]] std::string_view name() const noexcept override { return "sip"; }
  [[nodiscard]] double account_cps() const noexcept override;
  [[nodiscard]] std::string account_identity() const override;
  [[nodiscard]] int max_channels() const noexcept override;
  [[nodiscard]] int channels_in_use() const noexcept override;
  void allow_channels(int channels) noexcept override;
  void set_events(carrier_events* sink) noexcept override;
  void originate(std::span<const origination_request> requests) noexcept override;
  void cancel(attempt_id attempt) noexcept override;
  [[nodiscard]] result<std::optional<call_event>> lookup(attempt_id attempt,
                                                         std::string_view carrier_call_id) override;
  void drain(std::chrono::milliseconds deadline) noexcept override;

  [[nodiscard]] sip_statistics statistics() const;
  [[nodiscard]] int local_port() const noexcept;

  struct impl;

 private:
  explicit sip_carrier(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace dialer::carriers::sip
