#include "engine/scheduler.hpp"

#include "util/thread_name.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace clinicflow::engine {

Scheduler::Scheduler(Engine& engine, store::CaseStore& store, Clock& clock) : engine_(engine), store_(store), clock_(clock) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  engine_.add_listener([this](const CaseState&, const std::vector<store::EventRecord>&) { wake(); });
  thread_ = std::thread([this] { run(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  changed_.notify_all();
}

void Scheduler::run() {
  util::name_this_thread("cf-timers");
  // Longest sleep without looking again: bounds the effect of a missed wake-up or a clock jump.
  constexpr Duration kMaxSleep = 60'000;
  constexpr Duration kRetryUnfireable = 5'000;
  for (;;) {
    std::size_t fired = 0;
    try {
      fired = engine_.fire_due_timers();
    } catch (const std::exception& e) {
      spdlog::error("scheduler: firing timers failed: {}", e.what());
    }
    Duration sleep = kMaxSleep;
    try {
      if (auto next = store_.next_timer_due()) {
        sleep = std::clamp<Duration>(*next - clock_.now(), 0, kMaxSleep);
        // A due timer that could not fire (its workflow is not loaded) must not make this loop spin.
        if (sleep == 0 && fired == 0) sleep = kRetryUnfireable;
      }
    } catch (const std::exception& e) {
      spdlog::error("scheduler: reading timers failed: {}", e.what());
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::milliseconds(sleep), [this] { return stopping_ || woken_; });
    if (stopping_) return;
    woken_ = false;
  }
}

}  // namespace clinicflow::engine
