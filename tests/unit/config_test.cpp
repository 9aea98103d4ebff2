// The server config file: defaults, every value it reads, every mistake it names (with line and
// column), plugin settings as JSON, and command-line overrides.
#include "config/server_config.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

#include <boost/json/serialize.hpp>

#include <string>

using clinicflow::SourceError;
using clinicflow::SourceErrors;
using namespace clinicflow::config;

namespace {

std::filesystem::path data_file(const std::string& name) {
  return std::filesystem::path(CLINICFLOW_TEST_DATA) / "config" / name;
}

// Loads a file that must be rejected and returns what was reported.
SourceErrors errors_of(const std::filesystem::path& file) {
  try {
    load_config_file(file);
  } catch (const ConfigError& e) {
    return e.errors();
  }
  FAIL("expected " << file << " to be rejected");
  return {};
}

SourceErrors errors_of(const Overrides& overrides) {
  ServerConfig config;
  try {
    apply_overrides(config, overrides);
  } catch (const ConfigError& e) {
    return e.errors();
  }
  FAIL("expected the overrides to be rejected");
  return {};
}

void check_error(const SourceError& error, const std::filesystem::path& file, int line, int column,
                 const std::string& message) {
  INFO(error.to_string());
  CHECK(error.file == file.string());
  CHECK(error.line == line);
  CHECK(error.column == column);
  CHECK_THAT(error.message, Catch::Matchers::Contains(message));
}

// The single error a file produces.
SourceError only_error(const std::filesystem::path& file) {
  const SourceErrors errors = errors_of(file);
  INFO(file);
  REQUIRE(errors.size() == 1);
  return errors.front();
}

void check_default_roles(const std::vector<RoleConfig>& roles) {
  REQUIRE(roles.size() == 5);
  CHECK(roles[0].name == "frontdesk");
  CHECK(roles[1].name == "nurse");
  CHECK(roles[2].name == "prescriber");
  CHECK(roles[3].name == "billing");
  CHECK(roles[4].name == "admin");
  for (const RoleConfig& role : roles) CHECK_FALSE(role.description.empty());
}

}  // namespace

TEST_CASE("the shipped config file loads with the documented defaults", "[config]") {
  const auto file = std::filesystem::path(CLINICFLOW_SOURCE_DIR) / "config" / "clinicflow.toml";
  const ServerConfig config = load_config_file(file);
  CHECK(config.file == file);
  CHECK(config.listen_host == "127.0.0.1");
  CHECK(config.listen_port == 8470);
  CHECK(config.clock == "real");
  CHECK(config.strict == false);
  CHECK(config.data_dir == "var");
  CHECK(config.database.empty());
  CHECK(config.database_path() == std::filesystem::path("var/clinicflow.db"));
  CHECK(config.workflows_dir == "workflows");
  CHECK(config.plugins_dir == "build/plugins");
  CHECK(config.log_level == "info");
  CHECK_FALSE(config.log_file);
  CHECK(config.log_path() == std::filesystem::path("var/clinicflow.log"));
  CHECK(config.synchronous == "full");
  CHECK(config.plugin_timeout == 10'000);
  CHECK(config.delivery_max_attempts == 8);
  CHECK(config.delivery_first_retry == 30'000);
  CHECK(config.delivery_max_retry == 3'600'000);
  // Every shipped plugin the shipped workflows use is on, with example settings.
  std::vector<std::string> names;
  for (const auto& p : config.plugins) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"outbox_file", "iv_ketamine", "im_ketamine", "esketamine_nasal", "self_pay", "insurance"});
  REQUIRE_FALSE(config.plugins.empty());
  CHECK(config.plugins[0].settings.at("path") == "var/outbox.jsonl");
  check_default_roles(config.roles);

  SECTION("its roles are exactly the built-in defaults, descriptions included") {
    const ServerConfig defaults = load_config_file(data_file("empty.toml"));
    REQUIRE(defaults.roles.size() == config.roles.size());
    for (std::size_t i = 0; i < config.roles.size(); ++i) {
      CHECK(defaults.roles[i].name == config.roles[i].name);
      CHECK(defaults.roles[i].description == config.roles[i].description);
    }
  }
}

