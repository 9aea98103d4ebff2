#include "engine/case_state.hpp"

#include "util/json_text.hpp"

#include <algorithm>

namespace clinicflow::engine {
namespace json = boost::json;

namespace {

std::string str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string()) : std::string();
}

std::int64_t integer(const json::object& o, std::string_view key, std::int64_t fallback = 0) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_int64() ? it->value().get_int64() : fallback;
}

std::optional<TimePoint> optional_time(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_int64()) return std::nullopt;
  return it->value().get_int64();
}

void erase_active(CaseState& state, std::string_view step) {
  std::erase_if(state.active, [&](const ActiveStep& a) { return a.step == step; });
}

ActiveStep* find_active(CaseState& state, std::string_view step) {
  auto it = std::find_if(state.active.begin(), state.active.end(), [&](const ActiveStep& a) { return a.step == step; });
  return it == state.active.end() ? nullptr : &*it;
}

}  // namespace

const ActiveStep* CaseState::find_active(std::string_view step) const {
  auto it = std::find_if(active.begin(), active.end(), [&](const ActiveStep& a) { return a.step == step; });
  return it == active.end() ? nullptr : &*it;
}

void apply(CaseState& state, const std::string& case_id, const store::EventRecord& e) {
  const json::object& d = e.data;
  state.revision = e.seq;
  state.updated_at = e.at;
  if (e.type == event::case_opened) {
    std::string id = case_id;  // may alias state.case_id, which the reset below clears
    state = CaseState{};
    state.case_id = std::move(id);
    state.workflow_id = str(d, "workflow");
    state.workflow_version = static_cast<int>(integer(d, "version"));
    state.patient_id = str(d, "patient_id");
    state.created_at = state.updated_at = e.at;
    state.revision = e.seq;
  } else if (e.type == event::stage_entered) {
    state.stage = str(d, "stage");
    state.repetition = static_cast<int>(integer(d, "repetition"));
  } else if (e.type == event::step_waiting) {
    erase_active(state, e.step);
    state.active.push_back({e.step, true, e.at, optional_time(d, "opens_at"), optional_time(d, "due"), false, state.repetition, ""});
  } else if (e.type == event::step_opened) {
    erase_active(state, e.step);
    state.active.push_back({e.step, false, e.at, std::nullopt, optional_time(d, "due"), false,
                            static_cast<int>(integer(d, "repetition", state.repetition)), ""});
  } else if (e.type == event::step_overdue) {
    if (ActiveStep* a = find_active(state, e.step)) a->overdue = true;
  } else if (e.type == event::step_failed) {
    if (ActiveStep* a = find_active(state, e.step)) a->last_error = str(d, "error");
  } else if (e.type == event::step_completed) {
    erase_active(state, e.step);
    auto it = d.find("data");
    state.data[e.step] = it != d.end() && it->value().is_object() ? it->value().as_object() : json::object();
    state.completed[e.step] = e.at;
  } else if (e.type == event::case_ended) {
    state.active.clear();
    state.outcome = str(d, "outcome");
    state.reason = str(d, "reason");
    state.status = state.outcome == "completed" ? "completed" : "closed";
  }
  // step_refused changes nothing but the revision: it is history, not state.
}

CaseState replay(const std::string& case_id, const std::vector<store::EventRecord>& events) {
  CaseState state;
  for (const auto& e : events) apply(state, case_id, e);
  return state;
}

std::string to_json_text(const CaseState& s) {
  // Written straight to text (the deciding thread does this for every write): building the
  // tree first would deep-copy the case's data only to serialize and free it again.
  std::string out;
  out.reserve(1024);
  util::JsonText j(out);
  j.begin_object().key("case_id").value(s.case_id).key("patient_id").value(s.patient_id);
  j.key("workflow").value(s.workflow_id).key("version").value(s.workflow_version);
  j.key("status").value(s.status).key("outcome").value(s.outcome).key("reason").value(s.reason);
  j.key("stage").value(s.stage).key("repetition").value(s.repetition).key("revision").value(s.revision);
  j.key("created_at").value(s.created_at).key("updated_at").value(s.updated_at).key("active").begin_array();
  for (const ActiveStep& a : s.active) {
    j.begin_object().key("step").value(a.step).key("waiting").value(a.waiting).key("since").value(a.since);
    j.key("overdue").value(a.overdue).key("repetition").value(a.repetition);
    if (a.opens_at) j.key("opens_at").value(*a.opens_at);
    if (a.due) j.key("due").value(*a.due);
    if (!a.last_error.empty()) j.key("last_error").value(a.last_error);
    j.end_object();
  }
  j.end_array().key("data").value(s.data).key("completed").begin_object();
  for (const auto& [step, at] : s.completed) j.member(step).value(at);  // a step id as a name, escaped like any string
  j.end_object().end_object();
  return out;
}

CaseState from_json(const json::object& o) {
  CaseState s;
  s.case_id = str(o, "case_id");
  s.patient_id = str(o, "patient_id");
  s.workflow_id = str(o, "workflow");
  s.workflow_version = static_cast<int>(integer(o, "version"));
  s.status = str(o, "status");
  s.outcome = str(o, "outcome");
  s.reason = str(o, "reason");
  s.stage = str(o, "stage");
  s.repetition = static_cast<int>(integer(o, "repetition"));
  s.revision = integer(o, "revision");
  s.created_at = integer(o, "created_at");
  s.updated_at = integer(o, "updated_at");
  if (auto it = o.find("active"); it != o.end() && it->value().is_array())
    for (const auto& item : it->value().get_array()) {
      if (!item.is_object()) continue;
      const auto& a = item.get_object();
      auto waiting = a.find("waiting");
      auto overdue = a.find("overdue");
      s.active.push_back({str(a, "step"), waiting != a.end() && waiting->value().is_bool() && waiting->value().get_bool(),
                          integer(a, "since"), optional_time(a, "opens_at"), optional_time(a, "due"),
                          overdue != a.end() && overdue->value().is_bool() && overdue->value().get_bool(),
                          static_cast<int>(integer(a, "repetition")), str(a, "last_error")});
    }
  if (auto it = o.find("data"); it != o.end() && it->value().is_object()) s.data = it->value().get_object();
  if (auto it = o.find("completed"); it != o.end() && it->value().is_object())
    for (const auto& [step, at] : it->value().get_object())
      if (at.is_int64()) s.completed[std::string(step)] = at.get_int64();
  return s;
}

store::CaseRecord to_columns(const CaseState& s) {
  return {s.case_id, s.patient_id, s.workflow_id, s.workflow_version, s.status, s.stage, s.revision, s.created_at, s.updated_at, {}};
}

std::vector<store::TimerRecord> pending_timers(const CaseState& s) {
  std::vector<store::TimerRecord> out;
  for (const auto& a : s.active) {
    if (a.waiting && a.opens_at) out.push_back({s.case_id, a.step, "open", *a.opens_at});
    if (!a.waiting && a.due && !a.overdue) out.push_back({s.case_id, a.step, "overdue", *a.due});
  }
  return out;
}

}  // namespace clinicflow::engine
