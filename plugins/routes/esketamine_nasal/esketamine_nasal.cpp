// esketamine_nasal: the route plugin for SPRAVATO (esketamine nasal spray) under the REMS. See README.md.
//
// Every clinical number comes from a setting whose description cites its source in
// /work/shared/domain.md ([Sx] keys): the SPRAVATO label and the REMS materials.
#include "esketamine_nasal.hpp"

#include "../route_support/route_support.hpp"

#include <algorithm>
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

constexpr const char* kName = "esketamine_nasal";

// Shared helpers (BadRequest, fmt, dates and times, form fields, submission readers).
using namespace support;

// ------------------------------------------------------------------------------ settings

void require(bool ok, const std::string& message) { require_setting(kName, ok, message); }

// ------------------------------------------------------------------------------ submissions

std::optional<bool> optional_bool_in(const StepRequest& r, std::string_view name) {
  const json::value* v = r.input(name);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_bool()) throw BadRequest("the submitted '" + std::string(name) + "' is not true or false");
  return v->get_bool();
}

std::string string_in(const StepRequest& r, std::string_view name) {
  const json::value* v = r.input(name);
  if (!v || !v->is_string()) throw BadRequest("the submission has no text '" + std::string(name) + "'");
  return std::string(v->get_string());
}

// A submitted date-time, or nullopt when the (optional) field was left empty.
std::optional<DateTime> optional_datetime_in(const StepRequest& r, std::string_view name) {
  const json::value* v = r.input(name);
  if (!v || v->is_null()) return std::nullopt;
  auto t = v->is_string() ? parse_datetime(v->get_string()) : std::nullopt;
  if (!t) throw BadRequest("the submitted '" + std::string(name) + "' is not an RFC 3339 date-time");
  return t;
}

DateTime datetime_in(const StepRequest& r, std::string_view name) {
  auto t = optional_datetime_in(r, name);
  if (!t) throw BadRequest("the submission has no date-time '" + std::string(name) + "'");
  return *t;
}

// The calendar day of an instant in the offset it was written in (the clinic's local day).
std::int64_t local_day(const DateTime& t) {
  std::int64_t local = t.utc_seconds + t.offset_seconds;
  return local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
}

std::optional<std::int64_t> parse_date(std::string_view s) {
  return s.size() == 10 ? parse_date_prefix(s) : std::nullopt;
}

std::string minutes_text(std::int64_t seconds) {
  return fmt(static_cast<double>(seconds) / 60.0);
}

// ------------------------------------------------------------------------------ phases

enum class Phase { pre_dose, dosing, monitoring, discharge };
enum class Indication { trd, mdd_si };

struct StepConfig {
  Phase phase = Phase::pre_dose;
  std::vector<std::string> history_from;  // dosing: the dosing steps holding earlier sessions
  Indication indication = Indication::trd;
  std::string dosing_step;  // discharge: where the session date was recorded (optional)
};

StepConfig step_config(const json::object& settings, std::string_view this_step) {
  const json::value* p = settings.if_contains("phase");
  if (!p || !p->is_string())
    throw BadRequest("step setting 'phase' is required: \"pre_dose\", \"dosing\", \"monitoring\" or \"discharge\"");
  std::string phase(p->get_string());
  StepConfig out;
  std::set<std::string> allowed{"phase"};
  if (phase == "pre_dose") out.phase = Phase::pre_dose;
  else if (phase == "dosing") out.phase = Phase::dosing, allowed.insert({"history_from", "indication"});
  else if (phase == "monitoring") out.phase = Phase::monitoring;
  else if (phase == "discharge") out.phase = Phase::discharge, allowed.insert("dosing_step");
  else throw BadRequest("unknown phase '" + phase + "': use \"pre_dose\", \"dosing\", \"monitoring\" or \"discharge\"");
  for (const auto& [key, value] : settings) {
    if (!allowed.count(std::string(key))) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw BadRequest("step setting '" + std::string(key) + "' is not used by phase '" + phase + "' (settings: " + list + ")");
    }
  }
  const char* history_rule = "step setting 'history_from' must be a step id or a list of step ids (the dosing steps of earlier sessions)";
  if (const json::value* h = settings.if_contains("history_from")) {
    if (h->is_string()) {
      out.history_from.emplace_back(h->get_string());
    } else if (h->is_array() && !h->get_array().empty()) {
      for (const auto& item : h->get_array()) {
        if (!item.is_string()) throw BadRequest(history_rule);
        out.history_from.emplace_back(item.get_string());
      }
    } else {
      throw BadRequest(history_rule);
    }
    for (const auto& id : out.history_from)
      if (!is_identifier(id)) throw BadRequest(std::string(history_rule) + "; '" + id + "' is not a step id");
  } else if (out.phase == Phase::dosing && !this_step.empty()) {
    out.history_from.emplace_back(this_step);  // a dosing step repeated session after session
  }
  if (const json::value* i = settings.if_contains("indication")) {
    std::string text = i->is_string() ? std::string(i->get_string()) : "";
    if (text == "trd") out.indication = Indication::trd;
    else if (text == "mdd_si") out.indication = Indication::mdd_si;
    else throw BadRequest("step setting 'indication' must be \"trd\" or \"mdd_si\"");
  }
  if (const json::value* d = settings.if_contains("dosing_step")) {
    if (!d->is_string() || !is_identifier(d->get_string()))
      throw BadRequest("step setting 'dosing_step' must be the id of the session's dosing step");
    out.dosing_step = std::string(d->get_string());
  }
  return out;
}

