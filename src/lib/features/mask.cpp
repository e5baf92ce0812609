#include "ddcsr/features/mask.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "ddcsr/error.h"
#include "ddcsr/filters.h"
#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

using mask_ops::Bits;
using Dims = std::array<int64_t, 3>;

int64_t count(const Bits& m) { return std::count(m.begin(), m.end(), 1); }

// The q-th quantile (0..1) of `values` (reordered in place).
float quantile(std::vector<float>& values, double q) {
  if (values.empty()) return 0.f;
  const auto k =
      static_cast<size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

// Reduces `fine` by averaging blocks of f[a] voxels per axis.
std::vector<float> block_mean(const std::vector<float>& fine, const Dims& dims,
                              const std::array<int64_t, 3>& f, Dims& coarse_dims) {
  for (int a = 0; a < 3; ++a) coarse_dims[a] = (dims[a] + f[a] - 1) / f[a];
  std::vector<float> sum(static_cast<size_t>(coarse_dims[0] * coarse_dims[1] * coarse_dims[2]),
                         0.f);
  std::vector<float> n(sum.size(), 0.f);
  for (int64_t k = 0; k < dims[2]; ++k)
    for (int64_t j = 0; j < dims[1]; ++j)
      for (int64_t i = 0; i < dims[0]; ++i) {
        const size_t c = static_cast<size_t>(
            ((k / f[2]) * coarse_dims[1] + j / f[1]) * coarse_dims[0] + i / f[0]);
        sum[c] += fine[static_cast<size_t>((k * dims[1] + j) * dims[0] + i)];
        n[c] += 1.f;
      }
  for (size_t c = 0; c < sum.size(); ++c) sum[c] /= n[c];
  return sum;
}

// Trilinear value of a block-mean grid at fine voxel (i, j, k); block centres sit at
// c * f + (f - 1) / 2 in fine coordinates.
float upsample_at(const std::vector<float>& coarse, const Dims& cd, const std::array<int64_t, 3>& f,
                  int64_t i, int64_t j, int64_t k) {
  const int64_t idx[3] = {i, j, k};
  int64_t lo[3], hi[3];
  double w[3];
  for (int a = 0; a < 3; ++a) {
    double u = (static_cast<double>(idx[a]) - 0.5 * static_cast<double>(f[a] - 1)) /
               static_cast<double>(f[a]);
    u = std::clamp(u, 0.0, static_cast<double>(cd[a] - 1));
    lo[a] = static_cast<int64_t>(std::floor(u));
    hi[a] = std::min(lo[a] + 1, cd[a] - 1);
    w[a] = u - static_cast<double>(lo[a]);
  }
  double v = 0;
  for (int c = 0; c < 8; ++c) {
    const int64_t x = (c & 1) ? hi[0] : lo[0], y = (c & 2) ? hi[1] : lo[1],
                  z = (c & 4) ? hi[2] : lo[2];
    const double wt =
        ((c & 1) ? w[0] : 1 - w[0]) * ((c & 2) ? w[1] : 1 - w[1]) * ((c & 4) ? w[2] : 1 - w[2]);
    v += wt * coarse[static_cast<size_t>((z * cd[1] + y) * cd[0] + x)];
  }
  return static_cast<float>(v);
}

// Opening, largest component, holes filled; the opening's erosion may remove everything from a
// tiny object, in which case the largest component of the input is kept as it is.
Bits clean(const Bits& m0, const Dims& dims, const Vec3& spacing, double open_mm) {
  Bits core = mask_ops::largest_component(mask_ops::erode(m0, dims, spacing, open_mm), dims);
  Bits m;
  if (count(core) == 0) {
    m = mask_ops::largest_component(m0, dims);
  } else {
    m = mask_ops::dilate(core, dims, spacing, open_mm);
    for (size_t i = 0; i < m.size(); ++i) m[i] = m[i] && m0[i];
    m = mask_ops::largest_component(m, dims);
  }
  return mask_ops::fill_holes(m, dims);
}

std::string grid_text(const Volume& v) {
  std::ostringstream s;
  s << v.dims[0] << "x" << v.dims[1] << "x" << v.dims[2] << " with origin (" << v.vox2ras(0, 3)
    << ", " << v.vox2ras(1, 3) << ", " << v.vox2ras(2, 3) << ")";
  return s.str();
}

}  // namespace

