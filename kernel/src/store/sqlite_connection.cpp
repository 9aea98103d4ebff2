#include "store/sqlite_connection.hpp"

#include <chrono>
#include <mutex>
#include <thread>

#include "store/case_store.hpp"
#include "store/wal_write_vfs.hpp"

#include <sqlite3.h>

namespace clinicflow::store {

SqliteConnection::Statement::~Statement() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

SqliteConnection::Statement& SqliteConnection::Statement::bind(int index, std::string_view text) {
  if (sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    connection_.fail("bind");
  return *this;
}

SqliteConnection::Statement& SqliteConnection::Statement::bind(int index, const std::string& text) {
  if (sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC) != SQLITE_OK)
    connection_.fail("bind");
  return *this;
}

SqliteConnection::Statement& SqliteConnection::Statement::bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) connection_.fail("bind");
  return *this;
}

bool SqliteConnection::Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  connection_.fail("step");
}

std::int64_t SqliteConnection::Statement::integer(int column) { return sqlite3_column_int64(stmt_, column); }

bool SqliteConnection::Statement::is_null(int column) { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::string SqliteConnection::Statement::text(int column) {
  auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
}

namespace {

// Another connection holds the write lock (the case store's committer and the audit writer take
// turns on one file). SQLite's own busy timeout sleeps in steps of milliseconds, far longer than
// a commit holds the lock here, so it would stall every group commit that meets an audit write:
// poll every 50 µs instead, backing off to 1 ms, and give up after about 10 s.
int wait_while_busy(void*, int attempts) {
  constexpr int kGiveUpAfter = 10'000;  // about 10 s at 1 ms
  if (attempts >= kGiveUpAfter + 200) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(attempts < 200 ? 50 : 1000));
  return 1;
}

// Process-wide, before the first connection: SQLite's allocation statistics take one global
// mutex around every malloc and free, which the committer, the readers and the audit writer
// then contend for; nothing here reads those statistics. (Too late once SQLite is initialised,
// e.g. by a plugin: then the call fails harmlessly and the statistics stay on.)
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

SqliteConnection::SqliteConnection(const std::filesystem::path& path, const std::string& synchronous, bool create)
    : path_(path.string()) {
  configure_sqlite_once();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path_.c_str(), &db_, flags, wal_write_vfs()) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError("cannot open database " + path_ + ": " + why);
  }
  sqlite3_busy_handler(db_, &wait_while_busy, nullptr);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec(synchronous == "normal" ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    // No memory map for reading pages (mmap_size stays 0): while the file grows, as it does
    // with every new case, SQLite maps it again, and each munmap costs every core running this
    // process a TLB flush and every mapped page a fault on its next read. Measured: ~235
    // remaps/s and ~8 % fewer durable submits/s at C=64 than with a plain pread per page.
    exec("PRAGMA mmap_size=0");
    // A transaction's log frames are written only by its commit, never spilled before it: the
    // precondition of wal_write_vfs (a transaction that rolls back has written nothing). A large
    // transaction (a migration) holds its pages in memory instead.
    exec("PRAGMA cache_spill=OFF");
  } catch (...) {
    sqlite3_close(db_);  // the destructor does not run for a constructor that throws
    throw;
  }
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

SqliteConnection::Statement SqliteConnection::prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) fail("prepare");
    it = statements_.emplace(sql, stmt).first;
  }
  return Statement(*this, it->second);
}

void SqliteConnection::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string why = message ? message : "unknown error";
    sqlite3_free(message);
    throw StoreError("database " + path_ + ": " + why);
  }
}

void SqliteConnection::defer_checkpoints() {
  // Replaces SQLite's automatic checkpoint hook, which runs inside COMMIT.
  sqlite3_wal_hook(
      db_,
      [](void* self, sqlite3*, const char*, int frames) {
        static_cast<SqliteConnection*>(self)->wal_frames_ = frames;
        return SQLITE_OK;
      },
      this);
}

bool SqliteConnection::checkpoint_if_over(int frames) { return wal_frames_ >= frames && checkpoint(); }

bool SqliteConnection::checkpoint() {
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  // Busy: another connection is checkpointing right now (the case store's background one, or
  // the auth store's, which keeps SQLite's own); the next call tries again.
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return false;
  wal_frames_ = 0;
  if (rc != SQLITE_OK) fail("checkpoint");
  return true;
}

int SqliteConnection::changes() { return sqlite3_changes(db_); }

void SqliteConnection::fail(const char* what) {
  throw StoreError(std::string("database ") + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

}  // namespace clinicflow::store
