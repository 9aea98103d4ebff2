#include "sim_profile.hpp"

#include "util/toml_json.hpp"
#include "workflow/form.hpp"

#include <boost/json/serialize.hpp>
#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace clinicflow::cli::sim {
namespace json = boost::json;
using workflow::FieldDef;
using workflow::FieldType;
using workflow::StepDef;

namespace {

std::string list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

class Reader {
 public:
  Reader(std::string file, const workflow::Workflow& wf) : file_(std::move(file)), wf_(wf) {}

  Profile read(const toml::table& root) {
    Profile profile;
    profile.file = file_;
    for (const auto& entry : in_document_order(root)) {
      std::string key(entry.key->str());
      if (key != "field") {
        error(*entry.key, "unknown key '" + key + "': a profile has only [field.\"<step>.<field>\"] tables");
        continue;
      }
      const toml::table* fields = entry.node->as_table();
      if (!fields) {
        error(*entry.node, "'field' must hold tables: [field.\"<step>.<field>\"]");
        continue;
      }
      for (const auto& f : in_document_order(*fields)) read_field(*f.key, *f.node, profile);
    }
    return profile;
  }

  SourceErrors& errors() { return errors_; }

 private:
  template <typename Node>
  void error(const Node& where, const std::string& message) {
    const auto& begin = where.source().begin;
    errors_.push_back({file_, static_cast<int>(begin.line), static_cast<int>(begin.column), message});
  }

  void read_field(const toml::key& key, const toml::node& node, Profile& profile) {
    std::string name(key.str());
    std::string label = "field.\"" + name + "\"";
    const toml::table* table = node.as_table();
    if (!table) {
      error(node, label + " must be a table with 'values' (and 'weights') or 'range'");
      return;
    }
    auto dot = name.find('.');
    if (dot == std::string::npos) {
      // [field.step.field] without quotes is a nested table: say how to write it.
      bool nested = !table->empty() && std::all_of(table->begin(), table->end(), [](const auto& kv) { return kv.second.is_table(); });
      error(key, nested ? "write the step and field as one quoted key: [field.\"" + name + "." +
                              std::string(table->begin()->first.str()) + "\"]"
                        : label + ": name the field as \"<step>.<field>\"");
      return;
    }
    std::string step_id = name.substr(0, dot), field_name = name.substr(dot + 1);
    const StepDef* step = wf_.find_step(step_id);
    if (!step) {
      std::vector<std::string> ids;
      for (const auto& s : wf_.steps) ids.push_back(s.id);
      error(key, label + ": workflow '" + wf_.id + "' has no step '" + step_id + "' (steps: " + list(ids) + ")");
      return;
    }
    if (step->kind == workflow::StepKind::automatic) {
      error(key, label + ": step '" + step_id + "' is automatic; its values come from plugin '" + step->plugin + "'");
      return;
    }
    const FieldDef* field = step->find_field(field_name);
    if (!field) {
      std::vector<std::string> names;
      for (const auto& f : step->fields) names.push_back(f.name);
      error(key, label + ": step '" + step_id + "' has no field '" + field_name + "' (fields: " + list(names) + ")");
      return;
    }
    if (profile.fields.count(name)) {
      error(key, label + " is given twice");
      return;
    }

    FieldProfile fp{step_id, field_name, {}, {}, std::nullopt};
    bool ok = true;
    for (const auto& [k, v] : *table)
      if (k.str() != "values" && k.str() != "weights" && k.str() != "range") {
        error(k, label + ": unknown key '" + std::string(k.str()) + "' (use values, weights or range)");
        ok = false;
      }
    const toml::node* values = table->get("values");
    const toml::node* weights = table->get("weights");
    const toml::node* range = table->get("range");
    if (values && range) {
      error(*range, label + ": give either 'values' or 'range', not both");
      return;
    }
    if (!values && !range) {
      error(key, label + " needs 'values' (candidate values) or 'range' ([lo, hi])");
      return;
    }
    if (values) ok = read_values(label, *step, *field, *values, weights, fp) && ok;
    if (range) {
      if (weights) {
        error(*weights, label + ": 'weights' goes with 'values', not with 'range'");
        ok = false;
      }
      ok = read_range(label, *step, *field, *range, fp) && ok;
    }
    if (ok) profile.fields.emplace(name, std::move(fp));
  }

  // The field's own checks (type, enum, min/max, date format, no blank required text), as the
  // engine applies them.
  static std::string check(const StepDef& step, const FieldDef& field, const json::value& value) {
    StepDef probe;
    probe.id = step.id;
    probe.fields = {field};
    json::object clean;
    auto problems = workflow::validate_form(probe, json::object{{field.name, value}}, clean);
    return problems.empty() ? std::string() : problems.front().problem;
  }

