#include "workflow/condition.hpp"

#include "util/time.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>
#include <variant>

namespace clinicflow::workflow {

std::string_view to_string(FieldType t) {
  switch (t) {
    case FieldType::string: return "string";
    case FieldType::integer: return "integer";
    case FieldType::number: return "number";
    case FieldType::boolean: return "boolean";
    case FieldType::date: return "date";
    case FieldType::datetime: return "datetime";
    case FieldType::enumeration: return "enum";
  }
  return "string";
}

std::optional<FieldType> field_type_from_string(std::string_view s) {
  for (FieldType t : {FieldType::string, FieldType::integer, FieldType::number, FieldType::boolean, FieldType::date,
                      FieldType::datetime, FieldType::enumeration})
    if (to_string(t) == s) return t;
  return std::nullopt;
}

namespace {

// Untrusted workflow files reach the parser; these bounds keep its recursion (and the
// evaluator's) far from the end of the stack.
constexpr std::size_t kMaxTextLength = 4096;
constexpr int kMaxNesting = 64;

// What an expression produces when evaluated. monostate is "no value": a missing field, a JSON
// null, a value of the wrong kind, or arithmetic that could not be done. Date and date-time
// fields evaluate to numbers (days since the epoch, ms since the epoch) so that offsets are
// normalised and comparisons are exact.
using Value = std::variant<std::monostate, double, bool, std::string>;

enum class CompareOp { equal, not_equal, less, less_equal, greater, greater_equal };
enum class ArithmeticOp { add, subtract, multiply, divide };

}  // namespace

using NodePtr = std::shared_ptr<const Condition::Node>;

struct Condition::Node {
  struct Literal {
    Value value;
  };
  struct FieldRead {
    FieldRef ref;
    FieldType type;
  };
  struct Negate {
    NodePtr operand;
  };
  // A left-to-right chain of same-precedence operators, kept flat so a long sum does not make
  // the tree (and the evaluator's recursion) deep.
  struct Arithmetic {
    NodePtr first;
    std::vector<std::pair<ArithmeticOp, NodePtr>> rest;
  };
  struct Comparison {
    CompareOp op;
    NodePtr left;
    NodePtr right;
  };
  struct Membership {
    NodePtr left;
    std::vector<Value> members;
    bool negated;
  };
  struct Presence {
    FieldRef ref;
    bool negated;
  };
  struct Not {
    NodePtr operand;
  };
  struct AllOf {
    std::vector<NodePtr> operands;
  };
  struct AnyOf {
    std::vector<NodePtr> operands;
  };

  std::variant<Literal, FieldRead, Negate, Arithmetic, Comparison, Membership, Presence, Not, AllOf, AnyOf> form;
};

namespace {

using Node = Condition::Node;

template <typename Form>
NodePtr make_node(Form form) {
  return std::make_shared<const Node>(Node{std::move(form)});
}

// ---------------------------------------------------------------------------------------------
// Evaluation

class Evaluator {
 public:
  explicit Evaluator(const ValueLookup& lookup) : lookup_(lookup) {}

  Value value_of(const Node& node) const {
    return std::visit([this](const auto& form) { return eval(form); }, node.form);
  }

  bool holds(const Node& node) const {
    Value v = value_of(node);
    const bool* b = std::get_if<bool>(&v);
    return b && *b;
  }

 private:
  Value eval(const Node::Literal& n) const { return n.value; }

  Value eval(const Node::FieldRead& n) const {
    const boost::json::value* v = lookup_(n.ref);
    if (!v) return {};
    switch (n.type) {
      case FieldType::integer:
      case FieldType::number:
        if (v->is_int64()) return static_cast<double>(v->get_int64());
        if (v->is_uint64()) return static_cast<double>(v->get_uint64());
        if (v->is_double()) return v->get_double();
        return {};
      case FieldType::boolean:
        if (v->is_bool()) return v->get_bool();
        return {};
      case FieldType::string:
      case FieldType::enumeration:
        if (v->is_string()) return std::string(v->get_string());
        return {};
      case FieldType::date:
        if (v->is_string())
          if (auto days = parse_date(v->get_string())) return static_cast<double>(*days);
        return {};
      case FieldType::datetime:
        if (v->is_string())
          if (auto ms = parse_rfc3339(v->get_string())) return static_cast<double>(*ms);
        return {};
    }
    return {};
  }

