#pragma once
// Opening connections and turning libpqxx exceptions into result errors at the adapter boundary.

#include <memory>
#include <pqxx/connection>
#include <string>

#include "engine/result.hpp"

namespace dialer::pg {

// Connects and checks the server answers. errc::invalid_input for a malformed URL, errc::unavailable when
// the server cannot be reached.
[[nodiscard]] result<std::unique_ptr<pqxx::connection>> connect(const std::string& url);

// Maps the exception being handled (call inside a catch block) to an error; `what` names the operation.
[[nodiscard]] error current_exception_error(const std::string& what);

}  // namespace dialer::pg
