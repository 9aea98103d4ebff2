#include "engine/committed_cases.hpp"

namespace clinicflow::engine {

std::shared_ptr<const CaseState> CommittedCases::get(const std::string& case_id,
                                                     const std::function<std::shared_ptr<const CaseState>()>& read) {
  std::uint64_t seen;
  {
    std::lock_guard lock(mutex_);
    if (auto* held = held_.find(case_id)) return *held;
    seen = changes_;
  }
  auto state = read();  // outside the lock: reads run side by side, and beside commits
  if (!state) return state;
  std::lock_guard lock(mutex_);
  if (changes_ != seen) return state;  // a commit landed meanwhile: this read may predate it
  held_.put(state->case_id, state);
  return state;
}

void CommittedCases::put(std::shared_ptr<const CaseState> state) {
  std::lock_guard lock(mutex_);
  ++changes_;  // a read from the store that began before this commit must not be kept
  held_.put(state->case_id, state);
}

void CommittedCases::invalidate(const std::string& case_id) {
  std::lock_guard lock(mutex_);
  ++changes_;
  held_.erase(case_id);
}

std::size_t CommittedCases::size() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

}  // namespace clinicflow::engine
