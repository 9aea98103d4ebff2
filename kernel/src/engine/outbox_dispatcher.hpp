#pragma once
// Delivers the transactional outbox: each pending message whose time has come goes to its
// messaging plugin; a temporary failure is retried with exponential backoff, up to a limit, and
// the final state (delivered, or failed with the last error) stays visible on the message.
#include "engine/clock.hpp"
#include "store/case_store.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace clinicflow::engine {

struct DeliveryAttempt {
  enum class Status { delivered, retry, failed };
  Status status = Status::retry;
  std::string error;
};

// Hands one message to a plugin: the plugin host in the server, a fake in tests.
using Deliver = std::function<DeliveryAttempt(const store::OutboxMessage& message, int attempt)>;

struct RetryPolicy {
  int max_attempts = 8;
  Duration first_retry = 30'000;   // after the first failed attempt; doubled after each further one
  Duration max_retry = 3'600'000;  // the longest wait between two attempts
};

class OutboxDispatcher {
 public:
  OutboxDispatcher(store::CaseStore& store, Clock& clock, Deliver deliver, RetryPolicy policy = {});
  ~OutboxDispatcher();  // stops and joins

  // One pass: delivers every message due now. Returns how many attempts were made.
  std::size_t dispatch_due();

  // A thread that runs passes when messages fall due, or when woken after a commit.
  void start();
  void stop();
  void wake();

 private:
  void run();

  store::CaseStore& store_;
  Clock& clock_;
  Deliver deliver_;
  RetryPolicy policy_;
  std::mutex mutex_;
  std::mutex pass_mutex_;  // one pass at a time, whoever runs it
  std::condition_variable changed_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace clinicflow::engine
