#include "engine/outbox_dispatcher.hpp"

#include "util/thread_name.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace clinicflow::engine {

OutboxDispatcher::OutboxDispatcher(store::CaseStore& store, Clock& clock, Deliver deliver, RetryPolicy policy)
    : store_(store), clock_(clock), deliver_(std::move(deliver)), policy_(policy) {}

OutboxDispatcher::~OutboxDispatcher() { stop(); }

std::size_t OutboxDispatcher::dispatch_due() {
  std::lock_guard pass(pass_mutex_);
  std::size_t attempts = 0;
  for (;;) {
    auto due = store_.due_messages(clock_.now(), 64);
    if (due.empty()) return attempts;
    for (auto& message : due) {
      int attempt = message.attempts + 1;
      DeliveryAttempt result;
      try {
        result = deliver_(message, attempt);
      } catch (const std::exception& e) {
        result = {DeliveryAttempt::Status::retry, e.what()};
      }
      ++attempts;
      message.attempts = attempt;
      TimePoint now = clock_.now();
      if (result.status == DeliveryAttempt::Status::delivered) {
        message.status = "delivered";
        message.delivered_at = now;
        message.last_error.clear();
      } else if (result.status == DeliveryAttempt::Status::failed || attempt >= policy_.max_attempts) {
        message.status = "failed";
        message.last_error = result.error;
        spdlog::warn("message {} on case {} failed after {} attempt(s)", message.id, message.case_id, attempt);
      } else {
        Duration wait = policy_.first_retry;
        for (int i = 1; i < attempt && wait < policy_.max_retry; ++i) wait *= 2;
        message.next_attempt_at = now + std::min(wait, policy_.max_retry);
        message.last_error = result.error;
      }
      // Recorded after the plugin answered: a crash before this line means one more attempt
      // with the same id, never a lost message.
      store_.update_message(message);
    }
  }
}

void OutboxDispatcher::start() {
  thread_ = std::thread([this] { run(); });
}

void OutboxDispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxDispatcher::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  changed_.notify_all();
}

void OutboxDispatcher::run() {
  util::name_this_thread("cf-outbox");
  constexpr Duration kMaxSleep = 1'000;  // virtual time can jump: look at least this often
  for (;;) {
    try {
      dispatch_due();
    } catch (const std::exception& e) {
      spdlog::error("outbox: {}", e.what());
    }
    Duration sleep = kMaxSleep;
    try {
      if (auto next = store_.next_message_due()) sleep = std::clamp<Duration>(*next - clock_.now(), 1, kMaxSleep);
    } catch (const std::exception& e) {
      spdlog::error("outbox: {}", e.what());
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::milliseconds(sleep), [this] { return stopping_ || woken_; });
    if (stopping_) return;
    woken_ = false;
  }
}

}  // namespace clinicflow::engine
