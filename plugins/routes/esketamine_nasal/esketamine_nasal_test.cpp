// Tests of the esketamine_nasal route plugin: the class directly, then once through the C ABI.
//
// Test values are the SPRAVATO label and REMS numbers in /work/shared/domain.md section 3 (cited
// [Sx]). The REMS setting id "TEST-REMS-0001" and all patient data are TEST-ONLY.
#include "esketamine_nasal.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

using clinicflow::Settings;
using clinicflow::StepRequest;
using clinicflow::StepResult;
using clinicflow::routes::EsketamineNasal;
namespace json = boost::json;

namespace {

json::object settings_with(json::object overrides = {}) {
  json::object s;
  for (const auto& spec : EsketamineNasal::manifest().settings)
    if (!spec.default_value.is_null()) s[spec.name] = spec.default_value;
  s["rems_setting_id"] = "TEST-REMS-0001";  // TEST-ONLY
  for (const auto& [k, v] : overrides) s[k] = v;
  return s;
}

EsketamineNasal make(json::object overrides = {}) { return EsketamineNasal(Settings(settings_with(std::move(overrides)))); }

StepRequest request(const char* phase, json::object submitted, json::object case_data = {}, json::object extra_settings = {}) {
  StepRequest r;
  r.case_id = "case-1";
  r.step = "dose";
  r.step_settings = {{"phase", phase}};
  for (const auto& [k, v] : extra_settings) r.step_settings[k] = v;
  r.case_data = std::move(case_data);
  r.submitted = std::move(submitted);
  r.repetition = 1;
  r.now = "2026-03-02T17:00:00Z";
  return r;
}

json::object pre_dose(json::object overrides = {}) {
  json::object o{{"rems_enrolled", true}, {"prescriber_onsite", true}, {"pulse_oximeter_onsite", true},
                 {"systolic", 128},       {"diastolic", 82},         {"minutes_since_food", 180},
                 {"minutes_since_liquids", 45}};
  for (const auto& [k, v] : overrides) o[k] = v;
  return o;
}

json::object dose(std::int64_t mg, const char* first = "2026-03-02T10:00:00-05:00", json::object overrides = {}) {
  json::object o{{"dose_mg", mg}, {"first_device_at", first}, {"lot_number", "TESTLOT1"}};
  for (const auto& [k, v] : overrides) o[k] = v;
  return o;
}

// What an earlier session's dosing step holds after this plugin accepted it.
json::object history(std::int64_t session, const char* start, std::int64_t starting_dose = 56) {
  return {{"dose_mg", 56}, {"session_number", session}, {"treatment_start_date", start}, {"starting_dose_mg", starting_dose}};
}

json::object discharge(json::object overrides = {}) {
  json::object o{{"monitoring_minutes", 120}, {"sedation_resolved", true}, {"dissociation_resolved", true},
                 {"respiratory_depression_resolved", true}, {"systolic", 130}, {"diastolic", 85},
                 {"ride_home", true}, {"discharged_at", "2026-03-02T12:05:00-05:00"}};
  for (const auto& [k, v] : overrides) o[k] = v;
  return o;
}

std::vector<std::string> names(const std::vector<clinicflow::FieldSpec>& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.emplace_back(f.at("name").as_string());
  return out;
}

bool is_ok(const StepResult& r) { return r.status == StepResult::Status::ok; }
bool is_refused(const StepResult& r) { return r.status == StepResult::Status::refused; }
bool is_failed(const StepResult& r) { return r.status == StepResult::Status::failed; }

}  // namespace

// ------------------------------------------------------------------------------ manifest, settings