namespace mask_ops {

double otsu_threshold(const std::vector<float>& values, int bins) {
  if (values.empty()) return 0;
  const auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
  const double lo = *lo_it, hi = *hi_it;
  if (!(hi > lo)) return lo;
  std::vector<double> h(bins, 0.0);
  const double width = (hi - lo) / bins;
  for (float v : values) h[std::min(bins - 1, static_cast<int>((v - lo) / width))] += 1;
  double total = 0, total_mean = 0;
  for (int b = 0; b < bins; ++b) {
    total += h[b];
    total_mean += h[b] * (lo + (b + 0.5) * width);
  }
  double w0 = 0, m0 = 0, best = -1, threshold = lo;
  for (int b = 0; b < bins - 1; ++b) {
    w0 += h[b];
    m0 += h[b] * (lo + (b + 0.5) * width);
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double mu0 = m0 / w0, mu1 = (total_mean - m0) / w1;
    const double between = w0 * w1 * (mu0 - mu1) * (mu0 - mu1);
    if (between > best) {
      best = between;
      threshold = lo + (b + 1) * width;  // upper edge of the last background bin
    }
  }
  return threshold;
}

Bits erode(const Bits& m, const Dims& dims, const Vec3& spacing, double radius_mm) {
  Bits background(m.size());
  bool any = false;
  for (size_t i = 0; i < m.size(); ++i) any |= (background[i] = !m[i]) != 0;
  if (!any) return m;
  const auto d = squared_distance(background, dims, spacing);
  Bits out(m.size());
  const double r2 = radius_mm * radius_mm;
  for (size_t i = 0; i < m.size(); ++i) out[i] = d[i] > r2;
  return out;
}

Bits dilate(const Bits& m, const Dims& dims, const Vec3& spacing, double radius_mm) {
  if (count(m) == 0) return m;
  const auto d = squared_distance(m, dims, spacing);
  Bits out(m.size());
  const double r2 = radius_mm * radius_mm;
  for (size_t i = 0; i < m.size(); ++i) out[i] = d[i] <= r2;
  return out;
}

Bits largest_component(const Bits& m, const Dims& dims) {
  std::vector<int32_t> label(m.size(), 0);
  std::vector<int64_t> stack;
  int32_t best_label = 0, next = 0;
  int64_t best_size = 0;
  const int64_t sx = 1, sy = dims[0], sz = dims[0] * dims[1];
  for (int64_t seed = 0; seed < static_cast<int64_t>(m.size()); ++seed) {
    if (!m[seed] || label[seed]) continue;
    ++next;
    int64_t size = 0;
    stack.push_back(seed);
    label[seed] = next;
    while (!stack.empty()) {
      const int64_t v = stack.back();
      stack.pop_back();
      ++size;
      const int64_t i = v % dims[0], j = (v / dims[0]) % dims[1], k = v / sz;
      const int64_t nb[6] = {i > 0 ? v - sx : -1, i + 1 < dims[0] ? v + sx : -1,
                             j > 0 ? v - sy : -1, j + 1 < dims[1] ? v + sy : -1,
                             k > 0 ? v - sz : -1, k + 1 < dims[2] ? v + sz : -1};
      for (int64_t n : nb)
        if (n >= 0 && m[n] && !label[n]) {
          label[n] = next;
          stack.push_back(n);
        }
    }
    if (size > best_size) {
      best_size = size;
      best_label = next;
    }
  }
  Bits out(m.size(), 0);
  for (size_t i = 0; i < m.size(); ++i) out[i] = best_label != 0 && label[i] == best_label;
  return out;
}

// Exact and separable (Felzenszwalb and Huttenlocher 2012), with anisotropic voxel sizes.
std::vector<double> squared_distance(const Bits& feature, const Dims& dims, const Vec3& spacing) {
  const double inf = 1e20;  // finite, so parabola intersections stay finite
  std::vector<double> d(feature.size());
  for (size_t i = 0; i < feature.size(); ++i) d[i] = feature[i] ? 0.0 : inf;
  for (int axis = 0; axis < 3; ++axis) {
    const double s = spacing[axis];
    for_each_line(dims, axis, [&](int64_t start, int64_t stride, int64_t n) {
      std::vector<double> f(n), z(n + 1);
      std::vector<int64_t> v(n);
      for (int64_t q = 0; q < n; ++q) f[q] = d[start + q * stride];
      const double inf_z = std::numeric_limits<double>::infinity();
      int64_t k = 0;
      v[0] = 0;
      z[0] = -inf_z;
      z[1] = inf_z;
      auto meet = [&](int64_t q, int64_t p) {  // where the parabolas rooted at q and p intersect
        const double pq = q * s, pp = p * s;
        return ((f[q] + pq * pq) - (f[p] + pp * pp)) / (2 * (pq - pp));
      };
      for (int64_t q = 1; q < n; ++q) {
        double sq = meet(q, v[k]);
        while (sq <= z[k]) sq = meet(q, v[--k]);
        ++k;
        v[k] = q;
        z[k] = sq;
        z[k + 1] = inf_z;
      }
      k = 0;
      for (int64_t q = 0; q < n; ++q) {
        while (z[k + 1] < q * s) ++k;
        const double dx = (q - v[k]) * s;
        d[start + q * stride] = dx * dx + f[v[k]];
      }
    });
  }
  return d;
}

Bits fill_enclosed(const Bits& m, const Dims& dims) {
  Bits out = m;
  const int64_t nx = dims[0], ny = dims[1], nz = dims[2], sy = nx, sz = nx * ny;
  {
    // Background 6-connected to the faces of the field of view; the rest is hole.
    Bits reached(m.size(), 0);
    std::vector<int64_t> stack;
    auto push = [&](int64_t v) {
      if (!out[v] && !reached[v]) {
        reached[v] = 1;
        stack.push_back(v);
      }
    };
    for (int64_t k = 0; k < nz; ++k)
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i)
          if (i == 0 || j == 0 || k == 0 || i == nx - 1 || j == ny - 1 || k == nz - 1)
            push(k * sz + j * sy + i);
    while (!stack.empty()) {
      const int64_t v = stack.back();
      stack.pop_back();
      const int64_t i = v % nx, j = (v / nx) % ny, k = v / sz;
      if (i > 0) push(v - 1);
      if (i + 1 < nx) push(v + 1);
      if (j > 0) push(v - sy);
      if (j + 1 < ny) push(v + sy);
      if (k > 0) push(v - sz);
      if (k + 1 < nz) push(v + sz);
    }
    for (size_t v = 0; v < m.size(); ++v)
      if (!out[v] && !reached[v]) out[v] = 1;
  }
  return out;
}

