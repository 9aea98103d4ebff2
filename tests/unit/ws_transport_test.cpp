// The WebSocket transport (server/http_listener): real sockets on 127.0.0.1, a Beast client, a fake
// api::MessageHandler. Every wait is bounded; nothing is timed.
#include "support/temp_dir.hpp"
#include "api/connection.hpp"
#include "server/http_listener.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace {

using namespace clinicflow;
using namespace std::chrono_literals;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using server::HttpListener;
using server::ListenOptions;

constexpr auto kWait = 15s;  // the bound on every wait; reached only when something is broken

// --- a fake API ------------------------------------------------------------------------------------

// Answers "echo:<text>" ("silent" gets no answer; "later:..." is answered from another thread
// after on_message returned, as the API answers a write), records what the transport tells it.
class FakeHandler : public api::MessageHandler {
 public:
  std::atomic<bool> authenticate{true};

  ~FakeHandler() override { join_answerers(); }
  // The threads answering "later:" messages hold their connection; a test ends them before the
  // listener goes.
  void join_answerers() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(answerers_);
    }
    for (auto& t : threads) t.join();
  }

  void on_open(const std::shared_ptr<api::Connection>& connection, std::optional<std::string> bearer_token) override {
    enter();
    {
      std::lock_guard lock(mutex_);
      connections_[connection->id()] = connection;
      tokens_[connection->id()] = std::move(bearer_token);
      opened_.push_back(connection->id());
    }
    leave();
  }

  void on_message(const std::shared_ptr<api::Connection>& connection, std::string_view text, Reply reply) override {
    enter();
    std::optional<std::string> answer;
    if (text != "silent") answer = "echo:" + std::string(text);
    leave();
    if (text.starts_with("push-then-answer:")) {
      // Notifications sent from another thread while this call waits (as the committer sends a
      // timer's events while clock.advance waits for them), then the answer, from here.
      std::thread pusher([connection] {
        for (int i = 1; i <= 3; ++i) connection->send("event " + std::to_string(i));
      });
      pusher.join();
      return reply(std::move(answer));
    }
    if (text.starts_with("later:")) {
      std::lock_guard lock(mutex_);
      answerers_.emplace_back([reply = std::move(reply), answer = std::move(answer)]() mutable {
        std::this_thread::sleep_for(2ms);
        reply(std::move(answer));
      });
      return;
    }
    reply(std::move(answer));
  }

  bool authenticated(const api::Connection&) const override { return authenticate; }

  void on_close(const api::Connection& connection) override {
    enter();
    {
      std::lock_guard lock(mutex_);
      ++closes_[connection.id()];
      connections_.erase(connection.id());  // a handler drops its references on close
    }
    leave();
  }

  // Waits until `count` connections have opened; the id of the count-th.
  std::uint64_t wait_opened(std::size_t count) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, kWait, [&] { return opened_.size() >= count; })) return 0;
    return opened_[count - 1];
  }
  bool wait_closed(std::uint64_t id) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kWait, [&] { return closes_.count(id) != 0; });
  }
  std::shared_ptr<api::Connection> connection(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second;
  }
  std::optional<std::string> token(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    return tokens_.at(id);
  }
  std::vector<std::uint64_t> opened() {
    std::lock_guard lock(mutex_);
    return opened_;
  }
  std::map<std::uint64_t, int> closes() {
    std::lock_guard lock(mutex_);
    return closes_;
  }
  bool overlapped() const { return overlapped_; }

 private:
  void enter() {
    if (in_call_.fetch_add(1) != 0) overlapped_ = true;
  }
  void leave() {
    in_call_.fetch_sub(1);
    cv_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::uint64_t, std::shared_ptr<api::Connection>> connections_;
  std::map<std::uint64_t, std::optional<std::string>> tokens_;
  std::vector<std::uint64_t> opened_;
  std::map<std::uint64_t, int> closes_;
  std::atomic<int> in_call_{0};
  std::atomic<bool> overlapped_{false};
  std::vector<std::thread> answerers_;
};

