// Tests of the iv_ketamine route plugin: the class directly, then once through the C ABI.
//
// Test values come from /work/shared/domain.md where it gives them (cited [Sx]). Values it does
// not give are marked TEST-ONLY: they exercise the rules and are not clinical recommendations.
#include "iv_ketamine.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

using clinicflow::Settings;
using clinicflow::StepRequest;
using clinicflow::StepResult;
using clinicflow::routes::IvKetamine;
namespace json = boost::json;

namespace {

// What the kernel does before the constructor: the manifest's defaults, then the clinic's values.
// The three required settings get values here:
//  - max_systolic/max_diastolic 140/90: the esketamine label's "elevated" example [S7][S38]; for IV
//    the thresholds are UNVERIFIED (domain.md section 2), so this is a TEST-ONLY choice;
//  - min_spo2 93: TEST-ONLY (domain.md gives no pre-dose SpO2 limit; the modified Aldrete score gives
//    SpO2 > 92 % its full 2 points [S25]).
json::object settings_with(json::object overrides = {}) {
  json::object s;
  for (const auto& spec : IvKetamine::manifest().settings)
    if (!spec.default_value.is_null()) s[spec.name] = spec.default_value;
  s["max_systolic"] = 140;
  s["max_diastolic"] = 90;
  s["min_spo2"] = 93;
  for (const auto& [k, v] : overrides) s[k] = v;
  return s;
}

IvKetamine make(json::object overrides = {}) { return IvKetamine(Settings(settings_with(std::move(overrides)))); }

StepRequest request(const char* phase, json::object submitted, json::object case_data = {}, json::object extra_settings = {}) {
  StepRequest r;
  r.case_id = "case-1";
  r.step = "session_step";
  r.step_settings = {{"phase", phase}};
  for (const auto& [k, v] : extra_settings) r.step_settings[k] = v;
  r.case_data = std::move(case_data);
  r.submitted = std::move(submitted);
  r.repetition = 1;
  r.now = "2026-03-02T20:30:00Z";
  return r;
}

json::object pre_dose(std::int64_t sys, std::int64_t dia, std::int64_t hr = 72, std::int64_t spo2 = 98, double weight = 70) {
  return {{"weight_kg", weight}, {"systolic", sys}, {"diastolic", dia}, {"heart_rate", hr}, {"spo2", spo2}};
}

std::vector<std::string> names(const std::vector<clinicflow::FieldSpec>& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.emplace_back(f.at("name").as_string());
  return out;
}

const clinicflow::FieldSpec& find_field(const std::vector<clinicflow::FieldSpec>& fields, const char* name) {
  for (const auto& f : fields)
    if (f.at("name").as_string() == name) return f;
  FAIL("no field " << name);
  throw std::logic_error("unreachable");
}

bool is_ok(const StepResult& r) { return r.status == StepResult::Status::ok; }
bool is_refused(const StepResult& r) { return r.status == StepResult::Status::refused; }
bool is_failed(const StepResult& r) { return r.status == StepResult::Status::failed; }

}  // namespace

// ------------------------------------------------------------------------------ manifest, settings

TEST_CASE("manifest: route kind, required BP/SpO2 gates, sourced defaults") {
  auto m = IvKetamine::manifest();
  CHECK(m.name == "iv_ketamine");
  CHECK(m.kind == "route");
  json::object defaults;
  for (const auto& s : m.settings) {
    defaults[s.name] = s.default_value;
    CHECK_FALSE(s.description.empty());
    // Every setting names its source, or says why it has none.
    bool cites = s.description.find("[S") != std::string::npos;
    CHECK(cites);
  }
  CHECK(defaults.at("max_systolic").is_null());
  CHECK(defaults.at("max_diastolic").is_null());
  CHECK(defaults.at("min_spo2").is_null());
  CHECK(defaults.at("min_heart_rate") == 0);
  CHECK(defaults.at("max_heart_rate") == 0);
  CHECK(defaults.at("standard_mg_per_kg") == 0.5);        // [S19]
  CHECK(defaults.at("standard_infusion_minutes") == 40);  // [S19]
  CHECK(defaults.at("min_mg_per_kg") == 0.1);             // [S19]
  CHECK(defaults.at("max_mg_per_kg") == 0.75);            // [S19]
  CHECK(defaults.at("min_infusion_minutes") == 2);        // [S19]
  CHECK(defaults.at("max_infusion_minutes") == 100);      // [S19]
  CHECK(defaults.at("bp_interval_minutes") == 10);        // [S22][S23]
  CHECK(defaults.at("min_aldrete") == 9);                 // [S25]
  CHECK(defaults.at("min_recovery_minutes") == 60);       // [S18]
  CHECK(defaults.at("require_driver") == true);           // [S13][S17]
  CHECK(defaults.at("min_recovery_minutes_unaccompanied") == 120);  // [S18]
  CHECK(defaults.at("no_driving_hours") == 24);           // [S13][S17]
  CHECK(m.settings.size() == 17);
}

