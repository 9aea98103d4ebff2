// Drives the real kernel the way clinicflowd wires it (kernel/src/server/main.cpp) — plugin host,
// workflows checked against the plugins, SQLite store, engine, outbox dispatcher — for the one
// thing the server cannot be asked to do yet: open a case (the API is coming). Used by
// tests/cli/out_of_tree_test.sh.
//
//   open_case_driver CONFIG open WORKFLOW PATIENT [--no-dispatch]
//       opens a case; prints "case <id>"; then (unless --no-dispatch) runs one outbox pass and
//       prints "attempts <n>"; then prints the case's messages (below)
//   open_case_driver CONFIG dispatch
//       runs one outbox pass over every due message; prints "attempts <n>"
//   open_case_driver CONFIG messages CASE
//       prints one line per message of the case:
//       "message <id> <plugin> <status> attempts=<n> error=<last error>"
//
// Logs go to stderr only. Exit status: 0 done, 1 a failure (reason on stderr), 2 usage,
// 3 workflow errors, 4 plugin load errors.
#include "app/logging.hpp"
#include "config/server_config.hpp"
#include "engine/clock.hpp"
#include "engine/engine.hpp"
#include "engine/outbox_dispatcher.hpp"
#include "plugins/plugin_host.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/workflow_set.hpp"

#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

using namespace clinicflow;

namespace {

constexpr const char* kUsage =
    "usage: open_case_driver CONFIG open WORKFLOW PATIENT [--no-dispatch]\n"
    "       open_case_driver CONFIG dispatch\n"
    "       open_case_driver CONFIG messages CASE\n";

void print_messages(store::CaseStore& store, const std::string& case_id) {
  for (const auto& m : store.case_messages(case_id))
    std::cout << "message " << m.id << " " << m.plugin << " " << m.status << " attempts=" << m.attempts
              << " error=" << m.last_error << "\n";
}

// As main.cpp's make_clock: virtual time continues from where it was saved.
std::unique_ptr<engine::Clock> make_clock(const config::ServerConfig& config, store::CaseStore& store) {
  if (config.clock != "virtual") return std::make_unique<engine::RealClock>();
  TimePoint start = engine::RealClock().now();
  if (auto saved = store.read_setting(engine::Engine::kVirtualClockSetting)) start = std::stoll(*saved);
  store.write_setting(engine::Engine::kVirtualClockSetting, std::to_string(start));
  return std::make_unique<engine::VirtualClock>(start);
}

int run(const std::vector<std::string>& args) {
  if (args.size() < 2) return std::cerr << kUsage, 2;
  const std::string& command = args[1];
  bool open = command == "open", dispatch = command == "dispatch", messages = command == "messages";
  bool no_dispatch = open && args.size() == 5 && args[4] == "--no-dispatch";
  if (!((open && (args.size() == 4 || no_dispatch)) || (dispatch && args.size() == 2) || (messages && args.size() == 3)))
    return std::cerr << kUsage, 2;

  config::ServerConfig config;
  try {
    config = config::load_config_file(args[0]);
  } catch (const config::ConfigError& e) {
    for (const auto& error : e.errors()) std::cerr << error.to_string() << "\n";
    return 2;
  }
  app::configure_logging(config.log_level, "");

  plugins::PluginHost host({config.plugins_dir, config.plugin_timeout});
  if (auto errors = host.load(config.plugins, config.file.string()); !errors.empty()) {
    for (const auto& error : errors) std::cerr << error.to_string() << "\n";
    return 4;
  }

  workflow::LoadContext context;
  context.roles.emplace();
  for (const auto& role : config.roles) context.roles->insert(role.name);
  context.plugins.emplace();
  for (const auto& plugin : config.plugins) context.plugins->insert(plugin.name);
  context.plugin_fields = [&host](std::string_view plugin, const boost::json::object& settings, std::string& error) {
    return host.fields(plugin, settings, error);
  };
  context.plugin_kind = [&host](std::string_view plugin) { return host.kind_of(plugin); };
  workflow::WorkflowSet workflows;
  if (auto errors = workflows.load_directory(config.workflows_dir, context); !errors.empty()) {
    for (const auto& error : errors) std::cerr << error.to_string() << "\n";
    return 3;
  }

  store::SqliteCaseStore store({config.database_path(), config.synchronous});
  if (messages) {
    print_messages(store, args[2]);
    return 0;
  }
  auto clock = make_clock(config, store);
  engine::Engine engine(store, workflows, *clock, &host);
  engine::OutboxDispatcher dispatcher(
      store, *clock,
      [&host](const store::OutboxMessage& m, int attempt) {
        auto result = host.deliver(m.plugin, {{"id", m.id},
                                              {"case_id", m.case_id},
                                              {"template", m.template_name},
                                              {"recipient", m.recipient},
                                              {"address", m.address},
                                              {"subject", m.subject},
                                              {"body", m.body},
                                              {"attempt", attempt}});
        using S = engine::DeliveryAttempt::Status;
        S status = result.status == plugins::DeliveryResult::Status::delivered ? S::delivered
                   : result.status == plugins::DeliveryResult::Status::failed  ? S::failed
                                                                               : S::retry;
        return engine::DeliveryAttempt{status, result.error};
      },
      {config.delivery_max_attempts, config.delivery_first_retry, config.delivery_max_retry});

  std::string case_id;
  if (open) {
    auto state = engine.open_case(args[3], args[2], std::nullopt, engine::Actor{"user:open_case_driver", {"frontdesk"}});
    case_id = state.case_id;
    std::cout << "case " << case_id << "\n";
  }
  if (!no_dispatch) std::cout << "attempts " << dispatcher.dispatch_due() << "\n";
  if (open) print_messages(store, case_id);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "open_case_driver: " << e.what() << "\n";
    return 1;
  }
}
