#include "plugins/plugin_host.hpp"

#include "util/thread_name.hpp"

#include <clinicflow/plugin.h>

#include <boost/dll/shared_library.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <set>
#include <thread>

namespace clinicflow::plugins {
namespace json = boost::json;

namespace {

constexpr const char* kSymbols[] = {CLINICFLOW_SYMBOL_ABI,     CLINICFLOW_SYMBOL_MANIFEST, CLINICFLOW_SYMBOL_CREATE,
                                    CLINICFLOW_SYMBOL_DESTROY, CLINICFLOW_SYMBOL_CALL,     CLINICFLOW_SYMBOL_FREE};

std::string text_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool has_type(const json::value& v, std::string_view type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_int64() || v.is_uint64();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_bool();
  if (type == "array") return v.is_array();
  if (type == "table") return v.is_object();
  return false;
}

std::string_view json_kind(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: return "a string";
    case json::kind::int64:
    case json::kind::uint64: return "a whole number";
    case json::kind::double_: return "a number";
    case json::kind::bool_: return "true/false";
    case json::kind::array: return "a list";
    case json::kind::object: return "a table";
    default: return "nothing";
  }
}

std::string_view type_phrase(std::string_view type) {
  if (type == "integer") return "a whole number";
  if (type == "number") return "a number";
  if (type == "boolean") return "true or false";
  if (type == "array") return "a list";
  if (type == "table") return "a table";
  return "a string";
}

// Libraries whose plugin never returned from a call cannot be unloaded safely: the thread is
// still inside their code. They are kept loaded until the process exits.
std::vector<boost::dll::shared_library>& kept_libraries() {
  static auto* kept = new std::vector<boost::dll::shared_library>();
  return *kept;
}

}  // namespace

// One loaded plugin: its library, its instance, and the worker thread that runs its calls one at
// a time, so that a call past its deadline can be abandoned without blocking the caller.
struct PluginHost::Loaded {
  // What the worker thread and queued calls use. Shared, so that it outlives this object when a
  // call never returns and the thread has to be left behind at shutdown.
  struct Worker {
    clinicflow_plugin_call_fn call = nullptr;
    clinicflow_plugin_free_fn free_text = nullptr;
    clinicflow_plugin_destroy_fn destroy = nullptr;
    void* instance = nullptr;
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::function<void()>> jobs;
    bool stopping = false;
    bool stuck = false;      // a call ran past its deadline and has not returned yet
    bool abandoned = false;  // the host went while stuck: the thread destroys the instance when the call returns
  };

  std::string name;
  boost::dll::shared_library library;
  clinicflow_plugin_destroy_fn destroy = nullptr;
  std::shared_ptr<Worker> worker = std::make_shared<Worker>();
  std::thread thread;

  void start() {
    thread = std::thread([w = worker] {
      util::name_this_thread("cf-plugin");
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lock(w->mutex);
          w->wake.wait(lock, [&] { return w->stopping || !w->jobs.empty(); });
          if (w->jobs.empty()) {
            if (w->abandoned && w->instance) w->destroy(w->instance);  // its library is never unloaded
            return;
          }
          job = std::move(w->jobs.front());
          w->jobs.pop_front();
        }
        job();
      }
    });
  }

  ~Loaded() {
    bool abandoned;
    {
      std::lock_guard lock(worker->mutex);
      worker->stopping = true;
      abandoned = worker->abandoned = worker->stuck;
      worker->jobs.clear();  // calls queued behind the stuck one will never be awaited
    }
    worker->wake.notify_all();
    if (!thread.joinable()) return;
    if (abandoned) {
      // The thread is still inside the plugin: it keeps `worker` alive and destroys the instance
      // when the call returns; the library stays loaded for good.
      spdlog::warn("plugin {} is still inside a call; leaving it loaded", name);
      thread.detach();
      kept_libraries().push_back(std::move(library));
      return;
    }
    thread.join();
    if (worker->instance) destroy(worker->instance);
  }
};

PluginHost::PluginHost(HostOptions options) : options_(std::move(options)) {}

PluginHost::~PluginHost() = default;

