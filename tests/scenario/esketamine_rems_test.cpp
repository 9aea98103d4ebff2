// Scenario tests of workflows/esketamine_rems.toml: every branch of the SPRAVATO (esketamine)
// REMS journey, through the JSON-RPC API, with the shipped configuration and real plugins.
// Amounts come from config/clinicflow.toml: G2082 = 90000, G2083 = 120000 cents (insurance
// fee_schedule); self-pay consultation 35000, package induction_6 = 270000 for 6 sessions.
#include "scenario/scenario_fixture.hpp"

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

using clinicflow::testing::Scenario;
namespace json = boost::json;

namespace {

constexpr const char* kWorkflow = "workflows/esketamine_rems.toml";
constexpr std::int64_t kMinute = 60;
constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 86400;

// ---------------------------------------------------------------- time helpers (local: the
// fixture has none). The plugins read datetimes and dates; they are built from clock.now.

std::chrono::sys_seconds parse_time(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  REQUIRE(std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &s) == 6);
  using namespace std::chrono;
  return sys_days{year{y} / month{static_cast<unsigned>(mo)} / day{static_cast<unsigned>(d)}} + hours{h} + minutes{mi} +
         seconds{s};
}

std::string format_time(std::chrono::sys_seconds t) {
  using namespace std::chrono;
  auto day_point = floor<days>(t);
  year_month_day ymd{day_point};
  hh_mm_ss hms{t - day_point};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string add_days(const std::string& date, int days) {
  return format_time(parse_time(date + "T00:00:00Z") + std::chrono::days{days}).substr(0, 10);
}

std::chrono::sys_seconds now_of(Scenario& s) { return parse_time(std::string(s.call("clock.now").at("now").as_string())); }
// The clinic's date (the shipped config keeps the billing plugins at UTC) plus `days`.
std::string date_of(Scenario& s, int days = 0) { return format_time(now_of(s) + std::chrono::days{days}).substr(0, 10); }

// ---------------------------------------------------------------- history helpers
// Local copies of Scenario::history/events/messages: the fixture's versions range-for over
// `call(...).as_array()`, a reference into a temporary that is already destroyed when the loop
// runs (undefined behaviour; it crashed here on long histories).

std::vector<json::object> history_of(Scenario& s, const json::value& case_id) {
  json::value result = s.call("case.history", {{"case_id", case_id}});
  std::vector<json::object> out;
  for (const auto& e : result.as_array()) out.push_back(e.as_object());
  return out;
}

std::vector<json::object> events_of(Scenario& s, const json::value& case_id, const std::string& type) {
  std::vector<json::object> out;
  for (auto& e : history_of(s, case_id))
    if (e.at("type") == type.c_str()) out.push_back(std::move(e));
  return out;
}

std::vector<json::object> messages_of(Scenario& s, const json::value& case_id) {
  s.deliver_messages();
  json::value result = s.call("messages.list", {{"case_id", case_id}, {"include_body", true}});
  std::vector<json::object> out;
  for (const auto& m : result.as_array()) out.push_back(m.as_object());
  return out;
}

std::vector<std::string> completed_steps(Scenario& s, const json::value& case_id) {
  std::vector<std::string> out;
  for (const auto& e : events_of(s, case_id, "step_completed")) out.emplace_back(e.at("step").as_string());
  return out;
}

std::size_t count_of(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), x));
}

bool contains(const std::vector<std::string>& v, const std::string& x) { return count_of(v, x) > 0; }

std::vector<std::string> stages_entered(Scenario& s, const json::value& case_id) {
  std::vector<std::string> out;
  for (const auto& e : events_of(s, case_id, "stage_entered")) {
    std::string stage(e.at("data").at("stage").as_string());
    if (out.empty() || out.back() != stage) out.push_back(stage);
  }
  return out;
}

std::map<std::string, std::pair<std::int64_t, std::int64_t>> by_code(Scenario& s, const json::value& case_id) {
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> out;  // code -> (units, amount_cents)
  json::object summary = s.billing(case_id);
  for (const auto& c : summary.at("by_code").as_array())
    out[std::string(c.at("code").as_string())] = {c.at("units").to_number<std::int64_t>(), c.at("amount_cents").to_number<std::int64_t>()};
  return out;
}

// Messages of one template: (to, address) pairs.
std::vector<std::pair<std::string, std::string>> recipients(const std::vector<json::object>& messages, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : messages)
    if (m.at("template") == name.c_str()) out.emplace_back(std::string(m.at("to").as_string()), std::string(m.at("address").as_string()));
  return out;
}

// ---------------------------------------------------------------- the journey, step by step

const char* kPatientPhone = "+15550100";
const char* kReferrer = "fax:+15550111";
const char* kMentalHealth = "Dr. Mental Health <mh@example.org>";
const char* kPrimaryCare = "Dr. Primary Care <pcp@example.org>";
const char* kSupportPhone = "+15550122";

struct Journey {
  Scenario& s;
  json::value id;
  json::object view;

  explicit Journey(Scenario& scenario) : s(scenario) {
    view = s.open_case("esketamine_rems");
    id = view.at("case_id");
  }

  json::object submit(const std::string& step, const json::object& data) {
    REQUIRE(Scenario::is_open(s.get(id), step));
    view = s.submit(id, step, data);
    return view;
  }
  json::object refused(const std::string& step, const json::object& data) {
    return s.error("case.submit", {{"case_id", id}, {"step", step}, {"data", data}});
  }
  json::object data_of(const std::string& step) { return s.get(id).at("data").at(step).as_object(); }
  std::string status() { return std::string(s.get(id).at("status").as_string()); }
  std::string stage() { return std::string(s.get(id).at("stage").as_string()); }

  // The common paths into the journey, each step as its own helper below describes.
  void through_consultation() {
    referral();
    eligibility();
    consultation();
  }
  void through_induction(std::int64_t baseline_phq9) {
    through_consultation();
    insured_and_approved();
    pretreatment(baseline_phq9);
    induction();
  }

