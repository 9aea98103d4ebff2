// The JSON-RPC API driven in-process through the MessageHandler seam, with a fake connection that
// records every frame the API pushes: framing, authentication, roles and audit, every method, and
// live event subscriptions.
#include "support/temp_dir.hpp"
#include "api/api.hpp"
#include "api/view_cache.hpp"
#include "api/auth_store.hpp"
#include "engine/engine.hpp"
#include "plugins/plugin_host.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/workflow_loader.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <thread>
#include <mutex>

using namespace clinicflow;
using namespace clinicflow::api;
using namespace clinicflow::engine;
namespace json = boost::json;

namespace {

const TimePoint kStart = *parse_rfc3339("2026-03-02T09:00:00Z");

using clinicflow::testing::TempDir;

class FakeConnection final : public Connection {
 public:
  explicit FakeConnection(std::uint64_t id) : id_(id) {}
  std::uint64_t id() const override { return id_; }
  void send(std::string text) override {
    std::lock_guard lock(mutex_);
    sent_.push_back(std::move(text));
  }
  void close(std::uint16_t code, std::string reason) override {
    std::lock_guard lock(mutex_);
    closed_ = {code, std::move(reason)};
  }
  // The frames pushed since the last call, parsed.
  std::vector<json::object> take() {
    std::lock_guard lock(mutex_);
    std::vector<json::object> out;
    for (const auto& s : sent_) out.push_back(json::parse(s).as_object());
    sent_.clear();
    return out;
  }
  std::optional<std::pair<std::uint16_t, std::string>> closed() const { return closed_; }

 private:
  std::uint64_t id_;
  std::mutex mutex_;
  std::vector<std::string> sent_;
  std::optional<std::pair<std::uint16_t, std::string>> closed_;
};

class FakePlugins final : public StepPlugins {
 public:
  std::map<std::string, std::function<PluginDecision(const PluginCall&)>> plugins;
  std::map<std::string, std::string> broken;
  std::atomic<bool> throws{false};  // an unexpected failure inside the engine's decision
  std::optional<std::string> unavailable(std::string_view plugin) const override {
    if (throws) throw std::runtime_error("secret detail /var/lib/db");
    if (auto it = broken.find(std::string(plugin)); it != broken.end()) return it->second;
    if (!plugins.count(std::string(plugin))) return "not loaded";
    return std::nullopt;
  }
  PluginDecision call(const PluginCall& call) override { return plugins.at(std::string(call.plugin))(call); }
};

// A task reviewed by a plugin rule (which can refuse), and a step that sends messages.
const char* const kReviewFlow = R"toml(
id = "review_flow"
version = 1
title = "Reviewed dose"

[template.confirm]
subject = "Dose recorded"
body = "Case {{case.id}}: dose {{dose.mg}} mg."

[[stage]]
id = "main"

[[step]]
id = "dose"
stage = "main"
title = "Dose"
roles = ["prescriber"]
plugin = "fake_review"

  [[step.field]]
  name = "mg"
  type = "integer"
  required = true

  [[step.message]]
  template = "confirm"
  via = "fake_sms"
  to = "patient"
  address = "sms:+15550100"

  [[step.message]]
  template = "confirm"
  via = "fake_sms"
  to = "support_person"
  address = "sms:+15550101"

[[step]]
id = "observe"
stage = "main"
title = "Observation"
roles = ["nurse"]

  [[step.field]]
  name = "ok"
  type = "boolean"
  required = true
)toml";

workflow::LoadContext context() {
  workflow::LoadContext c;
  c.roles = std::set<std::string>{"frontdesk", "nurse", "prescriber", "billing", "admin"};
  c.plugins = std::set<std::string>{"fake_billing", "fake_review", "fake_sms"};
  return c;
}

RoleMethods role_methods() {
  return {{"admin", {"*"}},
          {"frontdesk",
           {"workflow.*", "patient.*", "case.open", "case.get", "case.list", "case.history", "case.submit", "case.close", "subscribe",
            "unsubscribe", "clock.now", "messages.list"}},
          {"nurse", {"workflow.*", "patient.get", "case.get", "case.list", "case.history", "case.submit", "subscribe", "unsubscribe", "clock.now"}},
          {"prescriber", {"case.*", "patient.get", "subscribe", "unsubscribe"}},
          {"billing", {"case.get", "billing.summary", "clock.now"}}};
}

std::string frame(const std::string& method, const json::object& params = {}, json::value id = 1) {
  json::object o{{"jsonrpc", "2.0"}, {"method", method}, {"params", params}};
  if (!id.is_null()) o["id"] = id;
  return json::serialize(o);
}

std::vector<std::string> fields_of(const json::object& error) {
  std::vector<std::string> out;
  for (const auto& f : error.at("data").at("fields").as_array())
    out.push_back(std::string(f.at("field").as_string()) + ": " + std::string(f.at("problem").as_string()));
  return out;
}

struct Fixture {
  TempDir dir;
  std::filesystem::path db = dir.path() / "test.db";
  store::SqliteCaseStore store{{db, "normal"}};
  VirtualClock clock{kStart};
  SqliteAuthStore auth{{db, "normal"}, clock};
  workflow::WorkflowSet workflows;
  FakePlugins plugins;
  Engine engine{store, workflows, clock, &plugins};
  plugins::PluginHost host{{dir.path() / "plugins", 1000}};
  std::unique_ptr<Api> api;
  std::map<std::string, NewToken> tokens;  // user -> token
  std::atomic<bool> listener_throws{false};
  std::uint64_t next_connection = 1;

