#include "fake_smtp_server.hpp"
#include "smtp.hpp"

#include <catch2/catch.hpp>

#include <cctype>
#include <map>
#include <string>
#include <string_view>

namespace json = boost::json;
using clinicflow::Delivery;
using clinicflow::Message;
using clinicflow::Settings;
using clinicflow::messaging::Smtp;
using clinicflow::testing::base64_decode;
using clinicflow::testing::FakeSmtpServer;
using clinicflow::testing::SmtpScript;
using clinicflow::testing::SmtpSession;

namespace {

Settings settings(const std::string& url, json::object extra = {}) {
  json::object o{{"url", url}, {"from", "North Clinic <clinic@north.example>"}, {"starttls", "off"}, {"timeout_ms", 5000}};
  for (auto& [k, v] : extra) o[k] = v;
  return Settings(std::move(o));
}

Message message() {
  Message m;
  m.id = "msg-7f3a";
  m.case_id = "case-42";
  m.template_name = "session_reminder";
  m.recipient = "patient";
  m.address = "pat@example.org";
  m.subject = "Your session tomorrow";
  m.body = "Hello Pat,\nsee you at 9:00.\n.a line that starts with a dot\n\nNorth Clinic";
  return m;
}

// Headers (name -> value, unfolded) and body of a received message.
struct Parsed {
  std::map<std::string, std::string> headers;
  std::string body;
};

Parsed parse(const std::string& data) {
  Parsed p;
  const auto end = data.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  std::string last;
  std::size_t pos = 0;
  while (pos < end) {
    const auto eol = data.find("\r\n", pos);
    const std::string line = data.substr(pos, eol - pos);
    pos = eol + 2;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      p.headers[last] += line;
      continue;
    }
    const auto colon = line.find(':');
    last = line.substr(0, colon);
    p.headers[last] = line.substr(colon + 2);
  }
  p.body = data.substr(end + 4);
  return p;
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

bool only_crlf(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
  }
  return true;
}

std::string qp_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '=' && i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') {
      i += 2;
    } else if (s[i] == '=' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Decodes a header made of RFC 2047 "B" encoded words (folding whitespace between them ignored).
std::string decode_words(const std::string& v) {
  std::string out;
  static constexpr std::string_view open = "=?UTF-8?B?";
  for (std::size_t pos = 0; (pos = v.find(open, pos)) != std::string::npos;) {
    const std::size_t start = pos + open.size(), end = v.find("?=", start);
    if (end == std::string::npos) break;
    out += base64_decode(v.substr(start, end - start));
    pos = end + 2;
  }
  return out;
}

unsigned short closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool leaks(const std::string& error) {
  return error.find("pat@example.org") != std::string::npos || error.find("Hello Pat") != std::string::npos;
}

}  // namespace

TEST_CASE("smtp: delivery with starttls = off: envelope, headers, body, CRLF") {
  FakeSmtpServer server;
  Smtp plugin(settings(server.url()));
  Delivery d = plugin.deliver(message());
  INFO(d.error);
  REQUIRE(d.status == Delivery::Status::delivered);

  const auto sessions = server.sessions();
  REQUIRE(sessions.size() == 1);
  const SmtpSession& s = sessions[0];
  CHECK(s.ehlo == "north.example");  // the sender's domain when the URL has no path
  CHECK(s.mail_from == "<clinic@north.example>");
  REQUIRE(s.rcpt_to.size() == 1);
  CHECK(s.rcpt_to[0] == "<pat@example.org>");
  CHECK(s.auth_mechanism.empty());  // no username: no AUTH
  CHECK(s.data_complete);
  CHECK(only_crlf(s.data));

  const Parsed p = parse(s.data);
  CHECK(p.headers.at("From") == "\"North Clinic\" <clinic@north.example>");
  CHECK(p.headers.at("To") == "pat@example.org");
  CHECK(p.headers.at("Subject") == "Your session tomorrow");
  const std::string date = p.headers.at("Date");
  CHECK(shaped(date, "Aaa, 99 Aaa 9999 99:99:99 +0000"));
  CHECK(std::string("Mon Tue Wed Thu Fri Sat Sun").find(date.substr(0, 3)) != std::string::npos);
  CHECK(p.headers.at("Message-ID") == "<clinicflow.msg-7f3a@north.example>");
  CHECK(p.headers.at("MIME-Version") == "1.0");
  CHECK(p.headers.at("Content-Type") == "text/plain; charset=utf-8");
  CHECK(p.headers.at("Content-Transfer-Encoding") == "7bit");
  CHECK(p.body == "Hello Pat,\r\nsee you at 9:00.\r\n.a line that starts with a dot\r\n\r\nNorth Clinic\r\n");
}

