#include "support/json_object.hpp"
#include "support/temp_dir.hpp"
#include "engine/case_view.hpp"
#include "engine/committed_cases.hpp"
#include "util/lru_map.hpp"
#include "engine/engine.hpp"
#include "engine/scheduler.hpp"
#include "store/sqlite_case_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <tuple>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace clinicflow;
using namespace clinicflow::engine;
namespace json = boost::json;

namespace {

constexpr Duration kHour = 3'600'000;
constexpr Duration kDay = 24 * kHour;
const TimePoint kStart = *parse_rfc3339("2026-03-02T09:00:00Z");

const Actor kFrontdesk{"user:fd1", {"frontdesk"}};
const Actor kNurse{"user:rn1", {"nurse"}};
const Actor kPrescriber{"user:md1", {"prescriber"}};

using clinicflow::testing::TempDir;

// In-process stand-in for the plugin host: each plugin is a function.
class FakePlugins : public StepPlugins {
 public:
  std::map<std::string, std::function<PluginDecision(const PluginCall&)>> plugins;
  std::map<std::string, std::string> broken;  // name -> why it is unavailable
  std::vector<std::string> calls;

  std::optional<std::string> unavailable(std::string_view plugin) const override {
    if (auto it = broken.find(std::string(plugin)); it != broken.end()) return it->second;
    if (!plugins.count(std::string(plugin))) return "not loaded";
    return std::nullopt;
  }
  PluginDecision call(const PluginCall& call) override {
    calls.push_back(std::string(call.plugin) + ":" + std::string(call.step));
    return plugins.at(std::string(call.plugin))(call);
  }
};

workflow::LoadContext context() {
  workflow::LoadContext c;
  c.roles = std::set<std::string>{"frontdesk", "nurse", "prescriber", "billing", "admin"};
  c.plugins = std::set<std::string>{"fake_billing"};
  return c;
}

struct Fixture {
  TempDir dir;
  store::SqliteCaseStore store{{dir.path() / "test.db", "full"}};
  workflow::WorkflowSet workflows;
  VirtualClock clock{kStart};
  FakePlugins plugins;
  std::size_t cases_in_memory;
  Engine engine{store, workflows, clock, &plugins, cases_in_memory};
  std::vector<std::string> committed;  // "case_id:type" in commit order, from the listener
  std::vector<std::string> timer_mismatches;  // commits after which the stored timers were not the state's

  explicit Fixture(std::size_t held = Engine::kDefaultCasesInMemory) : cases_in_memory(held) {
    auto result = workflow::load_workflow_file(std::string(CLINICFLOW_TEST_DATA) + "/workflows/full.toml", context());
    REQUIRE(result.workflow);
    workflows.add(result.workflow);
    plugins.plugins["fake_billing"] = [](const PluginCall& call) {
      // Reads its settings and the case data it was given, as a real billing plugin would.
      bool covered = call.settings.at("fee_cents").as_int64() == 50000 && call.case_data.contains("referral");
      return PluginDecision{PluginDecision::Status::ok, {{"covered", covered}}, ""};
    };
    engine.add_listener([this](const CaseState& state, const std::vector<store::EventRecord>& events) {
      for (const auto& e : events) committed.push_back(state.case_id + ":" + e.type);
      // After every commit the stored timers are the committed state's (a write that left them
      // alone must have had nothing to change).
      std::vector<store::TimerRecord> stored;
      for (auto& t : store.due_timers(std::numeric_limits<TimePoint>::max(), 1'000'000))
        if (t.case_id == state.case_id) stored.push_back(std::move(t));
      auto pending = pending_timers(state);
      auto by_step = [](const store::TimerRecord& a, const store::TimerRecord& b) { return std::tie(a.step, a.kind) < std::tie(b.step, b.kind); };
      std::sort(stored.begin(), stored.end(), by_step);
      std::sort(pending.begin(), pending.end(), by_step);
      if (stored != pending) timer_mismatches.push_back(state.case_id + " at revision " + std::to_string(state.revision));
    });
  }

  std::vector<std::string> event_types(const std::string& case_id) {
    std::vector<std::string> out;
    for (const auto& e : engine.history(case_id)) out.push_back(e.type + (e.step.empty() ? "" : ":" + e.step));
    return out;
  }

  CaseState open() { return engine.open_case("patient-1", "test_flow", std::nullopt, kFrontdesk); }

  CaseState to_series(const std::string& case_id) {
    return engine.submit(case_id, "referral", {{"age", 40}, {"psychosis", false}}, kFrontdesk);
  }