Bits fill_holes(const Bits& m, const Dims& dims) {
  Bits out = fill_enclosed(m, dims);
  const int64_t sy = dims[0], sz = dims[0] * dims[1];
  // Slice by slice along each axis: a slab's field of view cuts through the ventricles and leaves
  // them open to its first or last slice, which the 3D fill cannot see as holes. Slices are
  // disjoint, so they run in parallel.
  const int64_t strides[3] = {1, sy, sz};
  for (int axis = 0; axis < 3; ++axis) {
    const int a1 = axis == 0 ? 1 : 0, a2 = axis == 2 ? 1 : 2;
    const int64_t n1 = dims[a1], n2 = dims[a2], s1 = strides[a1], s2 = strides[a2];
    parallel_for(
        dims[axis],
        [&](int64_t s0, int64_t s1_end) {
          std::vector<unsigned char> reached(static_cast<size_t>(n1 * n2));
          std::vector<int64_t> stack;
          for (int64_t s = s0; s < s1_end; ++s) {
            const int64_t base = s * strides[axis];
            std::fill(reached.begin(), reached.end(), 0);
            auto push = [&](int64_t p, int64_t q) {
              const int64_t l = q * n1 + p;
              if (!reached[l] && !out[base + p * s1 + q * s2]) {
                reached[l] = 1;
                stack.push_back(l);
              }
            };
            for (int64_t p = 0; p < n1; ++p) push(p, 0), push(p, n2 - 1);
            for (int64_t q = 0; q < n2; ++q) push(0, q), push(n1 - 1, q);
            while (!stack.empty()) {
              const int64_t l = stack.back();
              stack.pop_back();
              const int64_t p = l % n1, q = l / n1;
              if (p > 0) push(p - 1, q);
              if (p + 1 < n1) push(p + 1, q);
              if (q > 0) push(p, q - 1);
              if (q + 1 < n2) push(p, q + 1);
            }
            for (int64_t q = 0; q < n2; ++q)
              for (int64_t p = 0; p < n1; ++p)
                if (!reached[q * n1 + p]) out[base + p * s1 + q * s2] = 1;
          }
        },
        1);
  }
  return out;
}

}  // namespace mask_ops

