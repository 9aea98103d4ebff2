// iv_ketamine: the route plugin for IV ketamine sessions (pre-dose gate, dosing, discharge).
// Every clinical number is a setting; README.md lists them with their domain.md sources.
#pragma once

#include <clinicflow/plugin.hpp>

#include <cstdint>
#include <vector>

namespace clinicflow::routes {

class IvKetamine final : public RoutePlugin {
 public:
  // The settings after validation. Heart-rate limits of 0 mean "no check".
  struct Config {
    std::int64_t max_systolic = 0;
    std::int64_t max_diastolic = 0;
    std::int64_t min_spo2 = 0;
    std::int64_t min_heart_rate = 0;
    std::int64_t max_heart_rate = 0;
    double standard_mg_per_kg = 0;
    std::int64_t standard_infusion_minutes = 0;
    double min_mg_per_kg = 0;
    double max_mg_per_kg = 0;
    std::int64_t min_infusion_minutes = 0;
    std::int64_t max_infusion_minutes = 0;
    std::int64_t bp_interval_minutes = 0;
    std::int64_t min_aldrete = 0;
    std::int64_t min_recovery_minutes = 0;
    bool require_driver = true;
    std::int64_t min_recovery_minutes_unaccompanied = 0;
    std::int64_t no_driving_hours = 0;
  };

  static Manifest manifest();
  explicit IvKetamine(const Settings& settings);  // throws std::invalid_argument on a bad setting

  std::vector<FieldSpec> fields(const json::object& step_settings) override;  // throws on bad step settings
  StepResult review(const StepRequest& request) override;

  const Config& config() const { return config_; }

 private:
  StepResult pre_dose(const StepRequest& request) const;
  StepResult dosing(const StepRequest& request) const;
  StepResult discharge(const StepRequest& request) const;

  Config config_;
};

}  // namespace clinicflow::routes