  explicit Fixture(bool virtual_clock = true) {
    auth.carry_audit_with(store);  // as the server does
    auto full = workflow::load_workflow_file(std::string(CLINICFLOW_TEST_DATA) + "/workflows/full.toml", context());
    REQUIRE(full.workflow);
    REQUIRE_FALSE(workflows.add(full.workflow));
    auto review = workflow::load_workflow_text(kReviewFlow, "review_flow.toml", context());
    for (const auto& e : review.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(review.workflow);
    REQUIRE_FALSE(workflows.add(review.workflow));
    plugins.plugins["fake_billing"] = [](const PluginCall&) {
      json::array charges{json::object{{"code", "96365"}, {"description", "IV infusion, first hour"}, {"amount_cents", 45000}, {"units", 1}, {"modifiers", json::array{"KX"}}},
                          json::object{{"code", "J0013"}, {"description", "Drug"}, {"amount_cents", 1234}, {"units", 2}, {"modifiers", json::array{}}}};
      return PluginDecision{PluginDecision::Status::ok, {{"covered", true}}, "", charges};
    };
    plugins.plugins["fake_review"] = [](const PluginCall& call) {
      if (call.submitted->at("mg").as_int64() > 100)
        return PluginDecision{PluginDecision::Status::refused, {}, "dose_limit: 150 mg is above the 100 mg limit"};
      return PluginDecision{PluginDecision::Status::ok, {}, ""};
    };
    plugins.plugins["fake_sms"] = [](const PluginCall&) -> PluginDecision { throw std::logic_error("not a step plugin"); };
    host.load({config::PluginConfig{"missing_plugin", {}, 3, 1}}, "clinicflow.toml");
    api = std::make_unique<Api>(engine, store, auth, workflows, clock, virtual_clock ? &clock : nullptr, &host,
                                ApiOptions{role_methods(), {}});
    engine.add_listener([this](const CaseState&, const std::vector<store::EventRecord>&) {
      if (listener_throws) throw std::runtime_error("secret detail /var/lib/db");
    });
    for (auto [user, role] : std::vector<std::pair<std::string, std::string>>{
             {"admin", "admin"}, {"fd1", "frontdesk"}, {"rn1", "nurse"}, {"md1", "prescriber"}, {"bill1", "billing"}})
      tokens[user] = auth.create_token(user, {role});
  }

  std::shared_ptr<FakeConnection> connect(std::optional<std::string> bearer = std::nullopt) {
    auto c = std::make_shared<FakeConnection>(next_connection++);
    api->on_open(c, std::move(bearer));
    return c;
  }
  std::shared_ptr<FakeConnection> login(const std::string& user) {
    auto c = connect();
    auto answer = call(c, "auth.login", {{"token", tokens.at(user).token}});
    REQUIRE(answer.contains("result"));
    return c;
  }

  std::optional<std::string> send(const std::shared_ptr<FakeConnection>& c, std::string_view text) { return api->handle(c, text); }

  json::object call(const std::shared_ptr<FakeConnection>& c, const std::string& method, const json::object& params = {}) {
    auto answer = send(c, frame(method, params));
    REQUIRE(answer);
    json::object o = json::parse(*answer).as_object();
    CHECK(o.at("jsonrpc") == "2.0");
    CHECK(o.at("id") == 1);
    return o;
  }
  json::value result(const std::shared_ptr<FakeConnection>& c, const std::string& method, const json::object& params = {}) {
    json::object o = call(c, method, params);
    INFO(json::serialize(o));
    REQUIRE(o.contains("result"));
    return o.at("result");
  }
  json::object error(const std::shared_ptr<FakeConnection>& c, const std::string& method, const json::object& params = {}) {
    json::object o = call(c, method, params);
    INFO(json::serialize(o));
    REQUIRE(o.contains("error"));
    CHECK_FALSE(o.contains("result"));
    return o.at("error").as_object();
  }
  std::int64_t code(const std::shared_ptr<FakeConnection>& c, const std::string& method, const json::object& params = {}) {
    return error(c, method, params).at("code").as_int64();
  }

  std::string new_patient(const std::shared_ptr<FakeConnection>& c) {
    return std::string(result(c, "patient.create", {{"given_name", "Ada"}, {"family_name", "Lovelace"}, {"birth_date", "1985-12-10"}})
                           .at("patient_id")
                           .as_string());
  }
  json::object open_case(const std::shared_ptr<FakeConnection>& c, const std::string& workflow = "test_flow") {
    return result(c, "case.open", {{"patient_id", new_patient(c)}, {"workflow", workflow}}).as_object();
  }

  std::vector<std::string> audit_rows() {
    std::vector<std::string> out;
    for (const auto& a : auth.read_audit())
      out.push_back(a.user + " " + a.method + " " + (a.target.empty() ? "-" : a.target) + " " + a.outcome);
    return out;
  }
  bool audited(const std::string& row) {
    auto rows = audit_rows();
    return std::find(rows.begin(), rows.end(), row) != rows.end();
  }
};

std::string str(const json::value& v) { return std::string(v.as_string()); }
std::string str(const std::string& s) { return s; }

}  // namespace

// ------------------------------------------------------------------------------------------ framing

TEST_CASE_METHOD(Fixture, "a frame that is not JSON is a parse error with the parser's reason") {
  auto c = login("fd1");
  auto answer = json::parse(*send(c, R"({"jsonrpc": "2.0", "method": )")).as_object();
  CHECK(answer.at("id").is_null());
  CHECK(answer.at("error").at("code") == -32700);
  CHECK(str(answer.at("error").at("message")).starts_with("parse error: "));
  CHECK(answer.at("error").at("data").at("error").is_string());

  // Nesting is limited: a deeply nested frame is refused by the parser.
  std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"clock.now","params":{"a":)" + std::string(40, '[') + std::string(40, ']') + "}}";
  auto nested = json::parse(*send(c, deep)).as_object();
  CHECK(nested.at("error").at("code") == -32700);
  CHECK(str(nested.at("error").at("data").at("error")) == "nested more than 32 levels deep");
}

TEST_CASE_METHOD(Fixture, "malformed requests are invalid requests, naming what is wrong, answered with their id when it is usable") {
  auto c = login("fd1");
  auto check = [&](const std::string& text, json::value id, std::vector<std::string> fields) {
    INFO(text);
    auto answer = json::parse(*send(c, text)).as_object();
    CHECK(answer.at("id") == id);
    CHECK(answer.at("error").at("code") == -32600);
    CHECK(fields_of(answer.at("error").as_object()) == fields);
  };
  check(R"({"method": "clock.now", "id": 7})", 7, {"jsonrpc: must be \"2.0\""});
  check(R"({"jsonrpc": "1.0", "method": "clock.now", "id": "a"})", "a", {"jsonrpc: must be \"2.0\""});
  check(R"({"jsonrpc": "2.0", "method": 5, "id": 8})", 8, {"method: must be a string"});
  check(R"({"jsonrpc": "2.0", "method": "clock.now", "params": "x", "id": 9})", 9, {"params: must be an object or an array"});
  check(R"({"jsonrpc": "2.0", "method": "clock.now", "id": {"a": 1}})", nullptr, {"id: must be a string, a number or null"});
  check(R"({"jsonrpc": "2.0", "method": "clock.now", "id": true, "extra": 1})", nullptr,
        {"id: must be a string, a number or null", "extra: is not a member of a request"});
  auto scalar = json::parse(*send(c, "42")).as_object();
  CHECK(scalar.at("error").at("code") == -32600);
  CHECK(scalar.at("id").is_null());
}

TEST_CASE_METHOD(Fixture, "an unknown method is -32601; ids of every kind come back as sent") {
  auto c = login("fd1");
  auto answer = json::parse(*send(c, R"({"jsonrpc": "2.0", "method": "case.explode", "id": "req-1"})")).as_object();
  CHECK(answer.at("id") == "req-1");
  CHECK(answer.at("error").at("code") == -32601);
  CHECK(answer.at("error").at("message") == "method not found: 'case.explode'");
  auto null_id = json::parse(*send(c, R"({"jsonrpc": "2.0", "method": "clock.now", "id": null})")).as_object();
  CHECK(null_id.at("id").is_null());
  CHECK(null_id.at("result").at("now") == "2026-03-02T09:00:00Z");
  // Unknown methods are unknown before login too.
  auto anon = connect();
  CHECK(code(anon, "nope") == -32601);
}

TEST_CASE_METHOD(Fixture, "notifications get no answer, even when they fail, but they run") {
  auto c = login("fd1");
  CHECK_FALSE(send(c, R"({"jsonrpc": "2.0", "method": "clock.now"})"));
  CHECK_FALSE(send(c, R"({"jsonrpc": "2.0", "method": "no.such.method"})"));
  CHECK_FALSE(send(c, R"({"jsonrpc": "2.0", "method": "case.get", "params": {"case_id": "c_none"}})"));
  CHECK_FALSE(send(c, frame("patient.create", {{"given_name", "A"}, {"family_name", "B"}, {"birth_date", "1990-01-01"}}, nullptr)));
  CHECK(audited("fd1 patient.create " + str(auth.read_audit().back().target) + " ok"));
  CHECK(auth.read_audit().back().target.starts_with("p_"));
  CHECK(c->take().empty());
}

