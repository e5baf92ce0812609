// Filters on one 3D volume stored as a flat float array (x fastest), with voxel sizes in mm.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/threads.h"

namespace ddcsr {

// Calls fn(line_start, stride, length) for every line of the grid along `axis` (0 = x), in
// parallel; lines are independent, so separable filters give the same result on any thread count.
template <typename Fn>
void for_each_line(const std::array<int64_t, 3>& dims, int axis, Fn&& fn) {
  const int64_t stride = axis == 0 ? 1 : axis == 1 ? dims[0] : dims[0] * dims[1];
  const int a1 = axis == 0 ? 1 : 0, a2 = axis == 2 ? 1 : 2;
  const int64_t n1 = dims[a1], n2 = dims[a2];
  const int64_t s1 = a1 == 0 ? 1 : dims[0], s2 = a2 == 1 ? dims[0] : dims[0] * dims[1];
  parallel_for(
      n1 * n2,
      [&](int64_t begin, int64_t end) {
        for (int64_t l = begin; l < end; ++l) fn((l % n1) * s1 + (l / n1) * s2, stride, dims[axis]);
      },
      64);
}

// Separable Gaussian blur in place, sigma in mm (per-axis sigma in voxels = sigma_mm / spacing).
// Samples beyond the field of view repeat the edge value. Parallel over lines; the result does
// not depend on the thread count.
void gaussian_blur(std::vector<float>& v, const std::array<int64_t, 3>& dims, const Vec3& spacing,
                   double sigma_mm);

}  // namespace ddcsr
