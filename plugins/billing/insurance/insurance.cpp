// insurance billing plugin. Codes and coding rules come from the domain brief §5 (source keys in
// the comments); every amount comes from the clinic's fee_schedule setting. README.md documents
// the rules.
#include "insurance.hpp"

#include "../billing_support/billing_support.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace clinicflow_billing {

namespace {

// Shared helpers (identifiers, JSON integers, dates and times, step references, form fields).
using namespace ::clinicflow::billing::support;

namespace json = boost::json;
using clinicflow::Charge;
using clinicflow::FieldSpec;
using clinicflow::Settings;
using clinicflow::StepRequest;
using clinicflow::StepResult;

// The workflow's step settings are wrong: the plugin cannot decide (the step fails; fix the
// workflow). Rule violations are refusals instead.
struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::int64_t kMaxCents = 1'000'000'000'000;  // an overflow guard, not a price limit
constexpr const char* kActions = "coverage, prior_authorization, authorization_check or charge_session";

// Esketamine G-codes: up to 56 mg / more than 56 mg, with KX for REMS enrollment (Medicare) [S55][S56][S57].
constexpr double kG2082MaxMg = 56.0;
// IV infusion timing [S62][S63]: 96365 needs at least 16 min (15 min or less is an IV push, 96374);
// +96366 counts each additional hour when more than 30 min of it is used.
constexpr double kInfusionMinMinutes = 16.0;
constexpr double kHourMinutes = 60.0;
constexpr double kAddOnThresholdMinutes = 30.0;

// ------------------------------------------------------------------------------ small helpers

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string number_text(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) return std::to_string(static_cast<std::int64_t>(v));
  std::string s = std::to_string(v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

std::optional<std::int64_t> parse_date(const json::value* v) {
  if (!v || !v->is_string() || v->get_string().size() != 10) return std::nullopt;
  return parse_date_prefix(v->get_string());
}

std::int64_t today(const StepRequest& r, std::int64_t utc_offset_minutes) {
  auto t = parse_datetime(r.now);
  if (!t) throw SetupError("the request's time 'now' = \"" + r.now + "\" is not an RFC 3339 date-time");
  return floor_div(*t + utc_offset_minutes * 60, 86400);
}

// ------------------------------------------------------------------------------ step settings

std::string action_of(const json::object& step_settings) {
  const json::value* a = step_settings.if_contains("action");
  if (!a || !a->is_string())
    throw SetupError(std::string("the step needs [step.settings] action = \"...\": one of ") + kActions);
  return std::string(a->get_string());
}

Ref ref_of(const json::value& v, std::string_view key) {
  auto bad = [&] { return SetupError("step setting '" + std::string(key) + "' must name a field as \"step.field\""); };
  if (!v.is_string()) throw bad();
  std::string_view s = v.get_string();
  std::size_t dot = s.find('.');
  if (dot == std::string_view::npos || !is_identifier(s.substr(0, dot)) || !is_identifier(s.substr(dot + 1))) throw bad();
  return {std::string(s.substr(0, dot)), std::string(s.substr(dot + 1))};
}

std::optional<Ref> optional_ref(const json::object& settings, std::string_view key) {
  const json::value* v = settings.if_contains(key);
  if (!v) return std::nullopt;
  return ref_of(*v, key);
}

Ref required_ref(const json::object& settings, std::string_view key, std::string_view example) {
  const json::value* v = settings.if_contains(key);
  if (!v) throw SetupError("the step needs the step setting '" + std::string(key) + "', such as " + std::string(key) + " = \"" + std::string(example) + "\"");
  return ref_of(*v, key);
}

std::vector<Ref> ref_list(const json::object& settings, std::string_view key) {
  std::vector<Ref> out;
  const json::value* v = settings.if_contains(key);
  if (!v) return out;
  if (v->is_array()) {
    for (const auto& e : v->get_array()) out.push_back(ref_of(e, key));
  } else {
    out.push_back(ref_of(*v, key));
  }
  return out;
}

std::vector<std::string> step_ids(const json::object& settings, std::string_view key) {
  const json::value* v = settings.if_contains(key);
  std::vector<std::string> out;
  auto bad = [&] { return SetupError("step setting '" + std::string(key) + "' must be a step id or a list of step ids, such as \"prior_auth\""); };
  if (!v) throw bad();
  if (v->is_string()) {
    out.emplace_back(v->get_string());
  } else if (v->is_array() && !v->get_array().empty()) {
    for (const auto& e : v->get_array()) {
      if (!e.is_string()) throw bad();
      out.emplace_back(e.get_string());
    }
  } else {
    throw bad();
  }
  for (const auto& id : out)
    if (!is_identifier(id)) throw bad();
  return out;
}

std::int64_t integer_step_setting(const json::object& settings, std::string_view key, std::int64_t fallback, std::int64_t min) {
  const json::value* v = settings.if_contains(key);
  if (!v) return fallback;
  auto n = as_integer(v);
  if (!n || *n < min) throw SetupError("step setting '" + std::string(key) + "' must be a whole number of " + std::to_string(min) + " or more");
  return *n;
}

std::string text_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? trim(v->get_string()) : std::string();
}

std::string input_text(const StepRequest& r, std::string_view key) {
  const json::value* v = r.input(key);
  return v && v->is_string() ? trim(v->get_string()) : std::string();
}

// The prior-authorization data to go by: of the steps named, the last one in the list that has data.
const json::object* authorization(const StepRequest& r, const std::vector<std::string>& steps) {
  const json::object* found = nullptr;
  for (const auto& id : steps) {
    const json::value* v = r.case_data.if_contains(id);
    if (v && v->is_object()) found = &v->get_object();
  }
  return found;
}

std::string steps_text(const std::vector<std::string>& steps) {
  std::string out;
  for (const auto& s : steps) out += (out.empty() ? "'" : ", '") + s + "'";
  return out;
}

// ------------------------------------------------------------------------------ plugin settings

std::string code_of(const json::value& v, const std::string& where) {
  if (!v.is_string()) throw std::invalid_argument(where + ": a code must be text, such as \"96365\"");
  std::string code = trim(v.get_string());
  if (!code.empty() && code[0] == '+') code.erase(0, 1);  // "+96366" marks an add-on code in the literature
  bool ok = code.size() == 5 && std::all_of(code.begin(), code.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
  if (!ok) throw std::invalid_argument(where + ": '" + code + "' is not a CPT/HCPCS code (5 characters: digits and capital letters, such as 96365 or J3490)");
  if (code == "J0222")  // [S36][S59][S60]: a blog's "J0222" contradicts CMS; esketamine is J0013
    throw std::invalid_argument(where + ": J0222 is not the esketamine code; esketamine nasal spray is J0013 per 1 mg (replacing S0013 from 2026-01-01)");
  return code;
}

json::object enum_field(std::string name, std::string label, json::array values, std::string help) {
  json::object f = field(std::move(name), "enum", std::move(label), std::move(help), true);
  f["values"] = std::move(values);
  return f;
}

}  // namespace

// ================================================================================== manifest

clinicflow::Manifest Insurance::manifest() {
  using clinicflow::SettingSpec;
  return {
      "insurance",
      "billing",
      "1.0.0",
      "Insurance billing: coverage and prior authorization records, an authorization check before each session (approval, "
      "units, expiry), and session charges coded per payer type (esketamine G2082/G2083 + KX for Medicare; IV ketamine "
      "96365/+96366 or 96374 and J3490).",
      {
          SettingSpec{"fee_schedule", "table", nullptr,
                      "Required. The clinic's charge per unit of each code, in whole cents: {\"G2082\" = ..., \"96365\" = ...}. "
                      "Payer-specific; 2026 Medicare amounts differ between sources, so none are built in [S58][S36]. J0013 "
                      "is per 1 mg [S36][S59]."},
          SettingSpec{"commercial_codes", "table", json::object{},
                      "Codes billed for an esketamine session with a commercial payer, by payer name (matched without regard "
                      "to case) or \"default\": a list of {code, units = 1, description, modifiers = []}. Commercial payers use "
                      "E/M plus prolonged-service codes that vary by payer [S61]."},
          SettingSpec{"bill_esketamine_drug_commercial", "boolean", false,
                      "Also bill the esketamine drug to commercial payers: J0013 per 1 mg (S0013 before 2026-01-01) "
                      "[S36][S59]. Never with Medicare G-codes [S55][S57]."},
          SettingSpec{"iv_drug_code", "string", "J3490", "The drug code billed for IV ketamine: J3490, unclassified drug [S64]."},
          SettingSpec{"bill_iv_drug", "boolean", true, "Bill iv_drug_code with each IV ketamine session [S64]."},
          SettingSpec{"utc_offset_minutes", "integer", 0,
                      "The clinic's offset from UTC in minutes (e.g. -300 for UTC-5), used to compare 'now' with "
                      "authorization dates by the clinic's calendar. Change it when daylight saving time starts or ends."},
      }};
}

// ================================================================================== settings

Insurance::Insurance(const Settings& s) {
  if (!present(s, "fee_schedule"))
    throw std::invalid_argument("setting 'fee_schedule' is required: the clinic's charge per unit of each code, in whole cents");
  for (const auto& kv : s.table("fee_schedule")) {
    const std::string where = "setting 'fee_schedule'";
    std::string code = code_of(json::value(kv.key()), where);
    auto cents = as_integer(&kv.value());
    if (!cents || *cents < 0 || *cents > kMaxCents)
      throw std::invalid_argument(where + ": the amount for " + code + " must be whole cents, 0 or more");
    if (fees_.count(code)) throw std::invalid_argument(where + ": " + code + " is listed twice");
    fees_[code] = *cents;
  }
  if (fees_.empty()) throw std::invalid_argument("setting 'fee_schedule' must list at least one code with its amount in cents");

  if (present(s, "commercial_codes")) {
    for (const auto& kv : s.table("commercial_codes")) {
      const std::string payer = lower(trim(kv.key()));
      const std::string where = "setting 'commercial_codes." + std::string(kv.key()) + "'";
      if (payer.empty()) throw std::invalid_argument("setting 'commercial_codes': a payer name is empty");
      if (commercial_.count(payer)) throw std::invalid_argument(where + ": the payer is listed twice");
      if (!kv.value().is_array() || kv.value().get_array().empty())
        throw std::invalid_argument(where + " must be a list of {code, units, description, modifiers}");
      std::vector<CodeLine> lines;
      for (const auto& e : kv.value().get_array()) {
        if (!e.is_object()) throw std::invalid_argument(where + " must be a list of {code, units, description, modifiers}");
        const json::object& o = e.get_object();
        for (const auto& k : o)
          if (k.key() != "code" && k.key() != "units" && k.key() != "description" && k.key() != "modifiers")
            throw std::invalid_argument(where + ": unknown key '" + std::string(k.key()) + "' (use code, units, description, modifiers)");
        if (!o.contains("code")) throw std::invalid_argument(where + ": every entry needs a 'code'");
        CodeLine line;
        line.code = code_of(o.at("code"), where);
        if (line.code == "J0013" || line.code == "S0013")
          throw std::invalid_argument(where + ": bill the esketamine drug with bill_esketamine_drug_commercial = true, not as a session code");
        if (!fees_.count(line.code)) throw std::invalid_argument(where + ": " + line.code + " has no amount in 'fee_schedule'");
        if (const json::value* u = o.if_contains("units")) {
          auto n = as_integer(u);
          if (!n || *n < 1 || *n > 1000) throw std::invalid_argument(where + ": 'units' must be a whole number, 1 or more");
          line.units = *n;
        }
        if (const json::value* d = o.if_contains("description")) {
          if (!d->is_string()) throw std::invalid_argument(where + ": 'description' must be text");
          line.description = trim(d->get_string());
        }
        if (line.description.empty()) line.description = "Esketamine session, commercial payer (" + line.code + ")";
        if (const json::value* m = o.if_contains("modifiers")) {
          if (!m->is_array()) throw std::invalid_argument(where + ": 'modifiers' must be a list such as [\"25\"]");
          for (const auto& mod : m->get_array()) {
            bool ok = mod.is_string() && mod.get_string().size() == 2 &&
                      std::all_of(mod.get_string().begin(), mod.get_string().end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
            if (!ok) throw std::invalid_argument(where + ": a modifier is 2 characters (digits and capital letters), such as \"25\"");
            line.modifiers.emplace_back(mod.get_string());
          }
        }
        lines.push_back(std::move(line));
      }
      commercial_[payer] = std::move(lines);
    }
  }

  if (present(s, "bill_esketamine_drug_commercial")) bill_esketamine_drug_commercial_ = s.boolean("bill_esketamine_drug_commercial");
  if (present(s, "iv_drug_code")) iv_drug_code_ = code_of(json::value(s.string("iv_drug_code")), "setting 'iv_drug_code'");
  if (present(s, "bill_iv_drug")) bill_iv_drug_ = s.boolean("bill_iv_drug");
  if (present(s, "utc_offset_minutes")) {
    utc_offset_minutes_ = s.integer("utc_offset_minutes");
    if (utc_offset_minutes_ < -720 || utc_offset_minutes_ > 840)
      throw std::invalid_argument("setting 'utc_offset_minutes' must lie between -720 and 840 (UTC-12:00 to UTC+14:00)");
  }
}

// ================================================================================== dispatch

std::vector<FieldSpec> Insurance::fields(const json::object& step_settings) {
  std::string action;
  try {
    action = action_of(step_settings);
  } catch (const SetupError& e) {
    throw std::invalid_argument(e.what());
  }
  if (action == "coverage") {
    return {field("payer", "string", "Payer", "The insurer's name as on the card.", true),
            field("member_id", "string", "Member id", "As on the insurance card.", true),
            enum_field("payer_type", "Payer type", {"medicare", "commercial"},
                       "Decides the session codes: Medicare uses G2082/G2083 with KX for esketamine."),
            enum_field("covered", "Covered", {"yes", "no", "pending"}, "The payer's answer on coverage of the treatment.")};
  }
  if (action == "prior_authorization") {
    FieldSpec units = field("authorized_units", "integer", "Authorized units", "Approved: the number of sessions (units) authorized.");
    units["min"] = 1;
    return {enum_field("status", "Prior authorization status", {"requested", "approved", "denied", "appealed"},
                       "Approved needs the number, units and dates; denied needs the reason; an appeal follows a denial."),
            field("authorization_number", "string", "Authorization number", "Approved: the payer's authorization number."),
            std::move(units),
            field("start_date", "date", "Valid from", "Approved: the first day the authorization covers."),
            field("expiry_date", "date", "Valid until", "Approved: the last day the authorization covers; after the start date."),
            field("denial_reason", "string", "Denial reason", "Denied: the payer's reason."),
            field("notes", "string", "Notes", "")};
  }
  if (action == "authorization_check" || action == "charge_session") return {};
  throw std::invalid_argument("unknown action '" + action + "': use " + kActions);
}

StepResult Insurance::review(const StepRequest& r) {
  try {
    std::string action = action_of(r.step_settings);
    if (action == "coverage") return coverage(r);
    if (action == "prior_authorization") return prior_authorization(r);
    if (action == "authorization_check" || action == "charge_session")
      return StepResult::failed("action '" + action + "' runs as an automatic step (kind = \"automatic\"), not as a task");
    return StepResult::failed("unknown action '" + action + "': use " + kActions);
  } catch (const SetupError& e) {
    return StepResult::failed(e.what());
  }
}

StepResult Insurance::run(const StepRequest& r) {
  try {
    std::string action = action_of(r.step_settings);
    if (action == "authorization_check") return authorization_check(r);
    if (action == "charge_session") return charge_session(r);
    if (action == "coverage" || action == "prior_authorization")
      return StepResult::failed("action '" + action + "' is a task for billing staff, not an automatic step");
    return StepResult::failed("unknown action '" + action + "': use " + kActions);
  } catch (const SetupError& e) {
    return StepResult::failed(e.what());
  }
}

// ================================================================================== coverage

StepResult Insurance::coverage(const StepRequest& r) const {
  if (input_text(r, "payer").empty()) return StepResult::refused("enter the payer's name");
  if (input_text(r, "member_id").empty()) return StepResult::refused("enter the member id from the insurance card");
  const std::string type = input_text(r, "payer_type");
  if (type != "medicare" && type != "commercial") return StepResult::refused("the payer type must be medicare or commercial");
  const std::string covered = input_text(r, "covered");
  if (covered != "yes" && covered != "no" && covered != "pending") return StepResult::refused("covered must be yes, no or pending");
  return StepResult::ok({{"checked_on", date_text(today(r, utc_offset_minutes_))}});
}

// ================================================================================== prior authorization

StepResult Insurance::prior_authorization(const StepRequest& r) const {
  const std::vector<Ref> previous = ref_list(r.step_settings, "previous_from");
  const std::string status = input_text(r, "status");
  json::object data{{"recorded_on", date_text(today(r, utc_offset_minutes_))}};

  if (status == "requested") return StepResult::ok(std::move(data));

  if (status == "approved") {
    if (input_text(r, "authorization_number").empty()) return StepResult::refused("an approval needs the payer's authorization number");
    auto units = as_integer(r.input("authorized_units"));
    if (!units || *units < 1) return StepResult::refused("an approval needs the number of authorized units, 1 or more");
    auto start = parse_date(r.input("start_date"));
    auto expiry = parse_date(r.input("expiry_date"));
    if (!start || !expiry) return StepResult::refused("an approval needs the dates it is valid from (start_date) and until (expiry_date)");
    if (*expiry <= *start)
      return StepResult::refused("the expiry date (" + date_text(*expiry) + ") must be after the start date (" + date_text(*start) + ")");
    data["valid_days"] = *expiry - *start + 1;
    return StepResult::ok(std::move(data));
  }

  if (status == "denied") {
    if (input_text(r, "denial_reason").empty()) return StepResult::refused("a denial needs the payer's reason (denial_reason)");
    return StepResult::ok(std::move(data));
  }

  if (status == "appealed") {
    // An appeal answers a denial recorded earlier: in a step named by previous_from, or in this
    // step's own previous completion (a repeated step).
    bool denied = false;
    std::string checked;
    for (const auto& ref : previous) {
      const json::value* v = lookup(r, ref);
      denied = denied || (v && v->is_string() && v->get_string() == "denied");
      checked += (checked.empty() ? "" : ", ") + ref.text();
    }
    const json::value* own = r.find(r.step, "status");
    denied = denied || (own && own->is_string() && own->get_string() == "denied");
    checked += (checked.empty() ? "" : ", ") + r.step + ".status";
    if (!denied) return StepResult::refused("an appeal needs a denial recorded earlier, and none is recorded (checked " + checked + ")");
    return StepResult::ok(std::move(data));
  }

  return StepResult::refused("the status must be requested, approved, denied or appealed");
}

// ================================================================================== authorization check

StepResult Insurance::authorization_check(const StepRequest& r) const {
  const std::vector<std::string> steps = step_ids(r.step_settings, "authorization_from");
  const std::int64_t used_before = integer_step_setting(r.step_settings, "units_used_before", 0, 0);
  const std::int64_t per_session = integer_step_setting(r.step_settings, "units_per_session", 1, 1);
  const std::int64_t day = today(r, utc_offset_minutes_);

  const json::object* pa = authorization(r, steps);
  if (!pa) return StepResult::refused("no prior authorization is recorded (" + steps_text(steps) + "): the session needs an approved authorization");
  const std::string status = text_of(*pa, "status");
  if (status != "approved")
    return StepResult::refused("the prior authorization is " + (status.empty() ? std::string("not recorded") : "'" + status + "'") +
                               ", not approved: the session needs an approved authorization");

  const std::string number = text_of(*pa, "authorization_number");
  auto units = as_integer(pa->if_contains("authorized_units"));
  auto start = parse_date(pa->if_contains("start_date"));
  auto expiry = parse_date(pa->if_contains("expiry_date"));
  if (number.empty() || !units || !start || !expiry)
    return StepResult::refused("the approved authorization lacks its number, units or dates: record them on the prior authorization");

  if (day < *start)
    return StepResult::refused("authorization " + number + " is valid from " + date_text(*start) + "; today is " + date_text(day));
  if (day > *expiry)
    return StepResult::refused("authorization " + number + " expired on " + date_text(*expiry) + "; today is " + date_text(day) +
                               ": a re-authorization is needed before this session");

  std::int64_t session = r.repetition;
  if (session <= 0) session = as_integer(r.find(r.step, "session_number")).value_or(0) + 1;
  const std::int64_t needed = used_before + session * per_session;
  if (needed > *units)
    return StepResult::refused("session " + std::to_string(session) + " would bring the units used to " + std::to_string(needed) +
                               ", but authorization " + number + " covers " + std::to_string(*units) +
                               ": a re-authorization is needed before this session");

  const std::int64_t remaining = *units - needed;
  return StepResult::ok({{"authorization_number", number},
                         {"session_number", session},
                         {"units_used", needed},
                         {"units_remaining", remaining},
                         {"expiry_date", date_text(*expiry)},
                         {"days_to_expiry", *expiry - day},
                         {"last_authorized_session", remaining < per_session}});
}

// ================================================================================== charge_session

StepResult Insurance::charge_session(const StepRequest& r) const {
  // ---- settings of the step
  std::string route;
  bool route_from_data = false;
  std::optional<Ref> route_ref;
  if (const json::value* v = r.step_settings.if_contains("route")) {
    if (!v->is_string()) throw SetupError("step setting 'route' must be \"esketamine\" or \"iv_ketamine\"");
    route = std::string(v->get_string());
    if (route != "esketamine" && route != "iv_ketamine")
      throw SetupError("step setting 'route' must be \"esketamine\" or \"iv_ketamine\", not \"" + route + "\"");
  } else if ((route_ref = optional_ref(r.step_settings, "route_from"))) {
    route_from_data = true;
  } else {
    throw SetupError("the step needs the step setting 'route' (\"esketamine\" or \"iv_ketamine\") or 'route_from' (\"step.field\")");
  }
  if (!r.step_settings.contains("coverage_from"))
    throw SetupError("the step needs the step setting 'coverage_from': the id of the coverage step, such as \"coverage\"");
  const std::string coverage_step = step_ids(r.step_settings, "coverage_from").front();
  std::vector<std::string> pa_steps;
  if (r.step_settings.contains("authorization_from")) pa_steps = step_ids(r.step_settings, "authorization_from");
  const std::int64_t day = today(r, utc_offset_minutes_);

  if (route_from_data) {
    const json::value* v = lookup(r, *route_ref);
    if (!v || !v->is_string()) return StepResult::refused("no route is recorded (" + route_ref->text() + ")");
    route = std::string(v->get_string());
    if (route != "esketamine" && route != "iv_ketamine")
      return StepResult::refused("the recorded route '" + route + "' (" + route_ref->text() + ") is neither esketamine nor iv_ketamine");
  }

  // ---- coverage
  const json::value* cov = r.case_data.if_contains(coverage_step);
  if (!cov || !cov->is_object()) return StepResult::refused("no coverage is recorded yet (step '" + coverage_step + "')");
  const std::string payer = text_of(cov->get_object(), "payer");
  const std::string payer_type = text_of(cov->get_object(), "payer_type");
  const std::string covered = text_of(cov->get_object(), "covered");
  if (payer_type != "medicare" && payer_type != "commercial")
    return StepResult::refused("the coverage records no payer type (medicare or commercial) in step '" + coverage_step + "'");
  if (covered == "no")
    return StepResult::refused("the coverage is recorded as not covered by " + (payer.empty() ? std::string("the payer") : payer) +
                               ": the session cannot be billed to insurance");

  // ---- codes
  std::vector<Charge> charges;
  std::optional<std::string> problem;
  auto add = [&](const std::string& code, const std::string& description, std::int64_t units, std::vector<std::string> modifiers) {
    if (problem) return;
    auto fee = fees_.find(code);
    if (fee == fees_.end()) {
      problem = "fee_schedule has no amount for " + code + ": add it to [plugins.insurance.fee_schedule]";
      return;
    }
    std::int64_t amount = 0;
    if (__builtin_mul_overflow(fee->second, units, &amount) || amount > kMaxCents * 1000) {
      problem = "the amount for " + std::to_string(units) + " units of " + code + " is too large";
      return;
    }
    charges.push_back(Charge{code, description, amount, units, std::move(modifiers)});
  };

  json::object data{{"route", route}, {"payer", payer}, {"payer_type", payer_type}, {"service_date", date_text(day)}};

  if (route == "esketamine") {
    const Ref dose_ref = required_ref(r.step_settings, "dose_from", "session_dosing.dose_mg");
    auto dose = StepRequest::as_number(lookup(r, dose_ref));
    if (!dose) return StepResult::refused("no esketamine dose is recorded (" + dose_ref.text() + ")");
    if (!std::isfinite(*dose) || *dose <= 0)
      return StepResult::refused("the esketamine dose (" + dose_ref.text() + ") must be more than 0 mg");
    data["dose_mg"] = *dose;

    if (payer_type == "medicare") {
      // G2082 up to 56 mg, G2083 above; KX shows REMS enrollment; no separate J-code [S55][S56][S57].
      if (auto ref = optional_ref(r.step_settings, "rems_enrolled_from")) {
        const json::value* v = lookup(r, *ref);
        if (!v || !v->is_bool() || !v->get_bool())
          return StepResult::refused("G2082/G2083 carry modifier KX, which attests REMS enrollment, but the patient's enrollment is not recorded (" +
                                     ref->text() + ")");
      }
      if (auto ref = optional_ref(r.step_settings, "established_patient_from")) {
        const json::value* v = lookup(r, *ref);
        if (!v || !v->is_bool() || !v->get_bool())
          return StepResult::refused("G2082/G2083 are for established patients only, and the patient is not recorded as established (" +
                                     ref->text() + ")");
      }
      if (*dose <= kG2082MaxMg)
        add("G2082", "Esketamine nasal self-administration, up to 56 mg, supervised, incl. 2 h observation (established patient)", 1, {"KX"});
      else
        add("G2083", "Esketamine nasal self-administration, more than 56 mg, supervised, incl. 2 h observation (established patient)", 1, {"KX"});
    } else {
      // Commercial payers: E/M plus prolonged-service codes that vary by payer [S61].
      auto lines = commercial_.find(lower(payer));
      if (lines == commercial_.end()) lines = commercial_.find("default");
      if (lines == commercial_.end())
        return StepResult::refused("commercial_codes has no codes for payer '" + payer +
                                   "' and no \"default\": esketamine codes for commercial payers vary by payer; add them to [plugins.insurance.commercial_codes]");
      for (const auto& line : lines->second) add(line.code, line.description, line.units, line.modifiers);
      if (bill_esketamine_drug_commercial_) {
        // The drug per 1 mg: J0013 from 2026-01-01, S0013 before [S36][S59]; never J0222 [S60].
        if (*dose != std::floor(*dose))
          return StepResult::refused("the esketamine drug is billed per 1 mg, but the dose is " + number_text(*dose) + " mg");
        const bool j_code = day >= days_from_civil(2026, 1, 1);
        add(j_code ? "J0013" : "S0013", "Esketamine nasal spray, 1 mg", static_cast<std::int64_t>(*dose), {});
      }
    }
  } else {
    const Ref minutes_ref = required_ref(r.step_settings, "minutes_from", "infusion.infusion_minutes");
    auto minutes = StepRequest::as_number(lookup(r, minutes_ref));
    if (!minutes) return StepResult::refused("no infusion time is recorded (" + minutes_ref.text() + ")");
    if (!std::isfinite(*minutes) || *minutes <= 0)
      return StepResult::refused("the infusion time (" + minutes_ref.text() + ") must be more than 0 minutes");
    data["infusion_minutes"] = *minutes;

    if (*minutes < kInfusionMinMinutes) {
      add("96374", "IV push, single or initial drug (infusion of 15 minutes or less)", 1, {});
    } else {
      add("96365", "IV infusion, initial, up to 1 hour", 1, {});
      // Each hour after the first counts when more than 30 minutes of it are used.
      const double beyond = *minutes - kHourMinutes;
      std::int64_t extra = 0;
      if (beyond > 0) {
        const double full = std::floor(beyond / kHourMinutes);
        extra = static_cast<std::int64_t>(full) + (beyond - full * kHourMinutes > kAddOnThresholdMinutes ? 1 : 0);
      }
      if (extra > 0) add("96366", "IV infusion, each additional hour", extra, {});
    }
    if (bill_iv_drug_) add(iv_drug_code_, "Unclassified drug (ketamine)", 1, {});
  }
  if (problem) return StepResult::refused(*problem);

  if (!pa_steps.empty()) {
    const json::object* pa = authorization(r, pa_steps);
    if (pa && text_of(*pa, "status") == "approved") data["authorization_number"] = text_of(*pa, "authorization_number");
  }

  json::array codes;
  std::int64_t total = 0;
  for (const auto& c : charges) {
    codes.emplace_back(c.code);
    total += c.amount_cents;
  }
  data["codes"] = std::move(codes);
  data["total_cents"] = total;
  StepResult result = StepResult::ok(std::move(data));
  result.charges = std::move(charges);
  return result;
}

}  // namespace clinicflow_billing

CLINICFLOW_PLUGIN(clinicflow_billing::Insurance)
