#include "adapters/postgres/raw_connection.hpp"


namespace dialer::pg {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

void append_copy_field(std::string& out, std::string_view field) {
  for (char c : field) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

raw_connection::raw_connection(const std::string& url) : conn_(PQconnectdb(url.c_str())) {}

raw_connection::~raw_connection() {
  if (conn_) PQfinish(conn_);
}

bool raw_connection::ok() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

std::string raw_connection::message() const { return conn_ ? trim(PQerrorMessage(conn_)) : "out of memory"; }

static std::string sqlstate_of(const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return state ? state : "";
}

result<void> raw_connection::finish(PGresult* r, ExecStatusType expect) {
  const bool good = PQresultStatus(r) == expect;
  std::string why = good ? "" : trim(PQresultErrorMessage(r));
  last_sqlstate_ = good ? "" : sqlstate_of(r);
  PQclear(r);
  if (!good) return make_error(errc::internal, "{}", why);
  return dialer::ok();
}

result<std::int64_t> raw_connection::finish_scalar(PGresult* r) {
  const bool good = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1;
  std::string value = good ? PQgetvalue(r, 0, 0) : "";
  std::string why = good ? "" : trim(PQresultErrorMessage(r));
  last_sqlstate_ = good ? "" : sqlstate_of(r);
  PQclear(r);
  if (!good) return make_error(errc::internal, "{}", why.empty() ? "expected one value" : why);
  return std::stoll(value);
}

result<void> raw_connection::exec(const std::string& sql, ExecStatusType expect) {
  return finish(PQexec(conn_, sql.c_str()), expect);
}

result<std::int64_t> raw_connection::scalar(const std::string& sql) { return finish_scalar(PQexec(conn_, sql.c_str())); }

namespace {

PGresult* exec_with(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  return PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
}

}  // namespace

result<void> raw_connection::exec_params(const std::string& sql, const std::vector<std::string>& params,
                                         ExecStatusType expect) {
  return finish(exec_with(conn_, sql, params), expect);
}

result<std::int64_t> raw_connection::scalar_params(const std::string& sql, const std::vector<std::string>& params) {
  return finish_scalar(exec_with(conn_, sql, params));
}

result<void> raw_connection::put(std::string_view data) {
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1)
    return make_error(errc::unavailable, "COPY failed: {}", message());
  return dialer::ok();
}

result<void> raw_connection::end_copy() {
  if (PQputCopyEnd(conn_, nullptr) != 1) return make_error(errc::unavailable, "COPY failed: {}", message());
  PGresult* r = PQgetResult(conn_);
  const bool good = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string why = good ? "" : trim(PQresultErrorMessage(r));
  PQclear(r);
  while ((r = PQgetResult(conn_)) != nullptr) PQclear(r);
  if (!good) return make_error(errc::internal, "COPY failed: {}", why);
  return dialer::ok();
}

}  // namespace dialer::pg