TEST_CASE("manifest: the REMS id is required; label numbers are sourced defaults") {
  auto m = EsketamineNasal::manifest();
  CHECK(m.name == "esketamine_nasal");
  CHECK(m.kind == "route");
  json::object d;
  for (const auto& s : m.settings) {
    d[s.name] = s.default_value;
    CHECK(s.description.find("[S") != std::string::npos);
  }
  CHECK(m.settings.size() == 16);
  CHECK(d.at("rems_setting_id").is_null());
  CHECK(d.at("patient_monitoring_form") == true);              // feature flag, on [S16][S32]
  CHECK(d.at("pmf_due_days") == 7);                            // [S16][S32]
  CHECK(d.at("max_systolic") == 140);                          // [S7][S38]
  CHECK(d.at("max_diastolic") == 90);                          // [S7][S38]
  CHECK(d.at("min_food_fast_minutes") == 120);                 // [S6]
  CHECK(d.at("min_liquid_fast_minutes") == 30);                // [S6]
  CHECK(d.at("min_nasal_medication_minutes") == 60);           // [S6]
  CHECK(d.at("device_mg") == 28);                              // [S6][S8][S38]
  CHECK(d.at("allowed_doses_mg") == json::array{56, 84});      // [S6][S8][S38]
  CHECK(d.at("starting_dose_mg") == 56);                       // [S38]
  CHECK(d.at("minutes_between_devices") == 5);                 // [S6][S8][S38]
  CHECK(d.at("bp_recheck_minutes") == 40);                     // [S7][S38]
  CHECK(d.at("min_monitoring_minutes") == 120);                // [S10][S30]
  CHECK(d.at("induction_weeks") == 4);                         // [S38]
  CHECK(d.at("weekly_until_week") == 8);                       // [S38]
}

TEST_CASE("settings: bad values fail creation with a clear message") {
  CHECK(make().config().rems_setting_id == "TEST-REMS-0001");
  CHECK(make().config().allowed_doses_mg == std::vector<std::int64_t>{56, 84});
  auto s = settings_with();
  s.erase("rems_setting_id");
  CHECK_THROWS_WITH(EsketamineNasal(Settings(s)), Catch::Contains("'rems_setting_id' is required"));
  CHECK_THROWS_WITH(make({{"rems_setting_id", "  "}}), Catch::Contains("must not be empty"));
  CHECK_THROWS_WITH(make({{"rems_setting_id", 42}}), Catch::Contains("must be text"));
  CHECK_THROWS_WITH(make({{"allowed_doses_mg", json::array{56, 70}}}), Catch::Contains("whole number of 28 mg devices, not 70"));
  CHECK_THROWS_WITH(make({{"allowed_doses_mg", json::array{56, 56}}}), Catch::Contains("twice"));
  CHECK_THROWS_WITH(make({{"allowed_doses_mg", json::array{}}}), Catch::Contains("allowed_doses_mg"));
  CHECK_THROWS_WITH(make({{"starting_dose_mg", 28}}), Catch::Contains("starting_dose_mg 28 must be one of"));
  CHECK_THROWS_WITH(make({{"weekly_until_week", 3}}), Catch::Contains("induction_weeks <= weekly_until_week"));
  CHECK_THROWS_WITH(make({{"pmf_due_days", 0}}), Catch::Contains("pmf_due_days"));
  CHECK_THROWS_WITH(make({{"max_diastolic", 150}}), Catch::Contains("below max_systolic"));
  CHECK_THROWS_WITH(make({{"device_mg", 0}}), Catch::Contains("device_mg"));
  CHECK_THROWS_WITH(make({{"pmf_due_day", 7}}), Catch::Contains("unknown setting 'pmf_due_day'"));
  // The allowed doses are kept in order, whatever order the clinic wrote them in.
  CHECK(make({{"allowed_doses_mg", json::array{84, 56}}}).config().allowed_doses_mg == std::vector<std::int64_t>{56, 84});
}

// ------------------------------------------------------------------------------ fields

