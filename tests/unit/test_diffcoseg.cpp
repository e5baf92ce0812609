// DiffCoSeg on SDFs with known surfaces: an analytic sphere, a folded surface with deep narrow
// grooves and its offset pial, and fsaverage5's real cortical geometry. Coarse meshes keep this
// fast; bench/diffcoseg_speed.sh runs the full-size measurement (DISABLED_Bench below).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>

#include "ddcsr/diffcoseg/diffcoseg.h"
#include "ddcsr/error.h"
#include "ddcsr/geometry/mesh_checks.h"
#include "ddcsr/geometry/mesh_distance.h"
#include "ddcsr/io/surface.h"
#include "ddcsr/mesh.h"
#include "ddcsr/simulate/geometry.h"
#include "ddcsr/threads.h"
#include "diffcoseg/flow_mesh.h"
#include "diffcoseg/sdf_field.h"
#include "diffcoseg/stages.h"
#include "diffcoseg/vec.h"

namespace ddcsr {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Axis-aligned grid of the given spacing covering the mesh's bounding box plus `pad` mm. With
// `flip_x` the first voxel axis runs right-to-left (LAS storage), as many scans do.
Volume grid_around(const Mesh& mesh, double spacing, double pad, bool flip_x = false) {
  Vec3 lo{1e30, 1e30, 1e30}, hi{-1e30, -1e30, -1e30};
  for (const auto& v : mesh.vertices)
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], double(v[a]) - pad);
      hi[a] = std::max(hi[a], double(v[a]) + pad);
    }
  std::array<int64_t, 3> dims;
  for (int a = 0; a < 3; ++a)
    dims[a] = static_cast<int64_t>(std::ceil((hi[a] - lo[a]) / spacing)) + 1;
  Affine a;
  a(0, 0) = flip_x ? -spacing : spacing;
  a(1, 1) = spacing;
  a(2, 2) = spacing;
  a(0, 3) = flip_x ? lo[0] + spacing * double(dims[0] - 1) : lo[0];
  a(1, 3) = lo[1];
  a(2, 3) = lo[2];
  return Volume(dims, 1, a);
}

Volume sphere_sdf(const Volume& grid, const Vec3& c, double radius) {
  Volume sdf = grid.like();
  for (int64_t k = 0; k < grid.dims[2]; ++k)
    for (int64_t j = 0; j < grid.dims[1]; ++j)
      for (int64_t i = 0; i < grid.dims[0]; ++i) {
        const Vec3 p = grid.voxel_to_ras({double(i), double(j), double(k)});
        const double d = std::sqrt((p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) +
                                   (p[2] - c[2]) * (p[2] - c[2]));
        sdf.at(i, j, k) = float(d - radius);
      }
  return sdf;
}

// A closed star-shaped surface with `grooves` deep, narrow meridional grooves (sulci), fading
// towards the poles: r = R - depth * sin^2(theta) * exp(-(sin(grooves/2 * phi) / width)^2),
// pushed out radially by `offset` (the pial of the same folds).
Mesh grooved_surface(double R, double depth, int grooves, double width, double offset) {
  Mesh m = make_icosphere(6, 1.0);
  for (auto& v : m.vertices) {
    const double theta = std::acos(std::clamp(double(v[2]), -1.0, 1.0));
    const double phi = std::atan2(double(v[1]), double(v[0]));
    const double g = std::sin(0.5 * grooves * phi) / width;
    const double st = std::sin(theta);
    const double r = R - depth * st * st * std::exp(-g * g) + offset;
    v = {float(r * v[0]), float(r * v[1]), float(r * v[2])};
  }
  return m;
}

struct Accuracy {
  double assd = 0, hd90 = 0;
};

