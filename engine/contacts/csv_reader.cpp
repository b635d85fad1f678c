#include "engine/contacts/csv_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace dialer::contacts {
namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

// Unquotes a quoted field in place: "" -> ", the closing quote goes, text after it stays.
// Linear: memchr jumps between quotes, so a long field with many quotes costs one pass.
std::size_t unquote_in_place(char* data, std::size_t size) {
  char* w = data;
  const char* r = data;
  const char* const end = data + size;
  bool in_quotes = true;
  while (r < end && in_quotes) {
    const char* q = static_cast<const char*>(std::memchr(r, '"', static_cast<std::size_t>(end - r)));
    if (q == nullptr) q = end;
    const auto chunk = static_cast<std::size_t>(q - r);
    if (w != r) std::memmove(w, r, chunk);
    w += chunk;
    r = q;
    if (r == end) break;
    if (r + 1 < end && r[1] == '"') {
      *w++ = '"';
      r += 2;
    } else {
      in_quotes = false;
      ++r;
    }
  }
  const auto rest = static_cast<std::size_t>(end - r);
  if (w != r && rest > 0) std::memmove(w, r, rest);
  w += rest;
  return static_cast<std::size_t>(w - data);
}

}  // namespace

csv_reader::csv_reader(int fd, std::string path, std::string data, const csv_options& options)
    : fd_(fd), path_(std::move(path)), options_(options), buf_(std::move(data)) {
  if (fd_ < 0) {
    end_ = buf_.size();
    eof_ = true;
  }
  if (options_.read_chunk_bytes < 4096) options_.read_chunk_bytes = 4096;
}

result<csv_reader> csv_reader::open(const std::string& path, const csv_options& options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errc::unavailable, "cannot open contact file '{}': {}", path, std::strerror(errno));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return csv_reader(fd, path, std::string(), options);
}

csv_reader csv_reader::from_string(std::string data, const csv_options& options) {
  return csv_reader(-1, "<memory>", std::move(data), options);
}

csv_reader::csv_reader(csv_reader&& other) noexcept {
  *this = std::move(other);
}

csv_reader& csv_reader::operator=(csv_reader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    options_ = other.options_;
    buf_ = std::move(other.buf_);
    rec_ = other.rec_;
    end_ = other.end_;
    eof_ = other.eof_;
    started_ = other.started_;
    had_bom_ = other.had_bom_;
    next_index_ = other.next_index_;
    line_ = other.line_;
    state_ = other.state_;
    pos_ = other.pos_;
    field_begin_ = other.field_begin_;
    field_quoted_ = other.field_quoted_;
    newlines_in_record_ = other.newlines_in_record_;
    quote_line_ = other.quote_line_;
    spans_ = std::move(other.spans_);
    failed_ = other.failed_;
    error_ = std::move(other.error_);
  }
  return *this;
}

csv_reader::~csv_reader() {
  if (fd_ >= 0) ::close(fd_);
}

// Makes more bytes available after end_, keeping the current record (offsets are relative to
// rec_, so moving it to the front of the buffer invalidates nothing).
result<void> csv_reader::refill() {
  if (eof_) return ok();
  if (rec_ > 0) {
    std::memmove(buf_.data(), buf_.data() + rec_, end_ - rec_);
    end_ -= rec_;
    rec_ = 0;
  }
  const std::size_t want = std::max(options_.read_chunk_bytes, end_ * 2);
  if (buf_.size() < end_ + options_.read_chunk_bytes) {
    buf_.resize(std::max(want, end_ + options_.read_chunk_bytes));
  }
  while (end_ < buf_.size()) {
    const ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::unavailable, "reading '{}' failed at record {} (line {}): {}", path_,
                        next_index_, line_, std::strerror(errno));
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    end_ += static_cast<std::size_t>(n);
  }
  return ok();
}

void csv_reader::reset_record() {
  state_ = scan_state::field_start;
  pos_ = 0;
  field_begin_ = 0;
  field_quoted_ = false;
  newlines_in_record_ = 0;
  spans_.clear();
}

void csv_reader::finish_field(std::size_t end) {
  spans_.push_back(
      field_span{static_cast<std::uint32_t>(field_begin_), static_cast<std::uint32_t>(end), field_quoted_});
  field_quoted_ = false;
}

void csv_reader::materialize(csv_record& out) {
  out.fields.clear();
  char* base = buf_.data() + rec_;
  for (const field_span& f : spans_) {
    char* data = base + f.begin;
    std::size_t size = f.end - f.begin;
    // The common quoted field ("Acme, Inc.") has no inner quotes: just drop the closing one.
    if (f.quoted) {
      const void* first_quote = std::memchr(data, '"', size);
      if (first_quote != nullptr && static_cast<const char*>(first_quote) == data + size - 1) {
        size -= 1;
      } else if (first_quote != nullptr) {
        size = unquote_in_place(data, size);
      }
    }
    out.fields.emplace_back(data, size);
  }
}

