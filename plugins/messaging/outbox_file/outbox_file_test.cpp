#include "outbox_file.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <cctype>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

// The C ABI, exported by CLINICFLOW_PLUGIN in outbox_file.cpp (compiled into this test).
namespace fs = std::filesystem;
namespace json = boost::json;
using clinicflow::Delivery;
using clinicflow::Message;
using clinicflow::Settings;
using clinicflow::messaging::OutboxFile;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("outbox_file_test." + std::to_string(::getpid()) + "." + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

Settings settings(const fs::path& path, bool fsync = true) {
  return Settings(json::object{{"path", path.string()}, {"fsync", fsync}});
}

Message message(std::string id, int attempt = 1) {
  Message m;
  m.id = std::move(id);
  m.case_id = "case-42";
  m.template_name = "session_reminder";
  m.recipient = "patient";
  m.address = "pat@example.org";
  m.subject = "Your session tomorrow";
  m.body = "Hello \"Pat\",\nsee you at 9:00.\n\tUnicode: é ✓";
  m.attempt = attempt;
  return m;
}

// Matches `text` against `shape`: '9' a digit, 'A' an upper-case letter, 'a' a lower-case letter,
// anything else itself. (std::regex is avoided: it trips GCC warnings in sanitizer builds.)
bool shaped(std::string_view text, std::string_view shape) {
  if (text.size() != shape.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool ok = shape[i] == '9' ? std::isdigit(c) != 0
                    : shape[i] == 'A' ? std::isupper(c) != 0
                    : shape[i] == 'a' ? std::islower(c) != 0
                                      : text[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string contents(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("outbox_file: each message is one valid JSON line with every field") {
  TempDir dir;
  const fs::path file = dir.path / "outbox.jsonl";
  OutboxFile plugin(settings(file));

  Delivery d = plugin.deliver(message("m-1"));
  REQUIRE(d.status == Delivery::Status::delivered);
  CHECK(d.error.empty());
  REQUIRE(plugin.deliver(message("m-2", 3)).status == Delivery::Status::delivered);

  const std::string text = contents(file);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  const auto lines = lines_of(file);
  REQUIRE(lines.size() == 2);

  json::object first = json::parse(lines[0]).as_object();
  CHECK(first.at("id") == "m-1");
  CHECK(first.at("case_id") == "case-42");
  CHECK(first.at("template") == "session_reminder");
  CHECK(first.at("recipient") == "patient");
  CHECK(first.at("address") == "pat@example.org");
  CHECK(first.at("subject") == "Your session tomorrow");
  CHECK(first.at("body") == "Hello \"Pat\",\nsee you at 9:00.\n\tUnicode: é ✓");
  CHECK(first.at("attempt") == 1);
  const std::string at(first.at("delivered_at").as_string());
  CHECK(shaped(at, "9999-99-99T99:99:99.999Z"));

  json::object second = json::parse(lines[1]).as_object();
  CHECK(second.at("id") == "m-2");
  CHECK(second.at("attempt") == 3);

  // The file holds clinical data: readable by its owner only.
  CHECK((fs::status(file).permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
}

TEST_CASE("outbox_file: delivery is idempotent, also across a new instance on the same file") {
  TempDir dir;
  const fs::path file = dir.path / "outbox.jsonl";
  {
    OutboxFile plugin(settings(file));
    REQUIRE(plugin.deliver(message("m-1")).status == Delivery::Status::delivered);
    REQUIRE(plugin.deliver(message("m-1", 2)).status == Delivery::Status::delivered);
    REQUIRE(lines_of(file).size() == 1);
  }
  {
    OutboxFile plugin(settings(file, false));
    CHECK(plugin.deliver(message("m-1", 3)).status == Delivery::Status::delivered);
    CHECK(lines_of(file).size() == 1);
    CHECK(plugin.deliver(message("m-2")).status == Delivery::Status::delivered);
    CHECK(plugin.deliver(message("m-2", 2)).status == Delivery::Status::delivered);
  }
  const auto lines = lines_of(file);
  REQUIRE(lines.size() == 2);
  CHECK(json::parse(lines[0]).at("attempt") == 1);
  CHECK(json::parse(lines[1]).at("id") == "m-2");
}

TEST_CASE("outbox_file: parent folders are created") {
  TempDir dir;
  const fs::path file = dir.path / "a" / "b" / "c" / "outbox.jsonl";
  OutboxFile plugin(settings(file));
  REQUIRE(plugin.deliver(message("m-1")).status == Delivery::Status::delivered);
  CHECK(fs::is_regular_file(file));
  CHECK(lines_of(file).size() == 1);
}

TEST_CASE("outbox_file: a path that cannot be written is a retry with the OS reason") {
  TempDir dir;
  SECTION("a parent that is a file") {
    std::ofstream(dir.path / "not_a_folder") << "x";
    OutboxFile plugin(settings(dir.path / "not_a_folder" / "outbox.jsonl"));  // creation still succeeds
    Delivery d = plugin.deliver(message("m-1"));
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("not_a_folder") && Catch::Contains("Not a directory"));
    // Fixed later (the file is replaced by a folder): the next attempt goes through.
    fs::remove(dir.path / "not_a_folder");
    CHECK(plugin.deliver(message("m-1", 2)).status == Delivery::Status::delivered);
    CHECK(lines_of(dir.path / "not_a_folder" / "outbox.jsonl").size() == 1);
  }
  SECTION("the path is a folder") {
    fs::create_directories(dir.path / "folder");
    OutboxFile plugin(settings(dir.path / "folder"));
    Delivery d = plugin.deliver(message("m-1"));
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("Is a directory"));
  }
  SECTION("a device with no space left (/dev/full)") {
    if (!fs::exists("/dev/full")) return;
    OutboxFile plugin(settings("/dev/full"));
    Delivery d = plugin.deliver(message("m-1"));
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("No space left on device"));
    CHECK(d.error.find("pat@example.org") == std::string::npos);
  }
}

TEST_CASE("outbox_file: an incomplete last line (a crash) is not counted and not glued onto") {
  TempDir dir;
  const fs::path file = dir.path / "outbox.jsonl";
  std::ofstream(file, std::ios::binary) << R"({"id":"m-1","attempt":1})" << "\n" << R"({"id":"m-2","att)";
  OutboxFile plugin(settings(file));
  CHECK(plugin.deliver(message("m-1")).status == Delivery::Status::delivered);  // already there
  CHECK(lines_of(file).size() == 2);
  CHECK(plugin.deliver(message("m-2")).status == Delivery::Status::delivered);  // really written
  const auto lines = lines_of(file);
  REQUIRE(lines.size() == 3);
  CHECK(json::parse(lines[2]).at("id") == "m-2");
  CHECK(json::parse(lines[2]).at("body").is_string());
}

TEST_CASE("outbox_file: a file moved away (rotated) is started again") {
  TempDir dir;
  const fs::path file = dir.path / "outbox.jsonl";
  OutboxFile plugin(settings(file));
  REQUIRE(plugin.deliver(message("m-1")).status == Delivery::Status::delivered);
  fs::rename(file, dir.path / "outbox.jsonl.1");
  REQUIRE(plugin.deliver(message("m-2")).status == Delivery::Status::delivered);
  CHECK(plugin.deliver(message("m-1", 2)).status == Delivery::Status::delivered);  // remembered
  const auto lines = lines_of(file);
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0]).at("id") == "m-2");
}

