#include "engine/message_render.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cmath>

namespace clinicflow::engine {
namespace {

std::string plain(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::string: return std::string(v.get_string());
    case boost::json::kind::bool_: return v.get_bool() ? "yes" : "no";
    case boost::json::kind::int64: return std::to_string(v.get_int64());
    case boost::json::kind::uint64: return std::to_string(v.get_uint64());
    case boost::json::kind::double_: {
      double d = v.get_double();
      if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
      return ec == std::errc() ? std::string(buf, end) : boost::json::serialize(v);
    }
    case boost::json::kind::null: return "";
    default: return boost::json::serialize(v);
  }
}

std::string value_of(const std::string& name, const CaseState& state, std::optional<TimePoint> opens_at) {
  if (name == "case.id") return state.case_id;
  if (name == "case.patient_id") return state.patient_id;
  if (name == "case.repetition") return std::to_string(state.repetition);
  if (name == "opens_at") return opens_at ? format_rfc3339(*opens_at) : "";
  auto dot = name.find('.');
  if (dot == std::string::npos) return "";
  const boost::json::value* step = state.data.if_contains(name.substr(0, dot));
  if (!step || !step->is_object()) return "";
  const boost::json::value* field = step->get_object().if_contains(name.substr(dot + 1));
  return field ? plain(*field) : "";
}

}  // namespace

std::string render_template(const std::string& text, const CaseState& state, std::optional<TimePoint> opens_at) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    std::size_t open = text.find("{{", pos);
    std::size_t close = open == std::string::npos ? std::string::npos : text.find("}}", open);
    if (close == std::string::npos) {
      out.append(text, pos, std::string::npos);
      return out;
    }
    out.append(text, pos, open - pos);
    std::string name = text.substr(open + 2, close - open - 2);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    out += value_of(name, state, opens_at);
    pos = close + 2;
  }
}

}  // namespace clinicflow::engine
