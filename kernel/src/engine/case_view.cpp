#include "engine/case_view.hpp"

#include "workflow/form.hpp"

namespace clinicflow::engine {
namespace json = boost::json;

json::object case_view(const CaseState& s, const workflow::Workflow& wf) {
  json::array open_tasks, timers;
  for (const auto& a : s.active) {
    const workflow::StepDef* step = wf.find_step(a.step);
    if (a.waiting) {
      timers.push_back({{"step", a.step}, {"due", format_rfc3339(a.opens_at.value_or(0))}});
      continue;
    }
    json::object task{{"step", a.step}, {"title", step ? step->title : a.step}, {"overdue", a.overdue}};
    json::array roles;
    if (step)
      for (const auto& r : step->roles) roles.emplace_back(r);
    task["roles"] = std::move(roles);
    task["kind"] = step && step->kind == workflow::StepKind::automatic ? "automatic" : "task";
    if (step) task["schema"] = step->schema;
    if (a.due) task["due"] = format_rfc3339(*a.due);
    if (a.repetition > 0) task["repetition"] = a.repetition;
    if (!a.last_error.empty()) task["error"] = a.last_error;
    open_tasks.push_back(std::move(task));
  }
  json::object view{{"case_id", s.case_id},
                    {"patient_id", s.patient_id},
                    {"workflow", s.workflow_id},
                    {"version", s.workflow_version},
                    {"status", s.status},
                    {"stage", s.stage},
                    {"revision", s.revision},
                    {"open_tasks", std::move(open_tasks)},
                    {"timers", std::move(timers)},
                    {"data", s.data},
                    {"opened_at", format_rfc3339(s.created_at)},
                    {"updated_at", format_rfc3339(s.updated_at)}};
  if (s.repetition > 0) view["repetition"] = s.repetition;
  if (!s.outcome.empty()) view["outcome"] = s.outcome;
  if (!s.reason.empty()) view["reason"] = s.reason;
  return view;
}

json::object event_view(const store::EventRecord& e) {
  json::object data = e.data;
  // Times inside event data are stored as integers; clients get RFC 3339 like everywhere else.
  for (const char* key : {"opens_at", "due", "not_before"})
    if (auto it = data.find(key); it != data.end() && it->value().is_int64()) it->value() = format_rfc3339(it->value().get_int64());
  return {{"seq", e.seq}, {"at", format_rfc3339(e.at)}, {"type", e.type}, {"step", e.step}, {"actor", e.actor}, {"data", std::move(data)}};
}

}  // namespace clinicflow::engine
