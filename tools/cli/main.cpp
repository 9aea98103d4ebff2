// clinicflow: the command-line companion of the server.
#include "api/auth_store.hpp"
#include "app/logging.hpp"
#include "app/runtime.hpp"
#include "engine/clock.hpp"
#include "store/sqlite_case_store.hpp"
#include "ws_client.hpp"
#include "config/server_config.hpp"
#include "plugins/plugin_host.hpp"
#include "sim_profile.hpp"
#include "simulate.hpp"
#include "workflow/workflow_set.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
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

  token create --user USER --roles ROLE[,ROLE...] [--config FILE]
  token revoke TOKEN_ID [--config FILE]
      Creates a token (printed once; only its hash is stored) or revokes one, in the database
      of the server configuration (default: config/clinicflow.toml). Revocation takes effect
      at a live connection's next request.

  call METHOD ['{json params}'] [--url ws://127.0.0.1:8470/v1/ws] [--token TOKEN] [--ca-file PEM]
      Sends one JSON-RPC request to a running server and prints the answer. The token comes
      from --token, else $CLINICFLOW_TOKEN, else var/admin.token. A wss:// URL verifies the
      server's certificate and name against the system's CAs, plus those in --ca-file.
      Exit status: 0 a result, 1 an error answer, 2 usage or connection problem.

  simulate WORKFLOW.toml --patients N [--seed S] [--config FILE] [--profile FILE] [--json]
      Runs N synthetic patients through the workflow, in-process with the configured plugins,
      on the virtual clock and a temporary database (removed afterwards; nothing is sent), and
      prints how the cases ended, time per stage, sessions, refusals, charges, messages, steps
      never reached and cases that got stuck. Form values are valid for each step and exercise
      every branch, the default path most often; a profile (--profile, default
      WORKFLOW.sim.toml when it exists) sets how often each value is given. Same workflow,
      profile and seed (default 1): the same output. --json prints the summary as JSON.
      Exit status: 0 done, 1 done but cases got stuck, 2 nothing simulated (usage,
      configuration, workflow, plugin or profile problem).
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
      host = std::make_unique<plugins::PluginHost>(plugins::HostOptions{config.plugins_dir, config.plugin_timeout});
      for (const auto& error : host->load(config.plugins, config_file->string()))
        std::cerr << "warning: " << error.to_string() << "\n";
      context = app::load_context(config, *host);  // what the server checks workflows against
    } catch (const config::ConfigError& e) {
      for (const auto& error : e.errors()) std::cerr << error.to_string() << "\n";
      return 2;
    }
  } else {
    std::cerr << "note: no server configuration found; roles and plugin names are not checked (use --config)\n";
  }

  workflow::WorkflowSet set;
  std::size_t error_count = 0;
  std::map<std::filesystem::path, std::shared_ptr<const workflow::Workflow>> loaded;  // by file
  std::vector<std::filesystem::path> profiles;
  for (const auto& file : files) {
    if (workflow::is_simulation_profile(file)) {
      profiles.push_back(file);  // checked against its workflow below
      continue;
    }
    auto result = workflow::load_workflow_file(file, context);
    if (result.workflow) {
      if (auto duplicate = set.add(result.workflow)) result.errors.push_back(*duplicate);
    }
    for (const auto& error : result.errors) std::cout << error.to_string() << "\n";
    error_count += result.errors.size();
    if (result.errors.empty()) {
      loaded[std::filesystem::absolute(file).lexically_normal()] = result.workflow;
      std::cout << "ok " << file.string() << ": " << result.workflow->id << " version " << result.workflow->version << ", "
                << result.workflow->stages.size() << " stages, " << result.workflow->steps.size() << " steps\n";
    }
  }
  // A simulation profile (<name>.sim.toml) is checked against the workflow <name>.toml beside it.
  for (const auto& file : profiles) {
    std::string name = file.filename().string();
    std::filesystem::path workflow_file = file.parent_path() / (name.substr(0, name.size() - 9) + ".toml");
    auto it = loaded.find(std::filesystem::absolute(workflow_file).lexically_normal());
    std::shared_ptr<const workflow::Workflow> wf = it == loaded.end() ? nullptr : it->second;
    if (!wf) {
      auto result = workflow::load_workflow_file(workflow_file, context);
      if (!result.workflow) {
        std::cout << file.string() << ":1:1: this simulation profile is for " << workflow_file.string()
                  << ", which does not load (validate it)\n";
        ++error_count;
        continue;
      }
      wf = result.workflow;
    }
    try {
      auto profile = cli::sim::load_profile(file, *wf);
      std::cout << "ok " << file.string() << ": simulation profile for " << wf->id << ", " << profile.fields.size() << " fields\n";
    } catch (const cli::sim::ProfileError& e) {
      for (const auto& error : e.errors()) std::cout << error.to_string() << "\n";
      error_count += e.errors().size();
    }
  }
  if (error_count > 0) {
    std::cout << error_count << " error" << (error_count == 1 ? "" : "s") << " found\n";
    return 1;
  }
  return 0;
}

