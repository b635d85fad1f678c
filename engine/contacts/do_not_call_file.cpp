#include "engine/contacts/do_not_call_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/contacts/contact_import.hpp"
#include "engine/contacts/phone_fast_path.hpp"
#include "engine/phone.hpp"

namespace dialer::contacts {
namespace {

struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

result<do_not_call_entries> read_do_not_call_file(const std::filesystem::path& file,
                                                  std::string_view default_region) {
  const std::string region = normalize_region(default_region);
  if (!is_supported_region(region))
    return make_error(errc::invalid_input, "unknown default region '{}' for the do-not-call file",
                      default_region);
  const std::unique_ptr<std::FILE, file_closer> in(std::fopen(file.c_str(), "rb"));
  if (!in)
    return make_error(errc::invalid_input, "cannot read do-not-call file {}: {}", file.string(),
                      std::strerror(errno));

  const phone_fast_path& phones = phone_fast_path::instance();
  const std::size_t max_phone = import_limits{}.max_phone_bytes;
  do_not_call_entries out;
  std::string line;       // the current line, at most max_do_not_call_line_bytes
  bool overlong = false;  // the current line went past the limit: the rest of it is dropped, then reported
  std::size_t number = 0;
  const auto finish_line = [&] {
    ++number;
    if (overlong) {
      out.skipped.push_back(fmt::format("{}:{}: the line is longer than {} bytes", file.string(), number,
                                        max_do_not_call_line_bytes));
      return;
    }
    const std::string_view field = trim(std::string_view(line).substr(0, line.find(',')));
    if (field.empty() || field.front() == '#') return;
    if (field.size() > max_phone) {
      out.skipped.push_back(
          fmt::format("{}:{}: the number is longer than {} characters", file.string(), number, max_phone));
      return;
    }
    parsed_phone parsed;
    const phone_status status = phones.parse(field, region, parsed);
    if (status == phone_status::ok) {
      out.e164s.push_back(std::move(parsed.e164));
      return;
    }
    // A header line ("phone") is not an error; any other unparsable line is reported.
    if (number == 1 && field.find_first_of("0123456789") == std::string_view::npos) return;
    out.skipped.push_back(fmt::format("{}:{}: '{}' is not a valid phone number (default region '{}'): {}",
                                      file.string(), number, field, region, to_string(status)));
  };

  char chunk[1 << 16];
  bool pending = false;  // bytes of an unfinished line were read
  while (true) {
    const std::size_t n = std::fread(chunk, 1, sizeof chunk, in.get());
    if (n == 0) {
      if (std::ferror(in.get()))
        return make_error(errc::invalid_input, "cannot read do-not-call file {}: {}", file.string(),
                          std::strerror(errno));
      break;
    }
    std::string_view data(chunk, n);
    while (!data.empty()) {
      const auto end = data.find('\n');
      const std::string_view piece = data.substr(0, end);
      if (!overlong) {
        if (line.size() + piece.size() > max_do_not_call_line_bytes)
          overlong = true;
        else
          line.append(piece);
      }
      pending = true;
      if (end == std::string_view::npos) break;
      finish_line();
      line.clear();
      overlong = false;
      pending = false;
      data.remove_prefix(end + 1);
    }
  }
  if (pending) finish_line();
  return out;
}

}  // namespace dialer::contacts
