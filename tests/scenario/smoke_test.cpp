#include "scenario/scenario_fixture.hpp"
using clinicflow::testing::Scenario;
TEST_CASE("smoke") {
  Scenario s("workflows/ketamine_iv.toml");
  auto p = s.call("patient.create", {{"given_name", "A"}, {"family_name", "B"}, {"birth_date", "1980-01-01"}}).as_object();
  auto v = s.call("case.open", {{"patient_id", p["patient_id"]}, {"workflow", "ketamine_iv"}}).as_object();
  CHECK(v["status"] == "active");
  auto e = s.error("case.submit", {{"case_id", v["case_id"]}, {"step", "nope"}, {"data", boost::json::object{}}});
  CHECK(e["code"] == -32004);
  s.advance(3600);
  CHECK(s.deliver_messages() == 0);
}