  void referral(std::int64_t age = 46, std::int64_t failed_trials = 3) {
    submit("referral_intake", {{"referring_provider", "Dr. Hannah Okafor, Riverside Psychiatry"},
                               {"referring_provider_contact", kReferrer},
                               {"patient_phone", kPatientPhone},
                               {"mental_health_provider_contact", kMentalHealth},
                               {"primary_care_contact", kPrimaryCare},
                               {"diagnosis", "F33.2"},
                               {"age", age},
                               {"failed_adequate_trials", failed_trials},
                               {"medication_trials", "sertraline 200 mg 8 wk (SSRI), bupropion 300 mg 8 wk (NDRI): no response"},
                               {"therapies_tried", "CBT 16 sessions"},
                               {"current_severity", "PHQ-9 20"},
                               {"functional_impact", "off work 3 months"},
                               {"suicidal_ideation_current_episode", false},
                               {"medical_conditions", "none relevant"},
                               {"history_received", true}});
  }

  static json::object eligible() {
    return {{"aneurysmal_vascular_disease_or_avm", false},
            {"intracerebral_hemorrhage_history", false},
            {"hypersensitivity", false},
            {"uncontrolled_hypertension", false},
            {"cardiac_condition_excludes", false},
            {"active_psychosis", false},
            {"pregnant_or_breastfeeding", false},
            {"substance_use_history", "none"},
            {"capacity_to_consent", true},
            {"other_exclusion", false},
            {"can_attend_series", true},
            {"understands_dissociative_effects", true},
            {"has_ride_home", true}};
  }

  void eligibility(json::object overrides = {}) {
    json::object data = eligible();
    for (auto& [k, v] : overrides) data[k] = v;
    submit("eligibility_review", data);
  }

  void consultation(const std::string& decision = "proceed") {
    submit("consultation", {{"goals", "return to work"},
                            {"risks_benefits_discussed", true},
                            {"medication_cautions_reviewed", true},
                            {"decision", decision}});
  }

  void medicare_coverage() {
    submit("payer_intake", {{"insured", true}});
    submit("coverage", {{"payer", "Medicare"}, {"member_id", "1EG4-TE5-MK72"}, {"payer_type", "medicare"}, {"covered", "yes"}});
  }

  json::object pa_criteria(const std::string& status) {
    return {{"status", status},
            {"criteria_two_trials_different_classes", true},
            {"criteria_psychiatrist_prescriber", true},
            {"criteria_psychosis_history_reviewed", true},
            {"criteria_pdmp_checked", true},
            {"criteria_rems_certified_setting", true},
            {"recent_phq9", 20}};
  }

  json::object approval(const std::string& number, std::int64_t units) {
    return {{"status", "approved"},
            {"authorization_number", number},
            {"authorized_units", units},
            {"start_date", date_of(s)},
            {"expiry_date", date_of(s, 180)}};
  }

  void insured_and_approved(std::int64_t units = 8) {
    medicare_coverage();
    submit("pa_request", pa_criteria("requested"));
    submit("pa_decision", approval("PA-1001", units));
  }

  void pretreatment(std::int64_t baseline_phq9 = 20) {
    submit("baseline", {{"phq9", baseline_phq9},
                        {"phq9_item9", 0},
                        {"weight_kg", 80},
                        {"systolic", 128},
                        {"diastolic", 82},
                        {"heart_rate", 76},
                        {"spo2", 98},
                        {"concomitant_medications", "sertraline 200 mg"}});
    submit("consent_rems", {{"informed_consent_signed", true},
                            {"rems_form_signed_by_patient", true},
                            {"rems_form_signed_by_prescriber", true},
                            {"rems_enrolled_on", date_of(s)}});
    submit("treatment_preparation", {{"ride_home_arranged", true},
                                     {"home_support_confirmed", true},
                                     {"support_person", "Luis Alvarez (spouse)"},
                                     {"support_person_phone", kSupportPhone},
                                     {"emergency_contact", "Luis Alvarez +15550122"}});
  }

  // Moves time on until the next visit's arrival check is open.
  // The common path to the first visit: referral, eligible, proceed, covered and approved,
  // pretreatment done.
  void ready_for_first_visit() {
    referral();
    eligibility();
    consultation();
    insured_and_approved();
    pretreatment();
  }

  void wait_for_arrival() {
    for (int i = 0; i < 8 && !Scenario::is_open(s.get(id), "session_arrival"); ++i) s.advance(kDay / 2);
    REQUIRE(Scenario::is_open(s.get(id), "session_arrival"));
  }

  void arrival(std::int64_t systolic = 128, std::int64_t diastolic = 82, bool ride = true) {
    wait_for_arrival();
    submit("session_arrival", {{"ride_home_confirmed", ride}, {"systolic", systolic}, {"diastolic", diastolic}});
  }

  json::object pre_dose_data(std::int64_t systolic = 130, std::int64_t diastolic = 84) {
    return {{"rems_enrolled", true},           {"prescriber_onsite", true},      {"pulse_oximeter_onsite", true},
            {"systolic", systolic},            {"diastolic", diastolic},         {"minutes_since_food", 180},
            {"minutes_since_liquids", 45}};
  }

  // Dose, 40-min BP, monitoring (time moves on 2 h 5 min) and discharge.
  void dose_to_discharge(std::int64_t dose_mg) {
    submit("pre_dose", pre_dose_data());
    auto first = now_of(s);
    std::int64_t devices = dose_mg / 28;
    submit("induction_dose", {{"dose_mg", dose_mg},
                              {"devices_used", devices},
                              {"first_device_at", format_time(first)},
                              {"last_device_at", format_time(first + std::chrono::minutes{5 * (devices - 1)})},
                              {"lot_number", "LOT-24A17"}});
    s.advance(40 * kMinute);
    submit("bp_40", {{"bp_minutes_after_dosing", 40}, {"systolic", 142}, {"diastolic", 88}, {"spo2", 97}});
    s.advance(85 * kMinute);
    submit("discharge", discharge_data(125));
  }

