#pragma once
// Runs the simulated patients' cases together, as a clinic's cohort, on the one virtual clock:
// every case opens at the start; at each instant every case with something to do is worked on
// (CaseDriver::work), in patient order; then the clock moves to the earliest instant at which a
// waiting step of any case opens (Engine::advance_clock_to), until every case has ended.
//
// Interleaving keeps the virtual calendar close to a single journey's length (patients run one
// after another would push the dates years ahead, past any fixed date in a profile), and the
// patient order plus the seeded chooser keep the result the same on every run.
#include "sim_driver.hpp"

#include <functional>

namespace clinicflow::cli::sim {

// `done` receives each case as it ends. Throws what CaseDriver::open throws.
void run_cohort(CaseDriver& driver, engine::Engine& engine, engine::VirtualClock& clock, int patients,
                const std::function<void(CaseRun&&)>& done);

// "sim-0001" ... (at least four digits, more for larger cohorts)
std::string patient_id(int number, int patients);

}  // namespace clinicflow::cli::sim
