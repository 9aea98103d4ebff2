#include "config/server_config.hpp"

#include "util/time.hpp"
#include "util/toml_json.hpp"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

namespace clinicflow::config {

namespace {

using namespace std::string_view_literals;

constexpr std::array kLogLevels{"trace"sv, "debug"sv, "info"sv, "warn"sv, "error"sv, "critical"sv, "off"sv};
constexpr std::array kClockModes{"real"sv, "virtual"sv};
constexpr std::array kSynchronousModes{"full"sv, "normal"sv};

constexpr std::array kSections{"server"sv, "paths"sv, "log"sv, "storage"sv, "delivery"sv, "api"sv, "roles"sv, "plugins"sv};
constexpr std::array kServerKeys{"listen"sv, "clock"sv, "strict"sv, "plugin_timeout"sv};
constexpr std::array kDeliveryKeys{"max_attempts"sv, "first_retry"sv, "max_retry"sv};
constexpr std::array kPathsKeys{"data_dir"sv, "database"sv, "workflows_dir"sv, "plugins_dir"sv};
constexpr std::array kLogKeys{"level"sv, "file"sv};
constexpr std::array kStorageKeys{"synchronous"sv, "cases_in_memory"sv};
constexpr std::array kRoleKeys{"description"sv, "methods"sv};
constexpr std::array kApiKeys{"max_message_bytes"sv, "max_connections"sv, "requests_per_second"sv, "idle_timeout"sv,
                              "auth_timeout"sv, "max_queued_bytes"sv, "tls_cert"sv, "tls_key"sv};

const char* const kLogLevelList = "trace, debug, info, warn, error, critical, off";
const char* const kListenRule = "must be HOST:PORT with a port from 0 to 65535 (0: any free port)";
const char* const kNameRule = "must start with a lowercase letter and contain only a-z, 0-9 and _";

std::vector<RoleConfig> default_roles() {
  // Kept in step with the [roles.*] tables of config/clinicflow.toml, so a config file that leaves
  // roles out behaves exactly like the shipped one.
  std::vector<RoleConfig> roles{
      {"frontdesk", "Registers patients, opens cases and books appointments.", {}},
      {"nurse", "Records vitals and assessments and carries out nursing steps.", {}},
      {"prescriber", "Orders and adjusts medication and signs clinical decisions.", {}},
      {"billing", "Reviews charges, insurance coverage and prior authorisations.", {}},
      {"admin", "Manages staff accounts, roles, workflows and plugins.", {}},
  };
  for (auto& role : roles) role.methods = default_methods(role.name);
  return roles;
}

template <std::size_t N>
bool is_one_of(std::string_view value, const std::array<std::string_view, N>& allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

// Values are echoed back inside double quotes; escaping keeps a stray quote or newline in the
// value from making the message ambiguous.
std::string quote_value(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.front() < 'a' || name.front() > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Insertions, deletions, substitutions and swaps of neighbours each count one: "levle" is one
// typo away from "level", not two.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The known name within two edits of the word, if any. On a short name two edits are most of the
// word ("foo" is two from "log"), so there the limit is half the name's length.
template <std::size_t N>
std::optional<std::string_view> closest(std::string_view word, const std::array<std::string_view, N>& candidates) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate);
    const std::size_t limit = std::min<std::size_t>(2, candidate.size() / 2);
    if (distance <= limit && (!best || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

// toml++ quotes the offending text, line break included; escaping keeps each error on one line.
std::string single_line(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out;
}

std::string type_phrase(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}


struct ListenAddress {
  std::string host;
  unsigned short port;
};

bool is_hostname_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// HOST:PORT, where HOST is a hostname, an IPv4 address or a bracketed IPv6 address ([::1]:8470).
// The host is returned without brackets, the form address parsers expect.
std::optional<ListenAddress> parse_listen(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    const auto zone = host.find('%');  // fe80::1%eth0: the zone names an interface
    const std::string_view address = host.substr(0, zone);
    if (address.find(':') == std::string_view::npos || !std::all_of(address.begin(), address.end(), is_ipv6_char))
      return std::nullopt;
    if (zone != std::string_view::npos) {
      const std::string_view zone_id = host.substr(zone + 1);
      if (zone_id.empty() || !std::all_of(zone_id.begin(), zone_id.end(), is_hostname_char)) return std::nullopt;
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_hostname_char)) return std::nullopt;
  }
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const unsigned long number = std::stoul(std::string(port));
  if (number > 65535) return std::nullopt;
  return ListenAddress{std::string(host), static_cast<unsigned short>(number)};
}

std::string listen_problem(std::string_view what, std::string_view text) {
  std::string message = std::string(what) + " " + kListenRule;
  const bool unbracketed_ipv6 = !text.empty() && text.front() != '[' && std::count(text.begin(), text.end(), ':') > 1;
  if (unbracketed_ipv6) message += " (an IPv6 host goes in brackets, e.g. [::1]:8470)";
  return message + ", not " + quote_value(text);
}

std::string clock_problem(std::string_view what, std::string_view text) {
  return std::string(what) + " must be \"real\" or \"virtual\", not " + quote_value(text);
}

std::string log_level_problem(std::string_view what, std::string_view text) {
  return std::string(what) + " must be one of " + kLogLevelList + ", not " + quote_value(text);
}

}  // namespace

std::vector<std::string> default_methods(const std::string& role) {
  // Every staff member may read what their work needs; writing is by role. Step roles in the
  // workflow still decide who may complete each step.
  std::vector<std::string> methods{"auth.login",  "workflow.list", "workflow.get", "patient.get",     "case.get",
                                   "case.list",   "case.history",  "subscribe",    "unsubscribe",     "clock.now",
                                   "plugin.list", "billing.summary", "messages.list"};
  if (role == "admin") return {"*"};
  if (role == "frontdesk") methods.insert(methods.end(), {"patient.create", "case.open", "case.submit", "case.close"});
  if (role == "nurse" || role == "billing") methods.insert(methods.end(), {"case.submit", "case.retry"});
  if (role == "prescriber") methods.insert(methods.end(), {"case.submit", "case.retry", "case.close"});
  return methods;
}

namespace {

class Loader {
 public:
  explicit Loader(std::string file_name) : file_name_(std::move(file_name)) {}