  static json::object discharge_data(std::int64_t minutes) {
    return {{"monitoring_minutes", minutes}, {"sedation_resolved", true}, {"dissociation_resolved", true},
            {"respiratory_depression_resolved", true}, {"systolic", 130}, {"diastolic", 80},
            {"ride_home", true},           {"ready_to_leave_minutes", 120}};
  }

  void pmf() { submit("pmf_submission", {{"submitted_on", date_of(s)}, {"method", "online"}, {"confirmation", "PMF-1"}}); }

  // The 24-72 h check opens 24 h after the discharge.
  void post_session_check(std::int64_t item9 = 0) {
    REQUIRE_FALSE(Scenario::is_open(s.get(id), "post_session_check"));
    s.advance(kDay);
    submit("post_session_check", {{"mood", "better"}, {"side_effects", "mild dizziness, resolved"}, {"phq9_item9", item9}});
  }

  void full_session(std::int64_t dose_mg) {
    arrival();
    dose_to_discharge(dose_mg);
    pmf();
    post_session_check();
  }

  // 8 doses: 56 mg on day 1, then 84 mg [S38].
  void induction() {
    for (int session = 1; session <= 8; ++session) {
      INFO("session " << session);
      full_session(session == 1 ? 56 : 84);
    }
  }
};

}  // namespace

// ================================================================================== happy path

TEST_CASE("esketamine_rems: happy path (Medicare; 8 doses; response; maintenance plan)", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.through_consultation();
  j.insured_and_approved();
  j.pretreatment(20);
  CHECK(j.stage() == "induction");
  // The first visit waits a day after the preparation; its reminder is queued at once.
  CHECK_FALSE(Scenario::is_open(j.view, "session_arrival"));
  REQUIRE(j.view.at("timers").as_array().size() == 1);
  CHECK(j.view.at("timers").as_array()[0].at("step") == "session_arrival");

  j.induction();

  // until: 8 doses given -> the series stops after 8 visits.
  CHECK(j.stage() == "response");
  CHECK(Scenario::is_open(s.get(j.id), "response_evaluation"));
  auto dose = j.data_of("induction_dose");
  CHECK(dose.at("session_number") == 8);
  CHECK(dose.at("starting_dose_mg").to_number<double>() == 56.0);
  CHECK(dose.at("treatment_phase") == "induction");
  auto auth = j.data_of("session_authorization");
  CHECK(auth.at("authorization_number") == "PA-1001");
  CHECK(auth.at("units_used") == 8);
  CHECK(auth.at("last_authorized_session") == true);
  auto discharge = j.data_of("discharge");
  CHECK(discharge.at("pmf_required") == true);
  CHECK(discharge.contains("pmf_due"));
  CHECK(discharge.contains("no_driving_until"));

  // Response: 20 -> 8 is a fall of more than 50%.
  j.submit("response_evaluation", {{"phq9", 8}, {"phq9_item9", 0}, {"continue_program", true}});
  CHECK(Scenario::is_open(j.view, "maintenance_plan"));
  j.submit("maintenance_plan", {{"dose", "84_mg"}, {"week9_frequency", "every_2_weeks"}, {"reauthorization_needed", true}});
  CHECK(j.view.at("status") == "completed");
  CHECK(j.view.at("outcome") == "completed");

  // Path.
  auto steps = completed_steps(s, j.id);
  CHECK(stages_entered(s, j.id) == std::vector<std::string>{"referral", "eligibility", "consultation", "payment", "pretreatment",
                                                            "induction", "response", "maintenance"});
  CHECK(count_of(steps, "session_arrival") == 8);
  CHECK(count_of(steps, "session_authorization") == 8);
  CHECK(count_of(steps, "pre_dose") == 8);
  CHECK(count_of(steps, "induction_dose") == 8);
  CHECK(count_of(steps, "bp_40") == 8);
  CHECK(count_of(steps, "discharge") == 8);
  CHECK(count_of(steps, "insurance_session_charge") == 8);
  CHECK(count_of(steps, "pmf_submission") == 8);
  CHECK(count_of(steps, "post_session_check") == 8);
  for (const char* skipped : {"bp_gate_review", "session_deferred", "makeup_arrival", "visit_missed", "urgent_review", "self_pay_choice", "self_pay_session_charge",
                              "pa_denial_plan", "pa_appeal", "re_evaluation", "superbill_statement", "baseline_safety_review"})
    CHECK_FALSE(contains(steps, skipped));
  CHECK(events_of(s, j.id, "step_refused").empty());
  CHECK(events_of(s, j.id, "step_failed").empty());

  // Charges: Medicare G2082 (<= 56 mg) once, G2083 (> 56 mg) 7 times, each with KX; no J-code.
  auto codes = by_code(s, j.id);
  CHECK(codes.size() == 2);
  CHECK(codes["G2082"] == std::pair<std::int64_t, std::int64_t>{1, 90000});
  CHECK(codes["G2083"] == std::pair<std::int64_t, std::int64_t>{7, 840000});
  CHECK(s.billing(j.id).at("total_cents") == 930000);
  json::object summary = s.billing(j.id);
  for (const auto& c : summary.at("charges").as_array()) {
    CHECK(c.at("step") == "insurance_session_charge");
    CHECK(c.at("modifiers") == json::array{"KX"});
  }

  // Messages.
  auto messages = messages_of(s, j.id);
  using R = std::vector<std::pair<std::string, std::string>>;
  CHECK(recipients(messages, "pretreatment_instructions") == R{{"patient", kPatientPhone}});
  CHECK(recipients(messages, "series_start_notice") == R{{"mental_health_provider", kMentalHealth}, {"primary_care", kPrimaryCare}});
  CHECK(recipients(messages, "session_reminder").size() == 8);
  CHECK(recipients(messages, "after_care").size() == 16);
  CHECK(count_of([&] {
          std::vector<std::string> to;
          for (auto& r : recipients(messages, "after_care")) to.push_back(r.first + " " + r.second);
          return to;
        }(),
                 std::string("support_person ") + kSupportPhone) == 8);
  CHECK(recipients(messages, "response_notice") == R{{"mental_health_provider", kMentalHealth}, {"primary_care", kPrimaryCare}});
  CHECK(recipients(messages, "maintenance_notice") == R{{"mental_health_provider", kMentalHealth}, {"primary_care", kPrimaryCare}});
  CHECK(messages.size() == 1 + 2 + 8 + 16 + 2 + 2);
  for (const auto& m : messages) {
    if (m.at("template") == "pretreatment_instructions") {
      std::string body(m.at("body").as_string());
      CHECK(body.find("no food for at least 2 hours") != std::string::npos);
      CHECK(body.find("no liquids for at least 30 minutes") != std::string::npos);
      CHECK(body.find("at least 1 hour before") != std::string::npos);
    }
    if (m.at("template") == "response_notice") CHECK(std::string(m.at("body").as_string()).find("baseline: 20; after induction: 8") != std::string::npos);
    if (m.at("template") == "maintenance_notice") CHECK(std::string(m.at("body").as_string()).find("every_2_weeks from week 9") != std::string::npos);
    if (m.at("template") == "after_care") CHECK(std::string(m.at("body").as_string()).find("until tomorrow, after a restful") != std::string::npos);
  }
}

