#include "store/case_store.hpp"

namespace clinicflow::store {

std::vector<std::string> CaseStore::write_group(std::span<const CaseWrite> batch) {
  std::vector<std::string> outcome(batch.size());
  try {
    write(batch);
    return outcome;
  } catch (const RevisionConflict&) {
    // Someone in the batch is stale: find out who, one write at a time.
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      write(batch.subspan(i, 1));
    } catch (const RevisionConflict& e) {
      outcome[i] = e.what();
    }
  }
  return outcome;
}

}  // namespace clinicflow::store
