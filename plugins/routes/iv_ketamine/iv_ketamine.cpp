// iv_ketamine: the route plugin for IV ketamine sessions. See README.md.
//
// Every clinical number comes from a setting whose description cites its source in
// /work/shared/domain.md ([Sx] keys). Numbers the domain brief does not give have no default.
#include "iv_ketamine.hpp"

#include "../route_support/route_support.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace clinicflow::routes {
namespace {

constexpr const char* kName = "iv_ketamine";

// Shared helpers (BadRequest, fmt, dates and times, form fields, submission readers).
using namespace support;

// ------------------------------------------------------------------------------ settings

void require(bool ok, const std::string& message) { require_setting(kName, ok, message); }

}  // namespace

// ================================================================================ manifest

Manifest IvKetamine::manifest() {
  return {
      kName,
      "route",
      "1.0.0",
      "IV ketamine session (off-label): pre-dose vital-sign gate, mg/kg dose and infusion checks with BP "
      "checkpoints, and discharge (modified Aldrete, recovery time, driver, no driving). Every clinical number is a "
      "setting; the medical director signs them off.",
      {
          {"max_systolic", "integer", nullptr,
           "Pre-dose gate: refuse the session when systolic BP is above this (mmHg). REQUIRED, no default: IV BP "
           "hold/stop thresholds are UNVERIFIED in the sources and must be set by the clinic (domain.md section 2, "
           "[S24]). For reference only, the esketamine label calls >140/90 elevated [S7][S38]."},
          {"max_diastolic", "integer", nullptr,
           "Pre-dose gate: refuse the session when diastolic BP is above this (mmHg). REQUIRED, no default (see "
           "max_systolic; UNVERIFIED for IV, [S24])."},
          {"min_spo2", "integer", nullptr,
           "Pre-dose gate: refuse the session when SpO2 is below this (%). REQUIRED, no default: the sources give "
           "no pre-dose SpO2 limit (SpO2 is measured before dosing [S12])."},
          {"min_heart_rate", "integer", 0,
           "Pre-dose gate: refuse when heart rate is below this (beats/min). 0 = no check (default): the sources "
           "give no heart-rate limit; HR is recorded before dosing [S12]."},
          {"max_heart_rate", "integer", 0,
           "Pre-dose gate: refuse when heart rate is above this (beats/min). 0 = no check (default): the sources "
           "give no heart-rate limit [S12]."},
          {"standard_mg_per_kg", "number", 0.5,
           "Dose used when the dosing form leaves the dose empty (mg/kg): 0.5 mg/kg, the most common regimen "
           "[S19][S9]."},
          {"standard_infusion_minutes", "integer", 40,
           "Infusion time used when the dosing form leaves it empty (min): 40 min [S19][S9]."},
          {"min_mg_per_kg", "number", 0.1, "Lowest dose accepted (mg/kg): published range 0.1-0.75 mg/kg [S19]."},
          {"max_mg_per_kg", "number", 0.75, "Highest dose accepted (mg/kg): published range 0.1-0.75 mg/kg [S19]."},
          {"min_infusion_minutes", "integer", 2, "Shortest infusion accepted (min): published sessions 2-100 min [S19]."},
          {"max_infusion_minutes", "integer", 100, "Longest infusion accepted (min): published sessions 2-100 min [S19]."},
          {"bp_interval_minutes", "integer", 10,
           "BP checkpoint interval during the infusion (min): every 10 min (Emory [S22], Yale [S23]). The dosing "
           "step must record at least infusion minutes / interval readings (rounded down)."},
          {"min_aldrete", "integer", 9, "Lowest modified Aldrete score (0-10) that allows discharge: >= 9 [S25]."},
          {"min_recovery_minutes", "integer", 60,
           "Shortest observation after the end of the infusion before discharge (min): 60 min, the NHS Oxford unit "
           "[S18]. Clinic practice varies: about 20 min [S13], 30-60 min [S27]."},
          {"require_driver", "boolean", true,
           "Refuse discharge without a driver taking the patient home (default true) [S13][S17]. When false, a "
           "patient leaving without one must be observed for min_recovery_minutes_unaccompanied."},
          {"min_recovery_minutes_unaccompanied", "integer", 120,
           "Shortest observation before an unaccompanied discharge (min), used only when require_driver is false: "
           "2 h, the NHS Oxford unit [S18]."},
          {"no_driving_hours", "integer", 24,
           "No driving for this long after discharge (h): 24 h [S13][S17] (another unit says until the next "
           "morning [S18])."},
      }};
}

