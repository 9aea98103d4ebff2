#pragma once
// Writes a JSON document piece by piece into a string: every value through boost::json's
// serializer, so escaping and number formatting are boost::json's, and the commas between
// members and elements are placed here. For hot paths that would otherwise build a tree only to
// serialize it (a case's stored state, its API view), and that can paste text serialized
// earlier (a step's form schema).
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace clinicflow::util {

class JsonText {
 public:
  explicit JsonText(std::string& out) : out_(out) {}

  JsonText& begin_object() { return open('{'); }
  JsonText& end_object() { return close('}'); }
  JsonText& begin_array() { return open('['); }
  JsonText& end_array() { return close(']'); }

  // A member's name; its value comes next. `name` must need no escaping (the callers' own ASCII
  // literals); a name taken from data goes through member().
  JsonText& key(std::string_view name) {
    separate();
    out_ += '"';
    out_ += name;
    out_ += "\":";
    after_key_ = true;
    return *this;
  }
  JsonText& member(std::string_view name) {
    value(name);
    out_ += ':';
    after_key_ = true;
    return *this;
  }

  JsonText& value(const boost::json::value& v) { return serialize(&v); }
  JsonText& value(const boost::json::object& v) { return serialize(&v); }
  JsonText& value(const boost::json::array& v) { return serialize(&v); }
  JsonText& value(std::string_view v) {
    separate();
    serializer_.reset(v);
    return drain();
  }
  JsonText& value(const std::string& v) { return value(std::string_view(v)); }
  JsonText& value(const char* v) { return value(std::string_view(v)); }
  JsonText& value(std::int64_t v) {
    separate();
    char digits[24];
    out_.append(digits, std::to_chars(digits, digits + sizeof digits, v).ptr);
    return *this;
  }
  JsonText& value(int v) { return value(std::int64_t{v}); }
  JsonText& value(bool v) {
    separate();
    out_ += v ? "true" : "false";
    return *this;
  }
  // A value that is already JSON text (serialized earlier).
  JsonText& json(std::string_view text) {
    separate();
    out_ += text;
    return *this;
  }

 private:
  // Before a member or an element: a comma unless it is the first of its object or array (a
  // member's value follows its name directly).
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ == 0) return;
    std::uint64_t bit = std::uint64_t{1} << (depth_ - 1);
    if (written_ & bit) out_ += ',';
    written_ |= bit;
  }
  JsonText& open(char bracket) {
    separate();
    out_ += bracket;
    ++depth_;  // the callers' documents nest a few levels; values nested deeper go through serializer_
    written_ &= ~(std::uint64_t{1} << (depth_ - 1));
    return *this;
  }
  JsonText& close(char bracket) {
    out_ += bracket;
    --depth_;
    return *this;
  }
  template <class T>
  JsonText& serialize(const T* v) {
    separate();
    serializer_.reset(v);
    return drain();
  }
  JsonText& drain() {
    char buffer[1024];
    while (!serializer_.done()) out_ += serializer_.read(buffer, sizeof buffer);
    return *this;
  }

  std::string& out_;
  boost::json::serializer serializer_;
  int depth_ = 0;              // objects and arrays open (at most 64)
  std::uint64_t written_ = 0;  // bit d-1: the one open at depth d has a member or element already
  bool after_key_ = false;
};

}  // namespace clinicflow::util