TEST_CASE_METHOD(Fixture, "batches: answers for the requests only, in order; all-notification and empty batches") {
  auto c = login("fd1");
  std::string mixed = R"([
    {"jsonrpc": "2.0", "method": "clock.now", "id": 1},
    {"jsonrpc": "2.0", "method": "clock.now"},
    {"jsonrpc": "2.0", "method": "nope", "id": 2},
    17,
    {"jsonrpc": "2.0", "method": "case.get", "params": {"case_id": "c_none"}, "id": "three"}
  ])";
  auto answers = json::parse(*send(c, mixed)).as_array();
  REQUIRE(answers.size() == 4);
  CHECK(answers[0].at("id") == 1);
  CHECK(answers[0].at("result").at("now") == "2026-03-02T09:00:00Z");
  CHECK(answers[1].at("id") == 2);
  CHECK(answers[1].at("error").at("code") == -32601);
  CHECK(answers[2].at("id").is_null());
  CHECK(answers[2].at("error").at("code") == -32600);
  CHECK(answers[3].at("id") == "three");
  CHECK(answers[3].at("error").at("code") == -32004);

  CHECK_FALSE(send(c, R"([{"jsonrpc": "2.0", "method": "clock.now"}, {"jsonrpc": "2.0", "method": "clock.now"}])"));

  auto empty = json::parse(*send(c, "[]"));
  REQUIRE(empty.is_object());  // one error, not a batch of them
  CHECK(empty.at("error").at("code") == -32600);
  CHECK(empty.at("id").is_null());

  std::string big = "[";
  for (int i = 0; i < 101; ++i) big += std::string(i ? "," : "") + R"({"jsonrpc": "2.0", "method": "clock.now", "id": 1})";
  auto too_big = json::parse(*send(c, big + "]"));
  REQUIRE(too_big.is_object());
  CHECK(too_big.at("error").at("code") == -32600);
  CHECK(too_big.at("error").at("data").at("max_batch") == 100);
}

TEST_CASE_METHOD(Fixture, "a batch of writes and reads: every write durable when answered, answers in request order") {
  auto c = login("fd1");
  std::vector<std::string> cases;
  for (int i = 0; i < 3; ++i) cases.emplace_back(open_case(c).at("case_id").as_string());
  json::array batch;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    batch.push_back(json::object{{"jsonrpc", "2.0"}, {"id", i}, {"method", "case.submit"},
                                 {"params", {{"case_id", cases[i]}, {"step", "referral"}, {"data", {{"age", 40}, {"psychosis", false}}}}}});
    batch.push_back(json::object{{"jsonrpc", "2.0"}, {"id", "get" + std::to_string(i)}, {"method", "clock.now"}});
  }
  batch.push_back(json::object{{"jsonrpc", "2.0"}, {"id", "bad"}, {"method", "case.submit"},
                               {"params", {{"case_id", cases[0]}, {"step", "nope"}, {"data", json::object{}}}}});
  auto answers = json::parse(*send(c, json::serialize(batch))).as_array();
  REQUIRE(answers.size() == 7);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CHECK(answers[2 * i].at("id") == static_cast<std::int64_t>(i));
    CHECK(answers[2 * i].at("result").at("case_id") == cases[i].c_str());
    CHECK(answers[2 * i + 1].at("id") == ("get" + std::to_string(i)).c_str());
    // Answered means durable: the store has it.
    CHECK(store.read_case(cases[i])->revision == answers[2 * i].at("result").at("revision").as_int64());
  }
  CHECK(answers[6].at("error").at("code") == -32004);
}

TEST_CASE_METHOD(Fixture, "patients created together in one batch are all stored before any is answered") {
  auto c = login("fd1");
  json::array batch;
  for (int i = 0; i < 20; ++i)
    batch.push_back(json::object{{"jsonrpc", "2.0"}, {"id", i}, {"method", "patient.create"},
                                 {"params", {{"given_name", "Ada"}, {"family_name", "Batch" + std::to_string(i)}, {"birth_date", "1980-01-01"}}}});
  auto answers = json::parse(*send(c, json::serialize(batch))).as_array();
  REQUIRE(answers.size() == 20);
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    CHECK(answers[i].at("id") == i);
    std::string id(answers[i].at("result").at("patient_id").as_string());
    ids.insert(id);
    auto stored = auth.get_patient(id);  // answered means stored
    REQUIRE(stored);
    CHECK(stored->family_name == "Batch" + std::to_string(i));
  }
  CHECK(ids.size() == 20);
}

TEST_CASE_METHOD(Fixture, "an unexpected exception is -32603 and its text is not shown") {
  auto c = login("fd1");
  std::string patient = new_patient(c);
  plugins.throws = true;  // the engine's decision meets a std::exception it does not expect
  auto e = error(c, "case.open", {{"patient_id", patient}, {"workflow", "test_flow"}});
  CHECK(e.at("code") == -32603);
  CHECK(e.at("message") == "internal error");
  CHECK_FALSE(e.contains("data"));
  CHECK(json::serialize(e).find("secret") == std::string::npos);
  CHECK(audited("fd1 case.open " + patient + " internal_error"));
}

TEST_CASE_METHOD(Fixture, "a commit listener that throws does not cost the committed command its answer") {
  auto c = login("fd1");
  std::string patient = new_patient(c);
  listener_throws = true;  // the engine commits, then a listener throws
  auto view = result(c, "case.open", {{"patient_id", patient}, {"workflow", "test_flow"}});
  std::string case_id(view.at("case_id").as_string());
  listener_throws = false;
  CHECK(result(c, "case.get", {{"case_id", case_id}}).at("revision") == view.at("revision"));
}

// ------------------------------------------------------------------------------------ auth and roles

TEST_CASE_METHOD(Fixture, "until auth.login succeeds every other method is -32001; then the user's roles apply") {
  auto c = connect();
  CHECK_FALSE(api->authenticated(*c));
  auto e = error(c, "clock.now");
  CHECK(e.at("code") == -32001);
  CHECK(e.at("message") == "not authenticated: call auth.login first");
  CHECK(code(c, "case.get", {{"case_id", "x"}}) == -32001);
  CHECK(code(c, "auth.login", {{"token", "cf_wrong"}}) == -32001);
  CHECK(code(c, "auth.login", {}) == -32602);
  CHECK_FALSE(api->authenticated(*c));
  auto who = result(c, "auth.login", {{"token", tokens["rn1"].token}});
  CHECK(json::serialize(who) == R"({"user":"rn1","roles":["nurse"]})");
  CHECK(api->authenticated(*c));
  CHECK(result(c, "clock.now").at("now") == "2026-03-02T09:00:00Z");
  CHECK(audited(" auth.login - not_authenticated"));
  CHECK(audited("rn1 auth.login " + tokens["rn1"].token_id + " ok"));
}

TEST_CASE_METHOD(Fixture, "a bearer token on the upgrade authenticates the connection; a bad one does not") {
  auto c = connect(tokens["md1"].token);
  CHECK(api->authenticated(*c));
  CHECK(result(c, "case.list").at("cases").as_array().empty());
  CHECK(audited("md1 auth.login " + tokens["md1"].token_id + " ok"));

  auto bad = connect(std::string("cf_") + std::string(64, '0'));
  CHECK_FALSE(api->authenticated(*bad));
  auto e = error(bad, "case.list");
  CHECK(e.at("code") == -32001);
  CHECK(e.at("message") == "not authenticated: the bearer token was not accepted; call auth.login");
  result(bad, "auth.login", {{"token", tokens["fd1"].token}});
  CHECK(api->authenticated(*bad));
  api->on_close(*bad);
  CHECK_FALSE(api->authenticated(*bad));
}