TEST_CASE("settings: the defaults plus the three required gates create the plugin") {
  auto p = make();
  CHECK(p.config().max_systolic == 140);
  CHECK(p.config().max_diastolic == 90);
  CHECK(p.config().min_spo2 == 93);
  CHECK(p.config().standard_mg_per_kg == 0.5);
  CHECK(p.config().min_recovery_minutes == 60);
}

TEST_CASE("settings: a missing required gate or a bad value fails creation with a clear message") {
  for (const char* name : {"max_systolic", "max_diastolic", "min_spo2"}) {
    auto s = settings_with();
    s.erase(name);
    CHECK_THROWS_WITH(IvKetamine(Settings(s)), Catch::Contains(name) && Catch::Contains("required"));
    s[name] = nullptr;
    CHECK_THROWS_WITH(IvKetamine(Settings(s)), Catch::Contains(name) && Catch::Contains("required"));
  }
  CHECK_THROWS_WITH(make({{"max_systolic", "140"}}), Catch::Contains("max_systolic") && Catch::Contains("whole number"));
  CHECK_THROWS_WITH(make({{"max_systolic", 90}, {"max_diastolic", 140}}), Catch::Contains("below max_systolic"));
  CHECK_THROWS_WITH(make({{"min_spo2", 101}}), Catch::Contains("min_spo2"));
  CHECK_THROWS_WITH(make({{"min_mg_per_kg", 0.8}}), Catch::Contains("min_mg_per_kg <= max_mg_per_kg"));
  CHECK_THROWS_WITH(make({{"min_mg_per_kg", 0}}), Catch::Contains("0 < min_mg_per_kg"));
  CHECK_THROWS_WITH(make({{"standard_mg_per_kg", 0.8}}), Catch::Contains("standard_mg_per_kg 0.8"));
  CHECK_THROWS_WITH(make({{"standard_infusion_minutes", 101}}), Catch::Contains("standard_infusion_minutes 101"));
  CHECK_THROWS_WITH(make({{"min_infusion_minutes", 0}}), Catch::Contains("min_infusion_minutes"));
  CHECK_THROWS_WITH(make({{"bp_interval_minutes", 0}}), Catch::Contains("bp_interval_minutes"));
  CHECK_THROWS_WITH(make({{"min_aldrete", 11}}), Catch::Contains("min_aldrete"));
  CHECK_THROWS_WITH(make({{"no_driving_hours", 0}}), Catch::Contains("no_driving_hours"));
  CHECK_THROWS_WITH(make({{"min_heart_rate", 100}, {"max_heart_rate", 50}}), Catch::Contains("min_heart_rate"));
  CHECK_THROWS_WITH(make({{"max_systolc", 140}}), Catch::Contains("unknown setting 'max_systolc'"));
  CHECK_NOTHROW(make({{"min_mg_per_kg", 0.5}, {"max_mg_per_kg", 0.5}}));  // a single allowed dose is fine
}

// ------------------------------------------------------------------------------ fields

