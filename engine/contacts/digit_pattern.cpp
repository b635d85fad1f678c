#include "engine/contacts/digit_pattern.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <string>

namespace dialer::contacts {
namespace {

using digit_mask = std::uint16_t;  // bit d set: the digit d matches
constexpr digit_mask all_digits = 0x3ff;
constexpr int max_repeat = 64;  // metadata never repeats more than ~20 times; bounds the expansion

struct node {
  enum class kind { mask, concat, alternate, repeat } type = kind::mask;
  digit_mask mask = 0;
  std::vector<std::unique_ptr<node>> children;
  int min = 0;
  int max = 0;  // -1: unbounded
};

class parser {
 public:
  explicit parser(std::string_view text) : text_(text) {}

  result<std::unique_ptr<node>> parse() {
    auto root = parse_alternation();
    if (!root) return std::move(root).error();
    if (pos_ != text_.size()) return fail("unexpected ')'");
    return root;
  }

 private:
  result<std::unique_ptr<node>> parse_alternation() {
    auto alt = std::make_unique<node>();
    alt->type = node::kind::alternate;
    while (true) {
      auto branch = parse_concat();
      if (!branch) return branch;
      alt->children.push_back(std::move(*branch));
      if (pos_ < text_.size() && text_[pos_] == '|') {
        ++pos_;
        continue;
      }
      break;
    }
    if (alt->children.size() == 1) return std::move(alt->children.front());
    return alt;
  }

  result<std::unique_ptr<node>> parse_concat() {
    auto seq = std::make_unique<node>();
    seq->type = node::kind::concat;
    while (pos_ < text_.size() && text_[pos_] != '|' && text_[pos_] != ')') {
      auto atom = parse_atom();
      if (!atom) return atom;
      auto item = std::move(*atom);
      while (pos_ < text_.size()) {
        auto quantified = parse_quantifier(item);
        if (!quantified) return quantified;
        if (*quantified == nullptr) break;
        item = std::move(*quantified);
      }
      seq->children.push_back(std::move(item));
    }
    return seq;
  }

  // Returns the quantified node, or nullptr when no quantifier follows.
  result<std::unique_ptr<node>> parse_quantifier(std::unique_ptr<node>& item) {
    int min = 0, max = 0;
    const char c = text_[pos_];
    if (c == '?') {
      min = 0, max = 1;
      ++pos_;
    } else if (c == '*') {
      min = 0, max = -1;
      ++pos_;
    } else if (c == '+') {
      min = 1, max = -1;
      ++pos_;
    } else if (c == '{') {
      ++pos_;
      auto lo = parse_number();
      if (!lo) return std::move(lo).error();
      min = max = *lo;
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        if (pos_ < text_.size() && text_[pos_] == '}') {
          max = -1;
        } else {
          auto hi = parse_number();
          if (!hi) return std::move(hi).error();
          max = *hi;
        }
      }
      if (pos_ >= text_.size() || text_[pos_] != '}') return fail("unterminated {n,m}");
      ++pos_;
      if (max != -1 && max < min) return fail("{n,m} with m < n");
    } else {
      return std::unique_ptr<node>{};
    }
    // Lazy and possessive forms do not change the language, but metadata never uses them:
    // reject rather than guess.
    if (pos_ < text_.size() && (text_[pos_] == '?' || text_[pos_] == '+'))
      return fail("lazy or possessive quantifier");
    auto rep = std::make_unique<node>();
    rep->type = node::kind::repeat;
    rep->min = min;
    rep->max = max;
    rep->children.push_back(std::move(item));
    return rep;
  }

  result<int> parse_number() {
    int value = 0;
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + (text_[pos_] - '0');
      if (value > max_repeat) return fail("repeat count too large");
      ++pos_;
    }
    if (pos_ == start) return fail("expected a number in {n,m}");
    return value;
  }

  result<std::unique_ptr<node>> parse_atom() {
    const char c = text_[pos_];
    if (c >= '0' && c <= '9') {
      ++pos_;
      return leaf(static_cast<digit_mask>(1u << (c - '0')));
    }
    if (c == '\\') {
      if (pos_ + 1 < text_.size() && text_[pos_ + 1] == 'd') {
        pos_ += 2;
        return leaf(all_digits);
      }
      return fail("unsupported escape");
    }
    if (c == '[') return parse_class();
    if (c == '(') {
      ++pos_;
      if (text_.substr(pos_, 2) == "?:") {
        pos_ += 2;
      } else if (pos_ < text_.size() && text_[pos_] == '?') {
        return fail("unsupported group kind");
      }
      auto inner = parse_alternation();
      if (!inner) return inner;
      if (pos_ >= text_.size() || text_[pos_] != ')') return fail("unterminated group");
      ++pos_;
      return inner;
    }
    return fail("unsupported character");
  }

