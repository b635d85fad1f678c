#pragma once
// A raw libpq connection, for COPY FROM STDIN with rows the caller formats itself (libpqxx 6 cannot stream
// caller-formatted COPY data). Used by the contact import and the import benchmark.
// Threading: one thread at a time; not copyable.

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/result.hpp"

namespace dialer::pg {

// Appends `field` in COPY text format: backslash, tab, newline and carriage return escaped.
void append_copy_field(std::string& out, std::string_view field);

class raw_connection {
 public:
  explicit raw_connection(const std::string& url);
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  [[nodiscard]] bool ok() const;
  [[nodiscard]] std::string message() const;  // libpq's last error, one line

  // Runs `sql` (several statements allowed); errc::internal with the server's message unless the last result
  // has status `expect`.
  result<void> exec(const std::string& sql, ExecStatusType expect = PGRES_COMMAND_OK);
  // Runs a query that returns one row of one integer column.
  result<std::int64_t> scalar(const std::string& sql);
  // One statement with text parameters $1, $2, ... (never formatted into the SQL); `expect` as for exec.
  result<void> exec_params(const std::string& sql, const std::vector<std::string>& params,
                           ExecStatusType expect = PGRES_COMMAND_OK);
  // exec_params for a statement that returns one row of one integer column.
  result<std::int64_t> scalar_params(const std::string& sql, const std::vector<std::string>& params);
  // The SQLSTATE of the last exec or scalar that failed on the server ("23505"), empty when it did not.
  [[nodiscard]] const std::string& last_sqlstate() const noexcept { return last_sqlstate_; }
  // COPY data after `exec("COPY ... FROM STDIN", PGRES_COPY_IN)`: any number of whole or partial rows.
  result<void> put(std::string_view data);
  result<void> end_copy();

 private:
  // Take the result of one statement (and free it): a command's status, or a single integer value.
  result<void> finish(PGresult* r, ExecStatusType expect);
  result<std::int64_t> finish_scalar(PGresult* r);
  PGconn* conn_;
  std::string last_sqlstate_;
};

}  // namespace dialer::pg
