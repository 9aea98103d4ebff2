#include "ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <stdexcept>

namespace clinicflow::cli {
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct Url {
  std::string host, port, target;
};

Url parse_url(const std::string& url) {
  const std::string scheme = "ws://";
  if (url.rfind(scheme, 0) != 0) throw std::runtime_error("the URL must start with ws:// (got '" + url + "')");
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Url out{authority, "80", slash == std::string::npos ? "/" : rest.substr(slash)};
  if (auto colon = authority.rfind(':'); colon != std::string::npos && authority.find(']') == std::string::npos) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
  }
  if (out.host.empty()) throw std::runtime_error("the URL has no host: '" + url + "'");
  return out;
}

}  // namespace

std::string ws_request(const std::string& url_text, const std::optional<std::string>& token, const std::string& text,
                       std::chrono::milliseconds timeout) {
  Url url = parse_url(url_text);
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws(io);
  std::string result;
  std::string failure;
  auto fail = [&](beast::error_code ec, const char* what) {
    if (failure.empty()) failure = std::string(what) + ": " + ec.message();
  };
  tcp::resolver resolver(io);
  beast::get_lowest_layer(ws).expires_after(timeout);
  resolver.async_resolve(url.host, url.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return fail(ec, "cannot resolve the host");
    beast::get_lowest_layer(ws).async_connect(results, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return fail(ec, "cannot connect");
      ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& request) {
        if (token) request.set(beast::http::field::authorization, "Bearer " + *token);
      }));
      ws.async_handshake(url.host, url.target, [&](beast::error_code ec) {
        if (ec) return fail(ec, "the WebSocket upgrade failed");
        ws.text(true);
        ws.async_write(net::buffer(text), [&](beast::error_code ec, std::size_t) {
          if (ec) return fail(ec, "cannot send");
          auto buffer = std::make_shared<beast::flat_buffer>();
          ws.async_read(*buffer, [&, buffer](beast::error_code ec, std::size_t) {
            if (ec == websocket::error::closed)
              return fail(ec, ("the server closed the connection (" + std::string(ws.reason().reason.c_str()) + ")").c_str());
            if (ec) return fail(ec, "no answer");
            result = beast::buffers_to_string(buffer->data());
            beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(2));
            ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
          });
        });
      });
    });
  });
  io.run();
  if (!failure.empty() && result.empty()) throw std::runtime_error(failure);
  return result;
}

}  // namespace clinicflow::cli
