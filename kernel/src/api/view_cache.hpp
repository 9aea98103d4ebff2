#pragma once
// case.get answers the same committed state many times (staff screens refresh, dashboards poll),
// so the serialized view of each recently read case is kept with the state object it shows. The
// engine's committed states are immutable and shared (engine::CommittedCases): a commit brings a
// new object, so a view held for an older one is never served again. Bounded like the engine's
// map; thread-safe.
#include "engine/case_state.hpp"
#include "util/lru_map.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace clinicflow::api {

class ViewCache {
 public:
  explicit ViewCache(std::size_t capacity) : held_(capacity) {}

  // The serialized view of `state`: the one held for this very object, or else `build()`'s,
  // held from now on. `build` runs outside the lock and may throw (nothing is held then).
  std::shared_ptr<const std::string> get(const std::shared_ptr<const engine::CaseState>& state,
                                         const std::function<std::string()>& build);
  std::size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const engine::CaseState> state;  // held so its address cannot be reused
    std::shared_ptr<const std::string> json;
  };
  mutable std::mutex mutex_;
  util::LruMap<std::string, Entry> held_;
};

}  // namespace clinicflow::api
