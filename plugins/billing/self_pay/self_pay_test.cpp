// Tests of the self_pay billing plugin: the class directly, and once through the C ABI.
// Fee amounts here are test values (the plugin has no built-in prices); codes are from the
// domain brief §5.
#include "self_pay.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

namespace json = boost::json;
using clinicflow::Settings;
using clinicflow::StepRequest;
using clinicflow::StepResult;
using clinicflow_billing::SelfPay;

json::object settings_json() {
  return json::parse(R"J({
    "session_fee_cents": 50000,
    "consultation_fee_cents": 35000,
    "packages": [{"name": "induction_6", "sessions": 6, "price_cents": 250000},
                 {"name": "pair", "sessions": 2, "price_cents": 90000}],
    "payment_plan_max_installments": 3,
    "when_package_used_up": "refuse",
    "provider_name": "Example Clinic PC",
    "provider_npi": "1234567890",
    "tax_id": "12-3456789",
    "address": "1 Example Street, Springfield",
    "procedure_codes": {
      "consultation": [{"code": "X0001", "description": "Consultation (clinic's E/M code)"}],
      "session": [{"code": "96365", "description": "IV infusion, initial hour"},
                  {"code": "J3490", "description": "Unclassified drug (ketamine)"}]
    },
    "utc_offset_minutes": 0
  })J").as_object();
}

SelfPay plugin(json::object s = settings_json()) { return SelfPay(Settings(std::move(s))); }

