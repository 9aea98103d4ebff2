#pragma once
// A minimal blocking WebSocket client for `clinicflow call` (Beast stays in ws_client.cpp).
#include <chrono>
#include <optional>
#include <string>

namespace clinicflow::cli {

struct WsRequestOptions {
  std::optional<std::string> token;  // sent as `Authorization: Bearer`
  // wss:// only: trust these CA certificates (PEM) in addition to the system's, e.g. a clinic's
  // own CA or a self-signed server certificate. The server's name is always verified.
  std::optional<std::string> ca_file;
  std::chrono::milliseconds timeout{30'000};
};

// Connects to a ws:// or wss:// URL, sends one text frame, and returns the first text frame that
// answers it. Throws std::runtime_error with a plain reason (bad URL, connection refused, TLS
// certificate not trusted, timeout, closed by the server with its reason).
std::string ws_request(const std::string& url, const std::string& text, const WsRequestOptions& options);

}  // namespace clinicflow::cli
