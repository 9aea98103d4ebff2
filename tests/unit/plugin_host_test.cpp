// The plugin host with real plugin libraries (tests/plugins): every way a plugin can fail to load,
// each reported at its config table and none taking the others down; calls with their answers
// checked, exceptions and deadlines; and the engine driving real plugins end to end.
#include "support/json_object.hpp"
#include "support/temp_dir.hpp"
#include "engine/case_view.hpp"
#include "engine/engine.hpp"
#include "plugins/plugin_host.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/form.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>
#include <unistd.h>

using namespace clinicflow;
using namespace clinicflow::engine;
using plugins::PluginHost;
namespace json = boost::json;

namespace {

const std::string kPluginDir = CLINICFLOW_TEST_PLUGIN_DIR;
const std::string kConfigFile = "clinicflow.toml";
const TimePoint kStart = *parse_rfc3339("2026-03-02T09:00:00Z");
const Actor kNurse{"user:rn1", {"nurse"}};
const Actor kFrontdesk{"user:fd1", {"frontdesk"}};

std::string so(const std::string& library) { return (std::filesystem::path(kPluginDir) / (library + ".so")).string(); }

config::PluginConfig plugin(std::string name, json::object settings, int line, int column = 1) {
  return config::PluginConfig{std::move(name), std::move(settings), line, column};
}

std::unique_ptr<PluginHost> make_host(Duration timeout = 10'000) {
  return std::make_unique<PluginHost>(plugins::HostOptions{kPluginDir, timeout});
}

const plugins::PluginInfo* info_of(const std::vector<plugins::PluginInfo>& infos, std::string_view name) {
  for (const auto& info : infos)
    if (info.name == name) return &info;
  return nullptr;
}

// The one error about plugin `name` (each message starts with "plugin '<name>': ").
const SourceError* error_of(const SourceErrors& errors, std::string_view name) {
  const SourceError* found = nullptr;
  std::string prefix = "plugin '" + std::string(name) + "': ";
  for (const auto& e : errors)
    if (e.message.rfind(prefix, 0) == 0) {
      CHECK(found == nullptr);  // one error per plugin
      found = &e;
    }
  return found;
}

// Loads `configs` into `host` and checks that `name` failed with `expected` in its message, located
// at its table, and that `list()` and `unavailable()` say the same.
void check_failed(PluginHost& host, const SourceErrors& errors, const config::PluginConfig& config, const std::string& expected) {
  INFO("plugin " << config.name << ", expecting: " << expected);
  const SourceError* error = error_of(errors, config.name);
  REQUIRE(error);
  INFO("error: " << error->to_string());
  CHECK(error->file == kConfigFile);
  CHECK(error->line == config.line);
  CHECK(error->column == config.column);
  CHECK_THAT(error->message, Catch::Contains(expected));
  auto infos = host.list();
  const plugins::PluginInfo* info = info_of(infos, config.name);
  REQUIRE(info);
  CHECK(info->status == "failed");
  CHECK_THAT(info->error, Catch::Contains(expected));
  CHECK("plugin '" + config.name + "': " + info->error == error->message);
  auto why = host.unavailable(config.name);
  REQUIRE(why);
  CHECK(*why == "it failed to load: " + info->error);
  CHECK_FALSE(host.kind_of(config.name));
}

void check_loaded(PluginHost& host, const std::string& name, const std::string& kind) {
  INFO("plugin " << name);
  auto infos = host.list();
  const plugins::PluginInfo* info = info_of(infos, name);
  REQUIRE(info);
  CHECK(info->status == "loaded");
  CHECK(info->error.empty());
  CHECK(info->kind == kind);
  CHECK(info->abi == "1.0");
  CHECK_FALSE(host.unavailable(name));
  CHECK(host.kind_of(name) == kind);
}

// A call as the engine makes it; the objects it refers to live here.
struct Call {
  json::object settings;
  json::object case_data;
  std::optional<json::object> submitted;
  std::string plugin, step = "session", case_id = "c_0000000000000001";

