// Test route plugin: contributes session vitals to the task that names it and refuses a
// submission whose systolic pressure is above its `max_systolic` setting (required: no default).
#include <clinicflow/plugin.hpp>

namespace {

using namespace clinicflow;

class TestRoute final : public RoutePlugin {
 public:
  static Manifest manifest() {
    return {"test_route",
            "route",
            "1.0.0",
            "Test route: vitals fields and a blood pressure rule",
            {{"max_systolic", "integer", nullptr, "Highest systolic pressure (mmHg) at which a session may go ahead"},
             {"note", "string", "none", "Free text, to test string settings"}}};
  }

  explicit TestRoute(const Settings& settings) : max_systolic_(settings.integer("max_systolic")) {}

  std::vector<FieldSpec> fields(const json::object& /*step_settings*/) override {
    return {
        {{"name", "systolic"}, {"type", "integer"}, {"required", true}, {"min", 50}, {"max", 260}, {"unit", "mmHg"}},
        {{"name", "diastolic"}, {"type", "integer"}, {"required", true}, {"min", 30}, {"max", 160}, {"unit", "mmHg"}},
    };
  }

  StepResult review(const StepRequest& request) override {
    auto systolic = StepRequest::as_number(request.input("systolic"));
    if (!systolic) return StepResult::failed("no systolic value was submitted");
    if (*systolic > static_cast<double>(max_systolic_))
      return StepResult::refused("systolic " + std::to_string(static_cast<long long>(*systolic)) + " mmHg is above the limit of " +
                                 std::to_string(max_systolic_) + " mmHg");
    return StepResult::ok({{"checked", true}});
  }

 private:
  std::int64_t max_systolic_;
};

}  // namespace

CLINICFLOW_PLUGIN(TestRoute)