TEST_CASE("outbox_file: bad settings and messages") {
  CHECK_THROWS_WITH(OutboxFile(Settings(json::object{{"path", ""}})), Catch::Contains("'path'"));
  CHECK_THROWS_WITH(OutboxFile(Settings(json::object{{"path", 7}})), Catch::Contains("'path' must be a string"));
  TempDir dir;
  OutboxFile plugin(settings(dir.path / "outbox.jsonl"));
  Delivery d = plugin.deliver(message(""));
  CHECK(d.status == Delivery::Status::failed);
}

TEST_CASE("outbox_file: manifest") {
  auto m = OutboxFile::manifest();
  CHECK(m.name == "outbox_file");
  CHECK(m.kind == "messaging");
  REQUIRE(m.settings.size() == 2);
  CHECK(m.settings[0].name == "path");
  CHECK(m.settings[0].default_value == "var/outbox.jsonl");
  CHECK(m.settings[1].name == "fsync");
  CHECK(m.settings[1].default_value == true);
}

TEST_CASE("outbox_file: through the C ABI") {
  TempDir dir;
  const fs::path file = dir.path / "sub" / "outbox.jsonl";

  CHECK(clinicflow_plugin_abi() == CLINICFLOW_ABI_VERSION);
  json::object manifest = json::parse(clinicflow_plugin_manifest()).as_object();
  CHECK(manifest.at("name") == "outbox_file");
  CHECK(manifest.at("kind") == "messaging");
  CHECK(manifest.at("abi") == "1.0");
  CHECK(manifest.at("settings").as_array().size() == 2);

  char* error = nullptr;
  CHECK(clinicflow_plugin_create(R"({"path": 12})", &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK_THAT(std::string(error), Catch::Contains("path"));
  clinicflow_plugin_free(error);
  error = nullptr;

  const std::string settings_json = json::serialize(json::object{{"path", file.string()}, {"fsync", true}});
  void* instance = clinicflow_plugin_create(settings_json.c_str(), &error);
  REQUIRE(instance != nullptr);
  CHECK(error == nullptr);

  const char* request = R"({"id":"abi-1","case_id":"c-1","template":"t","recipient":"patient",
                            "address":"a@b.c","subject":"s","body":"b","attempt":2})";
  for (int i = 0; i < 2; ++i) {
    char* response = nullptr;
    REQUIRE(clinicflow_plugin_call(instance, "deliver", request, &response) == 0);
    json::value answer = json::parse(response);
    clinicflow_plugin_free(response);
    CHECK(answer.at("status") == "delivered");
    CHECK(answer.at("error") == "");
  }
  const auto lines = lines_of(file);
  REQUIRE(lines.size() == 1);
  json::value line = json::parse(lines[0]);
  CHECK(line.at("id") == "abi-1");
  CHECK(line.at("template") == "t");
  CHECK(line.at("attempt") == 2);

  char* response = nullptr;
  CHECK(clinicflow_plugin_call(instance, "review", "{}", &response) != 0);
  REQUIRE(response != nullptr);
  CHECK_THAT(std::string(response), Catch::Contains("unknown method"));
  clinicflow_plugin_free(response);

  clinicflow_plugin_destroy(instance);
}
