#pragma once
// The only place that reads the wall clock. Tests, the simulator and `clock.advance` use the
// virtual clock, whose time moves only when told.
#include "util/time.hpp"

#include <atomic>

namespace clinicflow::engine {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  virtual bool is_virtual() const = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint now() const override;
  bool is_virtual() const override { return false; }
};

class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(TimePoint start) : now_(start) {}
  TimePoint now() const override { return now_.load(); }
  bool is_virtual() const override { return true; }
  // Time never moves backwards: an earlier time is ignored.
  void set(TimePoint t);

 private:
  std::atomic<TimePoint> now_;
};

}  // namespace clinicflow::engine
