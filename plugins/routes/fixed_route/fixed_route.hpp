// FixedRoute: the shared implementation of the im_ketamine and oral_ketamine route plugins
// (pre-dose gate, dosing, discharge). The domain brief gives no dosing or monitoring numbers for
// these routes, so every clinical number is a required setting that the medical director sets.
// Each route's folder only names the route (RouteInfo) and exports FixedRoutePlugin<its info>.
// See plugins/routes/im_ketamine/README.md and plugins/routes/oral_ketamine/README.md.
#pragma once

#include <clinicflow/plugin.hpp>

#include <cstdint>
#include <vector>

namespace clinicflow::routes {

// What differs between the routes served by FixedRoute.
struct RouteInfo {
  const char* name;   // the manifest name and message prefix, e.g. "im_ketamine"
  const char* route;  // the route in descriptions and reasons, e.g. "IM ketamine"
};

class FixedRoute : public RoutePlugin {
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

  static Manifest manifest(const RouteInfo& info);
  // Throws std::invalid_argument on a bad setting.
  FixedRoute(const RouteInfo& info, const Settings& settings);

  std::vector<FieldSpec> fields(const json::object& step_settings) override;  // throws on bad step settings
  StepResult review(const StepRequest& request) override;

  const Config& config() const { return config_; }
  const RouteInfo& info() const { return info_; }

 private:
  StepResult pre_dose(const StepRequest& request) const;
  StepResult dosing(const StepRequest& request) const;
  StepResult discharge(const StepRequest& request) const;

  RouteInfo info_;
  Config config_;
};

// The plugin class of one route, for CLINICFLOW_PLUGIN(FixedRoutePlugin<kMyRoute>).
template <const RouteInfo& Info>
class FixedRoutePlugin final : public FixedRoute {
 public:
  static Manifest manifest() { return FixedRoute::manifest(Info); }
  explicit FixedRoutePlugin(const Settings& settings) : FixedRoute(Info, settings) {}
};

}  // namespace clinicflow::routes
