#include "adapters/carriers/rest/provider_client.hpp"

#include <fmt/format.h>

namespace dialer::carriers::rest {

result<json_answer> provider_client::call(std::string method, std::string target, std::string content_type,
                                          std::string body) {
  if (!pool_) {
    auto made = http_pool::make(options_);
    if (!made) return std::move(made).error();
    pool_ = std::move(*made);
  }
  http_request q;
  q.method = method;
  q.target = target;
  q.content_type = std::move(content_type);
  q.body = std::move(body);
  q.authorization = authorization_;
  q.headers.emplace_back("Accept", "application/json");
  auto a = pool_->send_sync(std::move(q));
  // The path names what was asked; the query may hold a number being searched, which is not a secret.
  const auto what = fmt::format("{} {}", method, target.substr(0, target.find('?')));
  if (a.fail == failure::not_sent)
    return make_error(errc::unavailable, "{}: {} was not sent: {}", carrier_, what, a.error);
  if (a.fail == failure::lost)
    return make_error(errc::unavailable, "{}: {} got no answer ({}); it may have been carried out", carrier_, what,
                      a.error);
  json_answer out;
  out.status = a.status;
  out.raw = std::move(a.body);
  out.body = nlohmann::json::parse(out.raw, nullptr, false);
  if (out.body.is_discarded()) out.body = nullptr;
  out.retry_after = a.retry_after;
  return out;
}

}  // namespace dialer::carriers::rest
