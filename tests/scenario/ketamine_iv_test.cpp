// Scenario tests of workflows/ketamine_iv.toml: every branch of the journey through the JSON-RPC
// API, with the shipped configuration (config/clinicflow.toml) and the real plugins.
//
// The first part (namespace ketamine_journey) holds the drivers of the stages that the IV and IM
// workflows share step for step (referral, eligibility, consultation, pretreatment, the 24-72 h
// check, follow-up, maintenance) and generic helpers the fixture lacks. ketamine_im_test.cpp
// declares and reuses them: both files build into the one test_scenarios executable. (A shared
// header, tests/scenario/ketamine_journey.hpp, would be tidier; it is outside the files this
// change may touch.) The second part drives the IV-only steps and holds the IV tests.
#include "scenario/ketamine_journey.hpp"
#include "scenario/scenario_fixture.hpp"

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using clinicflow::testing::Scenario;
namespace json = boost::json;

namespace ketamine_journey {

// ------------------------------------------------------------------ generic helpers

// The committed fixture's Scenario::history() and Scenario::messages() iterated over a member of
// a temporary (`for (auto& e : call(...).as_array())`), which is destroyed before the loop runs:
// on a long case they read freed memory ("object too large", SIGSEGV). These two keep the answer
// alive. (A fix to the fixture is pending in the working tree; once it is in, they can give way
// to s.events() and s.messages().)
std::vector<json::object> events_of(Scenario& s, const json::value& case_id, const std::string& type) {
  const json::value answer = s.call("case.history", {{"case_id", case_id}});
  std::vector<json::object> out;
  for (const auto& e : answer.as_array())
    if (type.empty() || e.at("type") == type.c_str()) out.push_back(e.as_object());
  return out;
}

// messages.list with bodies, after delivering every message due now.
std::vector<json::object> messages_of(Scenario& s, const json::value& case_id) {
  s.deliver_messages();
  const json::value answer = s.call("messages.list", {{"case_id", case_id}, {"include_body", true}});
  std::vector<json::object> out;
  for (const auto& m : answer.as_array()) out.push_back(m.as_object());
  return out;
}

// The ids of the completed steps, in the order they were completed: the path the case took.
std::vector<std::string> completed_steps(Scenario& s, const json::value& case_id) {
  std::vector<std::string> out;
  for (const auto& e : events_of(s, case_id, "step_completed")) out.emplace_back(e.at("step").as_string());
  return out;
}

// How many times `step` appears in `path`.
int count_of(const std::vector<std::string>& path, const std::string& step) {
  int n = 0;
  for (const auto& p : path) n += p == step ? 1 : 0;
  return n;
}

// billing.summary's by_code as code -> {units, amount_cents}.
std::map<std::string, std::pair<std::int64_t, std::int64_t>> charges_by_code(Scenario& s, const json::value& case_id) {
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> out;
  const json::object summary = s.billing(case_id);
  for (const auto& row : summary.at("by_code").as_array()) {
    const auto& o = row.as_object();
    out[std::string(o.at("code").as_string())] = {o.at("units").as_int64(), o.at("amount_cents").as_int64()};
  }
  return out;
}

// The case's messages as (template, to) pairs, in the order they were queued: read from the
// message_queued events (messages.list orders messages queued at the same instant by their id
// as text, so "c_..-100" would come before "c_..-99").
std::vector<std::pair<std::string, std::string>> message_recipients(Scenario& s, const json::value& case_id) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : events_of(s, case_id, "message_queued")) {
    const auto& d = e.at("data").as_object();
    out.emplace_back(std::string(d.at("template").as_string()), std::string(d.at("to").as_string()));
  }
  return out;
}

int count_messages(Scenario& s, const json::value& case_id, const std::string& template_name, const std::string& to) {
  int n = 0;
  for (const auto& [t, r] : message_recipients(s, case_id)) n += t == template_name && r == to ? 1 : 0;
  return n;
}

// The one message with this template and recipient (fails the test unless there is exactly one).
json::object message_for(Scenario& s, const json::value& case_id, const std::string& template_name, const std::string& to) {
  std::vector<json::object> found;
  for (auto& m : messages_of(s, case_id))
    if (m.at("template") == template_name.c_str() && m.at("to") == to.c_str()) found.push_back(m);
  REQUIRE(found.size() == 1);
  return found.front();
}

// Moves time on an hour at a time until `step` is open (at most `max_hours`).
void advance_until_open(Scenario& s, const json::value& case_id, const std::string& step, int max_hours) {
  for (int h = 0; h < max_hours && !Scenario::is_open(s.get(case_id), step); ++h) s.advance(3600);
  REQUIRE(Scenario::is_open(s.get(case_id), step));
}

// Today's date on the server's (virtual) clock, plus `days`, as YYYY-MM-DD (UTC, as the billing
// plugins see it with utc_offset_minutes = 0).
std::string server_date(Scenario& s, int days = 0) {
  std::string now(s.call("clock.now").at("now").as_string());
  int y = 0;
  unsigned m = 0, d = 0;
  REQUIRE(std::sscanf(now.c_str(), "%d-%u-%u", &y, &m, &d) == 3);
  std::chrono::sys_days day = std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  std::chrono::year_month_day out{day + std::chrono::days{days}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(out.year()), static_cast<unsigned>(out.month()),
                static_cast<unsigned>(out.day()));
  return buf;
}