TEST_CASE("fields: each phase asks for its own form") {
  auto p = make();
  auto pre = p.fields({{"phase", "pre_dose"}});
  CHECK(names(pre) == std::vector<std::string>{"weight_kg", "systolic", "diastolic", "heart_rate", "spo2"});
  for (const auto& f : pre) CHECK(f.at("required") == true);
  CHECK(find_field(pre, "spo2").at("max") == 100);
  CHECK(find_field(pre, "systolic").at("type") == "integer");
  CHECK(find_field(pre, "weight_kg").at("type") == "number");
  CHECK(find_field(pre, "systolic").at("unit") == "mmHg");
  CHECK(find_field(pre, "systolic").at("help").as_string().find("140") != json::string::npos);

  auto dosing = p.fields({{"phase", "dosing"}});
  CHECK(names(dosing) ==
        std::vector<std::string>{"weight_kg", "dose_mg_per_kg", "infusion_minutes", "bp_readings", "peak_systolic", "peak_diastolic"});
  CHECK(find_field(dosing, "dose_mg_per_kg").at("required") == false);
  CHECK(find_field(dosing, "bp_readings").at("required") == true);
  // The clinical range is a rule with a plain-words refusal, not a form bound.
  CHECK_FALSE(find_field(dosing, "dose_mg_per_kg").contains("max"));

  auto from_step = p.fields({{"phase", "dosing"}, {"weight_from", "arrival_check.weight_kg"}});
  CHECK(names(from_step) == std::vector<std::string>{"dose_mg_per_kg", "infusion_minutes", "bp_readings", "peak_systolic", "peak_diastolic"});

  auto discharge = p.fields({{"phase", "discharge"}});
  CHECK(names(discharge) == std::vector<std::string>{"aldrete", "recovery_minutes", "driver_present", "discharged_at"});
  CHECK(find_field(discharge, "aldrete").at("min") == 0);
  CHECK(find_field(discharge, "aldrete").at("max") == 10);
  CHECK(find_field(discharge, "discharged_at").at("type") == "datetime");
  CHECK(find_field(discharge, "discharged_at").at("required") == false);
}

TEST_CASE("fields: bad step settings fail the workflow load") {
  auto p = make();
  CHECK_THROWS_WITH(p.fields({}), Catch::Contains("'phase' is required"));
  CHECK_THROWS_WITH(p.fields({{"phase", "monitoring"}}), Catch::Contains("unknown phase 'monitoring'"));
  CHECK_THROWS_WITH(p.fields({{"phase", 3}}), Catch::Contains("'phase' is required"));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"weight_from", "weight_kg"}}), Catch::Contains("step.field"));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"weight_from", "Pre.weight"}}), Catch::Contains("step.field"));
  CHECK_THROWS_WITH(p.fields({{"phase", "pre_dose"}, {"weight_from", "a.b"}}), Catch::Contains("'weight_from' is not used"));
  CHECK_THROWS_WITH(p.fields({{"phase", "discharge"}, {"phse", "x"}}), Catch::Contains("'phse'"));
}

// ------------------------------------------------------------------------------ pre-dose

TEST_CASE("pre_dose: BP at the limit passes, 1 mmHg above is refused") {
  auto p = make();
  auto ok = p.review(request("pre_dose", pre_dose(140, 90)));
  REQUIRE(is_ok(ok));
  CHECK(ok.data.at("bp_limit_mmhg") == "140/90");
  CHECK(ok.data.at("spo2_limit_percent") == 93);

  auto sys = p.review(request("pre_dose", pre_dose(141, 90)));
  REQUIRE(is_refused(sys));
  CHECK(sys.reason == "pre-dose blood pressure 141/90 mmHg is above the limit 140/90 mmHg: defer the session");
  CHECK(is_refused(p.review(request("pre_dose", pre_dose(140, 91)))));
  auto both = p.review(request("pre_dose", pre_dose(152, 96)));
  CHECK(both.reason == "pre-dose blood pressure 152/96 mmHg is above the limit 140/90 mmHg: defer the session");
}

TEST_CASE("pre_dose: the clinic's own BP limits apply") {
  // TEST-ONLY limits: the clinic sets its own (domain.md section 2, UNVERIFIED thresholds).
  auto p = make({{"max_systolic", 160}, {"max_diastolic", 100}});
  CHECK(is_ok(p.review(request("pre_dose", pre_dose(160, 100)))));
  CHECK(is_refused(p.review(request("pre_dose", pre_dose(161, 100)))));
}