// A listener on a free loopback port, served by its own thread.
struct Server {
  std::shared_ptr<FakeHandler> handler = std::make_shared<FakeHandler>();
  std::unique_ptr<HttpListener> listener;
  std::thread thread;

  explicit Server(ListenOptions options = {}, bool with_handler = true) {
    options.host = "127.0.0.1";
    options.port = 0;
    listener = std::make_unique<HttpListener>(options, with_handler ? handler : nullptr);
    thread = std::thread([this] { listener->run(); });
  }
  ~Server() { stop(); }
  void stop() {
    if (!listener) return;
    listener->stop();
    thread.join();
    listener.reset();  // tells the handler about connections still open
  }
  unsigned short port() const { return listener->port(); }
};

// --- a Beast client, every operation bounded ------------------------------------------------------

// Runs one asynchronous operation on `io` to completion, or cancels it via `abort` after kWait.
template <class Start, class Abort>
beast::error_code run_bounded(net::io_context& io, Start&& start, Abort&& abort, std::chrono::milliseconds timeout = kWait) {
  std::optional<beast::error_code> result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  auto deadline = Clock::now() + timeout;
  while (!result && Clock::now() < deadline) io.run_one_until(deadline);
  if (result) return *result;
  abort();
  io.restart();
  while (!result) io.run_one_for(1s);  // the cancelled operation completes at once
  return net::error::timed_out;
}

struct HttpAnswer {
  beast::error_code ec;
  unsigned status = 0;
  std::string body;
};

HttpAnswer http_get(unsigned short port, const std::string& target, bool upgrade = false) {
  net::io_context io;
  beast::tcp_stream stream(io);
  auto abort = [&] { stream.socket().close(); };
  HttpAnswer answer;
  answer.ec = run_bounded(io, [&](auto h) { stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), h); }, abort);
  if (answer.ec) return answer;
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  if (upgrade) {
    request.set(http::field::connection, "Upgrade");
    request.set(http::field::upgrade, "websocket");
    request.set(http::field::sec_websocket_version, "13");
    request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  }
  answer.ec = run_bounded(io, [&](auto h) { http::async_write(stream, request, h); }, abort);
  if (answer.ec) return answer;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  answer.ec = run_bounded(io, [&](auto h) { http::async_read(stream, buffer, response, h); }, abort);
  answer.status = response.result_int();
  answer.body = response.body();
  return answer;
}

class WsClient {
 public:
  using PlainWs = websocket::stream<beast::tcp_stream>;
  using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

  explicit WsClient(bool tls = false) : tls_(tls) { tls_context_.set_verify_mode(ssl::verify_none); }

