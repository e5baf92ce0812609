// The one place that converts between the coordinate frames of the field:
// ITK's LPS, scanner RAS (NIfTI world), and FreeSurfer's surface RAS (tkregister RAS).
#pragma once
#include <string>

#include "ddcsr/affine.h"

namespace ddcsr {

struct Volume;

// ITK physical point (x, y, z) in LPS is RAS (-x, -y, z), and the map is its own inverse.
Vec3 lps_to_ras(const Vec3& p);
Vec3 ras_to_lps(const Vec3& p);
// Voxel->RAS affine from an ITK image's origin, spacing and direction (all in LPS).
Affine vox2ras_from_itk(const Vec3& origin_lps, const Vec3& spacing,
                        const std::array<double, 9>& direction_lps_row_major);
// The inverse: ITK origin/spacing/direction (LPS) of a voxel->RAS affine.
void itk_from_vox2ras(const Affine& vox2ras, Vec3& origin_lps, Vec3& spacing,
                      std::array<double, 9>& direction_lps_row_major);

// FreeSurfer's volume geometry ("volume info" footer of a surface file).
struct VolumeGeometry {
  bool valid = false;
  std::string filename;
  std::array<int, 3> dims{0, 0, 0};
  Vec3 voxel_size{1, 1, 1};
  Vec3 x_ras{-1, 0, 0}, y_ras{0, 0, 1}, z_ras{0, -1, 0};  // direction cosines
  Vec3 c_ras{0, 0, 0};                                    // scanner RAS of the volume centre

  // The scanner-RAS affine of the volume this geometry describes (dims/2 maps to c_ras).
  Affine vox2ras() const;
};

// Geometry of a volume as FreeSurfer stores it: c_ras is the scanner RAS of voxel (dims/2).
VolumeGeometry volume_geometry_of(const Volume& volume, const std::string& filename);

// scanner RAS = surface RAS + c_ras
inline Vec3 surface_ras_to_scanner_ras(const Vec3& p, const Vec3& c_ras) {
  return {p[0] + c_ras[0], p[1] + c_ras[1], p[2] + c_ras[2]};
}
inline Vec3 scanner_ras_to_surface_ras(const Vec3& p, const Vec3& c_ras) {
  return {p[0] - c_ras[0], p[1] - c_ras[1], p[2] - c_ras[2]};
}

}  // namespace ddcsr
