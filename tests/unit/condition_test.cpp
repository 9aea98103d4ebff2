#include "workflow/condition.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <string>

using clinicflow::workflow::Condition;
using clinicflow::workflow::ConditionError;
using clinicflow::workflow::field_type_from_string;
using clinicflow::workflow::FieldRef;
using clinicflow::workflow::FieldResolver;
using clinicflow::workflow::FieldType;
using clinicflow::workflow::ResolvedField;
using clinicflow::workflow::ValueLookup;

namespace {

// Two steps of a made-up workflow. A bare name means a field of "vitals".
const std::map<std::string, std::map<std::string, ResolvedField>>& field_table() {
  static const auto table = [] {
    std::map<std::string, std::map<std::string, ResolvedField>> t;
    auto add = [&](const std::string& step, const std::string& field, FieldType type,
                   std::vector<std::string> enum_values = {}) {
      t[step][field] = ResolvedField{FieldRef{step, field}, type, std::move(enum_values)};
    };
    add("vitals", "systolic", FieldType::integer);
    add("vitals", "spo2", FieldType::number);
    add("vitals", "decision", FieldType::enumeration, {"yes", "no"});
    add("vitals", "visit", FieldType::date);
    add("vitals", "at", FieldType::datetime);
    add("vitals", "notes", FieldType::string);
    add("vitals", "pregnant", FieldType::boolean);
    add("intake", "weight", FieldType::number);
    add("intake", "arrival", FieldType::date);
    add("intake", "reason", FieldType::string);
    return t;
  }();
  return table;
}

std::optional<ResolvedField> resolve_field(std::string_view name, std::string& why) {
  std::string step = "vitals";
  std::string field(name);
  if (auto dot = name.find('.'); dot != std::string_view::npos) {
    step = std::string(name.substr(0, dot));
    field = std::string(name.substr(dot + 1));
  }
  auto s = field_table().find(step);
  if (s == field_table().end()) {
    why = "no step '" + step + "'";
    return std::nullopt;
  }
  auto f = s->second.find(field);
  if (f == s->second.end()) {
    why = "no field '" + field + "' in step '" + step + "'";
    return std::nullopt;
  }
  return f->second;
}

const FieldResolver resolver = resolve_field;

Condition parse(std::string_view text) { return Condition::parse(text, resolver); }

// `values_json` is an object keyed by field name for "vitals" and "step.field" for other steps.
bool eval(std::string_view text, std::string_view values_json = "{}") {
  Condition condition = parse(text);
  boost::json::object values = boost::json::parse(values_json).as_object();
  ValueLookup lookup = [&](const FieldRef& ref) -> const boost::json::value* {
    std::string key = ref.step == "vitals" ? ref.field : ref.step + "." + ref.field;
    return values.if_contains(key);
  };
  return condition.evaluate(lookup);
}

struct ErrorInfo {
  std::string message;
  std::size_t offset;
};

ErrorInfo parse_error(std::string_view text) {
  try {
    parse(text);
  } catch (const ConditionError& e) {
    return ErrorInfo{e.what(), e.offset()};
  }
  FAIL("expected a ConditionError for: " << text);
  return {};
}

}  // namespace

#define REQUIRE_PARSE_ERROR(text, expected_substring, expected_offset)        \
  do {                                                                        \
    ErrorInfo error_ = parse_error(text);                                     \
    INFO("condition: " << (text) << "\nmessage: " << error_.message);         \
    CHECK_THAT(error_.message, Catch::Contains(expected_substring));          \
    CHECK(error_.offset == static_cast<std::size_t>(expected_offset));        \
  } while (false)

TEST_CASE("field type names round-trip and nothing else is accepted", "[condition]") {
  for (auto type : {FieldType::string, FieldType::integer, FieldType::number, FieldType::boolean, FieldType::date,
                    FieldType::datetime, FieldType::enumeration})
    CHECK(field_type_from_string(to_string(type)) == type);
  CHECK(to_string(FieldType::enumeration) == "enum");
  CHECK(to_string(FieldType::boolean) == "boolean");
  CHECK_FALSE(field_type_from_string("enumeration"));
  CHECK_FALSE(field_type_from_string("Integer"));
  CHECK_FALSE(field_type_from_string("bool"));
  CHECK_FALSE(field_type_from_string(""));
}

