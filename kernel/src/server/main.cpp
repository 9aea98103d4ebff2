// clinicflowd: the Clinicflow server.
#include "app/logging.hpp"
#include "config/server_config.hpp"
#include "api/api.hpp"
#include "api/auth_store.hpp"
#include "engine/engine.hpp"
#include "engine/outbox_dispatcher.hpp"
#include "engine/scheduler.hpp"
#include "plugins/plugin_host.hpp"
#include "server/http_listener.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/workflow_set.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <iostream>

namespace {

using namespace clinicflow;

constexpr const char* kUsage = R"(usage: clinicflowd [--config FILE] [--listen HOST:PORT] [--data-dir DIR]
                   [--clock real|virtual] [--log-level LEVEL] [--strict]

Runs the Clinicflow server. Settings come from FILE (default: config/clinicflow.toml);
the flags override the matching settings for this run.
)";

struct Arguments {
  std::filesystem::path config = "config/clinicflow.toml";
  config::Overrides overrides;
};

// Returns nullopt after printing usage (exit code in `exit_code`).
std::optional<Arguments> parse_arguments(int argc, char** argv, int& exit_code) {
  Arguments args;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 < argc) return std::string(argv[++i]);
      std::cerr << "clinicflowd: " << flag << " needs a value\n" << kUsage;
      return std::nullopt;
    };
    std::optional<std::string>* target = nullptr;
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      exit_code = 0;
      return std::nullopt;
    } else if (flag == "--strict") {
      args.overrides.strict = true;
      continue;
    } else if (flag == "--config") {
      auto v = value();
      if (!v) return exit_code = 2, std::nullopt;
      args.config = *v;
      continue;
    } else if (flag == "--listen") {
      target = &args.overrides.listen;
    } else if (flag == "--data-dir") {
      target = &args.overrides.data_dir;
    } else if (flag == "--clock") {
      target = &args.overrides.clock;
    } else if (flag == "--log-level") {
      target = &args.overrides.log_level;
    } else {
      std::cerr << "clinicflowd: unknown option '" << flag << "'\n" << kUsage;
      exit_code = 2;
      return std::nullopt;
    }
    auto v = value();
    if (!v) return exit_code = 2, std::nullopt;
    *target = *v;
  }
  return args;
}

std::unique_ptr<engine::Clock> make_clock(const config::ServerConfig& config, store::CaseStore& store) {
  if (config.clock != "virtual") return std::make_unique<engine::RealClock>();
  // Virtual time continues where it stopped, so timers keep their meaning across restarts.
  TimePoint start = engine::RealClock().now();
  if (auto saved = store.read_setting(engine::Engine::kVirtualClockSetting)) start = std::stoll(*saved);
  store.write_setting(engine::Engine::kVirtualClockSetting, std::to_string(start));
  return std::make_unique<engine::VirtualClock>(start);
}

