// A 4x4 homogeneous transform between spaces in mm (or voxel indices).
#pragma once
#include <array>
#include <string>

namespace ddcsr {

using Vec3 = std::array<double, 3>;

struct Affine {
  // Row-major 4x4; the last row is always (0, 0, 0, 1).
  std::array<double, 16> m{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};

  static Affine identity() { return Affine{}; }
  static Affine from_linear_translation(const std::array<double, 9>& linear, const Vec3& t);

  double& operator()(int r, int c) { return m[r * 4 + c]; }
  double operator()(int r, int c) const { return m[r * 4 + c]; }

  Vec3 apply(const Vec3& p) const;
  // The linear part applied to a direction (no translation).
  Vec3 apply_linear(const Vec3& v) const;
  Vec3 translation() const { return {m[3], m[7], m[11]}; }
  double determinant() const;  // of the 3x3 linear part
  // Throws std::domain_error when the linear part is singular.
  Affine inverse() const;
  Affine operator*(const Affine& rhs) const;
  // Column norms of the linear part: the voxel size when this maps voxels to mm.
  Vec3 column_norms() const;
};

// Orientation code of a voxel->RAS affine, as in "LAS": for each voxel axis, the world direction it
// points to most (R/L, A/P, S/I toward increasing index).
std::string orientation_code(const Affine& vox2ras);

}  // namespace ddcsr
