#include "adapters/http/url.hpp"

#include <algorithm>
#include <ctime>

namespace dialer::http {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

std::optional<query_params> parse_form(std::string_view body) {
  query_params out;
  std::size_t i = 0;
  while (i <= body.size()) {
    auto amp = body.find('&', i);
    if (amp == std::string_view::npos) amp = body.size();
    const auto pair = body.substr(i, amp - i);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      auto name = percent_decode(pair.substr(0, eq), true);
      auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
      if (!name || !value) return std::nullopt;
      out.emplace_back(std::move(*name), std::move(*value));
    }
    i = amp + 1;
  }
  return out;
}

std::optional<target> split_target(std::string_view raw) {
  target t;
  const auto q = raw.find('?');
  t.path = raw.substr(0, q);
  if (q != std::string_view::npos) {
    auto params = parse_form(raw.substr(q + 1));
    if (!params) return std::nullopt;
    t.query = std::move(*params);
  }
  return t;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (v.size() <= 9 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::chrono::seconds(std::stol(std::string(v)));
  std::tm tm{};
  const std::string text(v);
  if (!::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  return std::chrono::seconds(std::max<std::int64_t>(0, ::timegm(&tm) - std::time(nullptr)));
}

}  // namespace dialer::http
