// Random numbers for the phantom generator that give the same values on every run and every
// thread count. std::normal_distribution and friends are implementation-defined, so the
// distributions are written here on top of std::mt19937_64, whose output the standard fixes.
// Parallel loops draw from one generator per chunk of work (voxel slab, volume), seeded from the
// subject seed and the chunk's identity with mix_seed(), never one generator per thread.
#pragma once
#include <cstdint>
#include <random>

namespace ddcsr::sim {

// SplitMix64 finaliser of (a, b): well-separated seeds for neighbouring stream numbers.
uint64_t mix_seed(uint64_t a, uint64_t b);
inline uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) { return mix_seed(mix_seed(a, b), c); }

class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  // [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal by the Box-Muller transform; the second value of each pair is kept.
  double normal();
  double normal(double mean, double sd) { return mean + sd * normal(); }
  // Uniformly distributed unit vector.
  void unit_vector(double v[3]);

 private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace ddcsr::sim