std::string doses_text(const std::vector<std::int64_t>& doses) {
  std::string out;
  for (std::size_t i = 0; i < doses.size(); ++i)
    out += (i == 0 ? "" : i + 1 == doses.size() ? " or " : ", ") + fmt(static_cast<double>(doses[i]));
  return out;
}

}  // namespace

// ================================================================================ manifest

Manifest EsketamineNasal::manifest() {
  return {
      kName,
      "route",
      "1.0.0",
      "SPRAVATO (esketamine nasal spray) session in a REMS-certified outpatient setting: pre-dose REMS, BP, fasting "
      "and nasal-medication checks; dose, devices, lot number and treatment phase; the 40-minute BP check; discharge "
      "after at least 2 h of monitoring, with the Patient Monitoring Form due date. Clinical numbers are settings "
      "with label defaults; verify REMS items on spravatorems.com before each release.",
      {
          {"rems_setting_id", "string", nullptr,
           "REQUIRED: the REMS identifier of this certified outpatient healthcare setting, recorded with every "
           "session for the Patient Monitoring Form [S30][S10][S16]."},
          {"patient_monitoring_form", "boolean", true,
           "Derive the Patient Monitoring Form due date after each session (default on). The PMF is due within "
           "7 days of every session [S16][S32]; domain.md section 3 asks for it behind a flag until the 2025 REMS "
           "status is verified [S32][S36][S35]."},
          {"pmf_due_days", "integer", 7, "Days after the session by which the Patient Monitoring Form is due: 7 [S16][S32]."},
          {"max_systolic", "integer", 140,
           "Pre-dose BP: above this systolic (mmHg) the label says to weigh the risk or consider delaying; the "
           "label's example of elevated is >140/90 [S7][S38]. Also flags the 40-minute and end-of-session readings."},
          {"max_diastolic", "integer", 90, "Pre-dose BP: diastolic counterpart of max_systolic (mmHg): 90 [S7][S38]."},
          {"min_food_fast_minutes", "integer", 120, "No food for at least this long before dosing (min): 2 h [S6][S11]."},
          {"min_liquid_fast_minutes", "integer", 30, "No liquids for at least this long before dosing (min): 30 min [S6][S11]."},
          {"min_nasal_medication_minutes", "integer", 60,
           "A nasal corticosteroid or decongestant must be taken at least this long before dosing (min): 1 h [S6]."},
          {"device_mg", "integer", 28, "Esketamine per nasal spray device (mg): 28 mg, 2 sprays [S6][S8][S38]."},
          {"allowed_doses_mg", "array", json::array{56, 84},
           "Doses accepted (mg), each a whole number of devices: 56 mg (2 devices) or 84 mg (3 devices) [S6][S8][S38]."},
          {"starting_dose_mg", "integer", 56,
           "TRD starting dose (mg): day 1 is 56 mg, and a higher dose only after it [S38]."},
          {"minutes_between_devices", "integer", 5, "Minimum wait between devices (min): 5 min [S6][S8][S38]."},
          {"bp_recheck_minutes", "integer", 40,
           "The post-dose BP is taken about this long after dosing (min): 40 min [S7][S38]; a PMF field [S16]."},
          {"min_monitoring_minutes", "integer", 120,
           "Minimum monitoring from the first device (min): at least 2 h, and until sedation, dissociation and "
           "respiratory depression have resolved [S10][S30]."},
          {"induction_weeks", "integer", 4,
           "Weeks 1 to this are the induction phase, dosed twice weekly [S38]. For MDD with acute suicidal "
           "ideation, use beyond this was not studied [S38]."},
          {"weekly_until_week", "integer", 8,
           "TRD: after induction, weekly dosing up to this week; from the next week every 2 weeks or weekly [S38]."},
      }};
}