  CaseState one_session(const std::string& case_id, int phq9 = 12) {
    engine.submit(case_id, "session", {{"systolic", 128}, {"phq9", phq9}}, kNurse);
    return engine.submit(case_id, "discharge", {{"aldrete", 10}}, kNurse);
  }

  void advance(Duration d) { engine.advance_clock_to(clock.now() + d, clock); }

  // The projection stored with the last commit equals a replay of the event log.
  void check_projection(const std::string& case_id) {
    auto stored = store.read_case(case_id);
    REQUIRE(stored);
    CaseState replayed = replay(case_id, store.read_events(case_id));
    CHECK(json::serialize(clinicflow::testing::json_object(to_json_text(replayed))) == json::serialize(stored->state));
    CHECK(stored->revision == replayed.revision);
    CHECK(timer_mismatches == std::vector<std::string>{});
  }
};

ErrorKind error_kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const EngineError& e) {
    return e.kind();
  }
  FAIL("no EngineError thrown");
  return ErrorKind::not_found;
}

}  // namespace

TEST_CASE_METHOD(Fixture, "opening a case records who opened it and opens the first step with its due time") {
  CaseState state = open();
  CHECK(state.status == "active");
  CHECK(state.stage == "intake");
  CHECK(state.revision == 3);
  REQUIRE(state.active.size() == 1);
  CHECK(state.active[0].step == "referral");
  CHECK(state.active[0].due == kStart + 2 * kDay);
  CHECK(event_types(state.case_id) == std::vector<std::string>{"case_opened", "stage_entered", "step_opened:referral"});
  auto history = engine.history(state.case_id);
  CHECK(history[0].actor == "user:fd1");
  CHECK(history[0].at == kStart);
  CHECK(history[0].data.at("patient_id") == "patient-1");
  check_projection(state.case_id);
}

TEST_CASE_METHOD(Fixture, "case ids are unique and sort in the order the cases were opened") {
  // Time first, so the indexes keyed by case id (events, timers, outbox) stay local for cases
  // opened together, and case.list pages come out oldest first.
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(open().case_id);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the time part counts milliseconds
  }
  for (int i = 0; i < 20; ++i) ids.push_back(open().case_id);  // many in one millisecond: the random part
  for (const auto& id : ids) CHECK(std::regex_match(id, std::regex("c_[0-9a-f]{24}")));
  CHECK(std::is_sorted(ids.begin(), ids.begin() + 6));
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto id_ms = std::stoll(ids.back().substr(2, 12), nullptr, 16);
  CHECK(id_ms <= now_ms);
  CHECK(id_ms > now_ms - 60'000);
}

TEST_CASE_METHOD(Fixture, "a submission is checked against the form and every problem is reported at once") {
  CaseState state = open();
  try {
    engine.submit(state.case_id, "referral", {{"psychosis", "no"}, {"diagnosis", "F99"}, {"agee", 40}, {"referred_on", "2026-02-30"}},
                  kFrontdesk);
    FAIL("accepted invalid data");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::invalid_data);
    std::map<std::string, std::string> problems;
    for (const auto& p : e.fields()) problems[p.field] = p.problem;
    CHECK(problems.size() == 5);
    CHECK(problems["age"] == "is required");
    CHECK(problems["psychosis"] == "must be true or false");
    CHECK(problems["diagnosis"] == "must be one of: F32.2, F33.2");
    CHECK(problems["referred_on"] == "must be a date written YYYY-MM-DD");
    CHECK(problems["agee"] == "is not a field of step 'referral'");
  }
  CHECK(engine.get_case(state.case_id)->revision == 3);  // nothing was written
  CHECK(error_kind_of([&] { engine.submit(state.case_id, "referral", {{"age", 131}, {"psychosis", false}}, kFrontdesk); }) ==
        ErrorKind::invalid_data);
}

TEST_CASE_METHOD(Fixture, "a branch can end the case as declined with its reason") {
  CaseState state = open();
  state = engine.submit(state.case_id, "referral", {{"age", 17}, {"psychosis", false}}, kFrontdesk);
  CHECK(state.status == "closed");
  CHECK(state.outcome == "declined");
  CHECK(state.reason == "Under 18");
  CHECK(state.active.empty());
  CHECK(plugins.calls.empty());  // the automatic step after it never ran
  CHECK(error_kind_of([&] { engine.submit(state.case_id, "referral", {{"age", 40}, {"psychosis", false}}, kFrontdesk); }) ==
        ErrorKind::conflict);
  check_projection(state.case_id);
}