IvKetamine::IvKetamine(const Settings& settings) {
  std::set<std::string> known;
  for (const auto& spec : manifest().settings) known.insert(spec.name);
  for (const auto& [key, value] : settings.values())
    require(known.count(std::string(key)) > 0, "unknown setting '" + std::string(key) + "'");

  Config& c = config_;
  c.max_systolic = int_setting(kName, settings, "max_systolic");
  c.max_diastolic = int_setting(kName, settings, "max_diastolic");
  c.min_spo2 = int_setting(kName, settings, "min_spo2");
  c.min_heart_rate = int_setting(kName, settings, "min_heart_rate");
  c.max_heart_rate = int_setting(kName, settings, "max_heart_rate");
  c.standard_mg_per_kg = number_setting(kName, settings, "standard_mg_per_kg");
  c.standard_infusion_minutes = int_setting(kName, settings, "standard_infusion_minutes");
  c.min_mg_per_kg = number_setting(kName, settings, "min_mg_per_kg");
  c.max_mg_per_kg = number_setting(kName, settings, "max_mg_per_kg");
  c.min_infusion_minutes = int_setting(kName, settings, "min_infusion_minutes");
  c.max_infusion_minutes = int_setting(kName, settings, "max_infusion_minutes");
  c.bp_interval_minutes = int_setting(kName, settings, "bp_interval_minutes");
  c.min_aldrete = int_setting(kName, settings, "min_aldrete");
  c.min_recovery_minutes = int_setting(kName, settings, "min_recovery_minutes");
  c.require_driver = bool_setting(kName, settings, "require_driver");
  c.min_recovery_minutes_unaccompanied = int_setting(kName, settings, "min_recovery_minutes_unaccompanied");
  c.no_driving_hours = int_setting(kName, settings, "no_driving_hours");

  require(c.max_systolic > 0 && c.max_diastolic > 0, "max_systolic and max_diastolic must be above 0 mmHg");
  require(c.max_diastolic < c.max_systolic, "max_diastolic (" + fmt(c.max_diastolic) + ") must be below max_systolic (" +
                                                fmt(c.max_systolic) + ")");
  require(c.min_spo2 >= 0 && c.min_spo2 <= 100, "min_spo2 must be a percentage from 0 to 100, not " + fmt(c.min_spo2));
  require(c.min_heart_rate >= 0 && c.max_heart_rate >= 0, "heart-rate limits must be 0 (no check) or above");
  require(c.max_heart_rate == 0 || c.min_heart_rate < c.max_heart_rate,
          "min_heart_rate (" + fmt(c.min_heart_rate) + ") must be below max_heart_rate (" + fmt(c.max_heart_rate) + ")");
  require(c.min_mg_per_kg > 0 && c.min_mg_per_kg <= c.max_mg_per_kg,
          "the dose range must satisfy 0 < min_mg_per_kg <= max_mg_per_kg, not " + fmt(c.min_mg_per_kg) + "-" +
              fmt(c.max_mg_per_kg));
  require(c.standard_mg_per_kg >= c.min_mg_per_kg && c.standard_mg_per_kg <= c.max_mg_per_kg,
          "standard_mg_per_kg " + fmt(c.standard_mg_per_kg) + " must lie within min_mg_per_kg-max_mg_per_kg (" +
              fmt(c.min_mg_per_kg) + "-" + fmt(c.max_mg_per_kg) + ")");
  require(c.min_infusion_minutes > 0 && c.min_infusion_minutes <= c.max_infusion_minutes,
          "the infusion time range must satisfy 0 < min_infusion_minutes <= max_infusion_minutes");
  require(c.standard_infusion_minutes >= c.min_infusion_minutes && c.standard_infusion_minutes <= c.max_infusion_minutes,
          "standard_infusion_minutes " + fmt(c.standard_infusion_minutes) +
              " must lie within min_infusion_minutes-max_infusion_minutes");
  require(c.bp_interval_minutes > 0, "bp_interval_minutes must be above 0");
  require(c.min_aldrete >= 0 && c.min_aldrete <= 10, "min_aldrete must be a modified Aldrete score from 0 to 10");
  require(c.min_recovery_minutes >= 0 && c.min_recovery_minutes_unaccompanied >= 0, "recovery minutes must not be negative");
  require(c.no_driving_hours > 0, "no_driving_hours must be above 0");
}

