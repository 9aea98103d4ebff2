// clinicflowd: the Clinicflow server.
#include "app/logging.hpp"
#include "app/runtime.hpp"
#include "config/server_config.hpp"
#include "server/http_listener.hpp"

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

  try {
    app::Runtime runtime(config);
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
    server::HttpListener listener(listen, runtime.api());
    runtime.start();
    spdlog::info("database {} (schema {}), clock {}", config.database_path().string(), runtime.store().schema_version(), config.clock);
    const char* scheme = listener.tls() ? "s" : "";
    std::cout << "clinicflowd listening on http" << scheme << "://" << config.listen_host << ":" << listener.port()
              << " (API: ws" << scheme << "://" << config.listen_host << ":" << listener.port()
              << "/v1/ws, health: /healthz); press Ctrl-C to stop" << std::endl;
    listener.stop_on_signals();
    listener.run();
    runtime.stop();
  } catch (const app::StartupError& e) {
    spdlog::critical("not starting: {}", e.what());
    return e.exit_code();
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
