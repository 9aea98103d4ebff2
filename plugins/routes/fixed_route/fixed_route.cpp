// FixedRoute: the route plugin shared by im_ketamine and oral_ketamine. See fixed_route.hpp and
// the routes' README.md files.
//
// domain.md gives no dosing or monitoring numbers for these routes: every clinical number is a
// required setting (no default) that the clinic's medical director sets.
#include "fixed_route.hpp"

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

// A request the plugin cannot judge (a value missing from the submission, a bad step setting):
// answered with StepResult::failed, never with a clinical refusal.
struct BadRequest : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// ------------------------------------------------------------------------------ text and numbers

std::string fmt(double v) {
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

json::value number_value(double v) {
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e15) return static_cast<std::int64_t>(v);
  return v;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] < 'a' || s[0] > 'z') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

// ------------------------------------------------------------------------------ dates and times

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::string format_date(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

bool read_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

std::optional<std::int64_t> parse_date_prefix(std::string_view s) {
  int y = 0, m = 0, d = 0;
  if (s.size() < 10 || s[4] != '-' || s[7] != '-' || !read_digits(s, 0, 4, y) || !read_digits(s, 5, 2, m) ||
      !read_digits(s, 8, 2, d) || m < 1 || m > 12 || d < 1)
    return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[m - 1] + (m == 2 && leap ? 1 : 0)) return std::nullopt;
  return days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

// An RFC 3339 date-time: the instant (UTC seconds, rounded up to the whole second) and the
// offset it was written with, so derived times can be written back in the same offset.
struct DateTime {
  std::int64_t utc_seconds = 0;
  int offset_seconds = 0;
  bool zulu = true;
};

std::optional<DateTime> parse_datetime(std::string_view s) {
  auto days = parse_date_prefix(s);
  int hh = 0, mm = 0, ss = 0;
  if (!days || s.size() < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !read_digits(s, 11, 2, hh) ||
      s[13] != ':' || !read_digits(s, 14, 2, mm) || s[16] != ':' || !read_digits(s, 17, 2, ss) || hh > 23 || mm > 59 ||
      ss > 60)
    return std::nullopt;
  std::size_t pos = 19;
  bool fraction = false;
  if (s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos)
      if (s[pos] != '0') fraction = true;
    if (pos == start) return std::nullopt;
  }
  DateTime out;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
    out.zulu = true;
  } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
    int oh = 0, om = 0;
    if (!read_digits(s, pos + 1, 2, oh) || !read_digits(s, pos + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
    out.zulu = false;
    out.offset_seconds = (s[pos] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  out.utc_seconds = *days * 86400 + hh * 3600 + mm * 60 + ss - out.offset_seconds + (fraction ? 1 : 0);
  return out;
}

std::string format_datetime(std::int64_t utc_seconds, int offset_seconds, bool zulu) {
  std::int64_t local = utc_seconds + offset_seconds;
  std::int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  std::int64_t secs = local - days * 86400;
  char buf[48];
  std::snprintf(buf, sizeof buf, "T%02lld:%02lld:%02lld", static_cast<long long>(secs / 3600),
                static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60));
  std::string out = format_date(days) + buf;
  if (zulu) return out + "Z";
  int off = offset_seconds < 0 ? -offset_seconds : offset_seconds;
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset_seconds < 0 ? '-' : '+', off / 3600, off / 60 % 60);
  return out + buf;
}

// ------------------------------------------------------------------------------ settings

void require(const RouteInfo& info, bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(std::string(info.name) + ": " + message);
}

const json::value& setting(const RouteInfo& info, const Settings& s, std::string_view name) {
  const json::value* v = s.values().if_contains(name);
  require(info, v && !v->is_null(), "setting '" + std::string(name) + "' is required; see the plugin's README for what to set");
  return *v;
}

std::int64_t int_setting(const RouteInfo& info, const Settings& s, std::string_view name) {
  const json::value& v = setting(info, s, name);
  require(info, v.is_int64(), "setting '" + std::string(name) + "' must be a whole number");
  return v.get_int64();
}

double number_setting(const RouteInfo& info, const Settings& s, std::string_view name) {
  const json::value& v = setting(info, s, name);
  require(info, v.is_number(), "setting '" + std::string(name) + "' must be a number");
  return v.to_number<double>();
}

bool bool_setting(const RouteInfo& info, const Settings& s, std::string_view name) {
  const json::value& v = setting(info, s, name);
  require(info, v.is_bool(), "setting '" + std::string(name) + "' must be true or false");
  return v.get_bool();
}

// ------------------------------------------------------------------------------ form fields

FieldSpec field(std::string_view name, std::string_view type, bool required, std::string_view label,
                std::string_view unit, const std::string& help) {
  FieldSpec f{{"name", name}, {"type", type}, {"required", required}, {"label", label}};
  if (!unit.empty()) f["unit"] = unit;
  if (!help.empty()) f["help"] = help;
  return f;
}

