#pragma once
// A streaming RFC 4180 reader for contact files.
//
// Accepts: UTF-8 with or without a byte-order mark; CRLF or LF line ends; fields quoted with '"'
// that contain commas, doubled quotes ("") and line breaks. Reads a file in large chunks (never
// line by line), so memory is bounded by the largest record, not by the file.
//
// Decisions where real files stray from RFC 4180 (documented in engine/contacts/README.md):
//  - Empty lines are skipped and are not records (so they never shift record numbers).
//  - Records may have any number of fields ("ragged"); the reader reports what is there and the
//    caller decides (contact import pads short rows and keeps extra fields as variables).
//  - A quote inside an unquoted field is data (ab"c -> ab"c); text after a closing quote is data
//    too ("ab"c -> abc), as Python's csv module does. Nothing is dropped.
//  - A quote still open at the end of the file is an error that names the record and the line
//    where the quote opened. Records before it were already returned.
//  - A lone CR (not followed by LF) is data.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/result.hpp"

namespace dialer::contacts {

struct csv_options {
  // A record longer than this is an error: an unclosed quote must not buffer a whole file.
  std::size_t max_record_bytes = std::size_t{16} << 20;
  std::size_t read_chunk_bytes = std::size_t{1} << 20;
};

// One record. The views point into the reader's buffer and stay valid until the next call to
// csv_reader::next() (or the reader's destruction).
struct csv_record {
  std::uint64_t index = 0;  // 0 for the first record (a header, when there is one), then 1, 2, ...
  std::uint64_t line = 0;   // 1-based line of the file where the record starts
  std::vector<std::string_view> fields;
};

// Not thread-safe: one reader per thread. Movable.
class csv_reader {
 public:
  // Opens `path` for streaming. Errors: errc::unavailable (cannot open), naming the path.
  [[nodiscard]] static result<csv_reader> open(const std::string& path, const csv_options& options = {});
  // Reads from memory (takes ownership of `data`).
  [[nodiscard]] static csv_reader from_string(std::string data, const csv_options& options = {});

  csv_reader(csv_reader&& other) noexcept;
  csv_reader& operator=(csv_reader&& other) noexcept;
  csv_reader(const csv_reader&) = delete;
  csv_reader& operator=(const csv_reader&) = delete;
  ~csv_reader();

  // Reads the next record into `out` (its vector's capacity is reused). Returns true for a record,
  // false at the end of the input. Errors are final (every later call returns the same error):
  // errc::invalid_input for malformed input (unterminated quote, oversized record) and
  // errc::unavailable for a read failure; both name the record index and line.
  // Allocates only when a record is larger than any before it.
  [[nodiscard]] result<bool> next(csv_record& out);

  // True when the input started with a UTF-8 byte-order mark (which is never part of a field).
  [[nodiscard]] bool had_bom() const noexcept { return had_bom_; }

 private:
  enum class scan_state : std::uint8_t { field_start, unquoted, quoted, quote_in_quoted };
  struct field_span {
    std::uint32_t begin;  // offsets from the record start; for quoted fields, after the opening quote
    std::uint32_t end;
    bool quoted;
  };

  csv_reader(int fd, std::string path, std::string data, const csv_options& options);
  result<void> refill();
  void finish_field(std::size_t end);
  void materialize(csv_record& out);
  void reset_record();

  int fd_ = -1;
  std::string path_;
  csv_options options_;
  std::string buf_;
  std::size_t rec_ = 0;  // start of the current record in buf_
  std::size_t end_ = 0;  // end of valid bytes in buf_
  bool eof_ = false;
  bool started_ = false;
  bool had_bom_ = false;
  std::uint64_t next_index_ = 0;
  std::uint64_t line_ = 1;  // line where the current record starts

  // The record being scanned, resumable across refills (all offsets relative to rec_).
  scan_state state_ = scan_state::field_start;
  std::size_t pos_ = 0;
  std::size_t field_begin_ = 0;
  bool field_quoted_ = false;
  std::uint64_t newlines_in_record_ = 0;
  std::uint64_t quote_line_ = 0;
  std::vector<field_span> spans_;

  bool failed_ = false;
  error error_;
};

}  // namespace dialer::contacts
