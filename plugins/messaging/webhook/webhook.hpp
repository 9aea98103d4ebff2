// webhook — delivers each message as an HTTP(S) POST of its JSON to a configured URL. See README.md.
// Boost.Beast/Asio stay inside webhook.cpp (slow to compile); this header is plain C++.
#pragma once

#include <clinicflow/plugin.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace clinicflow::messaging {

class Webhook final : public MessagingPlugin {
 public:
  // Where the POST goes, as parsed from the `url` setting.
  struct Target {
    bool tls = false;
    std::string host;         // for name resolution and TLS (IPv6 without brackets)
    std::string port;         // "80", "443" or the URL's port
    std::string host_header;  // Host: as written in the URL, with a non-default port
    std::string path;         // request target: path and query, at least "/"
  };

  static Manifest manifest();
  explicit Webhook(const Settings& settings);  // throws std::invalid_argument on a bad setting
  ~Webhook() override;
  Webhook(const Webhook&) = delete;
  Webhook& operator=(const Webhook&) = delete;

  Delivery deliver(const Message& message) override;

  const Target& target() const;
  // The message as the JSON object that is POSTed.
  static std::string body_json(const Message& message);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clinicflow::messaging