  beast::error_code connect(unsigned short port, std::optional<std::string> token = std::nullopt) {
    if (tls_)
      tls_ws_.emplace(io_, tls_context_);
    else
      plain_ws_.emplace(io_);
    return with([&](auto& ws) {
      tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
      auto ec = run([&](auto h) { beast::get_lowest_layer(ws).async_connect(endpoint, h); });
      if (ec) return ec;
      if constexpr (std::is_same_v<std::decay_t<decltype(ws)>, TlsWs>) {
        ec = run([&](auto h) { ws.next_layer().async_handshake(ssl::stream_base::client, h); });
        if (ec) return ec;
      }
      ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& request) {
        if (token) request.set(http::field::authorization, "Bearer " + *token);
      }));
      return run([&](auto h) { ws.async_handshake(response_, "127.0.0.1", "/v1/ws", h); });
    });
  }
  unsigned status() const { return response_.result_int(); }  // of the upgrade

  beast::error_code write(const std::string& text, bool binary = false) {
    return with([&](auto& ws) {
      ws.binary(binary);
      return run([&](auto h) { ws.async_write(net::buffer(text), h); });
    });
  }

  // The next message; empty with `ec` set when the connection ended.
  std::string read(beast::error_code& ec) {
    buffer_.consume(buffer_.size());
    ec = with([&](auto& ws) { return run([&](auto h) { ws.async_read(buffer_, h); }); });
    if (ec) return {};
    bytes_read_ += buffer_.size();
    return beast::buffers_to_string(buffer_.data());
  }
  std::string read() {
    beast::error_code ec;
    auto text = read(ec);
    INFO("read: " << ec.message());
    REQUIRE(!ec);
    return text;
  }

  // Reads (and drops) messages until the connection ends.
  struct Ending {
    beast::error_code ec;     // websocket::error::closed for a close frame
    std::uint16_t code = 0;   // its code
    std::string reason;
    std::size_t messages = 0;  // messages read before it
  };
  Ending read_until_closed() {
    Ending ending;
    for (;;) {
      read(ending.ec);
      if (ending.ec) break;
      ++ending.messages;
    }
    if (ending.ec == websocket::error::closed) {
      with([&](auto& ws) {
        ending.code = ws.reason().code;
        ending.reason = std::string(ws.reason().reason.data(), ws.reason().reason.size());
        return beast::error_code{};
      });
    }
    return ending;
  }

  void close(std::uint16_t code = websocket::close_code::normal) {
    with([&](auto& ws) { return run([&](auto h) { ws.async_close(websocket::close_reason(code), h); }); });
  }
  void drop() {
    with([&](auto& ws) {
      beast::error_code ec;
      beast::get_lowest_layer(ws).socket().close(ec);
      return ec;
    });
  }
  std::size_t bytes_read() const { return bytes_read_; }

 private:
  template <class F>
  beast::error_code with(F&& f) {
    if (tls_ws_) return f(*tls_ws_);
    return f(*plain_ws_);
  }
  template <class Start>
  beast::error_code run(Start&& start) {
    return run_bounded(io_, std::forward<Start>(start), [this] { drop(); });
  }

  bool tls_;
  net::io_context io_;
  ssl::context tls_context_{ssl::context::tls_client};
  std::optional<PlainWs> plain_ws_;
  std::optional<TlsWs> tls_ws_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::size_t bytes_read_ = 0;
};

// --- TLS material ---------------------------------------------------------------------------------

using clinicflow::testing::TempDir;

// A self-signed P-256 certificate for CN=localhost, made with the OpenSSL API.
void write_self_signed(const std::filesystem::path& cert_file, const std::filesystem::path& key_file) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  X509* cert = X509_new();
  REQUIRE(cert != nullptr);
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  FILE* f = std::fopen(key_file.c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::fclose(f);
  f = std::fopen(cert_file.c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(PEM_write_X509(f, cert) == 1);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
}

}  // namespace

// --- tests ----------------------------------------------------------------------------------------

TEST_CASE("ListenOptions defaults are the documented limits", "[ws]") {
  ListenOptions options;
  CHECK(options.max_message_bytes == 4u * 1024 * 1024);
  CHECK(options.max_connections == 256);
  CHECK(options.requests_per_second == 10000);
  CHECK(options.rate_burst == 20000);
  CHECK(options.rate_limit_action == server::RateLimitAction::throttle);
  CHECK(options.idle_timeout == std::chrono::minutes(5));
  CHECK(options.auth_timeout == std::chrono::seconds(10));
  CHECK(options.max_queued_bytes == 16u * 1024 * 1024);
  CHECK(options.tls_cert.empty());
  CHECK(options.tls_key.empty());
}

TEST_CASE("plain HTTP: /healthz answers 200, other paths 404", "[ws][http]") {
  Server server;
  auto health = http_get(server.port(), "/healthz");
  REQUIRE(!health.ec);
  CHECK(health.status == 200);
  CHECK(health.body == R"({"status":"ok"})");
  auto missing = http_get(server.port(), "/nope");
  REQUIRE(!missing.ec);
  CHECK(missing.status == 404);
  auto no_upgrade = http_get(server.port(), "/v1/ws");
  REQUIRE(!no_upgrade.ec);
  CHECK(no_upgrade.status == 426);
  auto elsewhere = http_get(server.port(), "/v2/ws", true);
  REQUIRE(!elsewhere.ec);
  CHECK(elsewhere.status == 404);
}

