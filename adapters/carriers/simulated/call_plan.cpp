#include "adapters/carriers/simulated/call_plan.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dialer::carriers {
namespace {

constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// splitmix64: tiny, fast, and good enough to look random to a dialer; std:: distributions are
// avoided because their output differs between standard libraries, which would break replay.
class splitmix {
 public:
  explicit splitmix(std::uint64_t state) noexcept : state_(state) {}
  std::uint64_t next() noexcept { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  // Uniform in [0, 1).
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1]: safe under log().
  double uniform_open() noexcept { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }
  double normal() noexcept {  // Box-Muller; the second variate is dropped to keep draws independent of use
    return std::sqrt(-2.0 * std::log(uniform_open())) * std::cos(2.0 * std::numbers::pi * uniform());
  }

 private:
  std::uint64_t state_;
};

std::chrono::milliseconds to_ms(double ms) noexcept {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(std::max(ms, 0.0))));
}

double draw_talk_ms(const simulated_carrier_settings& s, double mean_ms, splitmix& rng) noexcept {
  if (mean_ms <= 0) return 0;
  double ms = 0;
  if (s.talk == talk_distribution::exponential) {
    ms = -mean_ms * std::log(rng.uniform_open());
  } else {
    // exp(mu + sigma z) has mean exp(mu + sigma^2 / 2): pick mu so the configured mean is the true mean.
    const double mu = std::log(mean_ms) - s.talk_sigma * s.talk_sigma / 2.0;
    ms = std::exp(mu + s.talk_sigma * rng.normal());
  }
  return std::min(ms, static_cast<double>(s.talk_max.count()));
}

}  // namespace

std::uint64_t hash_idempotency_key(std::string_view key) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

call_plan plan_call(const simulated_carrier_settings& s, std::uint64_t key_hash) noexcept {
  splitmix rng(mix64(s.seed ^ 0x5eed5eed5eed5eedULL) ^ key_hash);
  call_plan plan;
  const double u = rng.uniform();
  double edge = s.busy_rate;
  if (u < edge) {
    plan.outcome = call_outcome::busy;
  } else if (u < (edge += s.no_answer_rate)) {
    plan.outcome = call_outcome::no_answer;
  } else if (u < (edge += s.failed_rate)) {
    plan.outcome = call_outcome::failed;
  } else if (u < (edge += s.voicemail_rate)) {
    plan.outcome = call_outcome::voicemail;
  } else {
    plan.outcome = call_outcome::completed;
  }

  const double timeout_ms = static_cast<double>(s.no_answer_after.count());
  switch (plan.outcome) {
    case call_outcome::no_answer:
      plan.ring = s.no_answer_after;
      break;
    case call_outcome::busy:
    case call_outcome::failed:
      plan.ring = to_ms(static_cast<double>(s.busy_after.count()) * (0.5 + rng.uniform()));
      break;
    default: {
      const double mean = static_cast<double>(s.ring_mean.count());
      const double spread = static_cast<double>(s.ring_spread.count());
      double ring = s.ring == ring_distribution::uniform
                        ? mean + spread * (2.0 * rng.uniform() - 1.0)
                        : std::clamp(mean + spread * rng.normal(), 0.0, mean + 3.0 * spread);
      plan.ring = to_ms(std::min(ring, timeout_ms));
      const double talk_mean = static_cast<double>(
          (plan.outcome == call_outcome::voicemail ? s.voicemail_mean : s.talk_mean).count());
      plan.talk = to_ms(draw_talk_ms(s, talk_mean, rng));
      break;
    }
  }
  return plan;
}

}  // namespace dialer::carriers
