// A process for the crash test to kill: it drives the real engine and store through a realistic
// stream of commands until it is killed with SIGKILL.
//
//   crash_worker DB_PATH WORKFLOW_FILE START_INDEX
//
// After each engine call returns, it prints one line "ack <case_id> <revision>" per commit that
// call made (collected by a commit listener, which runs only once the store's write has
// returned) and flushes stdout. An acknowledged revision is therefore a committed one, and the
// test checks that every acknowledged revision survives the kill. Logs go to stderr.
#include "engine/clock.hpp"
#include "engine/engine.hpp"
#include "engine/step_plugins.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/workflow_loader.hpp"
#include "workflow/workflow_set.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace json = boost::json;
using namespace clinicflow;
using engine::Actor;
using engine::EngineError;

namespace {

constexpr Duration kMinute = 60'000;
constexpr Duration kHour = 60 * kMinute;

// The workflow's automatic coverage step asks "fake_billing"; it always says covered.
class FakeBilling final : public engine::StepPlugins {
 public:
  std::optional<std::string> unavailable(std::string_view plugin) const override {
    if (plugin == "fake_billing") return std::nullopt;
    return "not configured in the crash worker";
  }
  engine::PluginDecision call(const engine::PluginCall&) override {
    return {engine::PluginDecision::Status::ok, {{"covered", true}}, ""};
  }
};

class Worker {
 public:
  Worker(store::SqliteCaseStore& store, const workflow::WorkflowSet& workflows, engine::VirtualClock& clock,
         FakeBilling& plugins, std::int64_t start_index)
      : engine_(store, workflows, clock, &plugins), clock_(clock), rng_(static_cast<std::uint64_t>(start_index) * 7919 + 17),
        index_(start_index) {
    engine_.add_listener([this](const engine::CaseState& state, const std::vector<store::EventRecord>&) {
      committed_.emplace_back(state.case_id, state.revision);
    });
  }

  [[noreturn]] void run() {
    for (;; ++index_) {
      // Time passes between patients; any timers due meanwhile fire.
      advance(clock_.now() + between(5, 90) * kMinute);

      std::string id;
      call([&] { id = engine_.open_case("p" + std::to_string(index_), "test_flow", std::nullopt, frontdesk_).case_id; });
      if (id.empty()) continue;
      // The referral completes; the automatic coverage step runs in the same command.
      call([&] { engine_.submit(id, "referral", {{"age", 40}, {"psychosis", false}}, frontdesk_); });
      int r = between(0, 9);
      if (r < 8) {
        call([&] { engine_.submit(id, "session", session_form(), nurse_); });
        if (r < 6) call([&] { engine_.submit(id, "discharge", {{"aldrete", between(8, 10)}}, nurse_); });
      }
      pool_.push_back(id);

      // Staff work on earlier cases whose steps have opened since.
      for (int k = 0; k < 3 && !pool_.empty(); ++k) work_on(pool_[static_cast<std::size_t>(between(0, static_cast<int>(pool_.size()) - 1))]);

      if (between(0, 28) == 0) {
        // A form with an out-of-range value: rejected, nothing is written.
        call([&] { engine_.submit(id, "session", {{"systolic", 900}}, nurse_); });
      }
      if (between(0, 22) == 0 && !pool_.empty()) {
        std::string victim = pool_[static_cast<std::size_t>(between(0, static_cast<int>(pool_.size()) - 1))];
        call([&] { engine_.close_case(victim, "patient moved away", frontdesk_); });
      }
      // Now and then a long jump: waiting sessions open, open steps become overdue.
      if (index_ % 4 == 3) advance(clock_.now() + between(12, 80) * kHour);

      prune();
    }
  }

 private:
  int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  json::object session_form() {
    json::object form{{"systolic", between(100, 160)}, {"phq9", between(0, 27)}};
    if (between(0, 1) == 0) form["weight_kg"] = between(500, 1200) / 10.0;
    return form;
  }