TEST_CASE("an empty file gives the built-in defaults and the five default roles", "[config]") {
  const ServerConfig config = load_config_file(data_file("empty.toml"));
  const ServerConfig defaults;
  CHECK(config.file == data_file("empty.toml"));
  CHECK(config.listen_host == defaults.listen_host);
  CHECK(config.listen_port == 8470);
  CHECK(config.clock == "real");
  CHECK(config.strict == false);
  CHECK(config.data_dir == "var");
  CHECK(config.database_path() == std::filesystem::path("var/clinicflow.db"));
  CHECK(config.workflows_dir == defaults.workflows_dir);
  CHECK(config.plugins_dir == defaults.plugins_dir);
  CHECK(config.log_level == "info");
  CHECK(config.log_file == defaults.log_file);
  CHECK(config.synchronous == "full");
  CHECK(config.cases_in_memory == 65'536);
  CHECK(config.plugins.empty());
  check_default_roles(config.roles);
}

TEST_CASE("every setting is read as written", "[config]") {
  const ServerConfig config = load_config_file(data_file("valid_custom.toml"));
  CHECK(config.listen_host == "0.0.0.0");
  CHECK(config.listen_port == 9000);
  CHECK(config.clock == "virtual");
  CHECK(config.strict == true);
  CHECK(config.data_dir == "/srv/clinicflow");
  CHECK(config.database_path() == std::filesystem::path("/srv/db/clinic.db"));
  CHECK(config.workflows_dir == "clinic/workflows");
  CHECK(config.plugins_dir == "/opt/clinicflow/plugins");
  CHECK(config.log_level == "debug");
  REQUIRE(config.log_file);
  CHECK(config.log_path().empty());
  CHECK(config.synchronous == "normal");
  check_default_roles(config.roles);
}

TEST_CASE("role tables replace the defaults, in file order, and may be empty", "[config]") {
  const ServerConfig config = load_config_file(data_file("custom_roles.toml"));
  REQUIRE(config.roles.size() == 3);
  CHECK(config.roles[0].name == "triage");
  CHECK(config.roles[0].description.empty());
  CHECK(config.roles[1].name == "doctor");
  CHECK(config.roles[1].description == "Sees patients.");
  CHECK(config.roles[2].name == "lab_tech_2");
  CHECK(config.roles[2].description == "Runs lab tests.");
}

TEST_CASE("a bracketed IPv6 listen address is accepted", "[config]") {
  const ServerConfig config = load_config_file(data_file("listen_ipv6.toml"));
  CHECK(config.listen_host == "::1");
  CHECK(config.listen_port == 9443);
}

TEST_CASE("an unknown key is named with its position and the closest known key", "[config]") {
  const auto file = data_file("unknown_key.toml");
  const SourceError error = only_error(file);
  check_error(error, file, 3, 3, "unknown key 'lisen' in [server] — did you mean 'listen'?");
  CHECK(error.to_string() == file.string() + ":3:3: unknown key 'lisen' in [server] — did you mean 'listen'?");
}

TEST_CASE("an unknown key far from every known key gets no suggestion", "[config]") {
  const auto file = data_file("unknown_key_far.toml");
  const SourceError error = only_error(file);
  check_error(error, file, 2, 1, "unknown key 'colour' in [log]");
  CHECK(error.message == "unknown key 'colour' in [log]");
}

TEST_CASE("two swapped letters count as one typo", "[config]") {
  const auto file = data_file("unknown_key_swapped.toml");
  check_error(only_error(file), file, 2, 1, "unknown key 'levle' in [log] — did you mean 'level'?");
}

TEST_CASE("a setting outside any section points to the section it belongs in", "[config]") {
  const auto file = data_file("unknown_key_top_level.toml");
  check_error(only_error(file), file, 1, 1,
              "unknown key 'clock' outside any section — did you mean to put it under [server]?");
}

TEST_CASE("an unknown section is named, with a suggestion when one is close", "[config]") {
  const auto file = data_file("unknown_section.toml");
  const SourceErrors errors = errors_of(file);
  REQUIRE(errors.size() == 2);
  check_error(errors[0], file, 4, 1, "unknown section [foo]");
  CHECK(errors[0].message == "unknown section [foo]");
  check_error(errors[1], file, 7, 1, "unknown section [sever] — did you mean [server]?");
}

TEST_CASE("a value of the wrong type is named with the expected and actual kind", "[config]") {
  const auto file = data_file("wrong_types.toml");
  const SourceErrors errors = errors_of(file);
  REQUIRE(errors.size() == 9);
  check_error(errors[0], file, 2, 10, "'listen' must be a string, not an integer");
  check_error(errors[1], file, 3, 10, "'strict' must be true or false, not a string");
  check_error(errors[2], file, 4, 9, "'clock' must be a string, not an array");
  check_error(errors[3], file, 7, 12, "'data_dir' must be a string, not a floating-point number");
  check_error(errors[4], file, 8, 17, "'workflows_dir' must be a string, not a boolean");
  check_error(errors[5], file, 11, 9, "'level' must be a string, not a date");
  check_error(errors[6], file, 12, 8, "'file' must be a string, not a table");
  check_error(errors[7], file, 15, 15, "'synchronous' must be a string, not a time");
  check_error(errors[8], file, 18, 15, "'description' must be a string, not a date-time");
}

TEST_CASE("sections, roles and plugins that are not tables are rejected", "[config]") {
  const auto file = data_file("sections_not_tables.toml");
  const SourceErrors errors = errors_of(file);
  REQUIRE(errors.size() == 3);
  check_error(errors[0], file, 1, 10, "'server' must be a table ([server]), not a string");
  check_error(errors[1], file, 3, 9, "role 'nurse' must be a table ([roles.nurse]), not an integer");
  check_error(errors[2], file, 5, 7, "plugin 'sms' must be a table ([plugins.sms]), not a string");
}

TEST_CASE("an unknown clock mode is rejected", "[config]") {
  const auto file = data_file("bad_clock.toml");
  const SourceError error = only_error(file);
  check_error(error, file, 2, 11, "clock must be \"real\" or \"virtual\", not \"fast\"");
  CHECK(error.message == "clock must be \"real\" or \"virtual\", not \"fast\"");
}

TEST_CASE("an unknown log level is rejected", "[config]") {
  const auto file = data_file("bad_log_level.toml");
  check_error(only_error(file), file, 2, 9,
              "log level must be one of trace, debug, info, warn, error, critical, off, not \"verbose\"");
}

TEST_CASE("a malformed listen address is rejected", "[config]") {
  const std::string rule = "listen must be HOST:PORT with a port from 0 to 65535 (0: any free port)";
  SECTION("no port") {
    const auto file = data_file("listen_no_port.toml");
    check_error(only_error(file), file, 2, 10, rule + ", not \"127.0.0.1\"");
  }
  SECTION("port 0 means any free port, which the server prints at start") {
    const auto config = load_config_file(data_file("listen_port_zero.toml"));
    CHECK(config.listen_port == 0);
  }
  SECTION("port 70000") {
    const auto file = data_file("listen_port_too_big.toml");
    check_error(only_error(file), file, 2, 10, rule + ", not \"localhost:70000\"");
  }
  SECTION("garbage") {
    const auto file = data_file("listen_garbage.toml");
    check_error(only_error(file), file, 2, 12, rule + ", not \"not an address\"");
  }
}

TEST_CASE("an unknown synchronous mode is rejected", "[config]") {
  const auto file = data_file("bad_synchronous.toml");
  check_error(only_error(file), file, 2, 15, "synchronous must be \"full\" or \"normal\", not \"off\"");
}

TEST_CASE("empty paths are rejected", "[config]") {
  const auto file = data_file("empty_paths.toml");
  const SourceErrors errors = errors_of(file);
  REQUIRE(errors.size() == 2);
  check_error(errors[0], file, 2, 12, "'data_dir' must not be empty");
  check_error(errors[1], file, 3, 12, "'database' must not be empty");
}

TEST_CASE("a role name must be lowercase letters, digits and underscores", "[config]") {
  const auto file = data_file("bad_role_name.toml");
  check_error(only_error(file), file, 4, 8,
              "role name 'Front-Desk' must start with a lowercase letter and contain only a-z, 0-9 and _");
}

TEST_CASE("a role table may only have a description", "[config]") {
  const auto file = data_file("role_unknown_key.toml");
  check_error(only_error(file), file, 2, 1,
              "unknown key 'descripton' in [roles.nurse] — did you mean 'description'?");
}

TEST_CASE("a TOML syntax error gives the parser's position and description", "[config]") {
  const auto file = data_file("syntax_error.toml");
  const SourceError error = only_error(file);
  CHECK(error.file == file.string());
  CHECK(error.line == 3);
  CHECK(error.column == 13);  // toml++ stops where the word ends
  CHECK(error.message == "Error while parsing boolean: expected 'true', saw 'tru\\n'");
}

TEST_CASE("a missing file is reported as such, without a position", "[config]") {
  const auto file = data_file("no_such_file.toml");
  const SourceError error = only_error(file);
  CHECK(error.file == file.string());
  CHECK(error.line == 0);
  CHECK(error.column == 0);
  CHECK(error.message == "file not found");
  CHECK(error.to_string() == file.string() + ": file not found");
}

TEST_CASE("a directory in place of the file is reported", "[config]") {
  const auto file = data_file("");
  const SourceError error = only_error(file);
  CHECK(error.line == 0);
  CHECK_THAT(error.message, Catch::Matchers::Contains("directory"));
}

TEST_CASE("every problem in a file is reported in one throw, in file order", "[config]") {
  const auto file = data_file("multiple_errors.toml");
  try {
    load_config_file(file);
    FAIL("expected the file to be rejected");
  } catch (const ConfigError& e) {
    const SourceErrors& errors = e.errors();
    REQUIRE(errors.size() == 4);
    check_error(errors[0], file, 2, 10, "listen must be HOST:PORT");
    check_error(errors[1], file, 3, 9, "clock must be \"real\" or \"virtual\", not \"fast\"");
    check_error(errors[2], file, 6, 9, "log level must be one of");
    check_error(errors[3], file, 9, 15, "'synchronous' must be a string, not an integer");
    CHECK(std::string(e.what()) == errors[0].to_string() + "\n" + errors[1].to_string() + "\n" +
                                       errors[2].to_string() + "\n" + errors[3].to_string());
  }
}

TEST_CASE("plugin tables become JSON settings, dates and times as RFC 3339 strings", "[config]") {
  const ServerConfig config = load_config_file(data_file("plugins.toml"));
  REQUIRE(config.plugins.size() == 2);

  const PluginConfig& dose = config.plugins[0];
  CHECK(dose.name == "dose_check");
  CHECK(dose.line == 1);
  CHECK(dose.column == 1);
  const boost::json::object& s = dose.settings;
  CHECK(s.at("max_daily_mg").is_int64());
  CHECK(s.at("max_daily_mg").as_int64() == 4000);
  CHECK(s.at("ratio").is_double());
  CHECK(s.at("ratio").as_double() == 0.75);
  CHECK(s.at("enabled").is_bool());
  CHECK(s.at("enabled").as_bool() == false);
  CHECK(s.at("label").as_string() == "Dose check");
  CHECK(boost::json::serialize(s.at("mixed")) == R"([1,2.5E0,"three",true])");
  CHECK(s.at("review_on").as_string() == "2024-03-01");
  CHECK(s.at("cutoff").as_string() == "17:30:00");
  CHECK(s.at("local").as_string() == "2024-03-01T08:00:00");
  CHECK(s.at("utc").as_string() == "2024-03-01T08:00:00Z");
  CHECK(s.at("offset").as_string() == "2024-03-01T08:00:00.25-05:30");
  CHECK(s.at("precise").as_string() == "07:32:00.000001");
  CHECK(boost::json::serialize(s.at("limits")) ==
        R"({"adult":{"max":4000,"unit":"mg"},"child":[{"max_per_kg":15},{"max_per_kg":75,"per":"day"}]})");
  CHECK(s.size() == 12);

  const PluginConfig& sms = config.plugins[1];
  CHECK(sms.name == "sms");
  CHECK(sms.settings.empty());
  CHECK(sms.line == 18);
  CHECK(sms.column == 3);
}

TEST_CASE("a plugin name must be lowercase letters, digits and underscores", "[config]") {
  const auto file = data_file("bad_plugin_name.toml");
  check_error(only_error(file), file, 1, 10,
              "plugin name 'SMS' must start with a lowercase letter and contain only a-z, 0-9 and _");
}

TEST_CASE("command-line overrides replace file settings", "[config]") {
  ServerConfig config = load_config_file(data_file("valid_custom.toml"));
  Overrides overrides;
  overrides.listen = "[::1]:8471";
  overrides.data_dir = "/tmp/clinic";
  overrides.clock = "real";
  overrides.log_level = "warn";
  overrides.strict = false;  // absent --strict keeps the file's choice
  apply_overrides(config, overrides);
  CHECK(config.listen_host == "::1");
  CHECK(config.listen_port == 8471);
  CHECK(config.data_dir == "/tmp/clinic");
  CHECK(config.database_path() == std::filesystem::path("/srv/db/clinic.db"));
  CHECK(config.clock == "real");
  CHECK(config.log_level == "warn");
  CHECK(config.strict == true);

  SECTION("--strict turns strict mode on") {
    ServerConfig lenient;
    Overrides strict_only;
    strict_only.strict = true;
    apply_overrides(lenient, strict_only);
    CHECK(lenient.strict == true);
    CHECK(lenient.listen_port == 8470);
  }

  SECTION("--data-dir moves the default database and log with it") {
    ServerConfig defaults;
    Overrides data_dir_only;
    data_dir_only.data_dir = "/tmp/elsewhere";
    apply_overrides(defaults, data_dir_only);
    CHECK(defaults.database_path() == std::filesystem::path("/tmp/elsewhere/clinicflow.db"));
    CHECK(defaults.log_path() == std::filesystem::path("/tmp/elsewhere/clinicflow.log"));
  }
  SECTION("no overrides change nothing") {
    ServerConfig before = config;
    apply_overrides(config, Overrides{});
    CHECK(config.listen_host == before.listen_host);
    CHECK(config.clock == before.clock);
    CHECK(config.strict == before.strict);
  }
}

TEST_CASE("bad command-line overrides are all rejected at once and change nothing", "[config]") {
  Overrides overrides;
  overrides.listen = "127.0.0.1:99999";
  overrides.data_dir = "";
  overrides.clock = "fast";
  overrides.log_level = "loud";
  overrides.strict = true;

  ServerConfig config;
  CHECK_THROWS_AS(apply_overrides(config, overrides), ConfigError);
  CHECK(config.strict == false);
  CHECK(config.data_dir == "var");
  CHECK(config.clock == "real");

  const SourceErrors errors = errors_of(overrides);
  REQUIRE(errors.size() == 4);
  for (const SourceError& error : errors) {
    CHECK(error.file == "command line");
    CHECK(error.line == 0);
  }
  CHECK(errors[0].message == "--listen must be HOST:PORT with a port from 0 to 65535 (0: any free port), not \"127.0.0.1:99999\"");
  CHECK(errors[1].message == "--data-dir must not be empty");
  CHECK(errors[2].message == "--clock must be \"real\" or \"virtual\", not \"fast\"");
  CHECK(errors[3].message ==
        "--log-level must be one of trace, debug, info, warn, error, critical, off, not \"loud\"");
  CHECK(errors[2].to_string() == "command line: --clock must be \"real\" or \"virtual\", not \"fast\"");
}

TEST_CASE("listen addresses: what is accepted and what is not", "[config]") {
  auto accepted = [](const std::string& listen) {
    ServerConfig config;
    Overrides overrides;
    overrides.listen = listen;
    try {
      apply_overrides(config, overrides);
    } catch (const ConfigError&) {
      return false;
    }
    return true;
  };
  CHECK(accepted("localhost:1"));
  CHECK(accepted("clinic.example.org:65535"));
  CHECK(accepted("0.0.0.0:8470"));
  CHECK(accepted("[::]:8470"));
  CHECK(accepted("[fe80::1%eth0]:8470"));
  CHECK_FALSE(accepted(""));
  CHECK_FALSE(accepted(":8470"));
  CHECK_FALSE(accepted("localhost:"));
  CHECK_FALSE(accepted("localhost:+80"));
  CHECK_FALSE(accepted("localhost:65536"));
  CHECK_FALSE(accepted("localhost:008470"));
  CHECK_FALSE(accepted("local host:8470"));
  CHECK_FALSE(accepted("[::1]8470"));
  CHECK_FALSE(accepted("[]:8470"));
  CHECK_FALSE(accepted("[not:v6!]:8470"));

  Overrides unbracketed;
  unbracketed.listen = "::1:8470";
  const SourceErrors errors = errors_of(unbracketed);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0].message, Catch::Matchers::Contains("an IPv6 host goes in brackets"));
}