std::vector<Vec3> area_samples(const Mesh& m, int n, uint64_t seed) {
  std::vector<double> cum;
  double total = 0;
  for (const auto& f : m.faces) {
    const auto &a = m.vertices[f[0]], &b = m.vertices[f[1]], &c = m.vertices[f[2]];
    const double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    const double w[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    const double x = u[1] * w[2] - u[2] * w[1], y = u[2] * w[0] - u[0] * w[2],
                 z = u[0] * w[1] - u[1] * w[0];
    total += 0.5 * std::sqrt(x * x + y * y + z * z);
    cum.push_back(total);
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uni(0, 1);
  std::vector<Vec3> pts;
  for (int i = 0; i < n; ++i) {
    const size_t f =
        std::min(cum.size() - 1,
                 size_t(std::lower_bound(cum.begin(), cum.end(), uni(rng) * total) - cum.begin()));
    double r1 = uni(rng), r2 = uni(rng);
    if (r1 + r2 > 1) r1 = 1 - r1, r2 = 1 - r2;
    const auto &a = m.vertices[m.faces[f][0]], &b = m.vertices[m.faces[f][1]],
               &c = m.vertices[m.faces[f][2]];
    pts.push_back({a[0] + r1 * (b[0] - a[0]) + r2 * (c[0] - a[0]),
                   a[1] + r1 * (b[1] - a[1]) + r2 * (c[1] - a[1]),
                   a[2] + r1 * (b[2] - a[2]) + r2 * (c[2] - a[2])});
  }
  return pts;
}

double percentile90(std::vector<double> d) {
  std::sort(d.begin(), d.end());
  const double pos = 0.9 * double(d.size() - 1);
  const size_t i = size_t(pos);
  return i + 1 < d.size() ? d[i] + (pos - double(i)) * (d[i + 1] - d[i]) : d[i];
}

// ASSD and HD90 from area-weighted samples with exact point-to-surface distances, as the field
// reports them.
Accuracy accuracy(const Mesh& pred, const Mesh& ref, int samples = 20000) {
  const MeshDistance to_ref(ref), to_pred(pred);
  std::vector<double> a, b;
  for (const Vec3& p : area_samples(pred, samples, 1)) a.push_back(to_ref.distance(p));
  for (const Vec3& p : area_samples(ref, samples, 2)) b.push_back(to_pred.distance(p));
  double ma = 0, mb = 0;
  for (double x : a) ma += x;
  for (double x : b) mb += x;
  Accuracy acc;
  acc.assd = 0.5 * (ma / double(a.size()) + mb / double(b.size()));
  acc.hd90 = std::max(percentile90(a), percentile90(b));
  return acc;
}

void expect_guarantees(const HemisphereSurfaces& s) {
  for (const std::string& p : s.problems) ADD_FAILURE() << p;
  for (const Mesh* m : {&s.white, &s.pial}) {
    const MeshTopology t = mesh_topology(*m);
    EXPECT_TRUE(t.closed_manifold());
    EXPECT_EQ(t.components, 1);
    EXPECT_EQ(t.euler, 2);
    // Independent of the report: the checks themselves, run again here.
    EXPECT_TRUE(self_intersections(*m).empty());
    EXPECT_GT(mesh_volume(*m), 0);  // outward-facing
  }
  EXPECT_TRUE(s.white_check.ok());
  EXPECT_TRUE(s.pial_check.ok());
  EXPECT_EQ(s.white.faces, s.pial.faces);
  EXPECT_EQ(fraction_vertices_outside(s.white, s.pial), 0.0);
  EXPECT_EQ(s.white_vertices_outside_pial, 0);
  ASSERT_EQ(s.thickness.size(), s.white.vertices.size());
}

TEST(DiffCoSegMesh, RemeshingKeepsTopologyAndEvensEdges) {
  // A stretched ellipsoid has long edges on its sides; remeshing must even them out without
  // changing the topology.
  Mesh m = make_icosphere(3, 1.0);
  for (auto& v : m.vertices) v = {12 * v[0], 3 * v[1], 3 * v[2]};
  diffcoseg::FlowMesh fm(m);
  for (int it = 0; it < 5; ++it) {
    fm.remesh(0.5);
    fm.relax(0.5, true);
  }
  const Mesh out = fm.to_mesh();
  const MeshTopology t = mesh_topology(out);
  EXPECT_TRUE(t.closed_manifold());
  EXPECT_EQ(t.euler, 2);
  EXPECT_EQ(t.components, 1);
  EXPECT_GT(out.vertices.size(), 2 * m.vertices.size());
  EXPECT_NEAR(fm.mean_edge_length(), 0.5, 0.1);
  EXPECT_TRUE(self_intersections(out).empty());
  EXPECT_GT(mesh_volume(out), 0);
}

TEST(DiffCoSegMesh, RegionRemeshCollapsesACrushedPatchAndLeavesTheRestAlone) {
  // The white repair's last resort: a patch crushed to a speck (what a membrane makes of a
  // bubble the flow wrapped through a thin neck) is collapsed by remeshing only its region,
  // then relaxed again. The surface must stay a closed genus-0 manifold with no degenerate or
  // crossing faces, and nothing outside the region may move.
  using namespace diffcoseg;
  FlowMesh fm(make_icosphere(5, 20.0));
  const double edge = fm.mean_edge_length();
  const Vec3 pole{0, 0, 20};
  std::vector<char> region(fm.vertex_slots(), 0);
  std::vector<Vec3> outside_before;
  int64_t crushed = 0;
  for (int32_t v = 0; v < fm.vertex_slots(); ++v) {
    const double d = norm(fm.pos[v] - pole);
    region[v] = d < 6.0;
    if (!region[v]) outside_before.push_back(fm.pos[v]);
    if (d < 3.5) {
      fm.pos[v] = pole;
      ++crushed;
    }
  }
  ASSERT_GT(crushed, 30);
  ASSERT_FALSE(self_intersections(fm.to_mesh()).empty());  // degenerate faces count
  const int64_t before = fm.num_vertices();
  const int passes = remesh_crushed_region(fm, region, edge);
  std::printf("crushed %lld vertices; %d passes; %lld -> %lld vertices\n", (long long)crushed,
              passes, (long long)before, (long long)fm.num_vertices());
  ASSERT_EQ(static_cast<int64_t>(region.size()), fm.vertex_slots());
  std::vector<Vec3> outside_after;
  for (int32_t v = 0; v < fm.vertex_slots(); ++v)
    if (!region[v]) outside_after.push_back(fm.pos[v]);
  ASSERT_EQ(outside_after.size(), outside_before.size());
  for (size_t i = 0; i < outside_after.size(); ++i)
    EXPECT_EQ(norm(outside_after[i] - outside_before[i]), 0.0) << i;
  const std::vector<double> shortest = fm.shortest_edges();
  EXPECT_GT(*std::min_element(shortest.begin(), shortest.end()), 0.1 * edge);
  const Mesh out = fm.to_mesh();
  const MeshTopology t = mesh_topology(out);
  EXPECT_TRUE(t.closed_manifold());
  EXPECT_EQ(t.components, 1);
  EXPECT_EQ(t.euler, 2);
  EXPECT_TRUE(self_intersections(out).empty());
}

TEST(DiffCoSegField, SmoothedSdfAndGradientInRasUnderFlippedAxes) {
  const Mesh sphere = make_icosphere(2, 10.0, {3, -2, 1});
  const Volume grid = grid_around(sphere, 1.0, 8.0, /*flip_x=*/true);
  const Volume sdf = sphere_sdf(grid, {3, -2, 1}, 10.0);
  const diffcoseg::VoxelBox box = diffcoseg::box_below(sdf, 0.f, 4);
  const diffcoseg::SdfField raw(sdf, box, 0.0);
  Vec3 g;
  // On the +x side of the sphere, the value is the distance and the gradient points to +x
  // (RAS), although the voxel axis runs the other way.
  const double s = raw.sample({3 + 12.3, -2, 1}, &g);
  EXPECT_NEAR(s, 2.3, 0.02);
  EXPECT_NEAR(g[0], 1.0, 0.02);
  EXPECT_NEAR(g[1], 0.0, 0.02);
  // Beyond the crop the value keeps growing.
  EXPECT_GT(raw.sample({3 + 40, -2, 1}), 20.0);
}

TEST(DiffCoSeg, SphereShellIsExactAndNested) {
  const Vec3 c{1.5, -0.7, 2.2};
  const Mesh proto = make_icosphere(2, 24.0, c);
  const Volume grid = grid_around(proto, 1.0, 6.0);
  const Volume white = sphere_sdf(grid, c, 18.0), pial = sphere_sdf(grid, c, 21.0);
  DiffCoSegOptions opt;
  opt.target_vertices = 6000;
  const HemisphereSurfaces s = reconstruct_hemisphere(white, pial, "lh", opt);
  expect_guarantees(s);
  EXPECT_NEAR(double(s.white.vertices.size()), 6000.0, 900.0);
  double max_white = 0, max_pial = 0, mean_thick = 0;
  for (size_t i = 0; i < s.white.vertices.size(); ++i) {
    const auto& w = s.white.vertices[i];
    const auto& p = s.pial.vertices[i];
    max_white =
        std::max(max_white, std::abs(std::hypot(w[0] - c[0], w[1] - c[1], w[2] - c[2]) - 18.0));
    max_pial =
        std::max(max_pial, std::abs(std::hypot(p[0] - c[0], p[1] - c[1], p[2] - c[2]) - 21.0));
    mean_thick += s.thickness[i];
  }
  mean_thick /= double(s.thickness.size());
  EXPECT_LT(max_white, 0.05);
  EXPECT_LT(max_pial, 0.05);
  EXPECT_NEAR(mean_thick, 3.0, 0.05);
  EXPECT_EQ(s.white.hemi, "lh");
  EXPECT_EQ(s.pial.surface, "pial");
}

TEST(DiffCoSeg, DeepNarrowGroovesAreFollowedAndBanksDoNotCross) {
  // White grooves 9 mm deep; the pial (2.5 mm radial offset) leaves most groove banks less than
  // a voxel apart, so the pial SDF does not resolve them and the medial-sheet stop must act.
  const Mesh white_truth = grooved_surface(26, 9, 8, 0.25, 0.0);
  const Mesh pial_truth = grooved_surface(26, 9, 8, 0.25, 2.5);
  const Volume grid = grid_around(pial_truth, 1.0, 6.0);
  const Volume white = signed_distance_volume(white_truth, grid);
  const Volume pial = signed_distance_volume(pial_truth, grid);
  DiffCoSegOptions opt;
  opt.target_vertices = 30000;
  const HemisphereSurfaces s = reconstruct_hemisphere(white, pial, "rh", opt);
  expect_guarantees(s);
  EXPECT_GT(s.pial_sulcus_stops, 0);
  const Accuracy w = accuracy(s.white, white_truth), p = accuracy(s.pial, pial_truth);
  std::printf("grooves: white ASSD %.3f HD90 %.3f, pial ASSD %.3f HD90 %.3f (%.1f %.1f %.1f s)\n",
              w.assd, w.hd90, p.assd, p.hd90, s.seconds_white, s.seconds_pial, s.seconds_checks);
  EXPECT_LT(w.assd, 0.15);
  EXPECT_LT(w.hd90, 0.4);
  EXPECT_LT(p.assd, 0.2);
  EXPECT_LT(p.hd90, 0.5);
}

TEST(DiffCoSeg, PialCoversTheCrownOfAGyrusWhoseWhiteBladeIsTooThinToEnter) {
  // A sphere of white matter with a blade 0.8 mm thick rising 4 mm above it: thinner than a voxel
  // and than the growth's neck limit, so the white flow spans the blade's base. The cortex is
  // 2.5 mm thick everywhere, so the pial gyrus is 5.8 mm wide and its crown 6.5 mm above the
  // base. Walks along the white map's field left the base sideways and missed that crown;
  // walks along the white surface's own field go up into it.
  const Vec3 c{0.3, -0.4, 0.2};
  const double radius = 18, half_thick = 0.4, half_length = 6, top = 22, cortex = 2.5;
  const Mesh proto = make_icosphere(2, radius + 12, c);
  const Volume grid = grid_around(proto, 1.0, 2.0);
  Volume white = sphere_sdf(grid, c, radius), pial = grid.like();
  for (int64_t k = 0; k < grid.dims[2]; ++k)
    for (int64_t j = 0; j < grid.dims[1]; ++j)
      for (int64_t i = 0; i < grid.dims[0]; ++i) {
        const Vec3 p = grid.voxel_to_ras({double(i), double(j), double(k)});
        const Vec3 q{p[0] - c[0], p[1] - c[1], p[2] - c[2]};
        // Exact distance to the box |x| <= 0.4, |y| <= 6, 0 <= z <= top.
        const double e[3] = {std::abs(q[0]) - half_thick, std::abs(q[1]) - half_length,
                             std::abs(q[2] - 0.5 * top) - 0.5 * top};
        const double outside =
            std::sqrt(std::pow(std::max(e[0], 0.0), 2) + std::pow(std::max(e[1], 0.0), 2) +
                      std::pow(std::max(e[2], 0.0), 2));
        const double blade = outside + std::min(std::max({e[0], e[1], e[2]}), 0.0);
        const double d = std::min(double(white.at(i, j, k)), blade);
        white.at(i, j, k) = float(d);
        pial.at(i, j, k) = float(d - cortex);
      }
  DiffCoSegOptions opt;
  opt.target_vertices = 20000;
  const HemisphereSurfaces s = reconstruct_hemisphere(white, pial, "lh", opt);
  expect_guarantees(s);
  // Points of the true pial crown: its top and the upper half of its walls.
  const MeshDistance to_pial(s.pial);
  double worst = 0;
  for (double y = -half_length + 1; y <= half_length - 1; y += 1.0) {
    worst = std::max(worst, to_pial.distance({c[0], c[1] + y, c[2] + top + cortex}));
    for (double side : {-1.0, 1.0})
      for (double z = top - 1.5; z <= top; z += 0.5)
        worst = std::max(
            worst, to_pial.distance({c[0] + side * (half_thick + cortex), c[1] + y, c[2] + z}));
  }
  std::printf("thin blade: farthest true crown point %.2f mm from the pial surface\n", worst);
  EXPECT_LT(worst, 0.75);
}

TEST(DiffCoSeg, PialRepairKeepsMostOfTheWalksOnProceduralFolding) {
  // The simulator's procedural folding (template space, 40k vertices): sulci whose pial banks
  // touch, so that walks from the two banks meet and the repair must pull some back. Halving
  // each crossing walk left the pial surface 0.86 mm from the truth (ASSD); retracting by a
  // fifth first, and only the walks that can still retract, 0.78 mm.
  sim::GeometryOptions o;
  o.seed = 11;
  o.mesh_level = 6;
  Mesh white_truth, pial_truth;
  sim::procedural_hemisphere(o, 0, white_truth, pial_truth);
  const Volume grid = grid_around(pial_truth, 1.0, 6.0);
  DiffCoSegOptions opt;
  opt.target_vertices = 40000;
  const HemisphereSurfaces s =
      reconstruct_hemisphere(signed_distance_volume(white_truth, grid),
                             signed_distance_volume(pial_truth, grid), "lh", opt);
  expect_guarantees(s);
  EXPECT_EQ(s.pial_zero_thickness_vertices, 0);
  const Accuracy w = accuracy(s.white, white_truth), p = accuracy(s.pial, pial_truth);
  std::printf("procedural folding: white ASSD %.3f HD90 %.3f, pial ASSD %.3f HD90 %.3f\n", w.assd,
              w.hd90, p.assd, p.hd90);
  EXPECT_LT(w.assd, 0.5);
  EXPECT_LT(p.assd, 0.82);
}

TEST(DiffCoSeg, TanglesLeftBySmoothingAreRelaxedAway) {
  // Narrow grooves on a 2 mm grid with 1.2 mm voxel noise, harsher than a network's SDF of a real
  // scan: the flow leaves small tangles (279 faces). Without the smoothing rounds, the membrane
  // rounds alone must clear them; without either, the tangles stay (so the test can tell).
  const Mesh white_truth = grooved_surface(26, 9, 12, 0.12, 0.0);
  const Mesh pial_truth = grooved_surface(26, 9, 12, 0.12, 2.5);
  const Volume grid = grid_around(pial_truth, 2.0, 8.0);
  Volume white = signed_distance_volume(white_truth, grid);
  const Volume pial = signed_distance_volume(pial_truth, grid);
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.f, 1.2f);
  for (float& v : white.data) v += noise(rng);
  DiffCoSegOptions opt;
  opt.target_vertices = 20000;
  opt.repair_rounds = 0;
  opt.membrane_rounds = 0;
  const HemisphereSurfaces bare = reconstruct_hemisphere(white, pial, "lh", opt);
  opt.membrane_rounds = 10;
  const HemisphereSurfaces relaxed = reconstruct_hemisphere(white, pial, "lh", opt);
  std::printf("tangles: %lld self-intersecting white faces without repair, %lld with membranes\n",
              static_cast<long long>(bare.white_check.self_intersecting_faces),
              static_cast<long long>(relaxed.white_check.self_intersecting_faces));
  EXPECT_GT(bare.white_check.self_intersecting_faces, 0);
  EXPECT_EQ(relaxed.white_check.self_intersecting_faces, 0);
  EXPECT_TRUE(self_intersections(relaxed.white).empty());
  EXPECT_TRUE(relaxed.white_check.genus0());
}

Mesh read_fsaverage(const std::string& name) {
  const char* env = std::getenv("DDCSR_SHARED_DATA");
  const std::string path =
      std::string(env ? env : DDCSR_SHARED_DATA) + "/fsaverage5/" + name + ".gii.gz";
  if (!std::ifstream(path).good()) return Mesh{};
  return read_surface(path);
}

TEST(DiffCoSeg, Fsaverage5LeftHemisphereCoarse) {
  const Mesh white_truth = read_fsaverage("white_left"), pial_truth = read_fsaverage("pial_left");
  if (white_truth.vertices.empty()) GTEST_SKIP() << "no ../shared/data/fsaverage5";
  const Volume grid = grid_around(pial_truth, 1.0, 6.0);
  const Volume white = signed_distance_volume(white_truth, grid);
  const Volume pial = signed_distance_volume(pial_truth, grid);
  DiffCoSegOptions opt;
  opt.target_vertices = 40000;
  const HemisphereSurfaces s = reconstruct_hemisphere(white, pial, "lh", opt);
  if (std::getenv("DCS_OUT")) {  // DEVDEBUG
    write_surface(s.white, std::string(std::getenv("DCS_OUT")) + "/lh.white.gii");
    write_surface(s.pial, std::string(std::getenv("DCS_OUT")) + "/lh.pial.gii");
  }
  expect_guarantees(s);
  const Accuracy w = accuracy(s.white, white_truth), p = accuracy(s.pial, pial_truth);
  std::printf("fsaverage5 lh @40k: white ASSD %.3f HD90 %.3f, pial ASSD %.3f HD90 %.3f\n", w.assd,
              w.hd90, p.assd, p.hd90);
  // A coarse mesh (edges ~1.4 mm) cannot reach the full-size targets; these bound regressions.
  EXPECT_LT(w.assd, 0.25);
  EXPECT_LT(w.hd90, 0.6);
  EXPECT_LT(p.assd, 0.35);
  EXPECT_LT(p.hd90, 0.8);
  double mean = 0;
  for (float t : s.thickness) mean += t;
  mean /= double(s.thickness.size());
  EXPECT_GT(mean, 1.5);
  EXPECT_LT(mean, 3.5);
}

TEST(DiffCoSeg, SameResultWithOneAndTwoThreads) {
  const Vec3 c{0, 0, 0};
  const Mesh proto = make_icosphere(2, 16.0, c);
  const Volume grid = grid_around(proto, 1.0, 5.0);
  const Volume white = sphere_sdf(grid, c, 11.0), pial = sphere_sdf(grid, c, 13.5);
  DiffCoSegOptions opt;
  opt.target_vertices = 2000;
  set_thread_count(1);
  const HemisphereSurfaces one = reconstruct_hemisphere(white, pial, "lh", opt);
  set_thread_count(2);
  const HemisphereSurfaces two = reconstruct_hemisphere(white, pial, "lh", opt);
  EXPECT_EQ(one.white.vertices, two.white.vertices);
  EXPECT_EQ(one.pial.vertices, two.pial.vertices);
  EXPECT_EQ(one.thickness, two.thickness);
}

TEST(DiffCoSeg, RunawayGrowthFailsInsteadOfRunningOn) {
  // A limit below the white surface's own area stands in for an SDF that makes the flow crumple:
  // the hemisphere fails with an error naming the area, rather than remeshing without end.
  const Vec3 c{0.5, 0.2, -0.3};
  const Mesh proto = make_icosphere(2, 20.0, c);
  const Volume grid = grid_around(proto, 1.0, 6.0);
  const Volume white = sphere_sdf(grid, c, 14.0), pial = sphere_sdf(grid, c, 16.0);
  DiffCoSegOptions opt;
  opt.target_vertices = 3000;
  opt.max_area_factor = 0.5;
  try {
    reconstruct_hemisphere(white, pial, "lh", opt);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("white surface grew to"), std::string::npos) << e.what();
  }
  opt.max_area_factor = 4.0;
  expect_guarantees(reconstruct_hemisphere(white, pial, "lh", opt));
}

