#include "workflow/workflow_loader.hpp"
#include "workflow/workflow_set.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

using namespace clinicflow;
using namespace clinicflow::workflow;

namespace {

LoadContext test_context() {
  LoadContext context;
  context.roles = std::set<std::string>{"frontdesk", "nurse", "prescriber", "billing", "admin"};
  context.plugins = std::set<std::string>{"fake_billing"};
  return context;
}

// A valid workflow head; each test appends steps to it.
const std::string kHead = R"(id = "w"
version = 1
title = "W"

[[stage]]
id = "intake"

[[stage]]
id = "series"
repeat = { times = 2 }
)";

const std::string kFirstStep = R"(
[[step]]
id = "first"
stage = "intake"
roles = ["nurse"]

  [[step.field]]
  name = "age"
  type = "integer"
)";

// Gives the repeated stage of kHead a step, for tests whose subject is elsewhere.
const std::string kSeriesStep = "\n[[step]]\nid = \"later\"\nstage = \"series\"\nroles = [\"nurse\"]\n";

// 1-based line and column of the first occurrence of `needle` (plus `shift` characters) in `text`.
std::pair<int, int> position_of(const std::string& text, const std::string& needle, int shift = 0) {
  auto offset = text.find(needle);
  REQUIRE(offset != std::string::npos);
  offset += static_cast<std::size_t>(shift);
  int line = 1, column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') ++line, column = 1;
    else ++column;
  }
  return {line, column};
}

LoadResult load(const std::string& text) { return load_workflow_text(text, "w.toml", test_context()); }

// Asserts exactly one error, at the given place, whose message contains `message`.
void expect_error(const std::string& text, const std::string& message, std::pair<int, int> where) {
  LoadResult result = load(text);
  INFO(text);
  std::string all;
  for (const auto& e : result.errors) all += e.to_string() + "\n";
  INFO(all);
  CHECK_FALSE(result.workflow);
  REQUIRE(result.errors.size() == 1);
  const SourceError& error = result.errors.front();
  INFO(error.to_string());
  CHECK(error.file == "w.toml");
  CHECK(error.message.find(message) != std::string::npos);
  CHECK(error.line == where.first);
  CHECK(error.column == where.second);
}

}  // namespace

TEST_CASE("the full test workflow loads with every feature in place") {
  LoadResult result = load_workflow_file(std::string(CLINICFLOW_TEST_DATA) + "/workflows/full.toml", test_context());
  for (const auto& e : result.errors) INFO(e.to_string());
  REQUIRE(result.errors.empty());
  const Workflow& wf = *result.workflow;
  CHECK(wf.id == "test_flow");
  CHECK(wf.version == 1);
  REQUIRE(wf.stages.size() == 3);
  REQUIRE(wf.steps.size() == 6);

  const StageDef& series = *wf.find_stage("series");
  REQUIRE(series.repeat);
  CHECK(series.repeat->times == 3);
  CHECK(series.repeat->min_interval == 2 * 86'400'000LL);
  CHECK(series.repeat->max_interval == 5 * 86'400'000LL);
  REQUIRE(series.repeat->until);
  CHECK(series.repeat->until->fields().front() == FieldRef{"session", "phq9"});
  CHECK(series.first_step == 2);
  CHECK(series.last_step == 3);

  const StepDef& referral = *wf.find_step("referral");
  CHECK(referral.kind == StepKind::task);
  CHECK(referral.roles == std::vector<std::string>{"frontdesk"});
  CHECK(referral.due == 2 * 86'400'000LL);
  REQUIRE(referral.branches.size() == 2);
  CHECK(referral.branches[0].outcome == Outcome::declined);
  CHECK(referral.branches[0].reason == "Under 18");
  CHECK(referral.next.go_to == "coverage");
  CHECK(referral.find_field("age")->max == 130);
  CHECK(referral.find_field("age")->unit == "years");
  CHECK(referral.find_field("psychosis")->label == "Active psychosis");
  CHECK(referral.find_field("diagnosis")->values == std::vector<std::string>{"F32.2", "F33.2"});

  const StepDef& coverage = *wf.find_step("coverage");
  CHECK(coverage.kind == StepKind::automatic);
  CHECK(coverage.plugin == "fake_billing");
  CHECK(boost::json::serialize(coverage.settings) == R"({"fee_cents":50000,"codes":["96365"]})");

  const StepDef& follow_up = *wf.find_step("follow_up_call");
  CHECK(follow_up.open_delay == 24 * 3'600'000LL);
  CHECK(follow_up.open_after == "discharge");
  CHECK(follow_up.next.outcome == Outcome::completed);
  CHECK(follow_up.branches.front().go_to == "urgent_review");
  CHECK(wf.find_step("urgent_review")->next.outcome == Outcome::completed);
  CHECK(wf.plugins() == std::vector<std::string>{"fake_billing"});
}

