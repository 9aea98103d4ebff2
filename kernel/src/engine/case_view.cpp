#include "engine/case_view.hpp"

#include "util/json_text.hpp"
#include "workflow/form.hpp"

namespace clinicflow::engine {
namespace json = boost::json;

using util::JsonText;

std::string case_view_json(const CaseState& s, const workflow::Workflow& wf) {
  // Written piece by piece, each piece by boost::json, so that every open task's form schema
  // (serialized once when the workflow was loaded) is pasted in, not deep-copied into a tree
  // and serialized again for every answer: it is most of a view's size.
  std::string out;
  out.reserve(2048);
  JsonText j(out);
  j.begin_object().key("case_id").value(s.case_id).key("patient_id").value(s.patient_id);
  j.key("workflow").value(s.workflow_id).key("version").value(s.workflow_version);
  j.key("status").value(s.status).key("stage").value(s.stage);
  j.key("revision").value(s.revision).key("open_tasks").begin_array();
  for (const auto& a : s.active) {
    if (a.waiting) continue;
    const workflow::StepDef* step = wf.find_step(a.step);
    j.begin_object().key("step").value(a.step).key("title").value(step ? step->title : a.step);
    j.key("overdue").value(a.overdue).key("roles").begin_array();
    if (step)
      for (const auto& role : step->roles) j.value(role);
    j.end_array().key("kind").value(step && step->kind == workflow::StepKind::automatic ? "automatic" : "task");
    if (step) {
      j.key("schema");
      if (step->schema_json.empty())  // a workflow built in code rather than by WorkflowLoader
        j.value(step->schema);
      else
        j.json(step->schema_json);
    }
    if (a.due) j.key("due").value(format_rfc3339(*a.due));
    if (a.repetition > 0) j.key("repetition").value(a.repetition);
    if (!a.last_error.empty()) j.key("error").value(a.last_error);
    j.end_object();
  }
  j.end_array().key("timers").begin_array();
  for (const auto& a : s.active)
    if (a.waiting) j.begin_object().key("step").value(a.step).key("due").value(format_rfc3339(a.opens_at.value_or(0))).end_object();
  j.end_array().key("data").value(s.data);
  j.key("opened_at").value(format_rfc3339(s.created_at));
  j.key("updated_at").value(format_rfc3339(s.updated_at));
  if (s.repetition > 0) j.key("repetition").value(s.repetition);
  if (!s.outcome.empty()) j.key("outcome").value(s.outcome);
  if (!s.reason.empty()) j.key("reason").value(s.reason);
  j.end_object();
  return out;
}

json::object event_view(const store::EventRecord& e) {
  json::object data = e.data;
  // Times inside event data are stored as integers; clients get RFC 3339 like everywhere else.
  for (const char* key : {"opens_at", "due", "not_before"})
    if (auto it = data.find(key); it != data.end() && it->value().is_int64()) it->value() = format_rfc3339(it->value().get_int64());
  return {{"seq", e.seq}, {"at", format_rfc3339(e.at)}, {"type", e.type}, {"step", e.step}, {"actor", e.actor}, {"data", std::move(data)}};
}

}  // namespace clinicflow::engine
