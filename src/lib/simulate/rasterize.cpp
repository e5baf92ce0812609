#include "ddcsr/simulate/rasterize.h"

#include <algorithm>
#include <cmath>

#include "ddcsr/error.h"
#include "ddcsr/threads.h"

namespace ddcsr::sim {

namespace {

struct Crossing {
  float x;        // position along the i axis (voxel units)
  int32_t delta;  // +1 entering, -1 leaving (moving towards +i)
  int64_t column;
};

// Sign of the edge function of edge (u, w), u < w by vertex index, at point (py, pz); exact
// zeros resolved as if the point were moved by (eps, eps^2), which is the same decision for both
// faces sharing the edge.
inline int edge_sign(double uy, double uz, double wy, double wz, double py, double pz) {
  const double dy = wy - uy, dz = wz - uz;
  const double e = dy * (pz - uz) - dz * (py - uy);
  if (e > 0) return 1;
  if (e < 0) return -1;
  if (dz != 0) return dz < 0 ? 1 : -1;
  return dy > 0 ? 1 : (dy < 0 ? -1 : 0);
}
inline double edge_value(double uy, double uz, double wy, double wz, double py, double pz) {
  return (wy - uy) * (pz - uz) - (wz - uz) * (py - uy);
}

// Every crossing of the sub-columns (n per voxel side, along i) with the meshes, grouped by
// column: crossings of column c are sorted[start[c] .. start[c + 1]), not yet ordered by x.
struct ColumnCrossings {
  std::vector<int64_t> start;
  std::vector<Crossing> sorted;
};

ColumnCrossings collect_crossings(const std::vector<const Mesh*>& meshes, const Volume& grid,
                                  int n) {
  const int64_t ny = grid.dims[1], nz = grid.dims[2];
  const int64_t NJ = ny * n, NK = nz * n;
  const Affine ras2vox = grid.vox2ras.inverse();
  const double handed = ras2vox.determinant() > 0 ? 1.0 : -1.0;

  std::vector<Crossing> all;
  for (const Mesh* mesh : meshes) {
    std::vector<Vec3> p(mesh->vertices.size());
    for (size_t v = 0; v < p.size(); ++v)
      p[v] = ras2vox.apply({mesh->vertices[v][0], mesh->vertices[v][1], mesh->vertices[v][2]});
    const double orient = (mesh_volume(*mesh) >= 0 ? 1.0 : -1.0) * handed;
    const int64_t nf = static_cast<int64_t>(mesh->faces.size());
    const int64_t chunk = 8192;
    const int64_t chunks = (nf + chunk - 1) / chunk;
    std::vector<std::vector<Crossing>> parts(chunks);
    parallel_for(
        chunks,
        [&](int64_t cb, int64_t ce) {
          for (int64_t c = cb; c < ce; ++c) {
            auto& out = parts[c];
            for (int64_t f = c * chunk; f < std::min(nf, (c + 1) * chunk); ++f) {
              const auto& face = mesh->faces[f];
              const Vec3 &a = p[face[0]], &b = p[face[1]], &cc = p[face[2]];
              const double area2 = (b[1] - a[1]) * (cc[2] - a[2]) - (b[2] - a[2]) * (cc[1] - a[1]);
              if (area2 == 0) continue;
              const int want = area2 > 0 ? 1 : -1;
              const double ylo = std::min({a[1], b[1], cc[1]}), yhi = std::max({a[1], b[1], cc[1]});
              const double zlo = std::min({a[2], b[2], cc[2]}), zhi = std::max({a[2], b[2], cc[2]});
              // Sub-column J sits at y = (J + 0.5) / n - 0.5.
              const int64_t j0 =
                  std::max<int64_t>(0, static_cast<int64_t>(std::ceil((ylo + 0.5) * n - 0.5)));
              const int64_t j1 = std::min<int64_t>(
                  NJ - 1, static_cast<int64_t>(std::floor((yhi + 0.5) * n - 0.5)));
              const int64_t k0 =
                  std::max<int64_t>(0, static_cast<int64_t>(std::ceil((zlo + 0.5) * n - 0.5)));
              const int64_t k1 = std::min<int64_t>(
                  NK - 1, static_cast<int64_t>(std::floor((zhi + 0.5) * n - 0.5)));
              if (j0 > j1 || k0 > k1) continue;
              const int32_t vid[3] = {face[0], face[1], face[2]};
              const Vec3* vp[3] = {&a, &b, &cc};
              // The outward normal's i component is area2 * orient: positive means leaving along
              // +i.
              const int32_t delta = (area2 * orient > 0) ? -1 : 1;
              for (int64_t K = k0; K <= k1; ++K) {
                const double pz = (K + 0.5) / n - 0.5;
                for (int64_t J = j0; J <= j1; ++J) {
                  const double py = (J + 0.5) / n - 0.5;
                  bool inside = true;
                  double ev[3];
                  for (int e = 0; e < 3 && inside; ++e) {
                    // Edge from corner e to corner e+1, evaluated from its lower-index end.
                    int s0 = e, s1 = (e + 1) % 3;
                    int sign = 1;
                    if (vid[s0] > vid[s1]) {
                      std::swap(s0, s1);
                      sign = -1;
                    }
                    const Vec3 &u = *vp[s0], &w = *vp[s1];
                    const int es = sign * edge_sign(u[1], u[2], w[1], w[2], py, pz);
                    if (es != want) inside = false;
                    ev[e] = sign * edge_value(u[1], u[2], w[1], w[2], py, pz);
                  }
                  if (!inside) continue;
                  // ev[e] is twice the area opposite corner e+2: barycentric weight of corner e+2.
                  const double x = (ev[1] * a[0] + ev[2] * b[0] + ev[0] * cc[0]) / area2;
                  out.push_back({static_cast<float>(x), delta, K * NJ + J});
                }
              }
            }
          }
        },
        1);
    for (auto& part : parts) {
      all.insert(all.end(), part.begin(), part.end());
      std::vector<Crossing>().swap(part);
    }
  }

  // Counting sort by column, then by position inside each column.
  const int64_t columns = NJ * NK;
  ColumnCrossings cc;
  std::vector<int64_t>& start = cc.start;
  start.assign(columns + 1, 0);
  for (const auto& c : all) ++start[c.column + 1];
  for (int64_t c = 0; c < columns; ++c) start[c + 1] += start[c];
  std::vector<Crossing>& sorted = cc.sorted;
  sorted.resize(all.size());
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (const auto& c : all) sorted[fill[c.column]++] = c;
  }
  std::vector<Crossing>().swap(all);
  return cc;
}

void sort_column(std::vector<Crossing>::iterator b, std::vector<Crossing>::iterator e) {
  std::sort(b, e, [](const Crossing& l, const Crossing& r) {
    return l.x < r.x || (l.x == r.x && l.delta > r.delta);
  });
}

}  // namespace

