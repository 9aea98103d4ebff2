#include "api/auth_store.hpp"

#include "util/record_id.hpp"
#include "util/thread_name.hpp"

#include <chrono>
#include <future>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace clinicflow::api {
namespace json = boost::json;
using store::StoreError;

void random_bytes(void* out, std::size_t bytes) {
  if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(bytes)) != 1) throw std::runtime_error("the random number generator failed");
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  random_bytes(buf.data(), buf.size());
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char b : buf) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 failed");
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 15];
  }
  return out;
}

namespace {

using Tx = store::SqliteTransaction;

std::vector<std::string> parse_roles(const std::string& text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_array()) throw StoreError("database holds malformed roles");
  for (const auto& r : v.as_array())
    if (r.is_string()) out.emplace_back(r.as_string());
  return out;
}

std::string roles_text(const std::vector<std::string>& roles) {
  json::array a;
  for (const auto& r : roles) a.emplace_back(r);
  return json::serialize(a);
}

bool valid_user_name(const std::string& user) {
  if (user.empty() || user.size() > 64) return false;
  for (char ch : user)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')) return false;
  return true;
}

}  // namespace

SqliteAuthStore::SqliteAuthStore(const store::SqliteOptions& options, const engine::Clock& clock,
                                 std::chrono::milliseconds audit_interval)
    : clock_(clock), audit_interval_(audit_interval) {
  writer_ = std::make_unique<Db>(options.path, options.synchronous, /*create=*/false);
  {
    auto s = writer_->prepare("PRAGMA user_version");
    s.step();
    if (s.integer(0) < 3)
      throw StoreError("database " + options.path.string() + " has no API tables (schema " + std::to_string(s.integer(0)) +
                       "): open it with the case store first");
  }
  reader_ = std::make_unique<Db>(options.path, options.synchronous, /*create=*/false);
  audit_thread_ = std::thread([this] { audit_loop(); });
}

SqliteAuthStore::~SqliteAuthStore() {
  // First, so no group commit calls into a store being taken apart; a group in progress is
  // waited for, and whatever it took has settled by then.
  if (carrier_) carrier_->set_group_companion(nullptr);
  {
    std::lock_guard lock(audit_mutex_);
    stopping_ = true;
  }
  audit_cv_.notify_all();
  audit_thread_.join();
  try {
    write_pending();
  } catch (const std::exception& e) {
    spdlog::error("audit log: {}", e.what());
  }
}

NewToken SqliteAuthStore::create_token(const std::string& user, const std::vector<std::string>& roles) {
  if (!valid_user_name(user)) throw AuthError("a user name is 1 to 64 of a-z, 0-9, '.', '_', '-'");
  if (roles.empty()) throw AuthError("a token needs at least one role");
  NewToken t{"t_" + random_hex(8), "cf_" + random_hex(32)};
  TimePoint now = clock_.now();
  std::lock_guard lock(write_mutex_);
  Tx tx(*writer_);
  auto u = writer_->prepare("INSERT INTO users (user_id, created_at) VALUES (?1, ?2) ON CONFLICT (user_id) DO NOTHING");
  u.bind(1, user).bind(2, now);
  u.step();
  auto s = writer_->prepare("INSERT INTO tokens (token_id, user_id, roles, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)");
  s.bind(1, t.token_id).bind(2, user).bind(3, roles_text(roles)).bind(4, sha256_hex(t.token)).bind(5, now);
  s.step();
  tx.commit();
  spdlog::info("token {} created for user {}", t.token_id, user);
  return t;
}

bool SqliteAuthStore::revoke_token(const std::string& token_id) {
  TimePoint now = clock_.now();
  std::lock_guard lock(write_mutex_);
  Tx tx(*writer_);
  auto s = writer_->prepare("UPDATE tokens SET revoked_at = ?2 WHERE token_id = ?1 AND revoked_at IS NULL");
  s.bind(1, token_id).bind(2, now);
  s.step();
  if (writer_->changes() != 1) return false;
  auto bump = writer_->prepare("UPDATE auth_meta SET value = value + 1 WHERE key = 'revocations'");
  bump.step();
  tx.commit();
  generation_.fetch_add(1);
  spdlog::info("token {} revoked", token_id);
  return true;
}

std::optional<Identity> SqliteAuthStore::verify(std::string_view token) {
  if (token.size() != 67 || token.substr(0, 3) != "cf_") return std::nullopt;
  std::string hash = sha256_hex(token);
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT token_id, user_id, roles FROM tokens WHERE hash = ?1 AND revoked_at IS NULL");
  s.bind(1, hash);
  if (!s.step()) return std::nullopt;
  return Identity{s.text(0), s.text(1), parse_roles(s.text(2))};
}

bool SqliteAuthStore::active(const std::string& token_id) {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT 1 FROM tokens WHERE token_id = ?1 AND revoked_at IS NULL");
  s.bind(1, token_id);
  return s.step();
}

