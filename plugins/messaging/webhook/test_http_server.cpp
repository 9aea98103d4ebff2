#include "test_http_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace clinicflow::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A self-signed certificate (and its key, PEM) valid for IP 127.0.0.1 only.
std::pair<std::string, std::string> self_signed_certificate() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  if (!key || !x) throw std::runtime_error("openssl: cannot make a key");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("clinicflow test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"}, std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  BIO* cert_bio = BIO_new(BIO_s_mem());
  BIO* key_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cert_bio, x);
  PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::pair<std::string, std::string> out{bio_text(cert_bio), bio_text(key_bio)};
  BIO_free(cert_bio);
  BIO_free(key_bio);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

struct TestHttpServer::Impl {
  std::optional<ssl::context> tls;  // declared before the io_context: outlives every session
  std::string cert_pem;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  unsigned short port = 0;
  mutable std::mutex mutex;
  std::vector<ScriptedReply> script;
  std::size_t answered = 0;
  std::vector<RecordedRequest> requests;
  std::thread thread;

  ScriptedReply record(RecordedRequest r) {
    std::lock_guard lock(mutex);
    requests.push_back(std::move(r));
    ScriptedReply reply = script.empty() ? ScriptedReply{} : script[std::min(answered, script.size() - 1)];
    ++answered;
    return reply;
  }

  void accept();
};

namespace {

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  Session(TestHttpServer::Impl& server, Args&&... args) : server_(server), stream_(std::forward<Args>(args)...) {}

  void start() {
    auto self = this->shared_from_this();
    if constexpr (is_tls)
      stream_.async_handshake(ssl::stream_base::server, [self](error_code ec) {
        if (!ec) self->read();
      });
    else
      read();
  }

 private:
  void read() {
    request_ = {};
    auto self = this->shared_from_this();
    http::async_read(stream_, buffer_, request_, [self](error_code ec, std::size_t) {
      if (!ec) self->answer();
    });
  }

  void answer() {
    RecordedRequest r;
    r.method = std::string(request_.method_string());
    r.target = std::string(request_.target());
    r.body = request_.body();
    for (const auto& field : request_) r.headers[lower(field.name_string())] = std::string(field.value());
    const ScriptedReply reply = server_.record(std::move(r));
    if (reply.never_answer) {
      // Hold the connection: the next read ends when the client gives up and closes it.
      return read();
    }
    response_ = {};
    response_.result(reply.status);
    response_.version(request_.version());
    response_.set(http::field::content_type, "application/json");
    if (!reply.retry_after.empty()) response_.set(http::field::retry_after, reply.retry_after);
    response_.body() = R"({"answer":"scripted"})";
    response_.keep_alive(request_.keep_alive());
    response_.prepare_payload();
    auto self = this->shared_from_this();
    http::async_write(stream_, response_, [self](error_code ec, std::size_t) {
      if (ec) return;
      if (self->response_.keep_alive()) return self->read();
      error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  TestHttpServer::Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

void TestHttpServer::Impl::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket socket) {
    if (ec) return;
    if (tls)
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(*this, std::move(socket), *tls)->start();
    else
      std::make_shared<Session<beast::tcp_stream>>(*this, std::move(socket))->start();
    accept();
  });
}

TestHttpServer::TestHttpServer(std::vector<ScriptedReply> script, bool tls) : impl_(std::make_unique<Impl>()) {
  impl_->script = std::move(script);
  if (tls) {
    auto [cert, key] = self_signed_certificate();
    impl_->cert_pem = cert;
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->use_certificate_chain(asio::buffer(cert));
    impl_->tls->use_private_key(asio::buffer(key), ssl::context::pem);
  }
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
}

TestHttpServer::~TestHttpServer() {
  impl_->ioc.stop();
  impl_->thread.join();
}

unsigned short TestHttpServer::port() const { return impl_->port; }

std::vector<RecordedRequest> TestHttpServer::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->requests;
}

const std::string& TestHttpServer::certificate_pem() const { return impl_->cert_pem; }

}  // namespace clinicflow::testing