  ServerConfig load(const toml::table& root, const std::filesystem::path& file) {
    config_.file = file;
    for (const TomlEntry& entry : in_document_order(root)) {
      const std::string_view name = entry.key->str();
      const toml::table* table = entry.node->as_table();
      if (!is_one_of(name, kSections)) {
        report_unknown_section(entry);
      } else if (!table) {
        error(entry.node->source(), "'" + std::string(name) + "' must be a table ([" + std::string(name) + "]), not " +
                                        type_phrase(entry.node->type()));
      } else if (name == "server") {
        read_server(*table);
      } else if (name == "paths") {
        read_paths(*table);
      } else if (name == "log") {
        read_log(*table);
      } else if (name == "storage") {
        read_storage(*table);
      } else if (name == "delivery") {
        read_delivery(*table);
      } else if (name == "api") {
        read_api(*table);
      } else if (name == "roles") {
        read_roles(*table);
      } else if (name == "plugins") {
        read_plugins(*table);
      }
    }
    if (config_.roles.empty()) config_.roles = default_roles();
    return std::move(config_);
  }

  SourceErrors take_errors() {
    // Walking sections one after another can report out of line order; editors and people read
    // a list sorted by position more easily.
    std::stable_sort(errors_.begin(), errors_.end(), [](const SourceError& a, const SourceError& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    return std::move(errors_);
  }

 private:
  void error(const toml::source_region& where, std::string message) {
    errors_.push_back({file_name_, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column),
                       std::move(message)});
  }

  void report_unknown_section(const TomlEntry& entry) {
    const std::string name(entry.key->str());
    if (entry.node->is_table()) {
      // A [header] table points at its '['; a table made implicitly by a dotted key has no position of its own.
      const auto& where = entry.node->source().begin.line > 0 ? entry.node->source() : entry.key->source();
      std::string message = "unknown section [" + name + "]";
      if (auto suggestion = closest(name, kSections)) message += " — did you mean [" + std::string(*suggestion) + "]?";
      error(where, std::move(message));
      return;
    }
    std::string message = "unknown key '" + name + "' outside any section";
    if (auto section = section_holding(name)) message += " — did you mean to put it under [" + std::string(*section) + "]?";
    error(entry.key->source(), std::move(message));
  }

  static std::optional<std::string_view> section_holding(std::string_view key) {
    if (is_one_of(key, kServerKeys)) return "server"sv;
    if (is_one_of(key, kPathsKeys)) return "paths"sv;
    if (is_one_of(key, kLogKeys)) return "log"sv;
    if (is_one_of(key, kStorageKeys)) return "storage"sv;
    return std::nullopt;
  }

  template <std::size_t N>
  void report_unknown_key(const TomlEntry& entry, std::string_view section, const std::array<std::string_view, N>& known) {
    std::string message = "unknown key '" + std::string(entry.key->str()) + "' in [" + std::string(section) + "]";
    if (auto suggestion = closest(entry.key->str(), known)) message += " — did you mean '" + std::string(*suggestion) + "'?";
    error(entry.key->source(), std::move(message));
  }

  std::optional<std::string> read_string(const TomlEntry& entry) {
    if (const auto* value = entry.node->as_string()) return value->get();
    error(entry.node->source(),
          "'" + std::string(entry.key->str()) + "' must be a string, not " + type_phrase(entry.node->type()));
    return std::nullopt;
  }

  std::optional<bool> read_bool(const TomlEntry& entry) {
    if (const auto* value = entry.node->as_boolean()) return value->get();
    error(entry.node->source(),
          "'" + std::string(entry.key->str()) + "' must be true or false, not " + type_phrase(entry.node->type()));
    return std::nullopt;
  }

  void read_path(const TomlEntry& entry, std::filesystem::path& target, bool may_be_empty) {
    const auto text = read_string(entry);
    if (!text) return;
    if (text->empty() && !may_be_empty) {
      error(entry.node->source(), "'" + std::string(entry.key->str()) + "' must not be empty");
      return;
    }
    target = *text;
  }

  void read_server(const toml::table& table) {
    for (const TomlEntry& entry : in_document_order(table)) {
      const std::string_view key = entry.key->str();
      if (key == "listen") {
        if (const auto text = read_string(entry)) {
          if (const auto address = parse_listen(*text)) {
            config_.listen_host = address->host;
            config_.listen_port = address->port;
          } else {
            error(entry.node->source(), listen_problem("listen", *text));
          }
        }
      } else if (key == "clock") {
        if (const auto text = read_string(entry)) {
          if (is_one_of(*text, kClockModes))
            config_.clock = *text;
          else
            error(entry.node->source(), clock_problem("clock", *text));
        }
      } else if (key == "strict") {
        if (const auto value = read_bool(entry)) config_.strict = *value;
      } else if (key == "plugin_timeout") {
        read_duration(entry, config_.plugin_timeout);
      } else {
        report_unknown_key(entry, "server", kServerKeys);
      }
    }
  }

  void read_paths(const toml::table& table) {
    for (const TomlEntry& entry : in_document_order(table)) {
      const std::string_view key = entry.key->str();
      if (key == "data_dir") {
        read_path(entry, config_.data_dir, false);
      } else if (key == "database") {
        // An empty database would silently mean "the default"; leaving the key out says that plainly.
        read_path(entry, config_.database, false);
      } else if (key == "workflows_dir") {
        read_path(entry, config_.workflows_dir, false);
      } else if (key == "plugins_dir") {
        read_path(entry, config_.plugins_dir, false);
      } else {
        report_unknown_key(entry, "paths", kPathsKeys);
      }
    }
  }

  void read_log(const toml::table& table) {
    for (const TomlEntry& entry : in_document_order(table)) {
      const std::string_view key = entry.key->str();
      if (key == "level") {
        if (const auto text = read_string(entry)) {
          if (is_one_of(*text, kLogLevels))
            config_.log_level = *text;
          else
            error(entry.node->source(), log_level_problem("log level", *text));
        }
      } else if (key == "file") {
        std::filesystem::path file;
        read_path(entry, file, true);  // empty: log to the console only
        config_.log_file = file;
      } else {
        report_unknown_key(entry, "log", kLogKeys);
      }
    }
  }

  void read_duration(const TomlEntry& entry, Duration& target) {
    const auto text = read_string(entry);
    if (!text) return;
    std::string why;
    if (auto d = parse_duration(*text, &why)) target = *d;
    else error(entry.node->source(), "'" + std::string(entry.key->str()) + "' = " + quote_value(*text) + " is not a duration: " + why);
  }

  void read_delivery(const toml::table& table) {
    for (const TomlEntry& entry : in_document_order(table)) {
      const std::string_view key = entry.key->str();
      if (key == "max_attempts") {
        const auto* value = entry.node->as_integer();
        if (!value || value->get() < 1 || value->get() > 100)
          error(entry.node->source(), "'max_attempts' must be a whole number from 1 to 100");
        else
          config_.delivery_max_attempts = static_cast<int>(value->get());
      } else if (key == "first_retry") {
        read_duration(entry, config_.delivery_first_retry);
      } else if (key == "max_retry") {
        read_duration(entry, config_.delivery_max_retry);
      } else {
        report_unknown_key(entry, "delivery", kDeliveryKeys);
      }
    }
  }

  void read_positive(const TomlEntry& entry, std::int64_t max, auto& target) {
    const auto* value = entry.node->as_integer();
    if (!value || value->get() < 1 || value->get() > max)
      error(entry.node->source(), "'" + std::string(entry.key->str()) + "' must be a whole number from 1 to " + std::to_string(max));
    else
      target = static_cast<std::remove_reference_t<decltype(target)>>(value->get());
  }

  void read_api(const toml::table& table) {
    for (const TomlEntry& entry : in_document_order(table)) {
      const std::string_view key = entry.key->str();
      if (key == "max_message_bytes") read_positive(entry, 64LL * 1024 * 1024, config_.api_max_message_bytes);
      else if (key == "max_connections") read_positive(entry, 100'000, config_.api_max_connections);
      else if (key == "requests_per_second") read_positive(entry, 1'000'000, config_.api_requests_per_second);
      else if (key == "max_queued_bytes") read_positive(entry, 1024LL * 1024 * 1024, config_.api_max_queued_bytes);
      else if (key == "idle_timeout") read_duration(entry, config_.api_idle_timeout);
      else if (key == "auth_timeout") read_duration(entry, config_.api_auth_timeout);
      else if (key == "tls_cert") read_path(entry, config_.tls_cert, true);
      else if (key == "tls_key") read_path(entry, config_.tls_key, true);
      else report_unknown_key(entry, "api", kApiKeys);
    }
  }

  void read_storage(const toml::table& table) {
    for (const TomlEntry& entry : in_document_order(table)) {
      if (entry.key->str() == "synchronous") {
        if (const auto text = read_string(entry)) {
          if (is_one_of(*text, kSynchronousModes))
            config_.synchronous = *text;
          else
            error(entry.node->source(), "synchronous must be \"full\" or \"normal\", not " + quote_value(*text));
        }
      } else if (entry.key->str() == "cases_in_memory") {
        read_positive(entry, 10'000'000, config_.cases_in_memory);
      } else {
        report_unknown_key(entry, "storage", kStorageKeys);
      }
    }
  }

  void read_roles(const toml::table& roles) {
    for (const TomlEntry& entry : in_document_order(roles)) {
      const std::string name(entry.key->str());
      const toml::table* table = entry.node->as_table();
      if (!table) {
        error(entry.node->source(), "role '" + name + "' must be a table ([roles." + name + "]), not " +
                                        type_phrase(entry.node->type()));
        continue;
      }
      if (!is_valid_name(name)) error(entry.key->source(), "role name '" + name + "' " + kNameRule);
      RoleConfig role{name, "", {}};
      bool methods_set = false;
      const std::string section = "roles." + name;
      for (const TomlEntry& field : in_document_order(*table)) {
        if (field.key->str() == "description") {
          if (const auto text = read_string(field)) role.description = *text;
        } else if (field.key->str() == "methods") {
          const toml::array* list = field.node->as_array();
          if (!list) {
            error(field.node->source(), "'methods' must be a list of API method names, such as [\"case.get\", \"case.submit\"]");
            continue;
          }
          methods_set = true;
          for (const auto& item : *list) {
            if (const auto* text = item.as_string()) role.methods.push_back(text->get());
            else error(item.source(), "'methods' must hold only method names in quotes");
          }
        } else {
          report_unknown_key(field, section, kRoleKeys);
        }
      }
      if (!methods_set) role.methods = default_methods(role.name);
      config_.roles.push_back(std::move(role));
    }
  }

  void read_plugins(const toml::table& plugins) {
    for (const TomlEntry& entry : in_document_order(plugins)) {
      const std::string name(entry.key->str());
      const toml::table* table = entry.node->as_table();
      if (!table) {
        error(entry.node->source(), "plugin '" + name + "' must be a table ([plugins." + name + "]), not " +
                                        type_phrase(entry.node->type()));
        continue;
      }
      if (!is_valid_name(name)) error(entry.key->source(), "plugin name '" + name + "' " + kNameRule);
      const auto& where = table->source().begin.line > 0 ? table->source() : entry.key->source();
      config_.plugins.push_back({name, toml_table_to_json(*table), static_cast<int>(where.begin.line),
                                 static_cast<int>(where.begin.column)});
    }
  }

  std::string file_name_;
  ServerConfig config_;
  SourceErrors errors_;
};

std::string join_lines(const SourceErrors& errors) {
  std::string out;
  for (const SourceError& error : errors) {
    if (!out.empty()) out += '\n';
    out += error.to_string();
  }
  return out;
}

// Reads the whole file ourselves so a missing or unreadable file gets the operating system's reason
// rather than the parser's generic "could not be opened".
std::string read_file(const std::filesystem::path& file, const std::string& file_name) {
  std::error_code status_error;
  if (std::filesystem::is_directory(file, status_error))
    throw ConfigError({{file_name, 0, 0, "is a directory, not a config file"}});
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const int reason = errno;
    if (reason == ENOENT || (reason == 0 && !std::filesystem::exists(file, status_error)))
      throw ConfigError({{file_name, 0, 0, "file not found"}});
    std::string message = "cannot read the file: " + std::generic_category().message(reason ? reason : EIO);
    throw ConfigError({{file_name, 0, 0, std::move(message)}});
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw ConfigError({{file_name, 0, 0, "cannot read the file: input/output error"}});
  return std::move(contents).str();
}

}  // namespace

ConfigError::ConfigError(SourceErrors errors) : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

ServerConfig load_config_file(const std::filesystem::path& file) {
  const std::string file_name = file.string();
  const std::string contents = read_file(file, file_name);
  toml::table root;
  try {
    root = toml::parse(contents, std::string(file_name));
  } catch (const toml::parse_error& e) {
    throw ConfigError({{file_name, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column),
                        single_line(e.description())}});
  }
  Loader loader(file_name);
  ServerConfig config = loader.load(root, file);
  if (SourceErrors errors = loader.take_errors(); !errors.empty()) throw ConfigError(std::move(errors));
  return config;
}

void apply_overrides(ServerConfig& config, const Overrides& overrides) {
  // Validate every flag before changing anything, so a rejected command line leaves the config as it was.
  SourceErrors errors;
  auto reject = [&errors](std::string message) { errors.push_back({"command line", 0, 0, std::move(message)}); };

  std::optional<ListenAddress> listen;
  if (overrides.listen) {
    listen = parse_listen(*overrides.listen);
    if (!listen) reject(listen_problem("--listen", *overrides.listen));
  }
  if (overrides.data_dir && overrides.data_dir->empty()) reject("--data-dir must not be empty");
  if (overrides.clock && !is_one_of(*overrides.clock, kClockModes)) reject(clock_problem("--clock", *overrides.clock));
  if (overrides.log_level && !is_one_of(*overrides.log_level, kLogLevels))
    reject(log_level_problem("--log-level", *overrides.log_level));
  if (!errors.empty()) throw ConfigError(std::move(errors));

  if (listen) {
    config.listen_host = listen->host;
    config.listen_port = listen->port;
  }
  if (overrides.data_dir) config.data_dir = *overrides.data_dir;
  if (overrides.clock) config.clock = *overrides.clock;
  if (overrides.log_level) config.log_level = *overrides.log_level;
  if (overrides.strict) config.strict = true;
}

}  // namespace clinicflow::config