SourceErrors PluginHost::load(const std::vector<config::PluginConfig>& configs, const std::string& config_file) {
  SourceErrors errors;
  std::map<std::string, std::string> library_users;  // file -> plugin that loads it
  for (const auto& pc : configs) {
    PluginInfo info;
    info.name = pc.name;
    auto fail = [&](const std::string& reason) {
      info.status = "failed";
      info.error = reason;
      errors.push_back({config_file, pc.line, pc.column, "plugin '" + pc.name + "': " + reason});
    };
    json::object settings = pc.settings;
    std::string library = pc.name;
    if (const json::value* v = settings.if_contains("library")) {
      if (!v->is_string() || v->get_string().empty()) {
        fail("'library' must be the plugin's file name without .so");
        std::lock_guard lock(mutex_);
        infos_.push_back(info);
        continue;
      }
      library = std::string(v->get_string());
      settings.erase("library");
      if (library.find('/') != std::string::npos || library.find("..") != std::string::npos) {
        fail("'library' must be a file name in the plugins directory, without '/' or '..'");
        std::lock_guard lock(mutex_);
        infos_.push_back(info);
        continue;
      }
    }
    std::filesystem::path file = options_.dir / (library + ".so");
    info.file = file.string();
    [&] {
      auto [user, inserted] = library_users.emplace(std::filesystem::weakly_canonical(file).string(), pc.name);
      if (!inserted) return fail("loads " + file.string() + ", which plugin '" + user->second + "' already loads (duplicate)");
      std::error_code ec;
      if (!std::filesystem::exists(file, ec)) return fail("file " + file.string() + " not found");
      auto loaded = std::make_shared<Loaded>();
      loaded->name = pc.name;
      try {
        loaded->library.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
      } catch (const std::system_error& e) {
        // Boost.DLL appends the errno text, which says nothing here: the loader's message does.
        std::string why = e.what();
        if (std::string suffix = ": " + e.code().message(); why.size() > suffix.size() && why.ends_with(suffix))
          why.resize(why.size() - suffix.size());
        return fail(file.string() + " is not a loadable shared library: " + why);
      }
      for (const char* symbol : kSymbols)
        if (!loaded->library.has(symbol))
          return fail(file.string() + " is not a Clinicflow plugin: it does not export '" + symbol + "'");

      std::uint32_t abi = loaded->library.get<std::uint32_t()>(CLINICFLOW_SYMBOL_ABI)();
      unsigned major = abi >> 16, minor = abi & 0xffffu;
      info.abi = std::to_string(major) + "." + std::to_string(minor);
      if (major != CLINICFLOW_ABI_MAJOR || minor > CLINICFLOW_ABI_MINOR)
        return fail(file.string() + " was built for plugin ABI " + info.abi + "; this server supports " +
                    std::to_string(CLINICFLOW_ABI_MAJOR) + "." + std::to_string(CLINICFLOW_ABI_MINOR) +
                    " (same major version, minor version up to " + std::to_string(CLINICFLOW_ABI_MINOR) + ")");

      const char* manifest_text = loaded->library.get<const char*()>(CLINICFLOW_SYMBOL_MANIFEST)();
      boost::system::error_code parse_error;
      json::value manifest_value = json::parse(manifest_text ? manifest_text : "", parse_error);
      if (parse_error || !manifest_value.is_object()) return fail(file.string() + ": the manifest is not a JSON object");
      const json::object& manifest = manifest_value.get_object();
      std::string declared = text_of(manifest, "name");
      if (declared != pc.name)
        return fail(file.string() + " is the plugin '" + declared + "', not '" + pc.name + "': name the table [plugins." + declared + "]");
      info.kind = text_of(manifest, "kind");
      info.version = text_of(manifest, "version");
      info.description = text_of(manifest, "description");
      if (info.kind != "route" && info.kind != "billing" && info.kind != "messaging")
        return fail(file.string() + ": unknown plugin kind '" + info.kind + "' (route, billing or messaging)");

      // Settings: known names, right types, defaults filled, required ones present.
      std::set<std::string> known;
      std::vector<std::string> problems;
      if (const json::value* specs = manifest.if_contains("settings"); specs && specs->is_array()) {
        for (const json::value& spec_value : specs->get_array()) {
          if (!spec_value.is_object()) continue;
          const json::object& spec = spec_value.get_object();
          std::string name = text_of(spec, "name"), type = text_of(spec, "type");
          known.insert(name);
          if (const json::value* given = settings.if_contains(name)) {
            if (!has_type(*given, type))
              problems.push_back("setting '" + name + "' must be " + std::string(type_phrase(type)) + ", not " +
                                 std::string(json_kind(*given)));
            else if (type == "number" && !given->is_double())
              settings[name] = given->to_number<double>();  // 1 in TOML is an integer; the plugin asked for a number
          } else if (const json::value* fallback = spec.if_contains("default"); fallback && !fallback->is_null()) {
            settings[name] = *fallback;
          } else {
            problems.push_back("setting '" + name + "' is required (" + text_of(spec, "description") + ")");
          }
        }
      }
      for (const auto& [key, value] : settings)
        if (!known.count(std::string(key))) {
          std::string list;
          for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
          problems.push_back("unknown setting '" + std::string(key) + "' (settings: " + (list.empty() ? "none" : list) + ")");
        }
      if (!problems.empty()) {
        std::string joined;
        for (const auto& p : problems) joined += (joined.empty() ? "" : "; ") + p;
        return fail(joined);
      }

      char* error = nullptr;
      std::string settings_json = json::serialize(settings);
      void* instance = loaded->library.get<void*(const char*, char**)>(CLINICFLOW_SYMBOL_CREATE)(settings_json.c_str(), &error);
      auto* free_text = &loaded->library.get<void(char*)>(CLINICFLOW_SYMBOL_FREE);
      if (!instance) {
        std::string why = error ? error : "no reason given";
        if (error) free_text(error);
        return fail("could not be created with its settings: " + why);
      }
      loaded->destroy = &loaded->library.get<void(void*)>(CLINICFLOW_SYMBOL_DESTROY);
      loaded->worker->instance = instance;
      loaded->worker->call = &loaded->library.get<int(void*, const char*, const char*, char**)>(CLINICFLOW_SYMBOL_CALL);
      loaded->worker->free_text = free_text;
      loaded->worker->destroy = loaded->destroy;
      loaded->start();
      info.status = "loaded";
      std::lock_guard lock(mutex_);
      loaded_[pc.name] = std::move(loaded);
      spdlog::info("plugin {} {} ({}) loaded from {}", pc.name, info.version, info.kind, file.string());
    }();
    std::lock_guard lock(mutex_);
    infos_.push_back(std::move(info));
  }
  return errors;
}

