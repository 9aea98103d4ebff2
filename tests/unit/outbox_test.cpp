// The transactional outbox: messages are queued by the engine in the same write as the event that
// causes them, rendered from their template, and delivered by the OutboxDispatcher through a
// messaging plugin (a fake, and the real test_messenger through the plugin host) with retries and
// exponential backoff, exactly once per successful delivery even across restarts.
#include "support/temp_dir.hpp"
#include "app/runtime.hpp"
#include "engine/engine.hpp"
#include "engine/outbox_dispatcher.hpp"
#include "plugins/plugin_host.hpp"
#include "store/sqlite_case_store.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace clinicflow;
using namespace clinicflow::engine;
namespace json = boost::json;

namespace {

constexpr Duration kSecond = 1000;
constexpr Duration kMinute = 60 * kSecond;
constexpr Duration kHour = 60 * kMinute;
constexpr Duration kDay = 24 * kHour;
const TimePoint kStart = *parse_rfc3339("2026-03-02T09:00:00Z");
const Actor kFrontdesk{"user:fd1", {"frontdesk"}};
const Actor kNurse{"user:rn1", {"nurse"}};

using clinicflow::testing::TempDir;

// The real SQLite store, with a record of every write batch and switches to make a write or an
// outcome update fail as a crash at that point would.
class RecordingStore final : public store::CaseStore {
 public:
  explicit RecordingStore(const std::filesystem::path& db) : real_({db, "full"}) {}

  struct Batch {
    std::vector<std::string> events;    // "type:step"
    std::vector<std::string> messages;  // outbox ids
  };
  std::vector<Batch> batches;
  bool fail_writes = false;
  bool fail_updates = false;

  void write(std::span<const store::CaseWrite> batch) override {
    if (fail_writes) throw store::StoreError("test: the disk is full");
    real_.write(batch);
    Batch b;
    for (const auto& w : batch) {
      for (const auto& e : w.events) b.events.push_back(e.type + ":" + e.step);
      for (const auto& m : w.messages) b.messages.push_back(m.id);
    }
    batches.push_back(std::move(b));
  }
  std::optional<store::CaseRecord> read_case(const std::string& id) override { return real_.read_case(id); }
  std::vector<store::EventRecord> read_events(const std::string& id) override { return real_.read_events(id); }
  std::vector<store::CaseRecord> query_cases(const store::CaseQuery& q) override { return real_.query_cases(q); }
  std::vector<store::TimerRecord> due_timers(TimePoint until, std::size_t limit) override { return real_.due_timers(until, limit); }
  std::optional<TimePoint> next_timer_due() override { return real_.next_timer_due(); }
  std::vector<store::OutboxMessage> due_messages(TimePoint now, std::size_t limit) override { return real_.due_messages(now, limit); }
  std::optional<TimePoint> next_message_due() override { return real_.next_message_due(); }
  void update_message(const store::OutboxMessage& m) override {
    if (fail_updates) throw store::StoreError("test: the process died before recording the outcome");
    real_.update_message(m);
  }
  std::vector<store::OutboxMessage> case_messages(const std::string& id) override { return real_.case_messages(id); }
  std::optional<std::string> read_setting(const std::string& key) override { return real_.read_setting(key); }
  void write_setting(const std::string& key, const std::string& value) override { real_.write_setting(key, value); }

 private:
  store::SqliteCaseStore real_;
};

// Step plugins for a workflow that only sends messages: the messaging plugins it names exist.
class MessagingOnly final : public StepPlugins {
 public:
  std::set<std::string> available{"fake_sms"};
  std::optional<std::string> unavailable(std::string_view plugin) const override {
    if (available.count(std::string(plugin))) return std::nullopt;
    return "not loaded";
  }
  PluginDecision call(const PluginCall&) override { throw std::logic_error("no step plugin should be called"); }
};

// A messaging channel in the test: records each attempt, answers as scripted.
struct FakeChannel {
  struct Attempt {
    std::string id;
    int attempt;
    std::string plugin, recipient, address, subject, body;
  };
  std::vector<Attempt> attempts;
  std::function<DeliveryAttempt(const store::OutboxMessage&, int)> answer = [](const store::OutboxMessage&, int) {
    return DeliveryAttempt{DeliveryAttempt::Status::delivered, ""};
  };

