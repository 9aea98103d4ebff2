#include "app/runtime.hpp"

#include "app/server_lock.hpp"
#include "engine/outbox_dispatcher.hpp"
#include "engine/scheduler.hpp"
#include "plugins/plugin_host.hpp"

#include <spdlog/spdlog.h>

namespace clinicflow::app {

namespace {

std::unique_ptr<engine::Clock> make_clock(const config::ServerConfig& config, store::CaseStore& store) {
  if (config.clock != "virtual") return std::make_unique<engine::RealClock>();
  // Virtual time continues where it stopped, so timers keep their meaning across restarts.
  TimePoint start = engine::RealClock().now();
  if (auto saved = store.read_setting(engine::Engine::kVirtualClockSetting)) start = std::stoll(*saved);
  store.write_setting(engine::Engine::kVirtualClockSetting, std::to_string(start));
  return std::make_unique<engine::VirtualClock>(start);
}

std::vector<std::string> lines(const SourceErrors& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

}  // namespace

workflow::LoadContext load_context(const config::ServerConfig& config, plugins::PluginHost& host) {
  workflow::LoadContext context;
  context.roles.emplace();
  for (const auto& role : config.roles) context.roles->insert(role.name);
  context.plugins.emplace();
  for (const auto& plugin : config.plugins) context.plugins->insert(plugin.name);
  context.plugin_fields = [&host](std::string_view plugin, const boost::json::object& settings, std::string& error) {
    return host.fields(plugin, settings, error);
  };
  context.plugin_kind = [&host](std::string_view plugin) { return host.kind_of(plugin); };
  return context;
}

engine::Deliver deliver_through(plugins::PluginHost& host) {
  return [&host](const store::OutboxMessage& m, int attempt) {
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
  };
}

// Members in construction order; destroyed in reverse, so nothing outlives what it points to.
struct Runtime::Parts {
  config::ServerConfig config;
  plugins::PluginHost host;
  workflow::WorkflowSet workflows;
  ServerLock lock;  // before the database is opened, after everything that can refuse a start without touching it
  store::SqliteCaseStore store;
  std::unique_ptr<engine::Clock> clock;
  engine::Engine engine;
  api::SqliteAuthStore auth;
  std::shared_ptr<api::Api> api;
  engine::Scheduler scheduler;
  engine::OutboxDispatcher dispatcher;
  bool started = false;
  bool deliver_in_background = true;

  Parts(config::ServerConfig c, const RuntimeOptions& options)
      : config(std::move(c)),
        host({config.plugins_dir, config.plugin_timeout}),
        workflows(load_workflows(config, host, options)),
        lock(config.database_path()),
        store({config.database_path(), config.synchronous}),
        clock(make_clock(config, store)),
        engine(store, workflows, *clock, &host, static_cast<std::size_t>(config.cases_in_memory)),
        auth({config.database_path(), config.synchronous}, *clock),
        api(make_api()),
        scheduler(engine, store, *clock),
        dispatcher(store, *clock, deliver_through(host),
                   {config.delivery_max_attempts, config.delivery_first_retry, config.delivery_max_retry}) {
    deliver_in_background = options.deliver_in_background;
    auth.carry_audit_with(store);
    if (options.create_admin_token) auth.ensure_admin_token(config.data_dir);
    engine.add_listener([this](const engine::CaseState&, const std::vector<store::EventRecord>& events) {
      for (const auto& e : events)
        if (e.type == engine::event::message_queued) return dispatcher.wake();
    });
  }