// The last case_ended event's outcome and reason.
std::pair<std::string, std::string> ending(Scenario& s, const json::value& case_id) {
  auto ended = events_of(s, case_id, "case_ended");
  REQUIRE(ended.size() == 1);
  const auto& d = ended.front().at("data").as_object();
  return {std::string(d.at("outcome").as_string()), std::string(d.at("reason").as_string())};
}

// ------------------------------------------------------------------ the shared stages

json::object referral_data() {
  return {{"referring_provider", "Dr. Hannah Okafor, Riverside Psychiatry"},
          {"referring_provider_contact", "okafor@riverside.example"},
          {"patient_contact", "+15550100"},
          {"mental_health_provider_contact", "Dr. Lee, therapist, lee@therapy.example"},
          {"primary_care_contact", "Dr. Patel, patel@primarycare.example"},
          {"diagnosis", "F33.2"},
          {"age", 46},
          {"failed_trials", 3},
          {"medication_trials", "sertraline 200 mg 10 wk: no response; venlafaxine 225 mg 8 wk: partial"},
          {"therapies_tried", "CBT 16 sessions"},
          {"referral_phq9", 21},
          {"functional_impact", "off work for 3 months"},
          {"medical_conditions", "none relevant"},
          {"suicidal_ideation", false},
          {"history_received", true}};
}

// The prescriber's review with no contraindication and full readiness.
json::object eligible_review() {
  return {{"active_psychosis", false},          {"uncontrolled_hypertension", false},
          {"cardiac_condition", false},         {"vascular_malformation", false},
          {"intracerebral_hemorrhage", false},  {"ketamine_hypersensitivity", false},
          {"neurocognitive_disorder", false},   {"symptomatic_tbi", false},
          {"pregnant_or_breastfeeding", false}, {"substance_use_reviewed", true},
          {"capacity_to_consent", true},        {"medical_clearance", true},
          {"can_attend_series", true},          {"understands_dissociative_effects", true},
          {"driver_available", true}};
}

// Referral, eligibility and a consultation that proceeds (charged, self-pay consultation fee).
// Returns the case id; the case is then at the first step of the payment stage.
json::value through_consultation(Scenario& s, const std::string& workflow) {
  auto view = s.open_case(workflow);
  json::value id = view.at("case_id");
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"referral_intake"});
  s.submit(id, "referral_intake", referral_data());
  s.submit(id, "eligibility_review", eligible_review());
  view = s.submit(id, "consultation_visit",
                  {{"goals", "get back to work"}, {"risks_explained", true}, {"questions_answered", true}, {"decision", "proceed"}});
  CHECK(view.at("stage") == "payment");
  return id;
}

// Baseline (PHQ-9 `phq9`, item 9 negative), consent and preparation; the case then waits for
// session 1's arrival check.
void pretreatment(Scenario& s, const json::value& id, int phq9) {
  s.submit(id, "baseline",
           {{"phq9", phq9}, {"phq9_item9", 0}, {"weight_kg", 72.5}, {"systolic", 128}, {"diastolic", 82}, {"heart_rate", 76}, {"spo2", 98}});
  s.submit(id, "consent",
           {{"consent_signed", true}, {"evidence_explained", true}, {"benzodiazepine_mg_diazepam_eq", 0},
            {"medication_adjustments", "continue sertraline; no lorazepam on session days"}});
  auto view = s.submit(id, "preparation",
                       {{"fasting_instructions", "no solid food for 6 hours, clear liquids up to 2 hours before"},
                        {"transport_confirmed", true},
                        {"home_support_confirmed", true},
                        {"support_person", "Luis Alvarez (spouse)"},
                        {"support_person_contact", "+15550143"},
                        {"emergency_contact", "Luis Alvarez +15550143"}});
  CHECK(view.at("stage") == "induction");
  CHECK(view.at("timers").as_array().size() == 1);  // session 1 waits for its opening time
}

// The 24-72 h check after a session: opens 24 h after discharge; returns the view after it.
json::object post_session_check(Scenario& s, const json::value& id, const json::object& data) {
  CHECK_FALSE(Scenario::is_open(s.get(id), "post_session_check"));
  s.advance(23 * 3600);
  CHECK_FALSE(Scenario::is_open(s.get(id), "post_session_check"));  // not before 24 h
  s.advance(3600);
  REQUIRE(Scenario::is_open(s.get(id), "post_session_check"));
  return s.submit(id, "post_session_check", data);
}

json::object routine_check() { return {{"reached", true}, {"mood", "better"}, {"side_effects", "tired the evening after"}}; }

// Contraindication and readiness fields of eligibility_review and the outcome and reason each one
// gives, in the workflow's branch order.
std::vector<std::tuple<std::string, bool, std::string, std::string>> eligibility_exits() {
  // field, the value that triggers the exit, outcome, reason
  return {{"active_psychosis", true, "declined", "Active psychosis"},
          {"uncontrolled_hypertension", true, "declined", "Uncontrolled hypertension"},
          {"cardiac_condition", true, "declined", "Relevant cardiac condition"},
          {"vascular_malformation", true, "declined", "Aneurysmal vascular disease, arteriovenous malformation or intracerebral hemorrhage"},
          {"intracerebral_hemorrhage", true, "declined", "Aneurysmal vascular disease, arteriovenous malformation or intracerebral hemorrhage"},
          {"ketamine_hypersensitivity", true, "declined", "Hypersensitivity to ketamine"},
          {"neurocognitive_disorder", true, "declined", "Neurocognitive disorder, dementia or symptomatic TBI"},
          {"symptomatic_tbi", true, "declined", "Neurocognitive disorder, dementia or symptomatic TBI"},
          {"pregnant_or_breastfeeding", true, "declined", "Pregnant or breastfeeding"},
          {"capacity_to_consent", false, "declined", "No capacity to consent or no medical clearance"},
          {"medical_clearance", false, "declined", "No capacity to consent or no medical clearance"},
          {"can_attend_series", false, "closed",
           "Not ready to start: cannot attend the series, does not understand the dissociative effects, or has no driver"},
          {"understands_dissociative_effects", false, "closed",
           "Not ready to start: cannot attend the series, does not understand the dissociative effects, or has no driver"},
          {"driver_available", false, "closed",
           "Not ready to start: cannot attend the series, does not understand the dissociative effects, or has no driver"}};
}

