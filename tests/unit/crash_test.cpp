// Crash safety: a worker process drives the engine on a real database and is killed with SIGKILL
// at an arbitrary point, three times over on the same file. After each kill the database must
// hold every acknowledged commit, every case's projection and timers must equal what replaying
// its event log gives, and SQLite must find the file intact.
#include "support/json_object.hpp"
#include "support/temp_dir.hpp"
#include "engine/case_state.hpp"
#include "store/sqlite_case_store.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace clinicflow;

namespace {

constexpr int kReadTimeoutMs = 60'000;

using clinicflow::testing::TempDir;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "status " + std::to_string(status);
}

// The worker process: its stdout is a pipe we read lines from, its stderr goes to a file. The
// destructor kills and reaps it if the test did not, so no test failure leaves a child behind.
class WorkerProcess {
 public:
  WorkerProcess(const fs::path& db, const fs::path& workflow, std::int64_t start_index, const fs::path& stderr_file)
      : stderr_file_(stderr_file) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on fd 1
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::string exe = CLINICFLOW_CRASH_WORKER, db_arg = db.string(), wf_arg = workflow.string(),
                start_arg = std::to_string(start_index);
    char* argv[] = {exe.data(), db_arg.data(), wf_arg.data(), start_arg.data(), nullptr};
    int rc = posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("cannot start " + exe + ": " + std::strerror(rc));
    }
    fd_ = fds[0];
  }
  ~WorkerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (fd_ >= 0) ::close(fd_);
  }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // The next complete line; nullopt at end of file. Throws when nothing arrives within the timeout.
  std::optional<std::string> read_line(int timeout_ms) {
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      if (eof_) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      int n = ::poll(&p, 1, timeout_ms);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
      }
      if (n == 0) throw std::runtime_error("no output from the worker for " + std::to_string(timeout_ms / 1000) + " s; its stderr:\n" + stderr_text());
      char chunk[4096];
      ssize_t got = ::read(fd_, chunk, sizeof chunk);
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        throw std::runtime_error(std::string("read: ") + std::strerror(errno));
      }
      if (got == 0) eof_ = true;
      else buffer_.append(chunk, static_cast<std::size_t>(got));
    }
  }

  // SIGKILL, then reap; returns the wait status.
  int kill_and_reap() {
    ::kill(pid_, SIGKILL);
    return reap();
  }
  int reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
    }
    pid_ = -1;
    return status;
  }
  // Whether the process has already ended on its own (reaps it then).
  std::optional<int> exited() {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    return std::nullopt;
  }

  std::string stderr_text() const { return read_file(stderr_file_); }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
  fs::path stderr_file_;
};

// "ack <case_id> <revision>" -> (case_id, revision)
std::optional<std::pair<std::string, std::int64_t>> parse_ack(const std::string& line) {
  std::istringstream in(line);
  std::string word, case_id;
  long long revision = 0;
  if (!(in >> word >> case_id >> revision) || word != "ack" || revision < 1) return std::nullopt;
  std::string rest;
  if (in >> rest) return std::nullopt;
  return std::make_pair(case_id, static_cast<std::int64_t>(revision));
}

std::string sqlite_scalar(const fs::path& db, const char* sql) {
  sqlite3* handle = nullptr;
  if (sqlite3_open_v2(db.string().c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string why = handle ? sqlite3_errmsg(handle) : "out of memory";
    sqlite3_close(handle);
    throw std::runtime_error("cannot open " + db.string() + ": " + why);
  }
  sqlite3_busy_timeout(handle, 10'000);
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(handle, sql, -1, &stmt, nullptr) == SQLITE_OK) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      out = p ? p : "";
    } else if (rc != SQLITE_DONE) {
      out = std::string("error: ") + sqlite3_errmsg(handle);
    }
  } else {
    out = std::string("error: ") + sqlite3_errmsg(handle);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(handle);
  return out;
}

auto timer_key(const store::TimerRecord& t) { return std::tie(t.due, t.step, t.kind, t.case_id); }

void sort_timers(std::vector<store::TimerRecord>& timers) {
  std::sort(timers.begin(), timers.end(), [](const auto& a, const auto& b) { return timer_key(a) < timer_key(b); });
}

struct Verdict {
  std::size_t cases = 0, events = 0, timers = 0;
  std::size_t timer_events = 0;  // steps opened or marked overdue by the system (timers fired or opened at once)
  std::size_t repeated = 0;      // cases in the second or later repetition of a stage
  std::vector<std::string> problems;

