#include "sim_cohort.hpp"

#include <algorithm>

namespace clinicflow::cli::sim {

std::string patient_id(int number, int patients) {
  std::string digits = std::to_string(number);
  std::size_t width = std::max<std::size_t>(4, std::to_string(patients).size());
  return "sim-" + std::string(width - std::min(width, digits.size()), '0') + digits;
}

void run_cohort(CaseDriver& driver, engine::Engine& engine, engine::VirtualClock& clock, int patients,
                const std::function<void(CaseRun&&)>& done) {
  std::vector<std::optional<CaseCursor>> cases;
  cases.reserve(static_cast<std::size_t>(patients));
  for (int n = 1; n <= patients; ++n) cases.push_back(driver.open(patient_id(n, patients)));

  std::vector<std::size_t> due(cases.size());
  for (std::size_t i = 0; i < due.size(); ++i) due[i] = i;
  for (;;) {
    for (std::size_t i : due) {
      driver.work(*cases[i]);
      if (!cases[i]->active()) {
        done(driver.finish(std::move(*cases[i])));
        cases[i].reset();
      }
    }
    std::optional<TimePoint> next;
    for (const auto& c : cases)
      if (c)
        if (auto t = c->next_opening()) next = next ? std::min(*next, *t) : *t;
    if (!next) break;  // every case has ended (work() closes one with nothing open and nothing waiting)
    engine.advance_clock_to(std::max(*next, clock.now()), clock);
    due.clear();
    for (std::size_t i = 0; i < cases.size(); ++i)
      if (cases[i])
        if (auto t = cases[i]->next_opening(); t && *t <= clock.now()) due.push_back(i);
  }
}

}  // namespace clinicflow::cli::sim
