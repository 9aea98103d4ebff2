#pragma once
// Ids for stored records (cases, patients): a prefix, the creation time in milliseconds
// (12 hex digits, wall clock) and 48 random bits (12 hex digits), e.g. "c_0193a7f2c1d45e8b09a1f3c7".
// Time first puts records created together next to each other in every index keyed by the id
// (the events, timers and outbox indexes lead with case_id), so a group commit of concurrent
// writes touches a few adjacent index pages instead of one random page per case; and a listing
// ordered by id comes out in creation order. The random part keeps ids made in the same
// millisecond apart.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace clinicflow::util {

inline std::string record_id(std::string_view prefix, std::uint64_t random_bits) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  char digits[25];
  std::snprintf(digits, sizeof digits, "%012llx%012llx", static_cast<unsigned long long>(ms) & 0xffffffffffffULL,
                static_cast<unsigned long long>(random_bits) & 0xffffffffffffULL);
  return std::string(prefix) + digits;
}

}  // namespace clinicflow::util