EsketamineNasal::EsketamineNasal(const Settings& settings) {
  std::set<std::string> known;
  for (const auto& spec : manifest().settings) known.insert(spec.name);
  for (const auto& [key, value] : settings.values())
    require(known.count(std::string(key)) > 0, "unknown setting '" + std::string(key) + "'");

  Config& c = config_;
  const json::value& id = setting(kName, settings, "rems_setting_id");
  require(id.is_string(), "setting 'rems_setting_id' must be text");
  c.rems_setting_id = std::string(id.get_string());
  require(c.rems_setting_id.find_first_not_of(" \t") != std::string::npos, "setting 'rems_setting_id' must not be empty");
  c.patient_monitoring_form = bool_setting(kName, settings, "patient_monitoring_form");
  c.pmf_due_days = int_setting(kName, settings, "pmf_due_days");
  c.max_systolic = int_setting(kName, settings, "max_systolic");
  c.max_diastolic = int_setting(kName, settings, "max_diastolic");
  c.min_food_fast_minutes = int_setting(kName, settings, "min_food_fast_minutes");
  c.min_liquid_fast_minutes = int_setting(kName, settings, "min_liquid_fast_minutes");
  c.min_nasal_medication_minutes = int_setting(kName, settings, "min_nasal_medication_minutes");
  c.device_mg = int_setting(kName, settings, "device_mg");
  const json::value& doses = setting(kName, settings, "allowed_doses_mg");
  require(doses.is_array() && !doses.get_array().empty(), "setting 'allowed_doses_mg' must be a list of doses in mg");
  c.starting_dose_mg = int_setting(kName, settings, "starting_dose_mg");
  c.minutes_between_devices = int_setting(kName, settings, "minutes_between_devices");
  c.bp_recheck_minutes = int_setting(kName, settings, "bp_recheck_minutes");
  c.min_monitoring_minutes = int_setting(kName, settings, "min_monitoring_minutes");
  c.induction_weeks = int_setting(kName, settings, "induction_weeks");
  c.weekly_until_week = int_setting(kName, settings, "weekly_until_week");

  require(c.pmf_due_days > 0, "pmf_due_days must be above 0");
  require(c.max_systolic > 0 && c.max_diastolic > 0, "max_systolic and max_diastolic must be above 0 mmHg");
  require(c.max_diastolic < c.max_systolic, "max_diastolic (" + fmt(c.max_diastolic) + ") must be below max_systolic (" +
                                                fmt(c.max_systolic) + ")");
  require(c.min_food_fast_minutes >= 0 && c.min_liquid_fast_minutes >= 0 && c.min_nasal_medication_minutes >= 0,
          "fasting and nasal-medication minutes must not be negative");
  require(c.device_mg > 0, "device_mg must be above 0");
  for (const auto& d : doses.get_array()) {
    require(d.is_int64() && d.get_int64() > 0 && d.get_int64() % c.device_mg == 0,
            "every allowed dose must be a whole number of " + fmt(c.device_mg) + " mg devices, not " + json::serialize(d));
    require(std::find(c.allowed_doses_mg.begin(), c.allowed_doses_mg.end(), d.get_int64()) == c.allowed_doses_mg.end(),
            "allowed_doses_mg lists " + json::serialize(d) + " twice");
    c.allowed_doses_mg.push_back(d.get_int64());
  }
  std::sort(c.allowed_doses_mg.begin(), c.allowed_doses_mg.end());
  require(std::find(c.allowed_doses_mg.begin(), c.allowed_doses_mg.end(), c.starting_dose_mg) != c.allowed_doses_mg.end(),
          "starting_dose_mg " + fmt(c.starting_dose_mg) + " must be one of allowed_doses_mg");
  require(c.minutes_between_devices >= 0, "minutes_between_devices must not be negative");
  require(c.bp_recheck_minutes > 0, "bp_recheck_minutes must be above 0");
  require(c.min_monitoring_minutes > 0, "min_monitoring_minutes must be above 0");
  require(c.induction_weeks > 0 && c.weekly_until_week >= c.induction_weeks,
          "the phases must satisfy 0 < induction_weeks <= weekly_until_week");
}