TEST_CASE("fields: each phase asks for its own form") {
  auto p = make();
  CHECK(names(p.fields({{"phase", "pre_dose"}})) ==
        std::vector<std::string>{"rems_enrolled", "prescriber_onsite", "pulse_oximeter_onsite", "systolic", "diastolic",
                                 "elevated_bp_risk_accepted", "minutes_since_food", "minutes_since_liquids",
                                 "minutes_since_nasal_medication"});
  auto dosing = p.fields({{"phase", "dosing"}, {"history_from", json::array{"dose", "maintenance_dose"}}, {"indication", "trd"}});
  CHECK(names(dosing) == std::vector<std::string>{"dose_mg", "devices_used", "first_device_at", "last_device_at", "lot_number"});
  CHECK(dosing[0].at("help") == "56 or 84 mg, 28 mg per device.");
  CHECK(dosing[4].at("required") == true);
  CHECK(dosing[4].at("type") == "string");
  CHECK(names(p.fields({{"phase", "monitoring"}})) ==
        std::vector<std::string>{"bp_minutes_after_dosing", "systolic", "diastolic", "spo2"});
  auto out = p.fields({{"phase", "discharge"}, {"dosing_step", "dose"}});
  CHECK(names(out) == std::vector<std::string>{"monitoring_minutes", "sedation_resolved", "dissociation_resolved",
                                               "respiratory_depression_resolved", "systolic", "diastolic", "ride_home",
                                               "ready_to_leave_minutes", "discharged_at"});
}

TEST_CASE("fields: bad step settings fail the workflow load") {
  auto p = make();
  CHECK_THROWS_WITH(p.fields({{"phase", "recovery"}}), Catch::Contains("unknown phase 'recovery'"));
  CHECK_THROWS_WITH(p.fields({}), Catch::Contains("'phase' is required"));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"history_from", 3}}), Catch::Contains("history_from"));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"history_from", json::array{}}}), Catch::Contains("history_from"));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"history_from", "Dose"}}), Catch::Contains("'Dose' is not a step id"));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"indication", "ptsd"}}), Catch::Contains("\"trd\" or \"mdd_si\""));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"dosing_step", "dose"}}), Catch::Contains("'dosing_step' is not used"));
  CHECK_THROWS_WITH(p.fields({{"phase", "discharge"}, {"dosing_step", 1}}), Catch::Contains("dosing_step"));
}

// ------------------------------------------------------------------------------ pre-dose

TEST_CASE("pre_dose: all checks pass") {
  auto r = make().review(request("pre_dose", pre_dose()));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("rems_setting_id") == "TEST-REMS-0001");
  CHECK(r.data.at("bp_elevated") == false);
}

TEST_CASE("pre_dose: REMS enrollment, prescriber and pulse oximeter on site [S30][S10]") {
  auto p = make();
  auto r = p.review(request("pre_dose", pre_dose({{"rems_enrolled", false}})));
  REQUIRE(is_refused(r));
  CHECK(r.reason == "the patient is not enrolled in the SPRAVATO REMS: enroll the patient (Patient Enrollment Form signed by "
                    "patient and prescriber) before the first dose");
  CHECK(p.review(request("pre_dose", pre_dose({{"prescriber_onsite", false}}))).reason ==
        "the REMS requires a prescriber on site during dosing and monitoring");
  CHECK(p.review(request("pre_dose", pre_dose({{"pulse_oximeter_onsite", false}}))).reason ==
        "the REMS requires a pulse oximeter on site");
}

TEST_CASE("pre_dose: BP above 140/90 [S7][S38]: delay, unless the prescriber weighed the risk") {
  auto p = make();
  auto at_limit = p.review(request("pre_dose", pre_dose({{"systolic", 140}, {"diastolic", 90}})));
  REQUIRE(is_ok(at_limit));
  CHECK(at_limit.data.at("bp_elevated") == false);
  auto high = p.review(request("pre_dose", pre_dose({{"systolic", 141}, {"diastolic", 90}})));
  REQUIRE(is_refused(high));
  CHECK(high.reason == "pre-dose blood pressure 141/90 mmHg is above 140/90 mmHg: consider delaying the dose, or record "
                       "that the prescriber has weighed the risk and proceeds");
  CHECK(is_refused(p.review(request("pre_dose", pre_dose({{"systolic", 120}, {"diastolic", 91}})))));
  CHECK(is_refused(p.review(request("pre_dose", pre_dose({{"systolic", 141}, {"elevated_bp_risk_accepted", false}})))));
  auto accepted = p.review(request("pre_dose", pre_dose({{"systolic", 152}, {"diastolic", 96}, {"elevated_bp_risk_accepted", true}})));
  REQUIRE(is_ok(accepted));
  CHECK(accepted.data.at("bp_elevated") == true);
}