  PluginCall get() const {
    return PluginCall{plugin, case_id, step, settings, case_data, submitted ? &*submitted : nullptr, 0, kStart};
  }
};

// The reason of a failed decision. Anything else (an exception, another status) is spelt out so
// that the comparison fails visibly: a plugin's failure must come back as a decision.
std::string failure(PluginHost& host, const Call& call) {
  try {
    auto decision = host.call(call.get());
    if (decision.status == PluginDecision::Status::failed) return decision.reason;
    return "not failed but status " + std::to_string(static_cast<int>(decision.status)) + ": " + decision.reason;
  } catch (const std::exception& e) {
    return std::string("threw instead of failing: ") + e.what();
  }
}

// Calls the sleeper with no sleep until it answers again: the call that ran past its deadline has
// then returned, so nothing is left running inside the plugin. Bounded: gives up after 60 s.
bool wait_until_answering(PluginHost& host, const std::string& name) {
  Call quick{{{"sleep_ms", 0}}, {}, std::nullopt, name};
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    try {
      auto decision = host.call(quick.get());
      if (decision.status == PluginDecision::Status::ok) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

// ----------------------------------------------------------------------------------- loading

TEST_CASE("every broken plugin is reported at its config table, and the good ones load anyway") {
  std::vector<config::PluginConfig> configs{
      plugin("test_route", {{"max_systolic", 160}}, 3),
      plugin("missing_plugin", {}, 7),
      plugin("not_a_library", {}, 9, 2),
      plugin("bad_no_call", {}, 11),
      plugin("bad_abi_major", {}, 13),
      plugin("test_billing", {{"amount_cents", 4200}}, 15),
      plugin("bad_abi_minor", {}, 17),
      plugin("bad_manifest", {}, 19),
      plugin("bad_name", {}, 21),
      plugin("bad_kind", {}, 23),
      plugin("bad_create", {}, 25),
      plugin("route_copy", {{"library", "test_route"}, {"max_systolic", 150}}, 27),
      plugin("bad_library_key", {{"library", 5}}, 29),
      plugin("bad_ok", {}, 31),
      plugin("test_messenger", {{"log_path", "/dev/null"}}, 33),
  };
  auto host = make_host();
  SourceErrors errors = host->load(configs, kConfigFile);
  for (const auto& e : errors) UNSCOPED_INFO(e.to_string());
  CHECK(errors.size() == 11);

  auto by_name = [&](const std::string& name) -> const config::PluginConfig& {
    for (const auto& c : configs)
      if (c.name == name) return c;
    FAIL("no config " << name);
    return configs.front();
  };
  check_failed(*host, errors, by_name("missing_plugin"), "file " + so("missing_plugin") + " not found");
  check_failed(*host, errors, by_name("not_a_library"), so("not_a_library") + " is not a loadable shared library: ");
  CHECK_THAT(error_of(errors, "not_a_library")->message,  // the system loader's own reason is passed on
             Catch::Contains("not_a_library.so: file too short") || Catch::Contains("invalid ELF header"));
  check_failed(*host, errors, by_name("bad_no_call"),
               so("bad_no_call") + " is not a Clinicflow plugin: it does not export 'clinicflow_plugin_call'");
  check_failed(*host, errors, by_name("bad_abi_major"),
               so("bad_abi_major") + " was built for plugin ABI 2.0; this server supports 1.0 (same major version, minor version up to 0)");
  check_failed(*host, errors, by_name("bad_abi_minor"), so("bad_abi_minor") + " was built for plugin ABI 1.1; this server supports 1.0");
  check_failed(*host, errors, by_name("bad_manifest"), so("bad_manifest") + ": the manifest is not a JSON object");
  check_failed(*host, errors, by_name("bad_name"),
               so("bad_name") + " is the plugin 'someone_else', not 'bad_name': name the table [plugins.someone_else]");
  check_failed(*host, errors, by_name("bad_kind"), so("bad_kind") + ": unknown plugin kind 'scheduler' (route, billing or messaging)");
  check_failed(*host, errors, by_name("bad_create"),
               "could not be created with its settings: licence file /etc/bad_create.lic is missing");
  check_failed(*host, errors, by_name("route_copy"),
               "loads " + so("test_route") + ", which plugin 'test_route' already loads (duplicate)");
  check_failed(*host, errors, by_name("bad_library_key"), "'library' must be the plugin's file name without .so");

  // What could be read before the failure is kept for `plugins.list`.
  auto infos = host->list();
  REQUIRE(infos.size() == configs.size());
  for (std::size_t i = 0; i < configs.size(); ++i) CHECK(infos[i].name == configs[i].name);  // in config order
  CHECK(info_of(infos, "bad_abi_minor")->abi == "1.1");
  CHECK(info_of(infos, "bad_kind")->kind == "scheduler");
  CHECK(info_of(infos, "bad_create")->kind == "route");
  CHECK(info_of(infos, "missing_plugin")->file == so("missing_plugin"));

  // The good ones, before and after the broken ones, are all there and answer calls.
  check_loaded(*host, "test_route", "route");
  check_loaded(*host, "test_billing", "billing");
  check_loaded(*host, "test_messenger", "messaging");
  check_loaded(*host, "bad_ok", "route");  // the broken plugins' source with no flaw loads
  CHECK(info_of(infos, "test_route")->version == "1.0.0");
  CHECK(info_of(infos, "test_route")->description == "Test route: vitals fields and a blood pressure rule");
  CHECK(info_of(infos, "test_route")->file == so("test_route"));
  Call review{{}, {}, json::object{{"systolic", 120}, {"diastolic", 80}}, "test_route"};
  CHECK(host->call(review.get()).status == PluginDecision::Status::ok);
  Call c_abi{{}, {}, json::object{}, "bad_ok"};
  auto decision = host->call(c_abi.get());
  CHECK(decision.status == PluginDecision::Status::ok);
  CHECK(json::serialize(decision.data) == R"({"from":"bad_ok"})");

  CHECK(host->unavailable("never_configured") == "it is not configured");
}

TEST_CASE("settings are checked against the manifest: names, types, required ones") {
  auto host = make_host();
  SECTION("an unknown setting names the settings there are") {
    std::vector<config::PluginConfig> configs{plugin("test_billing", {{"amount_cent", 5}}, 4, 1),
                                              plugin("test_route", {{"max_systolic", 160}}, 8)};
    auto errors = host->load(configs, kConfigFile);
    CHECK(errors.size() == 1);
    check_failed(*host, errors, configs[0], "unknown setting 'amount_cent' (settings: amount_cents, malformed)");
    check_loaded(*host, "test_route", "route");
  }
  SECTION("a plugin without settings says so") {
    std::vector<config::PluginConfig> configs{plugin("test_thrower", {{"verbose", true}}, 2, 3)};
    auto errors = host->load(configs, kConfigFile);
    check_failed(*host, errors, configs[0], "unknown setting 'verbose' (settings: none)");
  }
  SECTION("an ill-typed setting says what it must be and what it is") {
    std::vector<config::PluginConfig> configs{plugin("test_billing", {{"amount_cents", "lots"}}, 6, 1),
                                              plugin("test_route", {{"max_systolic", 160.5}}, 10, 1),
                                              plugin("test_messenger", {{"log_path", "/dev/null"}, {"permanent_failure", 1}}, 14, 1)};
    auto errors = host->load(configs, kConfigFile);
    CHECK(errors.size() == 3);
    check_failed(*host, errors, configs[0], "setting 'amount_cents' must be a whole number, not a string");
    check_failed(*host, errors, configs[1], "setting 'max_systolic' must be a whole number, not a number");
    check_failed(*host, errors, configs[2], "setting 'permanent_failure' must be true or false, not a whole number");
  }
  SECTION("a required setting that is missing is named with its description") {
    std::vector<config::PluginConfig> configs{plugin("test_route", {}, 12, 1), plugin("test_billing", {}, 20)};
    auto errors = host->load(configs, kConfigFile);
    CHECK(errors.size() == 1);
    check_failed(*host, errors, configs[0],
                 "setting 'max_systolic' is required (Highest systolic pressure (mmHg) at which a session may go ahead)");
    check_loaded(*host, "test_billing", "billing");  // every setting has a default
  }
  SECTION("every settings problem of one plugin is reported at once") {
    std::vector<config::PluginConfig> configs{plugin("test_messenger", {{"fail_first", "two"}, {"colour", "red"}}, 30, 1)};
    auto errors = host->load(configs, kConfigFile);
    REQUIRE(errors.size() == 1);
    check_failed(*host, errors, configs[0], "setting 'log_path' is required (File that receives one line per attempt)");
    CHECK_THAT(errors[0].message, Catch::Contains("setting 'fail_first' must be a whole number, not a string"));
    CHECK_THAT(errors[0].message,
               Catch::Contains("unknown setting 'colour' (settings: fail_first, log_path, permanent_failure)"));
  }
  SECTION("the library key picks the file and is not passed on as a setting") {
    std::vector<config::PluginConfig> configs{plugin("test_route", {{"library", "test_route"}, {"max_systolic", 140}}, 2)};
    auto errors = host->load(configs, kConfigFile);
    CHECK(errors.empty());
    check_loaded(*host, "test_route", "route");
    Call review{{}, {}, json::object{{"systolic", 150}, {"diastolic", 80}}, "test_route"};
    auto decision = host->call(review.get());
    CHECK(decision.status == PluginDecision::Status::refused);
    CHECK(decision.reason == "systolic 150 mmHg is above the limit of 140 mmHg");  // the setting reached the plugin
  }
  SECTION("a library key cannot leave the plugins directory") {
    std::vector<config::PluginConfig> configs{plugin("test_route", {{"library", "../plugins/test_route"}, {"max_systolic", 140}}, 7, 1),
                                              plugin("test_billing", {{"library", "/tmp/test_billing"}}, 9, 1)};
    auto errors = host->load(configs, kConfigFile);
    CHECK(errors.size() == 2);
    check_failed(*host, errors, configs[0], "'library' must be a file name in the plugins directory, without '/' or '..'");
    check_failed(*host, errors, configs[1], "'library' must be a file name in the plugins directory, without '/' or '..'");
  }
  SECTION("a library key naming a missing file is reported with that file") {
    std::vector<config::PluginConfig> configs{plugin("test_route", {{"library", "test_route_v2"}, {"max_systolic", 140}}, 5)};
    auto errors = host->load(configs, kConfigFile);
    check_failed(*host, errors, configs[0], "file " + so("test_route_v2") + " not found");
  }
}

// ----------------------------------------------------------------------------------- calls

TEST_CASE("fields, reviews and runs go through the C ABI and come back checked") {
  auto host = make_host();
  auto errors = host->load({plugin("test_route", {{"max_systolic", 160}}, 1), plugin("test_billing", {{"amount_cents", 4200}}, 2),
                            plugin("test_messenger", {{"log_path", "/dev/null"}}, 3), plugin("bad_kind", {}, 4)},
                           kConfigFile);
  CHECK(errors.size() == 1);

  SECTION("fields") {
    std::string error;
    auto fields = host->fields("test_route", {{"anything", 1}}, error);
    REQUIRE(fields);
    CHECK(error.empty());
    CHECK(json::serialize(*fields) ==
          R"([{"name":"systolic","type":"integer","required":true,"min":50,"max":260,"unit":"mmHg"},)"
          R"({"name":"diastolic","type":"integer","required":true,"min":30,"max":160,"unit":"mmHg"}])");
    auto none = host->fields("test_billing", {}, error);
    REQUIRE(none);
    CHECK(none->empty());

    CHECK_FALSE(host->fields("bad_kind", {}, error));
    CHECK(error == "plugin 'bad_kind' is unavailable");
    CHECK_FALSE(host->fields("test_messenger", {}, error));
    CHECK(error == "plugin 'test_messenger' failed: unknown method 'fields'");
  }
  SECTION("a review that passes adds what the plugin derived") {
    Call review{{}, {}, json::object{{"systolic", 160}, {"diastolic", 90}}, "test_route"};
    auto decision = host->call(review.get());
    CHECK(decision.status == PluginDecision::Status::ok);
    CHECK(json::serialize(decision.data) == R"({"checked":true})");
    CHECK(decision.charges.empty());
    CHECK(decision.reason.empty());
  }
  SECTION("a review that breaks the plugin's rule is refused with its reason") {
    Call review{{}, {}, json::object{{"systolic", 161}, {"diastolic", 90}}, "test_route"};
    auto decision = host->call(review.get());
    CHECK(decision.status == PluginDecision::Status::refused);
    CHECK(decision.reason == "systolic 161 mmHg is above the limit of 160 mmHg");
  }
  SECTION("a run posts the plugin's charges, exactly, and sees the request") {
    Call run{{{"fee", 1}}, {{"session", {{"systolic", 120}}}}, std::nullopt, "test_billing", "billing", "c_00000000000000aa"};
    auto decision = host->call(run.get());
    REQUIRE(decision.status == PluginDecision::Status::ok);
    CHECK(json::serialize(decision.data) == R"({"billed_step":"billing","billed_case":"c_00000000000000aa"})");
    REQUIRE(decision.charges.size() == 1);
    CHECK(json::serialize(decision.charges) ==
          R"([{"code":"96365","description":"IV infusion, first hour","amount_cents":4200,"units":1,"modifiers":["KX"]}])");
  }
  SECTION("a plugin asked for something it does not do fails the call") {
    Call run{{}, {}, std::nullopt, "test_route"};  // a route plugin has no automatic steps
    auto decision = host->call(run.get());
    CHECK(decision.status == PluginDecision::Status::failed);
    CHECK(decision.reason == "this plugin does not run automatic steps");
    Call not_loaded{{}, {}, std::nullopt, "bad_kind"};
    CHECK(failure(*host, not_loaded) == "plugin 'bad_kind' is unavailable");
  }
}

TEST_CASE("a malformed answer is a failed decision that names the problem, never a recorded charge") {
  auto host = make_host();
  CHECK(host->load({plugin("test_billing", {{"amount_cents", 4200}, {"malformed", true}}, 1)}, kConfigFile).empty());
  Call run{{}, {}, std::nullopt, "test_billing", "billing"};
  auto decision = host->call(run.get());
  CHECK(decision.status == PluginDecision::Status::failed);
  CHECK(decision.reason ==
        "plugin 'test_billing' returned a charge without a code, a whole non-negative amount_cents and units of at least 1");
  CHECK(decision.charges.empty());
  CHECK(decision.data.empty());
}

TEST_CASE("a plugin that throws fails the call with its message, and keeps answering") {
  auto host = make_host();
  CHECK(host->load({plugin("test_thrower", {}, 1)}, kConfigFile).empty());
  Call run{{}, {}, std::nullopt, "test_thrower"};
  CHECK(failure(*host, run) == "plugin 'test_thrower' failed: boom");
  Call review{{}, {}, json::object{{"x", 1}}, "test_thrower"};
  CHECK(failure(*host, review) == "plugin 'test_thrower' failed: boom");  // not "busy": the call returned
  std::string error;
  auto fields = host->fields("test_thrower", {}, error);  // its other methods still work
  REQUIRE(fields);
  CHECK(fields->empty());
}

TEST_CASE("a call past its deadline fails - the plugin is busy until it returns, then answers again") {
  auto host = make_host(200);
  CHECK(host->load({plugin("test_sleeper", {{"sleep_ms", 0}}, 1)}, kConfigFile).empty());
  Call slow{{{"sleep_ms", 2000}}, {}, std::nullopt, "test_sleeper", "billing"};
  CHECK(failure(*host, slow) == "plugin 'test_sleeper' did not answer within 200ms");
  // It is still sleeping: another call fails at once instead of queueing behind it.
  Call quick{{{"sleep_ms", 0}}, {}, std::nullopt, "test_sleeper", "billing"};
  CHECK(failure(*host, quick) == "plugin 'test_sleeper' is still busy with a call that ran past its deadline");
  std::string error;
  CHECK_FALSE(host->fields("test_sleeper", {}, error));
  CHECK_THAT(error, Catch::Contains("still busy"));
  auto delivery = host->deliver("test_sleeper", {{"id", "m1"}});
  CHECK(delivery.status == plugins::DeliveryResult::Status::retry);
  CHECK_THAT(delivery.error, Catch::Contains("still busy"));

  // Once the slow call has returned, calls work again (and nothing is left running at exit).
  REQUIRE(wait_until_answering(*host, "test_sleeper"));
  auto decision = host->call(quick.get());
  CHECK(decision.status == PluginDecision::Status::ok);
  CHECK(json::serialize(decision.data) == R"({"slept_ms":0})");
  CHECK_FALSE(host->unavailable("test_sleeper"));
}

TEST_CASE("deliver returns the messaging plugin's answer - every failure to ask it is a retry") {
  std::filesystem::path log = std::filesystem::temp_directory_path() / ("clinicflow-host-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(log);
  json::object message{{"id", "c_1-7"}, {"case_id", "c_1"}, {"template", "reminder"}, {"recipient", "patient"},
                       {"address", "a@example.org"}, {"subject", "Hi"}, {"body", "See you"}, {"attempt", 1}};
  SECTION("delivered, and retry for the first attempts") {
    auto host = make_host();
    CHECK(host->load({plugin("test_messenger", {{"log_path", log.string()}, {"fail_first", 1}}, 1)}, kConfigFile).empty());
    auto first = host->deliver("test_messenger", message);
    CHECK(first.status == plugins::DeliveryResult::Status::retry);
    CHECK(first.error == "mail server busy");
    message["attempt"] = 2;
    auto second = host->deliver("test_messenger", message);
    CHECK(second.status == plugins::DeliveryResult::Status::delivered);
    CHECK(second.error.empty());
    std::ifstream in(log);
    std::string line1, line2, line3;
    std::getline(in, line1);
    std::getline(in, line2);
    CHECK(line1 == "c_1-7 1 retry patient a@example.org | Hi | See you");
    CHECK(line2 == "c_1-7 2 delivered patient a@example.org | Hi | See you");
    CHECK_FALSE(std::getline(in, line3));
  }
  SECTION("failed is final") {
    auto host = make_host();
    CHECK(host->load({plugin("test_messenger", {{"log_path", log.string()}, {"permanent_failure", true}}, 1)}, kConfigFile).empty());
    auto result = host->deliver("test_messenger", message);
    CHECK(result.status == plugins::DeliveryResult::Status::failed);
    CHECK(result.error == "no such mailbox");
  }
  SECTION("an unavailable plugin, or one that cannot deliver, is a retry with the reason") {
    auto host = make_host();
    CHECK(host->load({plugin("test_route", {{"max_systolic", 160}}, 1)}, kConfigFile).empty());
    auto missing = host->deliver("test_messenger", message);
    CHECK(missing.status == plugins::DeliveryResult::Status::retry);
    CHECK(missing.error == "plugin 'test_messenger' is unavailable");
    auto wrong_kind = host->deliver("test_route", message);
    CHECK(wrong_kind.status == plugins::DeliveryResult::Status::retry);
    CHECK(wrong_kind.error == "plugin 'test_route' failed: unknown method 'deliver'");
  }
  std::filesystem::remove(log);
}

// ----------------------------------------------------------------------------------- engine

namespace {

using clinicflow::testing::TempDir;

const char* const kRouteFlow = R"toml(
id = "route_flow"
version = 1
title = "Route flow"

[[stage]]
id = "treatment"

[[step]]
id = "session"
stage = "treatment"
roles = ["nurse"]
plugin = "test_route"

  [[step.field]]
  name = "notes"
  type = "string"

[[step]]
id = "billing"
stage = "treatment"
kind = "automatic"
plugin = "test_billing"
)toml";

const char* const kFailingFlow = R"toml(
id = "failing_flow"
version = 1
title = "Failing flow"

[[stage]]
id = "main"

[[step]]
id = "intake"
stage = "main"
roles = ["frontdesk"]

  [[step.field]]
  name = "ok"
  type = "boolean"

[[step]]
id = "explode"
stage = "main"
kind = "automatic"
plugin = "test_thrower"

[[step]]
id = "after"
stage = "main"
roles = ["nurse"]
)toml";

const char* const kSlowFlow = R"toml(
id = "slow_flow"
version = 1
title = "Slow flow"

[[stage]]
id = "main"

[[step]]
id = "wait"
stage = "main"
kind = "automatic"
plugin = "test_sleeper"

  [step.settings]
  sleep_ms = 2000
)toml";

const char* const kReviewedByThrower = R"toml(
id = "thrower_review"
version = 1
title = "Reviewed by a plugin that throws"

[[stage]]
id = "main"

[[step]]
id = "check"
stage = "main"
roles = ["nurse"]
plugin = "test_thrower"

  [[step.field]]
  name = "x"
  type = "integer"
)toml";

// The engine on a real store, driving real plugins through the host.
struct World {
  TempDir dir;
  store::SqliteCaseStore store{{dir.path() / "test.db", "full"}};
  VirtualClock clock{kStart};
  std::unique_ptr<PluginHost> host;
  SourceErrors load_errors;
  workflow::WorkflowSet workflows;
  std::unique_ptr<Engine> engine;

