// Helpers shared by the route plugins (iv_ketamine, esketamine_nasal, fixed_route): text and
// number formatting, RFC 3339 dates and times, form-field builders, submission and settings
// readers, and the step settings of the three dose phases.
// Header-only: route_support has no CMakeLists.txt, so the plugin glob does not build it.
#pragma once

#include <clinicflow/plugin.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clinicflow::routes::support {

// A request the plugin cannot judge (a value missing from the submission, a bad step setting):
// answered with StepResult::failed, never with a clinical refusal.
struct BadRequest : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

inline std::string fmt(double v) {
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

inline json::value number_value(double v) {
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e15) return static_cast<std::int64_t>(v);
  return v;
}

inline std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

inline bool is_identifier(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] < 'a' || s[0] > 'z') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

inline std::string format_date(std::int64_t days) {
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

inline bool read_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

inline std::optional<std::int64_t> parse_date_prefix(std::string_view s) {
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

inline std::optional<DateTime> parse_datetime(std::string_view s) {
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

inline std::string format_datetime(std::int64_t utc_seconds, int offset_seconds, bool zulu) {
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

inline FieldSpec field(std::string_view name, std::string_view type, bool required, std::string_view label,
                std::string_view unit, const std::string& help) {
  FieldSpec f{{"name", name}, {"type", type}, {"required", required}, {"label", label}};
  if (!unit.empty()) f["unit"] = unit;
  if (!help.empty()) f["help"] = help;
  return f;
}

inline FieldSpec range(FieldSpec f, std::optional<double> min, std::optional<double> max = std::nullopt) {
  if (min) f["min"] = number_value(*min);
  if (max) f["max"] = number_value(*max);
  return f;
}

inline double number_in(const StepRequest& r, std::string_view name) {
  auto v = StepRequest::as_number(r.input(name));
  if (!v) throw BadRequest("the submission has no number '" + std::string(name) + "'");
  return *v;
}

inline std::optional<double> optional_number_in(const StepRequest& r, std::string_view name) {
  const json::value* v = r.input(name);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_number()) throw BadRequest("the submitted '" + std::string(name) + "' is not a number");
  return v->to_number<double>();
}

inline bool bool_in(const StepRequest& r, std::string_view name) {
  const json::value* v = r.input(name);
  if (!v || !v->is_bool()) throw BadRequest("the submission has no true/false '" + std::string(name) + "'");
  return v->get_bool();
}

// ------------------------------------------------------------------------------ settings

// Readers of a plugin's settings. A missing or mistyped setting is the clinic's configuration
// error: std::invalid_argument naming the plugin, so the plugin is not created.
inline void require_setting(std::string_view plugin, bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(std::string(plugin) + ": " + message);
}

inline const json::value& setting(std::string_view plugin, const clinicflow::Settings& s, std::string_view name) {
  const json::value* v = s.values().if_contains(name);
  require_setting(plugin, v && !v->is_null(), "setting '" + std::string(name) + "' is required; see the plugin's README for what to set");
  return *v;
}

inline std::int64_t int_setting(std::string_view plugin, const clinicflow::Settings& s, std::string_view name) {
  const json::value& v = setting(plugin, s, name);
  require_setting(plugin, v.is_int64(), "setting '" + std::string(name) + "' must be a whole number");
  return v.get_int64();
}

inline double number_setting(std::string_view plugin, const clinicflow::Settings& s, std::string_view name) {
  const json::value& v = setting(plugin, s, name);
  require_setting(plugin, v.is_number(), "setting '" + std::string(name) + "' must be a number");
  return v.to_number<double>();
}

inline bool bool_setting(std::string_view plugin, const clinicflow::Settings& s, std::string_view name) {
  const json::value& v = setting(plugin, s, name);
  require_setting(plugin, v.is_bool(), "setting '" + std::string(name) + "' must be true or false");
  return v.get_bool();
}

// ------------------------------------------------------------------------------ dose phases

// The phases of a dose given by staff (iv_ketamine, fixed_route), chosen by the step setting
// `phase`; `weight_from` lets the dosing step read the weight an earlier step recorded.
enum class DosePhase { pre_dose, dosing, discharge };

struct DoseStepConfig {
  DosePhase phase = DosePhase::pre_dose;
  std::optional<std::pair<std::string, std::string>> weight_from;  // dosing: (step, field)
};

inline DoseStepConfig dose_step_config(const json::object& settings) {
  const json::value* p = settings.if_contains("phase");
  if (!p || !p->is_string())
    throw BadRequest("step setting 'phase' is required: \"pre_dose\", \"dosing\" or \"discharge\"");
  std::string phase(p->get_string());
  DoseStepConfig out;
  std::set<std::string> allowed{"phase"};
  if (phase == "pre_dose") out.phase = DosePhase::pre_dose;
  else if (phase == "dosing") out.phase = DosePhase::dosing, allowed.insert("weight_from");
  else if (phase == "discharge") out.phase = DosePhase::discharge;
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

}  // namespace clinicflow::routes::support
