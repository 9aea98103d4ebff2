#pragma once
// The condition language of workflow files: a tiny, total, side-effect-free expression grammar.
//
//   expr    := or
//   or      := and ("or" and)*
//   and     := not ("and" not)*
//   not     := "not" not | compare
//   compare := sum [ ("==" | "!=" | "<" | "<=" | ">" | ">=") sum
//                  | ["not"] "in" "[" literal ("," literal)* "]"
//                  | "is" ["not"] "present" ]
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "/") unary)*
//   unary   := "-" unary | primary
//   primary := number | "string" | true | false | name | "(" expr ")"
//   name    := identifier ["." identifier]          (field, or step.field)
//
// Types are checked when the workflow loads (see parse). Evaluation is total: a comparison,
// arithmetic or bare boolean that touches a field with no value is false (division by zero too);
// `is present` is how a workflow asks whether a value exists.
#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace clinicflow::workflow {

enum class FieldType { string, integer, number, boolean, date, datetime, enumeration };

std::string_view to_string(FieldType t);
std::optional<FieldType> field_type_from_string(std::string_view s);

// Where a value lives in a case: the data submitted for `step`, key `field`.
struct FieldRef {
  std::string step;
  std::string field;
  bool operator==(const FieldRef&) const = default;
};

struct ResolvedField {
  FieldRef ref;
  FieldType type;
  std::vector<std::string> enum_values;  // only for FieldType::enumeration
};

// Maps a name as written ("systolic" or "vitals.systolic") to a field; on failure returns nullopt
// and writes a plain-words reason into `why` ("no field 'x' in step 'y'").
using FieldResolver = std::function<std::optional<ResolvedField>(std::string_view name, std::string& why)>;

// Returns the stored value of a field, or nullptr when the case has none.
using ValueLookup = std::function<const boost::json::value*(const FieldRef&)>;

class ConditionError : public std::runtime_error {
 public:
  ConditionError(std::size_t offset, const std::string& message) : std::runtime_error(message), offset_(offset) {}
  // 0-based offset into the condition text where the problem starts.
  std::size_t offset() const { return offset_; }

 private:
  std::size_t offset_;
};

class Condition {
 public:
  // Parses and type-checks. Throws ConditionError naming the first problem and where it is:
  // syntax errors, unknown fields, comparisons between incompatible types (a number with a
  // string, an enum with a value it cannot take, a date with a string that is not a date),
  // a non-boolean result.
  static Condition parse(std::string_view text, const FieldResolver& resolve);

  bool evaluate(const ValueLookup& lookup) const;

  const std::string& text() const { return text_; }
  // Every field the condition reads, in order of first appearance, without duplicates.
  const std::vector<FieldRef>& fields() const { return fields_; }

  struct Node;  // defined in condition.cpp

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
  std::vector<FieldRef> fields_;
};

}  // namespace clinicflow::workflow