// Each contraindication ends the case at the eligibility review with its reason, a letter to the
// referring provider naming the finding, and nothing charged.
void check_every_eligibility_exit(const std::string& workflow_file, const std::string& workflow) {
  for (const auto& [field, value, outcome, reason] : eligibility_exits()) {
    DYNAMIC_SECTION(field) {
      Scenario s(workflow_file);
      auto view = s.open_case(workflow);
      json::value id = view.at("case_id");
      s.submit(id, "referral_intake", referral_data());
      json::object review = eligible_review();
      review[field] = value;
      review["note_to_referrer"] = "see findings";
      view = s.submit(id, "eligibility_review", review);
      CHECK(view.at("status") == "closed");
      CHECK(view.at("outcome") == outcome.c_str());
      CHECK(view.at("reason") == reason.c_str());
      CHECK(completed_steps(s, id) == std::vector<std::string>{"referral_intake", "eligibility_review"});
      CHECK(ending(s, id) == std::pair<std::string, std::string>{outcome, reason});
      CHECK(s.billing(id).at("total_cents") == 0);
      auto letter = message_for(s, id, "not_offered", "referring_provider");
      CHECK(letter.at("address") == "okafor@riverside.example");
      CHECK(letter.at("status") == "delivered");
      std::string body(letter.at("body").as_string());
      CHECK(body.find("see findings") != std::string::npos);
      CHECK(body.find("yes") != std::string::npos);  // the finding is marked present
      CHECK(message_recipients(s, id).size() == 1);
    }
  }
}

// A referral that fails the referral criteria is declined before any review, without a letter.
void check_referral_exits(const std::string& workflow_file, const std::string& workflow) {
  Scenario s(workflow_file);
  auto minor = s.open_case(workflow).at("case_id");
  auto data = referral_data();
  data["age"] = 17;
  auto view = s.submit(minor, "referral_intake", data);
  CHECK(view.at("outcome") == "declined");
  CHECK(view.at("reason") == "Patient is under 18");

  auto not_resistant = s.open_case(workflow).at("case_id");
  data = referral_data();
  data["failed_trials"] = 1;
  view = s.submit(not_resistant, "referral_intake", data);
  CHECK(view.at("outcome") == "declined");
  CHECK(view.at("reason") == "Fewer than 2 failed antidepressant trials: not treatment-resistant");
  CHECK(messages_of(s, not_resistant).empty());
}

// The consultation's two exits: each consultation is charged, and the referrer is told.
void check_consultation_exits(const std::string& workflow_file, const std::string& workflow) {
  for (const auto& [decision, outcome, reason] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"patient_declines", "closed", "Patient chose not to proceed"},
                                                                      {"not_suitable", "declined", "Not suitable after consultation"}}) {
    DYNAMIC_SECTION(decision) {
      Scenario s(workflow_file);
      json::value id = s.open_case(workflow).at("case_id");
      s.submit(id, "referral_intake", referral_data());
      s.submit(id, "eligibility_review", eligible_review());
      auto view = s.submit(id, "consultation_visit",
                           {{"goals", "x"}, {"risks_explained", true}, {"questions_answered", true}, {"decision", decision}});
      CHECK(view.at("outcome") == outcome.c_str());
      CHECK(view.at("reason") == reason.c_str());
      CHECK(completed_steps(s, id) ==
            std::vector<std::string>{"referral_intake", "eligibility_review", "consultation_visit", "consultation_charge"});
      CHECK(charges_by_code(s, id) == std::map<std::string, std::pair<std::int64_t, std::int64_t>>{{"SELFPAY-CONSULT", {1, 35000}}});
      CHECK(message_recipients(s, id) == std::vector<std::pair<std::string, std::string>>{{"consultation_outcome", "referring_provider"}});
    }
  }
}

}  // namespace ketamine_journey

using namespace ketamine_journey;

