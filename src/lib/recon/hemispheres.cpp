#include "ddcsr/recon/hemispheres.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace ddcsr {

double midline_x(const Volume& mask) {
  double sum = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < mask.dims[2]; ++k)
    for (int64_t j = 0; j < mask.dims[1]; ++j)
      for (int64_t i = 0; i < mask.dims[0]; ++i)
        if (mask.data[static_cast<size_t>((k * mask.dims[1] + j) * mask.dims[0] + i)] > 0.5f) {
          sum += mask.vox2ras.apply({double(i), double(j), double(k)})[0];
          ++count;
        }
  if (count == 0) throw std::invalid_argument("midline_x: empty mask");
  return sum / static_cast<double>(count);
}

int64_t keep_hemisphere_region(Volume& sdf, double midline, bool left, const Volume* allowed) {
  const int64_t nx = sdf.dims[0], ny = sdf.dims[1], nz = sdf.dims[2];
  const size_t n = static_cast<size_t>(nx * ny * nz);
  if (allowed && allowed->data.size() < n) throw std::invalid_argument("keep_hemisphere_region: grids differ");
  auto inside = [&](size_t v) { return sdf.data[v] < 0 && (!allowed || allowed->data[v] != 0); };
  std::vector<int32_t> label(n, -1);
  std::vector<size_t> stack;
  int32_t best = -1;
  int64_t best_size = 0;
  int32_t next = 0;
  for (size_t seed = 0; seed < n; ++seed) {
    if (label[seed] >= 0 || !inside(seed)) continue;
    const int32_t id = next++;
    label[seed] = id;
    stack.assign(1, seed);
    int64_t size = 0;
    double sum_x = 0;
    while (!stack.empty()) {
      const size_t v = stack.back();
      stack.pop_back();
      const int64_t i = static_cast<int64_t>(v) % nx, j = (static_cast<int64_t>(v) / nx) % ny,
                    k = static_cast<int64_t>(v) / (nx * ny);
      ++size;
      sum_x += sdf.vox2ras.apply({double(i), double(j), double(k)})[0];
      const int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k}, {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
      for (const auto& q : nb) {
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= nx || q[1] >= ny || q[2] >= nz) continue;
        const size_t w = static_cast<size_t>((q[2] * ny + q[1]) * nx + q[0]);
        if (label[w] < 0 && inside(w)) {
          label[w] = id;
          stack.push_back(w);
        }
      }
    }
    const double centre_x = sum_x / static_cast<double>(size);
    if ((left ? centre_x < midline : centre_x > midline) && size > best_size) {
      best = id;
      best_size = size;
    }
  }
  const Vec3 spacing = sdf.spacing();
  const float voxel = static_cast<float>(std::min({spacing[0], spacing[1], spacing[2]}));
  for (size_t v = 0; v < n; ++v)
    if (sdf.data[v] < 0 && (best < 0 || label[v] != best)) sdf.data[v] = std::max(-sdf.data[v], voxel);
  return best_size;
}

}  // namespace ddcsr