TEST_CASE("pre_dose: SpO2 at the limit passes, below is refused") {
  auto p = make();
  CHECK(is_ok(p.review(request("pre_dose", pre_dose(120, 80, 72, 93)))));
  auto low = p.review(request("pre_dose", pre_dose(120, 80, 72, 92)));
  REQUIRE(is_refused(low));
  CHECK(low.reason == "pre-dose SpO2 92 % is below the limit 93 %: defer the session");
}

TEST_CASE("pre_dose: heart-rate checks are off by default and work when set") {
  CHECK(is_ok(make().review(request("pre_dose", pre_dose(120, 80, 190)))));
  CHECK(is_ok(make().review(request("pre_dose", pre_dose(120, 80, 30)))));
  // TEST-ONLY limits 50-110 beats/min: domain.md gives none.
  auto p = make({{"min_heart_rate", 50}, {"max_heart_rate", 110}});
  CHECK(is_ok(p.review(request("pre_dose", pre_dose(120, 80, 50)))));
  CHECK(is_ok(p.review(request("pre_dose", pre_dose(120, 80, 110)))));
  auto slow = p.review(request("pre_dose", pre_dose(120, 80, 49)));
  CHECK(slow.reason == "pre-dose heart rate 49 beats/min is below the limit 50 beats/min: defer the session");
  auto fast = p.review(request("pre_dose", pre_dose(120, 80, 111)));
  CHECK(fast.reason == "pre-dose heart rate 111 beats/min is above the limit 110 beats/min: defer the session");
}

TEST_CASE("pre_dose: every failed rule is reported at once; zero weight is refused") {
  auto p = make();
  auto r = p.review(request("pre_dose", pre_dose(150, 95, 72, 90, 0)));
  REQUIRE(is_refused(r));
  CHECK(r.reason ==
        "body weight 0 kg is not a weight: record the weight in kg; "
        "pre-dose blood pressure 150/95 mmHg is above the limit 140/90 mmHg: defer the session; "
        "pre-dose SpO2 90 % is below the limit 93 %: defer the session");
}

// ------------------------------------------------------------------------------ dosing

TEST_CASE("dosing: the standard regimen 0.5 mg/kg over 40 min [S19] when the form leaves it empty") {
  auto p = make();
  auto r = p.review(request("dosing", {{"weight_kg", 70}, {"bp_readings", 4}}));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("dose_mg_per_kg") == 0.5);
  CHECK(r.data.at("infusion_minutes") == 40);
  CHECK(r.data.at("dose_mg") == 35);                      // 0.5 mg/kg x 70 kg
  CHECK(r.data.at("expected_bp_readings") == 4);          // 40 min / 10 min [S22][S23]
  CHECK(r.data.at("earliest_discharge_minutes") == 100);  // 40 min infusion + 60 min recovery [S18]
  CHECK_FALSE(r.data.contains("weight_kg"));              // entered on this form: not derived
}

TEST_CASE("dosing: dose_mg = mg/kg x weight, exact to 0.01 mg") {
  auto p = make();
  auto r = p.review(request("dosing", {{"weight_kg", 83.4}, {"dose_mg_per_kg", 0.75}, {"infusion_minutes", 40}, {"bp_readings", 4}}));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("dose_mg") == 62.55);
  auto small = p.review(request("dosing", {{"weight_kg", 70}, {"dose_mg_per_kg", 0.1}, {"bp_readings", 4}}));
  REQUIRE(is_ok(small));
  CHECK(small.data.at("dose_mg") == 7);  // 0.1 x 70 is 7.000000000000001 in binary; rounded
}

TEST_CASE("dosing: the mg/kg range 0.1-0.75 [S19] is inclusive") {
  auto p = make();
  auto with_dose = [&](double d) { return p.review(request("dosing", {{"weight_kg", 70}, {"dose_mg_per_kg", d}, {"bp_readings", 4}})); };
  CHECK(is_ok(with_dose(0.1)));
  CHECK(is_ok(with_dose(0.75)));
  auto low = with_dose(0.09);
  REQUIRE(is_refused(low));
  CHECK(low.reason == "dose 0.09 mg/kg is outside the accepted range 0.1 to 0.75 mg/kg");
  auto high = with_dose(0.76);
  REQUIRE(is_refused(high));
  CHECK(high.reason == "dose 0.76 mg/kg is outside the accepted range 0.1 to 0.75 mg/kg");
}