// ================================================================================ fields

std::vector<FieldSpec> EsketamineNasal::fields(const json::object& step_settings) {
  StepConfig step = step_config(step_settings, "");
  const Config& c = config_;
  std::string bp_limit = fmt(c.max_systolic) + "/" + fmt(c.max_diastolic) + " mmHg";
  std::vector<FieldSpec> out;
  switch (step.phase) {
    case Phase::pre_dose:
      out.push_back(field("rems_enrolled", "boolean", true, "Patient is enrolled in the SPRAVATO REMS", "",
                          "The Patient Enrollment Form is signed by patient and prescriber before the first dose."));
      out.push_back(field("prescriber_onsite", "boolean", true, "A prescriber is on site for dosing and monitoring", "", ""));
      out.push_back(field("pulse_oximeter_onsite", "boolean", true, "A pulse oximeter is on site", "", ""));
      out.push_back(range(field("systolic", "integer", true, "Pre-dose systolic BP", "mmHg", "Elevated above " + bp_limit + "."), 0));
      out.push_back(range(field("diastolic", "integer", true, "Pre-dose diastolic BP", "mmHg", ""), 0));
      out.push_back(field("elevated_bp_risk_accepted", "boolean", false,
                          "Prescriber weighed the risk of the elevated BP and proceeds", "",
                          "Only when the BP is above " + bp_limit + "; otherwise consider delaying the dose."));
      out.push_back(range(field("minutes_since_food", "integer", true, "Minutes since the patient last ate", "min",
                                "No food for at least " + fmt(c.min_food_fast_minutes) + " min before dosing."),
                          0));
      out.push_back(range(field("minutes_since_liquids", "integer", true, "Minutes since the patient last drank", "min",
                                "No liquids for at least " + fmt(c.min_liquid_fast_minutes) + " min before dosing."),
                          0));
      out.push_back(range(field("minutes_since_nasal_medication", "integer", false,
                                "Minutes since a nasal corticosteroid or decongestant", "min",
                                "Leave empty if none was taken today. At least " + fmt(c.min_nasal_medication_minutes) +
                                    " min before dosing."),
                          0));
      break;
    case Phase::dosing:
      out.push_back(range(field("dose_mg", "integer", true, "Dose", "mg",
                                doses_text(c.allowed_doses_mg) + " mg, " + fmt(c.device_mg) + " mg per device."),
                          0));
      out.push_back(range(field("devices_used", "integer", false, "Devices used", "",
                                fmt(c.minutes_between_devices) + " min between devices."),
                          0));
      out.push_back(field("first_device_at", "datetime", true, "First device administered at", "",
                          "Write it with the clinic's UTC offset: the session date is taken from it."));
      out.push_back(field("last_device_at", "datetime", false, "Last device administered at", "", ""));
      out.push_back(field("lot_number", "string", true, "Lot number", "", "Required on the Patient Monitoring Form."));
      break;
    case Phase::monitoring:
      out.push_back(range(field("bp_minutes_after_dosing", "integer", true, "BP taken, minutes after the first device", "min",
                                "About " + fmt(c.bp_recheck_minutes) + " min after dosing."),
                          0));
      out.push_back(range(field("systolic", "integer", true, "Post-dose systolic BP", "mmHg", ""), 0));
      out.push_back(range(field("diastolic", "integer", true, "Post-dose diastolic BP", "mmHg", ""), 0));
      out.push_back(range(field("spo2", "integer", false, "SpO2 (pulse oximetry)", "%", ""), 0, 100));
      break;
    case Phase::discharge:
      out.push_back(range(field("monitoring_minutes", "integer", true, "Minutes from the first device to the end of monitoring",
                                "min", "At least " + fmt(c.min_monitoring_minutes) + " min."),
                          0));
      out.push_back(field("sedation_resolved", "boolean", true, "Sedation has resolved", "", ""));
      out.push_back(field("dissociation_resolved", "boolean", true, "Dissociation has resolved", "", ""));
      out.push_back(field("respiratory_depression_resolved", "boolean", true, "Respiratory depression has resolved (or none)", "", ""));
      out.push_back(range(field("systolic", "integer", true, "Systolic BP before the session ends", "mmHg", ""), 0));
      out.push_back(range(field("diastolic", "integer", true, "Diastolic BP before the session ends", "mmHg", ""), 0));
      out.push_back(field("ride_home", "boolean", true, "Someone else takes the patient home", "",
                          "No driving until the next day, after a restful sleep."));
      out.push_back(range(field("ready_to_leave_minutes", "integer", false,
                                "When would the patient have been ready to leave (minutes after the first device)", "min",
                                "The REMS question on the Patient Monitoring Form."),
                          0));
      out.push_back(field("discharged_at", "datetime", false, "Discharge time", "", "Leave empty for the time of submission."));
      break;
  }
  return out;
}