// ============================================================================ referral branches

TEST_CASE("esketamine_rems: referral under 18 or fewer than 2 failed trials is declined", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  {
    Journey j(s);
    j.referral(17, 3);
    CHECK(j.view.at("status") == "closed");
    CHECK(j.view.at("outcome") == "declined");
    CHECK(j.view.at("reason") == "Patient is under 18");
  }
  {
    Journey j(s);
    j.referral(46, 1);
    CHECK(j.view.at("outcome") == "declined");
    CHECK(j.view.at("reason") == "Fewer than 2 failed adequate antidepressant trials: not treatment-resistant");
    CHECK(completed_steps(s, j.id) == std::vector<std::string>{"referral_intake"});
  }
}

// ============================================================================== contraindications

TEST_CASE("esketamine_rems: each contraindication declines with its reason and a letter to the referrer", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  const std::vector<std::tuple<std::string, json::value, std::string, std::string>> cases{
      {"aneurysmal_vascular_disease_or_avm", true, "Contraindication: aneurysmal vascular disease or arteriovenous malformation",
       "aneurysmal vascular disease or AVM: yes"},
      {"intracerebral_hemorrhage_history", true, "Contraindication: history of intracerebral hemorrhage",
       "history of intracerebral hemorrhage: yes"},
      {"hypersensitivity", true, "Contraindication: hypersensitivity to esketamine, ketamine or an excipient",
       "hypersensitivity to esketamine/ketamine/excipients: yes"},
      {"uncontrolled_hypertension", true, "Uncontrolled hypertension", "uncontrolled hypertension: yes"},
      {"cardiac_condition_excludes", true, "Cardiac condition makes treatment unsafe", "cardiac condition: yes"},
      {"active_psychosis", true, "Active psychosis", "active psychosis: yes"},
      {"pregnant_or_breastfeeding", true, "Pregnant or breastfeeding: not recommended", "pregnant or breastfeeding: yes"},
      {"capacity_to_consent", false, "No capacity to consent", "capacity to consent: no"},
      {"other_exclusion", true, "Declined by the prescriber (see the eligibility findings)", "other: yes"},
  };
  for (const auto& [field, value, reason, line] : cases) {
    INFO(field);
    Journey j(s);
    j.referral();
    j.eligibility({{field, value}, {"notes", "see attached"}});
    CHECK(j.view.at("status") == "closed");
    CHECK(j.view.at("outcome") == "declined");
    CHECK(j.view.at("reason") == reason.c_str());
    CHECK(completed_steps(s, j.id) == std::vector<std::string>{"referral_intake", "eligibility_review"});
    auto ended = events_of(s, j.id, "case_ended");
    REQUIRE(ended.size() == 1);
    CHECK(ended[0].at("step") == "eligibility_review");
    auto messages = messages_of(s, j.id);
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].at("template") == "referral_declined");
    CHECK(messages[0].at("to") == "referring_provider");
    CHECK(messages[0].at("address") == kReferrer);
    CHECK(messages[0].at("status") == "delivered");
    std::string body(messages[0].at("body").as_string());
    CHECK(body.find(line) != std::string::npos);
    CHECK(body.find("Findings: see attached") != std::string::npos);
    CHECK(s.billing(j.id).at("total_cents") == 0);
  }
}

TEST_CASE("esketamine_rems: not ready (no ride home) is closed - not declined - with a letter", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.referral();
  j.eligibility({{"has_ride_home", false}});
  CHECK(j.view.at("outcome") == "closed");
  CHECK(std::string(j.view.at("reason").as_string()).find("Not ready yet") == 0);
  auto messages = messages_of(s, j.id);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].at("template") == "referral_not_ready");
  CHECK(messages[0].at("to") == "referring_provider");
  CHECK(std::string(messages[0].at("body").as_string()).find("has a ride home after each session: no") != std::string::npos);
}

TEST_CASE("esketamine_rems: consultation outcomes", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  {
    Journey j(s);
    j.referral();
    j.eligibility();
    j.consultation("patient_declines");
    CHECK(j.view.at("outcome") == "closed");
    CHECK(j.view.at("reason") == "Patient chose not to proceed");
  }
  {
    Journey j(s);
    j.referral();
    j.eligibility();
    j.consultation("not_suitable");
    CHECK(j.view.at("outcome") == "declined");
  }
}