TEST_CASE_METHOD(Fixture, "each method a role may not call is -32003 and an audit row") {
  auto fd = login("fd1");
  auto rn = login("rn1");
  auto bill = login("bill1");
  std::string case_id = str(open_case(fd).at("case_id"));
  std::string patient = str(engine.get_case(case_id)->patient_id);

  struct Refusal {
    std::shared_ptr<FakeConnection> c;
    std::string method;
    json::object params;
    std::string row;
  };
  std::vector<Refusal> refusals{
      {rn, "patient.create", {{"given_name", "A"}}, "rn1 patient.create - forbidden"},
      {rn, "case.open", {{"patient_id", patient}, {"workflow", "test_flow"}}, "rn1 case.open " + patient + " forbidden"},
      {rn, "case.close", {{"case_id", case_id}, {"reason", "x"}}, "rn1 case.close " + case_id + " forbidden"},
      {bill, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", json::object{}}}, "bill1 case.submit " + case_id + " forbidden"},
      {bill, "workflow.list", {}, "bill1 workflow.list - forbidden"},
      {fd, "billing.summary", {{"case_id", case_id}}, "fd1 billing.summary " + case_id + " forbidden"},
      {fd, "plugin.list", {}, "fd1 plugin.list - forbidden"},
      {fd, "clock.advance", {{"seconds", 60}}, "fd1 clock.advance - forbidden"},
      {fd, "auth.token.create", {{"user", "x"}, {"roles", json::array{"admin"}}}, "fd1 auth.token.create - forbidden"},
      {rn, "auth.token.revoke", {{"token_id", tokens["admin"].token_id}}, "rn1 auth.token.revoke " + tokens["admin"].token_id + " forbidden"},
  };
  for (const auto& r : refusals) {
    INFO(r.method);
    auto e = error(r.c, r.method, r.params);
    CHECK(e.at("code") == -32003);
    CHECK(str(e.at("message")) == "forbidden: your roles may not call " + r.method);
    CHECK(audited(r.row));
  }
  // A step's roles come from the workflow: the engine refuses, the API answers -32003 and audits it.
  auto e = error(rn, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 40}, {"psychosis", false}}}});
  CHECK(e.at("code") == -32003);
  CHECK(e.at("message") == "step 'referral' may be completed only by: frontdesk");
  CHECK(audited("rn1 case.submit " + case_id + " forbidden"));
  // Admin-only methods stay admin-only even for a role the map gives "*" (only admin has it here),
  // and an admin may call them.
  auto admin = login("admin");
  CHECK(result(admin, "auth.token.list").as_array().size() == 5);
}

TEST_CASE_METHOD(Fixture, "invalid params list every bad field at once") {
  auto fd = login("fd1");
  auto e = error(fd, "patient.create",
                 {{"given_name", 5}, {"birth_date", "2026-02-30"}, {"email", "nobody"}, {"phone", ""}, {"shoe_size", 44}});
  CHECK(e.at("code") == -32602);
  CHECK(fields_of(e) == std::vector<std::string>{"given_name: must be a string", "family_name: is required",
                                                 "phone: must not be empty", "birth_date: must be a date YYYY-MM-DD",
                                                 "email: must be an email address", "shoe_size: is not a parameter of this method"});
  CHECK(fields_of(error(fd, "patient.create", {{"given_name", "A"}, {"family_name", "B"}, {"birth_date", "2026-03-03"}})) ==
        std::vector<std::string>{"birth_date: must not be in the future"});

  std::string case_id = str(open_case(fd).at("case_id"));
  auto form = error(fd, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 200}, {"psychosis", "no"}, {"bogus", 1}}}});
  CHECK(form.at("code") == -32602);
  CHECK(fields_of(form) == std::vector<std::string>{"data.age: must be at most 130", "data.psychosis: must be true or false",
                                                    "data.bogus: is not a field of step 'referral'"});
  CHECK(fields_of(error(fd, "case.submit", {{"case_id", 3}, {"revision", 0}})) ==
        std::vector<std::string>{"case_id: must be a string", "step: is required", "data: is required",
                                 "revision: must be between 1 and 9223372036854775807"});
  CHECK(fields_of(error(fd, "case.list", {{"limit", 501}, {"status", "open"}})) ==
        std::vector<std::string>{"limit: must be between 1 and 500", "status: must be one of active, completed, closed"});
  CHECK(fields_of(error(fd, "case.close", {{"case_id", case_id}, {"reason", ""}})) == std::vector<std::string>{"reason: must not be empty"});

  // Params are by name: an array is refused.
  auto positional = json::parse(*send(fd, R"({"jsonrpc": "2.0", "method": "case.get", "params": ["c_1"], "id": 1})")).as_object();
  CHECK(positional.at("error").at("code") == -32602);
  CHECK(fields_of(positional.at("error").as_object()) ==
        std::vector<std::string>{"params: must be an object (parameters are passed by name)", "case_id: is required"});
  CHECK(audited("fd1 case.submit " + case_id + " invalid_params"));
}

TEST_CASE_METHOD(Fixture, "not found: cases, patients, workflows, subscriptions, tokens") {
  auto fd = login("fd1");
  auto admin = login("admin");
  auto e = error(fd, "case.get", {{"case_id", "c_missing"}});
  CHECK(e.at("code") == -32004);
  CHECK(e.at("message") == "no case 'c_missing'");
  CHECK(code(fd, "case.history", {{"case_id", "c_missing"}}) == -32004);
  CHECK(code(fd, "patient.get", {{"patient_id", "p_missing"}}) == -32004);
  CHECK(code(fd, "case.open", {{"patient_id", "p_missing"}, {"workflow", "test_flow"}}) == -32004);
  CHECK(code(fd, "case.open", {{"patient_id", new_patient(fd)}, {"workflow", "nope"}}) == -32004);
  CHECK(code(fd, "workflow.get", {{"id", "test_flow"}, {"version", 9}}) == -32004);
  CHECK(code(fd, "unsubscribe", {{"subscription", "sub_99"}}) == -32004);
  CHECK(code(admin, "auth.token.revoke", {{"token_id", "t_missing"}}) == -32004);
  std::string case_id = str(open_case(fd).at("case_id"));
  CHECK(code(fd, "case.submit", {{"case_id", case_id}, {"step", "nope"}, {"data", json::object{}}}) == -32004);
  CHECK(audited("fd1 case.get c_missing not_found"));
}

TEST_CASE_METHOD(Fixture, "conflicts: a stale revision, a step that is not open, a closed case") {
  auto fd = login("fd1");
  auto view = open_case(fd);
  std::string case_id = str(view.at("case_id"));
  std::int64_t seen = view.at("revision").as_int64();
  CHECK(seen == 3);
  auto next = result(fd, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 40}, {"psychosis", false}}}, {"revision", seen}});
  CHECK(next.at("revision").as_int64() > seen);
  CHECK(next.at("stage") == "series");
  auto rn = login("rn1");
  auto e = error(rn, "case.submit", {{"case_id", case_id}, {"step", "session"}, {"data", {{"systolic", 120}}}, {"revision", seen}});
  CHECK(e.at("code") == -32009);
  CHECK(str(e.at("message")) == "case '" + case_id + "' is at revision " + std::to_string(next.at("revision").as_int64()) + ", not 3: reload it and submit again");
  CHECK(audited("rn1 case.submit " + case_id + " conflict"));
  CHECK(code(fd, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 40}, {"psychosis", false}}}}) == -32009);
  auto md = login("md1");
  CHECK(result(md, "case.close", {{"case_id", case_id}, {"reason", "duplicate"}}).at("status") == "closed");
  CHECK(code(fd, "case.close", {{"case_id", case_id}, {"reason", "again"}}) == -32009);  // closed by md1 already
}

TEST_CASE_METHOD(Fixture, "a plugin rule's refusal is -32010 with the reason; an unavailable plugin too") {
  auto fd = login("fd1");
  auto md = login("md1");
  std::string case_id = str(open_case(fd, "review_flow").at("case_id"));
  auto e = error(md, "case.submit", {{"case_id", case_id}, {"step", "dose"}, {"data", {{"mg", 150}}}});
  CHECK(e.at("code") == -32010);
  CHECK(e.at("data").at("reason") == "dose_limit: 150 mg is above the 100 mg limit");
  CHECK(e.at("message") == "refused: dose_limit: 150 mg is above the 100 mg limit");
  CHECK(audited("md1 case.submit " + case_id + " refused"));
  auto history = result(md, "case.history", {{"case_id", case_id}}).as_array();
  CHECK(history.back().at("type") == "step_refused");
  CHECK(history.back().at("data").at("by") == "user:md1");

  plugins.broken["fake_billing"] = "failed to load: missing symbol";
  auto u = error(fd, "case.open", {{"patient_id", new_patient(fd)}, {"workflow", "test_flow"}});
  CHECK(u.at("code") == -32010);
  CHECK(u.at("data").at("reason") ==
        "workflow 'test_flow' needs plugin 'fake_billing', which is unavailable: failed to load: missing symbol");
}