// ================================================================================ review

StepResult EsketamineNasal::review(const StepRequest& request) {
  try {
    StepConfig step = step_config(request.step_settings, request.step);
    if (!request.submitted) throw BadRequest("a review needs the submitted form");
    switch (step.phase) {
      case Phase::pre_dose: return pre_dose(request);
      case Phase::dosing: return dosing(request);
      case Phase::monitoring: return monitoring(request);
      case Phase::discharge: return discharge(request);
    }
    throw BadRequest("unknown phase");
  } catch (const BadRequest& e) {
    return StepResult::failed(std::string(kName) + ": " + e.what());
  }
}

StepResult EsketamineNasal::pre_dose(const StepRequest& r) const {
  const Config& c = config_;
  bool enrolled = bool_in(r, "rems_enrolled");
  bool prescriber = bool_in(r, "prescriber_onsite");
  bool oximeter = bool_in(r, "pulse_oximeter_onsite");
  double sys = number_in(r, "systolic");
  double dia = number_in(r, "diastolic");
  bool risk_accepted = optional_bool_in(r, "elevated_bp_risk_accepted").value_or(false);
  double food = number_in(r, "minutes_since_food");
  double liquids = number_in(r, "minutes_since_liquids");
  auto nasal = optional_number_in(r, "minutes_since_nasal_medication");

  std::vector<std::string> problems;
  if (!enrolled)
    problems.push_back("the patient is not enrolled in the SPRAVATO REMS: enroll the patient (Patient Enrollment Form signed by "
                       "patient and prescriber) before the first dose");
  if (!prescriber) problems.push_back("the REMS requires a prescriber on site during dosing and monitoring");
  if (!oximeter) problems.push_back("the REMS requires a pulse oximeter on site");
  bool elevated = sys > static_cast<double>(c.max_systolic) || dia > static_cast<double>(c.max_diastolic);
  if (elevated && !risk_accepted)
    problems.push_back("pre-dose blood pressure " + fmt(sys) + "/" + fmt(dia) + " mmHg is above " + fmt(c.max_systolic) + "/" +
                       fmt(c.max_diastolic) + " mmHg: consider delaying the dose, or record that the prescriber has weighed "
                       "the risk and proceeds");
  auto wait = [&](double since, std::int64_t minimum, const std::string& what, const std::string& rule) {
    if (since < static_cast<double>(minimum))
      problems.push_back(what + " " + fmt(since) + " min ago: " + rule + " at least " + fmt(minimum) +
                         " min before dosing; wait " + fmt(static_cast<double>(minimum) - since) + " more min");
  };
  wait(food, c.min_food_fast_minutes, "last food", "no food for");
  wait(liquids, c.min_liquid_fast_minutes, "last liquids", "no liquids for");
  if (nasal) wait(*nasal, c.min_nasal_medication_minutes, "nasal corticosteroid or decongestant", "take it");
  if (!problems.empty()) return StepResult::refused(join(problems));
  return StepResult::ok({{"rems_setting_id", c.rems_setting_id}, {"bp_elevated", elevated}});
}

