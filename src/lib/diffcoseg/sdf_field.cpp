#include "diffcoseg/sdf_field.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ddcsr/filters.h"
#include "ddcsr/threads.h"
#include "diffcoseg/vec.h"

namespace ddcsr::diffcoseg {

VoxelBox box_below(const Volume& sdf, float level, int64_t pad) {
  VoxelBox box;
  box.lo = {sdf.dims[0], sdf.dims[1], sdf.dims[2]};
  box.hi = {-1, -1, -1};
  for (int64_t k = 0; k < sdf.dims[2]; ++k)
    for (int64_t j = 0; j < sdf.dims[1]; ++j)
      for (int64_t i = 0; i < sdf.dims[0]; ++i)
        if (sdf.at(i, j, k) < level) {
          const int64_t ijk[3] = {i, j, k};
          for (int a = 0; a < 3; ++a) {
            box.lo[a] = std::min(box.lo[a], ijk[a]);
            box.hi[a] = std::max(box.hi[a], ijk[a]);
          }
        }
  if (box.hi[0] < 0) return VoxelBox{};
  for (int a = 0; a < 3; ++a) {
    box.lo[a] = std::max<int64_t>(0, box.lo[a] - pad);
    box.hi[a] = std::min<int64_t>(sdf.dims[a], box.hi[a] + 1 + pad);
  }
  return box;
}

VoxelBox box_union(const VoxelBox& a, const VoxelBox& b) {
  if (a.voxels() == 0) return b;
  if (b.voxels() == 0) return a;
  VoxelBox u;
  for (int d = 0; d < 3; ++d) {
    u.lo[d] = std::min(a.lo[d], b.lo[d]);
    u.hi[d] = std::max(a.hi[d], b.hi[d]);
  }
  return u;
}

Volume crop_grid(const Volume& grid, const VoxelBox& box) {
  Volume crop;
  for (int a = 0; a < 3; ++a) crop.dims[a] = box.hi[a] - box.lo[a];
  // The original affine after shifting the index origin to box.lo.
  Affine shift;
  shift(0, 3) = double(box.lo[0]);
  shift(1, 3) = double(box.lo[1]);
  shift(2, 3) = double(box.lo[2]);
  crop.vox2ras = grid.vox2ras * shift;
  return crop;
}

VoxelBox whole_box(const Volume& grid) {
  VoxelBox box;
  box.hi = grid.dims;
  return box;
}

SdfField::SdfField(const Volume& sdf, const VoxelBox& box, double sigma_mm) {
  const Volume crop = crop_grid(sdf, box);
  dims_ = crop.dims;
  vox2ras_ = crop.vox2ras;
  ras2vox_ = vox2ras_.inverse();
  const Vec3 spacing = vox2ras_.column_norms();
  min_spacing_ = std::min({spacing[0], spacing[1], spacing[2]});

  const int64_t nvox = dims_[0] * dims_[1] * dims_[2];
  std::vector<float> values(nvox);
  parallel_for(
      dims_[2],
      [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k)
          for (int64_t j = 0; j < dims_[1]; ++j)
            for (int64_t i = 0; i < dims_[0]; ++i)
              values[index(i, j, k)] = sdf.at(i + box.lo[0], j + box.lo[1], k + box.lo[2]);
      },
      1);
  if (sigma_mm > 0) gaussian_blur(values, dims_, spacing, sigma_mm);

