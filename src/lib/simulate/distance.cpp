#include "ddcsr/simulate/distance.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ddcsr/error.h"
#include "ddcsr/simulate/rasterize.h"
#include "ddcsr/threads.h"

namespace ddcsr::sim {

namespace {

inline Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// Squared distance from p to triangle abc (Ericson, Real-Time Collision Detection, 5.1.5).
double point_triangle_dist2(const Vec3& p, const Vec3& a, const Vec3& b, const Vec3& c) {
  const Vec3 ab = sub(b, a), ac = sub(c, a), ap = sub(p, a);
  auto dist2 = [&](const Vec3& q) {
    const Vec3 d = sub(p, q);
    return dot(d, d);
  };
  const double d1 = dot(ab, ap), d2 = dot(ac, ap);
  if (d1 <= 0 && d2 <= 0) return dot(ap, ap);
  const Vec3 bp = sub(p, b);
  const double d3 = dot(ab, bp), d4 = dot(ac, bp);
  if (d3 >= 0 && d4 <= d3) return dot(bp, bp);
  const double vc = d1 * d4 - d3 * d2;
  if (vc <= 0 && d1 >= 0 && d3 <= 0) {
    const double v = d1 / (d1 - d3);
    return dist2({a[0] + v * ab[0], a[1] + v * ab[1], a[2] + v * ab[2]});
  }
  const Vec3 cp = sub(p, c);
  const double d5 = dot(ab, cp), d6 = dot(ac, cp);
  if (d6 >= 0 && d5 <= d6) return dot(cp, cp);
  const double vb = d5 * d2 - d1 * d6;
  if (vb <= 0 && d2 >= 0 && d6 <= 0) {
    const double w = d2 / (d2 - d6);
    return dist2({a[0] + w * ac[0], a[1] + w * ac[1], a[2] + w * ac[2]});
  }
  const double va = d3 * d6 - d5 * d4;
  if (va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0) {
    const double w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
    return dist2({b[0] + w * (c[0] - b[0]), b[1] + w * (c[1] - b[1]), b[2] + w * (c[2] - b[2])});
  }
  const double denom = va + vb + vc;
  if (!(denom > 0)) {
    // Degenerate triangle: its nearest edge.
    auto seg = [&](const Vec3& s0, const Vec3& s1) {
      const Vec3 d = sub(s1, s0);
      const double len2 = dot(d, d);
      const double t = len2 > 0 ? std::clamp(dot(sub(p, s0), d) / len2, 0.0, 1.0) : 0.0;
      return dist2({s0[0] + t * d[0], s0[1] + t * d[1], s0[2] + t * d[2]});
    };
    return std::min({seg(a, b), seg(b, c), seg(c, a)});
  }
  const double v = vb / denom, w = vc / denom;
  return dist2(
      {a[0] + ab[0] * v + ac[0] * w, a[1] + ab[1] * v + ac[1] * w, a[2] + ab[2] * v + ac[2] * w});
}

}  // namespace

Volume fast_signed_distance(const Mesh& mesh, const Volume& grid, double band) {
  if (mesh.faces.empty()) throw InputError("", "mesh has no faces");
  const int64_t nx = grid.dims[0], ny = grid.dims[1], nz = grid.dims[2];
  const int64_t nvox = nx * ny * nz;
  const Affine& v2r = grid.vox2ras;
  const Affine r2v = v2r.inverse();
  std::vector<Vec3> world(mesh.vertices.size()), vox(mesh.vertices.size());
  for (size_t v = 0; v < world.size(); ++v) {
    world[v] = {mesh.vertices[v][0], mesh.vertices[v][1], mesh.vertices[v][2]};
    vox[v] = r2v.apply(world[v]);
  }
  const int64_t nf = static_cast<int64_t>(mesh.faces.size());
  auto dist2_to = [&](const Vec3& p, int32_t f) {
    const auto& t = mesh.faces[f];
    return point_triangle_dist2(p, world[t[0]], world[t[1]], world[t[2]]);
  };
  auto centre = [&](int64_t i, int64_t j, int64_t k) {
    return v2r.apply({double(i), double(j), double(k)});
  };

  std::vector<double> best(static_cast<size_t>(nvox), std::numeric_limits<double>::infinity());
  std::vector<int32_t> nearest(static_cast<size_t>(nvox), -1);

  // (1) Narrow band, in slabs of slices so that parallel tasks never write the same voxel.
  const int64_t slab = 4, slabs = (nz + slab - 1) / slab;
  std::vector<std::vector<int32_t>> by_slab(slabs);
  std::vector<std::array<int64_t, 6>> range(nf);
  for (int64_t f = 0; f < nf; ++f) {
    const auto& t = mesh.faces[f];
    std::array<int64_t, 6> r;
    bool empty = false;
    for (int a = 0; a < 3; ++a) {
      const double lo = std::min({vox[t[0]][a], vox[t[1]][a], vox[t[2]][a]}) - band;
      const double hi = std::max({vox[t[0]][a], vox[t[1]][a], vox[t[2]][a]}) + band;
      r[2 * a] = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(lo)));
      r[2 * a + 1] = std::min<int64_t>(grid.dims[a] - 1, static_cast<int64_t>(std::floor(hi)));
      if (r[2 * a] > r[2 * a + 1]) empty = true;
    }
    range[f] = r;
    if (empty) continue;
    for (int64_t s = r[4] / slab; s <= r[5] / slab; ++s)
      by_slab[s].push_back(static_cast<int32_t>(f));
  }
  parallel_for(
      slabs,
      [&](int64_t sb, int64_t se) {
        for (int64_t s = sb; s < se; ++s) {
          const int64_t k_lo = s * slab, k_hi = std::min(nz - 1, (s + 1) * slab - 1);
          for (int32_t f : by_slab[s]) {
            const auto& r = range[f];
            for (int64_t k = std::max(r[4], k_lo); k <= std::min(r[5], k_hi); ++k)
              for (int64_t j = r[2]; j <= r[3]; ++j)
                for (int64_t i = r[0]; i <= r[1]; ++i) {
                  const size_t idx = static_cast<size_t>((k * ny + j) * nx + i);
                  const double d2 = dist2_to(centre(i, j, k), f);
                  if (d2 < best[idx] || (d2 == best[idx] && f < nearest[idx])) {
                    best[idx] = d2;
                    nearest[idx] = f;
                  }
                }
          }
        }
      },
      1);

  // A grid that misses the mesh's band entirely still needs one seed for the propagation.
  if (std::all_of(nearest.begin(), nearest.end(), [](int32_t f) { return f < 0; })) {
    const Vec3 p = centre(0, 0, 0);
    for (int32_t f = 0; f < nf; ++f) {
      const double d2 = dist2_to(p, f);
      if (d2 < best[0]) {
        best[0] = d2;
        nearest[0] = f;
      }
    }
  }

  // (2) Propagate nearest triangles by raster scans over the 26-neighbourhood.
  std::vector<std::array<int64_t, 3>> back_offsets;  // neighbours earlier in scan order
  for (int dk = -1; dk <= 0; ++dk)
    for (int dj = -1; dj <= 1; ++dj)
      for (int di = -1; di <= 1; ++di) {
        if (dk == 0 && (dj > 0 || (dj == 0 && di >= 0))) continue;
        back_offsets.push_back({di, dj, dk});
      }
  // Faces around each vertex (CSR), for the local descent over the mesh below.
  std::vector<int32_t> ring_start(world.size() + 1, 0), ring;
  for (const auto& t : mesh.faces)
    for (int c = 0; c < 3; ++c) ++ring_start[t[c] + 1];
  for (size_t v = 0; v < world.size(); ++v) ring_start[v + 1] += ring_start[v];
  ring.resize(ring_start.back());
  {
    std::vector<int32_t> fill(ring_start.begin(), ring_start.end() - 1);
    for (int32_t f = 0; f < nf; ++f)
      for (int c = 0; c < 3; ++c) ring[fill[mesh.faces[f][c]]++] = f;
  }
  // From a good candidate, move to any face sharing a vertex with it while that is closer: the
  // propagated triangle is often a neighbour of the true nearest one.
  auto descend = [&](const Vec3& p, size_t idx) {
    for (int step = 0; step < 64; ++step) {
      const int32_t cur = nearest[idx];
      bool moved = false;
      for (int c = 0; c < 3; ++c) {
        const int32_t v = mesh.faces[cur][c];
        for (int32_t q = ring_start[v]; q < ring_start[v + 1]; ++q) {
          const int32_t f = ring[q];
          if (f == cur) continue;
          const double d2 = dist2_to(p, f);
          if (d2 < best[idx] || (d2 == best[idx] && f < nearest[idx])) {
            best[idx] = d2;
            nearest[idx] = f;
            moved = true;
          }
        }
      }
      if (!moved) break;
    }
  };

  // changed[v] = s + 1 records that sweep s changed voxel v's nearest face. From the third sweep
  // on, a voxel last looked at its neighbours two sweeps earlier, in the same order, and kept
  // the better of their faces then: a neighbour whose face has not changed since cannot improve
  // it and is skipped, which saves most of the second round and changes no result.
  std::vector<uint8_t> changed(static_cast<size_t>(nvox), 0);
  auto visit = [&](int64_t i, int64_t j, int64_t k, int sweep) {
    const int sign = sweep % 2 == 0 ? 1 : -1;
    const size_t idx = static_cast<size_t>((k * ny + j) * nx + i);
    const int32_t before = nearest[idx];
    Vec3 p;
    bool have_p = false;
    // The faces evaluated here: neighbours often share faces, and once is enough.
    int32_t tried[13];
    int num_tried = 0;
    bool improved = false;
    for (const auto& o : back_offsets) {
      const int64_t ii = i + sign * o[0], jj = j + sign * o[1], kk = k + sign * o[2];
      if (ii < 0 || jj < 0 || kk < 0 || ii >= nx || jj >= ny || kk >= nz) continue;
      const size_t n = static_cast<size_t>((kk * ny + jj) * nx + ii);
      if (sweep >= 2 && changed[n] < sweep) continue;
      const int32_t f = nearest[n];
      if (f < 0 || f == nearest[idx] || std::find(tried, tried + num_tried, f) != tried + num_tried)
        continue;
      tried[num_tried++] = f;
      if (!have_p) {
        p = centre(i, j, k);
        have_p = true;
      }
      const double d2 = dist2_to(p, f);
      if (d2 < best[idx] || (d2 == best[idx] && f < nearest[idx])) {
        best[idx] = d2;
        nearest[idx] = f;
        improved = true;
      }
    }
    if (improved) descend(p, idx);
    if (nearest[idx] != before) changed[idx] = static_cast<uint8_t>(sweep + 1);
  };
  for (int sweep = 0; sweep < 4; ++sweep) {
    if (sweep % 2 == 0) {
      for (int64_t k = 0; k < nz; ++k)
        for (int64_t j = 0; j < ny; ++j)
          for (int64_t i = 0; i < nx; ++i) visit(i, j, k, sweep);
    } else {
      for (int64_t k = nz - 1; k >= 0; --k)
        for (int64_t j = ny - 1; j >= 0; --j)
          for (int64_t i = nx - 1; i >= 0; --i) visit(i, j, k, sweep);
    }
  }

  // (3) Signs from the exact inside test at the voxel centres.
  const std::vector<uint8_t> inside = inside_centres({&mesh}, grid);
  Volume out(grid.dims, 1, grid.vox2ras, 0.f);
  for (int64_t idx = 0; idx < nvox; ++idx) {
    const double d = std::sqrt(best[idx]);
    out.data[idx] = static_cast<float>(inside[idx] ? -d : d);
  }
  return out;
}

}  // namespace ddcsr::sim