TEST_CASE("without a message handler /v1/ws answers 404", "[ws][http]") {
  Server server({}, false);
  auto answer = http_get(server.port(), "/v1/ws", true);
  REQUIRE(!answer.ec);
  CHECK(answer.status == 404);
  WsClient client;
  CHECK(client.connect(server.port()) == websocket::error::upgrade_declined);
  CHECK(client.status() == 404);
  CHECK(http_get(server.port(), "/healthz").status == 200);
}

TEST_CASE("upgrade, echo round trips, the bearer token reaches on_open", "[ws]") {
  Server server;
  WsClient client;
  REQUIRE(!client.connect(server.port(), "s3cret-token"));
  auto id = server.handler->wait_opened(1);
  REQUIRE(id != 0);
  CHECK(server.handler->token(id) == std::optional<std::string>("s3cret-token"));
  for (int i = 0; i < 50; ++i) {
    REQUIRE(!client.write("hello " + std::to_string(i)));
    CHECK(client.read() == "echo:hello " + std::to_string(i));
  }
  // A message larger than one read (64 KiB) arrives whole.
  std::string big(300 * 1024, 'z');
  REQUIRE(!client.write(big));
  CHECK(client.read() == "echo:" + big);
  // A message without an answer, then one with: only the second is answered.
  REQUIRE(!client.write("silent"));
  REQUIRE(!client.write("after"));
  CHECK(client.read() == "echo:after");

  WsClient anonymous;
  REQUIRE(!anonymous.connect(server.port()));
  auto second = server.handler->wait_opened(2);
  REQUIRE(second != 0);
  CHECK(second != id);
  CHECK(server.handler->token(second) == std::nullopt);

  client.close();
  CHECK(server.handler->wait_closed(id));
  CHECK_FALSE(server.handler->overlapped());
}

TEST_CASE("answers given during on_message and later from another thread go out in message order", "[ws]") {
  Server server;
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  // Sent back to back: the transport reads a message only once the one before it was answered.
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) sent.push_back((i % 3 == 0 ? "later:" : "now:") + std::to_string(i));
  for (const auto& m : sent) REQUIRE(!client.write(m));
  for (const auto& m : sent) CHECK(client.read() == "echo:" + m);
  CHECK_FALSE(server.handler->overlapped());
  server.handler->join_answerers();
}

TEST_CASE("notifications sent while on_message runs arrive before its answer", "[ws]") {
  Server server;
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  for (int round = 0; round < 20; ++round) {
    REQUIRE(!client.write("push-then-answer:" + std::to_string(round)));
    for (int i = 1; i <= 3; ++i) CHECK(client.read() == "event " + std::to_string(i));
    CHECK(client.read() == "echo:push-then-answer:" + std::to_string(round));
  }
}

TEST_CASE("notifications pushed from another thread arrive in order", "[ws]") {
  Server server;
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  auto connection = server.handler->connection(server.handler->wait_opened(1));
  REQUIRE(connection);
  constexpr int kCount = 2000;
  std::thread pusher([connection] {
    for (int i = 0; i < kCount; ++i) connection->send("event " + std::to_string(i));
  });
  // Requests interleave with the notifications; each kind keeps its own order.
  REQUIRE(!client.write("ping"));
  int next_event = 0;
  bool answered = false;
  while (next_event < kCount || !answered) {
    auto text = client.read();
    if (text == "echo:ping") {
      CHECK_FALSE(answered);
      answered = true;
      continue;
    }
    REQUIRE(text == "event " + std::to_string(next_event));
    ++next_event;
  }
  pusher.join();
}

TEST_CASE("an oversize message closes the connection with 1009", "[ws][limits]") {
  ListenOptions options;
  options.max_message_bytes = 1024;
  Server server(options);
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  auto id = server.handler->wait_opened(1);
  REQUIRE(!client.write(std::string(1024 - 5, 'a')));  // "echo:" + 1019 bytes: at the limit is fine
  CHECK(client.read().size() == 1024);
  REQUIRE(!client.write(std::string(4096, 'b')));
  auto ending = client.read_until_closed();
  CHECK(ending.ec == websocket::error::closed);
  CHECK(ending.code == websocket::close_code::too_big);
  CHECK(server.handler->wait_closed(id));
}