  explicit World(Duration timeout = 10'000, std::vector<config::PluginConfig> configs = default_plugins()) : host(make_host(timeout)) {
    load_errors = host->load(configs, kConfigFile);
    engine = std::make_unique<Engine>(store, workflows, clock, host.get());
  }

  static std::vector<config::PluginConfig> default_plugins() {
    return {plugin("test_route", {{"max_systolic", 160}}, 1), plugin("test_billing", {{"amount_cents", 4200}}, 2),
            plugin("test_thrower", {}, 3), plugin("test_sleeper", {}, 4)};
  }

  workflow::LoadContext context(bool ask_plugins = true) {
    workflow::LoadContext c;
    c.roles = std::set<std::string>{"frontdesk", "nurse"};
    c.plugins = std::set<std::string>{"test_route", "test_billing", "test_thrower", "test_sleeper", "test_messenger"};
    if (ask_plugins) {
      c.plugin_fields = [this](std::string_view p, const json::object& s, std::string& e) { return host->fields(p, s, e); };
      c.plugin_kind = [this](std::string_view p) { return host->kind_of(p); };
    }
    return c;
  }

  std::shared_ptr<const workflow::Workflow> add(const char* text, bool ask_plugins = true) {
    auto result = workflow::load_workflow_text(text, "flow.toml", context(ask_plugins));
    for (const auto& e : result.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(result.workflow);
    REQUIRE_FALSE(workflows.add(result.workflow));
    return result.workflow;
  }

  std::vector<std::string> event_types(const std::string& case_id) {
    std::vector<std::string> out;
    for (const auto& e : engine->history(case_id)) out.push_back(e.type + (e.step.empty() ? "" : ":" + e.step));
    return out;
  }

  void check_projection(const std::string& case_id) {
    auto stored = store.read_case(case_id);
    REQUIRE(stored);
    CaseState replayed = replay(case_id, store.read_events(case_id));
    CHECK(json::serialize(clinicflow::testing::json_object(to_json_text(replayed))) == json::serialize(stored->state));
    CHECK(stored->revision == replayed.revision);
  }
};

EngineError engine_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const EngineError& e) {
    return e;
  }
  FAIL("no EngineError thrown");
  return EngineError(ErrorKind::not_found, "");
}

}  // namespace