TEST_CASE_METHOD(Fixture, "branches are tried in order and the first that holds is taken") {
  CaseState state = open();
  state = engine.submit(state.case_id, "referral", {{"age", 16}, {"psychosis", true}}, kFrontdesk);
  CHECK(state.reason == "Under 18");
  state = open();
  state = engine.submit(state.case_id, "referral", {{"age", 30}, {"psychosis", true}}, kFrontdesk);
  CHECK(state.reason == "Active psychosis");
}

TEST_CASE_METHOD(Fixture, "an automatic step runs its plugin with its settings and the case data, and the case moves on") {
  CaseState state = to_series(open().case_id);
  CHECK(plugins.calls == std::vector<std::string>{"fake_billing:coverage"});
  CHECK(state.data.at("coverage").at("covered") == true);
  CHECK(state.stage == "series");
  CHECK(state.repetition == 1);
  REQUIRE(state.active.size() == 1);
  CHECK(state.active[0].step == "session");
  auto history = engine.history(state.case_id);
  auto completed = std::find_if(history.begin(), history.end(),
                                [](const auto& e) { return e.type == "step_completed" && e.step == "coverage"; });
  REQUIRE(completed != history.end());
  CHECK(completed->actor == "plugin:fake_billing");
  check_projection(state.case_id);
}

TEST_CASE_METHOD(Fixture, "a plugin that throws marks the step failed, keeps the case consistent, and the step can be retried") {
  int attempts = 0;
  plugins.plugins["fake_billing"] = [&](const PluginCall&) -> PluginDecision {
    if (++attempts == 1) throw std::runtime_error("payer endpoint unreachable");
    return {PluginDecision::Status::ok, {{"covered", false}}, ""};
  };
  CaseState state = to_series(open().case_id);
  REQUIRE(state.active.size() == 1);
  CHECK(state.active[0].step == "coverage");
  CHECK(state.active[0].last_error == "plugin 'fake_billing' failed: payer endpoint unreachable");
  CHECK(event_types(state.case_id).back() == "step_failed:coverage");
  check_projection(state.case_id);

  state = engine.retry_step(state.case_id, "coverage", Actor::system());
  CHECK(state.data.at("coverage").at("covered") == false);
  CHECK(state.active.at(0).step == "session");
  check_projection(state.case_id);
}

TEST_CASE_METHOD(Fixture, "a plugin's answer is held to the fields the workflow declares") {
  plugins.plugins["fake_billing"] = [](const PluginCall&) {
    return PluginDecision{PluginDecision::Status::ok, {{"covered", "yes"}}, ""};
  };
  CaseState state = to_series(open().case_id);
  REQUIRE(state.active.size() == 1);
  CHECK(state.active[0].step == "coverage");
  CHECK(state.active[0].last_error == "plugin returned invalid data: covered must be true or false");
  CHECK_FALSE(state.data.contains("coverage"));
}

TEST_CASE_METHOD(Fixture, "a case cannot be opened while a plugin its workflow needs is unavailable") {
  plugins.broken["fake_billing"] = "failed to load: missing symbol";
  try {
    open();
    FAIL("opened");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::unavailable);
    CHECK(std::string(e.what()) ==
          "workflow 'test_flow' needs plugin 'fake_billing', which is unavailable: failed to load: missing symbol");
  }
  CHECK(committed.empty());
}

TEST_CASE_METHOD(Fixture, "a repeated stage runs its steps the set number of times with the interval between repetitions") {
  std::string id = to_series(open().case_id).case_id;
  CaseState state = one_session(id);  // repetition 1 done at kStart
  CHECK(state.stage == "series");
  CHECK(state.repetition == 2);
  REQUIRE(state.active.size() == 1);
  const ActiveStep& waiting = state.active[0];
  CHECK(waiting.step == "session");
  CHECK(waiting.waiting);
  CHECK(waiting.opens_at == kStart + 2 * kDay);  // min_interval after the first session completed
  CHECK(waiting.due == kStart + 5 * kDay);       // max_interval
  CHECK(error_kind_of([&] { engine.submit(id, "session", {{"systolic", 120}}, kNurse); }) == ErrorKind::conflict);

  advance(2 * kDay - 1);
  CHECK(engine.get_case(id)->active.at(0).waiting);
  advance(1);
  state = *engine.get_case(id);
  CHECK_FALSE(state.active.at(0).waiting);
  CHECK(state.active.at(0).repetition == 2);
  auto history = engine.history(id);
  CHECK(history.back().type == "step_opened");
  CHECK(history.back().at == kStart + 2 * kDay);  // fired exactly at its due time
  CHECK(history.back().actor == "system");

  one_session(id);
  advance(2 * kDay);
  state = one_session(id);  // the third and last repetition
  CHECK(state.stage == "follow_up");
  REQUIRE(state.active.size() == 1);
  CHECK(state.active[0].step == "follow_up_call");
  CHECK(state.active[0].waiting);
  CHECK(state.active[0].opens_at == clock.now() + 24 * kHour);  // delay after discharge
  int sessions = 0;
  for (const auto& e : engine.history(id)) sessions += e.type == "step_completed" && e.step == "session";
  CHECK(sessions == 3);
  check_projection(id);
}

