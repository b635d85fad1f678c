#pragma once
// The blocking side of a REST carrier's number provider (Twilio, Telnyx): one lazily opened keep-alive pool per
// provider instance, and the answer of each request as the provider needs it (a failure that says which request
// and why, never the credentials).
// Threading: like number_provider: the caller serialises calls; each call blocks until its answer.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "adapters/carriers/rest/http_pool.hpp"
#include "engine/result.hpp"

namespace dialer::carriers::rest {

struct json_answer {
  unsigned status = 0;
  nlohmann::json body;  // discarded (null) when the answer is not JSON
  std::string raw;
  std::optional<std::chrono::seconds> retry_after;
};

// A small pool for a number provider: a few connections, the request timeout given.
[[nodiscard]] inline pool_options pool_options_for(std::string base_url, std::chrono::milliseconds timeout) {
  pool_options o;
  o.base_url = std::move(base_url);
  o.max_connections = 4;
  o.timeout = timeout;
  return o;
}

class provider_client {
 public:
  // `carrier` names the provider in messages; `authorization` is the header's whole value.
  provider_client(std::string carrier, pool_options options, std::string authorization)
      : carrier_(std::move(carrier)), options_(std::move(options)), authorization_(std::move(authorization)) {}

  // Any HTTP answer; unavailable when none came (the message says whether the request may have been acted on).
  [[nodiscard]] result<json_answer> call(std::string method, std::string target, std::string content_type = {},
                                         std::string body = {});

 private:
  std::string carrier_;
  pool_options options_;
  std::string authorization_;
  std::unique_ptr<http_pool> pool_;
};

}  // namespace dialer::carriers::rest