TEST_CASE("a task naming a route plugin gets the plugin's fields in its form") {
  World w;
  REQUIRE(w.load_errors.empty());
  auto wf = w.add(kRouteFlow);
  const workflow::StepDef* session = wf->find_step("session");
  REQUIRE(session);
  CHECK(session->plugin_fields == std::vector<std::string>{"systolic", "diastolic"});
  REQUIRE(session->fields.size() == 3);
  CHECK(session->fields[0].name == "systolic");  // the plugin's fields come first
  CHECK(session->fields[2].name == "notes");

  CaseState state = w.engine->open_case("patient-1", "route_flow", std::nullopt, kFrontdesk);
  json::object view = clinicflow::testing::json_object(case_view_json(state, *wf));
  const json::object& schema = view.at("open_tasks").as_array().at(0).at("schema").as_object();
  const json::object& systolic = schema.at("properties").at("systolic").as_object();
  CHECK(systolic.at("type") == "integer");
  CHECK(systolic.at("minimum").to_number<double>() == 50);
  CHECK(systolic.at("maximum").to_number<double>() == 260);
  CHECK(systolic.at("description") == "(unit: mmHg)");
  CHECK(schema.at("properties").as_object().size() == 3);
  CHECK(json::serialize(schema.at("required")) == R"(["systolic","diastolic"])");

  json::object clean;
  auto problems = workflow::validate_form(*session, {{"notes", "calm"}, {"systolic", 300}}, clean);
  std::map<std::string, std::string> by_field;
  for (const auto& p : problems) by_field[p.field] = p.problem;
  CHECK(by_field.size() == 2);
  CHECK(by_field.count("systolic"));  // above the plugin's max
  CHECK(by_field["diastolic"] == "is required");

  auto error = engine_error([&] { w.engine->submit(state.case_id, "session", {{"notes", "calm"}}, kNurse); });
  CHECK(error.kind() == ErrorKind::invalid_data);
  CHECK(w.engine->get_case(state.case_id)->revision == state.revision);  // nothing written
}