std::vector<PluginInfo> PluginHost::list() const {
  std::lock_guard lock(mutex_);
  return infos_;
}

std::optional<std::string> PluginHost::kind_of(std::string_view plugin) const {
  std::lock_guard lock(mutex_);
  for (const auto& info : infos_)
    if (info.name == plugin && info.status == "loaded") return info.kind;
  return std::nullopt;
}

PluginHost::Loaded* PluginHost::find(std::string_view plugin) const {
  std::lock_guard lock(mutex_);
  auto it = loaded_.find(plugin);
  return it == loaded_.end() ? nullptr : it->second.get();
}

std::optional<std::string> PluginHost::unavailable(std::string_view plugin) const {
  std::lock_guard lock(mutex_);
  if (loaded_.count(plugin)) return std::nullopt;
  for (const auto& info : infos_)
    if (info.name == plugin) return "it failed to load: " + info.error;
  return "it is not configured";
}

json::object PluginHost::invoke(std::string_view plugin, const char* method, const json::object& request) {
  Loaded* loaded = find(plugin);
  if (!loaded) throw std::runtime_error("plugin '" + std::string(plugin) + "' is unavailable");
  std::shared_ptr<Loaded::Worker> p = loaded->worker;
  struct CallState {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false, abandoned = false;
    int rc = 0;
    std::string text;
  };
  auto state = std::make_shared<CallState>();
  std::string request_text = json::serialize(request);
  {
    std::lock_guard lock(p->mutex);
    if (p->stuck)
      throw std::runtime_error("plugin '" + std::string(plugin) + "' is still busy with a call that ran past its deadline");
    p->jobs.push_back([p, state, method, request_text = std::move(request_text)] {
      char* response = nullptr;
      int rc = p->call(p->instance, method, request_text.c_str(), &response);
      std::string text = response ? response : "";
      if (response) p->free_text(response);
      std::lock_guard state_lock(state->mutex);
      state->rc = rc;
      state->text = std::move(text);
      state->done = true;
      if (state->abandoned) {
        std::lock_guard plugin_lock(p->mutex);
        p->stuck = false;  // it came back after all: later calls may go ahead
      }
      state->done_cv.notify_all();
    });
  }
  p->wake.notify_all();
  std::unique_lock lock(state->mutex);
  if (!state->done_cv.wait_for(lock, std::chrono::milliseconds(options_.call_timeout), [&] { return state->done; })) {
    state->abandoned = true;
    std::lock_guard plugin_lock(p->mutex);
    p->stuck = true;
    throw std::runtime_error("plugin '" + std::string(plugin) + "' did not answer within " + format_duration(options_.call_timeout));
  }
  if (state->rc != 0) throw std::runtime_error("plugin '" + std::string(plugin) + "' failed: " + state->text);
  boost::system::error_code ec;
  json::value answer = json::parse(state->text, ec);
  if (ec || !answer.is_object()) throw std::runtime_error("plugin '" + std::string(plugin) + "' returned an answer that is not a JSON object");
  return std::move(answer.as_object());
}

