#include "server/http_listener.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>

namespace clinicflow::server {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

// One thread runs the listener's io_context (HttpListener::run), so a session's handlers never
// overlap without a strand, and the plain io_context executor spares every operation the
// type-erased any_io_executor (measured: ~8 % of the I/O thread's time per request went to
// strand and any_executor bookkeeping).
using Executor = net::io_context::executor_type;
using Socket = tcp::socket::rebind_executor<Executor>::other;
using PlainStream = beast::basic_stream<tcp, Executor>;
using TlsStream = beast::ssl_stream<PlainStream>;
using Request = http::request<http::string_body>;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxRequestBody = 64 * 1024;  // nothing served over plain HTTP takes a body
constexpr std::size_t kReadChunk = 64 * 1024;       // most a single WebSocket read appends

// A WebSocket connection as the listener sees it, whatever the stream underneath.
class WsSessionBase : public api::Connection {
 public:
  // Drops the socket and reports the close to the handler. Only while the io_context is stopped.
  virtual void abandon() = 0;
};

// What the listener and all its sessions share. Sessions hold it, so it outlives the listener
// while handlers still hold connections.
struct Shared {
  ListenOptions options;
  std::shared_ptr<api::MessageHandler> handler;

  std::mutex mutex;
  std::unordered_map<std::uint64_t, std::weak_ptr<WsSessionBase>> sessions;  // open WebSocket connections
  std::uint64_t next_id = 1;

  // Counts a new connection unless the limit is reached; its id, or 0 at the limit.
  std::uint64_t reserve() {
    std::lock_guard lock(mutex);
    if (options.max_connections != 0 && sessions.size() >= options.max_connections) return 0;
    std::uint64_t id = next_id++;
    sessions.emplace(id, std::weak_ptr<WsSessionBase>());
    return id;
  }
  void attach(std::uint64_t id, const std::shared_ptr<WsSessionBase>& session) {
    std::lock_guard lock(mutex);
    if (auto it = sessions.find(id); it != sessions.end()) it->second = session;
  }
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex);
    sessions.erase(id);
  }
};

std::string request_path(const Request& request) {
  std::string target(request.target().data(), request.target().size());
  return target.substr(0, target.find('?'));
}

// The token of an `Authorization: Bearer <token>` header.
std::optional<std::string> bearer_token(const Request& request) {
  auto it = request.find(http::field::authorization);
  if (it == request.end()) return std::nullopt;
  std::string value(it->value().data(), it->value().size());
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || !beast::iequals(std::string_view(value).substr(0, kScheme.size()), kScheme))
    return std::nullopt;
  value.erase(0, kScheme.size());
  auto first = value.find_first_not_of(" \t");
  auto last = value.find_last_not_of(" \t");
  if (first == std::string::npos) return std::nullopt;
  return value.substr(first, last - first + 1);
}

template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;