  Deliver deliver() {
    return [this](const store::OutboxMessage& m, int attempt) {
      attempts.push_back({m.id, attempt, m.plugin, m.recipient, m.address, m.subject, m.body});
      return answer(m, attempt);
    };
  }
};

const char* const kMessageFlow = R"toml(
id = "message_flow"
version = 1
title = "Messages"

[template.confirm]
subject = "Intake done for {{ case.patient_id }}"
body = "Case {{case.id}}: systolic {{intake.systolic}}, consent {{intake.consent}}, dose {{intake.dose_mg}} mg, note {{intake.note}}."

[template.reminder]
subject = "Your session"
body = "Your session opens at {{opens_at}}."

[template.opened]
subject = "Session open"
body = "Repetition {{case.repetition}}, opened at {{opens_at}}"

[[stage]]
id = "main"

[[step]]
id = "intake"
stage = "main"
roles = ["nurse"]

  [[step.field]]
  name = "systolic"
  type = "integer"
  required = true

  [[step.field]]
  name = "consent"
  type = "boolean"

  [[step.field]]
  name = "dose_mg"
  type = "number"

  [[step.field]]
  name = "note"
  type = "string"

  [[step.field]]
  name = "email"
  type = "string"

  [[step.field]]
  name = "notify_support"
  type = "boolean"

  [[step.message]]
  template = "confirm"
  via = "fake_sms"
  to = "patient"
  address = "mailto:{{intake.email}}"

  [[step.message]]
  template = "confirm"
  via = "fake_sms"
  to = "support_person"
  when = "notify_support"

[[step]]
id = "session"
stage = "main"
roles = ["nurse"]
delay = "2d"

  [[step.message]]
  on = "waiting"
  template = "reminder"
  via = "fake_sms"
  to = "patient"
  before_open = "1d"

  [[step.message]]
  on = "opened"
  template = "opened"
  via = "fake_sms"
  to = "patient"
  delay = "30m"
)toml";

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) text.replace(pos, from.size(), to);
  return text;
}

workflow::LoadContext context(const std::set<std::string>& plugins) {
  workflow::LoadContext c;
  c.roles = std::set<std::string>{"frontdesk", "nurse"};
  c.plugins = plugins;
  return c;
}

std::shared_ptr<const workflow::Workflow> load(const std::string& text, const std::set<std::string>& plugins) {
  auto result = workflow::load_workflow_text(text, "message_flow.toml", context(plugins));
  for (const auto& e : result.errors) UNSCOPED_INFO(e.to_string());
  REQUIRE(result.workflow);
  return result.workflow;
}

struct Fixture {
  TempDir dir;
  RecordingStore store{dir.path() / "test.db"};
  workflow::WorkflowSet workflows;
  VirtualClock clock{kStart};
  MessagingOnly plugins;
  Engine engine{store, workflows, clock, &plugins};
  FakeChannel channel;

  Fixture() { REQUIRE_FALSE(workflows.add(load(kMessageFlow, {"fake_sms"}))); }

  CaseState open() { return engine.open_case("patient-7", "message_flow", std::nullopt, kFrontdesk); }

  CaseState intake(const std::string& case_id, json::object extra = {}) {
    json::object data{{"systolic", 128}, {"consent", true}, {"dose_mg", 35}, {"note", "calm"}, {"email", "pat@example.org"}};
    for (auto& [k, v] : extra) data[k] = v;
    return engine.submit(case_id, "intake", data, kNurse);
  }

  const store::OutboxMessage* message(const std::vector<store::OutboxMessage>& all, const std::string& template_name,
                                      const std::string& to) {
    for (const auto& m : all)
      if (m.template_name == template_name && m.recipient == to) return &m;
    return nullptr;
  }

  store::OutboxMessage row(const std::string& case_id, const std::string& id) {
    for (auto& m : store.case_messages(case_id))
      if (m.id == id) return m;
    FAIL("no outbox message " << id);
    return {};
  }

  std::vector<store::EventRecord> events_of_type(const std::string& case_id, const std::string& type) {
    std::vector<store::EventRecord> out;
    for (auto& e : engine.history(case_id))
      if (e.type == type) out.push_back(e);
    return out;
  }
};

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

// ----------------------------------------------------------------------------------- queuing

