#pragma once
// Reading a REST carrier's `carrier.settings` object (Twilio, Telnyx): typed fields with ranges, durations written
// like "15s", and one error message style ("<carrier> carrier: setting 'x' must be ..."). A field that holds a
// secret is never quoted back.
// Threading: a reader is a plain value over a JSON object the caller keeps alive.

#include <chrono>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "engine/result.hpp"

namespace dialer::carriers::rest {

// Thrown by settings_reader; the parse function turns it into invalid_input.
struct bad_setting : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class settings_reader {
 public:
  // `carrier` prefixes every message ("twilio carrier: ..."); `o` must be an object (or null: no settings).
  settings_reader(std::string_view carrier, const nlohmann::json& o) : carrier_(carrier), o_(o) {}

  // The member, or null when absent or JSON null.
  [[nodiscard]] const nlohmann::json* member(std::string_view key) const;
  // Throws for a key not in `known`, naming the known ones.
  void only_known(std::span<const std::string_view> known, std::string_view prefix = {}) const;
  // "" when absent; a string otherwise (a secret's value is not quoted when it is not a string).
  [[nodiscard]] std::string text(std::string_view key, bool secret_value = false) const;
  // A number (or a numeric string) within [lo, hi].
  [[nodiscard]] double number(std::string_view key, double fallback, double lo, double hi) const;
  // "15s", "500ms", "2m", "1h", or a number of seconds, within [lo, hi].
  [[nodiscard]] std::chrono::milliseconds duration(std::string_view key, std::chrono::milliseconds fallback,
                                                   std::chrono::milliseconds lo, std::chrono::milliseconds hi) const;
  // true / false.
  [[nodiscard]] bool flag(std::string_view key, bool fallback) const;
  // One of `allowed` (or fallback when absent).
  [[nodiscard]] std::string choice(std::string_view key, std::string_view fallback,
                                   std::span<const std::string_view> allowed) const;
  // A reader of a nested object ("machine_detection"); its messages name "parent.child".
  [[nodiscard]] settings_reader nested(std::string_view key) const;

  [[nodiscard]] bad_setting fail(std::string_view message) const;

 private:
  settings_reader(std::string carrier, std::string prefix, const nlohmann::json& o)
      : carrier_(std::move(carrier)), prefix_(std::move(prefix)), o_(o) {}
  [[nodiscard]] std::string name(std::string_view key) const { return prefix_ + std::string(key); }

  std::string carrier_;
  std::string prefix_;  // "machine_detection." for a nested reader
  const nlohmann::json& o_;
};

// A base URL setting: http(s)://host[:port] without a path; trailing slashes dropped. Throws bad_setting.
[[nodiscard]] std::string base_url_setting(const settings_reader& r, std::string_view key, std::string fallback);

}  // namespace dialer::carriers::rest
