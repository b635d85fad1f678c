#pragma once
// A plain HTTP/1.1 client for the API tests (Boost.Beast, blocking): one request per connection unless a
// connection is kept, the raw response (status, headers, body) and the body as JSON when it is JSON.

#include <utility>  // Boost 1.74's Asio needs it first on g++ 12

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace dialer::testing {

struct http_reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  // "code" of an error reply, "" when there is none.
  std::string code() const {
    auto j = json();
    return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
  }
};

class http_client {
 public:
  explicit http_client(unsigned short port) : port_(port) {}

  http_reply request(boost::beast::http::verb method, const std::string& target, const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {}) const {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    boost::beast::error_code connect_ec;
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), connect_ec);
    if (connect_ec) return {};  // status 0: nothing listens
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(false);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    boost::beast::error_code ec;
    http::write(stream, req, ec);  // a server that refuses early (413) may close before the body is sent
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream, buffer, parser, ec);
    http_reply out;
    if (ec && !parser.is_header_done()) return out;  // status 0: no answer
    const auto& res = parser.get();
    out.status = res.result_int();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
    return out;
  }

  http_reply get(const std::string& target, const std::string& key = {}) const {
    return request(boost::beast::http::verb::get, target, {}, auth(key));
  }
  http_reply post(const std::string& target, const nlohmann::json& body, const std::string& key = {},
                  std::map<std::string, std::string> headers = {}) const {
    for (auto& [k, v] : auth(key)) headers[k] = v;
    return request(boost::beast::http::verb::post, target, body.is_null() ? std::string() : body.dump(), headers);
  }
  http_reply patch(const std::string& target, const nlohmann::json& body, const std::string& key = {}) const {
    return request(boost::beast::http::verb::patch, target, body.dump(), auth(key));
  }
  http_reply del(const std::string& target, const std::string& key = {}) const {
    return request(boost::beast::http::verb::delete_, target, {}, auth(key));
  }

  [[nodiscard]] unsigned short port() const noexcept { return port_; }

 private:
  static std::map<std::string, std::string> auth(const std::string& key) {
    if (key.empty()) return {};
    return {{"Authorization", "Bearer " + key}};
  }
  unsigned short port_;
};

}  // namespace dialer::testing
