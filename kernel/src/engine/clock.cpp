#include "engine/clock.hpp"

#include <chrono>

namespace clinicflow::engine {

TimePoint RealClock::now() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void VirtualClock::set(TimePoint t) {
  TimePoint current = now_.load();
  while (t > current && !now_.compare_exchange_weak(current, t)) {
  }
}

}  // namespace clinicflow::engine