  // RAS gradient = (J^-1)^T times the voxel-index gradient, J the affine's linear part.
  double jinv[3][3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) jinv[r][c] = ras2vox_(r, c);
  data_.resize(nvox);
  parallel_for(
      dims_[2],
      [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k)
          for (int64_t j = 0; j < dims_[1]; ++j)
            for (int64_t i = 0; i < dims_[0]; ++i) {
              const int64_t ijk[3] = {i, j, k};
              double g[3];
              for (int a = 0; a < 3; ++a) {
                int64_t lo[3] = {i, j, k}, hi[3] = {i, j, k};
                lo[a] = std::max<int64_t>(0, ijk[a] - 1);
                hi[a] = std::min<int64_t>(dims_[a] - 1, ijk[a] + 1);
                const double span = double(hi[a] - lo[a]);
                g[a] = span > 0 ? (values[index(hi[0], hi[1], hi[2])] -
                                   values[index(lo[0], lo[1], lo[2])]) /
                                      span
                                : 0.0;
              }
              auto& d = data_[index(i, j, k)];
              d[0] = values[index(i, j, k)];
              for (int r = 0; r < 3; ++r)
                d[1 + r] =
                    static_cast<float>(jinv[0][r] * g[0] + jinv[1][r] * g[1] + jinv[2][r] * g[2]);
            }
      },
      1);
}

