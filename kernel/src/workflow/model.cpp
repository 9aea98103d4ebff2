#include "workflow/model.hpp"

#include <algorithm>

namespace clinicflow::workflow {

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::completed: return "completed";
    case Outcome::declined: return "declined";
    case Outcome::closed: return "closed";
  }
  return "closed";
}

const FieldDef* StepDef::find_field(std::string_view name) const {
  auto it = std::find_if(fields.begin(), fields.end(), [&](const FieldDef& f) { return f.name == name; });
  return it == fields.end() ? nullptr : &*it;
}

const StepDef* Workflow::find_step(std::string_view step_id) const {
  auto it = std::find_if(steps.begin(), steps.end(), [&](const StepDef& s) { return s.id == step_id; });
  return it == steps.end() ? nullptr : &*it;
}

const StageDef* Workflow::find_stage(std::string_view stage_id) const {
  auto it = std::find_if(stages.begin(), stages.end(), [&](const StageDef& s) { return s.id == stage_id; });
  return it == stages.end() ? nullptr : &*it;
}

const StageDef& Workflow::stage_of(const StepDef& step) const { return *find_stage(step.stage); }

std::vector<std::string> Workflow::plugins() const {
  std::vector<std::string> out;
  auto add = [&](const std::string& name) {
    if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  for (const auto& step : steps) {
    add(step.plugin);
    for (const auto& message : step.messages) add(message.via);
  }
  return out;
}

const Template* Workflow::find_template(std::string_view name) const {
  auto it = std::find_if(templates.begin(), templates.end(), [&](const Template& t) { return t.name == name; });
  return it == templates.end() ? nullptr : &*it;
}

}  // namespace clinicflow::workflow
