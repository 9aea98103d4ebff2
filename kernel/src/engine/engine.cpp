#include "engine/engine.hpp"

#include "engine/message_render.hpp"
#include "util/record_id.hpp"
#include "util/thread_name.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <future>

namespace clinicflow::engine {
namespace json = boost::json;
using workflow::StepDef;
using workflow::StepKind;
using workflow::Workflow;

// A command's working copy: the state it read, the events it decided, applied as they are emitted.
struct Engine::Command {
  CaseState state;
  std::int64_t base_revision = 0;
  std::string base_status;  // the status at base_revision ("" for a new case)
  std::vector<store::TimerRecord> base_timers;  // the pending timers at base_revision (stored with it)
  std::shared_ptr<const Workflow> workflow;
  TimePoint now = 0;
  std::vector<store::EventRecord> events;
  std::vector<store::OutboxMessage> messages;
  // An error to answer with once the events are durable: a refusal that is recorded on the case.
  std::exception_ptr answer_error;

  void emit(const char* type, const std::string& step, const std::string& actor, json::object data = {}) {
    store::EventRecord e{state.revision + 1, now, type, step, actor, std::move(data)};
    apply(state, state.case_id, e);
    events.push_back(std::move(e));
  }

  workflow::ValueLookup lookup() const {
    return [this](const workflow::FieldRef& ref) -> const json::value* {
      const json::value* step_data = state.data.if_contains(ref.step);
      if (!step_data || !step_data->is_object()) return nullptr;
      return step_data->get_object().if_contains(ref.field);
    };
  }
};

// A decided command waiting for its group commit.
struct Engine::Pending {
  store::CaseWrite write;  // no events: writes nothing, answered with the group it is in
  std::shared_ptr<const CaseState> state;  // the same object the overlay holds until committed
  std::exception_ptr answer_error;
  Completion done;
};

// A committed group on its way to its listeners and callers.
struct Engine::Answers {
  std::vector<Pending> group;
  std::vector<store::CaseWrite> writes;
  std::vector<std::size_t> write_of;              // index into writes; SIZE_MAX: nothing to write
  std::vector<std::string> left_out;              // why a write was not committed; empty: committed
  std::exception_ptr failure;
};

Engine::Engine(store::CaseStore& store, const workflow::WorkflowSet& workflows, Clock& clock, StepPlugins* plugins,
               std::size_t cases_in_memory)
    : store_(store),
      workflows_(workflows),
      clock_(clock),
      plugins_(plugins),
      committed_(cases_in_memory),
      random_(std::random_device{}()) {
  committer_ = std::thread([this] { commit_loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  committer_.join();
}

void Engine::drain() {
  std::unique_lock lock(queue_mutex_);
  idle_cv_.wait(lock, [this] { return queue_.empty() && !committing_; });
}

void Engine::add_listener(CommitListener listener) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.push_back(std::move(listener));
}

std::string Engine::new_case_id() { return util::record_id("c_", random_()); }

std::shared_ptr<const Workflow> Engine::workflow_of(const CaseState& state) const {
  return workflows_.find(state.workflow_id, state.workflow_version);
}

std::shared_ptr<const CaseState> Engine::pending_state(const std::string& case_id) {
  std::lock_guard lock(overlay_mutex_);
  auto it = overlay_.find(case_id);
  return it == overlay_.end() ? nullptr : it->second;
}

Engine::Command Engine::load(const std::string& case_id) {
  Command c;
  if (auto pending = pending_state(case_id)) {
    c.state = *pending;  // decided on, not yet durable: build on it
  } else {
    auto committed = get_case(case_id);
    if (!committed) throw EngineError(ErrorKind::not_found, "no case '" + case_id + "'");
    c.state = *committed;
  }
  c.base_revision = c.state.revision;
  c.base_status = c.state.status;
  c.base_timers = pending_timers(c.state);
  c.workflow = workflow_of(c.state);
  if (!c.workflow)
    throw EngineError(ErrorKind::unavailable, "workflow '" + c.state.workflow_id + "' version " +
                                                  std::to_string(c.state.workflow_version) + " is not loaded");
  c.now = clock_.now();
  return c;
}

void Engine::queue(Command& c, Completion done) {
  store::CaseWrite write{c.base_revision, std::move(c.events), to_columns(c.state), pending_timers(c.state),
                         std::move(c.messages), {}, std::move(c.base_status)};
  write.timers_unchanged = c.base_revision != 0 && write.timers == c.base_timers;
  // Serialized here, on the deciding thread: the committer is the serial part of every write.
  if (!write.events.empty()) write.state_json = to_json_text(c.state);  // else nothing is written
  // One immutable object from here on: the overlay, the commit and the cache of committed cases
  // share it rather than each copying the case.
  auto state = std::make_shared<const CaseState>(std::move(c.state));
  if (!write.events.empty()) {
    std::lock_guard lock(overlay_mutex_);
    overlay_[state->case_id] = state;
  }
  Pending pending{std::move(write), std::move(state), c.answer_error, std::move(done)};
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(pending));
  }
  queue_cv_.notify_one();
}