void SdfField::add_growth_directions(double inside_depth_mm, double outside_depth_mm,
                                     double neck_mm) {
  const int64_t nvox = dims_[0] * dims_[1] * dims_[2];
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> dist(nvox, inf);
  // 26-neighbourhood steps with their lengths in mm.
  struct Step {
    int64_t offset;
    int dx, dy, dz;
    float length;
  };
  std::vector<Step> steps;
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        if (!dx && !dy && !dz) continue;
        const Vec3 d = vox2ras_.apply_linear({double(dx), double(dy), double(dz)});
        steps.push_back({(dz * dims_[1] + dy) * dims_[0] + dx, dx, dy, dz, float(norm(d))});
      }
  float min_step = steps[0].length;
  for (const Step& st : steps) min_step = std::min(min_step, st.length);
  auto inside_grid = [&](int64_t i, int64_t j, int64_t k) {
    return i >= 0 && j >= 0 && k >= 0 && i < dims_[0] && j < dims_[1] && k < dims_[2];
  };
  // Per voxel, one byte: bit 0/1 = inside/outside and at least neck_mm from the surface (the
  // propagation stays that far away, so it does not pass necks thinner than 2 * neck_mm, which
  // a mesh with edges about a voxel long cannot enter cleanly); bit 2/3 = deep inside/outside.
  std::vector<uint8_t> cls(nvox);
  parallel_for(
      nvox,
      [&](int64_t begin, int64_t end) {
        for (int64_t idx = begin; idx < end; ++idx) {
          const float v = data_[idx][0];
          cls[idx] = uint8_t((-v > neck_mm ? 1 : 0) | (v > neck_mm ? 2 : 0) |
                             (-v >= inside_depth_mm ? 4 : 0) | (v >= outside_depth_mm ? 8 : 0));
        }
      },
      65536);
  // Dijkstra on each side separately; the two propagations touch disjoint voxels, so they run
  // concurrently.
  parallel_for(
      2,
      [&](int64_t begin, int64_t end) {
        for (int64_t side = begin; side < end; ++side) {
          const uint8_t side_bit = side == 0 ? 1 : 2, deep_bit = side == 0 ? 4 : 8;
          auto on_side = [&](size_t idx) { return (cls[idx] & side_bit) != 0; };
          auto deep = [&](size_t idx) { return (cls[idx] & deep_bit) != 0; };
          // Seeds: one connected component of the deep voxels (6-connected). Outside, the one
          // touching the crop's border (the far exterior); inside, the largest (the core of the
          // white matter). Other deep pockets (a wide sulcal cave behind a narrower mouth, a thick
          // lobe behind a narrower isthmus) are reached through the propagation, so the
          // directions lead into them.
          std::vector<int32_t> label(nvox, 0);
          int32_t best_label = 0;
          int64_t best_size = -1;
          std::vector<int64_t> stack;
          int32_t next_label = 0;
          for (int64_t start = 0; start < nvox; ++start) {
            if (label[start] || !deep(start)) continue;
            const int32_t lab = ++next_label;
            int64_t size = 0;
            bool border = false;
            stack.assign(1, start);
            label[start] = lab;
            while (!stack.empty()) {
              const int64_t idx = stack.back();
              stack.pop_back();
              ++size;
              const int64_t i = idx % dims_[0], j = (idx / dims_[0]) % dims_[1],
                            k = idx / (dims_[0] * dims_[1]);
              border |= i == 0 || j == 0 || k == 0 || i == dims_[0] - 1 || j == dims_[1] - 1 ||
                        k == dims_[2] - 1;
              const int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                        {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
              for (const auto& q : nb) {
                if (!inside_grid(q[0], q[1], q[2])) continue;
                const int64_t n = index(q[0], q[1], q[2]);
                if (!label[n] && deep(n)) {
                  label[n] = lab;
                  stack.push_back(n);
                }
              }
            }
            // Outside, bordering components win over any inner pocket.
            const int64_t score = side == 1 ? (border ? size + nvox : size) : size;
            if (score > best_size) {
              best_size = score;
              best_label = lab;
            }
          }
          auto seed = [&](size_t idx) { return best_label > 0 && label[idx] == best_label; };
          // Dijkstra with a bucket queue (Dial): buckets as wide as the shortest step, so a voxel
          // relaxed from bucket b always lands in a later bucket and every bucket is final when its
          // turn comes; exact, and without a heap's log factor.
          const float width = min_step;
          std::vector<std::vector<int64_t>> buckets(1);
          for (int64_t k = 0; k < dims_[2]; ++k)
            for (int64_t j = 0; j < dims_[1]; ++j)
              for (int64_t i = 0; i < dims_[0]; ++i) {
                const int64_t idx = index(i, j, k);
                if (!seed(idx)) continue;
                dist[idx] = 0;
                // Only seeds next to the rest of their side need to start the propagation (a
                // face neighbour decides: the 26-neighbourhood would change distances by a
                // fraction of a voxel, which the directions do not feel).
                const int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                          {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
                for (const auto& q : nb)
                  if (inside_grid(q[0], q[1], q[2])) {
                    const int64_t n = index(q[0], q[1], q[2]);
                    if (on_side(n) && !seed(n)) {
                      buckets[0].push_back(idx);
                      break;
                    }
                  }
              }
          for (size_t b = 0; b < buckets.size(); ++b) {
            for (size_t q = 0; q < buckets[b].size(); ++q) {
              const int64_t idx = buckets[b][q];
              const float d = dist[idx];
              if (static_cast<size_t>(d / width) != b) continue;  // stale entry
              const int64_t i = idx % dims_[0], j = (idx / dims_[0]) % dims_[1],
                            k = idx / (dims_[0] * dims_[1]);
              const bool interior = i > 0 && j > 0 && k > 0 && i + 1 < dims_[0] &&
                                    j + 1 < dims_[1] && k + 1 < dims_[2];
              for (const Step& st : steps) {
                if (!interior && !inside_grid(i + st.dx, j + st.dy, k + st.dz)) continue;
                const int64_t n = idx + st.offset;
                if (!on_side(n) || seed(n)) continue;
                const float nd = d + st.length;
                if (nd < dist[n]) {
                  dist[n] = nd;
                  const size_t nb = static_cast<size_t>(nd / width);
                  if (nb >= buckets.size()) buckets.resize(nb + 1);
                  buckets[nb].push_back(n);
                }
              }
            }
            std::vector<int64_t>().swap(buckets[b]);
          }
        }
      },
      1);
  // Directions: the distance's gradient by central differences within the voxel's own side
  // (one-sided where a neighbour lies across the surface), in RAS, outward inside and inward
  // outside, i.e. always toward the zero level set.
  double jinv[3][3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) jinv[r][c] = ras2vox_(r, c);
  growth_.assign(nvox, {0.f, 0.f, 0.f});
  parallel_for(
      dims_[2],
      [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k)
          for (int64_t j = 0; j < dims_[1]; ++j)
            for (int64_t i = 0; i < dims_[0]; ++i) {
              const int64_t idx = index(i, j, k);
              if (!(dist[idx] < inf)) continue;
              const bool in = data_[idx][0] < 0;
              const int64_t ijk[3] = {i, j, k};
              double g[3];
              for (int a = 0; a < 3; ++a) {
                int64_t lo[3] = {i, j, k}, hi[3] = {i, j, k};
                lo[a] = ijk[a] - 1;
                hi[a] = ijk[a] + 1;
                auto usable = [&](const int64_t* q) {
                  if (!inside_grid(q[0], q[1], q[2])) return false;
                  const int64_t n = index(q[0], q[1], q[2]);
                  return dist[n] < inf && (data_[n][0] < 0) == in;
                };
                const bool ul = usable(lo), uh = usable(hi);
                const double dl = ul ? dist[index(lo[0], lo[1], lo[2])] : 0.0;
                const double dh = uh ? dist[index(hi[0], hi[1], hi[2])] : 0.0;
                if (ul && uh)
                  g[a] = 0.5 * (dh - dl);
                else if (uh)
                  g[a] = dh - dist[idx];
                else if (ul)
                  g[a] = dist[idx] - dl;
                else
                  g[a] = 0;
              }
              Vec3 r;
              for (int c = 0; c < 3; ++c)
                r[c] = jinv[0][c] * g[0] + jinv[1][c] * g[1] + jinv[2][c] * g[2];
              // Distance grows away from the seeds: inside that is outward, outside inward; both
              // lead to the surface.
              r = normalized(r);
              growth_[idx] = {float(r[0]), float(r[1]), float(r[2])};
            }
      },
      1);
}