TEST_CASE("past max_connections the upgrade gets HTTP 503", "[ws][limits]") {
  ListenOptions options;
  options.max_connections = 2;
  Server server(options);
  WsClient a, b, c;
  REQUIRE(!a.connect(server.port()));
  REQUIRE(!b.connect(server.port()));
  CHECK(c.connect(server.port()) == websocket::error::upgrade_declined);
  CHECK(c.status() == 503);
  CHECK(http_get(server.port(), "/healthz").status == 200);  // plain HTTP is not counted
  // A slot frees when a connection closes.
  auto first = server.handler->wait_opened(1);
  a.close();
  REQUIRE(server.handler->wait_closed(first));
  WsClient d;
  REQUIRE(!d.connect(server.port()));
  REQUIRE(!d.write("in"));
  CHECK(d.read() == "echo:in");
}

TEST_CASE("an unauthenticated connection is closed with 1008 after auth_timeout", "[ws][limits]") {
  ListenOptions options;
  options.auth_timeout = 200ms;
  Server server(options);

  SECTION("not authenticated: closed") {
    server.handler->authenticate = false;
    WsClient client;
    REQUIRE(!client.connect(server.port()));
    auto ending = client.read_until_closed();
    CHECK(ending.ec == websocket::error::closed);
    CHECK(ending.code == websocket::close_code::policy_error);
    CHECK(ending.reason == "authentication timeout");
  }
  SECTION("authenticated: stays open") {
    server.handler->authenticate = true;
    WsClient client;
    REQUIRE(!client.connect(server.port()));
    std::this_thread::sleep_for(800ms);  // well past the timeout
    REQUIRE(!client.write("still here"));
    CHECK(client.read() == "echo:still here");
    CHECK(server.handler->closes().empty());
  }
}

TEST_CASE("an idle connection is closed with 1001", "[ws][limits]") {
  ListenOptions options;
  options.idle_timeout = 300ms;
  Server server(options);
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  REQUIRE(!client.write("one"));
  CHECK(client.read() == "echo:one");
  auto ending = client.read_until_closed();
  CHECK(ending.ec == websocket::error::closed);
  CHECK(ending.code == websocket::close_code::going_away);
  CHECK(ending.reason == "idle timeout");
}

TEST_CASE("rate limit: throttle delays messages past the burst, closes nothing", "[ws][limits]") {
  ListenOptions options;
  options.requests_per_second = 50;
  options.rate_burst = 2;
  options.rate_limit_action = server::RateLimitAction::throttle;
  Server server(options);
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) REQUIRE(!client.write(std::to_string(i)));
  for (int i = 0; i < kCount; ++i) CHECK(client.read() == "echo:" + std::to_string(i));
  REQUIRE(!client.write("last"));
  CHECK(client.read() == "echo:last");
  CHECK(server.handler->closes().empty());
}

TEST_CASE("rate limit: close ends a flooding connection with 1008", "[ws][limits]") {
  ListenOptions options;
  options.requests_per_second = 1;
  options.rate_burst = 3;
  options.rate_limit_action = server::RateLimitAction::close;
  Server server(options);
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  for (int i = 0; i < 20; ++i) REQUIRE(!client.write(std::to_string(i)));
  auto ending = client.read_until_closed();
  CHECK(ending.ec == websocket::error::closed);
  CHECK(ending.code == websocket::close_code::policy_error);
  CHECK(ending.reason == "rate limit");
  CHECK(ending.messages >= 3);  // the burst was answered (and flushed before the close)
  CHECK(ending.messages < 20);
}

TEST_CASE("a client that does not read is disconnected, not buffered without bound", "[ws][limits]") {
  ListenOptions options;
  options.max_queued_bytes = 1024 * 1024;
  options.close_timeout = 500ms;
  Server server(options);
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  auto id = server.handler->wait_opened(1);
  auto connection = server.handler->connection(id);
  REQUIRE(connection);
  constexpr std::size_t kFrame = 256 * 1024;
  constexpr int kFrames = 160;  // 40 MiB: far more than the socket buffers hold
  for (int i = 0; i < kFrames; ++i) connection->send(std::string(kFrame, static_cast<char>('a' + i % 26)));
  // The server gives up on the connection while the client still has not read a byte.
  REQUIRE(server.handler->wait_closed(id));
  connection->send("after the close");  // dropped, harmless
  auto ending = client.read_until_closed();
  CHECK(ending.ec);
  CHECK(client.bytes_read() < kFrame * kFrames);
  CHECK(server.handler->closes().at(id) == 1);
}