TEST_CASE_METHOD(Fixture, "a repeat's until condition ends the series early") {
  std::string id = to_series(open().case_id).case_id;
  CaseState state = one_session(id, /*phq9=*/4);
  CHECK(state.stage == "follow_up");
  CHECK(state.active.at(0).step == "follow_up_call");
}

TEST_CASE_METHOD(Fixture, "a late repetition is marked overdue at its max interval") {
  std::string id = to_series(open().case_id).case_id;
  one_session(id);
  advance(5 * kDay);
  CaseState state = *engine.get_case(id);
  REQUIRE(state.active.size() == 1);
  CHECK_FALSE(state.active[0].waiting);
  CHECK(state.active[0].overdue);
  auto types = event_types(id);
  CHECK(types[types.size() - 2] == "step_opened:session");
  CHECK(types.back() == "step_overdue:session");
}

TEST_CASE_METHOD(Fixture, "a step past its due time is marked overdue once, and stays open") {
  CaseState state = open();
  advance(2 * kDay - 1);
  CHECK_FALSE(engine.get_case(state.case_id)->active.at(0).overdue);
  advance(3 * kDay);
  state = *engine.get_case(state.case_id);
  CHECK(state.active.at(0).overdue);
  CHECK(event_types(state.case_id).back() == "step_overdue:referral");
  CHECK(engine.history(state.case_id).back().at == kStart + 2 * kDay);
  advance(10 * kDay);
  CHECK(engine.history(state.case_id).size() == 4);  // not marked twice
  json::object view = clinicflow::testing::json_object(case_view_json(state, *engine.workflow_of(state)));
  CHECK(view.at("open_tasks").at(0).at("overdue") == true);
  CHECK(view.at("open_tasks").at(0).at("due") == "2026-03-04T09:00:00Z");
  check_projection(state.case_id);
}

TEST_CASE_METHOD(Fixture, "a delayed step opens after its delay; a branch leads to an urgent task") {
  std::string id = to_series(open().case_id).case_id;
  one_session(id, 4);  // leaves the series through `until`
  TimePoint discharged = clock.now();
  advance(24 * kHour);
  CaseState state = *engine.get_case(id);
  CHECK_FALSE(state.active.at(0).waiting);
  CHECK(state.active.at(0).due == discharged + 24 * kHour + 48 * kHour);
  state = engine.submit(id, "follow_up_call", {{"item9", 1}}, kNurse);
  CHECK(state.active.at(0).step == "urgent_review");
  CHECK(error_kind_of([&] { engine.submit(id, "urgent_review", {{"plan", "call today"}}, kNurse); }) == ErrorKind::forbidden);
  state = engine.submit(id, "urgent_review", {{"plan", "call today"}}, kPrescriber);
  CHECK(state.status == "completed");
  CHECK(state.outcome == "completed");
  check_projection(id);
}

TEST_CASE_METHOD(Fixture, "the default transition can complete the case") {
  std::string id = to_series(open().case_id).case_id;
  one_session(id, 4);
  advance(24 * kHour);
  CaseState state = engine.submit(id, "follow_up_call", {{"item9", 0}}, kNurse);
  CHECK(state.status == "completed");
  CHECK(state.active.empty());
}

TEST_CASE_METHOD(Fixture, "a submit against a stale revision is rejected, never merged") {
  CaseState state = open();
  std::int64_t seen = state.revision;
  CHECK(error_kind_of([&] { engine.submit(state.case_id, "referral", {{"age", 40}, {"psychosis", false}}, kFrontdesk, seen - 1); }) ==
        ErrorKind::conflict);
  state = engine.submit(state.case_id, "referral", {{"age", 40}, {"psychosis", false}}, kFrontdesk, seen);
  CHECK(state.revision > seen);
  // A second client that also saw `seen` now loses.
  try {
    engine.submit(state.case_id, "session", {{"systolic", 120}}, kNurse, seen);
    FAIL("stale revision accepted");
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::conflict);
    CHECK(std::string(e.what()).find("is at revision " + std::to_string(state.revision)) != std::string::npos);
  }
}

