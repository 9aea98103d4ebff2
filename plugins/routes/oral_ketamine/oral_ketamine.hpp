// oral_ketamine: the route plugin for oral ketamine sessions (pre-dose gate, dosing, discharge).
// The domain brief gives no oral dosing or monitoring numbers, so every clinical number is a
// required setting that the medical director sets. See README.md.
#pragma once

#include <clinicflow/plugin.hpp>

#include <cstdint>
#include <vector>

namespace clinicflow::routes {

class OralKetamine final : public RoutePlugin {
 public:
  enum class DoseBasis { mg_per_kg, mg };
  // The settings after validation. Heart-rate limits of 0 mean "no check".
  struct Config {
    DoseBasis dose_basis = DoseBasis::mg_per_kg;
    double min_dose = 0;
    double max_dose = 0;
    std::int64_t max_systolic = 0;
    std::int64_t max_diastolic = 0;
    std::int64_t min_spo2 = 0;
    std::int64_t min_heart_rate = 0;
    std::int64_t max_heart_rate = 0;
    std::int64_t min_aldrete = 0;
    std::int64_t min_observation_minutes = 0;
    bool require_driver = true;
    std::int64_t no_driving_hours = 0;
  };

  static Manifest manifest();
  explicit OralKetamine(const Settings& settings);  // throws std::invalid_argument on a bad setting

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
