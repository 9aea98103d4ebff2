#include "sim_driver.hpp"

#include <algorithm>

namespace clinicflow::cli::sim {
using engine::ErrorKind;

std::optional<TimePoint> CaseCursor::next_opening() const {
  std::optional<TimePoint> next;
  for (const auto& a : state.active)
    if (a.waiting && a.opens_at) next = next ? std::min(*next, *a.opens_at) : *a.opens_at;
  return next;
}

CaseDriver::CaseDriver(engine::Engine& engine, const engine::Clock& clock, store::CaseStore& store, const workflow::Workflow& workflow,
                       ValueChooser& chooser, engine::Actor staff, DriverLimits limits)
    : engine_(engine), clock_(clock), store_(store), workflow_(workflow), chooser_(chooser), staff_(std::move(staff)), limits_(limits) {}

CaseCursor CaseDriver::open(const std::string& patient_id) {
  CaseCursor cursor;
  cursor.patient_id = patient_id;
  cursor.state = engine_.open_case(patient_id, workflow_.id, workflow_.version, staff_);
  return cursor;
}

void CaseDriver::give_up(CaseCursor& cursor, const std::string& step, int attempts, const std::string& reason) {
  cursor.stuck = Stuck{step, attempts, reason};
  cursor.state = engine_.close_case(cursor.state.case_id, "simulation: stuck at " + step, staff_);
}

void CaseDriver::work(CaseCursor& c) {
  const std::string case_id = c.state.case_id;
  c.state = *engine_.get_case(case_id);  // timers may have opened steps since
  while (c.active()) {
    auto open = std::find_if(c.state.active.begin(), c.state.active.end(), [](const engine::ActiveStep& a) { return !a.waiting; });
    if (open == c.state.active.end()) {
      auto next = c.next_opening();
      std::string at = c.state.active.empty() ? c.state.stage : c.state.active.front().step;
      if (!next) give_up(c, at, 0, "nothing is open and nothing is waiting");
      else if (*next <= clock_.now() && ++c.stalls > 3) give_up(c, at, 0, "the step did not open at its time, " + format_rfc3339(*next));
      return;  // waits for its next opening
    }
    const std::string step_id = open->step;
    if (++c.actions > limits_.actions_per_case) {
      give_up(c, step_id, c.attempts[step_id], "the limit of " + std::to_string(limits_.actions_per_case) + " actions per case was reached");
      return;
    }
    const workflow::StepDef* step = workflow_.find_step(step_id);
    if (!step) {  // cannot happen with a loaded workflow; never spin on it
      give_up(c, step_id, 0, "the workflow has no step '" + step_id + "'");
      return;
    }
    if (step->kind == workflow::StepKind::automatic) {
      // Its plugin failed or refused when the engine ran it: run it again, a bounded number of times.
      int& failed = c.attempts[step_id];
      if (++failed >= limits_.attempts_per_step) {
        give_up(c, step_id, failed, open->last_error);
        return;
      }
      try {
        c.state = engine_.retry_step(case_id, step_id, staff_);
      } catch (const engine::EngineError& e) {
        c.rejections.push_back({step_id, "error", e.what()});
        give_up(c, step_id, failed, e.what());
        return;
      }
      continue;
    }
    boost::json::object form = chooser_.choose(*step, c.state, clock_.now());
    try {
      c.state = engine_.submit(case_id, step_id, form, staff_, c.state.revision);
      c.attempts.erase(step_id);
    } catch (const engine::EngineError& e) {
      std::string reason = e.what();
      if (e.kind() == ErrorKind::invalid_data) {
        for (const auto& p : e.fields()) reason += "; " + p.field + " " + p.problem;
        c.rejections.push_back({step_id, "invalid", reason});
      } else if (e.kind() != ErrorKind::refused && e.kind() != ErrorKind::unavailable) {
        // conflict, forbidden, not found: trying again with other values cannot help.
        c.rejections.push_back({step_id, "error", reason});
        c.state = *engine_.get_case(case_id);
        give_up(c, step_id, c.attempts[step_id] + 1, reason);
        return;
      }
      c.state = *engine_.get_case(case_id);  // a refusal or failure was recorded: the revision moved
      int& failed = c.attempts[step_id];
      if (++failed >= limits_.attempts_per_step) {
        give_up(c, step_id, failed, reason);
        return;
      }
    }
  }
}

CaseRun CaseDriver::finish(CaseCursor&& c) {
  CaseRun run;
  run.patient_id = std::move(c.patient_id);
  run.events = engine_.history(c.state.case_id);
  run.messages = store_.case_messages(c.state.case_id);
  run.final_state = std::move(c.state);
  run.rejections = std::move(c.rejections);
  run.stuck = std::move(c.stuck);
  return run;
}

}  // namespace clinicflow::cli::sim
