#include "ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>

namespace clinicflow::cli {
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

struct Url {
  std::string host, port, target;
  bool tls = false;
};

Url parse_url(const std::string& url) {
  bool tls = url.rfind("wss://", 0) == 0;
  if (!tls && url.rfind("ws://", 0) != 0) throw std::runtime_error("the URL must start with ws:// or wss:// (got '" + url + "')");
  std::string rest = url.substr(tls ? 6 : 5);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Url out{authority, tls ? "443" : "80", slash == std::string::npos ? "/" : rest.substr(slash), tls};
  if (auto colon = authority.rfind(':'); colon != std::string::npos && authority.find(']') == std::string::npos) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
  }
  if (out.host.empty()) throw std::runtime_error("the URL has no host: '" + url + "'");
  return out;
}

// Sends `text` on an open WebSocket and reads the answer; the same for ws:// and wss://.
template <class Stream>
void exchange(Stream& ws, const Url& url, const WsRequestOptions& options, const std::string& text, std::string& result,
              const std::function<void(beast::error_code, const std::string&)>& fail) {
  ws.set_option(websocket::stream_base::decorator([token = options.token](websocket::request_type& request) {
    if (token) request.set(beast::http::field::authorization, "Bearer " + *token);
  }));
  ws.async_handshake(url.host, url.target, [&, fail](beast::error_code ec) {
    if (ec) return fail(ec, "the WebSocket upgrade failed");
    ws.text(true);
    ws.async_write(net::buffer(text), [&, fail](beast::error_code ec, std::size_t) {
      if (ec) return fail(ec, "cannot send");
      auto buffer = std::make_shared<beast::flat_buffer>();
      ws.async_read(*buffer, [&, buffer, fail](beast::error_code ec, std::size_t) {
        if (ec == websocket::error::closed)
          return fail(ec, "the server closed the connection (" + std::string(ws.reason().reason.c_str()) + ")");
        if (ec) return fail(ec, "no answer");
        result = beast::buffers_to_string(buffer->data());
        beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(2));
        ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
      });
    });
  });
}

}  // namespace

std::string ws_request(const std::string& url_text, const std::string& text, const WsRequestOptions& options) {
  Url url = parse_url(url_text);
  net::io_context io;
  std::string result;
  std::string failure;
  auto fail = [&failure](beast::error_code ec, const std::string& what) {
    if (failure.empty()) failure = what + ": " + ec.message();
  };
  tcp::resolver resolver(io);

  ssl::context context(ssl::context::tls_client);
  std::optional<websocket::stream<beast::tcp_stream>> plain;
  std::optional<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> secure;
  if (url.tls) {
    context.set_verify_mode(ssl::verify_peer);
    context.set_default_verify_paths();
    beast::error_code ec;
    if (options.ca_file && context.load_verify_file(*options.ca_file, ec))
      throw std::runtime_error("cannot read the CA file '" + *options.ca_file + "': " + ec.message());
    secure.emplace(io, context);
    // The name the certificate must carry, and the name sent for virtual hosting (SNI).
    secure->next_layer().set_verify_callback(ssl::host_name_verification(url.host));
    if (!SSL_set_tlsext_host_name(secure->next_layer().native_handle(), url.host.c_str()))
      throw std::runtime_error("cannot set the TLS server name '" + url.host + "'");
    beast::get_lowest_layer(*secure).expires_after(options.timeout);
  } else {
    plain.emplace(io);
    beast::get_lowest_layer(*plain).expires_after(options.timeout);
  }
  resolver.async_resolve(url.host, url.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return fail(ec, "cannot resolve the host");
    auto& socket = url.tls ? beast::get_lowest_layer(*secure) : beast::get_lowest_layer(*plain);
    socket.async_connect(results, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return fail(ec, "cannot connect");
      if (!url.tls) return exchange(*plain, url, options, text, result, fail);
      secure->next_layer().async_handshake(ssl::stream_base::client, [&](beast::error_code ec) {
        if (ec) return fail(ec, "the TLS handshake failed (is the server's certificate trusted? see --ca-file)");
        exchange(*secure, url, options, text, result, fail);
      });
    });
  });
  io.run();
  if (!failure.empty() && result.empty()) throw std::runtime_error(failure);
  return result;
}

}  // namespace clinicflow::cli