TEST_CASE("a refused submission is recorded and the step stays open - an accepted one runs billing with exact cents") {
  World w;
  w.add(kRouteFlow);
  CaseState state = w.engine->open_case("patient-1", "route_flow", std::nullopt, kFrontdesk);

  auto error = engine_error([&] { w.engine->submit(state.case_id, "session", {{"systolic", 171}, {"diastolic", 95}}, kNurse); });
  CHECK(error.kind() == ErrorKind::refused);
  CHECK(std::string(error.what()) == "systolic 171 mmHg is above the limit of 160 mmHg");
  auto history = w.engine->history(state.case_id);
  REQUIRE(history.back().type == "step_refused");
  CHECK(history.back().step == "session");
  CHECK(history.back().actor == "plugin:test_route");
  CHECK(json::serialize(history.back().data) == R"({"reason":"systolic 171 mmHg is above the limit of 160 mmHg","by":"user:rn1"})");
  CaseState after = *w.engine->get_case(state.case_id);
  CHECK(after.revision == state.revision + 1);
  REQUIRE(after.find_active("session"));
  CHECK_FALSE(after.data.contains("session"));
  w.check_projection(state.case_id);

  CaseState done = w.engine->submit(state.case_id, "session", {{"systolic", 128}, {"diastolic", 84}, {"notes", "fine"}}, kNurse);
  CHECK(json::serialize(done.data.at("session")) == R"({"systolic":128,"diastolic":84,"notes":"fine","checked":true})");
  CHECK(done.status == "completed");
  CHECK(json::serialize(done.data.at("billing")) == R"({"billed_step":"billing","billed_case":")" + state.case_id + R"("})");
  CHECK(w.event_types(state.case_id) ==
        std::vector<std::string>{"case_opened", "stage_entered", "step_opened:session", "step_refused:session", "step_completed:session",
                                 "step_opened:billing", "step_completed:billing", "charge_posted:billing", "case_ended:billing"});
  for (const auto& e : w.engine->history(state.case_id))
    if (e.type == "charge_posted") {
      CHECK(e.actor == "plugin:test_billing");
      CHECK(e.data.at("amount_cents").as_int64() == 4200);
      CHECK(json::serialize(e.data) ==
            R"({"code":"96365","description":"IV infusion, first hour","amount_cents":4200,"units":1,"modifiers":["KX"]})");
    }
  w.check_projection(state.case_id);
}