TEST_CASE("pre_dose: no food 2 h, no liquids 30 min, nasal medication 1 h before [S6]") {
  auto p = make();
  CHECK(is_ok(p.review(request("pre_dose", pre_dose({{"minutes_since_food", 120}, {"minutes_since_liquids", 30}})))));
  auto food = p.review(request("pre_dose", pre_dose({{"minutes_since_food", 119}})));
  REQUIRE(is_refused(food));
  CHECK(food.reason == "last food 119 min ago: no food for at least 120 min before dosing; wait 1 more min");
  auto liquids = p.review(request("pre_dose", pre_dose({{"minutes_since_liquids", 20}})));
  CHECK(liquids.reason == "last liquids 20 min ago: no liquids for at least 30 min before dosing; wait 10 more min");
  CHECK(is_ok(p.review(request("pre_dose", pre_dose({{"minutes_since_nasal_medication", 60}})))));
  auto nasal = p.review(request("pre_dose", pre_dose({{"minutes_since_nasal_medication", 45}})));
  CHECK(nasal.reason == "nasal corticosteroid or decongestant 45 min ago: take it at least 60 min before dosing; wait 15 more min");
  CHECK(is_ok(p.review(request("pre_dose", pre_dose({{"minutes_since_nasal_medication", nullptr}})))));
  auto both = p.review(request("pre_dose", pre_dose({{"rems_enrolled", false}, {"minutes_since_liquids", 0}})));
  CHECK(both.reason.find("; last liquids 0 min ago") != std::string::npos);
}

// ------------------------------------------------------------------------------ dosing

TEST_CASE("dosing: the first TRD session is 56 mg (2 devices); derived session data") {
  auto p = make();
  // 23:30 local (-05:00) is already the next day in UTC: the session date is the clinic's day.
  auto r = p.review(request("dosing", dose(56, "2026-03-02T23:30:00-05:00")));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("devices") == 2);
  CHECK(r.data.at("session_number") == 1);
  CHECK(r.data.at("session_date") == "2026-03-02");
  CHECK(r.data.at("treatment_start_date") == "2026-03-02");
  CHECK(r.data.at("starting_dose_mg") == 56);
  CHECK(r.data.at("treatment_week") == 1);
  CHECK(r.data.at("treatment_phase") == "induction");
  CHECK(r.data.at("dosing_frequency") == "twice weekly");
  CHECK(r.data.at("indication") == "trd");
  CHECK(r.data.at("bp_recheck_due_at") == "2026-03-03T00:10:00-05:00");      // +40 min [S38]
  CHECK(r.data.at("earliest_discharge_at") == "2026-03-03T01:30:00-05:00");  // +120 min [S10][S30]
  CHECK(r.data.at("rems_setting_id") == "TEST-REMS-0001");
}

TEST_CASE("dosing: 84 mg only after a 56 mg starting dose [S38]") {
  auto p = make();
  auto first = p.review(request("dosing", dose(84)));
  REQUIRE(is_refused(first));
  CHECK(first.reason == "84 mg is given only after a 56 mg starting dose, and no earlier dose is recorded: the first dose is 56 mg");

  auto second = p.review(request("dosing", dose(84, "2026-03-05T10:00:00-05:00"), {{"dose", history(1, "2026-03-02")}}));
  REQUIRE(is_ok(second));
  CHECK(second.data.at("devices") == 3);
  CHECK(second.data.at("session_number") == 2);
  CHECK(second.data.at("treatment_start_date") == "2026-03-02");
  CHECK(second.data.at("starting_dose_mg") == 56);

  auto started_high = p.review(request("dosing", dose(84, "2026-03-05T10:00:00-05:00"), {{"dose", history(1, "2026-03-02", 84)}}));
  REQUIRE(is_refused(started_high));
  CHECK(started_high.reason == "84 mg is given only after a 56 mg starting dose, and this course started at 84 mg");
  // 56 mg is always fine.
  CHECK(is_ok(p.review(request("dosing", dose(56, "2026-03-05T10:00:00-05:00"), {{"dose", history(1, "2026-03-02", 84)}}))));
}

