// clinicflow_echo: a bare single-threaded Beast WebSocket echo server, the ceiling that
// clinicflow_bench compares clinicflowd with. Every text or binary message is sent back as is.
//
//   clinicflow_echo [PORT]      (default 0: any free port; the port is printed at start)
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : ws_(std::move(socket)) {}

  void start() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(4 * 1024 * 1024);
    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->read();
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->ws_.text(self->ws_.got_text());
      self->ws_.async_write(self->buffer_.data(), [self](beast::error_code ec, std::size_t) {
        if (ec) return;
        self->buffer_.consume(self->buffer_.size());
        self->read();
      });
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

class Listener {
 public:
  Listener(net::io_context& io, unsigned short port) : io_(io), acceptor_(io, {net::ip::make_address("127.0.0.1"), port}) {}

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void accept() {
    acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket))->start();
      accept();
    });
  }

 private:
  net::io_context& io_;
  tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 || (argc == 2 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help"))) {
    std::cerr << "usage: clinicflow_echo [PORT]   (default 0: any free port)\n";
    return 2;
  }
  try {
    net::io_context io(1);
    Listener listener(io, static_cast<unsigned short>(argc == 2 ? std::atoi(argv[1]) : 0));
    listener.accept();
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](beast::error_code, int) { io.stop(); });
    std::cout << "clinicflow_echo listening on 127.0.0.1:" << listener.port() << std::endl;
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "clinicflow_echo: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
