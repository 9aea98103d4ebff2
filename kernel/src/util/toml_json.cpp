#include "util/toml_json.hpp"

#include <algorithm>
#include <string>

namespace clinicflow {
namespace {

std::string two_digits(unsigned value) {
  return std::string{static_cast<char>('0' + value / 10 % 10), static_cast<char>('0' + value % 10)};
}

std::string format_date(const toml::date& date) {
  std::string year = std::to_string(date.year);
  if (year.size() < 4) year.insert(0, 4 - year.size(), '0');
  return year + "-" + two_digits(date.month) + "-" + two_digits(date.day);
}

std::string format_time(const toml::time& time) {
  std::string out = two_digits(time.hour) + ":" + two_digits(time.minute) + ":" + two_digits(time.second);
  if (time.nanosecond != 0) {
    std::string fraction = std::to_string(time.nanosecond);
    fraction.insert(0, 9 - std::min<std::size_t>(fraction.size(), 9), '0');
    fraction.erase(fraction.find_last_not_of('0') + 1);
    out += "." + fraction;
  }
  return out;
}

std::string format_date_time(const toml::date_time& value) {
  std::string out = format_date(value.date) + "T" + format_time(value.time);
  if (value.offset) {
    const int minutes = value.offset->minutes;
    if (minutes == 0) return out + "Z";
    const unsigned magnitude = static_cast<unsigned>(minutes < 0 ? -minutes : minutes);
    out += minutes < 0 ? "-" : "+";
    out += two_digits(magnitude / 60) + ":" + two_digits(magnitude % 60);
  }
  return out;
}

boost::json::array array_to_json(const toml::array& array) {
  boost::json::array out;
  out.reserve(array.size());
  for (const toml::node& element : array) out.push_back(toml_to_json(element));
  return out;
}

}  // namespace

boost::json::value toml_to_json(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return toml_table_to_json(*node.as_table());
    case toml::node_type::array: return array_to_json(*node.as_array());
    case toml::node_type::string: return boost::json::string(node.as_string()->get());
    case toml::node_type::integer: return static_cast<std::int64_t>(node.as_integer()->get());
    case toml::node_type::floating_point: return node.as_floating_point()->get();
    case toml::node_type::boolean: return node.as_boolean()->get();
    case toml::node_type::date: return boost::json::string(format_date(node.as_date()->get()));
    case toml::node_type::time: return boost::json::string(format_time(node.as_time()->get()));
    case toml::node_type::date_time: return boost::json::string(format_date_time(node.as_date_time()->get()));
    case toml::node_type::none: break;
  }
  return nullptr;
}

std::vector<TomlEntry> in_document_order(const toml::table& table) {
  std::vector<TomlEntry> entries;
  for (auto&& [key, node] : table) entries.push_back({&key, &node});
  std::stable_sort(entries.begin(), entries.end(), [](const TomlEntry& a, const TomlEntry& b) {
    const auto& pa = a.key->source().begin;
    const auto& pb = b.key->source().begin;
    return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
  });
  return entries;
}

boost::json::object toml_table_to_json(const toml::table& table) {
  boost::json::object out;
  for (const TomlEntry& entry : in_document_order(table)) out[entry.key->str()] = toml_to_json(*entry.node);
  return out;
}

}  // namespace clinicflow
