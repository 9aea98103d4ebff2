#pragma once
// The simulator's only source of chance: a seeded std::mt19937_64 and draws computed from its raw
// output (not std::uniform_*_distribution, whose results differ between standard libraries), so a
// seed gives the same simulation on every platform and build.
#include <cstdint>
#include <random>
#include <vector>

namespace clinicflow::cli::sim {

class Random {
 public:
  explicit Random(std::uint64_t seed) : engine_(seed) {}

  // Uniform in [0, 1).
  double unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  // Uniform integer in [lo, hi] (lo <= hi), without modulo bias.
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) return lo;
    std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
    if (span == 0) return static_cast<std::int64_t>(engine_());  // the whole 64-bit range
    std::uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    std::uint64_t x;
    do x = engine_();
    while (x >= limit);
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + x % span);
  }

  // Uniform real in [lo, hi].
  double between(double lo, double hi) { return hi <= lo ? lo : lo + unit() * (hi - lo); }

  // An index drawn with the given non-negative weights (their sum must be > 0).
  std::size_t weighted(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double x = unit() * total;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if (x < weights[i]) return i;
      x -= weights[i];
    }
    for (std::size_t i = weights.size(); i-- > 0;)  // rounding: the last index with weight
      if (weights[i] > 0) return i;
    return 0;
  }

  bool chance(double p) { return unit() < p; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace clinicflow::cli::sim
