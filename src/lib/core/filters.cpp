#include "ddcsr/filters.h"

#include <algorithm>
#include <cmath>

#include "ddcsr/threads.h"

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
    const int64_t stride = axis == 0 ? 1 : axis == 1 ? dims[0] : dims[0] * dims[1];
    const int a1 = axis == 0 ? 1 : 0, a2 = axis == 2 ? 1 : 2;
    const int64_t n1 = dims[a1], n2 = dims[a2];
    const int64_t s1 = a1 == 0 ? 1 : dims[0], s2 = a2 == 1 ? dims[0] : dims[0] * dims[1];
    parallel_for(
        n1 * n2,
        [&](int64_t begin, int64_t end) {
          std::vector<double> line(n);
          for (int64_t l = begin; l < end; ++l) {
            const int64_t start = (l % n1) * s1 + (l / n1) * s2;
            for (int64_t q = 0; q < n; ++q) line[q] = v[start + q * stride];
            for (int64_t q = 0; q < n; ++q) {
              double acc = 0;
              // Past the field of view is most likely more of what is at its edge.
              for (int64_t r = -radius; r <= radius; ++r)
                acc += kernel[r + radius] * line[std::clamp<int64_t>(q + r, 0, n - 1)];
              v[start + q * stride] = static_cast<float>(acc);
            }
          }
        },
        64);
  }
}

}  // namespace ddcsr
