#pragma once
// A minimal blocking WebSocket client for `clinicflow call` (Beast stays in ws_client.cpp).
#include <chrono>
#include <optional>
#include <string>

namespace clinicflow::cli {

// Connects to a ws:// URL (with an `Authorization: Bearer` header when `token` is set), sends one
// text frame, and returns the first text frame that answers it. Throws std::runtime_error with a
// plain reason (bad URL, connection refused, timeout, closed by the server with its reason).
std::string ws_request(const std::string& url, const std::optional<std::string>& token, const std::string& text,
                       std::chrono::milliseconds timeout);

}  // namespace clinicflow::cli
