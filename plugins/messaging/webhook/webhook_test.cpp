#include "test_http_server.hpp"
#include "webhook.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace json = boost::json;
using clinicflow::Delivery;
using clinicflow::Message;
using clinicflow::Settings;
using clinicflow::messaging::Webhook;
using clinicflow::testing::ScriptedReply;
using clinicflow::testing::TestHttpServer;

namespace {

std::vector<ScriptedReply> statuses(std::initializer_list<unsigned> codes) {
  std::vector<ScriptedReply> out;
  for (unsigned c : codes) out.push_back(ScriptedReply{c, false, ""});
  return out;
}

std::string url_of(const TestHttpServer& server, std::string_view path = "/hooks/clinicflow?source=test") {
  return "http://127.0.0.1:" + std::to_string(server.port()) + std::string(path);
}

Settings settings(std::string url, json::object extra = {}) {
  json::object o{{"url", std::move(url)}, {"timeout_ms", 5000}};
  for (auto& [k, v] : extra) o[k] = v;
  return Settings(std::move(o));
}

Message message(int attempt = 1) {
  Message m;
  m.id = "msg-7f3a";
  m.case_id = "case-42";
  m.template_name = "session_reminder";
  m.recipient = "patient";
  m.address = "+15550100";
  m.subject = "Tomorrow";
  m.body = "See you at 9:00 — bring a driver.";
  m.attempt = attempt;
  return m;
}

// A port nobody listens on: bound once by us, then closed.
unsigned short closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool mentions_content(const std::string& error) {
  return error.find("+15550100") != std::string::npos || error.find("driver") != std::string::npos ||
         error.find("scripted") != std::string::npos;
}

}  // namespace

TEST_CASE("webhook: 200 is delivered, with the right method, path, JSON body and headers") {
  TestHttpServer server(statuses({200}));
  Webhook plugin(settings(url_of(server), {{"headers", json::object{{"Authorization", "Bearer s3cret"}, {"X-Clinic", "north"}}}}));
  Delivery d = plugin.deliver(message(2));
  CHECK(d.status == Delivery::Status::delivered);
  CHECK(d.error.empty());

  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  const auto& r = requests[0];
  CHECK(r.method == "POST");
  CHECK(r.target == "/hooks/clinicflow?source=test");
  CHECK(r.headers.at("host") == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(r.headers.at("content-type") == "application/json");
  CHECK(r.headers.at("idempotency-key") == "msg-7f3a");
  CHECK(r.headers.at("authorization") == "Bearer s3cret");
  CHECK(r.headers.at("x-clinic") == "north");
  CHECK(r.headers.at("content-length") == std::to_string(r.body.size()));

  json::object body = json::parse(r.body).as_object();
  CHECK(body.at("id") == "msg-7f3a");
  CHECK(body.at("case_id") == "case-42");
  CHECK(body.at("template") == "session_reminder");
  CHECK(body.at("recipient") == "patient");
  CHECK(body.at("address") == "+15550100");
  CHECK(body.at("subject") == "Tomorrow");
  CHECK(body.at("body") == "See you at 9:00 — bring a driver.");
  CHECK(body.at("attempt") == 2);
}

TEST_CASE("webhook: 503 is a retry naming the status") {
  TestHttpServer server({ScriptedReply{503, false, "30"}});
  Webhook plugin(settings(url_of(server)));
  Delivery d = plugin.deliver(message());
  CHECK(d.status == Delivery::Status::retry);
  CHECK_THAT(d.error, Catch::Contains("503") && Catch::Contains("Retry-After: 30"));
  CHECK_FALSE(mentions_content(d.error));
}

TEST_CASE("webhook: 500 then 200 across two attempts, same Idempotency-Key") {
  TestHttpServer server(statuses({500, 200}));
  Webhook plugin(settings(url_of(server)));
  Delivery first = plugin.deliver(message(1));
  CHECK(first.status == Delivery::Status::retry);
  CHECK_THAT(first.error, Catch::Contains("HTTP 500"));
  Delivery second = plugin.deliver(message(2));
  CHECK(second.status == Delivery::Status::delivered);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].headers.at("idempotency-key") == "msg-7f3a");
  CHECK(requests[1].headers.at("idempotency-key") == "msg-7f3a");
  CHECK(json::parse(requests[0].body).at("attempt") == 1);
  CHECK(json::parse(requests[1].body).at("attempt") == 2);
}

