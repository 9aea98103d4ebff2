// The shipped workflows folder as the server loads it: with the shipped configuration and the
// real plugins, every workflow loads (simulation profiles beside them are skipped) and every
// workflow can open a case.
#include "app/runtime.hpp"
#include "config/server_config.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

using namespace clinicflow;

namespace {

// The shipped configuration, with the data in `data`, the virtual clock and no log file.
config::ServerConfig shipped_config(const testing::TempDir& data) {
  config::ServerConfig config = config::load_config_file(std::filesystem::path(CLINICFLOW_SOURCE_DIR) / "config/clinicflow.toml");
  config.data_dir = data.path();
  config.workflows_dir = std::filesystem::path(CLINICFLOW_SOURCE_DIR) / "workflows";
  config.plugins_dir = CLINICFLOW_PLUGIN_DIR;
  config.clock = "virtual";
  config.strict = true;  // any plugin that fails to load, or any workflow skipped, stops the start
  config.log_file = "";
  for (auto& plugin : config.plugins)
    if (plugin.name == "outbox_file") plugin.settings["path"] = (data.path() / "outbox.jsonl").string();
  return config;
}

// The names of this process's threads, as /proc shows them (Linux).
std::multiset<std::string> thread_names() {
  std::multiset<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

app::RuntimeOptions quiet_options() {
  app::RuntimeOptions options;
  options.create_admin_token = false;
  options.deliver_in_background = false;
  return options;
}

}  // namespace

TEST_CASE("the server loads every shipped workflow with the shipped configuration") {
  testing::TempDir data("clinicflow-shipped");
  app::Runtime runtime(shipped_config(data), quiet_options());

  std::set<std::string> ids;
  for (const auto& wf : runtime.workflows().all()) ids.insert(wf->id);
  CHECK(ids == std::set<std::string>{"esketamine_rems", "ketamine_im", "ketamine_iv"});
  for (const auto& id : ids) {
    auto state = runtime.engine().open_case("p_test", id, std::nullopt, engine::Actor::system());
    CHECK(state.status == "active");
    CHECK_FALSE(state.active.empty());
  }
}

TEST_CASE("[storage] cases_in_memory bounds the committed cases the server keeps in memory") {
  testing::TempDir data("clinicflow-held");
  config::ServerConfig config = shipped_config(data);
  CHECK(config.cases_in_memory == 65'536);  // the shipped file's value
  config.cases_in_memory = 1;
  app::Runtime runtime(config, quiet_options());
  auto& engine = runtime.engine();
  const std::string first = engine.open_case("p_1", "ketamine_iv", std::nullopt, engine::Actor::system()).case_id;
  const std::string second = engine.open_case("p_2", "ketamine_iv", std::nullopt, engine::Actor::system()).case_id;
  auto held = engine.get_case(first);  // read back: the second case took the only place
  CHECK(engine.get_case(first) == held);  // now held: the same state object
  REQUIRE(engine.get_case(second));     // takes the place again
  CHECK(engine.get_case(first) != held);  // read back once more
}

TEST_CASE("the server's threads carry names that say what each one does") {
  testing::TempDir data("clinicflow-threads");
  app::RuntimeOptions options = quiet_options();
  options.deliver_in_background = true;
  config::ServerConfig config = shipped_config(data);
  config.clock = "real";  // on virtual time no thread keeps time
  app::Runtime runtime(config, options);
  runtime.start();
  // A thread names itself as it starts: give each one the time to get there (not a timing check).
  const std::set<std::string> expected{"cf-commit", "cf-checkpoint", "cf-audit", "cf-timers", "cf-outbox", "cf-plugin"};
  std::multiset<std::string> names;
  for (int tries = 0; tries < 5'000; ++tries) {
    names = thread_names();
    bool all = true;
    for (const auto& name : expected) all = all && names.count(name) > 0;
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (const auto& name : expected) {
    INFO("thread " << name);
    CHECK(names.count(name) > 0);
  }
  CHECK(names.count("cf-commit") == 1);  // one committer per engine
  runtime.stop();
}