TEST_CASE("a TOML syntax error is reported where the parser stopped") {
  LoadResult result = load("id = \"w\"\nversion = 1\ntitle = \"W\n");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 3);
  CHECK(result.errors[0].file == "w.toml");
  CHECK_FALSE(result.errors[0].message.empty());
}

TEST_CASE("a missing file is named") {
  LoadResult result = load_workflow_file("/nonexistent/dir/flow.toml", test_context());
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string() == "/nonexistent/dir/flow.toml: file not found");
}

TEST_CASE("identity errors") {
  std::string text = "id = \"Bad-Id\"\nversion = 0\ntitle = 5\n[[stage]]\nid = \"intake\"\n" + kFirstStep;
  LoadResult result = load(text);
  REQUIRE(result.errors.size() == 3);
  CHECK(result.errors[0].message.find("'Bad-Id' is not a valid id") != std::string::npos);
  CHECK(std::pair(result.errors[0].line, result.errors[0].column) == position_of(text, "\"Bad-Id\""));
  CHECK(result.errors[1].message.find("'version' must be a whole number") != std::string::npos);
  CHECK(std::pair(result.errors[1].line, result.errors[1].column) == position_of(text, "0"));
  CHECK(result.errors[2].message == "'title' must be a string in quotes, not a whole number");
}

TEST_CASE("an unknown key is named with a suggestion") {
  std::string text = kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"intake\"\nroles = [\"nurse\"]\ntitel = \"x\"\n" + kSeriesStep;
  expect_error(text, "unknown key 'titel' in [[step]] — did you mean 'title'?", position_of(text, "titel"));
}

TEST_CASE("step references must resolve") {
  SECTION("a duplicate step") {
    std::string text = kHead + kFirstStep + "\n[[step]]\nid = \"first\"\nstage = \"series\"\nroles = [\"nurse\"]\n" + kSeriesStep;
    expect_error(text, "step 'first' is defined twice", position_of(text, "\"first\"", 0 + static_cast<int>(text.find("\"first\"", text.find("\"first\"") + 1) - text.find("\"first\""))));
  }
  SECTION("an unknown stage") {
    std::string text = kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"seris\"\nroles = [\"nurse\"]\n" + kSeriesStep;
    expect_error(text, "no stage 'seris' (stages: intake, series)", position_of(text, "\"seris\""));
  }
  SECTION("a goto to a step that does not exist") {
    std::string text = kHead + kFirstStep +
                       "\n  [[step.branch]]\n  when = \"age > 3\"\n  goto = \"secnd\"\n"
                       "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\"]\n";
    expect_error(text, "no step 'secnd' — did you mean 'second'?", position_of(text, "\"secnd\""));
  }
  SECTION("an unknown role") {
    std::string text = kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\", \"janitor\"]\n";
    expect_error(text, "no role 'janitor' in the server configuration", position_of(text, "\"janitor\""));
  }
  SECTION("an unconfigured plugin") {
    std::string text = kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"series\"\nkind = \"automatic\"\nplugin = \"sms\"\n";
    expect_error(text, "no plugin 'sms' is configured (add a [plugins.sms] table", position_of(text, "\"sms\""));
  }
  SECTION("'after' must name an earlier step") {
    std::string text = kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\"]\ndelay = \"1d\"\nafter = \"second\"\n";
    expect_error(text, "'after' must name an earlier step", position_of(text, "\"second\"", static_cast<int>(text.rfind("\"second\"") - text.find("\"second\""))));
  }
}