TEST_CASE("webhook: 400 is failed (never retried), 429 and 408 are retries") {
  SECTION("400") {
    TestHttpServer server(statuses({400}));
    Webhook plugin(settings(url_of(server)));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::failed);
    CHECK_THAT(d.error, Catch::Contains("400"));
    CHECK_FALSE(mentions_content(d.error));
  }
  SECTION("404 and a redirect are failed") {
    TestHttpServer server(statuses({404, 301}));
    Webhook plugin(settings(url_of(server)));
    CHECK(plugin.deliver(message()).status == Delivery::Status::failed);
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::failed);
    CHECK_THAT(d.error, Catch::Contains("301") && Catch::Contains("redirect"));
  }
  SECTION("429") {
    TestHttpServer server(statuses({429}));
    Webhook plugin(settings(url_of(server)));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("429"));
  }
  SECTION("408") {
    TestHttpServer server(statuses({408}));
    Webhook plugin(settings(url_of(server)));
    CHECK(plugin.deliver(message()).status == Delivery::Status::retry);
  }
}

TEST_CASE("webhook: a server that never answers is a retry after the timeout") {
  TestHttpServer server({ScriptedReply{200, true, ""}});
  Webhook plugin(settings(url_of(server), {{"timeout_ms", 300}}));
  Delivery d = plugin.deliver(message());
  CHECK(d.status == Delivery::Status::retry);
  CHECK_THAT(d.error, Catch::Contains("timed out") && Catch::Contains("300 ms"));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("webhook: connection refused is a retry") {
  Webhook plugin(settings("http://127.0.0.1:" + std::to_string(closed_port()) + "/x"));
  Delivery d = plugin.deliver(message());
  CHECK(d.status == Delivery::Status::retry);
  CHECK_THAT(d.error, Catch::Contains("refused"));
}

TEST_CASE("webhook: a host that cannot be resolved is a retry") {
  // Whether this machine has DNS or not: an unknown name or a lookup past the deadline, both retry.
  Webhook plugin(settings("http://no-such-host.invalid/x", {{"timeout_ms", 1000}}));
  Delivery d = plugin.deliver(message());
  CHECK(d.status == Delivery::Status::retry);
  CHECK_THAT(d.error, Catch::Contains("no-such-host.invalid"));
}

TEST_CASE("webhook: url parsing") {
  SECTION("defaults") {
    Webhook plain(settings("http://hooks.example.org"));
    CHECK_FALSE(plain.target().tls);
    CHECK(plain.target().host == "hooks.example.org");
    CHECK(plain.target().port == "80");
    CHECK(plain.target().host_header == "hooks.example.org");
    CHECK(plain.target().path == "/");
  }
  SECTION("https is accepted at creation") {
    Webhook tls(settings("https://hooks.example.org/in?token=a%20b"));
    CHECK(tls.target().tls);
    CHECK(tls.target().port == "443");
    CHECK(tls.target().path == "/in?token=a%20b");
  }
  SECTION("IPv6 and an explicit port") {
    Webhook v6(settings("http://[::1]:8080/p"));
    CHECK(v6.target().host == "::1");
    CHECK(v6.target().port == "8080");
    CHECK(v6.target().host_header == "[::1]:8080");
  }
}

TEST_CASE("webhook: bad settings make creation fail with a clear message") {
  auto fails = [](json::object o, std::string_view expected) {
    INFO(json::serialize(o));
    CHECK_THROWS_WITH(Webhook(Settings(std::move(o))), Catch::Contains(std::string(expected)));
  };
  fails({}, "setting 'url' is required");
  fails({{"url", nullptr}}, "setting 'url' is required");
  fails({{"url", "ftp://example.org/"}}, "http:// or https://");
  fails({{"url", "not a url"}}, "setting 'url' is not a valid http:// or https:// URL");
  fails({{"url", "example.org/hook"}}, "http:// or https://");
  fails({{"url", "http:///nohost"}}, "must name a host");
  fails({{"url", "https://user:pw@example.org/"}}, "must not contain a user name or password");
  fails({{"url", "http://example.org:99999/"}}, "invalid port");
  fails({{"url", "http://example.org/"}, {"timeout_ms", 0}}, "'timeout_ms'");
  fails({{"url", "http://example.org/"}, {"headers", json::object{{"X-A", "x\r\nInjected: 1"}}}}, "line breaks");
  fails({{"url", "http://example.org/"}, {"headers", json::object{{"Bad Name", "x"}}}}, "not a valid header name");
  fails({{"url", "http://example.org/"}, {"headers", json::object{{"Idempotency-Key", "x"}}}}, "set by the plugin");
  fails({{"url", "http://example.org/"}, {"headers", json::object{{"X-N", 5}}}}, "must be a string");
  fails({{"url", "https://example.org/"}, {"ca_file", "/nonexistent/ca.pem"}}, "setting 'ca_file'");
}

TEST_CASE("webhook: https against a local TLS server") {
  TestHttpServer server(statuses({200}), true);
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/secure";
  const auto ca = std::filesystem::temp_directory_path() / ("webhook_test_ca." + std::to_string(::getpid()) + ".pem");
  std::ofstream(ca) << server.certificate_pem();

  SECTION("trusted through ca_file: delivered") {
    Webhook plugin(settings(url, {{"ca_file", ca.string()}}));
    CHECK(plugin.deliver(message()).status == Delivery::Status::delivered);
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0].target == "/secure");
    CHECK(server.requests()[0].headers.at("idempotency-key") == "msg-7f3a");
  }
  SECTION("an unknown certificate is not trusted: retry") {
    Webhook plugin(settings(url));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("TLS handshake") && Catch::Contains("certificate verify failed"));
    CHECK(server.requests().empty());
  }
  SECTION("the certificate does not name the host: retry") {
    Webhook plugin(settings("https://localhost:" + std::to_string(server.port()) + "/secure", {{"ca_file", ca.string()}}));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK(server.requests().empty());
  }
  SECTION("verify_tls = false: delivered") {
    Webhook plugin(settings(url, {{"verify_tls", false}}));
    CHECK(plugin.deliver(message()).status == Delivery::Status::delivered);
  }
  std::filesystem::remove(ca);
}