  result<std::unique_ptr<node>> parse_class() {
    ++pos_;  // '['
    bool negate = false;
    if (pos_ < text_.size() && text_[pos_] == '^') {
      negate = true;
      ++pos_;
    }
    digit_mask mask = 0;
    bool first = true;
    while (pos_ < text_.size() && (text_[pos_] != ']' || first)) {
      first = false;
      if (text_.substr(pos_, 2) == "\\d") {
        mask |= all_digits;
        pos_ += 2;
        continue;
      }
      const char lo = text_[pos_];
      if (lo < '0' || lo > '9') return fail("unsupported character in class");
      char hi = lo;
      if (pos_ + 2 < text_.size() && text_[pos_ + 1] == '-' && text_[pos_ + 2] != ']') {
        hi = text_[pos_ + 2];
        if (hi < lo || hi > '9') return fail("bad range in class");
        pos_ += 3;
      } else {
        ++pos_;
      }
      for (char d = lo; d <= hi; ++d) mask |= static_cast<digit_mask>(1u << (d - '0'));
    }
    if (pos_ >= text_.size()) return fail("unterminated class");
    ++pos_;  // ']'
    // Inputs are digits only, so a negated class is its complement within the digits.
    return leaf(negate ? static_cast<digit_mask>(all_digits & ~mask) : mask);
  }

  static std::unique_ptr<node> leaf(digit_mask mask) {
    auto n = std::make_unique<node>();
    n->mask = mask;
    return n;
  }

