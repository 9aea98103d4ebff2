// Tests of the insurance billing plugin: the class directly, and once through the C ABI.
// Fee amounts here are test values (the plugin has no built-in prices). Codes and coding rules
// are from the domain brief §5; X0001/X0002 stand for a payer's own E/M and prolonged-service
// codes, which the brief does not name [S61].
#include "insurance.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

namespace json = boost::json;
using clinicflow::Charge;
using clinicflow::Settings;
using clinicflow::StepRequest;
using clinicflow::StepResult;
using clinicflow_billing::Insurance;

json::object settings_json() {
  return json::parse(R"J({
    "fee_schedule": {"G2082": 81000, "G2083": 112000, "96365": 20000, "96366": 6000, "96374": 9000,
                     "J3490": 1500, "J0013": 2500, "S0013": 2400, "X0001": 15000, "X0002": 9000},
    "commercial_codes": {
      "Acme Health": [{"code": "X0001", "description": "E/M visit (Acme)", "modifiers": ["25"]},
                      {"code": "X0002", "units": 2, "description": "Prolonged clinical staff service (Acme)"}],
      "default": [{"code": "X0001"}]
    },
    "bill_esketamine_drug_commercial": false,
    "iv_drug_code": "J3490",
    "bill_iv_drug": true,
    "utc_offset_minutes": 0
  })J").as_object();
}

Insurance plugin(json::object s = settings_json()) { return Insurance(Settings(std::move(s))); }

