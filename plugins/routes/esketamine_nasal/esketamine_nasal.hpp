// esketamine_nasal: the route plugin for SPRAVATO (esketamine nasal spray) sessions under the
// REMS: pre-dose checks, dosing, the 40-minute BP check and discharge. See README.md.
#pragma once

#include <clinicflow/plugin.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace clinicflow::routes {

class EsketamineNasal final : public RoutePlugin {
 public:
  struct Config {
    std::string rems_setting_id;
    bool patient_monitoring_form = true;
    std::int64_t pmf_due_days = 0;
    std::int64_t max_systolic = 0;
    std::int64_t max_diastolic = 0;
    std::int64_t min_food_fast_minutes = 0;
    std::int64_t min_liquid_fast_minutes = 0;
    std::int64_t min_nasal_medication_minutes = 0;
    std::int64_t device_mg = 0;
    std::vector<std::int64_t> allowed_doses_mg;
    std::int64_t starting_dose_mg = 0;
    std::int64_t minutes_between_devices = 0;
    std::int64_t bp_recheck_minutes = 0;
    std::int64_t min_monitoring_minutes = 0;
    std::int64_t induction_weeks = 0;
    std::int64_t weekly_until_week = 0;
  };

  static Manifest manifest();
  explicit EsketamineNasal(const Settings& settings);  // throws std::invalid_argument on a bad setting

  std::vector<FieldSpec> fields(const json::object& step_settings) override;  // throws on bad step settings
  StepResult review(const StepRequest& request) override;

  const Config& config() const { return config_; }

 private:
  StepResult pre_dose(const StepRequest& request) const;
  StepResult dosing(const StepRequest& request) const;
  StepResult monitoring(const StepRequest& request) const;
  StepResult discharge(const StepRequest& request) const;

  Config config_;
};

}  // namespace clinicflow::routes