void Engine::run(const std::function<void(Command&)>& decide, Completion done) {
  std::unique_lock lock(write_mutex_);
  Command c;
  try {
    decide(c);
  } catch (...) {
    lock.unlock();
    done(nullptr, std::current_exception());
    return;
  }
  if (c.events.empty() && !pending_state(c.state.case_id)) {
    lock.unlock();
    done(&c.state, c.answer_error);  // nothing to write, and what it read is durable
    return;
  }
  queue(c, std::move(done));  // with no events: answered once the writes it read are durable
}

CaseState Engine::wait(const std::function<void(Completion)>& start) {
  if (std::this_thread::get_id() == committer_.get_id())
    throw std::logic_error("an engine command waited on the committer thread (from a listener or a completion)");
  std::promise<CaseState> answer;
  auto future = answer.get_future();
  start([&answer](const CaseState* state, std::exception_ptr error) {
    if (error) answer.set_exception(error);
    else answer.set_value(*state);
  });
  return future.get();
}

void Engine::commit_loop() {
  util::name_this_thread("cf-commit");
  std::vector<Pending> group;
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      committing_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything decided is committed
      group.swap(queue_);          // everything decided while the last group was committing
      committing_ = true;
    }
    commit_group(group);
    group.clear();
    // After the answers are out, not inside the commit: whoever waited on the group does not
    // also wait for the store's upkeep (SqliteCaseStore: starting a background checkpoint, or
    // finishing one, ~1.5 ms every ~15-20 groups here).
    try {
      store_.maintain();
    } catch (const std::exception& e) {
      spdlog::error("store upkeep after a group commit failed: {}", e.what());
    }
  }
}

void Engine::commit_group(std::vector<Pending>& group) {
  Answers a;
  a.write_of.assign(group.size(), SIZE_MAX);
  a.writes.reserve(group.size());
  for (std::size_t i = 0; i < group.size(); ++i)
    if (!group[i].write.events.empty()) {
      a.write_of[i] = a.writes.size();
      a.writes.push_back(std::move(group[i].write));
    }
  a.left_out.resize(group.size());
  try {
    auto outcome = store_.write_group(a.writes);
    for (std::size_t i = 0; i < group.size(); ++i)
      if (a.write_of[i] != SIZE_MAX) a.left_out[i] = outcome[a.write_of[i]];
    groups_committed_.fetch_add(1, std::memory_order_relaxed);
    writes_committed_.fetch_add(a.writes.size(), std::memory_order_relaxed);
  } catch (...) {
    a.failure = std::current_exception();
    a.left_out.assign(group.size(), "the database failed");
  }
  // First the committed state becomes the one held in memory (for a write left out or failed,
  // nothing is held, so the next read goes to the store); then the overlay lets go of what is
  // durable now. A command deciding meanwhile finds that same state in the overlay before, and
  // in the cache after: never an older one. What failed is forgotten, so the next command on
  // that case starts from what the store holds (one that built on it meanwhile is left out at
  // its commit: stale revision). Not under the decision lock: waiting for the deciding thread
  // cost the committer ~6 % of its time (up to ~1 ms a group), as the deciding thread takes
  // that lock again and again while the committer waits to be scheduled.
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (a.write_of[i] == SIZE_MAX) continue;
    if (a.left_out[i].empty()) committed_.put(group[i].state);
    else committed_.invalidate(group[i].state->case_id);
  }
  {
    std::lock_guard lock(overlay_mutex_);
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (a.write_of[i] == SIZE_MAX) continue;
      const std::shared_ptr<const CaseState>& state = group[i].state;
      // A later command on the case may have replaced the overlay's state already: keep that one.
      auto it = overlay_.find(state->case_id);
      if (it != overlay_.end() && (!a.left_out[i].empty() || it->second == state)) overlay_.erase(it);
    }
  }
  if (a.failure) {
    try {
      std::rethrow_exception(a.failure);
    } catch (const std::exception& e) {
      spdlog::error("group commit of {} write(s) failed: {}", group.size(), e.what());
    } catch (...) {
    }
  }
  a.group = std::move(group);
  answer(a);
}

