#pragma once
// multipart/form-data (RFC 7578), the body of `curl -F name=@file`: its parts by name. Only what an upload needs:
// each part's name, filename and content type, and its bytes (views into the body).
// Threading: pure functions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dialer::http {

struct form_part {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string_view data;  // into the body given to parse_multipart
};

// The boundary parameter of a multipart/form-data Content-Type; nullopt when it is not one.
[[nodiscard]] std::optional<std::string> multipart_boundary(std::string_view content_type);

// The parts; nullopt when the body is not well formed for this boundary.
[[nodiscard]] std::optional<std::vector<form_part>> parse_multipart(std::string_view body, std::string_view boundary);

}  // namespace dialer::http
