#pragma once
// Contact import: a CSV file in, validated contacts out, streamed in batches to a sink (the
// PostgreSQL adapter COPYs each batch while parsing continues). Memory is bounded by the batch
// size and the duplicate set (8-16 bytes a contact), never by the file.
//
// Columns: the phone column is the first header among `phone`, `phone_number`, `number`, `to`
// (in that priority; case, spaces, '_' and '-' ignored). An optional `timezone` column holds an
// IANA name. Every other column becomes a contact variable: header -> value, as a JSON object.
//
// A phone with an extension ("+1 415 555 0123 ext. 5", "x5", "#5", ";ext=5") is accepted under its E.164
// number; the extension's digits become the variable `extension` (`extension_2`, ... when the file already has
// a column of that name), so nothing the file says is dropped.
//
// Each data row ends in exactly one of: accepted, or rejected with one reason. Precedence, first
// match wins (sizes first, so that nothing parses an unbounded field; row-local checks before cross-row
// ones, so a bad row never claims a number). The size limits are import_limits:
//   phone_too_long       the phone field, trimmed, is longer than max_phone_bytes
//   field_too_long       another field is longer than max_field_bytes
//   row_too_long         the record (its fields plus one byte per separator) is longer than max_row_bytes
//   invalid_encoding  a field is not valid UTF-8
//   missing_phone     the phone field is empty after trimming
//   invalid_number    libphonenumber cannot parse it or says it is not a valid number
//   invalid_timezone  the timezone field is not empty and not an IANA zone of the OS tzdb
//   variables_too_large  the row's variables, as JSON, are longer than max_variables_bytes
//   do_not_call       the number is on the caller's do-not-call list
//   duplicate         an earlier *accepted* row has the same E.164 number (the first one wins)
// Duplicates are decided here only (the database keeps no unique index on a contact's number); a campaign is
// imported once, which the PostgreSQL adapter enforces with the campaign's import record.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/contacts/csv_reader.hpp"
#include "engine/contacts/e164_set.hpp"
#include "engine/result.hpp"
#include "engine/telephony.hpp"

namespace dialer::contacts {

enum class reject_reason : std::uint8_t {
  missing_phone,
  invalid_number,
  invalid_timezone,
  duplicate,
  do_not_call,
  invalid_encoding,
  phone_too_long,
  field_too_long,
  row_too_long,
  variables_too_large,
};
inline constexpr std::size_t reject_reason_count = 10;

[[nodiscard]] std::string_view to_string(reject_reason r) noexcept;

// Views are valid only during contact_sink::write.
struct accepted_contact {
  std::uint64_t row = 0;            // data record number: 1 is the first record after the header
  std::string_view e164;            // "+14155550123"
  std::string_view timezone;        // IANA name as written (trimmed), or empty
  std::string_view variables_json;  // JSON object, UTF-8: {"first_name":"Ana","company":"Acme, Inc."}
  std::string_view country;         // ISO region of the number ("US", "CA", "GB")
  std::uint16_t area_code = 0;      // NANP area code, 0 outside NANP
  number_type type = number_type::local;
};

struct rejected_contact {
  std::uint64_t row = 0;
  // The phone field as written, untrimmed (invalid UTF-8 shown as U+FFFD); for the size reasons only its
  // first max_phone_bytes bytes.
  std::string_view input;
  reject_reason reason = reject_reason::invalid_number;
};

struct contact_batch {
  std::span<const accepted_contact> accepted;  // ascending row order
  std::span<const rejected_contact> rejected;  // ascending row order
};

// Receives the import's output. Called only on the thread that called import_contacts, once per
// batch, in row order (batch n holds rows before batch n+1's). An error stops the import and is
// returned from import_contacts unchanged.
class contact_sink {
 public:
  virtual ~contact_sink() = default;
  virtual result<void> write(const contact_batch& batch) = 0;
};

struct column_map {
  struct variable {
    std::size_t column = 0;  // 0-based
    std::string key;         // JSON key: the header trimmed; "column_<n>" if empty; "<key>_2".. if repeated
  };
  std::size_t phone = 0;
  std::optional<std::size_t> timezone;
  std::vector<variable> variables;  // column order
  std::string extension_key = "extension";  // a phone's extension: "extension", unless a column took it
};

// Maps a header record. Errors: errc::invalid_input when no phone column exists, naming the header
// found and the accepted names. Pure; allocates.
[[nodiscard]] result<column_map> map_columns(std::span<const std::string_view> header);

// What one row may hold, checked before anything parses it (libphonenumber's Parse is quadratic in the
// length of its input). The defaults are documented in engine/contacts/README.md and config/README.md.
struct import_limits {
  std::size_t max_phone_bytes = 64;       // the phone field, trimmed: room for any number with an extension
  std::size_t max_field_bytes = 4096;     // every other field (the header's too)
  std::size_t max_row_bytes = 32768;      // a record: its fields plus one byte per separator (the header too)
  std::size_t max_variables_bytes = 16384;  // an accepted row's variables as JSON (escapes and keys included)
};

struct import_options {
  std::string default_region = "US";      // for numbers written without +<country code>; any case
  const e164_set* do_not_call = nullptr;  // the account's list; read concurrently, must not change meanwhile
  std::size_t batch_rows = 8192;  // rows per sink batch (memory ~ batch_rows * row size * pipeline depth)
  // Threads that validate numbers while the calling thread reads the file and feeds the sink.
  // 0 does everything on the calling thread. Results are identical for every value.
  unsigned validator_threads = 1;
  import_limits limits;
};

struct import_summary {
  std::uint64_t rows = 0;  // data records read (the header excluded)
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::array<std::uint64_t, reject_reason_count> by_reason{};

  [[nodiscard]] std::uint64_t count(reject_reason r) const noexcept {
    return by_reason[static_cast<std::size_t>(r)];
  }
};

// Reads the header and every row of `reader`, writing each row to `sink` exactly once.
// Errors: errc::invalid_input for a missing header or phone column, a header that is not UTF-8 or over
// the limits (naming the column),
// an unknown default region, or malformed CSV (e.g. an unterminated quote: every row before the
// bad record has already been written to the sink, and the message names the record and line);
// errc::unavailable for read failures; any error the sink returns.
// Blocks until done. Thread-safe for distinct readers and sinks.
[[nodiscard]] result<import_summary> import_contacts(csv_reader& reader, const import_options& options,
                                                     contact_sink& sink);

// import_contacts over the file at `path`. Every error names the file.
[[nodiscard]] result<import_summary> import_contacts_file(const std::string& path,
                                                          const import_options& options, contact_sink& sink);

// Opens the file at `path` and checks its header the way import_contacts does (readable, UTF-8, within the
// limits, a phone column), reading no further: what a run checks before it creates anything. Errors as
// import_contacts_file's for the header. Blocks on file I/O; thread-safe.
[[nodiscard]] result<column_map> check_contacts_header(const std::string& path, const import_limits& limits = {});

}  // namespace dialer::contacts
