// Instead of the classic 256-case table (whose face ambiguities let neighbouring cubes disagree
// and leave cracks), each cube's polygons are traced from its faces: on every face the crossing
// points are paired by a rule that depends only on that face's corners, directed so that the
// inside is on their left seen from outside the cube; the directed segments then chain into
// closed loops, which are triangulated.
#include "ddcsr/eval/marching_cubes.h"

#include <algorithm>
#include <cmath>

#include "ddcsr/error.h"

namespace ddcsr {

namespace {

// Corner c of a cube is at offset (c & 1, (c >> 1) & 1, (c >> 2) & 1).
// Faces with corners counter-clockwise seen from outside the cube.
constexpr int kFaces[6][4] = {{0, 4, 6, 2}, {1, 3, 7, 5}, {0, 1, 5, 4},
                              {2, 6, 7, 3}, {0, 2, 3, 1}, {4, 5, 7, 6}};

// Local edge id of corners a, b (differing in one bit): 4 * axis + the other two bits.
inline int local_edge(int a, int b) {
  const int lo = std::min(a, b), axis = (a ^ b) == 1 ? 0 : (a ^ b) == 2 ? 1 : 2;
  int rest;
  if (axis == 0)
    rest = lo >> 1;  // bits y, z
  else if (axis == 1)
    rest = (lo & 1) | ((lo >> 2) << 1);  // bits x, z
  else
    rest = lo & 3;  // bits x, y
  return 4 * axis + rest;
}

struct CubeEdge {
  int a, b;      // corners, a the lower
  int faces[2];  // cube faces containing the edge
};

struct Tables {
  CubeEdge edges[12];
  Tables() {
    for (int a = 0; a < 8; ++a)
      for (int bit : {1, 2, 4}) {
        if (a & bit) continue;
        const int e = local_edge(a, a | bit);
        edges[e].a = a;
        edges[e].b = a | bit;
        int n = 0;
        for (int f = 0; f < 6; ++f) {
          int has = 0;
          for (int c : kFaces[f]) has += (c == a) + (c == (a | bit));
          if (has == 2) edges[e].faces[n++] = f;
        }
      }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

Mesh marching_cubes(const Volume& volume, const MarchingCubesOptions& opts) {
  if (opts.frame < 0 || opts.frame >= volume.nvols)
    throw UsageError("marching cubes: no frame " + std::to_string(opts.frame));
  const int64_t nx = volume.dims[0], ny = volume.dims[1], nz = volume.dims[2];
  if (nx < 1 || ny < 1 || nz < 1) throw InputError("", "marching cubes on an empty volume");

  // The field on a (possibly) padded grid; padded voxel (i, j, k) is volume voxel (i-p, j-p, k-p).
  const int64_t pad = opts.close_at_border ? 1 : 0;
  const int64_t px = nx + 2 * pad, py = ny + 2 * pad, pz = nz + 2 * pad;
  const Vec3 sp = volume.spacing();
  // One voxel beyond the border, an SDF would be at least about a voxel above the level.
  const float outside = opts.iso + static_cast<float>(std::max({sp[0], sp[1], sp[2], 1e-3}));
  std::vector<float> f(static_cast<size_t>(px * py * pz), outside);
  for (int64_t k = 0; k < nz; ++k)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i) {
        const float v = volume.at(i, j, k, opts.frame);
        f[((k + pad) * py + (j + pad)) * px + (i + pad)] = std::isfinite(v) ? v : outside;
      }
  auto at = [&](int64_t i, int64_t j, int64_t k) { return f[(k * py + j) * px + i]; };
  const float iso = opts.iso;

  Mesh mesh;
  // Vertex id of the crossing on each grid edge (3 per voxel, one per axis; -1 when none yet).
  // Only two z-slices of grid edges are live at a time: those of the cubes' bottom and top.
  const size_t slice = static_cast<size_t>(3 * px * py);
  std::vector<int32_t> edge_vertex(2 * slice, -1);
  const Tables& T = tables();
  const bool flip = volume.vox2ras.determinant() < 0;

  float v[8];
  int crossing_vertex[12];
  int next[12];
  for (int64_t k = 0; k + 1 < pz; ++k) {
    std::fill(edge_vertex.begin() + ((k + 1) & 1) * slice,
              edge_vertex.begin() + (((k + 1) & 1) + 1) * slice, -1);
    for (int64_t j = 0; j + 1 < py; ++j)
      for (int64_t i = 0; i + 1 < px; ++i) {
        int inside_mask = 0;
        for (int c = 0; c < 8; ++c) {
          v[c] = at(i + (c & 1), j + ((c >> 1) & 1), k + ((c >> 2) & 1));
          if (v[c] < iso) inside_mask |= 1 << c;
        }
        if (inside_mask == 0 || inside_mask == 255) continue;
        auto in = [&](int c) { return (inside_mask >> c) & 1; };

        // Directed segments from an "entry" crossing (walking counter-clockwise from an outside
        // to an inside corner) to an "exit" crossing: outward-facing triangles once chained.
        std::fill(next, next + 12, -1);
        for (const auto& face : kFaces) {
          int entry[2], exit_[2], ne = 0, nx_ = 0;
          for (int s = 0; s < 4; ++s) {
            const int a = face[s], b = face[(s + 1) % 4];
            if (in(a) == in(b)) continue;
            if (in(b))
              entry[ne++] = local_edge(a, b);
            else
              exit_[nx_++] = local_edge(a, b);
          }
          if (ne == 1) {
            next[entry[0]] = exit_[0];
          } else if (ne == 2) {
            // Ambiguous face: inside corners joined when the bilinear saddle is inside.
            const float a = v[face[0]], b = v[face[1]], c = v[face[2]], d = v[face[3]];
            const float denom = a + c - b - d;
            const bool joined = denom != 0 && (a * c - b * d) / denom < iso;
            for (int s = 0; s < 4; ++s) {
              // Cut around corner face[s]: inside corners when they are apart, outside ones when
              // the inside is joined.
              const int corner = face[s];
              if (in(corner) == joined) continue;
              const int before = local_edge(face[(s + 3) % 4], corner);
              const int after = local_edge(corner, face[(s + 1) % 4]);
              if (in(corner))
                next[before] = after;
              else
                next[after] = before;
            }
          }
        }

        for (int e = 0; e < 12; ++e) {
          crossing_vertex[e] = -1;
          if (next[e] < 0) continue;
          const CubeEdge& ce = T.edges[e];
          const int64_t ci = i + (ce.a & 1), cj = j + ((ce.a >> 1) & 1), ck = k + ((ce.a >> 2) & 1);
          const int axis = e / 4;
          int32_t& id = edge_vertex[(ck & 1) * slice + 3 * (cj * px + ci) + axis];
          if (id < 0) {
            // Kept off the corners so that no two vertices coincide.
            const double t =
                std::clamp(double(iso - v[ce.a]) / double(v[ce.b] - v[ce.a]), 1e-4, 1 - 1e-4);
            Vec3 ijk{double(ci - pad), double(cj - pad), double(ck - pad)};
            ijk[axis] += t;
            const Vec3 p = volume.voxel_to_ras(ijk);
            id = static_cast<int32_t>(mesh.vertices.size());
            mesh.vertices.push_back(
                {static_cast<float>(p[0]), static_cast<float>(p[1]), static_cast<float>(p[2])});
          }
          crossing_vertex[e] = id;
        }

        bool used[12] = {false};
        int loop[12];
        for (int e0 = 0; e0 < 12; ++e0) {
          if (next[e0] < 0 || used[e0]) continue;
          int n = 0;
          for (int e = e0; !used[e]; e = next[e]) {
            used[e] = true;
            loop[n++] = e;
          }
          // A fan diagonal lying in a cube face could also be a diagonal of the neighbouring
          // cube's polygon (an edge with four triangles); start the fan where none does.
          int start = -1;
          for (int s = 0; s < n && start < 0; ++s) {
            bool ok = true;
            for (int d = 2; d + 1 < n && ok; ++d) {
              const CubeEdge &p = T.edges[loop[s]], &q = T.edges[loop[(s + d) % n]];
              for (int fp : p.faces)
                for (int fq : q.faces) ok = ok && fp != fq;
            }
            if (ok) start = s;
          }
          auto emit = [&](int32_t a, int32_t b, int32_t c) {
            if (flip) std::swap(b, c);
            mesh.faces.push_back({a, b, c});
          };
          if (start >= 0) {
            for (int d = 1; d + 1 < n; ++d)
              emit(crossing_vertex[loop[start]], crossing_vertex[loop[(start + d) % n]],
                   crossing_vertex[loop[(start + d + 1) % n]]);
          } else {
            // Fan around the polygon's centroid instead.
            Vec3 centre{0, 0, 0};
            for (int s = 0; s < n; ++s)
              for (int c = 0; c < 3; ++c)
                centre[c] += mesh.vertices[crossing_vertex[loop[s]]][c] / n;
            const int32_t cid = static_cast<int32_t>(mesh.vertices.size());
            mesh.vertices.push_back({static_cast<float>(centre[0]), static_cast<float>(centre[1]),
                                     static_cast<float>(centre[2])});
            for (int s = 0; s < n; ++s)
              emit(cid, crossing_vertex[loop[s]], crossing_vertex[loop[(s + 1) % n]]);
          }
        }
      }
  }
  return mesh;
}

}  // namespace ddcsr
