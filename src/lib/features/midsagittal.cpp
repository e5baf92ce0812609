#include "ddcsr/features/midsagittal.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace ddcsr {

namespace {

constexpr double kDegree = M_PI / 180.0;

Vec3 plane_normal(double yaw, double roll) {
  return {std::cos(yaw) * std::cos(roll), std::sin(yaw) * std::cos(roll), std::sin(roll)};
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

}  // namespace ddcsr