TEST_CASE("plugin timeout and message delivery settings are read and checked", "[config]") {
  clinicflow::testing::TempDir dir("clinicflow-config-delivery");
  const auto file = dir.path() / "delivery.toml";
  {
    std::ofstream out(file);
    out << "[server]\nplugin_timeout = \"2s\"\n[delivery]\nmax_attempts = 3\nfirst_retry = \"1m\"\nmax_retry = \"2h\"\n";
  }
  const ServerConfig config = load_config_file(file);
  CHECK(config.plugin_timeout == 2'000);
  CHECK(config.delivery_max_attempts == 3);
  CHECK(config.delivery_first_retry == 60'000);
  CHECK(config.delivery_max_retry == 7'200'000);
  {
    std::ofstream out(file);
    out << "[server]\nplugin_timeout = \"soon\"\n[delivery]\nmax_attempts = 0\nretries = 2\n";
  }
  try {
    load_config_file(file);
    FAIL("accepted bad delivery settings");
  } catch (const ConfigError& e) {
    REQUIRE(e.errors().size() == 3);
    CHECK(e.errors()[0].line == 2);
    CHECK(e.errors()[0].message.find("'plugin_timeout' = \"soon\" is not a duration") != std::string::npos);
    CHECK(e.errors()[1].line == 4);
    CHECK(e.errors()[1].message == "'max_attempts' must be a whole number from 1 to 100");
    CHECK(e.errors()[2].line == 5);
    CHECK(e.errors()[2].message.find("unknown key 'retries' in [delivery]") != std::string::npos);
  }
}

TEST_CASE("cases_in_memory is read and checked", "[config]") {
  clinicflow::testing::TempDir dir("clinicflow-config-cases");
  const auto file = dir.path() / "storage.toml";
  {
    std::ofstream out(file);
    out << "[storage]\ncases_in_memory = 500\n";
  }
  CHECK(load_config_file(file).cases_in_memory == 500);
  for (const char* bad : {"0", "-3", "10000001", "\"many\""}) {
    {
      std::ofstream out(file);
      out << "[storage]\nsynchronous = \"full\"\ncases_in_memory = " << bad << "\n";
    }
    try {
      load_config_file(file);
      FAIL("accepted cases_in_memory = " << bad);
    } catch (const ConfigError& e) {
      REQUIRE(e.errors().size() == 1);
      CHECK(e.errors()[0].line == 3);
      CHECK(e.errors()[0].message == "'cases_in_memory' must be a whole number from 1 to 10000000");
    }
  }
}

TEST_CASE("API limits and role methods are read and checked", "[config]") {
  clinicflow::testing::TempDir dir("clinicflow-config-api");
  const auto file = dir.path() / "api.toml";
  {
    std::ofstream out(file);
    out << "[api]\nmax_message_bytes = 1024\nmax_connections = 8\nrequests_per_second = 50\nidle_timeout = \"2m\"\n"
           "auth_timeout = \"5s\"\nmax_queued_bytes = 4096\n"
           "[roles.nurse]\nmethods = [\"case.get\", \"case.submit\"]\n[roles.scheduler]\ndescription = \"Books sessions\"\n"
           "[roles.admin]\n";
  }
  const ServerConfig config = load_config_file(file);
  CHECK(config.api_max_message_bytes == 1024);
  CHECK(config.api_max_connections == 8);
  CHECK(config.api_requests_per_second == 50);
  CHECK(config.api_idle_timeout == 120'000);
  CHECK(config.api_auth_timeout == 5'000);
  CHECK(config.api_max_queued_bytes == 4096);
  REQUIRE(config.roles.size() == 3);
  CHECK(config.roles[0].methods == std::vector<std::string>{"case.get", "case.submit"});
  CHECK(config.roles[1].methods == default_methods("scheduler"));  // a new role reads only
  CHECK(std::find(config.roles[1].methods.begin(), config.roles[1].methods.end(), "case.submit") == config.roles[1].methods.end());
  CHECK(config.roles[2].methods == std::vector<std::string>{"*"});
  {
    std::ofstream out(file);
    out << "[api]\nmax_connections = 0\nlimit = 3\n[roles.nurse]\nmethods = \"case.get\"\n";
  }
  try {
    load_config_file(file);
    FAIL("accepted bad API settings");
  } catch (const ConfigError& e) {
    REQUIRE(e.errors().size() == 3);
    CHECK(e.errors()[0].message == "'max_connections' must be a whole number from 1 to 100000");
    CHECK(e.errors()[1].message.find("unknown key 'limit' in [api]") != std::string::npos);
    CHECK(e.errors()[2].message.find("'methods' must be a list of API method names") != std::string::npos);
    CHECK(e.errors()[2].line == 5);
  }
}
