// outbox_file — the embedded default messaging plugin: appends each message as one JSON line to
// a local file (a "spool" another process, or a person, can pick up). See README.md.
#pragma once

#include <clinicflow/plugin.hpp>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_set>

namespace clinicflow::messaging {

class OutboxFile final : public MessagingPlugin {
 public:
  static Manifest manifest();
  explicit OutboxFile(const Settings& settings);
  ~OutboxFile() override;
  OutboxFile(const OutboxFile&) = delete;
  OutboxFile& operator=(const OutboxFile&) = delete;

  Delivery deliver(const Message& message) override;

  const std::filesystem::path& path() const { return path_; }

 private:
  // Opens (creating parent folders and the file) and scans the file for ids already written.
  // Returns an empty string on success, else the reason (with the OS error).
  std::string open_file();
  void close_file();
  bool still_same_file() const;

  std::filesystem::path path_;
  bool fsync_ = true;
  int fd_ = -1;
  std::uint64_t dev_ = 0, ino_ = 0;
  bool ends_with_newline_ = true;
  std::unordered_set<std::string> ids_;  // every id seen in the file (or files) since creation
  std::mutex mutex_;
};

}  // namespace clinicflow::messaging
