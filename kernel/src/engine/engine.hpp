#pragma once
// The engine runs cases through their workflow: it checks each command against the workflow and
// the case's current state, decides what happens next, and writes the resulting events and the
// new projection in one transaction. It is the single writer: commands are decided one at a
// time, in memory, and a committer thread writes them in groups: every command decided while
// the previous group was being made durable goes into the next transaction (group commit). A
// command is answered only once its group is durable; a later command on the same case is
// decided on top of the earlier one even before that is durable.
#include "engine/case_state.hpp"
#include "engine/committed_cases.hpp"
#include "engine/clock.hpp"
#include "engine/step_plugins.hpp"
#include "store/case_store.hpp"
#include "workflow/form.hpp"
#include "workflow/workflow_set.hpp"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
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
// Runs on the committer thread: it must not block, nor call the engine's commands.
using CommitListener = std::function<void(const CaseState& state, const std::vector<store::EventRecord>& events)>;

// A command's answer: the case's state once the command is durable, or why it failed (an
// EngineError, or a StoreError when the database failed). A refusal that was recorded on the case
// comes with both. Called once: on the calling thread when the command is refused before it
// writes anything, else on the committer thread. It must not block, nor call the engine's commands.
using Completion = std::function<void(const CaseState* state, std::exception_ptr error)>;

class Engine {
 public:
  // How many committed cases get_case() and load() keep parsed in memory, least recently used
  // out first ([storage] cases_in_memory). A case not held is read back from SQLite and parsed.
  static constexpr std::size_t kDefaultCasesInMemory = 65'536;

  // `plugins` may be null when no workflow names a plugin.
  Engine(store::CaseStore& store, const workflow::WorkflowSet& workflows, Clock& clock, StepPlugins* plugins = nullptr,
         std::size_t cases_in_memory = kDefaultCasesInMemory);
  ~Engine();  // commits what was decided, then stops the committer
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Asynchronous commands: decided on the calling thread, answered through `done`.
  void open_case(const std::string& patient_id, const std::string& workflow_id, std::optional<int> version, const Actor& actor,
                 Completion done);
  void submit(const std::string& case_id, const std::string& step, const boost::json::object& data, const Actor& actor,
              std::optional<std::int64_t> expected_revision, Completion done);
  void close_case(const std::string& case_id, const std::string& reason, const Actor& actor, Completion done);
  void retry_step(const std::string& case_id, const std::string& step, const Actor& actor, Completion done);

  // The same commands, waiting for the answer (throwing EngineError). Not from a listener or a
  // completion.
  CaseState open_case(const std::string& patient_id, const std::string& workflow_id, std::optional<int> version,
                      const Actor& actor);
  // `expected_revision`: the revision the submitter saw; a mismatch is a conflict, never a merge.
  CaseState submit(const std::string& case_id, const std::string& step, const boost::json::object& data, const Actor& actor,
                   std::optional<std::int64_t> expected_revision = std::nullopt);
  CaseState close_case(const std::string& case_id, const std::string& reason, const Actor& actor);
  // Runs a failed automatic step's plugin again.
  CaseState retry_step(const std::string& case_id, const std::string& step, const Actor& actor);

  // Fires every timer due at or before the clock's now, earliest first; the timers due together
  // commit together (one group). Returns once they are durable.
  std::size_t fire_due_timers();
  // Virtual clock only: moves time to `target`, stopping at each timer's due time to fire it then,
  // so events carry the exact virtual time. Persists the new time.
  std::size_t advance_clock_to(TimePoint target, VirtualClock& clock);

  // The case as last committed (never a decision still waiting for its commit); nullptr: no case.
  std::shared_ptr<const CaseState> get_case(const std::string& case_id) const;
  std::vector<store::EventRecord> history(const std::string& case_id) const;
  std::shared_ptr<const workflow::Workflow> workflow_of(const CaseState& state) const;

  void add_listener(CommitListener listener);

  // Waits until everything decided so far is committed and answered. For an orderly stop: the
  // answers go out while the transport that sends them still exists.
  void drain();

  // Group commit so far: transactions written and the commands in them.
  struct CommitStats {
    std::uint64_t groups = 0, commands = 0;
  };
  CommitStats commit_stats() const { return {groups_committed_.load(), writes_committed_.load()}; }

  static constexpr const char* kVirtualClockSetting = "virtual_clock_now";

 private:
  struct Command;
  struct Pending;
  Command load(const std::string& case_id);
  // Runs `decide` under the write lock and queues what it decided for the next group commit.
  void run(const std::function<void(Command&)>& decide, Completion done);
  void queue(Command& command, Completion done);  // caller holds write_mutex_
  std::shared_ptr<const CaseState> pending_state(const std::string& case_id);  // in the overlay, or nullptr
  CaseState wait(const std::function<void(Completion)>& start);
  struct Answers;
  void commit_loop();
  void commit_group(std::vector<Pending>& group);
  void answer(Answers& answers);  // listeners, then each command's caller, in commit order
  bool decide_fire(Command& command, const store::TimerRecord& timer);
  void advance(Command& command, const workflow::StepDef& from);
  void enter(Command& command, const workflow::StepDef& step, std::optional<TimePoint> earliest, std::optional<TimePoint> due_by);
  void open_step(Command& command, const workflow::StepDef& step, std::optional<TimePoint> due_by);
  void run_automatic(Command& command, const workflow::StepDef& step);
  void post_charges(Command& command, const workflow::StepDef& step, const PluginDecision& decision);
  void queue_messages(Command& command, const workflow::StepDef& step, std::string_view trigger, std::optional<TimePoint> opens_at);
  PluginDecision call_plugin(Command& command, const workflow::StepDef& step, const boost::json::object* submitted);
  std::string new_case_id();

  store::CaseStore& store_;
  const workflow::WorkflowSet& workflows_;
  Clock& clock_;
  StepPlugins* plugins_;
  mutable CommittedCases committed_;
  std::mutex write_mutex_;  // decisions: one at a time
  // Cases decided on but not yet durable. Its own lock, held only to look up or change an entry,
  // so the committer never waits for a decision.
  std::mutex overlay_mutex_;
  std::map<std::string, std::shared_ptr<const CaseState>> overlay_;
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::vector<Pending> queue_;  // decided, waiting for the next group commit
  bool stopping_ = false;
  bool committing_ = false;  // a group is being written and answered (under queue_mutex_)
  std::condition_variable idle_cv_;
  std::mutex listeners_mutex_;
  std::vector<CommitListener> listeners_;
  std::mt19937_64 random_;
  std::atomic<std::uint64_t> groups_committed_{0}, writes_committed_{0};
  std::thread committer_;  // last: started when everything else exists
};

}  // namespace clinicflow::engine
