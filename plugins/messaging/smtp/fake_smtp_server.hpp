// A small fake ESMTP receiver for the smtp tests: plain POSIX sockets on its own thread,
// 127.0.0.1, any free port. It speaks just enough ESMTP and records everything.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace clinicflow::testing {

struct SmtpScript {
  bool greet = true;                 // false: accept, then say nothing (the client must time out)
  bool offer_starttls = false;       // advertise STARTTLS (answered 454: this server has no TLS)
  std::string auth = "PLAIN LOGIN";  // advertised AUTH mechanisms; empty: no AUTH
  int auth_code = 235;
  int mail_code = 250;
  int rcpt_code = 250;
  int data_end_code = 250;  // the answer after the final "."
};

struct SmtpSession {
  std::string ehlo;
  std::string mail_from;  // the MAIL FROM argument, e.g. "<a@b.c>" (parameters dropped)
  std::vector<std::string> rcpt_to;
  std::string data;  // as received, CRLF kept, dot-stuffing undone, without the final "."
  bool data_complete = false;
  std::string auth_mechanism, auth_user, auth_password;
  std::vector<std::string> commands;  // every command line (AUTH payloads included)
  bool quit = false;
};

inline std::string base64_decode(std::string_view in) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    const auto pos = alphabet.find(c);
    if (pos == std::string_view::npos) continue;  // '=' and whitespace
    buffer = (buffer << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

class FakeSmtpServer {
 public:
  explicit FakeSmtpServer(SmtpScript script = {}) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0)
      throw std::runtime_error("fake smtp: cannot listen");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeSmtpServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  FakeSmtpServer(const FakeSmtpServer&) = delete;
  FakeSmtpServer& operator=(const FakeSmtpServer&) = delete;

  unsigned short port() const { return port_; }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }
  std::vector<SmtpSession> sessions() const {
    std::lock_guard lock(mutex_);
    return sessions_;
  }

 private:
  // Waits (in short slices, so the server can stop) until fd is readable. False: stop or timeout.
  bool wait_readable(int fd) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!stop_ && std::chrono::steady_clock::now() < give_up) {
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, 20);
      if (r > 0) return true;
      if (r < 0) return false;
    }
    return false;
  }

  void serve() {
    while (!stop_) {
      if (!wait_readable(listen_fd_)) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::size_t index;
      {
        std::lock_guard lock(mutex_);
        sessions_.emplace_back();
        index = sessions_.size() - 1;
      }
      session(fd, index);
      ::close(fd);
    }
  }

  template <class F>
  void update(std::size_t index, F f) {
    std::lock_guard lock(mutex_);
    f(sessions_[index]);
  }

  bool send_text(int fd, const std::string& s) {
    return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }

  // Reads one line (without its CRLF). False when the client closed or the server stops.
  bool read_line(int fd, std::string& line) {
    for (;;) {
      if (auto pos = pending_.find("\r\n"); pos != std::string::npos) {
        line = pending_.substr(0, pos);
        pending_.erase(0, pos + 2);
        return true;
      }
      if (!wait_readable(fd)) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }

  static std::string reply(int code, std::string_view text) { return std::to_string(code) + " " + std::string(text) + "\r\n"; }

  void session(int fd, std::size_t index) {
    pending_.clear();
    if (!script_.greet) {
      std::string ignored;
      read_line(fd, ignored);  // until the client gives up
      return;
    }
    send_text(fd, reply(220, "fake.smtp.test ESMTP ready"));
    std::string line;
    while (read_line(fd, line)) {
      update(index, [&](SmtpSession& s) { s.commands.push_back(line); });
      const std::string verb = upper(line.substr(0, line.find(' ')));
      const std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
      if (verb == "EHLO") {
        update(index, [&](SmtpSession& s) { s.ehlo = arg; });
        std::string r = "250-fake.smtp.test greets " + arg + "\r\n";
        if (!script_.auth.empty()) r += "250-AUTH " + script_.auth + "\r\n";
        if (script_.offer_starttls) r += "250-STARTTLS\r\n";
        r += "250-8BITMIME\r\n250 SMTPUTF8\r\n";
        send_text(fd, r);
      } else if (verb == "HELO") {
        send_text(fd, reply(250, "fake.smtp.test"));
      } else if (verb == "STARTTLS") {
        send_text(fd, reply(454, "TLS not available"));
      } else if (verb == "AUTH") {
        if (!auth(fd, index, arg)) return;
      } else if (verb == "MAIL") {
        std::string from = arg.substr(arg.find(':') + 1);
        from = from.substr(0, from.find(' '));
        update(index, [&](SmtpSession& s) { s.mail_from = from; });
        send_text(fd, reply(script_.mail_code, script_.mail_code < 400 ? "OK" : "sender refused"));
      } else if (verb == "RCPT") {
        std::string to = arg.substr(arg.find(':') + 1);
        to = to.substr(0, to.find(' '));
        update(index, [&](SmtpSession& s) { s.rcpt_to.push_back(to); });
        send_text(fd, reply(script_.rcpt_code, script_.rcpt_code < 400 ? "OK" : "mailbox unavailable"));
      } else if (verb == "DATA") {
        send_text(fd, reply(354, "end with <CRLF>.<CRLF>"));
        std::string data;
        bool complete = false;
        while (read_line(fd, line)) {
          if (line == ".") {
            complete = true;
            break;
          }
          if (!line.empty() && line[0] == '.') line.erase(0, 1);  // undo dot-stuffing
          data += line + "\r\n";
        }
        update(index, [&](SmtpSession& s) {
          s.data = data;
          s.data_complete = complete;
        });
        if (!complete) return;
        send_text(fd, reply(script_.data_end_code, script_.data_end_code < 400 ? "queued" : "rejected"));
      } else if (verb == "RSET" || verb == "NOOP") {
        send_text(fd, reply(250, "OK"));
      } else if (verb == "QUIT") {
        update(index, [&](SmtpSession& s) { s.quit = true; });
        send_text(fd, reply(221, "bye"));
        return;
      } else {
        send_text(fd, reply(502, "not implemented"));
      }
    }
  }

  bool auth(int fd, std::size_t index, const std::string& arg) {
    const std::string mechanism = upper(arg.substr(0, arg.find(' ')));
    std::string initial = arg.find(' ') == std::string::npos ? "" : arg.substr(arg.find(' ') + 1);
    std::string user, password, line;
    if (mechanism == "PLAIN") {
      if (initial.empty()) {
        send_text(fd, "334 \r\n");
        if (!read_line(fd, initial)) return false;
      }
      const std::string decoded = base64_decode(initial);  // authzid \0 user \0 password
      const auto first = decoded.find('\0'), second = decoded.find('\0', first + 1);
      if (first != std::string::npos && second != std::string::npos) {
        user = decoded.substr(first + 1, second - first - 1);
        password = decoded.substr(second + 1);
      }
    } else if (mechanism == "LOGIN") {
      if (initial.empty()) {
        send_text(fd, "334 VXNlcm5hbWU6\r\n");
        if (!read_line(fd, initial)) return false;
      }
      user = base64_decode(initial);
      send_text(fd, "334 UGFzc3dvcmQ6\r\n");
      if (!read_line(fd, line)) return false;
      password = base64_decode(line);
    } else {
      send_text(fd, reply(504, "mechanism not supported"));
      return true;
    }
    update(index, [&](SmtpSession& s) {
      s.auth_mechanism = mechanism;
      s.auth_user = user;
      s.auth_password = password;
    });
    send_text(fd, reply(script_.auth_code, script_.auth_code < 400 ? "authenticated" : "authentication failed"));
    return true;
  }

  static std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }

  SmtpScript script_;
  int listen_fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::string pending_;
  mutable std::mutex mutex_;
  std::vector<SmtpSession> sessions_;
  std::thread thread_;
};

}  // namespace clinicflow::testing