// ================================================================================ fields

std::vector<FieldSpec> IvKetamine::fields(const json::object& step_settings) {
  DoseStepConfig step = dose_step_config(step_settings);  // BadRequest is an invalid_argument: the load fails
  const Config& c = config_;
  std::vector<FieldSpec> out;
  switch (step.phase) {
    case DosePhase::pre_dose:
      out.push_back(range(field("weight_kg", "number", true, "Body weight", "kg", "Needed for mg/kg dosing."), 0));
      out.push_back(range(field("systolic", "integer", true, "Pre-dose systolic BP", "mmHg",
                                "The session is deferred above " + fmt(c.max_systolic) + " mmHg (clinic setting)."),
                          0));
      out.push_back(range(field("diastolic", "integer", true, "Pre-dose diastolic BP", "mmHg",
                                "The session is deferred above " + fmt(c.max_diastolic) + " mmHg (clinic setting)."),
                          0));
      out.push_back(range(field("heart_rate", "integer", true, "Pre-dose heart rate", "beats/min", ""), 0));
      out.push_back(range(field("spo2", "integer", true, "Pre-dose SpO2", "%",
                                "The session is deferred below " + fmt(c.min_spo2) + " % (clinic setting)."),
                          0, 100));
      break;
    case DosePhase::dosing:
      if (!step.weight_from)
        out.push_back(range(field("weight_kg", "number", true, "Body weight", "kg", "Needed for mg/kg dosing."), 0));
      out.push_back(range(field("dose_mg_per_kg", "number", false, "Dose", "mg/kg",
                                "Leave empty for the standard " + fmt(c.standard_mg_per_kg) + " mg/kg. Accepted: " +
                                    fmt(c.min_mg_per_kg) + " to " + fmt(c.max_mg_per_kg) + " mg/kg."),
                          0));
      out.push_back(range(field("infusion_minutes", "integer", false, "Infusion time", "min",
                                "Leave empty for the standard " + fmt(c.standard_infusion_minutes) + " min. Accepted: " +
                                    fmt(c.min_infusion_minutes) + " to " + fmt(c.max_infusion_minutes) + " min."),
                          0));
      out.push_back(range(field("bp_readings", "integer", true, "BP readings during the infusion", "",
                                "One every " + fmt(c.bp_interval_minutes) + " min of infusion."),
                          0));
      out.push_back(range(field("peak_systolic", "integer", false, "Highest systolic BP during the infusion", "mmHg", ""), 0));
      out.push_back(range(field("peak_diastolic", "integer", false, "Highest diastolic BP during the infusion", "mmHg", ""), 0));
      break;
    case DosePhase::discharge:
      out.push_back(range(field("aldrete", "integer", true, "Modified Aldrete score", "",
                                "Discharge needs at least " + fmt(c.min_aldrete) + " (out of 10)."),
                          0, 10));
      out.push_back(range(field("recovery_minutes", "integer", true, "Observed since the end of the infusion", "min",
                                "At least " + fmt(c.min_recovery_minutes) + " min before discharge."),
                          0));
      out.push_back(field("driver_present", "boolean", true, "A driver takes the patient home", "",
                          "No driving for " + fmt(c.no_driving_hours) + " h after discharge."));
      out.push_back(field("discharged_at", "datetime", false, "Discharge time", "", "Leave empty for the time of submission."));
      break;
  }
  return out;
}

