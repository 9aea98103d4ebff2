// Test billing plugin: an automatic step that posts one charge of `amount_cents`; with
// `malformed = true` the charge has a negative amount, which the kernel must refuse to record.
#include <clinicflow/plugin.hpp>

namespace {

using namespace clinicflow;

class TestBilling final : public BillingPlugin {
 public:
  static Manifest manifest() {
    return {"test_billing",
            "billing",
            "1.0.0",
            "Test billing: one infusion charge",
            {{"amount_cents", "integer", 12345, "What the charge is for, in cents"},
             {"malformed", "boolean", false, "Answer with a negative amount, to test the kernel's checks"}}};
  }

  explicit TestBilling(const Settings& settings)
      : amount_cents_(settings.integer("amount_cents")), malformed_(settings.boolean("malformed")) {}

  StepResult run(const StepRequest& request) override {
    StepResult result = StepResult::ok({{"billed_step", request.step}, {"billed_case", request.case_id}});
    Charge charge;
    charge.code = "96365";
    charge.description = "IV infusion, first hour";
    charge.amount_cents = malformed_ ? -amount_cents_ : amount_cents_;
    charge.units = 1;
    charge.modifiers = {"KX"};
    result.charges.push_back(std::move(charge));
    return result;
  }

 private:
  std::int64_t amount_cents_;
  bool malformed_;
};

}  // namespace

CLINICFLOW_PLUGIN(TestBilling)