std::string creation_error(json::object s) {
  try {
    SelfPay p{Settings(std::move(s))};
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

StepRequest request(const std::string& step, json::object step_settings, json::object case_data = {}) {
  StepRequest r;
  r.case_id = "c_0001";
  r.step = step;
  r.step_settings = std::move(step_settings);
  r.case_data = std::move(case_data);
  r.now = "2026-03-02T15:00:00Z";
  return r;
}

StepRequest payment(json::object submitted) {
  StepRequest r = request("payment_choice", {{"action", "choose_payment"}});
  r.submitted = std::move(submitted);
  return r;
}

std::string reason(const StepResult& r) { return r.reason; }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

// ---------------------------------------------------------------------------------- manifest, settings

TEST_CASE("manifest names the plugin and marks required settings with a null default") {
  clinicflow::Manifest m = SelfPay::manifest();
  CHECK(m.name == "self_pay");
  CHECK(m.kind == "billing");
  std::vector<std::string> names, required;
  for (const auto& s : m.settings) {
    names.push_back(s.name);
    if (s.default_value.is_null()) required.push_back(s.name);
    CHECK_FALSE(s.description.empty());
  }
  CHECK(required == std::vector<std::string>{"session_fee_cents", "consultation_fee_cents"});
  CHECK(names == std::vector<std::string>{"session_fee_cents", "consultation_fee_cents", "packages", "payment_plan_max_installments",
                                          "when_package_used_up", "provider_name", "provider_npi", "tax_id", "address",
                                          "procedure_codes", "utc_offset_minutes"});
}

TEST_CASE("only the two fees are needed; the rest has defaults") {
  SelfPay p{Settings(json::object{{"session_fee_cents", 50000}, {"consultation_fee_cents", 0}})};
  StepResult r = p.run(request("consult", {{"action", "consultation"}}));
  REQUIRE(r.status == StepResult::Status::ok);
  CHECK(r.charges.at(0).amount_cents == 0);
}

TEST_CASE("bad settings fail creation with a message naming the setting") {
  auto without = [](const char* key) {
    auto s = settings_json();
    s.erase(key);
    return s;
  };
  auto with = [](const char* key, json::value v) {
    auto s = settings_json();
    s[key] = std::move(v);
    return s;
  };
  CHECK(contains(creation_error(without("session_fee_cents")), "'session_fee_cents' is required"));
  CHECK(contains(creation_error(without("consultation_fee_cents")), "'consultation_fee_cents' is required"));
  CHECK(contains(creation_error(with("session_fee_cents", -1)), "'session_fee_cents' must be whole cents, 0 or more"));
  CHECK(contains(creation_error(with("session_fee_cents", 450.5)), "'session_fee_cents' must be a whole number"));
  CHECK(contains(creation_error(with("packages", json::parse(R"J([{"name": "six", "sessions": 0, "price_cents": 1}])J"))), "needs 'sessions'"));
  CHECK(contains(creation_error(with("packages", json::parse(R"J([{"name": "six", "sessions": 6, "price_cents": -5}])J"))), "needs 'price_cents'"));
  CHECK(contains(creation_error(with("packages", json::parse(R"J([{"name": "six", "sessions": 6, "price": 5}])J"))), "unknown key 'price'"));
  CHECK(contains(creation_error(with("packages", json::parse(R"J([{"name": "Six Pack", "sessions": 6, "price_cents": 5}])J"))), "lower-case letters"));
  CHECK(contains(creation_error(with("packages", json::parse(R"J([{"name": "per_session", "sessions": 6, "price_cents": 5}])J"))), "reserved"));
  CHECK(contains(creation_error(with("packages", json::parse(R"J([{"name": "a", "sessions": 1, "price_cents": 5}, {"name": "a", "sessions": 2, "price_cents": 5}])J"))),
                 "used twice"));
  CHECK(contains(creation_error(with("payment_plan_max_installments", 0)), "'payment_plan_max_installments' must be 1 or more"));
  CHECK(contains(creation_error(with("when_package_used_up", "bill")), "'when_package_used_up' must be"));
  CHECK(contains(creation_error(with("provider_npi", "12345")), "10-digit NPI"));
  CHECK(contains(creation_error(with("utc_offset_minutes", 900)), "'utc_offset_minutes' must lie between"));
  CHECK(contains(creation_error(with("procedure_codes", json::parse(R"J({"infusion": []})J"))), "unknown service 'infusion'"));
  CHECK(contains(creation_error(with("procedure_codes", json::parse(R"J({"session": [{"code": "9636"}]})J"))), "not a CPT/HCPCS code"));
  CHECK(contains(creation_error(with("procedure_codes", json::parse(R"J({"session": [{"code": "J0222"}]})J"))), "J0013"));
  CHECK(contains(creation_error(with("procedure_codes", json::parse(R"J({"session": [{"code": "96365", "units": 0}]})J"))), "'units'"));
  CHECK(creation_error(with("procedure_codes", json::parse(R"J({"session": [{"code": "+96366"}]})J"))).empty());
  CHECK(creation_error(settings_json()).empty());
}

// ---------------------------------------------------------------------------------- choose_payment

TEST_CASE("choose_payment adds its fields from the fee schedule") {
  SelfPay p = plugin();
  auto fields = p.fields({{"action", "choose_payment"}});
  REQUIRE(fields.size() == 4);
  CHECK(fields[0].at("name") == "pricing");
  CHECK(fields[0].at("type") == "enum");
  CHECK(fields[0].at("required") == true);
  CHECK(fields[0].at("values") == json::array{"per_session", "induction_6", "pair"});
  CHECK(json::value_to<std::string>(fields[0].at("help")) ==
        "Per session: $500.00 each. induction_6: 6 sessions for $2500.00. pair: 2 sessions for $900.00.");
  CHECK(fields[1].at("name") == "installments");
  CHECK(fields[1].at("min") == 1);
  CHECK(fields[1].at("max") == 3);
  CHECK(fields[2].at("name") == "hsa_fsa");
  CHECK(fields[2].at("type") == "boolean");
  CHECK(fields[3].at("name") == "letter_of_medical_necessity");

  CHECK(p.fields({{"action", "session"}}).empty());
  CHECK(p.fields({{"action", "consultation"}}).empty());
  CHECK(p.fields({{"action", "superbill"}}).empty());
  CHECK_THROWS_WITH(p.fields({{"action", "refund"}}), Catch::Contains("unknown action 'refund'"));
  CHECK_THROWS_WITH(p.fields({}), Catch::Contains("action = "));
}

TEST_CASE("choose_payment: per session") {
  StepResult r = plugin().review(payment({{"pricing", "per_session"}}));
  REQUIRE(r.status == StepResult::Status::ok);
  CHECK(r.data == json::object{{"installments", 1}, {"session_fee_cents", 50000}});
  CHECK(r.charges.empty());
}

TEST_CASE("choose_payment: a package split into installments, exact to the cent") {
  StepResult r = plugin().review(payment({{"pricing", "induction_6"}, {"installments", 3}}));
  REQUIRE(r.status == StepResult::Status::ok);
  // 250000 / 3 = 83333 r 1: the first installment takes the cent.
  CHECK(r.data == json::object{{"installments", 3},
                               {"package_sessions", 6},
                               {"package_price_cents", 250000},
                               {"installment_cents", 83333},
                               {"first_installment_cents", 83334}});
  StepResult full = plugin().review(payment({{"pricing", "pair"}}));
  CHECK(full.data.at("installment_cents") == 90000);
  CHECK(full.data.at("first_installment_cents") == 90000);
}

TEST_CASE("choose_payment: installments at and beyond the clinic's maximum") {
  CHECK(plugin().review(payment({{"pricing", "pair"}, {"installments", 3}})).status == StepResult::Status::ok);
  StepResult r = plugin().review(payment({{"pricing", "pair"}, {"installments", 4}}));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(reason(r) == "the clinic allows at most 3 installments (4 chosen)");
  CHECK(plugin().review(payment({{"pricing", "pair"}, {"installments", 0}})).status == StepResult::Status::refused);
}

TEST_CASE("choose_payment: a payment plan needs a package") {
  StepResult r = plugin().review(payment({{"pricing", "per_session"}, {"installments", 2}}));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(contains(reason(r), "payment plan is for packages only"));
}

TEST_CASE("choose_payment: an unknown option is refused") {
  StepResult r = plugin().review(payment({{"pricing", "induction_12"}}));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(reason(r) == "'induction_12' is not one of the clinic's payment options: per_session, induction_6, pair");
  CHECK(plugin().review(payment({})).status == StepResult::Status::refused);
}

TEST_CASE("choose_payment: HSA/FSA is noted as plan-dependent") {
  StepResult r = plugin().review(payment({{"pricing", "per_session"}, {"hsa_fsa", true}, {"letter_of_medical_necessity", true}}));
  REQUIRE(r.status == StepResult::Status::ok);
  CHECK(contains(json::value_to<std::string>(r.data.at("hsa_fsa_note")), "depends on the plan"));
  CHECK_FALSE(plugin().review(payment({{"pricing", "per_session"}, {"hsa_fsa", false}})).data.contains("hsa_fsa_note"));
}

TEST_CASE("actions are used as the right kind of step") {
  SelfPay p = plugin();
  StepResult as_task = p.review(payment({{"pricing", "per_session"}}));
  CHECK(as_task.status == StepResult::Status::ok);
  StepRequest auto_as_task = request("s", {{"action", "session"}});
  auto_as_task.submitted = json::object{};
  CHECK(p.review(auto_as_task).status == StepResult::Status::failed);
  CHECK(p.run(request("p", {{"action", "choose_payment"}})).status == StepResult::Status::failed);
  StepResult unknown = p.run(request("p", {{"action", "refund"}}));
  CHECK(unknown.status == StepResult::Status::failed);
  CHECK(contains(unknown.reason, "unknown action 'refund'"));
  CHECK(p.run(request("p", {})).status == StepResult::Status::failed);
}

// ---------------------------------------------------------------------------------- charges

TEST_CASE("consultation charges the consultation fee") {
  StepResult r = plugin().run(request("consult_charge", {{"action", "consultation"}}));
  REQUIRE(r.status == StepResult::Status::ok);
  REQUIRE(r.charges.size() == 1);
  CHECK(r.charges[0].code == "SELFPAY-CONSULT");
  CHECK(r.charges[0].amount_cents == 35000);
  CHECK(r.charges[0].units == 1);
  CHECK(r.charges[0].modifiers.empty());
  CHECK(r.data.at("amount_cents") == 35000);
  CHECK(r.data.at("service_date") == "2026-03-02");
  CHECK(r.data.at("charged") == json::parse(R"J([{"service": "consultation", "date": "2026-03-02", "amount_cents": 35000, "units": 1}])J"));
}

TEST_CASE("per-session charges add up session by session") {
  SelfPay p = plugin();
  json::object case_data;
  for (int n = 1; n <= 3; ++n) {
    StepRequest r = request("session_charge", {{"action", "session"}}, case_data);
    r.repetition = n;
    StepResult result = p.run(r);
    REQUIRE(result.status == StepResult::Status::ok);
    REQUIRE(result.charges.size() == 1);
    CHECK(result.charges[0].code == "SELFPAY-SESSION");
    CHECK(result.charges[0].amount_cents == 50000);
    CHECK(result.data.at("session_number") == n);
    CHECK(result.data.at("charged_to_date_cents") == 50000 * n);
    CHECK(result.data.at("pricing") == "per_session");
    case_data["session_charge"] = result.data;
  }
}

TEST_CASE("a package is charged with its first session, then drawn down, and refused when used up") {
  SelfPay p = plugin();
  json::object case_data{{"payment_choice", {{"pricing", "induction_6"}}}};
  json::object settings{{"action", "session"}, {"pricing_from", "payment_choice.pricing"}};
  for (int n = 1; n <= 6; ++n) {
    StepResult r = p.run(request("session_charge", settings, case_data));
    REQUIRE(r.status == StepResult::Status::ok);
    REQUIRE(r.charges.size() == 1);
    if (n == 1) {
      CHECK(r.charges[0].code == "SELFPAY-PACKAGE");
      CHECK(r.charges[0].amount_cents == 250000);
      CHECK(r.charges[0].description == "Package 'induction_6', 6 sessions (self-pay; session 1 of 6)");
    } else {
      CHECK(r.charges[0].code == "SELFPAY-SESSION");
      CHECK(r.charges[0].amount_cents == 0);
      CHECK(r.charges[0].description == "Session drawn from package 'induction_6' (session " + std::to_string(n) + " of 6)");
    }
    CHECK(r.data.at("package_sessions_used") == n);
    CHECK(r.data.at("package_sessions_remaining") == 6 - n);
    CHECK(r.data.at("charged_to_date_cents") == 250000);
    case_data["session_charge"] = r.data;
  }
  StepResult seventh = p.run(request("session_charge", settings, case_data));
  CHECK(seventh.status == StepResult::Status::refused);
  CHECK(contains(seventh.reason, "package 'induction_6' is used up: all 6 sessions have been drawn"));
  CHECK(seventh.charges.empty());

  auto s = settings_json();
  s["when_package_used_up"] = "charge_per_session";
  StepResult charged = plugin(s).run(request("session_charge", settings, case_data));
  REQUIRE(charged.status == StepResult::Status::ok);
  CHECK(charged.charges.at(0).code == "SELFPAY-SESSION");
  CHECK(charged.charges.at(0).amount_cents == 50000);
  CHECK(charged.data.at("session_number") == 7);
  CHECK(charged.data.at("package_sessions_remaining") == 0);
  CHECK(charged.data.at("charged_to_date_cents") == 300000);
}

TEST_CASE("session: the payment choice must be recorded and known") {
  SelfPay p = plugin();
  json::object settings{{"action", "session"}, {"pricing_from", "payment_choice.pricing"}};
  StepResult none = p.run(request("session_charge", settings));
  CHECK(none.status == StepResult::Status::refused);
  CHECK(contains(none.reason, "no payment option is recorded yet (payment_choice.pricing)"));

  StepResult gone = p.run(request("session_charge", settings, {{"payment_choice", {{"pricing", "old_deal"}}}}));
  CHECK(gone.status == StepResult::Status::refused);
  CHECK(contains(gone.reason, "'old_deal' is not one of the clinic's payment options"));

  StepResult bad = p.run(request("session_charge", {{"action", "session"}, {"pricing_from", "payment_choice"}}));
  CHECK(bad.status == StepResult::Status::failed);
  CHECK(contains(bad.reason, "\"step.field\""));
}

TEST_CASE("charges are dated by the clinic's calendar") {
  auto s = settings_json();
  s["utc_offset_minutes"] = -300;  // UTC-5: 02:00Z on 3 March is 21:00 on 2 March
  StepRequest r = request("consult_charge", {{"action", "consultation"}});
  r.now = "2026-03-03T02:00:00Z";
  CHECK(plugin(s).run(r).data.at("service_date") == "2026-03-02");
  CHECK(plugin().run(r).data.at("service_date") == "2026-03-03");
  r.now = "yesterday";
  CHECK(plugin().run(r).status == StepResult::Status::failed);
}

// ---------------------------------------------------------------------------------- superbill

namespace {

// A case with a consultation and three package sessions charged on 2, 4 and 6 March.
json::object charged_case(SelfPay& p) {
  json::object case_data{{"referral_intake", {{"diagnosis", "F33.2"}, {"patient_ref", "P-77"}}},
                         {"payment_choice", {{"pricing", "induction_6"}}}};
  case_data["consult_charge"] = p.run(request("consult_charge", {{"action", "consultation"}})).data;
  for (const char* day : {"2026-03-02", "2026-03-04", "2026-03-06"}) {
    StepRequest r = request("session_charge", {{"action", "session"}, {"pricing_from", "payment_choice.pricing"}}, case_data);
    r.now = std::string(day) + "T16:00:00Z";
    case_data["session_charge"] = p.run(r).data;
  }
  return case_data;
}

json::object superbill_settings() {
  return {{"action", "superbill"},
          {"diagnosis_from", "referral_intake.diagnosis"},
          {"charges_from", json::array{"consult_charge", "session_charge"}},
          {"patient_id_from", "referral_intake.patient_ref"}};
}

}  // namespace

TEST_CASE("superbill: exact contents") {
  SelfPay p = plugin();
  StepRequest r = request("superbill", superbill_settings(), charged_case(p));
  r.now = "2026-03-07T10:00:00Z";
  StepResult result = p.run(r);
  REQUIRE(result.status == StepResult::Status::ok);
  CHECK(result.charges.empty());
  CHECK(result.data == json::parse(R"J({
    "superbill": {
      "case_id": "c_0001",
      "patient_id": "P-77",
      "issued_on": "2026-03-07",
      "service_period": {"from": "2026-03-02", "to": "2026-03-06"},
      "provider": {"name": "Example Clinic PC", "npi": "1234567890", "tax_id": "12-3456789", "address": "1 Example Street, Springfield"},
      "diagnosis_codes": ["F33.2"],
      "lines": [
        {"service": "consultation", "dates": ["2026-03-02"], "units": 1, "amount_cents": 35000,
         "procedure_codes": [{"code": "X0001", "description": "Consultation (clinic's E/M code)", "units": 1}]},
        {"service": "session", "dates": ["2026-03-02", "2026-03-04", "2026-03-06"], "units": 3, "amount_cents": 250000,
         "procedure_codes": [{"code": "96365", "description": "IV infusion, initial hour", "units": 3},
                             {"code": "J3490", "description": "Unclassified drug (ketamine)", "units": 3}]}
      ],
      "total_cents": 285000,
      "notice": "Itemized statement of the services charged, for the patient to file with their insurer for out-of-network benefits. It does not guarantee coverage or reimbursement."
    },
    "total_cents": 285000
  })J").as_object());
}

TEST_CASE("superbill: several diagnosis codes, per-code units, and a step not reached") {
  auto s = settings_json();
  s["procedure_codes"] = json::parse(R"J({"session": [{"code": "96365"}, {"code": "+96366", "units": 2}]})J");
  SelfPay p = plugin(s);
  json::object case_data{{"intake", {{"dx", json::array{"F33.2", "F43.12"}}}}};
  case_data["session_charge"] = p.run(request("session_charge", {{"action", "session"}})).data;
  StepResult r = p.run(request("superbill",
                               {{"action", "superbill"}, {"diagnosis_from", "intake.dx"}, {"charges_from", json::array{"consult_charge", "session_charge"}}},
                               case_data));
  REQUIRE(r.status == StepResult::Status::ok);
  const json::object& bill = r.data.at("superbill").as_object();
  CHECK_FALSE(bill.contains("patient_id"));
  CHECK(bill.at("diagnosis_codes") == json::array{"F33.2", "F43.12"});
  CHECK(bill.at("lines") == json::parse(R"J([{"service": "session", "dates": ["2026-03-02"], "units": 1, "amount_cents": 50000,
      "procedure_codes": [{"code": "96365", "description": "", "units": 1}, {"code": "96366", "description": "", "units": 2}]}])J"));
  CHECK(r.data.at("total_cents") == 50000);
}

TEST_CASE("superbill: refusals and setup errors") {
  SelfPay p = plugin();
  json::object case_data = charged_case(p);

  auto no_provider = settings_json();
  no_provider["provider_npi"] = "";
  no_provider["tax_id"] = "";
  StepResult r = plugin(no_provider).run(request("superbill", superbill_settings(), case_data));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(r.reason == "a superbill needs the provider's details: set provider_npi, tax_id in [plugins.self_pay]");

  json::object no_dx = case_data;
  no_dx["referral_intake"] = json::object{{"patient_ref", "P-77"}};
  r = p.run(request("superbill", superbill_settings(), no_dx));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(contains(r.reason, "no diagnosis is recorded (referral_intake.diagnosis)"));

  json::object bad_dx = case_data;
  bad_dx["referral_intake"] = json::object{{"diagnosis", "depression"}, {"patient_ref", "P-77"}};
  r = p.run(request("superbill", superbill_settings(), bad_dx));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(contains(r.reason, "'depression' is not an ICD-10-CM code"));

  json::object nothing{{"referral_intake", {{"diagnosis", "F33.2"}, {"patient_ref", "P-77"}}}};
  r = p.run(request("superbill", superbill_settings(), nothing));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(contains(r.reason, "nothing has been charged"));

  auto no_codes = settings_json();
  no_codes["procedure_codes"] = json::parse(R"J({"consultation": [{"code": "X0001"}]})J");
  r = plugin(no_codes).run(request("superbill", superbill_settings(), case_data));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(contains(r.reason, "procedure_codes.session is not set"));

  auto s0013 = settings_json();
  s0013["procedure_codes"] = json::parse(R"J({"consultation": [{"code": "X0001"}], "session": [{"code": "S0013", "units": 56}]})J");
  r = plugin(s0013).run(request("superbill", superbill_settings(), case_data));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(contains(r.reason, "replaced by J0013"));

  json::object wrong_step = superbill_settings();
  wrong_step["charges_from"] = json::array{"referral_intake"};
  r = p.run(request("superbill", wrong_step, case_data));
  CHECK(r.status == StepResult::Status::failed);
  CHECK(contains(r.reason, "holds no self_pay charges"));

  json::object no_charges_from = superbill_settings();
  no_charges_from.erase("charges_from");
  CHECK(p.run(request("superbill", no_charges_from, case_data)).status == StepResult::Status::failed);

  json::object no_patient = case_data;
  no_patient["referral_intake"] = json::object{{"diagnosis", "F33.2"}};
  r = p.run(request("superbill", superbill_settings(), no_patient));
  CHECK(r.status == StepResult::Status::refused);
  CHECK(contains(r.reason, "no patient id is recorded"));
}

// ---------------------------------------------------------------------------------- C ABI

TEST_CASE("through the C ABI: manifest, a creation error, a run round trip") {
  CHECK(clinicflow_plugin_abi() == CLINICFLOW_ABI_VERSION);

  json::object manifest = json::parse(clinicflow_plugin_manifest()).as_object();
  CHECK(manifest.at("name") == "self_pay");
  CHECK(manifest.at("kind") == "billing");
  CHECK(manifest.at("abi") == "1.0");
  CHECK(manifest.at("settings").as_array().at(0).as_object().at("name") == "session_fee_cents");
  CHECK(manifest.at("settings").as_array().at(0).as_object().at("default").is_null());
  CHECK(manifest.at("settings").as_array().at(2).as_object().at("default") == json::array{});

  char* error = nullptr;
  CHECK(clinicflow_plugin_create(R"J({"session_fee_cents": 50000})J", &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK(std::string(error) == "setting 'consultation_fee_cents' is required: the clinic's consultation fee, in whole cents");
  clinicflow_plugin_free(error);

  error = nullptr;
  void* instance = clinicflow_plugin_create(json::serialize(settings_json()).c_str(), &error);
  REQUIRE(instance != nullptr);
  CHECK(error == nullptr);

  char* response = nullptr;
  const char* run = R"J({"case_id": "c_9", "step": "session_charge", "step_settings": {"action": "session"},
                        "case_data": {}, "repetition": 1, "now": "2026-03-02T15:00:00Z"})J";
  REQUIRE(clinicflow_plugin_call(instance, "run", run, &response) == 0);
  json::object answer = json::parse(response).as_object();
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "ok");
  CHECK(answer.at("charges") == json::parse(R"J([{"code": "SELFPAY-SESSION", "description": "Session (self-pay)", "amount_cents": 50000, "units": 1, "modifiers": []}])J"));
  CHECK(answer.at("data").as_object().at("session_number") == 1);

  REQUIRE(clinicflow_plugin_call(instance, "fields", R"J({"step_settings": {"action": "choose_payment"}})J", &response) == 0);
  CHECK(json::parse(response).as_object().at("fields").as_array().size() == 4);
  clinicflow_plugin_free(response);

  CHECK(clinicflow_plugin_call(instance, "fields", R"J({"step_settings": {"action": "nope"}})J", &response) != 0);
  CHECK(contains(response, "unknown action 'nope'"));
  clinicflow_plugin_free(response);

  clinicflow_plugin_destroy(instance);
}
