#pragma once
// The case as clients see it (API `case.get`, CLI): open tasks with their form as JSON Schema,
// pending timers, submitted data. Times are RFC 3339 UTC strings.
#include "engine/case_state.hpp"
#include "store/case_store.hpp"
#include "workflow/model.hpp"

#include <boost/json/object.hpp>

#include <string>

namespace clinicflow::engine {

// The view as JSON text: what the API sends (each task's schema pasted from StepDef::schema_json).
std::string case_view_json(const CaseState& state, const workflow::Workflow& workflow);
boost::json::object event_view(const store::EventRecord& event);

}  // namespace clinicflow::engine