// ================================================================================ review

StepResult IvKetamine::review(const StepRequest& request) {
  try {
    DoseStepConfig step = dose_step_config(request.step_settings);
    if (!request.submitted) throw BadRequest("a review needs the submitted form");
    switch (step.phase) {
      case DosePhase::pre_dose: return pre_dose(request);
      case DosePhase::dosing: return dosing(request);
      case DosePhase::discharge: return discharge(request);
    }
    throw BadRequest("unknown phase");
  } catch (const BadRequest& e) {
    return StepResult::failed(std::string(kName) + ": " + e.what());
  }
}

StepResult IvKetamine::pre_dose(const StepRequest& r) const {
  const Config& c = config_;
  double weight = number_in(r, "weight_kg");
  double sys = number_in(r, "systolic");
  double dia = number_in(r, "diastolic");
  double hr = number_in(r, "heart_rate");
  double spo2 = number_in(r, "spo2");
  std::vector<std::string> problems;
  if (weight <= 0) problems.push_back("body weight " + fmt(weight) + " kg is not a weight: record the weight in kg");
  if (sys > static_cast<double>(c.max_systolic) || dia > static_cast<double>(c.max_diastolic))
    problems.push_back("pre-dose blood pressure " + fmt(sys) + "/" + fmt(dia) + " mmHg is above the limit " +
                       fmt(c.max_systolic) + "/" + fmt(c.max_diastolic) + " mmHg: defer the session");
  if (spo2 < static_cast<double>(c.min_spo2))
    problems.push_back("pre-dose SpO2 " + fmt(spo2) + " % is below the limit " + fmt(c.min_spo2) + " %: defer the session");
  if (c.min_heart_rate > 0 && hr < static_cast<double>(c.min_heart_rate))
    problems.push_back("pre-dose heart rate " + fmt(hr) + " beats/min is below the limit " + fmt(c.min_heart_rate) +
                       " beats/min: defer the session");
  if (c.max_heart_rate > 0 && hr > static_cast<double>(c.max_heart_rate))
    problems.push_back("pre-dose heart rate " + fmt(hr) + " beats/min is above the limit " + fmt(c.max_heart_rate) +
                       " beats/min: defer the session");
  if (!problems.empty()) return StepResult::refused(join(problems));
  return StepResult::ok({{"bp_limit_mmhg", fmt(c.max_systolic) + "/" + fmt(c.max_diastolic)}, {"spo2_limit_percent", c.min_spo2}});
}