// One WebSocket connection. Everything it does runs on the listener's thread (the socket's
// executor); the public Connection methods post onto it.
template <class Stream>
class WsSession final : public WsSessionBase, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(Stream&& stream, std::shared_ptr<Shared> shared, std::uint64_t id)
      : ws_(std::move(stream)),
        shared_(std::move(shared)),
        options_(shared_->options),
        id_(id),
        auth_timer_(ws_.get_executor()),
        idle_timer_(ws_.get_executor()),
        rate_timer_(ws_.get_executor()),
        close_timer_(ws_.get_executor()) {}

  ~WsSession() override {
    if (finished_) return;
    shared_->remove(id_);
    if (opened_) notify_closed();
  }

  // Accepts the upgrade. Called on the listener's thread.
  void start(Request request) {
    bearer_ = bearer_token(request);
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = options_.handshake_timeout.count() > 0
                                     ? Clock::duration(options_.handshake_timeout)
                                     : websocket::stream_base::none();
    timeouts.idle_timeout = websocket::stream_base::none();  // our own idle timer sends a close frame
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "clinicflowd"); }));
    ws_.read_message_max(0);  // read() enforces max_message_bytes itself
    ws_.auto_fragment(false);
    ws_.async_accept(request, beast::bind_front_handler(&WsSession::on_accept, this->shared_from_this()));
  }

  std::uint64_t id() const override { return id_; }

  void send(std::string text) override {
    if (closed_.load(std::memory_order_relaxed)) return;
    if (!reserve_bytes(text.size())) return;
    sends_in_flight_.fetch_add(1, std::memory_order_release);
    net::post(ws_.get_executor(), [self = this->shared_from_this(), text = std::move(text)]() mutable {
      self->sends_in_flight_.fetch_sub(1, std::memory_order_relaxed);
      self->enqueue(std::move(text));
    });
  }

  void close(std::uint16_t code, std::string reason) override {
    if (closed_.load(std::memory_order_relaxed)) return;
    net::post(ws_.get_executor(), [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
      self->begin_close(code, std::move(reason), true);
    });
  }

  void abandon() override { finish(); }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      spdlog::debug("ws #{}: upgrade failed: {}", id_, ec.message());
      return finish();
    }
    opened_ = true;
    last_frame_ = Clock::now();
    tokens_ = std::max(options_.rate_burst, 1.0);
    refilled_ = last_frame_;
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { last_frame_ = Clock::now(); });
    if (options_.idle_timeout.count() > 0) arm_idle_timer();
    if (options_.auth_timeout.count() > 0) {
      auth_timer_.expires_after(options_.auth_timeout);
      auth_timer_.async_wait(beast::bind_front_handler(&WsSession::on_auth_timer, this->shared_from_this()));
    }
    spdlog::debug("ws #{}: open", id_);
    try {
      shared_->handler->on_open(this->shared_from_this(), bearer_);
    } catch (const std::exception& e) {
      spdlog::error("ws #{}: on_open failed: {}", id_, e.what());
      return begin_close(websocket::close_code::internal_error, "internal error", false);
    }
    bearer_.reset();
    read();
  }

  // --- reading ---------------------------------------------------------------------------------

  // Reads the next message piecewise, so its size is checked as it arrives: past
  // max_message_bytes the connection is closed with 1009 (the closing handshake reads and drops the
  // rest, so the client sees the close frame rather than a reset).
  void read() {
    if (closing_) return;
    std::size_t limit = kReadChunk;
    if (options_.max_message_bytes != 0) limit = std::min(limit, options_.max_message_bytes + 1 - buffer_.size());
    ws_.async_read_some(buffer_, limit, beast::bind_front_handler(&WsSession::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      // The peer closed (Beast answered its close frame), the socket failed, or we dropped it.
      if (ec != websocket::error::closed && ec != net::error::operation_aborted)
        spdlog::debug("ws #{}: read: {}", id_, ec.message());
      return finish();
    }
    last_frame_ = Clock::now();
    if (closing_) {
      buffer_.consume(buffer_.size());
      return;  // the close handshake reads on from here
    }
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      return begin_close(websocket::close_code::unknown_data, "binary frames are not accepted", false);
    }
    if (options_.max_message_bytes != 0 && buffer_.size() > options_.max_message_bytes) {
      spdlog::warn("ws #{}: message over {} bytes; closed with 1009", id_, options_.max_message_bytes);
      buffer_.consume(buffer_.size());
      return begin_close(websocket::close_code::too_big, "message too big", false);
    }
    if (!ws_.is_message_done()) return read();
    admit();
  }

  // Applies the rate limit to the message in buffer_, then handles it.
  void admit() {
    if (options_.requests_per_second > 0) {
      auto now = Clock::now();
      double burst = std::max(options_.rate_burst, 1.0);
      tokens_ = std::min(burst, tokens_ + std::chrono::duration<double>(now - refilled_).count() * options_.requests_per_second);
      refilled_ = now;
      if (tokens_ < 1.0) {
        if (options_.rate_limit_action == RateLimitAction::close) {
          spdlog::warn("ws #{}: over {} messages/s; closed with 1008", id_, options_.requests_per_second);
          buffer_.consume(buffer_.size());
          return begin_close(websocket::close_code::policy_error, "rate limit", true);
        }
        // Throttle: read nothing more until a token has accumulated.
        auto wait = std::chrono::duration<double>((1.0 - tokens_) / options_.requests_per_second);
        rate_timer_.expires_after(std::chrono::ceil<Clock::duration>(wait));
        rate_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
          if (ec || self->closing_) return;
          self->admit();
        });
        return;
      }
      tokens_ -= 1.0;
    }
    handle();
  }

  // Hands the message to the API; the next frame is read once it has answered (a write answers
  // when it is durable, from the committer thread), so this connection's answers stay in order.
  // An answer given before on_message returns (a read) is kept and sent right after, without a
  // trip through the io_context's queue — unless notifications sent before it are still in
  // that queue (a clock.advance waits while the committer sends its timers' events): then it is
  // posted behind them, so they arrive first. One from another thread is posted here.
  void handle() {
    auto data = buffer_.data();
    std::string_view text(static_cast<const char*>(data.data()), data.size());
    in_handler_ = true;
    try {
      shared_->handler->on_message(this->shared_from_this(), text, [self = this->shared_from_this()](std::optional<std::string> answer) {
        // in_handler_ is touched only on the listener's thread, so it is read only there.
        if (self->ws_.get_executor().running_in_this_thread() && self->in_handler_ &&
            self->sends_in_flight_.load(std::memory_order_acquire) == 0) {
          self->early_answer_ = std::move(answer);
          self->answered_early_ = true;
          return;
        }
        net::post(self->ws_.get_executor(), [self, answer = std::move(answer)]() mutable { self->answered(std::move(answer)); });
      });
    } catch (const std::exception& e) {
      in_handler_ = false;
      answered_early_ = false;
      spdlog::error("ws #{}: on_message failed: {}", id_, e.what());
      buffer_.consume(buffer_.size());
      return begin_close(websocket::close_code::internal_error, "internal error", true);
    }
    in_handler_ = false;
    buffer_.consume(buffer_.size());  // the handler parsed the text before it returned
    if (answered_early_) {
      answered_early_ = false;
      answered(std::move(early_answer_));
    }
  }

  void answered(std::optional<std::string> answer) {
    if (answer && reserve_bytes(answer->size())) enqueue(std::move(*answer));
    read();
  }

  // --- writing ---------------------------------------------------------------------------------

  // Counts `size` more bytes towards the outgoing queue; past the limit the connection is closed
  // with 1008 and the frame dropped. Any thread.
  bool reserve_bytes(std::size_t size) {
    std::size_t limit = options_.max_queued_bytes;
    std::size_t total = queued_bytes_.fetch_add(size, std::memory_order_relaxed) + size;
    if (limit == 0 || total <= limit) return true;
    queued_bytes_.fetch_sub(size, std::memory_order_relaxed);
    if (!overflowed_.exchange(true)) {
      net::post(ws_.get_executor(), [self = this->shared_from_this()] {
        spdlog::warn("ws #{}: more than {} bytes queued for a client that does not read; closed with 1008", self->id_,
                     self->options_.max_queued_bytes);
        self->begin_close(websocket::close_code::policy_error, "send queue full", false);
      });
    }
    return false;
  }

  // On the strand; the bytes are already counted.
  void enqueue(std::string text) {
    if (closing_) {
      queued_bytes_.fetch_sub(text.size(), std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(text));
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(queue_.front()), beast::bind_front_handler(&WsSession::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
      if (ec != net::error::operation_aborted) spdlog::debug("ws #{}: write: {}", id_, ec.message());
      return finish();
    }
    queued_bytes_.fetch_sub(queue_.front().size(), std::memory_order_relaxed);
    queue_.pop_front();
    if (!queue_.empty()) return write_next();
    if (closing_ && !close_sent_) send_close();
  }

  // Drops every queued frame except the one being written (its buffer is in use).
  void drop_queue() {
    std::size_t keep = writing_ ? 1 : 0;
    while (queue_.size() > keep) {
      queued_bytes_.fetch_sub(queue_.back().size(), std::memory_order_relaxed);
      queue_.pop_back();
    }
  }

  // --- closing ---------------------------------------------------------------------------------

  // Starts the closing handshake. `flush`: queued frames go out first (an answer, then the close);
  // otherwise they are dropped. Either way the socket is gone after close_timeout.
  void begin_close(std::uint16_t code, std::string reason, bool flush) {
    if (closing_) return;
    closing_ = true;
    closed_.store(true, std::memory_order_relaxed);
    auth_timer_.cancel();
    idle_timer_.cancel();
    rate_timer_.cancel();
    if (options_.close_timeout.count() > 0) {
      close_timer_.expires_after(options_.close_timeout);
      close_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return;
        spdlog::debug("ws #{}: closing handshake timed out; socket dropped", self->id_);
        self->finish();
      });
    }
    if (reason.size() > 123) reason.resize(123);  // what fits in a close frame
    close_reason_.code = code;
    close_reason_.reason.assign(reason.data(), reason.size());
    if (!flush) drop_queue();
    // A close may start while a write is in flight (Beast allows one of each); it goes out after it.
    if (!flush || !writing_) send_close();
  }

  void send_close() {
    if (close_sent_ || finished_) return;
    close_sent_ = true;
    ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code) { self->finish(); });
  }

  // The end of the connection, whichever way it came: once.
  void finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    closed_.store(true, std::memory_order_relaxed);
    auth_timer_.cancel();
    idle_timer_.cancel();
    rate_timer_.cancel();
    close_timer_.cancel();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    drop_queue();
    shared_->remove(id_);
    if (opened_) {
      spdlog::debug("ws #{}: closed", id_);
      notify_closed();
    }
  }

  void notify_closed() {
    try {
      shared_->handler->on_close(*this);
    } catch (const std::exception& e) {
      spdlog::error("ws #{}: on_close failed: {}", id_, e.what());
    }
  }

  // --- timers ----------------------------------------------------------------------------------

  void arm_idle_timer() {
    idle_timer_.expires_at(last_frame_ + options_.idle_timeout);
    idle_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->closing_) return;
      if (Clock::now() - self->last_frame_ >= self->options_.idle_timeout) {
        spdlog::debug("ws #{}: idle; closing", self->id_);
        return self->begin_close(websocket::close_code::going_away, "idle timeout", true);
      }
      self->arm_idle_timer();
    });
  }

  void on_auth_timer(beast::error_code ec) {
    if (ec || closing_) return;
    bool authenticated = false;
    try {
      authenticated = shared_->handler->authenticated(*this);
    } catch (const std::exception& e) {
      spdlog::error("ws #{}: authenticated() failed: {}", id_, e.what());
    }
    if (authenticated) return;
    spdlog::info("ws #{}: not authenticated after {} ms; closed with 1008", id_, options_.auth_timeout.count());
    begin_close(websocket::close_code::policy_error, "authentication timeout", true);
  }

  websocket::stream<Stream> ws_;
  std::shared_ptr<Shared> shared_;
  const ListenOptions& options_;  // in *shared_
  const std::uint64_t id_;
  std::optional<std::string> bearer_;

  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;  // outgoing text frames; the front one is being written
  std::atomic<std::size_t> queued_bytes_{0};
  std::atomic<std::size_t> sends_in_flight_{0};  // send()s posted, not yet queued
  std::atomic<bool> overflowed_{false};
  std::atomic<bool> closed_{false};  // no more frames accepted (closing or closed)
  bool writing_ = false;
  bool opened_ = false;       // on_open was called, so on_close is owed
  bool closing_ = false;      // a close was decided
  bool close_sent_ = false;   // async_close started
  bool finished_ = false;     // on_close was called (or nothing was owed)
  bool in_handler_ = false;   // on_message is running (for the frame in buffer_)
  bool answered_early_ = false;  // ... and has answered, with early_answer_
  std::optional<std::string> early_answer_;
  websocket::close_reason close_reason_;

  Clock::time_point last_frame_{};
  double tokens_ = 0;
  Clock::time_point refilled_{};

  net::steady_timer auth_timer_;
  net::steady_timer idle_timer_;
  net::steady_timer rate_timer_;
  net::steady_timer close_timer_;
};