TEST_CASE("dosing: the infusion time range 2-100 min [S19] is inclusive") {
  auto p = make();
  auto with_minutes = [&](int m, int readings) {
    return p.review(request("dosing", {{"weight_kg", 70}, {"infusion_minutes", m}, {"bp_readings", readings}}));
  };
  CHECK(is_ok(with_minutes(2, 0)));
  CHECK(is_ok(with_minutes(100, 10)));
  auto short_ = with_minutes(1, 0);
  REQUIRE(is_refused(short_));
  CHECK(short_.reason == "infusion time 1 min is outside the accepted range 2 to 100 min");
  CHECK(is_refused(with_minutes(101, 10)));
}

TEST_CASE("dosing: at least one BP reading per 10 min of infusion [S22][S23]") {
  auto p = make();
  auto run = [&](int minutes, int readings) {
    return p.review(request("dosing", {{"weight_kg", 70}, {"infusion_minutes", minutes}, {"bp_readings", readings}}));
  };
  auto missing = run(40, 3);
  REQUIRE(is_refused(missing));
  CHECK(missing.reason == "3 BP readings are recorded for a 40-min infusion, fewer than the 4 expected (one every 10 min): record every reading taken");
  CHECK(is_ok(run(40, 4)));
  CHECK(is_ok(run(40, 6)));  // more readings are fine
  CHECK(run(45, 4).data.at("expected_bp_readings") == 4);
  CHECK(run(39, 3).data.at("expected_bp_readings") == 3);
  CHECK(is_refused(run(39, 2)));
  CHECK(run(9, 0).data.at("expected_bp_readings") == 0);
  // A clinic interval of 15 min (TEST-ONLY) changes the count.
  auto p15 = make({{"bp_interval_minutes", 15}});
  CHECK(p15.review(request("dosing", {{"weight_kg", 70}, {"bp_readings", 2}})).data.at("expected_bp_readings") == 2);
}

TEST_CASE("dosing: the weight can come from an earlier step named by weight_from") {
  auto p = make();
  json::object case_data{{"arrival_check", json::object{{"weight_kg", 82}, {"systolic", 120}}}};
  json::object from{{"weight_from", "arrival_check.weight_kg"}};
  auto r = p.review(request("dosing", {{"bp_readings", 4}}, case_data, from));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("weight_kg") == 82);
  CHECK(r.data.at("dose_mg") == 41);

  auto missing = p.review(request("dosing", {{"bp_readings", 4}}, {}, from));
  REQUIRE(is_refused(missing));
  CHECK(missing.reason == "no body weight is recorded at arrival_check.weight_kg: the weight is needed for mg/kg dosing; record it before dosing");
  auto zero = p.review(request("dosing", {{"bp_readings", 4}}, {{"arrival_check", json::object{{"weight_kg", 0}}}}, from));
  CHECK(is_refused(zero));
}

// ------------------------------------------------------------------------------ discharge

TEST_CASE("discharge: modified Aldrete >= 9 [S25]") {
  auto p = make();
  auto base = [](int aldrete) {
    return json::object{{"aldrete", aldrete}, {"recovery_minutes", 60}, {"driver_present", true}, {"discharged_at", "2026-03-02T15:30:00-05:00"}};
  };
  CHECK(is_ok(p.review(request("discharge", base(9)))));
  CHECK(is_ok(p.review(request("discharge", base(10)))));
  auto low = p.review(request("discharge", base(8)));
  REQUIRE(is_refused(low));
  CHECK(low.reason == "modified Aldrete score 8 is below 9, the minimum for discharge: keep the patient in recovery");
}

TEST_CASE("discharge: at least 60 min of recovery [S18], or the clinic's own minimum") {
  auto p = make();
  auto with = [](int minutes) { return json::object{{"aldrete", 10}, {"recovery_minutes", minutes}, {"driver_present", true}}; };
  CHECK(is_ok(p.review(request("discharge", with(60)))));
  auto early = p.review(request("discharge", with(59)));
  REQUIRE(is_refused(early));
  CHECK(early.reason == "recovery observation 59 min is shorter than the minimum 60 min: observe for 1 more min");
  // 20 min is another documented clinic practice [S13].
  auto p20 = make({{"min_recovery_minutes", 20}});
  CHECK(is_ok(p20.review(request("discharge", with(20)))));
  CHECK(is_refused(p20.review(request("discharge", with(19)))));
}

