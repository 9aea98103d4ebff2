#pragma once
// A task's form: checking submitted data against it, and describing it as JSON Schema for clients.
#include "workflow/model.hpp"

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace clinicflow::workflow {

struct FieldProblem {
  std::string field;
  std::string problem;
};

// Checks every field at once and returns every problem (empty: the data is valid). Unknown keys
// are problems too: a typo must not be stored silently. On success `clean` holds the data with
// numbers normalised (integers as int64, numbers as double).
std::vector<FieldProblem> validate_form(const StepDef& step, const boost::json::object& data, boost::json::object& clean);

// JSON Schema (draft 2020-12 subset): type object, properties, required, minimum/maximum, enum,
// format date / date-time, description (help text and unit), title (label).
boost::json::object form_schema(const StepDef& step);

}  // namespace clinicflow::workflow