double SdfField::sample(const Vec3& ras, Vec3* grad, Vec3* growth) const {
  const Vec3 p = ras2vox_.apply(ras);
  double q[3];
  bool outside = false;
  for (int a = 0; a < 3; ++a) {
    q[a] = std::clamp(p[a], 0.0, double(dims_[a] - 1));
    outside |= q[a] != p[a];
  }
  int64_t i0[3];
  double f[3];
  for (int a = 0; a < 3; ++a) {
    i0[a] = std::min<int64_t>(static_cast<int64_t>(q[a]), std::max<int64_t>(0, dims_[a] - 2));
    f[a] = q[a] - double(i0[a]);
  }
  const int64_t sx = dims_[0] > 1 ? 1 : 0, sy = dims_[1] > 1 ? dims_[0] : 0,
                sz = dims_[2] > 1 ? dims_[0] * dims_[1] : 0;
  const size_t base = index(i0[0], i0[1], i0[2]);
  double acc[4] = {0, 0, 0, 0};
  const int channels = grad ? 4 : 1;
  for (int c = 0; c < 8; ++c) {
    const double w =
        ((c & 1) ? f[0] : 1 - f[0]) * ((c & 2) ? f[1] : 1 - f[1]) * ((c & 4) ? f[2] : 1 - f[2]);
    const auto& d = data_[base + ((c & 1) ? sx : 0) + ((c & 2) ? sy : 0) + ((c & 4) ? sz : 0)];
    for (int ch = 0; ch < channels; ++ch) acc[ch] += w * d[ch];
  }
  double value = acc[0];
  if (grad) *grad = {acc[1], acc[2], acc[3]};
  if (growth) {
    Vec3 gacc{0, 0, 0};
    if (!growth_.empty())
      for (int c = 0; c < 8; ++c) {
        const double w =
            ((c & 1) ? f[0] : 1 - f[0]) * ((c & 2) ? f[1] : 1 - f[1]) * ((c & 4) ? f[2] : 1 - f[2]);
        const auto& d =
            growth_[base + ((c & 1) ? sx : 0) + ((c & 2) ? sy : 0) + ((c & 4) ? sz : 0)];
        for (int ch = 0; ch < 3; ++ch) gacc[ch] += w * d[ch];
      }
    *growth = gacc;
  }
  if (outside) {
    const Vec3 inside_ras = vox2ras_.apply({q[0], q[1], q[2]});
    const Vec3 away = ras - inside_ras;
    value += norm(away);
    if (grad) *grad = normalized(away);
    if (growth) *growth = -1.0 * normalized(away);
  }
  return value;
}

}  // namespace ddcsr::diffcoseg
