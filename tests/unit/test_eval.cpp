// Surface metrics and marching cubes on analytic cases.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "ddcsr/eval/marching_cubes.h"
#include "ddcsr/eval/metrics.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/mesh.h"
#include "ddcsr/threads.h"
#include "ddcsr/volume.h"

namespace ddcsr {
namespace {

double norm(const Vec3& v) { return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); }

SamplingOptions small_sampling() {
  SamplingOptions s;
  s.samples = 20000;
  return s;
}

TEST(Metrics, PercentileMatchesNumpy) {
  // numpy.percentile([1, 2, 3, 4], 90) == 3.7; ([5], 95) == 5
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile({5}, 95), 5.0);
  EXPECT_DOUBLE_EQ(percentile({0, 10}, 50), 5.0);
}

TEST(Metrics, SamplesLieOnTheSurfaceUniformly) {
  const Mesh sphere = make_icosphere(4, 10.0, {1, 2, 3});
  const auto pts = sample_surface(sphere, 20000, 7);
  ASSERT_EQ(pts.size(), 20000u);
  const MeshDistance md(sphere);
  Vec3 mean{0, 0, 0};
  double worst = 0;
  for (const auto& p : pts) {
    worst = std::max(worst, md.distance(p));
    for (int c = 0; c < 3; ++c) mean[c] += p[c] / pts.size();
  }
  EXPECT_LT(worst, 1e-4);
  // Uniform on a sphere: the mean is the centre within a few standard errors (10/sqrt(3n)).
  EXPECT_NEAR(mean[0], 1, 0.15);
  EXPECT_NEAR(mean[1], 2, 0.15);
  EXPECT_NEAR(mean[2], 3, 0.15);
  EXPECT_EQ(pts, sample_surface(sphere, 20000, 7));
  EXPECT_NE(pts, sample_surface(sphere, 20000, 8));
}

TEST(Metrics, ConcentricSpheresOffsetByD) {
  const double R = 20;
  for (double d : {0.5, 2.0}) {
    const Mesh ref = make_icosphere(5, R);
    const Mesh pred = make_icosphere(5, R + d);
    const SurfaceDistance s = surface_distance(pred, ref, small_sampling());
    EXPECT_NEAR(s.assd, d, 0.01 * d) << "d=" << d;
    EXPECT_NEAR(s.hd90, d, 0.01 * d);
    EXPECT_NEAR(s.hd95, d, 0.01 * d);
    EXPECT_NEAR(s.chamfer, 2 * d * d, 0.03 * d * d);
    EXPECT_NEAR(s.pred_to_ref.mean, s.ref_to_pred.mean, 0.01 * d);
    EXPECT_GE(s.hausdorff, s.hd95);
    EXPECT_GE(s.hd95, s.hd90);
  }
}

TEST(Metrics, OffsetIsSignedAndNeedsAClosedReference) {
  // A sphere inside the reference reads negative, outside positive; ASSD cannot tell them apart.
  const double R = 20;
  const Mesh ref = make_icosphere(5, R);
  for (double d : {-0.7, 0.4}) {
    const SurfaceDistance s = surface_distance(make_icosphere(5, R + d), ref, small_sampling());
    EXPECT_NEAR(s.offset, d, 0.02 * std::fabs(d)) << "d=" << d;
    EXPECT_NEAR(s.assd, std::fabs(d), 0.02 * std::fabs(d));
  }
  // Half inside, half outside by the same amount: no bias, whatever the ASSD.
  Mesh wavy = ref;
  for (auto& v : wavy.vertices) {
    const double r = norm({v[0], v[1], v[2]}), k = (r + (v[2] > 0 ? 0.5 : -0.5)) / r;
    for (int c = 0; c < 3; ++c) v[c] = static_cast<float>(v[c] * k);
  }
  const SurfaceDistance w = surface_distance(wavy, ref, small_sampling());
  EXPECT_NEAR(w.offset, 0.0, 0.05);
  EXPECT_GT(w.assd, 0.4);
  // An open reference has no inside.
  Mesh open = ref;
  open.faces.pop_back();
  EXPECT_TRUE(std::isnan(
      compare_surfaces(make_icosphere(4, R), open, "x", small_sampling()).distance.offset));
}

