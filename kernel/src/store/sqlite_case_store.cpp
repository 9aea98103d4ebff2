#include "store/sqlite_case_store.hpp"

#include "store/sqlite_connection.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <map>
#include <string_view>

namespace clinicflow::store {
namespace {

// Each entry moves the schema one version forward; applied in order, each in its own
// transaction, and never edited once shipped (add a new entry instead).
const char* const kMigrations[] = {
    // 1: cases, their append-only event log, pending timers, settings.
    R"sql(
CREATE TABLE cases (
  case_id          TEXT PRIMARY KEY,
  patient_id       TEXT NOT NULL,
  workflow_id      TEXT NOT NULL,
  workflow_version INTEGER NOT NULL,
  status           TEXT NOT NULL,
  stage            TEXT NOT NULL,
  revision         INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  state            TEXT NOT NULL
);
CREATE INDEX cases_by_status ON cases (status, case_id);
CREATE INDEX cases_by_workflow ON cases (workflow_id, case_id);
CREATE TABLE events (
  id      INTEGER PRIMARY KEY,
  case_id TEXT NOT NULL REFERENCES cases (case_id),
  seq     INTEGER NOT NULL,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  step    TEXT NOT NULL,
  actor   TEXT NOT NULL,
  data    TEXT NOT NULL,
  UNIQUE (case_id, seq)
);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE timers (
  case_id TEXT NOT NULL REFERENCES cases (case_id),
  step    TEXT NOT NULL,
  kind    TEXT NOT NULL,
  due_at  INTEGER NOT NULL,
  PRIMARY KEY (case_id, step, kind)
);
CREATE INDEX timers_by_due ON timers (due_at);
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql",
    // 2: the transactional outbox of messages to deliver.
    R"sql(
CREATE TABLE outbox (
  id              TEXT PRIMARY KEY,
  case_id         TEXT NOT NULL REFERENCES cases (case_id),
  plugin          TEXT NOT NULL,
  template        TEXT NOT NULL,
  recipient       TEXT NOT NULL,
  address         TEXT NOT NULL,
  subject         TEXT NOT NULL,
  body            TEXT NOT NULL,
  status          TEXT NOT NULL,
  attempts        INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER
);
CREATE INDEX outbox_by_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_case ON outbox (case_id);
)sql",
    // 3: API users and their tokens (hashes only), patients, and the append-only audit log.
    R"sql(
CREATE TABLE users (
  user_id    TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
  token_id   TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (user_id),
  roles      TEXT NOT NULL,
  hash       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX tokens_by_user ON tokens (user_id);
CREATE TABLE auth_meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO auth_meta (key, value) VALUES ('revocations', 0);
CREATE TABLE patients (
  patient_id  TEXT PRIMARY KEY,
  given_name  TEXT NOT NULL,
  family_name TEXT NOT NULL,
  birth_date  TEXT NOT NULL,
  contact     TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE TABLE audit (
  id       INTEGER PRIMARY KEY,
  at       INTEGER NOT NULL,
  user_id  TEXT NOT NULL,
  token_id TEXT NOT NULL,
  method   TEXT NOT NULL,
  target   TEXT NOT NULL,
  outcome  TEXT NOT NULL
);
CREATE INDEX audit_by_at ON audit (at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql",
};

constexpr int kLatestSchema = static_cast<int>(std::size(kMigrations));

}  // namespace

namespace {

using Transaction = SqliteTransaction;

boost::json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) throw StoreError("database holds malformed JSON");
  return std::move(value.as_object());
}

constexpr const char* kCaseColumns =
    "case_id, patient_id, workflow_id, workflow_version, status, stage, revision, created_at, updated_at, state";

CaseRecord read_case_row(SqliteConnection::Statement& s) {
  return CaseRecord{s.text(0), s.text(1), s.text(2), static_cast<int>(s.integer(3)), s.text(4), s.text(5),
                    s.integer(6), s.integer(7), s.integer(8), parse_object(s.text(9))};
}

}  // namespace

SqliteCaseStore::SqliteCaseStore(const SqliteOptions& options) {
  if (auto parent = options.path.parent_path(); !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw StoreError("cannot create directory " + parent.string() + ": " + ec.message());
  }
  writer_ = std::make_unique<Connection>(options.path, options.synchronous);
  int version = schema_version();
  if (version > kLatestSchema)
    throw StoreError("database " + options.path.string() + " has schema version " + std::to_string(version) +
                     ", newer than this server understands (" + std::to_string(kLatestSchema) + ")");
  for (int next = version + 1; next <= kLatestSchema; ++next) {
    Transaction tx(*writer_);
    writer_->exec(kMigrations[next - 1]);
    writer_->exec(("PRAGMA user_version=" + std::to_string(next)).c_str());
    tx.commit();
  }
  // Group commits check the log after answering (maintain()); the store's other, rare writes
  // check it themselves.
  writer_->defer_checkpoints();
  // The foreign keys stay declared, and every other connection (the reader, the auth store, the
  // sqlite3 shell) enforces them; the writer need not. Each of its writes starts by proving its
  // case row exists, in the same transaction (apply_write's first statement), before it adds
  // events, timers or messages for that case, and no case row is ever deleted. Looking the
  // parent up again for every child row was ~16 % of a group's statements.
  writer_->exec("PRAGMA foreign_keys=OFF");
  reader_ = std::make_unique<Connection>(options.path, options.synchronous);
  checkpointer_ = std::make_unique<WalCheckpointer>(options.path, options.synchronous);
}

SqliteCaseStore::~SqliteCaseStore() = default;

int SqliteCaseStore::schema_version() {
  std::lock_guard lock(write_mutex_);
  auto s = writer_->prepare("PRAGMA user_version");
  s.step();
  return static_cast<int>(s.integer(0));
}

int SqliteCaseStore::latest_schema_version() { return kLatestSchema; }

namespace {

// One case's write inside an open transaction: the projection (checked against the expected
// revision), its events, its timers (replaced, unless unchanged) and its queued messages. The
// revision check is the first statement and the only source of RevisionConflict (write_group
// relies on that); it also proves the case row exists before any row referring to it is written
// (the writer does not check foreign keys: see the constructor).
void apply_write(SqliteConnection& c, const CaseWrite& w) {
  const CaseRecord& p = w.projection;
  std::string serialized_here;  // only for a write built without state_json; else no copy
  const std::string& state = w.state_json.empty() ? (serialized_here = boost::json::serialize(p.state)) : w.state_json;
  if (w.expected_revision == 0) {
    auto exists = c.prepare("SELECT 1 FROM cases WHERE case_id = ?1");
    exists.bind(1, p.case_id);
    if (exists.step()) throw RevisionConflict("case " + p.case_id + " already exists");
    auto insert = c.prepare(
        "INSERT INTO cases (case_id, patient_id, workflow_id, workflow_version, status, stage, revision, created_at, "
        "updated_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    insert.bind(1, p.case_id).bind(2, p.patient_id).bind(3, p.workflow_id).bind(4, std::int64_t{p.workflow_version});
    insert.bind(5, p.status).bind(6, p.stage).bind(7, p.revision).bind(8, p.created_at).bind(9, p.updated_at).bind(10, state);
    insert.step();
  } else {
    // SQLite rewrites an index entry whenever the UPDATE names one of its columns, changed or
    // not; most writes leave the status alone, so they leave cases_by_status alone too. At
    // expected_revision the stored status is expected_status, so skipping it changes nothing.
    bool same_status = !w.expected_status.empty() && w.expected_status == p.status;
    auto update = c.prepare(
        same_status
            ? "UPDATE cases SET stage = ?3, revision = ?4, updated_at = ?5, state = ?6 WHERE case_id = ?1 AND revision = ?7"
            : "UPDATE cases SET status = ?2, stage = ?3, revision = ?4, updated_at = ?5, state = ?6 WHERE case_id = ?1 AND revision = ?7");
    update.bind(1, p.case_id).bind(3, p.stage).bind(4, p.revision).bind(5, p.updated_at).bind(6, state);
    if (!same_status) update.bind(2, p.status);
    update.bind(7, w.expected_revision);
    update.step();
    if (c.changes() != 1)
      throw RevisionConflict("case " + p.case_id + " is no longer at revision " + std::to_string(w.expected_revision));
  }
  for (const EventRecord& e : w.events) {
    auto insert = c.prepare("INSERT INTO events (case_id, seq, at, type, step, actor, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    insert.bind(1, p.case_id).bind(2, e.seq).bind(3, e.at).bind(4, e.type).bind(5, e.step).bind(6, e.actor);
    insert.bind(7, boost::json::serialize(e.data));
    insert.step();
  }
  // Most writes leave a case's timers as they were (most steps have no due time): then its rows
  // stay as they are; and a new case has none to replace.
  if (!w.timers_unchanged) {
    if (w.expected_revision != 0) {
      auto clear = c.prepare("DELETE FROM timers WHERE case_id = ?1");
      clear.bind(1, p.case_id);
      clear.step();
    }
    for (const TimerRecord& t : w.timers) {
      auto insert = c.prepare("INSERT INTO timers (case_id, step, kind, due_at) VALUES (?1, ?2, ?3, ?4)");
      insert.bind(1, p.case_id).bind(2, t.step).bind(3, t.kind).bind(4, t.due);
      insert.step();
    }
  }
  for (const OutboxMessage& m : w.messages) {
    auto insert = c.prepare(
        "INSERT INTO outbox (id, case_id, plugin, template, recipient, address, subject, body, status, attempts, "
        "next_attempt_at, last_error, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0, ?9, '', ?10)");
    insert.bind(1, m.id).bind(2, p.case_id).bind(3, m.plugin).bind(4, m.template_name).bind(5, m.recipient);
    insert.bind(6, m.address).bind(7, m.subject).bind(8, m.body).bind(9, m.next_attempt_at).bind(10, m.created_at);
    insert.step();
  }
}

}  // namespace

void SqliteCaseStore::write(std::span<const CaseWrite> batch) {
  std::lock_guard lock(write_mutex_);
  Transaction tx(*writer_);
  for (const CaseWrite& w : batch) apply_write(*writer_, w);
  tx.commit();
  checkpoint_after_commit();
}

std::vector<std::string> SqliteCaseStore::write_group(std::span<const CaseWrite> batch) {
  std::lock_guard lock(write_mutex_);
  Connection& c = *writer_;
  std::vector<std::string> outcome(batch.size());
  Transaction tx(c);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    // No savepoint needed: apply_write throws RevisionConflict only from its first statement,
    // before it has written anything, so a stale write leaves nothing to roll back.
    try {
      apply_write(c, batch[i]);
    } catch (const RevisionConflict& e) {
      outcome[i] = e.what();
    }
  }
  const bool carried = companion_ && carry_companion_rows(c);
  try {
    tx.commit();
  } catch (...) {
    if (carried) companion_->settled(false);
    throw;
  }
  if (carried) companion_->settled(true);
  return outcome;
}

bool SqliteCaseStore::carry_companion_rows(Connection& c) {
  // In a savepoint of its own: rows that cannot be written (the companion keeps them for later)
  // never cost the group's case writes their commit.
  try {
    c.run("SAVEPOINT companion");
    companion_->write(c);
    c.run("RELEASE companion");
    return true;
  } catch (const std::exception& e) {
    companion_->settled(false);  // first: whatever happens next, the companion has its rows back
    spdlog::error("rows carried by a group commit were left out of it: {}", e.what());
    // Taking back only the companion's rows; should even that fail, the group fails.
    c.run("ROLLBACK TO companion");
    c.run("RELEASE companion");
    return false;
  }
}

void SqliteCaseStore::set_group_companion(GroupCompanion* companion) {
  std::lock_guard lock(write_mutex_);
  companion_ = companion;
}

void SqliteCaseStore::maintain() {
  std::lock_guard lock(write_mutex_);
  const int frames = writer_->wal_frames();
  // Collected even when the log is short again: a copy that ended before the next write began
  // let SQLite start the log over by itself, and must not count as done for the next round.
  const bool copied = checkpointer_->finished();
  if (frames < kCheckpointFrames) return;
  if (frames >= kCheckpointFramesLimit) {
    // The background copy is slow (a slow disk): wait for it, as if the committer had run it,
    // so the log stays bounded. It holds the checkpoint lock while it runs.
    checkpointer_->wait();
    checkpointer_->finished();
  } else if (!copied) {
    if (checkpointer_->start()) ++checkpoints_.background;
    return;
  }
  // Finishing what the background copied, or past the limit everything: either way the next
  // write can start the log from its beginning.
  if (writer_->checkpoint()) ++checkpoints_.by_writer;
}

SqliteCaseStore::CheckpointCounts SqliteCaseStore::checkpoint_counts() {
  std::lock_guard lock(write_mutex_);
  return checkpoints_;
}

void SqliteCaseStore::checkpoint_after_commit() {
  // The write is durable by now: a failed checkpoint must not make it look failed.
  try {
    writer_->checkpoint_if_over(kCheckpointFrames);
  } catch (const StoreError& e) {
    spdlog::error("checkpoint after a write: {}", e.what());
  }
}

std::optional<CaseRecord> SqliteCaseStore::read_case(const std::string& case_id) {
  std::lock_guard lock(read_mutex_);
  static const std::string sql = std::string("SELECT ") + kCaseColumns + " FROM cases WHERE case_id = ?1";
  auto s = reader_->prepare(sql.c_str());
  s.bind(1, case_id);
  if (!s.step()) return std::nullopt;
  return read_case_row(s);
}

std::vector<EventRecord> SqliteCaseStore::read_events(const std::string& case_id) {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT seq, at, type, step, actor, data FROM events WHERE case_id = ?1 ORDER BY seq");
  s.bind(1, case_id);
  std::vector<EventRecord> out;
  while (s.step()) out.push_back({s.integer(0), s.integer(1), s.text(2), s.text(3), s.text(4), parse_object(s.text(5))});
  return out;
}

std::vector<CaseRecord> SqliteCaseStore::query_cases(const CaseQuery& query) {
  std::lock_guard lock(read_mutex_);
  // Absent filters bind NULL-equivalents so one prepared statement serves every combination.
  static const std::string sql = std::string("SELECT ") + kCaseColumns +
                                 " FROM cases WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR stage = ?2)"
                                 " AND (?3 = '' OR workflow_id = ?3) AND case_id > ?4 ORDER BY case_id LIMIT ?5";
  auto s = reader_->prepare(sql.c_str());
  s.bind(1, query.status.value_or("")).bind(2, query.stage.value_or("")).bind(3, query.workflow_id.value_or(""));
  s.bind(4, query.after.value_or("")).bind(5, static_cast<std::int64_t>(query.limit));
  std::vector<CaseRecord> out;
  while (s.step()) out.push_back(read_case_row(s));
  return out;
}

std::vector<TimerRecord> SqliteCaseStore::due_timers(TimePoint until, std::size_t limit) {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare(
      "SELECT case_id, step, kind, due_at FROM timers WHERE due_at <= ?1 ORDER BY due_at, case_id, step, kind LIMIT ?2");
  s.bind(1, until).bind(2, static_cast<std::int64_t>(limit));
  std::vector<TimerRecord> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.integer(3)});
  return out;
}

