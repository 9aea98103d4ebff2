// Test plugin whose every decision throws: the host must turn that into a failure of the call.
#include <clinicflow/plugin.hpp>

#include <stdexcept>

namespace {

using namespace clinicflow;

class TestThrower final : public RoutePlugin {
 public:
  static Manifest manifest() { return {"test_thrower", "route", "1.0.0", "Throws from review and run", {}}; }
  explicit TestThrower(const Settings&) {}
  StepResult review(const StepRequest&) override { throw std::runtime_error("boom"); }
  StepResult run(const StepRequest&) override { throw std::runtime_error("boom"); }
};

}  // namespace

CLINICFLOW_PLUGIN(TestThrower)
