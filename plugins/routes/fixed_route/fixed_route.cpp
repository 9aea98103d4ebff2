// FixedRoute: the route plugin shared by im_ketamine and oral_ketamine. See fixed_route.hpp and
// the routes' README.md files.
//
// domain.md gives no dosing or monitoring numbers for these routes: every clinical number is a
// required setting (no default) that the clinic's medical director sets.
#include "fixed_route.hpp"

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

// Shared helpers (BadRequest, fmt, dates and times, form fields, submission readers).
using namespace support;

// ------------------------------------------------------------------------------ settings

void require(const RouteInfo& info, bool ok, const std::string& message) {
  require_setting(info.name, ok, message);
}

std::string required_setting(const RouteInfo& info, const char* what) {
  return std::string("REQUIRED, no default: domain.md gives no ") + info.route + " " + what +
         "; the medical director must set it.";
}

}  // namespace

// ================================================================================ manifest

Manifest FixedRoute::manifest(const RouteInfo& info) {
  return {
      info.name,
      "route",
      "1.0.0",
      std::string(info.route) + " session: pre-dose vital-sign gate, dose within the clinic's range, and discharge after the "
      "clinic's minimum observation with a driver. The domain brief gives no dosing or monitoring numbers for this route: "
      "every clinical number is a required setting for the medical director.",
      {
          {"dose_basis", "string", nullptr,
           "REQUIRED, no default: \"mg_per_kg\" (dose entered in mg/kg, multiplied by body weight) or \"mg\" (a fixed "
           "dose in mg). domain.md gives no dosing for this route; the medical director chooses."},
          {"min_dose", "number", nullptr, required_setting(info, "lowest dose (in the unit of dose_basis)")},
          {"max_dose", "number", nullptr, required_setting(info, "highest dose (in the unit of dose_basis)")},
          {"max_systolic", "integer", nullptr,
           required_setting(info, "pre-dose systolic BP limit (mmHg; the session is refused above it)") +
               " BP thresholds are UNVERIFIED even for IV [S24]."},
          {"max_diastolic", "integer", nullptr,
           required_setting(info, "pre-dose diastolic BP limit (mmHg; the session is refused above it)") + " [S24]"},
          {"min_spo2", "integer", nullptr,
           required_setting(info, "pre-dose SpO2 limit (%; the session is refused below it)") + " SpO2 is taken before dosing [S12]."},
          {"min_heart_rate", "integer", 0,
           "Pre-dose gate: refuse when heart rate is below this (beats/min). 0 = no check (default): no source gives "
           "a limit; HR is recorded before dosing [S12]."},
          {"max_heart_rate", "integer", 0,
           "Pre-dose gate: refuse when heart rate is above this (beats/min). 0 = no check (default) [S12]."},
          {"min_aldrete", "integer", nullptr,
           required_setting(info, "discharge score") + " The modified Aldrete score runs 0-10 [S25]."},
          {"min_observation_minutes", "integer", nullptr,
           required_setting(info, "minimum observation after the dose before discharge (min)") +
               " For IV, practice varies from 20 min to 2 h [S13][S27][S18]."},
          {"require_driver", "boolean", true,
           "Refuse discharge without a driver taking the patient home (default true, as IV clinics require [S13][S17])."},
          {"no_driving_hours", "integer", nullptr,
           required_setting(info, "no-driving period after discharge (h)") + " For IV: 24 h [S13][S17]."},
      }};
}

FixedRoute::FixedRoute(const RouteInfo& info, const Settings& settings) : info_(info) {
  std::set<std::string> known;
  for (const auto& spec : manifest(info).settings) known.insert(spec.name);
  for (const auto& [key, value] : settings.values())
    require(info, known.count(std::string(key)) > 0, "unknown setting '" + std::string(key) + "'");

  Config& c = config_;
  const json::value& basis = setting(info.name, settings, "dose_basis");
  std::string basis_text = basis.is_string() ? std::string(basis.get_string()) : "";
  require(info, basis_text == "mg_per_kg" || basis_text == "mg", "setting 'dose_basis' must be \"mg_per_kg\" or \"mg\"");
  c.dose_basis = basis_text == "mg" ? DoseBasis::mg : DoseBasis::mg_per_kg;
  c.min_dose = number_setting(info.name, settings, "min_dose");
  c.max_dose = number_setting(info.name, settings, "max_dose");
  c.max_systolic = int_setting(info.name, settings, "max_systolic");
  c.max_diastolic = int_setting(info.name, settings, "max_diastolic");
  c.min_spo2 = int_setting(info.name, settings, "min_spo2");
  c.min_heart_rate = int_setting(info.name, settings, "min_heart_rate");
  c.max_heart_rate = int_setting(info.name, settings, "max_heart_rate");
  c.min_aldrete = int_setting(info.name, settings, "min_aldrete");
  c.min_observation_minutes = int_setting(info.name, settings, "min_observation_minutes");
  c.require_driver = bool_setting(info.name, settings, "require_driver");
  c.no_driving_hours = int_setting(info.name, settings, "no_driving_hours");

  require(info, c.min_dose > 0 && c.min_dose <= c.max_dose,
          "the dose range must satisfy 0 < min_dose <= max_dose, not " + fmt(c.min_dose) + "-" + fmt(c.max_dose));
  require(info, c.max_systolic > 0 && c.max_diastolic > 0, "max_systolic and max_diastolic must be above 0 mmHg");
  require(info, c.max_diastolic < c.max_systolic, "max_diastolic (" + fmt(c.max_diastolic) + ") must be below max_systolic (" +
                                                fmt(c.max_systolic) + ")");
  require(info, c.min_spo2 >= 0 && c.min_spo2 <= 100, "min_spo2 must be a percentage from 0 to 100, not " + fmt(c.min_spo2));
  require(info, c.min_heart_rate >= 0 && c.max_heart_rate >= 0, "heart-rate limits must be 0 (no check) or above");
  require(info, c.max_heart_rate == 0 || c.min_heart_rate < c.max_heart_rate,
          "min_heart_rate (" + fmt(c.min_heart_rate) + ") must be below max_heart_rate (" + fmt(c.max_heart_rate) + ")");
  require(info, c.min_aldrete >= 0 && c.min_aldrete <= 10, "min_aldrete must be a modified Aldrete score from 0 to 10");
  require(info, c.min_observation_minutes >= 0, "min_observation_minutes must not be negative");
  require(info, c.no_driving_hours > 0, "no_driving_hours must be above 0");
}