// One HTTP connection: read a request, answer it, repeat while keep-alive; or hand the socket to
// a WebSocket session.
template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream&& stream, std::shared_ptr<Shared> shared) : stream_(std::move(stream)), shared_(std::move(shared)) {}

  void start() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::begin, this->shared_from_this()));
  }

 private:
  void begin() {
    if constexpr (kIsTls<Stream>) {
      set_timeout();
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return spdlog::debug("tls handshake: {}", ec.message());
        self->read();
      });
    } else {
      read();
    }
  }

  void set_timeout() {
    auto timeout = shared_->options.handshake_timeout;
    if (timeout.count() > 0)
      beast::get_lowest_layer(stream_).expires_after(timeout);
    else
      beast::get_lowest_layer(stream_).expires_never();
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    set_timeout();
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return close();
    if (ec) return;  // timeouts and resets end the session quietly
    Request request = parser_->release();
    std::string path = request_path(request);
    if (path == "/v1/ws" && shared_->handler) {
      if (!websocket::is_upgrade(request))
        return respond(answer(request, http::status::upgrade_required, R"({"error":"WebSocket upgrade required"})"));
      std::uint64_t id = shared_->reserve();
      if (id == 0) {
        spdlog::warn("WebSocket upgrade refused: {} connections open", shared_->options.max_connections);
        auto response = answer(request, http::status::service_unavailable, R"({"error":"too many connections"})");
        response.keep_alive(false);
        return respond(std::move(response));
      }
      beast::get_lowest_layer(stream_).expires_never();  // the WebSocket stream keeps its own time
      auto session = std::make_shared<WsSession<Stream>>(std::move(stream_), shared_, id);
      shared_->attach(id, session);
      return session->start(std::move(request));
    }
    if (path == "/healthz" && (request.method() == http::verb::get || request.method() == http::verb::head))
      return respond(answer(request, http::status::ok, R"({"status":"ok"})"));
    respond(answer(request, http::status::not_found, R"({"error":"not found"})"));
  }

  static http::response<http::string_body> answer(const Request& request, http::status status, std::string body) {
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    response.result(status);
    response.set(http::field::server, "clinicflowd");
    response.set(http::field::content_type, "application/json");
    if (status == http::status::upgrade_required) response.set(http::field::upgrade, "websocket");
    response.body() = std::move(body);
    response.prepare_payload();
    if (request.method() == http::verb::head) response.body().clear();
    return response;
  }

  void respond(http::response<http::string_body> response) {
    auto message = std::make_shared<http::response<http::string_body>>(std::move(response));
    http::async_write(stream_, *message, [self = this->shared_from_this(), message](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (message->need_eof()) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  Stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

struct HttpListener::Impl {
  std::optional<ssl::context> tls;  // before io: streams using it are destroyed with io
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  std::optional<net::signal_set> signals;
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();

  ~Impl() {
    io.stop();
    beast::error_code ec;
    acceptor.close(ec);
    // Every open connection is told it closed, so handlers drop their references before the
    // io_context (which their sockets belong to) goes.
    decltype(shared->sessions) live;
    {
      std::lock_guard lock(shared->mutex);
      live.swap(shared->sessions);
    }
    for (auto& [id, weak] : live)
      if (auto session = weak.lock()) session->abandon();
  }

  void accept() {
    acceptor.async_accept(io.get_executor(), [this](beast::error_code ec, Socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);  // answers and notifications go out at once
        if (tls)
          std::make_shared<HttpSession<TlsStream>>(TlsStream(std::move(socket), *tls), shared)->start();
        else
          std::make_shared<HttpSession<PlainStream>>(PlainStream(std::move(socket)), shared)->start();
      }
      accept();
    });
  }
};

namespace {

ssl::context make_tls_context(const ListenOptions& options) {
  ssl::context context(ssl::context::tls_server);
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  beast::error_code ec;
  if (context.use_certificate_chain_file(options.tls_cert, ec))
    throw std::runtime_error("cannot load TLS certificate '" + options.tls_cert + "': " + ec.message());
  if (context.use_private_key_file(options.tls_key, ssl::context::pem, ec))
    throw std::runtime_error("cannot load TLS key '" + options.tls_key + "': " + ec.message());
  return context;
}

}  // namespace

HttpListener::HttpListener(const ListenOptions& options, std::shared_ptr<api::MessageHandler> handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->shared->options = options;
  impl_->shared->handler = std::move(handler);
  if (options.tls_cert.empty() != options.tls_key.empty())
    throw std::runtime_error("TLS needs both a certificate and a key file (only one is set)");
  if (!options.tls_cert.empty()) impl_->tls.emplace(make_tls_context(options));

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

bool HttpListener::tls() const { return impl_->tls.has_value(); }

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