int run(const Arguments& args) {
  config::ServerConfig config;
  try {
    config = config::load_config_file(args.config);
    config::apply_overrides(config, args.overrides);
  } catch (const config::ConfigError& e) {
    for (const auto& error : e.errors()) std::cerr << error.to_string() << "\n";
    std::cerr << "clinicflowd: not starting: the configuration has errors\n";
    return 2;
  }
  try {
    app::configure_logging(config.log_level, config.log_path());
  } catch (const std::exception& e) {
    std::cerr << "clinicflowd: " << e.what() << "\n";
    return 2;
  }

  plugins::PluginHost host({config.plugins_dir, config.plugin_timeout});
  if (auto errors = host.load(config.plugins, config.file.string()); !errors.empty()) {
    for (const auto& error : errors) spdlog::error("{}", error.to_string());
    if (config.strict) {
      spdlog::critical("not starting: {} plugin(s) failed to load and strict mode is on", errors.size());
      return 4;
    }
    spdlog::warn("{} plugin(s) failed to load; workflows that need them cannot open cases", errors.size());
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
  std::vector<std::string> skipped;
  if (auto errors = workflows.load_directory(config.workflows_dir, context, config.strict ? nullptr : &skipped); !errors.empty()) {
    // An invalid workflow is never half-used: fix the file, then start again.
    for (const auto& error : errors) spdlog::error("{}", error.to_string());
    spdlog::critical("not starting: {} error(s) in the workflows in {}", errors.size(), config.workflows_dir.string());
    return 3;
  }
  for (const auto& s : skipped) spdlog::warn("workflow not loaded, no cases can be opened on it: {}", s);
  for (const auto& wf : workflows.all()) spdlog::info("workflow {} v{} loaded from {}", wf->id, wf->version, wf->file);

  try {
    store::SqliteCaseStore store({config.database_path(), config.synchronous});
    auto clock = make_clock(config, store);
    engine::Engine engine(store, workflows, *clock, &host);
    api::SqliteAuthStore auth({config.database_path(), config.synchronous}, *clock);
    auth.ensure_admin_token(config.data_dir);  // first start: writes <data_dir>/admin.token (0600) and logs where
    api::RoleMethods role_methods;
    for (const auto& role : config.roles) role_methods[role.name] = {role.methods.begin(), role.methods.end()};
    auto* virtual_clock = dynamic_cast<engine::VirtualClock*>(clock.get());
    auto handler = std::make_shared<api::Api>(engine, store, auth, workflows, *clock, virtual_clock, &host,
                                              api::ApiOptions{std::move(role_methods), {}});
    server::ListenOptions listen;
    listen.host = config.listen_host;
    listen.port = config.listen_port;
    listen.max_message_bytes = static_cast<std::size_t>(config.api_max_message_bytes);
    listen.max_connections = static_cast<std::size_t>(config.api_max_connections);
    listen.requests_per_second = config.api_requests_per_second;
    listen.rate_burst = 2.0 * config.api_requests_per_second;
    listen.idle_timeout = std::chrono::milliseconds(config.api_idle_timeout);
    listen.auth_timeout = std::chrono::milliseconds(config.api_auth_timeout);
    listen.max_queued_bytes = static_cast<std::size_t>(config.api_max_queued_bytes);
    listen.tls_cert = config.tls_cert.string();
    listen.tls_key = config.tls_key.string();
    server::HttpListener listener(listen, handler);
    engine::Scheduler scheduler(engine, store, *clock);
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
    engine.add_listener([&dispatcher](const engine::CaseState&, const std::vector<store::EventRecord>& events) {
      for (const auto& e : events)
        if (e.type == engine::event::message_queued) return dispatcher.wake();
    });
    dispatcher.start();  // delivers what was queued before a crash or a stop, then keeps going
    if (clock->is_virtual()) {
      // Time stands still until told to move; only timers already due fire now.
      std::size_t fired = engine.fire_due_timers();
      spdlog::info("virtual clock at {}; {} due timer(s) fired", format_rfc3339(clock->now()), fired);
    } else {
      scheduler.start();  // fires every timer that fell due while the server was down, then keeps time
    }
    spdlog::info("database {} (schema {}), clock {}", config.database_path().string(), store.schema_version(), config.clock);
    const char* scheme = listener.tls() ? "s" : "";
    std::cout << "clinicflowd listening on http" << scheme << "://" << config.listen_host << ":" << listener.port()
              << " (API: ws" << scheme << "://" << config.listen_host << ":" << listener.port()
              << "/v1/ws, health: /healthz); press Ctrl-C to stop" << std::endl;
    listener.stop_on_signals();
    listener.run();
    scheduler.stop();
    dispatcher.stop();
  } catch (const std::exception& e) {
    spdlog::critical("clinicflowd: {}", e.what());
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto args = parse_arguments(argc, argv, exit_code);
  if (!args) return exit_code;
  return run(*args);
}