namespace {

// ------------------------------------------------------------------ IV-only drivers

const char* const kFile = "workflows/ketamine_iv.toml";
const char* const kWorkflow = "ketamine_iv";

json::object arrival(int systolic = 128, int diastolic = 82) {
  return {{"weight_kg", 72.5}, {"systolic", systolic}, {"diastolic", diastolic}, {"heart_rate", 76}, {"spo2", 98},
          {"fasting_followed", true}, {"driver_arranged", true}};
}

// One IV session from its opening to discharge: waits for the arrival check to open, then the
// gate, the infusion (0.5 mg/kg over 40 min: the plugin's defaults), the charge and discharge.
json::object iv_session(Scenario& s, const json::value& id) {
  advance_until_open(s, id, "arrival_check");
  s.submit(id, "arrival_check", arrival());
  auto view = s.get(id);
  REQUIRE(Scenario::is_open(view, "infusion"));  // an insured case passed its authorization check
  s.submit(id, "infusion", {{"bp_readings", 4}, {"peak_systolic", 142}});
  view = s.get(id);
  REQUIRE(Scenario::is_open(view, "discharge"));  // the session was charged
  return s.submit(id, "discharge", {{"aldrete", 10}, {"recovery_minutes", 60}, {"driver_present", true}});
}

// The six sessions with a routine check after each; the case is then at the follow-up.
void iv_series(Scenario& s, const json::value& id) {
  for (int session = 1; session <= 6; ++session) {
    iv_session(s, id);
    auto view = post_session_check(s, id, routine_check());
    if (session < 6) CHECK(view.at("repetition") == session + 1);
  }
}

// The path of one session: self-pay, or insured (authorization check and insurance charge).
std::vector<std::string> session_path(bool insured) {
  if (insured) return {"arrival_check", "authorization_check", "infusion", "insurance_session_charge", "discharge", "post_session_check"};
  return {"arrival_check", "infusion", "self_pay_session_charge", "discharge", "post_session_check"};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b, int times = 1) {
  for (int i = 0; i < times; ++i) a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<std::string> kToPayment{"referral_intake", "eligibility_review", "consultation_visit", "consultation_charge"};
const std::vector<std::string> kPretreatment{"baseline", "consent", "preparation"};

// An uninsured patient paying per session, with a superbill; the case then waits for session 1.
json::value uninsured_per_session(Scenario& s, bool superbill) {
  json::value id = through_consultation(s, kWorkflow);
  s.submit(id, "payment_intake", {{"insurance_to_check", false}});
  s.submit(id, "payment_choice", {{"pricing", "per_session"}, {"superbill_wanted", superbill}});
  return id;
}

using Charges = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;
using Messages = std::vector<std::pair<std::string, std::string>>;

}  // namespace

// ================================================================================== tests

TEST_CASE("ketamine_iv: happy path, uninsured self-pay per session, response -> maintenance schedule", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = uninsured_per_session(s, true);
  pretreatment(s, id, 20);
  iv_series(s, id);

  // The end-of-series PHQ-9: 20 -> 8 is a response [S54] without remission.
  auto view = s.get(id);
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"series_assessment"});
  view = s.submit(id, "series_assessment", {{"phq9", 8}, {"phq9_item9", 0}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"maintenance_plan"});
  view = s.submit(id, "maintenance_plan", {{"plan", "booster_schedule"}, {"booster_interval_weeks", 4}});
  CHECK(view.at("status") == "completed");
  CHECK(ending(s, id) == std::pair<std::string, std::string>{"completed", "Responded to the induction series; maintenance boosters planned"});

  // Path: every stage in order, six self-pay sessions, the superbill, then the plan.
  auto expected = concat(concat(kToPayment, {"payment_intake", "payment_choice"}), kPretreatment);
  expected = concat(expected, session_path(false), 6);
  expected = concat(expected, {"superbill", "series_assessment", "maintenance_plan"});
  CHECK(completed_steps(s, id) == expected);
  CHECK(events_of(s, id, "step_refused").empty());
  CHECK(events_of(s, id, "stage_entered").size() == 8 + 5);  // 8 stages, 5 further repetitions

  // Charges: the consultation and six sessions at the configured fees.
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-SESSION", {6, 300000}}});
  CHECK(s.billing(id).at("total_cents") == 335000);
  CHECK(events_of(s, id, "charge_posted").size() == 7);

  // The superbill lists the six sessions with 96365 and J3490, six units each.
  const json::object bill = s.get(id).at("data").at("superbill").at("superbill").as_object();
  CHECK(bill.at("diagnosis_codes") == json::array{"F33.2"});
  CHECK(bill.at("total_cents") == 300000);
  const auto& line = bill.at("lines").at(0).as_object();
  CHECK(line.at("service") == "session");
  CHECK(line.at("units") == 6);
  const json::value codes = json::parse(R"j([{"code":"96365","description":"IV infusion, initial, up to 1 hour","units":6},
                                           {"code":"J3490","description":"Unclassified drug (ketamine)","units":6}])j");
  CHECK(line.at("procedure_codes") == codes);

  // Messages, in order: payment, instructions, series start, then per session the reminder the
  // day before and after-care to patient and support person; superbill, outcome, plan.
  Messages expected_messages{{"payment_summary", "patient"},
                             {"pretreatment_instructions", "patient"},
                             {"series_start", "mental_health_provider"},
                             {"series_start", "primary_care"}};
  for (int i = 0; i < 6; ++i) {
    expected_messages.push_back({"session_reminder", "patient"});
    expected_messages.push_back({"aftercare", "patient"});
    expected_messages.push_back({"aftercare", "support_person"});
  }
  expected_messages.insert(expected_messages.end(), {{"superbill_ready", "patient"},
                                                     {"outcome_response", "mental_health_provider"},
                                                     {"outcome_response", "primary_care"},
                                                     {"maintenance_plan_notice", "mental_health_provider"},
                                                     {"maintenance_plan_notice", "primary_care"},
                                                     {"maintenance_plan_notice", "referring_provider"}});
  CHECK(message_recipients(s, id) == expected_messages);
  for (const auto& m : messages_of(s, id)) CHECK(m.at("status") == "delivered");

  auto reminder = messages_of(s, id).front();
  for (const auto& m : messages_of(s, id))
    if (m.at("template") == "session_reminder") {
      reminder = m;
      break;
    }
  CHECK(reminder.at("address") == "+15550100");
  std::string body(reminder.at("body").as_string());
  CHECK(body.find("session 1 of your IV ketamine series is tomorrow") != std::string::npos);
  CHECK(body.find("no solid food for 6 hours") != std::string::npos);  // the clinic's own rule, word for word
  for (const auto& m : messages_of(s, id))
    if (m.at("to") == "support_person") CHECK(m.at("address") == "+15550143");
  std::string outcome(message_for(s, id, "outcome_response", "primary_care").at("body").as_string());
  CHECK(outcome.find("PHQ-9: 20 at baseline, 8 at the end") != std::string::npos);
  std::string plan(message_for(s, id, "maintenance_plan_notice", "referring_provider").at("body").as_string());
  CHECK(plan.find("about every 4 weeks") != std::string::npos);
}

