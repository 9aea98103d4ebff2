#pragma once
// The durable state of recently read or written cases, so a read (case.get) or the next command
// on a case does not go to SQLite and parse the stored JSON each time. Only what is durable is
// ever held: after each group commit the engine puts the state each write stored (or drops the
// case, for a write that was not committed), and a state read from the store is kept only if no
// put or drop happened since the read began (a read that raced a commit may be older than it).
// Correct as long as this server is the only writer of cases, which app::ServerLock ensures.
// Bounded: past the capacity the least recently used case makes room.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "engine/case_state.hpp"
#include "util/lru_map.hpp"

namespace clinicflow::engine {

class CommittedCases {
 public:
  explicit CommittedCases(std::size_t capacity) : held_(capacity) {}

  // The held state of `case_id`, or else `read()` (the store), kept for next time. nullptr: no case.
  std::shared_ptr<const CaseState> get(const std::string& case_id,
                                       const std::function<std::shared_ptr<const CaseState>()>& read);
  // A state just committed (by the one committer, so never older than what is held).
  void put(std::shared_ptr<const CaseState> state);
  // After a commit of `case_id` that left no state to hold (a write left out, a failed group).
  void invalidate(const std::string& case_id);
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  util::LruMap<std::string, std::shared_ptr<const CaseState>> held_;
  std::uint64_t changes_ = 0;  // puts and drops so far: a read that saw another count is not kept
};

}  // namespace clinicflow::engine