std::uint64_t SqliteAuthStore::generation() {
  std::lock_guard lock(read_mutex_);
  auto now = std::chrono::steady_clock::now();
  if (now - last_probe_ < kExternalRevocationProbe) return generation_.load();
  last_probe_ = now;
  // data_version moves when another connection (the engine's, the CLI's) committed; only then is
  // the persisted revocation counter worth reading.
  auto v = reader_->prepare("PRAGMA data_version");
  v.step();
  std::int64_t version = v.integer(0);
  if (version != seen_data_version_) {
    seen_data_version_ = version;
    auto r = reader_->prepare("SELECT value FROM auth_meta WHERE key = 'revocations'");
    std::int64_t revocations = r.step() ? r.integer(0) : 0;
    if (revocations != seen_revocations_) {
      if (seen_revocations_ >= 0) generation_.fetch_add(1);
      seen_revocations_ = revocations;
    }
  }
  return generation_.load();
}

std::vector<TokenInfo> SqliteAuthStore::list_tokens() {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT token_id, user_id, roles, created_at, revoked_at FROM tokens ORDER BY created_at, token_id");
  std::vector<TokenInfo> out;
  while (s.step()) {
    TokenInfo t{s.text(0), s.text(1), parse_roles(s.text(2)), s.integer(3), std::nullopt};
    if (!s.is_null(4)) t.revoked_at = s.integer(4);
    out.push_back(std::move(t));
  }
  return out;
}

std::size_t SqliteAuthStore::user_count() {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare("SELECT COUNT(*) FROM users");
  s.step();
  return static_cast<std::size_t>(s.integer(0));
}

std::optional<std::filesystem::path> SqliteAuthStore::ensure_admin_token(const std::filesystem::path& data_dir) {
  if (user_count() > 0) return std::nullopt;
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) throw StoreError("cannot create directory " + data_dir.string() + ": " + ec.message());
  std::filesystem::path path = data_dir / "admin.token";
  NewToken t = create_token("admin", {"admin"});
  // Written only for its owner: created 0600, and made 0600 if the file existed already.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    std::string why = std::strerror(errno);
    revoke_token(t.token_id);
    throw StoreError("cannot write " + path.string() + ": " + why);
  }
  std::string text = t.token + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  std::string why = ok ? "" : std::strerror(errno);
  ::close(fd);
  if (!ok) {
    revoke_token(t.token_id);
    throw StoreError("cannot write " + path.string() + ": " + why);
  }
  spdlog::warn("first start: the admin token ({}) was written to {}; keep it safe", t.token_id, path.string());
  return path;
}

void SqliteAuthStore::create_patient(Patient p, PatientDone done) {
  std::uint64_t random_bits = 0;
  random_bytes(&random_bits, sizeof random_bits);
  p.patient_id = util::record_id("p_", random_bits);
  p.created_at = clock_.now();
  {
    std::lock_guard lock(audit_mutex_);
    patient_queue_.push_back({std::move(p), std::move(done)});
  }
  audit_cv_.notify_one();
}

Patient SqliteAuthStore::create_patient(Patient p) {
  std::promise<Patient> stored;
  auto future = stored.get_future();
  create_patient(std::move(p), [&stored](const Patient* patient, std::exception_ptr error) {
    if (error) stored.set_exception(error);
    else stored.set_value(*patient);
  });
  return future.get();
}

std::optional<Patient> SqliteAuthStore::get_patient(const std::string& patient_id) {
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare(
      "SELECT patient_id, given_name, family_name, birth_date, contact, created_at FROM patients WHERE patient_id = ?1");
  s.bind(1, patient_id);
  if (!s.step()) return std::nullopt;
  Patient p{s.text(0), s.text(1), s.text(2), s.text(3), {}, s.integer(5)};
  boost::system::error_code ec;
  auto contact = json::parse(s.text(4), ec);
  if (!ec && contact.is_object()) p.contact = std::move(contact.as_object());
  return p;
}

void SqliteAuthStore::audit(AuditEntry entry) {
  bool wake = false;
  {
    std::lock_guard lock(audit_mutex_);
    if (audit_queue_.empty()) {
      queued_since_ = std::chrono::steady_clock::now();
      // Only a first row, and only while the writer is idle: waking it for every row, or every
      // time a group commit emptied the queue, would cost a thread switch each.
      wake = writer_idle_;
    }
    audit_queue_.push_back(std::move(entry));
  }
  if (wake) audit_cv_.notify_one();
}

void SqliteAuthStore::carry_audit_with(store::SqliteCaseStore& store) {
  if (carrier_) carrier_->set_group_companion(nullptr);
  carrier_ = &store;
  store.set_group_companion(this);
}