TEST_CASE("ketamine_iv: the reminder goes out the day before each session, not earlier", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = uninsured_per_session(s, false);
  pretreatment(s, id, 20);
  // Session 1 waits 2 days after the instructions; its reminder is due 1 day before it opens.
  auto reminders = [&] { return count_messages(s, id, "session_reminder", "patient"); };
  auto delivered_reminders = [&] {
    int n = 0;
    for (const auto& m : messages_of(s, id)) n += m.at("template") == "session_reminder" && m.at("status") == "delivered" ? 1 : 0;
    return n;
  };
  CHECK(reminders() == 1);
  CHECK(delivered_reminders() == 0);
  s.advance(23 * 3600);
  CHECK(delivered_reminders() == 0);
  s.advance(3600);
  CHECK(delivered_reminders() == 1);
  CHECK_FALSE(Scenario::is_open(s.get(id), "arrival_check"));
  auto error = s.error("case.submit", {{"case_id", id}, {"step", "arrival_check"}, {"data", arrival()}});
  CHECK(std::string(error.at("message").as_string()).find("opens only at") != std::string::npos);
  s.advance(24 * 3600);
  CHECK(Scenario::is_open(s.get(id), "arrival_check"));
}

TEST_CASE("ketamine_iv: each contraindication declines at eligibility, with a letter to the referrer", "[ketamine_iv]") {
  check_every_eligibility_exit(kFile, kWorkflow);
}

TEST_CASE("ketamine_iv: referral criteria and consultation exits", "[ketamine_iv]") {
  SECTION("referral") { check_referral_exits(kFile, kWorkflow); }
  SECTION("consultation") { check_consultation_exits(kFile, kWorkflow); }
}

TEST_CASE("ketamine_iv: blood pressure over the gate defers the session; it is given later, not skipped", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = uninsured_per_session(s, false);
  pretreatment(s, id, 20);
  iv_session(s, id);
  post_session_check(s, id, routine_check());

  // Session 2: 152/96 is above the configured 140/90 limit.
  advance_until_open(s, id, "arrival_check");
  auto charges_before = events_of(s, id, "charge_posted").size();
  auto error = s.error("case.submit", {{"case_id", id}, {"step", "arrival_check"}, {"data", arrival(152, 96)}});
  CHECK(error.at("code") == -32010);
  CHECK(error.at("data").at("reason") == "pre-dose blood pressure 152/96 mmHg is above the limit 140/90 mmHg: defer the session");
  auto refused = events_of(s, id, "step_refused");
  REQUIRE(refused.size() == 1);
  CHECK(refused.front().at("step") == "arrival_check");
  CHECK(refused.front().at("actor") == "plugin:iv_ketamine");
  CHECK(refused.front().at("data").at("reason") == error.at("data").at("reason"));

  // Nothing given or charged; the session stays open, in the same repetition.
  auto view = s.get(id);
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"arrival_check"});
  CHECK(view.at("repetition") == 2);
  CHECK(events_of(s, id, "charge_posted").size() == charges_before);
  CHECK(count_of(completed_steps(s, id), "infusion") == 1);
  CHECK(count_messages(s, id, "aftercare", "patient") == 1);

  // The rebooked visit two days later: within the limits, the session goes ahead.
  s.advance(2 * 24 * 3600);
  s.submit(id, "arrival_check", arrival(134, 84));
  view = s.get(id);
  CHECK(view.at("repetition") == 2);
  s.submit(id, "infusion", {{"bp_readings", 4}});
  s.submit(id, "discharge", {{"aldrete", 9}, {"recovery_minutes", 75}, {"driver_present", true}});
  post_session_check(s, id, routine_check());
  for (int session = 3; session <= 6; ++session) {
    iv_session(s, id);
    post_session_check(s, id, routine_check());
  }
  CHECK(Scenario::open_steps(s.get(id)) == std::vector<std::string>{"series_assessment"});

  // Six sessions given, one refusal, six charges and six after-care messages: the deferral used
  // up nothing. The arrival check was completed six times, attempted seven.
  auto path = completed_steps(s, id);
  CHECK(count_of(path, "arrival_check") == 6);
  CHECK(count_of(path, "infusion") == 6);
  CHECK(count_of(path, "discharge") == 6);
  CHECK(events_of(s, id, "step_refused").size() == 1);
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-SESSION", {6, 300000}}});
  CHECK(count_messages(s, id, "aftercare", "patient") == 6);
  CHECK(count_messages(s, id, "session_reminder", "patient") == 6);
}

