#include "app/output.hpp"

#include <algorithm>
#include <cstdio>
#include <date/date.h>
#include <fmt/format.h>
#include <iostream>

namespace dialer::app {

int exit_code_for(errc code) noexcept {
  switch (code) {
    case errc::invalid_input: return exit_invalid_input;
    case errc::not_found: return exit_not_found;
    case errc::conflict: return exit_conflict;
    case errc::unavailable: return exit_unavailable;
    case errc::launch_failed: return exit_launch_failed;
    case errc::internal: return exit_internal;
  }
  return exit_internal;
}

int report(const error& e) {
  std::string message = e.message;
  if (!message.empty() && message.back() != '.' && message.back() != ')') message += '.';
  fmt::print(stderr, "dialer: {}\n", message);
  return exit_code_for(e.code);
}

namespace {
// Display width of UTF-8 text: count code points, not bytes.
std::size_t width(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}
}  // namespace

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) widths[i] = width(headers[i]);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(widths[i] - width(cells[i]) + 2, ' ');
    }
    fmt::print("{}\n", out);
  };
  line(headers);
  for (const auto& row : rows) line(row);
  if (rows.empty()) fmt::print("(none)\n");
}

void print_json(const nlohmann::json& document) { fmt::print("{}\n", document.dump(2)); }

}  // namespace dialer::app