// ------------------------------------------------------------------------------------------ methods

TEST_CASE_METHOD(Fixture, "patients: created with a valid birth date and contact fields, read back, every read audited") {
  auto fd = login("fd1");
  auto id = str(result(fd, "patient.create", {{"given_name", "Ada"}, {"family_name", "Lovelace"}, {"birth_date", "1985-12-10"},
                                              {"phone", "+15550100"}, {"email", "ada@example.org"}})
                    .at("patient_id"));
  CHECK(std::regex_match(id, std::regex("p_[0-9a-f]{24}")));  // creation time, then random bits
  auto rn = login("rn1");
  CHECK(json::serialize(result(rn, "patient.get", {{"patient_id", id}})) ==
        R"({"patient_id":")" + id +
            R"(","given_name":"Ada","family_name":"Lovelace","birth_date":"1985-12-10","phone":"+15550100","email":"ada@example.org","created_at":"2026-03-02T09:00:00Z"})");
  CHECK(audited("fd1 patient.create " + id + " ok"));
  CHECK(audited("rn1 patient.get " + id + " ok"));
}

TEST_CASE_METHOD(Fixture, "case.open, case.get, case.submit and case.history speak the contract, reads audited") {
  auto fd = login("fd1");
  std::string patient = new_patient(fd);
  auto view = result(fd, "case.open", {{"patient_id", patient}, {"workflow", "test_flow"}}).as_object();
  std::string case_id = str(view.at("case_id"));
  CHECK(str(view.at("patient_id")) == patient);
  CHECK(view.at("workflow") == "test_flow");
  CHECK(view.at("version") == 1);
  CHECK(view.at("status") == "active");
  CHECK(view.at("stage") == "intake");
  REQUIRE(view.at("open_tasks").as_array().size() == 1);
  auto task = view.at("open_tasks").at(0);
  CHECK(task.at("step") == "referral");
  CHECK(task.at("roles") == json::array{"frontdesk"});
  CHECK(task.at("due") == "2026-03-04T09:00:00Z");
  CHECK(task.at("schema").at("type") == "object");
  CHECK(task.at("schema").at("properties").at("age").at("type") == "integer");

  auto rn = login("rn1");
  CHECK(json::serialize(result(rn, "case.get", {{"case_id", case_id}})) == json::serialize(view));
  auto history = result(rn, "case.history", {{"case_id", case_id}}).as_array();
  REQUIRE(history.size() == 3);
  CHECK(json::serialize(history[0]) == R"({"seq":1,"at":"2026-03-02T09:00:00Z","type":"case_opened","step":"","actor":"user:fd1","data":{"workflow":"test_flow","version":1,"patient_id":")" + patient + R"("}})");
  CHECK(history[2].at("data").at("due") == "2026-03-04T09:00:00Z");
  CHECK(audited("fd1 case.open " + case_id + " ok"));
  CHECK(audited("rn1 case.get " + case_id + " ok"));
  CHECK(audited("rn1 case.history " + case_id + " ok"));

  auto after = result(fd, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 40}, {"psychosis", false}}}});
  CHECK(after.at("data").at("referral") == json::object{{"age", 40}, {"psychosis", false}});
  CHECK(after.at("data").at("coverage").at("covered") == true);
  CHECK(after.at("open_tasks").at(0).at("step") == "session");
  CHECK(audited("fd1 case.submit " + case_id + " ok"));
  // case.get serves a kept view only for the state it was built from: the submit shows at once.
  CHECK(json::serialize(result(rn, "case.get", {{"case_id", case_id}})) == json::serialize(after));
}

TEST_CASE("a result serialized earlier goes into the answer as it is, alone and in batches") {
  auto kept = std::make_shared<const std::string>(R"({"kept":["as",1,"is"],"q":"a \"quoted\" word"})");
  AsyncDispatch dispatch = [&](const Request& request, Respond respond) {
    if (request.method == "kept") return respond(Result::serialized(kept), nullptr);
    if (request.method == "value") return respond(json::object{{"n", 2}}, nullptr);
    respond(nullptr, std::make_exception_ptr(RpcError(code::not_found, "no")));
  };
  auto frame = [&](const std::string& text) {
    std::optional<std::string> out;
    handle_frame_async(text, dispatch, {}, [&](std::optional<std::string> answer) { out = std::move(answer); });
    REQUIRE(out);
    return *out;
  };
  std::string one = frame(R"({"jsonrpc":"2.0","id":"x\"y","method":"kept"})");
  CHECK(one == R"({"jsonrpc":"2.0","result":)" + *kept + R"(,"id":"x\"y"})");
  CHECK(json::parse(one).at("result") == json::parse(*kept));

  auto batch = json::parse(frame(R"([{"jsonrpc":"2.0","id":1,"method":"kept"},{"jsonrpc":"2.0","method":"kept"},)"
                                 R"({"jsonrpc":"2.0","id":2,"method":"value"},{"jsonrpc":"2.0","id":3,"method":"other"}])"))
                   .as_array();
  REQUIRE(batch.size() == 3);
  CHECK(batch[0] == json::parse(R"({"jsonrpc":"2.0","result":)" + *kept + R"(,"id":1})"));
  CHECK(batch[1] == json::parse(R"({"jsonrpc":"2.0","result":{"n":2},"id":2})"));
  CHECK(batch[2].at("error").at("code") == -32004);
}

TEST_CASE("kept case views: one build per committed state object, the least recently read case makes room") {
  ViewCache views(2);
  std::map<std::string, int> builds;
  auto state = [](const std::string& id, std::int64_t revision) {
    auto s = std::make_shared<CaseState>();
    s->case_id = id;
    s->revision = revision;
    return std::shared_ptr<const CaseState>(s);
  };
  auto get = [&](const std::shared_ptr<const CaseState>& s) {
    return *views.get(s, [&] {
      ++builds[s->case_id];
      return s->case_id + "@" + std::to_string(s->revision);
    });
  };
  auto a1 = state("a", 1), b1 = state("b", 1), c1 = state("c", 1);
  CHECK(get(a1) == "a@1");
  CHECK(get(a1) == "a@1");
  CHECK(builds["a"] == 1);
  // A new state object for the same case (a commit) is built again, however alike it looks.
  auto a1_again = state("a", 1);
  CHECK(get(a1_again) == "a@1");
  CHECK(builds["a"] == 2);
  CHECK(get(state("a", 2)) == "a@2");
  CHECK(builds["a"] == 3);
  auto a2 = state("a", 3);
  get(a2);
  get(b1);
  get(a2);  // a is the most recently read
  get(c1);  // full: b makes room
  CHECK(views.size() == 2);
  get(a2);
  CHECK(builds["a"] == 4);
  get(b1);
  CHECK(builds["b"] == 2);
  // A build that throws holds nothing.
  auto d1 = state("d", 1);
  CHECK_THROWS(views.get(d1, []() -> std::string { throw std::runtime_error("workflow gone"); }));
  CHECK(get(d1) == "d@1");
}

