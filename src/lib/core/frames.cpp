#include "ddcsr/frames.h"

#include <cmath>

#include "ddcsr/volume.h"

namespace ddcsr {

Vec3 lps_to_ras(const Vec3& p) { return {-p[0], -p[1], p[2]}; }
Vec3 ras_to_lps(const Vec3& p) { return {-p[0], -p[1], p[2]}; }

Affine vox2ras_from_itk(const Vec3& origin_lps, const Vec3& spacing,
                        const std::array<double, 9>& direction_lps) {
  // LPS physical = origin + D * diag(spacing) * ijk; RAS = diag(-1, -1, 1) * LPS.
  std::array<double, 9> linear{};
  for (int r = 0; r < 3; ++r) {
    const double flip = r < 2 ? -1.0 : 1.0;
    for (int c = 0; c < 3; ++c) linear[r * 3 + c] = flip * direction_lps[r * 3 + c] * spacing[c];
  }
  return Affine::from_linear_translation(linear, lps_to_ras(origin_lps));
}

void itk_from_vox2ras(const Affine& vox2ras, Vec3& origin_lps, Vec3& spacing,
                      std::array<double, 9>& direction_lps) {
  spacing = vox2ras.column_norms();
  for (int r = 0; r < 3; ++r) {
    const double flip = r < 2 ? -1.0 : 1.0;
    for (int c = 0; c < 3; ++c) direction_lps[r * 3 + c] = flip * vox2ras(r, c) / spacing[c];
  }
  origin_lps = ras_to_lps(vox2ras.translation());
}

Affine VolumeGeometry::vox2ras() const {
  std::array<double, 9> linear{};
  const Vec3* axes[3] = {&x_ras, &y_ras, &z_ras};
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < 3; ++r) linear[r * 3 + c] = (*axes[c])[r] * voxel_size[c];
  // c_ras is the image of the centre voxel (dims / 2), as FreeSurfer defines it.
  Vec3 t = c_ras;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) t[r] -= linear[r * 3 + c] * (dims[c] / 2.0);
  return Affine::from_linear_translation(linear, t);
}

VolumeGeometry volume_geometry_of(const Volume& volume, const std::string& filename) {
  VolumeGeometry g;
  g.valid = true;
  g.filename = filename;
  for (int c = 0; c < 3; ++c) g.dims[c] = static_cast<int>(volume.dims[c]);
  g.voxel_size = volume.spacing();
  Vec3* axes[3] = {&g.x_ras, &g.y_ras, &g.z_ras};
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < 3; ++r) (*axes[c])[r] = volume.vox2ras(r, c) / g.voxel_size[c];
  g.c_ras =
      volume.vox2ras.apply({volume.dims[0] / 2.0, volume.dims[1] / 2.0, volume.dims[2] / 2.0});
  return g;
}

}  // namespace ddcsr
