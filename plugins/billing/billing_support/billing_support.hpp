// Helpers shared by the billing plugins (insurance, self_pay): identifiers and text, JSON
// integers, RFC 3339 dates and times, step references, plugin settings and form fields.
// Header-only: billing_support has no CMakeLists.txt, so the plugin glob does not build it.
#pragma once

#include <clinicflow/plugin.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace clinicflow::billing::support {

inline bool is_identifier(std::string_view s) {
  if (s.empty() || s.size() > 64 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

inline std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

inline std::optional<std::int64_t> as_integer(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) {
    double d = v->get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

// Days since 1970-01-01 for a civil date (proleptic Gregorian), and back.
inline std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

inline std::string pad(std::int64_t v, std::size_t width) {
  std::string s = std::to_string(v);
  return s.size() < width ? std::string(width - s.size(), '0') + s : s;
}

inline std::string date_text(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2);
  return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2);
}

inline bool read_digits(std::string_view s, std::size_t at, std::size_t n, std::int64_t& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

inline std::optional<std::int64_t> parse_date_prefix(std::string_view s) {
  std::int64_t y, m, d;
  if (s.size() < 10 || s[4] != '-' || s[7] != '-' || !read_digits(s, 0, 4, y) || !read_digits(s, 5, 2, m) || !read_digits(s, 8, 2, d))
    return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return std::nullopt;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[m - 1] + (m == 2 && leap ? 1 : 0)) return std::nullopt;
  return days_from_civil(y, m, d);
}

// Seconds since the epoch for an RFC 3339 date-time ("2026-03-02T09:00:00Z", offsets and
// fractions allowed).
inline std::optional<std::int64_t> parse_datetime(std::string_view s) {
  auto day = parse_date_prefix(s);
  std::int64_t hh, mm, ss;
  if (!day || s.size() < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !read_digits(s, 11, 2, hh) || s[13] != ':' ||
      !read_digits(s, 14, 2, mm) || s[16] != ':' || !read_digits(s, 17, 2, ss) || hh > 23 || mm > 59 || ss > 60)
    return std::nullopt;
  std::size_t i = 19;
  if (s[i] == '.') {
    ++i;
    std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  std::int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    std::int64_t oh, om;
    if (!read_digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !read_digits(s, i + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return *day * 86400 + hh * 3600 + mm * 60 + std::min<std::int64_t>(ss, 59) - offset;
}

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct Ref {
  std::string step, field;
  std::string text() const { return step + "." + field; }
};

inline const json::value* lookup(const StepRequest& r, const Ref& ref) {
  const json::value* v = r.find(ref.step, ref.field);
  return v && !v->is_null() ? v : nullptr;
}

inline bool present(const Settings& s, std::string_view name) { return s.has(name) && !s.values().at(name).is_null(); }

inline json::object field(std::string name, std::string type, std::string label, std::string help, bool required = false) {
  return {{"name", std::move(name)}, {"type", std::move(type)}, {"label", std::move(label)}, {"help", std::move(help)}, {"required", required}};
}

}  // namespace clinicflow::billing::support
