#pragma once
// A map bounded by a count that evicts the least recently used entry. Not thread-safe: its users
// (engine::CommittedCases, api::ViewCache) hold their own lock around it. An arbitrary victim
// evicts the entries in use as often as the idle ones (measured: case.get fell from ~50k to
// ~30k/s once such a map was full), hence recency.
#include <cstddef>
#include <list>
#include <unordered_map>
#include <utility>

namespace clinicflow::util {

template <class Key, class Value>
class LruMap {
 public:
  explicit LruMap(std::size_t capacity) : capacity_(capacity) {}

  // The value held for `key`, now the most recently used; nullptr when there is none.
  Value* find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return &it->second->second;
  }

  // Holds `value` for `key` (replacing what was held), as the most recently used; past the
  // capacity the least recently used entry goes.
  void put(const Key& key, Value value) {
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->second = std::move(value);
      entries_.splice(entries_.begin(), entries_, it->second);
      return;
    }
    if (capacity_ == 0) return;
    if (index_.size() >= capacity_) {
      index_.erase(entries_.back().first);
      entries_.pop_back();
    }
    entries_.emplace_front(key, std::move(value));
    try {
      index_.emplace(key, entries_.begin());
    } catch (...) {
      entries_.pop_front();  // no entry the index does not know
      throw;
    }
  }

  bool erase(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    entries_.erase(it->second);
    index_.erase(it);
    return true;
  }

  std::size_t size() const { return index_.size(); }

 private:
  using Entries = std::list<std::pair<Key, Value>>;  // most recently used first
  std::size_t capacity_;
  Entries entries_;
  std::unordered_map<Key, typename Entries::iterator> index_;
};

}  // namespace clinicflow::util
