#pragma once
// A scenario: the shipped configuration (config/clinicflow.toml) with its real plugins and one
// shipped workflow, on a fresh data directory and the virtual clock, spoken to in JSON-RPC through
// the API exactly as a staff app would (in-process: the same frames, without the socket).
//
//   Scenario s("workflows/ketamine_iv.toml");
//   auto patient = s.call("patient.create", {{"given_name", "Ada"}, ...}).as_object();
//   auto view = s.call("case.open", {{"patient_id", patient["patient_id"]}, {"workflow", "ketamine_iv"}});
//   auto err = s.error("case.submit", {...});   // the error object: code, message, data
#include "app/runtime.hpp"
#include "api/connection.hpp"
#include "config/server_config.hpp"
#include "support/temp_dir.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

namespace clinicflow::testing {

// Collects the notifications the API pushes (subscriptions).
class ScenarioConnection final : public api::Connection {
 public:
  explicit ScenarioConnection(std::uint64_t id) : id_(id) {}
  std::uint64_t id() const override { return id_; }
  void send(std::string text) override {
    std::lock_guard lock(mutex_);
    pushed_.push_back(boost::json::parse(text).as_object());
  }
  void close(std::uint16_t, std::string) override {}
  std::vector<boost::json::object> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(pushed_, {});
  }

 private:
  std::uint64_t id_;
  std::mutex mutex_;
  std::vector<boost::json::object> pushed_;
};

class Scenario {
 public:
  // `workflow_file`: relative to the source tree, such as "workflows/ketamine_iv.toml".
  explicit Scenario(const std::string& workflow_file) : data_("clinicflow-scenario") {
    config::ServerConfig config = config::load_config_file(std::filesystem::path(CLINICFLOW_SOURCE_DIR) / "config/clinicflow.toml");
    config.data_dir = data_.path();
    config.clock = "virtual";
    config.plugins_dir = CLINICFLOW_PLUGIN_DIR;
    config.log_file = "";
    for (auto& plugin : config.plugins)
      if (plugin.name == "outbox_file") plugin.settings["path"] = (data_.path() / "outbox.jsonl").string();
    app::RuntimeOptions options;
    options.workflow_files = {std::filesystem::path(CLINICFLOW_SOURCE_DIR) / workflow_file};
    options.create_admin_token = false;
    options.deliver_in_background = false;
    runtime_ = std::make_unique<app::Runtime>(std::move(config), options);
    runtime_->start();
    std::vector<std::string> roles;
    for (const auto& role : runtime_->config().roles) roles.push_back(role.name);
    staff_ = connect(runtime_->auth().create_token("staff", roles).token);
  }

  // A new signed-in connection for a user holding exactly `roles`.
  std::shared_ptr<ScenarioConnection> connect_as(const std::string& user, const std::vector<std::string>& roles) {
    return connect(runtime_->auth().create_token(user, roles).token);
  }

  // Calls as the staff user (who holds every role); returns the result or fails the test.
  boost::json::value call(const std::string& method, const boost::json::object& params = {}) { return call(staff_, method, params); }
  boost::json::value call(const std::shared_ptr<ScenarioConnection>& c, const std::string& method, const boost::json::object& params) {
    boost::json::object answer = send(c, method, params);
    if (auto* error = answer.if_contains("error")) FAIL(method << " failed: " << boost::json::serialize(*error));
    return answer.at("result");
  }

  // Calls and expects an error; returns it ({code, message, data?}) or fails the test.
  boost::json::object error(const std::string& method, const boost::json::object& params = {}) { return error(staff_, method, params); }
  boost::json::object error(const std::shared_ptr<ScenarioConnection>& c, const std::string& method, const boost::json::object& params) {
    boost::json::object answer = send(c, method, params);
    if (!answer.contains("error")) FAIL(method << " succeeded but an error was expected: " << boost::json::serialize(answer));
    return answer.at("error").as_object();
  }

  // A new patient (with phone and email, so messages have addresses) and a case on `workflow`;
  // returns the case view.
  boost::json::object open_case(const std::string& workflow) {
    auto patient = call("patient.create", {{"given_name", "Test"},
                                           {"family_name", "Patient " + std::to_string(next_request_)},
                                           {"birth_date", "1980-01-01"},
                                           {"phone", "+15550100"},
                                           {"email", "patient@example.org"}});
    return call("case.open", {{"patient_id", patient.at("patient_id")}, {"workflow", workflow}}).as_object();
  }

