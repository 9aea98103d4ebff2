#pragma once
// The server's parts wired together from a ServerConfig: plugin host, workflows, case store,
// clock, engine, auth store, API, scheduler and outbox dispatcher. clinicflowd puts a WebSocket
// listener in front of it; `clinicflow simulate` and the scenario tests drive it in-process, so
// all three run exactly the same wiring.
#include "api/api.hpp"
#include "api/auth_store.hpp"
#include "config/server_config.hpp"
#include "engine/clock.hpp"
#include "engine/engine.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/workflow_set.hpp"

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/outbox_dispatcher.hpp"

namespace clinicflow::plugins {
class PluginHost;
}

namespace clinicflow::app {

// Why the runtime cannot start. `exit_code` is clinicflowd's: 3 invalid workflows, 4 a plugin
// failed to load in strict mode, 1 anything else (the database, the data directory).
class StartupError : public std::runtime_error {
 public:
  StartupError(int exit_code, const std::string& message, std::vector<std::string> details = {})
      : std::runtime_error(message), exit_code_(exit_code), details_(std::move(details)) {}
  int exit_code() const { return exit_code_; }
  const std::vector<std::string>& details() const { return details_; }  // one line per error

 private:
  int exit_code_;
  std::vector<std::string> details_;
};

struct RuntimeOptions {
  // Load exactly these workflow files instead of every *.toml in config.workflows_dir.
  std::vector<std::filesystem::path> workflow_files;
  // First start: write <data_dir>/admin.token. The simulator and tests make their own tokens.
  bool create_admin_token = true;
  // Deliver the outbox on a background thread. Off: only deliver_due() delivers, which makes
  // in-process tests deterministic.
  bool deliver_in_background = true;
};

// What a workflow is checked against: the configured roles and plugins, and the form fields
// the loaded plugins contribute.
workflow::LoadContext load_context(const config::ServerConfig& config, plugins::PluginHost& host);

// The outbox's delivery through the plugin host: each message goes to its messaging plugin.
engine::Deliver deliver_through(plugins::PluginHost& host);

class Runtime {
 public:
  // Loads plugins and workflows and opens the database; throws StartupError. Logs what it
  // loaded and every plugin or workflow it had to skip.
  explicit Runtime(config::ServerConfig config, RuntimeOptions options = {});
  ~Runtime();  // stops the background threads
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Starts delivering messages and keeping time: on real time the scheduler fires every timer
  // that fell due while the server was down, then keeps going; on virtual time only timers
  // already due fire now, and time moves through clock.advance.
  void start();
  // Stops the background threads, then commits and answers every write in flight (call it
  // before the transport that sends the answers goes away).
  void stop();
  // Tries every outbox message due now, on the calling thread; returns how many were tried.
  std::size_t deliver_due();

  const config::ServerConfig& config() const;
  plugins::PluginHost& plugins();
  const workflow::WorkflowSet& workflows() const;
  store::SqliteCaseStore& store();
  engine::Clock& clock();
  engine::VirtualClock* virtual_clock();  // null on real time
  engine::Engine& engine();
  api::SqliteAuthStore& auth();
  const std::shared_ptr<api::Api>& api();

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace clinicflow::app
