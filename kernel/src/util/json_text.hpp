#pragma once
// Writes a JSON document piece by piece into a string: every value through boost::json's
// serializer, so escaping and number formatting are boost::json's. For hot paths that would
// otherwise build a tree only to serialize it (a case's stored state, its API view), and that
// can paste text serialized earlier (a step's form schema).
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

  JsonText& value(const boost::json::value& v) { return serialize(&v); }
  JsonText& value(const boost::json::object& v) { return serialize(&v); }
  JsonText& value(const boost::json::array& v) { return serialize(&v); }
  JsonText& value(std::string_view v) {
    serializer_.reset(v);
    return drain();
  }
  JsonText& value(const std::string& v) { return value(std::string_view(v)); }
  JsonText& value(const char* v) { return value(std::string_view(v)); }
  JsonText& value(std::int64_t v) {
    char digits[24];
    out_.append(digits, std::to_chars(digits, digits + sizeof digits, v).ptr);
    return *this;
  }
  JsonText& value(int v) { return value(std::int64_t{v}); }
  JsonText& value(bool v) {
    out_ += v ? "true" : "false";
    return *this;
  }
  // `name` must need no escaping (the callers' own ASCII literals); a comma goes before it
  // unless it is the first member of its object.
  JsonText& key(std::string_view name, bool first = false) {
    if (!first) out_ += ',';
    out_ += '"';
    out_ += name;
    out_ += "\":";
    return *this;
  }
  // Text that is already JSON (a value serialized earlier) or punctuation.
  JsonText& raw(std::string_view text) {
    out_ += text;
    return *this;
  }

 private:
  template <class T>
  JsonText& serialize(const T* v) {
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
};

}  // namespace clinicflow::util