Volume inside_fraction(const std::vector<const Mesh*>& meshes, const Volume& grid,
                       int supersample) {
  if (supersample < 1 || supersample > 16) throw UsageError("supersampling must be in [1, 16]");
  const int n = supersample;
  const int64_t nx = grid.dims[0], ny = grid.dims[1];
  const int64_t NJ = ny * n;
  ColumnCrossings cc = collect_crossings(meshes, grid, n);
  const std::vector<int64_t>& start = cc.start;
  std::vector<Crossing>& sorted = cc.sorted;

  Volume out(grid.dims, 1, grid.vox2ras, 0.f);
  const double weight = 1.0 / (n * n);
  parallel_for(
      ny * grid.dims[2],
      [&](int64_t rb, int64_t re) {
        std::vector<double> row(nx);
        for (int64_t r = rb; r < re; ++r) {
          const int64_t j = r % ny, k = r / ny;
          std::fill(row.begin(), row.end(), 0.0);
          bool any = false;
          for (int sk = 0; sk < n; ++sk)
            for (int sj = 0; sj < n; ++sj) {
              const int64_t col = (k * n + sk) * NJ + (j * n + sj);
              auto b = sorted.begin() + start[col], e = sorted.begin() + start[col + 1];
              if (b == e) continue;
              sort_column(b, e);
              int wind = 0;
              double enter = 0;
              for (auto it = b; it != e; ++it) {
                const int before = wind;
                wind += it->delta;
                if (before <= 0 && wind > 0) enter = it->x;
                if (before > 0 && wind <= 0) {
                  // Inside on [enter, x]; voxel i covers [i - 0.5, i + 0.5].
                  const double lo = std::max(enter, -0.5), hi = std::min<double>(it->x, nx - 0.5);
                  if (hi <= lo) continue;
                  any = true;
                  const int64_t i0 = static_cast<int64_t>(std::floor(lo + 0.5));
                  const int64_t i1 =
                      std::min<int64_t>(nx - 1, static_cast<int64_t>(std::floor(hi + 0.5)));
                  for (int64_t i = i0; i <= i1; ++i)
                    row[i] += std::min(hi, i + 0.5) - std::max(lo, i - 0.5);
                }
              }
            }
          if (!any) continue;
          for (int64_t i = 0; i < nx; ++i)
            out.data[out.index(i, j, k)] = static_cast<float>(std::min(1.0, row[i] * weight));
        }
      },
      std::max<int64_t>(1, 2048 / std::max<int64_t>(nx, 1)));
  return out;
}

std::vector<uint8_t> inside_centres(const std::vector<const Mesh*>& meshes, const Volume& grid) {
  const int64_t nx = grid.dims[0], ny = grid.dims[1], nz = grid.dims[2];
  ColumnCrossings cc = collect_crossings(meshes, grid, 1);
  std::vector<uint8_t> inside(static_cast<size_t>(nx * ny * nz), 0);
  parallel_for(
      ny * nz,
      [&](int64_t rb, int64_t re) {
        for (int64_t col = rb; col < re; ++col) {
          auto b = cc.sorted.begin() + cc.start[col], e = cc.sorted.begin() + cc.start[col + 1];
          if (b == e) continue;
          sort_column(b, e);
          int wind = 0;
          int64_t i = 0;
          uint8_t* row = &inside[static_cast<size_t>(col * nx)];
          for (auto it = b; it != e; ++it) {
            // Voxel centres before this crossing take the winding number so far.
            const int64_t upto = std::min<int64_t>(nx, static_cast<int64_t>(std::ceil(it->x)));
            for (; i < upto; ++i) row[i] = wind > 0;
            wind += it->delta;
          }
          for (; i < nx; ++i) row[i] = wind > 0;
        }
      },
      64);
  return inside;
}

}  // namespace ddcsr::sim