TEST_CASE("dosing: MDD with acute suicidal ideation starts at 84 mg [S38]") {
  auto p = make();
  json::object mdd{{"indication", "mdd_si"}};
  auto r = p.review(request("dosing", dose(84), {}, mdd));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("starting_dose_mg") == 84);
  CHECK(r.data.at("indication") == "mdd_si");
  auto week5 = p.review(request("dosing", dose(84, "2026-03-30T10:00:00-05:00"), {{"dose", history(8, "2026-03-02", 84)}}, mdd));
  REQUIRE(is_ok(week5));
  CHECK(week5.data.at("treatment_week") == 5);
  CHECK(week5.data.at("treatment_phase") == "beyond_studied_duration");
  CHECK(week5.data.at("dosing_frequency") == "not studied beyond week 4");
}

TEST_CASE("dosing: only 56 or 84 mg; devices must match the dose [S6][S8][S38]") {
  auto p = make();
  auto odd = p.review(request("dosing", dose(70)));
  REQUIRE(is_refused(odd));
  CHECK(odd.reason == "dose 70 mg is not an accepted dose (56 or 84 mg)");
  CHECK(is_refused(p.review(request("dosing", dose(28)))));
  CHECK(is_ok(p.review(request("dosing", dose(56, "2026-03-02T10:00:00-05:00", {{"devices_used", 2}})))));
  auto wrong = p.review(request("dosing", dose(56, "2026-03-02T10:00:00-05:00", {{"devices_used", 3}})));
  REQUIRE(is_refused(wrong));
  CHECK(wrong.reason == "3 devices were recorded, but 56 mg is 2 devices of 28 mg: check the dose and the devices");
}

TEST_CASE("dosing: 5 min between devices [S6][S8][S38]") {
  auto p = make();
  json::object prior{{"dose", history(1, "2026-03-02")}};
  auto with_last = [&](std::int64_t mg, const char* last) {
    return p.review(request("dosing", dose(mg, "2026-03-05T10:00:00-05:00", {{"last_device_at", last}}), prior));
  };
  CHECK(is_ok(with_last(84, "2026-03-05T10:10:00-05:00")));
  CHECK(is_ok(with_last(84, "2026-03-05T15:10:00Z")));  // the same instant written in UTC
  auto quick = with_last(84, "2026-03-05T10:09:00-05:00");
  REQUIRE(is_refused(quick));
  CHECK(quick.reason == "84 mg is 3 devices, 5 min apart: the last device is due at least 10 min after the first, not 9 min");
  CHECK(is_ok(with_last(56, "2026-03-05T10:05:00-05:00")));
  auto quick56 = with_last(56, "2026-03-05T10:04:30-05:00");
  REQUIRE(is_refused(quick56));
  CHECK(quick56.reason == "56 mg is 2 devices, 5 min apart: the last device is due at least 5 min after the first, not 4.5 min");
  CHECK(with_last(56, "2026-03-05T09:59:00-05:00").reason == "the last device is recorded before the first: check the times");
}

TEST_CASE("dosing: the lot number is required [S16]") {
  auto p = make();
  auto blank = p.review(request("dosing", dose(56, "2026-03-02T10:00:00-05:00", {{"lot_number", " "}})));
  REQUIRE(is_refused(blank));
  CHECK(blank.reason == "the lot number is missing: it is required on the Patient Monitoring Form");
  CHECK(is_refused(p.review(request("dosing", dose(56, "2026-03-02T10:00:00-05:00", {{"lot_number", ""}})))));
  json::object no_lot = dose(56);
  no_lot.erase("lot_number");
  CHECK(is_failed(p.review(request("dosing", no_lot))));
}

