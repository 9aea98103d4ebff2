#pragma once
// The server configuration file (config/clinicflow.toml) and the command-line flags that override it.
#include "util/source_error.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace clinicflow::config {

struct RoleConfig {
  std::string name;
  std::string description;
  // API methods the role may call ("*": all). Unset in the file: the built-in list for the five
  // default role names (default_methods), the read-only list for any other role.
  std::vector<std::string> methods;
};

// The API methods a role may call when its table does not say (see docs/configuration.md).
std::vector<std::string> default_methods(const std::string& role);

struct PluginConfig {
  std::string name;              // the table name in [plugins.<name>]
  boost::json::object settings;  // every key of the table, converted to JSON (dates/times as RFC 3339 strings)
  int line = 0, column = 0;      // where the table is, for later error messages
};

struct ServerConfig {
  std::filesystem::path file;  // the file this was read from (empty for defaults)

  // [server]
  std::string listen_host = "127.0.0.1";
  unsigned short listen_port = 8470;
  std::string clock = "real";  // "real" | "virtual"
  bool strict = false;         // any plugin error is fatal at start (workflow errors always are)
  std::int64_t plugin_timeout = 10'000;  // ms: a plugin call running longer counts as failed

  // [delivery]: the outbox's retries
  int delivery_max_attempts = 8;
  std::int64_t delivery_first_retry = 30'000;   // ms; doubled after each further failure
  std::int64_t delivery_max_retry = 3'600'000;  // ms

  // [paths]  (relative paths are relative to the server's working directory)
  std::filesystem::path data_dir = "var";
  std::filesystem::path database;  // default: <data_dir>/clinicflow.db
  std::filesystem::path workflows_dir = "workflows";
  std::filesystem::path plugins_dir = "build/plugins";

  // [log]
  std::string log_level = "info";  // trace | debug | info | warn | error | critical | off
  std::optional<std::filesystem::path> log_file;  // unset: <data_dir>/clinicflow.log; "": console only

  // [api]: limits of the WebSocket API, all with safe defaults
  std::int64_t api_max_message_bytes = 4 * 1024 * 1024;  // a larger frame closes the connection (1009)
  int api_max_connections = 256;
  int api_requests_per_second = 10000;  // per connection, with a burst of twice that
  std::int64_t api_idle_timeout = 300'000;  // ms without a frame
  std::int64_t api_auth_timeout = 10'000;   // ms to authenticate after connecting
  std::int64_t api_max_queued_bytes = 16 * 1024 * 1024;  // outgoing bytes a slow reader may leave unread
  std::filesystem::path tls_cert, tls_key;  // both set: wss:// only

  // [storage]
  std::string synchronous = "full";  // "full" | "normal"
  std::int64_t cases_in_memory = 65'536;  // committed cases kept parsed in memory (engine::Engine)

  // [roles.<name>]; default: frontdesk, nurse, prescriber, billing, admin
  std::vector<RoleConfig> roles;

  // [plugins.<name>]
  std::vector<PluginConfig> plugins;

  std::filesystem::path database_path() const { return database.empty() ? data_dir / "clinicflow.db" : database; }
  std::filesystem::path log_path() const { return log_file ? *log_file : data_dir / "clinicflow.log"; }
};

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(SourceErrors errors);
  const SourceErrors& errors() const { return errors_; }

 private:
  SourceErrors errors_;
};

// Reads a config file. Throws ConfigError listing every problem (missing file; TOML syntax;
// unknown key; wrong type; value out of range such as an unknown clock mode or log level;
// a malformed listen address), each with file, line and column.
ServerConfig load_config_file(const std::filesystem::path& file);

// Applies command-line overrides: --listen HOST:PORT, --data-dir DIR, --clock real|virtual,
// --log-level LEVEL, --strict. Throws ConfigError (file "command line") on a bad value.
struct Overrides {
  std::optional<std::string> listen, data_dir, clock, log_level;
  bool strict = false;
};
void apply_overrides(ServerConfig& config, const Overrides& overrides);

}  // namespace clinicflow::config
