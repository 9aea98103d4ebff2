#pragma once
// The durable state of recently read or written cases, so a read (case.get) or the next command
// on a case does not go to SQLite and parse the stored JSON each time. Only what is durable is
// ever held: after each group commit the engine puts the state each write stored (or drops the
// case, for a write that was not committed), and a state read from the store is kept only if no
// put or drop happened since the read began (a read that raced a commit may be older than it).
// Correct as long as this server is the only writer of cases, which app::ServerLock ensures.
// Bounded: past the capacity the least recently used case makes room (an arbitrary victim
// evicted the cases in use as often as the idle ones: measured, case.get fell from ~50k to
// ~30k/s once the map was full).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/case_state.hpp"

namespace clinicflow::engine {

class CommittedCases {
 public:
  explicit CommittedCases(std::size_t capacity) : capacity_(capacity) {}

  // The held state of `case_id`, or else `read()` (the store), kept for next time. nullptr: no case.
  std::shared_ptr<const CaseState> get(const std::string& case_id,
                                       const std::function<std::shared_ptr<const CaseState>()>& read);
  // A state just committed (by the one committer, so never older than what is held).
  void put(std::shared_ptr<const CaseState> state);
  // After a commit of `case_id` that left no state to hold (a write left out, a failed group).
  void invalidate(const std::string& case_id);
  std::size_t size() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  using Entry = std::pair<std::string, std::shared_ptr<const CaseState>>;
  void hold(std::shared_ptr<const CaseState> state);  // caller holds mutex_
  std::list<Entry> recent_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> held_;
  std::uint64_t changes_ = 0;  // puts and drops so far: a read that saw another count is not kept
};

}  // namespace clinicflow::engine
