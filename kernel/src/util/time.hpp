#pragma once
// Time values used across the kernel: milliseconds since the Unix epoch, UTC.
// One integer type keeps the store, timers and the virtual clock exact and comparable.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace clinicflow {

using TimePoint = std::int64_t;  // ms since 1970-01-01T00:00:00Z
using Duration = std::int64_t;   // ms

// "2026-11-28T23:50:20Z" (with ".123" when the milliseconds are not zero).
std::string format_rfc3339(TimePoint t);

// Accepts RFC 3339 date-times with "Z" or a numeric offset; the result is UTC.
std::optional<TimePoint> parse_rfc3339(std::string_view text);

// A calendar date "YYYY-MM-DD" that exists; returns days since the epoch.
std::optional<std::int64_t> parse_date(std::string_view text);

// Durations as a clinic writes them: "30m", "24h", "2d", "1w", "1d 12h", "90s".
// Returns nullopt (and a reason) for anything else, including an empty or zero duration.
std::optional<Duration> parse_duration(std::string_view text, std::string* why = nullptr);
std::string format_duration(Duration d);

}  // namespace clinicflow
