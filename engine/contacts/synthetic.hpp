#pragma once
// Synthetic contact files: the demo campaign's first-run contacts and the import benchmark's input.
//
// Numbers are fictional and pass libphonenumber: NPA-555-01XX (reserved for fiction) first, then
// the rest of NPA-555-XXXX (the 555 exchange is almost entirely unassigned) once a file needs more
// than 100 numbers per area code; the area codes are those libphonenumber accepts for the region.
// International rows use regulator-reserved drama ranges (+44 20 7946 0XXX, +61 491 570 XXX).

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/result.hpp"

namespace dialer::contacts {

struct synthetic_options {
  // Fractions of rows, each drawn independently; the defaults look like a real lead list.
  double duplicate_fraction = 0.02;       // an earlier row's number again, written differently
  double invalid_fraction = 0.01;         // unparseable or unassigned numbers
  double missing_fraction = 0.002;        // empty phone field
  double international_fraction = 0.005;  // valid numbers outside the region (+44, +61)
  double bad_timezone_fraction = 0.001;   // a timezone that is not an IANA name
  double timezone_fraction = 0.3;         // rows that carry a (valid) timezone
  double quoted_fraction = 0.01;          // rows whose fields need quoting (commas, quotes, newlines)
  bool crlf = false;                      // line ends
};

// What the file should import to (with an empty do-not-call list).
struct synthetic_summary {
  std::uint64_t rows = 0;
  std::uint64_t valid = 0;  // rows expected to be accepted
  std::uint64_t duplicates = 0;
  std::uint64_t invalid_numbers = 0;
  std::uint64_t missing_phones = 0;
  std::uint64_t invalid_timezones = 0;
};

// Writes a header (phone,first_name,last_name,company,timezone,notes) and `count` data rows to
// `path`, deterministically for a given `seed`. `region` must be a NANP region (US, CA, PR, ...).
// Errors: errc::invalid_input for a non-NANP region; errc::unavailable when the file cannot be written.
// Thread-safe. Streams (memory does not grow with `count`).
[[nodiscard]] result<synthetic_summary> write_synthetic_contacts(const std::string& path, std::uint64_t count,
                                                                 std::uint64_t seed, std::string_view region,
                                                                 const synthetic_options& options = {});

}  // namespace dialer::contacts