TEST(DiffCoSeg, RejectsEmptySdf) {
  Affine a;
  const Volume empty({8, 8, 8}, 1, a, 1.f);
  EXPECT_THROW(reconstruct_hemisphere(empty, empty, "lh", DiffCoSegOptions{}), InputError);
  DiffCoSegOptions bad;
  bad.sigmas_mm.clear();
  const Volume grid = grid_around(make_icosphere(1, 5.0), 1.0, 3.0);
  const Volume sdf = sphere_sdf(grid, {0, 0, 0}, 4.0);
  EXPECT_THROW(reconstruct_hemisphere(sdf, sdf, "lh", bad), UsageError);
}

// Full-size measurement for bench/diffcoseg_speed.sh (not part of the suite): both fsaverage5
// hemispheres at the default vertex count, reconstructed together (reconstruct_hemispheres) and
// timed, with the accuracy against the truth and the guarantees checked independently.
TEST(DiffCoSegBench, DISABLED_Fsaverage5FullSize) {
  std::array<Mesh, 2> white_truth, pial_truth;
  std::array<Volume, 2> white_sdf, pial_sdf;
  const char* sides[2] = {"left", "right"};
  for (int h = 0; h < 2; ++h) {
    white_truth[h] = read_fsaverage(std::string("white_") + sides[h]);
    pial_truth[h] = read_fsaverage(std::string("pial_") + sides[h]);
    if (white_truth[h].vertices.empty()) GTEST_SKIP() << "no ../shared/data/fsaverage5";
    const Volume grid = grid_around(pial_truth[h], 1.0, 8.0);
    white_sdf[h] = signed_distance_volume(white_truth[h], grid);
    pial_sdf[h] = signed_distance_volume(pial_truth[h], grid);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  const std::array<HemisphereSurfaces, 2> out = reconstruct_hemispheres(
      white_sdf[0], pial_sdf[0], white_sdf[1], pial_sdf[1], DiffCoSegOptions{});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
  std::printf(
      "| hemi | vertices | white ASSD | white HD90 | pial ASSD | pial HD90 | SIF white/pial "
      "%% | white outside pial %% | Euler w/p | mean thickness | sulcus stops | repaired "
      "w/p | s white/pial/checks |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int h = 0; h < 2; ++h) {
    const HemisphereSurfaces& s = out[h];
    const Accuracy w = accuracy(s.white, white_truth[h], 100000);
    const Accuracy p = accuracy(s.pial, pial_truth[h], 100000);
    double mean = 0;
    for (float t : s.thickness) mean += t;
    mean /= double(s.thickness.size());
    std::printf(
        "| %s | %zu | %.3f | %.3f | %.3f | %.3f | %.4f/%.4f | %.4f | %lld/%lld | %.2f | "
        "%lld | %lld/%lld | %.1f/%.1f/%.1f |\n",
        s.hemi.c_str(), s.white.vertices.size(), w.assd, w.hd90, p.assd, p.hd90,
        self_intersection_fraction(s.white), self_intersection_fraction(s.pial),
        fraction_vertices_outside(s.white, s.pial), (long long)mesh_topology(s.white).euler,
        (long long)mesh_topology(s.pial).euler, mean, (long long)s.pial_sulcus_stops,
        (long long)s.white_check.repaired_vertices, (long long)s.pial_check.repaired_vertices,
        s.seconds_white, s.seconds_pial, s.seconds_checks);
    for (const std::string& pr : s.problems)
      std::printf("PROBLEM %s: %s\n", s.hemi.c_str(), pr.c_str());
  }
  std::printf("\nboth hemispheres, white + pial: %.2f s wall, %.2f s CPU, %d threads\n", wall, cpu,
              thread_count());
}

}  // namespace
}  // namespace ddcsr