TEST_CASE_METHOD(Fixture, "a message is queued in the same write as the step's completion, rendered from its template") {
  CaseState state = open();
  CHECK(store.case_messages(state.case_id).empty());  // nothing on open
  std::size_t before = store.batches.size();
  state = intake(state.case_id);

  // One command, one write: the completion, the queued messages and their outbox rows together.
  REQUIRE(store.batches.size() == before + 1);
  const auto& batch = store.batches.back();
  CHECK(batch.events == std::vector<std::string>{"step_completed:intake", "message_queued:intake", "step_waiting:session",
                                                 "message_queued:session"});
  auto queued = events_of_type(state.case_id, "message_queued");
  REQUIRE(queued.size() == 2);
  CHECK(batch.messages == std::vector<std::string>{queued[0].data.at("message_id").as_string().c_str(),
                                                   queued[1].data.at("message_id").as_string().c_str()});

  // The message's id is its queuing event's place in the log: case id and sequence number.
  std::string confirm_id = state.case_id + "-" + std::to_string(queued[0].seq);
  CHECK(json::serialize(queued[0].data) == json::serialize(json::object{{"message_id", confirm_id},
                                                                        {"template", "confirm"},
                                                                        {"via", "fake_sms"},
                                                                        {"to", "patient"},
                                                                        {"not_before", kStart}}));
  CHECK(queued[0].actor == "system");

  auto rows = store.case_messages(state.case_id);
  REQUIRE(rows.size() == 2);
  const store::OutboxMessage* confirm = message(rows, "confirm", "patient");
  REQUIRE(confirm);
  CHECK(confirm->id == confirm_id);
  CHECK(confirm->case_id == state.case_id);
  CHECK(confirm->plugin == "fake_sms");
  CHECK(confirm->status == "pending");
  CHECK(confirm->attempts == 0);
  CHECK(confirm->next_attempt_at == kStart);
  CHECK(confirm->created_at == kStart);
  CHECK(confirm->last_error.empty());
  CHECK_FALSE(confirm->delivered_at);
  CHECK(confirm->address == "mailto:pat@example.org");
  CHECK(confirm->subject == "Intake done for patient-7");
  CHECK(confirm->body == "Case " + state.case_id + ": systolic 128, consent yes, dose 35 mg, note calm.");
}

// Guards a fixed bug: fractional numbers were written as "7.25E1" and "2.5E-1".
TEST_CASE_METHOD(Fixture, "placeholders are written plainly: numbers without exponent or trailing zeros, yes/no, empty when absent",
                 "[outbox]") {
  CaseState state = intake(open().case_id, {{"dose_mg", 72.5}, {"consent", false}, {"note", ""}});
  auto rows = store.case_messages(state.case_id);
  const auto* confirm = message(rows, "confirm", "patient");
  REQUIRE(confirm);
  CHECK(confirm->body == "Case " + state.case_id + ": systolic 128, consent no, dose 72.5 mg, note .");
  state = intake(open().case_id, {{"dose_mg", 0.25}});
  rows = store.case_messages(state.case_id);
  confirm = message(rows, "confirm", "patient");
  REQUIRE(confirm);
  CHECK(confirm->body == "Case " + state.case_id + ": systolic 128, consent yes, dose 0.25 mg, note calm.");
}

TEST_CASE_METHOD(Fixture, "a failed write queues nothing: no event, no outbox row") {
  CaseState state = open();
  store.fail_writes = true;
  CHECK_THROWS_AS(intake(state.case_id), store::StoreError);
  store.fail_writes = false;
  CHECK(store.case_messages(state.case_id).empty());
  CHECK(events_of_type(state.case_id, "message_queued").empty());
  CHECK(engine.get_case(state.case_id)->revision == state.revision);
  // The command can simply be repeated.
  intake(state.case_id);
  CHECK(store.case_messages(state.case_id).size() == 2);
}