  Value eval(const Node::Negate& n) const {
    Value v = value_of(*n.operand);
    if (const double* d = std::get_if<double>(&v)) return -*d;
    return {};
  }

  Value eval(const Node::Arithmetic& n) const {
    Value first = value_of(*n.first);
    const double* acc_ptr = std::get_if<double>(&first);
    if (!acc_ptr) return {};
    double acc = *acc_ptr;
    for (const auto& [op, operand] : n.rest) {
      Value v = value_of(*operand);
      const double* d = std::get_if<double>(&v);
      if (!d) return {};
      switch (op) {
        case ArithmeticOp::add: acc += *d; break;
        case ArithmeticOp::subtract: acc -= *d; break;
        case ArithmeticOp::multiply: acc *= *d; break;
        case ArithmeticOp::divide:
          if (*d == 0) return {};
          acc /= *d;
          break;
      }
    }
    // Overflow to infinity (and inf - inf) is not a number a clinic means; treat it as no value.
    if (!std::isfinite(acc)) return {};
    return acc;
  }

  Value eval(const Node::Comparison& n) const {
    Value left = value_of(*n.left);
    Value right = value_of(*n.right);
    if (left.index() != right.index() || std::holds_alternative<std::monostate>(left)) return false;
    return std::visit(
        [&](const auto& l) -> Value {
          using T = std::decay_t<decltype(l)>;
          if constexpr (std::is_same_v<T, std::monostate>) {
            return false;
          } else {
            const T& r = std::get<T>(right);
            switch (n.op) {
              case CompareOp::equal: return l == r;
              case CompareOp::not_equal: return l != r;
              case CompareOp::less: return l < r;
              case CompareOp::less_equal: return l <= r;
              case CompareOp::greater: return l > r;
              case CompareOp::greater_equal: return l >= r;
            }
            return false;
          }
        },
        left);
  }

  Value eval(const Node::Membership& n) const {
    Value left = value_of(*n.left);
    if (std::holds_alternative<std::monostate>(left)) return false;
    bool found = std::find(n.members.begin(), n.members.end(), left) != n.members.end();
    return found != n.negated;
  }

  Value eval(const Node::Presence& n) const {
    const boost::json::value* v = lookup_(n.ref);
    bool present = v && !v->is_null();
    return present != n.negated;
  }

  Value eval(const Node::Not& n) const { return !holds(*n.operand); }

  Value eval(const Node::AllOf& n) const {
    return std::all_of(n.operands.begin(), n.operands.end(), [this](const NodePtr& p) { return holds(*p); });
  }

  Value eval(const Node::AnyOf& n) const {
    return std::any_of(n.operands.begin(), n.operands.end(), [this](const NodePtr& p) { return holds(*p); });
  }

  const ValueLookup& lookup_;
};

// ---------------------------------------------------------------------------------------------
// Lexing

enum class Tok {
  end, identifier, number, string,
  kw_and, kw_or, kw_not, kw_in, kw_is, kw_present, kw_true, kw_false,
  equal, not_equal, less, less_equal, greater, greater_equal,
  plus, minus, star, slash, open_paren, close_paren, open_bracket, close_bracket, comma, dot,
};

struct Token {
  Tok kind;
  std::size_t offset;
  std::size_t length;
  double number = 0;         // Tok::number
  std::string string_value = {};  // Tok::string (unescaped), Tok::identifier (the word)
};

constexpr std::array<std::pair<std::string_view, Tok>, 8> kKeywords{{
    {"and", Tok::kw_and},
    {"or", Tok::kw_or},
    {"not", Tok::kw_not},
    {"in", Tok::kw_in},
    {"is", Tok::kw_is},
    {"present", Tok::kw_present},
    {"true", Tok::kw_true},
    {"false", Tok::kw_false},
}};

bool is_identifier_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }

// Optimal string alignment distance (edits plus adjacent swaps), enough to catch "adn" for "and".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// A keyword the author probably meant when writing `word`: the same word in other capitals, or
// (for words of three letters or more, where a one-letter slip is unlikely to be deliberate) one
// edit away.
std::optional<std::string_view> similar_keyword(std::string_view word) {
  if (word.size() > 16) return std::nullopt;
  std::string lower(word);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [keyword, kind] : kKeywords)
    if (lower == keyword) return keyword;
  if (word.size() < 3) return std::nullopt;
  for (const auto& [keyword, kind] : kKeywords)
    if (edit_distance(lower, keyword) <= 1) return keyword;
  return std::nullopt;
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  std::vector<Token> tokens() {
    std::vector<Token> out;
    while (true) {
      while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      if (pos_ >= text_.size()) break;
      out.push_back(next());
    }
    out.push_back(Token{Tok::end, text_.size(), 0});
    return out;
  }

