#include "engine/contacts/contact_import.hpp"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/contacts/phone_fast_path.hpp"
#include "engine/contacts/time_zone_names.hpp"
#include "engine/phone.hpp"

namespace dialer::contacts {
namespace {

constexpr std::string_view phone_aliases[] = {"phone", "phonenumber", "number", "to"};  // priority order
constexpr std::string_view timezone_alias = "timezone";
// A batch also closes at this many input bytes, so a file of huge rows cannot make one batch huge
// (and 32-bit offsets inside a batch stay safe).
constexpr std::size_t max_batch_bytes = std::size_t{32} << 20;

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// "Phone Number", "phone_number", "PHONE-NUMBER" -> "phonenumber".
std::string header_token(std::string_view header) {
  std::string token;
  for (char c : header) {
    if (is_space(c) || c == '_' || c == '-') continue;
    token.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return token;
}

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid (overlongs, surrogates and code
// points above U+10FFFF are invalid, as RFC 3629 and PostgreSQL say).
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool is_valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  // Contact data is mostly ASCII: skip 8 bytes at a time while no high bit is set.
  while (i + 8 <= s.size()) {
    std::uint64_t chunk = 0;
    std::memcpy(&chunk, s.data() + i, 8);
    if ((chunk & 0x8080808080808080ULL) != 0) break;
    i += 8;
  }
  while (i < s.size()) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_sanitized_utf8(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
}

// Appends `s` (valid UTF-8) as a JSON string: quotes, backslashes and control characters escaped,
// everything else (UTF-8 included) copied in runs.
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        constexpr char hex[] = "0123456789abcdef";
        const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.append(s.substr(run));
  out.push_back('"');
}

// Everything a validator needs; immutable while the import runs, shared by all threads.
struct import_context {
  column_map columns;
  std::vector<std::string> key_json;  // per variable: "\"key\":"
  std::string extension_key_json;     // "\"extension\":"
  std::string region;
  import_limits limits;
  const phone_fast_path* phones = nullptr;
};

struct row_slot {
  std::uint64_t row = 0;
  std::uint32_t first_field = 0;
  std::uint32_t field_count = 0;
  // Validation outcome.
  bool ok = false;
  reject_reason reason = reject_reason::invalid_number;
  std::uint64_t key = 0;
  std::uint32_t input_begin = 0, input_size = 0;
  bool input_in_out = false;  // the input view lives in `out` (sanitized), not in `in`
  std::uint32_t tz_begin = 0, tz_size = 0;
  std::uint32_t json_begin = 0, json_size = 0;
  std::array<char, 16> e164{};
  std::uint8_t e164_size = 0;
  std::array<char, 4> country{};
  std::uint8_t country_size = 0;
  std::uint16_t area_code = 0;
  number_type type = number_type::local;
};

struct work_batch {
  std::string in;                                               // field bytes of every row
  std::vector<std::pair<std::uint32_t, std::uint32_t>> fields;  // (offset, size) into `in`
  std::vector<row_slot> rows;
  std::string out;  // variables JSON and sanitized inputs
  std::vector<accepted_contact> accepted;
  std::vector<rejected_contact> rejected;
  bool done = false;
  std::optional<error> failure;

  void clear() {
    in.clear();
    fields.clear();
    rows.clear();
    out.clear();
    accepted.clear();
    rejected.clear();
    done = false;
    failure.reset();
  }
  [[nodiscard]] std::string_view field(const row_slot& r, std::size_t column) const noexcept {
    if (column >= r.field_count) return {};
    const auto [offset, size] = fields[r.first_field + column];
    return std::string_view(in).substr(offset, size);
  }
};

// The first size limit a row breaks, if any: phone_too_long, then field_too_long, then row_too_long. Reads only
// field lengths (and trims the phone field when it is long), so its cost is bounded by the field count.
std::optional<reject_reason> size_violation(const import_context& ctx, const work_batch& b, const row_slot& r) {
  const import_limits& limits = ctx.limits;
  bool field_too_long = false;
  std::size_t row_bytes = r.field_count > 0 ? r.field_count - 1 : 0;  // one byte per separator
  for (std::uint32_t i = 0; i < r.field_count; ++i) {
    const std::string_view f = b.field(r, i);
    row_bytes += f.size();
    if (i == ctx.columns.phone) {
      if (f.size() > limits.max_phone_bytes && trim(f).size() > limits.max_phone_bytes)
        return reject_reason::phone_too_long;
    } else if (f.size() > limits.max_field_bytes) {
      field_too_long = true;
    }
  }
  if (field_too_long) return reject_reason::field_too_long;
  if (row_bytes > limits.max_row_bytes) return reject_reason::row_too_long;
  return std::nullopt;
}

// Points the row's reported input at a sanitized copy of `input` in `out`.
void keep_sanitized_input(work_batch& b, row_slot& r, std::string_view input) {
  r.input_in_out = true;
  r.input_begin = static_cast<std::uint32_t>(b.out.size());
  append_sanitized_utf8(b.out, input);
  r.input_size = static_cast<std::uint32_t>(b.out.size() - r.input_begin);
}

void validate_row(const import_context& ctx, work_batch& b, row_slot& r) {
  auto offset_in = [&](std::string_view v) { return static_cast<std::uint32_t>(v.data() - b.in.data()); };
  const std::string_view raw_phone = b.field(r, ctx.columns.phone);
  r.input_begin = raw_phone.empty() ? 0 : offset_in(raw_phone);
  r.input_size = static_cast<std::uint32_t>(raw_phone.size());

  // Sizes first: everything after this point (UTF-8, libphonenumber, JSON) is then bounded per row.
  if (const auto too_big = size_violation(ctx, b, r)) {
    r.reason = *too_big;
    keep_sanitized_input(b, r, raw_phone.substr(0, ctx.limits.max_phone_bytes));
    return;
  }
  for (std::uint32_t i = 0; i < r.field_count; ++i) {
    if (!is_valid_utf8(b.field(r, i))) {
      r.reason = reject_reason::invalid_encoding;
      keep_sanitized_input(b, r, raw_phone);
      return;
    }
  }
  const std::string_view phone = trim(raw_phone);
  if (phone.empty()) {
    r.reason = reject_reason::missing_phone;
    return;
  }
  parsed_phone parsed;
  if (ctx.phones->parse(phone, ctx.region, parsed) != phone_status::ok) {
    r.reason = reject_reason::invalid_number;
    return;
  }
  std::string_view tz;
  if (ctx.columns.timezone) tz = trim(b.field(r, *ctx.columns.timezone));
  if (!tz.empty() && !is_known_time_zone(tz)) {
    r.reason = reject_reason::invalid_timezone;
    return;
  }

  // The variables, bounded: a row whose JSON breaks the limit is rejected and leaves nothing in `out`.
  r.json_begin = static_cast<std::uint32_t>(b.out.size());
  b.out.push_back('{');
  bool first = true;
  for (std::size_t v = 0; v < ctx.columns.variables.size(); ++v) {
    if (!first) b.out.push_back(',');
    first = false;
    b.out += ctx.key_json[v];
    append_json_string(b.out, b.field(r, ctx.columns.variables[v].column));
  }
  if (!parsed.extension.empty()) {
    if (!first) b.out.push_back(',');
    first = false;
    b.out += ctx.extension_key_json;
    append_json_string(b.out, parsed.extension);
  }
  // A ragged row's extra fields are kept, under their column position, rather than dropped.
  const std::size_t header_width = ctx.columns.variables.size() + 1 + (ctx.columns.timezone ? 1 : 0);
  for (std::size_t c = header_width; c < r.field_count; ++c) {
    const std::string_view extra = b.field(r, c);
    if (extra.empty()) continue;
    if (!first) b.out.push_back(',');
    first = false;
    append_json_string(b.out, fmt::format("column_{}", c + 1));
    b.out.push_back(':');
    append_json_string(b.out, extra);
  }
  b.out.push_back('}');
  r.json_size = static_cast<std::uint32_t>(b.out.size() - r.json_begin);
  if (r.json_size > ctx.limits.max_variables_bytes) {
    b.out.resize(r.json_begin);
    r.json_begin = r.json_size = 0;
    r.reason = reject_reason::variables_too_large;
    return;
  }

  r.ok = true;
  r.key = e164_set::key_of(parsed.e164).value_or(0);
  r.e164_size = static_cast<std::uint8_t>(std::min(parsed.e164.size(), r.e164.size()));
  std::memcpy(r.e164.data(), parsed.e164.data(), r.e164_size);
  r.country_size = static_cast<std::uint8_t>(std::min(parsed.country.size(), r.country.size()));
  std::memcpy(r.country.data(), parsed.country.data(), r.country_size);
  r.area_code = parsed.area_code;
  r.type = parsed.type;
  r.tz_begin = tz.empty() ? 0 : offset_in(tz);
  r.tz_size = static_cast<std::uint32_t>(tz.size());
}

void validate_batch(const import_context& ctx, work_batch& b) noexcept {
  try {
    for (row_slot& r : b.rows) validate_row(ctx, b, r);
  } catch (const std::exception& e) {
    b.failure = make_error(errc::internal, "validating rows {}..{} failed: {}", b.rows.front().row,
                           b.rows.back().row, e.what());
  }
}

// Runs one import: the calling thread reads and commits, validator threads validate batches.
class import_run {
 public:
  import_run(csv_reader& reader, const import_options& options, contact_sink& sink, import_context ctx)
      : reader_(reader), options_(options), sink_(sink), ctx_(std::move(ctx)) {}

  ~import_run() { stop_workers(); }
  import_run(const import_run&) = delete;
  import_run& operator=(const import_run&) = delete;

  result<import_summary> run() {
    const unsigned threads = options_.validator_threads;
    pool_.resize(threads == 0 ? 1 : 2 * threads + 2);
    for (auto& b : pool_) {
      b = std::make_unique<work_batch>();
      free_.push_back(b.get());
    }
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });

    std::optional<error> input_error;
    std::optional<error> failure;
    bool input_done = false;
    while (!input_done && !failure) {
      if (free_.empty()) {
        if (auto r = commit_oldest(); !r) {
          failure = std::move(r).error();
          break;
        }
      }
      work_batch* b = free_.back();
      free_.pop_back();
      b->clear();
      auto filled = fill(*b);
      if (!filled) {
        input_error = std::move(filled).error();
        input_done = true;
      } else if (!*filled) {
        input_done = true;
      }
      if (b->rows.empty()) {
        free_.push_back(b);
        continue;
      }
      if (threads == 0) {
        validate_batch(ctx_, *b);
        b->done = true;
        inflight_.push_back(b);
        if (auto r = commit_oldest(); !r) failure = std::move(r).error();
      } else {
        {
          const std::lock_guard lock(mutex_);
          todo_.push_back(b);
        }
        work_ready_.notify_one();
        inflight_.push_back(b);
      }
    }
    // Rows read before an input error are still written: nothing already read is lost.
    while (!inflight_.empty() && !failure) {
      if (auto r = commit_oldest(); !r) failure = std::move(r).error();
    }
    stop_workers();
    if (failure) return *std::move(failure);
    if (input_error) return *std::move(input_error);
    return summary_;
  }

