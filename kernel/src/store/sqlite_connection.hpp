#pragma once
// One sqlite3 handle with its prepared statements, compiled once and reused; every value bound.
// Shared by the case store and the API's auth store (each opens its own connections).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace clinicflow::store {

class SqliteConnection {
 public:
  // A prepared statement in use; reset and unbound when it goes out of scope.
  class Statement {
   public:
    Statement(SqliteConnection& connection, sqlite3_stmt* stmt) : connection_(connection), stmt_(stmt) {}
    Statement(const Statement&) = delete;
    ~Statement();
    // Text is copied by SQLite, except a named std::string: that one is bound in place and must
    // outlive the statement's last step() (every caller binds a value it holds until then).
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, const std::string& text);
    Statement& bind(int index, std::string&& text) { return bind(index, std::string_view(text)); }
    Statement& bind(int index, std::int64_t value);
    bool step();  // true while there is a row to read
    std::int64_t integer(int column);
    bool is_null(int column);
    std::string text(int column);

   private:
    SqliteConnection& connection_;
    sqlite3_stmt* stmt_;
  };

  // WAL, the given synchronous mode ("full" or "normal"), foreign keys on. `create`: make the
  // file when it does not exist. Throws StoreError naming the file and the reason.
  SqliteConnection(const std::filesystem::path& path, const std::string& synchronous, bool create = true);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  // `sql` must be a string with static storage: the statement cache is keyed by its address.
  Statement prepare(const char* sql);
  void exec(const char* sql);
  // Runs one statement without a result, compiled once like prepare(): `sql` has static storage.
  void run(const char* sql) { prepare(sql).step(); }
  int changes();
  [[noreturn]] void fail(const char* what);

  // Checkpoints on request instead of inside the COMMIT that crosses SQLite's threshold, so
  // the caller decides when the copying happens (the committer: after it has answered).
  void defer_checkpoints();
  // With defer_checkpoints(): a passive checkpoint when the write-ahead log held at least
  // `frames` pages after this connection's last commit (as SQLite's own automatic checkpoint:
  // while readers keep the log from being reset, that is after every commit). True when one
  // ran; false also when another connection was checkpointing (tried again next call). Throws
  // StoreError when the checkpoint fails.
  bool checkpoint_if_over(int frames);
  // A passive checkpoint now; false when another connection was checkpointing. Throws
  // StoreError when it fails.
  bool checkpoint();
  // With defer_checkpoints(): the log's length in frames after this connection's last commit,
  // 0 after its last checkpoint.
  int wal_frames() const { return wal_frames_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  int wal_frames_ = 0;  // the log's length after this connection's last commit (0: checkpointed since)
  std::map<const char*, sqlite3_stmt*> statements_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed, so an exception never leaves a
// transaction open.
class SqliteTransaction {
 public:
  explicit SqliteTransaction(SqliteConnection& c) : c_(c) { c_.run("BEGIN IMMEDIATE"); }
  SqliteTransaction(const SqliteTransaction&) = delete;
  void commit() {
    c_.run("COMMIT");
    done_ = true;
  }
  ~SqliteTransaction() {
    if (!done_) try {
        c_.run("ROLLBACK");
      } catch (...) {
      }
  }

 private:
  SqliteConnection& c_;
  bool done_ = false;
};

}  // namespace clinicflow::store