void Engine::answer(Answers& a) {
  for (std::size_t i = 0; i < a.group.size(); ++i) {
    Pending& p = a.group[i];
    const CaseState& state = *p.state;
    try {
      if (a.left_out[i].empty()) {
        if (a.write_of[i] != SIZE_MAX) {
          // The commit stands whatever a listener does: its failure is logged, the answer sent.
          std::lock_guard lock(listeners_mutex_);
          for (const auto& listener : listeners_) try {
              listener(state, a.writes[a.write_of[i]].events);
            } catch (const std::exception& e) {
              spdlog::error("a commit listener failed on case {}: {}", state.case_id, e.what());
            }
        }
        p.done(&state, p.answer_error);
      } else {
        p.done(nullptr, a.failure ? a.failure : std::make_exception_ptr(EngineError(ErrorKind::conflict, a.left_out[i])));
      }
    } catch (const std::exception& e) {
      spdlog::error("after the commit of case {}: {}", state.case_id, e.what());
    } catch (...) {
      spdlog::error("after the commit of case {}: unknown exception", state.case_id);
    }
  }
}

void Engine::open_case(const std::string& patient_id, const std::string& workflow_id, std::optional<int> version,
                       const Actor& actor, Completion done) {
  run(
      [&](Command& c) {
        auto workflow = workflows_.find(workflow_id, version);
        if (!workflow)
          throw EngineError(ErrorKind::not_found, "no workflow '" + workflow_id + "'" +
                                                      (version ? " version " + std::to_string(*version) : std::string()));
        if (patient_id.empty()) throw EngineError(ErrorKind::invalid_data, "a case needs a patient", {{"patient_id", "is required"}});
        for (const auto& plugin : workflow->plugins()) {
          std::optional<std::string> why = plugins_ ? plugins_->unavailable(plugin) : std::optional<std::string>("no plugins are loaded");
          if (why)
            throw EngineError(ErrorKind::unavailable,
                              "workflow '" + workflow->id + "' needs plugin '" + plugin + "', which is unavailable: " + *why);
        }
        c.workflow = workflow;
        c.now = clock_.now();
        c.state.case_id = new_case_id();
        c.emit(event::case_opened, "", actor.id,
               {{"workflow", workflow->id}, {"version", workflow->version}, {"patient_id", patient_id}});
        const StepDef& first = workflow->steps.front();
        c.emit(event::stage_entered, "", "system", {{"stage", first.stage}, {"repetition", workflow->stage_of(first).repeat ? 1 : 0}});
        enter(c, first, std::nullopt, std::nullopt);
      },
      [done = std::move(done), actor_id = actor.id](const CaseState* state, std::exception_ptr error) {
        if (state && !error)
          spdlog::info("case {} opened on workflow {} v{} by {}", state->case_id, state->workflow_id, state->workflow_version, actor_id);
        done(state, error);
      });
}

