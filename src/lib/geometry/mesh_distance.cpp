// Distance queries run on a CGAL AABB tree of the triangles (Simple_cartesian<double>: the
// constructions are plain floating point, which is all a distance needs). The tree only finds
// the nearest triangle; the closest point is then recomputed here so that we know which feature
// (face, edge, vertex) it lies on and can pick the matching pseudo-normal for the sign.
#include "ddcsr/geometry/mesh_distance.h"

#include <CGAL/AABB_traits.h>
#include <CGAL/AABB_tree.h>
#include <CGAL/AABB_triangle_primitive.h>
#include <CGAL/Simple_cartesian.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>

#include "ddcsr/error.h"
#include "ddcsr/threads.h"

namespace ddcsr {

namespace {

using K = CGAL::Simple_cartesian<double>;
using Point = K::Point_3;
using Triangle = K::Triangle_3;
using TriangleIterator = std::vector<Triangle>::const_iterator;
using Primitive = CGAL::AABB_triangle_primitive<K, TriangleIterator>;
using Tree = CGAL::AABB_tree<CGAL::AABB_traits<K, Primitive>>;

inline Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline Vec3 add(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
inline Vec3 scale(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline Vec3 normalized(const Vec3& a) {
  const double n = std::sqrt(dot(a, a));
  return n > 0 ? scale(a, 1.0 / n) : Vec3{0, 0, 0};
}

// Which part of a triangle a closest point lies on: the interior, one of the corners a, b, c,
// or one of the edges ab, bc, ca.
enum Feature : int { kFace = 0, kVertexA, kVertexB, kVertexC, kEdgeAB, kEdgeBC, kEdgeCA };

Vec3 closest_on_segment(const Vec3& p, const Vec3& a, const Vec3& b, double& t) {
  const Vec3 ab = sub(b, a);
  const double len2 = dot(ab, ab);
  t = len2 > 0 ? std::clamp(dot(sub(p, a), ab) / len2, 0.0, 1.0) : 0.0;
  return add(a, scale(ab, t));
}

// Closest point on triangle abc (Ericson, Real-Time Collision Detection, 5.1.5), with the
// Voronoi region it falls in.
Vec3 closest_on_triangle(const Vec3& p, const Vec3& a, const Vec3& b, const Vec3& c,
                         Feature& feature) {
  const Vec3 ab = sub(b, a), ac = sub(c, a), ap = sub(p, a);
  const double d1 = dot(ab, ap), d2 = dot(ac, ap);
  if (d1 <= 0 && d2 <= 0) {
    feature = kVertexA;
    return a;
  }
  const Vec3 bp = sub(p, b);
  const double d3 = dot(ab, bp), d4 = dot(ac, bp);
  if (d3 >= 0 && d4 <= d3) {
    feature = kVertexB;
    return b;
  }
  const double vc = d1 * d4 - d3 * d2;
  if (vc <= 0 && d1 >= 0 && d3 <= 0 && d1 - d3 > 0) {
    feature = kEdgeAB;
    return add(a, scale(ab, d1 / (d1 - d3)));
  }
  const Vec3 cp = sub(p, c);
  const double d5 = dot(ab, cp), d6 = dot(ac, cp);
  if (d6 >= 0 && d5 <= d6) {
    feature = kVertexC;
    return c;
  }
  const double vb = d5 * d2 - d1 * d6;
  if (vb <= 0 && d2 >= 0 && d6 <= 0 && d2 - d6 > 0) {
    feature = kEdgeCA;
    return add(a, scale(ac, d2 / (d2 - d6)));
  }
  const double va = d3 * d6 - d5 * d4;
  if (va <= 0 && d4 - d3 >= 0 && d5 - d6 >= 0 && (d4 - d3) + (d5 - d6) > 0) {
    feature = kEdgeBC;
    return add(b, scale(sub(c, b), (d4 - d3) / ((d4 - d3) + (d5 - d6))));
  }
  const double denom = va + vb + vc;
  if (denom > 0) {
    feature = kFace;
    return add(a, add(scale(ab, vb / denom), scale(ac, vc / denom)));
  }
  // Degenerate (zero-area) triangle: the nearest of its three edges.
  double t;
  Vec3 best = closest_on_segment(p, a, b, t);
  feature = kEdgeAB;
  const Vec3 q1 = closest_on_segment(p, b, c, t), q2 = closest_on_segment(p, c, a, t);
  if (dot(sub(p, q1), sub(p, q1)) < dot(sub(p, best), sub(p, best))) {
    best = q1;
    feature = kEdgeBC;
  }
  if (dot(sub(p, q2), sub(p, q2)) < dot(sub(p, best), sub(p, best))) {
    best = q2;
    feature = kEdgeCA;
  }
  return best;
}

inline uint64_t edge_key(int32_t a, int32_t b) {
  if (a > b) std::swap(a, b);
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Fixed ray directions for the inside test: far from the axes and from each other, so that
// meshes built on a grid (marching cubes) do not line up with them.
const Vec3 kRayDirections[] = {
    {0.5377, 0.8339, -0.1241},   {-0.6932, 0.2155, 0.6877},  {0.1012, -0.5873, 0.8030},
    {-0.3261, -0.7717, -0.5461}, {0.8829, -0.3110, 0.3519},  {-0.4547, 0.6013, -0.6571},
    {0.2761, 0.1937, -0.9414},   {-0.9102, -0.2813, 0.3041}, {0.6571, -0.6993, -0.2813},
};

}  // namespace

struct MeshDistance::Impl {
  std::vector<Vec3> vertices;
  std::vector<std::array<int32_t, 3>> faces;
  std::vector<Triangle> triangles;
  Tree tree;
  // Pseudo-normals, computed on the first signed query (plain distance queries never need them).
  std::once_flag normals_once;
  std::vector<Vec3> face_normals;    // unit
  std::vector<Vec3> vertex_normals;  // angle-weighted, not normalised (only the sign matters)
  std::vector<std::array<Vec3, 3>> edge_normals;  // per face: edges ab, bc, ca

  Vec3 closest_on(const Vec3& p, int64_t face) const {
    Feature f;
    const auto& t = faces[face];
    return closest_on_triangle(p, vertices[t[0]], vertices[t[1]], vertices[t[2]], f);
  }

  Closest make_closest(const Vec3& p, TriangleIterator it) const {
    Closest c;
    c.face = it - triangles.begin();
    c.point = closest_on(p, c.face);
    const Vec3 d = sub(p, c.point);
    c.distance = std::sqrt(dot(d, d));
    return c;
  }

  void compute_normals() {
    face_normals.resize(faces.size());
    vertex_normals.assign(vertices.size(), {0, 0, 0});
    // Each directed edge as (undirected key, face * 3 + corner); sorting groups an edge's faces.
    std::vector<std::pair<uint64_t, int64_t>> edges;
    edges.reserve(faces.size() * 3);
    for (size_t fi = 0; fi < faces.size(); ++fi) {
      const auto& f = faces[fi];
      const Vec3 n = normalized(
          cross(sub(vertices[f[1]], vertices[f[0]]), sub(vertices[f[2]], vertices[f[0]])));
      face_normals[fi] = n;
      for (int c = 0; c < 3; ++c) {
        const Vec3& here = vertices[f[c]];
        const Vec3 u = normalized(sub(vertices[f[(c + 1) % 3]], here));
        const Vec3 w = normalized(sub(vertices[f[(c + 2) % 3]], here));
        const double angle = std::acos(std::clamp(dot(u, w), -1.0, 1.0));
        vertex_normals[f[c]] = add(vertex_normals[f[c]], scale(n, angle));
        edges.emplace_back(edge_key(f[c], f[(c + 1) % 3]), int64_t(fi) * 3 + c);
      }
    }
    std::sort(edges.begin(), edges.end());
    edge_normals.resize(faces.size());
    for (size_t b = 0; b < edges.size();) {
      size_t e = b;
      Vec3 sum{0, 0, 0};
      for (; e < edges.size() && edges[e].first == edges[b].first; ++e)
        sum = add(sum, face_normals[edges[e].second / 3]);
      for (size_t k = b; k < e; ++k) edge_normals[edges[k].second / 3][edges[k].second % 3] = sum;
      b = e;
    }
  }

  Vec3 pseudo_normal(const Vec3& p, int64_t face) {
    std::call_once(normals_once, [this] { compute_normals(); });
    Feature f;
    const auto& t = faces[face];
    closest_on_triangle(p, vertices[t[0]], vertices[t[1]], vertices[t[2]], f);
    switch (f) {
      case kFace:
        return face_normals[face];
      case kVertexA:
        return vertex_normals[t[0]];
      case kVertexB:
        return vertex_normals[t[1]];
      case kVertexC:
        return vertex_normals[t[2]];
      case kEdgeAB:
        return edge_normals[face][0];
      case kEdgeBC:
        return edge_normals[face][1];
      case kEdgeCA:
        return edge_normals[face][2];
    }
    return face_normals[face];
  }

  // Crossing parity of one ray; false when the ray grazes an edge, a vertex or a face plane,
  // where counting would be ambiguous.
  bool ray_parity(const Vec3& p, const Vec3& dir, bool& odd) const {
    std::vector<Primitive::Id> hits;
    tree.all_intersected_primitives(
        K::Ray_3(Point(p[0], p[1], p[2]), K::Vector_3(dir[0], dir[1], dir[2])),
        std::back_inserter(hits));
    int count = 0;
    for (const auto& it : hits) {
      const auto& f = faces[it - triangles.begin()];
      const Vec3 &a = vertices[f[0]], &b = vertices[f[1]], &c = vertices[f[2]];
      // Moller-Trumbore, with tolerances relative to the triangle's size.
      const Vec3 e1 = sub(b, a), e2 = sub(c, a);
      const Vec3 h = cross(dir, e2);
      const double det = dot(e1, h);
      const double scale2 = std::sqrt(dot(e1, e1) * dot(e2, e2));
      if (std::abs(det) <= 1e-12 * scale2) return false;  // ray in the triangle's plane
      const Vec3 s = sub(p, a);
      const double u = dot(s, h) / det;
      const Vec3 q = cross(s, e1);
      const double v = dot(dir, q) / det;
      const double t = dot(e2, q) / det;
      constexpr double eps = 1e-9;
      if (u < -eps || v < -eps || u + v > 1 + eps || t < -eps) continue;
      if (u < eps || v < eps || u + v > 1 - eps) return false;  // through an edge or vertex
      if (t <= eps * std::sqrt(scale2)) continue;               // p on the surface
      ++count;
    }
    odd = count % 2 == 1;
    return true;
  }
};

MeshDistance::MeshDistance(const Mesh& mesh) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (mesh.faces.empty()) throw InputError("", "mesh has no faces");
  m.vertices.reserve(mesh.vertices.size());
  for (const auto& v : mesh.vertices) m.vertices.push_back({v[0], v[1], v[2]});
  m.faces = mesh.faces;
  const int64_t nv = static_cast<int64_t>(m.vertices.size());
  m.triangles.reserve(m.faces.size());
  for (const auto& f : m.faces) {
    for (int c = 0; c < 3; ++c)
      if (f[c] < 0 || f[c] >= nv) throw InputError("", "face refers to a missing vertex");
    const Vec3 &a = m.vertices[f[0]], &b = m.vertices[f[1]], &c = m.vertices[f[2]];
    m.triangles.emplace_back(Point(a[0], a[1], a[2]), Point(b[0], b[1], b[2]),
                             Point(c[0], c[1], c[2]));
  }
  m.tree.insert(m.triangles.begin(), m.triangles.end());
  m.tree.build();
  // Built now, not lazily on the first query, so that queries from many threads only read. The
  // vertices seed the nearest-point hints well enough at half the cost of one point per face.
  std::vector<int64_t> incident(m.vertices.size(), -1);
  for (size_t fi = 0; fi < m.faces.size(); ++fi)
    for (int c = 0; c < 3; ++c) incident[m.faces[fi][c]] = static_cast<int64_t>(fi);
  std::vector<Tree::Point_and_primitive_id> seeds;
  seeds.reserve(m.vertices.size());
  for (size_t v = 0; v < m.vertices.size(); ++v)
    if (incident[v] >= 0)
      seeds.emplace_back(Point(m.vertices[v][0], m.vertices[v][1], m.vertices[v][2]),
                         m.triangles.cbegin() + incident[v]);
  m.tree.accelerate_distance_queries(seeds.begin(), seeds.end());
}

MeshDistance::~MeshDistance() = default;
MeshDistance::MeshDistance(MeshDistance&&) noexcept = default;
MeshDistance& MeshDistance::operator=(MeshDistance&&) noexcept = default;

size_t MeshDistance::num_faces() const { return impl_->faces.size(); }

MeshDistance::Closest MeshDistance::closest(const Vec3& p) const {
  const auto pp = impl_->tree.closest_point_and_primitive(Point(p[0], p[1], p[2]));
  return impl_->make_closest(p, pp.second);
}

MeshDistance::Closest MeshDistance::closest(const Vec3& p, const Closest& hint) const {
  if (hint.face < 0 || hint.face >= static_cast<int64_t>(impl_->faces.size())) return closest(p);
  const Tree::Point_and_primitive_id h(Point(hint.point[0], hint.point[1], hint.point[2]),
                                       impl_->triangles.begin() + hint.face);
  const auto pp = impl_->tree.closest_point_and_primitive(Point(p[0], p[1], p[2]), h);
  return impl_->make_closest(p, pp.second);
}

double MeshDistance::distance(const Vec3& p) const { return closest(p).distance; }
Vec3 MeshDistance::closest_point(const Vec3& p) const { return closest(p).point; }

double MeshDistance::signed_distance(const Closest& c, const Vec3& p) const {
  if (c.distance == 0) return 0;
  const double side = dot(sub(p, c.point), impl_->pseudo_normal(p, c.face));
  return side < 0 ? -c.distance : c.distance;
}

double MeshDistance::signed_distance(const Vec3& p) const { return signed_distance(closest(p), p); }

bool MeshDistance::inside(const Vec3& p) const {
  int votes_inside = 0, votes = 0;
  for (const Vec3& dir : kRayDirections) {
    bool odd;
    if (!impl_->ray_parity(p, dir, odd)) continue;
    votes_inside += odd;
    if (++votes == 3) break;
  }
  if (votes == 0) return signed_distance(p) < 0;  // every ray grazed: p sits on the surface
  return 2 * votes_inside > votes;
}

Volume signed_distance_volume(const Mesh& mesh, const Volume& grid, const ProgressFn& progress) {
  const MeshDistance md(mesh);
  Volume out(grid.dims, 1, grid.vox2ras, 0.f);
  const int64_t nx = grid.dims[0], rows = grid.dims[1] * grid.dims[2];
  std::atomic<int64_t> rows_done{0};
  std::mutex progress_mutex;
  report(progress, 0.0);
  // One chunk is a few scanlines: along a scanline each query starts from its neighbour's answer,
  // which bounds the tree search tightly from the start.
  parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t j = r % grid.dims[1], k = r / grid.dims[1];
          MeshDistance::Closest prev;
          for (int64_t i = 0; i < nx; ++i) {
            const Vec3 p = grid.vox2ras.apply({double(i), double(j), double(k)});
            const MeshDistance::Closest c = i == 0 ? md.closest(p) : md.closest(p, prev);
            out.data[out.index(i, j, k)] = static_cast<float>(md.signed_distance(c, p));
            prev = c;
          }
        }
        const int64_t done = rows_done += end - begin;
        if (progress && progress_mutex.try_lock()) {
          progress(double(done) / double(rows));
          progress_mutex.unlock();
        }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(nx, 1)));
  report(progress, 1.0);
  return out;
}

}  // namespace ddcsr
