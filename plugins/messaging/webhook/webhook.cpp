#include "webhook.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <openssl/ssl.h>

namespace clinicflow::messaging {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr std::int64_t kDefaultTimeoutMs = 5000;
constexpr std::size_t kResponseBodyLimit = 64 * 1024;  // the body is never used; only bounded

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_token(std::string_view s) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

bool is_header_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// The URL is never echoed in errors: its query may carry a secret token.
Webhook::Target parse_target(const std::string& text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed) throw std::invalid_argument("setting 'url' is not a valid http:// or https:// URL (" + parsed.error().message() + ")");
  const urls::url_view u = *parsed;
  Webhook::Target t;
  if (u.scheme_id() == urls::scheme::https) t.tls = true;
  else if (u.scheme_id() != urls::scheme::http)
    throw std::invalid_argument("setting 'url' must start with http:// or https://");
  if (!u.has_authority() || u.encoded_host().empty()) throw std::invalid_argument("setting 'url' must name a host");
  if (u.has_userinfo())
    throw std::invalid_argument(
        "setting 'url' must not contain a user name or password; put credentials in 'headers' (e.g. Authorization)");
  switch (u.host_type()) {
    case urls::host_type::ipv6: t.host = u.host_ipv6_address().to_string(); break;
    case urls::host_type::ipvfuture: throw std::invalid_argument("setting 'url' has an unsupported host address");
    default: t.host = u.host_address(); break;
  }
  if (u.has_port() && !u.port().empty()) {
    const std::string_view p = u.port();
    if (p.size() > 5 || u.port_number() == 0 || std::stoul(std::string(p)) > 65535)
      throw std::invalid_argument("setting 'url' has an invalid port");
    t.port = std::to_string(u.port_number());
    t.host_header = std::string(u.encoded_host_and_port());
  } else {
    t.port = t.tls ? "443" : "80";
    t.host_header = std::string(u.encoded_host());
  }
  t.path = std::string(u.encoded_target());
  if (t.path.empty() || t.path.front() != '/') t.path.insert(0, "/");
  return t;
}

std::string status_text(unsigned code) {
  std::string out = "HTTP " + std::to_string(code);
  const auto reason = http::obsolete_reason(http::int_to_status(code));
  if (!reason.empty() && reason.front() != '<') out += " " + std::string(reason);
  return out;
}

// One delivery attempt: everything runs on a private io_context that is driven only until the
// deadline; past it, all operations are cancelled and the attempt is reported as timed out.
class Attempt {
 public:
  explicit Attempt(std::chrono::milliseconds timeout) : timeout_(timeout), deadline_(std::chrono::steady_clock::now() + timeout) {}

  asio::io_context& ioc() { return ioc_; }
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }

  // Starts `op` with a completion handler that stores the error code, and runs until it has
  // completed or the deadline passed. On timeout, `cancel` is called and false returned.
  template <class Op, class Cancel>
  bool run(error_code& ec, Op op, Cancel cancel) {
    bool done = false;
    op([&](error_code e, auto&&...) {
      ec = e;
      done = true;
    });
    ioc_.restart();
    while (!done) {
      if (ioc_.run_one_until(deadline_) == 0 && !done) {
        cancel();
        ioc_.restart();
        ioc_.run();  // let the cancelled operations finish
        return false;
      }
    }
    return true;
  }

  std::string timed_out(std::string_view during) const {
    return "timed out after " + std::to_string(timeout_.count()) + " ms (" + std::string(during) + ")";
  }

 private:
  asio::io_context ioc_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_;
};

Delivery classify(unsigned code, const http::fields& headers) {
  if (code >= 200 && code < 300) return Delivery::delivered();
  std::string error = status_text(code);
  if (code >= 500 || code == 408 || code == 429) {
    if (auto it = headers.find(http::field::retry_after); it != headers.end()) {
      std::string_view v = it->value();
      if (v.size() <= 40 && std::all_of(v.begin(), v.end(), [](char c) { return std::isprint(static_cast<unsigned char>(c)); }))
        error += " (Retry-After: " + std::string(v) + ")";
    }
    return Delivery::retry(error);
  }
  if (code >= 300 && code < 400) error += " (redirects are not followed; set 'url' to the final address)";
  return Delivery::failed(error);
}