 private:
  // Copies up to batch_rows records from the reader. Returns false at the end of the input.
  result<bool> fill(work_batch& b) {
    while (b.rows.size() < options_.batch_rows && b.in.size() < max_batch_bytes) {
      auto more = reader_.next(record_);
      if (!more) return std::move(more).error();
      if (!*more) return false;
      row_slot r;
      r.row = record_.index;
      r.first_field = static_cast<std::uint32_t>(b.fields.size());
      r.field_count = static_cast<std::uint32_t>(record_.fields.size());
      for (std::string_view f : record_.fields) {
        b.fields.emplace_back(static_cast<std::uint32_t>(b.in.size()), static_cast<std::uint32_t>(f.size()));
        b.in.append(f);
      }
      b.rows.push_back(r);
    }
    return true;
  }

  // Waits for the oldest batch in flight, applies the cross-row checks in row order, hands it to
  // the sink and returns it to the free list.
  result<void> commit_oldest() {
    work_batch* b = inflight_.front();
    {
      std::unique_lock lock(mutex_);
      batch_done_.wait(lock, [&] { return b->done; });
    }
    inflight_.pop_front();
    free_.push_back(b);
    if (b->failure) return *b->failure;

    for (const row_slot& r : b->rows) {
      ++summary_.rows;
      reject_reason reason = r.reason;
      bool accepted = r.ok;
      if (accepted && options_.do_not_call != nullptr && options_.do_not_call->contains(r.key)) {
        accepted = false;
        reason = reject_reason::do_not_call;
      } else if (accepted && !seen_.insert(r.key)) {
        accepted = false;
        reason = reject_reason::duplicate;
      }
      if (accepted) {
        ++summary_.accepted;
        const std::string_view out(b->out), in(b->in);
        b->accepted.push_back(
            accepted_contact{r.row, std::string_view(r.e164.data(), r.e164_size),
                             in.substr(r.tz_begin, r.tz_size), out.substr(r.json_begin, r.json_size),
                             std::string_view(r.country.data(), r.country_size), r.area_code, r.type});
      } else {
        ++summary_.rejected;
        ++summary_.by_reason[static_cast<std::size_t>(reason)];
        const std::string_view source = r.input_in_out ? std::string_view(b->out) : std::string_view(b->in);
        b->rejected.push_back(rejected_contact{r.row, source.substr(r.input_begin, r.input_size), reason});
      }
    }
    return sink_.write(contact_batch{b->accepted, b->rejected});
  }

