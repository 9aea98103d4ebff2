// Tests of the im_ketamine and oral_ketamine route plugins, which share FixedRoute: the class
// directly for each route, then once through the C ABI of the route this executable links
// (FIXED_ROUTE_ABI_TEST, set by im_ketamine_test and oral_ketamine_test, which both build this file).
//
// domain.md gives no IM or oral ketamine numbers. EVERY clinical value below is TEST-ONLY: chosen
// to exercise the rules, not a recommendation. The plugin itself has no clinical defaults.
#include "fixed_route.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

using clinicflow::Settings;
using clinicflow::StepRequest;
using clinicflow::StepResult;
using clinicflow::routes::RouteInfo;
using Plugin = clinicflow::routes::FixedRoute;
namespace json = boost::json;

namespace {

// The routes as im_ketamine.cpp and oral_ketamine.cpp define them (the C ABI test checks that the
// linked route's manifest is FixedRoute's manifest for its entry here).
constexpr RouteInfo kImKetamine{"im_ketamine", "IM ketamine"};
constexpr RouteInfo kOralKetamine{"oral_ketamine", "oral ketamine"};

// Runs the rest of the test case once per route, with kName and kRoute naming it.
#define FOR_EACH_ROUTE()                                                            \
  const RouteInfo route = GENERATE(values<RouteInfo>({kImKetamine, kOralKetamine})); \
  const char* const kName = route.name;                                             \
  const char* const kRoute = route.route;                                           \
  INFO("route: " << kName);                                                         \
  (void)kRoute

// The route whose C ABI this executable links.
const RouteInfo& abi_route() {
  for (const RouteInfo* r : {&kImKetamine, &kOralKetamine})
    if (std::strcmp(r->name, FIXED_ROUTE_ABI_TEST) == 0) return *r;
  throw std::logic_error("FIXED_ROUTE_ABI_TEST names no route");
}

// TEST-ONLY settings. Not clinical values: the medical director sets the real ones.
json::object test_settings(const RouteInfo& route, json::object overrides = {}) {
  json::object s{{"dose_basis", "mg_per_kg"}, {"min_dose", 0.2},           {"max_dose", 1.0},
                 {"max_systolic", 150},       {"max_diastolic", 95},       {"min_spo2", 94},
                 {"min_aldrete", 9},          {"min_observation_minutes", 45}, {"no_driving_hours", 12}};
  for (const auto& spec : Plugin::manifest(route).settings)
    if (!spec.default_value.is_null()) s[spec.name] = spec.default_value;
  for (const auto& [k, v] : overrides) s[k] = v;
  return s;
}

Plugin make(const RouteInfo& route, json::object overrides = {}) {
  return Plugin(route, Settings(test_settings(route, std::move(overrides))));
}

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

json::object discharge(int aldrete, int minutes, bool driver) {
  return {{"aldrete", aldrete}, {"observation_minutes", minutes}, {"driver_present", driver}, {"discharged_at", "2026-03-02T15:30:00-05:00"}};
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

TEST_CASE("manifest: every clinical number is required, with no default") {
  FOR_EACH_ROUTE();
  auto m = Plugin::manifest(route);
  CHECK(m.name == kName);
  CHECK(m.kind == "route");
  REQUIRE(m.settings.size() == 12);
  for (const auto& s : m.settings) {
    INFO(s.name);
    bool off_by_default = s.name == "min_heart_rate" || s.name == "max_heart_rate";
    if (s.name == "require_driver") {
      CHECK(s.default_value == true);
    } else if (off_by_default) {
      CHECK(s.default_value == 0);  // 0 = no check
      CHECK(s.description.find("0 = no check") != std::string::npos);
    } else {
      CHECK(s.default_value.is_null());
      CHECK(s.description.find("REQUIRED") != std::string::npos);
    }
  }
}

TEST_CASE("settings: the defaults alone cannot create the plugin; each required setting is named") {
  FOR_EACH_ROUTE();
  json::object defaults_only;
  for (const auto& spec : Plugin::manifest(route).settings)
    if (!spec.default_value.is_null()) defaults_only[spec.name] = spec.default_value;
  CHECK_THROWS_WITH(Plugin(route, Settings(defaults_only)), Catch::Contains("is required"));
  for (const char* name : {"dose_basis", "min_dose", "max_dose", "max_systolic", "max_diastolic", "min_spo2", "min_aldrete",
                           "min_observation_minutes", "no_driving_hours"}) {
    auto s = test_settings(route);
    s.erase(name);
    CHECK_THROWS_WITH(Plugin(route, Settings(s)), Catch::Contains(std::string("setting '") + name + "' is required"));
  }
}

TEST_CASE("settings: bad values fail creation with a clear message") {
  FOR_EACH_ROUTE();
  CHECK(make(route).config().dose_basis == Plugin::DoseBasis::mg_per_kg);
  CHECK(make(route, {{"dose_basis", "mg"}}).config().dose_basis == Plugin::DoseBasis::mg);
  CHECK_THROWS_WITH(make(route, {{"dose_basis", "mg/kg"}}), Catch::Contains("\"mg_per_kg\" or \"mg\""));
  CHECK_THROWS_WITH(make(route, {{"min_dose", 2.0}}), Catch::Contains("0 < min_dose <= max_dose"));
  CHECK_THROWS_WITH(make(route, {{"min_dose", 0}}), Catch::Contains("0 < min_dose"));
  CHECK_THROWS_WITH(make(route, {{"max_diastolic", 150}}), Catch::Contains("below max_systolic"));
  CHECK_THROWS_WITH(make(route, {{"min_spo2", 101}}), Catch::Contains("min_spo2"));
  CHECK_THROWS_WITH(make(route, {{"min_aldrete", 11}}), Catch::Contains("min_aldrete"));
  CHECK_THROWS_WITH(make(route, {{"min_observation_minutes", -1}}), Catch::Contains("min_observation_minutes"));
  CHECK_THROWS_WITH(make(route, {{"no_driving_hours", 0}}), Catch::Contains("no_driving_hours"));
  CHECK_THROWS_WITH(make(route, {{"max_heart_rate", 40}, {"min_heart_rate", 60}}), Catch::Contains("min_heart_rate"));
  CHECK_THROWS_WITH(make(route, {{"min_systolic", 90}}), Catch::Contains("unknown setting 'min_systolic'"));
  CHECK_THROWS_WITH(make(route, {{"max_systolic", 150.5}}), Catch::Contains("whole number"));
}

TEST_CASE("fields: each phase asks for its own form; the dose unit follows dose_basis") {
  FOR_EACH_ROUTE();
  auto p = make(route);
  CHECK(names(p.fields({{"phase", "pre_dose"}})) == std::vector<std::string>{"weight_kg", "systolic", "diastolic", "heart_rate", "spo2"});
  auto dosing = p.fields({{"phase", "dosing"}});
  CHECK(names(dosing) == std::vector<std::string>{"weight_kg", "dose"});
  CHECK(dosing[1].at("unit") == "mg/kg");
  CHECK(dosing[1].at("help") == "Accepted: 0.2 to 1 mg/kg (clinic setting).");
  CHECK(names(p.fields({{"phase", "dosing"}, {"weight_from", "check_in.weight_kg"}})) == std::vector<std::string>{"dose"});
  auto fixed = make(route, {{"dose_basis", "mg"}, {"min_dose", 25}, {"max_dose", 50}}).fields({{"phase", "dosing"}});
  CHECK(names(fixed) == std::vector<std::string>{"dose"});
  CHECK(fixed[0].at("unit") == "mg");
  auto out = p.fields({{"phase", "discharge"}});
  CHECK(names(out) == std::vector<std::string>{"aldrete", "observation_minutes", "driver_present", "discharged_at"});
  CHECK(out[0].at("max") == 10);
  CHECK_THROWS_WITH(p.fields({{"phase", "monitoring"}}), Catch::Contains("unknown phase 'monitoring'"));
  CHECK_THROWS_WITH(p.fields({}), Catch::Contains("'phase' is required"));
  CHECK_THROWS_WITH(p.fields({{"phase", "dosing"}, {"weight_from", "weight"}}), Catch::Contains("step.field"));
  CHECK_THROWS_WITH(p.fields({{"phase", "discharge"}, {"weight_from", "a.b"}}), Catch::Contains("not used by phase 'discharge'"));
}

TEST_CASE("pre_dose: BP, SpO2 and optional heart-rate gates at their boundaries") {
  FOR_EACH_ROUTE();
  auto p = make(route);
  auto ok = p.review(request("pre_dose", pre_dose(150, 95, 72, 94)));
  REQUIRE(is_ok(ok));
  CHECK(ok.data.at("bp_limit_mmhg") == "150/95");
  CHECK(ok.data.at("spo2_limit_percent") == 94);
  CHECK(p.review(request("pre_dose", pre_dose(151, 95))).reason ==
        "pre-dose blood pressure 151/95 mmHg is above the limit 150/95 mmHg: defer the session");
  CHECK(is_refused(p.review(request("pre_dose", pre_dose(150, 96)))));
  CHECK(p.review(request("pre_dose", pre_dose(120, 80, 72, 93))).reason ==
        "pre-dose SpO2 93 % is below the limit 94 %: defer the session");
  CHECK(is_ok(p.review(request("pre_dose", pre_dose(120, 80, 200)))));  // heart rate: no check by default
  auto hr = make(route, {{"min_heart_rate", 50}, {"max_heart_rate", 110}});
  CHECK(is_ok(hr.review(request("pre_dose", pre_dose(120, 80, 50)))));
  CHECK(is_ok(hr.review(request("pre_dose", pre_dose(120, 80, 110)))));
  CHECK(hr.review(request("pre_dose", pre_dose(120, 80, 49))).reason ==
        "pre-dose heart rate 49 beats/min is below the limit 50 beats/min: defer the session");
  CHECK(hr.review(request("pre_dose", pre_dose(120, 80, 111))).reason ==
        "pre-dose heart rate 111 beats/min is above the limit 110 beats/min: defer the session");
  CHECK(p.review(request("pre_dose", pre_dose(120, 80, 72, 98, 0))).reason ==
        "body weight 0 kg is not a weight: record the weight in kg");
}

TEST_CASE("dosing (mg/kg): within [min_dose, max_dose]; dose_mg = dose x weight") {
  FOR_EACH_ROUTE();
  auto p = make(route);
  auto at = [&](double dose) { return p.review(request("dosing", {{"weight_kg", 80}, {"dose", dose}})); };
  auto low = at(0.2);
  REQUIRE(is_ok(low));
  CHECK(low.data.at("dose_mg") == 16);
  CHECK(low.data.at("earliest_discharge_minutes") == 45);
  CHECK(at(1.0).data.at("dose_mg") == 80);
  CHECK(at(0.35).data.at("dose_mg") == 28);
  CHECK(at(0.19).reason == "dose 0.19 mg/kg is outside the accepted range 0.2 to 1 mg/kg");
  CHECK(at(1.01).reason == "dose 1.01 mg/kg is outside the accepted range 0.2 to 1 mg/kg");
  CHECK(p.review(request("dosing", {{"weight_kg", 72.5}, {"dose", 0.3}})).data.at("dose_mg") == 21.75);
}

TEST_CASE("dosing (mg/kg): the weight may come from an earlier step") {
  FOR_EACH_ROUTE();
  auto p = make(route);
  json::object from{{"weight_from", "check_in.weight_kg"}};
  auto r = p.review(request("dosing", {{"dose", 0.5}}, {{"check_in", json::object{{"weight_kg", 90}}}}, from));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("weight_kg") == 90);
  CHECK(r.data.at("dose_mg") == 45);
  CHECK(p.review(request("dosing", {{"dose", 0.5}}, {}, from)).reason ==
        "no body weight is recorded at check_in.weight_kg: the weight is needed for mg/kg dosing; record it before dosing");
}

TEST_CASE("dosing (mg): a fixed dose within the range, no weight needed") {
  FOR_EACH_ROUTE();
  auto p = make(route, {{"dose_basis", "mg"}, {"min_dose", 25}, {"max_dose", 50}});  // TEST-ONLY
  auto r = p.review(request("dosing", {{"dose", 25}}));
  REQUIRE(is_ok(r));
  CHECK(r.data.at("dose_mg") == 25);
  CHECK(is_ok(p.review(request("dosing", {{"dose", 50}}))));
  CHECK(p.review(request("dosing", {{"dose", 50.5}})).reason == "dose 50.5 mg is outside the accepted range 25 to 50 mg");
  CHECK(is_refused(p.review(request("dosing", {{"dose", 24}}))));
}

TEST_CASE("discharge: score, observation time and driver at their boundaries; no_driving_until") {
  FOR_EACH_ROUTE();
  auto p = make(route);
  auto ok = p.review(request("discharge", discharge(9, 45, true)));
  REQUIRE(is_ok(ok));
  CHECK(ok.data.at("no_driving_until") == "2026-03-03T03:30:00-05:00");  // + 12 h (TEST-ONLY)
  CHECK(p.review(request("discharge", discharge(8, 45, true))).reason ==
        "modified Aldrete score 8 is below 9, the minimum for discharge: keep the patient in recovery");
  CHECK(p.review(request("discharge", discharge(9, 44, true))).reason ==
        "observation 44 min is shorter than the minimum 45 min: observe for 1 more min");
  CHECK(p.review(request("discharge", discharge(9, 45, false))).reason ==
        std::string("no driver takes the patient home: a driver is required after ") + kRoute);
  CHECK(is_ok(make(route, {{"require_driver", false}}).review(request("discharge", discharge(9, 45, false)))));
  auto now = p.review(request("discharge", {{"aldrete", 10}, {"observation_minutes", 60}, {"driver_present", true}}));
  REQUIRE(is_ok(now));
  CHECK(now.data.at("discharged_at") == "2026-03-02T20:30:00Z");
  CHECK(now.data.at("no_driving_until") == "2026-03-03T08:30:00Z");
  auto all = p.review(request("discharge", discharge(7, 10, false)));
  CHECK(all.reason.find("; no driver") != std::string::npos);
  CHECK(all.reason.find("; observation 10 min") != std::string::npos);
}

TEST_CASE("broken requests fail rather than refuse") {
  FOR_EACH_ROUTE();
  auto p = make(route);
  auto unknown = p.review(request("monitoring", pre_dose(120, 80)));
  REQUIRE(is_failed(unknown));
  CHECK(unknown.reason == std::string(kName) + ": unknown phase 'monitoring': use \"pre_dose\", \"dosing\" or \"discharge\"");
  CHECK(p.review(request("dosing", {{"weight_kg", 70}})).reason == std::string(kName) + ": the submission has no number 'dose'");
  CHECK(is_failed(p.review(request("discharge", {{"aldrete", 9}, {"observation_minutes", 60}, {"driver_present", true}, {"discharged_at", "later"}}))));
  CHECK(is_failed(p.run(request("pre_dose", pre_dose(120, 80)))));
}

TEST_CASE("C ABI: manifest, creation errors and a review round trip") {
  const RouteInfo& route = abi_route();
  const char* const kName = route.name;
  INFO("route: " << kName);
  CHECK(clinicflow_plugin_abi() == CLINICFLOW_ABI_VERSION);
  json::object manifest = json::parse(clinicflow_plugin_manifest()).as_object();
  CHECK(manifest.at("name") == kName);
  CHECK(manifest.at("kind") == "route");
  CHECK(manifest.at("abi") == "1.0");
  // The linked route is exactly the route tested above (name, route label, every description).
  CHECK(std::string(clinicflow_plugin_manifest()) == clinicflow::detail::manifest_json(Plugin::manifest(route)));
  const json::array& settings = manifest.at("settings").as_array();
  REQUIRE(settings.size() == 12);
  CHECK(settings[0].at("name") == "dose_basis");
  CHECK(settings[0].at("default").is_null());

  char* error = nullptr;
  CHECK(clinicflow_plugin_create(R"({"require_driver": true, "min_heart_rate": 0, "max_heart_rate": 0})", &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error) == std::string(kName) + ": setting 'dose_basis' is required; see the plugin's README for what to set");
  clinicflow_plugin_free(error);

  error = nullptr;
  CHECK(clinicflow_plugin_create(json::serialize(test_settings(route, {{"max_dose", 0.1}})).c_str(), &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error).find("0 < min_dose <= max_dose") != std::string::npos);
  clinicflow_plugin_free(error);

  error = nullptr;
  CHECK(clinicflow_plugin_create("[1, 2]", &error) == nullptr);
  REQUIRE(error != nullptr);
  clinicflow_plugin_free(error);

  error = nullptr;
  void* instance = clinicflow_plugin_create(json::serialize(test_settings(route)).c_str(), &error);
  REQUIRE(instance != nullptr);
  json::object req{{"case_id", "c1"},
                   {"step", "dose"},
                   {"step_settings", {{"phase", "dosing"}, {"weight_from", "check_in.weight_kg"}}},
                   {"case_data", {{"check_in", {{"weight_kg", 60}}}}},
                   {"submitted", {{"dose", 0.5}}},
                   {"repetition", 0},
                   {"now", "2026-03-02T14:00:00Z"}};
  char* response = nullptr;
  REQUIRE(clinicflow_plugin_call(instance, "review", json::serialize(req).c_str(), &response) == 0);
  json::object answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "ok");
  CHECK(answer.at("data").at("dose_mg") == 30);

  req["submitted"] = json::object{{"dose", 1.5}};
  REQUIRE(clinicflow_plugin_call(instance, "review", json::serialize(req).c_str(), &response) == 0);
  answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "refused");
  CHECK(answer.at("reason") == "dose 1.5 mg/kg is outside the accepted range 0.2 to 1 mg/kg");

  REQUIRE(clinicflow_plugin_call(instance, "fields", R"({"step_settings":{"phase":"pre_dose"}})", &response) == 0);
  CHECK(json::parse(response).at("fields").as_array().size() == 5);
  clinicflow_plugin_free(response);
  CHECK(clinicflow_plugin_call(instance, "fields", R"({"step_settings":{}})", &response) == 1);
  CHECK(std::string(response).find("'phase' is required") != std::string::npos);
  clinicflow_plugin_free(response);
  clinicflow_plugin_destroy(instance);
}