TEST_CASE("ketamine_iv: prior authorization denied, appealed and approved; sessions billed to the insurer", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = through_consultation(s, kWorkflow);
  s.submit(id, "payment_intake", {{"insurance_to_check", true}});
  s.submit(id, "coverage", {{"payer", "Example Health"}, {"member_id", "EH-1234"}, {"payer_type", "commercial"}, {"covered", "yes"}});
  auto view = s.submit(id, "pa_decision", {{"status", "denied"}, {"denial_reason", "not medically necessary"}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"pa_denial_choice"});
  view = s.submit(id, "pa_denial_choice", {{"choice", "appeal"}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"pa_appeal"});
  s.submit(id, "pa_appeal", {{"status", "appealed"}, {"notes", "letter of medical necessity sent"}});
  view = s.submit(id, "pa_appeal_decision",
                  {{"status", "approved"}, {"authorization_number", "PA-777"}, {"authorized_units", 6},
                   {"start_date", server_date(s)}, {"expiry_date", server_date(s, 90)}});
  CHECK(view.at("stage") == "pretreatment");
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"baseline"});

  pretreatment(s, id, 22);
  iv_series(s, id);
  s.submit(id, "series_assessment", {{"phq9", 9}, {"phq9_item9", 0}});
  view = s.submit(id, "maintenance_plan", {{"plan", "booster_schedule"}, {"booster_interval_weeks", 3}});
  CHECK(view.at("status") == "completed");

  auto expected = concat(kToPayment, {"payment_intake", "coverage", "pa_decision", "pa_denial_choice", "pa_appeal", "pa_appeal_decision"});
  expected = concat(concat(expected, kPretreatment), session_path(true), 6);
  expected = concat(expected, {"series_assessment", "maintenance_plan"});
  CHECK(completed_steps(s, id) == expected);

  // The last authorization check used all six units.
  const json::object check = s.get(id).at("data").at("authorization_check").as_object();
  CHECK(check.at("authorization_number") == "PA-777");
  CHECK(check.at("units_used") == 6);
  CHECK(check.at("last_authorized_session") == true);

  // 40-minute infusions: 96365 once per session and J3490 for the drug, at the configured fees.
  CHECK(charges_by_code(s, id) == Charges{{"96365", {6, 240000}}, {"J3490", {6, 60000}}, {"SELFPAY-CONSULT", {1, 35000}}});
  CHECK(s.billing(id).at("total_cents") == 335000);
  const json::object charge = s.get(id).at("data").at("insurance_session_charge").as_object();
  CHECK(charge.at("authorization_number") == "PA-777");
  CHECK(charge.at("infusion_minutes").to_number<double>() == 40);  // the plugin's default, 40 min [S19]

  // No self-pay messages; the clinical ones as for every patient.
  CHECK(count_messages(s, id, "payment_summary", "patient") == 0);
  CHECK(count_messages(s, id, "superbill_ready", "patient") == 0);
  CHECK(count_messages(s, id, "session_reminder", "patient") == 6);
  CHECK(count_messages(s, id, "outcome_response", "mental_health_provider") == 1);
}

TEST_CASE("ketamine_iv: an appeal without a denial is refused; a final denial leads to self-pay", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = through_consultation(s, kWorkflow);
  s.submit(id, "payment_intake", {{"insurance_to_check", true}});
  s.submit(id, "coverage", {{"payer", "Example Health"}, {"member_id", "EH-1"}, {"payer_type", "commercial"}, {"covered", "pending"}});
  s.submit(id, "pa_decision", {{"status", "denied"}, {"denial_reason", "step therapy"}});
  s.submit(id, "pa_denial_choice", {{"choice", "appeal"}});
  s.submit(id, "pa_appeal", {{"status", "appealed"}});
  auto view = s.submit(id, "pa_appeal_decision", {{"status", "denied"}, {"denial_reason", "upheld"}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"self_pay_offer"});
  view = s.submit(id, "self_pay_offer", {{"patient_choice", "withdraw"}});
  CHECK(view.at("outcome") == "closed");
  CHECK(view.at("reason") == "Not covered by insurance; patient declined self-pay");

  // A second case: an appeal recorded where no denial was ever recorded is refused by the plugin.
  Scenario t(kFile);
  json::value other = through_consultation(t, kWorkflow);
  t.submit(other, "payment_intake", {{"insurance_to_check", true}});
  t.submit(other, "coverage", {{"payer", "Example Health"}, {"member_id", "EH-2"}, {"payer_type", "commercial"}, {"covered", "yes"}});
  t.submit(other, "pa_decision", {{"status", "requested"}});  // not a decision: handled as not approved
  t.submit(other, "pa_denial_choice", {{"choice", "appeal"}});
  auto error = t.error("case.submit", {{"case_id", other}, {"step", "pa_appeal"}, {"data", {{"status", "appealed"}}}});
  CHECK(error.at("code") == -32010);
  CHECK(std::string(error.at("message").as_string()).find("an appeal needs a denial recorded earlier") != std::string::npos);
  CHECK(events_of(t, other, "step_refused").size() == 1);
  CHECK(Scenario::is_open(t.get(other), "pa_appeal"));
}