  std::string report() const {
    std::string out;
    for (std::size_t i = 0; i < problems.size() && i < 20; ++i) out += "  " + problems[i] + "\n";
    if (problems.size() > 20) out += "  ... and " + std::to_string(problems.size() - 20) + " more\n";
    return out;
  }
};

std::string timers_text(const std::vector<store::TimerRecord>& timers) {
  std::string out = "[";
  for (const auto& t : timers) out += " " + t.step + "/" + t.kind + "@" + std::to_string(t.due);
  return out + " ]";
}

// Checks everything the database must satisfy after a kill; returns what is wrong (and counts).
Verdict verify_database(const fs::path& db, const std::map<std::string, std::int64_t>& acked) {
  Verdict v;
  auto problem = [&](const std::string& text) { v.problems.push_back(text); };
  store::SqliteCaseStore store(store::SqliteOptions{db, "full"});

  // Whether the case's log is exactly seq 1..revision.
  auto log_is_whole = [&](const std::string& case_id, std::int64_t revision, const std::vector<store::EventRecord>& events) {
    if (events.size() != static_cast<std::size_t>(revision)) {
      problem("case " + case_id + " is at revision " + std::to_string(revision) + " but has " + std::to_string(events.size()) + " events");
      return false;
    }
    for (std::size_t i = 0; i < events.size(); ++i)
      if (events[i].seq != static_cast<std::int64_t>(i + 1)) {
        problem("case " + case_id + ": event " + std::to_string(i + 1) + " has seq " + std::to_string(events[i].seq));
        return false;
      }
    return true;
  };

  // (a) every acknowledged commit is there, with its whole, gapless log.
  for (const auto& [case_id, revision] : acked) {
    auto record = store.read_case(case_id);
    if (!record) {
      problem("acknowledged case " + case_id + " (revision " + std::to_string(revision) + ") is missing");
      continue;
    }
    if (record->revision < revision)
      problem("case " + case_id + " was acknowledged at revision " + std::to_string(revision) + " but is stored at " +
              std::to_string(record->revision));
    log_is_whole(case_id, record->revision, store.read_events(case_id));
  }

  // Every stored timer, grouped by case.
  std::map<std::string, std::vector<store::TimerRecord>> stored_timers;
  auto all_timers = store.due_timers(std::numeric_limits<TimePoint>::max(), 1'000'000);
  for (const auto& t : all_timers) stored_timers[t.case_id].push_back(t);
  v.timers = all_timers.size();

  // (b) every case's projection and timers are exactly what its event log replays to.
  store::CaseQuery page;
  page.limit = 37;
  for (;;) {
    auto cases = store.query_cases(page);
    if (cases.empty()) break;
    for (const auto& record : cases) {
      const std::string& id = record.case_id;
      ++v.cases;
      auto events = store.read_events(id);
      v.events += events.size();
      if (!log_is_whole(id, record.revision, events)) continue;
      for (const auto& e : events)
        if (e.actor == "system" && (e.type == "step_overdue" || e.type == "step_opened")) ++v.timer_events;

      engine::CaseState replayed = engine::replay(id, events);
      json::value expected = clinicflow::testing::json_object(engine::to_json_text(replayed));
      json::value stored = record.state;
      if (expected != stored)
        problem("case " + id + ": stored projection " + json::serialize(stored) + " differs from the replayed " +
                json::serialize(expected));
      // The indexed columns agree with the projection too.
      store::CaseRecord columns = engine::to_columns(replayed);
      if (std::tie(record.patient_id, record.workflow_id, record.workflow_version, record.status, record.stage, record.revision,
                   record.created_at, record.updated_at) !=
          std::tie(columns.patient_id, columns.workflow_id, columns.workflow_version, columns.status, columns.stage,
                   columns.revision, columns.created_at, columns.updated_at))
        problem("case " + id + ": stored columns (status " + record.status + ", stage " + record.stage + ", revision " +
                std::to_string(record.revision) + ") differ from the replayed (status " + columns.status + ", stage " +
                columns.stage + ", revision " + std::to_string(columns.revision) + ")");
      if (replayed.repetition > 1) ++v.repeated;

      auto want = engine::pending_timers(replayed);
      auto have = std::move(stored_timers[id]);
      stored_timers.erase(id);
      sort_timers(want);
      sort_timers(have);
      if (want != have) problem("case " + id + ": stored timers " + timers_text(have) + ", replayed " + timers_text(want));
    }
    page.after = cases.back().case_id;
  }
  // No timer belongs to a case that is not there.
  for (const auto& [case_id, timers] : stored_timers)
    if (!timers.empty()) problem("timers " + timers_text(timers) + " belong to case " + case_id + ", which is not stored");

  // (c) SQLite finds the file intact.
  if (auto check = sqlite_scalar(db, "PRAGMA integrity_check"); check != "ok") problem("integrity_check: " + check);
  if (auto check = sqlite_scalar(db, "PRAGMA foreign_key_check"); !check.empty()) problem("foreign_key_check: " + check);
  return v;
}

