#include "ddcsr/filters.h"

#include <algorithm>
#include <cmath>

namespace ddcsr {

void gaussian_blur(std::vector<float>& v, const std::array<int64_t, 3>& dims, const Vec3& spacing,
                   double sigma_mm) {
  if (!(sigma_mm > 0)) return;
  for (int axis = 0; axis < 3; ++axis) {
    const double sigma = sigma_mm / spacing[axis];
    const auto radius = static_cast<int64_t>(std::ceil(3.0 * sigma));
    const int64_t n = dims[axis];
    if (radius < 1 || n < 2) continue;
    std::vector<double> kernel(2 * radius + 1);
    double sum = 0;
    for (int64_t r = -radius; r <= radius; ++r)
      sum += kernel[r + radius] = std::exp(-0.5 * r * r / (sigma * sigma));
    for (double& k : kernel) k /= sum;
    for_each_line(dims, axis, [&](int64_t start, int64_t stride, int64_t n) {
      std::vector<double> line(n);
      for (int64_t q = 0; q < n; ++q) line[q] = v[start + q * stride];
      for (int64_t q = 0; q < n; ++q) {
        double acc = 0;
        // Past the field of view is most likely more of what is at its edge.
        for (int64_t r = -radius; r <= radius; ++r)
          acc += kernel[r + radius] * line[std::clamp<int64_t>(q + r, 0, n - 1)];
        v[start + q * stride] = static_cast<float>(acc);
      }
    });
  }
}

}  // namespace ddcsr
