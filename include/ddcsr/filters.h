// Filters on one 3D volume stored as a flat float array (x fastest), with voxel sizes in mm.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "ddcsr/affine.h"

namespace ddcsr {

// Separable Gaussian blur in place, sigma in mm (per-axis sigma in voxels = sigma_mm / spacing).
// Samples beyond the field of view repeat the edge value. Parallel over lines; the result does
// not depend on the thread count.
void gaussian_blur(std::vector<float>& v, const std::array<int64_t, 3>& dims, const Vec3& spacing,
                   double sigma_mm);

}  // namespace ddcsr