  // Runs one engine call, then acknowledges every commit it made.
  template <class F>
  void call(F&& f) {
    try {
      f();
    } catch (const EngineError& e) {
      std::fprintf(stderr, "engine: %s\n", e.what());
    }
    ack();
  }

  void advance(TimePoint target) { call([&] { engine_.advance_clock_to(target, clock_); }); }

  void ack() {
    for (const auto& [case_id, revision] : committed_)
      std::printf("ack %s %lld\n", case_id.c_str(), static_cast<long long>(revision));
    committed_.clear();
    std::fflush(stdout);
  }

  void work_on(const std::string& id) {
    if (between(0, 1) == 0) return;  // not today: lets due steps become overdue
    auto state = engine_.get_case(id);
    if (!state || state->status != "active") return;
    for (const auto& a : state->active) {
      if (a.waiting) continue;
      std::int64_t rev = state->revision;
      if (a.step == "session") {
        call([&] { engine_.submit(id, a.step, session_form(), nurse_, rev); });
      } else if (a.step == "discharge") {
        call([&] { engine_.submit(id, a.step, {{"aldrete", between(7, 10)}}, prescriber_, rev); });
      } else if (a.step == "follow_up_call") {
        call([&] { engine_.submit(id, a.step, {{"item9", between(0, 5) == 0 ? 1 : 0}}, nurse_, rev); });
      } else if (a.step == "urgent_review") {
        call([&] { engine_.submit(id, a.step, {{"plan", "call the patient today"}}, prescriber_, rev); });
      } else if (a.step == "coverage") {
        call([&] { engine_.retry_step(id, a.step, Actor::system()); });
      } else if (a.step == "referral") {
        call([&] { engine_.submit(id, a.step, {{"age", 40}, {"psychosis", false}}, frontdesk_, rev); });
      }
      return;  // one step per visit; the state read above is stale now
    }
  }

  void prune() {
    if (pool_.size() < 40) return;
    std::erase_if(pool_, [&](const std::string& id) {
      auto state = engine_.get_case(id);
      return !state || state->status != "active";
    });
    if (pool_.size() > 60) pool_.erase(pool_.begin(), pool_.begin() + static_cast<std::ptrdiff_t>(pool_.size() - 60));
  }

  engine::Engine engine_;
  engine::VirtualClock& clock_;
  std::mt19937_64 rng_;
  std::int64_t index_;
  std::vector<std::string> pool_;  // cases that may have work left
  std::vector<std::pair<std::string, std::int64_t>> committed_;
  const Actor frontdesk_{"user:frontdesk1", {"frontdesk"}};
  const Actor nurse_{"user:nurse1", {"nurse"}};
  const Actor prescriber_{"user:prescriber1", {"prescriber"}};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DB_PATH WORKFLOW_FILE START_INDEX\n", argv[0]);
    return 64;
  }
  try {
    // stdout carries only acks.
    auto logger = spdlog::stderr_logger_st("crash_worker");
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(logger);

    const std::int64_t start_index = std::stoll(argv[3]);

    store::SqliteCaseStore store(store::SqliteOptions{argv[1], "full"});

    workflow::LoadContext context;  // roles unchecked
    context.plugins = std::set<std::string>{"fake_billing"};
    auto loaded = workflow::load_workflow_file(argv[2], context);
    if (!loaded.workflow) {
      for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
      return 2;
    }
    workflow::WorkflowSet workflows;
    if (auto error = workflows.add(loaded.workflow)) {
      std::fprintf(stderr, "%s\n", error->to_string().c_str());
      return 2;
    }

    // Continue the virtual time of an earlier (killed) run.
    TimePoint start = parse_rfc3339("2026-03-02T08:00:00Z").value_or(0);
    if (auto saved = store.read_setting(engine::Engine::kVirtualClockSetting)) start = std::max<TimePoint>(start, std::stoll(*saved));
    engine::VirtualClock clock(start);
    FakeBilling plugins;

    Worker worker(store, workflows, clock, plugins, start_index);
    worker.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash_worker: %s\n", e.what());
    return 1;
  }
}