TEST_CASE("ketamine_iv: not covered -> self-pay package with a payment plan and HSA/FSA", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = through_consultation(s, kWorkflow);
  s.submit(id, "payment_intake", {{"insurance_to_check", true}});
  auto view = s.submit(id, "coverage", {{"payer", "Example Health"}, {"member_id", "EH-9"}, {"payer_type", "commercial"}, {"covered", "no"}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"self_pay_offer"});
  s.submit(id, "self_pay_offer", {{"patient_choice", "self_pay"}});

  // A plan beyond the clinic's maximum (3) fails the form; a payment plan on per-session fees is
  // refused by the plugin, and the refusal is recorded.
  auto error = s.error("case.submit", {{"case_id", id}, {"step", "payment_choice"},
                                       {"data", {{"pricing", "induction_6"}, {"installments", 4}, {"superbill_wanted", true}}}});
  CHECK(error.at("code") == -32602);
  CHECK(error.at("data").at("fields").at(0).at("field") == "data.installments");
  error = s.error("case.submit", {{"case_id", id}, {"step", "payment_choice"},
                                  {"data", {{"pricing", "per_session"}, {"installments", 2}, {"superbill_wanted", true}}}});
  CHECK(error.at("code") == -32010);
  CHECK(error.at("data").at("reason") == "a payment plan is for packages only: per-session fees are paid at each session");
  CHECK(events_of(s, id, "step_refused").size() == 1);

  view = s.submit(id, "payment_choice", {{"pricing", "induction_6"}, {"installments", 3}, {"hsa_fsa", true},
                                         {"letter_of_medical_necessity", true}, {"superbill_wanted", true}});
  const auto& choice = view.at("data").at("payment_choice").as_object();
  CHECK(choice.at("package_price_cents") == 270000);
  CHECK(choice.at("installment_cents") == 90000);
  CHECK(choice.at("first_installment_cents") == 90000);
  CHECK(choice.contains("hsa_fsa_note"));
  auto summary = message_for(s, id, "payment_summary", "patient");
  std::string body(summary.at("body").as_string());
  CHECK(body.find("you chose induction_6, paid in 3 installment(s)") != std::string::npos);
  CHECK(body.find("Paying with an HSA/FSA: yes") != std::string::npos);

  pretreatment(s, id, 18);
  iv_series(s, id);

  // The package is charged once with session 1; sessions 2-6 draw on it at no charge.
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-PACKAGE", {1, 270000}}, {"SELFPAY-SESSION", {5, 0}}});
  const json::object last = s.get(id).at("data").at("self_pay_session_charge").as_object();
  CHECK(last.at("package_sessions_used") == 6);
  CHECK(last.at("package_sessions_remaining") == 0);
  // The superbill lists six sessions for the package price.
  const json::object bill = s.get(id).at("data").at("superbill").as_object();
  CHECK(bill.at("total_cents") == 270000);
  CHECK(count_messages(s, id, "superbill_ready", "patient") == 1);
  CHECK(completed_steps(s, id) ==
        concat(concat(concat(concat(kToPayment, {"payment_intake", "coverage", "self_pay_offer", "payment_choice"}), kPretreatment),
                      session_path(false), 6),
               {"superbill"}));
}

TEST_CASE("ketamine_iv: PHQ-9 item 9 positive raises an urgent prescriber task at once", "[ketamine_iv]") {
  SECTION("during the series: the review stops the series") {
    Scenario s(kFile);
    json::value id = uninsured_per_session(s, false);
    pretreatment(s, id, 20);
    iv_session(s, id);
    post_session_check(s, id, routine_check());
    iv_session(s, id);
    auto view = post_session_check(s, id, {{"reached", true}, {"mood", "worse"}, {"phq9", 17}, {"phq9_item9", 1}});
    // The same moment: the urgent review is the open task, due within the hour, and the
    // prescriber on call is alerted.
    CHECK(Scenario::open_steps(view) == std::vector<std::string>{"session_safety_review"});
    const auto& task = view.at("open_tasks").at(0).as_object();
    CHECK(task.at("roles") == json::array{"prescriber"});
    CHECK(task.contains("due"));
    auto alert = message_for(s, id, "urgent_item9", "prescriber_on_call");
    CHECK(alert.at("status") == "delivered");
    CHECK(std::string(alert.at("subject").as_string()) == "URGENT: PHQ-9 item 9 positive");
    auto opened = events_of(s, id, "step_opened");
    CHECK(opened.back().at("step") == "session_safety_review");
    CHECK(opened.back().at("at") == events_of(s, id, "step_completed").back().at("at"));

    view = s.submit(id, "session_safety_review", {{"assessment", "passive ideation, safety plan agreed"}, {"continue_program", false}});
    CHECK(view.at("status") == "closed");
    CHECK(ending(s, id) ==
          std::pair<std::string, std::string>{"closed", "Series stopped after urgent prescriber review (PHQ-9 item 9 positive)"});
    CHECK(count_of(completed_steps(s, id), "infusion") == 2);
    CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-SESSION", {2, 100000}}});
  }
  SECTION("at the end of the series: the review continues to the maintenance plan") {
    Scenario s(kFile);
    json::value id = uninsured_per_session(s, false);
    pretreatment(s, id, 20);
    iv_series(s, id);
    auto view = s.submit(id, "series_assessment", {{"phq9", 9}, {"phq9_item9", 2}});
    CHECK(Scenario::open_steps(view) == std::vector<std::string>{"assessment_safety_review"});
    CHECK(count_messages(s, id, "urgent_item9", "prescriber_on_call") == 1);
    // The outcome notice carries item 9 too.
    std::string notice(message_for(s, id, "outcome_response", "mental_health_provider").at("body").as_string());
    CHECK(notice.find("(item 9: 2)") != std::string::npos);
    view = s.submit(id, "assessment_safety_review", {{"assessment", "reviewed"}, {"continue_program", true}});
    CHECK(Scenario::open_steps(view) == std::vector<std::string>{"maintenance_plan"});
  }
  SECTION("at baseline: the review comes before consent") {
    Scenario s(kFile);
    json::value id = uninsured_per_session(s, false);
    auto view = s.submit(id, "baseline", {{"phq9", 20}, {"phq9_item9", 1}, {"weight_kg", 70}, {"systolic", 120}, {"diastolic", 80},
                                          {"heart_rate", 70}, {"spo2", 99}});
    CHECK(Scenario::open_steps(view) == std::vector<std::string>{"baseline_safety_review"});
    CHECK(count_messages(s, id, "urgent_item9", "prescriber_on_call") == 1);
    view = s.submit(id, "baseline_safety_review", {{"assessment", "ok"}, {"continue_program", true}});
    CHECK(Scenario::open_steps(view) == std::vector<std::string>{"consent"});
  }
}