void Engine::submit(const std::string& case_id, const std::string& step_id, const json::object& data, const Actor& actor,
                    std::optional<std::int64_t> expected_revision, Completion done) {
  run(
      [&](Command& c) {
        c = load(case_id);
        if (expected_revision && *expected_revision != c.state.revision)
          throw EngineError(ErrorKind::conflict, "case '" + case_id + "' is at revision " + std::to_string(c.state.revision) +
                                                     ", not " + std::to_string(*expected_revision) + ": reload it and submit again");
        if (c.state.status != "active") throw EngineError(ErrorKind::conflict, "case '" + case_id + "' is " + c.state.status);
        const StepDef* step = c.workflow->find_step(step_id);
        if (!step) throw EngineError(ErrorKind::not_found, "workflow '" + c.workflow->id + "' has no step '" + step_id + "'");
        const ActiveStep* active = c.state.find_active(step_id);
        if (!active) throw EngineError(ErrorKind::conflict, "step '" + step_id + "' is not open");
        if (active->waiting)
          throw EngineError(ErrorKind::conflict, "step '" + step_id + "' opens only at " + format_rfc3339(active->opens_at.value_or(0)));
        if (step->kind == StepKind::automatic)
          throw EngineError(ErrorKind::conflict, "step '" + step_id + "' is done by plugin '" + step->plugin + "'; use retry if it failed");
        bool allowed = std::any_of(step->roles.begin(), step->roles.end(), [&](const std::string& role) {
          return std::find(actor.roles.begin(), actor.roles.end(), role) != actor.roles.end();
        });
        if (!allowed) {
          std::string roles;
          for (const auto& r : step->roles) roles += (roles.empty() ? "" : ", ") + r;
          throw EngineError(ErrorKind::forbidden, "step '" + step_id + "' may be completed only by: " + roles);
        }
        json::object clean;
        if (auto problems = workflow::validate_form(*step, data, clean); !problems.empty()) {
          std::string message = "the form of step '" + step_id + "' has " + std::to_string(problems.size()) + " problem" +
                                (problems.size() == 1 ? "" : "s");
          throw EngineError(ErrorKind::invalid_data, message, std::move(problems));
        }
        if (!step->plugin.empty()) {
          PluginDecision decision = call_plugin(c, *step, &clean);
          if (decision.status != PluginDecision::Status::ok) {
            bool refused = decision.status == PluginDecision::Status::refused;
            // The refusal or failure is history worth keeping: record it, then tell the submitter.
            c.emit(refused ? event::step_refused : event::step_failed, step_id, "plugin:" + step->plugin,
                   refused ? json::object{{"reason", decision.reason}, {"by", actor.id}} : json::object{{"error", decision.reason}});
            c.answer_error = std::make_exception_ptr(EngineError(refused ? ErrorKind::refused : ErrorKind::unavailable, decision.reason));
            return;
          }
          for (auto& [key, value] : decision.data)
            if (!clean.contains(key)) clean[key] = value;  // a plugin adds what it derived; it never overrides staff input
          c.emit(event::step_completed, step_id, actor.id, {{"data", std::move(clean)}});
          post_charges(c, *step, decision);
        } else {
          c.emit(event::step_completed, step_id, actor.id, {{"data", std::move(clean)}});
        }
        queue_messages(c, *step, "completed", std::nullopt);
        advance(c, *step);
      },
      std::move(done));
}

void Engine::close_case(const std::string& case_id, const std::string& reason, const Actor& actor, Completion done) {
  run(
      [&](Command& c) {
        c = load(case_id);
        if (c.state.status != "active") throw EngineError(ErrorKind::conflict, "case '" + case_id + "' is already " + c.state.status);
        if (reason.empty()) throw EngineError(ErrorKind::invalid_data, "closing a case needs a reason", {{"reason", "is required"}});
        c.emit(event::case_ended, "", actor.id, {{"outcome", "closed"}, {"reason", reason}});
      },
      std::move(done));
}

