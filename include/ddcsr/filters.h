// Filters on one 3D volume stored as a flat float array (x fastest), with voxel sizes in mm.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/threads.h"
#include "ddcsr/volume.h"

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

// Every frame of `src` resampled by cubic B-spline interpolation (Unser 1999: the samples are
// turned into spline coefficients first, so the spline passes through them) onto a finer or
// coarser grid of `spacing_mm` per axis with the same orientation and field of view: its first
// voxel centre is src's first, and it stops at the last voxel centre not beyond src's last.
// Mirror boundaries. Trilinear interpolation cuts the peaks and troughs between voxel centres;
// the spline keeps them, which matters for a distance map across a blade as thin as a voxel.
Volume resample_bspline(const Volume& src, double spacing_mm);

}  // namespace ddcsr