bool same_grid(const Volume& a, const Volume& b, double tolerance_mm) {
  if (a.dims != b.dims) return false;
  for (int c = 0; c < 8; ++c) {
    const Vec3 ijk{(c & 1) ? double(a.dims[0] - 1) : 0.0, (c & 2) ? double(a.dims[1] - 1) : 0.0,
                   (c & 4) ? double(a.dims[2] - 1) : 0.0};
    const Vec3 pa = a.vox2ras.apply(ijk), pb = b.vox2ras.apply(ijk);
    for (int k = 0; k < 3; ++k)
      if (!(std::abs(pa[k] - pb[k]) <= tolerance_mm)) return false;
  }
  return true;
}

Volume check_mask(const Volume& mask, const Volume& dwi, const std::string& mask_path) {
  if (mask.nvols != 1) throw InputError(mask_path, "brain mask must be a 3D image");
  if (!same_grid(mask, dwi, 1e-3 * std::max(1.0, dwi.spacing()[0])))
    throw InputError(mask_path, "brain mask grid " + grid_text(mask) +
                                    " differs from the DWI grid " + grid_text(dwi) +
                                    " (resample it onto the DWI first)");
  Volume out(dwi.dims, 1, dwi.vox2ras, 0.f);
  int64_t n = 0;
  for (size_t i = 0; i < out.data.size(); ++i)
    n += (out.data[i] = mask.data[i] != 0.f ? 1.f : 0.f) != 0.f;
  if (n == 0) throw InputError(mask_path, "brain mask is empty");
  return out;
}

Volume mask_contrast(const Volume& dwi, const Protocol& protocol) {
  std::vector<std::vector<int64_t>> groups{protocol.b0_volumes};
  for (const Shell& s : protocol.shells) groups.push_back(s.volumes);
  const int64_t nvox = dwi.voxels_per_volume();
  Volume out = dwi.like(1, 0.f);
  std::vector<float> mean(static_cast<size_t>(nvox));
  for (const auto& g : groups) {
    parallel_for(
        nvox,
        [&](int64_t begin, int64_t end) {
          for (int64_t v = begin; v < end; ++v) mean[v] = 0.f;
          for (int64_t t : g)
            for (int64_t v = begin; v < end; ++v) mean[v] += dwi.data[t * nvox + v];
          for (int64_t v = begin; v < end; ++v) mean[v] /= static_cast<float>(g.size());
        },
        1 << 16);
    std::vector<float> positive;
    positive.reserve(mean.size());
    for (float m : mean)
      if (m > 0) positive.push_back(m);
    const float p98 = quantile(positive, 0.98);
    if (!(p98 > 0)) continue;
    for (int64_t v = 0; v < nvox; ++v) out.data[v] += std::max(0.f, mean[v]) / p98;
  }
  for (float& v : out.data) v /= static_cast<float>(groups.size());
  return out;
}