void Engine::retry_step(const std::string& case_id, const std::string& step_id, const Actor&, Completion done) {
  run(
      [&](Command& c) {
        c = load(case_id);
        const StepDef* step = c.workflow->find_step(step_id);
        const ActiveStep* active = c.state.find_active(step_id);
        if (!step || !active || active->waiting || step->kind != StepKind::automatic)
          throw EngineError(ErrorKind::conflict, "step '" + step_id + "' is not an open automatic step");
        run_automatic(c, *step);
      },
      std::move(done));
}

CaseState Engine::open_case(const std::string& patient_id, const std::string& workflow_id, std::optional<int> version,
                            const Actor& actor) {
  return wait([&](Completion done) { open_case(patient_id, workflow_id, version, actor, std::move(done)); });
}

CaseState Engine::submit(const std::string& case_id, const std::string& step, const json::object& data, const Actor& actor,
                         std::optional<std::int64_t> expected_revision) {
  return wait([&](Completion done) { submit(case_id, step, data, actor, expected_revision, std::move(done)); });
}

CaseState Engine::close_case(const std::string& case_id, const std::string& reason, const Actor& actor) {
  return wait([&](Completion done) { close_case(case_id, reason, actor, std::move(done)); });
}

CaseState Engine::retry_step(const std::string& case_id, const std::string& step, const Actor& actor) {
  return wait([&](Completion done) { retry_step(case_id, step, actor, std::move(done)); });
}

void Engine::advance(Command& c, const StepDef& from) {
  const Workflow& wf = *c.workflow;
  auto lookup = c.lookup();
  const workflow::Transition* taken = &from.next;
  for (const auto& branch : from.branches)
    if (branch.when && branch.when->evaluate(lookup)) {
      taken = &branch;
      break;
    }
  const workflow::StageDef& stage = wf.stage_of(from);
  const StepDef* to = taken->outcome ? nullptr : wf.find_step(taken->go_to);
  // A repetition ends when the flow leaves its stage: to a later stage, or by the default
  // completion of a repeated stage's last step. A branch's outcome ends the case at once.
  bool leaves_stage = to ? to->stage != from.stage
                         : taken == &from.next && from.index == stage.last_step && taken->outcome == workflow::Outcome::completed;
  if (stage.repeat && leaves_stage) {
    const workflow::Repeat& repeat = *stage.repeat;
    bool stop_early = repeat.until && repeat.until->evaluate(lookup);
    if (c.state.repetition < repeat.times && !stop_early) {
      const StepDef& first = wf.steps[stage.first_step];
      auto anchor = c.state.completed.find(first.id);
      std::optional<TimePoint> earliest, due_by;
      if (anchor != c.state.completed.end()) {
        if (repeat.min_interval) earliest = anchor->second + *repeat.min_interval;
        if (repeat.max_interval) due_by = anchor->second + *repeat.max_interval;
      }
      c.emit(event::stage_entered, "", "system", {{"stage", stage.id}, {"repetition", c.state.repetition + 1}});
      enter(c, first, earliest, due_by);
      return;
    }
  }
  if (!to) {
    c.emit(event::case_ended, from.id, "system", {{"outcome", workflow::to_string(*taken->outcome)}, {"reason", taken->reason}});
    return;
  }
  if (to->stage != c.state.stage)
    c.emit(event::stage_entered, "", "system", {{"stage", to->stage}, {"repetition", wf.stage_of(*to).repeat ? 1 : 0}});
  enter(c, *to, std::nullopt, std::nullopt);
}

void Engine::enter(Command& c, const StepDef& step, std::optional<TimePoint> earliest, std::optional<TimePoint> due_by) {
  TimePoint opens = c.now;
  if (step.open_delay) {
    auto after = step.open_after.empty() ? c.state.completed.end() : c.state.completed.find(step.open_after);
    TimePoint base = after != c.state.completed.end() ? after->second : c.now;
    opens = std::max(opens, base + *step.open_delay);
  }
  if (earliest) opens = std::max(opens, *earliest);
  if (opens > c.now) {
    json::object data{{"opens_at", opens}};
    if (due_by) data["due"] = *due_by;
    c.emit(event::step_waiting, step.id, "system", std::move(data));
    queue_messages(c, step, "waiting", opens);
    return;
  }
  open_step(c, step, due_by);
}