TEST_CASE_METHOD(Fixture, "case.list filters and pages with a cursor") {
  auto fd = login("fd1");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(str(open_case(fd).at("case_id")));
  ids.push_back(str(open_case(fd, "review_flow").at("case_id")));
  result(fd, "case.close", {{"case_id", ids[3]}, {"reason", "test"}});
  std::vector<std::string> flow_ids(ids.begin(), ids.begin() + 3);
  std::sort(flow_ids.begin(), flow_ids.end());

  auto page1 = result(fd, "case.list", {{"workflow", "test_flow"}, {"limit", 2}}).as_object();
  REQUIRE(page1.at("cases").as_array().size() == 2);
  CHECK(str(page1.at("cases").at(0).at("case_id")) == flow_ids[0]);
  CHECK(str(page1.at("cases").at(1).at("case_id")) == flow_ids[1]);
  CHECK(str(page1.at("next")) == flow_ids[1]);
  auto first = page1.at("cases").at(0).as_object();
  CHECK(first.at("status") == "active");
  CHECK(first.at("stage") == "intake");
  CHECK(first.at("open_steps") == json::array{"referral"});
  CHECK(first.at("opened_at") == "2026-03-02T09:00:00Z");
  auto page2 = result(fd, "case.list", {{"workflow", "test_flow"}, {"limit", 2}, {"after", page1.at("next")}}).as_object();
  REQUIRE(page2.at("cases").as_array().size() == 1);
  CHECK(str(page2.at("cases").at(0).at("case_id")) == flow_ids[2]);
  CHECK_FALSE(page2.contains("next"));

  auto closed = result(fd, "case.list", {{"status", "closed"}}).as_object();
  REQUIRE(closed.at("cases").as_array().size() == 1);
  CHECK(str(closed.at("cases").at(0).at("case_id")) == ids[3]);
  CHECK(result(fd, "case.list").at("cases").as_array().size() == 4);
  CHECK(result(fd, "case.list", {{"stage", "series"}}).at("cases").as_array().empty());
}

TEST_CASE_METHOD(Fixture, "workflow.list, workflow.get, plugin.list, clock.now") {
  auto admin = login("admin");
  CHECK(json::serialize(result(admin, "workflow.list")) ==
        R"([{"id":"review_flow","version":1,"title":"Reviewed dose"},{"id":"test_flow","version":1,"title":"Test flow"}])");
  auto wf = result(admin, "workflow.get", {{"id", "test_flow"}}).as_object();
  CHECK(wf.at("id") == "test_flow");
  CHECK(wf.at("version") == 1);
  REQUIRE(wf.at("stages").as_array().size() == 3);
  CHECK(json::serialize(wf.at("stages").at(1).at("repeat")) ==
        R"({"times":3,"min_interval":"2d","max_interval":"5d","until":"session.phq9 is present and session.phq9 < 5"})");
  auto steps = wf.at("steps").as_array();
  REQUIRE(steps.size() == 6);
  CHECK(json::serialize(steps[0].at("branches")) ==
        R"([{"when":"age < 18","outcome":"declined","reason":"Under 18"},{"when":"psychosis","outcome":"declined","reason":"Active psychosis"}])");
  CHECK(steps[0].at("next") == json::object{{"goto", "coverage"}});
  CHECK(steps[0].at("due") == "2d");
  CHECK(steps[1].at("kind") == "automatic");
  CHECK(steps[1].at("plugin") == "fake_billing");
  CHECK(steps[4].at("delay") == "1d");
  CHECK(steps[4].at("after") == "discharge");
  CHECK(steps[0].at("schema").at("required") == json::array{"age", "psychosis"});

  auto plugin_list = result(admin, "plugin.list").as_array();
  REQUIRE(plugin_list.size() == 1);
  CHECK(plugin_list[0].at("name") == "missing_plugin");
  CHECK(plugin_list[0].at("status") == "failed");
  CHECK(plugin_list[0].at("error").is_string());
  CHECK(json::serialize(result(admin, "clock.now")) == R"({"now":"2026-03-02T09:00:00Z","virtual":true})");
}

TEST_CASE_METHOD(Fixture, "billing.summary lists the case's charges and totals them in cents") {
  auto fd = login("fd1");
  std::string case_id = str(open_case(fd).at("case_id"));
  auto bill = login("bill1");
  auto before = result(bill, "billing.summary", {{"case_id", case_id}});
  CHECK(json::serialize(before) == R"({"case_id":")" + case_id + R"(","charges":[],"by_code":[],"total_cents":0})");
  result(fd, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 40}, {"psychosis", false}}}});
  auto summary = result(bill, "billing.summary", {{"case_id", case_id}}).as_object();
  CHECK(summary.at("total_cents") == 46234);
  auto charges = summary.at("charges").as_array();
  REQUIRE(charges.size() == 2);
  CHECK(charges[0].at("code") == "96365");
  CHECK(charges[0].at("amount_cents") == 45000);
  CHECK(charges[0].at("units") == 1);
  CHECK(charges[0].at("modifiers") == json::array{"KX"});
  CHECK(charges[0].at("step") == "coverage");
  CHECK(charges[0].at("description") == "IV infusion, first hour");
  CHECK(charges[1].at("code") == "J0013");
  CHECK(charges[1].at("units") == 2);
  CHECK(json::serialize(summary.at("by_code")) ==
        R"([{"code":"96365","units":1,"amount_cents":45000},{"code":"J0013","units":2,"amount_cents":1234}])");
  CHECK(audited("bill1 billing.summary " + case_id + " ok"));
  CHECK(code(bill, "billing.summary", {{"case_id", "c_missing"}}) == -32004);
}

TEST_CASE_METHOD(Fixture, "messages.list shows each outbox message with its delivery state; bodies only on request") {
  auto fd = login("fd1");
  auto md = login("md1");
  std::string case_id = str(open_case(fd, "review_flow").at("case_id"));
  CHECK(result(fd, "messages.list", {{"case_id", case_id}}).as_array().empty());
  result(md, "case.submit", {{"case_id", case_id}, {"step", "dose"}, {"data", {{"mg", 80}}}});
  auto rows = store.case_messages(case_id);
  REQUIRE(rows.size() == 2);
  // The dispatcher delivered one and gave up on the other.
  rows[0].status = "delivered";
  rows[0].attempts = 1;
  rows[0].delivered_at = kStart + 1000;
  store.update_message(rows[0]);
  rows[1].status = "failed";
  rows[1].attempts = 8;
  rows[1].last_error = "number unreachable";
  store.update_message(rows[1]);

  auto list = result(fd, "messages.list", {{"case_id", case_id}}).as_array();
  REQUIRE(list.size() == 2);
  CHECK(json::serialize(list[0]) == R"({"message_id":")" + rows[0].id +
                                        R"(","template":"confirm","via":"fake_sms","to":"patient","address":"sms:+15550100","subject":"Dose recorded","status":"delivered","attempts":1,"next_attempt_at":"2026-03-02T09:00:00Z","created_at":"2026-03-02T09:00:00Z","delivered_at":"2026-03-02T09:00:01Z"})");
  CHECK(list[1].at("status") == "failed");
  CHECK(list[1].at("attempts") == 8);
  CHECK(list[1].at("last_error") == "number unreachable");
  CHECK(list[1].at("to") == "support_person");
  auto with_body = result(fd, "messages.list", {{"case_id", case_id}, {"include_body", true}}).as_array();
  CHECK(str(with_body[0].at("body")) == "Case " + case_id + ": dose 80 mg.");
  CHECK(audited("fd1 messages.list " + case_id + " ok"));
}

