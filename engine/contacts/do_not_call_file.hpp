#pragma once
// A do-not-call file: one number per line, or CSV with the number in the first field. Empty lines and lines
// whose first field starts with '#' are skipped; a first line without any digit is a header. Numbers are
// normalised to E.164 with the fast path (libphonenumber's answers, see phone_fast_path.hpp).
//
// Bounded input: the file is read in chunks, a line longer than max_line_bytes is skipped (and reported)
// without being held, and a first field longer than import_limits::max_phone_bytes is reported before it is
// parsed.
//
// Pure file reading and validation; the database work (adding the numbers to the account's list) is the
// PostgreSQL adapter's. Blocks on file I/O; thread-safe (no shared state).

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "engine/result.hpp"

namespace dialer::contacts {

struct do_not_call_entries {
  std::vector<std::string> e164s;  // normalised, in file order (a repeated number appears again)
  std::vector<std::string>
      skipped;  // "<file>:<line>: <why>", one per line that is neither a number nor skipped
};

inline constexpr std::size_t max_do_not_call_line_bytes = 4096;

// Errors: errc::invalid_input when the file cannot be opened or read (naming it), or for an unknown region.
[[nodiscard]] result<do_not_call_entries> read_do_not_call_file(const std::filesystem::path& file,
                                                                std::string_view default_region);

}  // namespace dialer::contacts
