#pragma once
// The network edge. Beast and Asio stay behind this header: they are the slow part of the build,
// so only http_listener.cpp includes them.
//
// Routes: `GET /healthz` → 200 {"status":"ok"}; `GET /v1/ws` upgrades to WebSocket and hands the
// connection to the api::MessageHandler (404 when there is none); anything else → 404.
#include "api/connection.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace clinicflow::server {

// What a client that exceeds ListenOptions::requests_per_second gets.
enum class RateLimitAction {
  // The connection stops reading until the bucket holds a token again: messages past the burst
  // are handled late, never dropped, and TCP flow control slows the client down. Nothing is
  // closed, so a client that briefly overshoots sees latency, not an error.
  throttle,
  // The connection is closed with 1008 "rate limit"; the message that overflowed is not handled.
  close,
};

// The first two members stay host and port: `ListenOptions{host, port}` is how callers build it.
// Every limit has a default that stops abuse without capping a well-behaved client (the API
// benchmark — 1 to 64 busy connections, one request in flight each — runs on these defaults).
// A zero value (size, count, rate or duration) disables that limit.
struct ListenOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 8470;  // 0: any free port (tests)

  // Largest incoming WebSocket message (all frames of it together). Past it the connection is
  // closed with 1009 (message too big).
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  // Open WebSocket connections at once. An upgrade past it is answered with HTTP 503.
  std::size_t max_connections = 256;
  // Per-connection token bucket over incoming messages (a JSON-RPC batch is one message):
  // `requests_per_second` tokens are added each second up to `rate_burst`. 0 disables it.
  // The whole server tops out near 60k messages/s on one thread (docs: shared/stack.md), so a
  // single connection doing 10k/s sustained is already far beyond a well-behaved client.
  double requests_per_second = 10000;
  double rate_burst = 20000;
  RateLimitAction rate_limit_action = RateLimitAction::throttle;
  // A connection from which no frame (data, ping, pong or close) arrived for this long is closed
  // with 1001 "idle timeout". Clients that only listen for notifications should ping.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
  // A connection that has not authenticated (MessageHandler::authenticated) this long after the
  // upgrade is closed with 1008 "authentication timeout".
  std::chrono::milliseconds auth_timeout = std::chrono::seconds(10);
  // Outgoing frames (answers and notifications) queued for one connection, in bytes. A reader so
  // slow that its queue exceeds this is closed with 1008 "send queue full"; the queue is dropped.
  std::size_t max_queued_bytes = 16 * 1024 * 1024;
  // How long a closing handshake (or the frame in flight before it) may take before the socket is
  // dropped without one. Bounds the time a dead or non-reading peer keeps its connection.
  std::chrono::milliseconds close_timeout = std::chrono::seconds(5);
  // How long the HTTP request (and the TLS and WebSocket handshakes) may take.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(30);
  // PEM files. When both are set every connection is TLS (https://, wss://); when both are empty
  // the listener is plain. Only one of them set is an error.
  std::string tls_cert{};  // certificate chain
  std::string tls_key{};   // private key
};

class HttpListener {
 public:
  // Binds at once, so a port in use is reported before the server says it is up.
  // Throws std::runtime_error naming the address and the reason (or the TLS file that failed).
  // `handler` serves /v1/ws; without one /v1/ws answers 404. Calls into it run on the listener's
  // thread; calls for one connection never overlap. The handler must drop its references to a
  // Connection when on_close is called for it (on_close is called exactly once per opened
  // connection, at the latest when the listener is destroyed); a Connection must not outlive the
  // listener.
  explicit HttpListener(const ListenOptions& options, std::shared_ptr<api::MessageHandler> handler = nullptr);
  ~HttpListener();

  unsigned short port() const;  // the bound port
  bool tls() const;             // whether connections are TLS
  // Serves until stop() (from any thread or a signal handler's thread).
  void run();
  void stop();
  // Stops on SIGINT / SIGTERM.
  void stop_on_signals();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clinicflow::server
