#pragma once
// Tests compare the kernel's JSON text (a case's stored state, its API view) as objects.
#include <boost/json/parse.hpp>

#include <stdexcept>
#include <string_view>

namespace clinicflow::testing {

inline boost::json::object json_object(std::string_view text) {
  boost::json::value v = boost::json::parse(text);
  if (!v.is_object()) throw std::runtime_error("not a JSON object: " + std::string(text));
  return std::move(v.as_object());
}

}  // namespace clinicflow::testing
