// smtp — delivers each message as a plain-text email through an SMTP server (libcurl). See README.md.
#pragma once

#include <clinicflow/plugin.hpp>

#include <chrono>
#include <string>

namespace clinicflow::messaging {

class Smtp final : public MessagingPlugin {
 public:
  static Manifest manifest();
  explicit Smtp(const Settings& settings);  // throws std::invalid_argument on a bad setting

  Delivery deliver(const Message& message) override;

  // The RFC 5322 message sent for `message` (CRLF line endings, before SMTP dot-stuffing).
  std::string compose(const Message& message, std::chrono::system_clock::time_point now) const;

  const std::string& from_address() const { return from_address_; }

 private:
  std::string url_;
  std::string from_header_;   // as written in the From: header
  std::string from_address_;  // the envelope sender (MAIL FROM)
  std::string domain_;        // of from_address_, for Message-ID
  std::string username_;
  std::string password_;
  long use_ssl_ = 0;  // CURLUSESSL_*
  long timeout_ms_ = 10000;
  bool verify_tls_ = true;
  std::string ca_file_;
};

}  // namespace clinicflow::messaging