namespace {
void insert_audit_rows(store::SqliteConnection& c, const std::vector<AuditEntry>& rows) {
  for (const auto& e : rows) {
    auto s = c.prepare("INSERT INTO audit (at, user_id, token_id, method, target, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.bind(1, e.at).bind(2, e.user).bind(3, e.token_id).bind(4, e.method).bind(5, e.target).bind(6, e.outcome);
    s.step();
  }
}
}  // namespace

void SqliteAuthStore::write(store::SqliteConnection& writer) {
  {
    std::lock_guard lock(audit_mutex_);
    if (audit_queue_.empty() || carrying_paused_) return;
    audit_in_flight_.swap(audit_queue_);
  }
  // audit_in_flight_ is this thread's until settled(): only its emptiness is read elsewhere.
  insert_audit_rows(writer, audit_in_flight_);
}

void SqliteAuthStore::settled(bool committed) noexcept {
  {
    std::lock_guard lock(audit_mutex_);
    if (audit_in_flight_.empty()) return;
    if (!committed) {
      // Back in front of what was queued meanwhile, in order. The background writer retries
      // after an interval; until it has succeeded, groups carry nothing (a failure that lasts
      // costs one error per attempt of that writer, not one per group).
      carrying_paused_ = true;
      requeue_audit(audit_in_flight_);
    }
    audit_in_flight_.clear();
  }
  audit_settled_cv_.notify_all();
  if (!committed) audit_cv_.notify_one();  // an idle writer would not look at them otherwise
}

void SqliteAuthStore::requeue_audit(std::vector<AuditEntry>& rows) {
  rows.insert(rows.end(), std::make_move_iterator(audit_queue_.begin()), std::make_move_iterator(audit_queue_.end()));
  audit_queue_.swap(rows);
  rows.clear();
  queued_since_ = std::chrono::steady_clock::now();  // the next attempt after an interval
}

void SqliteAuthStore::write_pending() {
  std::lock_guard write_lock(write_mutex_);
  {
    std::lock_guard lock(audit_mutex_);
    if (audit_queue_.empty() && patient_queue_.empty()) return;
  }
  std::vector<AuditEntry> audits;
  std::vector<PatientJob> patients;
  std::exception_ptr failure;
  try {
    Tx tx(*writer_);
    {
      // Taken only once this transaction holds the database's write lock: a group commit that
      // took rows earlier has committed them by now, so the audit log keeps the queue's order.
      std::lock_guard lock(audit_mutex_);
      audits.swap(audit_queue_);
      patients.swap(patient_queue_);
    }
    for (const auto& job : patients) {
      const Patient& p = job.patient;
      auto s = writer_->prepare(
          "INSERT INTO patients (patient_id, given_name, family_name, birth_date, contact, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
      s.bind(1, p.patient_id).bind(2, p.given_name).bind(3, p.family_name).bind(4, p.birth_date);
      s.bind(5, json::serialize(p.contact)).bind(6, p.created_at);
      s.step();
    }
    insert_audit_rows(*writer_, audits);
    tx.commit();
    std::lock_guard lock(audit_mutex_);
    carrying_paused_ = false;
  } catch (...) {
    failure = std::current_exception();
    std::lock_guard lock(audit_mutex_);
    requeue_audit(audits);
  }
  if (failure) audit_cv_.notify_one();  // when flush_audit failed, the idle writer retries
  for (auto& job : patients) {
    try {
      job.done(failure ? nullptr : &job.patient, failure);
    } catch (const std::exception& e) {
      spdlog::error("after creating patient {}: {}", job.patient.patient_id, e.what());
    }
  }
  if (failure) std::rethrow_exception(failure);
}

void SqliteAuthStore::flush_audit() {
  {
    // Rows a group commit took are durable once it settles (or back in the queue).
    std::unique_lock lock(audit_mutex_);
    audit_settled_cv_.wait(lock, [this] { return audit_in_flight_.empty(); });
  }
  write_pending();
}

void SqliteAuthStore::audit_loop() {
  util::name_this_thread("cf-audit");
  std::unique_lock lock(audit_mutex_);
  for (;;) {
    writer_idle_ = true;
    audit_cv_.wait(lock, [this] { return stopping_ || !audit_queue_.empty() || !patient_queue_.empty(); });
    writer_idle_ = false;
    // Audit rows wait until the oldest has been queued audit_interval_: one fsync'd commit per
    // interval rather than one per request. While case writes are being committed, each group
    // takes the queue with it, so the rows found here are always younger and this thread does
    // not compete with the group commits for the write lock. A patient someone waits for goes
    // at once, taking the rows queued so far with it.
    while (!stopping_ && patient_queue_.empty() && !audit_queue_.empty()) {
      auto due = queued_since_ + audit_interval_;
      if (std::chrono::steady_clock::now() >= due) break;
      audit_cv_.wait_until(lock, due, [this] { return stopping_ || !patient_queue_.empty(); });
    }
    if (stopping_) return;
    if (audit_queue_.empty() && patient_queue_.empty()) continue;  // a group commit took them
    lock.unlock();
    try {
      write_pending();
    } catch (const std::exception& e) {
      spdlog::error("audit log write failed (its rows are kept for the next attempt): {}", e.what());
    }
    lock.lock();
  }
}

std::vector<AuditEntry> SqliteAuthStore::read_audit(std::size_t limit) {
  flush_audit();
  std::lock_guard lock(read_mutex_);
  auto s = reader_->prepare(
      "SELECT at, user_id, token_id, method, target, outcome FROM "
      "(SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id");
  s.bind(1, static_cast<std::int64_t>(limit));
  std::vector<AuditEntry> out;
  while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)});
  return out;
}

}  // namespace clinicflow::api
