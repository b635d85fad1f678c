#pragma once
// PostgreSQL array literals for batched statements (`unnest($1::bigint[], ...)`): one statement carries a
// whole batch instead of one statement per row.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

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

}  // namespace dialer::pg