void Engine::open_step(Command& c, const StepDef& step, std::optional<TimePoint> due_by) {
  std::optional<TimePoint> due = due_by;
  if (step.due) due = due ? std::min(*due, c.now + *step.due) : c.now + *step.due;
  json::object data{{"repetition", c.state.repetition}};
  if (due) data["due"] = *due;
  c.emit(event::step_opened, step.id, "system", std::move(data));
  queue_messages(c, step, "opened", c.now);
  if (step.kind == StepKind::automatic) run_automatic(c, step);
}

void Engine::run_automatic(Command& c, const StepDef& step) {
  PluginDecision decision = call_plugin(c, step, nullptr);
  std::string actor = "plugin:" + step.plugin;
  if (decision.status == PluginDecision::Status::ok && !step.fields.empty()) {
    // The plugin's answer is outside input too: the fields the workflow declared (and reads in
    // its conditions) must have the declared types; anything else it adds is kept as it is.
    json::object declared, clean;
    for (const auto& [key, value] : decision.data)
      if (step.find_field(key)) declared[key] = value;
    auto problems = workflow::validate_form(step, declared, clean);
    if (problems.empty()) {
      for (auto& [key, value] : decision.data)
        if (!clean.contains(key)) clean[key] = std::move(value);
      decision.data = std::move(clean);
    } else {
      decision.status = PluginDecision::Status::failed;
      decision.reason = "plugin returned invalid data: " + problems.front().field + " " + problems.front().problem;
    }
  }
  if (decision.status != PluginDecision::Status::ok) {
    bool refused = decision.status == PluginDecision::Status::refused;
    c.emit(event::step_failed, step.id, actor, {{"error", decision.reason}, {"refused", refused}});
    spdlog::warn("case {} step {}: plugin {} {}", c.state.case_id, step.id, step.plugin, refused ? "refused" : "failed");
    return;
  }
  c.emit(event::step_completed, step.id, actor, {{"data", std::move(decision.data)}});
  post_charges(c, step, decision);
  queue_messages(c, step, "completed", std::nullopt);
  advance(c, step);
}

void Engine::post_charges(Command& c, const StepDef& step, const PluginDecision& decision) {
  for (const json::value& charge : decision.charges)
    if (charge.is_object()) c.emit(event::charge_posted, step.id, "plugin:" + step.plugin, charge.get_object());
}

void Engine::queue_messages(Command& c, const StepDef& step, std::string_view trigger, std::optional<TimePoint> opens_at) {
  for (const workflow::MessageDef& m : step.messages) {
    if (m.on != trigger) continue;
    if (m.when && !m.when->evaluate(c.lookup())) continue;
    const workflow::Template* t = c.workflow->find_template(m.template_name);
    if (!t) continue;  // the loader guarantees it exists
    TimePoint not_before = c.now;
    if (m.before_open && opens_at) not_before = std::max(c.now, *opens_at - *m.before_open);
    if (m.delay) not_before += *m.delay;
    // The id is the queuing event's place in the log: the same message keeps it across retries.
    std::string id = c.state.case_id + "-" + std::to_string(c.state.revision + 1);
    store::OutboxMessage message;
    message.id = id;
    message.case_id = c.state.case_id;
    message.plugin = m.via;
    message.template_name = m.template_name;
    message.recipient = m.to;
    message.address = render_template(m.address, c.state, opens_at);
    message.subject = render_template(t->subject, c.state, opens_at);
    message.body = render_template(t->body, c.state, opens_at);
    message.next_attempt_at = not_before;
    message.created_at = c.now;
    c.emit(event::message_queued, step.id, "system",
           {{"message_id", id}, {"template", m.template_name}, {"via", m.via}, {"to", m.to}, {"not_before", not_before}});
    c.messages.push_back(std::move(message));
  }
}