// ================================================================================ BP gate

TEST_CASE("esketamine_rems: BP over the gate on a session day defers the dose (not given) to a make-up visit", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.ready_for_first_visit();
  j.full_session(56);  // visit 1: dose 1

  // Visit 2: 152/94 on arrival is above the gate (label example >140/90 [S7][S38]).
  j.arrival(152, 94);
  CHECK(Scenario::is_open(j.view, "bp_gate_review"));
  CHECK_FALSE(Scenario::is_open(j.view, "pre_dose"));
  j.submit("bp_gate_review", {{"recheck_systolic", 150}, {"recheck_diastolic", 93}, {"decision", "defer"}, {"rationale", "persistently elevated"}});
  CHECK(Scenario::is_open(j.view, "session_deferred"));
  j.submit("session_deferred", {{"reason", "blood_pressure_above_gate"}});

  // Deferred, not given: no authorization check, pre-dose, dose, charge or PMF for it; the
  // make-up visit of the same repetition waits a day.
  CHECK(j.view.at("stage") == "induction");
  CHECK(j.view.at("repetition") == 2);
  CHECK(j.view.at("open_tasks").as_array().empty());
  CHECK(j.view.at("timers").as_array()[0].at("step") == "makeup_arrival");
  auto steps = completed_steps(s, j.id);
  CHECK(count_of(steps, "session_arrival") == 2);
  CHECK(count_of(steps, "induction_dose") == 1);
  CHECK(count_of(steps, "session_authorization") == 1);
  CHECK(count_of(steps, "pre_dose") == 1);
  CHECK(count_of(steps, "discharge") == 1);
  CHECK(count_of(steps, "pmf_submission") == 1);
  CHECK(s.billing(j.id).at("charges").as_array().size() == 1);
  CHECK(by_code(s, j.id)["G2082"] == std::pair<std::int64_t, std::int64_t>{1, 90000});
  auto messages = messages_of(s, j.id);
  CHECK(recipients(messages, "session_deferred") == std::vector<std::pair<std::string, std::string>>{{"patient", kPatientPhone}});
  CHECK(recipients(messages, "session_reminder").size() == 3);  // visits 1, 2 and the make-up

  // Make-up visit the next day: BP fine, dose 2 is given within repetition 2.
  s.advance(kDay);
  j.submit("makeup_arrival", {{"ride_home_confirmed", true}, {"systolic", 132}, {"diastolic", 84}});
  CHECK(contains(completed_steps(s, j.id), "session_authorization"));
  CHECK(Scenario::is_open(j.view, "pre_dose"));
  j.dose_to_discharge(84);
  j.pmf();
  j.post_session_check();
  CHECK(j.data_of("induction_dose").at("session_number") == 2);
  CHECK(j.data_of("session_authorization").at("units_used") == 2);
  CHECK(by_code(s, j.id)["G2083"] == std::pair<std::int64_t, std::int64_t>{1, 120000});
  CHECK(j.view.at("repetition") == 3);

  // Visit 3: arrival BP is fine, but at the pre-dose gate it is 150/95: the plugin refuses
  // (recorded); the dose waits until the BP is below the gate or the prescriber weighs the risk.
  j.arrival(132, 84);
  auto err = j.refused("pre_dose", j.pre_dose_data(150, 95));
  CHECK(err.at("code") == -32010);
  std::string reason(err.at("data").at("reason").as_string());
  CHECK(reason.find("pre-dose blood pressure 150/95 mmHg is above 140/90 mmHg") != std::string::npos);
  auto refusals = events_of(s, j.id, "step_refused");
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].at("step") == "pre_dose");
  CHECK(refusals[0].at("data").at("reason") == reason.c_str());
  CHECK(Scenario::is_open(s.get(j.id), "pre_dose"));
  auto accepted = j.pre_dose_data(150, 95);
  accepted["elevated_bp_risk_accepted"] = true;
  j.submit("pre_dose", accepted);
  CHECK(j.data_of("pre_dose").at("bp_elevated") == true);
  CHECK(Scenario::is_open(j.view, "induction_dose"));
}

TEST_CASE("esketamine_rems: BP over the gate again at the make-up visit ends the visit without a dose", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.ready_for_first_visit();
  j.arrival(156, 96);
  j.submit("bp_gate_review", {{"decision", "defer"}, {"rationale", "elevated"}});
  j.submit("session_deferred", {{"reason", "blood_pressure_above_gate"}});
  s.advance(kDay);
  j.submit("makeup_arrival", {{"ride_home_confirmed", true}, {"systolic", 148}, {"diastolic", 92}});
  CHECK(Scenario::is_open(j.view, "visit_missed"));
  j.submit("visit_missed", {{"reason", "blood_pressure_above_gate"}, {"notes", "refer to PCP for BP review"}});
  // Repetition 1 ended without a dose; visit 2 waits.
  CHECK(j.view.at("repetition") == 2);
  CHECK(j.view.at("timers").as_array()[0].at("step") == "session_arrival");
  auto steps = completed_steps(s, j.id);
  for (const char* never : {"session_authorization", "pre_dose", "induction_dose", "discharge", "pmf_submission", "post_session_check"})
    CHECK_FALSE(contains(steps, never));
  CHECK(s.billing(j.id).at("charges").as_array().empty());
  CHECK(recipients(messages_of(s, j.id), "visit_missed") == std::vector<std::pair<std::string, std::string>>{{"patient", kPatientPhone}});
  // The next visit's first dose is still the 56 mg starting dose.
  j.arrival();
  j.dose_to_discharge(56);
  CHECK(j.data_of("induction_dose").at("session_number") == 1);
}