TEST(Metrics, ContrastAcrossASurfaceFindsItsBoundary) {
  // An image that is 1 within 20 mm of (2, -3, 4) and 0 beyond (a 0.5 mm grid, oblique-free
  // but offset), and spheres on, inside and outside that boundary.
  const Vec3 c{2, -3, 4};
  Volume image({120, 120, 120}, 1,
               Affine::from_linear_translation({0.5, 0, 0, 0, 0.5, 0, 0, 0, 0.5},
                                               {c[0] - 29.75, c[1] - 29.75, c[2] - 29.75}));
  for (int64_t k = 0; k < 120; ++k)
    for (int64_t j = 0; j < 120; ++j)
      for (int64_t i = 0; i < 120; ++i) {
        const Vec3 p = image.voxel_to_ras({double(i), double(j), double(k)});
        image.at(i, j, k) = norm({p[0] - c[0], p[1] - c[1], p[2] - c[2]}) < 20.0 ? 1.f : 0.f;
      }
  const SurfaceContrast on = contrast_across_surface(make_icosphere(4, 20.0, c), image, +1);
  EXPECT_EQ(on.vertices, 2562);
  EXPECT_GT(on.mean_step, 0.9);
  EXPECT_DOUBLE_EQ(on.positive_percent, 100.0);
  // Expecting the image higher outside flips the sign.
  const SurfaceContrast flipped = contrast_across_surface(make_icosphere(4, 20.0, c), image, -1);
  EXPECT_NEAR(flipped.mean_step, -on.mean_step, 1e-12);
  EXPECT_DOUBLE_EQ(flipped.positive_percent, 0.0);
  // 3 mm off the boundary either way, both samples fall on one side: no step.
  for (double r : {17.0, 23.0}) {
    const SurfaceContrast off = contrast_across_surface(make_icosphere(4, r, c), image, +1);
    EXPECT_LT(std::fabs(off.mean_step), 1e-6) << r;
    EXPECT_DOUBLE_EQ(off.positive_percent, 0.0) << r;
  }
  // A wider offset reaches the boundary from 1.5 mm away.
  EXPECT_GT(contrast_across_surface(make_icosphere(4, 21.5, c), image, +1, nullptr, 2.0).mean_step,
            0.9);
  // Vertices whose samples leave the region, or the image, are not used.
  Volume region = image.like();
  for (int64_t k = 0; k < 120; ++k)
    for (int64_t j = 0; j < 120; ++j)
      for (int64_t i = 0; i < 60; ++i) region.at(i, j, k) = 1;  // x < c[0]
  const SurfaceContrast half =
      contrast_across_surface(make_icosphere(4, 20.0, c), image, +1, &region);
  EXPECT_GT(half.vertices, 1100);
  EXPECT_LT(half.vertices, 1400);
  EXPECT_GT(half.mean_step, 0.9);
  // Excluded vertices are not used.
  std::vector<uint8_t> excluded(2562, 0);
  for (size_t v = 0; v < 100; ++v) excluded[v] = 1;
  EXPECT_EQ(contrast_across_surface(make_icosphere(4, 20.0, c), image, +1, nullptr, 1.0, &excluded)
                .vertices,
            2462);
  EXPECT_LT(contrast_across_surface(make_icosphere(4, 29.5, c), image, +1).vertices, 2562);
  EXPECT_EQ(contrast_across_surface(make_icosphere(4, 55.0, c), image, +1).vertices, 0);
}

