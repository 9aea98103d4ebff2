// End to end: a real clinicflowd process on a free loopback port, spoken to over WebSocket with
// JSON-RPC exactly as a staff app would.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;

namespace {

const char* kWorkflow = R"(id = "e2e"
version = 1
title = "End-to-end flow"

[[stage]]
id = "intake"

[[stage]]
id = "session"

[[step]]
id = "referral"
stage = "intake"
roles = ["frontdesk"]

  [[step.field]]
  name = "age"
  type = "integer"
  required = true
  min = 0
  max = 130

  [[step.field]]
  name = "consent"
  type = "boolean"
  required = true

  [[step.branch]]
  when = "age < 18"
  outcome = "declined"
  reason = "Under 18"

[[step]]
id = "vitals"
stage = "session"
roles = ["nurse"]
plugin = "test_route"
due = "1d"
outcome = "completed"
)";

// Starts clinicflowd on a free port with its own data directory; stops it at the end.
class Server {
 public:
  Server() {
    dir_ = fs::temp_directory_path() / ("clinicflow-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "workflows");
    std::ofstream(dir_ / "workflows" / "e2e.toml") << kWorkflow;
    std::ofstream(dir_ / "clinicflow.toml") << "[server]\nlisten = \"127.0.0.1:0\"\nclock = \"virtual\"\n"
                                            << "[paths]\ndata_dir = \"" << (dir_ / "var").string() << "\"\nworkflows_dir = \""
                                            << (dir_ / "workflows").string() << "\"\nplugins_dir = \"" << CLINICFLOW_TEST_PLUGIN_DIR
                                            << "\"\n[api]\nmax_message_bytes = 65536\n"
                                            << "[plugins.test_route]\nmax_systolic = 180\n";
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDERR_FILENO);
      ::close(out[0]);
      std::string config = (dir_ / "clinicflow.toml").string();
      ::execl(CLINICFLOWD, CLINICFLOWD, "--config", config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    pollfd fd{out[0], POLLIN, 0};
    while (line.find("listening on") == std::string::npos || line.back() != '\n') {
      REQUIRE(::poll(&fd, 1, 30'000) == 1);
      if (::read(out[0], &c, 1) != 1) FAIL("clinicflowd exited before listening");
      line += c;
    }
    ::close(out[0]);
    auto at = line.find("127.0.0.1:") + 10;
    port_ = static_cast<unsigned short>(std::stoi(line.substr(at)));
    std::ifstream token_file(dir_ / "var" / "admin.token");
    std::getline(token_file, admin_token_);
    REQUIRE(admin_token_.rfind("cf_", 0) == 0);
  }
  ~Server() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    fs::remove_all(dir_);
  }
  unsigned short port() const { return port_; }
  const std::string& admin_token() const { return admin_token_; }
  const fs::path& dir() const { return dir_; }

 private:
  static inline std::atomic<int> counter_{0};
  fs::path dir_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
  std::string admin_token_;
};

class Client {
 public:
  Client(unsigned short port, std::optional<std::string> bearer = std::nullopt) : ws_(io_) {
    tcp::resolver resolver(io_);
    beast::get_lowest_layer(ws_).connect(resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.set_option(websocket::stream_base::decorator([bearer](websocket::request_type& request) {
      if (bearer) request.set(beast::http::field::authorization, "Bearer " + *bearer);
    }));
    ws_.handshake("127.0.0.1", "/v1/ws");
  }

  void send_text(const std::string& text) { ws_.write(net::buffer(text)); }

  json::value read() {
    beast::flat_buffer buffer;
    ws_.read(buffer);
    return json::parse(beast::buffers_to_string(buffer.data()));
  }

  // Sends one request and returns its answer; notifications read meanwhile are kept.
  json::object call(const std::string& method, json::value params = json::object{}) {
    std::int64_t id = ++next_id_;
    send_text(json::serialize(json::object{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}));
    for (;;) {
      json::value v = read();
      if (v.is_object() && v.as_object().contains("id") && v.as_object().at("id") == id) return v.as_object();
      notifications.push_back(v);
    }
  }

  json::object next_notification() {
    if (notifications.empty()) notifications.push_back(read());
    json::value v = notifications.front();
    notifications.pop_front();
    return v.as_object();
  }

  // The close code after the server closes the connection (reads until it does).
  std::uint16_t close_code() {
    beast::flat_buffer buffer;
    beast::error_code ec;
    while (!ec) ws_.read(buffer, ec);
    return ws_.reason().code;
  }

  std::deque<json::value> notifications;

 private:
  net::io_context io_;
  websocket::stream<beast::tcp_stream> ws_;
  std::int64_t next_id_ = 0;
};

std::int64_t error_code(const json::object& answer) {
  REQUIRE(answer.contains("error"));
  return answer.at("error").at("code").as_int64();
}

json::object result(const json::object& answer) {
  INFO(json::serialize(answer));
  REQUIRE(answer.contains("result"));
  return answer.at("result").is_object() ? answer.at("result").as_object() : json::object{};
}

std::string login_new_user(Client& admin, const std::string& user, json::array roles) {
  auto created = result(admin.call("auth.token.create", {{"user", user}, {"roles", roles}}));
  return std::string(created.at("token").as_string());
}

}  // namespace

TEST_CASE("health, authentication and the standard JSON-RPC errors over a real socket") {
  Server server;
  {
    net::io_context io;
    beast::tcp_stream stream(io);
    tcp::resolver resolver(io);
    stream.connect(resolver.resolve("127.0.0.1", std::to_string(server.port())));
    beast::http::request<beast::http::empty_body> request{beast::http::verb::get, "/healthz", 11};
    request.set(beast::http::field::host, "127.0.0.1");
    beast::http::write(stream, request);
    beast::flat_buffer buffer;
    beast::http::response<beast::http::string_body> response;
    beast::http::read(stream, buffer, response);
    CHECK(response.result_int() == 200);
    CHECK(response.body() == R"({"status":"ok"})");
  }
  Client client(server.port());
  CHECK(error_code(client.call("case.list")) == -32001);  // not logged in yet
  CHECK(error_code(client.call("auth.login", {{"token", "cf_wrong"}})) == -32001);
  auto login = result(client.call("auth.login", {{"token", server.admin_token()}}));
  CHECK(login.at("user") == "admin");

  client.send_text("{not json");
  CHECK(client.read().at("error").at("code") == -32700);
  client.send_text(R"({"jsonrpc":"1.0","id":5,"method":"clock.now"})");
  CHECK(client.read().at("error").at("code") == -32600);
  CHECK(error_code(client.call("no.such.method")) == -32601);
  auto bad = client.call("patient.create", {{"given_name", 3}, {"birth_date", "2001-02-30"}});
  CHECK(error_code(bad) == -32602);
  CHECK(bad.at("error").at("data").at("fields").as_array().size() == 3);  // given_name, family_name, birth_date
  CHECK(error_code(client.call("case.get", {{"case_id", "c_0000000000000000"}})) == -32004);

  // A batch: two requests and a notification get two answers, in one frame.
  client.send_text(R"([{"jsonrpc":"2.0","id":"a","method":"clock.now"},{"jsonrpc":"2.0","method":"clock.now"},)"
                   R"({"jsonrpc":"2.0","id":"b","method":"workflow.list"}])");
  json::value batch = client.read();
  REQUIRE(batch.is_array());
  CHECK(batch.as_array().size() == 2);
  // A notification alone gets no answer: the next frame is the answer to the next request.
  client.send_text(R"({"jsonrpc":"2.0","method":"clock.now"})");
  CHECK(result(client.call("workflow.list")).empty());  // workflow.list answers an array
}

TEST_CASE("roles, a bearer token, conflicts, plugin refusals and subscriptions in commit order") {
  Server server;
  Client admin(server.port(), server.admin_token());  // the Authorization header logs in at once
  std::string frontdesk_token = login_new_user(admin, "fd1", {"frontdesk"});
  std::string nurse_token = login_new_user(admin, "rn1", {"nurse"});
  Client frontdesk(server.port(), frontdesk_token);
  Client nurse(server.port(), nurse_token);

  CHECK(error_code(nurse.call("patient.create", {{"given_name", "A"}, {"family_name", "B"}, {"birth_date", "1980-01-01"}})) ==
        -32003);
  auto patient = result(frontdesk.call("patient.create", {{"given_name", "Ada"}, {"family_name", "Lovelace"}, {"birth_date", "1980-12-10"}}));
  std::string patient_id(patient.at("patient_id").as_string());

  auto subscription = result(admin.call("subscribe"));
  auto opened = result(frontdesk.call("case.open", {{"patient_id", patient_id}, {"workflow", "e2e"}}));
  std::string case_id(opened.at("case_id").as_string());
  std::int64_t revision = opened.at("revision").as_int64();
  CHECK(opened.at("open_tasks").at(0).at("step") == "referral");

  // Two clients edit the same case: the one with the stale revision loses.
  CHECK(result(frontdesk.call("case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 40}, {"consent", true}}},
                                              {"revision", revision}}))
            .at("stage") == "session");
  CHECK(error_code(frontdesk.call("case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 41}, {"consent", true}}},
                                                  {"revision", revision}})) == -32009);
  // The workflow's step roles: the front desk may not record vitals.
  CHECK(error_code(frontdesk.call("case.submit", {{"case_id", case_id}, {"step", "vitals"}, {"data", {{"systolic", 120}, {"diastolic", 80}}}})) ==
        -32003);
  // A plugin rule refuses: -32010 with the reason.
  auto refused = nurse.call("case.submit", {{"case_id", case_id}, {"step", "vitals"}, {"data", {{"systolic", 190}, {"diastolic", 80}}}});
  CHECK(error_code(refused) == -32010);
  CHECK(refused.at("error").at("data").at("reason").as_string().size() > 0);
  CHECK(result(nurse.call("case.submit", {{"case_id", case_id}, {"step", "vitals"}, {"data", {{"systolic", 120}, {"diastolic", 80}}}}))
            .at("status") == "completed");

