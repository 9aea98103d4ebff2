#pragma once
// The in-memory shape of one loaded, validated workflow version. Immutable once loaded:
// running cases share it through shared_ptr<const Workflow>.
#include "util/time.hpp"
#include "workflow/condition.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace clinicflow::workflow {

struct Location {
  int line = 0;
  int column = 0;
};

struct FieldDef {
  std::string name;
  std::string label;  // shown to staff; defaults to the name
  FieldType type = FieldType::string;
  bool required = false;
  std::optional<double> min, max;   // integer and number fields
  std::vector<std::string> values;  // enum fields
  std::string unit;
  std::string help;
  Location where;
};

// How a case ends. "declined" and "closed" leave the case closed with a reason.
enum class Outcome { completed, declined, closed };
std::string_view to_string(Outcome o);

struct Transition {
  std::optional<Condition> when;  // absent: always taken (the default transition)
  std::string go_to;              // a later step's id; empty when `outcome` is set
  std::optional<Outcome> outcome;
  std::string reason;
  Location where;
};

enum class StepKind { task, automatic };

// A message template: [template.<name>] with placeholders {{step.field}}, {{case.id}},
// {{case.patient_id}}, {{case.repetition}} and {{opens_at}}.
struct Template {
  std::string name;
  std::string subject;
  std::string body;
  Location where;
};

// [[step.message]]: a message queued in the outbox when its step reaches `on`.
struct MessageDef {
  std::string on = "completed";  // "waiting" | "opened" | "completed"
  std::string template_name;
  std::string via;      // the messaging plugin
  std::string to;       // who it is for: "patient", "support_person", "referring_provider", ...
  std::string address;  // template text for the address; may be empty
  std::optional<Condition> when;
  std::optional<Duration> delay;        // after the moment it is queued
  std::optional<Duration> before_open;  // on = "waiting": this long before the step opens
  Location where;
};

struct StepDef {
  std::string id;
  std::string title;
  std::string stage;
  StepKind kind = StepKind::task;
  std::vector<std::string> roles;  // who may submit a task
  std::vector<FieldDef> fields;    // the task's form; for automatic steps, what the plugin returns
  std::string plugin;              // automatic: does the work; task: reviews each submission (may be empty)
  boost::json::object settings;    // passed to the plugin as JSON
  std::optional<Duration> due;     // due this long after the step opens; overdue is marked when it passes
  std::optional<Duration> open_delay;  // the step opens only this long after ...
  std::string open_after;              // ... this earlier step completed (empty: after the step before it)
  std::vector<MessageDef> messages;
  std::vector<std::string> plugin_fields;  // names of the fields the plugin contributed
  std::vector<Transition> branches;    // tried in order; the first whose condition holds is taken
  Transition next;                     // taken when no branch holds
  std::size_t index = 0;               // position in the file
  Location where;
  boost::json::object schema;          // the form as JSON Schema (form_schema), built once at load
  std::string schema_json;             // `schema` serialized, pasted into every case view

  const FieldDef* find_field(std::string_view name) const;
};

// A stage whose steps are repeated: the induction series of 6 sessions over 2-3 weeks.
struct Repeat {
  int times = 1;
  std::optional<Duration> min_interval;  // between the first step's completions of two repetitions
  std::optional<Duration> max_interval;  // the first step of the next repetition is due by then
  std::optional<Condition> until;        // checked after each repetition: true stops the series early
  Location where;
};

struct StageDef {
  std::string id;
  std::string title;
  std::optional<Repeat> repeat;
  std::size_t first_step = 0, last_step = 0;  // indices into Workflow::steps
  Location where;
};

struct Workflow {
  std::string id;
  int version = 0;
  std::string title;
  std::string description;
  std::string file;
  std::vector<StageDef> stages;
  std::vector<StepDef> steps;
  std::vector<Template> templates;

  const Template* find_template(std::string_view name) const;
  const StepDef* find_step(std::string_view id) const;
  const StageDef* find_stage(std::string_view id) const;
  const StageDef& stage_of(const StepDef& step) const;
  std::vector<std::string> plugins() const;  // every plugin a step or message names, without duplicates
};

}  // namespace clinicflow::workflow
