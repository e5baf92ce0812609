#include "ddcsr/simulate/random.h"

#include <algorithm>
#include <cmath>

namespace ddcsr::sim {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Random::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // 1 - u lies in (0, 1], so the logarithm is finite.
  const double u1 = 1.0 - uniform(), u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

void Random::unit_vector(double v[3]) {
  const double z = uniform(-1.0, 1.0), phi = uniform(0.0, 2.0 * M_PI);
  const double s = std::sqrt(std::max(0.0, 1.0 - z * z));
  v[0] = s * std::cos(phi);
  v[1] = s * std::sin(phi);
  v[2] = z;
}

}  // namespace ddcsr::sim
