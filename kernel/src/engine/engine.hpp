#pragma once
// The engine runs cases through their workflow: it checks each command against the workflow and
// the case's current state, decides what happens next, and writes the resulting events and the
// new projection in one transaction. It is the single writer: commands run one at a time.
#include "engine/case_state.hpp"
#include "engine/clock.hpp"
#include "engine/step_plugins.hpp"
#include "store/case_store.hpp"
#include "workflow/form.hpp"
#include "workflow/workflow_set.hpp"

#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace clinicflow::engine {

struct Actor {
  std::string id;  // recorded on events: "user:<name>", "plugin:<name>", "system"
  std::vector<std::string> roles;
  static Actor system() { return {"system", {}}; }
};

enum class ErrorKind {
  not_found,     // no such case, workflow or step
  conflict,      // stale revision, step not open, case no longer active
  invalid_data,  // the form's checks failed; `fields` lists every problem
  forbidden,     // the actor holds none of the step's roles
  refused,       // a plugin rule refused the submission (recorded on the case)
  unavailable,   // a plugin the workflow needs cannot be called, or failed
};

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorKind kind, const std::string& message, std::vector<workflow::FieldProblem> fields = {})
      : std::runtime_error(message), kind_(kind), fields_(std::move(fields)) {}
  ErrorKind kind() const { return kind_; }
  const std::vector<workflow::FieldProblem>& fields() const { return fields_; }

 private:
  ErrorKind kind_;
  std::vector<workflow::FieldProblem> fields_;
};

// Called after each commit, in commit order, with the case's new state and the events just written.
using CommitListener = std::function<void(const CaseState& state, const std::vector<store::EventRecord>& events)>;

class Engine {
 public:
  // `plugins` may be null when no workflow names a plugin.
  Engine(store::CaseStore& store, const workflow::WorkflowSet& workflows, Clock& clock, StepPlugins* plugins = nullptr);

  CaseState open_case(const std::string& patient_id, const std::string& workflow_id, std::optional<int> version,
                      const Actor& actor);
  // `expected_revision`: the revision the submitter saw; a mismatch is a conflict, never a merge.
  CaseState submit(const std::string& case_id, const std::string& step, const boost::json::object& data, const Actor& actor,
                   std::optional<std::int64_t> expected_revision = std::nullopt);
  CaseState close_case(const std::string& case_id, const std::string& reason, const Actor& actor);
  // Runs a failed automatic step's plugin again.
  CaseState retry_step(const std::string& case_id, const std::string& step, const Actor& actor);

  // Fires every timer due at or before the clock's now, earliest first, each in its own transaction.
  std::size_t fire_due_timers();
  // Virtual clock only: moves time to `target`, stopping at each timer's due time to fire it then,
  // so events carry the exact virtual time. Persists the new time.
  std::size_t advance_clock_to(TimePoint target, VirtualClock& clock);

  std::optional<CaseState> get_case(const std::string& case_id) const;
  std::vector<store::EventRecord> history(const std::string& case_id) const;
  std::shared_ptr<const workflow::Workflow> workflow_of(const CaseState& state) const;

  void add_listener(CommitListener listener);

  static constexpr const char* kVirtualClockSetting = "virtual_clock_now";

 private:
  struct Command;
  Command load(const std::string& case_id);
  void commit(Command& command);
  void advance(Command& command, const workflow::StepDef& from);
  void enter(Command& command, const workflow::StepDef& step, std::optional<TimePoint> earliest, std::optional<TimePoint> due_by);
  void open_step(Command& command, const workflow::StepDef& step, std::optional<TimePoint> due_by);
  void run_automatic(Command& command, const workflow::StepDef& step);
  void post_charges(Command& command, const workflow::StepDef& step, const PluginDecision& decision);
  void queue_messages(Command& command, const workflow::StepDef& step, std::string_view trigger, std::optional<TimePoint> opens_at);
  PluginDecision call_plugin(Command& command, const workflow::StepDef& step, const boost::json::object* submitted);
  bool fire(const store::TimerRecord& timer);
  std::string new_case_id();

  store::CaseStore& store_;
  const workflow::WorkflowSet& workflows_;
  Clock& clock_;
  StepPlugins* plugins_;
  std::mutex write_mutex_;
  std::vector<CommitListener> listeners_;
  std::mt19937_64 random_;
};

}  // namespace clinicflow::engine