TEST_CASE("webhook: through the C ABI") {
  TestHttpServer server(statuses({200}));
  char* error = nullptr;
  CHECK(clinicflow_plugin_create(R"({"url":"gopher://x"})", &error) == nullptr);
  REQUIRE(error != nullptr);
  CHECK_THAT(std::string(error), Catch::Contains("http:// or https://"));
  clinicflow_plugin_free(error);
  error = nullptr;

  const std::string settings_json = json::serialize(json::object{{"url", url_of(server, "/abi")}, {"timeout_ms", 2000}});
  void* instance = clinicflow_plugin_create(settings_json.c_str(), &error);
  REQUIRE(instance != nullptr);
  char* response = nullptr;
  REQUIRE(clinicflow_plugin_call(instance, "deliver", R"({"id":"abi-1","body":"b","attempt":1})", &response) == 0);
  json::value answer = json::parse(response);
  clinicflow_plugin_free(response);
  CHECK(answer.at("status") == "delivered");
  clinicflow_plugin_destroy(instance);
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].headers.at("idempotency-key") == "abi-1");
}

TEST_CASE("webhook: a message without id is failed") {
  Webhook plugin(settings("http://127.0.0.1:1/"));
  Message m = message();
  m.id.clear();
  CHECK(plugin.deliver(m).status == Delivery::Status::failed);
}
