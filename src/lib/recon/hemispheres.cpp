#include "ddcsr/recon/hemispheres.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

namespace ddcsr {

namespace {

constexpr double kDegree = M_PI / 180.0;

Vec3 plane_normal(double yaw, double roll) {
  return {std::cos(yaw) * std::cos(roll), std::sin(yaw) * std::cos(roll), std::sin(roll)};
}

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

double MidsagittalPlane::side(const Vec3& ras) const {
  return (ras[0] - point[0]) * normal[0] + (ras[1] - point[1]) * normal[1] +
         (ras[2] - point[2]) * normal[2];
}

double MidsagittalPlane::tilt_degrees() const {
  return std::acos(std::clamp(std::fabs(normal[0]), 0.0, 1.0)) / kDegree;
}

MidsagittalPlane midsagittal_plane(const Volume& image, const Volume& mask) {
  if (image.dims != mask.dims) throw std::invalid_argument("midsagittal_plane: grids differ");
  std::vector<Vec3> all;
  Vec3 centre{0, 0, 0};
  for (int64_t k = 0; k < mask.dims[2]; ++k)
    for (int64_t j = 0; j < mask.dims[1]; ++j)
      for (int64_t i = 0; i < mask.dims[0]; ++i)
        if (mask.at(i, j, k) > 0.5f) {
          const Vec3 p = mask.voxel_to_ras({double(i), double(j), double(k)});
          for (int a = 0; a < 3; ++a) centre[a] += p[a];
          all.push_back({double(i), double(j), double(k)});
        }
  if (all.empty()) throw std::invalid_argument("midsagittal_plane: empty mask");
  for (double& c : centre) c /= static_cast<double>(all.size());
  // About 20k voxels on a regular lattice measure symmetry as well as all of them.
  const auto stride =
      std::max<int64_t>(1, std::llround(std::cbrt(static_cast<double>(all.size()) / 20000.0)));
  std::vector<Vec3> at;  // voxel coordinates
  std::vector<float> value;
  for (const Vec3& ijk : all)
    if (std::fmod(ijk[0], stride) == 0 && std::fmod(ijk[1], stride) == 0 &&
        std::fmod(ijk[2], stride) == 0) {
      at.push_back(ijk);
      value.push_back(image.at(int64_t(ijk[0]), int64_t(ijk[1]), int64_t(ijk[2])));
    }
  const Affine ras2vox = image.vox2ras.inverse();

  auto asymmetry = [&](double yaw, double roll, double offset) {
    // The reflection x - 2((x - p).n) n, composed with the grid: voxel -> mirrored voxel.
    const Vec3 n = plane_normal(yaw, roll);
    const double pn = (centre[0] + offset * n[0]) * n[0] + (centre[1] + offset * n[1]) * n[1] +
                      (centre[2] + offset * n[2]) * n[2];
    Affine reflect;
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) reflect(r, c) = (r == c ? 1.0 : 0.0) - 2 * n[r] * n[c];
      reflect(r, 3) = 2 * pn * n[r];
    }
    const Affine mirror = ras2vox * reflect * image.vox2ras;
    double sum = 0;
    for (size_t s = 0; s < at.size(); ++s) {
      const float mirrored = image.sample_voxel_linear(mirror.apply(at[s]));
      sum += double(value[s] - mirrored) * double(value[s] - mirrored);
    }
    return sum / static_cast<double>(at.size());
  };

  std::array<double, 3> best{0, 0, 0};  // yaw, roll (radians), offset (mm)
  double best_cost = asymmetry(0, 0, 0);
  for (int a = -4; a <= 4; ++a)
    for (int b = -4; b <= 4; ++b)
      for (int o = -4; o <= 4; ++o) {
        const double cost = asymmetry(5 * a * kDegree, 5 * b * kDegree, 3.0 * o);
        if (cost < best_cost) {
          best_cost = cost;
          best = {5 * a * kDegree, 5 * b * kDegree, 3.0 * o};
        }
      }
  // Pattern search from the best lattice point down to 0.15 degrees and 0.1 mm.
  std::array<double, 3> step{2.5 * kDegree, 2.5 * kDegree, 1.5};
  for (int level = 0; level < 5; ++level) {
    bool moved = true;
    while (moved) {
      moved = false;
      for (int q = 0; q < 3; ++q)
        for (double sign : {-1.0, 1.0}) {
          auto trial = best;
          trial[q] += sign * step[q];
          const double cost = asymmetry(trial[0], trial[1], trial[2]);
          if (cost < best_cost) {
            best_cost = cost;
            best = trial;
            moved = true;
          }
        }
    }
    for (double& s : step) s *= 0.5;
  }
  MidsagittalPlane plane;
  plane.normal = plane_normal(best[0], best[1]);
  for (int a = 0; a < 3; ++a) plane.point[a] = centre[a] + best[2] * plane.normal[a];
  return plane;
}

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
