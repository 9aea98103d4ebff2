#include "workflow/workflow_loader.hpp"

#include "util/toml_json.hpp"

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
    read_stages(root, *workflow);
    read_steps(root, *workflow);
    // Later checks run despite earlier errors, so one run reports every problem in the file.
    if (!workflow->steps.empty()) link(*workflow);
    if (!workflow->steps.empty()) check_reachable(*workflow);
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const SourceError& a, const SourceError& b) { return std::tie(a.line, a.column) < std::tie(b.line, b.column); });
    if (!errors_.empty()) return {nullptr, std::move(errors_)};
    return {std::move(workflow), {}};
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
    check_keys(root, {"id", "version", "title", "description", "stage", "step"}, "the workflow");
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
                          "outcome", "reason", "field", "branch"},
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

  void read_fields(const toml::table& table, StepDef& step) {
    for (const toml::table* field_table : get_tables(table, "field")) {
      check_keys(*field_table, {"name", "label", "type", "required", "min", "max", "values", "unit", "help"}, "[[step.field]]");
      FieldDef field;
      field.where = location_of(*field_table);
      auto name = get_identifier(*field_table, "name", true, "[[step.field]]");
      if (!name) continue;
      if (step.find_field(*name)) {
        error(*field_table->get("name"), "step '" + step.id + "' has two fields named '" + *name + "'");
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
            {{file_name, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column), std::string(e.description())}}};
  }
  WorkflowReader reader(file_name, context);
  return reader.read(root);
}

LoadResult load_workflow_file(const std::filesystem::path& file, const LoadContext& context) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    std::string why = std::filesystem::exists(file, ec) ? "cannot be read" : "file not found";
    return {nullptr, {{file.string(), 0, 0, why}}};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_workflow_text(text.str(), file.string(), context);
}

}  // namespace clinicflow::workflow
