#pragma once
// The narrow storage interface the engine writes through. SQLite implements it today; a
// PostgreSQL backend for larger deployments implements the same calls.
#include "util/time.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace clinicflow::store {

struct EventRecord {
  std::int64_t seq = 0;  // 1, 2, 3 ... within one case
  TimePoint at = 0;
  std::string type;
  std::string step;   // empty for case-level events
  std::string actor;  // "user:<id>", "plugin:<name>", "system"
  boost::json::object data;
};

// The projection row of one case: derived from its events, stored in the same transaction.
struct CaseRecord {
  std::string case_id;
  std::string patient_id;
  std::string workflow_id;
  int workflow_version = 0;
  std::string status;  // active | completed | closed
  std::string stage;
  std::int64_t revision = 0;  // seq of the case's last event
  TimePoint created_at = 0, updated_at = 0;
  boost::json::object state;  // the full projection (see engine/case_state.hpp)
};

struct TimerRecord {
  std::string case_id;
  std::string step;
  std::string kind;  // "open" (a waiting step opens) | "overdue" (an open step passes its due time)
  TimePoint due = 0;
  bool operator==(const TimerRecord&) const = default;
};

// A message in the transactional outbox: written in the same transaction as the event that
// caused it, then delivered by the dispatcher through a messaging plugin.
struct OutboxMessage {
  std::string id;  // idempotency key, stable across retries
  std::string case_id;
  std::string plugin;  // the messaging plugin that delivers it
  std::string template_name;
  std::string recipient;
  std::string address;
  std::string subject;
  std::string body;
  std::string status = "pending";  // pending | delivered | failed
  int attempts = 0;
  TimePoint next_attempt_at = 0;  // not before this time
  std::string last_error;
  TimePoint created_at = 0;
  std::optional<TimePoint> delivered_at;
};

// Everything one command changes on one case. `expected_revision` is the revision the command
// read (0 for a new case); the write fails if the stored case has moved on since.
struct CaseWrite {
  std::int64_t expected_revision = 0;
  std::vector<EventRecord> events;  // seq already assigned, continuing from expected_revision
  CaseRecord projection;            // revision == seq of the last event
  std::vector<TimerRecord> timers;  // the case's complete set of pending timers after this write
  std::vector<OutboxMessage> messages;  // new messages to deliver once this write is durable
  // projection.state as it is stored, serialized by whoever built the write, so the one thread
  // that commits (the serial part of every write) does not; empty: serialized when stored.
  std::string state_json;
  // The case's status at expected_revision, as the command read it. When projection.status is
  // the same, the stored status (and its index) is left as it is; empty: always written.
  std::string expected_status;
  // `timers` are the ones stored at expected_revision: they are left as they are.
  bool timers_unchanged = false;
};

struct CaseQuery {
  std::optional<std::string> status, stage, workflow_id;
  std::optional<std::string> after;  // cursor: case ids greater than this
  std::size_t limit = 100;
};

class RevisionConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CaseStore {
 public:
  virtual ~CaseStore() = default;

  // All writes of the batch commit together, durably, or none does. Throws RevisionConflict when
  // any case's stored revision differs from its expected_revision; StoreError on I/O failure.
  virtual void write(std::span<const CaseWrite> batch) = 0;

  // Group commit: the writes of the batch commit in one durable transaction, each on its own:
  // a write whose case is not at its expected_revision is left out and the others still commit.
  // Returns, per write, "" when it committed or why it was left out. Throws StoreError on I/O
  // failure (then nothing committed). This default falls back to one transaction per write
  // after a conflict; SqliteCaseStore does it in one transaction, checking each write's revision
  // before writing any of it.
  virtual std::vector<std::string> write_group(std::span<const CaseWrite> batch);
  // Upkeep a commit may leave for later, done when the caller has nothing waiting on it (the
  // engine's committer calls it after answering a group). Throws StoreError on I/O failure.
  virtual void maintain() {}

  virtual std::optional<CaseRecord> read_case(const std::string& case_id) = 0;
  virtual std::vector<EventRecord> read_events(const std::string& case_id) = 0;
  virtual std::vector<CaseRecord> query_cases(const CaseQuery& query) = 0;

  // Pending timers due at or before `until`, earliest first (ties: case id, step, kind).
  virtual std::vector<TimerRecord> due_timers(TimePoint until, std::size_t limit) = 0;
  virtual std::optional<TimePoint> next_timer_due() = 0;

  // Outbox: pending messages due at or before `now`, oldest first; delivery outcomes; a case's messages.
  virtual std::vector<OutboxMessage> due_messages(TimePoint now, std::size_t limit) = 0;
  virtual std::optional<TimePoint> next_message_due() = 0;
  virtual void update_message(const OutboxMessage& message) = 0;  // status, attempts, next_attempt_at, last_error, delivered_at
  virtual std::vector<OutboxMessage> case_messages(const std::string& case_id) = 0;

  // Small named values that must survive restarts (the virtual clock's time).
  virtual std::optional<std::string> read_setting(const std::string& key) = 0;
  virtual void write_setting(const std::string& key, const std::string& value) = 0;
};

}  // namespace clinicflow::store