TEST_CASE("dosing: treatment phase by week: 1-4 twice weekly, 5-8 weekly, 9+ every 2 weeks or weekly [S38]") {
  auto p = make();
  json::object prior{{"dose", history(3, "2026-03-02")}};  // treatment started Monday 2 March 2026
  auto on = [&](const char* first) { return p.review(request("dosing", dose(56, first), prior)).data; };
  CHECK(on("2026-03-02T10:00:00-05:00").at("treatment_week") == 1);
  auto week4 = on("2026-03-29T10:00:00-04:00");  // day 27
  CHECK(week4.at("treatment_week") == 4);
  CHECK(week4.at("treatment_phase") == "induction");
  auto week5 = on("2026-03-30T10:00:00-04:00");  // day 28
  CHECK(week5.at("treatment_week") == 5);
  CHECK(week5.at("treatment_phase") == "maintenance_weekly");
  CHECK(week5.at("dosing_frequency") == "weekly");
  CHECK(on("2026-04-26T10:00:00-04:00").at("treatment_week") == 8);  // day 55
  auto week9 = on("2026-04-27T10:00:00-04:00");                      // day 56
  CHECK(week9.at("treatment_week") == 9);
  CHECK(week9.at("treatment_phase") == "maintenance");
  CHECK(week9.at("dosing_frequency") == "every 2 weeks or weekly, at the lowest frequency that maintains the response");
  CHECK(week9.at("session_number") == 4);
  auto before = p.review(request("dosing", dose(56, "2026-03-01T10:00:00-05:00"), prior));
  REQUIRE(is_refused(before));
  CHECK(before.reason == "the session date 2026-03-01 is before the treatment start 2026-03-02: check the first-device time");
}

TEST_CASE("dosing: history_from may list several dosing steps; the latest session counts") {
  auto p = make();
  json::object data{{"induction_dose", history(8, "2026-03-02")}, {"maintenance_dose", history(11, "2026-03-03")}};
  json::object from{{"history_from", json::array{"induction_dose", "maintenance_dose"}}};
  auto r = p.review(request("dosing", dose(84, "2026-05-04T10:00:00-04:00"), data, from));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("session_number") == 12);
  CHECK(r.data.at("treatment_start_date") == "2026-03-03");
  // A step in the list without earlier data is simply skipped.
  json::object only_one{{"induction_dose", history(8, "2026-03-02")}};
  CHECK(p.review(request("dosing", dose(56, "2026-05-04T10:00:00-04:00"), only_one, from)).data.at("session_number") == 9);
  // A history step that is not an esketamine_nasal dosing step is a broken workflow.
  auto broken = p.review(request("dosing", dose(56), {{"dose", json::object{{"dose_mg", 56}}}}));
  REQUIRE(is_failed(broken));
  CHECK(broken.reason.find("'history_from' must name esketamine_nasal dosing steps") != std::string::npos);
}

// ------------------------------------------------------------------------------ monitoring

TEST_CASE("monitoring: the post-dose BP at 40 min [S16][S38]") {
  auto p = make();
  auto bp = [&](int minutes, int sys, int dia) {
    return p.review(request("monitoring", {{"bp_minutes_after_dosing", minutes}, {"systolic", sys}, {"diastolic", dia}}));
  };
  auto ok = bp(40, 138, 88);
  REQUIRE(is_ok(ok));
  CHECK(ok.data.at("bp_elevated") == false);
  auto early = bp(39, 138, 88);
  REQUIRE(is_refused(early));
  CHECK(early.reason == "this BP was taken 39 min after dosing: the post-dose BP is taken at 40 min; record the 40-min reading");
  auto high = bp(45, 150, 95);
  REQUIRE(is_ok(high));  // recorded and flagged: the label says to reassess as clinically warranted
  CHECK(high.data.at("bp_elevated") == true);
}

// ------------------------------------------------------------------------------ discharge