// Sends `req` over a connected stream (plain or TLS, handshake done) and reads the answer.
template <class Stream>
Delivery exchange(Attempt& attempt, Stream& stream, http::request<http::string_body>& req) {
  auto cancel = [&] { beast::get_lowest_layer(stream).close(); };
  error_code ec;
  if (!attempt.run(ec, [&](auto handler) { http::async_write(stream, req, std::move(handler)); }, cancel))
    return Delivery::retry(attempt.timed_out("sending the request"));
  if (ec) return Delivery::retry("sending the request failed: " + ec.message());

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  if (!attempt.run(ec, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); }, cancel))
    return Delivery::retry(attempt.timed_out("waiting for the response"));
  if (ec && !(ec == http::error::body_limit && parser.is_header_done())) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof)
      return Delivery::retry("the server closed the connection without a response");
    return Delivery::retry("reading the response failed: " + ec.message());
  }
  error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  return classify(parser.get().result_int(), parser.get().base());
}

}  // namespace

// Name lookups run on one worker thread per plugin instance. getaddrinfo cannot be cancelled:
// if a lookup hangs (an unreachable DNS server), the delivery still returns at its deadline and
// the worker finishes the lookup on its own. The worker is joined when the instance goes, never
// detached, so no thread outlives the plugin library.
class Resolver {
 public:
  struct Lookup {
    std::string host, port;
    bool done = false;
    error_code ec;
    tcp::resolver::results_type results;
  };

  ~Resolver() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  // Resolves host:port; false when the deadline passed first.
  bool resolve(const std::string& host, const std::string& port, std::chrono::steady_clock::time_point deadline,
               error_code& ec, tcp::resolver::results_type& results) {
    auto lookup = std::make_shared<Lookup>();
    lookup->host = host;
    lookup->port = port;
    std::unique_lock lock(mutex_);
    if (!worker_.joinable()) worker_ = std::thread([this] { run(); });
    queue_.push_back(lookup);
    cv_.notify_all();
    if (!cv_.wait_until(lock, deadline, [&] { return lookup->done; })) return false;
    ec = lookup->ec;
    results = lookup->results;
    return true;
  }

 private:
  void run() {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      std::shared_ptr<Lookup> lookup = queue_.front();
      queue_.pop_front();
      lock.unlock();
      error_code ec;
      auto results = resolver.resolve(lookup->host, lookup->port, ec);
      lock.lock();
      lookup->ec = ec;
      lookup->results = std::move(results);
      lookup->done = true;
      cv_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Lookup>> queue_;
  bool stop_ = false;
  std::thread worker_;
};

struct Webhook::Impl {
  Target target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{kDefaultTimeoutMs};
  bool verify_tls = true;
  std::optional<ssl::context> tls;
  Resolver resolver;
};

Manifest Webhook::manifest() {
  return {"webhook",
          "messaging",
          "1.0.0",
          "Delivers each message as an HTTP(S) POST of its JSON to a URL (an integration's endpoint).",
          {
              {"url", "string", nullptr, "Where to POST: an http:// or https:// URL. Required."},
              {"timeout_ms", "integer", kDefaultTimeoutMs,
               "Deadline for one attempt (name lookup, connect, TLS, request and response), in milliseconds."},
              {"headers", "table", json::object{},
               "Extra request headers, e.g. { Authorization = \"Bearer ...\" }. Values are strings."},
              {"verify_tls", "boolean", true,
               "https: check the server's certificate and name against the trusted CAs. Turn off only for testing."},
              {"ca_file", "string", "",
               "https: a PEM file of CA certificates to trust in addition to the system's (e.g. a private CA)."},
          }};
}

Webhook::Webhook(const Settings& settings) : impl_(std::make_unique<Impl>()) {
  if (!settings.has("url") || settings.values().at("url").is_null())
    throw std::invalid_argument("setting 'url' is required (the http:// or https:// address to POST messages to)");
  impl_->target = parse_target(settings.string("url"));

  if (settings.has("timeout_ms")) {
    const std::int64_t ms = settings.integer("timeout_ms");
    if (ms < 1 || ms > 600000) throw std::invalid_argument("setting 'timeout_ms' must be between 1 and 600000");
    impl_->timeout = std::chrono::milliseconds(ms);
  }
  if (settings.has("verify_tls")) impl_->verify_tls = settings.boolean("verify_tls");

  if (settings.has("headers")) {
    for (const auto& [name, value] : settings.table("headers")) {
      const std::string n(name);
      if (!is_token(n)) throw std::invalid_argument("setting 'headers': '" + n + "' is not a valid header name");
      if (!value.is_string()) throw std::invalid_argument("setting 'headers': the value of '" + n + "' must be a string");
      if (!is_header_value(value.get_string()))
        throw std::invalid_argument("setting 'headers': the value of '" + n + "' must not contain line breaks");
      const std::string l = lower(n);
      if (l == "host" || l == "content-length" || l == "transfer-encoding" || l == "idempotency-key" || l == "connection")
        throw std::invalid_argument("setting 'headers': '" + n + "' is set by the plugin and cannot be changed");
      impl_->headers.emplace_back(n, std::string(value.get_string()));
    }
  }

  const std::string ca_file = settings.has("ca_file") ? settings.string("ca_file") : std::string();
  if (impl_->target.tls) {
    impl_->tls.emplace(ssl::context::tls_client);
    ssl::context& ctx = *impl_->tls;
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    error_code ec;
    ctx.set_default_verify_paths(ec);  // the system's CAs (Debian: ca-certificates)
    if (!ca_file.empty()) {
      ctx.load_verify_file(ca_file, ec);
      if (ec) throw std::invalid_argument("setting 'ca_file': cannot load " + ca_file + " (" + ec.message() + ")");
    }
    ctx.set_verify_mode(impl_->verify_tls ? ssl::verify_peer : ssl::verify_none);
  }
}

Webhook::~Webhook() = default;

const Webhook::Target& Webhook::target() const { return impl_->target; }

std::string Webhook::body_json(const Message& m) {
  return json::serialize(json::object{{"id", m.id},
                                      {"case_id", m.case_id},
                                      {"template", m.template_name},
                                      {"recipient", m.recipient},
                                      {"address", m.address},
                                      {"subject", m.subject},
                                      {"body", m.body},
                                      {"attempt", m.attempt}});
}

Delivery Webhook::deliver(const Message& m) {
  if (m.id.empty()) return Delivery::failed("the message has no id");
  const Target& t = impl_->target;

  http::request<http::string_body> req{http::verb::post, t.path, 11};
  req.set(http::field::host, t.host_header);
  req.set(http::field::user_agent, "clinicflow-webhook/1.0");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "*/*");
  for (const auto& [name, value] : impl_->headers) req.set(name, value);
  req.set("Idempotency-Key", m.id);
  req.set(http::field::connection, "close");
  req.body() = body_json(m);
  req.prepare_payload();