std::optional<TimePoint> SqliteCaseStore::next_timer_due() {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT MIN(due_at) FROM timers");
  if (!s.step() || s.is_null(0)) return std::nullopt;
  return s.integer(0);
}

namespace {
constexpr const char* kOutboxColumns =
    "id, case_id, plugin, template, recipient, address, subject, body, status, attempts, next_attempt_at, last_error, "
    "created_at, delivered_at";

OutboxMessage read_message_row(SqliteConnection::Statement& s) {
  OutboxMessage m{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.text(7), s.text(8),
                  static_cast<int>(s.integer(9)), s.integer(10), s.text(11), s.integer(12), std::nullopt};
  if (!s.is_null(13)) m.delivered_at = s.integer(13);
  return m;
}
}  // namespace

std::vector<OutboxMessage> SqliteCaseStore::due_messages(TimePoint now, std::size_t limit) {
  std::lock_guard lock(read_mutex_);
  static const std::string sql = std::string("SELECT ") + kOutboxColumns +
                                 " FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2";
  auto s = reader_->prepare(sql.c_str());
  s.bind(1, now).bind(2, static_cast<std::int64_t>(limit));
  std::vector<OutboxMessage> out;
  while (s.step()) out.push_back(read_message_row(s));
  return out;
}

std::optional<TimePoint> SqliteCaseStore::next_message_due() {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'");
  if (!s.step() || s.is_null(0)) return std::nullopt;
  return s.integer(0);
}