TEST_CASE("discharge: a driver is required [S13][S17]; unaccompanied only when allowed, after 2 h [S18]") {
  auto with = [](bool driver, int minutes) { return json::object{{"aldrete", 10}, {"recovery_minutes", minutes}, {"driver_present", driver}}; };
  auto p = make();
  auto none = p.review(request("discharge", with(false, 180)));
  REQUIRE(is_refused(none));
  CHECK(none.reason == "no driver takes the patient home: a driver is required after IV ketamine");

  auto lenient = make({{"require_driver", false}});
  CHECK(is_ok(lenient.review(request("discharge", with(false, 120)))));
  auto early = lenient.review(request("discharge", with(false, 119)));
  REQUIRE(is_refused(early));
  CHECK(early.reason == "recovery observation 119 min is shorter than the minimum 120 min for a patient leaving without a driver: observe for 1 more min");
  CHECK(is_ok(lenient.review(request("discharge", with(true, 60)))));  // with a driver, the usual minimum
}

TEST_CASE("discharge: no driving for 24 h [S13][S17], in the offset the time was written in") {
  auto p = make();
  auto at = [&](const char* when) {
    return p.review(request("discharge", {{"aldrete", 9}, {"recovery_minutes", 60}, {"driver_present", true}, {"discharged_at", when}}));
  };
  auto r = at("2026-03-02T15:30:00-05:00");
  REQUIRE(is_ok(r));
  CHECK(r.data.at("no_driving_until") == "2026-03-03T15:30:00-05:00");
  CHECK_FALSE(r.data.contains("discharged_at"));  // staff entered it
  CHECK(at("2026-12-31T23:59:59Z").data.at("no_driving_until") == "2027-01-01T23:59:59Z");
  CHECK(at("2028-02-28T10:00:00+01:00").data.at("no_driving_until") == "2028-02-29T10:00:00+01:00");
  CHECK(at("2026-02-28T10:00:00+05:30").data.at("no_driving_until") == "2026-03-01T10:00:00+05:30");
  CHECK(at("2026-03-02T15:30:00.250Z").data.at("no_driving_until") == "2026-03-03T15:30:01Z");  // rounded up
}

TEST_CASE("discharge: without a discharge time, the submission time is used") {
  auto p = make();
  auto r = p.review(request("discharge", {{"aldrete", 9}, {"recovery_minutes", 60}, {"driver_present", true}}));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("discharged_at") == "2026-03-02T20:30:00Z");
  CHECK(r.data.at("no_driving_until") == "2026-03-03T20:30:00Z");
  // TEST-ONLY 12 h: the hours come from the setting.
  auto p12 = make({{"no_driving_hours", 12}});
  CHECK(p12.review(request("discharge", {{"aldrete", 9}, {"recovery_minutes", 60}, {"driver_present", true}}))
            .data.at("no_driving_until") == "2026-03-03T08:30:00Z");
}

TEST_CASE("discharge: several failed rules are reported together") {
  auto r = make().review(request("discharge", {{"aldrete", 7}, {"recovery_minutes", 30}, {"driver_present", false}}));
  REQUIRE(is_refused(r));
  CHECK(r.reason ==
        "modified Aldrete score 7 is below 9, the minimum for discharge: keep the patient in recovery; "
        "no driver takes the patient home: a driver is required after IV ketamine; "
        "recovery observation 30 min is shorter than the minimum 60 min: observe for 30 more min");
}

// ------------------------------------------------------------------------------ broken requests

TEST_CASE("broken requests fail rather than refuse") {
  auto p = make();
  auto unknown = p.review(request("infusion", pre_dose(120, 80)));
  REQUIRE(is_failed(unknown));
  CHECK(unknown.reason == "iv_ketamine: unknown phase 'infusion': use \"pre_dose\", \"dosing\" or \"discharge\"");
  StepRequest no_phase = request("pre_dose", pre_dose(120, 80));
  no_phase.step_settings = {};
  CHECK(is_failed(p.review(no_phase)));
  StepRequest no_form = request("pre_dose", {});
  no_form.submitted.reset();
  CHECK(is_failed(p.review(no_form)));
  auto missing = p.review(request("pre_dose", {{"systolic", 120}}));
  REQUIRE(is_failed(missing));
  CHECK(missing.reason == "iv_ketamine: the submission has no number 'weight_kg'");
  auto bad_time = p.review(request("discharge", {{"aldrete", 9}, {"recovery_minutes", 60}, {"driver_present", true}, {"discharged_at", "soon"}}));
  CHECK(is_failed(bad_time));
  CHECK(is_failed(p.run(request("pre_dose", pre_dose(120, 80)))));  // route steps are tasks
}

