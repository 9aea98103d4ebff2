#pragma once
// CaseStore on SQLite in WAL mode: one connection for writes (owned by the engine's single
// writer), one for reads, so readers never wait for a commit's fsync.
#include "store/case_store.hpp"
#include "store/sqlite_connection.hpp"
#include "store/wal_checkpointer.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>


namespace clinicflow::store {

struct SqliteOptions {
  std::filesystem::path path;
  std::string synchronous = "full";  // "full": every commit is fsync'd before it returns
};

// Rows another part of the server keeps in the same database (the API's audit log), written
// inside the next group commit rather than by a transaction of their own. SQLite lets one
// connection write at a time: a second writer made a group wait for its lock (up to several
// milliseconds for a batch of audit rows), cost an fsync of its own, and emptied the group
// writer's page cache.
class GroupCompanion {
 public:
  virtual ~GroupCompanion() = default;
  // On the committer, inside a group's transaction, after its case writes: writes the rows
  // queued so far. Throwing rolls back only what it wrote (a savepoint); the group commits.
  virtual void write(SqliteConnection& writer) = 0;
  // After every write(): its rows are durable (true), or not written (false: it threw, or the
  // group's transaction failed).
  virtual void settled(bool committed) noexcept = 0;
};

class SqliteCaseStore final : public CaseStore {
 public:
  // Opens (creating if needed) and migrates the database to the current schema. Throws
  // StoreError when the file cannot be opened or was written by a newer version.
  explicit SqliteCaseStore(const SqliteOptions& options);
  ~SqliteCaseStore() override;

  void write(std::span<const CaseWrite> batch) override;
  std::vector<std::string> write_group(std::span<const CaseWrite> batch) override;
  // The checkpoint write_group leaves undone. Once the log holds kCheckpointFrames pages, a
  // background thread copies them back into the database file (WalCheckpointer); the next
  // call after it has finished copies the few frames committed meanwhile itself, so that the
  // next write starts the log from its beginning. Past kCheckpointFramesLimit pages (the
  // background copy is slow) it waits for that copy and then copies the rest, so the log stays
  // bounded. Passive: readers are not waited for (one holding an old snapshot keeps the log
  // from starting over until it ends).
  void maintain() override;
  std::optional<CaseRecord> read_case(const std::string& case_id) override;
  std::vector<EventRecord> read_events(const std::string& case_id) override;
  std::vector<CaseRecord> query_cases(const CaseQuery& query) override;
  std::vector<TimerRecord> due_timers(TimePoint until, std::size_t limit) override;
  std::optional<TimePoint> next_timer_due() override;
  std::vector<OutboxMessage> due_messages(TimePoint now, std::size_t limit) override;
  std::optional<TimePoint> next_message_due() override;
  void update_message(const OutboxMessage& message) override;
  std::vector<OutboxMessage> case_messages(const std::string& case_id) override;
  std::optional<std::string> read_setting(const std::string& key) override;
  void write_setting(const std::string& key, const std::string& value) override;

  // At most one; nullptr detaches it. Waits for a group in progress, so once this returns a
  // detached companion is not called again.
  void set_group_companion(GroupCompanion* companion);

  static constexpr int kCheckpointFrames = 1000;  // SQLite's own automatic threshold
  static constexpr int kCheckpointFramesLimit = 4 * kCheckpointFrames;

  // Checkpoints maintain() ran so far: on the background thread, and by the writer itself
  // (finishing one from the background, or alone past the limit).
  struct CheckpointCounts {
    std::uint64_t background = 0, by_writer = 0;
  };
  CheckpointCounts checkpoint_counts();

  int schema_version();
  static int latest_schema_version();

  using Connection = SqliteConnection;

 private:
  void checkpoint_after_commit();  // under write_mutex_; logs a failure instead of throwing
  bool carry_companion_rows(Connection& c);  // under write_mutex_, in the group's transaction

  std::unique_ptr<Connection> writer_;
  std::unique_ptr<Connection> reader_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // last: stopped before the connections close
  std::mutex write_mutex_;
  std::mutex read_mutex_;
  CheckpointCounts checkpoints_;  // under write_mutex_
  GroupCompanion* companion_ = nullptr;  // under write_mutex_
};

}  // namespace clinicflow::store