result<bool> csv_reader::next(csv_record& out) {
  if (failed_) return error_;
  auto fail = [&](error e) -> result<bool> {
    failed_ = true;
    error_ = std::move(e);
    return error_;
  };

  if (!started_) {
    started_ = true;
    while (end_ - rec_ < utf8_bom.size() && !eof_) {
      if (auto r = refill(); !r) return fail(std::move(r).error());
    }
    if (std::string_view(buf_.data() + rec_, end_ - rec_).starts_with(utf8_bom)) {
      rec_ += utf8_bom.size();
      had_bom_ = true;
    }
  }

  while (true) {
    const char* const base = buf_.data() + rec_;
    const std::size_t avail = end_ - rec_;
    bool complete = false;
    bool blank_line = false;
    std::size_t consumed = 0;  // bytes of the record including its line end

    while (pos_ < avail && !complete && !blank_line) {
      switch (state_) {
        case scan_state::field_start:
          field_begin_ = pos_;
          if (base[pos_] == '"') {
            field_quoted_ = true;
            quote_line_ = line_ + newlines_in_record_;
            field_begin_ = ++pos_;
            state_ = scan_state::quoted;
          } else {
            state_ = scan_state::unquoted;
          }
          break;
        case scan_state::unquoted: {
          std::size_t p = pos_;
          while (p < avail && base[p] != ',' && base[p] != '\n') ++p;
          pos_ = p;
          if (p == avail) break;
          if (base[p] == ',') {
            finish_field(p);
            pos_ = p + 1;
            state_ = scan_state::field_start;
          } else {
            std::size_t field_end = p;
            if (field_end > field_begin_ && base[field_end - 1] == '\r') --field_end;
            // An empty line (or a lone "\r") is not a record.
            if (spans_.empty() && !field_quoted_ && field_end == 0) {
              consumed = p + 1;
              blank_line = true;
              break;
            }
            finish_field(field_end);
            consumed = p + 1;
            complete = true;
          }
          break;
        }
        case scan_state::quoted: {
          const void* q = std::memchr(base + pos_, '"', avail - pos_);
          const std::size_t stop =
              q == nullptr ? avail : static_cast<std::size_t>(static_cast<const char*>(q) - base);
          newlines_in_record_ += static_cast<std::uint64_t>(std::count(base + pos_, base + stop, '\n'));
          pos_ = stop;
          if (q != nullptr) {
            ++pos_;
            state_ = scan_state::quote_in_quoted;
          }
          break;
        }
        case scan_state::quote_in_quoted:
          if (base[pos_] == '"') {
            ++pos_;  // a doubled quote: still inside the quoted field
            state_ = scan_state::quoted;
          } else {
            state_ = scan_state::unquoted;  // closed; anything up to the delimiter is data
          }
          break;
      }
    }

    if (blank_line) {
      rec_ += consumed;
      ++line_;
      reset_record();
      continue;
    }
    if (complete) {
      out.index = next_index_++;
      out.line = line_;
      materialize(out);
      line_ += 1 + newlines_in_record_;
      rec_ += consumed;
      reset_record();
      return true;
    }

    if (!eof_) {
      if (avail > options_.max_record_bytes) {
        return fail(make_error(errc::invalid_input,
                               "record {} (line {}) of '{}' is longer than {} bytes; is a quote left open?",
                               next_index_, line_, path_, options_.max_record_bytes));
      }
      if (auto r = refill(); !r) return fail(std::move(r).error());
      continue;
    }

    // End of input.
    if (state_ == scan_state::quoted) {
      return fail(
          make_error(errc::invalid_input,
                     "record {} (line {}) of '{}': the quoted field opened at line {} is never closed",
                     next_index_, line_, path_, quote_line_));
    }
    if (spans_.empty() && !field_quoted_ && (avail == 0 || (avail == 1 && base[0] == '\r'))) {
      rec_ = end_;
      reset_record();
      return false;
    }
    // The last record has no line end ("a,b" or "a,b," at the end of the file).
    if (state_ == scan_state::field_start) field_begin_ = avail;
    std::size_t field_end = avail;
    if (field_end > field_begin_ && base[field_end - 1] == '\r') --field_end;
    finish_field(field_end);
    out.index = next_index_++;
    out.line = line_;
    materialize(out);
    line_ += newlines_in_record_;
    rec_ = end_;
    reset_record();
    return true;
  }
}

}  // namespace dialer::contacts