// ------------------------------------------------------------------------------ C ABI

TEST_CASE("C ABI: manifest, creation errors and a review round trip") {
  CHECK(clinicflow_plugin_abi() == CLINICFLOW_ABI_VERSION);

  json::object manifest = json::parse(clinicflow_plugin_manifest()).as_object();
  CHECK(manifest.at("name") == "iv_ketamine");
  CHECK(manifest.at("kind") == "route");
  CHECK(manifest.at("abi") == "1.0");
  const json::array& settings = manifest.at("settings").as_array();
  REQUIRE(settings.size() == 17);
  CHECK(settings[0].at("name") == "max_systolic");
  CHECK(settings[0].at("type") == "integer");
  CHECK(settings[0].at("default").is_null());
  bool found_standard = false;
  for (const auto& s : settings)
    if (s.at("name") == "standard_mg_per_kg") found_standard = s.at("default") == 0.5 && s.at("type") == "number";
  CHECK(found_standard);

  // A required gate missing: NULL and a message.
  char* error = nullptr;
  CHECK(clinicflow_plugin_create("{}", &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error) == "iv_ketamine: setting 'max_systolic' is required; see the plugin's README for what to set");
  clinicflow_plugin_free(error);

  // A value out of range.
  json::object bad = settings_with({{"max_mg_per_kg", 0.05}});
  error = nullptr;
  CHECK(clinicflow_plugin_create(json::serialize(bad).c_str(), &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error).find("min_mg_per_kg <= max_mg_per_kg") != std::string::npos);
  clinicflow_plugin_free(error);

  error = nullptr;
  void* instance = clinicflow_plugin_create(json::serialize(settings_with()).c_str(), &error);
  REQUIRE(instance != nullptr);
  CHECK(error == nullptr);

  char* response = nullptr;
  REQUIRE(clinicflow_plugin_call(instance, "fields", R"({"step_settings":{"phase":"discharge"}})", &response) == 0);
  json::object fields = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(fields.at("fields").as_array().size() == 4);

  json::object req{{"case_id", "c1"},
                   {"step", "infusion"},
                   {"step_settings", {{"phase", "dosing"}, {"weight_from", "arrival_check.weight_kg"}}},
                   {"case_data", {{"arrival_check", {{"weight_kg", 64}}}}},
                   {"submitted", {{"dose_mg_per_kg", 0.5}, {"infusion_minutes", 40}, {"bp_readings", 4}}},
                   {"repetition", 2},
                   {"now", "2026-03-02T14:00:00Z"}};
  REQUIRE(clinicflow_plugin_call(instance, "review", json::serialize(req).c_str(), &response) == 0);
  json::object answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "ok");
  CHECK(answer.at("data").at("dose_mg") == 32);
  CHECK(answer.at("data").at("weight_kg") == 64);
  CHECK(answer.at("charges").as_array().empty());

  req["submitted"] = json::object{{"bp_readings", 1}};
  REQUIRE(clinicflow_plugin_call(instance, "review", json::serialize(req).c_str(), &response) == 0);
  answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "refused");
  CHECK(answer.at("reason").as_string().find("fewer than the 4 expected") != json::string::npos);

  // A bad step setting at load time: the call fails with the reason.
  CHECK(clinicflow_plugin_call(instance, "fields", R"({"step_settings":{"phase":"induction"}})", &response) == 1);
  CHECK(std::string(response).find("unknown phase 'induction'") != std::string::npos);
  clinicflow_plugin_free(response);
  CHECK(clinicflow_plugin_call(instance, "deliver", "{}", &response) == 1);
  clinicflow_plugin_free(response);

  clinicflow_plugin_destroy(instance);
}
