// Scenario tests of workflows/ketamine_im.toml: every branch of the journey through the JSON-RPC
// API, with the shipped configuration (config/clinicflow.toml) and the real plugins.
//
// The stages IM shares with IV (referral, eligibility, consultation, pretreatment, the 24-72 h
// check, follow-up, maintenance) are driven by the functions of namespace ketamine_journey,
// defined in ketamine_iv_test.cpp (the same test_scenarios executable) and declared in
// ketamine_journey.hpp. This
// file adds the IM-only drivers: the self-pay payment stage and one IM session.
#include "scenario/ketamine_journey.hpp"
#include "scenario/scenario_fixture.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

using clinicflow::testing::Scenario;
namespace json = boost::json;


using namespace ketamine_journey;

namespace {

const char* const kFile = "workflows/ketamine_im.toml";
const char* const kWorkflow = "ketamine_im";

using Charges = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;
using Messages = std::vector<std::pair<std::string, std::string>>;

json::object arrival(int systolic = 126, int diastolic = 80) {
  return {{"weight_kg", 80}, {"systolic", systolic}, {"diastolic", diastolic}, {"heart_rate", 72}, {"spo2", 97},
          {"fasting_followed", true}, {"driver_arranged", true}};
}

// One IM session from its opening to discharge: the gate, the injection (0.5 mg/kg, inside the
// configured placeholder range), the self-pay charge and discharge after the configured 60 min.
json::object im_session(Scenario& s, const json::value& id) {
  advance_until_open(s, id, "arrival_check");
  s.submit(id, "arrival_check", arrival());
  auto view = s.submit(id, "injection", {{"dose", 0.5}, {"injection_site", "left_deltoid"}});
  REQUIRE(Scenario::is_open(view, "discharge"));  // the session was charged
  return s.submit(id, "discharge", {{"aldrete", 10}, {"observation_minutes", 60}, {"driver_present", true}});
}

void im_series(Scenario& s, const json::value& id) {
  for (int session = 1; session <= 6; ++session) {
    im_session(s, id);
    post_session_check(s, id, routine_check());
  }
}

// The payment stage: one self-pay choice (IM has no insurance path).
json::value self_pay(Scenario& s, const json::object& choice) {
  json::value id = through_consultation(s, kWorkflow);
  auto view = s.get(id);
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"payment_choice"});
  s.submit(id, "payment_choice", choice);
  return id;
}

const std::vector<std::string> kSession{"arrival_check", "injection", "self_pay_session_charge", "discharge", "post_session_check"};

std::vector<std::string> journey(const std::vector<std::string>& tail) {
  std::vector<std::string> out{"referral_intake", "eligibility_review", "consultation_visit", "consultation_charge", "payment_choice",
                               "baseline",        "consent",            "preparation"};
  for (int i = 0; i < 6; ++i) out.insert(out.end(), kSession.begin(), kSession.end());
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

}  // namespace

TEST_CASE("ketamine_im: happy path, self-pay per session, response -> maintenance schedule", "[ketamine_im]") {
  Scenario s(kFile);
  json::value id = self_pay(s, {{"pricing", "per_session"}});
  pretreatment(s, id, 20);
  im_series(s, id);
  auto view = s.submit(id, "series_assessment", {{"phq9", 8}, {"phq9_item9", 0}});  // a 60% fall
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"maintenance_plan"});
  view = s.submit(id, "maintenance_plan", {{"plan", "booster_schedule"}, {"booster_interval_weeks", 4}});
  CHECK(view.at("status") == "completed");
  CHECK(ending(s, id) == std::pair<std::string, std::string>{"completed", "Responded to the induction series; maintenance boosters planned"});
  CHECK(completed_steps(s, id) == journey({"series_assessment", "maintenance_plan"}));
  CHECK(events_of(s, id, "step_refused").empty());

  // The dose in mg from the weight at arrival: 0.5 mg/kg x 80 kg.
  const json::object injection = s.get(id).at("data").at("injection").as_object();
  CHECK(injection.at("dose_mg").to_number<double>() == 40);

  // Self-pay only: the consultation and six sessions; nothing billed to an insurer, no superbill.
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-SESSION", {6, 300000}}});
  CHECK(s.billing(id).at("total_cents") == 335000);

  Messages expected{{"payment_summary", "patient"},
                    {"pretreatment_instructions", "patient"},
                    {"series_start", "mental_health_provider"},
                    {"series_start", "primary_care"}};
  for (int i = 0; i < 6; ++i) expected.insert(expected.end(), {{"session_reminder", "patient"}, {"aftercare", "patient"}, {"aftercare", "support_person"}});
  expected.insert(expected.end(), {{"outcome_response", "mental_health_provider"},
                                   {"outcome_response", "primary_care"},
                                   {"maintenance_plan_notice", "mental_health_provider"},
                                   {"maintenance_plan_notice", "primary_care"},
                                   {"maintenance_plan_notice", "referring_provider"}});
  CHECK(message_recipients(s, id) == expected);
  for (const auto& m : messages_of(s, id)) CHECK(m.at("status") == "delivered");
  std::string series_start(message_for(s, id, "series_start", "primary_care").at("body").as_string());
  CHECK(series_start.find("six IM ketamine sessions") != std::string::npos);
}

