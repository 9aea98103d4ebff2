#pragma once
// One server per database: held for the server's lifetime on "<database>.lock" (flock, so the
// kernel lets go when the process ends however it ends). A second clinicflowd on the same data
// directory would fire every timer and deliver every message twice, and the engine keeps
// committed cases in memory (engine::CommittedCases) on the understanding that it is the only
// writer of cases. The CLI's token commands do not take it: they write only the auth tables.
#include <filesystem>

namespace clinicflow::app {

class ServerLock {
 public:
  // Throws std::runtime_error naming the lock file (and the holder's pid) when another process holds it.
  explicit ServerLock(const std::filesystem::path& database);
  ~ServerLock();
  ServerLock(const ServerLock&) = delete;
  ServerLock& operator=(const ServerLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace clinicflow::app
