#include "simulate.hpp"

#include "app/runtime.hpp"
#include "config/server_config.hpp"
#include "plugins/plugin_host.hpp"
#include "sim_cohort.hpp"
#include "sim_driver.hpp"
#include "sim_profile.hpp"
#include "sim_random.hpp"
#include "sim_report.hpp"
#include "sim_summary.hpp"
#include "sim_values.hpp"
#include "util/temp_dir.hpp"
#include "util/time.hpp"

#include <boost/json/serialize.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace clinicflow::cli {
namespace {

constexpr const char* kMe = "clinicflow simulate: ";

// While alive, the server's log goes to a file only (the console stays quiet); the errors in it
// are shown when the runtime cannot start (a plugin that failed to load says why only there).
class FileLog {
 public:
  explicit FileLog(const std::filesystem::path& file) : file_(file), previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("clinicflow", std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string()));
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~FileLog() {
    spdlog::default_logger()->flush();
    spdlog::set_default_logger(previous_);
  }
  FileLog(const FileLog&) = delete;
  FileLog& operator=(const FileLog&) = delete;

  std::vector<std::string> errors() const {
    spdlog::default_logger()->flush();
    std::vector<std::string> out;
    std::ifstream in(file_);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("error ")) out.push_back(line.substr(6));
      else if (line.starts_with("critical ")) out.push_back(line.substr(9));
    }
    return out;
  }

 private:
  std::filesystem::path file_;
  std::shared_ptr<spdlog::logger> previous_;
};

void print_log_errors(const FileLog& log, const std::vector<std::string>& already, std::ostream& err) {
  for (const auto& line : log.errors())
    if (std::find(already.begin(), already.end(), line) == already.end()) err << "  " << line << "\n";
}


}  // namespace

int simulate(const SimulateOptions& options, std::ostream& out, std::ostream& err) {
  // Output piped into `head` must not kill the process before it removes its temporary folder.
  std::signal(SIGPIPE, SIG_IGN);
  const std::filesystem::path config_file = options.config.value_or("config/clinicflow.toml");
  config::ServerConfig config;
  try {
    config = config::load_config_file(config_file);
  } catch (const config::ConfigError& e) {
    for (const auto& error : e.errors()) err << error.to_string() << "\n";
    err << kMe << "the configuration " << config_file.string() << " has errors; nothing was simulated\n";
    return 2;
  }
  if (!std::filesystem::is_regular_file(options.workflow)) {
    err << options.workflow.string() << ": file not found\n";
    return 2;
  }
  if (options.workflow.string().ends_with(".sim.toml")) {
    err << kMe << options.workflow.string() << " is a simulation profile; name the workflow it belongs to\n";
    return 2;
  }

  std::unique_ptr<util::TempDir> scratch;
  try {
    scratch = std::make_unique<util::TempDir>("clinicflow-simulate");
  } catch (const std::exception& e) {
    err << kMe << e.what() << "\n";
    return 2;
  }
  FileLog log(scratch->path() / "simulate.log");

  // The server's wiring on a throw-away data directory; time moves only when the simulation says.
  config.data_dir = scratch->path();
  config.database.clear();
  config.clock = "virtual";
  config.synchronous = "normal";  // a simulation needs no durability
  config.log_file = scratch->path() / "simulate.log";
  for (auto& plugin : config.plugins)
    if (plugin.name == "outbox_file" && plugin.settings.contains("path")) plugin.settings["path"] = (scratch->path() / "outbox.jsonl").string();
  const TimePoint start = *parse_rfc3339(kSimulationStart);
  try {
    store::SqliteCaseStore store({config.database_path(), config.synchronous});
    store.write_setting(engine::Engine::kVirtualClockSetting, std::to_string(start));  // the runtime's clock starts here
  } catch (const std::exception& e) {
    err << kMe << "cannot create the simulation's database: " << e.what() << "\n";
    return 2;
  }

  app::RuntimeOptions runtime_options;
  runtime_options.workflow_files = {options.workflow};
  runtime_options.create_admin_token = false;
  runtime_options.deliver_in_background = false;  // and deliver_due() is never called: nothing is sent
  std::unique_ptr<app::Runtime> runtime;
  try {
    runtime = std::make_unique<app::Runtime>(config, runtime_options);
  } catch (const app::StartupError& e) {
    err << kMe << "cannot start: " << e.what() << "\n";
    for (const auto& line : e.details()) err << "  " << line << "\n";
    print_log_errors(log, e.details(), err);
    return 2;
  }
  auto workflows = runtime->workflows().all();
  if (workflows.size() != 1) {
    err << kMe << options.workflow.string() << " did not load as one workflow\n";
    return 2;
  }
  const workflow::Workflow& wf = *workflows.front();
  for (const auto& plugin : wf.plugins())
    if (auto why = runtime->plugins().unavailable(plugin)) {
      err << kMe << "workflow '" << wf.id << "' needs plugin '" << plugin << "', which is unavailable: " << *why << "\n";
      print_log_errors(log, {}, err);
      return 2;
    }

  sim::Profile profile;
  std::filesystem::path profile_file;
  if (options.profile) profile_file = *options.profile;
  else if (auto guess = sim::default_profile_path(options.workflow); std::filesystem::exists(guess)) profile_file = guess;
  if (!profile_file.empty()) {
    try {
      profile = sim::load_profile(profile_file, wf);
    } catch (const sim::ProfileError& e) {
      for (const auto& error : e.errors()) err << error.to_string() << "\n";
      err << kMe << "the profile " << profile_file.string() << " has " << e.errors().size() << " error"
          << (e.errors().size() == 1 ? "" : "s") << "; nothing was simulated\n";
      return 2;
    }
  }

  runtime->start();
  engine::VirtualClock& clock = *runtime->virtual_clock();
  std::vector<std::string> roles;
  for (const auto& role : runtime->config().roles) roles.push_back(role.name);
  sim::Random random(options.seed);
  sim::ValueChooser chooser(wf, profile, random);
  sim::DriverLimits limits;
  sim::CaseDriver driver(runtime->engine(), clock, runtime->store(), wf, chooser, {"user:simulator", roles}, limits);
  sim::SummaryBuilder summary(wf);
  const TimePoint began = clock.now();
  try {
    sim::run_cohort(driver, runtime->engine(), clock, options.patients, [&](sim::CaseRun&& run) { summary.add(run); });
  } catch (const std::exception& e) {
    err << kMe << e.what() << "\n";
    print_log_errors(log, {}, err);
    return 2;
  }

  sim::RunInfo info;
  info.workflow_id = wf.id;
  info.workflow_version = wf.version;
  info.workflow_title = wf.title;
  info.workflow_file = options.workflow.string();
  info.config_file = config_file.string();
  info.profile_file = profile_file.string();
  info.seed = options.seed;
  info.patients = options.patients;
  info.attempts_per_step = limits.attempts_per_step;
  info.clock_start = began;
  info.clock_end = clock.now();
  sim::Summary result = summary.finish(std::move(info));
  if (options.json) out << boost::json::serialize(sim::render_json(result)) << "\n";
  else sim::render_text(result, out);
  out.flush();
  return result.stuck.empty() ? 0 : 1;
}

}  // namespace clinicflow::cli
