#include "ddcsr/volume.h"

#include <algorithm>
#include <cmath>

namespace ddcsr {

Volume::Volume(const std::array<int64_t, 3>& dims_, int64_t nvols_, const Affine& vox2ras_,
               float fill)
    : dims(dims_),
      nvols(nvols_),
      vox2ras(vox2ras_),
      data(static_cast<size_t>(dims_[0] * dims_[1] * dims_[2] * nvols_), fill) {}

Vec3 Volume::ras_to_voxel(const Vec3& ras) const { return vox2ras.inverse().apply(ras); }

float Volume::sample_linear(const Vec3& ras, int64_t t, float outside) const {
  return sample_voxel_linear(ras_to_voxel(ras), t, outside);
}

float Volume::sample_voxel_linear(const Vec3& ijk, int64_t t, float outside) const {
  float value;
  sample_voxel_linear_frames(ijk, t, 1, &value, outside);
  return value;
}

void Volume::sample_voxel_linear_frames(const Vec3& ijk, int64_t first, int64_t count, float* out,
                                        float outside) const {
  // Points up to half a voxel beyond the edge take the edge value (clamped), farther is outside.
  double p[3];
  for (int a = 0; a < 3; ++a) {
    if (!(ijk[a] >= -0.5 && ijk[a] <= dims[a] - 0.5)) {
      std::fill(out, out + count, outside);
      return;
    }
    p[a] = std::clamp(ijk[a], 0.0, static_cast<double>(dims[a] - 1));
  }
  int64_t i0[3], i1[3];
  double f[3];
  for (int a = 0; a < 3; ++a) {
    i0[a] = static_cast<int64_t>(std::floor(p[a]));
    i1[a] = std::min<int64_t>(i0[a] + 1, dims[a] - 1);
    f[a] = p[a] - i0[a];
  }
  size_t corner[8];
  double weight[8];
  for (int c = 0; c < 8; ++c) {
    corner[c] = index((c & 1) ? i1[0] : i0[0], (c & 2) ? i1[1] : i0[1], (c & 4) ? i1[2] : i0[2]);
    weight[c] =
        ((c & 1) ? f[0] : 1 - f[0]) * ((c & 2) ? f[1] : 1 - f[1]) * ((c & 4) ? f[2] : 1 - f[2]);
  }
  const auto stride = static_cast<size_t>(voxels_per_volume());
  for (int64_t t = 0; t < count; ++t) {
    const size_t offset = static_cast<size_t>(first + t) * stride;
    double v = 0;
    for (int c = 0; c < 8; ++c)
      if (weight[c] != 0) v += weight[c] * data[offset + corner[c]];  // a far corner may be NaN
    out[t] = static_cast<float>(v);
  }
}

Volume Volume::frame(int64_t t) const {
  Volume out(dims, 1, vox2ras);
  const auto n = static_cast<size_t>(voxels_per_volume());
  std::copy(data.begin() + n * t, data.begin() + n * (t + 1), out.data.begin());
  return out;
}

}  // namespace ddcsr