TEST_CASE("steps of a stage stand together, in stage order") {
  std::string text = kHead + "\n[[stage]]\nid = \"later\"\n" + kFirstStep +
                     "\n[[step]]\nid = \"b\"\nstage = \"later\"\nroles = [\"nurse\"]\n"
                     "\n[[step]]\nid = \"c\"\nstage = \"series\"\nroles = [\"nurse\"]\n";
  // stage "series" has its step after "later": out of order.
  LoadResult result = load(text);
  REQUIRE_FALSE(result.errors.empty());
  CHECK(result.errors[0].message.find("the steps of a stage must stand together") != std::string::npos);
  CHECK(std::pair(result.errors[0].line, result.errors[0].column) == position_of(text, "\"series\"", static_cast<int>(text.rfind("\"series\"") - text.find("\"series\""))));
}

TEST_CASE("fields are checked") {
  auto step_with_field = [](const std::string& field) {
    return kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\"]\n  [[step.field]]\n" + field;
  };
  SECTION("an unknown type") {
    std::string text = step_with_field("  name = \"x\"\n  type = \"integr\"\n");
    expect_error(text, "unknown type \"integr\"", position_of(text, "\"integr\""));
  }
  SECTION("min on a text field") {
    std::string text = step_with_field("  name = \"x\"\n  type = \"string\"\n  min = 3\n");
    expect_error(text, "'min' applies only to integer and number fields", position_of(text, "3\n", 0));
  }
  SECTION("max below min") {
    std::string text = step_with_field("  name = \"x\"\n  type = \"number\"\n  min = 3\n  max = 1.5\n");
    expect_error(text, "'max' is smaller than 'min'", position_of(text, "1.5"));
  }
  SECTION("an enum without values") {
    std::string text = step_with_field("  name = \"x\"\n  type = \"enum\"\n");
    expect_error(text, "enum field 'x' needs 'values'", position_of(text, "  [[step.field]]\n  name = \"x\"", 2));
  }
  SECTION("values on a non-enum") {
    std::string text = step_with_field("  name = \"x\"\n  type = \"string\"\n  values = [\"a\"]\n");
    expect_error(text, "'values' applies only to enum fields", position_of(text, "[\"a\"]"));
  }
  SECTION("a field named twice") {
    std::string text = kHead + kFirstStep + "\n  [[step.field]]\n  name = \"age\"\n  type = \"string\"\n" + kSeriesStep;
    expect_error(text, "step 'first' has two fields named 'age'", position_of(text, "\"age\"", static_cast<int>(text.rfind("\"age\"") - text.find("\"age\""))));
  }
}

