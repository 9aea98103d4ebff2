// A real HTTP(S) server for the webhook tests: Beast on its own thread, 127.0.0.1, any free port.
// It records every request and answers from a script. Beast stays in test_http_server.cpp.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace clinicflow::testing {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

struct ScriptedReply {
  unsigned status = 200;
  bool never_answer = false;  // read the request, then hold the connection without answering
  std::string retry_after;    // a Retry-After header, if not empty
};

class TestHttpServer {
 public:
  // Answers the n-th request with script[n]; past its end, with the last entry (200 if empty).
  // tls: serves HTTPS with a fresh self-signed certificate for IP 127.0.0.1 (certificate_pem()).
  explicit TestHttpServer(std::vector<ScriptedReply> script, bool tls = false);
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  unsigned short port() const;
  std::vector<RecordedRequest> requests() const;
  const std::string& certificate_pem() const;

  struct Impl;  // internal (public so the sessions in the .cpp can name it)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace clinicflow::testing