engine::PluginDecision PluginHost::call(const engine::PluginCall& c) {
  json::object request{{"case_id", c.case_id},       {"step", c.step},           {"step_settings", c.settings},
                       {"case_data", c.case_data},   {"repetition", c.repetition}, {"now", format_rfc3339(c.now)}};
  if (c.submitted) request["submitted"] = *c.submitted;
  json::object answer;
  try {
    answer = invoke(c.plugin, c.submitted ? "review" : "run", request);
  } catch (const std::exception& e) {
    return {engine::PluginDecision::Status::failed, {}, e.what()};  // the message names the plugin already
  }

  // The kernel never trusts a plugin's answer: check its shape before anything is recorded.
  auto malformed = [&](const std::string& what) {
    return engine::PluginDecision{engine::PluginDecision::Status::failed, {}, "plugin '" + std::string(c.plugin) + "' returned " + what, {}};
  };
  engine::PluginDecision decision;
  std::string status = text_of(answer, "status");
  if (status == "ok") decision.status = engine::PluginDecision::Status::ok;
  else if (status == "refused") decision.status = engine::PluginDecision::Status::refused;
  else if (status == "failed") decision.status = engine::PluginDecision::Status::failed;
  else return malformed("an unknown status '" + status + "'");
  decision.reason = text_of(answer, "reason");
  if (decision.status != engine::PluginDecision::Status::ok && decision.reason.empty())
    decision.reason = "plugin '" + std::string(c.plugin) + "' gave no reason";
  if (const json::value* data = answer.if_contains("data")) {
    if (!data->is_object()) return malformed("'data' that is not an object");
    decision.data = data->get_object();
  }
  if (const json::value* charges = answer.if_contains("charges")) {
    if (!charges->is_array()) return malformed("'charges' that is not a list");
    for (const json::value& charge : charges->get_array()) {
      const json::object* o = charge.if_object();
      const json::value* amount = o ? o->if_contains("amount_cents") : nullptr;
      const json::value* units = o ? o->if_contains("units") : nullptr;
      std::string code = o ? text_of(*o, "code") : "";
      if (!o || code.empty() || code.size() > 32 || !amount || !amount->is_int64() || amount->get_int64() < 0 || !units ||
          !units->is_int64() || units->get_int64() < 1)
        return malformed("a charge without a code, a whole non-negative amount_cents and units of at least 1");
      json::array modifiers;
      if (const json::value* m = o->if_contains("modifiers"); m && m->is_array())
        for (const json::value& modifier : m->get_array())
          if (modifier.is_string()) modifiers.push_back(modifier);
      decision.charges.push_back({{"code", code},
                                  {"description", text_of(*o, "description")},
                                  {"amount_cents", amount->get_int64()},
                                  {"units", units->get_int64()},
                                  {"modifiers", std::move(modifiers)}});
    }
  }
  return decision;
}

std::optional<json::array> PluginHost::fields(std::string_view plugin, const json::object& step_settings, std::string& error) {
  try {
    json::object answer = invoke(plugin, "fields", {{"step_settings", step_settings}});
    const json::value* fields = answer.if_contains("fields");
    if (!fields || !fields->is_array()) throw std::runtime_error("plugin '" + std::string(plugin) + "' returned no list of fields");
    return fields->get_array();
  } catch (const std::exception& e) {
    error = e.what();
    return std::nullopt;
  }
}

DeliveryResult PluginHost::deliver(std::string_view plugin, const json::object& message) {
  try {
    json::object answer = invoke(plugin, "deliver", message);
    std::string status = text_of(answer, "status");
    if (status == "delivered") return {DeliveryResult::Status::delivered, ""};
    if (status == "retry") return {DeliveryResult::Status::retry, text_of(answer, "error")};
    if (status == "failed") return {DeliveryResult::Status::failed, text_of(answer, "error")};
    return {DeliveryResult::Status::retry, "plugin '" + std::string(plugin) + "' returned an unknown status '" + status + "'"};
  } catch (const std::exception& e) {
    // A plugin that throws or hangs may succeed next time: retry, within the attempt limit.
    return {DeliveryResult::Status::retry, e.what()};
  }
}

}  // namespace clinicflow::plugins