  // Submits a step as the staff user; returns the case view after it.
  boost::json::object submit(const boost::json::value& case_id, const std::string& step, const boost::json::object& data) {
    return call("case.submit", {{"case_id", case_id}, {"step", step}, {"data", data}}).as_object();
  }

  boost::json::object get(const boost::json::value& case_id) { return call("case.get", {{"case_id", case_id}}).as_object(); }

  // The ids of the tasks open now (not waiting) on a case view.
  static std::vector<std::string> open_steps(const boost::json::object& view) {
    std::vector<std::string> out;
    for (const auto& t : view.at("open_tasks").as_array()) out.emplace_back(t.at("step").as_string());
    return out;
  }
  static bool is_open(const boost::json::object& view, const std::string& step) {
    auto steps = open_steps(view);
    return std::find(steps.begin(), steps.end(), step) != steps.end();
  }

  // The case's history entries, in order ({seq, at, type, step, actor, data}).
  std::vector<boost::json::object> history(const boost::json::value& case_id) {
    std::vector<boost::json::object> out;
    boost::json::value entries = call("case.history", {{"case_id", case_id}});  // kept: the loop reads into it
    for (auto& e : entries.as_array()) out.push_back(e.as_object());
    return out;
  }
  // The history entries of one type, such as "step_completed" or "charge_posted".
  std::vector<boost::json::object> events(const boost::json::value& case_id, const std::string& type) {
    std::vector<boost::json::object> out;
    for (auto& e : history(case_id))
      if (e.at("type") == type.c_str()) out.push_back(e);
    return out;
  }

  // billing.summary: {case_id, charges, by_code, total_cents}.
  boost::json::object billing(const boost::json::value& case_id) { return call("billing.summary", {{"case_id", case_id}}).as_object(); }
  // messages.list with bodies, after delivering every message due now.
  std::vector<boost::json::object> messages(const boost::json::value& case_id) {
    deliver_messages();
    std::vector<boost::json::object> out;
    boost::json::value list = call("messages.list", {{"case_id", case_id}, {"include_body", true}});  // kept: the loop reads into it
    for (auto& m : list.as_array()) out.push_back(m.as_object());
    return out;
  }
  // The templates of a case's messages, in the order they were queued.
  std::vector<std::string> message_templates(const boost::json::value& case_id) {
    std::vector<std::string> out;
    for (const auto& m : messages(case_id)) out.emplace_back(m.at("template").as_string());
    return out;
  }

  // Moves virtual time on, firing every timer that falls due (clock.advance).
  void advance(std::int64_t seconds) { call("clock.advance", {{"seconds", seconds}}); }

  // Delivers every outbox message due now (the runtime delivers only when asked, so a test
  // sees delivery states deterministically); returns how many were tried.
  std::size_t deliver_messages() { return runtime_->deliver_due(); }

  std::shared_ptr<ScenarioConnection> staff() const { return staff_; }
  app::Runtime& runtime() { return *runtime_; }
  const std::filesystem::path& data_dir() const { return data_.path(); }

 private:
  std::shared_ptr<ScenarioConnection> connect(const std::string& token) {
    auto c = std::make_shared<ScenarioConnection>(next_id_++);
    runtime_->api()->on_open(c, token);
    REQUIRE(runtime_->api()->authenticated(*c));
    return c;
  }

  boost::json::object send(const std::shared_ptr<ScenarioConnection>& c, const std::string& method, const boost::json::object& params) {
    boost::json::object request{{"jsonrpc", "2.0"}, {"id", next_request_++}, {"method", method}, {"params", params}};
    auto answer = runtime_->api()->handle(c, boost::json::serialize(request));
    REQUIRE(answer);
    return boost::json::parse(*answer).as_object();
  }

  TempDir data_;
  std::unique_ptr<app::Runtime> runtime_;
  std::shared_ptr<ScenarioConnection> staff_;
  std::uint64_t next_id_ = 1;
  std::int64_t next_request_ = 1;
};

}  // namespace clinicflow::testing