TEST_CASE("boolean operators have the documented precedence", "[condition]") {
  // 'and' binds tighter than 'or'.
  CHECK(eval("true or true and false"));
  CHECK_FALSE(eval("(true or true) and false"));
  CHECK(eval("false and false or true"));
  // 'not' binds tighter than 'and'.
  CHECK_FALSE(eval("not false and false"));
  CHECK(eval("not (false and false)"));
  CHECK(eval("not not true"));
  CHECK_FALSE(eval("not not not true"));
  // comparison binds tighter than 'not'.
  CHECK(eval("not systolic > 140", R"({"systolic": 120})"));
  CHECK_FALSE(eval("not systolic > 140", R"({"systolic": 150})"));
}

TEST_CASE("arithmetic has the usual precedence and associativity", "[condition]") {
  CHECK(eval("2 + 3 * 4 == 14"));
  CHECK(eval("(2 + 3) * 4 == 20"));
  CHECK(eval("10 - 2 - 3 == 5"));
  CHECK(eval("12 / 2 / 3 == 2"));
  CHECK(eval("-2 * 3 == -6"));
  CHECK(eval("- -2 == 2"));
  CHECK(eval("1 - -1 == 2"));
  CHECK(eval("0.5 + 0.25 == 0.75"));
  CHECK(eval("systolic + 10 > 150", R"({"systolic": 145})"));
  CHECK_FALSE(eval("systolic + 10 > 150", R"({"systolic": 135})"));
  CHECK(eval("intake.weight / 2 == 35.5", R"({"intake.weight": 71})"));
}

TEST_CASE("number comparisons on present values", "[condition]") {
  const char* v = R"({"systolic": 140})";
  CHECK(eval("systolic == 140", v));
  CHECK_FALSE(eval("systolic == 141", v));
  CHECK(eval("systolic != 141", v));
  CHECK_FALSE(eval("systolic != 140", v));
  CHECK(eval("systolic < 141", v));
  CHECK_FALSE(eval("systolic < 140", v));
  CHECK(eval("systolic <= 140", v));
  CHECK_FALSE(eval("systolic <= 139", v));
  CHECK(eval("systolic > 139", v));
  CHECK_FALSE(eval("systolic > 140", v));
  CHECK(eval("systolic >= 140", v));
  CHECK_FALSE(eval("systolic >= 141", v));
}

TEST_CASE("numbers are read from any JSON number kind", "[condition]") {
  CHECK(eval("systolic == 140", R"({"systolic": 140.0})"));
  CHECK(eval("systolic > 1000000", R"({"systolic": 18446744073709551615})"));  // uint64
  CHECK(eval("spo2 < 0.9", R"({"spo2": 0.88})"));
  CHECK(eval("spo2 == 1", R"({"spo2": 1})"));
}

TEST_CASE("every comparison touching a missing, null or wrong-kind value is false", "[condition]") {
  for (const char* values : {"{}", R"({"systolic": null})", R"({"systolic": "140"})", R"({"systolic": true})"}) {
    INFO(values);
    for (const char* text : {"systolic == 140", "systolic != 140", "systolic < 140", "systolic <= 140",
                             "systolic > 140", "systolic >= 140", "systolic in [140]", "systolic not in [140]",
                             "systolic + 1 > 0", "-systolic < 0"}) {
      INFO(text);
      CHECK_FALSE(eval(text, values));
    }
    // 'not' is a plain negation of the (total) result.
    CHECK(eval("not systolic == 140", values));
  }
  CHECK_FALSE(eval("notes == \"x\"", R"({"notes": 5})"));
  CHECK_FALSE(eval("decision != \"yes\"", R"({"decision": true})"));
  CHECK_FALSE(eval("pregnant == false", R"({"pregnant": "no"})"));
}

TEST_CASE("a bare boolean field is its value, and false without one", "[condition]") {
  CHECK(eval("pregnant", R"({"pregnant": true})"));
  CHECK_FALSE(eval("pregnant", R"({"pregnant": false})"));
  CHECK_FALSE(eval("pregnant", "{}"));
  CHECK_FALSE(eval("pregnant", R"({"pregnant": null})"));
  CHECK_FALSE(eval("pregnant", R"({"pregnant": 1})"));
  CHECK(eval("not pregnant", "{}"));
  CHECK(eval("pregnant == true", R"({"pregnant": true})"));
  CHECK(eval("pregnant != true", R"({"pregnant": false})"));
  CHECK(eval("pregnant == (systolic > 140)", R"({"pregnant": true, "systolic": 150})"));
  CHECK_FALSE(eval("pregnant and systolic > 140", R"({"pregnant": false, "systolic": 150})"));
}