TEST_CASE("esketamine_rems: prescriber weighs an elevated arrival BP and proceeds", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.ready_for_first_visit();
  j.arrival(144, 88);
  j.submit("bp_gate_review", {{"decision", "proceed_risk_weighed"}, {"rationale", "stable, no symptoms"}});
  // Insured: the authorization check ran automatically and the pre-dose gate is open.
  CHECK(Scenario::is_open(j.view, "pre_dose"));
  CHECK(contains(completed_steps(s, j.id), "session_authorization"));
  CHECK_FALSE(contains(completed_steps(s, j.id), "session_deferred"));
}

TEST_CASE("esketamine_rems: no ride home on the session day defers the dose", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.ready_for_first_visit();
  j.arrival(128, 82, false);
  CHECK(Scenario::is_open(j.view, "session_deferred"));
  CHECK_FALSE(contains(completed_steps(s, j.id), "bp_gate_review"));
  j.submit("session_deferred", {{"reason", "no_ride_home"}});
  CHECK(j.view.at("repetition") == 1);
  CHECK_FALSE(contains(completed_steps(s, j.id), "session_authorization"));
  CHECK(s.billing(j.id).at("charges").as_array().empty());
  // The make-up visit: no ride again -> no dose this visit.
  s.advance(kDay);
  j.submit("makeup_arrival", {{"ride_home_confirmed", false}, {"systolic", 128}, {"diastolic", 82}});
  CHECK(Scenario::is_open(j.view, "visit_missed"));
}

// ======================================================================= discharge refused

TEST_CASE("esketamine_rems: discharge before the 2-hour monitoring time is refused and recorded", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.ready_for_first_visit();
  j.arrival();
  j.submit("pre_dose", j.pre_dose_data());
  auto first = now_of(s);
  j.submit("induction_dose", {{"dose_mg", 56}, {"devices_used", 2}, {"first_device_at", format_time(first)},
                              {"last_device_at", format_time(first + std::chrono::minutes{5})}, {"lot_number", "LOT-1"}});
  auto dose = j.data_of("induction_dose");
  CHECK(dose.at("earliest_discharge_at") == format_time(first + std::chrono::minutes{120}).c_str());
  s.advance(40 * kMinute);
  j.submit("bp_40", {{"bp_minutes_after_dosing", 40}, {"systolic", 138}, {"diastolic", 86}});
  s.advance(50 * kMinute);

  // 90 minutes after the first device.
  auto err = j.refused("discharge", Journey::discharge_data(90));
  CHECK(err.at("code") == -32010);
  std::string reason(err.at("data").at("reason").as_string());
  CHECK(reason == "monitoring 90 min is shorter than the minimum 120 min: keep monitoring for 30 more min");
  CHECK(std::string(err.at("message").as_string()) == "refused: " + reason);

  auto refusals = events_of(s, j.id, "step_refused");
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].at("step") == "discharge");
  CHECK(refusals[0].at("actor") == "plugin:esketamine_nasal");
  CHECK(refusals[0].at("data").at("reason") == reason.c_str());
  CHECK(refusals[0].at("data").at("by") == "user:staff");
  // Nothing moved: the discharge is still open, no charge, no after-care message.
  auto view = s.get(j.id);
  CHECK(Scenario::is_open(view, "discharge"));
  CHECK_FALSE(contains(completed_steps(s, j.id), "discharge"));
  CHECK(s.billing(j.id).at("charges").as_array().empty());
  CHECK(recipients(messages_of(s, j.id), "after_care").empty());

  // Unresolved dissociation is refused too, even after 2 h.
  s.advance(35 * kMinute);
  auto unresolved = Journey::discharge_data(125);
  unresolved["dissociation_resolved"] = false;
  auto err2 = j.refused("discharge", unresolved);
  CHECK(err2.at("code") == -32010);
  CHECK(std::string(err2.at("data").at("reason").as_string()).find("dissociation has not resolved") != std::string::npos);
  CHECK(events_of(s, j.id, "step_refused").size() == 2);

  // At 125 minutes, resolved: discharged, charged, after-care sent at once.
  j.submit("discharge", Journey::discharge_data(125));
  CHECK(Scenario::is_open(j.view, "pmf_submission"));
  // The Patient Monitoring Form task is due 7 days after the discharge [S16][S32].
  auto pmf_opened = events_of(s, j.id, "step_opened").back();
  CHECK(pmf_opened.at("step") == "pmf_submission");
  CHECK(parse_time(std::string(pmf_opened.at("data").at("due").as_string())) - parse_time(std::string(pmf_opened.at("at").as_string())) ==
        std::chrono::days{7});
  std::string session_date(j.data_of("induction_dose").at("session_date").as_string());
  CHECK(j.data_of("discharge").at("session_date") == session_date.c_str());
  CHECK(j.data_of("discharge").at("pmf_due") == add_days(session_date, 7).c_str());
  CHECK(j.data_of("discharge").at("no_driving_until") == add_days(session_date, 1).c_str());
  CHECK(by_code(s, j.id)["G2082"] == std::pair<std::int64_t, std::int64_t>{1, 90000});
  auto after_care = recipients(messages_of(s, j.id), "after_care");
  CHECK(after_care == std::vector<std::pair<std::string, std::string>>{{"patient", kPatientPhone}, {"support_person", kSupportPhone}});
}

TEST_CASE("esketamine_rems: the plugin enforces 56 mg first and 84 mg only after it", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.ready_for_first_visit();
  j.arrival();
  j.submit("pre_dose", j.pre_dose_data());
  auto first = now_of(s);
  auto err = j.refused("induction_dose", {{"dose_mg", 84}, {"first_device_at", format_time(first)}, {"lot_number", "LOT-1"}});
  CHECK(err.at("code") == -32010);
  CHECK(std::string(err.at("data").at("reason").as_string()).find("84 mg is given only after a 56 mg starting dose") != std::string::npos);
  CHECK(events_of(s, j.id, "step_refused").size() == 1);
}

