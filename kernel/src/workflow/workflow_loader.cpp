#include "workflow/workflow_loader.hpp"

#include "workflow/form.hpp"

#include "util/toml_json.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace clinicflow::workflow {
namespace {

constexpr int kMaxRepeatTimes = 100;

bool is_identifier(std::string_view s) {
  static const std::regex pattern("[a-z][a-z0-9_]{0,63}");
  return std::regex_match(s.begin(), s.end(), pattern);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string suggestion(std::string_view word, const std::vector<std::string_view>& known) {
  for (auto candidate : known)
    if (edit_distance(word, candidate) <= 2) return " — did you mean '" + std::string(candidate) + "'?";
  return "";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string_view node_kind(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "a whole number";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "true/false";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "a list";
    default: return "a date or time";
  }
}

Location location_of(const toml::node& node) {
  return {static_cast<int>(node.source().begin.line), static_cast<int>(node.source().begin.column)};
}

// Reads one file, collecting every problem instead of stopping at the first.
class WorkflowReader {
 public:
  WorkflowReader(std::string file, const LoadContext& context) : file_(std::move(file)), context_(context) {}

  LoadResult read(const toml::table& root) {
    auto workflow = std::make_shared<Workflow>();
    workflow->file = file_;
    read_identity(root, *workflow);
    read_templates(root, *workflow);
    read_stages(root, *workflow);
    read_steps(root, *workflow);
    // Later checks run despite earlier errors, so one run reports every problem in the file.
    if (!workflow->steps.empty()) link(*workflow);
    if (!workflow->steps.empty()) check_reachable(*workflow);
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const SourceError& a, const SourceError& b) { return std::tie(a.line, a.column) < std::tie(b.line, b.column); });
    if (!errors_.empty()) return {nullptr, std::move(errors_), std::move(unanswered_plugins_)};
    for (auto& step : workflow->steps) {  // every case view sends it
      step.schema = form_schema(step);
      step.schema_json = boost::json::serialize(step.schema);
    }
    return {std::move(workflow), {}, {}};
  }

  SourceErrors& errors() { return errors_; }

 private:
  void error(Location where, std::string message) { errors_.push_back({file_, where.line, where.column, std::move(message)}); }
  void error(const toml::node& node, std::string message) { error(location_of(node), std::move(message)); }

