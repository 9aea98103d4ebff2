// SqliteCaseStore against a real database file in a temporary directory: schema migration,
// durability settings, atomic batches, the append-only event log, timers, queries and settings.
#include "support/temp_dir.hpp"
#include "store/sqlite_case_store.hpp"
#include "store/wal_checkpointer.hpp"
#include "store/wal_write_vfs.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace clinicflow;
using namespace clinicflow::store;

namespace {

using clinicflow::testing::TempDir;

// A plain sqlite3 connection, independent of the store: what another process would see.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) {
    if (sqlite3_open_v2(path.string().c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("raw open failed: " + why);
    }
    sqlite3_busy_timeout(db_, 10'000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Runs `sql`; returns the sqlite result code and fills `error` with the message on failure.
  int exec(const std::string& sql, std::string* error = nullptr) {
    char* message = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (error) *error = message ? message : "";
    sqlite3_free(message);
    return rc;
  }

  // The first column of the first row as text ("" when there is no row or it is NULL).
  std::string scalar(const std::string& sql) { return first_row(sql).at(0); }

  // Every column of the first row as text (one "" when there is no row; "" for NULL).
  std::vector<std::string> first_row(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error("raw prepare failed for '" + sql + "': " + sqlite3_errmsg(db_));
    std::vector<std::string> out{""};
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      out.assign(static_cast<std::size_t>(sqlite3_column_count(stmt)), "");
      for (int i = 0; i < sqlite3_column_count(stmt); ++i)
        if (auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i))) out[static_cast<std::size_t>(i)] = p;
    } else if (rc != SQLITE_DONE) {
      std::string why = sqlite3_errmsg(db_);
      sqlite3_finalize(stmt);
      throw std::runtime_error("raw step failed for '" + sql + "': " + why);
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

SqliteCaseStore open_store(const TempDir& dir, const std::string& synchronous = "full") {
  return SqliteCaseStore(SqliteOptions{dir.path() / "clinicflow.db", synchronous});
}

EventRecord event(std::int64_t seq, TimePoint at, std::string type, std::string step, std::string actor, json::object data = {}) {
  return EventRecord{seq, at, std::move(type), std::move(step), std::move(actor), std::move(data)};
}

CaseRecord projection(const std::string& id, std::int64_t revision, std::string status = "active", std::string stage = "intake",
                      std::string workflow = "test_flow", TimePoint created = 1000, TimePoint updated = 2000) {
  CaseRecord r;
  r.case_id = id;
  r.patient_id = "patient-" + id;
  r.workflow_id = std::move(workflow);
  r.workflow_version = 3;
  r.status = std::move(status);
  r.stage = std::move(stage);
  r.revision = revision;
  r.created_at = created;
  r.updated_at = updated;
  r.state = json::object{{"case_id", id}, {"revision", revision}, {"nested", json::object{{"list", json::array{1, 2.5, "x"}}}}};
  return r;
}

// A new case with `n` events (seq 1..n) and the given timers.
CaseWrite new_case(const std::string& id, int n = 2, std::vector<TimerRecord> timers = {}, std::string status = "active",
                   std::string stage = "intake", std::string workflow = "test_flow") {
  CaseWrite w;
  w.expected_revision = 0;
  for (int i = 1; i <= n; ++i)
    w.events.push_back(event(i, 1000 + i, i == 1 ? "case_opened" : "stage_entered", "", "system", {{"i", i}}));
  w.projection = projection(id, n, std::move(status), std::move(stage), std::move(workflow));
  w.timers = std::move(timers);
  return w;
}

// Appends `n` events to a case at revision `from`.
CaseWrite next_write(const std::string& id, std::int64_t from, int n = 1, std::vector<TimerRecord> timers = {},
                     std::string status = "active", std::string stage = "intake") {
  CaseWrite w;
  w.expected_revision = from;
  for (int i = 1; i <= n; ++i)
    w.events.push_back(event(from + i, 5000 + from + i, "step_completed", "referral", "user:ann", {{"k", from + i}}));
  w.projection = projection(id, from + n, std::move(status), std::move(stage));
  w.projection.updated_at = 5000 + from + n;
  w.timers = std::move(timers);
  return w;
}

void write_one(CaseStore& store, const CaseWrite& w) { store.write(std::span(&w, 1)); }

std::vector<TimerRecord> timers_of(CaseStore& store, const std::string& case_id) {
  std::vector<TimerRecord> out;
  for (auto& t : store.due_timers(std::numeric_limits<TimePoint>::max(), 1'000'000))
    if (t.case_id == case_id) out.push_back(t);
  return out;
}

std::vector<std::string> ids_of(const std::vector<CaseRecord>& cases) {
  std::vector<std::string> out;
  for (const auto& c : cases) out.push_back(c.case_id);
  return out;
}

}  // namespace

TEST_CASE("a fresh database is migrated to the latest schema", "[store][schema]") {
  TempDir dir;
  REQUIRE(SqliteCaseStore::latest_schema_version() >= 1);
  {
    auto store = open_store(dir);
    CHECK(store.schema_version() == SqliteCaseStore::latest_schema_version());
  }
  REQUIRE(fs::exists(dir.path() / "clinicflow.db"));
  RawDb raw(dir.path() / "clinicflow.db");
  CHECK(raw.scalar("PRAGMA user_version") == std::to_string(SqliteCaseStore::latest_schema_version()));
  for (const char* table : {"cases", "events", "timers", "settings"})
    CHECK(raw.scalar(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '") + table + "'") == "1");
  for (const char* trigger : {"events_no_update", "events_no_delete"})
    CHECK(raw.scalar(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = '") + trigger + "'") == "1");
}

TEST_CASE("a store creates the database's missing parent directories", "[store][schema]") {
  TempDir dir;
  fs::path nested = dir.path() / "a" / "b" / "cases.db";
  {
    SqliteCaseStore store(SqliteOptions{nested, "full"});
    CHECK(store.schema_version() == SqliteCaseStore::latest_schema_version());
  }
  CHECK(fs::exists(nested));
}

TEST_CASE("reopening a database keeps its data and does not migrate again", "[store][schema]") {
  TempDir dir;
  std::string schema_before;
  {
    auto store = open_store(dir);
    write_one(store, new_case("c1", 3, {{"c1", "referral", "overdue", 777}}));
    store.write_setting("virtual_clock_now", "12345");
  }
  {
    RawDb raw(dir.path() / "clinicflow.db");
    schema_before = raw.scalar("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master ORDER BY name)");
  }
  {
    // Re-running migration 1 would fail ("table cases already exists") and the constructor would throw.
    auto store = open_store(dir);
    CHECK(store.schema_version() == SqliteCaseStore::latest_schema_version());
    auto c = store.read_case("c1");
    REQUIRE(c);
    CHECK(c->revision == 3);
    CHECK(store.read_events("c1").size() == 3);
    CHECK(timers_of(store, "c1") == std::vector<TimerRecord>{{"c1", "referral", "overdue", 777}});
    CHECK(store.read_setting("virtual_clock_now") == std::optional<std::string>("12345"));
  }
  RawDb raw(dir.path() / "clinicflow.db");
  CHECK(raw.scalar("SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master ORDER BY name)") == schema_before);
  CHECK(raw.scalar("SELECT count(*) FROM cases") == "1");
  CHECK(raw.scalar("SELECT count(*) FROM events") == "3");
}

TEST_CASE("a database written by a newer version is refused", "[store][schema]") {
  TempDir dir;
  { auto store = open_store(dir); }
  const int newer = SqliteCaseStore::latest_schema_version() + 1;
  {
    RawDb raw(dir.path() / "clinicflow.db");
    REQUIRE(raw.exec("PRAGMA user_version = " + std::to_string(newer)) == SQLITE_OK);
  }
  REQUIRE_THROWS_AS(open_store(dir), StoreError);
  CHECK_THROWS_WITH(open_store(dir), Catch::Matchers::Contains("newer") && Catch::Matchers::Contains(std::to_string(newer)));
  // Refusing must not touch the file: its version stays what the newer server wrote.
  RawDb raw(dir.path() / "clinicflow.db");
  CHECK(raw.scalar("PRAGMA user_version") == std::to_string(newer));
}

TEST_CASE("a database that cannot be opened is a StoreError", "[store][schema]") {
  TempDir dir;
  // The path is an existing directory: SQLite cannot open it as a database file.
  fs::create_directory(dir.path() / "is_a_dir");
  CHECK_THROWS_AS(SqliteCaseStore(SqliteOptions{dir.path() / "is_a_dir", "full"}), StoreError);
}

// SQLite opens such a file lazily, so the failure comes from the first PRAGMA, after the handle
// exists; under AddressSanitizer this also checks that the handle is released.
TEST_CASE("a file that is not a database is a StoreError and is left alone", "[store][schema]") {
  TempDir dir;
  const std::string garbage(4096, 'x');
  {
    std::FILE* f = std::fopen((dir.path() / "clinicflow.db").string().c_str(), "wb");
    REQUIRE(f);
    std::fwrite(garbage.data(), 1, garbage.size(), f);
    std::fclose(f);
  }
  CHECK_THROWS_AS(open_store(dir), StoreError);
  CHECK(fs::file_size(dir.path() / "clinicflow.db") == garbage.size());
}

TEST_CASE("the database runs in WAL mode", "[store][durability]") {
  TempDir dir;
  for (const std::string synchronous : {"full", "normal"}) {
    DYNAMIC_SECTION("synchronous=" << synchronous) {
      auto store = open_store(dir, synchronous);
      write_one(store, new_case("c_" + synchronous));
      // journal_mode=WAL is recorded in the file: a separate connection sees it.
      RawDb raw(dir.path() / "clinicflow.db");
      CHECK(raw.scalar("PRAGMA journal_mode") == "wal");
      // While the store is open and has committed, the write-ahead log exists next to the database.
      CHECK(fs::exists(dir.path() / "clinicflow.db-wal"));
      CHECK(raw.scalar("SELECT revision FROM cases WHERE case_id = 'c_" + synchronous + "'") == "2");
    }
  }
  // synchronous is a per-connection setting; it cannot be observed from another connection, so
  // it is not asserted here.
}

TEST_CASE("a new case is written and read back exactly", "[store][write]") {
  TempDir dir;
  auto store = open_store(dir);
  CHECK_FALSE(store.read_case("c1"));
  CHECK(store.read_events("c1").empty());

  CaseWrite w;
  w.expected_revision = 0;
  w.events = {
      event(1, 1'700'000'000'000, "case_opened", "", "user:ann",
            {{"workflow", "test_flow"}, {"version", 3}, {"patient_id", "p\"1\" ünï"}}),
      event(2, 1'700'000'000'000, "stage_entered", "", "system", {{"stage", "intake"}, {"repetition", 0}}),
      event(3, 1'700'000'000'500, "step_opened", "referral", "system",
            {{"due", 1'700'172'800'000},
             {"nested", json::object{{"a", json::array{1, -2, 3.25, true, nullptr, "s"}}, {"b", json::object{}}}}}),
  };
  w.projection = projection("c1", 3, "active", "intake", "test_flow", 1'700'000'000'000, 1'700'000'000'500);
  w.timers = {{"c1", "referral", "overdue", 1'700'172'800'000}, {"c1", "coverage", "open", 1'700'000'100'000}};
  write_one(store, w);

  auto c = store.read_case("c1");
  REQUIRE(c);
  CHECK(c->case_id == "c1");
  CHECK(c->patient_id == "patient-c1");
  CHECK(c->workflow_id == "test_flow");
  CHECK(c->workflow_version == 3);
  CHECK(c->status == "active");
  CHECK(c->stage == "intake");
  CHECK(c->revision == 3);
  CHECK(c->created_at == 1'700'000'000'000);
  CHECK(c->updated_at == 1'700'000'000'500);
  CHECK(json::value(c->state) == json::value(w.projection.state));

  auto events = store.read_events("c1");
  REQUIRE(events.size() == 3);
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO("event " << i);
    CHECK(events[i].seq == w.events[i].seq);
    CHECK(events[i].at == w.events[i].at);
    CHECK(events[i].type == w.events[i].type);
    CHECK(events[i].step == w.events[i].step);
    CHECK(events[i].actor == w.events[i].actor);
    CHECK(json::value(events[i].data) == json::value(w.events[i].data));
  }
  CHECK(events[0].data.at("patient_id").as_string() == "p\"1\" ünï");
  CHECK(events[2].data.at("nested").at("a").as_array()[2].as_double() == 3.25);

  // Timers come back earliest first.
  CHECK(timers_of(store, "c1") == std::vector<TimerRecord>{{"c1", "coverage", "open", 1'700'000'100'000},
                                                            {"c1", "referral", "overdue", 1'700'172'800'000}});

  // An update appends to the log; events stay in seq order.
  write_one(store, next_write("c1", 3, 2));
  events = store.read_events("c1");
  REQUIRE(events.size() == 5);
  for (std::size_t i = 0; i < events.size(); ++i) CHECK(events[i].seq == static_cast<std::int64_t>(i + 1));
  CHECK(events[3].type == "step_completed");
  CHECK(events[3].actor == "user:ann");
  CHECK(events[4].data.at("k").as_int64() == 5);
  c = store.read_case("c1");
  REQUIRE(c);
  CHECK(c->revision == 5);
  CHECK(c->updated_at == 5005);
  CHECK(c->created_at == 1'700'000'000'000);  // an update never moves the creation time
  CHECK(c->patient_id == "patient-c1");

  // Another case's events never mix in.
  write_one(store, new_case("c0", 1));
  CHECK(store.read_events("c1").size() == 5);
  CHECK(store.read_events("c0").size() == 1);
}

TEST_CASE("a stale expected revision is a conflict and changes nothing", "[store][conflict]") {
  TempDir dir;
  auto store = open_store(dir);
  write_one(store, new_case("a", 2, {{"a", "referral", "overdue", 100}}));
  write_one(store, next_write("a", 2, 1, {{"a", "referral", "overdue", 200}}));  // now at 3

  SECTION("behind") { CHECK_THROWS_AS(write_one(store, next_write("a", 2, 1, {{"a", "x", "open", 1}})), RevisionConflict); }
  SECTION("ahead") { CHECK_THROWS_AS(write_one(store, next_write("a", 4, 1, {{"a", "x", "open", 1}})), RevisionConflict); }
  SECTION("no such case") {
    CHECK_THROWS_AS(write_one(store, next_write("ghost", 1, 1)), RevisionConflict);
    CHECK_FALSE(store.read_case("ghost"));
    CHECK(store.read_events("ghost").empty());
  }

  auto c = store.read_case("a");
  REQUIRE(c);
  CHECK(c->revision == 3);
  CHECK(store.read_events("a").size() == 3);
  CHECK(timers_of(store, "a") == std::vector<TimerRecord>{{"a", "referral", "overdue", 200}});
  // The store still works after a failed write (its transaction was rolled back, not left open).
  write_one(store, next_write("a", 3));
  CHECK(store.read_case("a")->revision == 4);
}

TEST_CASE("a batch commits all of its writes or none", "[store][conflict][atomic]") {
  TempDir dir;
  auto store = open_store(dir);
  write_one(store, new_case("a", 2, {{"a", "referral", "overdue", 100}}));

  SECTION("the second write conflicts: the first (a new case) is not written") {
    std::vector<CaseWrite> batch{new_case("b", 2, {{"b", "session", "open", 50}}), next_write("a", 1)};
    CHECK_THROWS_AS(store.write(batch), RevisionConflict);
    CHECK_FALSE(store.read_case("b"));
    CHECK(store.read_events("b").empty());
    CHECK(timers_of(store, "b").empty());
  }
  SECTION("the second write conflicts: the first (an update) is rolled back") {
    std::vector<CaseWrite> batch{next_write("a", 2, 2, {{"a", "x", "open", 5}}), new_case("a", 1)};
    CHECK_THROWS_AS(store.write(batch), RevisionConflict);
  }
  SECTION("a write fails on a duplicate event seq after its case row was updated") {
    CaseWrite bad = next_write("a", 2, 1, {{"a", "x", "open", 5}});
    bad.events.front().seq = 2;  // already stored: the UNIQUE (case_id, seq) constraint fails
    std::vector<CaseWrite> batch{new_case("b", 1), bad};
    CHECK_THROWS_AS(store.write(batch), StoreError);
    CHECK_FALSE(store.read_case("b"));
    CHECK(store.read_events("b").empty());
  }

  auto a = store.read_case("a");
  REQUIRE(a);
  CHECK(a->revision == 2);
  auto events = store.read_events("a");
  REQUIRE(events.size() == 2);
  CHECK(events.back().type == "stage_entered");
  CHECK(timers_of(store, "a") == std::vector<TimerRecord>{{"a", "referral", "overdue", 100}});

  // A good batch of several cases commits them all.
  std::vector<CaseWrite> good{new_case("c", 1), next_write("a", 2), new_case("d", 3)};
  store.write(good);
  CHECK(store.read_case("a")->revision == 3);
  CHECK(store.read_events("c").size() == 1);
  CHECK(store.read_events("d").size() == 3);
}

TEST_CASE("creating a case whose id exists is a conflict", "[store][conflict]") {
  TempDir dir;
  auto store = open_store(dir);
  write_one(store, new_case("a", 2, {{"a", "referral", "overdue", 100}}));
  CaseWrite again = new_case("a", 1, {{"a", "other", "open", 1}});
  again.projection.patient_id = "someone else";
  CHECK_THROWS_AS(write_one(store, again), RevisionConflict);
  auto a = store.read_case("a");
  REQUIRE(a);
  CHECK(a->patient_id == "patient-a");
  CHECK(a->revision == 2);
  CHECK(store.read_events("a").size() == 2);
  CHECK(timers_of(store, "a") == std::vector<TimerRecord>{{"a", "referral", "overdue", 100}});
}

TEST_CASE("a group's write for a missing case writes nothing, and every foreign key holds", "[store][conflict][integrity]") {
  // The store's writer does not check foreign keys itself (see SqliteCaseStore's constructor):
  // each write proves its case exists before it adds rows referring to it. This fails if a
  // write ever adds an event, timer or message before that proof.
  TempDir dir;
  auto store = open_store(dir);
  write_one(store, new_case("a", 2, {{"a", "referral", "overdue", 100}}));

  auto with_children = [](CaseWrite w, const std::string& id) {
    w.timers = {{id, "intake", "overdue", 300}, {id, "consent", "open", 400}};
    OutboxMessage m;
    m.id = id + "-1";
    m.case_id = id;
    m.plugin = "outbox_file";
    m.template_name = "reminder";
    m.recipient = "patient";
    w.messages.push_back(m);
    return w;
  };
  std::vector<CaseWrite> group{with_children(next_write("ghost", 4, 2), "ghost"), with_children(next_write("a", 2, 1), "a"),
                               with_children(new_case("b", 1), "b")};
  auto outcome = store.write_group(group);
  REQUIRE(outcome.size() == 3);
  CHECK_THAT(outcome[0], Catch::Matchers::Contains("ghost"));
  CHECK(outcome[1].empty());
  CHECK(outcome[2].empty());

  RawDb raw(dir.path() / "clinicflow.db");
  for (const char* table : {"cases", "events", "timers", "outbox"})
    CHECK(raw.scalar(std::string("SELECT count(*) FROM ") + table + " WHERE case_id = 'ghost'") == "0");
  CHECK(raw.scalar("SELECT count(*) FROM events WHERE case_id = 'a'") == "3");
  CHECK(raw.scalar("SELECT count(*) FROM timers WHERE case_id = 'b'") == "2");
  CHECK(raw.scalar("SELECT count(*) FROM outbox WHERE case_id IN ('a', 'b')") == "2");
  CHECK(raw.scalar("SELECT count(*) FROM pragma_foreign_key_check") == "0");
  // And the schema still declares them, so a connection that enforces them refuses an orphan.
  raw.exec("PRAGMA foreign_keys=ON");
  CHECK(raw.exec("INSERT INTO timers (case_id, step, kind, due_at) VALUES ('ghost', 's', 'open', 1)") == SQLITE_CONSTRAINT);
}

TEST_CASE("events are append-only, even for other connections", "[store][append-only]") {
  TempDir dir;
  auto store = open_store(dir);
  write_one(store, new_case("a", 3));

  RawDb raw(dir.path() / "clinicflow.db");
  std::string error;
  CHECK(raw.exec("UPDATE events SET type = 'forged' WHERE case_id = 'a'", &error) != SQLITE_OK);
  CHECK_THAT(error, Catch::Matchers::Contains("append-only"));
  CHECK(raw.exec("UPDATE events SET data = '{}'", &error) != SQLITE_OK);
  CHECK(raw.exec("DELETE FROM events WHERE seq = 3", &error) != SQLITE_OK);
  CHECK_THAT(error, Catch::Matchers::Contains("append-only"));
  CHECK(raw.exec("DELETE FROM events", &error) != SQLITE_OK);
  CHECK(raw.scalar("SELECT count(*) FROM events") == "3");

  auto events = store.read_events("a");
  REQUIRE(events.size() == 3);
  CHECK(events[0].type == "case_opened");
  CHECK(events[2].type == "stage_entered");
  CHECK(events[2].data.at("i").as_int64() == 3);
}

TEST_CASE("due timers come earliest first, then by case id", "[store][timers]") {
  TempDir dir;
  auto store = open_store(dir);
  CHECK_FALSE(store.next_timer_due());
  CHECK(store.due_timers(std::numeric_limits<TimePoint>::max(), 100).empty());

  write_one(store, new_case("c", 1, {{"c", "s1", "open", 300}, {"c", "s2", "overdue", 100}}));
  write_one(store, new_case("a", 1, {{"a", "s1", "overdue", 300}, {"a", "s9", "open", 500}}));
  write_one(store, new_case("b", 1, {{"b", "s1", "open", 200}, {"b", "s2", "overdue", 300}}));
  write_one(store, new_case("d", 1));  // no timers

  CHECK(store.next_timer_due() == std::optional<TimePoint>(100));
  CHECK(store.due_timers(99, 100).empty());
  CHECK(store.due_timers(100, 100) == std::vector<TimerRecord>{{"c", "s2", "overdue", 100}});
  CHECK(store.due_timers(300, 100) == std::vector<TimerRecord>{{"c", "s2", "overdue", 100},
                                                                {"b", "s1", "open", 200},
                                                                {"a", "s1", "overdue", 300},
                                                                {"b", "s2", "overdue", 300},
                                                                {"c", "s1", "open", 300}});
  CHECK(store.due_timers(299, 100).size() == 2);
  CHECK(store.due_timers(1000, 100).size() == 6);
  CHECK(store.due_timers(1000, 100).back() == TimerRecord{"a", "s9", "open", 500});

  SECTION("limit") {
    CHECK(store.due_timers(1000, 3) == std::vector<TimerRecord>{{"c", "s2", "overdue", 100},
                                                                 {"b", "s1", "open", 200},
                                                                 {"a", "s1", "overdue", 300}});
    CHECK(store.due_timers(1000, 1).size() == 1);
    CHECK(store.due_timers(1000, 0).empty());
  }
  SECTION("a later write of a case replaces its whole timer set") {
    write_one(store, next_write("c", 1, 1, {{"c", "s3", "open", 250}}));
    CHECK(timers_of(store, "c") == std::vector<TimerRecord>{{"c", "s3", "open", 250}});
    CHECK(store.next_timer_due() == std::optional<TimePoint>(200));
    CHECK(store.due_timers(1000, 100).size() == 5);
    // Other cases' timers are untouched.
    CHECK(timers_of(store, "a") == std::vector<TimerRecord>{{"a", "s1", "overdue", 300}, {"a", "s9", "open", 500}});
    CHECK(timers_of(store, "b") == std::vector<TimerRecord>{{"b", "s1", "open", 200}, {"b", "s2", "overdue", 300}});

    // A write with no timers clears the case's timers.
    write_one(store, next_write("b", 1));
    CHECK(timers_of(store, "b").empty());
    CHECK(store.next_timer_due() == std::optional<TimePoint>(250));
    write_one(store, next_write("c", 2));
    write_one(store, next_write("a", 1));
    CHECK_FALSE(store.next_timer_due());
    CHECK(store.due_timers(std::numeric_limits<TimePoint>::max(), 100).empty());
  }
  SECTION("a failed write keeps the old timer set") {
    CHECK_THROWS_AS(write_one(store, next_write("c", 7, 1, {{"c", "s3", "open", 1}})), RevisionConflict);
    CHECK(timers_of(store, "c") == std::vector<TimerRecord>{{"c", "s2", "overdue", 100}, {"c", "s1", "open", 300}});
    CHECK(store.next_timer_due() == std::optional<TimePoint>(100));
  }
}

TEST_CASE("query_cases filters and pages in case-id order", "[store][query]") {
  TempDir dir;
  auto store = open_store(dir);
  // Written out of id order on purpose.
  write_one(store, new_case("c05", 1, {}, "active", "intake", "flow_a"));
  write_one(store, new_case("c02", 1, {}, "completed", "follow_up", "flow_a"));
  write_one(store, new_case("c07", 1, {}, "active", "series", "flow_b"));
  write_one(store, new_case("c01", 1, {}, "active", "series", "flow_a"));
  write_one(store, new_case("c04", 1, {}, "closed", "intake", "flow_b"));
  write_one(store, new_case("c03", 1, {}, "active", "intake", "flow_b"));
  write_one(store, new_case("c06", 1, {}, "active", "series", "flow_a"));

  CaseQuery all;
  CHECK(ids_of(store.query_cases(all)) == std::vector<std::string>{"c01", "c02", "c03", "c04", "c05", "c06", "c07"});

  CaseQuery active;
  active.status = "active";
  CHECK(ids_of(store.query_cases(active)) == std::vector<std::string>{"c01", "c03", "c05", "c06", "c07"});

  CaseQuery series;
  series.stage = "series";
  CHECK(ids_of(store.query_cases(series)) == std::vector<std::string>{"c01", "c06", "c07"});

  CaseQuery flow_b;
  flow_b.workflow_id = "flow_b";
  CHECK(ids_of(store.query_cases(flow_b)) == std::vector<std::string>{"c03", "c04", "c07"});

  CaseQuery combined;
  combined.status = "active";
  combined.stage = "intake";
  combined.workflow_id = "flow_a";
  CHECK(ids_of(store.query_cases(combined)) == std::vector<std::string>{"c05"});

  CaseQuery none;
  none.status = "no_such_status";
  CHECK(store.query_cases(none).empty());

  // The rows carry the full projection.
  auto rows = store.query_cases(combined);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].patient_id == "patient-c05");
  CHECK(rows[0].workflow_version == 3);
  CHECK(rows[0].state.at("case_id").as_string() == "c05");

  SECTION("paging with after + limit visits every case once, in order") {
    CaseQuery page;
    page.limit = 3;
    std::vector<std::vector<std::string>> pages;
    for (;;) {
      auto got = store.query_cases(page);
      if (got.empty()) break;
      REQUIRE(got.size() <= 3);
      pages.push_back(ids_of(got));
      page.after = got.back().case_id;
      REQUIRE(pages.size() < 10);
    }
    CHECK(pages == std::vector<std::vector<std::string>>{{"c01", "c02", "c03"}, {"c04", "c05", "c06"}, {"c07"}});
  }
  SECTION("paging combines with a filter") {
    CaseQuery page;
    page.status = "active";
    page.limit = 2;
    CHECK(ids_of(store.query_cases(page)) == std::vector<std::string>{"c01", "c03"});
    page.after = "c03";
    CHECK(ids_of(store.query_cases(page)) == std::vector<std::string>{"c05", "c06"});
    page.after = "c06";
    CHECK(ids_of(store.query_cases(page)) == std::vector<std::string>{"c07"});
    page.after = "c07";
    CHECK(store.query_cases(page).empty());
  }
  SECTION("the cursor need not be an existing id") {
    CaseQuery page;
    page.after = "c035";
    page.limit = 2;
    CHECK(ids_of(store.query_cases(page)) == std::vector<std::string>{"c04", "c05"});
  }
  SECTION("filters see updates") {
    write_one(store, next_write("c05", 1, 1, {}, "closed", "intake"));
    CHECK(ids_of(store.query_cases(active)) == std::vector<std::string>{"c01", "c03", "c06", "c07"});
  }
}

TEST_CASE("a write's status is stored whether or not it names the status it read", "[store][query]") {
  TempDir dir;
  auto store = open_store(dir);
  write_one(store, new_case("a", 1));
  write_one(store, new_case("b", 1));
  auto listed = [&](const std::string& status) {
    CaseQuery q;
    q.status = status;
    return ids_of(store.query_cases(q));
  };
  using Ids = std::vector<std::string>;

  CaseWrite same = next_write("a", 1, 1, {}, "active", "consent");  // status unchanged
  same.expected_status = "active";
  CaseWrite closing = next_write("b", 1, 1, {}, "closed", "intake");  // status changed
  closing.expected_status = "active";
  std::vector<CaseWrite> group{same, closing};
  CHECK(store.write_group(group) == std::vector<std::string>{"", ""});
  CHECK(store.read_case("a")->status == "active");
  CHECK(store.read_case("a")->stage == "consent");
  CHECK(store.read_case("b")->status == "closed");
  CHECK(listed("active") == Ids{"a"});
  CHECK(listed("closed") == Ids{"b"});

  // And a write that does not say what it read (a write built outside the engine).
  write_one(store, next_write("a", 2, 1, {}, "completed", "done"));
  CHECK(store.read_case("a")->status == "completed");
  CHECK(listed("completed") == Ids{"a"});
  CHECK(listed("active").empty());

  RawDb raw(dir.path() / "clinicflow.db");
  CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
}

TEST_CASE("settings round-trip and overwrite", "[store][settings]") {
  TempDir dir;
  {
    auto store = open_store(dir);
    CHECK_FALSE(store.read_setting("virtual_clock_now"));
    store.write_setting("virtual_clock_now", "1700000000000");
    store.write_setting("other", "");
    CHECK(store.read_setting("virtual_clock_now") == std::optional<std::string>("1700000000000"));
    CHECK(store.read_setting("other") == std::optional<std::string>(""));
    store.write_setting("virtual_clock_now", "1700000000999");
    CHECK(store.read_setting("virtual_clock_now") == std::optional<std::string>("1700000000999"));
    CHECK_FALSE(store.read_setting("Virtual_clock_now"));
  }
  auto store = open_store(dir);
  CHECK(store.read_setting("virtual_clock_now") == std::optional<std::string>("1700000000999"));
  CHECK(store.read_setting("other") == std::optional<std::string>(""));
  RawDb raw(dir.path() / "clinicflow.db");
  CHECK(raw.scalar("SELECT count(*) FROM settings WHERE key = 'virtual_clock_now'") == "1");
}

TEST_CASE("a case's messages are listed in the order they were queued", "[store][outbox]") {
  TempDir dir;
  SqliteCaseStore store(SqliteOptions{dir.path() / "test.db", "normal"});
  CaseWrite w = new_case("c1");
  // Twelve messages queued by one command, at one time: ids c1-2 ... c1-13 sort differently
  // as text ("c1-10" < "c1-2"), so only the queue order can be the listing order.
  for (int i = 2; i <= 13; ++i) {
    OutboxMessage m;
    m.id = "c1-" + std::to_string(i);
    m.case_id = "c1";
    m.plugin = "outbox_file";
    m.template_name = "t" + std::to_string(i);
    m.recipient = "patient";
    m.created_at = 100;
    m.next_attempt_at = 100;
    w.messages.push_back(m);
  }
  write_one(store, w);
  auto listed = store.case_messages("c1");
  REQUIRE(listed.size() == 12);
  for (int i = 0; i < 12; ++i) CHECK(listed[i].id == "c1-" + std::to_string(i + 2));
}

namespace {

// The log's checkpoint sequence number (bytes 12-15 of its header, big-endian): SQLite adds
// one each time it starts the log over from its beginning.
std::uint32_t wal_generation(const fs::path& wal) {
  std::ifstream in(wal, std::ios::binary);
  unsigned char header[16] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (!in) throw std::runtime_error("cannot read the header of " + wal.string());
  return (std::uint32_t{header[12]} << 24) | (std::uint32_t{header[13]} << 16) | (std::uint32_t{header[14]} << 8) |
         std::uint32_t{header[15]};
}

// `count` new cases whose stored state is `bytes` long, so each fills a page of its own.
std::vector<CaseWrite> bulky_cases(int first, int count, std::size_t bytes) {
  std::vector<CaseWrite> out;
  for (int i = first; i < first + count; ++i) {
    CaseWrite w = new_case("c_bulk_" + std::to_string(i), 1);
    w.projection.state["padding"] = std::string(bytes, 'x');
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace

TEST_CASE("group commits leave the checkpoint to maintain(), which keeps the log bounded", "[store][checkpoint]") {
  TempDir dir;
  auto store = open_store(dir, "normal");  // the checkpoint does not depend on the fsync mode
  const fs::path db = dir.path() / "clinicflow.db", wal = dir.path() / "clinicflow.db-wal";
  const std::uintmax_t page = std::stoull(RawDb(db).scalar("PRAGMA page_size"));
  const std::uintmax_t frame = page + 24;  // each log frame: a 24-byte header and the page
  const int groups = 300, per_group = 10;
  const auto threshold = static_cast<std::uintmax_t>(SqliteCaseStore::kCheckpointFrames);

  SECTION("without maintain() the log only grows: no commit copies it back") {
    const std::uintmax_t db_before = fs::file_size(db);
    for (int g = 0; g < groups; ++g) store.write_group(bulky_cases(g * per_group, per_group, 3000));
    CHECK(fs::file_size(wal) > 2 * threshold * frame);
    CHECK(fs::file_size(db) == db_before);  // every page written is still only in the log
    CHECK(fs::file_size(wal) > SqliteCaseStore::kCheckpointFramesLimit * frame);
    store.maintain();  // past the limit the writer copies it all at once: the pages reach the database
    CHECK(store.checkpoint_counts().by_writer == 1);
    CHECK(store.checkpoint_counts().background == 0);
    CHECK(fs::file_size(db) > (groups * per_group / 2) * page);
  }
  SECTION("with maintain() after each group the log is reused and stays under the limit") {
    const auto limit = static_cast<std::uintmax_t>(SqliteCaseStore::kCheckpointFramesLimit);
    std::uintmax_t largest_group = 0, before = 0;
    for (int g = 0; g < groups; ++g) {
      store.write_group(bulky_cases(g * per_group, per_group, 3000));
      std::uintmax_t now = fs::file_size(wal);
      if (now > before) largest_group = std::max(largest_group, now - before);
      before = now;
      store.maintain();
    }
    INFO("log " << fs::file_size(wal) << " bytes; largest group " << largest_group << " bytes");
    CHECK(fs::file_size(wal) <= limit * frame + 2 * largest_group + 32);
    CHECK(store.checkpoint_counts().background > 0);
    CHECK(RawDb(db).scalar("SELECT count(*) FROM cases") == std::to_string(groups * per_group));
  }
  SECTION("the background copies the log, and the log starts again from its beginning") {
    int g = 0;
    while (fs::file_size(wal) < (threshold + 50) * frame) store.write_group(bulky_cases(g++ * per_group, per_group, 3000));
    const std::uintmax_t db_before = fs::file_size(db);
    const std::uint32_t generation = wal_generation(wal);
    store.maintain();  // under the limit: hands the copy to the background thread
    CHECK(store.checkpoint_counts().background == 1);
    CHECK(store.checkpoint_counts().by_writer == 0);
    store.write_group(bulky_cases(g++ * per_group, per_group, 3000));
    // Either the copy ended before that write began (SQLite then started the log over by
    // itself), or it ends later and maintain() copies what was committed meanwhile, after which
    // the next write starts the log over. (The loop guards against hanging; it times nothing.)
    for (int tries = 0; wal_generation(wal) == generation && tries < 30'000; ++tries) {
      store.maintain();
      if (store.checkpoint_counts().by_writer > 0) store.write_group(bulky_cases(g++ * per_group, per_group, 3000));
      else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(wal_generation(wal) != generation);
    CHECK(store.checkpoint_counts().background == 1);  // no second round was needed
    CHECK(store.checkpoint_counts().by_writer <= 1);
    CHECK(fs::file_size(db) > db_before + threshold / 2 * page);  // the pages reached the database
    CHECK(RawDb(db).scalar("SELECT count(*) FROM cases") == std::to_string(g * per_group));
  }
  SECTION("past the limit the writer waits for the background copy and copies the rest") {
    int g = 0;
    while (fs::file_size(wal) < (threshold + 50) * frame) store.write_group(bulky_cases(g++ * per_group, per_group, 3000));
    store.maintain();  // starts the background copy
    REQUIRE(store.checkpoint_counts().background == 1);
    const std::uint32_t generation = wal_generation(wal);
    // One big group takes the log past the limit, whether or not the copy has ended.
    const int big = SqliteCaseStore::kCheckpointFramesLimit;  // a page each, and more
    store.write_group(bulky_cases(1'000'000, big, 3000));
    store.maintain();
    CHECK(store.checkpoint_counts().by_writer == 1);
    store.write_group(bulky_cases(g++ * per_group, per_group, 3000));
    CHECK(wal_generation(wal) != generation);  // everything was copied: the log started over
  }
}

TEST_CASE("the background checkpointer runs one copy at a time and reports each end once", "[store][checkpoint]") {
  TempDir dir;
  auto store = open_store(dir, "normal");
  const fs::path db = dir.path() / "clinicflow.db";
  for (int g = 0; g < 20; ++g) store.write_group(bulky_cases(g * 10, 10, 3000));  // under every threshold
  const std::uintmax_t db_before = fs::file_size(db);

  WalCheckpointer checkpointer(db, "normal");
  CHECK_FALSE(checkpointer.finished());  // nothing started
  REQUIRE(checkpointer.start());
  CHECK_FALSE(checkpointer.start());  // one at a time: running, or ended and not yet collected
  bool ended = false;
  for (int tries = 0; !ended && tries < 30'000; ++tries) {  // a guard against hanging, not a timing check
    ended = checkpointer.finished();
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(ended);
  CHECK_FALSE(checkpointer.finished());  // reported once
  CHECK(fs::file_size(db) > db_before + 100 * 3000);  // the 200 cases' pages reached the database
  CHECK(checkpointer.start());  // and it can run again
}

TEST_CASE("the log's writes are gathered without losing, reordering or hiding any", "[store][vfs]") {
  REQUIRE(wal_write_vfs() != nullptr);  // else connections would silently use the default VFS
  TempDir dir;
  const fs::path db = dir.path() / "gathered.db";
  for (const std::string synchronous : {"full", "normal"}) {
    DYNAMIC_SECTION("synchronous=" << synchronous) {
      SqliteConnection c(db, synchronous);
      {
        auto spill = c.prepare("PRAGMA cache_spill");
        REQUIRE(spill.step());
        CHECK(spill.integer(0) == 0);  // the VFS's precondition: no frames before the commit
      }
      c.exec("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
      c.exec("DELETE FROM t");
      // Far more pages than the page cache holds, in one transaction, several times over.
      c.exec("PRAGMA cache_size=10");
      c.exec("BEGIN IMMEDIATE");
      for (int round = 0; round < 3; ++round)
        for (int k = 0; k < 400; ++k) {
          auto s = c.prepare("INSERT INTO t (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
          s.bind(1, std::int64_t{k}).bind(2, std::string(300, static_cast<char>('a' + round)) + std::to_string(k));
          s.step();
        }
      c.exec("COMMIT");
      // Another connection on the default VFS sees the commit at once, whatever the sync mode
      // (with "normal" nothing is synced: the gathered frames go out at the commit frame).
      RawDb raw(db);
      CHECK(raw.scalar("SELECT count(*) FROM t") == "400");
      CHECK(raw.scalar("SELECT count(*) FROM t WHERE v = printf('%.300c%d', 'c', k)") == "400");
      CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
      // Small transactions, each visible to the other connection right after it commits.
      for (int k = 0; k < 50; ++k) {
        auto s = c.prepare("UPDATE t SET v = ?2 WHERE k = ?1");
        s.bind(1, std::int64_t{k}).bind(2, std::string("x") + std::to_string(k));
        s.step();
        REQUIRE(raw.scalar("SELECT v FROM t WHERE k = " + std::to_string(k)) == "x" + std::to_string(k));
      }
      // What a crash leaves: the files as they are now, opened afresh (recovery reads the log's
      // frame headers and checksums), hold every commit.
      const fs::path copy = dir.path() / ("crash-" + synchronous + ".db");
      fs::copy_file(db, copy, fs::copy_options::overwrite_existing);
      fs::copy_file(dir.path() / "gathered.db-wal", copy.string() + "-wal", fs::copy_options::overwrite_existing);
      RawDb recovered(copy);
      CHECK(recovered.scalar("SELECT count(*) FROM t") == "400");
      CHECK(recovered.scalar("SELECT v FROM t WHERE k = 49") == "x49");
      CHECK(recovered.scalar("PRAGMA integrity_check") == "ok");
    }
  }
}

TEST_CASE("a transaction that rolls back leaves nothing to overwrite another connection's commits", "[store][vfs]") {
  TempDir dir;
  const fs::path db = dir.path() / "rollback.db";
  SqliteConnection c(db, "normal");
  c.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  c.exec("PRAGMA cache_size=10");
  c.exec("BEGIN IMMEDIATE");
  for (int k = 0; k < 400; ++k) {  // far more pages than the cache holds
    auto s = c.prepare("INSERT INTO t (k, v) VALUES (?1, ?2)");
    s.bind(1, std::int64_t{k}).bind(2, std::string(300, 'r'));
    s.step();
  }
  c.exec("ROLLBACK");
  RawDb other(db);  // commits where the rolled-back frames would have gone
  REQUIRE(other.exec("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300) "
                        "INSERT INTO t (k, v) SELECT x, 'other' FROM n") == SQLITE_OK);
  c.exec("INSERT INTO t (k, v) VALUES (1000, 'mine')");  // this connection writes to the log again
  RawDb fresh(db);
  CHECK(fresh.scalar("SELECT count(*) FROM t WHERE v = 'other'") == "300");
  CHECK(fresh.scalar("SELECT v FROM t WHERE k = 1000") == "mine");
  CHECK(fresh.scalar("PRAGMA integrity_check") == "ok");
}
