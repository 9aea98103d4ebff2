// Group commit: the engine decides commands one at a time and a committer thread writes them in
// groups. These tests hold the committer inside a group (a gated store) to see what is answered
// when, what goes into one transaction, and what a failed group leaves behind.
#include "engine/engine.hpp"
#include "store/sqlite_case_store.hpp"
#include "support/temp_dir.hpp"
#include "workflow/workflow_loader.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>

using namespace clinicflow;
using namespace clinicflow::engine;
namespace json = boost::json;

namespace {

const char* const kFlow = R"toml(
id = "two_tasks"
version = 1
title = "Two tasks"

[[stage]]
id = "main"

[[step]]
id = "first"
stage = "main"
title = "First"
roles = ["nurse"]

  [[step.field]]
  name = "n"
  type = "integer"
  required = true

[[step]]
id = "second"
stage = "main"
title = "Second"
roles = ["nurse"]

  [[step.field]]
  name = "n"
  type = "integer"
  required = true
)toml";

// A task whose submission a plugin checks (while the engine decides it).
const char* const kCheckedFlow = R"toml(
id = "checked"
version = 1
title = "Checked"

[[stage]]
id = "main"

[[step]]
id = "dose"
stage = "main"
title = "Dose"
roles = ["nurse"]
plugin = "checker"

  [[step.field]]
  name = "n"
  type = "integer"
  required = true
)toml";

// The "checker" plugin, held inside its call until released: a slow plugin deciding.
class HeldPlugin final : public StepPlugins {
 public:
  std::optional<std::string> unavailable(std::string_view) const override { return std::nullopt; }
  PluginDecision call(const PluginCall&) override {
    std::unique_lock lock(mutex_);
    inside_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
    return PluginDecision{PluginDecision::Status::ok};
  }
  bool wait_until_inside() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [this] { return inside_; });
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool inside_ = false, released_ = false;
};

const Actor kNurse{"user:rn1", {"nurse"}};

// The real SQLite store, with a gate in front of write_group: while closed, the committer waits
// inside the group it took; every group's size is recorded; a group can be made to fail.
class GatedStore final : public store::CaseStore {
 public:
  explicit GatedStore(const std::filesystem::path& db) : real_({db, "full"}) {}

  void close_gate() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until the committer is inside a group (held at the closed gate).
  void wait_until_held() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return held_; });
  }
  std::vector<std::size_t> group_sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }
  std::atomic<bool> fail_next{false};

  std::vector<std::string> write_group(std::span<const store::CaseWrite> batch) override {
    {
      std::unique_lock lock(mutex_);
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_; });
      held_ = false;
      sizes_.push_back(batch.size());
    }
    if (fail_next.exchange(false)) throw store::StoreError("test: the disk is full");
    return real_.write_group(batch);
  }
  void write(std::span<const store::CaseWrite> batch) override { real_.write(batch); }
  // Upkeep: `on_maintain` (when set) runs first and may throw, as a failing checkpoint would.
  std::function<void()> on_maintain;
  void maintain() override {
    if (on_maintain) on_maintain();
    real_.maintain();
  }
  // The next read_case, once it has read the database, waits until release_read(): a read that
  // started before a commit and ends after it.
  std::atomic<bool> hold_next_read{false};
  bool wait_until_read_held() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return read_held_; });
  }
  void release_read() {
    {
      std::lock_guard lock(mutex_);
      read_released_ = true;
    }
    cv_.notify_all();
  }
  std::optional<store::CaseRecord> read_case(const std::string& id) override {
    auto record = real_.read_case(id);
    if (hold_next_read.exchange(false)) {
      std::unique_lock lock(mutex_);
      read_held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return read_released_; });
    }
    return record;
  }
  std::vector<store::EventRecord> read_events(const std::string& id) override { return real_.read_events(id); }
  std::vector<store::CaseRecord> query_cases(const store::CaseQuery& q) override { return real_.query_cases(q); }
  std::vector<store::TimerRecord> due_timers(TimePoint until, std::size_t limit) override { return real_.due_timers(until, limit); }
  std::optional<TimePoint> next_timer_due() override { return real_.next_timer_due(); }
  std::vector<store::OutboxMessage> due_messages(TimePoint now, std::size_t limit) override { return real_.due_messages(now, limit); }
  std::optional<TimePoint> next_message_due() override { return real_.next_message_due(); }
  void update_message(const store::OutboxMessage& m) override { real_.update_message(m); }
  std::vector<store::OutboxMessage> case_messages(const std::string& id) override { return real_.case_messages(id); }
  std::optional<std::string> read_setting(const std::string& key) override { return real_.read_setting(key); }
  void write_setting(const std::string& key, const std::string& value) override { real_.write_setting(key, value); }

 private:
  bool read_held_ = false, read_released_ = false;
  store::SqliteCaseStore real_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = true;
  bool held_ = false;
  std::vector<std::size_t> sizes_;
};

