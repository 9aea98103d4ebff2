// Test messaging plugin: writes one line per delivery attempt to the file `log_path`
// ("<id> <attempt> <outcome> <address> | <subject> | <body>"), so tests can see exactly what
// was attempted. `fail_first = N` answers retry for the first N attempts of every message;
// `permanent_failure = true` answers failed.
#include <clinicflow/plugin.hpp>

#include <fstream>
#include <mutex>

namespace {

using namespace clinicflow;

class TestMessenger final : public MessagingPlugin {
 public:
  static Manifest manifest() {
    return {"test_messenger",
            "messaging",
            "1.0.0",
            "Test messenger: logs each attempt to a file",
            {{"log_path", "string", nullptr, "File that receives one line per attempt"},
             {"fail_first", "integer", 0, "Answer retry for the first N attempts of each message"},
             {"permanent_failure", "boolean", false, "Answer failed for every message"}}};
  }

  explicit TestMessenger(const Settings& settings)
      : log_path_(settings.string("log_path")),
        fail_first_(settings.integer("fail_first")),
        permanent_failure_(settings.boolean("permanent_failure")) {}

  Delivery deliver(const Message& message) override {
    Delivery result = permanent_failure_                  ? Delivery::failed("no such mailbox")
                      : message.attempt <= fail_first_    ? Delivery::retry("mail server busy")
                                                          : Delivery::delivered();
    const char* outcome = result.status == Delivery::Status::delivered ? "delivered"
                          : result.status == Delivery::Status::retry   ? "retry"
                                                                       : "failed";
    std::lock_guard lock(mutex_);
    std::ofstream log(log_path_, std::ios::app);
    if (!log) return Delivery::retry("cannot open " + log_path_);
    log << message.id << ' ' << message.attempt << ' ' << outcome << ' ' << message.recipient << ' ' << message.address << " | "
        << message.subject << " | " << message.body << '\n';
    return result;
  }

 private:
  std::mutex mutex_;
  std::string log_path_;
  std::int64_t fail_first_;
  bool permanent_failure_;
};

}  // namespace

CLINICFLOW_PLUGIN(TestMessenger)
