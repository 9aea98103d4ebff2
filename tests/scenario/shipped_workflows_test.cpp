// The shipped workflows folder as the server loads it: with the shipped configuration and the
// real plugins, every workflow loads (simulation profiles beside them are skipped) and every
// workflow can open a case.
#include "app/runtime.hpp"
#include "config/server_config.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace clinicflow;

TEST_CASE("the server loads every shipped workflow with the shipped configuration") {
  testing::TempDir data("clinicflow-shipped");
  config::ServerConfig config = config::load_config_file(std::filesystem::path(CLINICFLOW_SOURCE_DIR) / "config/clinicflow.toml");
  config.data_dir = data.path();
  config.workflows_dir = std::filesystem::path(CLINICFLOW_SOURCE_DIR) / "workflows";
  config.plugins_dir = CLINICFLOW_PLUGIN_DIR;
  config.clock = "virtual";
  config.strict = true;  // any plugin that fails to load, or any workflow skipped, stops the start
  config.log_file = "";
  for (auto& plugin : config.plugins)
    if (plugin.name == "outbox_file") plugin.settings["path"] = (data.path() / "outbox.jsonl").string();
  app::RuntimeOptions options;
  options.create_admin_token = false;
  options.deliver_in_background = false;
  app::Runtime runtime(config, options);

  std::set<std::string> ids;
  for (const auto& wf : runtime.workflows().all()) ids.insert(wf->id);
  CHECK(ids == std::set<std::string>{"esketamine_rems", "ketamine_im", "ketamine_iv"});
  for (const auto& id : ids) {
    auto state = runtime.engine().open_case("p_test", id, std::nullopt, engine::Actor::system());
    CHECK(state.status == "active");
    CHECK_FALSE(state.active.empty());
  }
}
