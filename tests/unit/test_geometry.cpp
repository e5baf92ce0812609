// Mesh distance, signed distance, inside tests and self-intersections on analytic shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ddcsr/geometry/mesh_checks.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/mesh.h"
#include "ddcsr/threads.h"

namespace ddcsr {
namespace {

double norm(const Vec3& v) { return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); }

TEST(MeshDistance, SingleTriangleFeatures) {
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}};
  m.faces = {{0, 1, 2}};
  const MeshDistance md(m);
  EXPECT_NEAR(md.distance({0.2, 0.2, 3}), 3.0, 1e-12);         // above the interior
  EXPECT_NEAR(md.distance({-1, -1, 0}), std::sqrt(2), 1e-12);  // nearest the corner
  EXPECT_NEAR(md.distance({1, 1, 0}), std::sqrt(0.5), 1e-12);  // nearest the hypotenuse
  const Vec3 c = md.closest_point({0.5, -2, 1});
  EXPECT_NEAR(c[0], 0.5, 1e-12);
  EXPECT_NEAR(c[1], 0.0, 1e-12);
  EXPECT_NEAR(c[2], 0.0, 1e-12);
  // Counter-clockwise seen from +z: +z is outside.
  EXPECT_GT(md.signed_distance({0.2, 0.2, 1}), 0);
  EXPECT_LT(md.signed_distance({0.2, 0.2, -1}), 0);
}

TEST(MeshDistance, SphereDistanceMatchesPolyhedron) {
  const double R = 10;
  const Mesh sphere = make_icosphere(4, R, {1, 2, 3});
  const MeshDistance md(sphere);
  // The polyhedron lies between the circumscribed sphere (R) and the inscribed one, which for a
  // level-4 icosphere is within 0.05 mm of R = 10.
  for (double r : {0.0, 2.0, 7.5, 9.5, 10.5, 14.0, 30.0}) {
    for (const Vec3& dir : {Vec3{1, 0, 0}, Vec3{0.6, 0.8, 0}, Vec3{-0.36, 0.48, -0.8}}) {
      const Vec3 p{1 + r * dir[0], 2 + r * dir[1], 3 + r * dir[2]};
      const double sd = md.signed_distance(p);
      EXPECT_NEAR(sd, r - R, 0.05) << "r=" << r;
      EXPECT_NEAR(std::abs(sd), md.distance(p), 1e-12);
      EXPECT_EQ(md.inside(p), r < R) << "r=" << r;
      const Vec3 c = md.closest_point(p);
      EXPECT_NEAR(norm({c[0] - 1, c[1] - 2, c[2] - 3}), R, 0.05);
    }
  }
}

TEST(MeshDistance, MatchesBruteForceOnABumpyMesh) {
  // A non-convex mesh and points near and far: the hierarchy must find the nearest triangle.
  Mesh m = make_icosphere(3, 10.0);
  for (auto& v : m.vertices) {
    const double f = 1 + 0.3 * std::sin(v[0]) * std::cos(0.7 * v[1]) * std::sin(0.9 * v[2]);
    for (int c = 0; c < 3; ++c) v[c] = static_cast<float>(v[c] * f);
  }
  Mesh single;
  single.vertices = m.vertices;
  const MeshDistance md(m);
  uint64_t state = 12345;
  auto uniform = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return double(state >> 11) * 0x1.0p-53;
  };
  std::vector<MeshDistance> each_face;
  for (const auto& f : m.faces) {
    single.faces = {f};
    each_face.emplace_back(single);
  }
  MeshDistance::Closest prev;
  for (int n = 0; n < 300; ++n) {
    const double scale = n < 150 ? 14.0 : 40.0;
    const Vec3 p{scale * (2 * uniform() - 1), scale * (2 * uniform() - 1),
                 scale * (2 * uniform() - 1)};
    double brute = 1e300;
    for (const auto& one : each_face) brute = std::min(brute, one.distance(p));
    EXPECT_NEAR(md.distance(p), brute, 1e-9);
    // A hint from an unrelated earlier query must not change the answer.
    const MeshDistance::Closest c = md.closest(p, prev);
    EXPECT_NEAR(c.distance, brute, 1e-9);
    prev = c;
  }
}

