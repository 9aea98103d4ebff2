#include "app/server_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace clinicflow::app {

ServerLock::ServerLock(const std::filesystem::path& database) {
  std::filesystem::path path = database;
  path += ".lock";
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error("cannot open lock file " + path.string() + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    char holder[32] = {};
    ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (error != EWOULDBLOCK) throw std::runtime_error("cannot lock " + path.string() + ": " + std::strerror(error));
    std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string("unknown");
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    throw std::runtime_error("database " + database.string() + " is in use by another clinicflowd (pid " + pid +
                             ", lock file " + path.string() + "); stop it, or give this one another data directory");
  }
  // Who holds it, for the message above; the lock itself is the flock, not this content.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // Not fatal: the lock is held; only the message for a second server loses the pid.
  }
}

ServerLock::~ServerLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace clinicflow::app