TEST_CASE("transitions are checked") {
  SECTION("a goto backwards would loop without bound") {
    std::string text = kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\"]\nnext = \"first\"\n";
    expect_error(text, "'first' is not a later step: a workflow only moves forward, and repeats only through a stage's 'repeat'",
                 position_of(text, "next = ", 7));
  }
  SECTION("a branch with neither goto nor outcome") {
    std::string text = kHead + kFirstStep + "\n  [[step.branch]]\n  when = \"age > 3\"\n" + kSeriesStep;
    expect_error(text, "a branch needs 'goto' (a later step) or 'outcome'", position_of(text, "  [[step.branch]]", 2));
  }
  SECTION("both goto and outcome") {
    std::string text = kHead + kFirstStep + "\n  [[step.branch]]\n  when = \"age > 3\"\n  goto = \"x\"\n  outcome = \"completed\"\n" + kSeriesStep;
    expect_error(text, "use either 'goto' or 'outcome', not both", position_of(text, "\"completed\""));
  }
  SECTION("declined needs a reason") {
    std::string text = kHead + kFirstStep + "\n  [[step.branch]]\n  when = \"age < 18\"\n  outcome = \"declined\"\n" + kSeriesStep;
    expect_error(text, "an outcome of \"declined\" needs a 'reason'", position_of(text, "  [[step.branch]]", 2));
  }
  SECTION("a reason without an outcome") {
    std::string text = kHead + kFirstStep + "\n  [[step.branch]]\n  when = \"age < 18\"\n  goto = \"later\"\n  reason = \"too young\"\n" + kSeriesStep;
    expect_error(text, "'reason' goes with 'outcome'; a move to another step has none", position_of(text, "\"too young\""));
  }
  SECTION("an unknown outcome") {
    std::string text = kHead + kFirstStep + "\n  [[step.branch]]\n  when = \"age < 18\"\n  outcome = \"rejected\"\n  reason = \"x\"\n" + kSeriesStep;
    expect_error(text, "'outcome' must be \"completed\", \"declined\" or \"closed\", not \"rejected\"", position_of(text, "\"rejected\""));
  }
  SECTION("an unreachable step") {
    std::string text = kHead + kFirstStep + "outcome = \"completed\"\n" +
                       "\n[[step]]\nid = \"orphan\"\nstage = \"series\"\nroles = [\"nurse\"]\n";
    // `outcome` after [[step.field]] belongs to the field table: written before it instead.
    std::string fixed = kHead + "\n[[step]]\nid = \"first\"\nstage = \"intake\"\nroles = [\"nurse\"]\noutcome = \"completed\"\n" +
                        "\n[[step]]\nid = \"orphan\"\nstage = \"series\"\nroles = [\"nurse\"]\n";
    expect_error(fixed, "step 'orphan' can never be reached", position_of(fixed, "[[step]]\nid = \"orphan\""));
  }
  SECTION("entering a repeated stage in its middle") {
    std::string text = kHead + kFirstStep +
                       "\n  [[step.branch]]\n  when = \"age > 3\"\n  goto = \"third\"\n"
                       "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\"]\n"
                       "\n[[step]]\nid = \"third\"\nstage = \"series\"\nroles = [\"nurse\"]\n";
    expect_error(text, "'third' is inside the repeated stage 'series'; enter it at its first step 'second'", position_of(text, "\"third\""));
  }
}

TEST_CASE("conditions are checked against the fields, with the column inside the text") {
  SECTION("an unknown field") {
    std::string text = kHead + kFirstStep + "\n  [[step.branch]]\n  when = \"agee > 3\"\n  outcome = \"completed\"\n" + kSeriesStep;
    expect_error(text, "in condition: step 'first' has no field 'agee' (fields: age)", position_of(text, "agee"));
  }
  SECTION("a type mismatch") {
    std::string text = kHead + kFirstStep + "\n  [[step.branch]]\n  when = \"age > 3 and age == \\\"old\\\"\"\n  outcome = \"completed\"\n" + kSeriesStep;
    LoadResult result = load(text);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].message.rfind("in condition: ", 0) == 0);
    CHECK(result.errors[0].line == position_of(text, "age > 3 and").first);
  }
  SECTION("a repeat's until condition must name the step") {
    std::string text = "id = \"w\"\nversion = 1\ntitle = \"W\"\n[[stage]]\nid = \"s\"\nrepeat = { times = 2, until = \"age > 3\" }\n" + kFirstStep;
    text.replace(text.find("stage = \"intake\""), 16, "stage = \"s\"");
    expect_error(text, "name the step too, as step.field", position_of(text, "age > 3"));
  }
}