TEST_CASE("arithmetic with no value or a division by zero makes comparisons false", "[condition]") {
  CHECK_FALSE(eval("systolic / 0 > 0", R"({"systolic": 120})"));
  CHECK_FALSE(eval("systolic / 0 <= 0", R"({"systolic": 120})"));
  CHECK_FALSE(eval("systolic / 0 != 1", R"({"systolic": 120})"));
  CHECK_FALSE(eval("0 / 0 == 0"));
  CHECK_FALSE(eval("systolic / (spo2 - spo2) == 1", R"({"systolic": 120, "spo2": 0.9})"));
  CHECK(eval("not (systolic / 0 > 0)", R"({"systolic": 120})"));
  CHECK_FALSE(eval("systolic + spo2 > 0", R"({"systolic": 120})"));
  CHECK(eval("systolic / 4 == 30", R"({"systolic": 120})"));
}

TEST_CASE("'in' and 'not in' test list membership", "[condition]") {
  CHECK(eval("systolic in [120, 140]", R"({"systolic": 140})"));
  CHECK_FALSE(eval("systolic in [120, 130]", R"({"systolic": 140})"));
  CHECK(eval("systolic not in [120, 130]", R"({"systolic": 140})"));
  CHECK_FALSE(eval("systolic not in [120, 140]", R"({"systolic": 140})"));
  CHECK(eval("systolic - 200 in [-60]", R"({"systolic": 140})"));
  CHECK(eval("decision in [\"yes\"]", R"({"decision": "yes"})"));
  CHECK(eval("decision not in [\"yes\"]", R"({"decision": "no"})"));
  CHECK(eval("intake.reason in [\"pain\", \"fever\"]", R"({"intake.reason": "fever"})"));
  CHECK(eval("visit in [\"2026-01-01\", \"2026-02-01\"]", R"({"visit": "2026-02-01"})"));
  CHECK(eval("at in [\"2026-03-01T08:00:00Z\"]", R"({"at": "2026-03-01T09:00:00+01:00"})"));
  CHECK(eval("\"a\" in [\"b\", \"a\"]"));
  // A missing value is never in, nor "not in", a list.
  CHECK_FALSE(eval("decision in [\"yes\", \"no\"]"));
  CHECK_FALSE(eval("decision not in [\"yes\"]"));
  CHECK(eval("not (decision in [\"yes\"])"));
}

TEST_CASE("'is present' and 'is not present' ask whether a value exists", "[condition]") {
  CHECK(eval("notes is present", R"({"notes": "seen"})"));
  CHECK(eval("notes is present", R"({"notes": ""})"));
  CHECK_FALSE(eval("notes is present", "{}"));
  CHECK_FALSE(eval("notes is present", R"({"notes": null})"));
  CHECK(eval("notes is not present", "{}"));
  CHECK(eval("notes is not present", R"({"notes": null})"));
  CHECK_FALSE(eval("notes is not present", R"({"notes": "seen"})"));
  CHECK(eval("intake.weight is present", R"({"intake.weight": 70})"));
  CHECK(eval("(notes) is present", R"({"notes": "x"})"));
  CHECK(eval("notes is present and notes != \"\"", R"({"notes": "x"})"));
}