TEST_CASE("a malformed billing answer fails the automatic step and posts nothing") {
  World w(10'000, {plugin("test_route", {{"max_systolic", 160}}, 1),
                   plugin("test_billing", {{"amount_cents", 4200}, {"malformed", true}}, 2)});
  REQUIRE(w.load_errors.empty());
  w.add(kRouteFlow);
  CaseState state = w.engine->open_case("patient-1", "route_flow", std::nullopt, kFrontdesk);
  state = w.engine->submit(state.case_id, "session", {{"systolic", 128}, {"diastolic", 84}}, kNurse);
  CHECK(state.status == "active");
  const ActiveStep* billing = state.find_active("billing");
  REQUIRE(billing);
  CHECK_THAT(billing->last_error, Catch::Contains("returned a charge without a code, a whole non-negative amount_cents"));
  for (const auto& e : w.engine->history(state.case_id)) CHECK(e.type != "charge_posted");
  w.check_projection(state.case_id);
}

TEST_CASE("a plugin that throws fails its step with the error - the case stays consistent and the step open") {
  World w;
  w.add(kFailingFlow);
  CaseState state = w.engine->open_case("patient-1", "failing_flow", std::nullopt, kFrontdesk);
  state = w.engine->submit(state.case_id, "intake", {{"ok", true}}, kFrontdesk);
  auto history = w.engine->history(state.case_id);
  REQUIRE(history.back().type == "step_failed");
  CHECK(history.back().step == "explode");
  CHECK(history.back().actor == "plugin:test_thrower");
  CHECK(history.back().data.at("error") == "plugin 'test_thrower' failed: boom");
  CHECK(history.back().data.at("refused") == false);
  const ActiveStep* explode = state.find_active("explode");
  REQUIRE(explode);
  CHECK_THAT(explode->last_error, Catch::Contains("boom"));
  CHECK_FALSE(state.find_active("after"));
  w.check_projection(state.case_id);

  // A retry runs the plugin again: it still throws, so the step stays open with a second failure.
  CaseState retried = w.engine->retry_step(state.case_id, "explode", Actor::system());
  CHECK(retried.revision == state.revision + 1);
  CHECK(w.engine->history(state.case_id).back().type == "step_failed");
  REQUIRE(retried.find_active("explode"));
  CHECK(retried.status == "active");
  w.check_projection(state.case_id);

  // As the reviewer of a task, the same failure is recorded and reported as unavailable.
  w.add(kReviewedByThrower);
  CaseState other = w.engine->open_case("patient-2", "thrower_review", std::nullopt, kFrontdesk);
  auto error = engine_error([&] { w.engine->submit(other.case_id, "check", {{"x", 1}}, kNurse); });
  CHECK(error.kind() == ErrorKind::unavailable);
  CHECK_THAT(error.what(), Catch::Contains("boom"));
  CHECK(w.engine->history(other.case_id).back().type == "step_failed");
  REQUIRE(w.engine->get_case(other.case_id)->find_active("check"));
  w.check_projection(other.case_id);
}

