#pragma once
// The network edge. Beast and Asio stay behind this header: they are the slow part of the build,
// so only http_listener.cpp includes them.
#include <functional>
#include <memory>
#include <string>

namespace clinicflow::server {

struct ListenOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 8470;  // 0: any free port (tests)
};

class HttpListener {
 public:
  // Binds at once, so a port in use is reported before the server says it is up.
  // Throws std::runtime_error naming the address and the reason.
  explicit HttpListener(const ListenOptions& options);
  ~HttpListener();

  unsigned short port() const;  // the bound port
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
