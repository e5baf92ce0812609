// The project's one image type: a 3D or 4D float volume that carries its voxel->scanner-RAS affine.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ddcsr/affine.h"

namespace ddcsr {

struct Volume {
  std::array<int64_t, 3> dims{0, 0, 0};
  int64_t nvols = 1;  // 1 for a 3D image
  Affine vox2ras;     // voxel index (i, j, k) -> scanner RAS (mm)
  // Voxel values with i fastest, then j, k, then the volume index.
  std::vector<float> data;

  Volume() = default;
  Volume(const std::array<int64_t, 3>& dims, int64_t nvols, const Affine& vox2ras,
         float fill = 0.f);

  int64_t voxels_per_volume() const { return dims[0] * dims[1] * dims[2]; }
  size_t index(int64_t i, int64_t j, int64_t k, int64_t t = 0) const {
    return static_cast<size_t>(((t * dims[2] + k) * dims[1] + j) * dims[0] + i);
  }
  float& at(int64_t i, int64_t j, int64_t k, int64_t t = 0) { return data[index(i, j, k, t)]; }
  float at(int64_t i, int64_t j, int64_t k, int64_t t = 0) const { return data[index(i, j, k, t)]; }
  bool inside(int64_t i, int64_t j, int64_t k) const {
    return i >= 0 && j >= 0 && k >= 0 && i < dims[0] && j < dims[1] && k < dims[2];
  }

  Vec3 spacing() const { return vox2ras.column_norms(); }
  Vec3 voxel_to_ras(const Vec3& ijk) const { return vox2ras.apply(ijk); }
  Vec3 ras_to_voxel(const Vec3& ras) const;  // continuous voxel coordinates

  // Trilinear interpolation at a scanner-RAS point; `outside` beyond the field of view.
  float sample_linear(const Vec3& ras, int64_t t = 0, float outside = 0.f) const;
  // Trilinear interpolation at continuous voxel coordinates.
  float sample_voxel_linear(const Vec3& ijk, int64_t t = 0, float outside = 0.f) const;
  // The same for frames first .. first + count - 1 into out[0 .. count - 1], the weights computed
  // once (a profile of tensors costs one lookup, not one per component).
  void sample_voxel_linear_frames(const Vec3& ijk, int64_t first, int64_t count, float* out,
                                  float outside = 0.f) const;
  // One 3D frame of a 4D volume.
  Volume frame(int64_t t) const;
  // Same grid and affine, `nvols` frames, filled.
  Volume like(int64_t nvols = 1, float fill = 0.f) const {
    return Volume(dims, nvols, vox2ras, fill);
  }
};

}  // namespace ddcsr
