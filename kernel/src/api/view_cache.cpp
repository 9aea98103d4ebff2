#include "api/view_cache.hpp"

namespace clinicflow::api {

std::shared_ptr<const std::string> ViewCache::get(const std::shared_ptr<const engine::CaseState>& state,
                                                  const std::function<std::string()>& build) {
  {
    std::lock_guard lock(mutex_);
    if (Entry* held = held_.find(state->case_id); held && held->state == state) return held->json;
  }
  auto json = std::make_shared<const std::string>(build());
  std::lock_guard lock(mutex_);
  held_.put(state->case_id, Entry{state, json});
  return json;
}

std::size_t ViewCache::size() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

}  // namespace clinicflow::api
