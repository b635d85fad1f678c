#include "engine/telephony.hpp"

namespace dialer {

std::string_view to_string(number_type t) noexcept {
  switch (t) {
    case number_type::local: return "local";
    case number_type::toll_free: return "toll_free";
    case number_type::mobile: return "mobile";
  }
  return "local";
}

std::string_view to_string(number_kind k) noexcept { return k == number_kind::managed ? "managed" : "byoc"; }

std::string_view to_string(number_status s) noexcept { return s == number_status::active ? "active" : "released"; }

std::optional<number_type> parse_number_type(std::string_view text) noexcept {
  if (text == "local") return number_type::local;
  if (text == "toll_free" || text == "tollfree" || text == "toll-free") return number_type::toll_free;
  if (text == "mobile") return number_type::mobile;
  return std::nullopt;
}

std::optional<number_kind> parse_number_kind(std::string_view text) noexcept {
  if (text == "managed") return number_kind::managed;
  if (text == "byoc") return number_kind::byoc;
  return std::nullopt;
}

std::optional<number_status> parse_number_status(std::string_view text) noexcept {
  if (text == "active") return number_status::active;
  if (text == "released") return number_status::released;
  return std::nullopt;
}

}  // namespace dialer
