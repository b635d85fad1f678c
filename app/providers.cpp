// Wiring of the number inventory: the simulated provider is the embedded default.
#include "adapters/carriers/simulated/simulated_number_provider.hpp"
#include "app/commands.hpp"

namespace dialer::app {

std::unique_ptr<number_provider> make_default_number_provider() {
  return std::make_unique<carriers::simulated_number_provider>();
}

}  // namespace dialer::app
