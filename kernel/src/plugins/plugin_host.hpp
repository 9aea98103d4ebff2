#pragma once
// Loads plugins (shared libraries speaking the C ABI of <clinicflow/plugin.h>) with Boost.DLL,
// checks them, and calls them on behalf of the engine and the outbox dispatcher. One broken
// plugin never takes the others or the server down: it is reported and marked failed.
#include "config/server_config.hpp"
#include "engine/step_plugins.hpp"
#include "util/source_error.hpp"
#include "util/time.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace clinicflow::plugins {

struct PluginInfo {
  std::string name;  // from [plugins.<name>]
  std::string kind;  // route | billing | messaging (empty when the manifest could not be read)
  std::string version;
  std::string abi;
  std::string description;
  std::string file;
  std::string status = "failed";  // loaded | failed
  std::string error;              // why it failed
};

struct HostOptions {
  std::filesystem::path dir;       // where <library>.so files are
  Duration call_timeout = 10'000;  // a call running longer is a failure
};

// What a messaging plugin answered.
struct DeliveryResult {
  enum class Status { delivered, retry, failed };
  Status status = Status::failed;
  std::string error;
};

class PluginHost final : public engine::StepPlugins {
 public:
  explicit PluginHost(HostOptions options);
  ~PluginHost() override;
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Loads each configured plugin: file `<dir>/<library>.so` where `library` is the table's
  // optional `library` key (default: the plugin's name). Every problem is returned, located in
  // the config file (settings) or naming the library (loading); the plugin is then failed.
  SourceErrors load(const std::vector<config::PluginConfig>& plugins, const std::string& config_file);

  std::vector<PluginInfo> list() const;
  std::optional<std::string> kind_of(std::string_view plugin) const;  // loaded plugins only

  // engine::StepPlugins
  std::optional<std::string> unavailable(std::string_view plugin) const override;
  engine::PluginDecision call(const engine::PluginCall& call) override;

  // The form fields a route or billing plugin adds to a step (for the workflow loader).
  // Returns nullopt and sets `error` when the plugin cannot answer.
  std::optional<boost::json::array> fields(std::string_view plugin, const boost::json::object& step_settings, std::string& error);

  // Delivers one outbox message through a messaging plugin.
  DeliveryResult deliver(std::string_view plugin, const boost::json::object& message);

  struct Loaded;  // one loaded library and its instance (defined in the .cpp)

 private:
  // Calls `method` with a deadline; throws std::runtime_error with a plain reason on any failure.
  boost::json::object invoke(std::string_view plugin, const char* method, const boost::json::object& request);
  Loaded* find(std::string_view plugin) const;

  HostOptions options_;
  mutable std::mutex mutex_;
  std::vector<PluginInfo> infos_;
  std::map<std::string, std::shared_ptr<Loaded>, std::less<>> loaded_;
};

}  // namespace clinicflow::plugins
