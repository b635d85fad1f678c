#pragma once
// Routes: a method and a path pattern whose segments are literals or {parameters}, matched segment by
// segment. A literal beats a parameter at the same position (/v1/numbers/available before
// /v1/numbers/{id}). The pattern is the route's name in metrics and in the OpenAPI description, which a test
// compares with routes().
//
// Threading: add() before the server starts; match() from any thread afterwards (read-only).

#include <boost/beast/http/verb.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/http/url.hpp"

namespace dialer::http {

using path_params = std::vector<std::pair<std::string, std::string>>;

template <class Handler>
class router {
 public:
  static constexpr std::size_t kMaxSegments = 16;  // a longer path matches no route

  struct route {
    boost::beast::http::verb method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };

  struct match_result {
    const route* found = nullptr;          // set when method and path match
    path_params params;                    // percent-decoded
    std::vector<std::string> allowed;      // the path exists with these methods (405) when found is null
  };

  void add(boost::beast::http::verb method, std::string pattern, Handler handler) {
    std::string_view parts[kMaxSegments];
    const auto count = segments_of(pattern, parts);
    if (count > kMaxSegments) throw std::invalid_argument("route pattern has too many segments: " + pattern);
    routes_.push_back({method, pattern, std::vector<std::string>(parts, parts + count), std::move(handler)});
  }

  [[nodiscard]] match_result match(boost::beast::http::verb method, std::string_view path) const {
    // Segments as views into the path (no allocation); parameters are decoded only for the route chosen.
    std::string_view parts[kMaxSegments];
    const auto count = segments_of(path, parts);
    if (count > kMaxSegments) return {};
    match_result out;
    int best_score = -1;
    for (const auto& r : routes_) {
      const int score = score_of(r, parts, count);
      if (score < 0) continue;
      if (r.method != method) {
        out.allowed.emplace_back(boost::beast::http::to_string(r.method));
        continue;
      }
      if (score > best_score) best_score = score, out.found = &r;
    }
    if (!out.found) return out;
    out.allowed.clear();
    for (std::size_t i = 0; i < count; ++i) {
      const auto& seg = out.found->segments[i];
      if (!is_param(seg)) continue;
      auto decoded = percent_decode(parts[i]);
      if (!decoded || decoded->empty()) return match_result{};
      out.params.emplace_back(seg.substr(1, seg.size() - 2), std::move(*decoded));
    }
    return out;
  }

  [[nodiscard]] const std::vector<route>& routes() const noexcept { return routes_; }

 private:
  // The non-empty segments between slashes, into `out`; kMaxSegments + 1 when there are more than it holds.
  static std::size_t segments_of(std::string_view path, std::string_view (&out)[kMaxSegments]) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < path.size();) {
      if (path[i] == '/') {
        ++i;
        continue;
      }
      if (count == kMaxSegments) return kMaxSegments + 1;
      const auto j = std::min(path.find('/', i), path.size());
      out[count++] = path.substr(i, j - i);
      i = j;
    }
    return count;
  }

  static bool is_param(const std::string& s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }


  // -1: no match; else the number of literal segments (more literals: the more specific route).
  static int score_of(const route& r, const std::string_view* parts, std::size_t count) {
    if (r.segments.size() != count) return -1;
    int literals = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const auto& seg = r.segments[i];
      if (is_param(seg)) {
        if (parts[i].empty()) return -1;
      } else if (seg == parts[i]) {
        ++literals;
      } else {
        return -1;
      }
    }
    return literals;
  }

  std::vector<route> routes_;
};

}  // namespace dialer::http