int token(const std::vector<std::string>& args) {
  std::filesystem::path config_file = "config/clinicflow.toml";
  std::string user, roles_text, token_id;
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < args.size(); ++i) {
    bool has_value = i + 1 < args.size();
    if (args[i] == "--config" && has_value) config_file = args[++i];
    else if (args[i] == "--user" && has_value) user = args[++i];
    else if (args[i] == "--roles" && has_value) roles_text = args[++i];
    else if (args[i].starts_with("--")) return std::cerr << "clinicflow token: unknown option '" << args[i] << "'\n" << kUsage, 2;
    else positional.push_back(args[i]);
  }
  if (positional.empty() || (positional[0] != "create" && positional[0] != "revoke"))
    return std::cerr << "clinicflow token: say 'create' or 'revoke'\n" << kUsage, 2;
  config::ServerConfig config;
  try {
    config = config::load_config_file(config_file);
  } catch (const config::ConfigError& e) {
    for (const auto& error : e.errors()) std::cerr << error.to_string() << "\n";
    return 2;
  }
  try {
    store::SqliteCaseStore store({config.database_path(), config.synchronous});  // creates and migrates the schema
    engine::RealClock clock;
    api::SqliteAuthStore auth({config.database_path(), config.synchronous}, clock);
    if (positional[0] == "create") {
      std::vector<std::string> roles;
      for (std::size_t start = 0; start <= roles_text.size();) {
        std::size_t comma = roles_text.find(',', start);
        std::string role = roles_text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!role.empty()) roles.push_back(role);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (user.empty() || roles.empty()) return std::cerr << "clinicflow token create: give --user and --roles\n", 2;
      for (const auto& role : roles)
        if (std::none_of(config.roles.begin(), config.roles.end(), [&](const auto& r) { return r.name == role; }))
          return std::cerr << "clinicflow token create: no role '" << role << "' in " << config_file.string() << "\n", 2;
      auto created = auth.create_token(user, roles);
      std::cout << "token_id " << created.token_id << "\ntoken    " << created.token
                << "\n(the token is shown only now; only its hash is stored)\n";
      return 0;
    }
    if (positional.size() != 2) return std::cerr << "clinicflow token revoke: give the token id\n", 2;
    if (!auth.revoke_token(positional[1])) return std::cerr << "clinicflow token revoke: no active token '" << positional[1] << "'\n", 1;
    // A running server looks for revocations by other processes every few milliseconds; once
    // this returns, its next request on that token is refused.
    std::this_thread::sleep_for(2 * api::SqliteAuthStore::kExternalRevocationProbe);
    std::cout << "revoked " << positional[1] << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "clinicflow token: " << e.what() << "\n";
    return 2;
  }
}

int call(const std::vector<std::string>& args) {
  std::string url = "ws://127.0.0.1:8470/v1/ws";
  cli::WsRequestOptions options;
  std::optional<std::string>& token = options.token;
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "--url" || args[i] == "--token" || args[i] == "--ca-file") && i + 1 < args.size()) {
      (args[i] == "--url" ? url : args[i] == "--token" ? token.emplace() : options.ca_file.emplace()) = args[i + 1];
      ++i;
    } else if (args[i].starts_with("--")) {
      std::cerr << "clinicflow call: unknown option '" << args[i] << "'\n" << kUsage;
      return 2;
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.empty() || positional.size() > 2) {
    std::cerr << "clinicflow call: give a method and, optionally, its parameters as JSON\n" << kUsage;
    return 2;
  }
  boost::system::error_code ec;
  boost::json::value params = positional.size() == 2 ? boost::json::parse(positional[1], ec) : boost::json::object{};
  if (ec || !(params.is_object() || params.is_array())) {
    std::cerr << "clinicflow call: the parameters must be a JSON object or array\n";
    return 2;
  }
  if (!token) {
    if (const char* env = std::getenv("CLINICFLOW_TOKEN"); env && *env) token = env;
    else if (std::ifstream in("var/admin.token"); in) {
      std::string line;
      std::getline(in, line);
      if (!line.empty()) token = line;
    }
  }
  boost::json::object request{{"jsonrpc", "2.0"}, {"id", 1}, {"method", positional[0]}, {"params", params}};
  try {
    std::string answer = cli::ws_request(url, boost::json::serialize(request), options);
    boost::json::value parsed = boost::json::parse(answer, ec);
    std::cout << answer << "\n";
    return !ec && parsed.is_object() && parsed.as_object().contains("result") ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "clinicflow call: " << e.what() << "\n";
    return 2;
  }
}

int simulate(const std::vector<std::string>& args) {
  cli::SimulateOptions options;
  std::vector<std::string> positional;
  auto number = [](const std::string& text, auto& value) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size();
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_value = i + 1 < args.size();
    if (a == "--json") {
      options.json = true;
    } else if (a == "--patients" || a == "--seed" || a == "--config" || a == "--profile") {
      if (!has_value) return std::cerr << "clinicflow simulate: " << a << " needs a value\n" << kUsage, 2;
      const std::string& v = args[++i];
      if (a == "--patients") {
        if (!number(v, options.patients) || options.patients < 1 || options.patients > 100'000)
          return std::cerr << "clinicflow simulate: --patients takes a whole number from 1 to 100000, not '" << v << "'\n", 2;
      } else if (a == "--seed") {
        if (!number(v, options.seed)) return std::cerr << "clinicflow simulate: --seed takes a whole number of at least 0, not '" << v << "'\n", 2;
      } else if (a == "--config") {
        options.config = v;
      } else {
        options.profile = v;
      }
    } else if (a.starts_with("--")) {
      return std::cerr << "clinicflow simulate: unknown option '" << a << "'\n" << kUsage, 2;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 1) return std::cerr << "clinicflow simulate: name one workflow file\n" << kUsage, 2;
  if (options.patients == 0) return std::cerr << "clinicflow simulate: say how many patients with --patients N\n" << kUsage, 2;
  options.workflow = positional[0];
  return cli::simulate(options, std::cout, std::cerr);
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
  if (command == "call") return call(args);
  if (command == "token") return token(args);
  if (command == "simulate") return simulate(args);
  std::cerr << "clinicflow: unknown command '" << command << "'\n" << kUsage;
  return 2;
}
