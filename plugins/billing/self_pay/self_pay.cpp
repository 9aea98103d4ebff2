// self_pay billing plugin. Every fee is the clinic's own setting; the codes on a superbill are the
// clinic's choice among those in docs (domain brief §5). README.md documents the rules.
#include "self_pay.hpp"

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
constexpr std::string_view kPerSession = "per_session";
constexpr const char* kActions = "choose_payment, consultation, session or superbill";

// Codes the plugin issues for its own charges on the case: a self-pay fee is one bundled price,
// so these are the clinic's internal service codes, not CPT/HCPCS codes. The superbill maps
// each service to the procedure codes of `procedure_codes`.
constexpr const char* kConsultationCharge = "SELFPAY-CONSULT";
constexpr const char* kSessionCharge = "SELFPAY-SESSION";
constexpr const char* kPackageCharge = "SELFPAY-PACKAGE";

// ------------------------------------------------------------------------------ small helpers

std::string money(std::int64_t cents) {
  std::string c = std::to_string(cents % 100);
  return "$" + std::to_string(cents / 100) + "." + (c.size() < 2 ? "0" + c : c);
}

// ------------------------------------------------------------------------------ step settings

std::string action_of(const json::object& step_settings) {
  const json::value* a = step_settings.if_contains("action");
  if (!a || !a->is_string())
    throw SetupError(std::string("the step needs [step.settings] action = \"...\": one of ") + kActions);
  return std::string(a->get_string());
}

Ref parse_ref(const json::object& settings, std::string_view key) {
  const json::value* v = settings.if_contains(key);
  if (!v || !v->is_string())
    throw SetupError("step setting '" + std::string(key) + "' must name a field as \"step.field\"");
  std::string_view s = v->get_string();
  std::size_t dot = s.find('.');
  if (dot == std::string_view::npos || !is_identifier(s.substr(0, dot)) || !is_identifier(s.substr(dot + 1)))
    throw SetupError("step setting '" + std::string(key) + "' = \"" + std::string(s) + "\" must name a field as \"step.field\"");
  return {std::string(s.substr(0, dot)), std::string(s.substr(dot + 1))};
}