TEST_CASE("ketamine_im: each contraindication declines at eligibility, with a letter to the referrer", "[ketamine_im]") {
  check_every_eligibility_exit(kFile, kWorkflow);
}

TEST_CASE("ketamine_im: referral criteria and consultation exits", "[ketamine_im]") {
  SECTION("referral") { check_referral_exits(kFile, kWorkflow); }
  SECTION("consultation") { check_consultation_exits(kFile, kWorkflow); }
}

TEST_CASE("ketamine_im: blood pressure over the gate defers the session; it is given later, not skipped", "[ketamine_im]") {
  Scenario s(kFile);
  json::value id = self_pay(s, {{"pricing", "per_session"}});
  pretreatment(s, id, 20);

  // Session 1: 141/80 is above the configured 140/90 (systolic alone is enough).
  advance_until_open(s, id, "arrival_check");
  auto error = s.error("case.submit", {{"case_id", id}, {"step", "arrival_check"}, {"data", arrival(141, 80)}});
  CHECK(error.at("code") == -32010);
  CHECK(error.at("data").at("reason") == "pre-dose blood pressure 141/80 mmHg is above the limit 140/90 mmHg: defer the session");
  auto refused = events_of(s, id, "step_refused");
  REQUIRE(refused.size() == 1);
  CHECK(refused.front().at("actor") == "plugin:im_ketamine");
  auto view = s.get(id);
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"arrival_check"});
  CHECK(view.at("repetition") == 1);
  CHECK(completed_steps(s, id).back() == "preparation");  // nothing given
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}});
  CHECK(count_messages(s, id, "aftercare", "patient") == 0);

  // A value equal to the limit passes: the session goes ahead the next day.
  s.advance(24 * 3600);
  s.submit(id, "arrival_check", arrival(140, 90));
  s.submit(id, "injection", {{"dose", 0.5}, {"injection_site", "right_deltoid"}});
  s.submit(id, "discharge", {{"aldrete", 9}, {"observation_minutes", 60}, {"driver_present", true}});
  post_session_check(s, id, routine_check());
  for (int session = 2; session <= 6; ++session) {
    im_session(s, id);
    post_session_check(s, id, routine_check());
  }
  CHECK(Scenario::open_steps(s.get(id)) == std::vector<std::string>{"series_assessment"});
  auto path = completed_steps(s, id);
  CHECK(count_of(path, "injection") == 6);
  CHECK(events_of(s, id, "step_refused").size() == 1);
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-SESSION", {6, 300000}}});
  CHECK(count_messages(s, id, "aftercare", "patient") == 6);
}

TEST_CASE("ketamine_im: the plugin's session rules refuse a dose out of range and an early discharge", "[ketamine_im]") {
  Scenario s(kFile);
  json::value id = self_pay(s, {{"pricing", "per_session"}});
  pretreatment(s, id, 20);
  advance_until_open(s, id, "arrival_check");
  s.submit(id, "arrival_check", arrival());
  auto error = s.error("case.submit", {{"case_id", id}, {"step", "injection"}, {"data", {{"dose", 0.8}, {"injection_site", "other"}}}});
  CHECK(error.at("code") == -32010);
  s.submit(id, "injection", {{"dose", 0.75}, {"injection_site", "other"}});
  error = s.error("case.submit", {{"case_id", id}, {"step", "discharge"},
                                  {"data", {{"aldrete", 10}, {"observation_minutes", 59}, {"driver_present", true}}}});
  CHECK(error.at("code") == -32010);
  error = s.error("case.submit", {{"case_id", id}, {"step", "discharge"},
                                  {"data", {{"aldrete", 10}, {"observation_minutes", 60}, {"driver_present", false}}}});
  CHECK(error.at("code") == -32010);
  CHECK(events_of(s, id, "step_refused").size() == 3);
  CHECK(count_messages(s, id, "aftercare", "patient") == 0);  // no after-care before discharge
  s.submit(id, "discharge", {{"aldrete", 9}, {"observation_minutes", 60}, {"driver_present", true}});
  CHECK(count_messages(s, id, "aftercare", "patient") == 1);
  CHECK(count_messages(s, id, "aftercare", "support_person") == 1);
}

