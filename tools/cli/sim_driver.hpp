#pragma once
// Moves one simulated patient's case through the engine at the current virtual time: completes
// each open task with values from the ValueChooser and lets failed automatic steps run again,
// until nothing is open (the case waits for a step's opening time) or the case has ended.
//
// A submission the engine turns down (a plugin refusal or failure, invalid data) is tried again
// with fresh values, at most `attempts_per_step` times; then the case is closed as
// "simulation: stuck at <step>". `actions_per_case` bounds everything else, so a case never loops
// forever. Moving the clock is the cohort's job (sim_cohort.hpp): many cases share it.
#include "engine/clock.hpp"
#include "engine/engine.hpp"
#include "sim_values.hpp"
#include "store/case_store.hpp"
#include "workflow/model.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clinicflow::cli::sim {

struct DriverLimits {
  int attempts_per_step = 10;
  int actions_per_case = 20'000;
};

// A submission turned down before anything was recorded on the case (the engine records plugin
// refusals and failures as events; invalid data and other errors only reach the caller).
struct Rejection {
  std::string step;
  std::string kind;  // "invalid" | "error"
  std::string reason;
};

struct Stuck {
  std::string step;
  int attempts = 0;
  std::string reason;  // the last refusal or failure
};

// One case in progress.
struct CaseCursor {
  std::string patient_id;
  engine::CaseState state;
  std::map<std::string, int> attempts;  // failed attempts at each step since it last completed
  int actions = 0;
  int stalls = 0;  // visits that found a waiting step past its opening time (a timer that did not fire)
  std::vector<Rejection> rejections;
  std::optional<Stuck> stuck;

  bool active() const { return state.status == "active"; }
  // When the earliest waiting step opens; nullopt when nothing waits.
  std::optional<TimePoint> next_opening() const;
};

// A finished case, with its full record.
struct CaseRun {
  std::string patient_id;
  engine::CaseState final_state;
  std::vector<store::EventRecord> events;
  std::vector<store::OutboxMessage> messages;
  std::vector<Rejection> rejections;
  std::optional<Stuck> stuck;
};

class CaseDriver {
 public:
  CaseDriver(engine::Engine& engine, const engine::Clock& clock, store::CaseStore& store, const workflow::Workflow& workflow,
             ValueChooser& chooser, engine::Actor staff, DriverLimits limits = {});

  // Throws engine::EngineError when the case cannot be opened (a plugin the workflow needs is unavailable).
  CaseCursor open(const std::string& patient_id);
  // Does everything that can be done now. Afterwards the case has ended, or it waits for next_opening().
  void work(CaseCursor& cursor);
  // Reads the ended case's events and outbox messages.
  CaseRun finish(CaseCursor&& cursor);

  const DriverLimits& limits() const { return limits_; }

 private:
  void give_up(CaseCursor& cursor, const std::string& step, int attempts, const std::string& reason);

  engine::Engine& engine_;
  const engine::Clock& clock_;
  store::CaseStore& store_;
  const workflow::Workflow& workflow_;
  ValueChooser& chooser_;
  engine::Actor staff_;
  DriverLimits limits_;
};

}  // namespace clinicflow::cli::sim