TEST_CASE_METHOD(Fixture, "only the step's roles may complete it, and only while it is open") {
  CaseState state = open();
  CHECK(error_kind_of([&] { engine.submit(state.case_id, "referral", {{"age", 40}, {"psychosis", false}}, kNurse); }) ==
        ErrorKind::forbidden);
  CHECK(error_kind_of([&] { engine.submit(state.case_id, "session", {{"systolic", 120}}, kNurse); }) == ErrorKind::conflict);
  CHECK(error_kind_of([&] { engine.submit(state.case_id, "nope", {}, kNurse); }) == ErrorKind::not_found);
  CHECK(error_kind_of([&] { engine.submit("c_missing", "referral", {}, kNurse); }) == ErrorKind::not_found);
  CHECK(engine.get_case(state.case_id)->revision == 3);
}

TEST_CASE_METHOD(Fixture, "closing a case needs a reason and ends every open step") {
  CaseState state = open();
  CHECK(error_kind_of([&] { engine.close_case(state.case_id, "", kFrontdesk); }) == ErrorKind::invalid_data);
  state = engine.close_case(state.case_id, "Patient moved away", kFrontdesk);
  CHECK(state.status == "closed");
  CHECK(state.outcome == "closed");
  CHECK(state.reason == "Patient moved away");
  CHECK(state.active.empty());
  CHECK(store.due_timers(INT64_MAX, 10).empty());  // its overdue timer went with it
  CHECK(error_kind_of([&] { engine.close_case(state.case_id, "again", kFrontdesk); }) == ErrorKind::conflict);
}

TEST_CASE_METHOD(Fixture, "a running case stays on its workflow version; new cases take the newest") {
  std::string v1_case = open().case_id;
  auto text = [] {
    std::ifstream in(std::string(CLINICFLOW_TEST_DATA) + "/workflows/full.toml");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }();
  text.replace(text.find("version = 1"), 11, "version = 2");
  text.replace(text.find("due = \"2d\""), 10, "due = \"1d\"");
  auto v2 = workflow::load_workflow_text(text, "full_v2.toml", context());
  REQUIRE(v2.workflow);
  workflows.add(v2.workflow);
  CaseState v2_case = open();
  CHECK(v2_case.workflow_version == 2);
  CHECK(v2_case.active.at(0).due == kStart + kDay);
  CaseState old = *engine.get_case(v1_case);
  CHECK(old.workflow_version == 1);
  CHECK(engine.workflow_of(old)->version == 1);
  CHECK(old.active.at(0).due == kStart + 2 * kDay);
}

TEST_CASE_METHOD(Fixture, "listeners see every commit in order") {
  CaseState a = open();
  CaseState b = open();
  engine.submit(a.case_id, "referral", {{"age", 17}, {"psychosis", false}}, kFrontdesk);
  REQUIRE(committed.size() == 8);
  CHECK(committed[0] == a.case_id + ":case_opened");
  CHECK(committed[3] == b.case_id + ":case_opened");
  CHECK(committed[6] == a.case_id + ":step_completed");
  CHECK(committed[7] == a.case_id + ":case_ended");
}

TEST_CASE("timers that fell due while the server was down fire at restart, in due order, exactly once") {
  TempDir dir;
  auto db = dir.path() / "restart.db";
  workflow::WorkflowSet workflows;
  workflows.add(workflow::load_workflow_file(std::string(CLINICFLOW_TEST_DATA) + "/workflows/full.toml", context()).workflow);
  FakePlugins plugins;
  plugins.plugins["fake_billing"] = [](const PluginCall&) { return PluginDecision{PluginDecision::Status::ok, {{"covered", true}}, ""}; };
  std::vector<std::string> ids;
  {
    store::SqliteCaseStore store({db, "full"});
    VirtualClock clock(kStart);
    Engine engine(store, workflows, clock, &plugins);
    for (int i = 0; i < 3; ++i) {
      ids.push_back(engine.open_case("p" + std::to_string(i), "test_flow", std::nullopt, kFrontdesk).case_id);
      clock.set(clock.now() + kHour);  // referral due times: start+2d, +2d1h, +2d2h
    }
  }  // "server stops"
  store::SqliteCaseStore store({db, "full"});
  CHECK(store.due_timers(INT64_MAX, 10).size() == 3);
  VirtualClock clock(kStart + 10 * kDay);  // it comes back long after every due time
  Engine engine(store, workflows, clock, &plugins);
  std::vector<std::string> order;
  engine.add_listener([&](const CaseState& s, const std::vector<store::EventRecord>& events) {
    for (const auto& e : events) order.push_back(s.case_id + ":" + e.type);
  });
  CHECK(engine.fire_due_timers() == 3);
  CHECK(order == std::vector<std::string>{ids[0] + ":step_overdue", ids[1] + ":step_overdue", ids[2] + ":step_overdue"});
  CHECK(engine.fire_due_timers() == 0);
  for (const auto& id : ids) {
    auto history = engine.history(id);
    CHECK(std::count_if(history.begin(), history.end(), [](const auto& e) { return e.type == "step_overdue"; }) == 1);
  }
  CHECK(store.due_timers(INT64_MAX, 10).empty());
}

