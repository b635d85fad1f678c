#pragma once
// Wakes a carrier adapter instance of this process when a callback meant for it was stored in the inbox, so that
// a callback received by this process's own HTTP server is applied at once; one received by another engine's
// server is found by the instance's next poll of the inbox (a fraction of a second).
// Threading: every method from any thread; ring() runs the subscriber's function on the caller's thread (it must
// only notify).

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace dialer::carriers::rest {

class callback_bell {
 public:
  [[nodiscard]] static callback_bell& process();
  void subscribe(const std::string& instance, std::function<void()> wake);
  void unsubscribe(const std::string& instance);
  void ring(std::string_view instance) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::function<void()>, std::less<>> subscribers_;
};

}  // namespace dialer::carriers::rest
