// A signed distance function prepared for fast flow integration (internal to DiffCoSeg): a crop
// of the SDF's voxel grid, optionally Gaussian-smoothed, holding the value and its scanner-RAS
// gradient side by side, so one trilinear lookup gives both.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "ddcsr/affine.h"
#include "ddcsr/volume.h"

namespace ddcsr::diffcoseg {

// Voxel index box [lo, hi) of a volume's grid.
struct VoxelBox {
  std::array<int64_t, 3> lo{0, 0, 0}, hi{0, 0, 0};
  int64_t voxels() const { return (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]); }
};

// Bounding box of the voxels with value < `level`, grown by `pad` voxels and clipped to the
// grid; empty (voxels() == 0) when no voxel qualifies.
VoxelBox box_below(const Volume& sdf, float level, int64_t pad);
// Smallest box containing both.
VoxelBox box_union(const VoxelBox& a, const VoxelBox& b);
// The grid (dims and voxel->RAS, no data) of the crop `box` of `grid`, and the box that is all of
// a grid.
Volume crop_grid(const Volume& grid, const VoxelBox& box);
VoxelBox whole_box(const Volume& grid);

class SdfField {
 public:
  SdfField() = default;
  // `sigma_mm` > 0 smooths with a Gaussian of that standard deviation (per axis in voxels by
  // the grid spacing) before the gradient is taken by central differences.
  SdfField(const Volume& sdf, const VoxelBox& box, double sigma_mm);

  // Adds growth directions: unit vectors that lead toward the zero level set along geodesic
  // paths within each side. Inside (value < 0) they follow the geodesic distance from the deep
  // interior {value <= -inside_depth_mm}, measured within the inside, so they run along the
  // axis of a thin gyrus rather than across it; outside they follow the geodesic distance from
  // the far exterior {value >= outside_depth_mm} within the outside, so they run down into
  // sulci and into caves behind narrower mouths. Propagation only runs through voxels at least
  // `neck_mm` from the surface; voxels it does not reach get no direction.
  void add_growth_directions(double inside_depth_mm, double outside_depth_mm, double neck_mm);
  bool has_growth() const { return !growth_.empty(); }

  // Value (mm) at a scanner-RAS point, with its gradient when `grad` is given and the
  // (interpolated, not normalised) growth direction when `growth` is given and present. Beyond
  // the crop the value grows with the distance to it, so flows are pulled back in.
  double sample(const Vec3& ras, Vec3* grad = nullptr, Vec3* growth = nullptr) const;

  const std::array<int64_t, 3>& dims() const { return dims_; }
  // Value stored at crop voxel (i, j, k).
  float value(int64_t i, int64_t j, int64_t k) const { return data_[index(i, j, k)][0]; }
  Vec3 voxel_to_ras(const Vec3& ijk) const { return vox2ras_.apply(ijk); }
  double min_spacing() const { return min_spacing_; }

 private:
  size_t index(int64_t i, int64_t j, int64_t k) const {
    return static_cast<size_t>((k * dims_[1] + j) * dims_[0] + i);
  }
  std::array<int64_t, 3> dims_{0, 0, 0};
  std::vector<std::array<float, 4>> data_;    // value, d/dx, d/dy, d/dz (RAS, per mm)
  std::vector<std::array<float, 3>> growth_;  // RAS unit vectors, or zero
  Affine vox2ras_, ras2vox_;
  double min_spacing_ = 1;
};

}  // namespace ddcsr::diffcoseg