// One asynchronous command's answer, waited for with a timeout so a lost answer fails the test
// instead of hanging it.
struct Answer {
  std::promise<std::pair<std::optional<CaseState>, std::exception_ptr>> promise;
  std::future<std::pair<std::optional<CaseState>, std::exception_ptr>> future = promise.get_future();
  Completion done() {
    return [this](const CaseState* state, std::exception_ptr error) {
      promise.set_value({state ? std::optional<CaseState>(*state) : std::nullopt, error});
    };
  }
  bool ready() { return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
  std::pair<std::optional<CaseState>, std::exception_ptr> get() {
    REQUIRE(future.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    return future.get();
  }
};

ErrorKind kind_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const EngineError& e) {
    return e.kind();
  }
}

struct Fixture {
  testing::TempDir dir{"clinicflow-group"};
  GatedStore store{dir.path() / "test.db"};
  workflow::WorkflowSet workflows;
  VirtualClock clock{*parse_rfc3339("2026-03-02T09:00:00Z")};
  std::unique_ptr<Engine> engine;

  Fixture() {
    auto loaded = workflow::load_workflow_text(kFlow, "two_tasks.toml", {});
    REQUIRE(loaded.workflow);
    REQUIRE_FALSE(workflows.add(loaded.workflow));
    engine = std::make_unique<Engine>(store, workflows, clock);
  }
  std::string open() { return engine->open_case("p_1", "two_tasks", std::nullopt, Actor::system()).case_id; }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "commands decided while a group commits go together into the next one, answered only once durable") {
  std::vector<std::string> cases;
  for (int i = 0; i < 8; ++i) cases.push_back(open());
  auto before = store.group_sizes().size();

  store.close_gate();
  Answer first;
  engine->submit(cases[0], "first", {{"n", 0}}, kNurse, std::nullopt, first.done());
  store.wait_until_held();  // the committer holds a group of one, not yet durable
  std::vector<std::unique_ptr<Answer>> rest;
  for (int i = 1; i < 8; ++i) {
    rest.push_back(std::make_unique<Answer>());
    engine->submit(cases[i], "first", {{"n", i}}, kNurse, std::nullopt, rest.back()->done());
  }
  CHECK_FALSE(first.ready());  // nothing is answered before it is durable
  for (auto& a : rest) CHECK_FALSE(a->ready());
  store.open_gate();

  CHECK_FALSE(first.get().second);
  for (auto& a : rest) {
    auto [state, error] = a->get();
    CHECK_FALSE(error);
    REQUIRE(state);
    CHECK(state->data.contains("first"));
  }
  auto sizes = store.group_sizes();
  REQUIRE(sizes.size() == before + 2);
  CHECK(sizes[before] == 1);
  CHECK(sizes[before + 1] == 7);  // the seven decided meanwhile: one transaction
  for (const auto& id : cases) CHECK(engine->get_case(id)->data.contains("first"));
}

