#pragma once
// The seam between the network edge (server/, Beast) and the JSON-RPC API (api/): the API sees
// connections and text messages, never sockets.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace clinicflow::api {

class Connection {
 public:
  virtual ~Connection() = default;
  virtual std::uint64_t id() const = 0;
  // Queues a text frame (a notification). Thread-safe; never blocks. The transport bounds the
  // queue: a client that does not read is disconnected rather than buffered without limit.
  virtual void send(std::string text) = 0;
  // Closes with a WebSocket close code (1000 normal, 1008 policy violation, ...). Thread-safe.
  virtual void close(std::uint16_t code, std::string reason) = 0;
};

// Implemented by the API; called by the transport. Calls for one connection never overlap.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  // A connection was upgraded; `bearer_token` is the token of an `Authorization: Bearer` header.
  virtual void on_open(const std::shared_ptr<Connection>& connection, std::optional<std::string> bearer_token) = 0;
  // The answer to a text frame, or nothing (it held only notifications).
  using Reply = std::function<void(std::optional<std::string> answer)>;
  // One text frame. Answers through `reply` exactly once, now or later and from any thread (a
  // write is answered once it is durable). The transport reads the connection's next frame only
  // after the reply, so a connection's frames are answered in order and its calls never overlap.
  // `text` is valid only during the call.
  virtual void on_message(const std::shared_ptr<Connection>& connection, std::string_view text, Reply reply) = 0;
  // Whether the connection has authenticated (the transport closes unauthenticated ones after
  // the authentication timeout).
  virtual bool authenticated(const Connection& connection) const = 0;
  virtual void on_close(const Connection& connection) = 0;
};

}  // namespace clinicflow::api
