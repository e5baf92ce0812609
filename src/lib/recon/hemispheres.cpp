#include "ddcsr/recon/hemispheres.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

namespace ddcsr {

namespace {

// Labels the 6-connected regions of the voxels where `member` holds; returns the label per voxel
// (-1 outside) and the size of each region.
std::vector<int32_t> label_regions(const std::array<int64_t, 3>& dims,
                                   const std::function<bool(size_t)>& member,
                                   std::vector<int64_t>& sizes) {
  const int64_t nx = dims[0], ny = dims[1], nz = dims[2];
  const size_t n = static_cast<size_t>(nx * ny * nz);
  std::vector<int32_t> label(n, -1);
  std::vector<size_t> stack;
  sizes.clear();
  for (size_t seed = 0; seed < n; ++seed) {
    if (label[seed] >= 0 || !member(seed)) continue;
    const auto id = static_cast<int32_t>(sizes.size());
    sizes.push_back(0);
    label[seed] = id;
    stack.assign(1, seed);
    while (!stack.empty()) {
      const size_t v = stack.back();
      stack.pop_back();
      ++sizes[id];
      const int64_t i = static_cast<int64_t>(v) % nx, j = (static_cast<int64_t>(v) / nx) % ny,
                    k = static_cast<int64_t>(v) / (nx * ny);
      const int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
      for (const auto& q : nb) {
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= nx || q[1] >= ny || q[2] >= nz) continue;
        const size_t w = static_cast<size_t>((q[2] * ny + q[1]) * nx + q[0]);
        if (label[w] < 0 && member(w)) {
          label[w] = id;
          stack.push_back(w);
        }
      }
    }
  }
  return label;
}

// Keeps the largest region of `member` voxels; the other inside voxels read as outside.
int64_t keep_largest(Volume& sdf, const std::function<bool(size_t)>& member) {
  std::vector<int64_t> sizes;
  const std::vector<int32_t> region = label_regions(sdf.dims, member, sizes);
  const auto largest = std::max_element(sizes.begin(), sizes.end());
  const int32_t best = largest == sizes.end() ? -1 : static_cast<int32_t>(largest - sizes.begin());
  const Vec3 spacing = sdf.spacing();
  const float voxel = static_cast<float>(std::min({spacing[0], spacing[1], spacing[2]}));
  for (size_t v = 0; v < region.size(); ++v)
    if (sdf.data[v] < 0 && (best < 0 || region[v] != best))
      sdf.data[v] = std::max(-sdf.data[v], voxel);
  return best < 0 ? 0 : sizes[best];
}

}  // namespace

int64_t keep_hemisphere_white(Volume& sdf, const MidsagittalPlane& plane, bool left) {
  const size_t n = static_cast<size_t>(sdf.voxels_per_volume());
  const int64_t nx = sdf.dims[0], ny = sdf.dims[1];
  auto on_left = [&](size_t v) {
    const auto i = static_cast<int64_t>(v);
    return plane.side(sdf.voxel_to_ras(
               {double(i % nx), double((i / nx) % ny), double(i / (nx * ny))})) < 0;
  };
  std::vector<int64_t> sizes;
  const std::vector<int32_t> region = label_regions(
      sdf.dims, [&](size_t v) { return sdf.data[v] < 0; }, sizes);
  std::vector<int64_t> left_count(sizes.size(), 0);
  for (size_t v = 0; v < n; ++v)
    if (region[v] >= 0 && on_left(v)) ++left_count[region[v]];
  // A region with more than a tenth of itself on each side is joined across the midline (corpus
  // callosum, brainstem) and is cut at the plane; a smaller overhang is a tilt of the plane or a
  // bulge of the hemisphere and stays with its region.
  return keep_largest(sdf, [&](size_t v) {
    const int32_t r = region[v];
    if (r < 0) return false;
    const int64_t l = left_count[r], rgt = sizes[r] - l;
    if (std::min(l, rgt) * 10 > sizes[r]) return on_left(v) == left;
    return (l > rgt) == left;
  });
}

int64_t keep_largest_region(Volume& sdf, const Volume& allowed) {
  if (allowed.data.size() < static_cast<size_t>(sdf.voxels_per_volume()))
    throw std::invalid_argument("keep_largest_region: grids differ");
  return keep_largest(sdf, [&](size_t v) { return sdf.data[v] < 0 && allowed.data[v] != 0; });
}

}  // namespace ddcsr