 private:
  Token next() {
    const std::size_t start = pos_;
    const char c = text_[pos_];
    if (is_identifier_start(c)) return word(start);
    if (is_digit(c)) return number(start);
    if (c == '"') return string(start);
    if (c == '\'')
      throw ConditionError(start, "strings are written in double quotes (\"like this\"), not single quotes");
    auto two = text_.substr(pos_, 2);
    auto op = [&](Tok kind, std::size_t length) {
      pos_ += length;
      return Token{kind, start, length};
    };
    if (two == "==") return op(Tok::equal, 2);
    if (two == "!=") return op(Tok::not_equal, 2);
    if (two == "<=") return op(Tok::less_equal, 2);
    if (two == ">=") return op(Tok::greater_equal, 2);
    switch (c) {
      case '<': return op(Tok::less, 1);
      case '>': return op(Tok::greater, 1);
      case '+': return op(Tok::plus, 1);
      case '-': return op(Tok::minus, 1);
      case '*': return op(Tok::star, 1);
      case '/': return op(Tok::slash, 1);
      case '(': return op(Tok::open_paren, 1);
      case ')': return op(Tok::close_paren, 1);
      case '[': return op(Tok::open_bracket, 1);
      case ']': return op(Tok::close_bracket, 1);
      case ',': return op(Tok::comma, 1);
      case '.': return op(Tok::dot, 1);
      case '=': throw ConditionError(start, "use '==' to compare values ('=' alone is not an operator)");
      case '!': throw ConditionError(start, "use 'not' instead of '!'");
      case '&': throw ConditionError(start, "use 'and' instead of '&'");
      case '|': throw ConditionError(start, "use 'or' instead of '|'");
      default: break;
    }
    if (std::isprint(static_cast<unsigned char>(c)))
      throw ConditionError(start, std::string("unexpected character '") + c + "'");
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(c)));
    throw ConditionError(start, std::string("unexpected character (byte ") + hex + ")");
  }

  Token word(std::size_t start) {
    while (pos_ < text_.size() && is_identifier_char(text_[pos_])) ++pos_;
    std::string_view w = text_.substr(start, pos_ - start);
    for (const auto& [keyword, kind] : kKeywords)
      if (w == keyword) return Token{kind, start, w.size()};
    return Token{Tok::identifier, start, w.size(), 0, std::string(w)};
  }

  Token number(std::size_t start) {
    while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    if (pos_ + 1 < text_.size() && text_[pos_] == '.' && is_digit(text_[pos_ + 1])) {
      ++pos_;
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && is_identifier_char(text_[pos_]))
      throw ConditionError(start, "a number cannot run into letters; put a space or an operator between them");
    double value = 0;
    auto [end, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, value);
    if (ec != std::errc() || end != text_.data() + pos_ || !std::isfinite(value))
      throw ConditionError(start, "the number '" + std::string(text_.substr(start, pos_ - start)) + "' is too large");
    return Token{Tok::number, start, pos_ - start, value};
  }

  Token string(std::size_t start) {
    ++pos_;  // opening quote
    std::string value;
    while (true) {
      if (pos_ >= text_.size()) throw ConditionError(start, "this string is never closed (a '\"' is missing)");
      char c = text_[pos_];
      if (c == '"') break;
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) throw ConditionError(start, "this string is never closed (a '\"' is missing)");
        char escaped = text_[pos_ + 1];
        if (escaped != '"' && escaped != '\\')
          throw ConditionError(pos_, "inside a string, '\\' may only be followed by '\"' or '\\'");
        value += escaped;
        pos_ += 2;
        continue;
      }
      value += c;
      ++pos_;
    }
    ++pos_;  // closing quote
    return Token{Tok::string, start, pos_ - start, 0, std::move(value)};
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Parsing and type checking

// The static types of the language: field types with integer and number merged.
enum class Type { boolean, number, string, enumeration, date, datetime };