std::string creation_error(json::object s) {
  try {
    Insurance p{Settings(std::move(s))};
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

StepRequest request(const std::string& step, json::object step_settings, json::object case_data = {}) {
  StepRequest r;
  r.case_id = "c_0002";
  r.step = step;
  r.step_settings = std::move(step_settings);
  r.case_data = std::move(case_data);
  r.now = "2026-03-02T15:00:00Z";
  return r;
}

StepRequest task(const std::string& step, json::object step_settings, json::object submitted, json::object case_data = {}) {
  StepRequest r = request(step, std::move(step_settings), std::move(case_data));
  r.submitted = std::move(submitted);
  return r;
}

json::object approved(std::int64_t units = 6) {
  return {{"status", "approved"}, {"authorization_number", "PA-123"}, {"authorized_units", units},
          {"start_date", "2026-03-01"}, {"expiry_date", "2026-06-30"}};
}

// ---- charge_session helpers
json::object medicare() { return {{"payer", "Medicare"}, {"member_id", "1EG4-TE5-MK73"}, {"payer_type", "medicare"}, {"covered", "yes"}}; }
json::object commercial(const char* payer) { return {{"payer", payer}, {"member_id", "M1"}, {"payer_type", "commercial"}, {"covered", "yes"}}; }

json::object esketamine_settings() {
  return {{"action", "charge_session"}, {"route", "esketamine"}, {"coverage_from", "coverage"}, {"dose_from", "dosing.dose_mg"}};
}
json::object iv_settings() {
  return {{"action", "charge_session"}, {"route", "iv_ketamine"}, {"coverage_from", "coverage"}, {"minutes_from", "infusion.infusion_minutes"}};
}

StepResult esketamine(double dose, json::object coverage = medicare(), Insurance p = plugin(), json::object settings = esketamine_settings()) {
  return p.run(request("session_charge", std::move(settings), {{"coverage", std::move(coverage)}, {"dosing", {{"dose_mg", dose}}}}));
}

StepResult iv(double minutes, Insurance p = plugin()) {
  return p.run(request("session_charge", iv_settings(), {{"coverage", medicare()}, {"infusion", {{"infusion_minutes", minutes}}}}));
}

// "code xunits [mods] amount" for each charge, for compact exact comparisons.
std::vector<std::string> lines(const StepResult& r) {
  std::vector<std::string> out;
  for (const Charge& c : r.charges) {
    std::string mods;
    for (const auto& m : c.modifiers) mods += "-" + m;
    out.push_back(c.code + mods + " x" + std::to_string(c.units) + " " + std::to_string(c.amount_cents));
  }
  return out;
}

using Lines = std::vector<std::string>;

}  // namespace

// ---------------------------------------------------------------------------------- manifest, settings

TEST_CASE("manifest names the plugin; the fee schedule is required") {
  clinicflow::Manifest m = Insurance::manifest();
  CHECK(m.name == "insurance");
  CHECK(m.kind == "billing");
  std::vector<std::string> names, required;
  for (const auto& s : m.settings) {
    names.push_back(s.name);
    if (s.default_value.is_null()) required.push_back(s.name);
    CHECK_FALSE(s.description.empty());
  }
  CHECK(required == std::vector<std::string>{"fee_schedule"});
  CHECK(names == std::vector<std::string>{"fee_schedule", "commercial_codes", "bill_esketamine_drug_commercial", "iv_drug_code",
                                          "bill_iv_drug", "utc_offset_minutes"});
}

TEST_CASE("bad settings fail creation with a message naming the setting") {
  auto with = [](const char* key, json::value v) {
    auto s = settings_json();
    s[key] = std::move(v);
    return s;
  };
  auto s = settings_json();
  s.erase("fee_schedule");
  CHECK(contains(creation_error(s), "'fee_schedule' is required"));
  CHECK(contains(creation_error(with("fee_schedule", json::object{})), "at least one code"));
  CHECK(contains(creation_error(with("fee_schedule", json::parse(R"J({"G2082": -1})J"))), "must be whole cents"));
  CHECK(contains(creation_error(with("fee_schedule", json::parse(R"J({"G2082": 10.5})J"))), "must be whole cents"));
  CHECK(contains(creation_error(with("fee_schedule", json::parse(R"J({"g2082": 100})J"))), "not a CPT/HCPCS code"));
  CHECK(contains(creation_error(with("fee_schedule", json::parse(R"J({"J0222": 100})J"))), "J0222 is not the esketamine code"));
  CHECK(contains(creation_error(with("commercial_codes", json::parse(R"J({"default": [{"code": "99999"}]})J"))),
                 "99999 has no amount in 'fee_schedule'"));
  CHECK(contains(creation_error(with("commercial_codes", json::parse(R"J({"default": [{"code": "J0013"}]})J"))), "bill_esketamine_drug_commercial"));
  CHECK(contains(creation_error(with("commercial_codes", json::parse(R"J({"default": [{"code": "X0001", "modifiers": ["KXX"]}]})J"))), "modifier"));
  CHECK(contains(creation_error(with("commercial_codes", json::parse(R"J({"default": []})J"))), "must be a list"));
  CHECK(contains(creation_error(with("commercial_codes", json::parse(R"J({"A": [{"code": "X0001"}], "a": [{"code": "X0001"}]})J"))), "listed twice"));
  CHECK(contains(creation_error(with("iv_drug_code", "ketamine")), "setting 'iv_drug_code'"));
  CHECK(contains(creation_error(with("utc_offset_minutes", -800)), "'utc_offset_minutes' must lie between"));
  CHECK(creation_error(settings_json()).empty());
  CHECK(creation_error(json::object{{"fee_schedule", {{"+96366", 6000}}}}).empty());
}

TEST_CASE("fields per action") {
  Insurance p = plugin();
  auto coverage = p.fields({{"action", "coverage"}});
  REQUIRE(coverage.size() == 4);
  CHECK(coverage[0].at("name") == "payer");
  CHECK(coverage[1].at("name") == "member_id");
  CHECK(coverage[2].at("name") == "payer_type");
  CHECK(coverage[2].at("values") == json::array{"medicare", "commercial"});
  CHECK(coverage[3].at("name") == "covered");
  CHECK(coverage[3].at("values") == json::array{"yes", "no", "pending"});
  for (const auto& f : coverage) CHECK(f.at("required") == true);

  auto pa = p.fields({{"action", "prior_authorization"}});
  std::vector<std::string> names;
  for (const auto& f : pa) names.emplace_back(f.at("name").as_string());
  CHECK(names == std::vector<std::string>{"status", "authorization_number", "authorized_units", "start_date", "expiry_date", "denial_reason", "notes"});
  CHECK(pa[0].at("values") == json::array{"requested", "approved", "denied", "appealed"});
  CHECK(pa[2].at("min") == 1);
  CHECK(pa[3].at("type") == "date");
  CHECK(pa[4].at("type") == "date");

  CHECK(p.fields({{"action", "authorization_check"}}).empty());
  CHECK(p.fields({{"action", "charge_session"}}).empty());
  CHECK_THROWS_WITH(p.fields({{"action", "claim"}}), Catch::Contains("unknown action 'claim'"));
}

TEST_CASE("actions are used as the right kind of step") {
  Insurance p = plugin();
  CHECK(p.run(request("coverage", {{"action", "coverage"}})).status == StepResult::Status::failed);
  CHECK(p.review(task("x", {{"action", "charge_session"}}, {})).status == StepResult::Status::failed);
  CHECK(p.run(request("x", {{"action", "claim"}})).status == StepResult::Status::failed);
  CHECK(p.run(request("x", {})).status == StepResult::Status::failed);
}

// ---------------------------------------------------------------------------------- coverage

TEST_CASE("coverage is recorded with the date it was checked") {
  Insurance p = plugin();
  StepResult r = p.review(task("coverage", {{"action", "coverage"}}, medicare()));
  REQUIRE(r.status == StepResult::Status::ok);
  CHECK(r.data == json::object{{"checked_on", "2026-03-02"}});
  json::object pending = commercial("Acme Health");
  pending["covered"] = "pending";
  CHECK(p.review(task("coverage", {{"action", "coverage"}}, pending)).status == StepResult::Status::ok);

  json::object blank = medicare();
  blank["member_id"] = "  ";
  StepResult refused = p.review(task("coverage", {{"action", "coverage"}}, blank));
  CHECK(refused.status == StepResult::Status::refused);
  CHECK(refused.reason == "enter the member id from the insurance card");
  blank = medicare();
  blank["payer_type"] = "medicaid";
  CHECK(p.review(task("coverage", {{"action", "coverage"}}, blank)).status == StepResult::Status::refused);
}

// ---------------------------------------------------------------------------------- prior authorization

TEST_CASE("prior authorization: requested and approved") {
  Insurance p = plugin();
  json::object settings{{"action", "prior_authorization"}};
  CHECK(p.review(task("prior_auth", settings, {{"status", "requested"}})).status == StepResult::Status::ok);
  StepResult ok = p.review(task("prior_auth", settings, approved()));
  REQUIRE(ok.status == StepResult::Status::ok);
  CHECK(ok.data == json::object{{"recorded_on", "2026-03-02"}, {"valid_days", 122}});
}

TEST_CASE("prior authorization: an approval needs number, units > 0 and expiry after start") {
  Insurance p = plugin();
  json::object settings{{"action", "prior_authorization"}};
  auto refused = [&](json::object submitted) { return p.review(task("prior_auth", settings, std::move(submitted))); };

  json::object a = approved();
  a.erase("authorization_number");
  CHECK(refused(a).reason == "an approval needs the payer's authorization number");
  a = approved(0);
  CHECK(refused(a).reason == "an approval needs the number of authorized units, 1 or more");
  CHECK(p.review(task("prior_auth", settings, approved(1))).status == StepResult::Status::ok);
  a = approved();
  a.erase("expiry_date");
  CHECK(contains(refused(a).reason, "valid from (start_date) and until (expiry_date)"));

  a = approved();
  a["expiry_date"] = "2026-03-01";  // same day as the start
  StepResult same = refused(a);
  CHECK(same.status == StepResult::Status::refused);
  CHECK(same.reason == "the expiry date (2026-03-01) must be after the start date (2026-03-01)");
  a["expiry_date"] = "2026-02-27";
  CHECK(refused(a).status == StepResult::Status::refused);
  a["expiry_date"] = "2026-03-02";  // one day after
  StepResult next_day = refused(a);
  CHECK(next_day.status == StepResult::Status::ok);
  CHECK(next_day.data.at("valid_days") == 2);
}

TEST_CASE("prior authorization: a denial needs a reason") {
  Insurance p = plugin();
  json::object settings{{"action", "prior_authorization"}};
  StepResult r = p.review(task("prior_auth", settings, {{"status", "denied"}}));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(r.reason == "a denial needs the payer's reason (denial_reason)");
  CHECK(p.review(task("prior_auth", settings, {{"status", "denied"}, {"denial_reason", " "}})).status == StepResult::Status::refused);
  CHECK(p.review(task("prior_auth", settings, {{"status", "denied"}, {"denial_reason", "Fewer than 2 failed trials documented"}})).status ==
        StepResult::Status::ok);
  CHECK(p.review(task("prior_auth", settings, {{"status", "pending"}})).status == StepResult::Status::refused);
}

TEST_CASE("prior authorization: an appeal only after a denial recorded earlier") {
  Insurance p = plugin();
  json::object settings{{"action", "prior_authorization"}, {"previous_from", "pa_decision.status"}};

  StepResult none = p.review(task("pa_appeal", settings, {{"status", "appealed"}}));
  CHECK(none.status == StepResult::Status::refused);
  CHECK(none.reason == "an appeal needs a denial recorded earlier, and none is recorded (checked pa_decision.status, pa_appeal.status)");

  StepResult after_approval = p.review(task("pa_appeal", settings, {{"status", "appealed"}}, {{"pa_decision", approved()}}));
  CHECK(after_approval.status == StepResult::Status::refused);

  json::object denial{{"status", "denied"}, {"denial_reason", "not medically necessary"}};
  CHECK(p.review(task("pa_appeal", settings, {{"status", "appealed"}}, {{"pa_decision", denial}})).status == StepResult::Status::ok);

  // A repeated prior-authorization step: its own previous completion was the denial.
  json::object own{{"action", "prior_authorization"}};
  CHECK(p.review(task("prior_auth", own, {{"status", "appealed"}}, {{"prior_auth", denial}})).status == StepResult::Status::ok);
  CHECK(p.review(task("prior_auth", own, {{"status", "appealed"}})).status == StepResult::Status::refused);

  json::object bad{{"action", "prior_authorization"}, {"previous_from", "pa_decision"}};
  CHECK(p.review(task("pa_appeal", bad, {{"status", "appealed"}})).status == StepResult::Status::failed);
}

// ---------------------------------------------------------------------------------- authorization check

namespace {
StepResult check(int repetition, const std::string& now = "2026-03-02T15:00:00Z", json::object extra = {}, json::object pa = approved(),
                 Insurance p = plugin()) {
  json::object settings{{"action", "authorization_check"}, {"authorization_from", "prior_auth"}};
  for (const auto& kv : extra) settings[kv.key()] = kv.value();
  StepRequest r = request("auth_check", settings, {{"prior_auth", std::move(pa)}});
  r.repetition = repetition;
  r.now = now;
  return p.run(r);
}
}  // namespace

TEST_CASE("authorization check: sessions within the authorized units pass, the next is flagged") {
  StepResult first = check(1);
  REQUIRE(first.status == StepResult::Status::ok);
  CHECK(first.data == json::object{{"authorization_number", "PA-123"},
                                   {"session_number", 1},
                                   {"units_used", 1},
                                   {"units_remaining", 5},
                                   {"expiry_date", "2026-06-30"},
                                   {"days_to_expiry", 120},
                                   {"last_authorized_session", false}});
  StepResult sixth = check(6);
  REQUIRE(sixth.status == StepResult::Status::ok);
  CHECK(sixth.data.at("units_remaining") == 0);
  CHECK(sixth.data.at("last_authorized_session") == true);

  StepResult seventh = check(7);
  CHECK(seventh.status == StepResult::Status::refused);
  CHECK(seventh.reason ==
        "session 7 would bring the units used to 7, but authorization PA-123 covers 6: a re-authorization is needed before this session");
}

TEST_CASE("authorization check: units used before and units per session") {
  CHECK(check(4, "2026-03-02T15:00:00Z", {{"units_used_before", 2}}).status == StepResult::Status::ok);
  CHECK(check(5, "2026-03-02T15:00:00Z", {{"units_used_before", 2}}).status == StepResult::Status::refused);
  CHECK(check(3, "2026-03-02T15:00:00Z", {{"units_per_session", 2}}).status == StepResult::Status::ok);
  CHECK(check(4, "2026-03-02T15:00:00Z", {{"units_per_session", 2}}).status == StepResult::Status::refused);
  CHECK(check(1, "2026-03-02T15:00:00Z", {{"units_per_session", 0}}).status == StepResult::Status::failed);
}

TEST_CASE("authorization check: outside a repeated stage the step counts its own sessions") {
  Insurance p = plugin();
  json::object settings{{"action", "authorization_check"}, {"authorization_from", "prior_auth"}};
  json::object case_data{{"prior_auth", approved(2)}};
  StepResult one = p.run(request("auth_check", settings, case_data));
  REQUIRE(one.status == StepResult::Status::ok);
  CHECK(one.data.at("session_number") == 1);
  case_data["auth_check"] = one.data;
  StepResult two = p.run(request("auth_check", settings, case_data));
  CHECK(two.data.at("session_number") == 2);
  case_data["auth_check"] = two.data;
  CHECK(p.run(request("auth_check", settings, case_data)).status == StepResult::Status::refused);
}

TEST_CASE("authorization check: the expiry day is the last covered day") {
  CHECK(check(1, "2026-06-30T23:59:59Z").status == StepResult::Status::ok);
  CHECK(check(1, "2026-06-30T23:59:59Z").data.at("days_to_expiry") == 0);
  StepResult expired = check(1, "2026-07-01T00:00:00Z");
  CHECK(expired.status == StepResult::Status::refused);
  CHECK(expired.reason == "authorization PA-123 expired on 2026-06-30; today is 2026-07-01: a re-authorization is needed before this session");

  // 03:00Z on 1 July is still 30 June in a clinic at UTC-5.
  auto s = settings_json();
  s["utc_offset_minutes"] = -300;
  CHECK(check(1, "2026-07-01T03:00:00Z", {}, approved(), plugin(s)).status == StepResult::Status::ok);
  CHECK(check(1, "2026-07-01T05:00:00Z", {}, approved(), plugin(s)).status == StepResult::Status::refused);
  CHECK(check(1, "2026-06-30T22:00:00-05:00").status == StepResult::Status::refused);  // 03:00Z on 1 July, clinic at UTC
}

TEST_CASE("authorization check: not yet valid, not approved, or not recorded") {
  StepResult early = check(1, "2026-02-28T12:00:00Z");
  CHECK(early.status == StepResult::Status::refused);
  CHECK(early.reason == "authorization PA-123 is valid from 2026-03-01; today is 2026-02-28");
  CHECK(check(1, "2026-03-01T00:00:00Z").status == StepResult::Status::ok);

  StepResult denied = check(1, "2026-03-02T15:00:00Z", {}, {{"status", "denied"}, {"denial_reason", "x"}});
  CHECK(denied.status == StepResult::Status::refused);
  CHECK(denied.reason == "the prior authorization is 'denied', not approved: the session needs an approved authorization");
  CHECK(check(1, "2026-03-02T15:00:00Z", {}, {{"status", "requested"}}).status == StepResult::Status::refused);

  Insurance p = plugin();
  StepResult none = p.run(request("auth_check", {{"action", "authorization_check"}, {"authorization_from", "prior_auth"}}));
  CHECK(none.status == StepResult::Status::refused);
  CHECK(none.reason == "no prior authorization is recorded ('prior_auth'): the session needs an approved authorization");
  CHECK(p.run(request("auth_check", {{"action", "authorization_check"}})).status == StepResult::Status::failed);
}

TEST_CASE("authorization check: of several prior-authorization steps, the last one with data counts") {
  Insurance p = plugin();
  json::object settings{{"action", "authorization_check"}, {"authorization_from", json::array{"pa_decision", "pa_appeal_decision"}}};
  json::object denied{{"status", "denied"}, {"denial_reason", "x"}};
  CHECK(p.run(request("auth_check", settings, {{"pa_decision", denied}})).status == StepResult::Status::refused);
  CHECK(p.run(request("auth_check", settings, {{"pa_decision", denied}, {"pa_appeal_decision", approved()}})).status == StepResult::Status::ok);
}

// ---------------------------------------------------------------------------------- charge_session: esketamine

TEST_CASE("Medicare esketamine: G2082 up to 56 mg, G2083 above, with KX and no J-code") {
  CHECK(lines(esketamine(56)) == Lines{"G2082-KX x1 81000"});
  CHECK(lines(esketamine(28)) == Lines{"G2082-KX x1 81000"});
  CHECK(lines(esketamine(56.5)) == Lines{"G2083-KX x1 112000"});
  CHECK(lines(esketamine(84)) == Lines{"G2083-KX x1 112000"});

  // Even when the clinic bills the drug to commercial payers, Medicare G-codes never carry J0013.
  auto s = settings_json();
  s["bill_esketamine_drug_commercial"] = true;
  StepResult r = esketamine(84, medicare(), plugin(s));
  REQUIRE(r.status == StepResult::Status::ok);
  CHECK(lines(r) == Lines{"G2083-KX x1 112000"});
  CHECK(r.data.at("codes") == json::array{"G2083"});
  CHECK(r.data.at("total_cents") == 112000);
  CHECK(r.data.at("dose_mg") == 84.0);
  CHECK(r.charges.at(0).description ==
        "Esketamine nasal self-administration, more than 56 mg, supervised, incl. 2 h observation (established patient)");
}

TEST_CASE("Medicare esketamine: REMS enrollment and established patient, when the workflow records them") {
  json::object settings = esketamine_settings();
  settings["rems_enrolled_from"] = "consent.rems_enrolled";
  settings["established_patient_from"] = "consult.established";
  Insurance p = plugin();
  auto run = [&](bool rems, bool established) {
    return p.run(request("session_charge", settings,
                         {{"coverage", medicare()},
                          {"dosing", {{"dose_mg", 56}}},
                          {"consent", {{"rems_enrolled", rems}}},
                          {"consult", {{"established", established}}}}));
  };
  CHECK(lines(run(true, true)) == Lines{"G2082-KX x1 81000"});
  StepResult no_rems = run(false, true);
  CHECK(no_rems.status == StepResult::Status::refused);
  CHECK(contains(no_rems.reason, "KX, which attests REMS enrollment"));
  StepResult new_patient = run(true, false);
  CHECK(new_patient.status == StepResult::Status::refused);
  CHECK(contains(new_patient.reason, "established patients only"));
}

TEST_CASE("commercial esketamine: the payer's codes, or the default") {
  StepResult acme = esketamine(56, commercial("ACME health"));
  REQUIRE(acme.status == StepResult::Status::ok);
  CHECK(lines(acme) == Lines{"X0001-25 x1 15000", "X0002 x2 18000"});
  CHECK(acme.charges.at(0).description == "E/M visit (Acme)");
  CHECK(acme.data.at("total_cents") == 33000);

  StepResult other = esketamine(84, commercial("Other Plan"));
  CHECK(lines(other) == Lines{"X0001 x1 15000"});

  auto s = settings_json();
  s["commercial_codes"] = json::parse(R"J({"Acme Health": [{"code": "X0001"}]})J");
  StepResult none = esketamine(56, commercial("Other Plan"), plugin(s));
  CHECK(none.status == StepResult::Status::refused);
  CHECK(contains(none.reason, "commercial_codes has no codes for payer 'Other Plan'"));
}

TEST_CASE("commercial esketamine drug: J0013 per mg from 2026-01-01, S0013 before") {
  auto s = settings_json();
  s["bill_esketamine_drug_commercial"] = true;
  StepResult r = esketamine(84, commercial("Other Plan"), plugin(s));
  CHECK(lines(r) == Lines{"X0001 x1 15000", "J0013 x84 210000"});
  CHECK(r.data.at("total_cents") == 225000);

  Insurance p = plugin(s);
  StepRequest late2025 = request("session_charge", esketamine_settings(), {{"coverage", commercial("Other Plan")}, {"dosing", {{"dose_mg", 56}}}});
  late2025.now = "2025-12-31T18:00:00Z";
  CHECK(lines(p.run(late2025)) == Lines{"X0001 x1 15000", "S0013 x56 134400"});
  late2025.now = "2026-01-01T00:00:00Z";
  CHECK(lines(p.run(late2025)) == Lines{"X0001 x1 15000", "J0013 x56 140000"});

  StepResult fraction = esketamine(56.5, commercial("Other Plan"), plugin(s));
  CHECK(fraction.status == StepResult::Status::refused);
  CHECK(fraction.reason == "the esketamine drug is billed per 1 mg, but the dose is 56.5 mg");
}

// ---------------------------------------------------------------------------------- charge_session: IV ketamine

TEST_CASE("IV ketamine: 15 minutes is a push (96374), 16 minutes an infusion (96365)") {
  CHECK(lines(iv(15)) == Lines{"96374 x1 9000", "J3490 x1 1500"});
  CHECK(lines(iv(15.5)) == Lines{"96374 x1 9000", "J3490 x1 1500"});
  CHECK(lines(iv(16)) == Lines{"96365 x1 20000", "J3490 x1 1500"});
}

TEST_CASE("IV ketamine: +96366 only when more than 30 minutes of an additional hour are used") {
  CHECK(lines(iv(40)) == Lines{"96365 x1 20000", "J3490 x1 1500"});
  CHECK(lines(iv(60)) == Lines{"96365 x1 20000", "J3490 x1 1500"});
  CHECK(lines(iv(90)) == Lines{"96365 x1 20000", "J3490 x1 1500"});
  CHECK(lines(iv(91)) == Lines{"96365 x1 20000", "96366 x1 6000", "J3490 x1 1500"});
  CHECK(lines(iv(95)) == Lines{"96365 x1 20000", "96366 x1 6000", "J3490 x1 1500"});
  CHECK(lines(iv(150)) == Lines{"96365 x1 20000", "96366 x1 6000", "J3490 x1 1500"});
  CHECK(lines(iv(151)) == Lines{"96365 x1 20000", "96366 x2 12000", "J3490 x1 1500"});

  StepResult r = iv(95);
  CHECK(r.data.at("total_cents") == 27500);
  CHECK(r.data.at("codes") == json::array{"96365", "96366", "J3490"});
  for (const auto& c : r.charges) CHECK(c.modifiers.empty());
}

TEST_CASE("IV ketamine: the drug line follows the settings; a missing fee is refused") {
  auto s = settings_json();
  s["bill_iv_drug"] = false;
  CHECK(lines(iv(40, plugin(s))) == Lines{"96365 x1 20000"});

  StepResult r = iv(10, plugin(json::object{{"fee_schedule", {{"96365", 20000}, {"J3490", 1500}}}}));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(r.reason == "fee_schedule has no amount for 96374: add it to [plugins.insurance.fee_schedule]");
  CHECK(r.charges.empty());
}

// ---------------------------------------------------------------------------------- charge_session: inputs

TEST_CASE("charge_session: coverage, route and dose must be recorded") {
  Insurance p = plugin();
  StepResult no_coverage = p.run(request("session_charge", esketamine_settings(), {{"dosing", {{"dose_mg", 56}}}}));
  CHECK(no_coverage.status == StepResult::Status::refused);
  CHECK(no_coverage.reason == "no coverage is recorded yet (step 'coverage')");

  json::object not_covered = medicare();
  not_covered["covered"] = "no";
  StepResult nc = esketamine(56, not_covered);
  CHECK(nc.status == StepResult::Status::refused);
  CHECK(nc.reason == "the coverage is recorded as not covered by Medicare: the session cannot be billed to insurance");
  json::object pending = medicare();
  pending["covered"] = "pending";
  CHECK(esketamine(56, pending).status == StepResult::Status::ok);

  CHECK(esketamine(0).status == StepResult::Status::refused);
  StepResult no_dose = p.run(request("session_charge", esketamine_settings(), {{"coverage", medicare()}}));
  CHECK(no_dose.status == StepResult::Status::refused);
  CHECK(no_dose.reason == "no esketamine dose is recorded (dosing.dose_mg)");

  json::object by_route = esketamine_settings();
  by_route.erase("route");
  by_route["route_from"] = "session_plan.route";
  json::object case_data{{"coverage", medicare()}, {"dosing", {{"dose_mg", 84}}}, {"session_plan", {{"route", "esketamine"}}}};
  CHECK(lines(p.run(request("session_charge", by_route, case_data))) == Lines{"G2083-KX x1 112000"});
  case_data["session_plan"] = json::object{{"route", "oral"}};
  CHECK(p.run(request("session_charge", by_route, case_data)).status == StepResult::Status::refused);

  json::object bad_route = esketamine_settings();
  bad_route["route"] = "oral";
  CHECK(p.run(request("session_charge", bad_route, case_data)).status == StepResult::Status::failed);
  json::object no_dose_setting = esketamine_settings();
  no_dose_setting.erase("dose_from");
  StepResult setup = p.run(request("session_charge", no_dose_setting, case_data));
  CHECK(setup.status == StepResult::Status::failed);
  CHECK(contains(setup.reason, "'dose_from'"));
}

TEST_CASE("charge_session: carries the approved authorization number") {
  json::object settings = esketamine_settings();
  settings["authorization_from"] = "prior_auth";
  StepResult r = plugin().run(
      request("session_charge", settings, {{"coverage", medicare()}, {"dosing", {{"dose_mg", 56}}}, {"prior_auth", approved()}}));
  REQUIRE(r.status == StepResult::Status::ok);
  CHECK(r.data == json::object{{"route", "esketamine"},
                               {"payer", "Medicare"},
                               {"payer_type", "medicare"},
                               {"service_date", "2026-03-02"},
                               {"dose_mg", 56.0},
                               {"authorization_number", "PA-123"},
                               {"codes", json::array{"G2082"}},
                               {"total_cents", 81000}});
}

// ---------------------------------------------------------------------------------- C ABI

TEST_CASE("through the C ABI: manifest, a creation error, a run round trip") {
  CHECK(clinicflow_plugin_abi() == CLINICFLOW_ABI_VERSION);
  json::object manifest = json::parse(clinicflow_plugin_manifest()).as_object();
  CHECK(manifest.at("name") == "insurance");
  CHECK(manifest.at("kind") == "billing");
  CHECK(manifest.at("version") == "1.0.0");
  const json::object& fee = manifest.at("settings").as_array().at(0).as_object();
  CHECK(fee.at("name") == "fee_schedule");
  CHECK(fee.at("type") == "table");
  CHECK(fee.at("default").is_null());

  char* error = nullptr;
  CHECK(clinicflow_plugin_create(R"J({"fee_schedule": {"G2082": "lots"}})J", &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error) == "setting 'fee_schedule': the amount for G2082 must be whole cents, 0 or more");
  clinicflow_plugin_free(error);

  error = nullptr;
  void* instance = clinicflow_plugin_create(json::serialize(settings_json()).c_str(), &error);
  REQUIRE(instance != nullptr);
  CHECK(error == nullptr);

  char* response = nullptr;
  const char* run = R"J({"case_id": "c_9", "step": "session_charge",
      "step_settings": {"action": "charge_session", "route": "esketamine", "coverage_from": "coverage", "dose_from": "dosing.dose_mg"},
      "case_data": {"coverage": {"payer": "Medicare", "member_id": "1", "payer_type": "medicare", "covered": "yes"},
                    "dosing": {"dose_mg": 84}},
      "repetition": 2, "now": "2026-03-02T15:00:00Z"})J";
  REQUIRE(clinicflow_plugin_call(instance, "run", run, &response) == 0);
  json::object answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "ok");
  CHECK(answer.at("reason") == "");
  CHECK(answer.at("charges") == json::parse(R"J([{"code": "G2083",
      "description": "Esketamine nasal self-administration, more than 56 mg, supervised, incl. 2 h observation (established patient)",
      "amount_cents": 112000, "units": 1, "modifiers": ["KX"]}])J"));

  const char* check = R"J({"case_id": "c_9", "step": "auth_check",
      "step_settings": {"action": "authorization_check", "authorization_from": "prior_auth"},
      "case_data": {"prior_auth": {"status": "approved", "authorization_number": "PA-9", "authorized_units": 1,
                                   "start_date": "2026-03-01", "expiry_date": "2026-06-30"}},
      "repetition": 2, "now": "2026-03-02T15:00:00Z"})J";
  REQUIRE(clinicflow_plugin_call(instance, "run", check, &response) == 0);
  answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "refused");
  CHECK(answer.at("reason") == "session 2 would bring the units used to 2, but authorization PA-9 covers 1: a re-authorization is needed before this session");

  const char* review = R"J({"case_id": "c_9", "step": "coverage", "step_settings": {"action": "coverage"}, "case_data": {},
      "submitted": {"payer": "Medicare", "member_id": "1", "payer_type": "medicare", "covered": "yes"}, "now": "2026-03-02T15:00:00Z"})J";
  REQUIRE(clinicflow_plugin_call(instance, "review", review, &response) == 0);
  CHECK(json::parse(response).as_object().at("data") == json::object{{"checked_on", "2026-03-02"}});
  clinicflow_plugin_free(response);

  CHECK(clinicflow_plugin_call(instance, "deliver", "{}", &response) != 0);
  CHECK(contains(response, "unknown method 'deliver'"));
  clinicflow_plugin_free(response);
  clinicflow_plugin_destroy(instance);
}
