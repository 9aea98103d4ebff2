#include "engine/committed_cases.hpp"

namespace clinicflow::engine {

std::shared_ptr<const CaseState> CommittedCases::get(const std::string& case_id,
                                                     const std::function<std::shared_ptr<const CaseState>()>& read) {
  std::uint64_t seen;
  {
    std::lock_guard lock(mutex_);
    if (auto it = held_.find(case_id); it != held_.end()) {
      recent_.splice(recent_.begin(), recent_, it->second);
      return it->second->second;
    }
    seen = changes_;
  }
  auto state = read();  // outside the lock: reads run side by side, and beside commits
  if (!state) return state;
  std::lock_guard lock(mutex_);
  if (changes_ != seen) return state;  // a commit landed meanwhile: this read may predate it
  hold(state);
  return state;
}

void CommittedCases::put(std::shared_ptr<const CaseState> state) {
  std::lock_guard lock(mutex_);
  ++changes_;  // a read from the store that began before this commit must not be kept
  hold(std::move(state));
}

void CommittedCases::hold(std::shared_ptr<const CaseState> state) {
  if (auto it = held_.find(state->case_id); it != held_.end()) {
    it->second->second = std::move(state);
    recent_.splice(recent_.begin(), recent_, it->second);
    return;
  }
  if (held_.size() >= capacity_ && !recent_.empty()) {
    held_.erase(recent_.back().first);
    recent_.pop_back();
  }
  recent_.emplace_front(state->case_id, std::move(state));
  held_[recent_.front().first] = recent_.begin();
}

void CommittedCases::invalidate(const std::string& case_id) {
  std::lock_guard lock(mutex_);
  ++changes_;
  if (auto it = held_.find(case_id); it != held_.end()) {
    recent_.erase(it->second);
    held_.erase(it);
  }
}

std::size_t CommittedCases::size() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

}  // namespace clinicflow::engine