TEST_CASE("smtp: the URL's path is the EHLO name") {
  FakeSmtpServer server;
  Smtp plugin(settings(server.url() + "/mta.north.example"));
  REQUIRE(plugin.deliver(message()).status == Delivery::Status::delivered);
  CHECK(server.sessions().at(0).ehlo == "mta.north.example");
}

TEST_CASE("smtp: AUTH with username and password") {
  SECTION("PLAIN") {
    FakeSmtpServer server;
    Smtp plugin(settings(server.url(), {{"username", "clinic-north"}, {"password", "p@ss wörd"}}));
    REQUIRE(plugin.deliver(message()).status == Delivery::Status::delivered);
    const auto s = server.sessions().at(0);
    CHECK(s.auth_mechanism == "PLAIN");
    CHECK(s.auth_user == "clinic-north");
    CHECK(s.auth_password == "p@ss wörd");
    CHECK(s.rcpt_to.size() == 1);
  }
  SECTION("LOGIN") {
    SmtpScript script;
    script.auth = "LOGIN";
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url(), {{"username", "clinic-north"}, {"password", "secret"}}));
    REQUIRE(plugin.deliver(message()).status == Delivery::Status::delivered);
    const auto s = server.sessions().at(0);
    CHECK(s.auth_mechanism == "LOGIN");
    CHECK(s.auth_user == "clinic-north");
    CHECK(s.auth_password == "secret");
  }
  SECTION("credentials refused (535): retry, the message is not at fault") {
    SmtpScript script;
    script.auth_code = 535;
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url(), {{"username", "clinic-north"}, {"password", "wrong"}}));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("login failed"));
    CHECK(d.error.find("wrong") == std::string::npos);
    CHECK(server.sessions().at(0).mail_from.empty());
  }
}

TEST_CASE("smtp: SMTP 4xx is a retry, 5xx is failed") {
  SECTION("450 on RCPT: retry") {
    SmtpScript script;
    script.rcpt_code = 450;
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url()));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("450"));
    CHECK_FALSE(leaks(d.error));
    CHECK(server.sessions().at(0).data.empty());
  }
  SECTION("550 on RCPT: failed") {
    SmtpScript script;
    script.rcpt_code = 550;
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url()));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::failed);
    CHECK_THAT(d.error, Catch::Contains("550"));
    CHECK_FALSE(leaks(d.error));
  }
  SECTION("451 after DATA: retry") {
    SmtpScript script;
    script.data_end_code = 451;
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url()));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("451"));
  }
  SECTION("554 after DATA: failed") {
    SmtpScript script;
    script.data_end_code = 554;
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url()));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::failed);
    CHECK_THAT(d.error, Catch::Contains("554"));
  }
  SECTION("553 on MAIL FROM: failed") {
    SmtpScript script;
    script.mail_code = 553;
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url()));
    CHECK(plugin.deliver(message()).status == Delivery::Status::failed);
  }
}

