#pragma once
// Users, API tokens, patients and the audit log, in the same SQLite database as the cases
// (tables from migration 3 in store/sqlite_case_store.cpp). A class of its own so the engine's
// CaseStore interface stays narrow; open it after the SqliteCaseStore, which migrates the file.
//
// Tokens: 32 random bytes shown once as "cf_" + 64 hex digits; only their SHA-256 is stored,
// bound to one user and a set of roles. Revocation is immediate: generation() changes, and the
// API re-checks a session's token before its next request (see generation() for revocations by
// another process).
//
// Audit: one row per write, per refusal and per read of a case or patient (HIPAA 164.312(b)).
// Rows are queued, so reads are not slowed down by an fsync each. Attached to the case store
// (carry_audit_with), every group commit of case writes takes the rows queued so far into its
// own transaction; a background thread writes rows that no group took within kAuditInterval (an
// idle or read-only server) in one transaction per batch. flush_audit() writes everything
// queued so far.
#include "store/sqlite_connection.hpp"
#include "engine/clock.hpp"
#include "store/sqlite_case_store.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace clinicflow::api {

struct Identity {
  std::string token_id;
  std::string user;
  std::vector<std::string> roles;
};

struct NewToken {
  std::string token_id;  // "t_" + 16 hex digits: names the token in lists, audit and revoke
  std::string token;     // "cf_" + 64 hex digits: the secret, shown once
};

struct TokenInfo {
  std::string token_id;
  std::string user;
  std::vector<std::string> roles;
  TimePoint created_at = 0;
  std::optional<TimePoint> revoked_at;
};

struct Patient {
  std::string patient_id;
  std::string given_name;
  std::string family_name;
  std::string birth_date;       // YYYY-MM-DD
  boost::json::object contact;  // phone, email, address (each optional)
  TimePoint created_at = 0;
};

struct AuditEntry {
  TimePoint at = 0;
  std::string user;      // "" when nobody is authenticated
  std::string token_id;  // "" when nobody is authenticated
  std::string method;
  std::string target;   // case, patient, token or subscription id; "" when none
  std::string outcome;  // "ok" or the error's name: forbidden, not_found, conflict, ...
};

class AuthError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SqliteAuthStore final : private store::GroupCompanion {
 public:
  // Opens the database the SqliteCaseStore already migrated. Throws store::StoreError when it
  // cannot, or when the schema lacks the tables of migration 3.
  // audit_interval: how long the background writer leaves a queued audit row for a group commit
  // to take (tests make it long, to tell the two apart).
  SqliteAuthStore(const store::SqliteOptions& options, const engine::Clock& clock,
                  std::chrono::milliseconds audit_interval = kAuditInterval);
  ~SqliteAuthStore();
  SqliteAuthStore(const SqliteAuthStore&) = delete;
  SqliteAuthStore& operator=(const SqliteAuthStore&) = delete;

  // Creates the user when new. `user`: 1-64 of [a-z0-9._-] (AuthError otherwise); roles: at least one.
  NewToken create_token(const std::string& user, const std::vector<std::string>& roles);
  // false when there is no such token or it was revoked already.
  bool revoke_token(const std::string& token_id);
  // The token's user and roles; nothing for an unknown or revoked token.
  std::optional<Identity> verify(std::string_view token);
  // Whether the token is still valid (not revoked).
  bool active(const std::string& token_id);
  // Changes whenever a token may have been revoked. A revocation by this process counts at once;
  // one by another process writing the same database (the CLI) is looked for in the database at
  // most once per kExternalRevocationProbe, as the probe (a read transaction) cost a tenth of a
  // case.get. So that "revoked" still means "refused from the next request on", a process that
  // revokes while a server runs (`clinicflow token revoke`) waits twice that interval before it
  // reports success: by then the server has looked.
  std::uint64_t generation();
  static constexpr std::chrono::milliseconds kExternalRevocationProbe{5};
  std::vector<TokenInfo> list_tokens();
  std::size_t user_count();

  // First start: when there are no users, creates user "admin" with role "admin", writes its token
  // to <data_dir>/admin.token (mode 0600) and returns the path. Otherwise nothing.
  std::optional<std::filesystem::path> ensure_admin_token(const std::filesystem::path& data_dir);

  // Patients. create_patient assigns patient_id and created_at and answers with the stored
  // patient once it is durable. Patients created meanwhile, and the audit rows queued, share one
  // transaction (group commit); `done` runs on the background writer's thread, and must not block.
  using PatientDone = std::function<void(const Patient* stored, std::exception_ptr error)>;
  void create_patient(Patient patient, PatientDone done);
  Patient create_patient(Patient patient);  // waits
  std::optional<Patient> get_patient(const std::string& patient_id);

  // Audit: queued and written in order: by the next group commit of the case store this store
  // is attached to, else by the background writer about kAuditInterval later (sooner when a
  // patient is created).
  void audit(AuditEntry entry);
  // Everything queued so far is durable when it returns.
  void flush_audit();
  // From now on the store's group commits carry the queued audit rows, until this auth store is
  // destroyed (which detaches it first). `store` must be the one for the same database file and
  // outlive this auth store.
  void carry_audit_with(store::SqliteCaseStore& store);
  static constexpr std::chrono::milliseconds kAuditInterval{50};
  // The most recent `limit` rows, oldest first (flushes first).
  std::vector<AuditEntry> read_audit(std::size_t limit = 1000);

  using Db = store::SqliteConnection;

 private:
  struct PatientJob {
    Patient patient;
    PatientDone done;
  };
  void write_pending();  // the queued patients and audit rows, in one transaction
  void audit_loop();
  // Rows not written go back in front of the queue, in order (under audit_mutex_); `rows` is left empty.
  void requeue_audit(std::vector<AuditEntry>& rows);
  // store::GroupCompanion: the queued audit rows go into the case store's group transaction.
  void write(store::SqliteConnection& writer) override;
  void settled(bool committed) noexcept override;

  const engine::Clock& clock_;
  const std::chrono::milliseconds audit_interval_;
  std::unique_ptr<Db> writer_;
  std::unique_ptr<Db> reader_;
  std::mutex write_mutex_;
  std::mutex read_mutex_;
  std::atomic<std::uint64_t> generation_{1};
  std::int64_t seen_data_version_ = -1;  // under read_mutex_
  std::int64_t seen_revocations_ = -1;   // under read_mutex_
  std::chrono::steady_clock::time_point last_probe_{};  // under read_mutex_

  std::mutex audit_mutex_;
  std::condition_variable audit_cv_;
  std::condition_variable audit_settled_cv_;  // audit_in_flight_ emptied
  std::vector<AuditEntry> audit_queue_;
  std::chrono::steady_clock::time_point queued_since_;  // when audit_queue_ last became non-empty
  std::vector<AuditEntry> audit_in_flight_;  // taken by a group commit that has not settled yet
  std::vector<PatientJob> patient_queue_;
  bool writer_idle_ = false;  // the background writer waits for a first row (audit() wakes it)
  bool carrying_paused_ = false;  // group commits carry nothing until the background writer succeeds
  bool stopping_ = false;
  store::SqliteCaseStore* carrier_ = nullptr;
  std::thread audit_thread_;
};

// Random bytes from OpenSSL (throws when its generator fails), raw or as lowercase hex (2 digits
// per byte).
void random_bytes(void* out, std::size_t bytes);
std::string random_hex(std::size_t bytes);
std::string sha256_hex(std::string_view text);

}  // namespace clinicflow::api