namespace {

// The automatic mask on one grid, as a smoothed field in [0, 1] (brain above 0.5).
std::vector<float> mask_field(const std::vector<float>& c, const Dims& dims, const Vec3& spacing,
                              const MaskOptions& options) {
  const size_t n = c.size();
  std::vector<float> positive;
  positive.reserve(n);
  for (float v : c)
    if (v > 0) positive.push_back(v);
  if (positive.empty()) return std::vector<float>(n, 0.f);
  const float p02 = quantile(positive, 0.02), p98 = quantile(positive, 0.98);
  for (float& v : positive) v = std::clamp(v, p02, p98);
  const double otsu = mask_ops::otsu_threshold(positive);
  Bits m(n);
  for (size_t i = 0; i < n; ++i) m[i] = c[i] > otsu;
  m = clean(m, dims, spacing, options.open_mm);

  // The intensity field: mean contrast within the mask, smoothed, on a grid of about 5 mm (it
  // varies over centimetres, so this costs nothing in accuracy and much less time).
  std::array<int64_t, 3> factor;
  for (int a = 0; a < 3; ++a)
    factor[a] = std::max<int64_t>(1, static_cast<int64_t>(std::floor(5.0 / spacing[a])));
  const Vec3 coarse_spacing{spacing[0] * factor[0], spacing[1] * factor[1], spacing[2] * factor[2]};
  std::vector<float> cm(n), mf(n);
  for (int it = 0; it < options.bias_iterations; ++it) {
    for (size_t i = 0; i < n; ++i) {
      mf[i] = m[i];
      cm[i] = m[i] ? c[i] : 0.f;
    }
    Dims cd;
    std::vector<float> num = block_mean(cm, dims, factor, cd),
                       den = block_mean(mf, dims, factor, cd);
    gaussian_blur(num, cd, coarse_spacing, options.bias_sigma_mm);
    gaussian_blur(den, cd, coarse_spacing, options.bias_sigma_mm);
    Bits next(n);
    parallel_for(
        dims[2],
        [&](int64_t k0, int64_t k1) {
          for (int64_t k = k0; k < k1; ++k)
            for (int64_t j = 0; j < dims[1]; ++j)
              for (int64_t i = 0; i < dims[0]; ++i) {
                const size_t v = static_cast<size_t>((k * dims[1] + j) * dims[0] + i);
                const float d = upsample_at(den, cd, factor, i, j, k);
                const float field = d > 1e-3f ? upsample_at(num, cd, factor, i, j, k) / d : 0.f;
                next[v] = field > 0 && c[v] > options.threshold * field;
              }
        },
        1);
    m = clean(next, dims, spacing, options.open_mm);
  }
  std::vector<float> smooth(n);
  for (size_t i = 0; i < n; ++i) smooth[i] = m[i];
  gaussian_blur(smooth, dims, spacing, options.smooth_mm);
  return smooth;
}

}  // namespace

Volume auto_mask(const Volume& dwi, const Protocol& protocol, const MaskOptions& options,
                 const std::string& image_path) {
  const Dims dims = dwi.dims;
  const Vec3 spacing = dwi.spacing();
  const Volume contrast = mask_contrast(dwi, protocol);
  // Fine scans are masked on a grid of about working_mm and the smooth result interpolated back:
  // the mask's edge is smoothed over 2 mm anyway.
  std::array<int64_t, 3> factor;
  for (int a = 0; a < 3; ++a)
    factor[a] = std::max<int64_t>(1, std::lround(options.working_mm / spacing[a]));
  Dims wd;
  const std::vector<float> work = block_mean(contrast.data, dims, factor, wd);
  const Vec3 work_spacing{spacing[0] * factor[0], spacing[1] * factor[1], spacing[2] * factor[2]};
  const std::vector<float> field = mask_field(work, wd, work_spacing, options);

  Volume out = dwi.like(1, 0.f);
  parallel_for(
      dims[2],
      [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k)
          for (int64_t j = 0; j < dims[1]; ++j)
            for (int64_t i = 0; i < dims[0]; ++i)
              out.at(i, j, k) = upsample_at(field, wd, factor, i, j, k) > 0.5f ? 1.f : 0.f;
      },
      1);
  if (std::count(out.data.begin(), out.data.end(), 1.f) == 0)
    throw InputError(image_path, "automatic brain mask is empty; give one with --mask");
  return out;
}

Volume specimen_extent(const Volume& dwi, const Protocol& protocol, const Volume& brain,
                       double reach_mm, double shell_mm) {
  const Dims dims = dwi.dims;
  const Vec3 spacing = dwi.spacing();
  const Volume contrast = mask_contrast(dwi, protocol);
  const size_t n = contrast.data.size();
  Bits m(n);
  std::vector<float> inside;
  for (size_t i = 0; i < n; ++i) {
    m[i] = brain.data[i] != 0.f;
    if (m[i]) inside.push_back(contrast.data[i]);
  }
  if (inside.empty()) return brain;
  Bits grown = m;
  if (reach_mm > 0) {
    const float level = quantile(inside, 0.5);
    const Bits near = mask_ops::dilate(m, dims, spacing, reach_mm);
    for (size_t i = 0; i < n; ++i) grown[i] = m[i] || (near[i] && contrast.data[i] >= 0.5f * level);
    grown = mask_ops::largest_component(grown, dims);
    for (size_t i = 0; i < n; ++i) grown[i] = grown[i] || m[i];
  }
  const Bits shell = mask_ops::dilate(grown, dims, spacing, shell_mm);
  Volume out = dwi.like(1, 0.f);
  for (size_t i = 0; i < n; ++i) out.data[i] = shell[i] ? 1.f : 0.f;
  return out;
}

}  // namespace ddcsr