  void worker_loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      work_ready_.wait(lock, [&] { return stopping_ || !todo_.empty(); });
      if (todo_.empty()) return;
      work_batch* b = todo_.front();
      todo_.pop_front();
      lock.unlock();
      validate_batch(ctx_, *b);
      lock.lock();
      b->done = true;
      batch_done_.notify_one();
    }
  }

  void stop_workers() noexcept {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_ready_.notify_all();
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    workers_.clear();
  }

  csv_reader& reader_;
  const import_options& options_;
  contact_sink& sink_;
  const import_context ctx_;
  csv_record record_;
  e164_set seen_;
  import_summary summary_;

  std::vector<std::unique_ptr<work_batch>> pool_;
  std::vector<work_batch*> free_;     // calling thread only
  std::deque<work_batch*> inflight_;  // calling thread only, in row order
  std::mutex mutex_;
  std::condition_variable work_ready_;  // todo_ gained a batch, or stopping_
  std::condition_variable batch_done_;  // some batch's done became true
  std::deque<work_batch*> todo_;        // guarded by mutex_
  bool stopping_ = false;               // guarded by mutex_
  std::vector<std::thread> workers_;
};

}  // namespace

std::string_view to_string(reject_reason r) noexcept {
  switch (r) {
    case reject_reason::missing_phone:
      return "missing_phone";
    case reject_reason::invalid_number:
      return "invalid_number";
    case reject_reason::invalid_timezone:
      return "invalid_timezone";
    case reject_reason::duplicate:
      return "duplicate";
    case reject_reason::do_not_call:
      return "do_not_call";
    case reject_reason::invalid_encoding:
      return "invalid_encoding";
    case reject_reason::phone_too_long:
      return "phone_too_long";
    case reject_reason::field_too_long:
      return "field_too_long";
    case reject_reason::row_too_long:
      return "row_too_long";
    case reject_reason::variables_too_large:
      return "variables_too_large";
  }
  return "invalid_number";
}

