// sms_gateway — an example Clinicflow messaging plugin (the tutorial in docs/plugins.md, part 2).
//
// It hands text messages to an SMS gateway through a spool folder. Each message becomes one line
//
//     <address>|<body>        (the address is the phone number)
//
// appended to <spool_dir>/<sender>.txt; the gateway reads that file and sends each line from the
// sender ID <sender>. A line break in the body is written as \n and a backslash as \\, so one
// message is always one line.
//
// Answers: delivered once the line is written; failed (never retried) when the message has no
// usable phone number; retry (a temporary problem) when the file cannot be opened or written.
#include <clinicflow/plugin.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace {

using namespace clinicflow;

class SmsGateway final : public MessagingPlugin {
 public:
  // What the kernel reads before anything else: the name (it must match [plugins.sms_gateway]),
  // the kind, and the settings, which the kernel checks and completes before creating us.
  static Manifest manifest() {
    return {"sms_gateway",
            "messaging",
            "1.0.0",
            "Hands text messages to an SMS gateway through a spool folder.",
            {
                {"spool_dir", "string", nullptr, "the folder the SMS gateway picks messages up from"},
                {"sender", "string", "CLINIC", "the sender ID shown on the phone: 1 to 11 letters and digits"},
            }};
  }

  // The settings arrive checked (types) and complete (defaults filled in). Anything else worth
  // refusing is refused here: the exception's text becomes the load error in the server's log.
  explicit SmsGateway(const Settings& settings) : sender_(settings.string("sender")) {
    std::filesystem::path spool = settings.string("spool_dir");
    if (spool.empty()) throw std::invalid_argument("setting 'spool_dir' must not be empty");
    bool plain = std::all_of(sender_.begin(), sender_.end(), [](unsigned char c) { return std::isalnum(c); });
    if (sender_.empty() || sender_.size() > 11 || !plain)
      throw std::invalid_argument("setting 'sender' must be 1 to 11 letters and digits, not '" + sender_ + "'");
    file_ = spool / (sender_ + ".txt");
  }

  // Called by the kernel's outbox, one call at a time. The same message (same id) may come again
  // after a retry. The texts returned with failed/retry are kept on the message for staff to see:
  // they name the problem, never the patient's number or the text.
  Delivery deliver(const Message& message) override {
    if (message.address.empty())
      return Delivery::failed("no phone number: give the workflow's [[step.message]] an 'address'");
    if (message.address.find_first_of("|\r\n") != std::string::npos)
      return Delivery::failed("the phone number contains '|' or a line break");

    std::ofstream out(file_, std::ios::app | std::ios::binary);
    if (!out) return Delivery::retry("cannot open " + file_.string() + ": " + std::strerror(errno));
    out << message.address << '|' << one_line(message.body) << '\n';
    out.flush();
    if (!out) return Delivery::retry("cannot write to " + file_.string());
    return Delivery::delivered();
  }

 private:
  static std::string one_line(const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c == '\\') out += "\\\\";
      else if (c == '\n') out += "\\n";
      else if (c != '\r') out += c;
    }
    return out;
  }

  std::string sender_;
  std::filesystem::path file_;
};

}  // namespace

CLINICFLOW_PLUGIN(SmsGateway)
