#include "util/time.hpp"

#include <catch2/catch.hpp>

using namespace clinicflow;

TEST_CASE("RFC 3339 times round-trip and normalise offsets to UTC") {
  auto t = parse_rfc3339("2026-03-01T14:30:00Z");
  REQUIRE(t);
  CHECK(*t == 1772375400000);
  CHECK(format_rfc3339(*t) == "2026-03-01T14:30:00Z");
  CHECK(parse_rfc3339("2026-03-01T15:30:00+01:00") == t);
  CHECK(parse_rfc3339("2026-03-01T09:00:00-05:30") == t);
  CHECK(format_rfc3339(*parse_rfc3339("2026-03-01T14:30:00.250Z")) == "2026-03-01T14:30:00.250Z");
}

TEST_CASE("times format with every field zero-padded, milliseconds only when present") {
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(format_rfc3339(5) == "1970-01-01T00:00:00.005Z");
  CHECK(format_rfc3339(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_rfc3339(*parse_rfc3339("0999-02-03T04:05:06.070Z")) == "0999-02-03T04:05:06.070Z");
  CHECK(format_rfc3339(*parse_rfc3339("9999-12-31T23:59:59.999Z")) == "9999-12-31T23:59:59.999Z");
  CHECK(format_rfc3339(*parse_rfc3339("9999-12-31T23:59:59.999Z") + 1) == "10000-01-01T00:00:00Z");
}

TEST_CASE("malformed or impossible times are rejected") {
  for (const char* bad : {"", "2026-03-01", "2026-03-01 14:30:00Z", "2026-02-30T10:00:00Z", "2026-03-01T24:00:00Z",
                          "2026-03-01T14:30:00", "2026-03-01T14:30:00+0100", "2026-03-01T14:30:00Zjunk", "2026-03-01T14:30:00.Z"})
    CHECK_FALSE(parse_rfc3339(bad));
}

TEST_CASE("calendar dates must exist") {
  CHECK(parse_date("1970-01-02") == 1);
  CHECK(parse_date("2024-02-29"));
  CHECK_FALSE(parse_date("2023-02-29"));
  CHECK_FALSE(parse_date("2023-13-01"));
  CHECK_FALSE(parse_date("23-01-01"));
  CHECK_FALSE(parse_date("2023-1-01"));
}

TEST_CASE("durations are written the way a clinic says them") {
  CHECK(parse_duration("30m") == 30 * 60'000);
  CHECK(parse_duration("24h") == 24 * 3'600'000LL);
  CHECK(parse_duration("2d") == 2 * 86'400'000LL);
  CHECK(parse_duration("1w") == 7 * 86'400'000LL);
  CHECK(parse_duration("1d 12h") == 36 * 3'600'000LL);
  CHECK(format_duration(36 * 3'600'000LL) == "1d 12h");
  std::string why;
  CHECK_FALSE(parse_duration("", &why));
  CHECK(why == "the duration is empty");
  CHECK_FALSE(parse_duration("24", &why));
  CHECK(why == "the number 24 needs a unit right after it (s, m, h, d or w), such as \"2d\"");
  CHECK_FALSE(parse_duration("3 d", &why));
  CHECK(why.find("needs a unit right after it") != std::string::npos);
  CHECK_FALSE(parse_duration("3days", &why));
  CHECK(why == "write each unit as one letter, such as \"3d\" or \"2w\"");
  CHECK_FALSE(parse_duration("3y", &why));
  CHECK(why.find("unknown unit 'y'") != std::string::npos);
  CHECK_FALSE(parse_duration("0h", &why));
  CHECK(why == "the duration must be longer than zero");
  CHECK_FALSE(parse_duration("h", &why));
}