  void check_keys(const toml::table& table, const std::vector<std::string_view>& allowed, std::string_view what) {
    for (const auto& [key, value] : table) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
      Location where = key.source().begin.line ? Location{static_cast<int>(key.source().begin.line), static_cast<int>(key.source().begin.column)}
                                               : location_of(value);
      error(where, "unknown key '" + std::string(key.str()) + "' in " + std::string(what) + suggestion(key.str(), allowed));
    }
  }

  // Typed getters: report a missing required key at the table, a wrong type at the value.
  const toml::node* get(const toml::table& table, std::string_view key, bool required, std::string_view what) {
    const toml::node* node = table.get(key);
    if (!node && required) error(table, std::string(what) + " needs '" + std::string(key) + "'");
    return node;
  }

  std::optional<std::string> get_string(const toml::table& table, std::string_view key, bool required, std::string_view what) {
    const toml::node* node = get(table, key, required, what);
    if (!node) return std::nullopt;
    if (!node->is_string()) {
      error(*node, "'" + std::string(key) + "' must be a string in quotes, not " + std::string(node_kind(*node)));
      return std::nullopt;
    }
    return node->as_string()->get();
  }

  std::optional<std::string> get_identifier(const toml::table& table, std::string_view key, bool required, std::string_view what) {
    auto value = get_string(table, key, required, what);
    if (value && !is_identifier(*value)) {
      error(*table.get(key), "'" + *value + "' is not a valid " + std::string(key) +
                                 ": use lower-case letters, digits and '_', starting with a letter (at most 64)");
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> get_bool(const toml::table& table, std::string_view key) {
    const toml::node* node = table.get(key);
    if (!node) return std::nullopt;
    if (!node->is_boolean()) {
      error(*node, "'" + std::string(key) + "' must be true or false, not " + std::string(node_kind(*node)));
      return std::nullopt;
    }
    return node->as_boolean()->get();
  }

  std::optional<double> get_number(const toml::table& table, std::string_view key) {
    const toml::node* node = table.get(key);
    if (!node) return std::nullopt;
    if (auto i = node->as_integer()) return static_cast<double>(i->get());
    if (auto f = node->as_floating_point()) return f->get();
    error(*node, "'" + std::string(key) + "' must be a number, not " + std::string(node_kind(*node)));
    return std::nullopt;
  }

  std::optional<Duration> get_duration(const toml::table& table, std::string_view key) {
    auto text = get_string(table, key, false, "");
    if (!text) return std::nullopt;
    std::string why;
    auto duration = parse_duration(*text, &why);
    if (!duration) error(*table.get(key), "'" + std::string(key) + "' = \"" + *text + "\" is not a duration: " + why);
    return duration;
  }

  std::vector<std::string> get_string_list(const toml::table& table, std::string_view key) {
    std::vector<std::string> out;
    const toml::node* node = table.get(key);
    if (!node) return out;
    const toml::array* array = node->as_array();
    if (!array) {
      error(*node, "'" + std::string(key) + "' must be a list of strings, such as [\"nurse\", \"prescriber\"]");
      return out;
    }
    for (const auto& item : *array) {
      if (!item.is_string()) {
        error(item, "'" + std::string(key) + "' must hold only strings, not " + std::string(node_kind(item)));
        continue;
      }
      out.push_back(item.as_string()->get());
    }
    return out;
  }

  // [[stage]] / [[step]] / [[step.field]]: an array of tables, each checked to be a table.
  std::vector<const toml::table*> get_tables(const toml::table& table, std::string_view key) {
    std::vector<const toml::table*> out;
    const toml::node* node = table.get(key);
    if (!node) return out;
    const toml::array* array = node->as_array();
    if (!array) {
      error(*node, "'" + std::string(key) + "' must be written as [[" + std::string(key) + "]] sections");
      return out;
    }
    for (const auto& item : *array) {
      if (auto t = item.as_table()) out.push_back(t);
      else error(item, "each '" + std::string(key) + "' must be a table, not " + std::string(node_kind(item)));
    }
    return out;
  }

  void read_identity(const toml::table& root, Workflow& workflow) {
    check_keys(root, {"id", "version", "title", "description", "template", "stage", "step"}, "the workflow");
    if (auto id = get_identifier(root, "id", true, "the workflow")) workflow.id = *id;
    if (const toml::node* version = get(root, "version", true, "the workflow")) {
      auto v = version->as_integer();
      if (!v || v->get() < 1 || v->get() > 1'000'000)
        error(*version, "'version' must be a whole number from 1 up (1, 2, 3 ...)");
      else
        workflow.version = static_cast<int>(v->get());
    }
    if (auto title = get_string(root, "title", true, "the workflow")) workflow.title = *title;
    if (auto description = get_string(root, "description", false, "")) workflow.description = *description;
  }

  void read_templates(const toml::table& root, Workflow& workflow) {
    const toml::node* node = root.get("template");
    if (!node) return;
    const toml::table* templates = node->as_table();
    if (!templates) {
      error(*node, "'template' must be written as [template.<name>] sections");
      return;
    }
    for (const auto& [key, value] : in_document_order(*templates)) {
      std::string name(key->str());
      const toml::table* table = value->as_table();
      if (!table) {
        error(*value, "template '" + name + "' must be a table: [template." + name + "]");
        continue;
      }
      if (!is_identifier(name)) error(*value, "'" + name + "' is not a valid template name: use lower-case letters, digits and '_'");
      check_keys(*table, {"subject", "body"}, "[template." + name + "]");
      Template t;
      t.name = name;
      t.where = location_of(*table);
      t.subject = get_string(*table, "subject", false, "").value_or("");
      if (auto body = get_string(*table, "body", true, "template '" + name + "'")) t.body = *body;
      template_tables_.push_back({name, table});
      workflow.templates.push_back(std::move(t));
    }
  }

  void read_stages(const toml::table& root, Workflow& workflow) {
    auto tables = get_tables(root, "stage");
    if (tables.empty() && !root.get("stage")) error(Location{1, 1}, "the workflow has no [[stage]] sections");
    for (const toml::table* table : tables) {
      check_keys(*table, {"id", "title", "repeat"}, "[[stage]]");
      StageDef stage;
      stage.where = location_of(*table);
      auto id = get_identifier(*table, "id", true, "[[stage]]");
      if (!id) continue;
      if (workflow.find_stage(*id)) {
        error(*table->get("id"), "stage '" + *id + "' is defined twice");
        continue;
      }
      stage.id = *id;
      stage.title = get_string(*table, "title", false, "").value_or(stage.id);
      if (const toml::node* repeat = table->get("repeat")) {
        if (auto repeat_table = repeat->as_table()) stage.repeat = read_repeat(*repeat_table, workflow.stages.size());
        else error(*repeat, "'repeat' must be a table such as { times = 6, min_interval = \"2d\" }");
      }
      workflow.stages.push_back(std::move(stage));
    }
  }

  std::optional<Repeat> read_repeat(const toml::table& table, std::size_t stage_index) {
    check_keys(table, {"times", "min_interval", "max_interval", "until"}, "repeat");
    Repeat repeat;
    repeat.where = location_of(table);
    const toml::node* times = get(table, "times", true, "repeat");
    if (times) {
      auto t = times->as_integer();
      if (!t || t->get() < 1 || t->get() > kMaxRepeatTimes)
        error(*times, "'times' must be a whole number from 1 to " + std::to_string(kMaxRepeatTimes));
      else
        repeat.times = static_cast<int>(t->get());
    }
    repeat.min_interval = get_duration(table, "min_interval");
    repeat.max_interval = get_duration(table, "max_interval");
    if (repeat.min_interval && repeat.max_interval && *repeat.min_interval > *repeat.max_interval)
      error(*table.get("max_interval"), "'max_interval' is shorter than 'min_interval'");
    // `until` refers to step fields, which are read later: keep the text and parse it in link().
    if (auto until = get_string(table, "until", false, "")) until_texts_.push_back({stage_index, table.get("until"), *until});
    return repeat;
  }

  void read_steps(const toml::table& root, Workflow& workflow) {
    auto tables = get_tables(root, "step");
    if (tables.empty() && !root.get("step")) error(Location{1, 1}, "the workflow has no [[step]] sections");
    std::size_t current_stage = 0;
    std::set<std::string> closed_stages;
    for (const toml::table* table : tables) {
      check_keys(*table, {"id", "title", "stage", "kind", "roles", "plugin", "settings", "due", "delay", "after", "next",
                          "outcome", "reason", "field", "branch", "message"},
                 "[[step]]");
      StepDef step;
      step.where = location_of(*table);
      step.index = workflow.steps.size();
      auto id = get_identifier(*table, "id", true, "[[step]]");
      if (!id) continue;
      if (workflow.find_step(*id)) {
        error(*table->get("id"), "step '" + *id + "' is defined twice");
        continue;
      }
      step.id = *id;
      step.title = get_string(*table, "title", false, "").value_or(step.id);
      if (auto stage = get_string(*table, "stage", true, "step '" + step.id + "'")) {
        step.stage = *stage;
        auto it = std::find_if(workflow.stages.begin(), workflow.stages.end(), [&](const StageDef& s) { return s.id == *stage; });
        if (it == workflow.stages.end()) {
          std::vector<std::string> known;
          for (const auto& s : workflow.stages) known.push_back(s.id);
          error(*table->get("stage"), "no stage '" + *stage + "' (stages: " + join(known) + ")");
        } else {
          auto position = static_cast<std::size_t>(it - workflow.stages.begin());
          if (position < current_stage || closed_stages.count(*stage))
            error(*table->get("stage"), "step '" + step.id + "' belongs to stage '" + *stage +
                                            "', but the steps of a stage must stand together, in the order of the [[stage]] sections");
          for (std::size_t s = current_stage; s < position; ++s) closed_stages.insert(workflow.stages[s].id);
          current_stage = std::max(current_stage, position);
        }
      }
      read_kind(*table, step);
      step.due = get_duration(*table, "due");
      step.open_delay = get_duration(*table, "delay");
      if (auto after = get_string(*table, "after", false, "")) {
        step.open_after = *after;
        if (!step.open_delay) error(*table->get("after"), "'after' needs a 'delay' (how long after that step this one opens)");
      }
      add_plugin_fields(*table, step);
      read_fields(*table, step);
      workflow.steps.push_back(std::move(step));
      step_tables_.push_back(table);
    }
  }

  void read_kind(const toml::table& table, StepDef& step) {
    auto kind = get_string(table, "kind", false, "").value_or("task");
    if (kind == "automatic") {
      step.kind = StepKind::automatic;
    } else if (kind != "task") {
      error(*table.get("kind"), "'kind' must be \"task\" (done by staff) or \"automatic\" (done by a plugin), not \"" + kind + "\"");
    }
    step.roles = get_string_list(table, "roles");
    if (step.kind == StepKind::task && step.roles.empty())
      error(table.get("roles") ? *table.get("roles") : static_cast<const toml::node&>(table),
            "task '" + step.id + "' needs 'roles': who may complete it, such as roles = [\"nurse\"]");
    if (step.kind == StepKind::automatic && !step.roles.empty())
      error(*table.get("roles"), "automatic step '" + step.id + "' is done by its plugin; remove 'roles'");
    if (context_.roles) {
      if (const toml::array* roles = table.get("roles") ? table.get("roles")->as_array() : nullptr)
        for (const auto& role : *roles)
          if (role.is_string() && !context_.roles->count(role.as_string()->get()))
            error(role, "no role '" + role.as_string()->get() + "' in the server configuration (roles: " +
                            join({context_.roles->begin(), context_.roles->end()}) + ")");
    }
    if (auto plugin = get_string(table, "plugin", false, "")) {
      step.plugin = *plugin;
      if (context_.plugins && !context_.plugins->count(*plugin))
        error(*table.get("plugin"), "no plugin '" + *plugin + "' is configured (add a [plugins." + *plugin +
                                        "] table to the server configuration)");
    } else if (step.kind == StepKind::automatic) {
      error(table, "automatic step '" + step.id + "' needs 'plugin': the plugin that does it");
    }
    if (const toml::node* settings = table.get("settings")) {
      if (!settings->is_table()) error(*settings, "'settings' must be a table, such as [step.settings]");
      else if (step.plugin.empty()) error(*settings, "'settings' are for a plugin, but step '" + step.id + "' names none");
      else step.settings = toml_to_json(*settings).as_object();
    }
  }

  // A plugin named by a task contributes form fields (a route's vitals, a billing form). They come
  // first; a workflow field of the same name is a mistake, not an override.
  void add_plugin_fields(const toml::table& table, StepDef& step) {
    if (step.plugin.empty() || !context_.plugin_fields) return;
    if (context_.plugins && !context_.plugins->count(step.plugin)) return;  // reported already
    const toml::node& where = *table.get("plugin");
    if (context_.plugin_kind)
      if (auto kind = context_.plugin_kind(step.plugin); kind && *kind == "messaging") {
        error(where, "plugin '" + step.plugin + "' is a messaging plugin: a step takes a route or billing plugin, and "
                     "messages name theirs with 'via'");
        return;
      }
    std::string why;
    auto fields = context_.plugin_fields(step.plugin, step.settings, why);
    if (!fields) {
      unanswered_plugins_.insert(step.plugin);
      error(where, "cannot ask plugin '" + step.plugin + "' for the fields of step '" + step.id + "': " + why);
      return;
    }
    for (const boost::json::value& value : *fields) {
      std::string problem;
      auto field = field_from_json(value, problem);
      if (!field) {
        error(where, "plugin '" + step.plugin + "' describes a field badly: " + problem);
        continue;
      }
      if (step.find_field(field->name)) continue;  // a plugin repeating itself is harmless
      field->where = location_of(where);
      step.plugin_fields.push_back(field->name);
      step.fields.push_back(std::move(*field));
    }
  }

  static std::optional<FieldDef> field_from_json(const boost::json::value& value, std::string& problem) {
    const boost::json::object* o = value.if_object();
    if (!o) return problem = "a field must be an object", std::nullopt;
    auto text = [&](std::string_view key) {
      const boost::json::value* v = o->if_contains(key);
      return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    FieldDef field;
    field.name = text("name");
    if (!is_identifier(field.name)) return problem = "field name '" + field.name + "' is not valid", std::nullopt;
    auto type = field_type_from_string(text("type"));
    if (!type) return problem = "field '" + field.name + "' has an unknown type '" + text("type") + "'", std::nullopt;
    field.type = *type;
    field.label = text("label").empty() ? field.name : text("label");
    field.unit = text("unit");
    field.help = text("help");
    if (const auto* v = o->if_contains("required"); v && v->is_bool()) field.required = v->get_bool();
    if (const auto* v = o->if_contains("min"); v && v->is_number()) field.min = v->to_number<double>();
    if (const auto* v = o->if_contains("max"); v && v->is_number()) field.max = v->to_number<double>();
    if (const auto* v = o->if_contains("values"); v && v->is_array())
      for (const auto& item : v->get_array())
        if (item.is_string()) field.values.emplace_back(item.get_string());
    if (field.type == FieldType::enumeration && field.values.empty())
      return problem = "enum field '" + field.name + "' has no values", std::nullopt;
    return field;
  }

  void read_fields(const toml::table& table, StepDef& step) {
    for (const toml::table* field_table : get_tables(table, "field")) {
      check_keys(*field_table, {"name", "label", "type", "required", "min", "max", "values", "unit", "help"}, "[[step.field]]");
      FieldDef field;
      field.where = location_of(*field_table);
      auto name = get_identifier(*field_table, "name", true, "[[step.field]]");
      if (!name) continue;
      if (step.find_field(*name)) {
        bool from_plugin = std::find(step.plugin_fields.begin(), step.plugin_fields.end(), *name) != step.plugin_fields.end();
        error(*field_table->get("name"), from_plugin ? "field '" + *name + "' is already provided by plugin '" + step.plugin + "'"
                                                     : "step '" + step.id + "' has two fields named '" + *name + "'");
        continue;
      }
      field.name = *name;
      field.label = get_string(*field_table, "label", false, "").value_or(field.name);
      if (auto type_text = get_string(*field_table, "type", true, "field '" + field.name + "'")) {
        if (auto type = field_type_from_string(*type_text)) field.type = *type;
        else error(*field_table->get("type"), "unknown type \"" + *type_text +
                                                  "\" (use string, integer, number, boolean, date, datetime or enum)");
      }
      field.required = get_bool(*field_table, "required").value_or(false);
      field.min = get_number(*field_table, "min");
      field.max = get_number(*field_table, "max");
      bool numeric = field.type == FieldType::integer || field.type == FieldType::number;
      for (std::string_view bound : {"min", "max"})
        if (!numeric && field_table->get(bound))
          error(*field_table->get(bound), "'" + std::string(bound) + "' applies only to integer and number fields");
      if (field.min && field.max && *field.min > *field.max) error(*field_table->get("max"), "'max' is smaller than 'min'");
      field.values = get_string_list(*field_table, "values");
      if (field.type == FieldType::enumeration) {
        if (field.values.empty()) error(*field_table, "enum field '" + field.name + "' needs 'values', the choices it offers");
        std::set<std::string> seen;
        for (const auto& value : field.values)
          if (!seen.insert(value).second) error(*field_table->get("values"), "the value \"" + value + "\" is listed twice");
      } else if (field_table->get("values")) {
        error(*field_table->get("values"), "'values' applies only to enum fields");
      }
      field.unit = get_string(*field_table, "unit", false, "").value_or("");
      field.help = get_string(*field_table, "help", false, "").value_or("");
      step.fields.push_back(std::move(field));
    }
  }

  // Second pass, once every step and field is known: transitions, conditions, `after`.
  void link(Workflow& workflow) {
    for (std::size_t i = 0; i < workflow.steps.size(); ++i) {
      StepDef& step = workflow.steps[i];
      const toml::table& table = *step_tables_[i];
      for (const toml::table* branch_table : get_tables(table, "branch")) {
        check_keys(*branch_table, {"when", "goto", "outcome", "reason"}, "[[step.branch]]");
        Transition branch = read_transition(*branch_table, workflow, step, "goto", true);
        if (auto when = get_string(*branch_table, "when", true, "a branch"))
          branch.when = parse_condition(*when, *branch_table->get("when"), workflow, &step);
        step.branches.push_back(std::move(branch));
      }
      for (const toml::table* message_table : get_tables(table, "message")) read_message(*message_table, workflow, step);
      if (table.get("reason") && !table.get("next") && !table.get("outcome"))
        error(*table.get("reason"), "'reason' goes with 'outcome'; step '" + step.id + "' has none");
      if (table.get("next") || table.get("outcome")) {
        step.next = read_transition(table, workflow, step, "next", false);
      } else if (i + 1 < workflow.steps.size()) {
        step.next = Transition{std::nullopt, workflow.steps[i + 1].id, std::nullopt, "", step.where};
        check_enters_repeat_at_start(workflow, step, workflow.steps[i + 1], step.where);
      } else {
        step.next = Transition{std::nullopt, "", Outcome::completed, "", step.where};
      }
      if (!step.open_after.empty()) {
        const StepDef* after = workflow.find_step(step.open_after);
        if (!after) error(*table.get("after"), "'after' names step '" + step.open_after + "', which does not exist");
        else if (after->index >= step.index)
          error(*table.get("after"), "'after' must name an earlier step; '" + step.open_after + "' comes later");
      }
    }
    for (const auto& until : until_texts_)
      workflow.stages[until.stage_index].repeat->until = parse_condition(until.text, *until.node, workflow, nullptr);
    for (auto& stage : workflow.stages) {
      auto first = std::find_if(workflow.steps.begin(), workflow.steps.end(), [&](const StepDef& s) { return s.stage == stage.id; });
      if (first == workflow.steps.end()) {
        error(stage.where, "stage '" + stage.id + "' has no steps");
        continue;
      }
      auto last = std::find_if(workflow.steps.rbegin(), workflow.steps.rend(), [&](const StepDef& s) { return s.stage == stage.id; });
      stage.first_step = first->index;
      stage.last_step = last->index;
    }
    for (const auto& [name, table] : template_tables_) {
      if (const toml::node* subject = table->get("subject")) check_placeholders(workflow.find_template(name)->subject, *subject, workflow);
      if (const toml::node* body = table->get("body")) check_placeholders(workflow.find_template(name)->body, *body, workflow);
    }
  }

  void read_message(const toml::table& table, const Workflow& workflow, StepDef& step) {
    check_keys(table, {"on", "template", "via", "to", "address", "when", "delay", "before_open"}, "[[step.message]]");
    MessageDef message;
    message.where = location_of(table);
    message.on = get_string(table, "on", false, "").value_or("completed");
    if (message.on != "waiting" && message.on != "opened" && message.on != "completed")
      error(*table.get("on"), "'on' must be \"waiting\", \"opened\" or \"completed\", not \"" + message.on + "\"");
    if (auto name = get_string(table, "template", true, "a message")) {
      message.template_name = *name;
      if (!workflow.find_template(*name)) {
        std::vector<std::string_view> known;
        for (const auto& t : workflow.templates) known.push_back(t.name);
        error(*table.get("template"), "no template '" + *name + "' (define it as [template." + *name + "])" + suggestion(*name, known));
      }
    }
    if (auto via = get_string(table, "via", true, "a message")) {
      message.via = *via;
      if (context_.plugins && !context_.plugins->count(*via))
        error(*table.get("via"), "no plugin '" + *via + "' is configured (add a [plugins." + *via + "] table to the server configuration)");
      else if (context_.plugin_kind)
        if (auto kind = context_.plugin_kind(*via); kind && *kind != "messaging")
          error(*table.get("via"), "plugin '" + *via + "' is a " + *kind + " plugin; messages go through a messaging plugin");
    }
    message.to = get_string(table, "to", true, "a message").value_or("");
    message.address = get_string(table, "address", false, "").value_or("");
    if (const toml::node* address = table.get("address")) check_placeholders(message.address, *address, workflow);
    message.delay = get_duration(table, "delay");
    message.before_open = get_duration(table, "before_open");
    if (message.before_open && message.on != "waiting")
      error(*table.get("before_open"), "'before_open' needs on = \"waiting\": only a waiting step has an opening time ahead");
    if (auto when = get_string(table, "when", false, "")) message.when = parse_condition(*when, *table.get("when"), workflow, &step);
    step.messages.push_back(std::move(message));
  }

  // {{step.field}} must name a field that exists; {{case.id}}, {{case.patient_id}},
  // {{case.repetition}} and {{opens_at}} are always there.
  void check_placeholders(const std::string& text, const toml::node& node, const Workflow& workflow) {
    for (std::size_t open = text.find("{{"); open != std::string::npos; open = text.find("{{", open + 2)) {
      std::size_t close = text.find("}}", open);
      if (close == std::string::npos) {
        error(node, "a placeholder opened with '{{' is never closed with '}}'");
        return;
      }
      std::string name = text.substr(open + 2, close - open - 2);
      name.erase(0, name.find_first_not_of(' '));
      name.erase(name.find_last_not_of(' ') + 1);
      if (name == "case.id" || name == "case.patient_id" || name == "case.repetition" || name == "opens_at") continue;
      auto dot = name.find('.');
      const StepDef* step = dot == std::string::npos ? nullptr : workflow.find_step(name.substr(0, dot));
      if (!step || !step->find_field(name.substr(dot + 1)))
        error(node, "placeholder {{" + name + "}} names no field (write {{step.field}}, or {{case.id}}, {{case.patient_id}}, "
                    "{{case.repetition}}, {{opens_at}})");
    }
  }

  Transition read_transition(const toml::table& table, const Workflow& workflow, const StepDef& from, std::string_view target_key,
                             bool is_branch) {
    Transition transition;
    transition.where = location_of(table);
    const toml::node* target = table.get(target_key);
    const toml::node* outcome = table.get("outcome");
    if (target && outcome) {
      error(*outcome, "use either '" + std::string(target_key) + "' or 'outcome', not both");
      return transition;
    }
    if (!target && !outcome) {
      if (is_branch) error(table, "a branch needs 'goto' (a later step) or 'outcome' (completed, declined or closed)");
      return transition;
    }
    if (target) {
      auto id = get_string(table, target_key, true, "");
      if (!id) return transition;
      const StepDef* to = workflow.find_step(*id);
      if (!to) {
        std::vector<std::string_view> known;
        for (const auto& s : workflow.steps) known.push_back(s.id);
        error(*target, "no step '" + *id + "'" + suggestion(*id, known));
      } else if (to->index <= from.index) {
        error(*target, "'" + *id + "' is not a later step: a workflow only moves forward, and repeats only through a stage's 'repeat'");
      } else {
        check_enters_repeat_at_start(workflow, from, *to, location_of(*target));
      }
      transition.go_to = *id;
    } else {
      auto text = get_string(table, "outcome", true, "").value_or("");
      if (text == "completed") transition.outcome = Outcome::completed;
      else if (text == "declined") transition.outcome = Outcome::declined;
      else if (text == "closed") transition.outcome = Outcome::closed;
      else error(*outcome, "'outcome' must be \"completed\", \"declined\" or \"closed\", not \"" + text + "\"");
    }
    if (auto reason = get_string(table, "reason", false, "")) {
      transition.reason = *reason;
      if (!transition.outcome && target) error(*table.get("reason"), "'reason' goes with 'outcome'; a move to another step has none");
    }
    if (transition.outcome && *transition.outcome != Outcome::completed && transition.reason.empty())
      error(table, "an outcome of \"" + std::string(to_string(*transition.outcome)) +
                       "\" needs a 'reason', recorded on the case and shown to staff");
    return transition;
  }

  // Repetition counts start at a stage's first step; jumping into its middle would skip that.
  void check_enters_repeat_at_start(const Workflow& workflow, const StepDef& from, const StepDef& to, Location where) {
    const StageDef* stage = workflow.find_stage(to.stage);
    if (!stage || !stage->repeat || from.stage == to.stage) return;
    auto first = std::find_if(workflow.steps.begin(), workflow.steps.end(), [&](const StepDef& s) { return s.stage == to.stage; });
    if (first != workflow.steps.end() && first->id != to.id)
      error(where, "'" + to.id + "' is inside the repeated stage '" + to.stage + "'; enter it at its first step '" + first->id + "'");
  }

  std::optional<Condition> parse_condition(const std::string& text, const toml::node& node, const Workflow& workflow,
                                           const StepDef* own_step) {
    FieldResolver resolve = [&](std::string_view name, std::string& why) -> std::optional<ResolvedField> {
      const StepDef* step = own_step;
      std::string_view field_name = name;
      if (auto dot = name.find('.'); dot != std::string_view::npos) {
        step = workflow.find_step(name.substr(0, dot));
        field_name = name.substr(dot + 1);
        if (!step) {
          why = "no step '" + std::string(name.substr(0, dot)) + "'";
          return std::nullopt;
        }
      } else if (!step) {
        why = "name the step too, as step.field: '" + std::string(name) + "' alone is ambiguous here";
        return std::nullopt;
      }
      const FieldDef* field = step->find_field(field_name);
      if (!field) {
        std::vector<std::string> names;
        for (const auto& f : step->fields) names.push_back(f.name);
        why = "step '" + step->id + "' has no field '" + std::string(field_name) + "'" +
              (names.empty() ? std::string(" (it has no fields)") : " (fields: " + join(names) + ")");
        return std::nullopt;
      }
      return ResolvedField{{step->id, field->name}, field->type, field->values};
    };
    try {
      return Condition::parse(text, resolve);
    } catch (const ConditionError& e) {
      Location where = location_of(node);
      // The value starts at its opening quote; point at the offending character inside it.
      error({where.line, where.column + 1 + static_cast<int>(e.offset())}, std::string("in condition: ") + e.what());
      return std::nullopt;
    }
  }

  void check_reachable(const Workflow& workflow) {
    std::vector<bool> reached(workflow.steps.size(), false);
    std::deque<std::size_t> queue{0};
    reached[0] = true;
    while (!queue.empty()) {
      const StepDef& step = workflow.steps[queue.front()];
      queue.pop_front();
      auto visit = [&](const Transition& t) {
        const StepDef* target = t.go_to.empty() ? nullptr : workflow.find_step(t.go_to);
        if (!target || target->index <= step.index) return;  // unresolved or backwards: reported already
        std::size_t index = target->index;
        if (!reached[index]) reached[index] = true, queue.push_back(index);
      };
      for (const auto& branch : step.branches) visit(branch);
      visit(step.next);
    }
    for (const auto& step : workflow.steps)
      if (!reached[step.index])
        error(step.where, "step '" + step.id + "' can never be reached: no earlier step leads to it");
  }

  std::string file_;
  const LoadContext& context_;
  SourceErrors errors_;
  std::vector<const toml::table*> step_tables_;
  std::vector<std::pair<std::string, const toml::table*>> template_tables_;
  std::set<std::string> unanswered_plugins_;
  struct UntilText {
    std::size_t stage_index;
    const toml::node* node;
    std::string text;
  };
  std::vector<UntilText> until_texts_;
};

}  // namespace

LoadResult load_workflow_text(std::string_view text, const std::string& file_name, const LoadContext& context) {
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    return {nullptr,
            {{file_name, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column), std::string(e.description())}},
            {}};
  }
  WorkflowReader reader(file_name, context);
  return reader.read(root);
}

LoadResult load_workflow_file(const std::filesystem::path& file, const LoadContext& context) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    std::string why = std::filesystem::exists(file, ec) ? "cannot be read" : "file not found";
    return {nullptr, {{file.string(), 0, 0, why}}, {}};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_workflow_text(text.str(), file.string(), context);
}

}  // namespace clinicflow::workflow