StepResult EsketamineNasal::dosing(const StepRequest& r) const {
  const Config& c = config_;
  StepConfig step = step_config(r.step_settings, r.step);
  double dose = number_in(r, "dose_mg");
  auto devices_used = optional_number_in(r, "devices_used");
  DateTime first = datetime_in(r, "first_device_at");
  auto last = optional_datetime_in(r, "last_device_at");
  std::string lot = string_in(r, "lot_number");

  // The latest earlier session: the highest session_number among the history steps.
  const json::object* previous = nullptr;
  std::int64_t previous_number = 0;
  for (const auto& id : step.history_from) {
    const json::value* v = r.case_data.if_contains(id);
    if (!v || !v->is_object()) continue;
    const json::object& o = v->get_object();
    const json::value* n = o.if_contains("session_number");
    const json::value* start = o.if_contains("treatment_start_date");
    const json::value* starting = o.if_contains("starting_dose_mg");
    if (!n || !n->is_int64() || !start || !start->is_string() || !parse_date(start->get_string()) || !starting ||
        !starting->is_number())
      throw BadRequest("step '" + id + "' holds no earlier esketamine_nasal dosing (session_number, treatment_start_date, "
                       "starting_dose_mg): 'history_from' must name esketamine_nasal dosing steps");
    if (!previous || n->get_int64() > previous_number) previous = &o, previous_number = n->get_int64();
  }

  std::vector<std::string> problems;
  bool allowed = std::any_of(c.allowed_doses_mg.begin(), c.allowed_doses_mg.end(),
                             [&](std::int64_t d) { return static_cast<double>(d) == dose; });
  std::int64_t devices = allowed ? static_cast<std::int64_t>(dose) / c.device_mg : 0;
  if (!allowed)
    problems.push_back("dose " + fmt(dose) + " mg is not an accepted dose (" + doses_text(c.allowed_doses_mg) + " mg)");
  if (allowed && devices_used && *devices_used != static_cast<double>(devices))
    problems.push_back(fmt(*devices_used) + " devices were recorded, but " + fmt(dose) + " mg is " + fmt(static_cast<double>(devices)) +
                       " devices of " + fmt(c.device_mg) + " mg: check the dose and the devices");
  if (lot.find_first_not_of(" \t") == std::string::npos)
    problems.push_back("the lot number is missing: it is required on the Patient Monitoring Form");
  if (last && last->utc_seconds < first.utc_seconds) {
    problems.push_back("the last device is recorded before the first: check the times");
  } else if (last && allowed) {
    std::int64_t needed = (devices - 1) * c.minutes_between_devices * 60;
    std::int64_t span = last->utc_seconds - first.utc_seconds;
    if (span < needed)
      problems.push_back(fmt(dose) + " mg is " + fmt(static_cast<double>(devices)) + " devices, " + fmt(c.minutes_between_devices) +
                         " min apart: the last device is due at least " + minutes_text(needed) +
                         " min after the first, not " + minutes_text(span) + " min");
  }
  double starting_dose = previous ? previous->at("starting_dose_mg").to_number<double>() : dose;
  if (allowed && step.indication == Indication::trd && dose > static_cast<double>(c.starting_dose_mg)) {
    if (!previous)
      problems.push_back(fmt(dose) + " mg is given only after a " + fmt(c.starting_dose_mg) +
                         " mg starting dose, and no earlier dose is recorded: the first dose is " + fmt(c.starting_dose_mg) + " mg");
    else if (starting_dose != static_cast<double>(c.starting_dose_mg))
      problems.push_back(fmt(dose) + " mg is given only after a " + fmt(c.starting_dose_mg) + " mg starting dose, and this course started at " +
                         fmt(starting_dose) + " mg");
  }
  std::int64_t session_day = local_day(first);
  std::int64_t start_day = previous ? *parse_date(previous->at("treatment_start_date").as_string()) : session_day;
  if (session_day < start_day)
    problems.push_back("the session date " + format_date(session_day) + " is before the treatment start " + format_date(start_day) +
                       ": check the first-device time");
  if (!problems.empty()) return StepResult::refused(join(problems));

  std::int64_t week = (session_day - start_day) / 7 + 1;
  std::string phase, frequency;
  if (week <= c.induction_weeks) {
    phase = "induction", frequency = "twice weekly";
  } else if (step.indication == Indication::mdd_si) {
    phase = "beyond_studied_duration", frequency = "not studied beyond week " + fmt(c.induction_weeks);
  } else if (week <= c.weekly_until_week) {
    phase = "maintenance_weekly", frequency = "weekly";
  } else {
    phase = "maintenance", frequency = "every 2 weeks or weekly, at the lowest frequency that maintains the response";
  }
  json::object derived{
      {"rems_setting_id", c.rems_setting_id},
      {"indication", step.indication == Indication::trd ? "trd" : "mdd_si"},
      {"devices", devices},
      {"session_number", previous_number + 1},
      {"session_date", format_date(session_day)},
      {"treatment_start_date", format_date(start_day)},
      {"starting_dose_mg", number_value(starting_dose)},
      {"treatment_week", week},
      {"treatment_phase", phase},
      {"dosing_frequency", frequency},
      {"bp_recheck_due_at", format_datetime(first.utc_seconds + c.bp_recheck_minutes * 60, first.offset_seconds, first.zulu)},
      {"earliest_discharge_at", format_datetime(first.utc_seconds + c.min_monitoring_minutes * 60, first.offset_seconds, first.zulu)},
  };
  return StepResult::ok(std::move(derived));
}

