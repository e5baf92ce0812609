#include "ddcsr/recon/sign_repair.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "ddcsr/features/mask.h"

namespace ddcsr {

namespace {

// Breadth-first growth from the border voxels where `enter(from, to, axis)` allows a step
// (from = -1 for a border seed).
template <typename Enter>
std::vector<uint8_t> grow_from_border(const std::array<int64_t, 3>& dims, Enter&& enter) {
  const int64_t nx = dims[0], ny = dims[1], nz = dims[2];
  std::vector<uint8_t> reached(static_cast<size_t>(nx * ny * nz), 0);
  std::vector<int64_t> queue;
  for (int64_t k = 0; k < nz; ++k)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i) {
        if (i > 0 && j > 0 && k > 0 && i < nx - 1 && j < ny - 1 && k < nz - 1) continue;
        const int64_t v = (k * ny + j) * nx + i;
        if (enter(-1, v, 0)) {
          reached[v] = 1;
          queue.push_back(v);
        }
      }
  const int64_t stride[3] = {1, nx, nx * ny};
  for (size_t head = 0; head < queue.size(); ++head) {
    const int64_t v = queue[head];
    const int64_t c[3] = {v % nx, (v / nx) % ny, v / (nx * ny)};
    for (int axis = 0; axis < 3; ++axis)
      for (int sign : {-1, 1}) {
        const int64_t q = c[axis] + sign;
        if (q < 0 || q >= dims[axis]) continue;
        const int64_t w = v + sign * stride[axis];
        if (!reached[w] && enter(v, w, axis)) {
          reached[w] = 1;
          queue.push_back(w);
        }
      }
  }
  return reached;
}

}  // namespace

std::vector<uint8_t> smooth_exterior(const Volume& sdf, double max_slope) {
  const Vec3 spacing = sdf.spacing();
  const auto& d = sdf.data;
  return grow_from_border(sdf.dims, [&](int64_t from, int64_t to, int axis) {
    if (!(d[to] > 0)) return false;
    return from < 0 || std::fabs(double(d[to]) - double(d[from])) <= max_slope * spacing[axis];
  });
}

SignRepairCounts repair_far_field_signs(Volume& white, Volume& pial, const MidsagittalPlane& plane,
                                        const SignRepairOptions& options) {
  if (white.dims != pial.dims || white.nvols != 1 || pial.nvols != 1)
    throw std::invalid_argument("repair_far_field_signs: two 3D maps on one grid expected");
  const size_t n = pial.data.size();
  const Vec3 spacing = pial.spacing();
  const float voxel = static_cast<float>(std::min({spacing[0], spacing[1], spacing[2]}));
  SignRepairCounts counts;
  const std::vector<uint8_t> pial_outside = smooth_exterior(pial, options.max_slope);
  // Cortex lies within its thickness of the pial surface, and on the medial side of the
  // midsagittal plane (the fissure, which the network may leave closed).
  std::vector<uint8_t> cortex_boundary(pial_outside);
  const int64_t nx = pial.dims[0], ny = pial.dims[1];
  for (size_t v = 0; v < n; ++v) {
    const auto i = static_cast<int64_t>(v);
    const double side = plane.side(
        pial.voxel_to_ras({double(i % nx), double((i / nx) % ny), double(i / (nx * ny))}));
    if (std::fabs(side) <= 0.5 * voxel) cortex_boundary[v] = 1;
  }
  const std::vector<double> depth2 =
      mask_ops::squared_distance(cortex_boundary, pial.dims, spacing);
  const double deep2 = options.max_thickness_mm * options.max_thickness_mm;
  std::vector<uint8_t> white_inside(n, 0);
  for (size_t v = 0; v < n; ++v) {
    if (!pial_outside[v] && pial.data[v] >= 0) {
      pial.data[v] = -std::max(pial.data[v], 0.5f * voxel);
      ++counts.pial_voxels_flipped;
    }
    const float w = white.data[v];
    white_inside[v] =
        !pial_outside[v] && (w < 0 || w > options.max_thickness_mm || depth2[v] > deep2);
  }
  white_inside = mask_ops::fill_enclosed(white_inside, white.dims);
  for (size_t v = 0; v < n; ++v) {
    float& w = white.data[v];
    if (white_inside[v] && w >= 0) {
      w = -std::max(w, 0.5f * voxel);
      ++counts.white_voxels_flipped;
    } else if (!white_inside[v] && w < 0) {
      w = std::max(-w, 0.5f * voxel);
      ++counts.white_voxels_flipped;
    }
  }
  return counts;
}

}  // namespace ddcsr
