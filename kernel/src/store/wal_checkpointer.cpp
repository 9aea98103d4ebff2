#include "store/wal_checkpointer.hpp"

#include "store/case_store.hpp"
#include "util/thread_name.hpp"

#include <spdlog/spdlog.h>

namespace clinicflow::store {

WalCheckpointer::WalCheckpointer(const std::filesystem::path& path, const std::string& synchronous)
    : db_(std::make_unique<SqliteConnection>(path, synchronous, /*create=*/false)), thread_([this] { loop(); }) {}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool WalCheckpointer::start() {
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::idle) return false;
    state_ = State::requested;
  }
  wake_.notify_all();
  return true;
}

bool WalCheckpointer::finished() {
  std::lock_guard lock(mutex_);
  if (state_ != State::finished) return false;
  state_ = State::idle;
  return true;
}

void WalCheckpointer::wait() {
  std::unique_lock lock(mutex_);
  wake_.wait(lock, [this] { return state_ == State::idle || state_ == State::finished; });
}

void WalCheckpointer::loop() {
  util::name_this_thread("cf-checkpoint");
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || state_ == State::requested; });
    if (stopping_) return;
    state_ = State::running;
    lock.unlock();
    try {
      db_->checkpoint();  // busy (another connection is checkpointing): that one copies instead
    } catch (const std::exception& e) {
      spdlog::error("background checkpoint: {}", e.what());
    } catch (...) {
      spdlog::error("background checkpoint: unknown error");
    }
    lock.lock();
    state_ = State::finished;
    wake_.notify_all();  // wait()
  }
}

}  // namespace clinicflow::store