  static workflow::WorkflowSet load_workflows(const config::ServerConfig& config, plugins::PluginHost& host,
                                              const RuntimeOptions& options) {
    if (auto errors = host.load(config.plugins, config.file.string()); !errors.empty()) {
      for (const auto& error : errors) spdlog::error("{}", error.to_string());
      if (config.strict)
        throw StartupError(4, std::to_string(errors.size()) + " plugin(s) failed to load and strict mode is on", lines(errors));
      spdlog::warn("{} plugin(s) failed to load; workflows that need them cannot open cases", errors.size());
    }
    workflow::LoadContext context = load_context(config, host);
    workflow::WorkflowSet workflows;
    SourceErrors errors;
    std::vector<std::string> skipped;
    std::string where;
    if (options.workflow_files.empty()) {
      errors = workflows.load_directory(config.workflows_dir, context, config.strict ? nullptr : &skipped);
      where = config.workflows_dir.string();
    } else {
      for (const auto& file : options.workflow_files) {
        auto result = workflow::load_workflow_file(file, context);
        errors.insert(errors.end(), result.errors.begin(), result.errors.end());
        if (result.workflow)
          if (auto duplicate = workflows.add(result.workflow)) errors.push_back(*duplicate);
        where += (where.empty() ? "" : ", ") + file.string();
      }
    }
    // An invalid workflow is never half-used: fix the file, then start again.
    if (!errors.empty()) {
      for (const auto& error : errors) spdlog::error("{}", error.to_string());
      throw StartupError(3, std::to_string(errors.size()) + " error(s) in the workflows in " + where, lines(errors));
    }
    for (const auto& s : skipped) spdlog::warn("workflow not loaded, no cases can be opened on it: {}", s);
    for (const auto& wf : workflows.all()) spdlog::info("workflow {} v{} loaded from {}", wf->id, wf->version, wf->file);
    return workflows;
  }

  std::shared_ptr<api::Api> make_api() {
    api::RoleMethods role_methods;
    for (const auto& role : config.roles) role_methods[role.name] = {role.methods.begin(), role.methods.end()};
    return std::make_shared<api::Api>(engine, store, auth, workflows, *clock, dynamic_cast<engine::VirtualClock*>(clock.get()),
                                      &host, api::ApiOptions{std::move(role_methods), {}});
  }

  };

Runtime::Runtime(config::ServerConfig config, RuntimeOptions options) {
  try {
    parts_ = std::make_unique<Parts>(std::move(config), options);
  } catch (const StartupError&) {
    throw;
  } catch (const std::exception& e) {
    throw StartupError(1, e.what());
  }
}

Runtime::~Runtime() { stop(); }

void Runtime::start() {
  if (parts_->started) return;
  parts_->started = true;
  if (parts_->deliver_in_background) parts_->dispatcher.start();  // delivers what was queued before a crash or a stop, then keeps going
  if (parts_->clock->is_virtual()) {
    std::size_t fired = parts_->engine.fire_due_timers();
    spdlog::info("virtual clock at {}; {} due timer(s) fired", format_rfc3339(parts_->clock->now()), fired);
  } else {
    parts_->scheduler.start();
  }
}

void Runtime::stop() {
  if (!parts_ || !parts_->started) return;
  parts_->scheduler.stop();
  parts_->dispatcher.stop();
  // Commit and answer what is in flight now, while whoever sends the answers still exists.
  parts_->engine.drain();
  parts_->auth.flush_audit();
  parts_->started = false;
  auto stats = parts_->engine.commit_stats();
  if (stats.groups > 0)
    spdlog::info("group commit: {} command(s) in {} transaction(s), {:.1f} per transaction", stats.commands, stats.groups,
                 static_cast<double>(stats.commands) / static_cast<double>(stats.groups));
  auto checkpoints = parts_->store.checkpoint_counts();
  if (checkpoints.background + checkpoints.by_writer > 0)
    spdlog::info("checkpoints: {} copied in the background, {} finished or done by the writer", checkpoints.background,
                 checkpoints.by_writer);
}

std::size_t Runtime::deliver_due() { return parts_->dispatcher.dispatch_due(); }

const config::ServerConfig& Runtime::config() const { return parts_->config; }
plugins::PluginHost& Runtime::plugins() { return parts_->host; }
const workflow::WorkflowSet& Runtime::workflows() const { return parts_->workflows; }
store::SqliteCaseStore& Runtime::store() { return parts_->store; }
engine::Clock& Runtime::clock() { return *parts_->clock; }
engine::VirtualClock* Runtime::virtual_clock() { return dynamic_cast<engine::VirtualClock*>(parts_->clock.get()); }
engine::Engine& Runtime::engine() { return parts_->engine; }
api::SqliteAuthStore& Runtime::auth() { return parts_->auth; }
const std::shared_ptr<api::Api>& Runtime::api() { return parts_->api; }

}  // namespace clinicflow::app