StepResult EsketamineNasal::monitoring(const StepRequest& r) const {
  const Config& c = config_;
  double minutes = number_in(r, "bp_minutes_after_dosing");
  double sys = number_in(r, "systolic");
  double dia = number_in(r, "diastolic");
  if (minutes < static_cast<double>(c.bp_recheck_minutes))
    return StepResult::refused("this BP was taken " + fmt(minutes) + " min after dosing: the post-dose BP is taken at " +
                               fmt(c.bp_recheck_minutes) + " min; record the " + fmt(c.bp_recheck_minutes) + "-min reading");
  bool elevated = sys > static_cast<double>(c.max_systolic) || dia > static_cast<double>(c.max_diastolic);
  return StepResult::ok({{"bp_elevated", elevated}});
}

StepResult EsketamineNasal::discharge(const StepRequest& r) const {
  const Config& c = config_;
  StepConfig step = step_config(r.step_settings, r.step);
  double minutes = number_in(r, "monitoring_minutes");
  bool sedation = bool_in(r, "sedation_resolved");
  bool dissociation = bool_in(r, "dissociation_resolved");
  bool respiratory = bool_in(r, "respiratory_depression_resolved");
  double sys = number_in(r, "systolic");
  double dia = number_in(r, "diastolic");
  bool ride = bool_in(r, "ride_home");
  auto entered = optional_datetime_in(r, "discharged_at");
  auto discharged = entered ? entered : parse_datetime(r.now);
  if (!discharged) throw BadRequest("no discharge time: the request has no valid 'now' ('" + r.now + "')");

  std::int64_t session_day = local_day(*discharged);
  if (!step.dosing_step.empty()) {
    const json::value* d = r.find(step.dosing_step, "session_date");
    auto day = d && d->is_string() ? parse_date(d->get_string()) : std::nullopt;
    if (!day) throw BadRequest("step '" + step.dosing_step + "' has no session_date: 'dosing_step' must name the session's esketamine_nasal dosing step");
    session_day = *day;
  }

  std::vector<std::string> problems;
  if (minutes < static_cast<double>(c.min_monitoring_minutes))
    problems.push_back("monitoring " + fmt(minutes) + " min is shorter than the minimum " + fmt(c.min_monitoring_minutes) +
                       " min: keep monitoring for " + fmt(static_cast<double>(c.min_monitoring_minutes) - minutes) + " more min");
  std::vector<std::string> unresolved;
  if (!sedation) unresolved.emplace_back("sedation");
  if (!dissociation) unresolved.emplace_back("dissociation");
  if (!respiratory) unresolved.emplace_back("respiratory depression");
  if (!unresolved.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unresolved.size(); ++i)
      list += (i == 0 ? "" : i + 1 == unresolved.size() ? " and " : ", ") + unresolved[i];
    problems.push_back(list + (unresolved.size() == 1 ? " has" : " have") +
                       " not resolved: keep monitoring until sedation, dissociation and respiratory depression have resolved");
  }
  if (!ride)
    problems.push_back("no ride home: the patient must not drive until the next day after a restful sleep, and needs a ride home");
  if (!problems.empty()) return StepResult::refused(join(problems));

  json::object derived{
      {"session_date", format_date(session_day)},
      {"no_driving_until", format_date(session_day + 1)},
      {"no_driving_condition", "after a restful sleep"},
      {"bp_elevated", sys > static_cast<double>(c.max_systolic) || dia > static_cast<double>(c.max_diastolic)},
      {"pmf_required", c.patient_monitoring_form},
      {"rems_setting_id", c.rems_setting_id},
  };
  if (c.patient_monitoring_form) derived["pmf_due"] = format_date(session_day + c.pmf_due_days);
  if (!entered) derived["discharged_at"] = format_datetime(discharged->utc_seconds, discharged->offset_seconds, discharged->zulu);
  return StepResult::ok(std::move(derived));
}

}  // namespace clinicflow::routes

CLINICFLOW_PLUGIN(clinicflow::routes::EsketamineNasal)