Type type_of(FieldType t) {
  switch (t) {
    case FieldType::integer:
    case FieldType::number: return Type::number;
    case FieldType::boolean: return Type::boolean;
    case FieldType::string: return Type::string;
    case FieldType::enumeration: return Type::enumeration;
    case FieldType::date: return Type::date;
    case FieldType::datetime: return Type::datetime;
  }
  return Type::string;
}

bool is_text(Type t) { return t == Type::string || t == Type::enumeration || t == Type::date || t == Type::datetime; }

// Number, boolean and text are the groups that can be compared with each other at all.
int category_of(Type t) { return is_text(t) ? 2 : t == Type::number ? 1 : 0; }

std::string_view type_word(Type t) {
  switch (t) {
    case Type::boolean: return "boolean";
    case Type::number: return "number";
    case Type::string: return "string";
    case Type::enumeration: return "enum";
    case Type::date: return "date";
    case Type::datetime: return "datetime";
  }
  return "string";
}

std::string_view value_phrase(Type t) {
  switch (t) {
    case Type::boolean: return "a true/false value";
    case Type::number: return "a number";
    case Type::string: return "a string";
    case Type::enumeration: return "an enum value";
    case Type::date: return "a date";
    case Type::datetime: return "a date-time";
  }
  return "a value";
}

// A parsed sub-expression with what the type checker needs to know about it.
struct Operand {
  NodePtr node;
  Type type;
  std::size_t offset;
  std::optional<ResolvedField> field;  // the operand is a field name (perhaps in parentheses)
  std::string name;                    // that name as written, for messages
  std::optional<std::string> text_literal;  // the operand is a string literal
};

// "number field 'systolic'" or "a string".
std::string describe(const Operand& o) {
  if (o.field) return std::string(type_word(o.type)) + " field '" + o.name + "'";
  return std::string(value_phrase(o.type));
}