TEST_CASE("the virtual clock continues where it stopped") {
  TempDir dir;
  workflow::WorkflowSet workflows;
  store::SqliteCaseStore store({dir.path() / "clock.db", "full"});
  VirtualClock clock(kStart);
  Engine engine(store, workflows, clock);
  engine.advance_clock_to(kStart + kDay, clock);
  CHECK(clock.now() == kStart + kDay);
  CHECK(store.read_setting(Engine::kVirtualClockSetting) == std::to_string(kStart + kDay));
  engine.advance_clock_to(kStart, clock);  // never backwards
  CHECK(clock.now() == kStart + kDay);
}

TEST_CASE_METHOD(Fixture, "the case view's text is JSON whose task schemas are the loaded ones, pasted or not") {
  std::string id = to_series(open().case_id).case_id;
  std::vector<CaseState> states{*engine.get_case(id), one_session(id)};
  advance(24 * kHour);
  states.push_back(*engine.get_case(id));
  CaseState odd = states.back();
  odd.data["free_text"] = json::object{{"note", "said \"stop\" \\ ünï\n\t\x01"}};
  odd.reason = "closed: \"why\"";
  // Two open tasks and two timers at once (no shipped step order gives that), to render lists.
  ActiveStep task = odd.active.front(), timer = task;
  task.waiting = false;
  task.due = clock.now();
  timer.waiting = true;
  timer.opens_at = clock.now() + kHour;
  odd.active = {task, timer, task, timer};
  states.push_back(odd);

  auto wf = engine.workflow_of(states.front());
  workflow::Workflow unpasted = *wf;  // as if built in code: no serialized schemas
  for (auto& step : unpasted.steps) step.schema_json.clear();
  bool saw_timer = false;
  for (const CaseState& state : states) {
    INFO("revision " << state.revision);
    std::string text = case_view_json(state, *wf);
    CHECK(case_view_json(state, unpasted) == text);
    json::error_code ec;
    json::value view = json::parse(text, ec);
    REQUIRE_FALSE(ec);
    const json::array& tasks = view.at("open_tasks").as_array();
    const json::array& timers = view.at("timers").as_array();
    auto waiting = std::count_if(state.active.begin(), state.active.end(), [](const ActiveStep& a) { return a.waiting; });
    CHECK(timers.size() == static_cast<std::size_t>(waiting));
    CHECK(tasks.size() == state.active.size() - static_cast<std::size_t>(waiting));
    saw_timer = saw_timer || !timers.empty();
    for (const auto& task : tasks) CHECK(task.at("schema") == json::value(wf->find_step(task.at("step").as_string())->schema));
    CHECK(view.at("data") == json::value(state.data));
    CHECK(view.at("revision") == state.revision);
    if (!state.reason.empty()) CHECK(view.at("reason") == state.reason.c_str());
  }
  CHECK(saw_timer);
}

TEST_CASE_METHOD(Fixture, "the case view gives clients each open task's form as JSON Schema") {
  CaseState state = open();
  json::object view = clinicflow::testing::json_object(case_view_json(state, *engine.workflow_of(state)));
  CHECK(view.at("status") == "active");
  CHECK(view.at("revision") == 3);
  const json::object& task = view.at("open_tasks").at(0).as_object();
  CHECK(task.at("step") == "referral");
  CHECK(task.at("roles") == json::array{"frontdesk"});
  const json::object& schema = task.at("schema").as_object();
  CHECK(schema.at("type") == "object");
  CHECK(schema.at("required") == json::array{"age", "psychosis"});
  CHECK(schema.at("properties").at("age") ==
        json::value{{"type", "integer"}, {"minimum", 0}, {"maximum", 130}, {"title", "age"}, {"description", "(unit: years)"}});
  CHECK(schema.at("properties").at("diagnosis").at("enum") == json::array{"F32.2", "F33.2"});
  CHECK(schema.at("properties").at("referred_on").at("format") == "date");
}