TEST(Metrics, Hd90OfALocalBump) {
  // A bump of 3 mm on a small cap: the mean barely moves, the maximum sees it, and HD90 stays
  // near zero because fewer than 10% of the samples are on the bump.
  const Mesh ref = make_icosphere(5, 20.0);
  Mesh pred = ref;
  int moved = 0;
  for (auto& v : pred.vertices) {
    if (v[2] > 19.0) {  // cap of height 1 mm: 2.5% of the area
      const double r = norm({v[0], v[1], v[2]});
      for (int c = 0; c < 3; ++c) v[c] = static_cast<float>(v[c] * (r + 3.0) / r);
      ++moved;
    }
  }
  ASSERT_GT(moved, 10);
  const SurfaceDistance s = surface_distance(pred, ref, small_sampling());
  EXPECT_LT(s.hd90, 0.05);
  EXPECT_GT(s.hausdorff, 2.9);
  EXPECT_LT(s.hausdorff, 3.01);
  EXPECT_GT(s.assd, 0.02);
  EXPECT_LT(s.assd, 0.2);
}

TEST(Metrics, DeterministicAcrossThreadCounts) {
  const Mesh ref = make_icosphere(5, 20.0);
  Mesh pred = make_icosphere(4, 21.0, {0.5, 0, 0});
  set_thread_count(1);
  const SurfaceComparison one = compare_surfaces(pred, ref, "x", small_sampling());
  set_thread_count(2);
  const SurfaceComparison two = compare_surfaces(pred, ref, "x", small_sampling());
  EXPECT_EQ(one.to_json(), two.to_json());
  EXPECT_EQ(one.distance.assd, two.distance.assd);
  EXPECT_EQ(one.distance.hd90, two.distance.hd90);
}

TEST(Metrics, QualityOfIcosphereAndPushedVertex) {
  Mesh m = make_icosphere(3, 10.0);
  MeshQuality q = mesh_quality(m);
  EXPECT_EQ(q.euler, 2);
  EXPECT_EQ(q.components, 1);
  EXPECT_TRUE(q.closed_manifold);
  EXPECT_EQ(q.sif, 0.0);
  auto& v = m.vertices[5];
  v = {-1.3f * v[0], -1.3f * v[1], -1.3f * v[2]};
  q = mesh_quality(m);
  EXPECT_EQ(q.euler, 2);  // topology unchanged, geometry broken
  EXPECT_GT(q.sif, 0.0);
  EXPECT_GT(q.self_intersecting_faces, 0);
}

TEST(Metrics, JsonHasTheFields) {
  const SurfaceComparison c = compare_surfaces(make_icosphere(3, 10.0), make_icosphere(3, 11.0),
                                               "lh.white", small_sampling());
  const std::string j = c.to_json();
  for (const char* key :
       {"\"name\": \"lh.white\"", "\"assd_mm\"", "\"hd90_mm\"", "\"hd95_mm\"", "\"chamfer_mm2\"",
        "\"sif_percent\"", "\"euler\": 2", "\"closed_manifold\": true"})
    EXPECT_NE(j.find(key), std::string::npos) << key;
  EXPECT_EQ(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
  EXPECT_EQ(json_number(std::nan("")), "null");
}

Volume sphere_sdf(double R, const Vec3& centre, double h, int64_t n, bool flip_x) {
  Affine a;
  a(0, 0) = flip_x ? -h : h, a(1, 1) = h, a(2, 2) = h;
  a(0, 3) = flip_x ? h * (n - 1) / 2.0 : -h * (n - 1) / 2.0;
  a(1, 3) = -h * (n - 1) / 2.0, a(2, 3) = -h * (n - 1) / 2.0;
  Volume v({n, n, n}, 1, a);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const Vec3 p = v.voxel_to_ras({double(i), double(j), double(k)});
        v.at(i, j, k) = float(norm({p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]}) - R);
      }
  return v;
}

