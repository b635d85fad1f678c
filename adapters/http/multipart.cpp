#include "adapters/http/multipart.hpp"

#include <algorithm>
#include <cctype>

namespace dialer::http {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The value of `param` in a header value like `form-data; name="contacts"; filename="c.csv"`.
std::string param_of(std::string_view value, std::string_view param) {
  std::size_t i = 0;
  while ((i = value.find(';', i)) != std::string_view::npos) {
    ++i;
    auto rest = trim(value.substr(i));
    const auto eq = rest.find('=');
    if (eq == std::string_view::npos) continue;
    if (lower(trim(rest.substr(0, eq))) != param) continue;
    auto v = rest.substr(eq + 1);
    if (!v.empty() && v.front() == '"') {
      const auto close = v.find('"', 1);
      return std::string(v.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
    }
    return std::string(trim(v.substr(0, v.find(';'))));
  }
  return {};
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  const auto media = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (media != "multipart/form-data") return std::nullopt;
  auto b = param_of(content_type, "boundary");
  if (b.empty() || b.size() > 70) return std::nullopt;
  return b;
}

std::optional<std::vector<form_part>> parse_multipart(std::string_view body, std::string_view boundary) {
  const std::string delimiter = "--" + std::string(boundary);
  std::vector<form_part> parts;
  auto at = body.find(delimiter);
  if (at == std::string_view::npos) return std::nullopt;
  at += delimiter.size();
  for (;;) {
    if (body.substr(at, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(at, 2) != "\r\n") return std::nullopt;
    at += 2;
    const auto header_end = body.find("\r\n\r\n", at);
    if (header_end == std::string_view::npos) return std::nullopt;
    form_part part;
    auto headers = body.substr(at, header_end - at);
    while (!headers.empty()) {
      const auto eol = headers.find("\r\n");
      const auto line = headers.substr(0, eol);
      const auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        const auto name = lower(trim(line.substr(0, colon)));
        const auto value = trim(line.substr(colon + 1));
        if (name == "content-disposition") {
          part.name = param_of(value, "name");
          part.filename = param_of(value, "filename");
        } else if (name == "content-type") {
          part.content_type = lower(trim(value.substr(0, value.find(';'))));
        }
      }
      if (eol == std::string_view::npos) break;
      headers.remove_prefix(eol + 2);
    }
    const auto data_start = header_end + 4;
    const auto next = body.find("\r\n" + delimiter, data_start);
    if (next == std::string_view::npos) return std::nullopt;
    part.data = body.substr(data_start, next - data_start);
    parts.push_back(std::move(part));
    at = next + 2 + delimiter.size();
  }
}

}  // namespace dialer::http