TEST_CASE("on the real clock the scheduler fires a timer when it falls due") {
  TempDir dir;
  workflow::WorkflowSet workflows;
  auto loaded = workflow::load_workflow_text(R"(id = "quick"
version = 1
title = "Quick"
[[stage]]
id = "only"
[[step]]
id = "call"
stage = "only"
roles = ["nurse"]
due = "1s"
)",
                                             "quick.toml", context());
  REQUIRE(loaded.workflow);
  workflows.add(loaded.workflow);
  store::SqliteCaseStore store({dir.path() / "sched.db", "full"});
  RealClock clock;
  Engine engine(store, workflows, clock);
  Scheduler scheduler(engine, store, clock);
  scheduler.start();
  std::string id = engine.open_case("p1", "quick", std::nullopt, kNurse).case_id;
  // Bounded wait for the outcome; nothing here measures how fast it happened.
  bool overdue = false;
  for (int i = 0; i < 200 && !overdue; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    overdue = engine.get_case(id)->active.at(0).overdue;
  }
  scheduler.stop();
  CHECK(overdue);
  CHECK(engine.history(id).back().type == "step_overdue");
}

TEST_CASE("a repeated stage at the end of a workflow repeats before the case completes") {
  TempDir dir;
  workflow::WorkflowSet workflows;
  auto loaded = workflow::load_workflow_text(R"(id = "boosters"
version = 1
title = "Maintenance boosters"
[[stage]]
id = "plan"
[[stage]]
id = "boosters"
repeat = { times = 2, min_interval = "14d" }
[[step]]
id = "plan"
stage = "plan"
roles = ["prescriber"]
[[step]]
id = "booster"
stage = "boosters"
roles = ["nurse"]
  [[step.field]]
  name = "note"
  type = "string"
  required = true
)",
                                             "boosters.toml", context());
  REQUIRE(loaded.workflow);
  workflows.add(loaded.workflow);
  store::SqliteCaseStore store({dir.path() / "boosters.db", "full"});
  VirtualClock clock(kStart);
  Engine engine(store, workflows, clock);
  std::string id = engine.open_case("p1", "boosters", std::nullopt, kPrescriber).case_id;
  engine.submit(id, "plan", {}, kPrescriber);
  try {
    engine.submit(id, "booster", {{"note", "  "}}, kNurse);
    FAIL("a blank required text was accepted");
  } catch (const EngineError& e) {
    CHECK(std::string(e.what()) == "the form of step 'booster' has 1 problem");
    CHECK(e.fields().at(0).problem == "is required");
  }
  CaseState state = engine.submit(id, "booster", {{"note", "first"}}, kNurse);
  CHECK(state.status == "active");
  CHECK(state.repetition == 2);
  CHECK(state.active.at(0).opens_at == kStart + 14 * kDay);
  engine.advance_clock_to(kStart + 14 * kDay, clock);
  state = engine.submit(id, "booster", {{"note", "second"}}, kNurse);
  CHECK(state.status == "completed");
}

TEST_CASE("a bounded map evicts the least recently used entry; finding an entry uses it") {
  util::LruMap<std::string, int> m(2);
  m.put("a", 1);
  m.put("b", 2);
  REQUIRE(m.find("a"));  // a is now the most recently used
  m.put("c", 3);         // full: b goes
  CHECK(m.size() == 2);
  CHECK(m.find("b") == nullptr);
  CHECK(*m.find("a") == 1);
  m.put("c", 30);  // replaces, and uses c
  m.put("d", 4);   // a goes
  CHECK(m.find("a") == nullptr);
  CHECK(*m.find("c") == 30);
  CHECK(m.erase("c"));
  CHECK_FALSE(m.erase("c"));
  CHECK(m.size() == 1);
  util::LruMap<std::string, int> none(0);
  none.put("a", 1);
  CHECK(none.size() == 0);
}

