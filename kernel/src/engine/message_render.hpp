#pragma once
// Fills a message template's placeholders from the case: {{step.field}}, {{case.id}},
// {{case.patient_id}}, {{case.repetition}}, {{opens_at}}. A message carries only what its
// template asks for.
#include "engine/case_state.hpp"

#include <optional>
#include <string>

namespace clinicflow::engine {

// Values are written plainly: text as is, numbers without trailing zeros, true/false as yes/no,
// times as RFC 3339. A placeholder with no value becomes empty.
std::string render_template(const std::string& text, const CaseState& state, std::optional<TimePoint> opens_at);

}  // namespace clinicflow::engine