TEST_CASE("a group is committed and answered while the next command is still being decided") {
  // The committer must never wait for the deciding thread: here a plugin holds a decision for as
  // long as the test likes, and the group committed meanwhile is answered all the same.
  testing::TempDir dir{"clinicflow-group"};
  GatedStore store{dir.path() / "test.db"};
  workflow::WorkflowSet workflows;
  for (auto [text, name] : {std::pair{kFlow, "two_tasks.toml"}, std::pair{kCheckedFlow, "checked.toml"}}) {
    workflow::LoadContext context;
    context.plugins = std::set<std::string>{"checker"};
    auto loaded = workflow::load_workflow_text(text, name, context);
    for (const auto& e : loaded.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(loaded.workflow);
    REQUIRE_FALSE(workflows.add(loaded.workflow));
  }
  VirtualClock clock{*parse_rfc3339("2026-03-02T09:00:00Z")};
  HeldPlugin checker;
  Engine engine(store, workflows, clock, &checker);
  std::string x = engine.open_case("p_1", "two_tasks", std::nullopt, Actor::system()).case_id;
  std::string y = engine.open_case("p_2", "checked", std::nullopt, Actor::system()).case_id;

  store.close_gate();
  Answer on_x, on_y;
  engine.submit(x, "first", {{"n", 1}}, kNurse, std::nullopt, on_x.done());
  store.wait_until_held();  // the committer holds the group [x]
  std::thread deciding([&] { engine.submit(y, "dose", {{"n", 2}}, kNurse, std::nullopt, on_y.done()); });
  REQUIRE(checker.wait_until_inside());  // y's decision is under way, and stays so
  store.open_gate();
  bool answered = on_x.future.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  checker.release();
  deciding.join();
  CHECK(answered);
  CHECK_FALSE(on_x.get().second);
  CHECK_FALSE(on_y.get().second);
  CHECK(engine.get_case(x)->data.at("first").at("n") == 1);
  CHECK(engine.get_case(y)->status == "completed");
}

TEST_CASE_METHOD(Fixture, "a command on a case builds on an earlier one that is not yet durable") {
  std::string id = open();
  store.close_gate();
  Answer a, b;
  engine->submit(id, "first", {{"n", 1}}, kNurse, std::nullopt, a.done());
  store.wait_until_held();
  // "second" opens only once "first" is done: it is decided on the pending state.
  engine->submit(id, "second", {{"n", 2}}, kNurse, std::nullopt, b.done());
  CHECK_FALSE(engine->get_case(id)->data.contains("first"));  // readers see only what is durable
  store.open_gate();
  CHECK_FALSE(a.get().second);
  auto [state, error] = b.get();
  CHECK_FALSE(error);
  REQUIRE(state);
  CHECK(state->status == "completed");
  auto stored = engine->get_case(id);
  CHECK(stored->status == "completed");
  CHECK(stored->revision == state->revision);
}

TEST_CASE_METHOD(Fixture, "when a group cannot commit, each of its commands fails and nothing of it is stored") {
  std::string x = open(), y = open();
  auto x_before = engine->get_case(x)->revision;
  store.close_gate();
  Answer a, b, c;
  engine->submit(x, "first", {{"n", 1}}, kNurse, std::nullopt, a.done());
  store.wait_until_held();
  store.fail_next = true;  // the group holding only `a` fails
  store.open_gate();
  auto [state_a, error_a] = a.get();
  CHECK_FALSE(state_a);
  REQUIRE(error_a);
  CHECK_THROWS_AS(std::rethrow_exception(error_a), store::StoreError);
  CHECK(engine->get_case(x)->revision == x_before);
  CHECK_FALSE(engine->get_case(x)->data.contains("first"));

  // The failed decision is forgotten: the next command starts again from what is stored.
  engine->submit(x, "first", {{"n", 2}}, kNurse, std::nullopt, b.done());
  auto [state_b, error_b] = b.get();
  CHECK_FALSE(error_b);
  REQUIRE(state_b);
  CHECK(state_b->revision > x_before);
  CHECK(engine->get_case(x)->data.at("first").at("n") == 2);
  engine->submit(y, "first", {{"n", 3}}, kNurse, std::nullopt, c.done());
  CHECK_FALSE(c.get().second);
}

TEST_CASE_METHOD(Fixture, "a write gone stale before its group commits is left out; the rest of the group commits") {
  std::string x = open(), y = open(), z = open();
  store.close_gate();
  Answer hold, on_x, on_y, later;
  engine->submit(z, "first", {{"n", 0}}, kNurse, std::nullopt, hold.done());
  store.wait_until_held();  // the committer holds [z]; x and y wait for the next group
  engine->submit(x, "first", {{"n", 1}}, kNurse, std::nullopt, on_x.done());
  engine->submit(y, "first", {{"n", 2}}, kNurse, std::nullopt, on_y.done());
  {
    // Meanwhile another writer on the same database (as another process would) moves x on.
    store::SqliteCaseStore other_store({dir.path() / "test.db", "full"});
    Engine other(other_store, workflows, clock);
    other.submit(x, "first", {{"n", 9}}, kNurse);
  }
  store.open_gate();
  CHECK_FALSE(hold.get().second);
  auto [state_x, error_x] = on_x.get();
  CHECK_FALSE(state_x);
  CHECK(kind_of(error_x) == ErrorKind::conflict);
  CHECK_FALSE(on_y.get().second);
  CHECK(engine->get_case(y)->data.at("first").at("n") == 2);
  CHECK(engine->get_case(x)->data.at("first").at("n") == 9);  // the other writer's, untouched
  // x's stale decision is forgotten: the next command sees the other writer's commit.
  engine->submit(x, "second", {{"n", 3}}, kNurse, std::nullopt, later.done());
  CHECK_FALSE(later.get().second);
  CHECK(engine->get_case(x)->status == "completed");
}

TEST_CASE_METHOD(Fixture, "the store leaves a stale write out of the group and commits the rest") {
  std::string x = open(), y = open();
  auto x_revision = engine->get_case(x)->revision;
  auto y_revision = engine->get_case(y)->revision;
  store::SqliteCaseStore raw({dir.path() / "test.db", "full"});
  auto write_for = [&](const std::string& id, std::int64_t expected) {
    auto record = *raw.read_case(id);
    store::CaseWrite w;
    w.expected_revision = expected;
    w.projection = record;
    w.projection.revision = expected + 1;
    w.events.push_back({expected + 1, 0, "note", "", "system", {}});
    return w;
  };
  std::vector<store::CaseWrite> group{write_for(x, x_revision - 1), write_for(y, y_revision)};
  auto outcome = raw.write_group(group);
  REQUIRE(outcome.size() == 2);
  CHECK_FALSE(outcome[0].empty());  // stale: left out, with the reason
  CHECK(outcome[1].empty());
  CHECK(raw.read_case(x)->revision == x_revision);
  CHECK(raw.read_case(y)->revision == y_revision + 1);
  CHECK(raw.read_events(x).size() == static_cast<std::size_t>(x_revision));
}

TEST_CASE_METHOD(Fixture, "many threads submitting at once: every command answered, each exactly once in the history") {
  constexpr int kThreads = 8, kCases = 6;
  std::vector<std::string> cases;
  for (int i = 0; i < kThreads * kCases; ++i) cases.push_back(open());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCases; ++i) {
        const std::string& id = cases[t * kCases + i];
        try {
          engine->submit(id, "first", {{"n", t}}, kNurse);
          engine->submit(id, "second", {{"n", i}}, kNurse);
        } catch (...) {
          ++failures;
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  for (const auto& id : cases) {
    auto events = store.read_events(id);
    int first = 0, second = 0;
    for (const auto& e : events)
      if (e.type == "step_completed") (e.step == "first" ? first : second)++;
    CHECK(first == 1);
    CHECK(second == 1);
    CHECK(engine->get_case(id)->status == "completed");
  }
}

TEST_CASE_METHOD(Fixture, "drain returns once everything decided is committed and answered") {
  std::string id = open();
  store.close_gate();
  Answer a;
  engine->submit(id, "first", {{"n", 1}}, kNurse, std::nullopt, a.done());
  store.wait_until_held();
  std::atomic<bool> drained{false};
  std::thread stopper([&] {
    engine->drain();
    drained = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a wrong drain would return now
  CHECK_FALSE(drained);
  CHECK_FALSE(a.ready());
  store.open_gate();
  stopper.join();
  CHECK(drained);
  CHECK(a.ready());  // answered before drain returned
  CHECK(engine->get_case(id)->data.contains("first"));
}

TEST_CASE_METHOD(Fixture, "a read of a case that a commit overtook is answered but not kept for later reads") {
  std::string x = open();
  auto after_first = engine->submit(x, "first", {{"n", 1}}, kNurse).revision;
  // A server started on this database holds nothing in memory yet: its first read of x goes to
  // the store, and is held there while "second" commits. It may answer what it read, but must
  // not keep it over the state the commit left.
  engine.reset();
  engine = std::make_unique<Engine>(store, workflows, clock);
  store.hold_next_read = true;
  auto slow = std::async(std::launch::async, [&] { return engine->get_case(x)->revision; });
  REQUIRE(store.wait_until_read_held());
  auto completed = engine->submit(x, "second", {{"n", 2}}, kNurse);
  CHECK(completed.status == "completed");
  store.release_read();
  CHECK(slow.get() == after_first);
  auto now = engine->get_case(x);
  CHECK(now->revision == completed.revision);
  CHECK(now->status == "completed");
}

TEST_CASE_METHOD(Fixture, "the store's upkeep runs after a group is answered, and its failure harms no command") {
  std::string id = open();
  engine->drain();
  std::mutex m;
  std::condition_variable cv;
  std::vector<bool> answered_when_maintained;  // per maintain(): was the command answered by then?
  std::atomic<bool> answered{false}, fail{false};
  store.on_maintain = [&] {
    {
      std::lock_guard lock(m);
      answered_when_maintained.push_back(answered.load());
    }
    cv.notify_all();
    if (fail) throw store::StoreError("test: the checkpoint failed");
  };
  auto wait_for_maintain = [&](std::size_t n) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return answered_when_maintained.size() >= n; });
  };

  Answer a;
  engine->submit(id, "first", {{"n", 1}}, kNurse, std::nullopt, [&](const CaseState* state, std::exception_ptr error) {
    answered = true;
    a.done()(state, error);
  });
  CHECK_FALSE(a.get().second);
  REQUIRE(wait_for_maintain(1));
  CHECK(answered_when_maintained.at(0));  // the answer went out first

  fail = true;  // logged by the committer; the next command is still committed and answered
  Answer b;
  engine->submit(id, "second", {{"n", 2}}, kNurse, std::nullopt, b.done());
  auto [state, error] = b.get();
  CHECK_FALSE(error);
  REQUIRE(state);
  CHECK(state->status == "completed");
  REQUIRE(wait_for_maintain(2));
  engine->drain();
  CHECK(engine->get_case(id)->status == "completed");
}