TEST(MeshDistance, InsideAtVerticesEdgesAndAxes) {
  // Points on axes and through vertices of an icosphere make rays graze edges; the voting must
  // still give the right side.
  const Mesh sphere = make_icosphere(2, 5.0);
  const MeshDistance md(sphere);
  int wrong = 0;
  for (const auto& v : sphere.vertices) {
    const Vec3 in{0.9 * v[0], 0.9 * v[1], 0.9 * v[2]}, out{1.1 * v[0], 1.1 * v[1], 1.1 * v[2]};
    wrong += !md.inside(in) + md.inside(out);
    wrong += md.signed_distance(in) >= 0;
    wrong += md.signed_distance(out) <= 0;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_TRUE(md.inside({0, 0, 0}));
  EXPECT_FALSE(md.inside({0, 0, 6}));
}

TEST(MeshDistance, SignedDistanceVolumeOfSphere) {
  const double R = 12;
  const Mesh sphere = make_icosphere(4, R, {0.3, -0.2, 0.1});
  Affine a;
  a(0, 0) = 1.5, a(1, 1) = 1.5, a(2, 2) = 1.5;
  a(0, 3) = -24, a(1, 3) = -24, a(2, 3) = -24;
  const Volume grid({33, 33, 33}, 1, a);
  for (int threads : {1, 2}) {
    set_thread_count(threads);
    const Volume sdf = signed_distance_volume(sphere, grid);
    ASSERT_EQ(sdf.dims, grid.dims);
    double max_err = 0;
    for (int64_t k = 0; k < 33; ++k)
      for (int64_t j = 0; j < 33; ++j)
        for (int64_t i = 0; i < 33; ++i) {
          const Vec3 p = grid.voxel_to_ras({double(i), double(j), double(k)});
          const double r = norm({p[0] - 0.3, p[1] + 0.2, p[2] - 0.1});
          max_err = std::max(max_err, std::abs(sdf.at(i, j, k) - (r - R)));
        }
    // Level-4 icosphere of radius 12: chordal error below 0.02 mm.
    EXPECT_LT(max_err, 0.02) << threads << " threads";
  }
}

TEST(MeshDistance, BandedSignedDistanceVolume) {
  // Exact inside the band, +-band beyond it with the sign of the exact volume.
  const Mesh sphere = make_icosphere(4, 8.0, {1, 0, 0});
  Affine a;
  a(0, 0) = 1.5, a(1, 1) = 1.5, a(2, 2) = 1.5;
  a(0, 3) = -24, a(1, 3) = -24, a(2, 3) = -24;
  const Volume grid({32, 32, 32}, 1, a);
  const Volume exact = signed_distance_volume(sphere, grid);
  SignedDistanceOptions opts;
  opts.max_distance = 4.0;
  const Volume banded = signed_distance_volume(sphere, grid, opts);
  int64_t beyond = 0;
  for (size_t v = 0; v < exact.data.size(); ++v) {
    if (std::abs(exact.data[v]) <= 4.0f) {
      ASSERT_EQ(banded.data[v], exact.data[v]);
    } else {
      ASSERT_EQ(banded.data[v], exact.data[v] < 0 ? -4.0f : 4.0f) << v;
      ++beyond;
    }
  }
  EXPECT_GT(beyond, 1000);
  // Deep inside (the sphere's centre region) the flood must have carried the inside sign.
  EXPECT_EQ(banded.at(16, 16, 16), -4.0f);
  // A band narrower than two voxels is widened to keep the sign flood safe.
  opts.max_distance = 0.1;
  const Volume narrow = signed_distance_volume(sphere, grid, opts);
  for (size_t v = 0; v < exact.data.size(); ++v)
    ASSERT_EQ(narrow.data[v] < 0, exact.data[v] < 0) << v;
  // No surface near the grid at all: every voxel outside.
  Volume far_grid = grid;
  far_grid.vox2ras(0, 3) = 500;
  const Volume empty = signed_distance_volume(sphere, far_grid, opts);
  EXPECT_EQ(*std::min_element(empty.data.begin(), empty.data.end()), 3.0f);
}

TEST(MeshDistance, TwoLevelSignedDistanceVolume) {
  // A fine 0.75 mm grid with a coarse 2 mm grid of another origin and orientation beyond the
  // band: exact near the surface, the right sign everywhere, and off by at most the coarse
  // diagonal far out. Two spheres 3 mm apart make a medial sheet between them, where
  // interpolating a distance errs most.
  Mesh two = make_icosphere(4, 8.0, {-9.5, 0, 0});
  const Mesh second = make_icosphere(4, 6.0, {7.5, 0.5, 0});
  const int64_t offset = static_cast<int64_t>(two.vertices.size());
  two.vertices.insert(two.vertices.end(), second.vertices.begin(), second.vertices.end());
  for (auto f : second.faces) {
    for (auto& v : f) v += static_cast<int32_t>(offset);
    two.faces.push_back(f);
  }
  Affine fine_affine;
  for (int a = 0; a < 3; ++a) fine_affine(a, a) = 0.75, fine_affine(a, 3) = -24;
  const Volume fine({64, 64, 64}, 1, fine_affine);  // 48 mm
  const Volume coarse(
      {28, 28, 28}, 1,
      Affine::from_linear_translation({0, 2, 0, -2, 0, 0, 0, 0, 2}, {-27, 27.5, -27}));
  const Volume exact = signed_distance_volume(two, fine);
  SignedDistanceOptions opts;
  opts.max_distance = 1.0;  // widened to the coarse diagonal, 3.46 mm
  opts.far_grid = &coarse;
  const double diagonal = std::sqrt(12.0);
  for (int threads : {1, 2}) {
    set_thread_count(threads);
    const Volume two_level = signed_distance_volume(two, fine, opts);
    int64_t interpolated = 0;
    for (size_t v = 0; v < exact.data.size(); ++v) {
      ASSERT_EQ(two_level.data[v] < 0, exact.data[v] < 0) << v;
      if (std::abs(exact.data[v]) <= diagonal)
        ASSERT_EQ(two_level.data[v], exact.data[v]) << v;
      else
        ASSERT_LE(std::abs(two_level.data[v] - exact.data[v]), diagonal) << v;
      interpolated += two_level.data[v] != exact.data[v];
    }
    EXPECT_GT(interpolated, 10000) << threads << " threads";
  }
  // A fine grid reaching beyond the coarse one: exact there, or +-band with the right sign.
  Affine wide_affine = fine_affine;
  for (int a = 0; a < 3; ++a) wide_affine(a, a) = 1.5, wide_affine(a, 3) = -40;
  const Volume wide({54, 54, 54}, 1, wide_affine);
  const Volume wide_exact = signed_distance_volume(two, wide);
  const Volume wide_two_level = signed_distance_volume(two, wide, opts);
  for (size_t v = 0; v < wide_exact.data.size(); ++v) {
    ASSERT_EQ(wide_two_level.data[v] < 0, wide_exact.data[v] < 0) << v;
    if (std::abs(wide_exact.data[v]) <= diagonal) {
      ASSERT_EQ(wide_two_level.data[v], wide_exact.data[v]) << v;
    }
  }
}

Mesh pushed_through_icosphere() {
  // One vertex pushed through the opposite side of the sphere.
  Mesh m = make_icosphere(3, 10.0);
  auto& v = m.vertices[0];
  v = {-1.2f * v[0], -1.2f * v[1], -1.2f * v[2]};
  return m;
}

TEST(MeshChecks, IcosphereHasNoSelfIntersections) {
  const Mesh m = make_icosphere(4, 10.0);
  EXPECT_TRUE(self_intersections(m).empty());
  EXPECT_EQ(self_intersection_fraction(m), 0.0);
  const MeshTopology t = mesh_topology(m);
  EXPECT_EQ(t.euler, 2);
  EXPECT_TRUE(t.closed_manifold());
}

TEST(MeshChecks, PushedVertexSelfIntersects) {
  const Mesh m = pushed_through_icosphere();
  const auto pairs = self_intersections(m);
  ASSERT_FALSE(pairs.empty());
  for (const auto& [f, g] : pairs) EXPECT_LT(f, g);
  const double sif = self_intersection_fraction(m);
  EXPECT_GT(sif, 0.0);
  EXPECT_LT(sif, 10.0);  // only the faces around the moved vertex and those they cross
  set_thread_count(1);
  const auto one = self_intersections(m);
  set_thread_count(2);
  EXPECT_EQ(one, self_intersections(m));
}

TEST(MeshChecks, FoldedSharedEdgeAndSharedVertex) {
  // Two coplanar faces sharing an edge and folded onto each other intersect; the same pair
  // unfolded does not.
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0.2f, 0.5f, 0}};
  m.faces = {{0, 1, 2}, {1, 0, 3}};
  EXPECT_EQ(self_intersections(m).size(), 1u);
  m.vertices[3] = {0.2f, -0.5f, 0};
  EXPECT_TRUE(self_intersections(m).empty());
  // Sharing only vertex 0, the second face's far edge pierces the first face.
  Mesh s;
  s.vertices = {{0, 0, 0}, {2, 0, 0}, {0, 2, 0}, {0.5f, 0.5f, -1}, {0.5f, 0.5f, 1}};
  s.faces = {{0, 1, 2}, {0, 3, 4}};
  EXPECT_EQ(self_intersections(s).size(), 1u);
  s.vertices[3] = {-0.5f, -0.5f, -1};
  s.vertices[4] = {-0.5f, -0.5f, 1};
  EXPECT_TRUE(self_intersections(s).empty());
}

TEST(MeshChecks, VerticesOutside) {
  const Mesh outer = make_icosphere(3, 10.0);
  EXPECT_EQ(fraction_vertices_outside(make_icosphere(3, 9.0), outer), 0.0);
  EXPECT_EQ(fraction_vertices_outside(make_icosphere(3, 11.0), outer), 100.0);
  // A surface against itself: every vertex on the surface, none outside.
  EXPECT_EQ(fraction_vertices_outside(outer, outer), 0.0);
  // Shifted by 5 mm along x: vertices with x > ~2.6 of the shifted sphere leave the outer one.
  const Mesh shifted = make_icosphere(3, 9.0, {5, 0, 0});
  const double pct = fraction_vertices_outside(shifted, outer);
  EXPECT_GT(pct, 20.0);
  EXPECT_LT(pct, 60.0);
}

}  // namespace
}  // namespace ddcsr