void SqliteCaseStore::update_message(const OutboxMessage& m) {
  std::lock_guard lock(write_mutex_);
  auto s = writer_->prepare(
      "UPDATE outbox SET status = ?2, attempts = ?3, next_attempt_at = ?4, last_error = ?5, delivered_at = ?6 WHERE id = ?1");
  s.bind(1, m.id).bind(2, m.status).bind(3, std::int64_t{m.attempts}).bind(4, m.next_attempt_at).bind(5, m.last_error);
  if (m.delivered_at) s.bind(6, *m.delivered_at);
  s.step();
  if (writer_->changes() != 1) throw StoreError("no outbox message '" + m.id + "'");
  checkpoint_after_commit();
}

std::vector<OutboxMessage> SqliteCaseStore::case_messages(const std::string& case_id) {
  std::lock_guard lock(read_mutex_);
  static const std::string sql = std::string("SELECT ") + kOutboxColumns + " FROM outbox WHERE case_id = ?1 ORDER BY created_at, rowid";
  auto s = reader_->prepare(sql.c_str());
  s.bind(1, case_id);
  std::vector<OutboxMessage> out;
  while (s.step()) out.push_back(read_message_row(s));
  return out;
}

std::optional<std::string> SqliteCaseStore::read_setting(const std::string& key) {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT value FROM settings WHERE key = ?1");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void SqliteCaseStore::write_setting(const std::string& key, const std::string& value) {
  std::lock_guard lock(write_mutex_);
  auto s = writer_->prepare(
      "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  s.bind(1, key).bind(2, value);
  s.step();
  checkpoint_after_commit();
}

}  // namespace clinicflow::store
