#pragma once
// The dialing engine's database ports on PostgreSQL: each call opens a connection of its own (with the
// engine's statement timeout and TCP keepalives) for the stage that asked.

#include <string>

#include "engine/dialing/engine_options.hpp"

namespace dialer::pg {

// `engine_id` (make_engine_id()) names the engine in claims, attempts and leases.
[[nodiscard]] engine_ports engine_ports_for(std::string database_url, std::string engine_id);

}  // namespace dialer::pg