// ================================================================= prior authorization

TEST_CASE("esketamine_rems: prior authorization denied then appealed and approved", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.through_consultation();
  j.medicare_coverage();
  j.submit("pa_request", j.pa_criteria("requested"));
  CHECK(Scenario::is_open(j.view, "pa_decision"));
  j.submit("pa_decision", {{"status", "denied"}, {"denial_reason", "second trial under 6 weeks"}});
  CHECK(Scenario::is_open(j.view, "pa_denial_plan"));
  j.submit("pa_denial_plan", {{"next_action", "appeal"}});
  CHECK(Scenario::is_open(j.view, "pa_appeal"));
  j.submit("pa_appeal", {{"status", "appealed"}, {"notes", "trial records attached"}});
  CHECK(Scenario::is_open(j.view, "pa_appeal_decision"));
  j.submit("pa_appeal_decision", j.approval("PA-APPEAL-7", 8));
  CHECK(Scenario::is_open(j.view, "baseline"));
  CHECK(j.stage() == "pretreatment");

  auto steps = completed_steps(s, j.id);
  CHECK(steps == std::vector<std::string>{"referral_intake", "eligibility_review", "consultation", "payer_intake", "coverage", "pa_request",
                                          "pa_decision", "pa_denial_plan", "pa_appeal", "pa_appeal_decision"});

  // The first session is authorized by the appeal's approval and billed to Medicare.
  j.pretreatment();
  j.full_session(56);
  CHECK(j.data_of("session_authorization").at("authorization_number") == "PA-APPEAL-7");
  CHECK(j.data_of("insurance_session_charge").at("authorization_number") == "PA-APPEAL-7");
  CHECK(by_code(s, j.id)["G2082"] == std::pair<std::int64_t, std::int64_t>{1, 90000});
  CHECK(events_of(s, j.id, "step_refused").empty());
}

TEST_CASE("esketamine_rems: an appeal with no denial recorded is refused", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.through_consultation();
  j.medicare_coverage();
  auto err = j.refused("pa_request", j.pa_criteria("appealed"));
  CHECK(err.at("code") == -32010);
  CHECK(std::string(err.at("data").at("reason").as_string()).find("an appeal needs a denial recorded earlier") != std::string::npos);
}

TEST_CASE("esketamine_rems: denied prior authorization and the patient stops", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.through_consultation();
  j.medicare_coverage();
  j.submit("pa_request", {{"status", "denied"}, {"denial_reason", "no psychiatrist prescriber"},
                          {"criteria_two_trials_different_classes", true}, {"criteria_psychiatrist_prescriber", false},
                          {"criteria_psychosis_history_reviewed", true}, {"criteria_pdmp_checked", true},
                          {"criteria_rems_certified_setting", true}});
  CHECK(Scenario::is_open(j.view, "pa_denial_plan"));
  j.submit("pa_denial_plan", {{"next_action", "stop"}});
  CHECK(j.view.at("outcome") == "closed");
  CHECK(j.view.at("reason") == "Prior authorization denied; no appeal and no self-pay");
}

// ============================================================================ self-pay

TEST_CASE("esketamine_rems: self-pay with a package on a payment plan", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.through_consultation();
  j.submit("payer_intake", {{"insured", false}});
  CHECK(Scenario::is_open(j.view, "self_pay_offer"));
  j.submit("self_pay_offer", {{"accepts_self_pay", true}});

  // A payment plan is for packages only.
  auto err = j.refused("self_pay_choice", {{"pricing", "per_session"}, {"installments", 3}});
  CHECK(err.at("code") == -32010);
  j.submit("self_pay_choice", {{"pricing", "induction_6"}, {"installments", 3}, {"hsa_fsa", true}, {"letter_of_medical_necessity", true}});
  auto choice = j.data_of("self_pay_choice");
  CHECK(choice.at("installment_cents") == 90000);
  CHECK(choice.at("first_installment_cents") == 90000);
  CHECK(choice.contains("hsa_fsa_note"));
  // The consultation is charged automatically; the HSA/FSA letter goes to the prescriber.
  CHECK(Scenario::is_open(j.view, "medical_necessity_letter"));
  j.submit("medical_necessity_letter", {{"sent_on", date_of(s)}});
  CHECK(Scenario::is_open(j.view, "baseline"));
  j.pretreatment();

  for (int session = 1; session <= 6; ++session) {
    INFO("session " << session);
    j.full_session(session == 1 ? 56 : 84);
  }
  auto steps = completed_steps(s, j.id);
  for (const char* skipped : {"coverage", "pa_request", "pa_decision", "session_authorization", "insurance_session_charge"})
    CHECK_FALSE(contains(steps, skipped));
  CHECK(count_of(steps, "self_pay_session_charge") == 6);
  auto codes = by_code(s, j.id);
  CHECK(codes["SELFPAY-CONSULT"] == std::pair<std::int64_t, std::int64_t>{1, 35000});
  CHECK(codes["SELFPAY-PACKAGE"] == std::pair<std::int64_t, std::int64_t>{1, 270000});
  CHECK(codes["SELFPAY-SESSION"] == std::pair<std::int64_t, std::int64_t>{5, 0});
  CHECK(codes.count("G2082") == 0);
  CHECK(s.billing(j.id).at("total_cents") == 305000);
  CHECK(j.data_of("self_pay_session_charge").at("package_sessions_remaining") == 0);

  // Dose 7: the shipped package holds 6 sessions but SPRAVATO induction is 8 doses, and the
  // shipped when_package_used_up = "refuse" stops the charge: the step waits for billing.
  j.arrival();
  j.dose_to_discharge(84);
  auto view = s.get(j.id);
  REQUIRE(Scenario::is_open(view, "self_pay_session_charge"));
  std::string error;
  for (const auto& t : view.at("open_tasks").as_array())
    if (t.at("step") == "self_pay_session_charge") error = std::string(t.at("error").as_string());
  CHECK(error.find("package 'induction_6' is used up") != std::string::npos);
  auto failed = events_of(s, j.id, "step_failed");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].at("data").at("refused") == true);
  CHECK(s.billing(j.id).at("total_cents") == 305000);
}

