// clinicflow: the command-line companion of the server.
#include "app/logging.hpp"
#include "config/server_config.hpp"
#include "plugins/plugin_host.hpp"
#include "workflow/workflow_set.hpp"

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace clinicflow;

constexpr const char* kUsage = R"(usage: clinicflow <command> [options]

commands:
  validate [--config FILE] WORKFLOW.toml...
      Checks workflow files as the server would load them and prints every error as
      file:line:column: problem. Roles and plugin names are checked against the server
      configuration (default: config/clinicflow.toml when it exists), whose plugins are
      loaded from its plugins_dir so that the form fields they add are checked too.
      Exit status: 0 all valid, 1 errors found, 2 usage or configuration problem.
)";

int validate(const std::vector<std::string>& args) {
  std::optional<std::filesystem::path> config_file;
  std::vector<std::filesystem::path> files;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) {
        std::cerr << "clinicflow validate: --config needs a file\n";
        return 2;
      }
      config_file = args[++i];
    } else if (args[i].starts_with("--")) {
      std::cerr << "clinicflow validate: unknown option '" << args[i] << "'\n" << kUsage;
      return 2;
    } else {
      files.emplace_back(args[i]);
    }
  }
  if (files.empty()) {
    std::cerr << "clinicflow validate: name at least one workflow file\n" << kUsage;
    return 2;
  }
  if (!config_file && std::filesystem::exists("config/clinicflow.toml")) config_file = "config/clinicflow.toml";

  workflow::LoadContext context;
  std::unique_ptr<plugins::PluginHost> host;
  if (config_file) {
    try {
      auto config = config::load_config_file(*config_file);
      context.roles.emplace();
      for (const auto& role : config.roles) context.roles->insert(role.name);
      context.plugins.emplace();
      for (const auto& plugin : config.plugins) context.plugins->insert(plugin.name);
      host = std::make_unique<plugins::PluginHost>(plugins::HostOptions{config.plugins_dir, config.plugin_timeout});
      for (const auto& error : host->load(config.plugins, config_file->string()))
        std::cerr << "warning: " << error.to_string() << "\n";
      context.plugin_fields = [&host](std::string_view plugin, const boost::json::object& settings, std::string& error) {
        return host->fields(plugin, settings, error);
      };
      context.plugin_kind = [&host](std::string_view plugin) { return host->kind_of(plugin); };
    } catch (const config::ConfigError& e) {
      for (const auto& error : e.errors()) std::cerr << error.to_string() << "\n";
      return 2;
    }
  } else {
    std::cerr << "note: no server configuration found; roles and plugin names are not checked (use --config)\n";
  }

  workflow::WorkflowSet set;
  std::size_t error_count = 0;
  for (const auto& file : files) {
    auto result = workflow::load_workflow_file(file, context);
    if (result.workflow) {
      if (auto duplicate = set.add(result.workflow)) result.errors.push_back(*duplicate);
    }
    for (const auto& error : result.errors) std::cout << error.to_string() << "\n";
    error_count += result.errors.size();
    if (result.errors.empty())
      std::cout << "ok " << file.string() << ": " << result.workflow->id << " version " << result.workflow->version << ", "
                << result.workflow->stages.size() << " stages, " << result.workflow->steps.size() << " steps\n";
  }
  if (error_count > 0) {
    std::cout << error_count << " error" << (error_count == 1 ? "" : "s") << " found\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  clinicflow::app::configure_logging("warn", "");  // stderr: stdout carries the command's own output
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  if (command == "validate") return validate(args);
  std::cerr << "clinicflow: unknown command '" << command << "'\n" << kUsage;
  return 2;
}
