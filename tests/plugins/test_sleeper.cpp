// Test plugin that takes its time: run (and review) sleep for `sleep_ms` — the plugin setting,
// or the step setting of the same name when the step has one — then answer ok.
#include <clinicflow/plugin.hpp>

#include <chrono>
#include <thread>

namespace {

using namespace clinicflow;

class TestSleeper final : public BillingPlugin {
 public:
  static Manifest manifest() {
    return {"test_sleeper",
            "billing",
            "1.0.0",
            "Sleeps before answering",
            {{"sleep_ms", "integer", 0, "How long each call sleeps, in milliseconds"}}};
  }

  explicit TestSleeper(const Settings& settings) : sleep_ms_(settings.integer("sleep_ms")) {}

  StepResult run(const StepRequest& request) override { return nap(request); }
  StepResult review(const StepRequest& request) override { return nap(request); }

 private:
  StepResult nap(const StepRequest& request) {
    std::int64_t ms = sleep_ms_;
    if (const json::value* v = request.step_settings.if_contains("sleep_ms"); v && v->is_int64()) ms = v->get_int64();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return StepResult::ok({{"slept_ms", ms}});
  }

  std::int64_t sleep_ms_;
};

}  // namespace

CLINICFLOW_PLUGIN(TestSleeper)
