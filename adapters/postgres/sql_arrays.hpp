#pragma once
// PostgreSQL array literals for batched statements (`unnest($1::bigint[], ...)`): one statement carries a
// whole batch instead of one statement per row.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

namespace dialer::pg {

class array_literal {
 public:
  array_literal() { text_.push_back('{'); }
  void add(std::int64_t v) { sep(); fmt::format_to(std::back_inserter(text_), "{}", v); }
  void add(double v) { sep(); fmt::format_to(std::back_inserter(text_), "{:.6f}", v); }
  void add_null() { sep(); text_ += "NULL"; }
  template <class T>
  void add(const std::optional<T>& v) {
    if (v) add(*v); else add_null();
  }
  void add(std::string_view s) {
    sep();
    text_ += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') text_ += '\\';
      text_ += c;
    }
    text_ += '"';
  }
  [[nodiscard]] std::string str() const { return text_ + "}"; }

 private:
  void sep() {
    if (!first_) text_ += ',';
    first_ = false;
  }
  std::string text_;
  bool first_ = true;
};

// A bigint[] as PostgreSQL prints it ("{1,2,3}"; NULL elements are skipped).
inline std::vector<std::int64_t> parse_int_array(std::string_view text) {
  std::vector<std::int64_t> out;
  std::int64_t v = 0;
  bool neg = false, any = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      v = v * 10 + (c - '0');
      any = true;
    } else if (c == '-') {
      neg = true;
    } else if (c == ',' || c == '}') {
      if (any) out.push_back(neg ? -v : v);
      v = 0;
      neg = any = false;
    }
  }
  return out;
}

// A text[] column's elements (NULL elements are skipped).
inline std::vector<std::string> parse_text_array(const pqxx::field& f) {
  std::vector<std::string> out;
  auto items = f.as_array();
  for (auto item = items.get_next(); item.first != pqxx::array_parser::juncture::done; item = items.get_next())
    if (item.first == pqxx::array_parser::juncture::string_value) out.push_back(item.second);
  return out;
}

}  // namespace dialer::pg