TEST_CASE("discharge: 2 h of monitoring and symptoms resolved [S10][S30]; no driving until the next day [S7][S8]") {
  auto p = make();
  auto r = p.review(request("discharge", discharge()));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("session_date") == "2026-03-02");
  CHECK(r.data.at("no_driving_until") == "2026-03-03");
  CHECK(r.data.at("no_driving_condition") == "after a restful sleep");
  CHECK(r.data.at("pmf_required") == true);
  CHECK(r.data.at("pmf_due") == "2026-03-09");  // session date + 7 days [S16][S32]
  CHECK(r.data.at("bp_elevated") == false);
  CHECK_FALSE(r.data.contains("discharged_at"));

  auto short_ = p.review(request("discharge", discharge({{"monitoring_minutes", 119}})));
  REQUIRE(is_refused(short_));
  CHECK(short_.reason == "monitoring 119 min is shorter than the minimum 120 min: keep monitoring for 1 more min");
}

TEST_CASE("discharge: sedation, dissociation and respiratory depression must have resolved [S10][S30]") {
  auto p = make();
  CHECK(p.review(request("discharge", discharge({{"sedation_resolved", false}}))).reason ==
        "sedation has not resolved: keep monitoring until sedation, dissociation and respiratory depression have resolved");
  CHECK(p.review(request("discharge", discharge({{"sedation_resolved", false}, {"dissociation_resolved", false}}))).reason ==
        "sedation and dissociation have not resolved: keep monitoring until sedation, dissociation and respiratory depression have resolved");
  CHECK(p.review(request("discharge", discharge({{"sedation_resolved", false}, {"dissociation_resolved", false},
                                                 {"respiratory_depression_resolved", false}})))
            .reason.rfind("sedation, dissociation and respiratory depression have not resolved", 0) == 0);
  CHECK(is_refused(p.review(request("discharge", discharge({{"respiratory_depression_resolved", false}})))));
  CHECK(p.review(request("discharge", discharge({{"ride_home", false}}))).reason ==
        "no ride home: the patient must not drive until the next day after a restful sleep, and needs a ride home");
}

TEST_CASE("discharge: the PMF flag off derives no due date") {
  auto r = make({{"patient_monitoring_form", false}}).review(request("discharge", discharge()));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("pmf_required") == false);
  CHECK_FALSE(r.data.contains("pmf_due"));
}

TEST_CASE("discharge: the session date comes from the dosing step when named") {
  auto p = make();
  json::object data{{"dose", json::object{{"session_date", "2026-12-28"}}}};
  auto late = discharge({{"discharged_at", "2026-12-29T00:45:00-05:00"}});  // past midnight
  auto r = p.review(request("discharge", late, data, {{"dosing_step", "dose"}}));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("session_date") == "2026-12-28");
  CHECK(r.data.at("no_driving_until") == "2026-12-29");
  CHECK(r.data.at("pmf_due") == "2027-01-04");
  // Without dosing_step the discharge day counts.
  CHECK(p.review(request("discharge", late)).data.at("pmf_due") == "2027-01-05");
  auto missing = p.review(request("discharge", late, {}, {{"dosing_step", "dose"}}));
  REQUIRE(is_failed(missing));
  CHECK(missing.reason.find("step 'dose' has no session_date") != std::string::npos);
}

TEST_CASE("discharge: without a discharge time the submission time is used") {
  json::object form = discharge();
  form.erase("discharged_at");
  auto r = make().review(request("discharge", form));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("discharged_at") == "2026-03-02T17:00:00Z");
  CHECK(r.data.at("session_date") == "2026-03-02");
  auto leap = request("discharge", form);
  leap.now = "2028-02-28T18:00:00Z";
  CHECK(make().review(leap).data.at("no_driving_until") == "2028-02-29");
}

// ------------------------------------------------------------------------------ broken requests

TEST_CASE("broken requests fail rather than refuse") {
  auto p = make();
  auto unknown = p.review(request("infusion", pre_dose()));
  REQUIRE(is_failed(unknown));
  CHECK(unknown.reason == "esketamine_nasal: unknown phase 'infusion': use \"pre_dose\", \"dosing\", \"monitoring\" or \"discharge\"");
  auto missing = p.review(request("pre_dose", {{"rems_enrolled", true}}));
  REQUIRE(is_failed(missing));
  CHECK(missing.reason == "esketamine_nasal: the submission has no true/false 'prescriber_onsite'");
  CHECK(is_failed(p.review(request("dosing", dose(56, "yesterday")))));
  CHECK(is_failed(p.run(request("pre_dose", pre_dose()))));
}