TEST_CASE("an automatic step whose plugin does not answer in time fails - while it is busy, a retry fails fast") {
  World w(200);
  REQUIRE(w.load_errors.empty());
  w.add(kSlowFlow);
  CaseState state = w.engine->open_case("patient-1", "slow_flow", std::nullopt, kFrontdesk);
  REQUIRE(state.find_active("wait"));
  CHECK_THAT(state.find_active("wait")->last_error, Catch::Contains("did not answer within 200ms"));
  CHECK(w.engine->history(state.case_id).back().type == "step_failed");

  CaseState retried = w.engine->retry_step(state.case_id, "wait", Actor::system());
  REQUIRE(retried.find_active("wait"));
  CHECK_THAT(retried.find_active("wait")->last_error, Catch::Contains("still busy"));
  w.check_projection(state.case_id);

  REQUIRE(wait_until_answering(*w.host, "test_sleeper"));  // nothing left running inside the plugin
}

TEST_CASE("a workflow whose plugin failed to load cannot open cases, and says why") {
  World w(10'000, {plugin("test_route", {{"max_systolic", 160}}, 1), plugin("test_billing", {{"amount_cents", "lots"}}, 2)});
  REQUIRE(w.load_errors.size() == 1);

  // Asking the failed plugin for its fields is a load error of the workflow, naming the plugin.
  auto result = workflow::load_workflow_text(kRouteFlow, "flow.toml", w.context());
  CHECK_FALSE(result.workflow);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].message == "cannot ask plugin 'test_billing' for the fields of step 'billing': plugin 'test_billing' is unavailable");
  CHECK(result.unanswered_plugins == std::set<std::string>{"test_billing"});

  // Loaded without asking (as a server skipping the check would), no case can be opened on it.
  w.add(kRouteFlow, false);
  auto error = engine_error([&] { w.engine->open_case("patient-1", "route_flow", std::nullopt, kFrontdesk); });
  CHECK(error.kind() == ErrorKind::unavailable);
  CHECK(std::string(error.what()) ==
        "workflow 'route_flow' needs plugin 'test_billing', which is unavailable: it failed to load: setting 'amount_cents' must be "
        "a whole number, not a string");
  CHECK(w.store.query_cases({}).empty());
}

// Guards a fixed use-after-free: the host destroyed while a plugin is still inside a call that ran
// past its deadline; the abandoned worker must not touch freed memory when the call returns.
TEST_CASE("destroying the host while a plugin is stuck in a call leaves nothing dangling", "[host]") {
  {
    auto host = make_host(100);
    REQUIRE(host->load({plugin("test_sleeper", {}, 1)}, kConfigFile).empty());
    Call slow{{{"sleep_ms", 500}}, {}, std::nullopt, "test_sleeper", "billing"};
    CHECK(failure(*host, slow) == "plugin 'test_sleeper' did not answer within 100ms");
  }  // the host goes while the plugin sleeps
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the plugin returns into freed memory
  SUCCEED("no crash");
}