result<column_map> map_columns(std::span<const std::string_view> header) {
  std::vector<std::string> tokens;
  tokens.reserve(header.size());
  for (std::string_view h : header) tokens.push_back(header_token(h));

  column_map map;
  std::optional<std::size_t> phone;
  for (std::string_view alias : phone_aliases) {
    for (std::size_t i = 0; i < tokens.size() && !phone; ++i) {
      if (tokens[i] == alias) phone = i;
    }
    if (phone) break;
  }
  if (!phone) {
    std::string found;
    for (std::string_view h : header) {
      if (!found.empty()) found += ", ";
      found += fmt::format("'{}'", trim(h));
    }
    // One column that names a phone column once split on ';' or a tab: the file uses another separator.
    std::string_view hint;
    if (header.size() == 1) {
      for (const auto& [separator, name] : {std::pair{';', "';'"}, std::pair{'\t', "tabs"}}) {
        if (header[0].find(separator) != std::string_view::npos) {
          hint = name;
          break;
        }
      }
    }
    return make_error(
        errc::invalid_input,
        "no phone column in the header (found: {}); name one of: phone, phone_number, number, to "
        "(case and spaces ignored){}",
        found.empty() ? std::string("nothing") : found,
        hint.empty() ? std::string()
                     : fmt::format("; the header looks separated by {}: save the file with commas", hint));
  }
  map.phone = *phone;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i != map.phone && tokens[i] == timezone_alias) {
      map.timezone = i;
      break;
    }
  }
  std::vector<std::string> used;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i == map.phone || (map.timezone && i == *map.timezone)) continue;
    std::string key(trim(header[i]));
    if (key.empty()) key = fmt::format("column_{}", i + 1);
    const std::string base = key;
    for (int n = 2; std::find(used.begin(), used.end(), key) != used.end(); ++n)
      key = fmt::format("{}_{}", base, n);
    used.push_back(key);
    map.variables.push_back({i, std::move(key)});
  }
  for (int n = 2; std::find(used.begin(), used.end(), map.extension_key) != used.end(); ++n)
    map.extension_key = fmt::format("extension_{}", n);
  return map;
}