std::vector<std::string> step_ids(const json::object& settings, std::string_view key) {
  const json::value* v = settings.if_contains(key);
  std::vector<std::string> out;
  auto bad = [&] {
    return SetupError("step setting '" + std::string(key) + "' must be a step id or a list of step ids, such as [\"consultation_charge\", \"session_charge\"]");
  };
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

std::int64_t today(const StepRequest& r, std::int64_t utc_offset_minutes) {
  auto t = parse_datetime(r.now);
  if (!t) throw SetupError("the request's time 'now' = \"" + r.now + "\" is not an RFC 3339 date-time");
  return floor_div(*t + utc_offset_minutes * 60, 86400);
}

// The running list of what a self_pay charging step has charged on this case: its previous data
// (the latest completion of the same step, e.g. the previous session) carries it forward.
json::array ledger_of(const StepRequest& r, std::string_view step) {
  const json::value* v = r.find(step, "charged");
  return v && v->is_array() ? v->get_array() : json::array{};
}

std::int64_t line_amount(const json::value& line) {
  const json::value* a = line.is_object() ? line.get_object().if_contains("amount_cents") : nullptr;
  return as_integer(a).value_or(0);
}

std::string line_text(const json::value& line, std::string_view key) {
  const json::value* v = line.is_object() ? line.get_object().if_contains(key) : nullptr;
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t ledger_total(const json::array& ledger) {
  std::int64_t total = 0;
  for (const auto& line : ledger) total += line_amount(line);
  return total;
}

// ------------------------------------------------------------------------------ plugin settings

std::int64_t cents_setting(const Settings& s, const char* name, const char* what) {
  if (!present(s, name)) throw std::invalid_argument(std::string("setting '") + name + "' is required: " + what);
  std::int64_t v = s.integer(name);
  if (v < 0 || v > kMaxCents) throw std::invalid_argument(std::string("setting '") + name + "' must be whole cents, 0 or more");
  return v;
}

std::string string_setting(const Settings& s, const char* name) { return present(s, name) ? trim(s.string(name)) : std::string(); }

std::string code_setting(const json::value& v, const std::string& where) {
  if (!v.is_string()) throw std::invalid_argument(where + ": 'code' must be text, such as \"96365\"");
  std::string code = trim(v.get_string());
  if (!code.empty() && code[0] == '+') code.erase(0, 1);  // "+96366" marks an add-on code in the literature
  bool ok = code.size() == 5 && std::all_of(code.begin(), code.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
  if (!ok) throw std::invalid_argument(where + ": '" + code + "' is not a CPT/HCPCS code (5 characters: digits and capital letters, such as 96365 or J3490)");
  if (code == "J0222")
    throw std::invalid_argument(where + ": J0222 is not the esketamine code; esketamine nasal spray is J0013 per 1 mg (replacing S0013 from 2026-01-01)");
  return code;
}

std::vector<SelfPay::ProcedureCode> procedure_list(const json::value& v, const std::string& service) {
  const std::string where = "setting 'procedure_codes." + service + "'";
  if (!v.is_array()) throw std::invalid_argument(where + " must be a list of {code, description, units}");
  std::vector<SelfPay::ProcedureCode> out;
  for (const auto& e : v.get_array()) {
    if (!e.is_object()) throw std::invalid_argument(where + " must be a list of {code, description, units}");
    const json::object& o = e.get_object();
    for (const auto& kv : o)
      if (kv.key() != "code" && kv.key() != "description" && kv.key() != "units")
        throw std::invalid_argument(where + ": unknown key '" + std::string(kv.key()) + "' (use code, description, units)");
    SelfPay::ProcedureCode pc;
    if (!o.contains("code")) throw std::invalid_argument(where + ": every entry needs a 'code'");
    pc.code = code_setting(o.at("code"), where);
    if (const json::value* d = o.if_contains("description")) {
      if (!d->is_string()) throw std::invalid_argument(where + ": 'description' must be text");
      pc.description = trim(d->get_string());
    }
    if (const json::value* u = o.if_contains("units")) {
      auto n = as_integer(u);
      if (!n || *n < 1 || *n > 1000) throw std::invalid_argument(where + ": 'units' must be a whole number, 1 or more");
      pc.units = *n;
    }
    out.push_back(std::move(pc));
  }
  return out;
}

bool submitted_flag(const StepRequest& r, std::string_view name) {
  const json::value* v = r.input(name);
  return v && v->is_bool() && v->get_bool();
}

bool icd10_shape(std::string_view s) {
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (s.size() < 3 || !upper(s[0]) || !digit(s[1]) || !(digit(s[2]) || upper(s[2]))) return false;
  if (s.size() == 3) return true;
  if (s[3] != '.' || s.size() < 5 || s.size() > 8) return false;
  return std::all_of(s.begin() + 4, s.end(), [&](char c) { return digit(c) || upper(c); });
}

}  // namespace

// ================================================================================== manifest

clinicflow::Manifest SelfPay::manifest() {
  using clinicflow::SettingSpec;
  return {
      "self_pay",
      "billing",
      "1.0.0",
      "Self-pay billing: payment choice (package or per session, payment plan, HSA/FSA), consultation and session "
      "charges from the clinic's fee schedule, package tracking, and superbills for out-of-network claims.",
      {
          SettingSpec{"session_fee_cents", "integer", nullptr,
                      "Required. The clinic's fee for one session, in whole cents. The clinic's own price; published self-pay IV "
                      "prices vary widely [S73][S74]."},
          SettingSpec{"consultation_fee_cents", "integer", nullptr,
                      "Required. The clinic's consultation fee, in whole cents (0 for a free consultation) [S74]."},
          SettingSpec{"packages", "array", json::array{},
                      "Prepaid packages: a list of {name, sessions, price_cents}. name is an identifier (lower-case letters, digits, "
                      "'_') and is the value staff choose. Prices are the clinic's own [S74]."},
          SettingSpec{"payment_plan_max_installments", "integer", 1,
                      "The most installments a package may be split into; 1 means no payment plans."},
          SettingSpec{"when_package_used_up", "string", "refuse",
                      "What a session does when the chosen package has no sessions left: \"refuse\" (the step fails with a "
                      "reason, for staff to settle payment) or \"charge_per_session\" (charge session_fee_cents)."},
          SettingSpec{"provider_name", "string", "", "Billing provider or practice name printed on superbills (required for superbills)."},
          SettingSpec{"provider_npi", "string", "", "The provider's 10-digit NPI for superbills (required for superbills)."},
          SettingSpec{"tax_id", "string", "", "The practice's tax id (EIN) for superbills (required for superbills)."},
          SettingSpec{"address", "string", "", "The practice address for superbills (required for superbills)."},
          SettingSpec{"procedure_codes", "table", json::object{},
                      "Procedure codes a superbill lists per service: {consultation = [...], session = [...]}, each entry "
                      "{code, description, units = 1} per occurrence. E.g. IV infusion 96365 (+96366 per additional hour past "
                      "90 min) [S62][S63], ketamine J3490 [S64]. Keep to a few primary codes [S76]."},
          SettingSpec{"utc_offset_minutes", "integer", 0,
                      "The clinic's offset from UTC in minutes (e.g. -300 for UTC-5), used to date charges and superbills by the "
                      "clinic's calendar. Change it when daylight saving time starts or ends."},
      }};
}

// ================================================================================== settings

SelfPay::SelfPay(const Settings& s) {
  session_fee_cents_ = cents_setting(s, "session_fee_cents", "the clinic's fee for one session, in whole cents");
  consultation_fee_cents_ = cents_setting(s, "consultation_fee_cents", "the clinic's consultation fee, in whole cents");

  if (present(s, "packages")) {
    for (const auto& item : s.array("packages")) {
      const char* shape = "setting 'packages': each package must be a table {name, sessions, price_cents}";
      if (!item.is_object()) throw std::invalid_argument(shape);
      const json::object& o = item.get_object();
      for (const auto& kv : o)
        if (kv.key() != "name" && kv.key() != "sessions" && kv.key() != "price_cents")
          throw std::invalid_argument("setting 'packages': unknown key '" + std::string(kv.key()) + "' (use name, sessions, price_cents)");
      const json::value* name = o.if_contains("name");
      if (!name || !name->is_string() || !is_identifier(name->get_string()))
        throw std::invalid_argument("setting 'packages': each package needs a 'name' of lower-case letters, digits and '_', such as \"induction_6\"");
      Package p;
      p.name = std::string(name->get_string());
      if (p.name == kPerSession) throw std::invalid_argument("setting 'packages': the name 'per_session' is reserved for paying per session");
      if (find_package(p.name)) throw std::invalid_argument("setting 'packages': the name '" + p.name + "' is used twice");
      auto sessions = as_integer(o.if_contains("sessions"));
      if (!sessions || *sessions < 1)
        throw std::invalid_argument("setting 'packages': package '" + p.name + "' needs 'sessions', a whole number of 1 or more");
      auto price = as_integer(o.if_contains("price_cents"));
      if (!price || *price < 0 || *price > kMaxCents)
        throw std::invalid_argument("setting 'packages': package '" + p.name + "' needs 'price_cents', whole cents, 0 or more");
      p.sessions = *sessions;
      p.price_cents = *price;
      packages_.push_back(std::move(p));
    }
  }

  if (present(s, "payment_plan_max_installments")) {
    max_installments_ = s.integer("payment_plan_max_installments");
    if (max_installments_ < 1 || max_installments_ > 1000)
      throw std::invalid_argument("setting 'payment_plan_max_installments' must be 1 or more (1 means no payment plans)");
  }

  if (present(s, "when_package_used_up")) {
    std::string v = s.string("when_package_used_up");
    if (v != "refuse" && v != "charge_per_session")
      throw std::invalid_argument("setting 'when_package_used_up' must be \"refuse\" or \"charge_per_session\", not \"" + v + "\"");
    charge_after_package_ = v == "charge_per_session";
  }

  provider_name_ = string_setting(s, "provider_name");
  provider_npi_ = string_setting(s, "provider_npi");
  tax_id_ = string_setting(s, "tax_id");
  address_ = string_setting(s, "address");
  if (!provider_npi_.empty() &&
      (provider_npi_.size() != 10 || !std::all_of(provider_npi_.begin(), provider_npi_.end(), [](char c) { return c >= '0' && c <= '9'; })))
    throw std::invalid_argument("setting 'provider_npi' must be the 10-digit NPI, not \"" + provider_npi_ + "\"");

  if (present(s, "procedure_codes")) {
    for (const auto& kv : s.table("procedure_codes")) {
      if (kv.key() == "consultation")
        consultation_codes_ = procedure_list(kv.value(), "consultation");
      else if (kv.key() == "session")
        session_codes_ = procedure_list(kv.value(), "session");
      else
        throw std::invalid_argument("setting 'procedure_codes': unknown service '" + std::string(kv.key()) + "' (use consultation, session)");
    }
  }

  if (present(s, "utc_offset_minutes")) {
    utc_offset_minutes_ = s.integer("utc_offset_minutes");
    if (utc_offset_minutes_ < -720 || utc_offset_minutes_ > 840)
      throw std::invalid_argument("setting 'utc_offset_minutes' must lie between -720 and 840 (UTC-12:00 to UTC+14:00)");
  }
}

const SelfPay::Package* SelfPay::find_package(const std::string& name) const {
  for (const auto& p : packages_)
    if (p.name == name) return &p;
  return nullptr;
}

std::string SelfPay::options_text() const {
  std::string out(kPerSession);
  for (const auto& p : packages_) out += ", " + p.name;
  return out;
}

// ================================================================================== dispatch

std::vector<FieldSpec> SelfPay::fields(const json::object& step_settings) {
  std::string action;
  try {
    action = action_of(step_settings);
  } catch (const SetupError& e) {
    throw std::invalid_argument(e.what());
  }
  if (action == "consultation" || action == "session" || action == "superbill") return {};
  if (action != "choose_payment") throw std::invalid_argument("unknown action '" + action + "': use " + kActions);

  json::array values{json::string(kPerSession)};
  std::string help = "Per session: " + money(session_fee_cents_) + " each.";
  for (const auto& p : packages_) {
    values.emplace_back(p.name);
    help += " " + p.name + ": " + std::to_string(p.sessions) + " sessions for " + money(p.price_cents) + ".";
  }
  FieldSpec pricing = field("pricing", "enum", "Payment option", help, true);
  pricing["values"] = std::move(values);

  FieldSpec installments = field("installments", "integer", "Payment plan installments",
                                 "1 = paid in full. A plan of more than 1 installment is for packages only.");
  installments["min"] = 1;
  installments["max"] = max_installments_;

  return {std::move(pricing), std::move(installments),
          field("hsa_fsa", "boolean", "Paying with HSA/FSA",
                "Eligibility depends on the patient's plan; the patient should confirm with the plan administrator."),
          field("letter_of_medical_necessity", "boolean", "Letter of medical necessity required",
                "Some HSA/FSA administrators require a letter of medical necessity.")};
}

StepResult SelfPay::review(const StepRequest& r) {
  try {
    std::string action = action_of(r.step_settings);
    if (action == "choose_payment") return choose_payment(r);
    if (action == "consultation" || action == "session" || action == "superbill")
      return StepResult::failed("action '" + action + "' runs as an automatic step (kind = \"automatic\"), not as a task");
    return StepResult::failed("unknown action '" + action + "': use " + kActions);
  } catch (const SetupError& e) {
    return StepResult::failed(e.what());
  }
}

StepResult SelfPay::run(const StepRequest& r) {
  try {
    std::string action = action_of(r.step_settings);
    if (action == "consultation") return consultation(r);
    if (action == "session") return session(r);
    if (action == "superbill") return superbill(r);
    if (action == "choose_payment") return StepResult::failed("action 'choose_payment' is a task for billing staff, not an automatic step");
    return StepResult::failed("unknown action '" + action + "': use " + kActions);
  } catch (const SetupError& e) {
    return StepResult::failed(e.what());
  }
}

// ================================================================================== choose_payment

StepResult SelfPay::choose_payment(const StepRequest& r) const {
  const json::value* p = r.input("pricing");
  if (!p || !p->is_string()) return StepResult::refused("choose a payment option: " + options_text());
  const std::string pricing(p->get_string());
  const Package* package = find_package(pricing);
  if (pricing != kPerSession && !package)
    return StepResult::refused("'" + pricing + "' is not one of the clinic's payment options: " + options_text());

  std::int64_t installments = 1;
  if (const json::value* v = r.input("installments"); v && !v->is_null()) {
    auto n = as_integer(v);
    if (!n) return StepResult::refused("installments must be a whole number");
    installments = *n;
  }
  if (installments < 1) return StepResult::refused("installments must be at least 1 (1 = paid in full)");
  if (installments > max_installments_)
    return StepResult::refused("the clinic allows at most " + std::to_string(max_installments_) + " installment" +
                               (max_installments_ == 1 ? "" : "s") + " (" + std::to_string(installments) + " chosen)");
  if (installments > 1 && !package)
    return StepResult::refused("a payment plan is for packages only: per-session fees are paid at each session");

  json::object data;
  data["installments"] = installments;
  if (package) {
    data["package_sessions"] = package->sessions;
    data["package_price_cents"] = package->price_cents;
    // Equal installments in whole cents; the first one takes the remainder.
    const std::int64_t base = package->price_cents / installments;
    data["installment_cents"] = base;
    data["first_installment_cents"] = base + package->price_cents % installments;
  } else {
    data["session_fee_cents"] = session_fee_cents_;
  }
  if (submitted_flag(r, "hsa_fsa"))
    data["hsa_fsa_note"] =
        "HSA/FSA eligibility depends on the plan: the patient should confirm with the plan administrator, which may require "
        "a letter of medical necessity.";
  return StepResult::ok(std::move(data));
}

// ================================================================================== charges

StepResult SelfPay::consultation(const StepRequest& r) const {
  const std::string date = date_text(today(r, utc_offset_minutes_));
  json::array ledger = ledger_of(r, r.step);
  ledger.push_back(json::object{{"service", "consultation"}, {"date", date}, {"amount_cents", consultation_fee_cents_}, {"units", 1}});

  json::object data{{"service", "consultation"},
                    {"service_date", date},
                    {"amount_cents", consultation_fee_cents_},
                    {"charged_to_date_cents", ledger_total(ledger)},
                    {"charged", std::move(ledger)}};
  StepResult result = StepResult::ok(std::move(data));
  result.charges.push_back(Charge{kConsultationCharge, "Consultation (self-pay)", consultation_fee_cents_, 1, {}});
  return result;
}

StepResult SelfPay::session(const StepRequest& r) const {
  const std::string date = date_text(today(r, utc_offset_minutes_));

  std::string pricing(kPerSession);
  if (r.step_settings.contains("pricing_from")) {
    const Ref ref = parse_ref(r.step_settings, "pricing_from");
    const json::value* v = lookup(r, ref);
    if (!v) return StepResult::refused("no payment option is recorded yet (" + ref.text() + "): record the payment choice before the session is charged");
    if (!v->is_string()) throw SetupError("step setting 'pricing_from' = \"" + ref.text() + "\" must name the payment option field of a choose_payment step");
    pricing = std::string(v->get_string());
  }
  const Package* package = nullptr;
  if (pricing != kPerSession) {
    package = find_package(pricing);
    if (!package)
      return StepResult::refused("the recorded payment option '" + pricing + "' is not one of the clinic's payment options (" + options_text() + ")");
  }

  json::array ledger = ledger_of(r, r.step);
  std::int64_t session_number = 1, used = 0;
  for (const auto& line : ledger) {
    if (line_text(line, "service") == "session") ++session_number;
    if (package && line_text(line, "package") == package->name) ++used;
  }

  json::object line{{"service", "session"}, {"date", date}, {"session", session_number}, {"units", 1}};
  json::object data{{"service", "session"}, {"service_date", date}, {"session_number", session_number}, {"pricing", pricing}};
  Charge charge;
  if (package && used < package->sessions) {
    const std::string of = "session " + std::to_string(used + 1) + " of " + std::to_string(package->sessions);
    if (used == 0)  // the package is charged in full with its first session; later sessions draw on it at no charge
      charge = Charge{kPackageCharge, "Package '" + package->name + "', " + std::to_string(package->sessions) + " sessions (self-pay; " + of + ")",
                      package->price_cents, 1, {}};
    else
      charge = Charge{kSessionCharge, "Session drawn from package '" + package->name + "' (" + of + ")", 0, 1, {}};
    line["package"] = package->name;
    data["package"] = package->name;
    data["package_sessions_used"] = used + 1;
    data["package_sessions_remaining"] = package->sessions - used - 1;
  } else if (package) {
    if (!charge_after_package_)
      return StepResult::refused("package '" + package->name + "' is used up: all " + std::to_string(package->sessions) +
                                 " sessions have been drawn. Settle the payment for further sessions with the patient (the clinic can set "
                                 "when_package_used_up = \"charge_per_session\" to charge the per-session fee instead)");
    charge = Charge{kSessionCharge, "Session (self-pay; package '" + package->name + "' used up)", session_fee_cents_, 1, {}};
    data["package"] = package->name;
    data["package_sessions_used"] = package->sessions;
    data["package_sessions_remaining"] = 0;
  } else {
    charge = Charge{kSessionCharge, "Session (self-pay)", session_fee_cents_, 1, {}};
  }
  line["amount_cents"] = charge.amount_cents;
  ledger.push_back(std::move(line));

  data["amount_cents"] = charge.amount_cents;
  data["charged_to_date_cents"] = ledger_total(ledger);
  data["charged"] = std::move(ledger);
  StepResult result = StepResult::ok(std::move(data));
  result.charges.push_back(std::move(charge));
  return result;
}

// ================================================================================== superbill

StepResult SelfPay::superbill(const StepRequest& r) const {
  // Settings first: a wrongly written step fails whatever the case holds.
  const Ref diagnosis_ref = parse_ref(r.step_settings, "diagnosis_from");
  const std::vector<std::string> charge_steps = step_ids(r.step_settings, "charges_from");
  std::optional<Ref> patient_ref;
  if (r.step_settings.contains("patient_id_from")) patient_ref = parse_ref(r.step_settings, "patient_id_from");
  const std::int64_t issued = today(r, utc_offset_minutes_);

  std::vector<std::string> missing;
  if (provider_name_.empty()) missing.emplace_back("provider_name");
  if (provider_npi_.empty()) missing.emplace_back("provider_npi");
  if (tax_id_.empty()) missing.emplace_back("tax_id");
  if (address_.empty()) missing.emplace_back("address");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return StepResult::refused("a superbill needs the provider's details: set " + list + " in [plugins.self_pay]");
  }

  const json::value* dx = lookup(r, diagnosis_ref);
  json::array diagnoses;
  if (dx && dx->is_string()) {
    diagnoses.emplace_back(trim(dx->get_string()));
  } else if (dx && dx->is_array()) {
    for (const auto& e : dx->get_array()) {
      if (!e.is_string()) throw SetupError("step setting 'diagnosis_from' must name a field holding ICD-10-CM codes");
      diagnoses.emplace_back(trim(e.get_string()));
    }
  } else if (dx) {
    throw SetupError("step setting 'diagnosis_from' must name a field holding ICD-10-CM codes");
  }
  if (diagnoses.empty()) return StepResult::refused("no diagnosis is recorded (" + diagnosis_ref.text() + "): a superbill needs the ICD-10-CM diagnosis code");
  for (const auto& d : diagnoses)
    if (!icd10_shape(d.get_string()))
      return StepResult::refused("'" + std::string(d.get_string()) + "' is not an ICD-10-CM code (such as F33.2)");

  std::string patient_id;
  if (patient_ref) {
    const json::value* v = lookup(r, *patient_ref);
    if (!v || !v->is_string() || trim(v->get_string()).empty())
      return StepResult::refused("no patient id is recorded (" + patient_ref->text() + ")");
    patient_id = trim(v->get_string());
  }

  struct Service {
    const char* name;
    const std::vector<ProcedureCode>* codes;
    std::int64_t count = 0, amount = 0;
    json::array dates;
  };
  Service services[] = {{"consultation", &consultation_codes_, 0, 0, {}}, {"session", &session_codes_, 0, 0, {}}};
  std::int64_t first_day = INT64_MAX, last_day = INT64_MIN;
  for (const auto& id : charge_steps) {
    const json::value* step = r.case_data.if_contains(id);
    if (!step) continue;  // not reached (e.g. no consultation on this case)
    const json::value* charged = step->is_object() ? step->get_object().if_contains("charged") : nullptr;
    if (!charged || !charged->is_array())
      throw SetupError("step '" + id + "' named in 'charges_from' holds no self_pay charges: name the steps whose action is consultation or session");
    for (const auto& line : charged->get_array()) {
      const std::string service = line_text(line, "service");
      for (auto& s : services) {
        if (service != s.name) continue;
        ++s.count;
        s.amount += line_amount(line);
        const std::string date = line_text(line, "date");
        s.dates.emplace_back(date);
        if (auto d = parse_date_prefix(date)) first_day = std::min(first_day, *d), last_day = std::max(last_day, *d);
      }
    }
  }

  json::array lines;
  std::int64_t total = 0;
  for (auto& s : services) {
    if (s.count == 0) continue;
    if (s.codes->empty())
      return StepResult::refused(std::string("procedure_codes.") + s.name + " is not set in [plugins.self_pay]: the superbill needs the procedure codes of each service charged");
    json::array codes;
    for (const auto& pc : *s.codes) {
      // S0013 was replaced by J0013 from 2026-01-01 [S36][S59].
      if (pc.code == "S0013" && last_day >= days_from_civil(2026, 1, 1))
        return StepResult::refused("procedure_codes lists S0013, which was replaced by J0013 for services from 2026-01-01");
      codes.push_back(json::object{{"code", pc.code}, {"description", pc.description}, {"units", pc.units * s.count}});
    }
    lines.push_back(json::object{{"service", s.name},
                                 {"dates", std::move(s.dates)},
                                 {"units", s.count},
                                 {"amount_cents", s.amount},
                                 {"procedure_codes", std::move(codes)}});
    total += s.amount;
  }
  if (lines.empty()) return StepResult::refused("nothing has been charged on this case yet, so there is nothing to put on a superbill");

  json::object bill{{"case_id", r.case_id}};
  if (patient_ref) bill["patient_id"] = patient_id;
  bill["issued_on"] = date_text(issued);
  if (first_day <= last_day) bill["service_period"] = json::object{{"from", date_text(first_day)}, {"to", date_text(last_day)}};
  bill["provider"] = json::object{{"name", provider_name_}, {"npi", provider_npi_}, {"tax_id", tax_id_}, {"address", address_}};
  bill["diagnosis_codes"] = std::move(diagnoses);
  bill["lines"] = std::move(lines);
  bill["total_cents"] = total;
  bill["notice"] =
      "Itemized statement of the services charged, for the patient to file with their insurer for out-of-network benefits. "
      "It does not guarantee coverage or reimbursement.";
  return StepResult::ok(json::object{{"superbill", std::move(bill)}, {"total_cents", total}});
}

}  // namespace clinicflow_billing

CLINICFLOW_PLUGIN(clinicflow_billing::SelfPay)