TEST_CASE_METHOD(Fixture, "a message whose condition is false is not queued") {
  SECTION("false") {
    CaseState state = intake(open().case_id, {{"notify_support", false}});
    auto rows = store.case_messages(state.case_id);
    CHECK(rows.size() == 2);
    CHECK_FALSE(message(rows, "confirm", "support_person"));
  }
  SECTION("absent") {
    CaseState state = intake(open().case_id);
    CHECK_FALSE(message(store.case_messages(state.case_id), "confirm", "support_person"));
  }
  SECTION("true: queued next to the patient's, with its own id") {
    CaseState state = intake(open().case_id, {{"notify_support", true}});
    auto rows = store.case_messages(state.case_id);
    CHECK(rows.size() == 3);
    const auto* patient = message(rows, "confirm", "patient");
    const auto* support = message(rows, "confirm", "support_person");
    REQUIRE(patient);
    REQUIRE(support);
    CHECK(patient->id != support->id);
    CHECK(support->address.empty());  // no address template
    CHECK(support->body == patient->body);
  }
}

TEST_CASE_METHOD(Fixture, "before_open schedules a message ahead of a waiting step's opening - delay after the moment it is queued") {
  CaseState state = intake(open().case_id);
  const TimePoint opens = kStart + 2 * kDay;
  auto waiting_rows = store.case_messages(state.case_id);
  const auto* reminder = message(waiting_rows, "reminder", "patient");
  REQUIRE(reminder);
  CHECK(reminder->next_attempt_at == opens - kDay);
  CHECK(reminder->body == "Your session opens at " + format_rfc3339(opens) + ".");
  CHECK(reminder->body == "Your session opens at 2026-03-04T09:00:00Z.");
  auto queued = events_of_type(state.case_id, "message_queued");
  REQUIRE(queued.size() == 2);
  CHECK(queued[1].step == "session");
  CHECK(queued[1].data.at("not_before").as_int64() == opens - kDay);

  // The step opens on its timer; the "opened" message goes 30 minutes later.
  engine.advance_clock_to(opens + kHour, clock);
  auto rows = store.case_messages(state.case_id);
  const auto* opened = message(rows, "opened", "patient");
  REQUIRE(opened);
  CHECK(opened->created_at == opens);
  CHECK(opened->next_attempt_at == opens + 30 * kMinute);
  CHECK(opened->body == "Repetition 0, opened at " + format_rfc3339(opens));
}

// ----------------------------------------------------------------------------------- delivery

TEST_CASE_METHOD(Fixture, "dispatch delivers the messages that are due, and not those that are not yet") {
  CaseState state = intake(open().case_id);
  OutboxDispatcher dispatcher(store, clock, channel.deliver(), {4, 30 * kSecond, kHour});
  CHECK(dispatcher.dispatch_due() == 1);
  REQUIRE(channel.attempts.size() == 1);
  const auto& a = channel.attempts[0];
  CHECK(a.attempt == 1);
  CHECK(a.plugin == "fake_sms");
  CHECK(a.recipient == "patient");
  CHECK(a.address == "mailto:pat@example.org");
  CHECK(a.subject == "Intake done for patient-7");

  auto rows = store.case_messages(state.case_id);
  const auto* confirm = message(rows, "confirm", "patient");
  const auto* reminder = message(rows, "reminder", "patient");
  REQUIRE(confirm);
  REQUIRE(reminder);
  CHECK(a.id == confirm->id);
  CHECK(confirm->status == "delivered");
  CHECK(confirm->attempts == 1);
  CHECK(confirm->delivered_at == kStart);
  CHECK(reminder->status == "pending");
  CHECK(reminder->attempts == 0);

  clock.set(kStart + kDay - 1);
  CHECK(dispatcher.dispatch_due() == 0);
  clock.set(kStart + kDay);
  CHECK(dispatcher.dispatch_due() == 1);
  REQUIRE(channel.attempts.size() == 2);
  CHECK(channel.attempts[1].id == reminder->id);
  CHECK(row(state.case_id, reminder->id).status == "delivered");
  CHECK(row(state.case_id, reminder->id).delivered_at == kStart + kDay);

  // Delivered is final: never attempted again, however much time passes.
  clock.set(kStart + 30 * kDay);
  CHECK(dispatcher.dispatch_due() == 0);
  CHECK(channel.attempts.size() == 2);
  CHECK(store.next_message_due() == std::nullopt);
}

