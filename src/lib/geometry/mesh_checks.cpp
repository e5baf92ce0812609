// Self-intersection test on the indexed triangle soup. CGAL 5.5 only offers it on a face graph
// (Surface_mesh), which cannot hold non-manifold meshes such as marching-cubes output; the
// adjacency rules below are CGAL's (Polygon_mesh_processing/self_intersections.h), applied to
// vertex indices instead of halfedges.
#include "ddcsr/geometry/mesh_checks.h"

#include <CGAL/Exact_predicates_inexact_constructions_kernel.h>
#include <CGAL/box_intersection_d.h>
#include <CGAL/intersections.h>

#include <algorithm>
#include <atomic>

#include "ddcsr/error.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

using K = CGAL::Exact_predicates_inexact_constructions_kernel;
using Point = K::Point_3;
using Box =
    CGAL::Box_intersection_d::Box_with_info_d<double, 3, int,
                                              CGAL::Box_intersection_d::ID_FROM_BOX_ADDRESS>;

bool faces_intersect(const std::vector<Point>& pts, const std::array<int32_t, 3>& f,
                     const std::array<int32_t, 3>& g) {
  // Which corners are shared (by index).
  int shared = 0, fi[3], gi[3];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      if (f[a] == g[b]) {
        fi[shared] = a;
        gi[shared] = b;
        ++shared;
      }
  if (shared >= 3) return true;  // the same triangle twice
  const K::Triangle_3 tf(pts[f[0]], pts[f[1]], pts[f[2]]);
  const K::Triangle_3 tg(pts[g[0]], pts[g[1]], pts[g[2]]);
  if (shared == 2) {
    // A shared edge (p, q): the faces overlap only if coplanar with both third corners on the
    // same side of the edge (folded onto each other).
    const Point& p = pts[f[fi[0]]];
    const Point& q = pts[f[fi[1]]];
    const Point& r = pts[f[3 - fi[0] - fi[1]]];
    const Point& s = pts[g[3 - gi[0] - gi[1]]];
    return CGAL::coplanar(p, q, r, s) && CGAL::coplanar_orientation(p, q, r, s) == CGAL::POSITIVE;
  }
  if (shared == 1) {
    // A shared corner: they intersect if the edge opposite it in one face meets the other.
    const int a = fi[0], b = gi[0];
    const K::Segment_3 sf(pts[f[(a + 1) % 3]], pts[f[(a + 2) % 3]]);
    const K::Segment_3 sg(pts[g[(b + 1) % 3]], pts[g[(b + 2) % 3]]);
    return CGAL::do_intersect(tf, sg) || CGAL::do_intersect(tg, sf);
  }
  return CGAL::do_intersect(tf, tg);
}

}  // namespace

std::vector<std::pair<int, int>> self_intersections(const Mesh& mesh) {
  const int64_t nv = static_cast<int64_t>(mesh.vertices.size());
  std::vector<Point> pts;
  pts.reserve(mesh.vertices.size());
  for (const auto& v : mesh.vertices) pts.emplace_back(v[0], v[1], v[2]);

  std::vector<std::pair<int, int>> result;
  std::vector<Box> boxes;
  boxes.reserve(mesh.faces.size());
  for (size_t i = 0; i < mesh.faces.size(); ++i) {
    const auto& f = mesh.faces[i];
    for (int c = 0; c < 3; ++c)
      if (f[c] < 0 || f[c] >= nv) throw InputError("", "face refers to a missing vertex");
    const Point &p = pts[f[0]], &q = pts[f[1]], &r = pts[f[2]];
    if (CGAL::collinear(p, q, r)) {
      result.emplace_back(int(i), int(i));
    } else {
      boxes.emplace_back(p.bbox() + q.bbox() + r.bbox(), int(i));
    }
  }

  // Candidate pairs from overlapping bounding boxes (cheap, sequential), then the exact tests
  // in parallel; each chunk keeps its own hits so the result is independent of the threads.
  // Pointers, as CGAL does: the ids come from the boxes' addresses, and the algorithm would
  // otherwise work on copies.
  std::vector<const Box*> box_ptrs;
  box_ptrs.reserve(boxes.size());
  for (const Box& b : boxes) box_ptrs.push_back(&b);
  std::vector<std::pair<int, int>> candidates;
  CGAL::box_self_intersection_d(box_ptrs.begin(), box_ptrs.end(), [&](const Box* a, const Box* b) {
    candidates.emplace_back(std::min(a->info(), b->info()), std::max(a->info(), b->info()));
  });
  const int64_t chunk = 4096;
  const int64_t nchunks = (static_cast<int64_t>(candidates.size()) + chunk - 1) / chunk;
  std::vector<std::vector<std::pair<int, int>>> hits(nchunks);
  parallel_for(
      nchunks,
      [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
          const size_t lo = c * chunk;
          const size_t hi = std::min(candidates.size(), size_t((c + 1) * chunk));
          for (size_t k = lo; k < hi; ++k) {
            const auto& pr = candidates[k];
            if (faces_intersect(pts, mesh.faces[pr.first], mesh.faces[pr.second]))
              hits[c].push_back(pr);
          }
        }
      },
      1);
  for (const auto& h : hits) result.insert(result.end(), h.begin(), h.end());
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

double self_intersection_fraction(const std::vector<std::pair<int, int>>& pairs, size_t num_faces) {
  if (num_faces == 0) return 0;
  std::vector<char> involved(num_faces, 0);
  for (const auto& [f, g] : pairs) {
    involved.at(f) = 1;
    involved.at(g) = 1;
  }
  const size_t n = std::count(involved.begin(), involved.end(), 1);
  return 100.0 * double(n) / double(num_faces);
}

double self_intersection_fraction(const Mesh& mesh) {
  return self_intersection_fraction(self_intersections(mesh), mesh.faces.size());
}

double fraction_vertices_outside(const Mesh& inner, const Mesh& outer) {
  constexpr double kOnSurfaceMm = 1e-3;
  if (inner.vertices.empty()) return 0;
  const MeshDistance md(outer);
  const int64_t n = static_cast<int64_t>(inner.vertices.size());
  std::atomic<int64_t> outside{0};
  parallel_for(n, [&](int64_t begin, int64_t end) {
    int64_t local = 0;
    for (int64_t i = begin; i < end; ++i) {
      const auto& v = inner.vertices[i];
      const Vec3 p{v[0], v[1], v[2]};
      // On the surface is not outside: white and pial share vertices along the medial wall.
      if (!md.inside(p) && md.distance(p) > kOnSurfaceMm) ++local;
    }
    outside += local;
  });
  return 100.0 * double(outside.load()) / double(n);
}

}  // namespace ddcsr
