#pragma once
// How the simulator fills in a task's form: a valid value for every field (its type, enum values,
// min/max; optional fields sometimes left out; dates from the virtual clock), with the step's
// branches in mind.
//
// - A field with an entry in the profile is drawn from it (values with weights, or a range).
// - Any other field is drawn from the field's limits, mixed with values right at and next to the
//   numbers and texts that the workflow's conditions compare it with, so both sides of every
//   threshold occur.
// - Steering: a branch of the step is "steerable" when its condition reads a field of this step
//   that the profile does not set. For such a step the chooser draws a batch of candidate forms,
//   evaluates the step's branch conditions on each (with the case's earlier data, as the engine
//   will), and picks the path first: each steerable branch with probability min(10 %, 30 % / n),
//   otherwise a path no steerable branch takes (the default, or a branch decided by profiled or
//   earlier values) — so the default path is the majority and every branch is exercised. When
//   that path cannot occur (the branches cover every value), the chance goes evenly to the
//   steerable branches that can.
#include "engine/case_state.hpp"
#include "sim_profile.hpp"
#include "sim_random.hpp"
#include "workflow/model.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <string>
#include <vector>

namespace clinicflow::cli::sim {

class ValueChooser {
 public:
  ValueChooser(const workflow::Workflow& workflow, const Profile& profile, Random& random);

  // A form for task `step` of the case in `state`, at virtual time `now`.
  boost::json::object choose(const workflow::StepDef& step, const engine::CaseState& state, TimePoint now);

 private:
  struct Hints {  // the literals the workflow's conditions compare a field with
    std::vector<double> numbers;
    std::vector<std::string> strings;
  };
  void draw_natural(const workflow::StepDef& step, const workflow::FieldDef& field, TimePoint now, boost::json::object& form);
  boost::json::value draw_profiled(const workflow::FieldDef& field, const FieldProfile& profile);
  const Hints* hints_for(const workflow::StepDef& step, const workflow::FieldDef& field) const;

  const workflow::Workflow& workflow_;
  const Profile& profile_;
  Random& random_;
  std::map<std::string, Hints> hints_;  // by "<step>.<field>"
};

}  // namespace clinicflow::cli::sim
