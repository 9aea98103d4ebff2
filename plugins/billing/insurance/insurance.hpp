#pragma once
// insurance: coverage, prior authorization (recorded, then checked before each session) and
// session charges coded per the domain brief §5 (esketamine G2082/G2083 + KX for Medicare,
// payer-specific codes for commercial payers; IV ketamine 96365/+96366 or 96374, and J3490).
// See README.md for the actions, their rules and every setting.
#include <clinicflow/plugin.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clinicflow_billing {

class Insurance : public clinicflow::BillingPlugin {
 public:
  // One code billed for a commercial esketamine session (payer-specific E/M and prolonged-service codes).
  struct CodeLine {
    std::string code;
    std::string description;
    std::int64_t units = 1;
    std::vector<std::string> modifiers;
  };

  static clinicflow::Manifest manifest();
  explicit Insurance(const clinicflow::Settings& settings);

  std::vector<clinicflow::FieldSpec> fields(const boost::json::object& step_settings) override;
  clinicflow::StepResult review(const clinicflow::StepRequest& request) override;
  clinicflow::StepResult run(const clinicflow::StepRequest& request) override;

 private:
  clinicflow::StepResult coverage(const clinicflow::StepRequest& request) const;
  clinicflow::StepResult prior_authorization(const clinicflow::StepRequest& request) const;
  clinicflow::StepResult authorization_check(const clinicflow::StepRequest& request) const;
  clinicflow::StepResult charge_session(const clinicflow::StepRequest& request) const;

  std::map<std::string, std::int64_t> fees_;                   // code -> cents per unit
  std::map<std::string, std::vector<CodeLine>> commercial_;    // lower-case payer name or "default"
  bool bill_esketamine_drug_commercial_ = false;
  std::string iv_drug_code_ = "J3490";
  bool bill_iv_drug_ = true;
  std::int64_t utc_offset_minutes_ = 0;
};

}  // namespace clinicflow_billing