StepResult IvKetamine::dosing(const StepRequest& r) const {
  const Config& c = config_;
  DoseStepConfig step = dose_step_config(r.step_settings);
  json::object derived;
  double weight = 0;
  if (step.weight_from) {
    const auto& [from_step, from_field] = *step.weight_from;
    auto w = StepRequest::as_number(r.find(from_step, from_field));
    if (!w)
      return StepResult::refused("no body weight is recorded at " + from_step + "." + from_field +
                                 ": the weight is needed for mg/kg dosing; record it before dosing");
    weight = *w;
    derived["weight_kg"] = number_value(weight);
  } else {
    weight = number_in(r, "weight_kg");
  }
  auto entered_dose = optional_number_in(r, "dose_mg_per_kg");
  auto entered_minutes = optional_number_in(r, "infusion_minutes");
  double mg_per_kg = entered_dose.value_or(c.standard_mg_per_kg);
  double minutes = entered_minutes.value_or(static_cast<double>(c.standard_infusion_minutes));
  double readings = number_in(r, "bp_readings");

  std::vector<std::string> problems;
  if (weight <= 0) problems.push_back("body weight " + fmt(weight) + " kg is not a weight: record the weight in kg");
  if (mg_per_kg < c.min_mg_per_kg || mg_per_kg > c.max_mg_per_kg)
    problems.push_back("dose " + fmt(mg_per_kg) + " mg/kg is outside the accepted range " + fmt(c.min_mg_per_kg) + " to " +
                       fmt(c.max_mg_per_kg) + " mg/kg");
  if (minutes < static_cast<double>(c.min_infusion_minutes) || minutes > static_cast<double>(c.max_infusion_minutes))
    problems.push_back("infusion time " + fmt(minutes) + " min is outside the accepted range " +
                       fmt(c.min_infusion_minutes) + " to " + fmt(c.max_infusion_minutes) + " min");
  auto expected = static_cast<std::int64_t>(std::floor(minutes / static_cast<double>(c.bp_interval_minutes)));
  if (readings < static_cast<double>(expected))
    problems.push_back(fmt(readings) + " BP readings are recorded for a " + fmt(minutes) + "-min infusion, fewer than the " +
                       fmt(static_cast<double>(expected)) + " expected (one every " + fmt(c.bp_interval_minutes) +
                       " min): record every reading taken");
  if (!problems.empty()) return StepResult::refused(join(problems));

  derived["dose_mg_per_kg"] = number_value(mg_per_kg);
  derived["infusion_minutes"] = number_value(minutes);
  derived["dose_mg"] = number_value(std::round(mg_per_kg * weight * 100.0) / 100.0);
  derived["expected_bp_readings"] = expected;
  derived["earliest_discharge_minutes"] = number_value(minutes + static_cast<double>(c.min_recovery_minutes));
  return StepResult::ok(std::move(derived));
}

StepResult IvKetamine::discharge(const StepRequest& r) const {
  const Config& c = config_;
  double aldrete = number_in(r, "aldrete");
  double recovery = number_in(r, "recovery_minutes");
  bool driver = bool_in(r, "driver_present");
  const json::value* at = r.input("discharged_at");
  if (at && at->is_null()) at = nullptr;
  if (at && !at->is_string()) throw BadRequest("the submitted 'discharged_at' is not text");
  std::string when = at ? std::string(at->get_string()) : r.now;
  auto discharged = parse_datetime(when);
  if (!discharged)
    throw BadRequest(at ? "discharged_at '" + when + "' is not an RFC 3339 date-time"
                        : "no discharge time: the request has no valid 'now' ('" + when + "')");

  std::vector<std::string> problems;
  if (aldrete < static_cast<double>(c.min_aldrete))
    problems.push_back("modified Aldrete score " + fmt(aldrete) + " is below " + fmt(c.min_aldrete) +
                       ", the minimum for discharge: keep the patient in recovery");
  if (!driver && c.require_driver)
    problems.push_back("no driver takes the patient home: a driver is required after IV ketamine");
  std::int64_t needed = !driver && !c.require_driver ? c.min_recovery_minutes_unaccompanied : c.min_recovery_minutes;
  if (recovery < static_cast<double>(needed))
    problems.push_back("recovery observation " + fmt(recovery) + " min is shorter than the minimum " + fmt(needed) + " min" +
                       (!driver && !c.require_driver ? " for a patient leaving without a driver" : "") +
                       ": observe for " + fmt(static_cast<double>(needed) - recovery) + " more min");
  if (!problems.empty()) return StepResult::refused(join(problems));

  json::object derived;
  if (!at) derived["discharged_at"] = format_datetime(discharged->utc_seconds, discharged->offset_seconds, discharged->zulu);
  derived["no_driving_until"] =
      format_datetime(discharged->utc_seconds + c.no_driving_hours * 3600, discharged->offset_seconds, discharged->zulu);
  return StepResult::ok(std::move(derived));
}

}  // namespace clinicflow::routes

CLINICFLOW_PLUGIN(clinicflow::routes::IvKetamine)
