#pragma once
// The parts of a request target: percent-decoding, the path and the query parameters.
// Threading: pure functions.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dialer::http {

// %XX decoding (and '+' as a space in form and query values); nullopt for a malformed escape.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);
[[nodiscard]] std::string percent_encode(std::string_view s);

using query_params = std::vector<std::pair<std::string, std::string>>;

struct target {
  std::string_view path;   // as sent, not decoded (segments are decoded one by one)
  query_params query;      // decoded, in order
};

// nullopt when an escape in the query is malformed.
[[nodiscard]] std::optional<target> split_target(std::string_view raw);

// application/x-www-form-urlencoded, the body of a carrier's webhook; nullopt when malformed.
[[nodiscard]] std::optional<query_params> parse_form(std::string_view body);

// Retry-After as delta-seconds or an HTTP-date (relative to now, at least 0); nullopt when empty or malformed.
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(std::string_view value);

}  // namespace dialer::http
