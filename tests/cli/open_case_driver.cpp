// Drives the real kernel with the server's own wiring (app::Runtime: plugin host, workflows
// checked against the plugins, SQLite store, engine, outbox) so that a test can open a case and
// run the outbox one pass at a time, deterministically. Used by tests/cli/out_of_tree_test.sh.
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
#include "app/runtime.hpp"
#include "config/server_config.hpp"

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

  config.strict = true;  // a plugin that does not load is an error here (exit 4)
  app::RuntimeOptions options;
  options.create_admin_token = false;
  options.deliver_in_background = false;  // one pass per "dispatch", nothing in between
  std::unique_ptr<app::Runtime> runtime;
  try {
    runtime = std::make_unique<app::Runtime>(config, options);
  } catch (const app::StartupError& e) {
    for (const auto& line : e.details()) std::cerr << line << "\n";
    std::cerr << "open_case_driver: " << e.what() << "\n";
    return e.exit_code();
  }
  if (messages) {
    print_messages(runtime->store(), args[2]);
    return 0;
  }

  std::string case_id;
  if (open) {
    auto state = runtime->engine().open_case(args[3], args[2], std::nullopt, engine::Actor{"user:open_case_driver", {"frontdesk"}});
    case_id = state.case_id;
    std::cout << "case " << case_id << "\n";
  }
  if (!no_dispatch) std::cout << "attempts " << runtime->deliver_due() << "\n";
  if (open) print_messages(runtime->store(), case_id);
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
