#pragma once
// Copies the write-ahead log back into the database file on a thread of its own, so that the
// one thread that commits cases (the serial part of every write) does not spend its time, and
// its callers' latency, on it.
//
// SQLite starts the log from its beginning again only when a writer begins a transaction with
// every frame already copied. A checkpoint running beside continuous commits never gets there
// (frames keep arriving while it copies), so this one does the bulk of the copying and the
// committer finishes with a short checkpoint of the frames committed meanwhile, just before
// its next transaction (SqliteCaseStore::maintain()).
#include "store/sqlite_connection.hpp"

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace clinicflow::store {

class WalCheckpointer {
 public:
  // Opens its own connection to the database (which must exist) and starts its thread.
  WalCheckpointer(const std::filesystem::path& path, const std::string& synchronous);
  ~WalCheckpointer();  // lets a running checkpoint finish
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Starts a passive checkpoint of everything committed so far; false (and nothing started)
  // while the previous one has not finished or has not been collected by finished().
  bool start();
  // True, once, after a started checkpoint has ended (a failure is logged, never thrown: the
  // committer's own checkpoint then copies what this one did not).
  bool finished();
  // Blocks until no checkpoint started here is still running (it holds SQLite's checkpoint
  // lock, so any other checkpoint would find the lock taken and copy nothing).
  void wait();

 private:
  void loop();

  std::unique_ptr<SqliteConnection> db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  enum class State { idle, requested, running, finished } state_ = State::idle;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace clinicflow::store