TEST_CASE("strings and enums compare by equality", "[condition]") {
  CHECK(eval("decision == \"yes\"", R"({"decision": "yes"})"));
  CHECK_FALSE(eval("decision == \"yes\"", R"({"decision": "no"})"));
  CHECK(eval("\"no\" == decision", R"({"decision": "no"})"));
  CHECK(eval("decision != \"yes\"", R"({"decision": "no"})"));
  CHECK(eval("notes == intake.reason", R"({"notes": "pain", "intake.reason": "pain"})"));
  CHECK(eval(R"(notes == "say \"hi\" \\ ok")", R"({"notes": "say \"hi\" \\ ok"})"));
  CHECK(eval(R"("a" != "b")"));
}

TEST_CASE("dates and date-times compare by the moment they name", "[condition]") {
  CHECK(eval("visit < \"2026-03-01\"", R"({"visit": "2026-02-28"})"));
  CHECK_FALSE(eval("visit < \"2026-03-01\"", R"({"visit": "2026-03-01"})"));
  CHECK(eval("visit >= \"2026-03-01\"", R"({"visit": "2026-03-01"})"));
  CHECK(eval("\"2025-12-31\" < visit", R"({"visit": "2026-01-01"})"));
  CHECK(eval("visit == \"2026-03-01\"", R"({"visit": "2026-03-01"})"));
  CHECK(eval("visit > intake.arrival", R"({"visit": "2026-03-02", "intake.arrival": "2026-03-01"})"));
  CHECK_FALSE(eval("visit > intake.arrival", R"({"visit": "2026-03-01"})"));
  // A stored date that is not a date is no value.
  CHECK_FALSE(eval("visit < \"2026-03-01\"", R"({"visit": "yesterday"})"));
  CHECK_FALSE(eval("visit != \"2026-03-01\"", R"({"visit": "2026-02-30"})"));

  // Offsets are normalised: 10:00+02:00 is 08:00Z, earlier than 09:00Z though "10" > "09".
  const char* at = R"({"at": "2026-03-01T10:00:00+02:00"})";
  CHECK(eval("at == \"2026-03-01T08:00:00Z\"", at));
  CHECK(eval("at < \"2026-03-01T09:00:00Z\"", at));
  CHECK_FALSE(eval("at > \"2026-03-01T09:00:00Z\"", at));
  CHECK(eval("at > \"2026-03-01T07:59:59.999Z\"", at));
  CHECK(eval("at <= \"2026-03-01T03:00:00-05:00\"", at));
  CHECK(eval("at >= \"2026-03-01T03:00:00-05:00\"", at));
  CHECK_FALSE(eval("at == \"2026-03-01T08:00:00Z\"", R"({"at": "2026-03-01 08:00"})"));
}

TEST_CASE("type errors name the problem and where it is", "[condition]") {
  REQUIRE_PARSE_ERROR("systolic == \"high\"", "cannot compare number field 'systolic' with a string", 12);
  REQUIRE_PARSE_ERROR("\"high\" == systolic", "cannot compare a string with number field 'systolic'", 10);
  REQUIRE_PARSE_ERROR("pregnant == 1", "cannot compare boolean field 'pregnant' with a number", 12);
  REQUIRE_PARSE_ERROR("systolic == true", "cannot compare number field 'systolic' with a true/false value", 12);
  REQUIRE_PARSE_ERROR("visit == decision", "cannot compare date field 'visit' with enum field 'decision'", 9);
  REQUIRE_PARSE_ERROR("visit == at", "cannot compare date field 'visit' with datetime field 'at'", 9);
  REQUIRE_PARSE_ERROR("notes == decision", "cannot compare string field 'notes' with enum field 'decision'", 9);
  REQUIRE_PARSE_ERROR("visit < systolic", "cannot compare date field 'visit' with number field 'systolic'", 8);

  REQUIRE_PARSE_ERROR("notes + 1 > 2", "'+' needs numbers on both sides, but 'notes' is a string field", 0);
  REQUIRE_PARSE_ERROR("1 * decision > 2", "'*' needs numbers on both sides, but 'decision' is an enum field", 4);
  REQUIRE_PARSE_ERROR("-notes == 1", "'-' needs a number after it, but 'notes' is a string field", 1);
  REQUIRE_PARSE_ERROR("1 + true == 2", "'+' needs numbers on both sides, but this is a true/false value", 4);

  REQUIRE_PARSE_ERROR("decision < \"yes\"",
                      "'<' only compares numbers, dates and date-times, but 'decision' is an enum field", 0);
  REQUIRE_PARSE_ERROR("1 >= notes", "'>=' only compares numbers, dates and date-times, but 'notes' is a string field",
                      5);
  REQUIRE_PARSE_ERROR("pregnant > false",
                      "'>' only compares numbers, dates and date-times, but 'pregnant' is a boolean field", 0);
  REQUIRE_PARSE_ERROR("\"a\" < \"b\"", "'<' cannot order two strings", 0);
  REQUIRE_PARSE_ERROR("systolic < \"2026-01-01\"", "cannot compare number field 'systolic' with a string", 11);

  REQUIRE_PARSE_ERROR("systolic > 1 and spo2", "'and' needs true or false on both sides, but 'spo2' is a number field",
                      17);
  REQUIRE_PARSE_ERROR("spo2 or pregnant", "'or' needs true or false on both sides, but 'spo2' is a number field", 0);
  REQUIRE_PARSE_ERROR("not systolic", "'not' needs true or false after it, but 'systolic' is a number field", 4);
  REQUIRE_PARSE_ERROR("systolic", "the condition must be true or false, but 'systolic' is a number field", 0);
  REQUIRE_PARSE_ERROR("1 + 2", "the condition must be true or false, but this is a number", 0);
  REQUIRE_PARSE_ERROR("notes", "the condition must be true or false, but 'notes' is a string field", 0);

  REQUIRE_PARSE_ERROR("pregnant in [true]", "'in' needs a number or text on its left, but 'pregnant' is a boolean field",
                      0);
  REQUIRE_PARSE_ERROR("systolic in [1, \"2\"]", "cannot compare number field 'systolic' with a string", 16);
  REQUIRE_PARSE_ERROR("notes in [\"a\", 2]", "cannot compare string field 'notes' with a number", 15);
  REQUIRE_PARSE_ERROR("systolic + 1 is present", "'is present' needs a field name on its left", 0);
  REQUIRE_PARSE_ERROR("1 is not present", "'is not present' needs a field name on its left", 0);
}

TEST_CASE("literals must be values the field can take", "[condition]") {
  REQUIRE_PARSE_ERROR("decision == \"maybe\"", "'maybe' is not one of the values of 'decision' (yes, no)", 12);
  REQUIRE_PARSE_ERROR("vitals.decision in [\"yes\", \"maybe\"]",
                      "'maybe' is not one of the values of 'vitals.decision' (yes, no)", 27);
  REQUIRE_PARSE_ERROR("visit == \"2026-13-01\"", "\"2026-13-01\" is not a valid date (YYYY-MM-DD)", 9);
  REQUIRE_PARSE_ERROR("\"2026-02-30\" > visit", "\"2026-02-30\" is not a valid date (YYYY-MM-DD)", 0);
  REQUIRE_PARSE_ERROR("visit in [\"2026-01-01\", \"soon\"]", "\"soon\" is not a valid date (YYYY-MM-DD)", 24);
  REQUIRE_PARSE_ERROR("at < \"2026-03-01\"", "\"2026-03-01\" is not a valid date-time (RFC 3339", 5);
  REQUIRE_PARSE_ERROR("at == \"2026-03-01T25:00:00Z\"", "is not a valid date-time", 6);
  // Valid literals of each kind are accepted.
  CHECK_NOTHROW(parse("decision == \"no\" or visit == \"2024-02-29\" or at > \"2026-03-01T09:30:00+01:00\""));
}

TEST_CASE("syntax errors name the problem and where it is", "[condition]") {
  REQUIRE_PARSE_ERROR("", "the condition is empty", 0);
  REQUIRE_PARSE_ERROR("   ", "the condition is empty", 3);
  REQUIRE_PARSE_ERROR("systolic > ", "the condition ends too early", 11);
  REQUIRE_PARSE_ERROR("(systolic > 1", "expected ')' to close the '(' at offset 0 but found the end of the condition",
                      13);
  REQUIRE_PARSE_ERROR("systolic > 1)", "unexpected ')' after the end of the condition", 12);
  REQUIRE_PARSE_ERROR("systolic > 1 foo", "unexpected 'foo' after the end of the condition", 13);
  REQUIRE_PARSE_ERROR("systolic > 1 adn pregnant", "unknown word 'adn' \u2014 did you mean 'and'?", 13);
  REQUIRE_PARSE_ERROR("(pregnant OR pregnant)", "unknown word 'OR' \u2014 did you mean 'or'?", 10);
  REQUIRE_PARSE_ERROR("systolic > == 1", "expected a value, a field name or '(' but found '=='", 11);
  REQUIRE_PARSE_ERROR("systolic = 1", "use '=='", 9);
  REQUIRE_PARSE_ERROR("pregnant && pregnant", "use 'and'", 9);
  REQUIRE_PARSE_ERROR("!pregnant", "use 'not'", 0);
  REQUIRE_PARSE_ERROR("systolic > 1 # x", "unexpected character '#'", 13);
  REQUIRE_PARSE_ERROR("notes == \"abc", "this string is never closed", 9);
  REQUIRE_PARSE_ERROR("notes == 'abc'", "double quotes", 9);
  REQUIRE_PARSE_ERROR(R"(notes == "a\nb")", "may only be followed by", 11);
  REQUIRE_PARSE_ERROR("1 < systolic < 3", "comparisons cannot be chained", 13);
  REQUIRE_PARSE_ERROR("systolic in []", "expected a number, a string, true or false in the list but found ']'", 13);
  REQUIRE_PARSE_ERROR("systolic in [spo2]", "expected a number, a string, true or false in the list", 13);
  REQUIRE_PARSE_ERROR("systolic in [1 2]", "expected ',' or ']' in the list but found '2'", 15);
  REQUIRE_PARSE_ERROR("systolic in 1", "expected '[' to start the list after 'in'", 12);
  REQUIRE_PARSE_ERROR("decision is here", "expected 'present' or 'not present' after 'is'", 12);
  REQUIRE_PARSE_ERROR("systolic not 3", "expected 'in' after 'not'", 13);
  REQUIRE_PARSE_ERROR("12abc > 1", "a number cannot run into letters", 0);
  REQUIRE_PARSE_ERROR("vitals. == 1", "expected a field name after 'vitals.'", 8);
  REQUIRE_PARSE_ERROR("systolic > 1.", "unexpected '.' after the end of the condition", 12);
  REQUIRE_PARSE_ERROR("systolic > 1e999", "a number cannot run into letters", 11);
  REQUIRE_PARSE_ERROR("systolic > 1" + std::string(400, '0'), "is too large", 11);
}

TEST_CASE("nesting depth and text length are bounded", "[condition]") {
  auto parenthesised = [](int depth) { return std::string(depth, '(') + "true" + std::string(depth, ')'); };
  CHECK(eval(parenthesised(64)));
  REQUIRE_PARSE_ERROR(parenthesised(65), "nested too deeply", 64);

  auto negated = [](int depth) {
    std::string text;
    for (int i = 0; i < depth; ++i) text += "not ";
    return text + "false";
  };
  CHECK(eval(negated(63)));
  REQUIRE_PARSE_ERROR(negated(65), "nested too deeply", 256);
  REQUIRE_PARSE_ERROR(std::string(65, '-') + "1 > 0", "nested too deeply", 64);

  // Long flat chains are not nesting: they stay within the limit however long the text.
  std::string chain = "systolic";
  while (chain.size() < 4000) chain += " + systolic";
  chain += " > 0";
  CHECK(eval(chain, R"({"systolic": 1})"));

  std::string longest = "true" + std::string(4092, ' ');
  REQUIRE(longest.size() == 4096);
  CHECK(eval(longest));
  REQUIRE_PARSE_ERROR(longest + " ", "longer than 4096 characters", 4096);
}

TEST_CASE("fields() lists each field once in order of first appearance", "[condition]") {
  Condition c = parse(
      "systolic > 1 and vitals.systolic < 3 or decision == \"yes\" and intake.weight > 2 and spo2 > 0.5 "
      "or decision is present");
  std::vector<FieldRef> expected{
      {"vitals", "systolic"}, {"vitals", "decision"}, {"intake", "weight"}, {"vitals", "spo2"}};
  CHECK(c.fields() == expected);
  CHECK(parse("true").fields().empty());
}

TEST_CASE("text() returns the condition as written, and copies evaluate alike", "[condition]") {
  const std::string text = "  systolic   >=140 ";
  Condition original = parse(text);
  CHECK(original.text() == text);
  Condition copy = original;
  boost::json::value v = 150;
  ValueLookup lookup = [&](const FieldRef&) { return &v; };
  CHECK(copy.evaluate(lookup));
  CHECK(original.evaluate(lookup));
  v = 100;
  CHECK_FALSE(copy.evaluate(lookup));
}

TEST_CASE("unknown fields are reported with the resolver's reason", "[condition]") {
  REQUIRE_PARSE_ERROR("temperature > 37", "no field 'temperature' in step 'vitals'", 0);
  REQUIRE_PARSE_ERROR("spo2 > 1 and labs.potassium == 1", "no step 'labs'", 13);
  REQUIRE_PARSE_ERROR("intake.height > 1", "no field 'height' in step 'intake'", 0);
  // A capitalised keyword is read as a name; the message points at the keyword it resembles.
  REQUIRE_PARSE_ERROR("NOT pregnant", "no field 'NOT' in step 'vitals' \u2014 did you mean 'not'?", 0);

  FieldResolver silent = [](std::string_view, std::string&) -> std::optional<ResolvedField> { return std::nullopt; };
  try {
    Condition::parse("x == 1", silent);
    FAIL("expected a ConditionError");
  } catch (const ConditionError& e) {
    CHECK_THAT(e.what(), Catch::Contains("unknown field 'x'"));
    CHECK(e.offset() == 0);
  }
}
