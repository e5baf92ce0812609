#include "ddcsr/filters.h"

#include <algorithm>
#include <cmath>

namespace ddcsr {

void gaussian_blur(std::vector<float>& v, const std::array<int64_t, 3>& dims, const Vec3& spacing,
                   double sigma_mm) {
  if (!(sigma_mm > 0)) return;
  for (int axis = 0; axis < 3; ++axis) {
    const double sigma = sigma_mm / spacing[axis];
    const auto radius = static_cast<int64_t>(std::ceil(3.0 * sigma));
    const int64_t n = dims[axis];
    if (radius < 1 || n < 2) continue;
    std::vector<double> kernel(2 * radius + 1);
    double sum = 0;
    for (int64_t r = -radius; r <= radius; ++r)
      sum += kernel[r + radius] = std::exp(-0.5 * r * r / (sigma * sigma));
    for (double& k : kernel) k /= sum;
    for_each_line(dims, axis, [&](int64_t start, int64_t stride, int64_t n) {
      std::vector<double> line(n);
      for (int64_t q = 0; q < n; ++q) line[q] = v[start + q * stride];
      for (int64_t q = 0; q < n; ++q) {
        double acc = 0;
        // Past the field of view is most likely more of what is at its edge.
        for (int64_t r = -radius; r <= radius; ++r)
          acc += kernel[r + radius] * line[std::clamp<int64_t>(q + r, 0, n - 1)];
        v[start + q * stride] = static_cast<float>(acc);
      }
    });
  }
}

namespace {

// In-place conversion of one line of samples into cubic B-spline coefficients (the causal and
// anti-causal recursive filters of Unser's pole z = sqrt(3) - 2, mirror-symmetric boundaries).
void bspline_coefficients(std::vector<double>& c) {
  const int64_t n = static_cast<int64_t>(c.size());
  if (n < 2) return;
  const double z = std::sqrt(3.0) - 2.0;
  for (double& x : c) x *= 6.0;  // (1 - z)(1 - 1/z)
  // Causal start: the sum over the mirrored line, in closed form on a short line and truncated
  // where z^k falls below double precision on a long one.
  if (n < 30) {
    const double zn = std::pow(z, double(n - 1));
    double sum = c[0] + zn * c[n - 1], zk = z;
    for (int64_t k = 1; k < n - 1; ++k, zk *= z) sum += (zk + zn * zn / zk) * c[k];
    c[0] = sum / (1.0 - zn * zn);
  } else {
    double sum = c[0], zk = z;
    for (int64_t k = 1; k < 30; ++k, zk *= z) sum += zk * c[k];
    c[0] = sum;
  }
  for (int64_t k = 1; k < n; ++k) c[k] += z * c[k - 1];
  c[n - 1] = (z / (z * z - 1.0)) * (c[n - 1] + z * c[n - 2]);
  for (int64_t k = n - 2; k >= 0; --k) c[k] = z * (c[k + 1] - c[k]);
}

int64_t mirror_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

void bspline_weights(double t, double w[4]) {
  const double t2 = t * t, t3 = t2 * t, u = 1.0 - t;
  w[0] = u * u * u / 6.0;
  w[1] = (4.0 - 6.0 * t2 + 3.0 * t3) / 6.0;
  w[2] = (1.0 + 3.0 * t + 3.0 * t2 - 3.0 * t3) / 6.0;
  w[3] = t3 / 6.0;
}

}  // namespace

Volume resample_bspline(const Volume& src, double spacing_mm) {
  const Vec3 src_spacing = src.spacing();
  std::array<double, 3> step{};  // source voxels per target voxel, per axis
  std::array<int64_t, 3> dims{};
  for (int a = 0; a < 3; ++a) {
    step[a] = spacing_mm / src_spacing[a];
    // The small tolerance keeps the last voxel centre when the extent is an exact multiple.
    dims[a] = static_cast<int64_t>(std::floor(double(src.dims[a] - 1) / step[a] + 1e-6)) + 1;
  }
  Affine scale;
  for (int a = 0; a < 3; ++a) scale(a, a) = step[a];
  Volume out(dims, src.nvols, src.vox2ras * scale, 0.f);
  const int64_t nsrc = src.voxels_per_volume();
  std::vector<float> coef(static_cast<size_t>(nsrc));
  // Per axis, the four source indices and weights of every target index.
  std::array<std::vector<std::array<int64_t, 4>>, 3> idx;
  std::array<std::vector<std::array<double, 4>>, 3> wts;
  for (int a = 0; a < 3; ++a) {
    idx[a].resize(dims[a]);
    wts[a].resize(dims[a]);
    for (int64_t i = 0; i < dims[a]; ++i) {
      const double x = double(i) * step[a];
      const auto base = static_cast<int64_t>(std::floor(x));
      double w[4];
      bspline_weights(x - double(base), w);
      for (int m = 0; m < 4; ++m) {
        idx[a][i][m] = mirror_index(base - 1 + m, src.dims[a]);
        wts[a][i][m] = w[m];
      }
    }
  }
  for (int64_t t = 0; t < src.nvols; ++t) {
    std::copy(src.data.begin() + t * nsrc, src.data.begin() + (t + 1) * nsrc, coef.begin());
    for (int axis = 0; axis < 3; ++axis)
      for_each_line(src.dims, axis, [&](int64_t start, int64_t stride, int64_t n) {
        std::vector<double> line(n);
        for (int64_t q = 0; q < n; ++q) line[q] = coef[start + q * stride];
        bspline_coefficients(line);
        for (int64_t q = 0; q < n; ++q) coef[start + q * stride] = static_cast<float>(line[q]);
      });
    parallel_for(
        dims[2],
        [&](int64_t k0, int64_t k1) {
          for (int64_t k = k0; k < k1; ++k)
            for (int64_t j = 0; j < dims[1]; ++j)
              for (int64_t i = 0; i < dims[0]; ++i) {
                double acc = 0;
                for (int c = 0; c < 4; ++c)
                  for (int b = 0; b < 4; ++b) {
                    const double wbc = wts[1][j][b] * wts[2][k][c];
                    const float* row =
                        coef.data() + (idx[2][k][c] * src.dims[1] + idx[1][j][b]) * src.dims[0];
                    for (int a = 0; a < 4; ++a) acc += wbc * wts[0][i][a] * row[idx[0][i][a]];
                  }
                out.at(i, j, k, t) = static_cast<float>(acc);
              }
        },
        1);
  }
  return out;
}

}  // namespace ddcsr