  error fail(std::string_view what) const {
    return make_error(errc::invalid_input, "pattern '{}': {} at offset {}", text_, what, pos_);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// Thompson NFA: each state has either one digit edge or up to two epsilon edges.
class nfa {
 public:
  struct state {
    digit_mask mask = 0;
    int on_digit = -1;
    int eps1 = -1;
    int eps2 = -1;
  };

  int add() {
    states_.emplace_back();
    return static_cast<int>(states_.size()) - 1;
  }
  state& at(int i) { return states_[static_cast<std::size_t>(i)]; }
  [[nodiscard]] std::size_t size() const { return states_.size(); }
  [[nodiscard]] const std::vector<state>& states() const { return states_; }

  void add_eps(int from, int to) {
    auto& s = at(from);
    if (s.eps1 < 0) {
      s.eps1 = to;
    } else {
      s.eps2 = to;
    }
  }

  // Builds `n` between fresh states; returns {entry, exit}. Called repeatedly for {n,m} copies.
  std::pair<int, int> build(const node& n) {
    switch (n.type) {
      case node::kind::mask: {
        const int in = add(), out = add();
        at(in).mask = n.mask;
        at(in).on_digit = out;
        return {in, out};
      }
      case node::kind::concat: {
        const int in = add();
        int tail = in;
        for (const auto& child : n.children) {
          auto [child_in, child_out] = build(*child);
          add_eps(tail, child_in);
          tail = child_out;
        }
        return {in, tail};
      }
      case node::kind::alternate: {
        const int in = add(), out = add();
        int fan = in;
        for (std::size_t i = 0; i < n.children.size(); ++i) {
          auto [child_in, child_out] = build(*n.children[i]);
          add_eps(child_out, out);
          if (i + 1 == n.children.size()) {
            add_eps(fan, child_in);
          } else {
            const int split = add();
            add_eps(fan, child_in);
            add_eps(fan, split);
            fan = split;
          }
        }
        return {in, out};
      }
      case node::kind::repeat: {
        const node& body = *n.children.front();
        const int in = add();
        int tail = in;
        for (int i = 0; i < n.min; ++i) {
          auto [b_in, b_out] = build(body);
          add_eps(tail, b_in);
          tail = b_out;
        }
        const int out = add();
        if (n.max < 0) {
          auto [b_in, b_out] = build(body);
          const int loop = add();
          add_eps(tail, loop);
          add_eps(loop, b_in);
          add_eps(loop, out);
          add_eps(b_out, loop);
        } else {
          for (int i = n.min; i < n.max; ++i) {
            auto [b_in, b_out] = build(body);
            const int split = add();
            add_eps(tail, split);
            add_eps(split, b_in);
            add_eps(split, out);
            tail = b_out;
          }
          add_eps(tail, out);
        }
        return {in, out};
      }
    }
    return {add(), add()};
  }

 private:
  std::vector<state> states_;
};

void close_over_epsilon(const nfa& automaton, std::vector<int>& set, std::vector<std::uint8_t>& seen) {
  std::vector<int> stack(set.begin(), set.end());
  for (int s : set) seen[static_cast<std::size_t>(s)] = 1;
  while (!stack.empty()) {
    const int s = stack.back();
    stack.pop_back();
    const auto& st = automaton.states()[static_cast<std::size_t>(s)];
    for (int next : {st.eps1, st.eps2}) {
      if (next >= 0 && !seen[static_cast<std::size_t>(next)]) {
        seen[static_cast<std::size_t>(next)] = 1;
        set.push_back(next);
        stack.push_back(next);
      }
    }
  }
  for (int s : set) seen[static_cast<std::size_t>(s)] = 0;
  std::sort(set.begin(), set.end());
}

}  // namespace

result<digit_pattern> digit_pattern::compile(std::string_view pattern, std::size_t max_states) {
  auto tree = parser(pattern).parse();
  if (!tree) return std::move(tree).error();
  nfa automaton;
  auto [entry, exit] = automaton.build(**tree);

  // Subset construction. Only NFA states with a digit edge (plus the exit) matter after closure,
  // which keeps the keys small.
  std::vector<std::uint8_t> seen(automaton.size(), 0);
  auto significant = [&](std::vector<int> set) {
    close_over_epsilon(automaton, set, seen);
    std::erase_if(set, [&](int s) {
      return s != exit && automaton.states()[static_cast<std::size_t>(s)].on_digit < 0;
    });
    return set;
  };

  digit_pattern dfa;
  std::map<std::vector<int>, std::int32_t> index;
  std::vector<std::vector<int>> pending;
  auto intern = [&](std::vector<int> set) -> std::int32_t {
    if (set.empty()) return -1;
    auto [it, inserted] = index.try_emplace(set, static_cast<std::int32_t>(dfa.accepting_.size()));
    if (inserted) {
      dfa.accepting_.push_back(std::binary_search(set.begin(), set.end(), exit) ? 1 : 0);
      dfa.next_.resize(dfa.next_.size() + 10, -1);
      pending.push_back(std::move(set));
    }
    return it->second;
  };
  intern(significant({entry}));
  if (dfa.accepting_.empty()) {  // the empty language: a single dead start state
    dfa.accepting_.push_back(0);
    dfa.next_.assign(10, -1);
    return dfa;
  }
  for (std::size_t done = 0; done < pending.size(); ++done) {
    if (pending.size() > max_states) {
      return make_error(errc::invalid_input, "pattern '{}' needs more than {} automaton states", pattern,
                        max_states);
    }
    const std::vector<int> current = pending[done];  // copy: intern() may grow `pending`
    for (int d = 0; d < 10; ++d) {
      std::vector<int> moved;
      for (int s : current) {
        const auto& st = automaton.states()[static_cast<std::size_t>(s)];
        if (st.on_digit >= 0 && (st.mask >> d & 1)) moved.push_back(st.on_digit);
      }
      const std::int32_t target = intern(significant(std::move(moved)));
      dfa.next_[done * 10 + static_cast<std::size_t>(d)] = target;
    }
  }
  return dfa;
}

bool digit_pattern::full_match(std::string_view digits) const noexcept {
  std::int32_t s = 0;
  for (char c : digits) {
    s = next_[static_cast<std::size_t>(s) * 10 + static_cast<std::size_t>(c - '0')];
    if (s < 0) return false;
  }
  return accepting_[static_cast<std::size_t>(s)] != 0;
}

bool digit_pattern::prefix_match(std::string_view digits) const noexcept {
  std::int32_t s = 0;
  if (accepting_[0]) return true;
  for (char c : digits) {
    s = next_[static_cast<std::size_t>(s) * 10 + static_cast<std::size_t>(c - '0')];
    if (s < 0) return false;
    if (accepting_[static_cast<std::size_t>(s)]) return true;
  }
  return false;
}

}  // namespace dialer::contacts