TEST_CASE("kinds, roles and time settings are checked") {
  SECTION("a task needs roles") {
    std::string text = kHead + "\n[[step]]\nid = \"first\"\nstage = \"intake\"\n" + kSeriesStep;
    expect_error(text, "task 'first' needs 'roles'", position_of(text, "[[step]]"));
  }
  SECTION("an automatic step needs a plugin") {
    std::string text = kHead + "\n[[step]]\nid = \"first\"\nstage = \"intake\"\nkind = \"automatic\"\n" + kSeriesStep;
    expect_error(text, "automatic step 'first' needs 'plugin'", position_of(text, "[[step]]"));
  }
  SECTION("an unknown kind") {
    std::string text = kHead + "\n[[step]]\nid = \"first\"\nstage = \"intake\"\nroles = [\"nurse\"]\nkind = \"manual\"\n" + kSeriesStep;
    expect_error(text, "'kind' must be \"task\" (done by staff) or \"automatic\"", position_of(text, "\"manual\""));
  }
  SECTION("a malformed duration") {
    std::string text = kHead + "\n[[step]]\nid = \"first\"\nstage = \"intake\"\nroles = [\"nurse\"]\ndue = \"2days\"\n" + kSeriesStep;
    expect_error(text, "'due' = \"2days\" is not a duration: write each unit as one letter", position_of(text, "\"2days\""));
  }
  SECTION("a repeat without a bound") {
    std::string text = "id = \"w\"\nversion = 1\ntitle = \"W\"\n[[stage]]\nid = \"intake\"\nrepeat = { times = 1000 }\n" + kFirstStep;
    expect_error(text, "'times' must be a whole number from 1 to 100", position_of(text, "1000"));
  }
  SECTION("a stage without steps") {
    std::string text = kHead + kFirstStep;
    expect_error(text, "stage 'series' has no steps", position_of(text, "[[stage]]\nid = \"series\""));
  }
}

TEST_CASE("every error in a file is reported at once, in line order") {
  std::string text = kHead + "\n[[step]]\nid = \"first\"\nstage = \"intake\"\nroles = [\"nurse\", \"chef\"]\ndue = \"soon\"\nkind = \"manual\"\n";
  LoadResult result = load(text);
  // Problems found while reading steps and while linking them afterwards come out together.
  REQUIRE(result.errors.size() == 4);
  CHECK(result.errors[0].message == "stage 'series' has no steps");
  CHECK(result.errors[1].message.find("no role 'chef'") != std::string::npos);
  CHECK(result.errors[2].message.find("'due' = \"soon\"") != std::string::npos);
  CHECK(result.errors[3].message.find("'kind' must be") != std::string::npos);
  for (std::size_t i = 1; i < result.errors.size(); ++i) CHECK(result.errors[i - 1].line < result.errors[i].line);
}

TEST_CASE("several versions of one workflow live side by side") {
  WorkflowSet set;
  auto v1 = load(kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\"]\n");
  std::string text2 = kHead + kFirstStep + "\n[[step]]\nid = \"second\"\nstage = \"series\"\nroles = [\"nurse\"]\n";
  text2.replace(text2.find("version = 1"), 11, "version = 2");
  auto v2 = load(text2);
  REQUIRE(v1.workflow);
  REQUIRE(v2.workflow);
  CHECK_FALSE(set.add(v1.workflow));
  CHECK_FALSE(set.add(v2.workflow));
  CHECK(set.find("w")->version == 2);
  CHECK(set.find("w", 1)->version == 1);
  CHECK_FALSE(set.find("w", 3));
  auto duplicate = set.add(v1.workflow);
  REQUIRE(duplicate);
  CHECK(duplicate->message == "workflow 'w' version 1 is already defined in w.toml");
}

// The shipped workflows need their plugins to load: tests/scenario/shipped_workflows_test.cpp.
