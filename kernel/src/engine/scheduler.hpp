#pragma once
// Fires timers on the real clock: sleeps until the next one falls due, or until a commit may have
// added an earlier one. (Under the virtual clock, time moves only through Engine::advance_clock_to.)
#include "engine/engine.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace clinicflow::engine {

class Scheduler {
 public:
  Scheduler(Engine& engine, store::CaseStore& store, Clock& clock);
  ~Scheduler();  // stops and joins
  void start();
  void stop();
  void wake();  // a commit changed timers: look again

 private:
  void run();

  Engine& engine_;
  store::CaseStore& store_;
  Clock& clock_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace clinicflow::engine