  Attempt attempt(impl_->timeout);
  error_code ec;

  tcp::resolver::results_type endpoints;
  if (!impl_->resolver.resolve(t.host, t.port, attempt.deadline(), ec, endpoints))
    return Delivery::retry(attempt.timed_out("looking up " + t.host));
  if (ec) return Delivery::retry("cannot resolve " + t.host + ": " + ec.message());

  auto connect = [&](beast::tcp_stream& tcp) -> std::optional<Delivery> {
    if (!attempt.run(ec, [&](auto handler) {
          tcp.async_connect(endpoints, [handler = std::move(handler)](error_code e, const tcp::endpoint&) mutable { handler(e); });
        }, [&] { tcp.close(); }))
      return Delivery::retry(attempt.timed_out("connecting to " + t.host + ":" + t.port));
    if (ec) return Delivery::retry("cannot connect to " + t.host + ":" + t.port + ": " + ec.message());
    return std::nullopt;
  };

  if (!t.tls) {
    beast::tcp_stream stream(attempt.ioc());
    if (auto failed = connect(stream)) return *failed;
    return exchange(attempt, stream, req);
  }

  beast::ssl_stream<beast::tcp_stream> stream(attempt.ioc(), *impl_->tls);
  error_code not_ip;
  asio::ip::make_address(t.host, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str());  // SNI
  if (impl_->verify_tls) stream.set_verify_callback(ssl::host_name_verification(t.host));
  if (auto failed = connect(beast::get_lowest_layer(stream))) return *failed;
  if (!attempt.run(ec, [&](auto handler) { stream.async_handshake(ssl::stream_base::client, std::move(handler)); },
                   [&] { beast::get_lowest_layer(stream).close(); }))
    return Delivery::retry(attempt.timed_out("TLS handshake with " + t.host));
  if (ec) return Delivery::retry("TLS handshake with " + t.host + " failed: " + ec.message());
  return exchange(attempt, stream, req);
}

}  // namespace clinicflow::messaging

CLINICFLOW_PLUGIN(clinicflow::messaging::Webhook)