  bool read_values(const std::string& label, const StepDef& step, const FieldDef& field, const toml::node& node,
                   const toml::node* weights, FieldProfile& fp) {
    const toml::array* array = node.as_array();
    if (!array || array->empty()) {
      error(node, label + ": 'values' must be a non-empty list, such as [true, false]");
      return false;
    }
    bool ok = true;
    for (const toml::node& element : *array) {
      if (element.is_array() || element.is_table()) {
        error(element, label + ": each value must be a single value, not a list or table");
        ok = false;
        continue;
      }
      json::value value = toml_to_json(element);
      if (std::string problem = check(step, field, value); !problem.empty()) {
        error(element, label + ": value " + json::serialize(value) + " does not fit " + std::string(workflow::to_string(field.type)) +
                           " field '" + field.name + "': " + problem);
        ok = false;
        continue;
      }
      fp.values.push_back(std::move(value));
    }
    if (!weights) {
      fp.weights.assign(array->size(), 1.0);
      return ok;
    }
    const toml::array* w = weights->as_array();
    if (!w) {
      error(*weights, label + ": 'weights' must be a list of numbers");
      return false;
    }
    if (w->size() != array->size()) {
      error(*weights, label + ": 'weights' has " + std::to_string(w->size()) + (w->size() == 1 ? " entry" : " entries") + " but 'values' has " +
                          std::to_string(array->size()) + "; give one weight per value");
      return false;
    }
    double total = 0;
    for (const toml::node& element : *w) {
      std::optional<double> x;
      if (element.is_integer()) x = static_cast<double>(element.as_integer()->get());
      else if (element.is_floating_point()) x = element.as_floating_point()->get();
      if (!x || !std::isfinite(*x) || *x < 0) {
        error(element, label + ": each weight must be a number of at least 0");
        ok = false;
        continue;
      }
      total += *x;
      fp.weights.push_back(*x);
    }
    if (ok && total <= 0) {
      error(*weights, label + ": the weights add up to 0; at least one must be above 0");
      ok = false;
    }
    return ok;
  }

  bool read_range(const std::string& label, const StepDef& step, const FieldDef& field, const toml::node& node, FieldProfile& fp) {
    if (field.type != FieldType::integer && field.type != FieldType::number) {
      error(node, label + ": 'range' is for integer and number fields; '" + field.name + "' is " +
                      std::string(workflow::to_string(field.type)) + " (use 'values')");
      return false;
    }
    const toml::array* array = node.as_array();
    if (!array || array->size() != 2) {
      error(node, label + ": 'range' must be [lo, hi]");
      return false;
    }
    double bounds[2];
    for (std::size_t i = 0; i < 2; ++i) {
      const toml::node& element = *array->get(i);
      bool integral = element.is_integer();
      if (!integral && !(element.is_floating_point() && field.type == FieldType::number)) {
        error(element, label + ": the range of " + std::string(workflow::to_string(field.type)) + " field '" + field.name +
                           "' needs " + (field.type == FieldType::integer ? "whole numbers" : "numbers"));
        return false;
      }
      json::value value = toml_to_json(element);
      if (std::string problem = check(step, field, value); !problem.empty()) {
        error(element, label + ": range bound " + json::serialize(value) + " does not fit field '" + field.name + "': " + problem);
        return false;
      }
      bounds[i] = value.to_number<double>();
    }
    if (bounds[0] > bounds[1]) {
      error(node, label + ": 'range' must be [lo, hi] with lo <= hi");
      return false;
    }
    fp.range = {bounds[0], bounds[1]};
    return true;
  }

  std::string file_;
  const workflow::Workflow& wf_;
  SourceErrors errors_;
};

}  // namespace

const FieldProfile* Profile::find(const std::string& step, const std::string& field) const {
  auto it = fields.find(step + "." + field);
  return it == fields.end() ? nullptr : &it->second;
}

ProfileError::ProfileError(SourceErrors errors)
    : std::runtime_error(errors.empty() ? "profile error" : errors.front().to_string()), errors_(std::move(errors)) {}

Profile load_profile(const std::filesystem::path& file, const workflow::Workflow& workflow) {
  std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ProfileError({{name, 0, 0, std::filesystem::exists(file) ? "cannot read the file" : "file not found"}});
  std::stringstream contents;
  contents << in.rdbuf();
  toml::table root;
  try {
    root = toml::parse(contents.str(), name);
  } catch (const toml::parse_error& e) {
    throw ProfileError({{name, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column),
                         one_line(std::string(e.description()))}});
  }
  Reader reader(name, workflow);
  Profile profile = reader.read(root);
  if (!reader.errors().empty()) {
    auto errors = reader.errors();
    std::stable_sort(errors.begin(), errors.end(),
                     [](const SourceError& a, const SourceError& b) { return std::tie(a.line, a.column) < std::tie(b.line, b.column); });
    throw ProfileError(std::move(errors));
  }
  return profile;
}

std::filesystem::path default_profile_path(const std::filesystem::path& workflow_file) {
  std::filesystem::path p = workflow_file;
  if (p.extension() == ".toml") p.replace_extension();
  p += ".sim.toml";
  return p;
}

}  // namespace clinicflow::cli::sim