  // Every event of the case reached the subscriber, in order, matching the history.
  auto history = admin.call("case.history", {{"case_id", case_id}}).at("result").as_array();
  REQUIRE(history.size() >= 6);
  for (const auto& entry : history) {
    json::object note = admin.next_notification();
    CHECK(note.at("method") == "event");
    CHECK(note.at("params").at("subscription") == subscription.at("subscription"));
    const auto& event = note.at("params").at("event").as_object();
    CHECK(event.at("case_id") == case_id.c_str());
    CHECK(event.at("seq") == entry.at("seq"));
    CHECK(event.at("type") == entry.at("type"));
  }
}

TEST_CASE("an oversize frame closes with 1009; a revoked token is cut off at its next request") {
  Server server;
  Client admin(server.port(), server.admin_token());
  auto created = result(admin.call("auth.token.create", {{"user", "rn2"}, {"roles", {"nurse"}}}));
  Client nurse(server.port(), std::string(created.at("token").as_string()));
  result(nurse.call("clock.now"));
  result(admin.call("auth.token.revoke", {{"token_id", created.at("token_id")}}));
  CHECK(error_code(nurse.call("clock.now")) == -32001);

  Client big(server.port(), server.admin_token());
  big.send_text(std::string(70'000, ' '));  // past max_message_bytes = 65536
  CHECK(big.close_code() == 1009);
}

TEST_CASE("a token revoked from the command line while the server runs is refused at its next request") {
  Server server;
  Client admin(server.port(), server.admin_token());
  auto created = result(admin.call("auth.token.create", {{"user", "rn3"}, {"roles", {"nurse"}}}));
  Client nurse(server.port(), std::string(created.at("token").as_string()));
  for (int i = 0; i < 50; ++i) result(nurse.call("clock.now"));  // the server has looked at the database lately
  std::string command = std::string(CLINICFLOW_CLI) + " token revoke " + std::string(created.at("token_id").as_string()) +
                        " --config " + (server.dir() / "clinicflow.toml").string() + " > /dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  CHECK(error_code(nurse.call("clock.now")) == -32001);  // sent the moment the CLI returned
  CHECK(error_code(nurse.call("clock.now")) == -32001);
  result(admin.call("clock.now"));  // other tokens are untouched
}

TEST_CASE("the virtual clock moves only when told, and fires due timers before answering") {
  Server server;
  Client admin(server.port(), server.admin_token());
  auto patient = result(admin.call("patient.create", {{"given_name", "Grace"}, {"family_name", "Hopper"}, {"birth_date", "1970-06-01"}}));
  auto opened = result(admin.call("case.open", {{"patient_id", patient.at("patient_id")}, {"workflow", "e2e"}}));
  std::string case_id(opened.at("case_id").as_string());
  // Step roles bind everyone, admin included: the front desk records the referral.
  Client frontdesk(server.port(), login_new_user(admin, "fd2", {"frontdesk"}));
  result(frontdesk.call("case.submit", {{"case_id", case_id}, {"step", "referral"}, {"data", {{"age", 30}, {"consent", true}}}}));
  std::string before(result(admin.call("clock.now")).at("now").as_string());
  result(admin.call("clock.advance", {{"seconds", 2 * 86400}}));
  std::string after(result(admin.call("clock.now")).at("now").as_string());
  CHECK(after > before);
  auto view = result(admin.call("case.get", {{"case_id", case_id}}));
  CHECK(view.at("open_tasks").at(0).at("overdue") == true);  // "vitals" was due after 1 day
}