TEST_CASE("ketamine_im: self-pay package with a payment plan and HSA/FSA", "[ketamine_im]") {
  Scenario s(kFile);
  json::value id = self_pay(s, {{"pricing", "induction_6"}, {"installments", 2}, {"hsa_fsa", true}});
  const json::object choice = s.get(id).at("data").at("payment_choice").as_object();
  CHECK(choice.at("installment_cents") == 135000);
  CHECK(choice.at("first_installment_cents") == 135000);
  std::string summary(message_for(s, id, "payment_summary", "patient").at("body").as_string());
  CHECK(summary.find("you chose induction_6, paid in 2 installment(s)") != std::string::npos);
  CHECK(summary.find("Superbill") == std::string::npos);  // none for IM
  pretreatment(s, id, 20);
  im_series(s, id);
  CHECK(charges_by_code(s, id) == Charges{{"SELFPAY-CONSULT", {1, 35000}}, {"SELFPAY-PACKAGE", {1, 270000}}, {"SELFPAY-SESSION", {5, 0}}});
  CHECK(Scenario::open_steps(s.get(id)) == std::vector<std::string>{"series_assessment"});
}

TEST_CASE("ketamine_im: PHQ-9 item 9 positive raises an urgent prescriber task at once", "[ketamine_im]") {
  Scenario s(kFile);
  json::value id = self_pay(s, {{"pricing", "per_session"}});
  pretreatment(s, id, 20);
  im_session(s, id);
  auto view = post_session_check(s, id, {{"reached", true}, {"mood", "worse"}, {"phq9", 19}, {"phq9_item9", 3}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"session_safety_review"});
  CHECK(count_messages(s, id, "urgent_item9", "prescriber_on_call") == 1);
  // Continuing: the next session starts only after the review.
  view = s.submit(id, "session_safety_review", {{"assessment", "safety plan, seen next day"}, {"continue_program", true}});
  CHECK(view.at("repetition") == 2);
  CHECK(view.at("timers").at(0).at("step") == "arrival_check");
  auto path = completed_steps(s, id);
  CHECK(std::vector<std::string>(path.end() - 3, path.end()) ==
        std::vector<std::string>{"discharge", "post_session_check", "session_safety_review"});
}

TEST_CASE("ketamine_im: the response rule is a 50% fall; a final PHQ-9 under 10 alone is not enough", "[ketamine_im]") {
  Scenario s(kFile);
  json::value id = self_pay(s, {{"pricing", "per_session"}});
  pretreatment(s, id, 16);
  im_series(s, id);
  // 16 -> 9: under 10 (a responder by the IV clinic's rule [S54]) but only a 44% fall.
  auto view = s.submit(id, "series_assessment", {{"phq9", 9}, {"phq9_item9", 0}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"re_evaluation"});
  CHECK(count_messages(s, id, "outcome_non_response", "mental_health_provider") == 1);
  view = s.submit(id, "re_evaluation", {{"plan", "refer_elsewhere"}});
  CHECK(ending(s, id) == std::pair<std::string, std::string>{"completed", "Re-evaluated after non-response"});
  CHECK(completed_steps(s, id) == journey({"series_assessment", "re_evaluation"}));
  CHECK(count_messages(s, id, "re_evaluation_notice", "primary_care") == 1);
}

TEST_CASE("ketamine_im: remission -> discharge from the program", "[ketamine_im]") {
  Scenario s(kFile);
  json::value id = self_pay(s, {{"pricing", "per_session"}});
  pretreatment(s, id, 16);
  im_series(s, id);
  auto view = s.submit(id, "series_assessment", {{"phq9", 4}, {"phq9_item9", 0}});
  CHECK(Scenario::open_steps(view) == std::vector<std::string>{"maintenance_plan"});
  CHECK(count_messages(s, id, "outcome_remission", "primary_care") == 1);
  s.submit(id, "maintenance_plan", {{"plan", "discharge_from_program"}});
  view = s.submit(id, "program_discharge", {{"follow_up_plan", "back to own psychiatrist"}});
  CHECK(ending(s, id) == std::pair<std::string, std::string>{"completed", "Discharged from the program"});
  CHECK(completed_steps(s, id) == journey({"series_assessment", "maintenance_plan", "program_discharge"}));
  CHECK(count_messages(s, id, "discharge_letter", "patient") == 1);
  CHECK(count_messages(s, id, "discharge_notice", "referring_provider") == 1);
}