TEST_CASE("committed cases in memory: the least recently used one makes room, a read that raced a commit is not kept") {
  CommittedCases held(2);
  std::map<std::string, int> reads;  // store reads per case
  std::map<std::string, std::int64_t> stored{{"a", 1}, {"b", 1}, {"c", 1}};
  auto get = [&](const std::string& id) {
    return held.get(id, [&]() -> std::shared_ptr<const CaseState> {
      ++reads[id];
      auto s = std::make_shared<CaseState>();
      s->case_id = id;
      s->revision = stored.at(id);
      return s;
    });
  };
  get("a");
  get("b");
  get("a");  // a is now the most recently used
  get("c");  // full: b makes room
  CHECK(held.size() == 2);
  get("a");
  CHECK(reads["a"] == 1);  // still held
  get("b");
  CHECK(reads["b"] == 2);  // was evicted, read again (and c, least recent now, made room)
  get("a");
  CHECK(reads["a"] == 1);

  // A put replaces what is held and is what the next read sees.
  auto newer = std::make_shared<CaseState>();
  newer->case_id = "a";
  newer->revision = 7;
  held.put(newer);
  CHECK(get("a")->revision == 7);
  CHECK(reads["a"] == 1);

  // A read from the store that a commit overtook is answered, not kept.
  held.invalidate("b");
  auto raced = held.get("b", [&]() -> std::shared_ptr<const CaseState> {
    auto s = std::make_shared<CaseState>();
    s->case_id = "b";
    s->revision = 1;
    auto committed = std::make_shared<CaseState>();
    committed->case_id = "c";  // any commit meanwhile counts
    committed->revision = 2;
    held.put(committed);
    return s;
  });
  CHECK(raced->revision == 1);
  get("b");
  CHECK(reads["b"] == 3);  // not kept: read again
}

TEST_CASE("the engine keeps as many committed cases in memory as it is given") {
  // A held case comes back as the very state object the commit stored; one not held is read back
  // from the store as a new object.
  for (std::size_t held : {std::size_t{1}, std::size_t{2}}) {
    Fixture f(held);
    const std::string first = f.open().case_id;
    auto first_state = f.engine.get_case(first);
    const std::string second = f.open().case_id;
    REQUIRE(f.engine.get_case(second));
    auto again = f.engine.get_case(first);
    REQUIRE(again);
    CHECK(again->revision == first_state->revision);
    if (held == 1)
      CHECK(again != first_state);  // the second case took the only place: read back
    else
      CHECK(again == first_state);  // both fit
  }
}

TEST_CASE("a case state survives its stored JSON text field by field") {
  CaseState s;
  s.case_id = "c_1";
  s.patient_id = "p_\"1\"";
  s.workflow_id = "flow";
  s.workflow_version = 7;
  s.status = "closed";
  s.outcome = "closed";
  s.reason = "moved away \\ \"abroad\" ünï\n";
  s.stage = "induction";
  s.repetition = 3;
  s.revision = 42;
  s.created_at = -5;  // before 1970: still an integer
  s.updated_at = 1'800'000'000'123;
  s.active = {{"session", true, 10, 20, std::nullopt, false, 3, ""},
              {"call", false, 11, std::nullopt, 99, true, 0, "plugin \"x\" failed"}};
  s.data = json::object{{"session", json::object{{"dose_mg", 35.5}, {"note", "a\tb"}, {"list", json::array{1, nullptr, true}}}}};
  s.completed = {{"consent", 5}, {"odd \"step\"", 6}};

  std::string text = to_json_text(s);
  INFO(text);
  // The stored format, member by member (databases keep it: a change here needs a migration).
  CHECK(text ==
        R"({"case_id":"c_1","patient_id":"p_\"1\"","workflow":"flow","version":7,"status":"closed","outcome":"closed",)"
        R"("reason":"moved away \\ \"abroad\" ünï\n","stage":"induction","repetition":3,"revision":42,"created_at":-5,)"
        R"("updated_at":1800000000123,"active":[{"step":"session","waiting":true,"since":10,"overdue":false,"repetition":3,)"
        R"("opens_at":20},{"step":"call","waiting":false,"since":11,"overdue":true,"repetition":0,"due":99,)"
        R"("last_error":"plugin \"x\" failed"}],"data":{"session":{"dose_mg":3.55E1,"note":"a\tb","list":[1,null,true]}},)"
        R"("completed":{"consent":5,"odd \"step\"":6}})");
  json::error_code ec;
  json::value parsed = json::parse(text, ec);
  REQUIRE_FALSE(ec);
  CaseState back = from_json(parsed.as_object());
  CHECK(to_json_text(back) == text);  // nothing lost or renamed between writer and reader
  CHECK(back.reason == s.reason);
  CHECK(back.created_at == -5);
  REQUIRE(back.active.size() == 2);
  CHECK(back.active[0].waiting);
  CHECK(back.active[0].opens_at == 20);
  CHECK_FALSE(back.active[0].due);
  CHECK(back.active[1].due == 99);
  CHECK(back.active[1].overdue);
  CHECK(back.active[1].last_error == "plugin \"x\" failed");
  CHECK(back.completed.at("odd \"step\"") == 6);
  CHECK(json::value(back.data) == json::value(s.data));
}
