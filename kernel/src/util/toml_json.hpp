#pragma once
// Converts TOML values to JSON, the one format plugins and the API see.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <toml++/toml.h>

#include <vector>

namespace clinicflow {

// Strings, integers (int64), floats, booleans, arrays and tables map directly; TOML dates,
// times and date-times become ISO 8601 / RFC 3339 text. Table keys keep document order.
boost::json::value toml_to_json(const toml::node& node);
boost::json::object toml_table_to_json(const toml::table& table);

struct TomlEntry {
  const toml::key* key;
  const toml::node* node;
};

// toml::table iterates in key order; document order makes lists and error reports read the way
// the administrator wrote them.
std::vector<TomlEntry> in_document_order(const toml::table& table);

}  // namespace clinicflow