namespace {

// The header's own limits: UTF-8, no column longer than max_field_bytes, the whole no longer than max_row_bytes
// (every row's variables repeat its names).
result<void> check_header_record(const csv_record& header, const import_limits& limits) {
  std::size_t bytes = header.fields.empty() ? 0 : header.fields.size() - 1;
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    const std::string_view h = header.fields[i];
    if (!is_valid_utf8(h)) {
      return make_error(errc::invalid_input,
                        "the header (line {}) is not valid UTF-8; save the file as UTF-8", header.line);
    }
    if (h.size() > limits.max_field_bytes) {
      return make_error(errc::invalid_input, "column {} of the header is {} bytes long; at most {} are allowed", i + 1,
                        h.size(), limits.max_field_bytes);
    }
    bytes += h.size();
  }
  if (bytes > limits.max_row_bytes) {
    return make_error(errc::invalid_input, "the header is {} bytes long; at most {} are allowed", bytes,
                      limits.max_row_bytes);
  }
  return ok();
}

result<column_map> read_header(csv_reader& reader, const import_limits& limits) {
  csv_record header;
  auto has_header = reader.next(header);
  if (!has_header) return std::move(has_header).error();
  if (!*has_header) {
    return make_error(errc::invalid_input,
                      "the contact file is empty: expected a header row naming a phone column");
  }
  if (auto checked = check_header_record(header, limits); !checked) return std::move(checked).error();
  return map_columns(header.fields);
}

// Content errors name the file; read errors (errc::unavailable) already do, and sink errors are not the file's.
error naming_file(const std::string& path, error e) {
  if (e.code != errc::invalid_input || e.message.find(path) != std::string::npos) return e;
  return make_error(e.code, "contact file '{}': {}", path, e.message);
}

}  // namespace

result<import_summary> import_contacts(csv_reader& reader, const import_options& options,
                                       contact_sink& sink) {
  const std::string region = normalize_region(options.default_region);
  if (!is_supported_region(region)) {
    return make_error(errc::invalid_input,
                      "unknown default region '{}' (expected an ISO 3166-1 code such as US)",
                      options.default_region);
  }
  auto columns = read_header(reader, options.limits);
  if (!columns) return std::move(columns).error();

  import_context ctx;
  ctx.columns = std::move(*columns);
  ctx.region = region;
  ctx.limits = options.limits;
  ctx.phones = &phone_fast_path::instance();
  for (const auto& v : ctx.columns.variables) {
    std::string key;
    append_json_string(key, v.key);
    key.push_back(':');
    ctx.key_json.push_back(std::move(key));
  }
  append_json_string(ctx.extension_key_json, ctx.columns.extension_key);
  ctx.extension_key_json.push_back(':');
  import_options effective = options;
  if (effective.batch_rows == 0) effective.batch_rows = 1;
  import_run run(reader, effective, sink, std::move(ctx));
  return run.run();
}

result<import_summary> import_contacts_file(const std::string& path, const import_options& options,
                                            contact_sink& sink) {
  auto reader = csv_reader::open(path);
  if (!reader) return std::move(reader).error();
  auto summary = import_contacts(*reader, options, sink);
  if (!summary) return naming_file(path, std::move(summary).error());
  return summary;
}

result<column_map> check_contacts_header(const std::string& path, const import_limits& limits) {
  auto reader = csv_reader::open(path);
  if (!reader) return std::move(reader).error();
  auto columns = read_header(*reader, limits);
  if (!columns) return naming_file(path, std::move(columns).error());
  return columns;
}

}  // namespace dialer::contacts
