#include "workflow/form.hpp"

#include "util/time.hpp"

#include <cmath>

namespace clinicflow::workflow {
namespace {

std::string format_number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  return s;
}

// Returns a problem text, or empty when the value is acceptable; fills `clean`.
std::string check_value(const FieldDef& field, const boost::json::value& value, boost::json::value& clean) {
  std::optional<double> number;
  switch (field.type) {
    case FieldType::integer:
      if (value.is_int64()) number = static_cast<double>(value.get_int64()), clean = value.get_int64();
      else if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        number = static_cast<double>(value.get_uint64()), clean = static_cast<std::int64_t>(value.get_uint64());
      else if (value.is_double() && value.get_double() == std::floor(value.get_double()) && std::fabs(value.get_double()) < 9e15)
        number = value.get_double(), clean = static_cast<std::int64_t>(value.get_double());
      else return "must be a whole number";
      break;
    case FieldType::number:
      if (value.is_number()) number = value.to_number<double>(), clean = *number;
      else return "must be a number";
      if (!std::isfinite(*number)) return "must be a finite number";
      break;
    case FieldType::boolean:
      if (!value.is_bool()) return "must be true or false";
      clean = value;
      break;
    case FieldType::string:
      if (!value.is_string()) return "must be text";
      if (field.required && value.get_string().find_first_not_of(" \t\r\n") == boost::json::string::npos)
        return "is required";
      clean = value;
      break;
    case FieldType::date:
      if (!value.is_string() || !parse_date(value.get_string())) return "must be a date written YYYY-MM-DD";
      clean = value;
      break;
    case FieldType::datetime:
      if (!value.is_string() || !parse_rfc3339(value.get_string()))
        return "must be a date and time in RFC 3339 form, such as 2026-03-01T14:30:00Z";
      clean = value;
      break;
    case FieldType::enumeration: {
      bool known = value.is_string() && std::find(field.values.begin(), field.values.end(), value.get_string()) != field.values.end();
      if (!known) {
        std::string choices;
        for (const auto& v : field.values) choices += (choices.empty() ? "" : ", ") + v;
        return "must be one of: " + choices;
      }
      clean = value;
      break;
    }
  }
  if (number && field.min && *number < *field.min) return "must be at least " + format_number(*field.min);
  if (number && field.max && *number > *field.max) return "must be at most " + format_number(*field.max);
  return "";
}

}  // namespace

std::vector<FieldProblem> validate_form(const StepDef& step, const boost::json::object& data, boost::json::object& clean) {
  std::vector<FieldProblem> problems;
  clean.clear();
  for (const auto& field : step.fields) {
    auto it = data.find(field.name);
    if (it == data.end() || it->value().is_null()) {
      if (field.required) problems.push_back({field.name, "is required"});
      continue;
    }
    boost::json::value normalised;
    if (auto problem = check_value(field, it->value(), normalised); !problem.empty())
      problems.push_back({field.name, problem});
    else
      clean[field.name] = std::move(normalised);
  }
  for (const auto& [key, value] : data)
    if (!step.find_field(key)) problems.push_back({std::string(key), "is not a field of step '" + step.id + "'"});
  return problems;
}

boost::json::object form_schema(const StepDef& step) {
  boost::json::object properties;
  boost::json::array required;
  for (const auto& field : step.fields) {
    boost::json::object property;
    switch (field.type) {
      case FieldType::string: property["type"] = "string"; break;
      case FieldType::integer: property["type"] = "integer"; break;
      case FieldType::number: property["type"] = "number"; break;
      case FieldType::boolean: property["type"] = "boolean"; break;
      case FieldType::date: property["type"] = "string", property["format"] = "date"; break;
      case FieldType::datetime: property["type"] = "string", property["format"] = "date-time"; break;
      case FieldType::enumeration: {
        property["type"] = "string";
        boost::json::array values;
        for (const auto& v : field.values) values.emplace_back(v);
        property["enum"] = std::move(values);
        break;
      }
    }
    // An integer field's bounds are integers: `"minimum": 0`, not the double `0E0`.
    auto bound = [&](double v) -> boost::json::value {
      if (field.type == FieldType::integer && std::abs(v) < 9e15 && v == std::floor(v)) return static_cast<std::int64_t>(v);
      return v;
    };
    if (field.min) property["minimum"] = bound(*field.min);
    if (field.max) property["maximum"] = bound(*field.max);
    property["title"] = field.label;
    std::string description = field.help;
    if (!field.unit.empty()) description += (description.empty() ? "" : " ") + std::string("(unit: ") + field.unit + ")";
    if (!description.empty()) property["description"] = description;
    if (field.required) required.emplace_back(field.name);
    properties[field.name] = std::move(property);
  }
  return {{"type", "object"}, {"title", step.title}, {"properties", std::move(properties)}, {"required", std::move(required)},
          {"additionalProperties", false}};
}

}  // namespace clinicflow::workflow