FieldSpec range(FieldSpec f, std::optional<double> min, std::optional<double> max = std::nullopt) {
  if (min) f["min"] = number_value(*min);
  if (max) f["max"] = number_value(*max);
  return f;
}

// ------------------------------------------------------------------------------ submissions

double number_in(const StepRequest& r, std::string_view name) {
  auto v = StepRequest::as_number(r.input(name));
  if (!v) throw BadRequest("the submission has no number '" + std::string(name) + "'");
  return *v;
}

bool bool_in(const StepRequest& r, std::string_view name) {
  const json::value* v = r.input(name);
  if (!v || !v->is_bool()) throw BadRequest("the submission has no true/false '" + std::string(name) + "'");
  return v->get_bool();
}

// ------------------------------------------------------------------------------ phases

enum class Phase { pre_dose, dosing, discharge };

struct StepConfig {
  Phase phase = Phase::pre_dose;
  std::optional<std::pair<std::string, std::string>> weight_from;  // dosing: (step, field)
};

StepConfig step_config(const json::object& settings) {
  const json::value* p = settings.if_contains("phase");
  if (!p || !p->is_string())
    throw BadRequest("step setting 'phase' is required: \"pre_dose\", \"dosing\" or \"discharge\"");
  std::string phase(p->get_string());
  StepConfig out;
  std::set<std::string> allowed{"phase"};
  if (phase == "pre_dose") out.phase = Phase::pre_dose;
  else if (phase == "dosing") out.phase = Phase::dosing, allowed.insert("weight_from");
  else if (phase == "discharge") out.phase = Phase::discharge;
  else throw BadRequest("unknown phase '" + phase + "': use \"pre_dose\", \"dosing\" or \"discharge\"");
  for (const auto& [key, value] : settings) {
    if (!allowed.count(std::string(key))) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw BadRequest("step setting '" + std::string(key) + "' is not used by phase '" + phase + "' (settings: " + list + ")");
    }
  }
  if (const json::value* w = settings.if_contains("weight_from")) {
    std::string text = w->is_string() ? std::string(w->get_string()) : "";
    auto dot = text.find('.');
    if (dot == std::string::npos || !is_identifier(text.substr(0, dot)) || !is_identifier(text.substr(dot + 1)))
      throw BadRequest("step setting 'weight_from' must name an earlier step's field as \"step.field\", such as \"pre_dose.weight_kg\"");
    out.weight_from = std::make_pair(text.substr(0, dot), text.substr(dot + 1));
  }
  return out;
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
  const json::value& basis = setting(info, settings, "dose_basis");
  std::string basis_text = basis.is_string() ? std::string(basis.get_string()) : "";
  require(info, basis_text == "mg_per_kg" || basis_text == "mg", "setting 'dose_basis' must be \"mg_per_kg\" or \"mg\"");
  c.dose_basis = basis_text == "mg" ? DoseBasis::mg : DoseBasis::mg_per_kg;
  c.min_dose = number_setting(info, settings, "min_dose");
  c.max_dose = number_setting(info, settings, "max_dose");
  c.max_systolic = int_setting(info, settings, "max_systolic");
  c.max_diastolic = int_setting(info, settings, "max_diastolic");
  c.min_spo2 = int_setting(info, settings, "min_spo2");
  c.min_heart_rate = int_setting(info, settings, "min_heart_rate");
  c.max_heart_rate = int_setting(info, settings, "max_heart_rate");
  c.min_aldrete = int_setting(info, settings, "min_aldrete");
  c.min_observation_minutes = int_setting(info, settings, "min_observation_minutes");
  c.require_driver = bool_setting(info, settings, "require_driver");
  c.no_driving_hours = int_setting(info, settings, "no_driving_hours");

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
  StepConfig step = step_config(step_settings);
  const Config& c = config_;
  bool per_kg = c.dose_basis == DoseBasis::mg_per_kg;
  const char* unit = per_kg ? "mg/kg" : "mg";
  std::vector<FieldSpec> out;
  switch (step.phase) {
    case Phase::pre_dose:
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
    case Phase::dosing:
      if (per_kg && !step.weight_from)
        out.push_back(range(field("weight_kg", "number", true, "Body weight", "kg", "Needed for mg/kg dosing."), 0));
      out.push_back(range(field("dose", "number", true, "Dose", unit,
                                "Accepted: " + fmt(c.min_dose) + " to " + fmt(c.max_dose) + " " + unit + " (clinic setting)."),
                          0));
      break;
    case Phase::discharge:
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
    StepConfig step = step_config(request.step_settings);
    if (!request.submitted) throw BadRequest("a review needs the submitted form");
    switch (step.phase) {
      case Phase::pre_dose: return pre_dose(request);
      case Phase::dosing: return dosing(request);
      case Phase::discharge: return discharge(request);
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
  StepConfig step = step_config(r.step_settings);
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