// ======================================================================== PHQ-9 item 9

TEST_CASE("esketamine_rems: PHQ-9 item 9 positive opens an urgent prescriber task at once", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  SECTION("the prescriber continues the series") {
    Journey j(s);
    j.ready_for_first_visit();
    j.arrival();
    j.dose_to_discharge(56);
    j.pmf();
    j.post_session_check(1);
    // Opened in the same command as the check, due 1 h later.
    auto view = j.view;
    REQUIRE(Scenario::is_open(view, "urgent_review"));
    auto opened = events_of(s, j.id, "step_opened");
    CHECK(opened.back().at("step") == "urgent_review");
    auto checked = events_of(s, j.id, "step_completed").back();
    CHECK(checked.at("step") == "post_session_check");
    CHECK(opened.back().at("at") == checked.at("at"));
    auto due = parse_time(std::string(opened.back().at("data").at("due").as_string()));
    CHECK(due - parse_time(std::string(checked.at("at").as_string())) == std::chrono::hours{1});
    for (const auto& t : view.at("open_tasks").as_array())
      if (t.at("step") == "urgent_review") CHECK(t.at("roles") == json::array{"prescriber"});
    j.submit("urgent_review", {{"assessment", "passive thoughts, safety plan"}, {"continue_program", true}});
    CHECK(j.view.at("stage") == "induction");
    CHECK(j.view.at("repetition") == 2);
  }
  SECTION("the prescriber stops the program") {
    Journey j(s);
    j.ready_for_first_visit();
    j.arrival();
    j.dose_to_discharge(56);
    j.pmf();
    j.post_session_check(2);
    j.submit("urgent_review", {{"assessment", "active ideation; inpatient referral"}, {"continue_program", false}});
    CHECK(j.view.at("outcome") == "closed");
    CHECK(j.view.at("reason") == "Closed after urgent prescriber review (PHQ-9 item 9)");
  }
  SECTION("at baseline") {
    Journey j(s);
    j.through_consultation();
    j.insured_and_approved();
    j.submit("baseline", {{"phq9", 22}, {"phq9_item9", 1}, {"weight_kg", 70}, {"systolic", 120}, {"diastolic", 80},
                          {"heart_rate", 70}, {"spo2", 98}, {"concomitant_medications", "none"}});
    CHECK(Scenario::is_open(j.view, "baseline_safety_review"));
    j.submit("baseline_safety_review", {{"assessment", "no plan or intent"}, {"continue_program", true}});
    CHECK(Scenario::is_open(j.view, "consent_rems"));
  }
}

// ================================================================ non-response

TEST_CASE("esketamine_rems: non-response after induction leads to re-evaluation", "[esketamine_rems]") {
  Scenario s(kWorkflow);
  Journey j(s);
  j.through_induction(20);
  // 20 -> 15 is a fall of 25%: not a response.
  j.submit("response_evaluation", {{"phq9", 15}, {"phq9_item9", 0}, {"continue_program", true}});
  CHECK(Scenario::is_open(j.view, "re_evaluation"));
  j.submit("re_evaluation", {{"plan", "repeat_series_later"}, {"notes", "review in 3 months"}});
  CHECK(j.view.at("status") == "completed");
  auto steps = completed_steps(s, j.id);
  CHECK_FALSE(contains(steps, "maintenance_plan"));
  CHECK(steps.back() == "re_evaluation");
  auto messages = messages_of(s, j.id);
  CHECK(recipients(messages, "re_evaluation_notice").size() == 2);
  CHECK(recipients(messages, "maintenance_notice").empty());
  for (const auto& m : messages)
    if (m.at("template") == "re_evaluation_notice")
      CHECK(std::string(m.at("body").as_string()).find("(PHQ-9 20 at baseline, 15 after induction).\nPlan: repeat_series_later") !=
            std::string::npos);
  CHECK(by_code(s, j.id)["G2083"] == std::pair<std::int64_t, std::int64_t>{7, 840000});
}

TEST_CASE("esketamine_rems: the response boundary is a 50% fall from baseline", "[esketamine_rems]") {
  // 20 -> 10 is exactly 50%: a response.
  Scenario s(kWorkflow);
  Journey j(s);
  j.through_induction(20);
  SECTION("exactly 50%") {
    j.submit("response_evaluation", {{"phq9", 10}, {"phq9_item9", 0}, {"continue_program", true}});
    CHECK(Scenario::is_open(j.view, "maintenance_plan"));
  }
  SECTION("just under 50%") {
    j.submit("response_evaluation", {{"phq9", 11}, {"phq9_item9", 0}, {"continue_program", true}});
    CHECK(Scenario::is_open(j.view, "re_evaluation"));
  }
  SECTION("item 9 at the evaluation, then the responder goes to maintenance") {
    j.submit("response_evaluation", {{"phq9", 6}, {"phq9_item9", 1}, {"continue_program", true}});
    CHECK(Scenario::is_open(j.view, "evaluation_urgent_review"));
    j.submit("evaluation_urgent_review", {{"assessment", "fleeting"}, {"continue_program", true}});
    CHECK(Scenario::is_open(j.view, "maintenance_plan"));
  }
  SECTION("discharge from the program") {
    j.submit("response_evaluation", {{"phq9", 6}, {"phq9_item9", 0}, {"continue_program", false}});
    CHECK(Scenario::is_open(j.view, "program_discharge"));
    j.submit("program_discharge", {{"reason", "patient moving away"}});
    CHECK(j.view.at("status") == "completed");
    CHECK(recipients(messages_of(s, j.id), "program_discharge_notice").size() == 2);
  }
}