TEST_CASE("smtp: starttls = required against a server without STARTTLS is a retry, nothing sent in clear") {
  SmtpScript script;  // no STARTTLS offered
  FakeSmtpServer server(script);
  Smtp plugin(settings(server.url(), {{"starttls", "required"}, {"username", "clinic-north"}, {"password", "secret"}}));
  Delivery d = plugin.deliver(message());
  CHECK(d.status == Delivery::Status::retry);
  CHECK_THAT(d.error, Catch::Contains("STARTTLS"));
  const auto sessions = server.sessions();
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].auth_user.empty());
  CHECK(sessions[0].mail_from.empty());
  CHECK(sessions[0].rcpt_to.empty());
  CHECK(sessions[0].data.empty());
}

TEST_CASE("smtp: starttls = required, STARTTLS offered but refused (454): retry") {
  SmtpScript script;
  script.offer_starttls = true;
  FakeSmtpServer server(script);
  Smtp plugin(settings(server.url(), {{"starttls", "required"}}));
  Delivery d = plugin.deliver(message());
  CHECK(d.status == Delivery::Status::retry);
  CHECK(server.sessions().at(0).mail_from.empty());
}

TEST_CASE("smtp: starttls = optional against a server without STARTTLS is delivered") {
  FakeSmtpServer server;
  Smtp plugin(settings(server.url(), {{"starttls", "optional"}}));
  CHECK(plugin.deliver(message()).status == Delivery::Status::delivered);
  CHECK(server.sessions().at(0).data_complete);
}

TEST_CASE("smtp: connection refused and silence are retries") {
  SECTION("refused") {
    Smtp plugin(settings("smtp://127.0.0.1:" + std::to_string(closed_port())));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK_FALSE(d.error.empty());
    CHECK_FALSE(leaks(d.error));
  }
  SECTION("a server that never greets") {
    SmtpScript script;
    script.greet = false;
    FakeSmtpServer server(script);
    Smtp plugin(settings(server.url(), {{"timeout_ms", 300}}));
    Delivery d = plugin.deliver(message());
    CHECK(d.status == Delivery::Status::retry);
    CHECK_THAT(d.error, Catch::Contains("timed out"));
  }
}

TEST_CASE("smtp: bad addresses are failed without contacting the server") {
  FakeSmtpServer server;
  Smtp plugin(settings(server.url()));
  Message m = message();
  m.address = "";
  Delivery d = plugin.deliver(m);
  CHECK(d.status == Delivery::Status::failed);
  CHECK_THAT(d.error, Catch::Contains("no address"));
  m.address = "pat@example.org\r\nRCPT TO:<evil@example.org>";
  CHECK(plugin.deliver(m).status == Delivery::Status::failed);
  m.address = "not-an-address";
  CHECK(plugin.deliver(m).status == Delivery::Status::failed);
  CHECK(server.sessions().empty());
}

