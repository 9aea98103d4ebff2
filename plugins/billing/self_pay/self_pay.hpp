#pragma once
// self_pay: the clinic's own fee schedule for patients who pay themselves (IV ketamine is almost
// always self-pay [S60]): the payment choice, consultation and session charges, and superbills.
// See README.md for the actions, their rules and every setting.
#include <clinicflow/plugin.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace clinicflow_billing {

class SelfPay : public clinicflow::BillingPlugin {
 public:
  struct Package {
    std::string name;  // an identifier; it is also the value staff choose in the form
    std::int64_t sessions = 0;
    std::int64_t price_cents = 0;
  };
  struct ProcedureCode {
    std::string code;  // 5 characters, such as 96365 or J3490; a leading '+' (add-on) is dropped
    std::string description;
    std::int64_t units = 1;  // per occurrence of the service
  };

  static clinicflow::Manifest manifest();
  explicit SelfPay(const clinicflow::Settings& settings);

  std::vector<clinicflow::FieldSpec> fields(const boost::json::object& step_settings) override;
  clinicflow::StepResult review(const clinicflow::StepRequest& request) override;
  clinicflow::StepResult run(const clinicflow::StepRequest& request) override;

 private:
  clinicflow::StepResult choose_payment(const clinicflow::StepRequest& request) const;
  clinicflow::StepResult consultation(const clinicflow::StepRequest& request) const;
  clinicflow::StepResult session(const clinicflow::StepRequest& request) const;
  clinicflow::StepResult superbill(const clinicflow::StepRequest& request) const;
  const Package* find_package(const std::string& name) const;
  std::string options_text() const;

  std::int64_t session_fee_cents_ = 0;
  std::int64_t consultation_fee_cents_ = 0;
  std::vector<Package> packages_;
  std::int64_t max_installments_ = 1;
  bool charge_after_package_ = false;  // when_package_used_up = "charge_per_session"
  std::string provider_name_, provider_npi_, tax_id_, address_;
  std::vector<ProcedureCode> consultation_codes_, session_codes_;
  std::int64_t utc_offset_minutes_ = 0;
};

}  // namespace clinicflow_billing