TEST(MarchingCubes, SphereSdf) {
  const double R = 15, h = 1.5;
  const Vec3 c{0.4, -0.3, 0.2};
  for (bool flip : {false, true}) {
    const Mesh m = marching_cubes(sphere_sdf(R, c, h, 30, flip));
    ASSERT_GT(m.faces.size(), 1000u);
    double worst = 0;
    for (const auto& v : m.vertices)
      worst = std::max(worst, std::abs(norm({v[0] - c[0], v[1] - c[1], v[2] - c[2]}) - R));
    EXPECT_LT(worst, 0.05 * h);
    const MeshTopology t = mesh_topology(m);
    EXPECT_TRUE(t.closed_manifold());
    EXPECT_EQ(t.euler, 2);
    EXPECT_EQ(t.components, 1);
    // Outward orientation: positive enclosed volume close to the ball's.
    EXPECT_NEAR(mesh_volume(m), 4.0 / 3.0 * M_PI * R * R * R, 0.02 * 4.0 / 3.0 * M_PI * R * R * R);
    EXPECT_LT(mesh_quality(m).sif, 0.5);
  }
}

TEST(MarchingCubes, NoiseGivesClosedManifold) {
  // Random fields exercise every ambiguous face; neighbouring cubes must still agree.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  Volume v({12, 11, 10}, 1, Affine::identity());
  for (float& x : v.data) x = u(rng);
  const Mesh m = marching_cubes(v);
  ASSERT_GT(m.faces.size(), 100u);
  const MeshTopology t = mesh_topology(m);
  EXPECT_EQ(t.boundary_edges, 0);
  EXPECT_EQ(t.nonmanifold_edges, 0);
  EXPECT_EQ(t.euler % 2, 0);
  EXPECT_GT(mesh_volume(m), 0);  // outward for the inside (< 0) regions
}

TEST(MarchingCubes, RegionTouchingTheBorderIsClosed) {
  Volume v({8, 8, 8}, 1, Affine::identity(), -1.f);  // everything inside
  Mesh m = marching_cubes(v);
  EXPECT_TRUE(mesh_topology(m).closed_manifold());
  EXPECT_EQ(mesh_topology(m).euler, 2);
  MarchingCubesOptions open;
  open.close_at_border = false;
  EXPECT_TRUE(marching_cubes(v, open).faces.empty());
}

TEST(MarchingCubes, RoundTripOfRealCortex) {
  // Mesh -> signed distance volume -> marching cubes gives back the mesh: both halves of the
  // SDF pipeline checked on real cortical geometry.
  const std::string path = std::string(DDCSR_SHARED_DATA) + "/fsaverage5/white_left.gii.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared data absent: " << path;
  const Mesh white = read_surface(path);
  Vec3 lo{1e9, 1e9, 1e9}, hi{-1e9, -1e9, -1e9};
  for (const auto& v : white.vertices)
    for (int c = 0; c < 3; ++c)
      lo[c] = std::min(lo[c], double(v[c])), hi[c] = std::max(hi[c], double(v[c]));
  const double h = 1.5;
  Affine a;
  std::array<int64_t, 3> dims;
  for (int c = 0; c < 3; ++c) {
    a(c, c) = h;
    a(c, 3) = lo[c] - 4 * h;
    dims[c] = static_cast<int64_t>((hi[c] - lo[c]) / h) + 9;
  }
  SignedDistanceOptions band;
  band.max_distance = 6;
  const Volume sdf = signed_distance_volume(white, Volume(dims, 1, a), band);
  const Mesh mc = marching_cubes(sdf);
  EXPECT_TRUE(mesh_topology(mc).closed_manifold());
  const SurfaceDistance d = surface_distance(mc, white, small_sampling());
  EXPECT_LT(d.assd, 0.1) << "ASSD " << d.assd;
  EXPECT_LT(d.hd90, 0.3) << "HD90 " << d.hd90;
}

}  // namespace
}  // namespace ddcsr
