// `clinicflow simulate` driven as a clinic would drive it: the real CLI binary, on a purpose-made
// workflow (tests/data/simulate/clinic.toml) with the test plugins, its --json summary read back
// and checked against what the workflow must produce. Nothing here measures time.
#include "support/temp_dir.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using clinicflow::testing::TempDir;

const std::string kWorkflow = "tests/data/simulate/clinic.toml";  // relative to the source tree, where the CLI runs

struct Result {
  int status = -1;
  std::string out, err;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string quote(const std::string& arg) {
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class Cli {
 public:
  Cli() : tmp_("clinicflow-simulate-test") {
    std::string config = read_file(std::filesystem::path(CLINICFLOW_TEST_DATA) / "simulate/config.toml");
    replace_all(config, "@PLUGIN_DIR@", CLINICFLOW_TEST_PLUGIN_DIR);
    replace_all(config, "@TMP@", tmp_.path().string());
    config_ = write("config.toml", config);
  }

  std::filesystem::path write(const std::string& name, const std::string& text) {
    auto p = tmp_.path() / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  const std::filesystem::path& config() const { return config_; }
  const std::filesystem::path& dir() const { return tmp_.path(); }

  // Runs `clinicflow simulate ARGS... --config <test config>` in the source tree.
  Result simulate(const std::vector<std::string>& args, bool with_config = true) {
    std::string command = "cd " + quote(CLINICFLOW_SOURCE_DIR) + " && " + quote(CLINICFLOW_CLI) + " simulate";
    for (const auto& a : args) command += " " + quote(a);
    if (with_config) command += " --config " + quote(config_.string());
    auto out = tmp_.path() / "stdout", err = tmp_.path() / "stderr";
    command += " >" + quote(out.string()) + " 2>" + quote(err.string());
    int raw = std::system(command.c_str());
    Result r{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_file(out), read_file(err)};
    INFO(command << "\nstderr: " << r.err);
    return r;
  }

  // Runs with --json and returns the summary (the run must succeed with `status`).
  json::object summary(std::vector<std::string> args, int status = 0) {
    args.push_back("--json");
    Result r = simulate(args);
    INFO("stderr: " << r.err);
    REQUIRE(r.status == status);
    return json::parse(r.out).as_object();
  }

 private:
  static void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  }
  TempDir tmp_;
  std::filesystem::path config_;
};

std::int64_t integer(const json::value& v) { return v.to_number<std::int64_t>(); }

// (outcome, reason) -> patients
std::map<std::pair<std::string, std::string>, std::int64_t> outcomes(const json::object& s) {
  std::map<std::pair<std::string, std::string>, std::int64_t> out;
  for (const auto& o : s.at("outcomes").as_array())
    out[{std::string(o.at("outcome").as_string()), std::string(o.at("reason").as_string())}] = integer(o.at("patients"));
  return out;
}

const json::object& row(const json::object& s, const char* table, const char* key, const std::string& id) {
  for (const auto& r : s.at(table).as_array())
    if (r.at(key).as_string() == id) return r.as_object();
  FAIL("no " << table << " row " << id);
  throw std::logic_error("unreachable");
}

std::int64_t sum_outcomes(const json::object& s) {
  std::int64_t n = 0;
  for (const auto& [key, count] : outcomes(s)) n += count;
  return n;
}

}  // namespace

TEST_CASE("simulate: outcomes add up, every branch outcome occurs, the default path is the majority") {
  Cli cli;
  const int n = 400;
  json::object s = cli.summary({kWorkflow, "--patients", std::to_string(n), "--seed", "3"});
  CHECK(integer(s.at("patients")) == n);
  CHECK(sum_outcomes(s) == n);
  // The profile next to the workflow was used.
  CHECK(std::string(s.at("profile").as_string()).ends_with("clinic.sim.toml"));

  auto o = outcomes(s);
  for (const auto& expected : std::vector<std::pair<std::string, std::string>>{{"completed", ""},
                                                                              {"declined", "Under 18"},
                                                                              {"closed", "No consent"},
                                                                              {"closed", "Stopped after urgent review"},
                                                                              {"closed", "Stopped: severe pain"},
                                                                              {"closed", "No improvement"}}) {
    INFO(expected.first << " / " << expected.second);
    CHECK(o[expected] > 0);
  }
  // The default path (completed) is the most common outcome; the first row is the largest.
  CHECK(s.at("outcomes").as_array().front().at("outcome") == "completed");
  CHECK(o[{"completed", ""}] > n / 4);

  // Journey times: a referral declined at once takes no time; a completed case waits at least the
  // follow-up's day.
  for (const auto& r : s.at("outcomes").as_array()) {
    if (r.at("reason") == "Under 18") CHECK(integer(r.at("max_ms")) == 0);
    if (r.at("outcome") == "completed") CHECK(integer(r.at("median_ms")) >= 86'400'000);
  }

  // A step reached only through a branch: reached sometimes, not always.
  auto urgent = row(s, "steps", "step", "urgent_review");
  CHECK(integer(urgent.at("reached")) > 0);
  CHECK(integer(urgent.at("reached")) < integer(row(s, "steps", "step", "assessment").at("reached")));
}

TEST_CASE("simulate: stages, sessions, charges and messages follow from the workflow") {
  Cli cli;
  json::object s = cli.summary({kWorkflow, "--patients", "150"});
  CHECK(integer(row(s, "stages", "stage", "intake").at("patients")) == 150);

  // Follow-up opens 1 day after billing and is done at once: exactly a day in the stage.
  auto follow_up = row(s, "stages", "stage", "follow_up");
  REQUIRE(integer(follow_up.at("patients")) > 0);
  CHECK(integer(follow_up.at("median_ms")) == 86'400'000);
  CHECK(integer(follow_up.at("max_ms")) == 86'400'000);

  // The treatment series: at most 4 sessions, each after the first 2 days after the previous one.
  auto treatment = row(s, "stages", "stage", "treatment");
  std::int64_t patients = integer(treatment.at("patients")), sessions = integer(treatment.at("sessions"));
  std::int64_t most = integer(treatment.at("most_sessions"));
  CHECK(treatment.at("repeated").as_bool());
  CHECK(sessions > patients);  // some patients had more than one
  CHECK(most >= 2);
  CHECK(most <= 4);
  CHECK(integer(treatment.at("max_ms")) == (most - 1) * 2 * 86'400'000);

  // One charge of 12500 cents (config) per completed billing step.
  auto billing = row(s, "steps", "step", "billing");
  REQUIRE(s.at("charges").as_array().size() == 1);
  auto charge = s.at("charges").as_array().front().as_object();
  CHECK(charge.at("code") == "96365");
  CHECK(integer(charge.at("postings")) == integer(billing.at("completions")));
  CHECK(integer(billing.at("completions")) > integer(billing.at("completed")));  // several sessions per patient
  CHECK(integer(charge.at("amount_cents")) == 12'500 * integer(charge.at("postings")));

  // The letter goes out on each completed follow-up; a reminder for each session that waited for
  // its opening (every one but a patient's first).
  auto letter = row(s, "messages", "template", "outcome_letter");
  CHECK(integer(letter.at("messages")) == integer(row(s, "steps", "step", "follow_up").at("completed")));
  CHECK(letter.at("to") == "referring_provider");
  auto reminder = row(s, "messages", "template", "reminder");
  CHECK(integer(reminder.at("messages")) == sessions - patients);
}

TEST_CASE("simulate: a profile that forces a branch drives every patient there") {
  Cli cli;
  SECTION("an outcome: no consent") {
    auto profile = cli.write("no_consent.sim.toml", R"(
[field."referral.age"]
range = [30, 60]
[field."referral.consent"]
values = [true, false]
weights = [0.0, 1.0]
)");
    json::object s = cli.summary({kWorkflow, "--patients", "60", "--profile", profile.string()});
    auto o = outcomes(s);
    CHECK(o.size() == 1);
    CHECK(o[{"closed", "No consent"}] == 60);
    CHECK(integer(row(s, "steps", "step", "assessment").at("reached")) == 0);
  }
  SECTION("a goto: every patient to the urgent review") {
    auto profile = cli.write("urgent.sim.toml", R"(
[field."referral.age"]
range = [30, 60]
[field."referral.consent"]
values = [true]
[field."assessment.score"]
values = [25]
weights = [1.0]
)");
    json::object s = cli.summary({kWorkflow, "--patients", "60", "--profile", profile.string()});
    CHECK(integer(row(s, "steps", "step", "urgent_review").at("reached")) == 60);
    CHECK(sum_outcomes(s) == 60);
  }
}

TEST_CASE("simulate: the same seed gives byte-identical output, another seed another") {
  Cli cli;
  Result a = cli.simulate({kWorkflow, "--patients", "80", "--seed", "7"});
  Result b = cli.simulate({kWorkflow, "--patients", "80", "--seed", "7"});
  Result c = cli.simulate({kWorkflow, "--patients", "80", "--seed", "8"});
  REQUIRE(a.status == 0);
  REQUIRE(c.status == 0);
  CHECK(!a.out.empty());
  CHECK(a.out == b.out);
  CHECK(a.out != c.out);
  Result ja = cli.simulate({kWorkflow, "--patients", "80", "--seed", "7", "--json"});
  Result jb = cli.simulate({kWorkflow, "--patients", "80", "--seed", "7", "--json"});
  CHECK(ja.out == jb.out);
  // The text is the same summary as the JSON.
  auto s = json::parse(ja.out).as_object();
  auto completed = outcomes(s)[{"completed", ""}];
  CHECK(a.out.find("  completed") != std::string::npos);
  CHECK(a.out.find(" " + std::to_string(completed) + " ") != std::string::npos);
}

TEST_CASE("simulate: a step no value can reach is reported as never reached") {
  Cli cli;
  json::object s = cli.summary({kWorkflow, "--patients", "100"});
  // second_opinion is behind "score > 40", and the form allows at most 27.
  REQUIRE(s.at("never_reached").as_array().size() == 1);
  CHECK(s.at("never_reached").as_array().front() == "second_opinion");
  CHECK(integer(row(s, "steps", "step", "second_opinion").at("reached")) == 0);
  Result text = cli.simulate({kWorkflow, "--patients", "100"});
  CHECK(text.out.find("Never reached: second_opinion\n") != std::string::npos);
}

TEST_CASE("simulate: a bad profile is refused with file, line and key") {
  Cli cli;
  auto profile = cli.write("bad.sim.toml", R"([field."referral.agee"]
values = [30]

[field."referral.consent"]
values = [true, false]
weights = [0.5]

[field."nosuch.x"]
values = [1]

[field."assessment.route"]
values = ["clinic", "hospital"]

[field."referral.age"]
range = [10, 200]
)");
  Result r = cli.simulate({kWorkflow, "--patients", "5", "--profile", profile.string()});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  const std::string f = profile.string();
  CHECK_THAT(r.err, Catch::Contains(f + ":1:8: field.\"referral.agee\": step 'referral' has no field 'agee'"));
  CHECK_THAT(r.err, Catch::Contains(f + ":6:11: field.\"referral.consent\": 'weights' has 1 entry but 'values' has 2"));
  CHECK_THAT(r.err, Catch::Contains(f + ":8:8: field.\"nosuch.x\": workflow 'sim_clinic' has no step 'nosuch'"));
  CHECK_THAT(r.err, Catch::Contains(f + ":12:21: field.\"assessment.route\": value \"hospital\" does not fit enum field 'route'"));
  CHECK_THAT(r.err, Catch::Contains(f + ":15:14: field.\"referral.age\": range bound 200 does not fit field 'age': must be at most 120"));
  CHECK_THAT(r.err, Catch::Contains("has 5 errors; nothing was simulated"));

  auto syntax = cli.write("syntax.sim.toml", "[field.\"referral.age\"\nvalues = [1]\n");
  Result s = cli.simulate({kWorkflow, "--patients", "5", "--profile", syntax.string()});
  CHECK(s.status == 2);
  CHECK_THAT(s.err, Catch::StartsWith(syntax.string() + ":1:"));
}

TEST_CASE("simulate: plugin refusals are retried and counted, a step refused every time is stuck") {
  Cli cli;
  SECTION("some refusals: retried until a value passes") {
    // The profile's systolic range (100-150) crosses test_route's limit of 140.
    json::object s = cli.summary({kWorkflow, "--patients", "100"});
    CHECK(s.at("stuck").as_array().empty());
    REQUIRE(!s.at("refusals").as_array().empty());
    auto refusal = s.at("refusals").as_array().front().as_object();
    CHECK(refusal.at("step") == "session");
    CHECK(refusal.at("kind") == "refused");
    CHECK(refusal.at("pattern") == "systolic # mmHg is above the limit of # mmHg");
    CHECK(integer(refusal.at("count")) > 0);
    // Every refused session was retried: all reached sessions were completed.
    auto session = row(s, "steps", "step", "session");
    CHECK(integer(session.at("completed")) == integer(session.at("reached")));
  }
  SECTION("always refused: closed as stuck after the bounded retries") {
    auto profile = cli.write("high_bp.sim.toml", R"(
[field."session.systolic"]
values = [200]
)");
    json::object s = cli.summary({kWorkflow, "--patients", "40", "--profile", profile.string()}, 1);
    auto stuck = s.at("stuck").as_array();
    std::int64_t reached = integer(row(s, "steps", "step", "session").at("reached"));
    REQUIRE(reached > 0);
    CHECK(static_cast<std::int64_t>(stuck.size()) == reached);
    for (const auto& c : stuck) {
      CHECK(c.at("step") == "session");
      CHECK(integer(c.at("attempts")) == integer(s.at("attempts_per_step")));
      CHECK(c.at("reason") == "systolic 200 mmHg is above the limit of 140 mmHg");
    }
    CHECK(outcomes(s)[{"closed", "simulation: stuck at session"}] == reached);
    auto refusal = s.at("refusals").as_array().front().as_object();
    CHECK(integer(refusal.at("count")) == reached * integer(s.at("attempts_per_step")));
    CHECK(integer(refusal.at("variants")) == 1);
    CHECK(integer(row(s, "steps", "step", "session").at("completed")) == 0);
    CHECK(sum_outcomes(s) == 40);

    Result text = cli.simulate({kWorkflow, "--patients", "40", "--profile", profile.string()});
    CHECK(text.status == 1);
    CHECK_THAT(text.out, Catch::Contains("Stuck cases: " + std::to_string(reached)));
  }
}

TEST_CASE("simulate: a workflow or plugin that cannot run is an error with its place") {
  Cli cli;
  SECTION("missing plugin") {
    std::string config = read_file(cli.config());
    config.replace(config.find("plugins_dir"), 0, "plugins_dir = \"" + (cli.dir() / "no-plugins").string() + "\"\n#");
    auto file = cli.write("no_plugins.toml", config);
    Result r = cli.simulate({kWorkflow, "--patients", "5", "--config", file.string()}, false);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains("tests/data/simulate/clinic.toml:"));
    CHECK_THAT(r.err, Catch::Contains("plugin 'test_route'"));
    CHECK_THAT(r.err, Catch::Contains("test_route.so not found"));
  }
  SECTION("invalid workflow") {
    std::string text = read_file(std::filesystem::path(CLINICFLOW_SOURCE_DIR) / kWorkflow);
    text.replace(text.find("when = \"age < 18\""), 17, "when = \"agee < 18\"");
    auto file = cli.write("broken.toml", text);
    Result r = cli.simulate({file.string(), "--patients", "5"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains(file.string() + ":"));
    CHECK_THAT(r.err, Catch::Contains("in condition: step 'referral' has no field 'agee'"));
  }
  SECTION("usage") {
    CHECK(cli.simulate({kWorkflow}).status == 2);
    CHECK(cli.simulate({kWorkflow, "--patients", "0"}).status == 2);
    CHECK(cli.simulate({kWorkflow, "--patients", "3", "--frobnicate"}).status == 2);
  }
}