// ------------------------------------------------------------------------------ C ABI

TEST_CASE("C ABI: manifest, creation errors and a review round trip") {
  CHECK(clinicflow_plugin_abi() == CLINICFLOW_ABI_VERSION);
  json::object manifest = json::parse(clinicflow_plugin_manifest()).as_object();
  CHECK(manifest.at("name") == "esketamine_nasal");
  CHECK(manifest.at("kind") == "route");
  CHECK(manifest.at("abi") == "1.0");
  const json::array& settings = manifest.at("settings").as_array();
  REQUIRE(settings.size() == 16);
  CHECK(settings[0].at("name") == "rems_setting_id");
  CHECK(settings[0].at("type") == "string");
  CHECK(settings[0].at("default").is_null());
  CHECK(settings[9].at("name") == "allowed_doses_mg");
  CHECK(settings[9].at("type") == "array");
  CHECK(settings[9].at("default") == json::array{56, 84});

  char* error = nullptr;
  CHECK(clinicflow_plugin_create("{}", &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error) == "esketamine_nasal: setting 'rems_setting_id' is required; see the plugin's README for what to set");
  clinicflow_plugin_free(error);

  error = nullptr;
  CHECK(clinicflow_plugin_create(json::serialize(settings_with({{"starting_dose_mg", 84}, {"allowed_doses_mg", json::array{56}}})).c_str(),
                                 &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error).find("starting_dose_mg 84 must be one of allowed_doses_mg") != std::string::npos);
  clinicflow_plugin_free(error);

  error = nullptr;
  void* instance = clinicflow_plugin_create(json::serialize(settings_with()).c_str(), &error);
  REQUIRE(instance != nullptr);

  json::object req{{"case_id", "c1"},
                   {"step", "dose"},
                   {"step_settings", {{"phase", "dosing"}}},
                   {"case_data", json::object{}},
                   {"submitted", dose(56, "2026-03-02T10:00:00-05:00", {{"last_device_at", "2026-03-02T10:05:00-05:00"}})},
                   {"repetition", 1},
                   {"now", "2026-03-02T15:10:00Z"}};
  char* response = nullptr;
  REQUIRE(clinicflow_plugin_call(instance, "review", json::serialize(req).c_str(), &response) == 0);
  json::object answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "ok");
  CHECK(answer.at("data").at("session_number") == 1);
  CHECK(answer.at("data").at("treatment_phase") == "induction");

  // The next session reads this one's data back, as the kernel would hand it over.
  json::object first_data = answer.at("data").as_object();
  for (const auto& [k, v] : req.at("submitted").as_object()) first_data[k] = v;
  req["case_data"] = json::object{{"dose", first_data}};
  req["submitted"] = dose(84, "2026-03-05T10:00:00-05:00");
  REQUIRE(clinicflow_plugin_call(instance, "review", json::serialize(req).c_str(), &response) == 0);
  answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "ok");
  CHECK(answer.at("data").at("session_number") == 2);
  CHECK(answer.at("data").at("devices") == 3);

  req["step_settings"] = json::object{{"phase", "pre_dose"}};
  req["submitted"] = pre_dose({{"rems_enrolled", false}});
  REQUIRE(clinicflow_plugin_call(instance, "review", json::serialize(req).c_str(), &response) == 0);
  answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "refused");
  CHECK(answer.at("reason").as_string().find("not enrolled in the SPRAVATO REMS") != json::string::npos);

  REQUIRE(clinicflow_plugin_call(instance, "fields", R"({"step_settings":{"phase":"monitoring"}})", &response) == 0);
  CHECK(json::parse(response).at("fields").as_array().size() == 4);
  clinicflow_plugin_free(response);
  CHECK(clinicflow_plugin_call(instance, "fields", R"({"step_settings":{"phase":"aftercare"}})", &response) == 1);
  CHECK(std::string(response).find("unknown phase 'aftercare'") != std::string::npos);
  clinicflow_plugin_free(response);
  clinicflow_plugin_destroy(instance);
}