TEST_CASE("ketamine_iv: non-response leads to re-evaluation", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = uninsured_per_session(s, false);
  pretreatment(s, id, 20);
  iv_series(s, id);
  // 20 -> 12: a 40% fall and not under 10: no response [S54].
  auto view = s.submit(id, "series_assessment", {{"phq9", 12}, {"phq9_item9", 0}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"re_evaluation"});
  view = s.submit(id, "re_evaluation", {{"plan", "repeat_series_later"}, {"notes", "review benzodiazepine use first"}});
  CHECK(view.at("status") == "completed");
  CHECK(ending(s, id) == std::pair<std::string, std::string>{"completed", "Re-evaluated after non-response"});
  auto path = completed_steps(s, id);
  CHECK(std::vector<std::string>(path.end() - 3, path.end()) ==
        std::vector<std::string>{"post_session_check", "series_assessment", "re_evaluation"});
  CHECK(count_of(path, "maintenance_plan") == 0);
  CHECK(count_messages(s, id, "outcome_non_response", "mental_health_provider") == 1);
  CHECK(count_messages(s, id, "outcome_non_response", "primary_care") == 1);
  CHECK(count_messages(s, id, "outcome_response", "primary_care") == 0);
  CHECK(count_messages(s, id, "re_evaluation_notice", "referring_provider") == 1);
  std::string notice(message_for(s, id, "re_evaluation_notice", "mental_health_provider").at("body").as_string());
  CHECK(notice.find("repeat_series_later") != std::string::npos);
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-SESSION", {6, 300000}}});
}

TEST_CASE("ketamine_iv: the response rule is a 50% fall or a final PHQ-9 under 10 [S54]", "[ketamine_iv]") {
  // baseline, final, response?
  for (const auto& [baseline, final_score, response] :
       std::vector<std::tuple<int, int, bool>>{{20, 10, true}, {22, 11, true}, {23, 12, false}, {16, 9, true}, {12, 10, false}}) {
    DYNAMIC_SECTION(baseline << " -> " << final_score) {
      Scenario s(kFile);
      json::value id = uninsured_per_session(s, false);
      pretreatment(s, id, baseline);
      iv_series(s, id);
      auto view = s.submit(id, "series_assessment", {{"phq9", final_score}, {"phq9_item9", 0}});
      CHECK(Scenario::open_steps(view) == std::vector<std::string>{response ? "maintenance_plan" : "re_evaluation"});
    }
  }
}

TEST_CASE("ketamine_iv: remission -> discharge from the program", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = uninsured_per_session(s, false);
  pretreatment(s, id, 20);
  iv_series(s, id);
  // 20 -> 3: response, and in the minimal band: remission.
  auto view = s.submit(id, "series_assessment", {{"phq9", 3}, {"phq9_item9", 0}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"maintenance_plan"});
  CHECK(count_messages(s, id, "outcome_remission", "mental_health_provider") == 1);
  CHECK(count_messages(s, id, "outcome_remission", "primary_care") == 1);
  CHECK(count_messages(s, id, "outcome_response", "primary_care") == 0);
  view = s.submit(id, "maintenance_plan", {{"plan", "discharge_from_program"}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"program_discharge"});
  view = s.submit(id, "program_discharge", {{"follow_up_plan", "own psychiatrist monthly; re-refer if symptoms return"}});
  CHECK(view.at("status") == "completed");
  CHECK(ending(s, id) == std::pair<std::string, std::string>{"completed", "Discharged from the program"});
  auto path = completed_steps(s, id);
  CHECK(std::vector<std::string>(path.end() - 3, path.end()) ==
        std::vector<std::string>{"series_assessment", "maintenance_plan", "program_discharge"});
  CHECK(count_messages(s, id, "maintenance_plan_notice", "referring_provider") == 0);
  CHECK(count_messages(s, id, "discharge_letter", "patient") == 1);
  for (const char* to : {"mental_health_provider", "primary_care", "referring_provider"}) CHECK(count_messages(s, id, "discharge_notice", to) == 1);
  std::string letter(message_for(s, id, "discharge_notice", "primary_care").at("body").as_string());
  CHECK(letter.find("own psychiatrist monthly") != std::string::npos);
}

TEST_CASE("ketamine_iv: a re-evaluation after non-response may discharge from the program", "[ketamine_iv]") {
  Scenario s(kFile);
  json::value id = uninsured_per_session(s, false);
  pretreatment(s, id, 20);
  iv_series(s, id);
  s.submit(id, "series_assessment", {{"phq9", 18}, {"phq9_item9", 0}});
  auto view = s.submit(id, "re_evaluation", {{"plan", "discharge_from_program"}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"program_discharge"});
  CHECK(count_messages(s, id, "re_evaluation_notice", "referring_provider") == 0);
  view = s.submit(id, "program_discharge", {{"follow_up_plan", "referred for ECT assessment"}});
  CHECK(ending(s, id) == std::pair<std::string, std::string>{"completed", "Discharged from the program"});
  CHECK(count_messages(s, id, "discharge_notice", "referring_provider") == 1);
}