// Starts a worker, reads `count` acknowledgements (and whatever else is already in the pipe once
// it is dead), SIGKILLs it at a slightly random moment, and always reaps it.
std::size_t run_and_kill(const fs::path& db, const fs::path& workflow, std::int64_t start_index, std::size_t count,
                         const fs::path& stderr_file, std::map<std::string, std::int64_t>& acked, std::mt19937& rng) {
  std::size_t acks = 0;
  WorkerProcess worker(db, workflow, start_index, stderr_file);
  auto take = [&](const std::string& line) {
    auto ack = parse_ack(line);
    INFO("worker printed: '" << line << "'");
    REQUIRE(ack);
    auto& highest = acked[ack->first];
    highest = std::max(highest, ack->second);
    ++acks;
  };
  while (acks < count) {
    auto line = worker.read_line(kReadTimeoutMs);
    if (!line) {
      int status = worker.reap();
      FAIL("the worker stopped after " << acks << " acknowledgements (" << describe_status(status) << "); its stderr:\n"
                                       << worker.stderr_text());
    }
    take(*line);
  }
  // A little more time, so the kill lands anywhere in a command: before, during or after a commit.
  ::usleep(static_cast<useconds_t>(std::uniform_int_distribution<int>(0, 20'000)(rng)));
  if (auto status = worker.exited())
    FAIL("the worker ended on its own (" << describe_status(*status) << "); its stderr:\n" << worker.stderr_text());
  int status = worker.kill_and_reap();
  INFO("worker stderr:\n" << worker.stderr_text());
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  // Acks already in the pipe were printed after their commits returned: they must hold too.
  while (auto line = worker.read_line(kReadTimeoutMs)) take(*line);
  return acks;
}

void sql(const fs::path& db, const std::string& statement) {
  sqlite3* handle = nullptr;
  REQUIRE(sqlite3_open_v2(db.string().c_str(), &handle, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  char* message = nullptr;
  int rc = sqlite3_exec(handle, statement.c_str(), nullptr, nullptr, &message);
  std::string why = message ? message : "";
  sqlite3_free(message);
  sqlite3_close(handle);
  INFO(statement << ": " << why);
  REQUIRE(rc == SQLITE_OK);
}

bool mentions(const Verdict& v, const std::string& a, const std::string& b) {
  return std::any_of(v.problems.begin(), v.problems.end(),
                     [&](const std::string& p) { return p.find(a) != std::string::npos && p.find(b) != std::string::npos; });
}

}  // namespace

TEST_CASE("committed work survives SIGKILL at any point", "[crash]") {
  TempDir dir;
  const fs::path db = dir.path() / "crash.db";
  const fs::path workflow = fs::path(CLINICFLOW_TEST_DATA) / "workflows" / "full.toml";
  REQUIRE(fs::exists(CLINICFLOW_CRASH_WORKER));
  REQUIRE(fs::exists(workflow));

  struct Round {
    std::size_t acks;  // kill after this many acknowledgements (varied so the kill lands elsewhere)
    std::int64_t start_index;
  };
  const Round rounds[] = {{40, 0}, {75, 100'000}, {120, 200'000}};

  std::map<std::string, std::int64_t> acked;  // case -> highest acknowledged revision, over all rounds
  std::mt19937 rng(std::random_device{}());
  Verdict verdict;
  std::size_t previous_cases = 0;

  for (std::size_t r = 0; r < std::size(rounds); ++r) {
    INFO("round " << (r + 1) << " of " << std::size(rounds));
    const fs::path stderr_file = dir.path() / ("worker_" + std::to_string(r + 1) + ".stderr");
    std::size_t acks = run_and_kill(db, workflow, rounds[r].start_index, rounds[r].acks, stderr_file, acked, rng);
    CHECK(acks >= rounds[r].acks);

    verdict = verify_database(db, acked);
    INFO("cases " << verdict.cases << ", events " << verdict.events << ", pending timers " << verdict.timers);
    INFO("problems:\n" << verdict.report());
    CHECK(verdict.problems.empty());
    CHECK(verdict.cases >= acked.size());
    CHECK(verdict.cases > previous_cases);  // each round added cases; none was lost
    previous_cases = verdict.cases;
  }

  // The stream really did exercise timers and repeated stages, so the checks above covered them.
  INFO("cases " << verdict.cases << ", events " << verdict.events << ", pending timers " << verdict.timers);
  CHECK(verdict.timer_events > 0);
  CHECK(verdict.repeated > 0);
  CHECK(verdict.timers > 0);
}

// The checker above must be able to fail: damage a database the worker left behind in the ways a
// broken store could, and each damage must be reported.
TEST_CASE("the crash checker notices a damaged database", "[crash]") {
  TempDir dir;
  const fs::path db = dir.path() / "crash.db";
  const fs::path workflow = fs::path(CLINICFLOW_TEST_DATA) / "workflows" / "full.toml";
  std::map<std::string, std::int64_t> acked;
  std::mt19937 rng(12345);
  run_and_kill(db, workflow, 0, 60, dir.path() / "worker.stderr", acked, rng);

  Verdict clean = verify_database(db, acked);
  INFO("problems:\n" << clean.report());
  REQUIRE(clean.problems.empty());
  REQUIRE(clean.cases >= 2);

  // Two cases to damage: one with a pending timer (if any) and another.
  std::string with_timer = sqlite_scalar(db, "SELECT case_id FROM timers ORDER BY case_id LIMIT 1");
  std::string other = sqlite_scalar(db, ("SELECT case_id FROM cases WHERE case_id <> '" + with_timer + "' ORDER BY case_id LIMIT 1").c_str());
  REQUIRE_FALSE(other.empty());

  SECTION("a projection that differs from its log") {
    sql(db, "UPDATE cases SET state = replace(state, '\"patient_id\":\"p', '\"patient_id\":\"q') WHERE case_id = '" + other + "'");
    CHECK(mentions(verify_database(db, acked), other, "differs from the replayed"));
  }
  SECTION("a status column that differs from the projection") {
    sql(db, "UPDATE cases SET status = 'bogus' WHERE case_id = '" + other + "'");
    CHECK(mentions(verify_database(db, acked), other, "stored columns"));
  }
  SECTION("a revision ahead of the log") {
    sql(db, "UPDATE cases SET revision = revision + 1 WHERE case_id = '" + other + "'");
    CHECK(mentions(verify_database(db, acked), other, "events"));
  }
  SECTION("a lost acknowledged revision") {
    acked[other] = std::stoll(sqlite_scalar(db, ("SELECT revision FROM cases WHERE case_id = '" + other + "'").c_str())) + 1;
    CHECK(mentions(verify_database(db, acked), other, "was acknowledged at revision"));
  }
  SECTION("a lost acknowledged case") {
    acked["c_never_stored"] = 1;
    CHECK(mentions(verify_database(db, acked), "c_never_stored", "is missing"));
  }
  SECTION("a timer too many") {
    sql(db, "INSERT INTO timers (case_id, step, kind, due_at) VALUES ('" + other + "', 'nowhere', 'open', 42)");
    CHECK(mentions(verify_database(db, acked), other, "nowhere/open@42"));
  }
  SECTION("a timer missing") {
    if (with_timer.empty()) {
      WARN("the worker left no pending timer to delete");
    } else {
      sql(db, "DELETE FROM timers WHERE case_id = '" + with_timer + "'");
      CHECK(mentions(verify_database(db, acked), with_timer, "stored timers [ ]"));
    }
  }
  SECTION("a timer of a case that does not exist") {
    sql(db, "PRAGMA foreign_keys = OFF; INSERT INTO timers (case_id, step, kind, due_at) VALUES ('c_ghost', 's', 'open', 1)");
    auto v = verify_database(db, acked);
    CHECK(mentions(v, "c_ghost", "which is not stored"));
    CHECK(mentions(v, "foreign_key_check", "timers"));
  }
}