TEST_CASE_METHOD(Fixture, "a temporary failure is retried with exponential backoff, with the same id, until the attempt limit") {
  CaseState state = intake(open().case_id);
  channel.answer = [](const store::OutboxMessage&, int attempt) {
    return DeliveryAttempt{DeliveryAttempt::Status::retry, "gateway busy (attempt " + std::to_string(attempt) + ")"};
  };
  OutboxDispatcher dispatcher(store, clock, channel.deliver(), {4, 30 * kSecond, kHour});
  const std::string id = message(store.case_messages(state.case_id), "confirm", "patient")->id;

  TimePoint t = kStart;
  const Duration waits[] = {30 * kSecond, 60 * kSecond, 120 * kSecond};
  for (int attempt = 1; attempt <= 3; ++attempt) {
    INFO("attempt " << attempt);
    CHECK(dispatcher.dispatch_due() == 1);
    auto m = row(state.case_id, id);
    CHECK(m.status == "pending");
    CHECK(m.attempts == attempt);
    CHECK(m.next_attempt_at == t + waits[attempt - 1]);
    CHECK(m.last_error == "gateway busy (attempt " + std::to_string(attempt) + ")");
    CHECK_FALSE(m.delivered_at);
    clock.set(m.next_attempt_at - 1);
    CHECK(dispatcher.dispatch_due() == 0);  // not before its time
    t = m.next_attempt_at;
    clock.set(t);
  }
  CHECK(dispatcher.dispatch_due() == 1);
  auto m = row(state.case_id, id);
  CHECK(m.status == "failed");
  CHECK(m.attempts == 4);
  CHECK(m.last_error == "gateway busy (attempt 4)");
  CHECK_FALSE(m.delivered_at);

  clock.set(t + 10 * kDay);  // the reminder falls due; the failed message never again
  CHECK(dispatcher.dispatch_due() == 1);
  REQUIRE(channel.attempts.size() == 5);
  for (int i = 0; i < 4; ++i) {
    CHECK(channel.attempts[i].id == id);  // the idempotency key never changes
    CHECK(channel.attempts[i].attempt == i + 1);
    CHECK(channel.attempts[i].body == channel.attempts[0].body);
  }
  CHECK(channel.attempts[4].id != id);
}

TEST_CASE_METHOD(Fixture, "the wait between attempts doubles up to max_retry, then stays there") {
  CaseState state = intake(open().case_id);
  channel.answer = [](const store::OutboxMessage&, int) { return DeliveryAttempt{DeliveryAttempt::Status::retry, "busy"}; };
  OutboxDispatcher dispatcher(store, clock, channel.deliver(), {6, 30 * kSecond, kMinute});
  const std::string id = message(store.case_messages(state.case_id), "confirm", "patient")->id;
  std::vector<Duration> waits;
  for (int attempt = 1; attempt <= 5; ++attempt) {
    REQUIRE(dispatcher.dispatch_due() == 1);
    auto m = row(state.case_id, id);
    waits.push_back(m.next_attempt_at - clock.now());
    clock.set(m.next_attempt_at);
  }
  CHECK(waits == std::vector<Duration>{30 * kSecond, kMinute, kMinute, kMinute, kMinute});
  CHECK(dispatcher.dispatch_due() == 1);
  CHECK(row(state.case_id, id).status == "failed");
  CHECK(row(state.case_id, id).attempts == 6);
}

TEST_CASE_METHOD(Fixture, "a failed answer is final at once - an exception from delivery counts as a temporary failure") {
  CaseState state = intake(open().case_id, {{"notify_support", true}});
  auto rows = store.case_messages(state.case_id);
  const std::string patient = message(rows, "confirm", "patient")->id;
  const std::string support = message(rows, "confirm", "support_person")->id;
  channel.answer = [&](const store::OutboxMessage& m, int) -> DeliveryAttempt {
    if (m.id == patient) return {DeliveryAttempt::Status::failed, "no such number"};
    throw std::runtime_error("socket closed");
  };
  OutboxDispatcher dispatcher(store, clock, channel.deliver(), {4, 30 * kSecond, kHour});
  CHECK(dispatcher.dispatch_due() == 2);
  auto p = row(state.case_id, patient);
  CHECK(p.status == "failed");
  CHECK(p.attempts == 1);
  CHECK(p.last_error == "no such number");
  auto s = row(state.case_id, support);
  CHECK(s.status == "pending");
  CHECK(s.attempts == 1);
  CHECK(s.last_error == "socket closed");
  CHECK(s.next_attempt_at == kStart + 30 * kSecond);

  clock.set(kStart + 30 * kSecond);
  CHECK(dispatcher.dispatch_due() == 1);  // only the support person's message again
  CHECK(channel.attempts.back().id == support);
}

