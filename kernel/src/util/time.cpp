#include "util/time.hpp"

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>

namespace clinicflow {
namespace {

using namespace std::chrono;

bool read_int(std::string_view s, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > s.size()) return false;
  for (std::size_t i = pos; i < pos + len; ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  std::from_chars(s.data() + pos, s.data() + pos + len, out);
  return true;
}

std::optional<std::int64_t> days_from_civil(int y, int m, int d) {
  year_month_day ymd{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return sys_days{ymd}.time_since_epoch().count();
}

// `width` zero-padded digits of `value` at `out`. Every case view formats several times, and
// snprintf's format parsing showed in its profile.
void put_digits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i, value /= 10) out[i] = static_cast<char>('0' + value % 10);
}
}  // namespace

std::string format_rfc3339(TimePoint t) {
  sys_time<milliseconds> tp{milliseconds{t}};
  auto day_point = floor<days>(tp);
  year_month_day ymd{day_point};
  hh_mm_ss hms{tp - day_point};
  int year = static_cast<int>(ymd.year());
  auto ms = static_cast<unsigned>(hms.subseconds().count());
  char buf[40];
  std::size_t n;
  if (year >= 0 && year <= 9999) {
    put_digits(buf, static_cast<unsigned>(year), 4);
    buf[4] = '-';
    put_digits(buf + 5, static_cast<unsigned>(ymd.month()), 2);
    buf[7] = '-';
    put_digits(buf + 8, static_cast<unsigned>(ymd.day()), 2);
    buf[10] = 'T';
    put_digits(buf + 11, static_cast<unsigned>(hms.hours().count()), 2);
    buf[13] = ':';
    put_digits(buf + 14, static_cast<unsigned>(hms.minutes().count()), 2);
    buf[16] = ':';
    put_digits(buf + 17, static_cast<unsigned>(hms.seconds().count()), 2);
    n = 19;
  } else {
    n = static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", year,
                                               static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                                               static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                                               static_cast<int>(hms.seconds().count())));
  }
  if (ms != 0) {
    buf[n] = '.';
    put_digits(buf + n + 1, ms, 3);
    n += 4;
  }
  buf[n++] = 'Z';
  return std::string(buf, n);
}

std::optional<std::int64_t> parse_date(std::string_view s) {
  int y, m, d;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  if (!read_int(s, 0, 4, y) || !read_int(s, 5, 2, m) || !read_int(s, 8, 2, d)) return std::nullopt;
  return days_from_civil(y, m, d);
}

std::optional<TimePoint> parse_rfc3339(std::string_view s) {
  if (s.size() < 20) return std::nullopt;
  auto days = parse_date(s.substr(0, 10));
  if (!days || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') return std::nullopt;
  int hh, mm, ss;
  if (!read_int(s, 11, 2, hh) || !read_int(s, 14, 2, mm) || !read_int(s, 17, 2, ss)) return std::nullopt;
  if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  std::size_t pos = 19;
  std::int64_t ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (digits < 3) ms = ms * 10 + (s[pos] - '0');
      ++digits, ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 3; ++i) ms *= 10;
  }
  std::int64_t offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (pos + 6 != s.size() || s[pos + 3] != ':' || !read_int(s, pos + 1, 2, oh) || !read_int(s, pos + 4, 2, om) ||
        oh > 23 || om > 59)
      return std::nullopt;
    offset_min = (oh * 60 + om) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  std::int64_t secs = *days * 86400 + hh * 3600 + mm * 60 + std::min(ss, 59) - offset_min * 60;
  return secs * 1000 + ms;
}

std::optional<Duration> parse_duration(std::string_view s, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<Duration> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  Duration total = 0;
  std::size_t pos = 0;
  bool any = false;
  while (pos < s.size()) {
    if (s[pos] == ' ') { ++pos; continue; }
    std::size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    if (start == pos || pos - start > 6)
      return fail("expected a number followed by a unit, such as \"30m\", \"24h\", \"2d\" or \"1w\"");
    std::int64_t n = 0;
    std::from_chars(s.data() + start, s.data() + pos, n);
    if (pos >= s.size() || s[pos] == ' ')
      return fail("the number " + std::string(s.substr(start, pos - start)) + " needs a unit right after it (s, m, h, d or w), such as \"2d\"");
    Duration unit;
    switch (s[pos]) {
      case 's': unit = 1000; break;
      case 'm': unit = 60'000; break;
      case 'h': unit = 3'600'000; break;
      case 'd': unit = 86'400'000; break;
      case 'w': unit = 7 * 86'400'000LL; break;
      default: return fail(std::string("unknown unit '") + s[pos] + "' (use s, m, h, d or w)");
    }
    ++pos;
    if (pos < s.size() && std::isalpha(static_cast<unsigned char>(s[pos])))
      return fail("write each unit as one letter, such as \"3d\" or \"2w\"");
    total += n * unit;
    any = true;
  }
  if (!any) return fail("the duration is empty");
  if (total <= 0) return fail("the duration must be longer than zero");
  return total;
}

std::string format_duration(Duration d) {
  std::string out;
  const std::pair<Duration, char> units[] = {{86'400'000, 'd'}, {3'600'000, 'h'}, {60'000, 'm'}, {1000, 's'}};
  for (auto [size, name] : units) {
    if (d >= size) {
      if (!out.empty()) out += ' ';
      out += std::to_string(d / size) + name;
      d %= size;
    }
  }
  if (d > 0 || out.empty()) out += (out.empty() ? "" : " ") + std::to_string(d) + "ms";
  return out;
}

}  // namespace clinicflow
