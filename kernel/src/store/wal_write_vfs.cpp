#include "store/wal_write_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <new>
#include <mutex>
#include <string>

namespace clinicflow::store {
namespace {

// SQLite appends each write-ahead-log frame as two writes (its 24-byte header, then the page),
// so a group commit of ~60 pages cost ~120 pwrite calls on the committer, the one serial thread
// of every write. This shim over the default VFS gathers a log file's appends in memory and
// hands them to the real file once the transaction's commit frame is complete (the page after a
// header whose commit field is set), and before a sync, read, size query, truncate or close.
//
// Precondition, set by SqliteConnection: cache_spill is off, so SQLite writes a transaction's
// frames only inside its commit, all of them ending in the commit frame; a transaction that
// rolls back has written nothing to the log. (With spills, frames of a transaction that later
// rolled back would sit here after the write lock was released, and could be written over
// frames another connection committed meanwhile.) A write that does not extend the gathered
// run goes straight through, after what was gathered; a write that fails here discards the run.

constexpr const char* kName = "clinicflow-wal";
constexpr std::size_t kMaxGathered = 4 << 20;  // flushed early at this many bytes
constexpr int kFrameHeaderBytes = 24;          // a WAL frame header (sqlite.org/fileformat2.html#walformat)

sqlite3_vfs* real_vfs = nullptr;
sqlite3_vfs shim_vfs;
sqlite3_io_methods log_methods;

struct LogFile {
  sqlite3_file base;    // must be first: SQLite sees a LogFile as a sqlite3_file
  sqlite3_file* real;   // the real VFS's file, in the same allocation right after this struct
  std::string* gathered;  // bytes written but not yet handed to the real file
  sqlite3_int64 gathered_at;  // the file offset of gathered's first byte
  bool commit_frame_next;  // the last write was the header of a transaction's commit frame
};

LogFile* log_of(sqlite3_file* f) { return reinterpret_cast<LogFile*>(f); }

int flush(LogFile* f) {
  if (!f->gathered || f->gathered->empty()) return SQLITE_OK;
  // In pieces the unix VFS writes whole: it masks a write's length to 17 bits, so one of
  // exactly 128 KiB would write nothing and report the disk full.
  constexpr std::size_t kPiece = 64 << 10;
  const std::string& g = *f->gathered;
  int rc = SQLITE_OK;
  for (std::size_t at = 0; at < g.size() && rc == SQLITE_OK; at += kPiece) {
    std::size_t n = std::min(kPiece, g.size() - at);
    rc = f->real->pMethods->xWrite(f->real, g.data() + at, static_cast<int>(n), f->gathered_at + static_cast<sqlite3_int64>(at));
  }
  f->gathered->clear();
  return rc;
}

int log_close(sqlite3_file* file) {
  LogFile* f = log_of(file);
  int rc = flush(f);
  delete f->gathered;
  f->gathered = nullptr;
  int closed = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  return rc != SQLITE_OK ? rc : closed;
}

int log_read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  LogFile* f = log_of(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xRead(f->real, out, amount, offset);
}

int log_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  LogFile* f = log_of(file);
  const auto* bytes = static_cast<const unsigned char*>(data);
  bool was_commit_header = f->commit_frame_next;
  // A frame header's bytes 4..7 hold the database size after commit, non-zero only on the last
  // frame of a transaction: once its page is written, the transaction's frames go out.
  f->commit_frame_next = amount == kFrameHeaderBytes && (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  bool extends = f->gathered && !f->gathered->empty() && offset == f->gathered_at + static_cast<sqlite3_int64>(f->gathered->size());
  bool starts = !f->gathered || f->gathered->empty();
  if (!extends && !starts) {  // not an append to the run: the run first, then this write as it is
    if (int rc = flush(f); rc != SQLITE_OK) return rc;
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
  }
  try {
    if (!f->gathered) f->gathered = new std::string();
    if (starts) f->gathered_at = offset;
    f->gathered->append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(amount));
  } catch (const std::bad_alloc&) {
    if (f->gathered) f->gathered->clear();  // SQLite fails the transaction; nothing half-gathered stays
    return SQLITE_IOERR_NOMEM;
  }
  if ((was_commit_header && !f->commit_frame_next) || f->gathered->size() >= kMaxGathered) return flush(f);
  return SQLITE_OK;
}

int log_truncate(sqlite3_file* file, sqlite3_int64 size) {
  LogFile* f = log_of(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xTruncate(f->real, size);
}

int log_sync(sqlite3_file* file, int flags) {
  LogFile* f = log_of(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xSync(f->real, flags);
}

int log_file_size(sqlite3_file* file, sqlite3_int64* size) {
  LogFile* f = log_of(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileSize(f->real, size);
}

// The rest pass straight through to the real file.
int log_lock(sqlite3_file* f, int level) { return log_of(f)->real->pMethods->xLock(log_of(f)->real, level); }
int log_unlock(sqlite3_file* f, int level) { return log_of(f)->real->pMethods->xUnlock(log_of(f)->real, level); }
int log_check_reserved(sqlite3_file* f, int* out) {
  return log_of(f)->real->pMethods->xCheckReservedLock(log_of(f)->real, out);
}
int log_file_control(sqlite3_file* f, int op, void* arg) {
  return log_of(f)->real->pMethods->xFileControl(log_of(f)->real, op, arg);
}
int log_sector_size(sqlite3_file* f) { return log_of(f)->real->pMethods->xSectorSize(log_of(f)->real); }
int log_device_characteristics(sqlite3_file* f) {
  return log_of(f)->real->pMethods->xDeviceCharacteristics(log_of(f)->real);
}
int shim_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  if (!(flags & SQLITE_OPEN_WAL)) return real_vfs->xOpen(real_vfs, name, file, flags, out_flags);
  LogFile* f = log_of(file);
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(LogFile));
  f->gathered = nullptr;
  f->gathered_at = 0;
  f->commit_frame_next = false;
  f->base.pMethods = nullptr;  // until the real file is open: SQLite then closes nothing
  int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  f->base.pMethods = &log_methods;
  return SQLITE_OK;
}

void register_once() {
  real_vfs = sqlite3_vfs_find(nullptr);
  if (!real_vfs) return;
  shim_vfs = *real_vfs;
  shim_vfs.zName = kName;
  shim_vfs.pNext = nullptr;
  shim_vfs.szOsFile = static_cast<int>(sizeof(LogFile)) + real_vfs->szOsFile;
  shim_vfs.xOpen = shim_open;
  // Version 1: the shared-memory and memory-map methods belong to the database file; SQLite
  // never calls them on the log.
  log_methods = sqlite3_io_methods{1,         log_close,        log_read,         log_write,
                                   log_truncate, log_sync,        log_file_size,    log_lock,
                                   log_unlock,   log_check_reserved, log_file_control, log_sector_size,
                                   log_device_characteristics, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  if (sqlite3_vfs_register(&shim_vfs, 0) != SQLITE_OK) real_vfs = nullptr;
}

}  // namespace

const char* wal_write_vfs() {
  static std::once_flag once;
  std::call_once(once, register_once);
  return real_vfs ? kName : nullptr;
}

}  // namespace clinicflow::store
