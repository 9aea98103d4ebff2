#include "outbox_file.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace clinicflow::messaging {
namespace {

constexpr const char* kDefaultPath = "var/outbox.jsonl";

std::string os_error(int err) { return std::system_category().message(err); }

// The current time as RFC 3339 UTC with milliseconds, e.g. 2026-03-03T14:05:09.123Z.
std::string now_rfc3339() {
  using namespace std::chrono;
  const auto now = floor<milliseconds>(system_clock::now());
  const auto day_point = floor<days>(now);
  const year_month_day ymd{day_point};
  const hh_mm_ss hms{now - day_point};
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                              static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                              static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                              static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return std::string(buf, static_cast<std::size_t>(n));
}

// Makes a newly created directory entry durable.
void fsync_directory(const std::filesystem::path& dir) {
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  ::fsync(dfd);
  ::close(dfd);
}

}  // namespace

Manifest OutboxFile::manifest() {
  return {"outbox_file",
          "messaging",
          "1.0.0",
          "Appends each message as one JSON line to a local file (the default, embedded channel).",
          {
              {"path", "string", kDefaultPath,
               "The file messages are appended to (JSON Lines); parent folders are created. Relative paths are "
               "relative to the folder the server is started from."},
              {"fsync", "boolean", true,
               "true: each message is on disk (fsync) before it is reported delivered."},
          }};
}

OutboxFile::OutboxFile(const Settings& settings)
    : path_(settings.has("path") ? settings.string("path") : std::string(kDefaultPath)),
      fsync_(settings.has("fsync") ? settings.boolean("fsync") : true) {
  if (path_.empty()) throw std::invalid_argument("setting 'path' must not be empty");
  if (!path_.has_filename()) throw std::invalid_argument("setting 'path' must name a file, not a folder");
  // Scan at start. A problem here (e.g. a folder that cannot be created yet) is not fatal: every
  // delivery tries again and reports it as a retry with the reason.
  std::lock_guard lock(mutex_);
  open_file();
}

OutboxFile::~OutboxFile() { close_file(); }

void OutboxFile::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool OutboxFile::still_same_file() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return false;
  return static_cast<std::uint64_t>(st.st_dev) == dev_ && static_cast<std::uint64_t>(st.st_ino) == ino_;
}

std::string OutboxFile::open_file() {
  close_file();
  const std::filesystem::path parent = path_.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return "cannot create folder " + parent.string() + ": " + ec.message();
  }
  struct stat before {};
  const bool existed = ::stat(path_.c_str(), &before) == 0;
  // 0600: the file holds clinical data.
  const int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot open " + path_.string() + ": " + os_error(errno);
  if (!existed && fsync_) fsync_directory(parent);

  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return "cannot stat " + path_.string() + ": " + os_error(err);
  }

  // Not a regular file (e.g. a FIFO or a device): nothing to scan, only appended to.
  const bool scan = S_ISREG(st.st_mode);

  // Scan every complete line for its id. A line that does not parse (e.g. left by another writer)
  // is skipped; a trailing line without '\n' is incomplete and is never counted as delivered.
  std::string pending;
  char buf[65536];
  bool last_newline = true;
  while (scan) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return "cannot read " + path_.string() + ": " + os_error(err);
    }
    if (n == 0) break;
    last_newline = buf[n - 1] == '\n';
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      boost::system::error_code ec;
      json::value v = json::parse(std::string_view(pending).substr(start, nl - start), ec);
      if (ec || !v.is_object()) continue;
      if (const json::value* id = v.get_object().if_contains("id"); id && id->is_string())
        ids_.insert(std::string(id->get_string()));
    }
    pending.erase(0, start);
  }
  fd_ = fd;
  dev_ = static_cast<std::uint64_t>(st.st_dev);
  ino_ = static_cast<std::uint64_t>(st.st_ino);
  ends_with_newline_ = last_newline;
  return {};
}

Delivery OutboxFile::deliver(const Message& m) {
  std::lock_guard lock(mutex_);
  if (m.id.empty()) return Delivery::failed("the message has no id");

  // The file was moved away or deleted (e.g. rotated by an operator): start a new one. Ids seen
  // in the old file are kept, so a retry of a message already written there is not duplicated.
  if (fd_ >= 0 && !still_same_file()) close_file();
  if (fd_ < 0) {
    if (std::string error = open_file(); !error.empty()) return Delivery::retry(error);
  }
  if (ids_.contains(m.id)) return Delivery::delivered();  // written before (by us or an earlier run)

  std::string line;
  if (!ends_with_newline_) line += '\n';  // never glue onto an incomplete line left by a crash
  line += json::serialize(json::object{{"id", m.id},
                                       {"case_id", m.case_id},
                                       {"template", m.template_name},
                                       {"recipient", m.recipient},
                                       {"address", m.address},
                                       {"subject", m.subject},
                                       {"body", m.body},
                                       {"attempt", m.attempt},
                                       {"delivered_at", now_rfc3339()}});
  line += '\n';

  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    close_file();
    return Delivery::retry("cannot stat " + path_.string() + ": " + os_error(err));
  }
  const off_t size_before = st.st_size;

  // One write of the whole line (O_APPEND): a reader never sees our line interleaved with another.
  ssize_t n;
  do n = ::write(fd_, line.data(), line.size());
  while (n < 0 && errno == EINTR);
  if (n < 0 || static_cast<std::size_t>(n) != line.size()) {
    const int err = n < 0 ? errno : ENOSPC;
    // Take back a partial line so the file stays whole lines; reopen (and rescan) next time.
    if (n > 0 && ::ftruncate(fd_, size_before) != 0) { /* the rescan skips the broken line */ }
    close_file();
    return Delivery::retry("cannot write " + path_.string() + ": " + os_error(err));
  }
  if (fsync_ && ::fsync(fd_) != 0) {
    const int err = errno;
    // Whether the line reached the disk is unknown: take it back; the retry writes it again.
    if (::ftruncate(fd_, size_before) != 0) { /* the rescan sees whatever is there */ }
    close_file();
    return Delivery::retry("cannot fsync " + path_.string() + ": " + os_error(err));
  }
  ids_.insert(m.id);
  ends_with_newline_ = true;
  return Delivery::delivered();
}

}  // namespace clinicflow::messaging

CLINICFLOW_PLUGIN(clinicflow::messaging::OutboxFile)