// ================================================================================ fields

std::vector<FieldSpec> FixedRoute::fields(const json::object& step_settings) {
  DoseStepConfig step = dose_step_config(step_settings);
  const Config& c = config_;
  bool per_kg = c.dose_basis == DoseBasis::mg_per_kg;
  const char* unit = per_kg ? "mg/kg" : "mg";
  std::vector<FieldSpec> out;
  switch (step.phase) {
    case DosePhase::pre_dose:
      out.push_back(range(field("weight_kg", "number", true, "Body weight", "kg", ""), 0));
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
      if (per_kg && !step.weight_from)
        out.push_back(range(field("weight_kg", "number", true, "Body weight", "kg", "Needed for mg/kg dosing."), 0));
      out.push_back(range(field("dose", "number", true, "Dose", unit,
                                "Accepted: " + fmt(c.min_dose) + " to " + fmt(c.max_dose) + " " + unit + " (clinic setting)."),
                          0));
      break;
    case DosePhase::discharge:
      out.push_back(range(field("aldrete", "integer", true, "Modified Aldrete score", "",
                                "Discharge needs at least " + fmt(c.min_aldrete) + " (out of 10)."),
                          0, 10));
      out.push_back(range(field("observation_minutes", "integer", true, "Observed since the dose", "min",
                                "At least " + fmt(c.min_observation_minutes) + " min before discharge."),
                          0));
      out.push_back(field("driver_present", "boolean", true, "A driver takes the patient home", "",
                          "No driving for " + fmt(c.no_driving_hours) + " h after discharge."));
      out.push_back(field("discharged_at", "datetime", false, "Discharge time", "", "Leave empty for the time of submission."));
      break;
  }
  return out;
}

// ================================================================================ review

StepResult FixedRoute::review(const StepRequest& request) {
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
    return StepResult::failed(std::string(info_.name) + ": " + e.what());
  }
}

StepResult FixedRoute::pre_dose(const StepRequest& r) const {
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

StepResult FixedRoute::dosing(const StepRequest& r) const {
  const Config& c = config_;
  DoseStepConfig step = dose_step_config(r.step_settings);
  bool per_kg = c.dose_basis == DoseBasis::mg_per_kg;
  const char* unit = per_kg ? "mg/kg" : "mg";
  double dose = number_in(r, "dose");
  json::object derived;
  std::vector<std::string> problems;
  double weight = 0;
  if (per_kg) {
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
    if (weight <= 0) problems.push_back("body weight " + fmt(weight) + " kg is not a weight: record the weight in kg");
  }
  if (dose < c.min_dose || dose > c.max_dose)
    problems.push_back("dose " + fmt(dose) + " " + unit + " is outside the accepted range " + fmt(c.min_dose) + " to " +
                       fmt(c.max_dose) + " " + unit);
  if (!problems.empty()) return StepResult::refused(join(problems));
  derived["dose_mg"] = number_value(std::round((per_kg ? dose * weight : dose) * 100.0) / 100.0);
  derived["earliest_discharge_minutes"] = c.min_observation_minutes;
  return StepResult::ok(std::move(derived));
}

StepResult FixedRoute::discharge(const StepRequest& r) const {
  const Config& c = config_;
  double aldrete = number_in(r, "aldrete");
  double observed = number_in(r, "observation_minutes");
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
    problems.push_back(std::string("no driver takes the patient home: a driver is required after ") + info_.route);
  if (observed < static_cast<double>(c.min_observation_minutes))
    problems.push_back("observation " + fmt(observed) + " min is shorter than the minimum " + fmt(c.min_observation_minutes) +
                       " min: observe for " + fmt(static_cast<double>(c.min_observation_minutes) - observed) + " more min");
  if (!problems.empty()) return StepResult::refused(join(problems));

  json::object derived;
  if (!at) derived["discharged_at"] = format_datetime(discharged->utc_seconds, discharged->offset_seconds, discharged->zulu);
  derived["no_driving_until"] =
      format_datetime(discharged->utc_seconds + c.no_driving_hours * 3600, discharged->offset_seconds, discharged->zulu);
  return StepResult::ok(std::move(derived));
}

}  // namespace clinicflow::routes
