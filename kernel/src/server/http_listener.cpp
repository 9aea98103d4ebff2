#include "server/http_listener.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace clinicflow::server {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// One HTTP connection: read a request, answer it, repeat while keep-alive.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  explicit HttpSession(tcp::socket&& socket) : stream_(std::move(socket)) {}

  void start() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::read, shared_from_this())); }

 private:
  void read() {
    request_ = {};
    parser_.emplace();
    parser_->body_limit(64 * 1024);  // nothing served here takes a body
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return close();
    if (ec) return;  // timeouts and resets end the session quietly
    request_ = parser_->release();
    auto response = std::make_shared<http::response<http::string_body>>(answer(request_));
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code write_ec, std::size_t) {
                        if (write_ec) return;
                        if (response->need_eof()) return self->close();
                        self->read();
                      });
  }

  static http::response<http::string_body> answer(const http::request<http::string_body>& request) {
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    response.set(http::field::server, "clinicflowd");
    response.set(http::field::content_type, "application/json");
    if (request.target() == "/healthz" && (request.method() == http::verb::get || request.method() == http::verb::head)) {
      response.result(http::status::ok);
      response.body() = R"({"status":"ok"})";
    } else {
      response.result(http::status::not_found);
      response.body() = R"({"error":"not found"})";
    }
    response.prepare_payload();
    return response;
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
};

}  // namespace

struct HttpListener::Impl {
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  std::optional<net::signal_set> signals;

  void accept() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) std::make_shared<HttpSession>(std::move(socket))->start();
      accept();
    });
  }
};

HttpListener::HttpListener(const ListenOptions& options) : impl_(std::make_unique<Impl>()) {
  beast::error_code ec;
  auto address = net::ip::make_address(options.host, ec);
  if (ec) {
    // A host name such as "localhost": resolve it.
    tcp::resolver resolver(impl_->io);
    auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec || results.empty()) throw std::runtime_error("cannot resolve listen host '" + options.host + "': " + ec.message());
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = impl_->acceptor;
  std::string where = options.host + ":" + std::to_string(options.port);
  if (acceptor.open(endpoint.protocol(), ec)) throw std::runtime_error("cannot open socket for " + where + ": " + ec.message());
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (acceptor.bind(endpoint, ec)) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  if (acceptor.listen(net::socket_base::max_listen_connections, ec))
    throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  impl_->accept();
}

HttpListener::~HttpListener() = default;

unsigned short HttpListener::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpListener::run() { impl_->io.run(); }

void HttpListener::stop() { impl_->io.stop(); }

void HttpListener::stop_on_signals() {
  impl_->signals.emplace(impl_->io, SIGINT, SIGTERM);
  impl_->signals->async_wait([this](beast::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signal);
    stop();
  });
}

}  // namespace clinicflow::server