TEST_CASE_METHOD(Fixture, "clock.advance fires due timers before answering, for admins on the virtual clock only") {
  auto fd = login("fd1");
  std::string case_id = str(open_case(fd).at("case_id"));
  auto admin = login("admin");
  CHECK(code(fd, "clock.advance", {{"seconds", 60}}) == -32003);
  CHECK(fields_of(error(admin, "clock.advance", {{"seconds", 0}})) ==
        std::vector<std::string>{"seconds: must be between 1 and 316224000"});
  auto advanced = result(admin, "clock.advance", {{"seconds", 3 * 24 * 3600}});
  CHECK(json::serialize(advanced) == R"({"now":"2026-03-05T09:00:00Z","fired":1})");
  auto history = result(fd, "case.history", {{"case_id", case_id}}).as_array();
  CHECK(history.back().at("type") == "step_overdue");
  CHECK(history.back().at("at") == "2026-03-04T09:00:00Z");
  CHECK(result(fd, "clock.now").at("now") == "2026-03-05T09:00:00Z");
  CHECK(audited("admin clock.advance 259200s ok"));
}

TEST_CASE("clock.advance is refused on the real clock") {
  Fixture f(false);
  auto admin = f.login("admin");
  auto e = f.error(admin, "clock.advance", {{"seconds", 60}});
  CHECK(e.at("code") == -32010);
  CHECK(e.at("data").at("reason") == "clock.advance needs the virtual clock; this server runs on the real clock");
  CHECK(f.result(admin, "clock.now").at("virtual") == false);
}

// --------------------------------------------------------------------------------------- live events

TEST_CASE_METHOD(Fixture, "a subscriber gets every event of matching cases in commit order, until it unsubscribes") {
  auto watcher = login("rn1");
  auto one_case = login("rn1");
  auto fd = login("fd1");
  std::string all = str(result(watcher, "subscribe").at("subscription"));
  std::string patient = new_patient(fd);
  auto view = result(fd, "case.open", {{"patient_id", patient}, {"workflow", "test_flow"}});
  std::string case_id = str(view.at("case_id"));
  std::string mine = str(result(one_case, "subscribe", {{"case_id", case_id}}).at("subscription"));
  CHECK(mine != all);
  result(fd, "case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 40}, {"psychosis", false}}}});
  std::string other = str(open_case(fd).at("case_id"));  // another case: only the catch-all sees it

  auto events = watcher->take();
  std::vector<std::string> seen;
  std::int64_t expect_seq = 1;
  for (const auto& n : events) {
    CHECK(n.at("jsonrpc") == "2.0");
    CHECK(n.at("method") == "event");
    CHECK_FALSE(n.contains("id"));
    CHECK(str(n.at("params").at("subscription")) == all);
    const auto& e = n.at("params").at("event");
    if (str(e.at("case_id")) != case_id) {
      seen.push_back("other:" + str(e.at("type")));
      continue;
    }
    CHECK(e.at("seq") == expect_seq++);
    seen.push_back(str(e.at("type")) + (e.at("step") == "" ? "" : ":" + str(e.at("step"))));
  }
  CHECK(seen == std::vector<std::string>{"case_opened", "stage_entered", "step_opened:referral", "step_completed:referral",
                                         "step_opened:coverage", "step_completed:coverage", "charge_posted:coverage",
                                         "charge_posted:coverage", "stage_entered", "step_opened:session", "other:case_opened",
                                         "other:stage_entered", "other:step_opened"});
  auto first = events.at(0).at("params").at("event");
  CHECK(json::serialize(first) == R"({"seq":1,"at":"2026-03-02T09:00:00Z","type":"case_opened","step":"","actor":"user:fd1","data":{"workflow":"test_flow","version":1,"patient_id":")" + patient + R"("},"case_id":")" + case_id + "\"}");

  auto scoped = one_case->take();
  REQUIRE(scoped.size() == 7);  // the submit's events only: subscribed after the open, never the other case
  CHECK(scoped.front().at("params").at("event").at("type") == "step_completed");
  CHECK(str(scoped.front().at("params").at("subscription")) == mine);
  CHECK(audited("rn1 subscribe * ok"));
  CHECK(audited("rn1 subscribe " + case_id + " ok"));

  CHECK(json::serialize(result(watcher, "unsubscribe", {{"subscription", all}})) == R"({"subscription":")" + all + R"(","unsubscribed":true})");
  CHECK(code(watcher, "unsubscribe", {{"subscription", all}}) == -32004);
  CHECK(code(watcher, "unsubscribe", {{"subscription", mine}}) == -32004);  // not this connection's
  result(fd, "case.close", {{"case_id", other}, {"reason", "test"}});
  CHECK(watcher->take().empty());
  CHECK(api->subscription_count() == 1);
  api->on_close(*one_case);
  CHECK(api->subscription_count() == 0);
  CHECK(code(fd, "subscribe", {{"case_id", "c_missing"}}) == -32004);
}

TEST_CASE_METHOD(Fixture, "the submitter's own subscription sees the events before the answer to its submit") {
  auto fd = login("fd1");
  std::string case_id = str(open_case(fd).at("case_id"));
  result(fd, "subscribe", {{"case_id", case_id}});
  auto answer = send(fd, frame("case.close", {{"case_id", case_id}, {"reason", "moved"}}));
  auto pushed = fd->take();
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0].at("params").at("event").at("type") == "case_ended");
  CHECK(pushed[0].at("params").at("event").at("data") == json::object{{"outcome", "closed"}, {"reason", "moved"}});
  CHECK(json::parse(*answer).at("result").at("status") == "closed");
}

// ------------------------------------------------------------------------------------------ tokens

TEST_CASE_METHOD(Fixture, "tokens: created by an admin, shown once, revoked with immediate effect on live connections") {
  auto admin = login("admin");
  auto created = result(admin, "auth.token.create", {{"user", "rn2"}, {"roles", json::array{"nurse", "prescriber"}}}).as_object();
  std::string token = str(created.at("token"));
  std::string token_id = str(created.at("token_id"));
  CHECK(token.size() == 67);
  CHECK(token.starts_with("cf_"));
  CHECK(token_id.starts_with("t_"));
  CHECK(created.at("user") == "rn2");
  CHECK(fields_of(error(admin, "auth.token.create", {{"user", "Bad User"}, {"roles", json::array{"nurse", "janitor"}}})) ==
        std::vector<std::string>{"roles: 'janitor' is not a configured role"});
  CHECK(fields_of(error(admin, "auth.token.create", {{"user", "Bad User"}, {"roles", json::array{"nurse"}}})) ==
        std::vector<std::string>{"user: a user name is 1 to 64 of a-z, 0-9, '.', '_', '-'"});
  // Only the hash is stored.
  for (const auto& t : auth.list_tokens()) CHECK(t.token_id != token);
  {
    std::ifstream in(db, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes.find(token.substr(3)) == std::string::npos);
  }

  auto c = connect();
  CHECK(json::serialize(result(c, "auth.login", {{"token", token}})) == R"({"user":"rn2","roles":["nurse","prescriber"]})");
  CHECK(result(c, "case.list").at("cases").as_array().empty());
  result(c, "subscribe");
  CHECK(api->subscription_count() == 1);

  CHECK(json::serialize(result(admin, "auth.token.revoke", {{"token_id", token_id}})) ==
        R"({"token_id":")" + token_id + R"(","revoked":true})");
  CHECK(api->subscription_count() == 0);  // its subscriptions end at once
  auto e = error(c, "case.list");
  CHECK(e.at("code") == -32001);
  CHECK(e.at("message") == "not authenticated: the token was revoked");
  CHECK_FALSE(api->authenticated(*c));
  CHECK(code(c, "case.list") == -32001);
  CHECK(code(c, "auth.login", {{"token", token}}) == -32001);
  CHECK(code(admin, "auth.token.revoke", {{"token_id", token_id}}) == -32004);  // once only
  CHECK(audited("admin auth.token.create " + token_id + " ok"));
  CHECK(audited("admin auth.token.revoke " + token_id + " ok"));
  CHECK(audited("rn2 case.list - not_authenticated"));
}

