#pragma once
// Versioned schema migrations, compiled into the binary. Each runs in its own transaction together with
// the row that records it, under an advisory lock, so concurrent processes apply each exactly once and a
// failed migration leaves the schema as it was.

#include <pqxx/connection>
#include <span>

#include "engine/result.hpp"

namespace dialer::pg {

struct migration {
  int version;
  const char* name;
  const char* sql;
};

[[nodiscard]] std::span<const migration> all_migrations() noexcept;

// Applies every migration not yet recorded in schema_migrations. Returns how many were applied.
[[nodiscard]] result<int> migrate(pqxx::connection& connection);
// Same with an explicit list (tests use a deliberately broken one).
[[nodiscard]] result<int> migrate(pqxx::connection& connection, std::span<const migration> migrations);

}  // namespace dialer::pg