// "'systolic' is a number field" or "this is a string", to finish "..., but ".
std::string what_is(const Operand& o) {
  if (o.field) {
    std::string_view word = type_word(o.type);
    std::string_view article = (word[0] == 'e') ? "an " : "a ";
    return "'" + o.name + "' is " + std::string(article) + std::string(word) + " field";
  }
  return "this is " + std::string(value_phrase(o.type));
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// Checks a string literal against the field it is compared with and returns the value it stands
// for when evaluated: the string itself, or the day / instant a date or date-time field reads as.
Value literal_for_field(const ResolvedField& field, const std::string& field_name, const std::string& literal,
                        std::size_t literal_offset) {
  switch (field.type) {
    case FieldType::enumeration:
      if (std::find(field.enum_values.begin(), field.enum_values.end(), literal) == field.enum_values.end())
        throw ConditionError(literal_offset, "'" + literal + "' is not one of the values of '" + field_name + "' (" +
                                                 join(field.enum_values) + ")");
      return literal;
    case FieldType::date:
      if (auto days = parse_date(literal)) return static_cast<double>(*days);
      throw ConditionError(literal_offset, "\"" + literal + "\" is not a valid date (YYYY-MM-DD)");
    case FieldType::datetime:
      if (auto ms = parse_rfc3339(literal)) return static_cast<double>(*ms);
      throw ConditionError(literal_offset, "\"" + literal +
                                               "\" is not a valid date-time (RFC 3339, such as 2026-03-01T09:30:00Z)");
    default:
      return literal;
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens, const FieldResolver& resolve)
      : text_(text), tokens_(std::move(tokens)), resolve_(resolve) {}

  NodePtr parse_condition() {
    Operand root = parse_or();
    if (peek().kind != Tok::end) {
      const Token& t = peek();
      if (t.kind == Tok::identifier)
        if (auto keyword = similar_keyword(t.string_value))
          throw ConditionError(t.offset, "unknown word '" + t.string_value + "' \u2014 did you mean '" +
                                             std::string(*keyword) + "'?");
      throw ConditionError(t.offset, "unexpected " + spelled(t) + " after the end of the condition");
    }
    require_boolean(root, "the condition must be true or false");
    return root.node;
  }

  std::vector<FieldRef> take_fields() { return std::move(fields_); }

 private:
  // Counts one level of nesting ('(', 'not', unary '-') for as long as it lives.
  class NestingGuard {
   public:
    NestingGuard(Parser& parser, std::size_t offset) : parser_(parser) {
      if (++parser_.depth_ > kMaxNesting)
        throw ConditionError(offset, "the condition is nested too deeply (more than " + std::to_string(kMaxNesting) +
                                         " levels of parentheses, 'not' or '-')");
    }
    ~NestingGuard() { --parser_.depth_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    Parser& parser_;
  };

  const Token& peek(std::size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& advance() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool accept(Tok kind) {
    if (peek().kind != kind) return false;
    advance();
    return true;
  }

  std::string spelled(const Token& t) const {
    if (t.kind == Tok::end) return "the end of the condition";
    return "'" + std::string(text_.substr(t.offset, t.length)) + "'";
  }

  [[noreturn]] void fail_expecting(const std::string& expectation) const {
    const Token& t = peek();
    if (t.kind == Tok::identifier)
      if (auto keyword = similar_keyword(t.string_value))
        throw ConditionError(t.offset, "unknown word '" + t.string_value + "' \u2014 did you mean '" +
                                           std::string(*keyword) + "'?");
    throw ConditionError(t.offset, "expected " + expectation + " but found " + spelled(t));
  }

  void require_boolean(const Operand& o, const std::string& rule) const {
    if (o.type != Type::boolean) throw ConditionError(o.offset, rule + ", but " + what_is(o));
  }

  void require_number(const Operand& o, const std::string& rule) const {
    if (o.type != Type::number) throw ConditionError(o.offset, rule + ", but " + what_is(o));
  }

  Operand parse_or() {
    Operand first = parse_and();
    if (peek().kind != Tok::kw_or) return first;
    require_boolean(first, "'or' needs true or false on both sides");
    Node::AnyOf any;
    any.operands.push_back(first.node);
    while (accept(Tok::kw_or)) {
      Operand next = parse_and();
      require_boolean(next, "'or' needs true or false on both sides");
      any.operands.push_back(next.node);
    }
    return Operand{make_node(std::move(any)), Type::boolean, first.offset, std::nullopt, {}, std::nullopt};
  }

  Operand parse_and() {
    Operand first = parse_not();
    if (peek().kind != Tok::kw_and) return first;
    require_boolean(first, "'and' needs true or false on both sides");
    Node::AllOf all;
    all.operands.push_back(first.node);
    while (accept(Tok::kw_and)) {
      Operand next = parse_not();
      require_boolean(next, "'and' needs true or false on both sides");
      all.operands.push_back(next.node);
    }
    return Operand{make_node(std::move(all)), Type::boolean, first.offset, std::nullopt, {}, std::nullopt};
  }

  Operand parse_not() {
    if (peek().kind != Tok::kw_not) return parse_compare();
    std::size_t offset = advance().offset;
    NestingGuard guard(*this, offset);
    Operand operand = parse_not();
    require_boolean(operand, "'not' needs true or false after it");
    return Operand{make_node(Node::Not{operand.node}), Type::boolean, offset, std::nullopt, {}, std::nullopt};
  }

  static std::optional<CompareOp> compare_op(Tok kind) {
    switch (kind) {
      case Tok::equal: return CompareOp::equal;
      case Tok::not_equal: return CompareOp::not_equal;
      case Tok::less: return CompareOp::less;
      case Tok::less_equal: return CompareOp::less_equal;
      case Tok::greater: return CompareOp::greater;
      case Tok::greater_equal: return CompareOp::greater_equal;
      default: return std::nullopt;
    }
  }

  Operand parse_compare() {
    Operand left = parse_sum();
    Operand result;
    if (auto op = compare_op(peek().kind)) {
      const Token& op_token = advance();
      std::string symbol(text_.substr(op_token.offset, op_token.length));
      Operand right = parse_sum();
      result = comparison(*op, symbol, std::move(left), std::move(right));
    } else if (peek().kind == Tok::kw_in || (peek().kind == Tok::kw_not && peek(1).kind == Tok::kw_in)) {
      bool negated = accept(Tok::kw_not);
      advance();  // 'in'
      result = membership(std::move(left), negated);
    } else if (peek().kind == Tok::kw_not) {
      advance();
      fail_expecting("'in' after 'not'");
    } else if (peek().kind == Tok::kw_is) {
      advance();
      bool negated = accept(Tok::kw_not);
      if (!accept(Tok::kw_present))
        fail_expecting(negated ? "'present' after 'is not'" : "'present' or 'not present' after 'is'");
      result = presence(std::move(left), negated);
    } else {
      return left;
    }
    if (compare_op(peek().kind) || peek().kind == Tok::kw_in || peek().kind == Tok::kw_is)
      throw ConditionError(peek().offset, "comparisons cannot be chained; join them with 'and' (a < b and b < c)");
    return result;
  }

  Operand comparison(CompareOp op, const std::string& symbol, Operand left, Operand right) const {
    const bool ordering = op != CompareOp::equal && op != CompareOp::not_equal;
    if (ordering) {
      for (const Operand* side : {&left, &right}) {
        bool orderable = side->type == Type::number || side->type == Type::date || side->type == Type::datetime ||
                         side->text_literal.has_value();
        if (!orderable)
          throw ConditionError(side->offset,
                               "'" + symbol + "' only compares numbers, dates and date-times, but " + what_is(*side));
      }
    }
    if (category_of(left.type) != category_of(right.type))
      throw ConditionError(right.offset, "cannot compare " + describe(left) + " with " + describe(right));
    if (is_text(left.type)) {
      if (left.field && right.field) {
        if (left.type != right.type)
          throw ConditionError(right.offset, "cannot compare " + describe(left) + " with " + describe(right));
      } else if (left.field && right.text_literal) {
        right.node =
            make_node(Node::Literal{literal_for_field(*left.field, left.name, *right.text_literal, right.offset)});
      } else if (right.field && left.text_literal) {
        left.node =
            make_node(Node::Literal{literal_for_field(*right.field, right.name, *left.text_literal, left.offset)});
      } else if (ordering) {
        throw ConditionError(left.offset, "'" + symbol + "' cannot order two strings; " +
                                              "only numbers, dates and date-times can be ordered");
      }
    }
    return Operand{make_node(Node::Comparison{op, left.node, right.node}), Type::boolean, left.offset, std::nullopt, {},
                   std::nullopt};
  }

  Operand membership(Operand left, bool negated) {
    if (left.type == Type::boolean)
      throw ConditionError(left.offset, "'in' needs a number or text on its left, but " + what_is(left));
    if (!accept(Tok::open_bracket)) fail_expecting("'[' to start the list after 'in'");
    Node::Membership node{left.node, {}, negated};
    do {
      Operand item = parse_list_item();
      if (category_of(item.type) != category_of(left.type))
        throw ConditionError(item.offset, "cannot compare " + describe(left) + " with " + describe(item));
      if (item.text_literal && left.field)
        node.members.push_back(literal_for_field(*left.field, left.name, *item.text_literal, item.offset));
      else if (item.text_literal)
        node.members.push_back(*item.text_literal);
      else
        node.members.push_back(std::get<Node::Literal>(item.node->form).value);
    } while (accept(Tok::comma));
    if (!accept(Tok::close_bracket)) fail_expecting("',' or ']' in the list");
    return Operand{make_node(std::move(node)), Type::boolean, left.offset, std::nullopt, {}, std::nullopt};
  }

  Operand parse_list_item() {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::number:
      case Tok::string:
      case Tok::kw_true:
      case Tok::kw_false:
        return parse_primary();
      case Tok::minus:
        if (peek(1).kind == Tok::number) {
          std::size_t offset = advance().offset;
          double value = -advance().number;
          return Operand{make_node(Node::Literal{value}), Type::number, offset, std::nullopt, {}, std::nullopt};
        }
        break;
      default: break;
    }
    fail_expecting("a number, a string, true or false in the list");
  }

  Operand presence(Operand left, bool negated) const {
    if (!left.field)
      throw ConditionError(left.offset, std::string(negated ? "'is not present'" : "'is present'") +
                                            " needs a field name on its left, such as 'notes is present'");
    return Operand{make_node(Node::Presence{left.field->ref, negated}), Type::boolean, left.offset, std::nullopt, {},
                   std::nullopt};
  }

  static std::optional<ArithmeticOp> arithmetic_op(Tok kind, bool additive) {
    if (additive && kind == Tok::plus) return ArithmeticOp::add;
    if (additive && kind == Tok::minus) return ArithmeticOp::subtract;
    if (!additive && kind == Tok::star) return ArithmeticOp::multiply;
    if (!additive && kind == Tok::slash) return ArithmeticOp::divide;
    return std::nullopt;
  }

  Operand parse_sum() { return parse_chain(true); }
  Operand parse_product() { return parse_chain(false); }

  // One precedence level of arithmetic: product chains for `additive`, unary chains otherwise.
  Operand parse_chain(bool additive) {
    auto parse_operand = [&] { return additive ? parse_product() : parse_unary(); };
    Operand first = parse_operand();
    if (!arithmetic_op(peek().kind, additive)) return first;
    Node::Arithmetic chain{first.node, {}};
    std::string first_symbol(text_.substr(peek().offset, 1));
    require_number(first, "'" + first_symbol + "' needs numbers on both sides");
    while (auto op = arithmetic_op(peek().kind, additive)) {
      std::string symbol(text_.substr(advance().offset, 1));
      Operand next = parse_operand();
      require_number(next, "'" + symbol + "' needs numbers on both sides");
      chain.rest.emplace_back(*op, next.node);
    }
    return Operand{make_node(std::move(chain)), Type::number, first.offset, std::nullopt, {}, std::nullopt};
  }

  Operand parse_unary() {
    if (peek().kind != Tok::minus) return parse_primary();
    std::size_t offset = advance().offset;
    NestingGuard guard(*this, offset);
    Operand operand = parse_unary();
    require_number(operand, "'-' needs a number after it");
    return Operand{make_node(Node::Negate{operand.node}), Type::number, offset, std::nullopt, {}, std::nullopt};
  }

  Operand parse_primary() {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::number:
        advance();
        return Operand{make_node(Node::Literal{t.number}), Type::number, t.offset, std::nullopt, {}, std::nullopt};
      case Tok::string:
        advance();
        return Operand{make_node(Node::Literal{t.string_value}), Type::string, t.offset, std::nullopt, {},
                       t.string_value};
      case Tok::kw_true:
      case Tok::kw_false:
        advance();
        return Operand{make_node(Node::Literal{t.kind == Tok::kw_true}), Type::boolean, t.offset, std::nullopt, {},
                       std::nullopt};
      case Tok::identifier: return parse_name();
      case Tok::open_paren: {
        advance();
        NestingGuard guard(*this, t.offset);
        Operand inner = parse_or();
        if (!accept(Tok::close_paren)) fail_expecting("')' to close the '(' at offset " + std::to_string(t.offset));
        inner.offset = t.offset;
        return inner;
      }
      case Tok::end:
        if (tokens_.size() == 1) throw ConditionError(t.offset, "the condition is empty");
        throw ConditionError(t.offset, "the condition ends too early; expected a value or a field name");
      default: fail_expecting("a value, a field name or '('");
    }
  }

  Operand parse_name() {
    const Token& first = advance();
    std::string name = first.string_value;
    if (peek().kind == Tok::dot) {
      advance();
      if (peek().kind != Tok::identifier) fail_expecting("a field name after '" + name + ".'");
      name += "." + advance().string_value;
    }
    std::string why;
    std::optional<ResolvedField> field = resolve_(name, why);
    if (!field) {
      if (why.empty()) why = "unknown field '" + name + "'";
      if (name.find('.') == std::string::npos)
        if (auto keyword = similar_keyword(name)) why += " \u2014 did you mean '" + std::string(*keyword) + "'?";
      throw ConditionError(first.offset, why);
    }
    if (std::find(fields_.begin(), fields_.end(), field->ref) == fields_.end()) fields_.push_back(field->ref);
    Type type = type_of(field->type);
    NodePtr node = make_node(Node::FieldRead{field->ref, field->type});
    return Operand{std::move(node), type, first.offset, std::move(field), std::move(name), std::nullopt};
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  const FieldResolver& resolve_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  std::vector<FieldRef> fields_;
};

}  // namespace

Condition Condition::parse(std::string_view text, const FieldResolver& resolve) {
  if (text.size() > kMaxTextLength)
    throw ConditionError(kMaxTextLength,
                         "the condition is longer than " + std::to_string(kMaxTextLength) + " characters");
  Parser parser(text, Lexer(text).tokens(), resolve);
  Condition condition;
  condition.root_ = parser.parse_condition();
  condition.text_ = std::string(text);
  condition.fields_ = parser.take_fields();
  return condition;
}

bool Condition::evaluate(const ValueLookup& lookup) const {
  if (!root_) return false;
  return Evaluator(lookup).holds(*root_);
}

}  // namespace clinicflow::workflow