PluginDecision Engine::call_plugin(Command& c, const StepDef& step, const json::object* submitted) {
  std::optional<std::string> why = plugins_ ? plugins_->unavailable(step.plugin) : std::optional<std::string>("no plugins are loaded");
  if (why) return {PluginDecision::Status::failed, {}, "plugin '" + step.plugin + "' is unavailable: " + *why};
  PluginCall call{step.plugin, c.state.case_id, step.id, step.settings, c.state.data, submitted, c.state.repetition, c.now};
  try {
    return plugins_->call(call);
  } catch (const std::exception& e) {
    return {PluginDecision::Status::failed, {}, std::string("plugin '") + step.plugin + "' failed: " + e.what()};
  } catch (...) {
    return {PluginDecision::Status::failed, {}, "plugin '" + step.plugin + "' failed with an unknown error"};
  }
}

// Decides what a due timer does; false when it is stale (its step moved on since it was set).
bool Engine::decide_fire(Command& c, const store::TimerRecord& timer) {
  c = load(timer.case_id);
  const ActiveStep* active = c.state.find_active(timer.step);
  const StepDef* step = c.workflow->find_step(timer.step);
  if (!active || !step) return false;
  if (timer.kind == "open" && active->waiting && active->opens_at == timer.due) {
    open_step(c, *step, active->due);
    return true;
  }
  if (timer.kind == "overdue" && !active->waiting && active->due == timer.due && !active->overdue) {
    c.emit(event::step_overdue, step->id, "system", {{"due", timer.due}});
    return true;
  }
  return false;
}

std::size_t Engine::fire_due_timers() {
  std::size_t fired = 0;
  for (;;) {
    auto timers = store_.due_timers(clock_.now(), 256);
    if (timers.empty()) break;
    // Every timer due now is decided first, then all commit together.
    std::vector<std::future<void>> durable;
    {
      std::lock_guard lock(write_mutex_);
      for (const auto& timer : timers) {
        try {
          Command c;
          if (!decide_fire(c, timer)) continue;
          auto promise = std::make_shared<std::promise<void>>();
          durable.push_back(promise->get_future());
          queue(c, [promise](const CaseState*, std::exception_ptr error) {
            if (error) promise->set_exception(error);
            else promise->set_value();
          });
        } catch (const EngineError& e) {
          // A timer on a case whose workflow is no longer loaded stays pending; it fires once the workflow is back.
          spdlog::error("timer {} on case {} step {}: {}", timer.kind, timer.case_id, timer.step, e.what());
        }
      }
    }
    std::size_t before = fired;
    for (auto& f : durable) {
      try {
        f.get();
        ++fired;
      } catch (const std::exception& e) {
        spdlog::error("a timer's commit failed: {}", e.what());
      }
    }
    if (fired == before) break;  // only stale or unfireable timers were left
  }
  return fired;
}

std::size_t Engine::advance_clock_to(TimePoint target, VirtualClock& clock) {
  std::size_t fired = 0;
  for (;;) {
    auto next = store_.next_timer_due();
    if (!next || *next > target) break;
    // Saved before the firing commits, so after a crash the clock is never behind an event.
    clock.set(*next);
    store_.write_setting(kVirtualClockSetting, std::to_string(clock.now()));
    std::size_t count = fire_due_timers();
    fired += count;
    if (count == 0) break;
  }
  clock.set(target);
  store_.write_setting(kVirtualClockSetting, std::to_string(clock.now()));
  return fired;
}

std::shared_ptr<const CaseState> Engine::get_case(const std::string& case_id) const {
  return committed_.get(case_id, [&]() -> std::shared_ptr<const CaseState> {
    auto record = store_.read_case(case_id);
    if (!record) return nullptr;
    return std::make_shared<const CaseState>(from_json(record->state));
  });
}

std::vector<store::EventRecord> Engine::history(const std::string& case_id) const { return store_.read_events(case_id); }

}  // namespace clinicflow::engine