TEST_CASE_METHOD(Fixture, "the dispatcher thread delivers what is due and stops cleanly") {
  CaseState state = intake(open().case_id);
  OutboxDispatcher dispatcher(store, clock, channel.deliver(), {4, 30 * kSecond, kHour});
  dispatcher.start();
  dispatcher.wake();
  const std::string id = message(store.case_messages(state.case_id), "confirm", "patient")->id;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (row(state.case_id, id).status == "pending" && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  dispatcher.stop();
  CHECK(row(state.case_id, id).status == "delivered");
  CHECK(channel.attempts.size() == 1);  // the reminder is not due yet
}

// ----------------------------------------------------------------------------------- real plugin, restarts

namespace {

std::unique_ptr<plugins::PluginHost> messenger_host(const std::filesystem::path& log, json::object extra = {}) {
  auto host = std::make_unique<plugins::PluginHost>(plugins::HostOptions{CLINICFLOW_TEST_PLUGIN_DIR, 10'000});
  json::object settings{{"log_path", log.string()}};
  for (auto& [k, v] : extra) settings[k] = v;
  auto errors = host->load({config::PluginConfig{"test_messenger", settings, 1, 1}}, "clinicflow.toml");
  for (const auto& e : errors) UNSCOPED_INFO(e.to_string());
  REQUIRE(errors.empty());
  return host;
}

const std::string kMessengerFlow = replace_all(kMessageFlow, "\"fake_sms\"", "\"test_messenger\"");

// Opens a case and completes its intake with the engine in its own scope, as a server that then
// stops (or crashes) before delivering anything. Returns the case id and the confirm message id.
std::pair<std::string, std::string> commit_then_stop(const std::filesystem::path& db, const std::filesystem::path& log) {
  store::SqliteCaseStore store({db, "full"});
  auto host = messenger_host(log);
  workflow::WorkflowSet workflows;
  REQUIRE_FALSE(workflows.add(load(kMessengerFlow, {"test_messenger"})));
  VirtualClock clock(kStart);
  Engine engine(store, workflows, clock, host.get());
  CaseState state = engine.open_case("patient-7", "message_flow", std::nullopt, kFrontdesk);
  state = engine.submit(state.case_id, "intake", {{"systolic", 120}, {"email", "pat@example.org"}}, kNurse);
  auto rows = store.case_messages(state.case_id);
  REQUIRE(rows.size() == 2);
  for (const auto& m : rows) REQUIRE(m.status == "pending");
  std::string id;
  for (const auto& m : rows)
    if (m.template_name == "confirm") id = m.id;
  return {state.case_id, id};
}

}  // namespace

TEST_CASE("a message committed before a stop is delivered exactly once after the restart, through the real plugin") {
  TempDir dir;
  const auto db = dir.path() / "clinicflow.db";
  const auto log = dir.path() / "messages.log";
  auto [case_id, id] = commit_then_stop(db, log);
  CHECK_FALSE(std::filesystem::exists(log));  // nothing was delivered before the stop

  // A new process: the store reopened, a new host and dispatcher.
  store::SqliteCaseStore store({db, "full"});
  auto host = messenger_host(log);
  VirtualClock clock(kStart);
  {
    OutboxDispatcher dispatcher(store, clock, app::deliver_through(*host), {4, 30 * kSecond, kHour});
    dispatcher.start();  // as the server does at start: delivers what was queued before
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto status = [&] {
      for (const auto& m : store.case_messages(case_id))
        if (m.id == id) return m.status;
      return std::string("missing");
    };
    while (status() == "pending" && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    dispatcher.stop();
    CHECK(status() == "delivered");
  }
  OutboxDispatcher again(store, clock, app::deliver_through(*host), {4, 30 * kSecond, kHour});
  CHECK(again.dispatch_due() == 0);  // nothing is delivered twice

  auto lines = lines_of(log);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == id + " 1 delivered patient mailto:pat@example.org | Intake done for patient-7 | Case " + case_id +
                        ": systolic 120, consent , dose  mg, note .");
  auto rows = store.case_messages(case_id);
  for (const auto& m : rows)
    if (m.id == id) {
      CHECK(m.attempts == 1);
      CHECK(m.delivered_at == kStart);
    }

  // The reminder, a day later, also exactly once.
  clock.set(kStart + kDay);
  CHECK(again.dispatch_due() == 1);
  CHECK(again.dispatch_due() == 0);
  CHECK(lines_of(log).size() == 2);
}

TEST_CASE("a crash after the plugin answered but before the outcome was recorded delivers again with the same id") {
  TempDir dir;
  const auto db = dir.path() / "clinicflow.db";
  const auto log = dir.path() / "messages.log";
  auto [case_id, id] = commit_then_stop(db, log);
  {
    RecordingStore store(db);
    store.fail_updates = true;  // the process dies right after the plugin answered
    auto host = messenger_host(log);
    VirtualClock clock(kStart);
    OutboxDispatcher dispatcher(store, clock, app::deliver_through(*host), {4, 30 * kSecond, kHour});
    CHECK_THROWS_AS(dispatcher.dispatch_due(), store::StoreError);
  }
  store::SqliteCaseStore store({db, "full"});
  auto host = messenger_host(log);
  VirtualClock clock(kStart);
  OutboxDispatcher dispatcher(store, clock, app::deliver_through(*host), {4, 30 * kSecond, kHour});
  CHECK(dispatcher.dispatch_due() == 1);
  CHECK(dispatcher.dispatch_due() == 0);
  auto lines = lines_of(log);
  REQUIRE(lines.size() == 2);
  // At least once, never lost, and the plugin can tell it is the same message by its id.
  CHECK(lines[0].rfind(id + " 1 delivered ", 0) == 0);
  CHECK(lines[1].rfind(id + " 1 delivered ", 0) == 0);
}

TEST_CASE("retries through the real plugin carry the same id and the attempt number - failed is final") {
  TempDir dir;
  const auto db = dir.path() / "clinicflow.db";
  const auto log = dir.path() / "messages.log";
  auto [case_id, id] = commit_then_stop(db, log);
  store::SqliteCaseStore store({db, "full"});
  VirtualClock clock(kStart);
  auto find = [&] {
    for (auto& m : store.case_messages(case_id))
      if (m.id == id) return m;
    FAIL("no message " << id);
    return store::OutboxMessage{};
  };

  SECTION("retry twice, then delivered") {
    auto host = messenger_host(log, {{"fail_first", 2}});
    OutboxDispatcher dispatcher(store, clock, app::deliver_through(*host), {5, 30 * kSecond, kHour});
    CHECK(dispatcher.dispatch_due() == 1);
    CHECK(find().next_attempt_at == kStart + 30 * kSecond);
    CHECK(find().last_error == "mail server busy");
    clock.set(kStart + 30 * kSecond);
    CHECK(dispatcher.dispatch_due() == 1);
    CHECK(find().next_attempt_at == kStart + 90 * kSecond);
    clock.set(kStart + 90 * kSecond);
    CHECK(dispatcher.dispatch_due() == 1);
    auto m = find();
    CHECK(m.status == "delivered");
    CHECK(m.attempts == 3);
    CHECK(m.last_error.empty());
    CHECK(m.delivered_at == kStart + 90 * kSecond);
    auto lines = lines_of(log);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].rfind(id + " 1 retry ", 0) == 0);
    CHECK(lines[1].rfind(id + " 2 retry ", 0) == 0);
    CHECK(lines[2].rfind(id + " 3 delivered ", 0) == 0);
  }
  SECTION("a permanent failure stops at once") {
    auto host = messenger_host(log, {{"permanent_failure", true}});
    OutboxDispatcher dispatcher(store, clock, app::deliver_through(*host), {5, 30 * kSecond, kHour});
    CHECK(dispatcher.dispatch_due() == 1);
    auto m = find();
    CHECK(m.status == "failed");
    CHECK(m.attempts == 1);
    CHECK(m.last_error == "no such mailbox");
    clock.set(kStart + kHour);
    CHECK(dispatcher.dispatch_due() == 0);
    CHECK(lines_of(log).size() == 1);
  }
}

// ----------------------------------------------------------------------------------- loader

namespace {

// Line and column (1-based) of the first occurrence of `needle` in `text`.
std::pair<int, int> locate(const std::string& text, const std::string& needle) {
  auto pos = text.find(needle);
  REQUIRE(pos != std::string::npos);
  REQUIRE(text.find(needle, pos + 1) == std::string::npos);  // unique, so the location is unambiguous
  int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
  auto line_start = text.rfind('\n', pos);
  int column = static_cast<int>(pos - (line_start == std::string::npos ? 0 : line_start + 1)) + 1;
  return {line, column};
}

}  // namespace

TEST_CASE("the loader reports every mistake in a workflow's messages, where it is") {
  const std::string text = R"toml(
id = "bad_messages"
version = 1
title = "Bad messages"

[template.reminder]
subject = "Hello {{case.patient_id}}"
body = "Weight {{intake.weight}} kg"

[template.broken]
body = "Case {{case.id"

[[stage]]
id = "main"

[[step]]
id = "intake"
stage = "main"
roles = ["nurse"]

  [[step.field]]
  name = "email"
  type = "string"

  [[step.message]]
  template = "remindr"
  via = "sms"
  to = "patient"

  [[step.message]]
  on = "opened"
  template = "reminder"
  via = "test_route"
  to = "patient"
  before_open = "1d"
  address = "{{nobody.email}}"

  [[step.message]]
  on = "closed"
  template = "reminder"
  via = "messenger"
  to = "patient"
  when = "email is present"
)toml";
  workflow::LoadContext c = context({"sms", "test_route", "messenger"});
  c.plugin_kind = [](std::string_view plugin) -> std::optional<std::string> {
    if (plugin == "test_route") return "route";
    if (plugin == "messenger") return "messaging";
    return std::nullopt;  // "sms" is configured but failed to load: its kind is unknown, not wrong
  };
  auto result = workflow::load_workflow_text(text, "bad_messages.toml", c);
  CHECK_FALSE(result.workflow);
  std::map<std::pair<int, int>, std::string> errors;
  for (const auto& e : result.errors) {
    UNSCOPED_INFO(e.to_string());
    CHECK(e.file == "bad_messages.toml");
    errors[{e.line, e.column}] = e.message;
  }
  CHECK(errors[locate(text, "\"Weight")] ==
        "placeholder {{intake.weight}} names no field (write {{step.field}}, or {{case.id}}, {{case.patient_id}}, "
        "{{case.repetition}}, {{opens_at}})");
  CHECK(errors[locate(text, "\"Case {{")] == "a placeholder opened with '{{' is never closed with '}}'");
  CHECK(errors[locate(text, "\"remindr\"")] == "no template 'remindr' (define it as [template.remindr]) — did you mean 'reminder'?");
  CHECK(errors[locate(text, "\"test_route\"")] == "plugin 'test_route' is a route plugin; messages go through a messaging plugin");
  CHECK(errors[locate(text, "\"1d\"")] == "'before_open' needs on = \"waiting\": only a waiting step has an opening time ahead");
  CHECK(errors[locate(text, "\"{{nobody.email}}\"")] ==
        "placeholder {{nobody.email}} names no field (write {{step.field}}, or {{case.id}}, {{case.patient_id}}, "
        "{{case.repetition}}, {{opens_at}})");
  CHECK(errors[locate(text, "\"closed\"")] == "'on' must be \"waiting\", \"opened\" or \"completed\", not \"closed\"");
  CHECK(errors.size() == 7);  // and nothing else: "sms" (kind unknown) and "messenger" are accepted
}

TEST_CASE("a message naming a plugin that is not configured is an error at 'via'") {
  const std::string text = replace_all(kMessageFlow, "via = \"fake_sms\"\n  to = \"support_person\"",
                                       "via = \"pager\"\n  to = \"support_person\"");
  auto result = workflow::load_workflow_text(text, "message_flow.toml", context({"fake_sms"}));
  CHECK_FALSE(result.workflow);
  REQUIRE(result.errors.size() == 1);
  auto [line, column] = locate(text, "\"pager\"");
  CHECK(result.errors[0].line == line);
  CHECK(result.errors[0].column == column);
  CHECK(result.errors[0].message ==
        "no plugin 'pager' is configured (add a [plugins.pager] table to the server configuration)");
}
