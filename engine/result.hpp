#pragma once
// Errors as values. Hot paths and adapter callbacks return result<T>; exceptions are
// kept for start-up and configuration errors (and are converted at the CLI edge).

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace dialer {

// One code per kind of failure the caller can act on. The CLI maps each to a distinct exit code.
enum class errc {
  invalid_input = 1,  // the caller gave something malformed; retrying the same input cannot succeed
  not_found,          // a named thing does not exist (in this account)
  conflict,           // the request contradicts current state (double assignment, released number...)
  unavailable,        // an outside dependency (database, carrier, file system) cannot be used right now
  launch_failed,      // a campaign or call cannot start (for example: agent has no outbound number)
  internal,           // a bug or an unexpected state
};

[[nodiscard]] constexpr const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_input: return "invalid_input";
    case errc::not_found: return "not_found";
    case errc::conflict: return "conflict";
    case errc::unavailable: return "unavailable";
    case errc::launch_failed: return "launch_failed";
    case errc::internal: return "internal";
  }
  return "unknown";
}

struct error {
  errc code = errc::internal;
  std::string message;  // one sentence a human can act on
  std::string reason;   // optional, finer than code and stable for machines (e.g. "no_outbound_number")
};

template <class... Args>
[[nodiscard]] error make_error(errc code, fmt::format_string<Args...> format, Args&&... args) {
  return error{code, fmt::format(format, std::forward<Args>(args)...), {}};
}

// Thrown only at the edges (start-up, configuration, CLI) where unwinding is the simplest path.
class dialer_exception : public std::exception {
 public:
  explicit dialer_exception(error e) : error_(std::move(e)) {}
  [[nodiscard]] const char* what() const noexcept override { return error_.message.c_str(); }
  [[nodiscard]] const dialer::error& err() const noexcept { return error_; }

 private:
  dialer::error error_;
};

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  result(dialer::error e) : storage_(std::in_place_index<1>, std::move(e)) {}      // NOLINT: implicit by design

  [[nodiscard]] bool has_value() const noexcept { return storage_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  [[nodiscard]] T& value() & { return checked(); }
  [[nodiscard]] const T& value() const& { return const_cast<result*>(this)->checked(); }
  [[nodiscard]] T&& value() && { return std::move(checked()); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &const_cast<result*>(this)->checked(); }
  T& operator*() & { return checked(); }
  const T& operator*() const& { return const_cast<result*>(this)->checked(); }

  [[nodiscard]] const dialer::error& error() const& { return std::get<1>(storage_); }
  [[nodiscard]] dialer::error&& error() && { return std::get<1>(std::move(storage_)); }

 private:
  T& checked() {
    if (storage_.index() != 0) throw dialer_exception(std::get<1>(storage_));
    return std::get<0>(storage_);
  }
  std::variant<T, dialer::error> storage_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(dialer::error e) : error_(std::move(e)), failed_(true) {}  // NOLINT: implicit by design

  [[nodiscard]] bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  void value() const {
    if (failed_) throw dialer_exception(error_);
  }
  [[nodiscard]] const dialer::error& error() const& { return error_; }
  [[nodiscard]] dialer::error&& error() && { return std::move(error_); }

 private:
  dialer::error error_;
  bool failed_ = false;
};

inline result<void> ok() { return {}; }

}  // namespace dialer