TEST_CASE("a binary frame closes the connection with 1003", "[ws]") {
  Server server;
  WsClient client;
  REQUIRE(!client.connect(server.port()));
  REQUIRE(!client.write("text first"));
  CHECK(client.read() == "echo:text first");
  REQUIRE(!client.write("\x01\x02\x03", true));
  auto ending = client.read_until_closed();
  CHECK(ending.ec == websocket::error::closed);
  CHECK(ending.code == websocket::close_code::unknown_data);
}

TEST_CASE("on_close is called exactly once per connection, however it ends", "[ws]") {
  Server server;
  auto handler = server.handler;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    REQUIRE(!clients.back()->connect(server.port()));
    REQUIRE(handler->wait_opened(i + 1) != 0);
  }
  auto ids = handler->opened();
  REQUIRE(ids.size() == 6);

  clients[0]->close();  // the client closes
  REQUIRE(handler->wait_closed(ids[0]));

  clients[1]->drop();  // the client vanishes
  REQUIRE(handler->wait_closed(ids[1]));

  auto third = handler->connection(ids[2]);  // the API closes, from another thread
  REQUIRE(third);
  std::thread([third] { third->close(4001, "token revoked"); }).join();
  third->close(4002, "twice");  // a second close is ignored
  auto ending = clients[2]->read_until_closed();
  CHECK(ending.code == 4001);
  CHECK(ending.reason == "token revoked");
  REQUIRE(handler->wait_closed(ids[2]));
  third.reset();  // a Connection must not outlive its listener

  REQUIRE(!clients[3]->write("x", true));  // a protocol refusal
  CHECK(clients[3]->read_until_closed().code == websocket::close_code::unknown_data);
  REQUIRE(handler->wait_closed(ids[3]));

  // Two are still open when the server stops.
  CHECK(handler->closes().size() == 4);
  server.stop();
  auto closes = handler->closes();
  REQUIRE(closes.size() == 6);
  for (auto id : ids) CHECK(closes.at(id) == 1);
  CHECK_FALSE(handler->overlapped());
}

TEST_CASE("TLS: wss:// round trip with a self-signed certificate", "[ws][tls]") {
  TempDir dir;
  auto cert = dir.path() / "cert.pem";
  auto key = dir.path() / "key.pem";
  write_self_signed(cert, key);

  ListenOptions options;
  options.tls_cert = cert.string();
  options.tls_key = key.string();
  Server server(options);
  REQUIRE(server.listener->tls());
  WsClient client(true);
  REQUIRE(!client.connect(server.port(), "tls-token"));
  auto id = server.handler->wait_opened(1);
  CHECK(server.handler->token(id) == std::optional<std::string>("tls-token"));
  for (int i = 0; i < 10; ++i) {
    REQUIRE(!client.write("secure " + std::to_string(i)));
    CHECK(client.read() == "echo:secure " + std::to_string(i));
  }
  auto connection = server.handler->connection(id);
  REQUIRE(connection);
  connection->send("pushed");
  CHECK(client.read() == "pushed");
  client.close();
  CHECK(server.handler->wait_closed(id));

  // A plain client gets nowhere on a TLS port.
  WsClient plain;
  CHECK(plain.connect(server.port()));
}

TEST_CASE("TLS misconfiguration is reported when the listener is built", "[ws][tls]") {
  TempDir dir;
  ListenOptions options;
  options.port = 0;
  options.tls_cert = (dir.path() / "cert.pem").string();
  CHECK_THROWS_WITH(HttpListener(options), Catch::Contains("both a certificate and a key"));
  options.tls_key = (dir.path() / "key.pem").string();
  CHECK_THROWS_WITH(HttpListener(options), Catch::Contains("cert.pem"));
}