TEST_CASE("smtp: composing non-ASCII subjects and bodies") {
  Smtp plugin(settings("smtp://127.0.0.1:2525", {{"from", "clinic@north.example"}}));
  Message m = message();
  m.id = "id with spaces/é";
  m.subject = "Rappel : séance de demain ✓\r\nBcc: injected@example.org";
  m.body = "Bonjour Pat,\r\nà demain = 9:00.   \rTrailing space above.\n" + std::string(200, 'x');
  const std::string mail = plugin.compose(m, std::chrono::system_clock::time_point{});
  CHECK(only_crlf(mail));
  const Parsed p = parse(mail);
  CHECK(p.headers.count("Bcc") == 0);
  CHECK(p.headers.at("From") == "clinic@north.example");
  CHECK(p.headers.at("Date") == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(p.headers.at("Message-ID") == "<clinicflow.id=20with=20spaces=2F=C3=A9@north.example>");
  CHECK(decode_words(p.headers.at("Subject")) == "Rappel : séance de demain ✓  Bcc: injected@example.org");
  CHECK(p.headers.at("Content-Transfer-Encoding") == "quoted-printable");

  Smtp named(settings("smtp://127.0.0.1:2525", {{"from", "Clinique Süd <clinic@south.example>"}}));
  const Parsed q = parse(named.compose(m, std::chrono::system_clock::time_point{}));
  CHECK(decode_words(q.headers.at("From")) == "Clinique Süd");
  CHECK_THAT(q.headers.at("From"), Catch::EndsWith(" <clinic@south.example>"));
  CHECK(named.from_address() == "clinic@south.example");

  for (std::size_t pos = 0, eol; (eol = mail.find("\r\n", pos)) != std::string::npos; pos = eol + 2)
    CHECK(eol - pos <= 76);
  CHECK(qp_decode(p.body) == "Bonjour Pat,\r\nà demain = 9:00.   \r\nTrailing space above.\r\n" + std::string(200, 'x') + "\r\n");
}

TEST_CASE("smtp: a UTF-8 message end to end") {
  FakeSmtpServer server;
  Smtp plugin(settings(server.url(), {{"from", "Clinique Nord <clinic@north.example>"}}));
  Message m = message();
  m.subject = "Séance";
  m.body = "À demain.\n.\n..";
  REQUIRE(plugin.deliver(m).status == Delivery::Status::delivered);
  const Parsed p = parse(server.sessions().at(0).data);
  CHECK(decode_words(p.headers.at("Subject")) == "Séance");
  CHECK(qp_decode(p.body) == "À demain.\r\n.\r\n..\r\n");
}

TEST_CASE("smtp: bad settings make creation fail with a clear message") {
  auto fails = [](json::object o, std::string_view expected) {
    INFO(json::serialize(o));
    CHECK_THROWS_WITH(Smtp(Settings(std::move(o))), Catch::Contains(std::string(expected)));
  };
  const json::object ok{{"url", "smtp://mail.example.org:587"}, {"from", "clinic@north.example"}};
  auto with = [&](std::string_view key, json::value v) {
    json::object o = ok;
    o[key] = std::move(v);
    return o;
  };
  CHECK_NOTHROW(Smtp(Settings(ok)));
  CHECK_NOTHROW(Smtp(Settings(with("url", "smtps://mail.example.org:465"))));
  fails({{"from", "clinic@north.example"}}, "setting 'url' is required");
  fails({{"url", "smtp://mail.example.org"}}, "setting 'from' is required");
  fails(with("url", "http://mail.example.org"), "smtp:// or smtps://");
  fails(with("url", "smtp://user:pw@mail.example.org"), "must not contain a user name");
  fails(with("from", "not an address"), "setting 'from' is not a valid email address");
  fails(with("from", "Clinic <clinic@north.example"), "setting 'from'");
  fails(with("starttls", "maybe"), "setting 'starttls'");
  fails(with("password", "secret"), "setting 'password' needs 'username'");
  fails(with("timeout_ms", -5), "setting 'timeout_ms'");
}

TEST_CASE("smtp: through the C ABI") {
  FakeSmtpServer server;
  const std::string settings_json = json::serialize(
      json::object{{"url", server.url()}, {"from", "clinic@north.example"}, {"starttls", "off"}, {"timeout_ms", 5000}});
  char* error = nullptr;
  void* instance = clinicflow_plugin_create(settings_json.c_str(), &error);
  REQUIRE(instance != nullptr);
  char* response = nullptr;
  REQUIRE(clinicflow_plugin_call(instance, "deliver", R"({"id":"abi-1","address":"","body":"b"})", &response) == 0);
  CHECK(json::parse(response).at("status") == "failed");
  clinicflow_plugin_free(response);
  REQUIRE(clinicflow_plugin_call(instance, "deliver", R"({"id":"abi-2","address":"a@b.example","subject":"s","body":"b"})",
                                 &response) == 0);
  CHECK(json::parse(response).at("status") == "delivered");
  clinicflow_plugin_free(response);
  clinicflow_plugin_destroy(instance);
  CHECK(server.sessions().at(0).rcpt_to.at(0) == "<a@b.example>");
}
