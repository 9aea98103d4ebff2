#pragma once
// The drivers the IV and IM scenario tests share: the stages both journeys have (referral,
// eligibility, consultation, pretreatment, the 24-72 h check, follow-up, maintenance) and the
// readers of a case's events, charges and messages. Defined in ketamine_iv_test.cpp.
#include "scenario/scenario_fixture.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ketamine_journey {

using clinicflow::testing::Scenario;
namespace json = boost::json;

std::vector<json::object> events_of(Scenario& s, const json::value& case_id, const std::string& type = "");
std::vector<json::object> messages_of(Scenario& s, const json::value& case_id);
std::vector<std::string> completed_steps(Scenario& s, const json::value& case_id);
int count_of(const std::vector<std::string>& path, const std::string& step);
std::map<std::string, std::pair<std::int64_t, std::int64_t>> charges_by_code(Scenario& s, const json::value& case_id);
std::vector<std::pair<std::string, std::string>> message_recipients(Scenario& s, const json::value& case_id);
int count_messages(Scenario& s, const json::value& case_id, const std::string& template_name, const std::string& to);
json::object message_for(Scenario& s, const json::value& case_id, const std::string& template_name, const std::string& to);
void advance_until_open(Scenario& s, const json::value& case_id, const std::string& step, int max_hours = 24 * 7);
std::pair<std::string, std::string> ending(Scenario& s, const json::value& case_id);
json::value through_consultation(Scenario& s, const std::string& workflow);
void pretreatment(Scenario& s, const json::value& id, int phq9);
json::object post_session_check(Scenario& s, const json::value& id, const json::object& data);
json::object routine_check();
void check_every_eligibility_exit(const std::string& workflow_file, const std::string& workflow);
void check_referral_exits(const std::string& workflow_file, const std::string& workflow);
void check_consultation_exits(const std::string& workflow_file, const std::string& workflow);
}  // namespace ketamine_journey
