#include "adapters/carriers/rest/callback_bell.hpp"

namespace dialer::carriers::rest {

callback_bell& callback_bell::process() {
  static callback_bell bell;
  return bell;
}

void callback_bell::subscribe(const std::string& instance, std::function<void()> wake) {
  std::lock_guard g(mutex_);
  subscribers_[instance] = std::move(wake);
}

void callback_bell::unsubscribe(const std::string& instance) {
  std::lock_guard g(mutex_);
  subscribers_.erase(instance);
}

void callback_bell::ring(std::string_view instance) const {
  std::lock_guard g(mutex_);
  if (auto it = subscribers_.find(instance); it != subscribers_.end() && it->second) it->second();
}

}  // namespace dialer::carriers::rest