TEST_CASE_METHOD(Fixture, "a token revoked by another process (the CLI) stops working at the next request") {
  auto c = login("rn1");
  CHECK(result(c, "case.list").at("cases").as_array().empty());
  {
    SqliteAuthStore cli({db, "normal"}, clock);
    CHECK(cli.revoke_token(tokens["rn1"].token_id));
    std::this_thread::sleep_for(2 * SqliteAuthStore::kExternalRevocationProbe);  // as `clinicflow token revoke` does
  }
  CHECK(code(c, "case.list") == -32001);
}

TEST_CASE("on first start the admin token is created once and readable only by its owner") {
  TempDir dir;
  auto db = dir.path() / "data" / "clinicflow.db";
  store::SqliteCaseStore store({db, "normal"});
  VirtualClock clock(kStart);
  SqliteAuthStore auth({db, "normal"}, clock);
  auto path = auth.ensure_admin_token(dir.path() / "data");
  REQUIRE(path);
  CHECK(*path == dir.path() / "data" / "admin.token");
  struct stat st {};
  REQUIRE(::stat(path->c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::ifstream in(*path);
  std::string token;
  std::getline(in, token);
  auto identity = auth.verify(token);
  REQUIRE(identity);
  CHECK(identity->user == "admin");
  CHECK(identity->roles == std::vector<std::string>{"admin"});
  CHECK_FALSE(auth.ensure_admin_token(dir.path() / "data"));  // users exist now: nothing is written
  std::ifstream again(*path);
  std::string same;
  std::getline(again, same);
  CHECK(same == token);
  CHECK(auth.list_tokens().size() == 1);
  CHECK_FALSE(auth.verify("cf_" + std::string(64, 'a')));
  CHECK_FALSE(auth.verify(token.substr(0, 66)));
}

namespace {

// The audit rows as the database holds them, read past the auth store (read_audit flushes).
std::vector<std::string> stored_audit(const std::filesystem::path& db) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "SELECT method || ' ' || target FROM audit ORDER BY id", -1, &s, nullptr) == SQLITE_OK);
  std::vector<std::string> out;
  while (sqlite3_step(s) == SQLITE_ROW) out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  sqlite3_finalize(s);
  sqlite3_close(raw);
  return out;
}

void exec_raw(const std::filesystem::path& db, const char* sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  CHECK(sqlite3_exec(raw, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
}

// A write opening case `id` (one event), as the engine hands it to the store.
store::CaseWrite opening(const std::string& id) {
  store::CaseWrite w;
  w.events.push_back({1, kStart, "case_opened", "", "user:fd1", {}});
  w.projection = {id, "p_1", "test_flow", 1, "active", "intake", 1, kStart, kStart, json::object{}};
  return w;
}

AuditEntry row(const std::string& method, const std::string& target) { return {kStart, "u", "t", method, target, "ok"}; }

// A case store with an auth store attached to it, as the server has them. audit_interval: how
// long the auth store's own writer leaves queued rows to the group commits.
struct CarriedAudit {
  explicit CarriedAudit(std::chrono::milliseconds audit_interval)
      : auth(std::make_unique<SqliteAuthStore>(store::SqliteOptions{db, "normal"}, clock, audit_interval)) {
    auth->carry_audit_with(store);
  }
  TempDir dir;
  std::filesystem::path db = dir.path() / "a.db";
  store::SqliteCaseStore store{{db, "normal"}};
  VirtualClock clock{kStart};
  std::unique_ptr<SqliteAuthStore> auth;
};

}  // namespace

TEST_CASE("attached to the case store, each group commit writes the audit rows queued so far, in order") {
  CarriedAudit a(std::chrono::hours(1));  // the background writer leaves every row to the group commits
  a.auth->audit(row("case.get", "c_0"));
  a.auth->audit(row("patient.get", "p_0"));
  CHECK(stored_audit(a.db).empty());
  std::vector<store::CaseWrite> group{opening("c_1")};
  CHECK(a.store.write_group(group) == std::vector<std::string>{""});
  CHECK(stored_audit(a.db) == std::vector<std::string>{"case.get c_0", "patient.get p_0"});
  // A group whose only write is left out (the case exists) still commits, and carries the rows.
  a.auth->audit(row("case.open", "c_1"));
  CHECK(a.store.write_group(group).at(0).find("already exists") != std::string::npos);
  CHECK(stored_audit(a.db) == std::vector<std::string>{"case.get c_0", "patient.get p_0", "case.open c_1"});
  a.auth->audit(row("case.get", "c_1"));
  // Destroyed: detached first, and its last row written by its own writer on the way out.
  a.auth.reset();
  CHECK(stored_audit(a.db).back() == "case.get c_1");
  std::vector<store::CaseWrite> later{opening("c_2")};
  CHECK(a.store.write_group(later) == std::vector<std::string>{""});
  CHECK(stored_audit(a.db).size() == 4);
}

TEST_CASE("audit rows a group cannot write cost its case writes nothing; they are kept, in order, for the audit writer") {
  CarriedAudit a(std::chrono::hours(1));
  exec_raw(a.db, "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit WHEN NEW.method = 'refused.here' "
                 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  a.auth->audit(row("case.get", "c_0"));
  a.auth->audit(row("refused.here", "c_0"));
  std::vector<store::CaseWrite> group{opening("c_1")};
  CHECK(a.store.write_group(group) == std::vector<std::string>{""});
  CHECK(a.store.read_case("c_1"));
  CHECK(stored_audit(a.db).empty());  // neither row: the savepoint took back both
  a.auth->audit(row("case.get", "c_2"));
  CHECK_THROWS_AS(a.auth->flush_audit(), store::StoreError);  // the audit writer is refused too: kept again
  exec_raw(a.db, "DROP TRIGGER refuse_audit");
  // Until the audit writer has written them, groups leave the queue alone (no error per group).
  std::vector<store::CaseWrite> next{opening("c_2")};
  CHECK(a.store.write_group(next) == std::vector<std::string>{""});
  CHECK(stored_audit(a.db).empty());
  a.auth->flush_audit();
  CHECK(stored_audit(a.db) == std::vector<std::string>{"case.get c_0", "refused.here c_0", "case.get c_2"});
  // Carrying again.
  a.auth->audit(row("case.get", "c_3"));
  std::vector<store::CaseWrite> last{opening("c_3")};
  CHECK(a.store.write_group(last) == std::vector<std::string>{""});
  CHECK(stored_audit(a.db).size() == 4);
}

TEST_CASE("with no group commit to take them, the background writer writes queued audit rows itself") {
  CarriedAudit a(std::chrono::milliseconds(5));
  a.auth->audit(row("case.get", "c_0"));
  auto rows = stored_audit(a.db);
  for (int i = 0; i < 500 && rows.empty(); ++i) {  // an upper bound for a slow machine, not a timing check
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rows = stored_audit(a.db);
  }
  CHECK(rows == std::vector<std::string>{"case.get c_0"});
}

TEST_CASE("the audit log is append-only") {
  TempDir dir;
  auto db = dir.path() / "a.db";
  store::SqliteCaseStore store({db, "normal"});
  VirtualClock clock(kStart);
  SqliteAuthStore auth({db, "normal"}, clock);
  auth.audit({kStart, "u", "t", "case.get", "c_1", "ok"});
  auto rows = auth.read_audit();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].method == "case.get");
  CHECK(rows[0].at == kStart);
  CHECK(store::SqliteCaseStore::latest_schema_version() == 3);
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  CHECK(sqlite3_exec(raw, "UPDATE audit SET outcome = 'forged'", nullptr, nullptr, nullptr) != SQLITE_OK);
  CHECK(sqlite3_exec(raw, "DELETE FROM audit", nullptr, nullptr, nullptr) != SQLITE_OK);
  sqlite3_close(raw);
  CHECK(auth.read_audit().size() == 1);
}
